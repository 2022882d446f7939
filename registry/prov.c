/* The registry's side of "nno.provisioning": looking the service up,
 * running a provisioning chain outside the handler that started it, the
 * problem answered when a step fails, and finishing at start-up the
 * deletions a crash interrupted. The flows themselves (create with
 * stacks, activate, deactivate, delete) live with their routes in
 * api_platforms.c and api_stacks.c. */
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "http_util.h"
#include "internal.h"

void reg_prov_lookup(void) {
  const void *vt;
  uint32_t ver;
  g_reg.prov = NULL;
  if (api->service_lookup(g_reg.p, NNO_PROVISIONING_SERVICE,
                          NNO_PROVISIONING_VERSION, &vt, &ver) != NNO_OK)
    return;
  const nno_provisioning_v1 *pv = vt;
  if (pv->size < offsetof(nno_provisioning_v1, platform_remove) +
                     sizeof pv->platform_remove) {
    api->log(g_reg.p, NNO_LOG_WARN,
             "nno.provisioning is too old (no platform_remove): platforms "
             "are not provisioned");
    return;
  }
  g_reg.prov = pv;
}

/* ---- deferring --------------------------------------------------------- */

typedef struct deferred {
  void (*fn)(void *ud);
  void *ud;
  nno_timer *t;
} deferred;

static void on_deferred(nno_timer *t, void *ud) {
  deferred d = *(deferred *)ud;
  free(ud);
  api->timer_stop(t);
  d.fn(d.ud);
}

int reg_defer(void (*fn)(void *ud), void *ud) {
  deferred *d = calloc(1, sizeof *d);
  if (!d) return NNO_ENOMEM;
  d->fn = fn;
  d->ud = ud;
  int rc = api->timer_start(g_reg.p, 0, 0, on_deferred, d, &d->t);
  if (rc) free(d);
  return rc;
}

/* ---- waiting for a pending Idempotency-Key ----------------------------- */

/* How often and how long a request waits for the answer of the same
 * request still being provisioned (by this worker or another). */
#define IDEM_WAIT_MS 50
#define IDEM_WAIT_TRIES 1200 /* 60 s */

struct reg_wait {
  nno_req *req;
  nno_handler_fn fn;
  int tries;
  int armed; /* a timer is set to run fn again */
};

static void on_wait(nno_timer *t, void *ud) {
  reg_wait *w = ud;
  api->timer_stop(t);
  w->armed = 0;
  nno_req *req = w->req;
  int rc = w->fn(req, w);
  if (rc < 0) {
    api->res_problem(req, 500, "Internal Server Error", api->strerror(rc));
    rc = NNO_OK;
  }
  if (!w->armed) free(w); /* answered, or gone asynchronous for good */
  if (rc != NNO_ASYNC) api->res_end(req);
}

int reg_idem_wait(nno_req *req, nno_handler_fn fn, reg_wait *w) {
  nno_timer *t;
  int fresh = !w;
  if (fresh) {
    if (!(w = calloc(1, sizeof *w)))
      return nno_problem(req, 500, NULL, "out of memory");
    w->req = req;
    w->fn = fn;
  }
  if (++w->tries > IDEM_WAIT_TRIES ||
      api->timer_start(g_reg.p, IDEM_WAIT_MS, 0, on_wait, w, &t) != NNO_OK) {
    if (fresh) free(w); /* else on_wait frees it: armed is 0 */
    return nno_problem_retry(req, 409, 1,
                             "a request with this Idempotency-Key is still "
                             "in progress; send it again in a moment");
  }
  w->armed = 1;
  return NNO_ASYNC;
}

/* ---- answers ----------------------------------------------------------- */

int reg_prov_problem(nno_req *req, int status, const char *what,
                     const char *step, const char *message, const char *after) {
  char s[160], m[512];
  nno_quote(step && *step ? step : "?", s, sizeof s);
  snprintf(m, sizeof m, "%s",
           message && *message ? message : "no reason given");
  return nno_problem(req, status, NULL, "%s failed at step %s: %s%s%s", what, s,
                     m, after ? "; " : "", after ? after : "");
}

/* ---- activations as provisioning takes them ---------------------------- */

static int add_stack(void *ud, const store_activation *a) {
  json_t *o = json_pack("{s:s, s:s}", "stack", a->stack, "version", a->version);
  return json_array_append_new(ud, o) ? STORE_ERROR : STORE_OK;
}

char *reg_stacks_json(const char *id) {
  json_t *arr = json_array();
  char *text = NULL;
  if (arr && store_activation_list(g_reg.db, id, NULL, 0, add_stack, arr) == 0)
    text = nno_json_text(arr);
  json_decref(arr);
  return text;
}

/* ---- forgetting a removed platform ------------------------------------- */

int reg_platform_forget(nno_req *req, const char *id, const char *action,
                        json_t *detail) {
  char target[48];
  snprintf(target, sizeof target, "platform:%s", id);
  int rc = store_begin(g_reg.db);
  if (rc) return rc;
  rc = store_platform_delete(g_reg.db, id);
  if (rc == STORE_NOTFOUND) rc = STORE_OK; /* another worker finished it */
  /* Provisioning removed the folder: nothing is left for the fallback
   * sweep (the deletion's trigger wrote the row). */
  if (!rc) rc = store_removal_done(g_reg.db, id);
  if (!rc) {
    if (req) {
      rc = hu_audit(req, action, target, detail);
    } else {
      char *text = detail ? nno_json_text(detail) : NULL;
      rc = detail && !text ? STORE_ERROR
                           : store_audit_add(g_reg.db, "system", action, target,
                                             NULL, text);
      free(text);
    }
  }
  if (!rc) rc = store_change_add(g_reg.db, id);
  if (!rc) rc = store_commit(g_reg.db);
  if (rc) {
    api->log(g_reg.p, NNO_LOG_ERROR, "cannot forget platform %s: %s", id,
             sqlite3_errmsg(g_reg.db));
    store_rollback(g_reg.db);
    return rc;
  }
  reg_committed();
  reg_platform_stacks_drop(id);
  return STORE_OK;
}

/* ---- databases aligned with the activation rows ------------------------ */

int reg_prov_can_align(void) {
  return g_reg.prov &&
         g_reg.prov->size >= offsetof(nno_provisioning_v1, stack_align) +
                                 sizeof g_reg.prov->stack_align &&
         g_reg.prov->stack_align;
}

/* One alignment whose outcome is only logged. */
typedef struct align_op {
  char platform[STORE_ID_MAX + 1];
  char stack[STORE_STACK_MAX + 1], version[STORE_STACK_MAX + 1];
} align_op;

static void align_logged(int status, const char *step, const char *message,
                         void *ud) {
  align_op *op = ud;
  if (status)
    api->log(g_reg.p, NNO_LOG_ERROR,
             "platform %s: its databases of stack %s do not match its active "
             "version %s and cannot be brought to it (step %s: %s): left as "
             "they are; activate the version they are at to finish",
             op->platform, op->stack, op->version, step ? step : "?",
             message ? message : "?");
  else if (message)
    api->log(g_reg.p, NNO_LOG_WARN,
             "platform %s: aligned its databases of stack %s with its active "
             "version %s (%s)",
             op->platform, op->stack, op->version, message);
  /* The row was read before the alignment ran: an activation in another
   * worker may have moved it meanwhile. The row is the truth. */
  store_activation now;
  if (!status && message &&
      store_activation_get(g_reg.db, op->platform, op->stack, &now) ==
          STORE_OK &&
      strcmp(now.version, op->version) != 0 &&
      reg_prov_align(now.platform, now.stack, now.version, NULL, NULL) == 0)
    api->log(g_reg.p, NNO_LOG_WARN,
             "platform %s: stack %s moved to %s meanwhile: aligning again",
             op->platform, op->stack, now.version);
  free(op);
}

int reg_prov_align(const char *platform, const char *stack,
                   const char *version, nno_prov_done_fn done, void *ud) {
  if (!reg_prov_can_align()) return NNO_ENOTSUP;
  align_op *op = NULL;
  if (!done) {
    if (!(op = calloc(1, sizeof *op))) return NNO_ENOMEM;
    snprintf(op->platform, sizeof op->platform, "%s", platform);
    snprintf(op->stack, sizeof op->stack, "%s", stack);
    snprintf(op->version, sizeof op->version, "%s", version);
    done = align_logged;
    ud = op;
  }
  int rc = g_reg.prov->stack_align(platform, stack, version, done, ud);
  if (rc) free(op);
  return rc;
}

static int align_cb(void *ud, const store_activation *a) {
  (void)ud;
  int rc = reg_prov_align(a->platform, a->stack, a->version, NULL, NULL);
  if (rc && rc != NNO_ENOENT)
    api->log(g_reg.p, NNO_LOG_WARN,
             "platform %s: cannot check its databases of stack %s %s: %s",
             a->platform, a->stack, a->version, api->strerror(rc));
  return 0;
}

/* After a kill between a migration's commit and the activation row (an
 * upgrade or rollback either side of it), a database may be at another
 * version's level than the row says: the row is the truth, each database
 * of every activation is brought to its version. */
static void align_all(void) {
  if (!reg_prov_can_align()) return;
  if (store_activation_list(g_reg.db, NULL, NULL, 0, align_cb, NULL))
    api->log(g_reg.p, NNO_LOG_WARN, "cannot list the activations: %s",
             sqlite3_errmsg(g_reg.db));
}

/* ---- the start-up sweep ------------------------------------------------ */

/* One platform (or folder) whose removal a crash interrupted. */
typedef struct sweep_op {
  char id[STORE_ID_MAX + 1];
  char incarnation[17];
  int row; /* 1: a platform row in "deleting"; 0: a platform_removals row */
  int created; /* 1: a creation that never answered (no data to keep) */
} sweep_op;

static void sweep_done(int status, const char *step, const char *message,
                       void *ud) {
  sweep_op *op = ud;
  if (status) {
    api->log(g_reg.p, NNO_LOG_WARN,
             "cannot finish removing platform %s (step %s: %s): retried at "
             "the next start",
             op->id, step ? step : "?", message ? message : "?");
  } else if (op->row && op->created) {
    json_t *d = json_pack("{s:s, s:s}", "step", "interrupted", "message",
                          "the process creating it stopped before answering");
    if (reg_platform_forget(NULL, op->id, "platform.provision_failed", d) == 0)
      api->log(g_reg.p, NNO_LOG_INFO,
               "undid the interrupted creation of platform %s", op->id);
    json_decref(d);
  } else if (op->row) {
    json_t *d = json_pack("{s:s, s:b}", "id", op->id, "resumed", 1);
    if (reg_platform_forget(NULL, op->id, "platform.delete", d) == 0)
      api->log(g_reg.p, NNO_LOG_INFO, "finished deleting platform %s", op->id);
    json_decref(d);
  } else if (store_removal_done(g_reg.db, op->id)) {
    api->log(g_reg.p, NNO_LOG_WARN, "cannot update platform_removals: %s",
             sqlite3_errmsg(g_reg.db));
  }
  free(op);
}

static void sweep_start(sweep_op *op) {
  char *stacks = op->row ? reg_stacks_json(op->id) : NULL;
  /* What an interrupted DELETE asked is not known here: keep the data
   * (an archive too many is better than data lost). A folder left by an
   * earlier deletion without provisioning was meant to go. */
  int rc = g_reg.prov->platform_remove(op->id, op->incarnation, stacks,
                                       op->row && !op->created, sweep_done,
                                       op);
  free(stacks);
  if (rc) sweep_done(rc, "platform_remove", api->strerror(rc), op);
}

typedef struct sweep_ids {
  size_t n;
  char id[64][STORE_ID_MAX + 1];
  size_t ncreated; /* of them, creations that never answered */
  char created[64][STORE_ID_MAX + 1];
  char key[64][129], actor[64][129]; /* their pending Idempotency-Key */
  char taken[64][STORE_ID_MAX + 1];  /* created[i] before it was cleared */
} sweep_ids;

/* A creation whose process is gone never answered: the platform is
 * "deleting" from now on (its pending Idempotency-Key dropped, so the same
 * request sent again is made anew), and removed below with the others. */
static int collect_creation(void *ud, const char *id, int64_t pid,
                            const char *key, const char *actor) {
  sweep_ids *l = ud;
  if (pid > 0 && pid != (int64_t)getpid() && kill((pid_t)pid, 0) == 0)
    return 0; /* a live worker is still creating it */
  if (l->ncreated == 64) return 1; /* the rest at the next start */
  snprintf(l->key[l->ncreated], sizeof l->key[0], "%s", key ? key : "");
  snprintf(l->actor[l->ncreated], sizeof l->actor[0], "%s",
           actor ? actor : "");
  snprintf(l->created[l->ncreated++], sizeof l->created[0], "%s", id);
  return 0;
}

static void undo_creations(sweep_ids *l) {
  store_platform tmp;
  for (size_t i = 0; i < l->ncreated; i++) {
    const char *id = l->created[i];
    int rc = store_begin(g_reg.db);
    if (!rc) {
      rc = store_platform_set_status(g_reg.db, id, "deleting", &tmp);
      if (rc == STORE_NOTFOUND) rc = STORE_OK;
    }
    if (!rc && l->key[i][0] && l->actor[i][0]) {
      rc = store_idem_delete(g_reg.db, l->key[i], l->actor[i]);
      if (rc == STORE_NOTFOUND) rc = STORE_OK;
    }
    if (!rc) rc = store_creation_done(g_reg.db, id);
    if (!rc) rc = store_change_add(g_reg.db, id);
    if (!rc) rc = store_commit(g_reg.db);
    if (rc == STORE_NOTFOUND) {
      /* Another worker starting took it: it finishes the removal too. */
      store_rollback(g_reg.db);
      snprintf(l->taken[i], sizeof l->taken[0], "%s", id);
      l->created[i][0] = '\0';
      continue;
    }
    if (rc) {
      api->log(g_reg.p, NNO_LOG_WARN,
               "cannot undo the interrupted creation of platform %s: %s", id,
               sqlite3_errmsg(g_reg.db));
      store_rollback(g_reg.db);
    }
    reg_committed();
  }
}

/* 1: this worker undid the creation of `id`; -1: another worker did (and
 * removes it); 0: neither, a deletion to finish. */
static int was_created(const sweep_ids *l, const char *id) {
  for (size_t i = 0; i < l->ncreated; i++) {
    if (strcmp(l->created[i], id) == 0) return 1;
    if (!l->created[i][0] && strcmp(l->taken[i], id) == 0) return -1;
  }
  return 0;
}

static int collect_deleting(void *ud, const store_platform *p) {
  sweep_ids *l = ud;
  if (l->n < 64) snprintf(l->id[l->n++], sizeof l->id[0], "%s", p->id);
  return 0;
}

typedef struct removal_list {
  size_t n;
  char id[64][STORE_ID_MAX + 1];
  char inc[64][17];
  int exists[64];
} removal_list;

static int collect_removal(void *ud, const char *id, int exists,
                           const char *incarnation) {
  removal_list *l = ud;
  if (l->n == 64) return 1; /* the rest at the next start */
  snprintf(l->id[l->n], sizeof l->id[0], "%s", id);
  snprintf(l->inc[l->n], sizeof l->inc[0], "%s", incarnation);
  l->exists[l->n++] = exists;
  return 0;
}

void reg_prov_sweep(void) {
  sweep_ids *ids = calloc(1, sizeof *ids);
  removal_list *rl = calloc(1, sizeof *rl);
  if (!ids || !rl) goto done;
  int rc = store_creation_each(g_reg.db, collect_creation, ids);
  if (rc && rc != 1)
    api->log(g_reg.p, NNO_LOG_WARN, "cannot list interrupted creations: %s",
             sqlite3_errmsg(g_reg.db));
  undo_creations(ids);
  rc = store_platform_list(g_reg.db, NULL, "deleting", NULL, 64,
                           collect_deleting, ids);
  if (!rc) rc = store_removal_each(g_reg.db, collect_removal, rl);
  if (rc && rc != 1)
    api->log(g_reg.p, NNO_LOG_WARN, "cannot list deleted platforms: %s",
             sqlite3_errmsg(g_reg.db));
  for (size_t i = 0; i < ids->n; i++) {
    sweep_op *op = calloc(1, sizeof *op);
    if (!op) break;
    snprintf(op->id, sizeof op->id, "%s", ids->id[i]);
    op->row = 1;
    op->created = was_created(ids, op->id);
    if (op->created < 0) {
      free(op);
      continue;
    }
    if (store_platform_incarnation_any(g_reg.db, op->id, op->incarnation,
                                       sizeof op->incarnation)) {
      free(op);
      continue;
    }
    api->log(g_reg.p, NNO_LOG_INFO,
             "platform %s was left being deleted: finishing", op->id);
    sweep_start(op);
  }
  /* Platforms deleted before provisioning ran (or by the fallback): their
   * folder is provisioning's to remove now, unless the id exists again
   * (the folder is the new platform's). */
  for (size_t i = 0; i < rl->n; i++) {
    if (rl->exists[i]) {
      if (store_removal_done(g_reg.db, rl->id[i]))
        api->log(g_reg.p, NNO_LOG_WARN, "cannot update platform_removals: %s",
                 sqlite3_errmsg(g_reg.db));
      continue;
    }
    sweep_op *op = calloc(1, sizeof *op);
    if (!op) break;
    snprintf(op->id, sizeof op->id, "%s", rl->id[i]);
    snprintf(op->incarnation, sizeof op->incarnation, "%s", rl->inc[i]);
    sweep_start(op);
  }
  align_all();
done:
  free(ids);
  free(rl);
}
