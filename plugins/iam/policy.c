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
#include <stddef.h>
#include <stdio.h>
#include <string.h>
#include <strings.h>

#include <arpa/inet.h>
#include <sodium.h>

#include <nno/sdk/request.h>

#include "internal.h"

/* The session cookie on a platform's hosts (host-only, __Host- prefixed)
 * and by path (/p/{platform}); each is read only where it is set. */
#define HOST_SESSION_COOKIE "__Host-nno_session"
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

/* 1 if `origin` is a serialized origin (RFC 6454) of the only shape a
 * browser sends for a web page: "http" or "https", "://", a host of
 * dot-separated non-empty labels of [a-z0-9-] (ASCII letters in either
 * case: compared case-insensitively), and an optional ":" and 1 to 5
 * digits. Anything else (a path, "#", "?", a backslash, "@", "null") is
 * not an origin of any platform. *host is set to the host part. */
static int origin_parse(nno_str origin, nno_str *host) {
  const char *p = origin.ptr, *end = origin.ptr + origin.len;
  if (origin.len > 7 && strncasecmp(p, "http://", 7) == 0)
    p += 7;
  else if (origin.len > 8 && strncasecmp(p, "https://", 8) == 0)
    p += 8;
  else
    return 0;
  const char *h = p;
  int label = 0; /* bytes in the current label */
  for (; p < end && *p != ':'; p++) {
    char c = *p;
    if (c == '.') {
      if (!label) return 0;
      label = 0;
    } else if ((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') ||
               (c >= '0' && c <= '9') || c == '-') {
      label++;
    } else {
      return 0;
    }
  }
  if (!label) return 0; /* empty host, empty or trailing label */
  host->ptr = h;
  host->len = (size_t)(p - h);
  if (p == end) return 1;
  size_t digits = (size_t)(end - ++p);
  if (digits < 1 || digits > 5) return 0;
  for (; p < end; p++)
    if (*p < '0' || *p > '9') return 0;
  return 1;
}

/* 1 if `host` (a parsed origin host) is one of the platform's own names:
 * {platform}.{base} or a name below it, all of which the registry routes
 * to that platform. */
static int host_is_platform(nno_str host, nno_str platform) {
  size_t hl = host.len, bl = g_iam.base_len, pl = platform.len;
  if (!bl || hl < pl + 1 + bl) return 0;
  const char *tail = host.ptr + hl - bl;
  if (strncasecmp(tail, g_iam.base_domain, bl) != 0 || tail[-1] != '.')
    return 0;
  const char *pid = tail - 1 - pl;
  if (strncasecmp(pid, platform.ptr, pl) != 0) return 0;
  return pid == host.ptr || pid[-1] == '.';
}

/* 1 if `origin` may call `platform` with credentials. */
static int origin_allowed(nno_str origin, nno_str platform) {
  nno_str host;
  if (origin.len == 0 || origin.len > 255) return 0;
  if (origin_parse(origin, &host) && host_is_platform(host, platform))
    return 1;
  /* The listed origins were checked when stored (iam api.c): an exact
   * match needs no parse, and keeps an IPv6 literal listed there usable. */
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

/* Read a session and cache it with its effective scopes: those recorded
 * when it opened, narrowed to what the platform's users hold now, so that
 * reducing user_scopes reaches open sessions (a policy change clears the
 * cache on every worker through the changes log). */
static int load_session(const char *id, iam_sess *out) {
  char eff[IAM_SCOPES_MAX];
  int rc = iam_store_session_get(g_iam.db, id, out);
  if (rc) return -1;
  if (iam_scopes_intersect(out->scopes, iam_user_scopes(out->platform), eff,
                           sizeof eff))
    eff[0] = '\0'; /* too long to hold: no scope at all, never more */
  memcpy(out->scopes, eff, sizeof eff);
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

/* Session cookie values tried per request: a page on a sibling host can
 * add its own nno_session for the base domain, which the browser sends
 * beside (often before) the real one, so every value is tried, up to this
 * many. */
#define COOKIES_MAX 4

/* The values of the session cookie, in the order sent, at most `max`;
 * returns how many. On the platform's own hosts only HOST_SESSION_COOKIE
 * counts: the browser refuses a __Host- cookie set by any other host, so
 * no sibling platform or page of the base domain can plant one there (a
 * plain nno_session with Domain={base} could sign a visitor in to an
 * account of the attacker's choosing). Elsewhere (the /p/{platform} form)
 * only SESSION_COOKIE, the one the auth package sets there. */
static size_t cookie_tokens(nno_req *req, nno_str *out, size_t max) {
  const char *name = host_is_platform(api->req_host(req), api->req_scope(req))
                         ? HOST_SESSION_COOKIE
                         : SESSION_COOKIE;
  nno_str n, v;
  size_t k = 0;
  for (size_t i = 0; k < max && api->req_header_at(req, i, &n, &v) == NNO_OK;
       i++) {
    if (n.len != 6 || strncasecmp(n.ptr, "Cookie", 6) != 0) continue;
    k += iam_cookie_values(v.ptr, v.len, name, out + k, max - k);
  }
  return k;
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
 * request. A request that says nothing of where it comes from (neither
 * Origin nor Sec-Fetch-Site) is refused too: every browser sends one of
 * them on an unsafe request, and a client that is not a browser has its
 * token to send as a bearer. COOKIE_OK, or why not. */
enum { COOKIE_OK, COOKIE_FOREIGN, COOKIE_UNSAID };

static int cookie_request_ok(nno_req *req, nno_str platform) {
  if (safe_method(api->req_method(req))) return COOKIE_OK;
  nno_str origin, site;
  if (api->req_header(req, "Origin", &origin) == NNO_OK)
    return origin_allowed(origin, platform) ? COOKIE_OK : COOKIE_FOREIGN;
  if (api->req_header(req, "Sec-Fetch-Site", &site) == NNO_OK)
    return streq(site, "same-origin") || streq(site, "none") ? COOKIE_OK
                                                             : COOKIE_FOREIGN;
  return COOKIE_UNSAID;
}

static int limit_refused(nno_req *req, const nno_limit_result *l,
                         const char *who);
static const iam_plan *plan_of(const char *plat);
static int anon_bucket(nno_req *req, nno_str platform, char *key, size_t cap,
                       double *rps, uint32_t *burst);

/* The platform a request is about, before AUTHZ: its scope (a platform's
 * routes), else the core route's {platform}, else "" (host-wide). */
static nno_str request_platform(nno_req *req) {
  nno_str p = api->req_scope(req);
  if (p.len == 0 && api->req_param(req, "platform", &p) != NNO_OK)
    p = (nno_str){"", 0};
  return p.len < IAM_ID_MAX ? p : (nno_str){"", 0};
}

/* Take `cost` tokens (0: only look) from the anonymous bucket of the
 * request's client: a failed authentication is paid for there, so a flood
 * of bad tokens meets the limit anonymous callers meet. A core route that
 * names no platform (the operator's) has no anonymous limit of its own:
 * there the bucket is host-wide per address ("a::{address}"), as large as
 * the default plan's platform bucket, enough for an operator's mistakes
 * and still a bound on lookups. 1 when refused (*out says why), 0 when
 * allowed, or a negative NNO_E code. */
static int anon_take(nno_req *req, uint32_t cost, nno_limit_result *out) {
  char key[128];
  double rps;
  uint32_t burst;
  nno_str plat = request_platform(req);
  int n = anon_bucket(req, plat, key, sizeof key, &rps, &burst);
  if (n <= 0) return NNO_EINVAL;
  if (plat.len == 0) {
    const iam_plan *pl = plan_of("");
    rps = pl->platform_rps, burst = pl->platform_burst;
  }
  int rc = api->limit_take(g_iam.p, key, (size_t)n, rps, burst, cost, out);
  if (rc == NNO_OK && cost == 0 && out->allowed && out->remaining == 0)
    /* Empty: a take of one is refused, takes nothing and says how long
     * until a token is back (or, refilled meanwhile, spends it). */
    rc = api->limit_take(g_iam.p, key, (size_t)n, rps, burst, 1, out);
  if (rc) return rc;
  return out->allowed ? 0 : 1;
}

/* A credential that does not authenticate: 401, unless the client's
 * anonymous bucket has no token left for it (429, or 503 when the host's
 * table is full). */
static int auth_failed(nno_req *req, const char *detail) {
  nno_limit_result l;
  int rc = anon_take(req, 1, &l);
  if (rc == 1) return limit_refused(req, &l, "anonymous client");
  if (rc < 0)
    api->log(g_iam.p, NNO_LOG_ERROR, "limit_take: %s", api->err_name(rc));
  return unauthorized(req, detail);
}

/* Validate a session token, reading the database on a cache miss only
 * when the client's anonymous bucket still has a token: a flood of unknown
 * tokens must not turn into a flood of reads. 0 valid; -1 unknown or
 * ended; 1 not looked up (*l says why). */
static int session_lookup(nno_req *req, nno_str tok, iam_sess *s,
                          nno_limit_result *l) {
  char id[17];
  if (iam_token_split(tok.ptr, tok.len, IAM_SESSION_PREFIX, id)) return -1;
  if (!iam_cache_get(g_iam.sessions, id, iam_now(),
                     g_iam.cfg.session_cache_s) &&
      anon_take(req, 0, l) == 1)
    return 1;
  return iam_session_check(tok.ptr, tok.len, s) ? -1 : 0;
}

/* After req_set_caller() for a credential bound to `tenant` ("": none):
 * record the tenant's path from the root ("eu/fr"), which packages test
 * rows against with a prefix comparison. A host without the member has no
 * reader of it either, so nothing is recorded there; otherwise the path
 * must be recorded or the credential refused, never left "" (which reads
 * as the whole platform). NNO_OK, or NNO_DONE after answering. */
static int set_tenant_path(nno_req *req, const char *platform,
                           const char *tenant) {
  char path[1024], detail[160];
  if (!tenant[0] || !NNO_HAS(api, req_set_tenant_path) ||
      !api->req_set_tenant_path)
    return NNO_OK;
  const nno_registry_v1 *reg = g_iam.reg;
  if (!reg || reg->size < offsetof(nno_registry_v1, tenant_path) +
                              sizeof reg->tenant_path) {
    api->log(g_iam.p, NNO_LOG_ERROR,
             "the registry gives no tenant paths: tenant-bound credentials "
             "are refused");
    return problem(req, 503, "Service Unavailable",
                   "tenant-bound credentials cannot be checked now");
  }
  int rc = reg->tenant_path(platform, tenant, path, sizeof path);
  if (rc == NNO_ENOENT) {
    snprintf(detail, sizeof detail,
             "tenant \"%s\" of platform %s no longer exists: credentials "
             "bound to it are refused",
             tenant, platform);
    return problem(req, 403, "Forbidden", detail);
  }
  if (rc == NNO_OK) rc = api->req_set_tenant_path(g_iam.p, req, path);
  if (rc == NNO_OK) return NNO_OK;
  api->log(g_iam.p, NNO_LOG_ERROR,
           "cannot record the tenant path of %s/%s: %s", platform, tenant,
           api->err_name(rc));
  return problem(req, 500, "Internal Server Error",
                 "cannot record the credential's tenant path");
}

/* The Nno-Tenant request header: a key or session acts in that tenant of
 * its platform, if it lies in the credential's own subtree (`bound`; any
 * tenant when "") and it and its ancestors are active. Only narrows.
 * NNO_OK with the tenant to act in copied into `out` (IAM_ID_MAX bytes;
 * `bound` when the header is absent or empty), or NNO_DONE after a 403: a
 * tenant unknown or outside the subtree gets the same words (whether a
 * tenant exists elsewhere is not told). */
static int acting_tenant(nno_req *req, const char *platform,
                         const char *bound, char *out) {
  nno_str h = {0};
  char want[IAM_ID_MAX], pw[1024], pb[1024], detail[160];
  snprintf(out, IAM_ID_MAX, "%s", bound);
  if (api->req_header(req, "Nno-Tenant", &h) != NNO_OK || h.len == 0)
    return NNO_OK;
  /* The value as shown: at most 32 bytes, outside [a-z0-9-] as '?'. */
  size_t n = h.len < IAM_ID_MAX - 1 ? h.len : IAM_ID_MAX - 1;
  int valid = h.len >= 2 && h.len <= 32;
  for (size_t i = 0; i < n; i++) {
    char c = h.ptr[i];
    int ok = (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '-';
    valid = valid && ok;
    want[i] = ok ? c : '?';
  }
  want[n] = '\0';
  snprintf(detail, sizeof detail,
           "tenant %s is outside this credential's reach", want);
  if (!valid) return problem(req, 403, "Forbidden", detail);
  const nno_registry_v1 *reg = g_iam.reg;
  if (!reg || reg->size < offsetof(nno_registry_v1, tenant_path) +
                              sizeof reg->tenant_path)
    return problem(req, 503, "Service Unavailable",
                   "tenants cannot be checked now");
  int rc = reg->tenant_path(platform, want, pw, sizeof pw);
  if (rc == NNO_ENOENT) return problem(req, 403, "Forbidden", detail);
  if (rc != NNO_OK) return rc;
  if (bound[0]) {
    rc = reg->tenant_path(platform, bound, pb, sizeof pb);
    if (rc == NNO_ENOENT) return problem(req, 403, "Forbidden", detail);
    if (rc != NNO_OK) return rc;
    size_t bl = strlen(pb);
    if (!(strncmp(pw, pb, bl) == 0 && (pw[bl] == '\0' || pw[bl] == '/')))
      return problem(req, 403, "Forbidden", detail);
  }
  if (reg->tenant_active(platform, want) == 0) {
    snprintf(detail, sizeof detail,
             "tenant %s is suspended (or a tenant above it)", want);
    return problem(req, 403, "Forbidden", detail);
  }
  memcpy(out, want, n + 1);
  return NNO_OK;
}

/* Record a key's or user's credential as the caller, in the tenant it
 * acts in (Nno-Tenant), with that tenant's path. */
static int set_credential(nno_req *req, int kind, const char *platform,
                          const char *tenant, const char *subject,
                          const char *scopes, const char *session) {
  char acting[IAM_ID_MAX];
  int rc = acting_tenant(req, platform, tenant, acting);
  if (rc != NNO_OK) return rc;
  rc = api->req_set_caller(g_iam.p, req, kind, platform, acting, subject,
                           scopes, session);
  return rc ? rc : set_tenant_path(req, platform, acting);
}

static int set_user(nno_req *req, const iam_sess *s) {
  return set_credential(req, NNO_CALLER_USER, s->platform, s->tenant,
                        s->user, s->scopes, s->id);
}

/* The session cookie: the first of its values that is a valid session. */
static int authn_cookie(nno_req *req) {
  nno_str toks[COOKIES_MAX];
  size_t n = cookie_tokens(req, toks, COOKIES_MAX),
         sl = strlen(IAM_SESSION_PREFIX);
  int tried = 0, pub = route_is_public(req);
  nno_str here = api->req_scope(req); /* empty for the core API */
  nno_limit_result l;
  iam_sess s;
  for (size_t i = 0; i < n; i++) {
    if (toks[i].len <= sl || memcmp(toks[i].ptr, IAM_SESSION_PREFIX, sl) != 0)
      continue; /* not a session token: no credential at all */
    tried = 1;
    int rc = session_lookup(req, toks[i], &s, &l);
    if (rc == 1)
      return pub ? NNO_OK : limit_refused(req, &l, "anonymous client");
    if (rc) continue;
    /* A cookie a sibling platform's page planted for a shared domain is
     * not this platform's: it stands for no one here. */
    if (here.len && !streq(here, s.platform)) continue;
    int why = cookie_request_ok(req, (nno_str){s.platform, strlen(s.platform)});
    if (why == COOKIE_UNSAID && pub) return NNO_OK; /* public: as anonymous */
    if (why == COOKIE_UNSAID)
      return problem(req, 403, "Forbidden",
                     "a cookie-authenticated change must say where it comes "
                     "from: send Origin (browsers do), or send the token as "
                     "\"Authorization: Bearer\" instead of the cookie");
    if (why != COOKIE_OK)
      return problem(req, 403, "Forbidden",
                     "a cookie-authenticated change must come from an origin "
                     "of the platform");
    return set_user(req, &s);
  }
  if (!tried || pub) return NNO_OK; /* anonymous: AUTHZ decides */
  return auth_failed(req, "this session has ended; sign in again");
}

int iam_on_authn(nno_req *req, void *ud) {
  (void)ud;
  nno_str v, tok = {0};
  if (api->req_header(req, "Authorization", &v) != NNO_OK)
    return authn_cookie(req);
  if (iam_bearer_token(v.ptr, v.len, &tok))
    return route_is_public(req)
               ? NNO_OK
               : auth_failed(req, "send \"Authorization: Bearer <key>\"");
  if (tok.len == 0) return NNO_OK; /* anonymous: AUTHZ decides */
  size_t kl = strlen(IAM_KEY_PREFIX), sl = strlen(IAM_SESSION_PREFIX);
  char id[17];
  if (tok.len > kl && memcmp(tok.ptr, IAM_KEY_PREFIX, kl) == 0) {
    const iam_key *k = iam_token_split(tok.ptr, tok.len, IAM_KEY_PREFIX, id)
                           ? NULL
                           : iam_keytab_get(g_iam.keys, id);
    unsigned char h[32];
    if (k) crypto_hash_sha256(h, (const unsigned char *)tok.ptr, tok.len);
    if (!k || sodium_memcmp(h, k->hash, sizeof h) != 0 ||
        (k->expires && k->expires <= iam_now()))
      return route_is_public(req)
                 ? NNO_OK
                 : auth_failed(req,
                               "this API key is unknown, revoked or "
                               "expired");
    return set_credential(req, NNO_CALLER_KEY, k->platform, k->tenant, k->id,
                          k->scopes, NULL);
  }
  if (tok.len > sl && memcmp(tok.ptr, IAM_SESSION_PREFIX, sl) == 0) {
    iam_sess s;
    nno_limit_result l;
    int pub = route_is_public(req);
    int rc = session_lookup(req, tok, &s, &l);
    if (rc == 1)
      return pub ? NNO_OK : limit_refused(req, &l, "anonymous client");
    if (rc)
      return pub ? NNO_OK
                 : auth_failed(req, "this session has ended; sign in again");
    return set_user(req, &s);
  }
  if (g_iam.reg && g_iam.reg->operator_key_check(tok.ptr, tok.len)) {
    int rc = api->req_set_caller(g_iam.p, req, NNO_CALLER_OPERATOR, NULL, NULL,
                                 "operator", "*", NULL);
    return rc ? rc : NNO_OK;
  }
  if (route_is_public(req)) return NNO_OK;
  return auth_failed(req, "this credential is not a key of this host");
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

/* Unsafe core routes a tenant-bound credential may call: each confines it
 * to its subtree (the AUTHZ check on {tenant}, or its handler on the body
 * or the target). Every other unsafe core route changes the whole
 * platform (activations, access policy, platform-wide keys...) and is
 * refused to it; reads are decided by scope alone (plugins/iam/README.md
 * has the table). */
static const struct {
  const char *method, *pattern;
} tenant_writes[] = {
    {"POST", "/api/v1/platforms/{platform}/tenants"},
    {"PATCH", "/api/v1/platforms/{platform}/tenants/{tenant}"},
    {"DELETE", "/api/v1/platforms/{platform}/tenants/{tenant}"},
    {"POST", "/api/v1/platforms/{platform}/keys"},
    {"DELETE", "/api/v1/platforms/{platform}/keys/{key}"},
};

static int tenant_may_write(nno_str method, nno_str pattern) {
  for (size_t i = 0; i < sizeof tenant_writes / sizeof *tenant_writes; i++)
    if (streq(method, tenant_writes[i].method) &&
        streq(pattern, tenant_writes[i].pattern))
      return 1;
  return 0;
}

/* A key's or session's platform must be active, and its tenant (if bound)
 * neither suspended nor under a suspended tenant: suspension stops every
 * credential it reaches, on the core API as on feature routes. Both
 * answers come from memory (the registry's tables, caught up through the
 * shared counter). `platform_known_active`: RESOLVE already refused a
 * suspended platform (a feature route of the caller's own platform).
 * NNO_OK, or NNO_DONE after answering 403. */
static int held_back(nno_req *req, const nno_caller *c,
                     int platform_known_active) {
  char plat[IAM_ID_MAX], t[IAM_ID_MAX], st[16] = "", detail[160];
  if (c->kind == NNO_CALLER_OPERATOR || !g_iam.reg) return NNO_OK;
  zcopy(plat, sizeof plat, c->platform);
  if (!platform_known_active &&
      (g_iam.reg->platform_status(plat, st, sizeof st) != NNO_OK ||
       strcmp(st, "active") != 0)) {
    snprintf(detail, sizeof detail,
             "platform %s is %s: its keys and sessions are refused until it "
             "is resumed",
             plat, strcmp(st, "suspended") == 0 ? "suspended" : "not active");
    return problem(req, 403, "Forbidden", detail);
  }
  if (!c->tenant.len ||
      g_iam.reg->size < offsetof(nno_registry_v1, tenant_active) +
                            sizeof g_iam.reg->tenant_active)
    return NNO_OK;
  zcopy(t, sizeof t, c->tenant);
  if (g_iam.reg->tenant_active(plat, t) == 1) return NNO_OK;
  snprintf(detail, sizeof detail,
           "credentials bound to tenant \"%s\" of platform %s are "
           "refused: it, or a tenant above it, is suspended",
           t, plat);
  return problem(req, 403, "Forbidden", detail);
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
      /* A key revoking itself only gives up what it holds: allowed while
       * its platform or tenant is suspended (audited like any revoke). */
      if (c.kind == NNO_CALLER_KEY && streq(api->req_method(req), "DELETE") &&
          streq(pattern, "/api/v1/keys/self"))
        return NNO_OK;
      if (streq(scope, "authenticated")) return held_back(req, &c, 0);
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
  int rc = held_back(req, &c, feature);
  if (rc != NNO_OK) return rc;
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
  /* ... and changes nothing that belongs to the whole platform. */
  nno_str m = api->req_method(req);
  if (!feature && c.tenant.len && !safe_method(m) &&
      !tenant_may_write(m, pattern)) {
    char anc[IAM_ID_MAX];
    zcopy(anc, sizeof anc, c.tenant);
    return forbidden(req,
                     "this credential is bound to tenant \"%s\" and cannot "
                     "change what belongs to the whole platform%s",
                     anc, "");
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

/* A refusal of the host's limiter: 429 when the bucket `who` is empty;
 * 503 when the host's table had no room for the bucket (limit 0: see
 * iam_limit_table_full), which is the server's capacity, not the caller's
 * use, so no bucket of the caller is blamed. Both with Retry-After. */
static int limit_refused(nno_req *req, const nno_limit_result *l,
                         const char *who) {
  char v[32], detail[128];
  unsigned long long s = (l->retry_after_ms + 999) / 1000;
  if (s == 0) s = 1;
  snprintf(v, sizeof v, "%llu", s);
  if (iam_limit_table_full(l)) {
    api->res_problem(req, 503, "Service Unavailable",
                     "the host's rate-limit table is full; try again later");
    api->res_header_keep(req, "Retry-After", v);
    return NNO_DONE;
  }
  limit_headers(req, l);
  snprintf(detail, sizeof detail, "the %s rate limit is reached; retry in %llu s",
           who, s);
  api->res_problem(req, 429, "Too Many Requests", detail);
  api->res_header_keep(req, "Retry-After", v);
  return NNO_DONE;
}

/* The rates of `platform`'s plan (the default plan's when it has none or
 * is "": the core API's host-wide buckets): billing's plans when billing
 * is loaded, IAM's config otherwise (iam_plan_limits). Borrowed until
 * the next call. */
static const iam_plan *plan_of(const char *plat) {
  static iam_plan cur;
  nno_plan_limits l;
  iam_plan_limits(plat, &l);
  memset(&cur, 0, sizeof cur);
  snprintf(cur.name, sizeof cur.name, "%s", l.name);
  cur.platform_rps = l.platform.rate, cur.platform_burst = l.platform.burst;
  cur.key_rps = l.key.rate, cur.key_burst = l.key.burst;
  cur.user_rps = l.user.rate, cur.user_burst = l.user.burst;
  cur.anon_rps = l.anonymous.rate, cur.anon_burst = l.anonymous.burst;
  return &cur;
}

/* The anonymous bucket of the request's client on `platform`:
 * "a:{platform}:{address, an IPv6 one by its /64}". Its length, or 0. */
static int anon_bucket(nno_req *req, nno_str platform, char *key, size_t cap,
                       double *rps, uint32_t *burst) {
  char plat[IAM_ID_MAX], addr[INET6_ADDRSTRLEN + 8];
  zcopy(plat, sizeof plat, platform);
  nno_str a = api->req_remote_addr(req);
  nno_client_key(a.ptr, a.len, addr, sizeof addr);
  const iam_plan *pl = plan_of(plat);
  *rps = pl->anon_rps, *burst = pl->anon_burst;
  int n = snprintf(key, cap, "a:%s:%s", plat, addr);
  return n > 0 && (size_t)n < cap ? n : 0;
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
  char plat[IAM_ID_MAX], key[128];
  zcopy(plat, sizeof plat, platform);
  const iam_plan *pl = plan_of(plat);
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
    n = anon_bucket(req, platform, key, sizeof key, &rps, &burst);
    who = "anonymous client";
  }
  nno_limit_result one, all;
  int rc = api->limit_take(g_iam.p, key, (size_t)n, rps, burst, 1, &one);
  if (rc) return rc;
  if (!one.allowed) return limit_refused(req, &one, who);
  n = snprintf(key, sizeof key, "p:%s", plat);
  rc = api->limit_take(g_iam.p, key, (size_t)n, pl->platform_rps,
                       pl->platform_burst, 1, &all);
  if (rc) return rc;
  if (!all.allowed) return limit_refused(req, &all, "platform");
  /* Report the tighter of the two buckets. */
  limit_headers(req, all.remaining < one.remaining ? &all : &one);
  return NNO_OK;
}
