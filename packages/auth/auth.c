/* auth: the sign-in flow of every platform (see README.md).
 *
 *   POST /auth/sign-up    create a user (when the platform allows it), sign in
 *   POST /auth/sign-in    email + password -> session token and cookie
 *   POST /auth/sign-out   end the caller's session
 *   GET  /auth/session    who the caller is
 *   POST /auth/password   change the password, ending the other sessions
 *
 * Users and their argon2id hashes live in the platform's own database
 * (store.c); sessions belong to IAM, reached through the nno.iam service.
 * Hashing and the database run on the host's thread pool (work.c), at most
 * `pwhash_concurrency` jobs per worker at once, the rest waiting in a
 * bounded FIFO: a burst of sign-ins neither stalls the loop nor takes more
 * than concurrency x pwhash_mem_kib of memory. */
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>

#include <jansson.h>

#include <nno/iam.h>
#include <nno/plugin.h>
#include <nno/registry.h>

#include "auth.h"

#define COOKIE "nno_session"
#define LIMIT_KEY_MAX 120 /* the host's bound on a limit_take key */

typedef struct auth_state {
  auth_config cfg;
  auth_shared sh;
  const nno_iam_v1 *iam;
  char base[256]; /* the host's base domain, lower-case */
  /* The hashing gate: jobs running, and jobs waiting for a slot. */
  unsigned inflight, queued;
  auth_job *head, *tail;
} auth_state;

static const nno_host_api *api;
static nno_plugin *self;
static auth_state *g;

/* ---- problems ------------------------------------------------------------ */

static const char *title_of(int status) {
  switch (status) {
  case 400:
    return "Bad Request";
  case 401:
    return "Unauthorized";
  case 403:
    return "Forbidden";
  case 404:
    return "Not Found";
  case 409:
    return "Conflict";
  case 413:
    return "Content Too Large";
  case 415:
    return "Unsupported Media Type";
  case 422:
    return "Unprocessable Content";
  case 429:
    return "Too Many Requests";
  case 503:
    return "Service Unavailable";
  default:
    return status >= 500 ? "Internal Server Error" : "Bad Request";
  }
}

/* Answer a problem; always NNO_OK, so handlers can return it. Headers go
 * after res_problem, which replaces what was written before. */
static int problem(nno_req *req, int status, const char *detail) {
  if (api->res_problem(req, status, title_of(status), detail) != NNO_OK)
    return NNO_OK; /* the request has ended: nothing left to answer */
  if (status == 401)
    api->res_header(req, "WWW-Authenticate", "Bearer realm=\"nno\"");
  return NNO_OK;
}

static int problem_retry(nno_req *req, int status, const char *detail,
                         unsigned long long secs) {
  char v[24];
  problem(req, status, detail);
  snprintf(v, sizeof v, "%llu", secs ? secs : 1);
  api->res_header(req, "Retry-After", v);
  return NNO_OK;
}

static int problemf(nno_req *req, int status, const char *fmt, ...)
    NNO_PRINTF(3, 4);
static int problemf(nno_req *req, int status, const char *fmt, ...) {
  char detail[256];
  va_list ap;
  va_start(ap, fmt);
  vsnprintf(detail, sizeof detail, fmt, ap);
  va_end(ap);
  return problem(req, status, detail);
}

/* An error of the nno.iam service. */
static int iam_problem(nno_req *req, int rc) {
  if (rc == NNO_ENOENT) return problem(req, 404, "no such platform");
  if (rc == NNO_EBUSY)
    return problem_retry(req, 503, "the identity service is busy", 1);
  api->log(self, NNO_LOG_ERROR, "identity service error: %s",
           api->err_name(rc));
  return problem(req, 500, "identity service error");
}

/* A job's storage or hashing failure. */
static void job_problem(const auth_job *j) {
  if (j->err[0])
    api->log(self, j->result == JR_UNSAFE ? NNO_LOG_ERROR : NNO_LOG_WARN,
             "auth database of platform %s: %s", j->platform, j->err);
  if (j->result == JR_UNSAFE)
    problem(j->req, 503,
            "the auth database of this platform is refused: its files are "
            "not the host's alone (see the host's log)");
  else if (j->result == JR_BUSY)
    problem_retry(j->req, 503, "the auth database is busy", 1);
  else if (j->result == JR_NOMEM)
    problem_retry(j->req, 503, "not enough memory to hash the password", 1);
  else
    problem(j->req, 500, "auth database error");
}

/* ---- the identity service ------------------------------------------------ */

/* nno.iam, looked up on first use: IAM is a core plugin and may be absent
 * (kernel tests run without core plugins); the routes then answer 503. */
static const nno_iam_v1 *iam_get(void) {
  const void *vt;
  uint32_t ver;
  if (g->iam) return g->iam;
  if (api->service_lookup(self, NNO_IAM_SERVICE, 1, &vt, &ver) != NNO_OK)
    return NULL;
  const nno_iam_v1 *v = vt;
  if (v->size < offsetof(nno_iam_v1, platform_access) + sizeof(void *))
    return NULL;
  return g->iam = v;
}

/* nno.registry with platform_incarnation, when loaded (NULL otherwise:
 * users are then not tied to a platform's incarnation). */
static const nno_registry_v1 *registry_get(void) {
  const void *vt;
  uint32_t ver;
  if (api->service_lookup(self, NNO_REGISTRY_SERVICE, 1, &vt, &ver) != NNO_OK)
    return NULL;
  const nno_registry_v1 *r = vt;
  return r->size >= offsetof(nno_registry_v1, platform_incarnation) +
                        sizeof(void *)
             ? r
             : NULL;
}

typedef struct ctx {
  const nno_iam_v1 *iam;
  char platform[AUTH_PLATFORM_MAX + 1];
  char incarnation[AUTH_INCARNATION_MAX]; /* "" without the registry */
  nno_caller caller;
} ctx;

/* What every route needs: IAM, the request's platform and, with
 * `need_user`, a user session of that platform. On failure the problem is
 * written and -1 returned. */
static int begin(nno_req *req, ctx *c, int need_user) {
  if (!(c->iam = iam_get())) {
    problem(req, 503, "identity service unavailable");
    return -1;
  }
  nno_str s = api->req_scope(req);
  if (!auth_platform_valid(s.ptr, s.len)) {
    problem(req, 404, "no platform for this request");
    return -1;
  }
  memcpy(c->platform, s.ptr, s.len);
  c->platform[s.len] = '\0';
  /* Users belong to this incarnation of the platform: a platform deleted
   * and created again under the same id starts with none. */
  const nno_registry_v1 *r = registry_get();
  c->incarnation[0] = '\0';
  if (r && r->platform_incarnation(c->platform, c->incarnation,
                                   sizeof c->incarnation) != NNO_OK) {
    problem(req, 503, "the platform's registry entry cannot be read");
    return -1;
  }
  if (api->req_caller(req, &c->caller) != NNO_OK)
    c->caller.kind = NNO_CALLER_NONE;
  if (!need_user) return 0;
  const nno_caller *u = &c->caller;
  if (u->kind != NNO_CALLER_USER || u->platform.len != s.len ||
      memcmp(u->platform.ptr, s.ptr, s.len) != 0 || u->session.len == 0 ||
      u->session.len >= 65) {
    problem(req, 401, "sign in first: this needs a user session");
    return -1;
  }
  return 0;
}

/* ---- request bodies ------------------------------------------------------ */

static int is_json(nno_req *req) {
  static const char mt[] = "application/json";
  const size_t n = sizeof mt - 1;
  nno_str ct;
  if (api->req_header(req, "Content-Type", &ct) != NNO_OK) return 0;
  if (ct.len < n || strncasecmp(ct.ptr, mt, n) != 0) return 0;
  return ct.len == n || ct.ptr[n] == ';' || ct.ptr[n] == ' ' ||
         ct.ptr[n] == '\t';
}

/* The body as a JSON object whose keys are all in `allowed` (NULL-ended),
 * or NULL after answering the problem. The media type is required: a
 * cross-site form cannot send application/json without a preflight, so a
 * page elsewhere cannot sign a visitor in to an account of its choosing. */
static json_t *body_object(nno_req *req, const char *const *allowed) {
  if (!is_json(req)) {
    problem(req, 415, "send the body as application/json");
    return NULL;
  }
  nno_str b = api->req_body(req);
  if (b.len > AUTH_BODY_MAX) {
    problemf(req, 413, "the body is over %d bytes", AUTH_BODY_MAX);
    return NULL;
  }
  json_error_t e;
  json_t *o = json_loadb(b.ptr ? b.ptr : "", b.len, JSON_REJECT_DUPLICATES, &e);
  if (!o) {
    problemf(req, 400, "invalid JSON at line %d column %d: %s", e.line,
             e.column, e.text);
    return NULL;
  }
  if (!json_is_object(o)) {
    json_decref(o);
    problem(req, 422, "the body must be a JSON object");
    return NULL;
  }
  const char *key;
  json_t *v;
  json_object_foreach(o, key, v) {
    size_t i = 0;
    while (allowed[i] && strcmp(allowed[i], key) != 0) i++;
    if (!allowed[i]) {
      problemf(req, 422, "field \"%.64s\": unknown field", key);
      json_decref(o);
      return NULL;
    }
  }
  return o;
}

/* Overwrite the secrets jansson holds before the object is freed. */
static void body_free(json_t *o) {
  static const char *const secrets[] = {"password", "current", "new"};
  for (size_t i = 0; o && i < sizeof secrets / sizeof *secrets; i++) {
    json_t *v = json_object_get(o, secrets[i]);
    if (json_is_string(v))
      sodium_memzero((char *)json_string_value(v), json_string_length(v));
  }
  json_decref(o);
}

/* Copy string field `name` (min..max bytes) into out (max + 1 bytes).
 * 1 when copied, 0 when absent or null and optional, -1 after answering
 * the problem. */
static int str_field(nno_req *req, json_t *o, const char *name, int required,
                     size_t min, size_t max, char *out) {
  json_t *v = json_object_get(o, name);
  if (!v || (json_is_null(v) && !required)) {
    if (!required) return 0;
    problemf(req, 422, "field \"%s\": is required", name);
    return -1;
  }
  if (!json_is_string(v)) {
    problemf(req, 422, "field \"%s\": expected a string", name);
    return -1;
  }
  size_t n = json_string_length(v);
  if (n < min || n > max) {
    problemf(req, 422, "field \"%s\": expected %zu to %zu bytes, got %zu", name,
             min, max, n);
    return -1;
  }
  memcpy(out, json_string_value(v), n);
  out[n] = '\0';
  return 1;
}

/* One '@', not at either end; no spaces or control characters. Deliberately
 * no more: the only real test of an address is mail reaching it. */
static int email_valid(const char *s) {
  size_t n = strlen(s), at = 0, ats = 0;
  for (size_t i = 0; i < n; i++) {
    unsigned char c = (unsigned char)s[i];
    if (c <= 0x20 || c == 0x7f) return 0;
    if (c == '@') ats++, at = i;
  }
  return ats == 1 && at > 0 && at + 1 < n;
}

static int name_valid(const char *s) {
  for (; *s; s++)
    if ((unsigned char)*s < 0x20 || *s == 0x7f) return 0;
  return 1;
}

/* ---- jobs and the hashing gate ------------------------------------------- */

static void on_job_done(int status, void *ud);
static void gate_pump(void);
static int locked_out(const auth_job *j);

static auth_job *job_new(nno_req *req, const ctx *c, auth_job_kind kind) {
  auth_job *j = calloc(1, sizeof *j);
  if (!j) return NULL;
  j->req = req;
  j->sh = &g->sh;
  j->kind = kind;
  memcpy(j->platform, c->platform, sizeof j->platform);
  memcpy(j->incarnation, c->incarnation, sizeof j->incarnation);
  nno_str a = api->req_remote_addr(req);
  auth_addr_key(a.ptr, a.len, j->addr, sizeof j->addr);
  return j;
}

static void job_free(auth_job *j) {
  sodium_memzero(j, sizeof *j);
  free(j);
}

/* The response is written (or the client is gone): end the request and
 * give the slot to the next job waiting. */
static void job_finish(auth_job *j) {
  nno_req *req = j->req;
  int gated = j->gated;
  job_free(j);
  api->res_end(req);
  if (gated) {
    g->inflight--;
    gate_pump();
  }
}

static int job_start(auth_job *j) {
  return api->work_queue(self, auth_work, on_job_done, j);
}

/* Start j if a slot is free, else queue it. NNO_EBUSY: the queue is full. */
static int gate_submit(auth_job *j) {
  if (g->inflight < g->cfg.concurrency) {
    int rc = job_start(j);
    if (rc != NNO_OK) return rc;
    j->gated = 1;
    g->inflight++;
    return NNO_OK;
  }
  if (g->queued >= g->cfg.queue_max) return NNO_EBUSY;
  j->next = NULL;
  if (g->tail)
    g->tail->next = j;
  else
    g->head = j;
  g->tail = j;
  g->queued++;
  return NNO_OK;
}

static void gate_pump(void) {
  while (g->inflight < g->cfg.concurrency && g->head) {
    auth_job *j = g->head;
    g->head = j->next;
    if (!g->head) g->tail = NULL;
    g->queued--;
    /* Nobody waits for it any more: skip the work. Or failures counted
     * while it waited have locked the account or the address: without
     * this look, a burst of guesses queued at once would all be tried. */
    if (api->req_gone(j->req) || locked_out(j)) {
      job_finish(j);
      continue;
    }
    int rc = job_start(j);
    if (rc != NNO_OK) {
      api->log(self, NNO_LOG_ERROR, "cannot queue work: %s", api->err_name(rc));
      problem_retry(j->req, 503, "cannot start hashing", 1);
      job_finish(j);
      continue;
    }
    j->gated = 1;
    g->inflight++;
  }
}

/* From a handler: run j through the gate and answer later, or answer now
 * if it cannot wait. */
static int submit(nno_req *req, auth_job *j) {
  int rc = gate_submit(j);
  if (rc == NNO_OK) return NNO_ASYNC;
  job_free(j);
  if (rc == NNO_EBUSY)
    return problem_retry(req, 503, "too many sign-ins in progress", 1);
  api->log(self, NNO_LOG_ERROR, "cannot queue work: %s", api->err_name(rc));
  return problem(req, 500, "cannot start hashing");
}

/* ---- failed sign-in limits ----------------------------------------------- */

typedef struct bucket {
  char key[LIMIT_KEY_MAX + 1];
  size_t len;
  double rate;
  uint32_t burst;
} bucket;

/* "acct:{platform}:{email, lower-case}", or a digest of the email when
 * that would be over the host's key bound (a digest has no '@', so it
 * never equals a real address). */
static void acct_bucket(const auth_job *j, bucket *b) {
  char email[AUTH_EMAIL_MAX + 1];
  size_t n = strlen(j->user.email);
  for (size_t i = 0; i <= n; i++) {
    char c = j->user.email[i];
    email[i] = (char)(c >= 'A' && c <= 'Z' ? c + 32 : c);
  }
  int len = snprintf(b->key, sizeof b->key, "acct:%s:%s", j->platform, email);
  if (len < 0 || (size_t)len >= sizeof b->key) {
    unsigned char d[16];
    char hex[33];
    crypto_generichash(d, sizeof d, (const unsigned char *)email, n, NULL, 0);
    sodium_bin2hex(hex, sizeof hex, d, sizeof d);
    len = snprintf(b->key, sizeof b->key, "acct:%s:%s", j->platform, hex);
  }
  b->len = (size_t)len;
  b->burst = g->cfg.acct_burst;
  b->rate = g->cfg.acct_burst / g->cfg.acct_window_s;
}

static void addr_bucket(const auth_job *j, bucket *b) {
  int len = snprintf(b->key, sizeof b->key, "addr:%s:%s", j->platform,
                     j->addr[0] ? j->addr : "unknown");
  b->len = len > 0 ? (size_t)len : 0;
  b->burst = g->cfg.addr_burst;
  b->rate = g->cfg.addr_burst / g->cfg.addr_window_s;
}

/* 0: the bucket has a token; 1: empty, *wait_ms until one is back; 2: the
 * host's table has no room for the bucket (a refusal with limit 0: a
 * bucket that exists always has limit == burst >= 1), *wait_ms the host's
 * hint; -1: the limiter failed. A cost-0 take only looks; the cost-1 take
 * on an empty bucket is refused and takes nothing, but says how long to
 * wait. */
static int bucket_empty(const bucket *b, uint64_t *wait_ms) {
  nno_limit_result r;
  int rc = api->limit_take(self, b->key, b->len, b->rate, b->burst, 0, &r);
  if (rc == NNO_OK && r.remaining > 0) return 0;
  if (rc == NNO_OK && r.allowed)
    rc = api->limit_take(self, b->key, b->len, b->rate, b->burst, 1, &r);
  if (rc != NNO_OK) {
    api->log(self, NNO_LOG_ERROR, "limit_take: %s", api->err_name(rc));
    return -1;
  }
  if (r.allowed) return 0; /* refilled in between: that token is spent */
  *wait_ms = r.retry_after_ms;
  return r.limit == 0 ? 2 : 1;
}

/* The buckets a job's failures count in: the account and the address; a
 * sign-up's (a taken email) only the address, as a sign-up names no
 * account of its own. Returns how many were filled. */
static size_t job_buckets(const auth_job *j, bucket b[2]) {
  size_t n = 0;
  if (j->kind != JOB_SIGNUP) acct_bucket(j, &b[n++]);
  addr_bucket(j, &b[n++]);
  return n;
}

/* Before verifying a password, or looking an email up for a sign-up:
 * answer 429 when the account or the address has no failure left, 503
 * when the host's table has no room to count them (its capacity, not the
 * caller's failures: no lock-out is claimed). 1 when answered, 0 to go
 * on. */
static int locked_out(const auth_job *j) {
  bucket b[2];
  uint64_t wait = 0, w;
  int locked = 0, full = 0;
  size_t n = job_buckets(j, b);
  for (size_t i = 0; i < n; i++) {
    w = 0;
    int rc = bucket_empty(&b[i], &w);
    if (rc < 0) {
      problem(j->req, 500, "cannot check sign-in limits");
      return 1;
    }
    if (rc && w > wait) wait = w;
    locked |= rc == 1;
    full |= rc == 2;
  }
  if (full && !locked) {
    api->log(self, NNO_LOG_WARN,
             "sign-ins refused on platform %s: the rate-limit table is full",
             j->platform);
    problem_retry(j->req, 503,
                  "the host's rate-limit table is full; try again later",
                  (wait + 999) / 1000);
    return 1;
  }
  if (!locked) return 0;
  api->log(self, NNO_LOG_WARN, "sign-ins locked out on platform %s",
           j->platform);
  problem_retry(j->req, 429,
                j->kind == JOB_SIGNUP
                    ? "too many failed sign-ins or sign-ups from this "
                      "address; try again later"
                    : "too many failed sign-ins; try again later",
                (wait + 999) / 1000);
  return 1;
}

static void count_failure(const auth_job *j) {
  bucket b[2];
  nno_limit_result r;
  size_t n = job_buckets(j, b);
  for (size_t i = 0; i < n; i++) {
    int rc =
        api->limit_take(self, b[i].key, b[i].len, b[i].rate, b[i].burst, 1, &r);
    if (rc != NNO_OK)
      api->log(self, NNO_LOG_ERROR, "limit_take: %s", api->err_name(rc));
  }
}

/* ---- responses ----------------------------------------------------------- */

static void iso_time(int64_t t, char out[32]) {
  time_t tt = (time_t)t;
  struct tm tm;
  if (!gmtime_r(&tt, &tm) || !strftime(out, 32, "%Y-%m-%dT%H:%M:%SZ", &tm))
    snprintf(out, 32, "1970-01-01T00:00:00Z");
}

static json_t *user_json(const auth_user *u) {
  return json_pack("{s:s, s:s, s:o}", "id", u->id, "email", u->email, "name",
                   u->has_name ? json_string(u->name) : json_null());
}

/* Answer `o` (consumed) with `status`: 0, or -1 after answering a 500.
 * `secret`, when not NULL, is a string inside `o` overwritten once the
 * text is out. */
static int send_json(nno_req *req, int status, json_t *o, json_t *secret) {
  char *text = o ? json_dumps(o, JSON_COMPACT) : NULL;
  if (json_is_string(secret))
    sodium_memzero((char *)json_string_value(secret),
                   json_string_length(secret));
  json_decref(o);
  if (!text) {
    problem(req, 500, "out of memory");
    return -1;
  }
  size_t n = strlen(text);
  int rc = api->res_json(req, status, text, n);
  sodium_memzero(text, n);
  free(text);
  if (rc != NNO_OK) {
    problem(req, 500, "cannot write the response");
    return -1;
  }
  api->res_header(req, "Cache-Control", "no-store");
  return 0;
}

/* Set-Cookie for the session (max_age >= 0), or clearing it (token NULL).
 * On the platform's hosts (every name under {platform}.{base} is routed to
 * the platform alone): Domain={platform}.{base}, Path=/, so all of them
 * share it. Otherwise the request came by path, /p/{platform}/..., on a
 * host that also serves the core API and other platforms: a host-only
 * cookie with Path=/p/{platform}, which a browser sends back to this
 * platform's paths only. */
static void set_cookie(nno_req *req, const char *platform, const char *token,
                       long long max_age) {
  char dom[AUTH_PLATFORM_MAX + 1 + sizeof g->base], v[512];
  nno_str h = api->req_host(req);
  int dl = snprintf(dom, sizeof dom, "%s.%s", platform, g->base);
  size_t n = dl > 0 ? (size_t)dl : 0;
  int on_platform = g->base[0] && n > 0 && h.len >= n &&
                    memcmp(h.ptr + h.len - n, dom, n) == 0 &&
                    (h.len == n || h.ptr[h.len - n - 1] == '.');
  snprintf(v, sizeof v,
           COOKIE "=%s; Path=%s%s; Max-Age=%lld; HttpOnly; Secure; "
                  "SameSite=Lax%s%s",
           token ? token : "", on_platform ? "/" : "/p/",
           on_platform ? "" : platform, token ? max_age : 0,
           on_platform ? "; Domain=" : "", on_platform ? dom : "");
  if (api->res_header(req, "Set-Cookie", v) != NNO_OK)
    api->log(self, NNO_LOG_ERROR, "cannot set the session cookie");
  sodium_memzero(v, sizeof v);
}

/* Open an IAM session for j->user and answer `status` with it. */
static void answer_session(auth_job *j, int status) {
  nno_iam_session s;
  int rc = g->iam->session_create(j->platform, j->user.id, NULL, NULL, &s);
  if (rc != NNO_OK) {
    iam_problem(j->req, rc);
    return;
  }
  char exp[32], idle[32];
  iso_time(s.expires, exp);
  iso_time(s.idle_expires, idle);
  json_t *tok = json_string(s.token);
  json_t *o = json_pack("{s:o, s:{s:s, s:s, s:s}, s:O}", "user",
                        user_json(&j->user), "session", "id", s.id, "expires",
                        exp, "idle_expires", idle, "token", tok);
  long long age = (long long)(s.expires - (int64_t)time(NULL));
  if (send_json(j->req, status, o, tok) == 0)
    set_cookie(j->req, j->platform, s.token, age > 0 ? age : 0);
  json_decref(tok);
  sodium_memzero(&s, sizeof s);
}

/* ---- after the pool ------------------------------------------------------ */

static void after_signin(auth_job *j) {
  if (j->result == JR_BADPASS) {
    count_failure(j); /* also when the client has gone: it tried */
    problem(j->req, 401, "email or password is wrong");
  } else if (j->result != JR_OK) {
    job_problem(j);
  } else if (!api->req_gone(j->req) && !locked_out(j)) {
    /* Looked again: failures that ran alongside may have locked the
     * account since, and a locked account does not sign in. */
    answer_session(j, 200);
  }
  job_finish(j);
}

static void after_signup(auth_job *j) {
  if (j->result == JR_EXISTS) {
    /* It tells the caller the address has an account: count it like a
     * failed sign-in of the address, so such probes are bounded like
     * guesses are. */
    count_failure(j);
    problem(j->req, 409, "a user with this email already exists");
  } else if (j->result != JR_OK) {
    job_problem(j);
  } else if (!api->req_gone(j->req)) {
    answer_session(j, 201);
  }
  job_finish(j);
}

/* A valid session whose user is not in the database (removed by hand:
 * nothing here deletes users): end the user's sessions. */
static void user_gone(auth_job *j) {
  int rc = g->iam->session_revoke_user(j->platform, j->user.id, NULL, NULL);
  if (rc != NNO_OK && rc != NNO_ENOENT)
    api->log(self, NNO_LOG_WARN,
             "cannot end the sessions of a removed user: %s",
             api->err_name(rc));
  problem(j->req, 401, "the user of this session no longer exists");
}

static void answer_whoami(auth_job *j) {
  nno_caller c;
  if (api->req_caller(j->req, &c) != NNO_OK) {
    problem(j->req, 500, "the caller is unknown");
    return;
  }
  json_t *scopes = json_array();
  const char *p = c.scopes.ptr, *end = c.scopes.ptr + c.scopes.len;
  while (scopes && p < end) {
    const char *sp = memchr(p, ' ', (size_t)(end - p));
    size_t n = (size_t)((sp ? sp : end) - p);
    if (n && json_array_append_new(scopes, json_stringn(p, n)) != 0) {
      json_decref(scopes);
      scopes = NULL;
    }
    p += n + 1;
  }
  json_t *o = json_pack(
      "{s:o, s:s, s:o, s:o, s:{s:s%}}", "user", user_json(&j->user), "platform",
      j->platform, "tenant",
      c.tenant.len ? json_stringn(c.tenant.ptr, c.tenant.len) : json_null(),
      "scopes", scopes, "session", "id", c.session.ptr, c.session.len);
  send_json(j->req, 200, o, NULL);
}

static void after_lookup(auth_job *j) {
  if (j->result == JR_NOUSER) {
    user_gone(j);
  } else if (j->result != JR_OK) {
    job_problem(j);
  } else if (j->then == JOB_LOOKUP) {
    answer_whoami(j);
  } else if (!api->req_gone(j->req) && !locked_out(j)) {
    /* The password change proper: two argon2id runs, through the gate. */
    j->kind = JOB_PASSWORD;
    int rc = gate_submit(j);
    if (rc == NNO_OK) return;
    if (rc == NNO_EBUSY)
      problem_retry(j->req, 503, "too many sign-ins in progress", 1);
    else
      problem(j->req, 500, "cannot start hashing");
  }
  job_finish(j);
}

static void after_password(auth_job *j) {
  if (j->result == JR_BADPASS) {
    count_failure(j);
    problem(j->req, 401, "the current password is wrong");
  } else if (j->result == JR_CHANGED) {
    problem(j->req, 409, "the password was changed meanwhile; try again");
  } else if (j->result != JR_OK) {
    job_problem(j);
  } else {
    /* Even if the client has gone: the new password is stored, so the
     * sessions opened with the old one must end. */
    int rc =
        g->iam->session_revoke_user(j->platform, j->user.id, j->session, NULL);
    if (rc != NNO_OK && rc != NNO_ENOENT) {
      api->log(self, NNO_LOG_ERROR,
               "password changed but the other sessions of a user of %s "
               "remain: %s",
               j->platform, api->err_name(rc));
      iam_problem(j->req, rc);
    } else {
      api->res_status(j->req, 204);
    }
  }
  job_finish(j);
}

static void on_job_done(int status, void *ud) {
  auth_job *j = ud;
  if (status == NNO_ECANCELED) {
    problem_retry(j->req, 503, "the server is shutting down", 1);
    job_finish(j);
    return;
  }
  switch (j->kind) {
  case JOB_SIGNIN:
    after_signin(j);
    break;
  case JOB_SIGNUP:
    after_signup(j);
    break;
  case JOB_LOOKUP:
    after_lookup(j);
    break;
  case JOB_PASSWORD:
    after_password(j);
    break;
  }
}

/* ---- handlers ------------------------------------------------------------ */

static int on_signup(nno_req *req, void *ud) {
  static const char *const fields[] = {"email", "password", "name", NULL};
  ctx c;
  if (begin(req, &c, 0)) return NNO_OK;
  nno_iam_access acc;
  int rc = c.iam->platform_access(c.platform, &acc);
  if (rc != NNO_OK) return iam_problem(req, rc);
  if (!acc.signup)
    return problem(req, 403, "this platform does not allow signing up");
  json_t *o = body_object(req, fields);
  if (!o) return NNO_OK;
  auth_job *j = job_new(req, &c, JOB_SIGNUP);
  if (!j) {
    body_free(o);
    return problem(req, 500, "out of memory");
  }
  int ok = str_field(req, o, "email", 1, AUTH_EMAIL_MIN, AUTH_EMAIL_MAX,
                     j->user.email) > 0 &&
           str_field(req, o, "password", 1, AUTH_PASS_MIN, AUTH_PASS_MAX,
                     j->password) > 0 &&
           (j->user.has_name = str_field(req, o, "name", 0, 1, AUTH_NAME_MAX,
                                         j->user.name)) >= 0;
  body_free(o);
  if (ok && !email_valid(j->user.email)) {
    problem(req, 422,
            "field \"email\": expected an address with one '@' and no spaces");
    ok = 0;
  }
  if (ok && j->user.has_name && !name_valid(j->user.name)) {
    problem(req, 422, "field \"name\": control characters are not allowed");
    ok = 0;
  }
  if (!ok || locked_out(j)) {
    job_free(j);
    return NNO_OK;
  }
  return submit(req, j);
}

static int on_signin(nno_req *req, void *ud) {
  static const char *const fields[] = {"email", "password", NULL};
  ctx c;
  if (begin(req, &c, 0)) return NNO_OK;
  json_t *o = body_object(req, fields);
  if (!o) return NNO_OK;
  auth_job *j = job_new(req, &c, JOB_SIGNIN);
  if (!j) {
    body_free(o);
    return problem(req, 500, "out of memory");
  }
  int ok = str_field(req, o, "email", 1, AUTH_EMAIL_MIN, AUTH_EMAIL_MAX,
                     j->user.email) > 0 &&
           str_field(req, o, "password", 1, 1, AUTH_PASS_MAX, j->password) > 0;
  body_free(o);
  if (ok && !email_valid(j->user.email)) {
    problem(req, 422,
            "field \"email\": expected an address with one '@' and no spaces");
    ok = 0;
  }
  if (!ok || locked_out(j)) {
    job_free(j);
    return NNO_OK;
  }
  return submit(req, j);
}

static int on_signout(nno_req *req, void *ud) {
  ctx c;
  char sid[65];
  if (begin(req, &c, 1)) return NNO_OK;
  snprintf(sid, sizeof sid, "%.*s", (int)c.caller.session.len,
           c.caller.session.ptr);
  int rc = c.iam->session_revoke(c.platform, sid);
  if (rc != NNO_OK && rc != NNO_ENOENT) return iam_problem(req, rc);
  api->res_status(req, 204);
  set_cookie(req, c.platform, NULL, 0);
  return NNO_OK;
}

static int user_id_valid(nno_str id) {
  if (id.len != AUTH_USER_ID_LEN) return 0;
  for (size_t i = 0; i < id.len; i++)
    if (!((id.ptr[i] >= '0' && id.ptr[i] <= '9') ||
          (id.ptr[i] >= 'a' && id.ptr[i] <= 'f')))
      return 0;
  return 1;
}

/* Read the caller's user off the loop, like every database access, then
 * answer who they are (then == JOB_LOOKUP) or go on with a password
 * change (JOB_PASSWORD; `body` holds the passwords and is consumed). */
static int lookup(nno_req *req, const ctx *c, auth_job_kind then,
                  json_t *body) {
  auth_job *j = job_new(req, c, JOB_LOOKUP);
  if (!j) {
    body_free(body);
    return problem(req, 500, "out of memory");
  }
  j->then = then;
  nno_str sub = c->caller.subject;
  if (!user_id_valid(sub)) {
    /* A session another package opened for a user of its own. */
    job_free(j);
    body_free(body);
    return problem(req, 401, "this session's user is not one of auth's");
  }
  memcpy(j->user.id, sub.ptr, sub.len);
  j->user.id[sub.len] = '\0';
  snprintf(j->session, sizeof j->session, "%.*s", (int)c->caller.session.len,
           c->caller.session.ptr);
  if (body) {
    int ok =
        str_field(req, body, "current", 1, 1, AUTH_PASS_MAX, j->password) > 0 &&
        str_field(req, body, "new", 1, AUTH_PASS_MIN, AUTH_PASS_MAX,
                  j->new_password) > 0;
    body_free(body);
    if (!ok) {
      job_free(j);
      return NNO_OK;
    }
  }
  int rc = job_start(j);
  if (rc == NNO_OK) return NNO_ASYNC;
  job_free(j);
  api->log(self, NNO_LOG_ERROR, "cannot queue work: %s", api->err_name(rc));
  return problem(req, 500, "cannot read the user");
}

static int on_session(nno_req *req, void *ud) {
  ctx c;
  if (begin(req, &c, 1)) return NNO_OK;
  return lookup(req, &c, JOB_LOOKUP, NULL);
}

static int on_password(nno_req *req, void *ud) {
  static const char *const fields[] = {"current", "new", NULL};
  ctx c;
  if (begin(req, &c, 1)) return NNO_OK;
  json_t *o = body_object(req, fields);
  if (!o) return NNO_OK;
  return lookup(req, &c, JOB_PASSWORD, o);
}

/* ---- the plugin ---------------------------------------------------------- */

static void auth_ready(nno_plugin *p) {
  (void)iam_get();
  int rc = api->work_queue(p, auth_work_dummy, NULL, &g->sh);
  if (rc != NNO_OK)
    api->log(p, NNO_LOG_WARN, "cannot prepare the dummy hash: %s",
             api->err_name(rc));
}

static int auth_init(nno_plugin *p, const nno_host_api *host) {
  char err[256];
  api = host;
  self = p;
  if (!NNO_HAS(api, req_remote_addr)) {
    api->plugin_fail(p, "this host lacks ABI 1.1 (it provides %u.%u)",
                     api->abi_major, api->abi_minor);
    return NNO_ENOTSUP;
  }
  if (sodium_init() < 0) {
    api->plugin_fail(p, "cannot initialise libsodium");
    return NNO_EIO;
  }
  if (!(g = calloc(1, sizeof *g))) {
    api->plugin_fail(p, "out of memory");
    return NNO_ENOMEM;
  }
  if (auth_config_parse(api->plugin_config(p), &g->cfg, err, sizeof err)) {
    api->plugin_fail(p, "%s", err);
    free(g);
    g = NULL;
    return NNO_EINVAL;
  }
  g->sh.pw_ops = g->cfg.pw_ops;
  g->sh.pw_mem = g->cfg.pw_mem;
  g->sh.data_dir = api->host_data_dir(p);
  const char *base = api->host_base_domain(p);
  if (strlen(base) < sizeof g->base)
    for (size_t i = 0; base[i]; i++)
      g->base[i] =
          (char)(base[i] >= 'A' && base[i] <= 'Z' ? base[i] + 32 : base[i]);
  int rc;
  if ((rc = api->route_add(p, "POST", "/auth/sign-up", on_signup, NULL)) ||
      (rc = api->route_add(p, "POST", "/auth/sign-in", on_signin, NULL)) ||
      (rc = api->route_add(p, "POST", "/auth/sign-out", on_signout, NULL)) ||
      (rc = api->route_add(p, "GET", "/auth/session", on_session, NULL)) ||
      (rc = api->route_add(p, "POST", "/auth/password", on_password, NULL))) {
    api->plugin_fail(p, "cannot bind routes: %s", api->strerror(rc));
    free(g);
    g = NULL;
    return rc;
  }
  api->plugin_set_data(p, g);
  return NNO_OK;
}

static void auth_fini(nno_plugin *p) {
  if (g) sodium_memzero(g, sizeof *g);
  free(g);
  g = NULL;
}

NNO_PLUGIN(.name = "auth", .version = "1.0.0", .kind = NNO_KIND_FEATURE,
           .on_plugin_init = auth_init, .on_plugin_fini = auth_fini,
           .on_host_ready = auth_ready)
