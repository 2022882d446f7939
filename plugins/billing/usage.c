/* Usage reports and the invoice preview, from the hourly buckets:
 *
 *   GET /api/v1/platforms/{platform}/usage             usage:read
 *       ?from=YYYY-MM-DD[THH]&to=YYYY-MM-DD[THH]&by=tenant|package|class|hour
 *   GET /api/v1/platforms/{platform}/invoice/preview   billing:read
 *
 * IAM's AUTHZ stage admits the caller (the operator, or a credential of
 * the platform with the scope). A credential bound to a tenant sees the
 * rows of its subtree only, and nothing that belongs to the whole
 * platform (storage, users, the invoice). Reads billing.db on the loop:
 * point and range queries on the primary key, bounded by the range
 * (366 days at most) and by ROWS_MAX groups. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <jansson.h>
#include <nno/sdk.h>

#include "internal.h"

#define PLAT_MAX 64
#define RANGE_MAX_S (366 * 86400)
#define ROWS_MAX 20000 /* grouped rows read for one report */

static sqlite3 *udb; /* the loop's reader, opened on first use */

/* ---- parameters ---------------------------------------------------------- */

/* "YYYY-MM-DD" or "YYYY-MM-DDTHH" (UTC): the start of that day or hour into
 * *start and its length into *span. -1 when malformed. */
static int parse_when(const char *s, int64_t *start, int64_t *span) {
  int y, mo, d, h = 0, n = 0;
  size_t len = strlen(s);
  if (len == 10) {
    if (sscanf(s, "%4d-%2d-%2d%n", &y, &mo, &d, &n) != 3 || n != 10) return -1;
    *span = 86400;
  } else if (len == 13) {
    if (sscanf(s, "%4d-%2d-%2dT%2d%n", &y, &mo, &d, &h, &n) != 4 || n != 13)
      return -1;
    *span = 3600;
  } else {
    return -1;
  }
  for (size_t i = 0; i < len; i++)
    if (!(s[i] >= '0' && s[i] <= '9') && i != 4 && i != 7 && i != 10) return -1;
  if (s[4] != '-' || s[7] != '-' || (len == 13 && s[10] != 'T')) return -1;
  if (y < 1970 || y > 9999 || mo < 1 || mo > 12 || d < 1 || d > 31 || h < 0 ||
      h > 23)
    return -1;
  struct tm tm = {
      .tm_year = y - 1900, .tm_mon = mo - 1, .tm_mday = d, .tm_hour = h};
  time_t t = timegm(&tm);
  struct tm back;
  gmtime_r(&t, &back);
  if (back.tm_mday != d || back.tm_mon != mo - 1) return -1; /* 2026-02-30 */
  *start = (int64_t)t;
  return 0;
}

/* The {platform} parameter of a known platform: -1 after answering 404. */
static int platform_param(nno_req *req, char *id) {
  if (nno_param_copy(req, "platform", id, PLAT_MAX) ||
      !nno_id_valid(id, strlen(id), 1, PLAT_MAX - 1)) {
    nno_problem(req, 404, NULL, "no such platform");
    return -1;
  }
  char st[16];
  if (g_bill.registry &&
      g_bill.registry->platform_status(id, st, sizeof st) == NNO_ENOENT) {
    nno_problem(req, 404, NULL, "no such platform: %s", id);
    return -1;
  }
  return 0;
}

static int db_ready(nno_req *req) {
  char err[256];
  if (udb || billing_store_open(&udb, err, sizeof err) == 0) return 0;
  api->log(g_bill.p, NNO_LOG_ERROR, "usage: %s", err);
  nno_problem_retry(req, 503, 1, "the usage store cannot be read");
  return -1;
}

/* ---- the tenant filter --------------------------------------------------- */

/* Tenants already judged for one report: a credential bound to `anc`
 * sees a tenant's rows iff the tenant lies in its subtree. */
typedef struct tenant_filter {
  const char *platform;
  char anc[PLAT_MAX]; /* "" : the whole platform */
  struct {
    char id[PLAT_MAX];
    int in;
  } memo[64];
  size_t n, next;
} tenant_filter;

static int tenant_visible(tenant_filter *f, const char *t) {
  if (!f->anc[0]) return 1;
  if (!t[0]) return 0;
  if (strcmp(t, f->anc) == 0) return 1;
  for (size_t i = 0; i < f->n; i++)
    if (strcmp(f->memo[i].id, t) == 0) return f->memo[i].in;
  int in = g_bill.registry &&
           g_bill.registry->tenant_within(f->platform, t, f->anc) == 1;
  size_t i = f->n < 64 ? f->n++ : (f->next++ % 64);
  snprintf(f->memo[i].id, sizeof f->memo[i].id, "%s", t);
  f->memo[i].in = in;
  return in;
}

/* ---- GET /usage ---------------------------------------------------------- */

static const char *const class_names[] = {"admitted", "1xx", "2xx",
                                          "3xx",      "4xx", "5xx"};

/* One group of the report: its ended requests by class (0: admitted). */
typedef struct group {
  char key[PLAT_MAX];
  int64_t hour;
  uint64_t by_class[6];
} group;

static json_t *group_json(const group *g, const char *by, int whole) {
  json_t *o = json_object();
  if (!o) return NULL;
  uint64_t ended = 0;
  for (int c = 1; c <= 5; c++) ended += g->by_class[c];
  if (strcmp(by, "hour") == 0) {
    char when[32];
    billing_rfc3339(g->hour, when, sizeof when);
    json_object_set_new(o, "hour", json_string(when));
  } else if (strcmp(by, "class") != 0) {
    json_object_set_new(o, by, json_string(g->key));
  }
  json_object_set_new(o, "requests", json_integer((json_int_t)ended));
  if (whole && strcmp(by, "hour") == 0)
    json_object_set_new(o, "admitted",
                        json_integer((json_int_t)g->by_class[0]));
  json_t *cl = json_object();
  for (int c = 1; cl && c <= 5; c++)
    json_object_set_new(cl, class_names[c],
                        json_integer((json_int_t)g->by_class[c]));
  json_object_set_new(o, "classes", cl);
  return o;
}

/* Query parameter `name` into out (cap bytes): 0 when absent, 1 when
 * given, -1 after answering 400 naming it: given twice, empty, too long
 * or holding a NUL byte (one status for every bad value). */
static int usage_query(nno_req *req, const char *name, char *out,
                       size_t cap) {
  nno_str q = api->req_query(req), v;
  size_t nl = strlen(name), seen = 0;
  out[0] = '\0';
  for (size_t i = 0; i < q.len;) {
    size_t j = i;
    while (j < q.len && q.ptr[j] != '&') j++;
    size_t k = i;
    while (k < j && q.ptr[k] != '=') k++;
    if (k - i == nl && memcmp(q.ptr + i, name, nl) == 0) seen++;
    i = j + 1;
  }
  if (seen > 1)
    return nno_problem(req, 400, name, "%s: given more than once", name), -1;
  if (api->req_query_param(req, name, &v) != NNO_OK) return 0;
  if (v.len == 0)
    return nno_problem(req, 400, name, "%s: empty (leave it out for the "
                       "default)", name), -1;
  if (v.len >= cap || memchr(v.ptr, '\0', v.len))
    return nno_problem(req, 400, name, "%s: %s", name,
                       v.len >= cap ? "too long" : "contains a NUL byte"),
           -1;
  memcpy(out, v.ptr, v.len);
  out[v.len] = '\0';
  return 1;
}

static int on_usage(nno_req *req, void *ud) {
  (void)ud;
  char platform[PLAT_MAX], from[32], to[32], by[16];
  if (platform_param(req, platform)) return NNO_OK;
  if (usage_query(req, "from", from, sizeof from) < 0 ||
      usage_query(req, "to", to, sizeof to) < 0 ||
      usage_query(req, "by", by, sizeof by) < 0)
    return NNO_OK;
  int64_t now = (int64_t)time(NULL), start, end, span;
  if (!from[0]) {
    start = billing_month_start(now);
  } else if (parse_when(from, &start, &span)) {
    return nno_problem(req, 400, "from",
                       "from: expected a UTC date YYYY-MM-DD or an hour "
                       "YYYY-MM-DDTHH, e.g. 2026-12-01 or 2026-12-01T09");
  }
  if (!to[0]) {
    end = now - now % 3600 + 3600;
  } else if (parse_when(to, &end, &span)) {
    return nno_problem(req, 400, "to",
                       "to: expected a UTC date YYYY-MM-DD or an hour "
                       "YYYY-MM-DDTHH (the day or hour is included)");
  } else {
    end += span;
  }
  if (end <= start)
    return nno_problem(req, 400, "to", "to: the range ends before it starts");
  if (end - start > RANGE_MAX_S)
    return nno_problem(req, 400, "to",
                       "the range spans more than 366 days: ask for less");
  if (!by[0]) snprintf(by, sizeof by, "class");
  const char *col;
  if (strcmp(by, "tenant") == 0)
    col = "tenant";
  else if (strcmp(by, "package") == 0)
    col = "package";
  else if (strcmp(by, "class") == 0)
    col = "''";
  else if (strcmp(by, "hour") == 0)
    col = "hour";
  else
    return nno_problem(req, 400, "by",
                       "by: expected tenant, package, class or hour");
  if (db_ready(req)) return NNO_OK;

  nno_caller c;
  tenant_filter *tf = calloc(1, sizeof *tf);
  if (!tf) return NNO_ENOMEM;
  tf->platform = platform;
  if (api->req_caller(req, &c) == NNO_OK && c.kind != NNO_CALLER_OPERATOR &&
      c.tenant.len && c.tenant.len < sizeof tf->anc) {
    memcpy(tf->anc, c.tenant.ptr, c.tenant.len);
    tf->anc[c.tenant.len] = '\0';
  }
  int whole = tf->anc[0] == '\0';

  char sql[320];
  snprintf(sql, sizeof sql,
           "SELECT %s, tenant, class, sum(requests) FROM usage "
           "WHERE platform = ?1 AND hour >= ?2 AND hour < ?3 "
           "GROUP BY 1, tenant, class ORDER BY 1 LIMIT %d",
           col, ROWS_MAX + 1);
  sqlite3_stmt *st = NULL;
  json_t *rows = json_array(), *out = NULL;
  group g = {0}, totals = {0};
  int have = 0, nrows = 0, rc = sqlite3_prepare_v2(udb, sql, -1, &st, NULL);
  if (rc == SQLITE_OK) {
    sqlite3_bind_text(st, 1, platform, -1, SQLITE_STATIC);
    sqlite3_bind_int64(st, 2, start);
    sqlite3_bind_int64(st, 3, end);
  }
  while (rc == SQLITE_OK && rows && (rc = sqlite3_step(st)) == SQLITE_ROW) {
    rc = SQLITE_OK;
    if (++nrows > ROWS_MAX) break;
    const char *t = (const char *)sqlite3_column_text(st, 1);
    int cls = sqlite3_column_int(st, 2);
    uint64_t n = (uint64_t)sqlite3_column_int64(st, 3);
    if (cls < 0 || cls > 5) continue;
    /* Class 0 (admitted) has no tenant: the whole platform's only. */
    if (cls == 0 ? !whole : !tenant_visible(tf, t ? t : "")) continue;
    if (cls == 0 && strcmp(by, "hour") != 0) {
      totals.by_class[0] += n; /* a tenant's or package's rows: ended */
      continue;
    }
    char key[PLAT_MAX] = "";
    int64_t hour = 0;
    if (strcmp(by, "hour") == 0) {
      hour = sqlite3_column_int64(st, 0);
    } else {
      const char *k = (const char *)sqlite3_column_text(st, 0);
      snprintf(key, sizeof key, "%s", k ? k : "");
    }
    if (have && (strcmp(key, g.key) != 0 || hour != g.hour)) {
      if (strcmp(by, "class") != 0 &&
          json_array_append_new(rows, group_json(&g, by, whole)))
        rc = SQLITE_NOMEM;
      memset(&g, 0, sizeof g);
    }
    have = 1;
    snprintf(g.key, sizeof g.key, "%s", key);
    g.hour = hour;
    g.by_class[cls] += n;
    totals.by_class[cls] += n;
  }
  if (rc == SQLITE_DONE) rc = SQLITE_OK;
  sqlite3_finalize(st);
  if (rc == SQLITE_OK && nrows > ROWS_MAX) {
    json_decref(rows);
    free(tf);
    return nno_problem(req, 422, "to",
                       "the report has more than %d rows: ask for a shorter "
                       "range or another grouping",
                       ROWS_MAX);
  }
  if (rc == SQLITE_OK && have && strcmp(by, "class") != 0 &&
      json_array_append_new(rows, group_json(&g, by, whole)))
    rc = SQLITE_NOMEM;
  if (rc == SQLITE_OK && strcmp(by, "class") == 0)
    for (int k = 1; k <= 5; k++) {
      json_t *o = json_pack("{s:s, s:I}", "class", class_names[k], "requests",
                            (json_int_t)totals.by_class[k]);
      if (json_array_append_new(rows, o)) rc = SQLITE_NOMEM;
    }
  free(tf);
  if (rc != SQLITE_OK || !rows) {
    json_decref(rows);
    api->log(g_bill.p, NNO_LOG_ERROR, "usage: %s", sqlite3_errmsg(udb));
    return nno_problem_retry(req, 503, 1, "the usage store cannot be read");
  }

  /* Storage (the last sample of each resource in the range) and users
   * seen in the range's months: the whole platform's. */
  json_t *storage = json_null(), *users = json_null();
  if (whole) {
    int64_t bytes = 0, n = 0;
    char m0[8], m1[8];
    time_t t0 = (time_t)start, t1 = (time_t)(end - 1);
    struct tm tm;
    gmtime_r(&t0, &tm);
    strftime(m0, sizeof m0, "%Y-%m", &tm);
    gmtime_r(&t1, &tm);
    strftime(m1, sizeof m1, "%Y-%m", &tm);
    rc = sqlite3_prepare_v2(
        udb,
        "SELECT coalesce(sum(bytes), 0) FROM storage_samples s "
        "WHERE platform = ?1 AND hour = (SELECT max(hour) FROM "
        "storage_samples WHERE platform = ?1 AND resource = s.resource AND "
        "hour >= ?2 AND hour < ?3)",
        -1, &st, NULL);
    if (rc == SQLITE_OK) {
      sqlite3_bind_text(st, 1, platform, -1, SQLITE_STATIC);
      sqlite3_bind_int64(st, 2, start);
      sqlite3_bind_int64(st, 3, end);
      if (sqlite3_step(st) == SQLITE_ROW) bytes = sqlite3_column_int64(st, 0);
    }
    sqlite3_finalize(st);
    rc = sqlite3_prepare_v2(udb,
                            "SELECT count(DISTINCT subject) FROM active_users "
                            "WHERE platform = ?1 AND month BETWEEN ?2 AND ?3",
                            -1, &st, NULL);
    if (rc == SQLITE_OK) {
      sqlite3_bind_text(st, 1, platform, -1, SQLITE_STATIC);
      sqlite3_bind_text(st, 2, m0, -1, SQLITE_STATIC);
      sqlite3_bind_text(st, 3, m1, -1, SQLITE_STATIC);
      if (sqlite3_step(st) == SQLITE_ROW) n = sqlite3_column_int64(st, 0);
    }
    sqlite3_finalize(st);
    storage = json_integer(bytes);
    users = json_integer(n);
  }
  char f[32], t[32];
  billing_rfc3339(start, f, sizeof f);
  billing_rfc3339(end, t, sizeof t);
  json_t *tot = json_object();
  uint64_t ended = 0;
  for (int k = 1; k <= 5; k++) ended += totals.by_class[k];
  if (tot) {
    json_object_set_new(tot, "requests", json_integer((json_int_t)ended));
    if (whole)
      json_object_set_new(tot, "admitted",
                          json_integer((json_int_t)totals.by_class[0]));
    for (int k = 1; k <= 5; k++)
      json_object_set_new(tot, class_names[k],
                          json_integer((json_int_t)totals.by_class[k]));
  }
  out =
      json_pack("{s:s, s:s, s:s, s:s, s:o, s:o, s:o, s:o}", "platform",
                platform, "from", f, "to", t, "by", by, "rows", rows, "totals",
                tot, "storage_bytes", storage, "active_users", users);
  return nno_send_json(req, 200, out);
}

/* ---- GET /invoice/preview ------------------------------------------------ */

static int on_preview(nno_req *req, void *ud) {
  (void)ud;
  char platform[PLAT_MAX];
  if (platform_param(req, platform)) return NNO_OK;
  nno_caller c;
  if (api->req_caller(req, &c) == NNO_OK && c.kind != NNO_CALLER_OPERATOR &&
      c.tenant.len)
    return nno_problem(req, 403, NULL,
                       "the invoice belongs to the whole platform: a "
                       "credential bound to a tenant cannot read it");
  if (db_ready(req)) return NNO_OK;
  int64_t now = (int64_t)time(NULL);
  int64_t start = billing_month_start(now), end = billing_month_next(now);
  nno_plan_limits lim = {.size = sizeof lim};
  int have = billing_platform_limits(platform, &lim) == 0;
  char plan[40] = "";
  if (have)
    snprintf(plan, sizeof plan, "%s", lim.name);
  else if (!g_bill.registry ||
           g_bill.registry->platform_plan(platform, plan, sizeof plan))
    snprintf(plan, sizeof plan, "%s", billing_default_plan());
  char price[128] = "";
  if (billing_plan_price(plan, price, sizeof price) != 0) price[0] = '\0';
  uint64_t used = 0;
  if (billing_meter_month(platform, now, &used))
    return nno_problem_retry(req, 503, 1, "the usage store cannot be read");
  uint64_t included = have ? lim.requests_per_month : 0;
  uint64_t overage = included && used > included ? used - included : 0;

  int64_t bytes = 0, users = 0;
  char month[8];
  time_t tt = (time_t)now;
  struct tm tm;
  gmtime_r(&tt, &tm);
  strftime(month, sizeof month, "%Y-%m", &tm);
  sqlite3_stmt *st = NULL;
  if (sqlite3_prepare_v2(udb,
                         "SELECT coalesce(sum(bytes), 0) FROM storage_samples "
                         "s WHERE platform = ?1 AND hour = (SELECT max(hour) "
                         "FROM storage_samples WHERE platform = ?1 AND "
                         "resource = s.resource)",
                         -1, &st, NULL) == SQLITE_OK) {
    sqlite3_bind_text(st, 1, platform, -1, SQLITE_STATIC);
    if (sqlite3_step(st) == SQLITE_ROW) bytes = sqlite3_column_int64(st, 0);
  }
  sqlite3_finalize(st);
  st = NULL;
  if (sqlite3_prepare_v2(udb,
                         "SELECT count(*) FROM active_users WHERE platform = "
                         "?1 AND month = ?2",
                         -1, &st, NULL) == SQLITE_OK) {
    sqlite3_bind_text(st, 1, platform, -1, SQLITE_STATIC);
    sqlite3_bind_text(st, 2, month, -1, SQLITE_STATIC);
    if (sqlite3_step(st) == SQLITE_ROW) users = sqlite3_column_int64(st, 0);
  }
  sqlite3_finalize(st);

  char f[32], t[32];
  billing_rfc3339(start, f, sizeof f);
  billing_rfc3339(end, t, sizeof t);
#define LIMIT_JSON(v) ((v) ? json_integer((json_int_t)(v)) : json_null())
  json_t *out = json_pack(
      "{s:s, s:s, s:o, s:{s:s, s:s}, s:{s:I, s:o, s:I}, s:{s:I, s:o}, "
      "s:{s:I, s:o}}",
      "platform", platform, "plan", plan, "price",
      price[0] ? json_string(price) : json_null(), "period", "start", f, "end",
      t, "requests", "used", (json_int_t)used, "included", LIMIT_JSON(included),
      "overage", (json_int_t)overage, "storage_bytes", "used",
      (json_int_t)bytes, "included", LIMIT_JSON(have ? lim.storage_bytes : 0),
      "users", "active", (json_int_t)users, "included",
      LIMIT_JSON(have ? lim.users : 0));
#undef LIMIT_JSON
  return nno_send_json(req, 200, out);
}

int billing_usage_init(char *err, size_t cap) {
  if (api->route_add(g_bill.p, "GET", "/api/v1/platforms/{platform}/usage",
                     on_usage, NULL) ||
      api->route_add(g_bill.p, "GET",
                     "/api/v1/platforms/{platform}/invoice/preview", on_preview,
                     NULL)) {
    snprintf(err, cap, "usage: cannot add the routes");
    return -1;
  }
  return 0;
}

/* Called from billing_meter_fini: the reader is closed with the rest. */
void billing_usage_fini(void) {
  sqlite3_close_v2(udb);
  udb = NULL;
}
