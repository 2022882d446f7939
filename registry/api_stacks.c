/* Operator API: the stack catalogue and activations per platform.
 *
 *   GET    /api/v1/stacks                           catalogue, pages
 *   GET    /api/v1/stacks/{id}                      one stack's versions
 *   POST   /api/v1/platforms/{platform}/stacks            activate
 * (Idempotency-Key) GET    /api/v1/platforms/{platform}/stacks activations,
 * pages DELETE /api/v1/platforms/{platform}/stacks/{stack}    deactivate
 *
 * The catalogue mirrors what the host loaded (reg_catalogue_sync); an
 * activation must name a loaded stack version, so it can be routed.
 *
 * With the provisioning plugin, activation (first, upgrade or rollback)
 * calls stack_activate and deactivation stack_deactivate before the row
 * changes (NNO_ASYNC): a failure answers a problem naming the step and
 * leaves the activation as it was.
 *
 * One move at a time per platform, across workers: an activation or
 * deactivation that provisions takes the platform's row in
 * platform_moves in the transaction that decides it, and drops it with
 * its outcome; another one meanwhile answers 409 "platform p is moving
 * stack s to v; retry". Activating the version already active provisions
 * again, which brings the databases back to that version's migrations if
 * they disagree. */
#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "http_util.h"
#include "internal.h"

static json_t *stack_json(const char *id, const char *const *versions,
                          size_t n) {
  json_t *v = json_array();
  for (size_t i = 0; v && i < n; i++)
    if (json_array_append_new(v, json_string(versions[i]))) {
      json_decref(v);
      v = NULL;
    }
  json_t *d = v ? reg_stack_details(id, versions, n) : NULL;
  if (!d) json_decref(v);
  return d ? json_pack("{s:s, s:o, s:o}", "id", id, "versions", v, "details",
                       d)
           : NULL;
}

static json_t *activation_json(const store_activation *a) {
  return json_pack("{s:s, s:s, s:s, s:s, s:s}", "platform", a->platform,
                   "stack", a->stack, "version", a->version, "activated_at",
                   a->activated_at, "activated_by", a->activated_by);
}

/* The catalogue must reflect this worker's stacks before it is read. */
static int need_catalogue(nno_req *req) {
  reg_resolve_stacks();
  int rc = reg_catalogue_sync();
  if (rc) hu_store_error(req, rc);
  return rc ? -1 : 0;
}

/* The versions of `id` that `viewer` sees (NULL: all), into keep; their
 * number. */
static size_t seen(const char *viewer, const char *id,
                   const char *const *versions, size_t n,
                   const char **keep) {
  size_t k = 0;
  for (size_t i = 0; i < n; i++)
    if (reg_stack_visible(viewer, id, versions[i])) keep[k++] = versions[i];
  return k;
}

/* A listing: the pager and who reads it. */
typedef struct list_ctx {
  nno_pager *pg;
  const char *viewer; /* NULL: the operator */
} list_ctx;

static int stack_cb(void *ud, const char *id, const char *const *versions,
                    size_t n) {
  list_ctx *l = ud;
  const char **keep = n ? malloc(n * sizeof *keep) : NULL;
  if (n && !keep) return STORE_ERROR;
  size_t k = seen(l->viewer, id, versions, n, keep);
  int rc = nno_pager_full(l->pg) || (n && !k)
               ? 0
               : hu_pager_add(l->pg, stack_json(id, keep, k), id);
  free(keep);
  return rc;
}

static int on_list(nno_req *req, void *ud) {
  char after[600], viewer[STORE_ID_MAX + 1];
  nno_pager pg;
  if (!hu_authorized(req) || need_catalogue(req) ||
      nno_pager_start(req, &pg, REG_PAGE_DEFAULT, REG_PAGE_MAX, after,
                      sizeof after))
    return NNO_OK;
  list_ctx l = {&pg, reg_viewer(req, viewer) ? viewer : NULL};
  /* Stacks a platform's caller does not see are skipped: read on until
   * the page is full instead of counting rows. */
  int rc = store_stack_list(g_reg.db, after[0] ? after : NULL,
                            l.viewer ? -1 : pg.limit + 1, stack_cb, &l);
  if (rc)
    hu_store_error(req, rc);
  else
    nno_pager_send(req, &pg);
  nno_pager_free(&pg);
  return NNO_OK;
}

/* One stack for a viewer (one_ctx): NULL out when it sees none of it. */
typedef struct one_ctx {
  const char *viewer;
  json_t *out;
} one_ctx;

static int one_cb(void *ud, const char *id, const char *const *versions,
                  size_t n) {
  one_ctx *o = ud;
  const char **keep = n ? malloc(n * sizeof *keep) : NULL;
  if (n && !keep) return STORE_ERROR;
  size_t k = seen(o->viewer, id, versions, n, keep);
  int rc = 0;
  if (!n || k) {
    o->out = stack_json(id, keep, k);
    rc = o->out ? 0 : STORE_ERROR;
  }
  free(keep);
  return rc;
}

static int on_get(nno_req *req, void *ud) {
  char id[STORE_STACK_MAX + 1], viewer[STORE_ID_MAX + 1];
  if (!hu_authorized(req) || need_catalogue(req)) return NNO_OK;
  if (nno_param_copy(req, "id", id, sizeof id))
    return nno_problem(req, 404, NULL, "no such stack");
  one_ctx o = {reg_viewer(req, viewer) ? viewer : NULL, NULL};
  int rc = store_stack_get(g_reg.db, id, one_cb, &o);
  json_t *out = o.out;
  if (rc == STORE_OK && !out) rc = STORE_NOTFOUND;
  if (rc == STORE_NOTFOUND)
    return nno_problem(req, 404, NULL, "no stack \"%s\"", id);
  if (rc) return hu_store_error(req, rc);
  return nno_send_json(req, 200, out);
}

static int count_cb(void *ud, const store_activation *a) {
  (*(size_t *)ud)++;
  return 0;
}

/* A platform being deleted takes no activation: 409, -1. */
static int not_deleting(nno_req *req, const char *pid) {
  char st[16];
  if (store_platform_status(g_reg.db, pid, st, sizeof st) != STORE_OK ||
      strcmp(st, "deleting") != 0)
    return 0;
  nno_problem(req, 409, NULL, "platform %s is being deleted", pid);
  return -1;
}

/* Inside an open transaction: write activation `a` (replacing the version
 * `previous`, NULL for a first activation), its audit and changes rows,
 * the idempotency record, and commit. On success *text is the answer's
 * body (malloc'd). A store_rc; the caller rolls back on error. */
static int put_activation(nno_req *req, store_activation *a,
                          const char *previous, hu_idem *ik, int status,
                          char **text) {
  char target[48];
  snprintf(target, sizeof target, "platform:%s", a->platform);
  /* The catalogue row may be missing if another worker's sync removed a
   * version this one still serves; add it back inside the transaction.
   * A pending record of the key (the asynchronous path) makes way for the
   * answer. */
  int rc = hu_idem_forget(ik);
  if (!rc) rc = store_stack_add(g_reg.db, a->stack, a->version);
  if (!rc) rc = store_activation_put(g_reg.db, a);
  if (rc) return rc;
  json_t *obj = activation_json(a);
  json_t *detail =
      json_pack("{s:s, s:s, s:o}", "stack", a->stack, "version", a->version,
                "previous", previous ? json_string(previous) : json_null());
  *text = obj ? nno_json_text(obj) : NULL;
  json_decref(obj);
  if (!*text || !detail ||
      (rc = hu_audit(req, "stack.activate", target, detail)) ||
      (rc = store_change_add(g_reg.db, a->platform)) ||
      (rc = hu_idem_record(ik, status, *text, NULL)) ||
      (rc = store_commit(g_reg.db)))
    rc = rc ? rc : STORE_ERROR;
  json_decref(detail);
  if (rc) {
    free(*text);
    *text = NULL;
  }
  return rc;
}

/* Inside an open transaction: take platform `pid` for moving `stack` to
 * `version` (NULL: deactivating). 0, or -1 after rolling back and
 * answering 409 (another move in progress) or the store's error. A row
 * whose worker is gone is taken over. */
static int move_take(nno_req *req, const char *pid, const char *stack,
                     const char *version) {
  char hs[STORE_STACK_MAX + 1] = "", hv[STORE_STACK_MAX + 1] = "";
  int64_t hpid = 0;
  int rc = store_move_take(g_reg.db, pid, stack, version, (int64_t)getpid(), hs,
                           hv, &hpid);
  if (rc == STORE_EXISTS && hpid > 0 && hpid != (int64_t)getpid() &&
      kill((pid_t)hpid, 0) != 0 && errno == ESRCH)
    rc = store_move_steal(g_reg.db, pid, stack, version, (int64_t)getpid());
  if (rc == STORE_OK) return 0;
  store_rollback(g_reg.db);
  if (rc != STORE_EXISTS) {
    hu_store_error(req, rc);
    return -1;
  }
  if (hv[0])
    nno_problem(req, 409, NULL, "platform %s is moving stack %s to %s; retry",
                pid, hs, hv);
  else
    nno_problem(req, 409, NULL, "platform %s is deactivating stack %s; retry",
                pid, hs);
  return -1;
}

/* In a transaction of its own: release the move taken by this worker. */
static void move_done(const char *pid) {
  if (store_begin(g_reg.db)) return;
  if (store_move_done(g_reg.db, pid, (int64_t)getpid()) ||
      store_commit(g_reg.db))
    store_rollback(g_reg.db);
}

/* Would activation `a` (stack version `s`; `had`: another version of it
 * is active) break a requirement, its own or another active stack's?
 * Then a 409 problem explaining which, and 1. `s` NULL: not loaded here
 * any more, nothing to read. */
static int requires_refused(nno_req *req, const char *pid, nno_stack *s,
                            const store_activation *a, int had) {
  char msg[768];
  if ((s && reg_requires_met(pid, s, msg, sizeof msg)) ||
      (had && reg_requires_dependents(pid, a->stack, a->version, msg,
                                      sizeof msg))) {
    nno_problem(req, 409, NULL, "%s", msg);
    return 1;
  }
  return 0;
}

/* An activation provisioned before its row is written (NNO_ASYNC). */
typedef struct act_op {
  nno_req *req;
  store_activation a;
  int had;  /* another version was active: 200, else 201 */
  int same; /* that version: provisioned again to repair, row unchanged */
  char previous[STORE_STACK_MAX + 1];
  hu_idem ik;
  /* A failure kept while the databases go back to `previous`. */
  int fail;
  char *fail_step, *fail_msg;
} act_op;

static void act_free(act_op *op) {
  hu_idem_clear(&op->ik);
  free(op->fail_step);
  free(op->fail_msg);
  free(op);
}

/* After a failure: drop the pending record of the key (only successes are
 * recorded) and the platform's move, in a transaction of its own. */
static void act_forget(act_op *op) {
  int rc = store_begin(g_reg.db);
  if (!rc) rc = store_move_done(g_reg.db, op->a.platform, (int64_t)getpid());
  if (!rc && op->ik.active) rc = hu_idem_forget(&op->ik);
  if (!rc) rc = store_commit(g_reg.db);
  if (rc) store_rollback(g_reg.db);
}

/* The failure kept in op answered, once the databases went back. */
static void act_fail_answer(act_op *op, int status, const char *step,
                            const char *message) {
  char what[160];
  snprintf(what, sizeof what, "activating stack \"%s\" %s on platform \"%s\"",
           op->a.stack, op->a.version, op->a.platform);
  /* The move is over (the databases are back, or could not be): let the
   * next one in. */
  act_forget(op);
  /* Refused (a rollback without its down migrations) or a migration
   * that fails (a defect of the package): the request cannot succeed as
   * it is; anything else may on a retry. */
  reg_prov_problem(op->req,
                   status == NNO_EREFUSED || status == NNO_EINVAL ? 409 : 503,
                   what, step, message,
                   op->same  ? "the version stays active"
                   : op->had ? "the previous version stays active"
                             : "the stack is not active");
  api->res_end(op->req);
  act_free(op);
}

static void act_realigned(int status, const char *step, const char *message,
                          void *ud) {
  act_op *op = ud;
  if (status)
    api->log(g_reg.p, NNO_LOG_ERROR,
             "platform %s: after a failed activation of stack %s %s, its "
             "databases cannot be brought back to %s (step %s: %s)",
             op->a.platform, op->a.stack, op->a.version, op->previous,
             step ? step : "?", message ? message : "?");
  act_fail_answer(op, op->fail, op->fail_step, op->fail_msg);
}

static void act_done(int status, const char *step, const char *message,
                     void *ud) {
  act_op *op = ud;
  char *text = NULL, what[160];
  if (status) {
    /* A step after a migration committed may have failed (a later
     * package, or the packages told): the databases follow the row,
     * which stays on the previous version. */
    if (op->had && reg_prov_can_align()) {
      op->fail = status;
      op->fail_step = step ? strdup(step) : NULL;
      op->fail_msg = message ? strdup(message) : NULL;
      if ((!step || op->fail_step) && (!message || op->fail_msg) &&
          reg_prov_align(op->a.platform, op->a.stack, op->previous,
                         act_realigned, op) == 0)
        return;
    }
    act_fail_answer(op, status, step, message);
    return;
  }
  int rc = store_begin(g_reg.db);
  if (!rc && store_platform_status(g_reg.db, op->a.platform, what,
                                   sizeof what) == STORE_NOTFOUND) {
    store_rollback(g_reg.db);
    act_forget(op);
    nno_problem(op->req, 404, NULL, "no platform \"%s\"", op->a.platform);
    goto end;
  }
  if (!rc) rc = store_move_done(g_reg.db, op->a.platform, (int64_t)getpid());
  if (!rc && op->same) {
    /* Provisioned again: the databases agree with the version; the row
     * and its audit stay as they were. */
    store_activation cur;
    json_t *obj = NULL;
    rc = store_activation_get(g_reg.db, op->a.platform, op->a.stack, &cur);
    if (!rc) obj = activation_json(&cur);
    text = obj ? nno_json_text(obj) : NULL;
    json_decref(obj);
    if (!rc && !text) rc = STORE_ERROR;
    if (!rc) rc = hu_idem_forget(&op->ik);
    if (!rc) rc = hu_idem_record(&op->ik, 200, text, NULL);
    if (!rc) rc = store_commit(g_reg.db);
    if (rc) {
      store_rollback(g_reg.db);
      hu_fail(op->req, rc);
      act_forget(op);
      goto end;
    }
    nno_send_text(op->req, 200, text);
    goto end;
  }
  /* Requirements again, in the transaction that writes the row: another
   * activation may have moved a stack meanwhile. */
  nno_stack *s = NULL;
  if (!rc) api->stack_find(g_reg.p, op->a.stack, op->a.version, &s);
  if (!rc && requires_refused(op->req, op->a.platform, s, &op->a, op->had)) {
    store_rollback(g_reg.db);
    act_forget(op);
    goto end;
  }
  if (!rc)
    rc = put_activation(op->req, &op->a, op->had ? op->previous : NULL,
                        &op->ik, op->had ? 200 : 201, &text);
  if (rc) {
    hu_fail(op->req, rc);
    act_forget(op);
    goto end;
  }
  reg_committed();
  nno_send_text(op->req, op->had ? 200 : 201, text);
end:
  free(text);
  api->res_end(op->req);
  act_free(op);
}

static void act_start(void *ud) {
  act_op *op = ud;
  int rc = g_reg.prov->stack_activate(op->a.platform, op->a.stack,
                                      op->a.version, act_done, op);
  if (rc) act_done(rc, "stack_activate", api->strerror(rc), op);
}

static int on_activate(nno_req *req, void *ud) {
  static const nno_field fields[] = {NNO_FIELD("stack", NNO_FIELD_STRING, 1),
                                     NNO_FIELD("version", NNO_FIELD_STRING, 0)};
  char pid[STORE_ID_MAX + 1], q[160];
  json_t *b = NULL, *obj = NULL;
  char *text = NULL;
  hu_idem ik = {0};
  store_activation a, old;
  nno_stack *s = NULL;
  nno_str sid, sver;
  int rc, ret = NNO_OK;
  if (!hu_authorized(req) || hu_platform(req, pid) ||
      nno_body_object(req, 0, NNO_BODY_EMPTY_OK, &b))
    return NNO_OK;
  if (nno_fields_check(req, b, fields, sizeof fields / sizeof fields[0]))
    goto done;
  const char *stack = json_string_value(json_object_get(b, "stack"));
  const char *version = json_string_value(json_object_get(b, "version"));
  /* Another platform's versions do not exist for a platform's caller:
   * the same answers as a stack or version never installed. */
  char viewer[STORE_ID_MAX + 1];
  const char *vw = reg_viewer(req, viewer) ? viewer : NULL;
  if (!reg_stack_newest_visible(vw, stack)) {
    nno_quote(stack, q, sizeof q);
    nno_problem(req, 422, "stack", "field \"stack\": no stack %s is installed",
                q);
    goto done;
  }
  if (version && (api->stack_find(g_reg.p, stack, version, &s) != NNO_OK ||
                  !reg_stack_visible(vw, stack, version))) {
    nno_quote(version, q, sizeof q);
    nno_problem(req, 422, "version",
                "field \"version\": stack \"%s\" has no version %s installed",
                stack, q);
    goto done;
  }
  /* Not pinned: the newest the operator's or the platform's own, whose
   * requirements the platform meets (when none does, the newest of them,
   * refused below with the reason). */
  if (!version) {
    nno_stack *pick = reg_requires_pick(pid, vw, stack);
    s = pick ? pick : reg_stack_newest_usable(pid, vw, stack);
    if (!s) {
      nno_quote(stack, q, sizeof q);
      nno_problem(req, 422, "version",
                  "field \"version\": no version of stack %s is the "
                  "operator's or platform \"%s\"'s own: name the version",
                  q, pid);
      goto done;
    }
  }
  /* Pinned or chosen: the host's own names for both. */
  if (api->stack_info(s, &sid, &sver) != NNO_OK || sid.len > STORE_STACK_MAX ||
      sver.len > STORE_STACK_MAX) {
    nno_problem(req, 500, NULL, "cannot read the stack's version");
    goto done;
  }
  memset(&a, 0, sizeof a);
  snprintf(a.platform, sizeof a.platform, "%s", pid);
  snprintf(a.stack, sizeof a.stack, "%.*s", (int)sid.len, sid.ptr);
  snprintf(a.version, sizeof a.version, "%.*s", (int)sver.len, sver.ptr);
  nno_caller_actor(req, a.activated_by, sizeof a.activated_by);
  if (need_catalogue(req)) goto done;

  if ((rc = store_begin(g_reg.db)) != 0) {
    hu_store_error(req, rc);
    goto done;
  }
  int ir = hu_idem_begin_wait(req, &ik, 1);
  if (ir || hu_need_platform(req, pid) || not_deleting(req, pid)) {
    store_rollback(g_reg.db);
    if (ir == 2) ret = reg_idem_wait(req, on_activate, ud);
    goto done;
  }
  rc = store_activation_get(g_reg.db, pid, a.stack, &old);
  int had = rc == STORE_OK;
  if (rc && rc != STORE_NOTFOUND) {
    hu_fail(req, rc);
    goto done;
  }
  if (!(had && strcmp(old.version, a.version) == 0) &&
      requires_refused(req, pid, s, &a, had)) {
    store_rollback(g_reg.db);
    goto done;
  }
  int same = had && strcmp(old.version, a.version) == 0;
  if (same && !g_reg.prov) {
    /* Already active at this version: nothing changes. */
    obj = activation_json(&old);
    text = obj ? nno_json_text(obj) : NULL;
    if (!text || (rc = hu_idem_record(&ik, 200, text, NULL)) ||
        (rc = store_commit(g_reg.db))) {
      hu_fail(req, text ? rc : STORE_ERROR);
      goto done;
    }
    nno_send_text(req, 200, text);
    goto done;
  }
  if (!had) {
    size_t n = 0;
    if ((rc = store_activation_list(g_reg.db, pid, NULL, 0, count_cb, &n))) {
      hu_fail(req, rc);
      goto done;
    }
    if (n >= RT_MAX_STACKS) {
      store_rollback(g_reg.db);
      nno_problem(req, 409, NULL,
                  "platform \"%s\" already has %d active stacks, the most "
                  "one platform can have",
                  pid, RT_MAX_STACKS);
      goto done;
    }
  }
  if (g_reg.prov) {
    /* Provision first, outside the transaction; the row after. Retries
     * with the key wait for this one's answer. */
    /* Removed since this worker found it: the removal renamed its folder
     * away and dropped its catalogue row in its own transaction, and it
     * refuses while the move below is held -- one or the other. */
    nno_stack *again;
    char verr[600];
    if (api->stack_find(g_reg.p, a.stack, a.version, &again) != NNO_OK)
      rc = STORE_NOTFOUND;
    else
      rc = store_stack_version_exists(g_reg.db, a.stack, a.version);
    /* The migrations provisioning is about to run must be those the
     * archive held. */
    if (!rc && NNO_HAS(api, stack_verify) &&
        api->stack_verify(g_reg.p, again, verr, sizeof verr) == NNO_EREFUSED) {
      store_rollback(g_reg.db);
      nno_problem(req, 409, NULL, "stack %s %s: %s", a.stack, a.version,
                  verr);
      goto done;
    }
    if (rc) {
      store_rollback(g_reg.db);
      if (rc != STORE_NOTFOUND) {
        hu_store_error(req, rc);
        goto done;
      }
      nno_problem(req, 422, "version",
                  "field \"version\": stack \"%s\" %s was removed", a.stack,
                  a.version);
      goto done;
    }
    if (move_take(req, pid, a.stack, a.version)) goto done;
    act_op *op = calloc(1, sizeof *op);
    rc = op ? hu_idem_pending(&ik) : STORE_ERROR;
    if (rc || (rc = store_commit(g_reg.db))) {
      free(op);
      hu_fail(req, rc);
      goto done;
    }
    op->req = req;
    op->a = a;
    op->had = had;
    op->same = same;
    if (had) snprintf(op->previous, sizeof op->previous, "%s", old.version);
    op->ik = ik;
    memset(&ik, 0, sizeof ik);
    if ((rc = reg_defer(act_start, op)) != 0) {
      act_forget(op);
      act_free(op);
      nno_problem(req, 503, NULL, "cannot start activating stack \"%s\": %s",
                  a.stack, api->strerror(rc));
      goto done;
    }
    ret = NNO_ASYNC;
    goto done;
  }
  if ((rc = put_activation(req, &a, had ? old.version : NULL, &ik,
                           had ? 200 : 201, &text)) != 0) {
    hu_fail(req, rc);
    goto done;
  }
  reg_committed();
  nno_send_text(req, had ? 200 : 201, text);
done:
  hu_idem_clear(&ik);
  free(text);
  json_decref(obj);
  json_decref(b);
  return ret;
}

static int activation_cb(void *ud, const store_activation *a) {
  nno_pager *pg = ud;
  return nno_pager_full(pg) ? 0
                            : hu_pager_add(pg, activation_json(a), a->stack);
}

static int on_activations(nno_req *req, void *ud) {
  char pid[STORE_ID_MAX + 1], after[600];
  nno_pager pg;
  if (!hu_authorized(req) || hu_platform(req, pid) ||
      nno_pager_start(req, &pg, REG_PAGE_DEFAULT, REG_PAGE_MAX, after,
                      sizeof after))
    return NNO_OK;
  int rc = store_activation_list(g_reg.db, pid, after[0] ? after : NULL,
                                 pg.limit + 1, activation_cb, &pg);
  if (rc)
    hu_store_error(req, rc);
  else
    nno_pager_send(req, &pg);
  nno_pager_free(&pg);
  return NNO_OK;
}

/* Inside an open transaction: delete activation `a` with its audit and
 * changes rows, and commit. A store_rc; the caller rolls back on error. */
static int delete_activation(nno_req *req, const store_activation *a) {
  char target[48];
  snprintf(target, sizeof target, "platform:%s", a->platform);
  json_t *detail =
      json_pack("{s:s, s:s}", "stack", a->stack, "version", a->version);
  int rc = detail ? STORE_OK : STORE_ERROR;
  if (!rc) rc = store_activation_delete(g_reg.db, a->platform, a->stack);
  if (!rc) rc = hu_audit(req, "stack.deactivate", target, detail);
  if (!rc) rc = store_change_add(g_reg.db, a->platform);
  if (!rc) rc = store_commit(g_reg.db);
  json_decref(detail);
  return rc;
}

/* A deactivation told to the packages before its row goes (NNO_ASYNC). */
typedef struct deact_op {
  nno_req *req;
  store_activation a;
} deact_op;

static void deact_done(int status, const char *step, const char *message,
                       void *ud) {
  deact_op *op = ud;
  char what[160];
  if (status) {
    snprintf(what, sizeof what,
             "deactivating stack \"%s\" on platform \"%s\"", op->a.stack,
             op->a.platform);
    move_done(op->a.platform);
    reg_prov_problem(op->req, 503, what, step, message,
                     "the stack stays active");
    goto end;
  }
  char why[768];
  int rc = store_begin(g_reg.db);
  if (!rc) rc = store_move_done(g_reg.db, op->a.platform, (int64_t)getpid());
  if (!rc && reg_requires_dependents(op->a.platform, op->a.stack, NULL, why,
                                     sizeof why)) {
    store_rollback(g_reg.db);
    move_done(op->a.platform);
    nno_problem(op->req, 409, NULL, "%s", why);
    goto end;
  }
  if (!rc) rc = delete_activation(op->req, &op->a);
  if (rc == STORE_NOTFOUND) {
    /* Deactivated meanwhile by another request: the same outcome. */
    move_done(op->a.platform);
    store_rollback(g_reg.db);
    api->res_status(op->req, 204);
    goto end;
  }
  if (rc) {
    hu_fail(op->req, rc);
    move_done(op->a.platform);
    goto end;
  }
  reg_committed();
  api->res_status(op->req, 204);
end:
  api->res_end(op->req);
  free(op);
}

static void deact_start(void *ud) {
  deact_op *op = ud;
  int rc = g_reg.prov->stack_deactivate(op->a.platform, op->a.stack,
                                        op->a.version, deact_done, op);
  if (rc) deact_done(rc, "stack_deactivate", api->strerror(rc), op);
}

static int on_deactivate(nno_req *req, void *ud) {
  char pid[STORE_ID_MAX + 1], stack[STORE_STACK_MAX + 1];
  store_activation old;
  int rc;
  if (!hu_authorized(req) || hu_platform(req, pid)) return NNO_OK;
  if (nno_param_copy(req, "stack", stack, sizeof stack))
    return nno_problem(req, 404, NULL, "no such stack on platform \"%s\"", pid);
  if ((rc = store_begin(g_reg.db)) != 0) return hu_store_error(req, rc);
  if (hu_need_platform(req, pid)) {
    store_rollback(g_reg.db);
    return NNO_OK;
  }
  rc = store_activation_get(g_reg.db, pid, stack, &old);
  if (rc == STORE_NOTFOUND) {
    store_rollback(g_reg.db);
    return nno_problem(req, 404, NULL,
                       "stack \"%s\" is not active on platform \"%s\"", stack,
                       pid);
  }
  if (rc) return hu_fail(req, rc);
  char why[768];
  if (reg_requires_dependents(pid, stack, NULL, why, sizeof why)) {
    store_rollback(g_reg.db);
    return nno_problem(req, 409, NULL, "%s", why);
  }
  if (g_reg.prov) {
    if (move_take(req, pid, stack, NULL)) return NNO_OK;
    if ((rc = store_commit(g_reg.db))) {
      store_rollback(g_reg.db);
      return hu_fail(req, rc);
    }
    deact_op *op = calloc(1, sizeof *op);
    if (!op) {
      move_done(pid);
      return nno_problem(req, 500, NULL, "out of memory");
    }
    op->req = req;
    op->a = old;
    if ((rc = reg_defer(deact_start, op)) != 0) {
      free(op);
      move_done(pid);
      return nno_problem(req, 503, NULL,
                         "cannot start deactivating stack \"%s\": %s", stack,
                         api->strerror(rc));
    }
    return NNO_ASYNC;
  }
  if ((rc = delete_activation(req, &old))) return hu_fail(req, rc);
  reg_committed();
  api->res_status(req, 204);
  return NNO_OK;
}

int api_stacks_init(nno_plugin *p) {
  static const struct {
    const char *method, *path;
    nno_handler_fn fn;
  } routes[] = {
      {"GET", "/api/v1/stacks", on_list},
      {"GET", "/api/v1/stacks/{id}", on_get},
      {"POST", "/api/v1/platforms/{platform}/stacks", on_activate},
      {"GET", "/api/v1/platforms/{platform}/stacks", on_activations},
      {"DELETE", "/api/v1/platforms/{platform}/stacks/{stack}", on_deactivate},
  };
  for (size_t i = 0; i < sizeof routes / sizeof routes[0]; i++) {
    int rc =
        api->route_add(p, routes[i].method, routes[i].path, routes[i].fn, NULL);
    if (rc) return rc;
  }
  return NNO_OK;
}
