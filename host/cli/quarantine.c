/* nno quarantine: the package versions quarantined after crashes, and
 * their release. */
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>
#include <unistd.h>

#include "cli.h"

/* -- quarantine ------------------------------------------------------------ */

static int quarantine_list(cli *c, const cli_args *a) {
  static const cli_col cols[] = {
      {"PLATFORM", "platform"}, {"STACK", "stack"},     {"PACKAGE", "package"},
      {"VERSION", "version"},   {"CRASHES", "crashes"}, {"REASON", "reason"},
      {"UNTIL", "until"}};
  return cli_list(c, a, "quarantine list", "/quarantines", LIST_MAX_ROWS,
                  PAGE_MAX, cols, 7);
}

static int quarantine_release(cli *c, const cli_args *a) {
  char path[CLI_PATH_MAX], done[256];
  if (cli_path(path, sizeof path, "/quarantines/%s/%s/%s", a->pos[0], a->pos[1],
               a->pos[2]))
    return cli_too_long();
  snprintf(done, sizeof done, "released %.64s %.64s on platform %.64s",
           a->pos[1], a->pos[2], a->pos[0]);
  return cli_no_content(c, "DELETE", path, done);
}

/* -- the command table ----------------------------------------------------- */

/* clang-format off */
static const cli_command commands[] = {
    {"quarantine", "list", 0, 0, {0}, "quarantine list",
     "Lists the package versions quarantined after repeated crashes, one a\n"
     "row per platform (\"*\": every platform), with the crashes counted,\n"
     "the last one's reason and when the quarantine ends.\n",
     quarantine_list,
     "  nno quarantine list\n", NULL, NULL},
    {"quarantine", "release", 3, 3, {0},
     "quarantine release PLATFORM PACKAGE VERSION",
     "Ends a quarantine now: every worker serves the package again on its\n"
     "next request. Its backoff is kept: a crash soon after quarantines it\n"
     "again, for twice as long.\n",
     quarantine_release,
     "  nno quarantine release acme hello 1.0.0\n", NULL, NULL},
};
/* clang-format on */

const cli_group cli_group_quarantine = {
    "quarantine", "list, release packages quarantined after crashes", commands,
    sizeof commands / sizeof commands[0]};
