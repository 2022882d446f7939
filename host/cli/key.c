/* nno key: create, list and revoke the API keys of a platform. */
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>
#include <unistd.h>

#include "cli.h"

/* -- key ------------------------------------------------------------------- */

static const cli_col key_cols[] = {
    {"ID", "id"},         {"NAME", "name"},          {"TENANT", "tenant"},
    {"SCOPES", "scopes"}, {"EXPIRES", "expires_at"}, {"REVOKED", "revoked_at"}};

/* "a b,c" -> ["a", "b", "c"] */
static json_t *scope_list(const char *s) {
  json_t *a = json_array();
  const char *p = s;
  while (a && *p) {
    while (*p == ' ' || *p == ',') p++;
    const char *q = p;
    while (*q && *q != ' ' && *q != ',') q++;
    if (q > p) json_array_append_new(a, json_stringn(p, (size_t)(q - p)));
    p = q;
  }
  return a;
}

static int key_create(cli *c, const cli_args *a) {
  char path[CLI_PATH_MAX];
  if (cli_path(path, sizeof path, "/platforms/%s/keys", a->pos[0]))
    return cli_too_long();
  const char *exp = cli_opt(a, "expires-in");
  long secs = 0;
  if (exp) {
    char *end;
    errno = 0;
    secs = strtol(exp, &end, 10);
    if (errno || end == exp || *end || secs < 60)
      return cli_usage_error(
          "key create: --expires-in expects seconds (60 or "
          "more)",
          "e.g. --expires-in 2592000 for 30 days");
  }
  json_t *b = json_object();
  json_object_set_new(b, "name", json_string(cli_opt(a, "name")));
  json_object_set_new(b, "scopes", scope_list(cli_opt(a, "scopes")));
  if (cli_opt(a, "tenant"))
    json_object_set_new(b, "tenant", json_string(cli_opt(a, "tenant")));
  if (exp) json_object_set_new(b, "expires_in", json_integer(secs));
  int rc = cli_single(c, "POST", path, b);
  json_decref(b);
  if (rc == CLI_OK && !c->json)
    fprintf(stderr, "nno: keep the key now: it is not shown again\n");
  return rc;
}

static int key_list(cli *c, const cli_args *a) {
  char path[CLI_PATH_MAX];
  if (cli_path(path, sizeof path, "/platforms/%s/keys", a->pos[0]))
    return cli_too_long();
  return cli_list(c, a, "key list", path, LIST_MAX_ROWS, PAGE_MAX, key_cols,
                  sizeof key_cols / sizeof key_cols[0]);
}

static int key_revoke(cli *c, const cli_args *a) {
  char path[CLI_PATH_MAX], done[160];
  if (cli_path(path, sizeof path, "/platforms/%s/keys/%s", a->pos[0],
               a->pos[1]))
    return cli_too_long();
  snprintf(done, sizeof done, "revoked key %.32s of platform %.64s", a->pos[1],
           a->pos[0]);
  return cli_no_content(c, "DELETE", path, done);
}

/* -- the command table ----------------------------------------------------- */

/* clang-format off */
static const cli_command commands[] = {
    {"key", "create", 1, 1, {"name=", "scopes=", "tenant=", "expires-in="},
     "key create PLATFORM --name NAME --scopes S [--tenant TID] "
     "[--expires-in SECONDS]",
     "Creates an API key of PLATFORM and prints it once: keep it then, it\n"
     "cannot be shown again (only its hash is stored).\n\n"
     "  --name NAME         what the key is for (required)\n"
     "  --scopes S          scopes, separated by spaces or commas (required),\n"
     "                      e.g. 'tenants:read features:hello:*'\n"
     "  --tenant TID        bind the key to TID's subtree\n"
     "  --expires-in SECS   the key stops working after SECS seconds\n",
     key_create,
     "  nno key create acme --name ci --scopes 'tenants:read features:*' \\\n"
     "      --expires-in 86400\n", NULL, NULL},
    {"key", "list", 1, 1, {"limit=", "all"},
     "key list PLATFORM [--limit N | --all]",
     "Lists the API keys of PLATFORM by id, revoked ones included; never\n"
     "their secrets.\n\n" LIST_OPTS,
     key_list,
     "  nno key list acme\n", NULL, NULL},
    {"key", "revoke", 2, 2, {0}, "key revoke PLATFORM KEY_ID",
     "Revokes an API key: every worker refuses it within a second.\n",
     key_revoke,
     "  nno key revoke acme k_2f9c\n", NULL, NULL},
};
/* clang-format on */

const cli_group cli_group_key = {
    "key", "create, list, revoke the API keys of a platform", commands,
    sizeof commands / sizeof commands[0]};
