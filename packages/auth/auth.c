/* auth: the sign-in flow of every platform (see README.md).
 *
 *   POST /auth/sign-up    create a user (when the platform allows it), sign in
 *   POST /auth/sign-in    email + password -> session token and cookie
 *   POST /auth/sign-out   end the caller's session
 *   GET  /auth/session    who the caller is
 *   POST /auth/password   change the password, ending the other sessions
 *
 * Users and their argon2id hashes live in the platform's sql resource
 * "auth" (store.c), which provisioning creates with the schema of
 * migrations/auth/; sessions belong to IAM, reached through the nno.iam
 * service. Reads and writes are the host's asynchronous sql calls; hashing
 * runs on the host's thread pool (work.c), at most `pwhash_concurrency`
 * jobs per worker at once, the rest waiting in a bounded FIFO: a burst of
 * sign-ins neither stalls the loop nor takes more than concurrency x
 * pwhash_mem_kib of memory. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>

#include <jansson.h>

#include <nno/billing.h>
#include <nno/iam.h>
#include <nno/plugin.h>
#include <nno/sdk.h>

#include "auth.h"

/* The session cookie on a platform's hosts: host-only, and the __Host-
 * prefix makes a browser refuse one set with a Domain or by another host
 * (a sibling platform's name can neither read nor plant it). */
#define HOST_COOKIE "__Host-nno_session"
/* By path (/p/{platform}/...), on hosts shared with the core API. */
#define PATH_COOKIE "nno_session"

typedef struct auth_state {
  auth_config cfg;
  auth_shared sh;
  const nno_iam_v1 *iam;
  const nno_billing_v1 *billing; /* NULL until found: no users bound */
  char base[256]; /* the host's base domain, lower-case */
  /* The hashing gate: jobs running, and jobs waiting for a slot. */
  unsigned inflight, queued;
  auth_job *head, *tail;
} auth_state;

static const nno_host_api *api;
static nno_plugin *self;
static auth_state *g;

/* ---- problems ------------------------------------------------------------ */

/* Problems come from the SDK (nno/sdk.h): a 401 carries WWW-Authenticate,
 * nno_problem_retry() adds Retry-After. */

/* An error of the nno.iam service. */
static int iam_problem(nno_req *req, int rc) {
  if (rc == NNO_ENOENT) return nno_problem(req, 404, NULL, "no such platform");
  if (rc == NNO_EBUSY)
    return nno_problem_retry(req, 503, 1, "the identity service is busy");
  api->log(self, NNO_LOG_ERROR, "identity service error: %s",
           api->err_name(rc));
  return nno_problem(req, 500, NULL, "identity service error");
}

/* A failed call on the auth database: the SDK's mapping (503 when it is
 * not provisioned or busy, 507 over the quota, ...). */
static void db_problem(nno_req *req, int err, const char *message) {
  nno_problem_storage(req, err, "the auth database", message);
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

/* nno.billing, looked up on first use: without it (or without the
 * member) a platform's users are not bounded here. */
static const nno_billing_v1 *billing_get(void) {
  const void *vt;
  uint32_t ver;
  if (g->billing) return g->billing;
  if (api->service_lookup(self, NNO_BILLING_SERVICE, 1, &vt, &ver) != NNO_OK)
    return NULL;
  const nno_billing_v1 *v = vt;
  if (v->size < offsetof(nno_billing_v1, platform_limits) + sizeof(void *))
    return NULL;
  return g->billing = v;
}

typedef struct ctx {
  const nno_iam_v1 *iam;
  char platform[AUTH_PLATFORM_MAX + 1];
  nno_caller caller;
} ctx;

/* What every route needs: IAM, the request's platform and, with
 * `need_user`, a user session of that platform. On failure the problem is
 * written and -1 returned. */
static int begin(nno_req *req, ctx *c, int need_user) {
  if (!(c->iam = iam_get())) {
    nno_problem(req, 503, NULL, "identity service unavailable");
    return -1;
  }
  nno_str s = api->req_scope(req);
  if (!auth_platform_valid(s.ptr, s.len)) {
    nno_problem(req, 404, NULL, "no platform for this request");
    return -1;
  }
  memcpy(c->platform, s.ptr, s.len);
  c->platform[s.len] = '\0';
  if (api->req_caller(req, &c->caller) != NNO_OK)
    c->caller.kind = NNO_CALLER_NONE;
  if (!need_user) return 0;
  const nno_caller *u = &c->caller;
  if (u->kind != NNO_CALLER_USER || u->platform.len != s.len ||
      memcmp(u->platform.ptr, s.ptr, s.len) != 0 || u->session.len == 0 ||
      u->session.len >= 65) {
    nno_problem(req, 401, NULL, "sign in first: this needs a user session");
    return -1;
  }
  return 0;
}

/* ---- request bodies ------------------------------------------------------ */

/* The body as a JSON object that passes the field table, or NULL after
 * answering the problem. The media type is required: a cross-site form
 * cannot send application/json without a preflight, so a page elsewhere
 * cannot sign a visitor in to an account of its choosing. */
static void body_free(json_t *o);
static json_t *body_object(nno_req *req, const nno_field *f, size_t n) {
  json_t *o;
  if (nno_body_object(req, AUTH_BODY_MAX, NNO_BODY_JSON_TYPE, &o)) return NULL;
  if (nno_fields_check(req, o, f, n)) {
    body_free(o);
    return NULL;
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

/* Copy string field `name`, bounded by body_object()'s table, into the
 * array `out`. 1 when copied, 0 when absent or null (or, which the table
 * rules out, too long: "" then). */
#define str_field(o, name, out) str_copy(o, name, out, sizeof(out))
static int str_copy(json_t *o, const char *name, char *out, size_t cap) {
  json_t *v = json_object_get(o, name);
  size_t n = json_string_length(v);
  out[0] = '\0';
  if (!json_is_string(v) || n >= cap) return 0;
  memcpy(out, json_string_value(v), n + 1);
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

/* email_valid(), or 0 after answering 422. */
static int email_ok(nno_req *req, const char *s) {
  if (email_valid(s)) return 1;
  nno_problem(req, 422, "email",
              "field \"email\": expected an address with one '@' and no "
              "spaces");
  return 0;
}

/* ---- jobs and the hashing gate ------------------------------------------- */

static void on_job_done(int status, void *ud);
static void gate_pump(void);

static auth_job *job_new(nno_req *req, const ctx *c, auth_job_kind kind) {
  auth_job *j = calloc(1, sizeof *j);
  if (!j) return NULL;
  j->req = req;
  j->sh = &g->sh;
  j->kind = kind;
  memcpy(j->platform, c->platform, sizeof j->platform);
  nno_str a = api->req_remote_addr(req);
  nno_client_key(a.ptr, a.len, j->addr, sizeof j->addr);
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

/* Hashing is over: give the slot to the next job waiting. The job goes on
 * (a write, the answer) without it. */
static void gate_release(auth_job *j) {
  if (!j->gated) return;
  j->gated = 0;
  g->inflight--;
  gate_pump();
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
    if (api->req_gone(j->req) || auth_locked_out(j)) {
      job_finish(j);
      continue;
    }
    int rc = job_start(j);
    if (rc != NNO_OK) {
      api->log(self, NNO_LOG_ERROR, "cannot queue work: %s", api->err_name(rc));
      nno_problem_retry(j->req, 503, 1, "cannot start hashing");
      job_finish(j);
      continue;
    }
    j->gated = 1;
    g->inflight++;
  }
}

/* From a callback: run j through the gate, or answer now and finish if it
 * cannot wait. */
static void submit(auth_job *j) {
  int rc = gate_submit(j);
  if (rc == NNO_OK) return;
  if (rc == NNO_EBUSY) {
    nno_problem_retry(j->req, 503, 1, "too many sign-ins in progress");
  } else {
    api->log(self, NNO_LOG_ERROR, "cannot queue work: %s", api->err_name(rc));
    nno_problem(j->req, 500, NULL, "cannot start hashing");
  }
  job_finish(j);
}

/* Open the platform's auth database for j: 0, or -1 after answering (503
 * when the platform has none: its default stack is not activated). */
static int job_db(auth_job *j) {
  int rc = api->sql_open(j->req, "auth", &j->db);
  if (rc == NNO_OK) return 0;
  db_problem(j->req, rc, NULL);
  return -1;
}

/* A statement started by store.c from a callback: on failure to start,
 * answer and finish. */
static void started(auth_job *j, int rc) {
  if (rc == NNO_OK) return;
  db_problem(j->req, rc, NULL);
  job_finish(j);
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
    nno_problem(req, 500, NULL, "out of memory");
    return -1;
  }
  size_t n = strlen(text);
  int rc = api->res_json(req, status, text, n);
  sodium_memzero(text, n);
  free(text);
  if (rc != NNO_OK) {
    nno_problem(req, 500, NULL, "cannot write the response");
    return -1;
  }
  api->res_header(req, "Cache-Control", "no-store");
  return 0;
}

/* Set-Cookie for the session (max_age >= 0), or clearing it (token NULL).
 * On the platform's hosts (every name under {platform}.{base} is routed to
 * the platform alone): HOST_COOKIE, host-only (no Domain), Path=/, so a
 * sibling platform's host never shares it. Otherwise the request came by
 * path, /p/{platform}/..., on a host that also serves the core API and
 * other platforms: PATH_COOKIE, host-only with Path=/p/{platform}, which a
 * browser sends back to this platform's paths only. A sign-out clears the
 * cookie of the form it was asked on. */
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
           "%s=%s; Path=%s%s; Max-Age=%lld; HttpOnly; Secure; SameSite=Lax",
           on_platform ? HOST_COOKIE : PATH_COOKIE, token ? token : "",
           on_platform ? "/" : "/p/", on_platform ? "" : platform,
           token ? max_age : 0);
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

/* ---- sign-in: read, verify (pool), maybe rehash, answer ------------------ */

static void signin_answer(auth_job *j) {
  /* Looked again: failures that ran alongside may have locked the account
   * since, and a locked account does not sign in. */
  if (!api->req_gone(j->req) && !auth_locked_out(j)) answer_session(j, 200);
  job_finish(j);
}

/* A fresh hash is stored on the way; failing to is not an error. */
static void signin_rehashed(nno_req *req, const nno_sql_result *res, void *ud) {
  auth_job *j = ud;
  if (res->error)
    api->log(self, NNO_LOG_WARN, "cannot store a fresh hash: %s",
             api->err_name(res->error));
  signin_answer(j);
}

static void after_signin(auth_job *j) {
  if (j->result == JR_BADPASS) {
    nno_problem(j->req, 401, NULL, "email or password is wrong");
  } else if (j->result != JR_OK) {
    nno_problem_retry(j->req, 503, 1, "not enough memory to hash the password");
  } else if (j->fresh[0]) {
    int rc = auth_store_set_hash(j, signin_rehashed);
    if (rc == NNO_OK) return;
    api->log(self, NNO_LOG_WARN, "cannot store a fresh hash: %s",
             api->err_name(rc));
    signin_answer(j);
    return;
  } else {
    signin_answer(j);
    return;
  }
  job_finish(j);
}

/* The user (or nobody: the verification costs the same) read; on to the
 * pool. */
static void signin_read(nno_req *req, const nno_sql_result *res, void *ud) {
  auth_job *j = ud;
  int found = res->error ? -1 : auth_store_row(j, res);
  if (found < 0) {
    db_problem(req, res->error ? res->error : NNO_EIO, res->error_message);
    job_finish(j);
    return;
  }
  j->found = found;
  submit(j);
}

/* ---- sign-up: read, hash (pool), insert, answer -------------------------- */

/* A taken address tells the caller it has an account: counted like a
 * failed sign-in of the address, so such probes are bounded like guesses
 * are. */
static void signup_taken(auth_job *j) {
  auth_count_failure(j);
  nno_problem(j->req, 409, NULL, "a user with this email already exists");
}

static void signup_inserted(nno_req *req, const nno_sql_result *res, void *ud) {
  auth_job *j = ud;
  if (res->error == NNO_EREFUSED) /* UNIQUE: signed up meanwhile */
    signup_taken(j);
  else if (!res->error && res->changes == 0) /* the plan's users bound */
    nno_problem_limit(req, 409, "users", j->plan,
                      (unsigned long long)j->max_users,
                      (unsigned long long)j->max_users,
                      "this platform has %llu users, the most its plan "
                      "\"%s\" allows (limit \"users\"); no account was "
                      "made",
                      (unsigned long long)j->max_users, j->plan);
  else if (res->error)
    db_problem(req, res->error, res->error_message);
  else if (!api->req_gone(req))
    answer_session(j, 201);
  job_finish(j);
}

static void after_signup(auth_job *j) {
  if (j->result != JR_OK) {
    nno_problem_retry(j->req, 503, 1, "not enough memory to hash the password");
    job_finish(j);
    return;
  }
  started(j, auth_store_insert(j, signup_inserted));
}

static void signup_read(nno_req *req, const nno_sql_result *res, void *ud) {
  auth_job *j = ud;
  int found = res->error ? -1 : res->rows.len > 2; /* "[]": nobody */
  if (found < 0) {
    db_problem(req, res->error, res->error_message);
    job_finish(j);
  } else if (found) {
    signup_taken(j);
    job_finish(j);
  } else {
    submit(j);
  }
}

/* ---- the caller's user: session info and password change ----------------- */

/* A valid session whose user is not in the database (removed by hand:
 * nothing here deletes users): end the user's sessions. */
static void user_gone(auth_job *j) {
  int rc = g->iam->session_revoke_user(j->platform, j->user.id, NULL, NULL);
  if (rc != NNO_OK && rc != NNO_ENOENT)
    api->log(self, NNO_LOG_WARN,
             "cannot end the sessions of a removed user: %s",
             api->err_name(rc));
  nno_problem(j->req, 401, NULL, "the user of this session no longer exists");
}

static void answer_whoami(auth_job *j) {
  nno_caller c;
  if (api->req_caller(j->req, &c) != NNO_OK) {
    nno_problem(j->req, 500, NULL, "the caller is unknown");
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

static void password_stored(nno_req *req, const nno_sql_result *res, void *ud) {
  auth_job *j = ud;
  if (res->error) {
    db_problem(req, res->error, res->error_message);
  } else if (res->changes != 1) {
    nno_problem(req, 409, NULL,
                "the password was changed meanwhile; try again");
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
      iam_problem(req, rc);
    } else {
      api->res_status(req, 204);
    }
  }
  job_finish(j);
}

static void after_password(auth_job *j) {
  if (j->result == JR_BADPASS) {
    nno_problem(j->req, 401, NULL, "the current password is wrong");
  } else if (j->result != JR_OK) {
    nno_problem_retry(j->req, 503, 1, "not enough memory to hash the password");
  } else {
    started(j, auth_store_set_hash(j, password_stored));
    return;
  }
  job_finish(j);
}

static void looked_up(nno_req *req, const nno_sql_result *res, void *ud) {
  auth_job *j = ud;
  int found = res->error ? -1 : auth_store_row(j, res);
  if (found < 0) {
    db_problem(req, res->error ? res->error : NNO_EIO, res->error_message);
  } else if (!found) {
    user_gone(j);
  } else if (j->then == JOB_LOOKUP) {
    answer_whoami(j);
  } else if (!api->req_gone(req) && !auth_locked_out(j)) {
    /* The password change proper: two argon2id runs, through the gate. */
    j->found = 1;
    j->kind = JOB_PASSWORD;
    submit(j);
    return;
  }
  job_finish(j);
}

static void on_job_done(int status, void *ud) {
  auth_job *j = ud;
  /* A wrong password is counted before the slot is given on (also when
   * the client has gone: it tried): the job that takes the slot is checked
   * against the limits as it starts, and must see this failure, or each
   * slot would try one guess more than the limits allow. */
  if (status != NNO_ECANCELED && j->result == JR_BADPASS)
    auth_count_failure(j);
  gate_release(j);
  if (status == NNO_ECANCELED) {
    nno_problem_retry(j->req, 503, 1, "the server is shutting down");
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
  case JOB_PASSWORD:
    after_password(j);
    break;
  case JOB_LOOKUP:
    job_finish(j); /* never queued */
    break;
  }
}

/* ---- handlers ------------------------------------------------------------ */

/* Start the job's first read: NNO_ASYNC, or NNO_OK after answering. */
static int first_read(auth_job *j, int (*read)(auth_job *, nno_sql_done_fn),
                      nno_sql_done_fn done) {
  nno_req *req = j->req;
  int rc;
  if (job_db(j)) {
    job_free(j);
    return NNO_OK;
  }
  if ((rc = read(j, done)) == NNO_OK) return NNO_ASYNC;
  job_free(j);
  db_problem(req, rc, NULL);
  return NNO_OK;
}

static int on_signup(nno_req *req, void *ud) {
  static const nno_field fields[] = {
      NNO_FIELD_STR("email", 1, AUTH_EMAIL_MIN, AUTH_EMAIL_MAX),
      NNO_FIELD_STR("password", 1, AUTH_PASS_MIN, AUTH_PASS_MAX),
      {"name", NNO_FIELD_STRING_OR_NULL, 0, 1, AUTH_NAME_MAX}};
  ctx c;
  if (begin(req, &c, 0)) return NNO_OK;
  nno_iam_access acc;
  int rc = c.iam->platform_access(c.platform, &acc);
  if (rc != NNO_OK) return iam_problem(req, rc);
  if (!acc.signup)
    return nno_problem(req, 403, NULL,
                       "this platform does not allow signing up");
  json_t *o = body_object(req, fields, sizeof fields / sizeof *fields);
  if (!o) return NNO_OK;
  auth_job *j = job_new(req, &c, JOB_SIGNUP);
  if (!j) {
    body_free(o);
    return nno_problem(req, 500, NULL, "out of memory");
  }
  str_field(o, "email", j->user.email);
  str_field(o, "password", j->password);
  j->user.has_name = str_field(o, "name", j->user.name);
  body_free(o);
  const nno_billing_v1 *b = billing_get();
  nno_plan_limits pl = {.size = sizeof pl};
  if (b && b->platform_limits(c.platform, &pl) == NNO_OK) {
    j->max_users = pl.users;
    snprintf(j->plan, sizeof j->plan, "%s", pl.name);
  }
  if (!email_ok(req, j->user.email) ||
      (j->user.has_name &&
       nno_check_name(req, "name", j->user.name, AUTH_NAME_MAX)) ||
      auth_locked_out(j)) {
    job_free(j);
    return NNO_OK;
  }
  return first_read(j, auth_store_by_email, signup_read);
}

static int on_signin(nno_req *req, void *ud) {
  static const nno_field fields[] = {
      NNO_FIELD_STR("email", 1, AUTH_EMAIL_MIN, AUTH_EMAIL_MAX),
      NNO_FIELD_STR("password", 1, 1, AUTH_PASS_MAX)};
  ctx c;
  if (begin(req, &c, 0)) return NNO_OK;
  json_t *o = body_object(req, fields, sizeof fields / sizeof *fields);
  if (!o) return NNO_OK;
  auth_job *j = job_new(req, &c, JOB_SIGNIN);
  if (!j) {
    body_free(o);
    return nno_problem(req, 500, NULL, "out of memory");
  }
  str_field(o, "email", j->user.email);
  str_field(o, "password", j->password);
  body_free(o);
  if (!email_ok(req, j->user.email) || auth_locked_out(j)) {
    job_free(j);
    return NNO_OK;
  }
  return first_read(j, auth_store_by_email, signin_read);
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

/* Read the caller's user, then answer who they are (then == JOB_LOOKUP)
 * or go on with a password change (JOB_PASSWORD; `body` holds the
 * passwords and is consumed). */
static int lookup(nno_req *req, const ctx *c, auth_job_kind then,
                  json_t *body) {
  auth_job *j = job_new(req, c, JOB_LOOKUP);
  if (!j) {
    body_free(body);
    return nno_problem(req, 500, NULL, "out of memory");
  }
  j->then = then;
  nno_str sub = c->caller.subject;
  if (!user_id_valid(sub)) {
    /* A session another package opened for a user of its own. */
    job_free(j);
    body_free(body);
    return nno_problem(req, 401, NULL,
                       "this session's user is not one of auth's");
  }
  memcpy(j->user.id, sub.ptr, sub.len);
  j->user.id[sub.len] = '\0';
  snprintf(j->session, sizeof j->session, "%.*s", (int)c->caller.session.len,
           c->caller.session.ptr);
  if (body) {
    str_field(body, "current", j->password);
    str_field(body, "new", j->new_password);
    body_free(body);
  }
  return first_read(j, auth_store_by_id, looked_up);
}

static int on_session(nno_req *req, void *ud) {
  ctx c;
  if (begin(req, &c, 1)) return NNO_OK;
  return lookup(req, &c, JOB_LOOKUP, NULL);
}

static int on_password(nno_req *req, void *ud) {
  static const nno_field fields[] = {
      NNO_FIELD_STR("current", 1, 1, AUTH_PASS_MAX),
      NNO_FIELD_STR("new", 1, AUTH_PASS_MIN, AUTH_PASS_MAX)};
  ctx c;
  if (begin(req, &c, 1)) return NNO_OK;
  json_t *o = body_object(req, fields, sizeof fields / sizeof *fields);
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
  nno_sdk_init(p, host);
  if (!NNO_HAS(api, sql_batch)) {
    api->plugin_fail(p, "this host lacks ABI 1.2 (it provides %u.%u)",
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
  auth_limits_init(&g->cfg);
  g->sh.pw_ops = g->cfg.pw_ops;
  g->sh.pw_mem = g->cfg.pw_mem;
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
