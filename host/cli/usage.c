/* `nno usage`: a platform's usage report (GET /platforms/{p}/usage) as a
 * table, JSON (--json) or CSV (--csv). */
#include <stdlib.h>
#include <string.h>

#include "cli.h"

/* The rows with each "classes" member lifted to the row ("2xx": n). */
static json_t *flat_rows(const json_t *rows) {
  json_t *out = json_array();
  size_t i;
  json_t *row;
  json_array_foreach(rows, i, row) {
    json_t *o = json_deep_copy(row);
    json_t *cl = o ? json_object_get(o, "classes") : NULL;
    if (json_is_object(cl)) {
      json_object_update(o, cl);
      json_object_del(o, "classes");
    }
    if (!o || json_array_append_new(out, o)) {
      json_decref(out);
      return NULL;
    }
  }
  return out;
}

int cli_usage_cmd(cli *c, const cli_args *a) {
  const char *plat = cli_opt(a, "platform"), *by = cli_opt(a, "by");
  int csv = cli_opt(a, "csv") != NULL;
  if (!plat)
    return cli_usage_error("usage needs --platform P",
                           "nno usage --platform acme --from 2026-12-01");
  if (csv && c->json)
    return cli_usage_error("--csv and --json do not go together", NULL);
  if (by && strcmp(by, "tenant") && strcmp(by, "package") &&
      strcmp(by, "class") && strcmp(by, "hour"))
    return cli_usage_error("--by takes tenant, package, class or hour", NULL);
  char path[CLI_PATH_MAX];
  if (cli_path(path, sizeof path, "/platforms/%s/usage", plat) ||
      cli_query(path, sizeof path, "from", cli_opt(a, "from")) ||
      cli_query(path, sizeof path, "to", cli_opt(a, "to")) ||
      cli_query(path, sizeof path, "by", by))
    return cli_usage_error("an argument is too long", NULL);
  json_t *v = NULL;
  int rc = cli_call(c, "GET", path, NULL, NULL, &v, NULL);
  if (rc) return rc;
  if (c->json) {
    cli_print_json(stdout, v);
    json_decref(v);
    return CLI_OK;
  }
  const char *b = json_string_value(json_object_get(v, "by"));
  b = b ? b : "class";
  static const cli_col class_cols[] = {{"CLASS", "class"},
                                       {"REQUESTS", "requests"}};
  /* Hour rows (the whole platform's) also carry admitted, the quota's
   * count; tenant and package rows have none. */
  cli_col cols[] = {{"TENANT", "tenant"}, {"REQUESTS", "requests"},
                    {"1XX", "1xx"},       {"2XX", "2xx"},
                    {"3XX", "3xx"},       {"4XX", "4xx"},
                    {"5XX", "5xx"},       {"ADMITTED", "admitted"}};
  size_t n = sizeof cols / sizeof *cols - 1;
  if (strcmp(b, "package") == 0) cols[0] = (cli_col){"PACKAGE", "package"};
  if (strcmp(b, "hour") == 0) cols[0] = (cli_col){"HOUR", "hour"}, n++;
  const cli_col *use = cols;
  if (strcmp(b, "class") == 0) use = class_cols, n = 2;
  json_t *rows = flat_rows(json_object_get(v, "rows"));
  if (!rows) {
    json_decref(v);
    fprintf(stderr, "nno: out of memory\n");
    return CLI_EAPI;
  }
  if (csv) {
    cli_csv(stdout, use, n, rows);
  } else {
    cli_table(stdout, use, n, rows);
    json_t *t = json_object_get(v, "totals");
    char *req = cli_text(json_object_get(t, "requests"));
    char *st = cli_text(json_object_get(v, "storage_bytes"));
    char *us = cli_text(json_object_get(v, "active_users"));
    char *f = cli_text(json_object_get(v, "from"));
    char *to = cli_text(json_object_get(v, "to"));
    printf("\n%s .. %s: %s requests, storage %s bytes, %s active users\n",
           f ? f : "-", to ? to : "-", req ? req : "-", st ? st : "-",
           us ? us : "-");
    free(req), free(st), free(us), free(f), free(to);
  }
  json_decref(rows);
  json_decref(v);
  return CLI_OK;
}

/* -- the command table ----------------------------------------------------- */

/* clang-format off */
static const cli_command commands[] = {
    {"usage", NULL, 0, 0, {"platform=", "from=", "to=", "by=", "csv"},
     "usage --platform P [--from D] [--to D] [--by tenant|package|class|hour] "
     "[--csv]",
     "Shows a platform's requests from the hourly buckets (flushed every\n"
     "few seconds), by status class unless --by says otherwise, with its\n"
     "storage and active users. A table; --json prints the server's JSON,\n"
     "--csv comma-separated rows with a header line.\n\n"
     "  --platform P   the platform (required)\n"
     "  --from D       first day YYYY-MM-DD or hour YYYY-MM-DDTHH, UTC\n"
     "                 (default: the start of this month)\n"
     "  --to D         last day or hour, included (default: now); at most\n"
     "                 366 days after --from\n"
     "  --by B         tenant, package, class or hour\n"
     "  --csv          CSV instead of a table\n",
     cli_usage_cmd,
     "  nno usage --platform acme\n"
     "  nno usage --platform acme --from 2026-12-01 --to 2026-12-31 \\\n"
     "      --by tenant\n"
     "  nno usage --platform acme --from 2026-12-05T09 --by hour \\\n"
     "      --csv\n",
     NULL, NULL},
};
/* clang-format on */

const cli_group cli_group_usage = {
    "usage", "a platform's requests, storage and users (table, JSON, CSV)",
    commands, sizeof commands / sizeof commands[0]};
