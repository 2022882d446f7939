/* Operator API: platforms (their resources are the provisioning plugin's).
 *
 *   POST   /api/v1/platforms                  create, "stacks" (Idempotency-Key)
 *   GET    /api/v1/platforms                  list: class, status, pages
 *   GET    /api/v1/platforms/{platform}             one, with ETag
 *   PATCH  /api/v1/platforms/{platform}             name, plan, owner, branding;
 *                                                   If-Match
 *   DELETE /api/v1/platforms/{platform}             keep_data; with tenants...
 *   POST   /api/v1/platforms/{platform}/suspend     status -> suspended
 *   POST   /api/v1/platforms/{platform}/resume      status -> active
 *
 * Each handler authenticates first, runs its writes in one BEGIN IMMEDIATE
 * transaction (audit row, and a changes row when routing is affected,
 * included) and answers only after COMMIT.
 *
 * With the provisioning plugin (g_reg.prov), create and delete are
 * asynchronous chains (NNO_ASYNC): each step's row is committed after the
 * step succeeded, never while a step runs (no write lock is held across a
 * call), and a failure is compensated before the answer. */
#define _XOPEN_SOURCE 700 /* nftw */
#include <errno.h>
#include <ftw.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "branding.h"
#include "http_util.h"
#include "internal.h"

/* A PATCH body: the other fields are short; a logo is at most
 * BRANDING_LOGO_MAX bytes of text. */
#define PATCH_BODY_MAX (BRANDING_LOGO_MAX + 16384)

static json_t *platform_json(const store_platform *p) {
  return json_pack("{s:s, s:s, s:s, s:s, s:s, s:o, s:s, s:s, s:I}", "id", p->id,
                   "name", p->name, "class", p->cls, "status", p->status,
                   "plan", p->plan, "owner",
                   p->has_owner ? json_string(p->owner) : json_null(),
                   "created_at", p->created_at, "updated_at", p->updated_at,
                   "version", (json_int_t)p->version);
}

/* The stored branding of platform `id` as a new object ({} when none):
 * NULL on a store error (*rc says which). */
static json_t *branding_load(const char *id, int *rc) {
  char *text = NULL;
  *rc = store_platform_branding(g_reg.db, id, &text);
  if (*rc) return NULL;
  json_t *b = text ? json_loads(text, 0, NULL) : NULL;
  free(text);
  if (!json_is_object(b)) { /* none, or (impossible) not an object */
    json_decref(b);
    b = json_object();
  }
  if (!b) *rc = STORE_ERROR;
  return b;
}

/* Answer `status` with the platform, its branding and its ETag. */
static int send_branded(nno_req *req, int status, const store_platform *p,
                        json_t *branding) {
  json_t *o = platform_json(p);
  if (o) json_object_set(o, "branding", branding);
  nno_etag(req, p->version);
  return nno_send_json(req, status, o);
}

/* Answer `status` with the platform, its branding (read now) and its
 * ETag. A list shows platforms without it (a logo is up to 64 KiB). */
static int send_platform(nno_req *req, int status, const store_platform *p) {
  int rc;
  json_t *b = branding_load(p->id, &rc);
  if (!b) return hu_store_error(req, rc);
  send_branded(req, status, p, b);
  json_decref(b);
  return NNO_OK;
}

/* Tell billing that platform `id` is on `plan` now (NULL: deleted), as
 * the caller of `req`. */
static void tell_billing(nno_req *req, const char *id, const char *plan) {
  char actor[NNO_ACTOR_MAX], rid[65];
  nno_str v = api->req_id(req);
  nno_caller_actor(req, actor, sizeof actor);
  snprintf(rid, sizeof rid, "%.*s", (int)(v.len < 64 ? v.len : 64), v.ptr);
  reg_plan_tell(id, plan, actor, rid[0] ? rid : NULL);
}

static const char *str(json_t *o, const char *k) {
  return json_string_value(json_object_get(o, k));
}

/* Read {platform}; -1 after answering 404 when it cannot be a platform id. */
static int read_id(nno_req *req, char *id) {
  if (nno_param_copy(req, "platform", id, STORE_ID_MAX + 1) == 0 &&
      hu_id_valid(id, strlen(id)))
    return 0;
  nno_str v = {"", 0};
  api->req_param(req, "platform", &v);
  nno_problem(req, 404, NULL, "no platform \"%.*s\"",
              (int)(v.len > 64 ? 64 : v.len), v.ptr);
  return -1;
}

/* Copy the optional fields name, plan and owner of `b` into *p after
 * checking them; -1 after answering 422. */
static int take_common(nno_req *req, json_t *b, store_platform *p) {
  const char *name = str(b, "name"), *plan = str(b, "plan");
  json_t *owner = json_object_get(b, "owner");
  if (name) {
    if (nno_check_name(req, "name", name, REG_NAME_MAX)) return -1;
    snprintf(p->name, sizeof p->name, "%s", name);
  }
  if (plan) {
    if (reg_plan_check(req, plan)) return -1;
    snprintf(p->plan, sizeof p->plan, "%s", plan);
  }
  if (owner) {
    p->has_owner = json_is_string(owner);
    p->owner[0] = '\0';
    if (p->has_owner) {
      if (nno_check_name(req, "owner", json_string_value(owner), REG_NAME_MAX))
        return -1;
      snprintf(p->owner, sizeof p->owner, "%s", json_string_value(owner));
    }
  }
  return 0;
}

/* ---- create ------------------------------------------------------------ */

/* Stacks a creation activates: ids and versions as the host names them. */
typedef struct stack_set {
  size_t n;
  char id[RT_MAX_STACKS][STORE_STACK_MAX + 1];
  char version[RT_MAX_STACKS][STORE_STACK_MAX + 1];
} stack_set;

/* "stacks": ["id", "id@version", ...] (at most RT_MAX_STACKS, each an
 * installed stack, pinned to an installed version or the newest, no stack
 * twice) for platform `pid`. Only versions the caller sees count; one not
 * pinned is the operator's or `pid`'s own, never another platform's
 * (stack_owner.c). -1 after answering 422. */
static int take_stacks(nno_req *req, const char *pid, json_t *arr,
                       stack_set *out) {
  char q[160], viewer[STORE_ID_MAX + 1];
  const char *vw = reg_viewer(req, viewer) ? viewer : NULL;
  size_t i;
  json_t *v;
  int pinned[RT_MAX_STACKS];
  out->n = 0;
  if (!arr) return 0;
  if (json_array_size(arr) > RT_MAX_STACKS) {
    nno_problem(req, 422, "stacks",
                "field \"stacks\": at most %d stacks, got %zu", RT_MAX_STACKS,
                json_array_size(arr));
    return -1;
  }
  json_array_foreach(arr, i, v) {
    const char *s = json_string_value(v);
    char id[STORE_STACK_MAX + 1];
    const char *at = s ? strchr(s, '@') : NULL;
    size_t idlen = s ? (at ? (size_t)(at - s) : strlen(s)) : 0;
    nno_stack *st = NULL;
    nno_str sid, sver;
    if (!s || !idlen || idlen > STORE_STACK_MAX ||
        (at && (!at[1] || strlen(at + 1) > STORE_STACK_MAX))) {
      if (s)
        nno_quote(s, q, sizeof q);
      else
        snprintf(q, sizeof q, "a %s", json_is_null(v) ? "null" : "non-string");
      nno_problem(req, 422, "stacks",
                  "field \"stacks\": item %zu: expected \"stack\" or "
                  "\"stack@version\", got %s",
                  i, q);
      return -1;
    }
    memcpy(id, s, idlen);
    id[idlen] = '\0';
    if (!reg_stack_newest_visible(vw, id)) {
      nno_quote(id, q, sizeof q);
      nno_problem(req, 422, "stacks",
                  "field \"stacks\": item %zu: no stack %s is installed", i,
                  q);
      return -1;
    }
    if (!at && !(st = reg_stack_newest_usable(pid, vw, id))) {
      nno_quote(id, q, sizeof q);
      nno_problem(req, 422, "stacks",
                  "field \"stacks\": item %zu: no version of stack %s is "
                  "the operator's or platform \"%s\"'s own: name one as "
                  "\"stack@version\"",
                  i, q, pid);
      return -1;
    }
    if (at && (api->stack_find(g_reg.p, id, at + 1, &st) != NNO_OK ||
               !reg_stack_visible(vw, id, at + 1))) {
      nno_quote(at + 1, q, sizeof q);
      nno_problem(req, 422, "stacks",
                  "field \"stacks\": item %zu: stack \"%s\" has no version "
                  "%s installed",
                  i, id, q);
      return -1;
    }
    if (api->stack_info(st, &sid, &sver) != NNO_OK ||
        sid.len > STORE_STACK_MAX || sver.len > STORE_STACK_MAX) {
      nno_problem(req, 500, NULL, "cannot read the stack's version");
      return -1;
    }
    for (size_t j = 0; j < out->n; j++)
      if (strlen(out->id[j]) == sid.len &&
          memcmp(out->id[j], sid.ptr, sid.len) == 0) {
        nno_problem(req, 422, "stacks",
                    "field \"stacks\": item %zu: stack \"%s\" is listed "
                    "twice (a platform has one version of a stack)",
                    i, id);
        return -1;
      }
    snprintf(out->id[out->n], sizeof out->id[0], "%.*s", (int)sid.len,
             sid.ptr);
    snprintf(out->version[out->n], sizeof out->version[0], "%.*s",
             (int)sver.len, sver.ptr);
    pinned[out->n] = at != NULL;
    out->n++;
  }
  /* Each stack's requirements met by the others listed. */
  const char *ids[RT_MAX_STACKS], *vers[RT_MAX_STACKS];
  for (size_t k = 0; k < out->n; k++) ids[k] = out->id[k];
  /* Items without a version: the newest with which the list holds
   * together (else the newest each, refused below with the reason). */
  reg_requires_choose(pid, ids, out->version, pinned, out->n);
  for (size_t k = 0; k < out->n; k++) vers[k] = out->version[k];
  for (size_t k = 0; k < out->n; k++) {
    nno_stack *st = NULL;
    char why[768];
    if (api->stack_find(g_reg.p, ids[k], vers[k], &st) == NNO_OK &&
        reg_requires_among(st, ids, vers, out->n, why, sizeof why)) {
      nno_problem(req, 422, "stacks", "field \"stacks\": item %zu: %s", k,
                  why);
      return -1;
    }
  }
  return 0;
}

/* Inside the open transaction: activation rows (and their audit rows) for
 * stacks [from, to) of `ss`. A store_rc. */
static int put_activations(nno_req *req, const char *pid, const stack_set *ss,
                           size_t from, size_t to) {
  char target[48];
  snprintf(target, sizeof target, "platform:%s", pid);
  for (size_t i = from; i < to; i++) {
    store_activation a;
    memset(&a, 0, sizeof a);
    snprintf(a.platform, sizeof a.platform, "%s", pid);
    snprintf(a.stack, sizeof a.stack, "%s", ss->id[i]);
    snprintf(a.version, sizeof a.version, "%s", ss->version[i]);
    nno_caller_actor(req, a.activated_by, sizeof a.activated_by);
    json_t *d = json_pack("{s:s, s:s, s:n}", "stack", a.stack, "version",
                          a.version, "previous");
    int rc = d ? STORE_OK : STORE_ERROR;
    if (!rc) rc = store_stack_add(g_reg.db, a.stack, a.version);
    if (!rc) rc = store_activation_put(g_reg.db, &a);
    if (!rc) rc = hu_audit(req, "stack.activate", target, d);
    json_decref(d);
    if (rc) return rc;
  }
  return STORE_OK;
}

/* A creation provisioned step by step (NNO_ASYNC). */
typedef struct create_op {
  nno_req *req;
  store_platform p;
  char incarnation[17];
  stack_set ss;
  size_t activated; /* stacks whose activation row is committed */
  char *text;       /* the platform's JSON: the 201 body */
  char loc[96];
  hu_idem ik;
  char step[160], message[512]; /* the failure being compensated */
} create_op;

static void create_free(create_op *op) {
  hu_idem_clear(&op->ik);
  free(op->text);
  free(op);
}

static void create_next(create_op *op);

/* Drop a pending Idempotency-Key record in a transaction of its own. */
static void idem_forget(hu_idem *ik) {
  if (!ik->active) return;
  int rc = store_begin(g_reg.db);
  if (!rc) rc = hu_idem_forget(ik);
  if (!rc) rc = store_commit(g_reg.db);
  if (rc) {
    api->log(g_reg.p, NNO_LOG_WARN,
             "cannot drop a pending Idempotency-Key (%s): retries wait for "
             "it to go stale",
             sqlite3_errmsg(g_reg.db));
    store_rollback(g_reg.db);
  }
}

/* The platform's row is gone (or could not be): answer the failure. */
static void create_answer_failure(create_op *op, const char *after) {
  char what[96];
  idem_forget(&op->ik);
  snprintf(what, sizeof what, "provisioning platform \"%s\"", op->p.id);
  reg_prov_problem(op->req, 503, what, op->step, op->message, after);
  api->res_end(op->req);
  create_free(op);
}

static void create_compensated(int status, const char *step,
                               const char *message, void *ud) {
  create_op *op = ud;
  if (status) {
    /* The platform stays "deleting": a DELETE (or the next start)
     * finishes removing it. */
    api->log(g_reg.p, NNO_LOG_ERROR,
             "cannot undo the creation of platform %s (step %s: %s)",
             op->p.id, step ? step : "?", message ? message : "?");
    create_answer_failure(op,
                          "undoing it failed too: the platform is left "
                          "\"deleting\"; DELETE it to finish");
    return;
  }
  json_t *d = json_pack("{s:s, s:s}", "step", op->step, "message",
                        op->message);
  int rc = reg_platform_forget(op->req, op->p.id, "platform.provision_failed",
                               d);
  json_decref(d);
  create_answer_failure(op, rc ? "the platform is left \"deleting\"; "
                                 "DELETE it to finish"
                               : "nothing was kept");
}

/* A step failed: stop routing the platform, then remove what this
 * creation made. */
static void create_fail(create_op *op, const char *step, const char *message) {
  store_platform tmp;
  snprintf(op->step, sizeof op->step, "%s", step && *step ? step : "?");
  snprintf(op->message, sizeof op->message, "%s",
           message && *message ? message : "no reason given");
  api->log(g_reg.p, NNO_LOG_WARN,
           "provisioning platform %s failed at %s: %s; undoing", op->p.id,
           op->step, op->message);
  int rc = store_begin(g_reg.db);
  if (!rc) rc = store_platform_set_status(g_reg.db, op->p.id, "deleting", &tmp);
  if (!rc) rc = store_change_add(g_reg.db, op->p.id);
  if (!rc) rc = store_commit(g_reg.db);
  if (rc) store_rollback(g_reg.db);
  reg_committed();
  char *stacks = reg_stacks_json(op->p.id);
  rc = g_reg.prov->platform_remove(op->p.id, op->incarnation, stacks, 0,
                                   create_compensated, op);
  free(stacks);
  if (rc) create_compensated(rc, "platform_remove", api->strerror(rc), op);
}

static void create_activated(int status, const char *step,
                             const char *message, void *ud) {
  create_op *op = ud;
  if (status) {
    create_fail(op, step, message);
    return;
  }
  size_t i = op->activated;
  int rc = store_begin(g_reg.db);
  if (!rc) rc = put_activations(op->req, op->p.id, &op->ss, i, i + 1);
  if (!rc) rc = store_change_add(g_reg.db, op->p.id);
  if (!rc) rc = store_commit(g_reg.db);
  if (rc) {
    api->log(g_reg.p, NNO_LOG_ERROR, "core.db error: %s",
             sqlite3_errmsg(g_reg.db));
    store_rollback(g_reg.db);
    char st[128];
    snprintf(st, sizeof st, "activation:%s", op->ss.id[i]);
    create_fail(op, st, "registry database error");
    return;
  }
  reg_committed();
  op->activated++;
  create_next(op);
}

/* Every step done: record the idempotency key, answer 201. */
static void create_finish(create_op *op) {
  int rc = store_begin(g_reg.db);
  if (!rc) rc = store_creation_done(g_reg.db, op->p.id);
  if (rc == STORE_NOTFOUND) rc = STORE_OK;
  if (!rc) rc = hu_idem_forget(&op->ik);
  if (!rc) rc = hu_idem_record(&op->ik, 201, op->text, op->loc);
  if (!rc) rc = store_commit(g_reg.db);
  if (rc) {
    /* The platform exists: answer so; a retry with the key gets 409. Its
     * creation row goes on its own, or the next start would undo it. */
    api->log(g_reg.p, NNO_LOG_WARN,
             "platform %s created but its Idempotency-Key not recorded: %s",
             op->p.id, sqlite3_errmsg(g_reg.db));
    store_rollback(g_reg.db);
    rc = store_creation_done(g_reg.db, op->p.id);
    if (rc && rc != STORE_NOTFOUND)
      api->log(g_reg.p, NNO_LOG_ERROR,
               "platform %s created but not recorded as answered (the next "
               "start removes it): %s",
               op->p.id, sqlite3_errmsg(g_reg.db));
  }
  tell_billing(op->req, op->p.id, op->p.plan);
  api->res_header(op->req, "Location", op->loc);
  nno_etag(op->req, op->p.version);
  nno_send_text(op->req, 201, op->text);
  api->res_end(op->req);
  create_free(op);
}

static void create_next(create_op *op) {
  if (op->activated == op->ss.n) {
    create_finish(op);
    return;
  }
  size_t i = op->activated;
  int rc = g_reg.prov->stack_activate(op->p.id, op->ss.id[i],
                                      op->ss.version[i], create_activated, op);
  if (rc) {
    char st[160];
    snprintf(st, sizeof st, "stack_activate:%s@%s", op->ss.id[i],
             op->ss.version[i]);
    create_fail(op, st, api->strerror(rc));
  }
}

static void create_made(int status, const char *step, const char *message,
                        void *ud) {
  create_op *op = ud;
  if (status)
    create_fail(op, step, message);
  else
    create_next(op);
}

static void create_start(void *ud) {
  create_op *op = ud;
  int rc = g_reg.prov->platform_create(op->p.id, op->incarnation, create_made,
                                       op);
  if (rc) create_fail(op, "platform_create", api->strerror(rc));
}

static int on_create(nno_req *req, void *ud) {
  static const nno_field fields[] = {
      NNO_FIELD("id", NNO_FIELD_STRING, 0),
      NNO_FIELD("name", NNO_FIELD_STRING, 1),
      NNO_FIELD("class", NNO_FIELD_STRING, 0),
      NNO_FIELD("plan", NNO_FIELD_STRING, 0),
      NNO_FIELD("owner", NNO_FIELD_STRING_OR_NULL, 0),
      NNO_FIELD("stacks", NNO_FIELD_ARRAY, 0)};
  json_t *b = NULL, *obj = NULL;
  char *text = NULL, loc[96], target[48];
  hu_idem ik = {0};
  store_platform p;
  create_op *op = NULL;
  stack_set *ss = NULL;
  int rc, ret = NNO_OK;
  if (!hu_authorized(req) || nno_body_object(req, 0, NNO_BODY_EMPTY_OK, &b))
    return NNO_OK;
  if (nno_fields_check(req, b, fields, sizeof fields / sizeof fields[0]))
    goto done;
  memset(&p, 0, sizeof p);
  const char *id = str(b, "id"), *cls = str(b, "class");
  if (id && nno_check_id(req, "id", id, STORE_PLATFORM_ID_MIN, STORE_ID_MAX))
    goto done;
  if (id &&
      (strcmp(id, RT_CORE_LABEL) == 0 || strcmp(id, RT_ADMIN_LABEL) == 0)) {
    /* api.{baseDomain} and admin.{baseDomain} are the core API's hosts
     * (the operator view's for the latter), not a platform's. */
    nno_problem(req, 422, "id",
                "field \"id\": \"%s\" is reserved for the core API's host "
                "name",
                id);
    goto done;
  }
  if (id)
    snprintf(p.id, sizeof p.id, "%s", id);
  else
    hu_random_id("p-", p.id, sizeof p.id);
  if (cls && strcmp(cls, "platform") != 0 && strcmp(cls, "user_project") != 0) {
    char q[128];
    nno_quote(cls, q, sizeof q);
    nno_problem(req, 422, "class",
                "field \"class\": expected \"platform\" or \"user_project\", "
                "got %s",
                q);
    goto done;
  }
  snprintf(p.cls, sizeof p.cls, "%s", cls ? cls : "platform");
  snprintf(p.plan, sizeof p.plan, "%s", reg_default_plan());
  snprintf(p.status, sizeof p.status, "active");
  if (take_common(req, b, &p)) goto done;
  if (!(ss = calloc(1, sizeof *ss))) {
    nno_problem(req, 500, NULL, "out of memory");
    goto done;
  }
  if (take_stacks(req, p.id, json_object_get(b, "stacks"), ss)) goto done;
  if (ss->n) {
    reg_resolve_stacks();
    if ((rc = reg_catalogue_sync())) {
      hu_store_error(req, rc);
      goto done;
    }
  }

  if ((rc = store_begin(g_reg.db)) != 0) {
    hu_store_error(req, rc);
    goto done;
  }
  int ir = hu_idem_begin_wait(req, &ik, 1);
  if (ir) {
    store_rollback(g_reg.db);
    if (ir == 2) ret = reg_idem_wait(req, on_create, ud);
    goto done;
  }
  rc = store_platform_insert(g_reg.db, &p);
  if (rc == STORE_EXISTS) {
    store_rollback(g_reg.db);
    nno_problem(req, 409, NULL, "platform \"%s\" already exists", p.id);
    goto done;
  }
  /* Versions a deleted platform of this id left (active elsewhere when
   * it went) are not a newcomer's to inherit. */
  char left[512];
  size_t nleft = reg_owned_versions(p.id, left, sizeof left);
  if (nleft) {
    nno_problem(req, 409, NULL,
                "platform \"%s\" cannot be created: a deleted platform of "
                "that id still owns %zu installed stack version%s (%s%s), "
                "left because they were active elsewhere when it went; "
                "deactivate any still active and remove them (nno stack "
                "remove ID VERSION), then create it again",
                p.id, nleft, nleft == 1 ? "" : "s", left,
                strlen(left) + 1 >= sizeof left ? ", ..." : "");
    store_rollback(g_reg.db);
    goto done;
  }
  /* A new platform has no branding yet. */
  if (!rc && (!(obj = platform_json(&p)) ||
              json_object_set_new(obj, "branding", json_object()) ||
              !(text = nno_json_text(obj))))
    rc = STORE_ERROR;
  snprintf(loc, sizeof loc, "/api/v1/platforms/%s", p.id);
  snprintf(target, sizeof target, "platform:%s", p.id);
  if (rc || (rc = hu_audit(req, "platform.create", target, obj)) ||
      (rc = store_change_add(g_reg.db, p.id))) {
    hu_fail(req, rc);
    goto done;
  }
  if (g_reg.prov) {
    /* Commit the row, then provision it step by step; the key is recorded
     * once every step succeeded. */
    if (!(op = calloc(1, sizeof *op))) rc = STORE_ERROR;
    if (!rc)
      rc = store_platform_incarnation(g_reg.db, p.id, op->incarnation,
                                      sizeof op->incarnation);
    /* Concurrent retries with the key wait for this one's answer. */
    if (!rc) rc = hu_idem_pending(&ik);
    /* Undone at the next start if this process dies before answering. */
    if (!rc)
      rc = store_creation_put(g_reg.db, p.id, (int64_t)getpid(),
                              ik.active ? ik.e.key : NULL,
                              ik.active ? ik.e.actor : NULL);
    if (rc || (rc = store_commit(g_reg.db))) {
      hu_fail(req, rc);
      goto done;
    }
    reg_committed();
    op->req = req;
    op->p = p;
    op->ss = *ss;
    op->text = text;
    op->ik = ik;
    snprintf(op->loc, sizeof op->loc, "%s", loc);
    text = NULL;
    memset(&ik, 0, sizeof ik);
    if ((rc = reg_defer(create_start, op)) != 0) {
      /* Nothing was provisioned: take the row back and answer now. */
      json_t *d = json_pack("{s:s, s:s}", "step", "platform_create",
                            "message", api->strerror(rc));
      reg_platform_forget(req, p.id, "platform.provision_failed", d);
      idem_forget(&op->ik);
      json_decref(d);
      char what[96];
      snprintf(what, sizeof what, "provisioning platform \"%s\"", p.id);
      reg_prov_problem(req, 503, what, "platform_create", api->strerror(rc),
                       "nothing was kept");
      create_free(op);
      op = NULL;
      goto done;
    }
    op = NULL;
    ret = NNO_ASYNC;
    goto done;
  }
  /* Without provisioning the stacks are activations only (routing). */
  if ((rc = put_activations(req, p.id, ss, 0, ss->n)) ||
      (rc = hu_idem_record(&ik, 201, text, loc)) ||
      (rc = store_commit(g_reg.db))) {
    hu_fail(req, rc);
    goto done;
  }
  reg_committed();
  tell_billing(req, p.id, p.plan);
  api->res_header(req, "Location", loc);
  nno_etag(req, p.version);
  nno_send_text(req, 201, text);
done:
  hu_idem_clear(&ik);
  free(op);
  free(ss);
  free(text);
  json_decref(obj);
  json_decref(b);
  return ret;
}

static int list_cb(void *ud, const store_platform *p) {
  nno_pager *pg = ud;
  return nno_pager_full(pg) ? 0 : hu_pager_add(pg, platform_json(p), p->id);
}

static int on_list(nno_req *req, void *ud) {
  char after[600], cls[32], status[32];
  nno_pager pg;
  if (!hu_authorized(req) || nno_pager_start(req, &pg, REG_PAGE_DEFAULT,
                                             REG_PAGE_MAX, after, sizeof after))
    return NNO_OK;
  int hc = nno_query_copy(req, "class", cls, sizeof cls);
  int hs = hc < 0 ? -1 : nno_query_copy(req, "status", status, sizeof status);
  if (hc < 0 || hs < 0) goto done;
  if (hc && strcmp(cls, "platform") != 0 && strcmp(cls, "user_project") != 0) {
    nno_problem(req, 422, "class",
                "field \"class\": expected platform or "
                "user_project");
    goto done;
  }
  if (hs && strcmp(status, "active") != 0 && strcmp(status, "suspended") != 0 &&
      strcmp(status, "deleting") != 0) {
    nno_problem(req, 422, "status",
                "field \"status\": expected active, suspended or "
                "deleting");
    goto done;
  }
  int rc =
      store_platform_list(g_reg.db, hc ? cls : NULL, hs ? status : NULL,
                          after[0] ? after : NULL, pg.limit + 1, list_cb, &pg);
  if (rc)
    hu_store_error(req, rc);
  else
    nno_pager_send(req, &pg);
done:
  nno_pager_free(&pg);
  return NNO_OK;
}

static int on_get(nno_req *req, void *ud) {
  char id[STORE_ID_MAX + 1];
  store_platform p;
  if (!hu_authorized(req) || read_id(req, id)) return NNO_OK;
  int rc = store_platform_get(g_reg.db, id, &p);
  if (rc == STORE_NOTFOUND)
    return nno_problem(req, 404, NULL, "no platform \"%s\"", id);
  if (rc) return hu_store_error(req, rc);
  return send_platform(req, 200, &p);
}

/* Inside a write transaction: load platform {platform} and check If-Match.
 * -1 after rolling back and answering 404 or 412. */
static int load_for_write(nno_req *req, const char *id, store_platform *p) {
  int rc = store_platform_get(g_reg.db, id, p);
  if (rc) {
    store_rollback(g_reg.db);
    if (rc == STORE_NOTFOUND)
      nno_problem(req, 404, NULL, "no platform \"%s\"", id);
    else
      hu_store_error(req, rc);
    return -1;
  }
  if (!nno_if_match(req, p->version)) {
    store_rollback(g_reg.db);
    nno_problem(req, 412, NULL,
                "If-Match does not match the platform's current ETag "
                "\"v%lld\"",
                (long long)p->version);
    return -1;
  }
  return 0;
}

/* Inside the PATCH's transaction: store the checked branding `next` (NULL:
 * cleared) in place of `before`, and audit which members changed (never
 * their values: a logo is large). */
static int branding_write(nno_req *req, const char *id, const char *target,
                          json_t *before, json_t *next) {
  char *text = next ? json_dumps(next, JSON_COMPACT) : NULL;
  if (next && !text) return STORE_ERROR;
  json_t *changed = branding_changed(json_object_size(before) ? before : NULL,
                                     next);
  json_t *detail = changed ? json_pack("{s:o, s:b}", "changed", changed,
                                       "cleared", next == NULL)
                           : NULL;
  int rc = detail ? store_platform_set_branding(g_reg.db, id, text)
                  : STORE_ERROR;
  if (!rc) rc = hu_audit(req, "platform.branding", target, detail);
  json_decref(detail);
  free(text);
  return rc;
}

static int on_patch(nno_req *req, void *ud) {
  static const nno_field fields[] = {
      NNO_FIELD("name", NNO_FIELD_STRING, 0),
      NNO_FIELD("plan", NNO_FIELD_STRING, 0),
      NNO_FIELD("owner", NNO_FIELD_STRING_OR_NULL, 0),
      NNO_FIELD("branding", NNO_FIELD_ANY, 0)};
  char id[STORE_ID_MAX + 1], target[48], field[BRANDING_FIELD_MAX],
      msg[256];
  json_t *b = NULL, *next = NULL, *before = NULL;
  store_platform p;
  int rc;
  if (!hu_authorized(req) || read_id(req, id) ||
      nno_body_object(req, PATCH_BODY_MAX, NNO_BODY_EMPTY_OK, &b))
    return NNO_OK;
  if (nno_fields_check(req, b, fields, sizeof fields / sizeof fields[0]))
    goto done;
  json_t *branding = json_object_get(b, "branding");
  if (branding && branding_check(branding, &next, field, msg, sizeof msg)) {
    nno_problem(req, 422, field, "%s", msg);
    goto done;
  }
  if ((rc = store_begin(g_reg.db)) != 0) {
    hu_store_error(req, rc);
    goto done;
  }
  if (load_for_write(req, id, &p)) goto done;
  char from[sizeof p.plan];
  snprintf(from, sizeof from, "%s", p.plan);
  if (take_common(req, b, &p)) {
    store_rollback(g_reg.db);
    goto done;
  }
  if (!(before = branding_load(id, &rc))) {
    store_rollback(g_reg.db);
    hu_store_error(req, rc);
    goto done;
  }
  size_t ncommon = json_object_size(b) - (branding ? 1 : 0);
  json_t *empty = json_object();
  int rebrand = branding && !json_equal(before, next ? next : empty);
  json_decref(empty);
  if (ncommon == 0 && !rebrand) { /* nothing to change */
    store_rollback(g_reg.db);
    send_branded(req, 200, &p, before);
    goto done;
  }
  snprintf(target, sizeof target, "platform:%s", id);
  rc = STORE_OK;
  if (rebrand) rc = branding_write(req, id, target, before, next);
  if (!rc && ncommon) {
    json_t *changes = json_deep_copy(b);
    json_object_del(changes, "branding");
    json_t *detail = json_pack("{s:o}", "changes", changes);
    rc = hu_audit(req, "platform.update", target, detail);
    json_decref(detail);
    if (!rc && strcmp(from, p.plan) != 0) {
      char actor[NNO_ACTOR_MAX], rid[65];
      nno_str v = api->req_id(req);
      nno_caller_actor(req, actor, sizeof actor);
      snprintf(rid, sizeof rid, "%.*s", (int)(v.len < 64 ? v.len : 64),
               v.ptr);
      rc = reg_plan_audit(actor, rid, id, from, p.plan, NULL);
    }
    /* The plan is in every worker's table (rate limits): replay it. */
    if (!rc) rc = store_change_add(g_reg.db, id);
  }
  /* One version bump for the whole PATCH (the ETag). */
  if (!rc) rc = store_platform_update(g_reg.db, &p, p.version);
  if (!rc) rc = store_commit(g_reg.db);
  if (rc) {
    hu_fail(req, rc);
    goto done;
  }
  if (ncommon) reg_committed();
  if (strcmp(from, p.plan) != 0) tell_billing(req, id, p.plan);
  if (rebrand && !next) json_object_clear(before);
  send_branded(req, 200, &p, rebrand && next ? next : before);
done:
  json_decref(next);
  json_decref(before);
  json_decref(b);
  return NNO_OK;
}

static int remove_entry(const char *path, const struct stat *sb, int flag,
                        struct FTW *ftw) {
  (void)sb, (void)ftw;
  int rc = flag == FTW_DP ? rmdir(path) : unlink(path);
  return rc != 0 && errno != ENOENT ? -1 : 0;
}

/* Remove DATA/platforms/{id}/ (the auth package's users, and whatever
 * else was kept for the platform) once its deletion has committed; the
 * deletion's transaction left a platform_removals row, dropped here once
 * the folder is gone. A crash in between leaves the row for the next
 * start (api_platforms_sweep); meanwhile what the folder holds carries the
 * old platform's incarnation and is refused by a new platform of the same
 * id. Symbolic links are removed, never followed. */
static void remove_platform_dir(const char *id) {
  char path[PATH_MAX];
  const char *data = api->host_data_dir(g_reg.p);
  if (snprintf(path, sizeof path, "%s/platforms/%s", data, id) >=
      (int)sizeof path)
    return;
  if (nftw(path, remove_entry, 16, FTW_DEPTH | FTW_PHYS) != 0 &&
      errno != ENOENT) {
    api->log(g_reg.p, NNO_LOG_WARN, "cannot remove %s: %s", path,
             strerror(errno));
    return;
  }
  int rc = store_removal_done(g_reg.db, id);
  if (rc)
    api->log(g_reg.p, NNO_LOG_WARN,
             "removed %s but cannot record it (%s): retried at next start",
             path, sqlite3_errmsg(g_reg.db));
}

typedef struct sweep_list {
  size_t n;
  char id[64][STORE_ID_MAX + 1];
  int exists[64];
} sweep_list;

static int sweep_one(void *ud, const char *id, int exists,
                     const char *incarnation) {
  (void)incarnation;
  sweep_list *l = ud;
  if (l->n == 64) return 1; /* the rest at the next start */
  snprintf(l->id[l->n], sizeof l->id[0], "%s", id);
  l->exists[l->n++] = exists;
  return 0;
}

void api_platforms_sweep(void) {
  sweep_list *l = calloc(1, sizeof *l);
  if (!l) return;
  int rc = store_removal_each(g_reg.db, sweep_one, l);
  if (rc && rc != 1)
    api->log(g_reg.p, NNO_LOG_WARN, "cannot list deleted platforms: %s",
             sqlite3_errmsg(g_reg.db));
  for (size_t i = 0; i < l->n; i++) {
    if (!l->exists[i]) {
      remove_platform_dir(l->id[i]);
      continue;
    }
    /* Created again since: the folder is the new platform's now (its
     * users are checked against its incarnation). */
    if (store_removal_done(g_reg.db, l->id[i]))
      api->log(g_reg.p, NNO_LOG_WARN, "cannot update platform_removals: %s",
               sqlite3_errmsg(g_reg.db));
  }
  free(l);
}

/* A deletion through provisioning (NNO_ASYNC). */
typedef struct delete_op {
  nno_req *req;
  char id[STORE_ID_MAX + 1];
  char incarnation[17];
  int keep_data;
  char *stacks; /* the active stacks as JSON text, or NULL */
  json_t *detail;
} delete_op;

static void delete_free(delete_op *op) {
  free(op->stacks);
  json_decref(op->detail);
  free(op);
}

static void delete_removed(int status, const char *step, const char *message,
                           void *ud) {
  delete_op *op = ud;
  char what[96];
  snprintf(what, sizeof what, "removing platform \"%s\"", op->id);
  if (status) {
    api->log(g_reg.p, NNO_LOG_WARN, "removing platform %s failed at %s: %s",
             op->id, step ? step : "?", message ? message : "?");
    reg_prov_problem(op->req, 503, what, step, message,
                     "the platform stays \"deleting\"; send the DELETE "
                     "again");
    goto end;
  }
  if (op->keep_data && message)
    json_object_set_new(op->detail, "archive", json_string(message));
  int rc = reg_platform_forget(op->req, op->id, "platform.delete", op->detail);
  if (!rc) tell_billing(op->req, op->id, NULL);
  if (rc) {
    hu_store_error(op->req, rc);
  } else if (op->keep_data) {
    nno_send_json(op->req, 200,
                  json_pack("{s:s?}", "archive", message ? message : NULL));
  } else {
    api->res_status(op->req, 204);
  }
end:
  api->res_end(op->req);
  delete_free(op);
}

static void delete_start(void *ud) {
  delete_op *op = ud;
  int rc = g_reg.prov->platform_remove(op->id, op->incarnation, op->stacks,
                                       op->keep_data, delete_removed, op);
  if (rc) delete_removed(rc, "platform_remove", api->strerror(rc), op);
}

/* Without provisioning: one transaction, then the folder. */
static int delete_here(nno_req *req, const char *id, store_platform *p) {
  char target[48];
  int rc;
  snprintf(target, sizeof target, "platform:%s", id);
  json_t *detail = platform_json(p);
  if ((rc = store_platform_delete(g_reg.db, id)) ||
      (rc = hu_audit(req, "platform.delete", target, detail)) ||
      (rc = store_change_add(g_reg.db, id)) || (rc = store_commit(g_reg.db))) {
    json_decref(detail);
    return hu_fail(req, rc);
  }
  json_decref(detail);
  reg_committed();
  reg_platform_stacks_drop(id);
  tell_billing(req, id, NULL);
  remove_platform_dir(id);
  api->res_status(req, 204);
  return NNO_OK;
}

/* The query of a DELETE may name keep_data, once, and nothing else: a
 * misspelt or repeated parameter would otherwise delete the platform's
 * data without the archive it asked for. 0, or -1 after answering 422. */
static int delete_query_ok(nno_req *req) {
  static const char want[] = "keep_data";
  nno_str q = api->req_query(req);
  int seen = 0;
  size_t i = 0;
  while (i < q.len) {
    const char *amp = memchr(q.ptr + i, '&', q.len - i);
    size_t end = amp ? (size_t)(amp - q.ptr) : q.len;
    const char *eq = memchr(q.ptr + i, '=', end - i);
    size_t n = (eq ? (size_t)(eq - q.ptr) : end) - i;
    if (end > i) {
      if (n != sizeof want - 1 || memcmp(q.ptr + i, want, n) != 0) {
        char name[64], quoted[64];
        snprintf(name, sizeof name, "%.*s", n > 63 ? 63 : (int)n, q.ptr + i);
        nno_quote(name, quoted, sizeof quoted);
        nno_problem(req, 422, NULL,
                    "unknown query parameter %s: a platform's DELETE takes "
                    "keep_data=true|false only; nothing was deleted",
                    quoted);
        return -1;
      }
      if (seen++) {
        nno_problem(req, 422, "keep_data",
                    "field \"keep_data\": given more than once; nothing "
                    "was deleted");
        return -1;
      }
    }
    i = end + 1;
  }
  return 0;
}

static int on_delete(nno_req *req, void *ud) {
  char id[STORE_ID_MAX + 1], kd[16];
  store_platform p;
  int rc;
  if (!hu_authorized(req) || read_id(req, id)) return NNO_OK;
  if (delete_query_ok(req)) return NNO_OK;
  int hk = nno_query_copy(req, "keep_data", kd, sizeof kd);
  if (hk < 0) return NNO_OK;
  if (hk && strcmp(kd, "true") != 0 && strcmp(kd, "false") != 0)
    return nno_problem(req, 422, "keep_data",
                       "field \"keep_data\": expected true or false");
  int keep = hk && strcmp(kd, "true") == 0;
  if (keep && !g_reg.prov)
    return nno_problem(req, 422, "keep_data",
                       "field \"keep_data\": keeping a platform's data needs "
                       "the provisioning plugin (nno.provisioning), which is "
                       "not loaded; nothing was deleted");
  if ((rc = store_begin(g_reg.db)) != 0) return hu_store_error(req, rc);
  if (load_for_write(req, id, &p)) return NNO_OK;
  if (!g_reg.prov) return delete_here(req, id, &p);

  /* Stop routing it first (every worker, on its next request), then
   * remove what it has; the row goes last. A platform already "deleting"
   * (a failed or interrupted deletion) is removed again: idempotent. */
  delete_op *op = calloc(1, sizeof *op);
  json_t *detail = platform_json(&p);
  if (!op || !detail) rc = STORE_ERROR;
  if (!rc)
    rc = store_platform_incarnation_any(g_reg.db, id, op->incarnation,
                                        sizeof op->incarnation);
  if (!rc && strcmp(p.status, "deleting") != 0) {
    store_platform tmp;
    if (!(rc = store_platform_set_status(g_reg.db, id, "deleting", &tmp)))
      rc = store_change_add(g_reg.db, id);
  }
  if (!rc && !(op->stacks = reg_stacks_json(id))) rc = STORE_ERROR;
  if (rc || (rc = store_commit(g_reg.db))) {
    if (op) free(op->stacks);
    free(op);
    json_decref(detail);
    return hu_fail(req, rc);
  }
  reg_committed();
  op->req = req;
  snprintf(op->id, sizeof op->id, "%s", id);
  op->keep_data = keep;
  op->detail = detail;
  json_object_set_new(detail, "keep_data", json_boolean(keep));
  if ((rc = reg_defer(delete_start, op)) != 0) {
    delete_free(op);
    return nno_problem(req, 503, NULL,
                       "cannot start removing platform \"%s\" (%s); it stays "
                       "\"deleting\": send the DELETE again",
                       id, api->strerror(rc));
  }
  return NNO_ASYNC;
}

/* suspend and resume: ud is the target status. The body may give a
 * "reason" (suspend only), kept with the platform and audited. An
 * operator's suspend of a platform a service (billing) suspended makes
 * the suspension the operator's: only the operator lifts it then. */
static int on_status(nno_req *req, void *ud) {
  static const nno_field fields[] = {NNO_FIELD_STR("reason", 0, 1, 256)};
  const char *want = ud;
  int suspend = strcmp(want, "suspended") == 0;
  char id[STORE_ID_MAX + 1], actor[NNO_ACTOR_MAX], rid[65], by[129] = "";
  store_platform p;
  json_t *b = NULL;
  int rc;
  if (!hu_authorized(req) || read_id(req, id)) return NNO_OK;
  if (nno_body_object(req, 1024, NNO_BODY_EMPTY_OK, &b)) return NNO_OK;
  if (nno_fields_check(req, b, fields, suspend ? 1 : 0)) {
    json_decref(b);
    return NNO_OK;
  }
  char reason[257];
  snprintf(reason, sizeof reason, "%s", str(b, "reason") ? str(b, "reason") : "");
  json_decref(b);
  if ((rc = store_begin(g_reg.db)) != 0) return hu_store_error(req, rc);
  if (load_for_write(req, id, &p)) return NNO_OK;
  if ((rc = store_platform_suspender(g_reg.db, id, by, sizeof by)) != 0) {
    store_rollback(g_reg.db);
    return hu_store_error(req, rc);
  }
  if (strcmp(p.status, "deleting") == 0) {
    store_rollback(g_reg.db);
    return nno_problem(req, 409, NULL, "platform %s is being deleted", id);
  }
  /* Already there: nothing to do, unless the suspension is a service's. */
  if (strcmp(p.status, want) == 0 &&
      (!suspend || strcmp(by, "operator") == 0)) {
    store_rollback(g_reg.db);
    return send_platform(req, 200, &p);
  }
  nno_str v = api->req_id(req);
  nno_caller_actor(req, actor, sizeof actor);
  snprintf(rid, sizeof rid, "%.*s", (int)(v.len < 64 ? v.len : 64), v.ptr);
  if ((rc = reg_status_write(id, want, actor, "operator", rid,
                             reason[0] ? reason : NULL, &p)))
    return hu_fail(req, rc);
  reg_committed();
  return send_platform(req, 200, &p);
}

int api_platforms_init(nno_plugin *p) {
  static const struct {
    const char *method, *path;
    nno_handler_fn fn;
    void *ud;
  } routes[] = {
      {"POST", "/api/v1/platforms", on_create, NULL},
      {"GET", "/api/v1/platforms", on_list, NULL},
      {"GET", "/api/v1/platforms/{platform}", on_get, NULL},
      {"PATCH", "/api/v1/platforms/{platform}", on_patch, NULL},
      {"DELETE", "/api/v1/platforms/{platform}", on_delete, NULL},
      {"POST", "/api/v1/platforms/{platform}/suspend", on_status,
       (void *)"suspended"},
      {"POST", "/api/v1/platforms/{platform}/resume", on_status, (void *)"active"},
  };
  for (size_t i = 0; i < sizeof routes / sizeof routes[0]; i++) {
    int rc = api->route_add(p, routes[i].method, routes[i].path, routes[i].fn,
                            routes[i].ud);
    if (rc) return rc;
  }
  return NNO_OK;
}
