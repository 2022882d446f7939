/* The "nno.provisioning" service: the control plane the registry calls.
 * Each call validates on the loop, does its file and core.db steps on
 * the pool (steps.c, journalled before acting) and talks to packages
 * through platform_event on the loop. `done` runs once, on the loop. */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <unistd.h>

#include <jansson.h>

#include "internal.h"

#define REMOVE_POLL_MS 100
#define ACT_LOCK_WAIT_MS 2000

typedef struct ctl {
  struct ctl *next; /* removals waiting on a timer (freed at fini) */
  int op; /* 'c'reate, 'a'ctivate, 'r'emove, a'l'ign */
  char platform[PROV_ID_MAX], incarnation[33], stack[PROV_ID_MAX];
  int keep_data;
  nno_stack *sh;
  prov_pkg *pkgs;
  size_t npkgs;
  nno_stack **rm; /* remove: the stacks to tell */
  size_t nrm, irm;
  int64_t intent;
  int ok;          /* activate: the event's outcome */
  int rc;
  char step[96], msg[PROV_MSG_MAX];
  nno_timer *timer;
  int lock_fd;
  int act_fd; /* activate: the activation lock, held until the row */
  uint64_t waited;
  nno_prov_done_fn done;
  void *ud;
} ctl;

/* Removals waiting for their lock on a timer: the host stops timers
 * before fini, so fini frees what they hold. */
static ctl *g_waiting;

static void waiting_drop(ctl *c) {
  for (ctl **pp = &g_waiting; *pp; pp = &(*pp)->next)
    if (*pp == c) {
      *pp = c->next;
      return;
    }
}

static void ctl_free(ctl *c) {
  waiting_drop(c);
  for (size_t i = 0; i < c->npkgs; i++) {
    free(c->pkgs[i].dir);
    free(c->pkgs[i].resources);
  }
  free(c->pkgs);
  free(c->rm);
  if (c->lock_fd >= 0) close(c->lock_fd);
  if (c->act_fd >= 0) close(c->act_fd); /* drops the flock */
  free(c);
}

static void finish(ctl *c) {
  /* Provisioned and its intent closed, the registry's row not yet
   * written: the window the start-up alignment covers. */
  if (c->op == 'a' && !c->rc && prov_failpoint("activate:row")) {
    c->rc = NNO_EIO;
    snprintf(c->step, sizeof c->step, "activate:row");
    snprintf(c->msg, sizeof c->msg, "failpoint activate:row");
  }
  /* A success keeps the activation lock while `done` writes the row; a
   * failure writes none, and the registry's alignment back to the version
   * that stays must not find it held. */
  if (c->rc && c->act_fd >= 0) {
    close(c->act_fd);
    c->act_fd = -1;
  }
  c->done(c->rc, c->rc ? c->step : NULL,
          c->rc ? c->msg : (c->msg[0] ? c->msg : NULL), c->ud);
  ctl_free(c);
}

static ctl *ctl_new(const char *platform, nno_prov_done_fn done, void *ud) {
  if (!platform || !done || !prov_id_ok(platform, strlen(platform)))
    return NULL;
  ctl *c = calloc(1, sizeof *c);
  if (!c) return NULL;
  snprintf(c->platform, sizeof c->platform, "%s", platform);
  c->lock_fd = -1;
  c->act_fd = -1;
  c->done = done;
  c->ud = ud;
  return c;
}

static int inc_ok(const char *s) {
  size_t n = s ? strlen(s) : 0;
  if (n > 32) return 0;
  for (size_t i = 0; i < n; i++)
    if (!((s[i] >= '0' && s[i] <= '9') || (s[i] >= 'a' && s[i] <= 'f')))
      return 0;
  return 1;
}

/* Open core.db for one pool job; c->rc and c->msg on failure. */
static sqlite3 *job_db(ctl *c) {
  sqlite3 *db = NULL;
  if ((c->rc = pj_open(g_prov.core, &db, c->msg, sizeof c->msg)))
    snprintf(c->step, sizeof c->step, "journal");
  return db;
}

static void after_finish(int status, void *ud) {
  ctl *c = ud;
  if (status && !c->rc) {
    c->rc = NNO_ECANCELED;
    snprintf(c->step, sizeof c->step, "queue");
    snprintf(c->msg, sizeof c->msg, "the worker is stopping");
  }
  finish(c);
}

static int queue(ctl *c, nno_work_fn work, nno_after_work_fn after) {
  return api->work_queue(g_prov.p, work, after, c);
}

/* ---- platform_create --------------------------------------------------------- */

static void create_work(void *ud) {
  ctl *c = ud;
  sqlite3 *db = job_db(c);
  if (!db) return;
  char pdir[4096], args[128];
  int64_t id = 0;
  prov_platform_dir(g_prov.data, c->platform, pdir, sizeof pdir);
  struct stat st;
  int existed = lstat(pdir, &st) == 0;
  snprintf(args, sizeof args, "{\"incarnation\":\"%s\",\"pid\":%ld}",
           c->incarnation, (long)getpid());
  snprintf(c->step, sizeof c->step, "journal");
  if ((c->rc = pj_intent_open(db, "create", c->platform, args, &id))) {
    snprintf(c->msg, sizeof c->msg, "cannot journal in core.db");
    sqlite3_close_v2(db);
    return;
  }
  snprintf(c->step, sizeof c->step, "platform:create");
  if (prov_failpoint("platform:create")) {
    c->rc = NNO_EIO;
    snprintf(c->msg, sizeof c->msg, "failpoint platform:create");
  } else {
    c->rc = prov_platform_files(g_prov.data, c->platform, c->msg, sizeof c->msg);
  }
  if (c->rc && !existed) prov_rmtree(pdir); /* undo this call's folders */
  pj_intent_close(db, id);
  sqlite3_close_v2(db);
}

static int platform_create(const char *platform, const char *incarnation,
                           nno_prov_done_fn done, void *ud) {
  if (!inc_ok(incarnation)) return NNO_EINVAL;
  ctl *c = ctl_new(platform, done, ud);
  if (!c) return NNO_EINVAL;
  c->op = 'c';
  snprintf(c->incarnation, sizeof c->incarnation, "%s",
           incarnation ? incarnation : "");
  int rc = queue(c, create_work, after_finish);
  if (rc) ctl_free(c);
  return rc;
}

/* ---- stack_activate ---------------------------------------------------------- */

static void activate_work(void *ud) {
  ctl *c = ud;
  /* The call before (a creation's stacks activate one after the other)
   * lets go once its `done` returned: wait for that, not for long. */
  if ((c->rc = prov_activation_lock(g_prov.data, c->platform,
                                    ACT_LOCK_WAIT_MS, &c->act_fd))) {
    snprintf(c->step, sizeof c->step, "lock");
    snprintf(c->msg, sizeof c->msg,
             c->rc == NNO_EBUSY ? "platform %s is being activated or aligned "
                                  "by another call; try again"
                                : "cannot lock platform %s's activations",
             c->platform);
    return;
  }
  sqlite3 *db = job_db(c);
  if (!db) return;
  c->rc = prov_activate_run(db, g_prov.data, c->platform, c->incarnation,
                            c->stack, c->pkgs, c->npkgs, &c->intent, c->step,
                            sizeof c->step, c->msg, sizeof c->msg);
  sqlite3_close_v2(db);
}

static void activate_end_work(void *ud) {
  ctl *c = ud;
  sqlite3 *db = NULL;
  char m[PROV_MSG_MAX];
  if (pj_open(g_prov.core, &db, m, sizeof m) == 0)
    prov_activate_end(db, g_prov.data, c->platform, c->intent, c->ok);
  /* Otherwise the intent stays open: the next start undoes or keeps
   * nothing half-made either way. */
  sqlite3_close_v2(db);
}

static void on_activated(int status, const char *message, void *ud) {
  ctl *c = ud;
  if (prov_failpoint("event:activated") && !status) {
    status = NNO_EIO;
    message = "failpoint event:activated";
  }
  c->ok = status == 0;
  if (status) {
    c->rc = status;
    snprintf(c->step, sizeof c->step, "event:activated");
    snprintf(c->msg, sizeof c->msg, "%s", message ? message : "a package failed");
  }
  if (queue(c, activate_end_work, after_finish)) finish(c);
}

static void after_activate(int status, void *ud) {
  ctl *c = ud;
  if (status || c->rc) {
    if (status && !c->rc) {
      /* Cancelled before it ran: nothing was made. */
      c->rc = NNO_ECANCELED;
      snprintf(c->step, sizeof c->step, "queue");
      snprintf(c->msg, sizeof c->msg, "the worker is stopping");
    }
    finish(c);
    return;
  }
  int rc = NNO_OK;
  if (api->platform_event)
    rc = api->platform_event(g_prov.p, c->sh, c->platform,
                             NNO_PLATFORM_ACTIVATED, on_activated, c);
  else
    on_activated(0, NULL, c);
  if (rc) on_activated(rc, "cannot send the event", c);
}

/* The packages of stack `s` copied into c->pkgs. */
static int collect_packages(ctl *c, nno_stack *s) {
  nno_str name, ver, dir, res;
  for (size_t i = 0;
       api->stack_package_at(g_prov.p, s, i, &name, &ver, &dir, &res) == NNO_OK;
       i++) {
    prov_pkg *v = realloc(c->pkgs, (c->npkgs + 1) * sizeof *v);
    if (!v) return NNO_ENOMEM;
    c->pkgs = v;
    prov_pkg *k = &v[c->npkgs];
    memset(k, 0, sizeof *k);
    if (name.len >= sizeof k->name) return NNO_EINVAL;
    memcpy(k->name, name.ptr, name.len);
    k->dir = malloc(dir.len + 1);
    k->resources = malloc(res.len + 1);
    c->npkgs++;
    if (!k->dir || !k->resources) return NNO_ENOMEM;
    memcpy(k->dir, dir.ptr, dir.len);
    k->dir[dir.len] = '\0';
    if (res.len) memcpy(k->resources, res.ptr, res.len);
    k->resources[res.len] = '\0';
  }
  return 0;
}

static void fill_incarnation(ctl *c) {
  if (g_prov.reg &&
      g_prov.reg->size >= offsetof(nno_registry_v1, platform_incarnation) +
                              sizeof(void *) &&
      g_prov.reg->platform_incarnation(c->platform, c->incarnation,
                                       sizeof c->incarnation) != 0)
    c->incarnation[0] = '\0';
}

static int stack_activate(const char *platform, const char *stack,
                          const char *version, nno_prov_done_fn done,
                          void *ud) {
  if (!stack || !prov_id_ok(stack, strlen(stack))) return NNO_EINVAL;
  if (!api->stack_package_at || !api->stack_find) return NNO_ENOTSUP;
  ctl *c = ctl_new(platform, done, ud);
  if (!c) return NNO_EINVAL;
  c->op = 'a';
  snprintf(c->stack, sizeof c->stack, "%s", stack);
  int rc = api->stack_find(g_prov.p, stack, version, &c->sh);
  if (!rc) rc = collect_packages(c, c->sh);
  if (!rc) {
    fill_incarnation(c);
    rc = queue(c, activate_work, after_activate);
  }
  if (rc) ctl_free(c);
  return rc;
}

/* ---- stack_deactivate --------------------------------------------------------- */

static void on_deactivated(int status, const char *message, void *ud) {
  ctl *c = ud;
  if (!status && prov_failpoint("deactivate:row")) {
    status = NNO_EIO;
    message = "failpoint deactivate:row";
  }
  c->rc = status;
  snprintf(c->step, sizeof c->step, "event:deactivated");
  snprintf(c->msg, sizeof c->msg, "%s", message ? message : "");
  finish(c);
}

static int stack_deactivate(const char *platform, const char *stack,
                            const char *version, nno_prov_done_fn done,
                            void *ud) {
  if (!stack || !prov_id_ok(stack, strlen(stack))) return NNO_EINVAL;
  if (!api->stack_find || !api->platform_event) return NNO_ENOTSUP;
  ctl *c = ctl_new(platform, done, ud);
  if (!c) return NNO_EINVAL;
  int rc = api->stack_find(g_prov.p, stack, version, &c->sh);
  if (!rc)
    rc = api->platform_event(g_prov.p, c->sh, c->platform,
                             NNO_PLATFORM_DEACTIVATED, on_deactivated, c);
  if (rc) ctl_free(c);
  return rc;
}

/* ---- stack_align ----------------------------------------------------------- */

/* Whether an activation of `platform` is journalled open (in progress in
 * some worker, or interrupted and left to the recovering one). */
typedef struct busy_ctx {
  const char *platform;
  int busy;
} busy_ctx;

static int busy_cb(void *ud, const prov_intent *in) {
  busy_ctx *b = ud;
  if (strcmp(in->op, "activate") == 0 && strcmp(in->platform, b->platform) == 0)
    b->busy = 1;
  return 0;
}

static void align_work(void *ud) {
  ctl *c = ud;
  sqlite3 *db = job_db(c);
  if (!db) return;
  busy_ctx b = {c->platform, 0};
  c->rc = pj_intent_each(db, busy_cb, &b);
  sqlite3_close_v2(db);
  if (c->rc) {
    snprintf(c->step, sizeof c->step, "journal");
    snprintf(c->msg, sizeof c->msg, "cannot read the journal in core.db");
    return;
  }
  /* That activation's own outcome (or the recovery) sets it right. */
  if (b.busy) return;
  int fd = -1;
  if ((c->rc = prov_activation_lock(g_prov.data, c->platform, 0, &fd))) {
    if (c->rc == NNO_EBUSY) {
      c->rc = 0; /* as above: an activation in progress */
      return;
    }
    snprintf(c->step, sizeof c->step, "lock");
    snprintf(c->msg, sizeof c->msg, "cannot lock platform %s's activations",
             c->platform);
    return;
  }
  size_t used = 0;
  for (size_t i = 0; i < c->npkgs && !c->rc; i++) {
    json_t *res = json_loads(c->pkgs[i].resources, 0, NULL);
    size_t j;
    json_t *it;
    json_array_foreach(res, j, it) {
      const char *type = json_string_value(json_object_get(it, "type"));
      const char *name = json_string_value(json_object_get(it, "name"));
      char path[4096], m[PROV_MSG_MAX];
      struct stat st;
      if (!type || !name || strcmp(type, "sql") != 0 ||
          prov_resource_path(g_prov.data, c->platform, c->stack, type, name,
                             path, sizeof path) ||
          lstat(path, &st) != 0)
        continue; /* not made: nothing to align */
      int64_t from = -1, to = -1;
      snprintf(c->step, sizeof c->step, "sql:%s-%s:align", c->stack, name);
      if ((c->rc = prov_migrate_to(path, 0, c->pkgs[i].dir, c->pkgs[i].name,
                                   name, &from, &to, m, sizeof m))) {
        snprintf(c->msg, sizeof c->msg, "package %s: %s", c->pkgs[i].name, m);
        break;
      }
      if (from >= 0 && from != to && used < sizeof c->msg) {
        int w = snprintf(c->msg + used, sizeof c->msg - used,
                         "%ssql %s-%s from %04lld to %04lld",
                         used ? ", " : "", c->stack, name, (long long)from,
                         (long long)to);
        if (w > 0) used += (size_t)w;
      }
    }
    json_decref(res);
  }
  if (fd >= 0) close(fd);
}

static int stack_align(const char *platform, const char *stack,
                       const char *version, nno_prov_done_fn done, void *ud) {
  if (!stack || !prov_id_ok(stack, strlen(stack))) return NNO_EINVAL;
  if (!api->stack_package_at || !api->stack_find) return NNO_ENOTSUP;
  ctl *c = ctl_new(platform, done, ud);
  if (!c) return NNO_EINVAL;
  c->op = 'l';
  snprintf(c->stack, sizeof c->stack, "%s", stack);
  int rc = api->stack_find(g_prov.p, stack, version, &c->sh);
  if (!rc) rc = collect_packages(c, c->sh);
  if (!rc) rc = queue(c, align_work, after_finish);
  if (rc) ctl_free(c);
  return rc;
}

/* ---- platform_remove ------------------------------------------------------------ */

static void remove_work(void *ud) {
  ctl *c = ud;
  sqlite3 *db = job_db(c);
  if (!db) return;
  char args[160], pdir[4096], adir[4200];
  int64_t id = 0;
  snprintf(args, sizeof args,
           "{\"incarnation\":\"%s\",\"keep_data\":%s,\"pid\":%ld}",
           c->incarnation, c->keep_data ? "true" : "false", (long)getpid());
  snprintf(c->step, sizeof c->step, "journal");
  if ((c->rc = pj_intent_open(db, "remove", c->platform, args, &id))) {
    snprintf(c->msg, sizeof c->msg, "cannot journal in core.db");
    sqlite3_close_v2(db);
    return;
  }
  prov_platform_dir(g_prov.data, c->platform, pdir, sizeof pdir);
  if (c->keep_data && prov_dir_check(pdir, c->msg, sizeof c->msg) == 0) {
    char out[4400];
    snprintf(c->step, sizeof c->step, "archive");
    snprintf(adir, sizeof adir, "%s/archive", g_prov.data);
    snprintf(out, sizeof out, "%s/%s-%s.tar.gz", adir, c->platform,
             c->incarnation[0] ? c->incarnation : "0");
    if (prov_failpoint("archive")) {
      c->rc = NNO_EIO;
      snprintf(c->msg, sizeof c->msg, "failpoint archive");
    } else if (!(c->rc = prov_mkdir(adir, c->msg, sizeof c->msg))) {
      c->rc = prov_archive(pdir, out, c->msg, sizeof c->msg);
    }
    if (c->rc) {
      /* Nothing removed yet: the call fails whole. */
      pj_intent_close(db, id);
      sqlite3_close_v2(db);
      return;
    }
    pj_intent_step(db, id, "archived", NULL);
    snprintf(c->msg, sizeof c->msg, "%s", out);
  } else {
    c->msg[0] = '\0';
  }
  char m[PROV_MSG_MAX];
  snprintf(c->step, sizeof c->step, "remove");
  if ((c->rc = prov_remove_data(db, g_prov.data, c->platform, c->incarnation,
                                m, sizeof m))) {
    /* Past the point of no return: the intent stays, the next start (or
     * the next call) finishes it. */
    snprintf(c->msg, sizeof c->msg, "%s", m);
  } else {
    pj_intent_close(db, id);
  }
  sqlite3_close_v2(db);
}

static void try_lock(ctl *c);

static void on_retry(nno_timer *t, void *ud) {
  ctl *c = ud;
  waiting_drop(c);
  api->timer_stop(t);
  c->timer = NULL;
  try_lock(c);
}

/* Wait for the requests using the platform: an exclusive lock on .inuse
 * while they hold shared ones; enters fail from now on (LOCK_NB). */
static void try_lock(ctl *c) {
  char path[4200];
  snprintf(path, sizeof path, "%s/platforms/%s/.inuse", g_prov.data,
           c->platform);
  if (c->lock_fd < 0) {
    c->lock_fd = open(path, O_RDONLY | O_NOFOLLOW | O_CLOEXEC);
    if (c->lock_fd < 0 && errno != ENOENT) {
      c->rc = NNO_EIO;
      snprintf(c->step, sizeof c->step, "lock");
      snprintf(c->msg, sizeof c->msg, "cannot open %s: %s", path, strerror(errno));
      finish(c);
      return;
    }
  }
  if (c->lock_fd >= 0 && flock(c->lock_fd, LOCK_EX | LOCK_NB) != 0) {
    /* The platform is no longer routed, so what holds it is requests that
     * started before: they get remove_wait_ms to end. Past it, a client
     * could hold the deletion for as long as it reads a download slowly;
     * the removal goes ahead instead. The local driver's files are then
     * unlinked under those requests: a stream goes on from its open file,
     * a write lands in a file that no longer has a name, and new calls
     * find nothing (their enter fails: .inuse is gone). */
    if (c->waited >= g_prov.bounds.remove_wait_ms) {
      api->log(g_prov.p, NNO_LOG_WARN,
               "platform %s: requests still use it after %u ms: removing "
               "it under them", c->platform, g_prov.bounds.remove_wait_ms);
    } else if (api->timer_start(g_prov.p, REMOVE_POLL_MS, 0, on_retry, c,
                                &c->timer) == 0) {
      c->waited += REMOVE_POLL_MS;
      c->next = g_waiting;
      g_waiting = c;
      return;
    } else {
      c->rc = NNO_EBUSY;
      snprintf(c->step, sizeof c->step, "wait");
      snprintf(c->msg, sizeof c->msg,
               "cannot wait for the requests using platform %s; try again",
               c->platform);
      finish(c);
      return;
    }
  }
  if (queue(c, remove_work, after_finish)) {
    c->rc = NNO_ECANCELED;
    snprintf(c->step, sizeof c->step, "queue");
    snprintf(c->msg, sizeof c->msg, "the worker is stopping");
    finish(c);
  }
}

static void send_removing(ctl *c);

static void on_removing(int status, const char *message, void *ud) {
  ctl *c = ud;
  if (status)
    api->log(g_prov.p, NNO_LOG_WARN,
             "platform %s: a package failed on REMOVING (%s): removing anyway",
             c->platform, message ? message : api->err_name(status));
  c->irm++;
  send_removing(c);
}

static void send_removing(ctl *c) {
  while (c->irm < c->nrm) {
    int rc = api->platform_event(g_prov.p, c->rm[c->irm], c->platform,
                                 NNO_PLATFORM_REMOVING, on_removing, c);
    if (rc == NNO_OK) return;
    api->log(g_prov.p, NNO_LOG_WARN, "platform %s: cannot send REMOVING: %s",
             c->platform, api->err_name(rc));
    c->irm++;
  }
  try_lock(c);
}

static int platform_remove(const char *platform, const char *incarnation,
                           const char *stacks, int keep_data,
                           nno_prov_done_fn done, void *ud) {
  if (!inc_ok(incarnation)) return NNO_EINVAL;
  ctl *c = ctl_new(platform, done, ud);
  if (!c) return NNO_EINVAL;
  c->op = 'r';
  c->keep_data = keep_data != 0;
  snprintf(c->incarnation, sizeof c->incarnation, "%s",
           incarnation ? incarnation : "");
  json_t *list = NULL;
  if (stacks) {
    list = json_loads(stacks, 0, NULL);
    if (!json_is_array(list) || json_array_size(list) > 64) {
      json_decref(list);
      ctl_free(c);
      return NNO_EINVAL;
    }
  }
  size_t i;
  json_t *it;
  if (list && json_array_size(list)) {
    c->rm = calloc(json_array_size(list), sizeof *c->rm);
    if (!c->rm) {
      json_decref(list);
      ctl_free(c);
      return NNO_ENOMEM;
    }
  }
  json_array_foreach(list, i, it) {
    const char *s = json_string_value(json_object_get(it, "stack"));
    const char *v = json_string_value(json_object_get(it, "version"));
    nno_stack *sh;
    if (!s || !api->stack_find || !api->platform_event) continue;
    if (api->stack_find(g_prov.p, s, v, &sh) == NNO_OK) c->rm[c->nrm++] = sh;
    else
      api->log(g_prov.p, NNO_LOG_WARN,
               "platform %s: stack %.64s is not loaded: its packages are not "
               "told of the removal",
               c->platform, s);
  }
  json_decref(list);
  send_removing(c);
  return NNO_OK;
}

void prov_provision_fini(void) {
  while (g_waiting) ctl_free(g_waiting);
}

const nno_provisioning_v1 prov_provisioning = {
    .size = sizeof(nno_provisioning_v1),
    .platform_create = platform_create,
    .stack_activate = stack_activate,
    .stack_deactivate = stack_deactivate,
    .platform_remove = platform_remove,
    .stack_align = stack_align,
    .resource_usage = prov_resource_usage,
};
