/* The device-code flow (RFC 8628) that `nno login` uses, and the end of a
 * login (`nno logout`):
 *
 *   POST   /api/v1/device/code     public   {platform} -> a device code
 *          (the client's secret) and a user code (what a person types)
 *   GET    /api/v1/device/pending  authenticated  ?user_code= -> what
 *          approving would give (platform, scopes, expiry, the client's
 *          address), never the device code
 *   POST   /api/v1/device/approve  authenticated  {user_code}
 *   POST   /api/v1/device/deny     authenticated  {user_code}
 *   POST   /api/v1/device/token    public   {device_code, client?} -> 400
 *          with "error": authorization_pending | slow_down | expired_token |
 *          access_denied, or 200 once with a new API key of the platform
 *          (named "login {client} {date}") and the platform's class
 *   DELETE /api/v1/keys/self       authenticated  a key revokes itself
 *          (also while its platform is suspended: policy.c lets it by)
 *
 * Codes are bounded per client address (code_addr_limit, an IPv6 one by
 * its /56); a platform's pending codes by a high backstop
 * (device_pending_max), where the client group holding the most gives up
 * its oldest code to a newcomer.
 *
 * Approving is for the operator, or a key or session of the code's
 * platform that is not bound to a tenant and holds keys:write. The key
 * given holds what the approver holds of DEVICE_SCOPES, for 30 days at
 * most (no longer than the approver's credential), and is revoked with
 * it like any key it made.
 *
 * A person approves in a browser: verification_uri is the page
 * GET /device on the platform's console host, which the console package
 * serves; its GET /console/device and POST /console/device/approve|deny
 * call iam_device_answer() through the nno.iam service, so the same code
 * decides for the core routes and for the console's.
 *
 * Codes live in core.db (iam_device_codes): the device code by its
 * SHA-256 only, compared again in constant time; a code is given out
 * once (state 'used'); expired codes are swept when new ones are made. */
#include <arpa/inet.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>

#include <jansson.h>
#include <nno/sdk.h>
#include <sodium.h>

#include "internal.h"

/* What a login key may hold at most: a developer's deploy and features. */
#define DEVICE_SCOPES \
  "features:* stacks:deploy stacks:read stacks:write logs:read"
#define DEVICE_KEY_LIFE (30LL * 86400)
/* RFC 8628's alphabet for user codes: consonants only, no 0/O, 1/I/L. */
static const char UC_ALPHABET[] = "BCDFGHJKMNPQRSTVWXZ";
#define DEVICE_CODE_LEN 43 /* 32 bytes, base64url without padding */

/* ---- answers ------------------------------------------------------------- */

/* A 400 problem carrying RFC 8628's "error" word. Returns NNO_OK. */
static int device_error(nno_req *req, const char *error, const char *detail) {
  nno_str rid = api->req_id(req);
  json_t *o =
      json_pack("{s:s, s:s, s:i, s:s, s:s, s:s%}", "type", "about:blank",
                "title", "Bad Request", "status", 400, "detail", detail,
                "error", error, "request_id", rid.ptr ? rid.ptr : "", rid.len);
  char *text = o ? json_dumps(o, JSON_COMPACT) : NULL;
  json_decref(o);
  if (!text) return nno_problem(req, 500, NULL, "out of memory");
  api->res_status(req, 400);
  api->res_header(req, "Content-Type", "application/problem+json");
  api->res_header(req, "Cache-Control", "no-store");
  api->res_write(req, text, strlen(text));
  free(text);
  return NNO_OK;
}

static int map_sql(int rc) {
  return rc == SQLITE_BUSY || rc == SQLITE_LOCKED ? IAM_BUSY : IAM_ERR;
}

/* The page where a person approves codes of platform `plat`:
 * http://console.{plat}.{base}{:port}/device, with the port the request
 * came to (from its Host header). */
static void host_port(nno_req *req, const char **port, int *plen) {
  nno_str host = {0};
  *port = "";
  *plen = 0;
  if (api->req_header(req, "Host", &host) == NNO_OK && host.len <= 255) {
    /* An IPv6 literal has colons of its own; its port follows "]". */
    const char *b = memchr(host.ptr, ']', host.len);
    const char *from = b ? b : host.ptr;
    const char *c = memchr(from, ':', host.len - (size_t)(from - host.ptr));
    if (c && host.len - (size_t)(c - host.ptr) <= 6) {
      *port = c;
      *plen = (int)(host.len - (size_t)(c - host.ptr));
      for (int i = 1; i < *plen; i++)
        if ((*port)[i] < '0' || (*port)[i] > '9') *plen = 0;
      if (*plen < 2) *plen = 0; /* ":" alone names no port */
    }
  }
}

static void page_url(nno_req *req, const char *plat, char *out, size_t cap) {
  const char *port;
  int plen;
  host_port(req, &port, &plen);
  snprintf(out, cap, "http://console.%s.%s%.*s/device", plat,
           api->host_base_domain(g_iam.p), plen, port);
}

/* A decision authenticated by the session cookie (not by a bearer token)
 * must come from the console host's own origin, http(s)://console.{plat}.
 * {base}{:port}: the cookie is sent by the browser from any host of the
 * platform, and a decision makes a key. 0, or -1 after answering 403. */
static int cookie_origin_ok(nno_req *req, const nno_caller *c,
                            const char *plat) {
  nno_str v;
  if (c->kind != NNO_CALLER_USER ||
      api->req_header(req, "Authorization", &v) == NNO_OK)
    return 0;
  const char *port;
  int plen;
  char want[320];
  host_port(req, &port, &plen);
  int n = snprintf(want, sizeof want, "console.%s.%s%.*s", plat,
                   api->host_base_domain(g_iam.p), plen, port);
  if (n > 0 && (size_t)n < sizeof want &&
      api->req_header(req, "Origin", &v) == NNO_OK) {
    size_t skip = v.len > 8 && strncasecmp(v.ptr, "https://", 8) == 0 ? 8
                  : v.len > 7 && strncasecmp(v.ptr, "http://", 7) == 0 ? 7
                                                                       : 0;
    if (skip && v.len - skip == (size_t)n &&
        strncasecmp(v.ptr + skip, want, (size_t)n) == 0)
      return 0;
  }
  nno_problem(req, 403, NULL,
              "a device login is approved or denied with the session cookie "
              "only from the console's own page (Origin http://%s); send "
              "the token as \"Authorization: Bearer\" otherwise",
              want);
  return -1;
}

/* ---- codes --------------------------------------------------------------- */

/* "XXXX-XXXX" from UC_ALPHABET. */
static void user_code_new(char out[10]) {
  for (int i = 0; i < 9; i++)
    out[i] =
        i == 4 ? '-' : UC_ALPHABET[randombytes_uniform(sizeof UC_ALPHABET - 1)];
  out[9] = '\0';
}

/* A typed user code into "XXXX-XXXX": upper case, dashes and spaces
 * dropped. 0, or -1 when it cannot be one. */
static int user_code_norm(const char *in, char out[10]) {
  size_t n = 0;
  for (const char *p = in; *p; p++) {
    char ch = *p;
    if (ch == '-' || ch == ' ') continue;
    if (ch >= 'a' && ch <= 'z') ch = (char)(ch - 'a' + 'A');
    if (!strchr(UC_ALPHABET, ch) || ch == '\0' || n >= 8) return -1;
    out[n < 4 ? n : n + 1] = ch;
    n++;
  }
  if (n != 8) return -1;
  out[4] = '-';
  out[9] = '\0';
  return 0;
}

static int device_code_ok(const char *s) {
  if (!s || strlen(s) != DEVICE_CODE_LEN) return 0;
  for (const char *p = s; *p; p++)
    if (!((*p >= 'a' && *p <= 'z') || (*p >= 'A' && *p <= 'Z') ||
          (*p >= '0' && *p <= '9') || *p == '-' || *p == '_'))
      return 0;
  return 1;
}

/* The client group an address stands for in the device buckets: an
 * IPv6 address by its /56 ("2001:db8:1:200::/56", a usual home
 * allocation: counting per /64 would give one home 256 clients), an IPv4
 * or IPv4-mapped one whole (nno_client_key). */
static void device_client(nno_str a, char *out, size_t cap) {
  char text[INET6_ADDRSTRLEN];
  struct in6_addr a6;
  if (a.len && a.len < sizeof text && memchr(a.ptr, ':', a.len)) {
    memcpy(text, a.ptr, a.len);
    text[a.len] = '\0';
    if (inet_pton(AF_INET6, text, &a6) == 1 && !IN6_IS_ADDR_V4MAPPED(&a6)) {
      const unsigned char *b = a6.s6_addr;
      int w = snprintf(out, cap, "%x:%x:%x:%x::/56", b[0] << 8 | b[1],
                       b[2] << 8 | b[3], b[4] << 8 | b[5], b[6] << 8);
      if (w <= 0 || (size_t)w >= cap) out[0] = '\0';
      return;
    }
  }
  nno_client_key(a.ptr, a.len, out, cap);
}

/* The public routes' own bucket per client address: the gateway sets no
 * limit on a core route that names no platform. 0 allowed, or -1 after
 * answering 429 (503 when the host's table is full). */
static int device_limit(nno_req *req) {
  char key[96], addr[64];
  nno_plan_limits pl = {.size = sizeof pl};
  nno_limit_result r;
  iam_plan_limits("", &pl);
  device_client(api->req_remote_addr(req), addr, sizeof addr);
  int n = snprintf(key, sizeof key, "d:%s", addr);
  if (n <= 0 || (size_t)n >= sizeof key) return 0;
  int rc = api->limit_take(g_iam.p, key, (size_t)n, pl.anonymous.rate,
                           pl.anonymous.burst, 1, &r);
  if (rc) return 0; /* the limiter's own failure does not refuse */
  if (r.allowed) return 0;
  if (iam_limit_table_full(&r))
    nno_problem_retry(req, 503, 1,
                      "the host's rate-limit table is full; try again later");
  else
    nno_problem_retry(req, 429, (r.retry_after_ms + 999) / 1000,
                      "too many device-code requests from this address; "
                      "retry in %llu s",
                      (unsigned long long)((r.retry_after_ms + 999) / 1000));
  return -1;
}

/* The codes one client address may ask for: device_codes_per_addr per
 * device_codes_window_s, across platforms ("dc:{address, an IPv6 one by
 * its /56}"). This, not the per-platform backstop, is what keeps a client
 * without credentials from filling a platform's pending codes and so
 * blocking its logins. 0 allowed, or -1 after answering 429 (503 when the
 * host's table is full). */
static int code_addr_limit(nno_req *req) {
  char key[96], addr[64];
  nno_limit_result r;
  device_client(api->req_remote_addr(req), addr, sizeof addr);
  int n = snprintf(key, sizeof key, "dc:%s", addr);
  if (n <= 0 || (size_t)n >= sizeof key) return 0;
  double rate = (double)g_iam.cfg.device_codes_per_addr /
                (double)g_iam.cfg.device_codes_window_s;
  int rc = api->limit_take(g_iam.p, key, (size_t)n, rate,
                           (uint32_t)g_iam.cfg.device_codes_per_addr, 1, &r);
  if (rc) return 0; /* the limiter's own failure does not refuse */
  if (r.allowed) return 0;
  unsigned long long wait = (r.retry_after_ms + 999) / 1000;
  if (iam_limit_table_full(&r))
    nno_problem_retry(req, 503, 1,
                      "the host's rate-limit table is full; try again later");
  else
    nno_problem_retry(req, 429, wait ? wait : 1,
                      "this address asked for %lld device codes within %lld "
                      "s, the most allowed; retry in %llu s",
                      (long long)g_iam.cfg.device_codes_per_addr,
                      (long long)g_iam.cfg.device_codes_window_s,
                      wait ? wait : 1);
  return -1;
}

static int code_create(nno_req *req, void *ud) {
  (void)ud;
  static const nno_field fields[] = {NNO_FIELD("platform", NNO_FIELD_ANY, 0)};
  json_t *b = NULL;
  char plat[IAM_ID_MAX], st[16];
  if (device_limit(req) || nno_body_object(req, 4096, 0, &b)) return NNO_OK;
  const char *unknown = nno_fields_unknown(b, fields, 1);
  const char *p = json_string_value(json_object_get(b, "platform"));
  if (unknown) {
    nno_problem(req, 422, NULL, "unknown field \"%.64s\"", unknown);
    goto done;
  }
  if (!p || !nno_id_valid(p, strlen(p), 1, IAM_ID_MAX - 1)) {
    nno_problem(req, 422, NULL, "platform: required, a platform id");
    goto done;
  }
  /* Before the platform is looked up: asking about platforms that do not
   * exist costs the same. */
  if (code_addr_limit(req)) goto done;
  snprintf(plat, sizeof plat, "%s", p);
  if (!g_iam.reg || g_iam.reg->platform_status(plat, st, sizeof st) != NNO_OK ||
      strcmp(st, "active") != 0) {
    nno_problem(req, 404, NULL, "no active platform \"%s\"", plat);
    goto done;
  }
  unsigned char raw[32], hash[32];
  char code[DEVICE_CODE_LEN + 1], uc[10];
  randombytes_buf(raw, sizeof raw);
  sodium_bin2base64(code, sizeof code, raw, sizeof raw,
                    sodium_base64_VARIANT_URLSAFE_NO_PADDING);
  sodium_memzero(raw, sizeof raw);
  crypto_hash_sha256(hash, (const unsigned char *)code, DEVICE_CODE_LEN);
  int64_t now = iam_now();
  nno_str addr = api->req_remote_addr(req);
  sqlite3 *db = g_iam.db;
  sqlite3_stmt *s = NULL;
  int rc = iam_store_begin(db), inserted = 0;
  /* Sweep codes past their expiry (and given-out ones), then count what is
   * pending for the platform, under the write lock. */
  if (!rc) {
    char sql[128];
    snprintf(sql, sizeof sql,
             "DELETE FROM iam_device_codes WHERE expires_at <= %lld OR "
             "state = 'used'",
             (long long)now);
    rc = sqlite3_exec(db, sql, NULL, NULL, NULL) == SQLITE_OK
             ? 0
             : map_sql(sqlite3_errcode(db));
  }
  int64_t pending = 0;
  if (!rc) {
    rc = sqlite3_prepare_v2(db,
                            "SELECT count(*) FROM iam_device_codes WHERE "
                            "platform_id = ? AND expires_at > ?",
                            -1, &s, NULL);
    if (rc == SQLITE_OK) {
      sqlite3_bind_text(s, 1, plat, -1, SQLITE_STATIC);
      sqlite3_bind_int64(s, 2, now);
      if (sqlite3_step(s) == SQLITE_ROW) pending = sqlite3_column_int64(s, 0);
      rc = 0;
    } else {
      rc = map_sql(rc);
    }
    sqlite3_finalize(s);
  }
  /* At the bound: the group holding the most pending codes of the
   * platform (the asker's own on a tie) gives up its oldest, so that a
   * flood from one group evicts itself instead of locking others out. */
  char group[64];
  device_client(addr, group, sizeof group);
  if (!rc && pending >= g_iam.cfg.device_pending_max) {
    rc = sqlite3_prepare_v2(
        db,
        "DELETE FROM iam_device_codes WHERE code_sha256 = ("
        " SELECT code_sha256 FROM iam_device_codes WHERE platform_id = ?1"
        " AND expires_at > ?2 AND state = 'pending' AND"
        " coalesce(client_group, '') = (SELECT coalesce(client_group, '') g"
        "  FROM iam_device_codes WHERE platform_id = ?1 AND expires_at > ?2"
        "  AND state = 'pending' GROUP BY g"
        "  ORDER BY count(*) DESC, g = ?3 DESC LIMIT 1)"
        " ORDER BY created_at, code_sha256 LIMIT 1)",
        -1, &s, NULL);
    if (rc == SQLITE_OK) {
      sqlite3_bind_text(s, 1, plat, -1, SQLITE_STATIC);
      sqlite3_bind_int64(s, 2, now);
      sqlite3_bind_text(s, 3, group, -1, SQLITE_STATIC);
      rc = sqlite3_step(s);
      rc = rc == SQLITE_DONE ? 0 : map_sql(rc);
      if (!rc && sqlite3_changes(db) == 1) pending--;
    } else {
      rc = map_sql(rc);
    }
    sqlite3_finalize(s);
    s = NULL;
    if (!rc && pending < g_iam.cfg.device_pending_max)
      api->log(g_iam.p, NNO_LOG_INFO,
               "platform %s at %lld pending device codes: evicted the "
               "oldest of the client group holding the most",
               plat, (long long)g_iam.cfg.device_pending_max);
  }
  if (!rc && pending >= g_iam.cfg.device_pending_max) {
    /* Nothing pending to evict (all decided, waiting to be fetched). */
    iam_store_rollback(db);
    nno_problem_retry(req, 429, (unsigned long long)g_iam.cfg.device_ttl_s,
                      "platform %s has %lld pending device codes (at most "
                      "%lld): approve, deny or let some expire",
                      plat, (long long)pending,
                      (long long)g_iam.cfg.device_pending_max);
    goto done;
  }
  /* A user code may collide with a pending one: draw again. */
  for (int tries = 0; !rc && !inserted && tries < 8; tries++) {
    user_code_new(uc);
    rc =
        sqlite3_prepare_v2(db,
                           "INSERT OR IGNORE INTO iam_device_codes(code_sha256,"
                           " user_code, platform_id, created_at, expires_at,"
                           " client_addr, client_group)"
                           " VALUES (?, ?, ?, ?, ?, ?, ?)",
                           -1, &s, NULL);
    if (rc != SQLITE_OK) {
      rc = map_sql(rc);
      break;
    }
    sqlite3_bind_blob(s, 1, hash, 32, SQLITE_STATIC);
    sqlite3_bind_text(s, 2, uc, -1, SQLITE_STATIC);
    sqlite3_bind_text(s, 3, plat, -1, SQLITE_STATIC);
    sqlite3_bind_int64(s, 4, now);
    sqlite3_bind_int64(s, 5, now + g_iam.cfg.device_ttl_s);
    if (addr.len >= 1 && addr.len <= 64)
      sqlite3_bind_text(s, 6, addr.ptr, (int)addr.len, SQLITE_STATIC);
    if (group[0]) sqlite3_bind_text(s, 7, group, -1, SQLITE_STATIC);
    rc = sqlite3_step(s);
    rc = rc == SQLITE_DONE ? 0 : map_sql(rc);
    inserted = !rc && sqlite3_changes(db) == 1;
    sqlite3_finalize(s);
  }
  if (!rc && !inserted) rc = IAM_ERR;
  if (!rc) rc = iam_store_commit(db);
  if (rc) {
    iam_store_rollback(db);
    sodium_memzero(code, sizeof code);
    iam_store_fail(req, rc);
    goto done;
  }
  /* RFC 8628 3.2 and 3.3.1: the page, and the page with the code filled
   * in (the user code's alphabet needs no escaping). */
  char uri[384], full[400];
  page_url(req, plat, uri, sizeof uri);
  snprintf(full, sizeof full, "%s?code=%s", uri, uc);
  json_t *out = json_pack(
      "{s:s, s:s, s:s, s:s, s:s, s:I, s:I}", "device_code", code, "user_code",
      uc, "platform", plat, "verification_uri", uri,
      "verification_uri_complete", full, "expires_in",
      (json_int_t)g_iam.cfg.device_ttl_s, "interval",
      (json_int_t)g_iam.cfg.device_interval_s);
  sodium_memzero(code, sizeof code);
  nno_send_json(req, 200, out);
  api->res_header(req, "Cache-Control", "no-store");
done:
  json_decref(b);
  return NNO_OK;
}

/* ---- show, approve and deny ---------------------------------------------- */

static void iso_date(int64_t t, char *out, size_t cap, const char *fmt) {
  struct tm tm;
  time_t tt = (time_t)t;
  gmtime_r(&tt, &tm);
  strftime(out, cap, fmt, &tm);
}

/* What a person deciding a code sees of it. */
typedef struct code_view {
  char platform[IAM_ID_MAX], state[16], addr[65];
  int64_t created, expires;
} code_view;

/* The row of user code `uc` into *v: 1 found, 0 none, or a negative IAM
 * code. */
static int code_find(const char *uc, code_view *v) {
  sqlite3_stmt *s = NULL;
  memset(v, 0, sizeof *v);
  int rc = sqlite3_prepare_v2(g_iam.db,
                              "SELECT platform_id, state, expires_at,"
                              " created_at, client_addr FROM"
                              " iam_device_codes WHERE user_code = ?",
                              -1, &s, NULL);
  if (rc != SQLITE_OK) return map_sql(rc);
  sqlite3_bind_text(s, 1, uc, -1, SQLITE_STATIC);
  rc = sqlite3_step(s);
  int found = 0;
  if (rc == SQLITE_ROW) {
    const unsigned char *t;
    t = sqlite3_column_text(s, 0);
    snprintf(v->platform, sizeof v->platform, "%s", t ? (const char *)t : "");
    t = sqlite3_column_text(s, 1);
    snprintf(v->state, sizeof v->state, "%s", t ? (const char *)t : "");
    v->expires = sqlite3_column_int64(s, 2);
    v->created = sqlite3_column_int64(s, 3);
    t = sqlite3_column_text(s, 4);
    snprintf(v->addr, sizeof v->addr, "%s", t ? (const char *)t : "");
    found = 1;
  } else if (rc != SQLITE_DONE) {
    found = map_sql(rc);
  }
  sqlite3_finalize(s);
  return found;
}

/* No credential: only the console's routes (public, so that the operator
 * key may call them) get here. Returns NNO_OK after answering 401. */
static int sign_in_first(nno_req *req) {
  nno_problem(req, 401, NULL,
              "sign in to the platform's console, or send an operator key "
              "or a key of the platform holding keys:write");
  api->res_header(req, "WWW-Authenticate", "Bearer realm=\"nno\"");
  return NNO_OK;
}

/* Whether `c` may decide codes of platform `plat` (`here`: the console's
 * platform, NULL on the core API): 1 when the code is within its reach,
 * 0 when the code is another platform's (as unknown as a wrong one). */
static int within_reach(const nno_caller *c, const char *plat,
                        const char *here) {
  if (!plat[0] || (here && strcmp(here, plat) != 0)) return 0;
  return c->kind == NNO_CALLER_OPERATOR ||
         (c->platform.len == strlen(plat) &&
          memcmp(c->platform.ptr, plat, c->platform.len) == 0);
}

/* The credential's own right to decide codes: 0, or -1 after answering
 * 403. */
static int may_decide(nno_req *req, const nno_caller *c) {
  if (c->kind == NNO_CALLER_OPERATOR) return 0;
  if (c->kind != NNO_CALLER_KEY && c->kind != NNO_CALLER_USER) {
    nno_problem(req, 403, NULL,
                "only the operator or a platform admin decides device codes");
    return -1;
  }
  if (c->tenant.len) {
    nno_problem(req, 403, NULL,
                "a tenant-bound credential cannot decide device codes: "
                "they give keys of the whole platform");
    return -1;
  }
  if (!iam_scope_covers(c->scopes.ptr, c->scopes.len, "keys:write")) {
    nno_problem(req, 403, NULL,
                "deciding a device code needs the scope \"keys:write\"");
    return -1;
  }
  return 0;
}

/* Append scope `one` to the list `out` unless it is there already. 0, or
 * -1 when it does not fit. */
static int scope_add(char *out, size_t cap, const char *one, size_t n) {
  size_t have = strlen(out);
  for (const char *p = out; *p;) {
    const char *q = strchr(p, ' ');
    size_t m = q ? (size_t)(q - p) : strlen(p);
    if (m == n && memcmp(p, one, n) == 0) return 0;
    p += m + (q ? 1 : 0);
  }
  if (have + (have ? 1 : 0) + n + 1 > cap) return -1;
  if (have) out[have++] = ' ';
  memcpy(out + have, one, n);
  out[have + n] = '\0';
  return 0;
}

/* The scopes a key approved by `c` would hold, into `out` (cap
 * IAM_SCOPES_MAX): 0, or -1 when it would hold none. One rule for every
 * approver, the operator included (who holds them all): each scope of
 * DEVICE_SCOPES that the approver's scopes cover, as DEVICE_SCOPES names
 * it ("stacks:write" held gives both "stacks:read" and "stacks:write"),
 * then each narrower scope the approver holds within one of them
 * ("features:shop:read" under "features:*"). */
static int login_scopes(const nno_caller *c, char *out, size_t cap) {
  const char *held = "";
  size_t hlen = 0;
  if (c->kind == NNO_CALLER_OPERATOR)
    held = "*", hlen = 1;
  else if (c->scopes.ptr)
    held = c->scopes.ptr, hlen = c->scopes.len;
  out[0] = '\0';
  for (int pass = 0; pass < 2; pass++) {
    const char *p = pass ? held : DEVICE_SCOPES;
    const char *end = pass ? held + hlen : p + strlen(p);
    while (p < end) {
      while (p < end && *p == ' ') p++;
      const char *q = p;
      while (q < end && *q != ' ') q++;
      size_t n = (size_t)(q - p);
      char one[65];
      if (n && n < sizeof one) {
        memcpy(one, p, n);
        one[n] = '\0';
        int in = pass ? iam_scope_covers(DEVICE_SCOPES, strlen(DEVICE_SCOPES),
                                         one) &&
                            !iam_scope_covers(out, strlen(out), one)
                      : iam_scope_covers(held, hlen, one);
        if (in && scope_add(out, cap, one, n)) {
          out[0] = '\0';
          return -1;
        }
      }
      p = q;
    }
  }
  return out[0] ? 0 : -1;
}

/* GET: what approving user code ?user_code= would give, for the people who
 * may approve it; never the device code. Limited per client address like
 * the public routes, so that codes cannot be guessed through it. */
static int show(nno_req *req, const char *here) {
  nno_caller c;
  nno_str q;
  char uc[10], raw[33], scopes[IAM_SCOPES_MAX];
  code_view v;
  int64_t now = iam_now();
  api->req_caller(req, &c);
  if (c.kind == NNO_CALLER_NONE) return sign_in_first(req);
  if (device_limit(req)) return NNO_OK;
  if (api->req_query_param(req, "user_code", &q) != NNO_OK || q.len == 0 ||
      q.len > 32)
    return nno_problem(req, 422, NULL,
                       "user_code: expected the code the device shows, "
                       "\"XXXX-XXXX\"");
  memcpy(raw, q.ptr, q.len);
  raw[q.len] = '\0';
  if (memchr(q.ptr, '\0', q.len) || user_code_norm(raw, uc))
    return nno_problem(req, 422, NULL,
                       "user_code: expected the code the device shows, "
                       "\"XXXX-XXXX\"");
  int rc = code_find(uc, &v);
  if (rc < 0) return iam_store_fail(req, rc);
  if (rc == 0 || !within_reach(&c, v.platform, here))
    return nno_problem(req, 404, NULL,
                       "no device code \"%s\": check the code the device "
                       "shows, or start again there",
                       uc);
  if (may_decide(req, &c)) return NNO_OK;
  if (strcmp(v.state, "pending") != 0)
    return nno_problem(req, 404, NULL,
                       "device code \"%s\" was already %s: start again on "
                       "the device",
                       uc,
                       strcmp(v.state, "denied") == 0 ? "denied"
                       : strcmp(v.state, "used") == 0 ? "used"
                                                      : "approved");
  if (v.expires <= now)
    return nno_problem(req, 404, NULL,
                       "device code \"%s\" has expired: start again on the "
                       "device",
                       uc);
  int none = login_scopes(&c, scopes, sizeof scopes);
  int64_t kexp = now + DEVICE_KEY_LIFE;
  if (c.kind != NNO_CALLER_OPERATOR) {
    int64_t lim = iam_creator_expiry(&c);
    if (lim && lim < kexp) kexp = lim;
  }
  char exp[32], made[32], kx[32];
  iso_date(v.expires, exp, sizeof exp, "%Y-%m-%dT%H:%M:%SZ");
  iso_date(v.created, made, sizeof made, "%Y-%m-%dT%H:%M:%SZ");
  iso_date(kexp, kx, sizeof kx, "%Y-%m-%dT%H:%M:%SZ");
  json_t *out = json_pack(
      "{s:s, s:s, s:s, s:o, s:b, s:s, s:s, s:I, s:s}", "user_code", uc,
      "platform", v.platform, "state", "pending", "scopes",
      iam_scopes_json(none ? "" : scopes), "approvable", !none, "created_at",
      made, "expires_at", exp, "expires_in", (json_int_t)(v.expires - now),
      "key_expires_at", kx);
  if (out && v.addr[0])
    json_object_set_new(out, "client_addr", json_string(v.addr));
  nno_send_json(req, 200, out);
  api->res_header(req, "Cache-Control", "no-store");
  return NNO_OK;
}

/* POST approve (1) or deny (0) {user_code, platform?}; `here` as for
 * within_reach. */
static int decide(nno_req *req, int approve, const char *here) {
  static const nno_field fields[] = {NNO_FIELD("user_code", NNO_FIELD_ANY, 0),
                                     NNO_FIELD("platform", NNO_FIELD_ANY, 0)};
  json_t *b = NULL;
  nno_caller c;
  char uc[10];
  code_view v;
  int64_t now = iam_now();
  api->req_caller(req, &c);
  if (c.kind == NNO_CALLER_NONE) return sign_in_first(req);
  /* A decision makes (or refuses) a key: JSON only (a cross-site form
   * cannot send it without a preflight), and by cookie only from the
   * console's own page. */
  char cp[IAM_ID_MAX];
  snprintf(cp, sizeof cp, "%.*s",
           c.platform.len < sizeof cp ? (int)c.platform.len : 0,
           c.platform.ptr);
  if (cookie_origin_ok(req, &c, cp)) return NNO_OK;
  if (nno_body_object(req, 4096, NNO_BODY_JSON_TYPE, &b)) return NNO_OK;
  const char *unknown = nno_fields_unknown(b, fields, 2);
  const char *u = json_string_value(json_object_get(b, "user_code"));
  const char *want = json_string_value(json_object_get(b, "platform"));
  json_t *wv = json_object_get(b, "platform");
  if (unknown) {
    nno_problem(req, 422, NULL, "unknown field \"%.64s\"", unknown);
    goto done;
  }
  if (!u || strlen(u) > 32 || user_code_norm(u, uc)) {
    nno_problem(req, 422, NULL,
                "user_code: expected the code the device shows, "
                "\"XXXX-XXXX\"");
    goto done;
  }
  if (wv && !json_is_null(wv) && !want) {
    nno_problem(req, 422, NULL, "platform: expected a platform id");
    goto done;
  }
  int rc = code_find(uc, &v);
  if (rc < 0) {
    iam_store_fail(req, rc);
    goto done;
  }
  const char *plat = v.platform;
  if (!rc || !within_reach(&c, plat, here) || (want && strcmp(want, plat)) ||
      strcmp(v.state, "pending") != 0 || v.expires <= now) {
    nno_problem(req, 404, NULL,
                "no pending device code \"%s\"%s%s: it is wrong, expired or "
                "already decided",
                uc, want ? " for platform " : "", want ? want : "");
    goto done;
  }
  if (may_decide(req, &c)) goto done;
  char scopes[IAM_SCOPES_MAX] = DEVICE_SCOPES;
  iam_key origin;
  memset(&origin, 0, sizeof origin);
  char creator[17] = "";
  int64_t kexp = now + DEVICE_KEY_LIFE;
  if (approve && login_scopes(&c, scopes, sizeof scopes)) {
    nno_problem(req, 403, NULL,
                "the approving credential holds none of the scopes a login "
                "key holds (%s)",
                DEVICE_SCOPES);
    goto done;
  }
  if (approve && c.kind != NNO_CALLER_OPERATOR) {
    iam_key_origin(&c, &origin);
    int64_t lim = iam_creator_expiry(&c);
    if (lim && lim < kexp) kexp = lim;
    if (c.kind == NNO_CALLER_KEY)
      snprintf(creator, sizeof creator, "%.*s", (int)c.subject.len,
               c.subject.ptr);
  }
  sqlite3_stmt *s = NULL;
  rc = sqlite3_prepare_v2(
      g_iam.db,
      approve ? "UPDATE iam_device_codes SET state = 'approved', scopes = ?2,"
                " key_expires = ?3, session_id = ?4, user_id = ?5,"
                " creator_key_id = ?6 WHERE user_code = ?1 AND"
                " state = 'pending' AND expires_at > ?7"
              : "UPDATE iam_device_codes SET state = 'denied' WHERE"
                " user_code = ?1 AND state = 'pending' AND expires_at > ?7",
      -1, &s, NULL);
  if (rc != SQLITE_OK) {
    iam_store_fail(req, map_sql(rc));
    goto done;
  }
  sqlite3_bind_text(s, 1, uc, -1, SQLITE_STATIC);
  if (approve) {
    sqlite3_bind_text(s, 2, scopes, -1, SQLITE_STATIC);
    sqlite3_bind_int64(s, 3, kexp);
    if (origin.session[0])
      sqlite3_bind_text(s, 4, origin.session, -1, SQLITE_STATIC);
    if (origin.user[0]) sqlite3_bind_text(s, 5, origin.user, -1, SQLITE_STATIC);
    if (creator[0]) sqlite3_bind_text(s, 6, creator, -1, SQLITE_STATIC);
  }
  sqlite3_bind_int64(s, 7, now);
  rc = sqlite3_step(s);
  int changed = rc == SQLITE_DONE && sqlite3_changes(g_iam.db) == 1;
  sqlite3_finalize(s);
  if (rc != SQLITE_DONE) {
    iam_store_fail(req, map_sql(rc));
    goto done;
  }
  if (!changed) {
    nno_problem(req, 404, NULL,
                "no pending device code \"%s\": it was decided meanwhile", uc);
    goto done;
  }
  /* The user code's first half only: enough to match it with what the
   * person saw, not enough to replay anything. */
  char half[5];
  memcpy(half, uc, 4);
  half[4] = '\0';
  iam_audit(req, approve ? "device.approve" : "device.deny", plat,
            approve ? json_pack("{s:s, s:o}", "user_code", half, "scopes",
                                iam_scopes_json(scopes))
                    : json_pack("{s:s}", "user_code", half));
  nno_send_json(req, 200,
                json_pack("{s:s, s:s, s:s}", "user_code", uc, "platform", plat,
                          "state", approve ? "approved" : "denied"));
done:
  json_decref(b);
  return NNO_OK;
}

static int code_show(nno_req *req, void *ud) {
  (void)ud;
  return show(req, NULL);
}

static int code_approve(nno_req *req, void *ud) {
  (void)ud;
  return decide(req, 1, NULL);
}

static int code_deny(nno_req *req, void *ud) {
  (void)ud;
  return decide(req, 0, NULL);
}

int iam_device_answer(nno_req *req, int what) {
  char here[IAM_ID_MAX];
  nno_str p = api->req_platform(req);
  if (!p.len || p.len >= sizeof here)
    return nno_problem(req, 404, NULL, "no platform serves this request");
  memcpy(here, p.ptr, p.len);
  here[p.len] = '\0';
  switch (what) {
  case NNO_IAM_DEVICE_SHOW: return show(req, here);
  case NNO_IAM_DEVICE_APPROVE: return decide(req, 1, here);
  case NNO_IAM_DEVICE_DENY: return decide(req, 0, here);
  default: return NNO_EINVAL;
  }
}

/* ---- token --------------------------------------------------------------- */

/* The class of platform `plat` ("platform" or "user_project") from the
 * registry's profile: 0, or -1 when it cannot be told (no registry, an
 * older one, a failure). Reads the database: once per login. */
static int platform_class(const char *plat, char *out, size_t cap) {
  if (!g_iam.reg ||
      g_iam.reg->size < offsetof(nno_registry_v1, platform_profile) +
                            sizeof g_iam.reg->platform_profile ||
      !g_iam.reg->platform_profile)
    return -1;
  char *prof = malloc(NNO_REGISTRY_PROFILE_MAX);
  json_t *j = prof && g_iam.reg->platform_profile(
                          plat, prof, NNO_REGISTRY_PROFILE_MAX) == NNO_OK
                  ? json_loads(prof, 0, NULL)
                  : NULL;
  free(prof);
  const char *c = json_string_value(json_object_get(j, "class"));
  int rc = c && strlen(c) < cap ? 0 : -1;
  if (!rc) snprintf(out, cap, "%s", c);
  json_decref(j);
  return rc;
}

typedef struct device_row {
  unsigned char hash[32];
  char platform[IAM_ID_MAX], state[16], scopes[IAM_SCOPES_MAX];
  char session[17], user[IAM_SUBJECT_MAX], creator[17];
  int64_t expires, polled, key_expires;
} device_row;

static void text_col(sqlite3_stmt *s, int i, char *out, size_t cap) {
  const unsigned char *t = sqlite3_column_text(s, i);
  snprintf(out, cap, "%s", t ? (const char *)t : "");
}

/* The row of `hash`: 1 found, 0 none, or a negative IAM code. */
static int row_get(const unsigned char hash[32], device_row *r) {
  sqlite3_stmt *s = NULL;
  int rc = sqlite3_prepare_v2(
      g_iam.db,
      "SELECT code_sha256, platform_id, state, expires_at, polled_at, scopes,"
      " key_expires, session_id, user_id, creator_key_id FROM"
      " iam_device_codes WHERE code_sha256 = ?",
      -1, &s, NULL);
  if (rc != SQLITE_OK) return map_sql(rc);
  sqlite3_bind_blob(s, 1, hash, 32, SQLITE_STATIC);
  rc = sqlite3_step(s);
  int found = 0;
  if (rc == SQLITE_ROW && sqlite3_column_bytes(s, 0) == 32) {
    memcpy(r->hash, sqlite3_column_blob(s, 0), 32);
    text_col(s, 1, r->platform, sizeof r->platform);
    text_col(s, 2, r->state, sizeof r->state);
    r->expires = sqlite3_column_int64(s, 3);
    r->polled = sqlite3_column_int64(s, 4);
    text_col(s, 5, r->scopes, sizeof r->scopes);
    r->key_expires = sqlite3_column_int64(s, 6);
    text_col(s, 7, r->session, sizeof r->session);
    text_col(s, 8, r->user, sizeof r->user);
    text_col(s, 9, r->creator, sizeof r->creator);
    found = 1;
  } else if (rc != SQLITE_ROW && rc != SQLITE_DONE) {
    found = map_sql(rc);
  }
  sqlite3_finalize(s);
  return found;
}

/* Set the state of `hash` from `from` to `to` (and polled_at when `polled`
 * is not 0): 1 when it changed, 0 when it was not in `from`, or a
 * negative IAM code. */
static int row_move(const unsigned char hash[32], const char *from,
                    const char *to, int64_t polled) {
  sqlite3_stmt *s = NULL;
  int rc = sqlite3_prepare_v2(
      g_iam.db,
      "UPDATE iam_device_codes SET state = ?3,"
      " polled_at = CASE WHEN ?4 = 0 THEN polled_at ELSE ?4 END"
      " WHERE code_sha256 = ?1 AND state = ?2",
      -1, &s, NULL);
  if (rc != SQLITE_OK) return map_sql(rc);
  sqlite3_bind_blob(s, 1, hash, 32, SQLITE_STATIC);
  sqlite3_bind_text(s, 2, from, -1, SQLITE_STATIC);
  sqlite3_bind_text(s, 3, to, -1, SQLITE_STATIC);
  sqlite3_bind_int64(s, 4, polled);
  rc = sqlite3_step(s);
  int n = sqlite3_changes(g_iam.db);
  sqlite3_finalize(s);
  return rc == SQLITE_DONE ? (n == 1) : map_sql(rc);
}

/* The "client" a login names itself by ("user@machine") as it goes into
 * the key's name: at most DEVICE_CLIENT_MAX bytes, each byte outside
 * [A-Za-z0-9._@+-] turned into '_' (a key's name is shown in lists and
 * terminals). "" when none. */
#define DEVICE_CLIENT_MAX 48
static void client_name(const char *in, char *out, size_t cap) {
  size_t n = 0;
  for (; in && in[n] && n < DEVICE_CLIENT_MAX && n + 1 < cap; n++) {
    char ch = in[n];
    int ok = (ch >= 'a' && ch <= 'z') || (ch >= 'A' && ch <= 'Z') ||
             (ch >= '0' && ch <= '9') || ch == '.' || ch == '_' || ch == '@' ||
             ch == '+' || ch == '-';
    out[n] = ok ? ch : '_';
  }
  out[n] = '\0';
}

static int code_token(nno_req *req, void *ud) {
  (void)ud;
  static const nno_field fields[] = {NNO_FIELD("device_code", NNO_FIELD_ANY, 0),
                                     NNO_FIELD("client", NNO_FIELD_ANY, 0)};
  json_t *b = NULL;
  device_row r;
  unsigned char hash[32];
  if (device_limit(req) || nno_body_object(req, 4096, 0, &b)) return NNO_OK;
  const char *unknown = nno_fields_unknown(b, fields, 2);
  const char *code = json_string_value(json_object_get(b, "device_code"));
  json_t *cv = json_object_get(b, "client");
  if (unknown) {
    nno_problem(req, 422, NULL, "unknown field \"%.64s\"", unknown);
    goto done;
  }
  if (!device_code_ok(code)) {
    nno_problem(req, 422, NULL,
                "device_code: expected the code POST /api/v1/device/code "
                "gave");
    goto done;
  }
  if (cv && (!json_is_string(cv) || json_string_length(cv) == 0 ||
             json_string_length(cv) > 255)) {
    nno_problem(req, 422, NULL,
                "client: expected who logs in, \"user@machine\" (1 to 255 "
                "bytes)");
    goto done;
  }
  crypto_hash_sha256(hash, (const unsigned char *)code, DEVICE_CODE_LEN);
  memset(&r, 0, sizeof r);
  int64_t now = iam_now();
  int rc = row_get(hash, &r);
  if (rc < 0) {
    iam_store_fail(req, rc);
    goto done;
  }
  if (rc == 0 || sodium_memcmp(r.hash, hash, 32) != 0 ||
      strcmp(r.state, "used") == 0 || r.expires <= now) {
    device_error(req, "expired_token",
                 "this device code has expired or was already used: start "
                 "again (nno login)");
    goto done;
  }
  if (strcmp(r.state, "denied") == 0) {
    device_error(req, "access_denied", "the request was denied");
    goto done;
  }
  if (strcmp(r.state, "pending") == 0) {
    /* Polled again before the interval: slow down (the poll still counts). */
    int fast = r.polled && now - r.polled < g_iam.cfg.device_interval_s;
    rc = row_move(hash, "pending", "pending", now);
    if (rc < 0) {
      iam_store_fail(req, rc);
      goto done;
    }
    device_error(req, fast ? "slow_down" : "authorization_pending",
                 fast ? "polled faster than the interval: wait longer "
                        "between polls"
                      : "not approved yet: poll again after the interval");
    goto done;
  }
  /* Approved: claim it (one caller wins across workers), then make the key;
   * a failure gives the claim back so that a retry can succeed. */
  rc = row_move(hash, "approved", "used", 0);
  if (rc < 0) {
    iam_store_fail(req, rc);
    goto done;
  }
  if (rc == 0) {
    device_error(req, "expired_token", "this device code was already used");
    goto done;
  }
  iam_key k;
  memset(&k, 0, sizeof k);
  snprintf(k.platform, sizeof k.platform, "%s", r.platform);
  snprintf(k.scopes, sizeof k.scopes, "%s", r.scopes);
  snprintf(k.session, sizeof k.session, "%s", r.session);
  snprintf(k.user, sizeof k.user, "%s", r.user);
  k.expires = r.key_expires;
  char tok[NNO_IAM_TOKEN_MAX], name[96], day[16], who[DEVICE_CLIENT_MAX + 1];
  iso_date(now, day, sizeof day, "%Y-%m-%d");
  client_name(json_string_value(cv), who, sizeof who);
  snprintf(name, sizeof name, "login %s%s%s", who, who[0] ? " " : "", day);
  iam_token_new(IAM_KEY_PREFIX, tok, sizeof tok, k.id, k.hash);
  nno_plan_limits pl = {.size = sizeof pl};
  if (!g_iam.billing || g_iam.billing->platform_limits(k.platform, &pl))
    pl.api_keys = 0;
  uint64_t live = 0;
  rc = iam_store_key_insert_max(g_iam.db, &k, name, r.creator, now, pl.api_keys,
                                &live);
  if (rc) {
    sodium_memzero(tok, sizeof tok);
    if (rc == IAM_NOTFOUND) {
      device_error(req, "access_denied",
                   "the credential that approved this request has ended "
                   "(signed out, revoked or expired)");
      goto done;
    }
    row_move(hash, "used", "approved", 0);
    if (rc == IAM_FULL)
      nno_problem_limit(req, 409, "api_keys", pl.name, (unsigned long long)live,
                        (unsigned long long)pl.api_keys,
                        "platform %s has %llu live API keys; its plan \"%s\" "
                        "allows %llu: revoke one, then poll again",
                        k.platform, (unsigned long long)live, pl.name,
                        (unsigned long long)pl.api_keys);
    else
      iam_store_fail(req, rc);
    goto done;
  }
  iam_committed("key", k.platform, k.id);
  char exp[32];
  iso_date(k.expires, exp, sizeof exp, "%Y-%m-%dT%H:%M:%SZ");
  char url[320];
  nno_str host = {0};
  if (api->req_header(req, "Host", &host) != NNO_OK || host.len > 255)
    host = (nno_str){"", 0};
  snprintf(url, sizeof url, "http://%.*s", (int)host.len, host.ptr);
  json_t *out = json_pack("{s:s, s:s, s:s, s:s, s:o, s:s}", "key", tok,
                          "key_id", k.id, "platform", k.platform, "expires_at",
                          exp, "scopes", iam_scopes_json(k.scopes), "url", url);
  /* The platform's class, so that the client can say at once when the
   * platform takes no deploys (only user_project platforms do). */
  char cls[16];
  if (out && platform_class(k.platform, cls, sizeof cls) == 0)
    json_object_set_new(out, "class", json_string(cls));
  sodium_memzero(tok, sizeof tok);
  nno_send_json(req, 200, out);
  api->res_header(req, "Cache-Control", "no-store");
done:
  json_decref(b);
  return NNO_OK;
}

/* ---- a key revokes itself ------------------------------------------------ */

static int key_self_revoke(nno_req *req, void *ud) {
  (void)ud;
  nno_caller c;
  char plat[IAM_ID_MAX], id[17];
  api->req_caller(req, &c);
  if (c.kind != NNO_CALLER_KEY || c.subject.len != 16 || !c.platform.len ||
      c.platform.len >= IAM_ID_MAX)
    return nno_problem(req, 403, NULL,
                       "only an API key revokes itself here (sessions sign "
                       "out; the operator key is rotated)");
  snprintf(plat, sizeof plat, "%.*s", (int)c.platform.len, c.platform.ptr);
  snprintf(id, sizeof id, "%.*s", (int)c.subject.len, c.subject.ptr);
  size_t made = 0;
  int rc = iam_store_key_revoke(g_iam.db, plat, id, iam_now(), &made);
  if (rc == IAM_NOTFOUND)
    return nno_problem(req, 404, NULL, "no live key \"%s\"", id);
  if (rc) return iam_store_fail(req, rc);
  iam_committed("key", plat, id);
  iam_audit(req, "key.revoke", plat,
            json_pack("{s:s, s:I, s:b}", "key", id, "keys_it_made",
                      (json_int_t)made, "self", 1));
  api->res_status(req, 204);
  return NNO_OK;
}

int iam_device_init(nno_plugin *p) {
  static const struct {
    const char *m, *path;
    nno_handler_fn fn;
  } routes[] = {
      {"POST", "/api/v1/device/code", code_create},
      {"GET", "/api/v1/device/pending", code_show},
      {"POST", "/api/v1/device/approve", code_approve},
      {"POST", "/api/v1/device/deny", code_deny},
      {"POST", "/api/v1/device/token", code_token},
      {"DELETE", "/api/v1/keys/self", key_self_revoke},
  };
  for (size_t i = 0; i < sizeof routes / sizeof *routes; i++) {
    int rc = api->route_add(p, routes[i].m, routes[i].path, routes[i].fn, NULL);
    if (rc) return rc;
  }
  return NNO_OK;
}
