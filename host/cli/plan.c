/* The operator CLI's plan commands: `nno plan list|show|create|update|
 * delete`,
 * clients of /api/v1/plans (the billing core plugin). Options are checked
 * here only for their shape (numbers, C=R/B); the server checks bounds
 * and answers with the field it refuses. */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "cli.h"

/* -- options into a plan's JSON ------------------------------------------- */

static int bad_value(const char *opt, const char *v, const char *hint) {
  char msg[256];
  snprintf(msg, sizeof msg, "plan: --%s expects %s, got '%.40s'", opt, hint, v);
  return cli_usage_error(msg, "run 'nno plan create --help' for the options");
}

/* A decimal integer 0..2^63-1, the whole string. */
static int parse_u64(const char *s, unsigned long long *out) {
  char *end;
  if (!*s || *s == '-' || *s == '+') return -1;
  errno = 0;
  unsigned long long v = strtoull(s, &end, 10);
  if (errno || *end || v > 0x7fffffffffffffffull) return -1;
  *out = v;
  return 0;
}

/* One "C=R/B" item into rates[C] = {"rate": R, "burst": B}. */
static int parse_rate(const char *item, size_t n, json_t *rates) {
  static const char *const classes[] = {"platform", "key", "user", "anonymous"};
  char buf[96], *eq, *slash, *end;
  if (n >= sizeof buf) return -1;
  memcpy(buf, item, n);
  buf[n] = '\0';
  if (!(eq = strchr(buf, '=')) || !(slash = strchr(eq, '/'))) return -1;
  *eq = *slash = '\0';
  size_t k = 0;
  while (k < 4 && strcmp(buf, classes[k])) k++;
  if (k == 4 || !eq[1] || !slash[1]) return -1;
  errno = 0;
  double rate = strtod(eq + 1, &end);
  if (errno || *end || !(rate >= 0.001)) return -1;
  unsigned long long burst;
  if (parse_u64(slash + 1, &burst) || burst < 1) return -1;
  return json_object_set_new(
             rates, buf,
             json_pack("{s:f, s:I}", "rate", rate, "burst", (json_int_t)burst))
             ? -1
             : 0;
}

/* The options given, as the members of a plan's JSON (a new object), or
 * NULL after printing a usage error. `*n` counts the options given. */
static json_t *plan_body(const cli_args *a, int *n) {
  static const struct {
    const char *opt, *field;
  } nums[] = {{"requests-per-month", "requests_per_month"},
              {"storage-bytes", "storage_bytes"},
              {"users", "users"},
              {"api-keys", "api_keys"},
              {"soft-pct", "soft_pct"},
              {"grace-pct", "grace_pct"},
              {"grace-days", "grace_days"}};
  json_t *b = json_object(), *rates = NULL;
  *n = 0;
  if (!b) return NULL;
  for (size_t i = 0; i < sizeof nums / sizeof *nums; i++) {
    const char *v = cli_opt(a, nums[i].opt);
    unsigned long long u;
    if (!v) continue;
    if (parse_u64(v, &u)) {
      bad_value(nums[i].opt, v, "a whole number");
      goto fail;
    }
    json_object_set_new(b, nums[i].field, json_integer((json_int_t)u));
    (*n)++;
  }
  for (int i = 0; i < a->nopt; i++) {
    if (strcmp(a->opt[i].name, "rate=+")) continue;
    const char *v = a->opt[i].value;
    if (!rates && !(rates = json_object())) goto fail;
    for (const char *p = v;;) {
      size_t len = strcspn(p, ",");
      if (parse_rate(p, len, rates)) {
        bad_value("rate", v,
                  "CLASS=RATE/BURST items separated by commas (CLASS: "
                  "platform, key, user or anonymous; RATE at least 0.001 "
                  "a second; e.g. key=50/100)");
        goto fail;
      }
      if (!p[len]) break;
      p += len + 1;
    }
    (*n)++;
  }
  if (rates) json_object_set_new(b, "rates", rates);
  rates = NULL;
  const char *price = cli_opt(a, "price");
  if (price) {
    json_object_set_new(b, "provider_price", json_string(price));
    (*n)++;
  }
  return b;
fail:
  json_decref(rates);
  json_decref(b);
  return NULL;
}

/* -- output ---------------------------------------------------------------- */

/* "R/s, burst B" for a bucket of the plan's JSON. */
static json_t *rate_text(const json_t *r) {
  char s[96];
  snprintf(s, sizeof s, "%.10g/s, burst %lld",
           json_number_value(json_object_get(r, "rate")),
           (long long)json_integer_value(json_object_get(r, "burst")));
  return json_string(s);
}

/* A plan as shown: the rates flattened into one line each. */
static json_t *plan_view(const json_t *p) {
  json_t *v = json_object();
  const char *k;
  json_t *m;
  json_object_foreach((json_t *)p, k, m) {
    if (strcmp(k, "rates") == 0) {
      const char *rk;
      json_t *rv;
      json_object_foreach(m, rk, rv) {
        char key[48];
        snprintf(key, sizeof key, "rate.%s", rk);
        json_object_set_new(v, key, rate_text(rv));
      }
    } else {
      json_object_set(v, k, m);
    }
  }
  return v;
}

/* Print a 2xx plan answer: as sent (--json) or as key: value lines. */
static int print_plan(cli *c, const cli_resp *r) {
  json_error_t err;
  json_t *p = json_loadb(r->body, r->len, 0, &err);
  if (!json_is_object(p)) {
    json_decref(p);
    fprintf(stderr, "nno: the %ld answer is not a JSON object\n", r->status);
    return CLI_EAPI;
  }
  if (c->json) {
    cli_print_json(stdout, p);
  } else {
    json_t *v = plan_view(p);
    cli_show(stdout, v);
    json_decref(v);
  }
  json_decref(p);
  return CLI_OK;
}

/* -- the commands ---------------------------------------------------------- */

int cli_plan_list(cli *c, const cli_args *a) {
  (void)a;
  json_t *page = NULL;
  int rc = cli_call(c, "GET", "/plans", NULL, NULL, &page, NULL);
  if (rc) return rc;
  json_t *items = json_object_get(page, "items");
  if (!json_is_array(items)) {
    fprintf(stderr, "nno: the answer to GET /api/v1/plans has no \"items\"\n");
    json_decref(page);
    return CLI_EAPI;
  }
  if (c->json) {
    cli_print_json(stdout, items);
  } else {
    static const cli_col cols[] = {{"NAME", "name"},
                                   {"REQUESTS/MONTH", "requests_per_month"},
                                   {"STORAGE", "storage_bytes"},
                                   {"USERS", "users"},
                                   {"KEYS", "api_keys"},
                                   {"PLATFORM RATE", "rate.platform"},
                                   {"KEY RATE", "rate.key"},
                                   {"SOURCE", "source"},
                                   {"DEFAULT", "default"}};
    json_t *rows = json_array();
    size_t i;
    json_t *it;
    json_array_foreach(items, i, it) json_array_append_new(rows, plan_view(it));
    cli_table(stdout, cols, sizeof cols / sizeof *cols, rows);
    json_decref(rows);
  }
  json_decref(page);
  return CLI_OK;
}

int cli_plan_show(cli *c, const cli_args *a) {
  char path[CLI_PATH_MAX];
  cli_resp r;
  if (cli_path(path, sizeof path, "/plans/%s", a->pos[0]))
    return cli_usage_error("plan: the name is too long",
                           "a plan's name is 1 to 32 of [a-z0-9-]");
  int rc = cli_call(c, "GET", path, NULL, NULL, NULL, &r);
  if (rc) return rc;
  rc = print_plan(c, &r);
  cli_resp_free(&r);
  return rc;
}

int cli_plan_create(cli *c, const cli_args *a) {
  int n;
  json_t *b = plan_body(a, &n);
  if (!b) return CLI_EUSAGE;
  json_object_set_new(b, "name", json_string(a->pos[0]));
  cli_resp r;
  int rc = cli_call(c, "POST", "/plans", b, NULL, NULL, &r);
  json_decref(b);
  if (rc) return rc;
  rc = print_plan(c, &r);
  cli_resp_free(&r);
  return rc;
}

int cli_plan_update(cli *c, const cli_args *a) {
  char path[CLI_PATH_MAX], etag[sizeof((cli_resp *)0)->etag];
  int n;
  json_t *b = plan_body(a, &n);
  if (!b) return CLI_EUSAGE;
  if (n == 0) {
    json_decref(b);
    return cli_usage_error("plan update: nothing to change",
                           "pass one or more limits, e.g. --users 5000; see "
                           "'nno plan update --help'");
  }
  if (cli_path(path, sizeof path, "/plans/%s", a->pos[0])) {
    json_decref(b);
    return cli_usage_error("plan: the name is too long",
                           "a plan's name is 1 to 32 of [a-z0-9-]");
  }
  cli_resp r;
  int rc = cli_call(c, "GET", path, NULL, NULL, NULL, &r);
  if (rc) {
    json_decref(b);
    return rc;
  }
  snprintf(etag, sizeof etag, "%s", r.etag);
  cli_resp_free(&r);
  rc = cli_request(c, "PATCH", path, b, etag[0] ? etag : NULL, &r);
  json_decref(b);
  if (rc) return rc;
  if (r.status < 200 || r.status > 299) {
    char msg[256];
    snprintf(msg, sizeof msg,
             "plan %.32s was changed by someone else since it was read; run "
             "the command again",
             a->pos[0]);
    rc = cli_api_error(&r, r.status == 412 ? msg : NULL);
  } else {
    rc = print_plan(c, &r);
  }
  cli_resp_free(&r);
  return rc;
}

static int cli_plan_delete(cli *c, const cli_args *a) {
  char path[CLI_PATH_MAX], done[96];
  if (cli_path(path, sizeof path, "/plans/%s", a->pos[0]))
    return cli_usage_error("plan: the name is too long",
                           "a plan's name is 1 to 32 of [a-z0-9-]");
  snprintf(done, sizeof done, "deleted plan %.32s", a->pos[0]);
  return cli_no_content(c, "DELETE", path, done);
}

/* -- the command table ----------------------------------------------------- */

/* clang-format off */
static const cli_command commands[] = {
    {"plan", "list", 0, 0, {0}, "plan list",
     "Lists the plans by name: their limits, where each is set (stored, or\n"
     "config: the host configuration's, read-only) and the default plan.\n",
     cli_plan_list,
     "  nno plan list --json\n", NULL, NULL},
    {"plan", "show", 1, 1, {0}, "plan show NAME",
     "Shows one plan as key: value lines.\n", cli_plan_show,
     "  nno plan show free\n", NULL, NULL},
    {"plan", "create", 1, 1, CLI_PLAN_OPTS,
     "plan create NAME [--requests-per-month N] [--storage-bytes N] "
     "[--users N] [--api-keys N] [--rate C=R/B,...] [--soft-pct N] "
     "[--grace-pct N] [--grace-days N] [--price P]",
     "Creates a plan. Limits not given are the free plan's as first seeded;\n"
     "0 means no limit. Every worker applies it within a second.\n\n"
     CLI_PLAN_OPTS_HELP,
     cli_plan_create,
     "  nno plan create team --requests-per-month 2000000 --users 5000 \\\n"
     "      --api-keys 50 --rate platform=1000/2000,key=200/400\n", NULL, NULL},
    {"plan", "update", 1, 1, CLI_PLAN_OPTS,
     "plan update NAME [--requests-per-month N] [--storage-bytes N] "
     "[--users N] [--api-keys N] [--rate C=R/B,...] [--soft-pct N] "
     "[--grace-pct N] [--grace-days N] [--price P]",
     "Changes a plan, refusing if someone else changed it since it was read\n"
     "(the update is sent with If-Match); options not given keep their\n"
     "value. A plan set by the host configuration is changed there.\n\n"
     CLI_PLAN_OPTS_HELP,
     cli_plan_update,
     "  nno plan update pro --rate key=800/1600 --api-keys 200\n", NULL, NULL},
    {"plan", "delete", 1, 1, {0}, "plan delete NAME",
     "Deletes a plan no platform is on (the server refuses one in use,\n"
     "naming how many platforms are on it, and the free, the default and\n"
     "the host configuration's plans).\n",
     cli_plan_delete,
     "  nno plan delete trial-2025\n", NULL, NULL},
};
/* clang-format on */

const cli_group cli_group_plan = {
    "plan", "list, show, create, update, delete the plans platforms are on",
    commands,
    sizeof commands / sizeof commands[0]};
