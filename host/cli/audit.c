/* nno audit: the audit log, newest first. */
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>
#include <unistd.h>

#include "cli.h"

/* -- audit ----------------------------------------------------------------- */

static int audit(cli *c, const cli_args *a) {
  static const cli_col cols[] = {{"SEQ", "seq"},
                                 {"AT", "at"},
                                 {"ACTOR", "actor"},
                                 {"ACTION", "action"},
                                 {"TARGET", "target"}};
  char path[CLI_PATH_MAX] = "/audit";
  if (cli_query(path, sizeof path, "target", cli_opt(a, "target")) ||
      cli_query(path, sizeof path, "action", cli_opt(a, "action")))
    return cli_too_long();
  return cli_list(c, a, "audit", path, AUDIT_ROWS, PAGE_MAX, cols, 5);
}

/* -- the command table ----------------------------------------------------- */

/* clang-format off */
static const cli_command commands[] = {
    {"audit", NULL, 0, 0, {"target=", "action=", "limit=", "all"},
     "audit [--target T] [--action A] [--limit N | --all]",
     "Shows the audit log, newest first (the newest 100 entries unless\n"
     "--limit or --all).\n\n"
     "  --target T   only entries about T (e.g. platform:acme)\n"
     "  --action A   only entries of action A (e.g. platform.create)\n"
     LIST_OPTS,
     audit,
     "  nno audit --target platform:acme --limit 20\n", NULL, NULL},
};
/* clang-format on */

const cli_group cli_group_audit = {"audit", "show the audit log, newest first",
                                   commands,
                                   sizeof commands / sizeof commands[0]};
