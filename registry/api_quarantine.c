/* Operator API: quarantined packages, and the audit of what the host did
 * on its own (ABI 1.4 host events).
 *
 *   GET    /api/v1/quarantines                                  list
 *   DELETE /api/v1/quarantines/{platform}/{package}/{version}   release
 *
 * The table is the host's (shared by its workers, quarantine_at and
 * quarantine_release); nothing of it is stored here. A new quarantine is
 * audited when the host reports it (on_host_event, in exactly one worker);
 * a release by this API is audited by the request that made it, with its
 * request id. */
#include <stdio.h>
#include <string.h>
#include <time.h>

#include "http_util.h"
#include "internal.h"

/* "2026-12-05T01:02:03.456Z" for unix ms. */
static void iso_ms(uint64_t ms, char out[32]) {
  time_t s = (time_t)(ms / 1000);
  struct tm tm;
  gmtime_r(&s, &tm);
  snprintf(out, 32, "%04d-%02d-%02dT%02d:%02d:%02d.%03dZ", tm.tm_year + 1900,
           tm.tm_mon + 1, tm.tm_mday, tm.tm_hour, tm.tm_min, tm.tm_sec,
           (int)(ms % 1000));
}

static uint64_t now_ms(void) {
  struct timespec ts;
  clock_gettime(CLOCK_REALTIME, &ts);
  return (uint64_t)ts.tv_sec * 1000 + (uint64_t)ts.tv_nsec / 1000000;
}

static json_t *str(nno_str s) {
  return json_stringn(s.ptr, s.len);
}

static json_t *quarantine_json(const nno_quarantine *q, uint64_t now) {
  char since[32], until[32];
  iso_ms(q->since_ms, since);
  iso_ms(q->until_ms, until);
  uint64_t left = q->until_ms > now ? (q->until_ms - now + 999) / 1000 : 0;
  return json_pack(
      "{s:o, s:o, s:o, s:o, s:o, s:o, s:I, s:I, s:s, s:s, s:I}", "platform",
      str(q->platform), "package", str(q->package), "version", str(q->version),
      "stack", str(q->stack), "reason", str(q->reason), "request_id",
      q->request_id.len ? str(q->request_id) : json_null(), "crashes",
      (json_int_t)q->crashes, "level", (json_int_t)q->level, "since", since,
      "until", until, "retry_after_s", (json_int_t)left);
}

static int on_list(nno_req *req, void *ud) {
  (void)ud;
  if (!hu_authorized(req)) return NNO_OK;
  if (!NNO_HAS(api, quarantine_at))
    return nno_problem(req, 501, NULL, "this host has no quarantine");
  json_t *items = json_array();
  if (!items) return nno_problem(req, 500, NULL, "out of memory");
  uint64_t now = now_ms();
  nno_quarantine q;
  /* Bounded by the host's table (its slots and wildcard entries). */
  for (size_t i = 0;; i++) {
    memset(&q, 0, sizeof q);
    q.size = sizeof q;
    int rc = api->quarantine_at(g_reg.p, i, &q);
    if (rc == NNO_ENOENT) break;
    if (rc) {
      json_decref(items);
      return nno_problem(req, 500, NULL, "cannot read the quarantine table: %s",
                         api->err_name(rc));
    }
    if (json_array_append_new(items, quarantine_json(&q, now))) {
      json_decref(items);
      return nno_problem(req, 500, NULL, "out of memory");
    }
  }
  return nno_send_json(req, 200,
                       json_pack("{s:o, s:n}", "items", items, "next_cursor"));
}

/* A package name or version as the host names them: 1..64 bytes of
 * [A-Za-z0-9.+-]. */
static int name_ok(const char *s) {
  size_t n = strlen(s);
  if (n == 0 || n > 64) return 0;
  for (size_t i = 0; i < n; i++) {
    char c = s[i];
    if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') ||
          (c >= '0' && c <= '9') || c == '.' || c == '-' || c == '+'))
      return 0;
  }
  return 1;
}

/* Percent-decode path segment s in place (the CLI encodes every segment,
 * so "*" arrives as "%2A"). 0, or -1 for a bad escape or a NUL byte. */
static int seg_decode(char *s) {
  char *o = s;
  for (; *s; s++) {
    if (*s != '%') {
      *o++ = *s;
      continue;
    }
    int v = 0;
    for (int i = 1; i <= 2; i++) {
      char c = s[i];
      int d = c >= '0' && c <= '9'   ? c - '0'
              : c >= 'a' && c <= 'f' ? c - 'a' + 10
              : c >= 'A' && c <= 'F' ? c - 'A' + 10
                                     : -1;
      if (d < 0) return -1;
      v = v * 16 + d;
    }
    if (v == 0) return -1;
    *o++ = (char)v;
    s += 2;
  }
  *o = '\0';
  return 0;
}

static int on_release(nno_req *req, void *ud) {
  (void)ud;
  char platform[STORE_ID_MAX + 1], package[65], version[65];
  if (!hu_authorized(req)) return NNO_OK;
  if (!NNO_HAS(api, quarantine_release))
    return nno_problem(req, 501, NULL, "this host has no quarantine");
  if (nno_param_copy(req, "platform", platform, sizeof platform) ||
      nno_param_copy(req, "package", package, sizeof package) ||
      nno_param_copy(req, "version", version, sizeof version) ||
      seg_decode(platform) || seg_decode(package) || seg_decode(version) ||
      !(strcmp(platform, "*") == 0 ||
        hu_id_valid(platform, strlen(platform))) ||
      !name_ok(package) || !name_ok(version))
    return nno_problem(req, 404, NULL, "no such quarantine");
  int rc = api->quarantine_release(g_reg.p, platform, package, version);
  if (rc == NNO_ENOENT)
    return nno_problem(req, 404, NULL,
                       "package %s %s is not quarantined on platform %s",
                       package, version, platform);
  if (rc)
    return nno_problem(req, 500, NULL, "cannot release: %s", api->err_name(rc));
  char target[64];
  snprintf(target, sizeof target, "platform:%s", platform);
  json_t *detail =
      json_pack("{s:s, s:s}", "package", package, "version", version);
  rc = detail ? hu_audit(req, "package.release", target, detail) : STORE_ERROR;
  json_decref(detail);
  if (rc)
    api->log(g_reg.p, NNO_LOG_ERROR,
             "package %s %s released on platform %s but not audited", package,
             version, platform);
  api->res_status(req, 204);
  return NNO_OK;
}

void reg_on_host_event(nno_plugin *p, const nno_host_event *ev) {
  (void)p;
  /* A release by the operator API was audited by its request. */
  if (!ev || ev->kind != NNO_HOST_EVENT_QUARANTINE) return;
  char target[64], until[32];
  snprintf(target, sizeof target, "platform:%.*s", (int)ev->platform.len,
           ev->platform.ptr);
  iso_ms(ev->until_ms, until);
  json_t *detail = json_pack(
      "{s:o, s:o, s:o, s:I, s:o, s:s}", "package", str(ev->package), "version",
      str(ev->version), "stack", str(ev->stack), "crashes",
      (json_int_t)ev->crashes, "reason", str(ev->reason), "until", until);
  char *text = detail ? nno_json_text(detail) : NULL;
  json_decref(detail);
  char rid[73];
  snprintf(rid, sizeof rid, "%.*s",
           (int)(ev->request_id.len < 72 ? ev->request_id.len : 72),
           ev->request_id.ptr);
  int rc = text ? store_audit_add(g_reg.db, "host", "package.quarantine",
                                  target, rid[0] ? rid : NULL, text)
                : STORE_ERROR;
  free(text);
  if (rc)
    api->log(g_reg.p, NNO_LOG_ERROR,
             "package %.*s %.*s quarantined on %s, but not audited: %s",
             (int)ev->package.len, ev->package.ptr, (int)ev->version.len,
             ev->version.ptr, target, sqlite3_errmsg(g_reg.db));
}

int api_quarantine_init(nno_plugin *p) {
  int rc = api->route_add(p, "GET", "/api/v1/quarantines", on_list, NULL);
  if (!rc)
    rc = api->route_add(p, "DELETE",
                        "/api/v1/quarantines/{platform}/{package}/{version}",
                        on_release, NULL);
  return rc;
}
