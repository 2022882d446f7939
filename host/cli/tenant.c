/* nno tenant: create, list, show and delete the tenants of a platform. */
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>
#include <unistd.h>

#include "cli.h"

/* -- tenant ---------------------------------------------------------------- */

static const cli_col tenant_cols[] = {{"ID", "id"},
                                      {"PARENT", "parent"},
                                      {"NAME", "name"},
                                      {"STATUS", "status"},
                                      {"CREATED", "created_at"}};

static int tenant_create(cli *c, const cli_args *a) {
  char path[CLI_PATH_MAX];
  if (cli_path(path, sizeof path, "/platforms/%s/tenants", a->pos[0]))
    return cli_too_long();
  json_t *b = json_object();
  if (a->npos > 1) json_object_set_new(b, "id", json_string(a->pos[1]));
  json_object_set_new(b, "name", json_string(cli_opt(a, "name")));
  if (cli_opt(a, "parent"))
    json_object_set_new(b, "parent", json_string(cli_opt(a, "parent")));
  int rc = cli_single(c, "POST", path, b);
  json_decref(b);
  return rc;
}

static int tenant_list(cli *c, const cli_args *a) {
  char path[CLI_PATH_MAX];
  if (cli_opt(a, "parent") && cli_opt(a, "under"))
    return cli_usage_error(
        "tenant list: --parent and --under exclude each "
        "other",
        "--parent T lists T's children, --under T its "
        "whole subtree");
  if (cli_path(path, sizeof path, "/platforms/%s/tenants", a->pos[0]) ||
      cli_query(path, sizeof path, "parent", cli_opt(a, "parent")) ||
      cli_query(path, sizeof path, "under", cli_opt(a, "under")))
    return cli_too_long();
  return cli_list(c, a, "tenant list", path, LIST_MAX_ROWS, PAGE_MAX,
                  tenant_cols, sizeof tenant_cols / sizeof tenant_cols[0]);
}

static int tenant_show(cli *c, const cli_args *a) {
  char path[CLI_PATH_MAX];
  if (cli_path(path, sizeof path, "/platforms/%s/tenants/%s", a->pos[0],
               a->pos[1]))
    return cli_too_long();
  return cli_single(c, "GET", path, NULL);
}

static int tenant_delete(cli *c, const cli_args *a) {
  char path[CLI_PATH_MAX], done[256];
  if (cli_path(path, sizeof path, "/platforms/%s/tenants/%s", a->pos[0],
               a->pos[1]) ||
      cli_query(path, sizeof path, "cascade",
                cli_opt(a, "cascade") ? "true" : NULL))
    return cli_too_long();
  snprintf(done, sizeof done, "deleted tenant %.64s of platform %.64s%s",
           a->pos[1], a->pos[0],
           cli_opt(a, "cascade") ? " with its subtree" : "");
  return cli_no_content(c, "DELETE", path, done);
}

/* -- the command table ----------------------------------------------------- */

/* clang-format off */
static const cli_command commands[] = {
    {"tenant", "create", 1, 2, {"name=", "parent="},
     "tenant create PLATFORM [ID] --name NAME [--parent TID]",
     "Creates a tenant of PLATFORM; without ID the server picks one.\n\n"
     "  --name NAME    display name (required)\n"
     "  --parent TID   parent tenant (default: a root tenant)\n",
     tenant_create,
     "  nno tenant create acme eu --name Europe\n"
     "  nno tenant create acme paris --name Paris --parent eu\n", NULL, NULL},
    {"tenant", "list", 1, 1, {"parent=", "under=", "limit=", "all"},
     "tenant list PLATFORM [--parent TID | --under TID] [--limit N | --all]",
     "Lists the tenants of PLATFORM by id.\n\n"
     "  --parent TID   only the direct children of TID\n"
     "  --under TID    the whole subtree below TID\n" LIST_OPTS,
     tenant_list,
     "  nno tenant list acme --under eu\n", NULL, NULL},
    {"tenant", "show", 2, 2, {0}, "tenant show PLATFORM TID",
     "Shows one tenant as key: value lines.\n", tenant_show,
     "  nno tenant show acme paris\n", NULL, NULL},
    {"tenant", "delete", 2, 2, {"cascade"},
     "tenant delete PLATFORM TID [--cascade]",
     "Deletes a tenant. One with children is refused unless --cascade.\n\n"
     "  --cascade   delete its whole subtree too\n",
     tenant_delete,
     "  nno tenant delete acme eu --cascade\n", NULL, NULL},
};
/* clang-format on */

const cli_group cli_group_tenant = {
    "tenant", "create, list, show, delete the tenants of a platform", commands,
    sizeof commands / sizeof commands[0]};
