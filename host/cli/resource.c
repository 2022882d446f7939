/* nno resource: the resources of a platform (sql, kv, blob) with their
 * state, size and the platform's quota use. */
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>
#include <unistd.h>

#include "cli.h"

/* -- resource -------------------------------------------------------------- */

static const cli_col resource_cols[] = {{"STACK", "stack"},
                                        {"TYPE", "type"},
                                        {"NAME", "name"},
                                        {"STATE", "state"},
                                        {"SIZE", "size"}};

/* 1536 -> "1.5 KiB" */
static void human_size(double v, char *out, size_t cap) {
  static const char *const unit[] = {"B", "KiB", "MiB", "GiB", "TiB"};
  int u = 0;
  while (v >= 1024 && u < 4) v /= 1024, u++;
  if (u == 0)
    snprintf(out, cap, "%.0f B", v);
  else
    snprintf(out, cap, "%.1f %s", v, unit[u]);
}

/* A size given in bytes under `key` of `o` as text, or NULL. */
static json_t *size_text(const json_t *o, const char *key) {
  json_t *v = json_object_get(o, key);
  if (!json_is_number(v)) return NULL;
  char buf[32];
  human_size(json_number_value(v), buf, sizeof buf);
  return json_string(buf);
}

static int resource_list(cli *c, const cli_args *a) {
  char path[CLI_PATH_MAX];
  if (cli_path(path, sizeof path, "/platforms/%s/resources", a->pos[0]))
    return cli_too_long();
  long want = cli_rows_wanted(a, LIST_MAX_ROWS, "resource list");
  if (want < 0) return CLI_EUSAGE;
  json_t *all = NULL, *first = NULL;
  int more = 0;
  int rc = cli_collect(c, path, want, RESOURCE_PAGE_MAX, &all, &first, &more);
  if (rc) return rc;
  json_t *quota = json_object_get(first, "quota");
  if (c->json) {
    /* The rows, and the quota as the server gave it. */
    json_t *o = json_pack("{s:O, s:O}", "items", all, "quota",
                          quota ? quota : json_null());
    cli_print_json(stdout, o);
    json_decref(o);
  } else {
    size_t i;
    json_t *it;
    json_array_foreach(all, i, it) {
      /* Bytes, under "size_bytes" (or "size"), shown as 1.5 KiB. */
      json_t *t = size_text(it, "size_bytes");
      if (!t) t = size_text(it, "size");
      if (t) json_object_set_new(it, "size", t);
    }
    cli_table(stdout, resource_cols,
              sizeof resource_cols / sizeof resource_cols[0], all);
    json_t *used = size_text(quota, "used_bytes"),
           *limit = size_text(quota, "limit_bytes");
    if (used && limit)
      printf("quota: %s of %s used\n", json_string_value(used),
             json_string_value(limit));
    else if (used)
      printf("quota: %s used\n", json_string_value(used));
    json_decref(used);
    json_decref(limit);
  }
  cli_more_note(a, more, want);
  json_decref(first);
  json_decref(all);
  return CLI_OK;
}

static int resource_show(cli *c, const cli_args *a) {
  char path[CLI_PATH_MAX];
  const char *type = a->pos[1], *name = a->pos[2];
  if (strcmp(type, "sql") && strcmp(type, "kv") && strcmp(type, "blob")) {
    char msg[160];
    snprintf(msg, sizeof msg,
             "resource show: TYPE is sql, kv or blob, got '%.32s'", type);
    return cli_usage_error(msg,
                           "usage: nno resource show PLATFORM TYPE "
                           "STACK-NAME (e.g. sql default-auth)");
  }
  const char *dash = strchr(name, '-');
  if (!dash || dash == name || !dash[1])
    return cli_usage_error(
        "resource show: the resource is named "
        "STACK-NAME",
        "e.g. default-auth: the sql resource \"auth\" of "
        "stack \"default\" ('nno resource list' shows "
        "them)");
  if (cli_path(path, sizeof path, "/platforms/%s/resources/%s/%s", a->pos[0],
               type, name))
    return cli_too_long();
  return cli_single(c, "GET", path, NULL);
}

/* -- the command table ----------------------------------------------------- */

/* clang-format off */
static const cli_command commands[] = {
    {"resource", "list", 1, 1, {"limit=", "all"},
     "resource list PLATFORM [--limit N | --all]",
     "Lists the resources of PLATFORM (sql, kv, blob: made when a stack is\n"
     "activated) with their state and size, and the platform's quota use.\n\n"
     LIST_OPTS,
     resource_list,
     "  nno resource list acme\n", NULL, NULL},
    {"resource", "show", 3, 3, {0}, "resource show PLATFORM TYPE STACK-NAME",
     "Shows one resource of PLATFORM: TYPE is sql, kv or blob, STACK-NAME\n"
     "the stack and the resource's name (e.g. sql default-auth).\n",
     resource_show,
     "  nno resource show acme sql default-auth\n", NULL, NULL},
};
/* clang-format on */

const cli_group cli_group_resource = {
    "resource", "list, show the resources of a platform", commands,
    sizeof commands / sizeof commands[0]};
