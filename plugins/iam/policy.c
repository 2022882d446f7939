/* The gateway hooks of IAM: CORS, authn, authz and rate limiting.
 *
 * Every hook reads memory only: the key table, the session cache, the
 * access table and the registry's platform table. The database is read on
 * a session-cache miss (one indexed point read) and written at most once a
 * minute per active session (the idle expiry moves forward).
 *
 * Route classes, from the route's declared scope (the manifest's "scope"):
 *   "public"         anyone; a bad credential is ignored, not refused
 *   "authenticated"  any valid credential of the platform concerned
 *   core, none       the operator key only
 *   core, "x:y"      the operator, or a key/user of the route's {platform}
 *                    granted "x:y" (and, with {tenant}, within its subtree)
 *   feature, none    a key/user of the platform granted
 *                    "features:{package}:read" (GET, HEAD) or ":write"
 *   feature, "x"     ... granted "features:{package}:x"
 */
#include <stdio.h>
#include <string.h>
#include <strings.h>

#include <sodium.h>

#include "internal.h"

#define SESSION_COOKIE "nno_session"
#define TOUCH_EVERY_S 60

static int streq(nno_str s, const char *z) {
  size_t n = strlen(z);
  return s.len == n && memcmp(s.ptr, z, n) == 0;
}

static int safe_method(nno_str m) {
  return streq(m, "GET") || streq(m, "HEAD") || streq(m, "OPTIONS");
}

/* ---- origins ----------------------------------------------------------------- */

/* 1 if `origin` is "scheme://host[:port]" with a host under the platform's
 * own domain ({platform}.{base} or a name below it). */
static int origin_is_platform(nno_str origin, nno_str platform) {
  const char *p = origin.ptr, *end = origin.ptr + origin.len;
  const char *s = memchr(p, ':', origin.len);
  if (!s || end - s < 3 || s[1] != '/' || s[2] != '/') return 0;
  const char *h = s + 3, *he = h;
  while (he < end && *he != ':' && *he != '/') he++;
  if (he < end && *he == '/') return 0;
  size_t hl = (size_t)(he - h), bl = g_iam.base_len, pl = platform.len;
  /* ... "." platform "." base, or exactly platform "." base */
  if (!bl || hl < pl + 1 + bl) return 0;
  const char *tail = h + hl - bl;
  if (strncasecmp(tail, g_iam.base_domain, bl) != 0 || tail[-1] != '.')
    return 0;
  const char *pid = tail - 1 - pl;
  if (strncasecmp(pid, platform.ptr, pl) != 0) return 0;
  return pid == h || pid[-1] == '.';
}

/* 1 if `origin` may call `platform` with credentials. */
static int origin_allowed(nno_str origin, nno_str platform) {
  if (origin.len == 0 || origin.len > 255) return 0;
  if (origin_is_platform(origin, platform)) return 1;
  const iam_access *a = iam_access_get(platform.ptr, platform.len);
  if (!a) return 0;
  for (size_t i = 0; i < a->norigins; i++)
    if (strlen(a->origins[i]) == origin.len &&
        strncasecmp(a->origins[i], origin.ptr, origin.len) == 0)
      return 1;
  return 0;
}

static int problem(nno_req *r, int status, const char *title,
                   const char *detail) {
  api->res_problem(r, status, title, detail);
  return NNO_DONE;
}

/* ---- CORS ------------------------------------------------------------------ */

/* 1 if `v` is a list of header-name tokens and commas, small enough to
 * echo back. */
static int header_list_ok(nno_str v) {
  if (v.len > 512) return 0;
  for (size_t i = 0; i < v.len; i++) {
    char c = v.ptr[i];
    if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') ||
          (c >= '0' && c <= '9') || c == '-' || c == '_' || c == ',' ||
          c == ' '))
      return 0;
  }
  return 1;
}

static int method_ok(nno_str m) {
  static const char *const ok[] = {"GET",   "HEAD",   "POST",
                                   "PUT",   "PATCH",  "DELETE"};
  for (size_t i = 0; i < sizeof ok / sizeof *ok; i++)
    if (streq(m, ok[i])) return 1;
  return 0;
}

int iam_on_cors(nno_req *req, void *ud) {
  (void)ud;
  iam_refresh();
  nno_str platform = api->req_scope(req);
  if (platform.len == 0) return NNO_OK; /* the core API: no browsers */
  nno_str origin = {0}, rm = {0}, rh = {0};
  /* The answer depends on Origin: caches must know, whatever it says. */
  api->res_header_keep(req, "Vary", "Origin");
  if (api->req_header(req, "Origin", &origin) != NNO_OK) return NNO_OK;
  int allowed = origin_allowed(origin, platform);
  int preflight =
      streq(api->req_method(req), "OPTIONS") &&
      api->req_header(req, "Access-Control-Request-Method", &rm) == NNO_OK;
  char buf[520];
  if (!preflight) {
    if (!allowed) return NNO_OK; /* no CORS headers: the browser blocks */
    snprintf(buf, sizeof buf, "%.*s", (int)origin.len, origin.ptr);
    api->res_header_keep(req, "Access-Control-Allow-Origin", buf);
    api->res_header_keep(req, "Access-Control-Allow-Credentials", "true");
    api->res_header_keep(req, "Access-Control-Expose-Headers",
                         "X-Request-Id, RateLimit-Limit, RateLimit-Remaining, "
                         "RateLimit-Reset, Retry-After");
    return NNO_OK;
  }
  if (!allowed)
    return problem(req, 403, "Forbidden",
                   "this origin may not call this platform (add it to the "
                   "platform's cors_origins)");
  if (!method_ok(rm))
    return problem(req, 403, "Forbidden",
                   "Access-Control-Request-Method is not an allowed method");
  int has_rh =
      api->req_header(req, "Access-Control-Request-Headers", &rh) == NNO_OK;
  if (has_rh && !header_list_ok(rh))
    return problem(req, 403, "Forbidden",
                   "Access-Control-Request-Headers is not a list of header "
                   "names");
  api->res_status(req, 204);
  snprintf(buf, sizeof buf, "%.*s", (int)origin.len, origin.ptr);
  api->res_header(req, "Access-Control-Allow-Origin", buf);
  api->res_header(req, "Access-Control-Allow-Credentials", "true");
  snprintf(buf, sizeof buf, "%.*s", (int)rm.len, rm.ptr);
  api->res_header(req, "Access-Control-Allow-Methods", buf);
  if (has_rh && rh.len) {
    snprintf(buf, sizeof buf, "%.*s", (int)rh.len, rh.ptr);
    api->res_header(req, "Access-Control-Allow-Headers", buf);
  }
  api->res_header(req, "Access-Control-Max-Age", "600");
  api->res_header(req, "Vary",
                  "Access-Control-Request-Method, "
                  "Access-Control-Request-Headers");
  return NNO_DONE;
}

/* ---- sessions ---------------------------------------------------------------- */

static int load_session(const char *id, iam_sess *out) {
  int rc = iam_store_session_get(g_iam.db, id, out);
  if (rc) return -1;
  out->cached_at = iam_now();
  out->touched_at = out->cached_at;
  iam_cache_put(g_iam.sessions, out);
  return 0;
}

int iam_session_check(const char *tok, size_t len, iam_sess *out) {
  char id[17];
  unsigned char h[32];
  if (iam_token_split(tok, len, IAM_SESSION_PREFIX, id)) return -1;
  int64_t now = iam_now();
  iam_sess *s = iam_cache_get(g_iam.sessions, id, now, g_iam.cfg.session_cache_s);
  iam_sess fresh;
  if (!s) {
    if (load_session(id, &fresh)) return -1;
    s = &fresh;
  }
  crypto_hash_sha256(h, (const unsigned char *)tok, len);
  if (sodium_memcmp(h, s->hash, sizeof h) != 0) return -1;
  if (s->expires <= now) return -1;
  if (s->idle_expires <= now) {
    /* Another worker may have moved it forward: ask the database once. */
    if (s != &fresh && load_session(id, &fresh) == 0 &&
        fresh.idle_expires > now && fresh.expires > now)
      s = &fresh;
    else
      return -1;
  }
  if (now - s->touched_at >= TOUCH_EVERY_S) {
    int64_t idle = now + g_iam.cfg.session_idle_s;
    if (idle > s->expires) idle = s->expires;
    if (iam_store_session_touch(g_iam.db, id, idle) == IAM_OK) {
      s->idle_expires = idle;
      s->touched_at = now;
      if (s == &fresh) iam_cache_put(g_iam.sessions, s);
    }
  }
  *out = *s;
  return 0;
}

/* ---- authn ----------------------------------------------------------------- */

/* The session cookie's value, or an empty view. */
static nno_str cookie_token(nno_req *req) {
  nno_str n, v, none = {0};
  for (size_t i = 0; api->req_header_at(req, i, &n, &v) == NNO_OK; i++) {
    if (n.len != 6 || strncasecmp(n.ptr, "Cookie", 6) != 0) continue;
    if (iam_cookie_get(v.ptr, v.len, SESSION_COOKIE, &v)) return v;
  }
  return none;
}

static int route_is_public(nno_req *req) {
  nno_str scope = {0};
  return api->req_route(req, NULL, &scope, NULL) == NNO_OK &&
         streq(scope, "public");
}

static int unauthorized(nno_req *req, const char *detail) {
  api->res_problem(req, 401, "Unauthorized", detail);
  api->res_header(req, "WWW-Authenticate",
                  "Bearer realm=\"nno\", error=\"invalid_token\"");
  return NNO_DONE;
}

/* A browser sends the session cookie on any request to the site: an
 * unsafe method authenticated by the cookie must come from an origin of
 * the platform (or one it lists), else it may be a forged cross-site
 * request. */
static int cookie_request_ok(nno_req *req, nno_str platform) {
  if (safe_method(api->req_method(req))) return 1;
  nno_str origin, site;
  if (api->req_header(req, "Origin", &origin) == NNO_OK)
    return origin_allowed(origin, platform);
  if (api->req_header(req, "Sec-Fetch-Site", &site) == NNO_OK)
    return streq(site, "same-origin") || streq(site, "none");
  return 1; /* not a browser: it chose to send the cookie */
}

int iam_on_authn(nno_req *req, void *ud) {
  (void)ud;
  nno_str v, tok = {0};
  int from_cookie = 0;
  if (api->req_header(req, "Authorization", &v) == NNO_OK) {
    if (iam_bearer_token(v.ptr, v.len, &tok))
      return route_is_public(req)
                 ? NNO_OK
                 : unauthorized(req, "send \"Authorization: Bearer <key>\"");
  } else {
    tok = cookie_token(req);
    from_cookie = tok.len > 0;
  }
  if (tok.len == 0) return NNO_OK; /* anonymous: AUTHZ decides */
  size_t kl = strlen(IAM_KEY_PREFIX), sl = strlen(IAM_SESSION_PREFIX);
  char id[17];
  if (tok.len > kl && memcmp(tok.ptr, IAM_KEY_PREFIX, kl) == 0 &&
      !from_cookie) {
    const iam_key *k = iam_token_split(tok.ptr, tok.len, IAM_KEY_PREFIX, id)
                           ? NULL
                           : iam_keytab_get(g_iam.keys, id);
    unsigned char h[32];
    if (k) crypto_hash_sha256(h, (const unsigned char *)tok.ptr, tok.len);
    if (!k || sodium_memcmp(h, k->hash, sizeof h) != 0 ||
        (k->expires && k->expires <= iam_now()))
      return route_is_public(req)
                 ? NNO_OK
                 : unauthorized(req, "this API key is unknown, revoked or "
                                     "expired");
    int rc = api->req_set_caller(g_iam.p, req, NNO_CALLER_KEY, k->platform,
                                 k->tenant, k->id, k->scopes, NULL);
    return rc ? rc : NNO_OK;
  }
  if (tok.len > sl && memcmp(tok.ptr, IAM_SESSION_PREFIX, sl) == 0) {
    iam_sess s;
    if (iam_session_check(tok.ptr, tok.len, &s))
      return route_is_public(req)
                 ? NNO_OK
                 : unauthorized(req, "this session has ended; sign in again");
    if (from_cookie &&
        !cookie_request_ok(req, (nno_str){s.platform, strlen(s.platform)}))
      return problem(req, 403, "Forbidden",
                     "a cookie-authenticated change must come from an origin "
                     "of the platform");
    int rc = api->req_set_caller(g_iam.p, req, NNO_CALLER_USER, s.platform,
                                 s.tenant, s.user, s.scopes, s.id);
    return rc ? rc : NNO_OK;
  }
  if (!from_cookie && g_iam.reg &&
      g_iam.reg->operator_key_check(tok.ptr, tok.len)) {
    int rc = api->req_set_caller(g_iam.p, req, NNO_CALLER_OPERATOR, NULL, NULL,
                                 "operator", "*", NULL);
    return rc ? rc : NNO_OK;
  }
  if (from_cookie || route_is_public(req)) return NNO_OK;
  return unauthorized(req, "this credential is not a key of this host");
}

/* ---- authz ----------------------------------------------------------------- */

static int forbidden(nno_req *req, const char *fmt, const char *a,
                     const char *b) {
  char detail[256];
  snprintf(detail, sizeof detail, fmt, a, b ? b : "");
  return problem(req, 403, "Forbidden", detail);
}

static int needs_credential(nno_req *req) {
  api->res_problem(req, 401, "Unauthorized",
                   "this route needs a credential: an API key or a session");
  api->res_header(req, "WWW-Authenticate", "Bearer realm=\"nno\"");
  return NNO_DONE;
}

static void zcopy(char *dst, size_t cap, nno_str s) {
  size_t n = s.len < cap - 1 ? s.len : cap - 1;
  if (n) memcpy(dst, s.ptr, n);
  dst[n] = '\0';
}

int iam_on_authz(nno_req *req, void *ud) {
  (void)ud;
  nno_str pattern = {0}, scope = {0}, pkg = {0}, target;
  if (api->req_route(req, &pattern, &scope, &pkg) != NNO_OK) return NNO_OK;
  if (streq(scope, "public")) return NNO_OK;
  nno_caller c;
  if (api->req_caller(req, &c) != NNO_OK || c.kind == NNO_CALLER_NONE)
    return needs_credential(req);
  char need[160], plat[IAM_ID_MAX], cplat[IAM_ID_MAX];
  target = api->req_scope(req);
  int feature = target.len > 0;
  if (feature) {
    if (c.kind == NNO_CALLER_OPERATOR)
      return problem(req, 403, "Forbidden",
                     "the operator key opens the core API only; create a key "
                     "of this platform to call its features");
  } else {
    if (c.kind == NNO_CALLER_OPERATOR) return NNO_OK;
    if (scope.len == 0)
      return problem(req, 403, "Forbidden",
                     "only the operator may call this route");
    if (api->req_param(req, "platform", &target) != NNO_OK) {
      if (streq(scope, "authenticated")) return NNO_OK;
      return problem(req, 403, "Forbidden",
                     "only the operator may call this route");
    }
  }
  zcopy(plat, sizeof plat, target);
  zcopy(cplat, sizeof cplat, c.platform);
  /* A platform's own routes know only its own credentials (401); the core
   * API knows every credential of the host but lets each reach its own
   * platform only (403). */
  if (feature && !streq(c.platform, plat)) {
    api->res_problem(req, 401, "Unauthorized",
                     "this credential belongs to another platform");
    api->res_header(req, "WWW-Authenticate",
                    "Bearer realm=\"nno\", error=\"invalid_token\"");
    return NNO_DONE;
  }
  if (!streq(c.platform, plat))
    return forbidden(req,
                     "a credential of platform \"%s\" cannot reach platform "
                     "\"%s\"",
                     cplat, plat);
  if (streq(scope, "authenticated")) return NNO_OK;
  if (feature) {
    /* "features:" package ":" scope, or read/write by method. */
    nno_str m = api->req_method(req);
    nno_str tail = scope;
    if (!tail.len) {
      int ro = streq(m, "GET") || streq(m, "HEAD");
      tail.ptr = ro ? "read" : "write";
      tail.len = ro ? 4 : 5;
    }
    if (9 + pkg.len + 1 + tail.len >= sizeof need)
      return problem(req, 403, "Forbidden", "the route's scope is too long");
    memcpy(need, "features:", 9);
    if (pkg.len) memcpy(need + 9, pkg.ptr, pkg.len);
    need[9 + pkg.len] = ':';
    memcpy(need + 10 + pkg.len, tail.ptr, tail.len);
    need[10 + pkg.len + tail.len] = '\0';
  } else {
    zcopy(need, sizeof need, scope);
  }
  if (!iam_scope_covers(c.scopes.ptr, c.scopes.len, need))
    return forbidden(req, "this credential lacks the scope \"%s\"%s", need,
                     NULL);
  /* A tenant-bound credential reaches its own subtree only. */
  nno_str tparam;
  if (!feature && c.tenant.len &&
      api->req_param(req, "tenant", &tparam) == NNO_OK) {
    char t[IAM_ID_MAX], anc[IAM_ID_MAX];
    zcopy(t, sizeof t, tparam);
    zcopy(anc, sizeof anc, c.tenant);
    int w = g_iam.reg ? g_iam.reg->tenant_within(plat, t, anc) : NNO_EIO;
    if (w < 0) return w;
    if (w == 0)
      return forbidden(req,
                       "this credential is bound to tenant \"%s\" and cannot "
                       "reach tenant \"%s\"",
                       anc, t);
  }
  return NNO_OK;
}

/* ---- rate limits -------------------------------------------------------------- */

/* Decimal text of v into buf (21 bytes): three of these run on every
 * limited request, where snprintf showed in profiles. */
static const char *u64_text(char buf[21], uint64_t v) {
  char *p = buf + 20;
  *p = '\0';
  do *--p = (char)('0' + v % 10);
  while ((v /= 10) != 0);
  return p;
}

static void limit_headers(nno_req *req, const nno_limit_result *l) {
  char v[21];
  api->res_header_keep(req, "RateLimit-Limit", u64_text(v, l->limit));
  api->res_header_keep(req, "RateLimit-Remaining", u64_text(v, l->remaining));
  api->res_header_keep(req, "RateLimit-Reset",
                       u64_text(v, (l->reset_ms + 999) / 1000));
}

static int too_many(nno_req *req, const nno_limit_result *l, const char *who) {
  char v[32], detail[128];
  unsigned long long s = (l->retry_after_ms + 999) / 1000;
  if (s == 0) s = 1;
  snprintf(detail, sizeof detail, "the %s rate limit is reached; retry in %llu s",
           who, s);
  api->res_problem(req, 429, "Too Many Requests", detail);
  snprintf(v, sizeof v, "%llu", s);
  api->res_header_keep(req, "Retry-After", v);
  return NNO_DONE;
}

int iam_on_limit(nno_req *req, void *ud) {
  (void)ud;
  nno_caller c;
  if (api->req_caller(req, &c) != NNO_OK) c.kind = NNO_CALLER_NONE;
  if (c.kind == NNO_CALLER_OPERATOR) return NNO_OK;
  /* On a platform's routes only its own credentials count: another
   * platform's key or session (let through by a public route) is limited
   * as an anonymous client of this platform, not by its own plan. */
  nno_str target = api->req_scope(req);
  if (c.kind != NNO_CALLER_NONE && target.len &&
      (c.platform.len != target.len ||
       memcmp(c.platform.ptr, target.ptr, target.len) != 0))
    c.kind = NNO_CALLER_NONE;
  nno_str platform = c.kind != NNO_CALLER_NONE ? c.platform : target;
  if (platform.len == 0 || platform.len >= IAM_ID_MAX) return NNO_OK;
  char plat[IAM_ID_MAX], plan[40], key[128];
  zcopy(plat, sizeof plat, platform);
  if (!g_iam.reg || g_iam.reg->platform_plan(plat, plan, sizeof plan) != NNO_OK)
    snprintf(plan, sizeof plan, "%s", g_iam.cfg.plans[g_iam.cfg.default_plan].name);
  const iam_plan *pl = iam_plan_find(&g_iam.cfg, plan);
  double rps;
  uint32_t burst;
  int n;
  const char *who;
  if (c.kind == NNO_CALLER_KEY) {
    n = snprintf(key, sizeof key, "k:%.*s", (int)c.subject.len, c.subject.ptr);
    rps = pl->key_rps, burst = pl->key_burst, who = "API key";
  } else if (c.kind == NNO_CALLER_USER) {
    n = snprintf(key, sizeof key, "u:%s:%.*s", plat, (int)c.subject.len,
                 c.subject.ptr);
    rps = pl->user_rps, burst = pl->user_burst, who = "user";
  } else {
    nno_str a = api->req_remote_addr(req);
    n = snprintf(key, sizeof key, "a:%s:%.*s", plat, (int)a.len, a.ptr);
    rps = pl->anon_rps, burst = pl->anon_burst, who = "anonymous client";
  }
  nno_limit_result one, all;
  int rc = api->limit_take(g_iam.p, key, (size_t)n, rps, burst, 1, &one);
  if (rc) return rc;
  if (!one.allowed) {
    limit_headers(req, &one);
    return too_many(req, &one, who);
  }
  n = snprintf(key, sizeof key, "p:%s", plat);
  rc = api->limit_take(g_iam.p, key, (size_t)n, pl->platform_rps,
                       pl->platform_burst, 1, &all);
  if (rc) return rc;
  /* Report the tighter of the two buckets. */
  const nno_limit_result *shown = all.remaining < one.remaining ? &all : &one;
  limit_headers(req, all.allowed ? shown : &all);
  if (!all.allowed) return too_many(req, &all, "platform");
  return NNO_OK;
}
