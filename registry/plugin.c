/* The registry core plugin: start-up (database, migrations, operator key,
 * routes), the RESOLVE hook that maps every request to its platform, the
 * per-worker routing table kept in step with the changes log, the stack
 * catalogue, and the "nno.registry" service. See registry/README.md. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <sodium.h>

#include "http_util.h"
#include "internal.h"
#include <nno/registry.h>

const nno_host_api *api;
reg g_reg;

/* ---- the routing table ------------------------------------------------- */

static nno_stack *find_stack(void *ud, const char *id, const char *version) {
  nno_stack *s;
  return api->stack_find(g_reg.p, id, version, &s) == NNO_OK ? s : NULL;
}

/* The resolver to use: none until the host has loaded the stacks. */
static rt_find_fn finder(void) {
  return g_reg.stacks_resolved ? find_stack : NULL;
}

/* Activations of one platform, gathered before an rt_put. */
typedef struct act_group {
  rtable *t;
  char platform[STORE_ID_MAX + 1];
  size_t n;
  char stack[RT_MAX_STACKS][STORE_STACK_MAX + 1];
  char version[RT_MAX_STACKS][STORE_STACK_MAX + 1];
} act_group;

/* Re-put the gathered platform with its activations (keeping its status). */
static int group_flush(act_group *g) {
  if (!g->platform[0]) return 0;
  const rt_entry *e = rt_get(g->t, g->platform, strlen(g->platform));
  int rc = 0;
  if (e) {
    const char *s[RT_MAX_STACKS], *v[RT_MAX_STACKS];
    for (size_t i = 0; i < g->n; i++) s[i] = g->stack[i], v[i] = g->version[i];
    rc = rt_put(g->t, g->platform, e->status, s, v, g->n, finder(), NULL);
  }
  g->platform[0] = '\0';
  g->n = 0;
  return rc ? STORE_ERROR : 0;
}

static int group_add(void *ud, const store_activation *a) {
  act_group *g = ud;
  if (strcmp(g->platform, a->platform) != 0) {
    int rc = group_flush(g);
    if (rc) return rc;
    snprintf(g->platform, sizeof g->platform, "%s", a->platform);
  }
  if (g->n < RT_MAX_STACKS) {
    snprintf(g->stack[g->n], sizeof g->stack[0], "%s", a->stack);
    snprintf(g->version[g->n], sizeof g->version[0], "%s", a->version);
    g->n++;
  }
  return 0;
}

static int put_status(void *ud, const char *id, const char *status,
                      const char *plan) {
  int st = rt_status_parse(status);
  if (!st) return 0; /* the schema's CHECK makes this impossible */
  return rt_put(ud, id, st, NULL, NULL, 0, NULL, NULL) ||
                 rt_set_plan(ud, id, plan)
             ? STORE_ERROR
             : 0;
}

/* Fill `t` from the database: every platform, then its activations. */
static int load_all(rtable *t) {
  act_group *g = calloc(1, sizeof *g);
  if (!g) return STORE_ERROR;
  g->t = t;
  int rc = store_platform_each(g_reg.db, put_status, t);
  if (!rc) rc = store_activation_list(g_reg.db, NULL, NULL, 0, group_add, g);
  if (!rc) rc = group_flush(g);
  free(g);
  return rc;
}

/* Reload one platform into the routing table (or drop it). */
static int reload_platform(const char *id) {
  char status[16], plan[40];
  int rc = store_platform_status(g_reg.db, id, status, sizeof status);
  if (!rc) rc = store_platform_plan(g_reg.db, id, plan, sizeof plan);
  if (rc == STORE_NOTFOUND) {
    rt_remove(g_reg.routes, id);
    return 0;
  }
  if (rc) return rc;
  act_group *g = calloc(1, sizeof *g);
  if (!g) return STORE_ERROR;
  g->t = g_reg.routes;
  /* Put it first with no stacks so group_flush finds its status. */
  rc = put_status(g_reg.routes, id, status, plan);
  if (!rc) rc = store_activation_list(g_reg.db, id, NULL, 0, group_add, g);
  if (!rc) rc = group_flush(g);
  free(g);
  return rc;
}

static int replay_one(void *ud, int64_t seq, const char *platform) {
  int rc = reload_platform(platform);
  if (!rc) *(int64_t *)ud = seq;
  return rc;
}

/* Bring the routing table up to date with the changes log, in one read
 * snapshot. A worker that fell behind the log's retained rows reloads
 * everything into a fresh table and swaps it in. */
static int replay(void) {
  int64_t min = 0, max = 0, applied = g_reg.seq_applied;
  /* Never inside a transaction of our own (a service call made while one
   * is open): catch up on the next request instead. */
  if (!sqlite3_get_autocommit(g_reg.db)) return STORE_BUSY;
  int rc = store_begin_read(g_reg.db);
  if (rc) return rc;
  rc = store_change_bounds(g_reg.db, &min, &max);
  if (rc) goto done;
  if (min > applied + 1) {
    rtable *t = rt_new();
    if (!t) {
      rc = STORE_ERROR;
      goto done;
    }
    rc = load_all(t);
    if (rc) {
      rt_free(t);
      goto done;
    }
    rt_free(g_reg.routes);
    g_reg.routes = t;
    applied = max;
  } else {
    rc = store_change_since(g_reg.db, applied, replay_one, &applied);
  }
done:
  g_reg.seq_applied = applied; /* rows applied so far stay applied */
  if (rc)
    store_rollback(g_reg.db);
  else
    rc = store_commit(g_reg.db);
  return rc;
}

/* ---- suspended tenants ---------------------------------------------------- */

typedef struct susp_vec {
  char (*v)[2 * 33];
  size_t n, cap;
} susp_vec;

static int put_suspended(void *ud, const char *platform, const char *tenant) {
  susp_vec *sv = ud;
  if (sv->n == sv->cap) {
    size_t cap = sv->cap ? sv->cap * 2 : 16;
    char(*v)[2 * 33] = realloc(sv->v, cap * sizeof *v);
    if (!v) return STORE_ERROR;
    sv->v = v;
    sv->cap = cap;
  }
  snprintf(sv->v[sv->n++], sizeof sv->v[0], "%s/%s", platform, tenant);
  return 0;
}

static int cmp_key(const void *a, const void *b) { return strcmp(a, b); }

static int put_link(void *ud, const char *platform, const char *tenant,
                    const char *parent) {
  int rc = ttab_add(ud, platform, tenant, parent);
  return rc == TTAB_OK || rc == TTAB_INVALID ? 0 : STORE_ERROR;
}

int reg_load_suspended(void) {
  susp_vec sv = {0};
  ttab *tt = ttab_new();
  int rc = tt ? store_tenant_suspended_each(g_reg.db, put_suspended, &sv)
              : STORE_ERROR;
  if (!rc) rc = store_tenant_link_each(g_reg.db, put_link, tt);
  if (!rc && ttab_seal(tt) != TTAB_OK) rc = STORE_ERROR;
  if (rc) {
    free(sv.v);
    ttab_free(tt);
    return rc;
  }
  ttab_free(g_reg.tenants);
  g_reg.tenants = tt;
  /* The query sorts by (platform, id); '/' sorts below every id character
   * that could follow, but sort the joined keys anyway. */
  if (sv.n) qsort(sv.v, sv.n, sizeof sv.v[0], cmp_key);
  free(g_reg.suspended);
  g_reg.suspended = sv.v;
  g_reg.nsuspended = sv.n;
  return STORE_OK;
}

void reg_refresh(void) {
  uint64_t v;
  if (api->counter_get(g_reg.p, REG_COUNTER, &v) != NNO_OK ||
      v == g_reg.counter_seen)
    return;
  int rc = replay();
  if (!rc) rc = opkey_load();
  if (!rc) rc = reg_load_suspended();
  if (rc) {
    /* Serve from what we have and try again on the next request. */
    api->log(g_reg.p, NNO_LOG_WARN, "cannot catch up with core.db: %s",
             sqlite3_errmsg(g_reg.db));
    return;
  }
  g_reg.counter_seen = v;
}

void reg_committed(void) {
  int rc = api->counter_add(g_reg.p, REG_COUNTER, 1, NULL);
  if (rc)
    api->log(g_reg.p, NNO_LOG_ERROR,
             "cannot move the \"%s\" counter (%s): other workers will not "
             "see this change",
             REG_COUNTER, api->err_name(rc));
}

void reg_resolve_stacks(void) {
  if (g_reg.stacks_resolved) return;
  g_reg.stacks_resolved = 1;
  rt_resolve_all(g_reg.routes, find_stack, NULL);
}

/* ---- the stack catalogue ----------------------------------------------- */

typedef struct loaded {
  size_t n;
  nno_str id[256], version[256];
} loaded;

static int is_loaded(const loaded *l, const char *id, const char *version) {
  for (size_t i = 0; i < l->n; i++)
    if (strlen(id) == l->id[i].len && strlen(version) == l->version[i].len &&
        memcmp(id, l->id[i].ptr, l->id[i].len) == 0 &&
        memcmp(version, l->version[i].ptr, l->version[i].len) == 0)
      return 1;
  return 0;
}

typedef struct stale_list {
  const loaded *l;
  size_t n;
  char id[256][STORE_STACK_MAX + 1], version[256][STORE_STACK_MAX + 1];
} stale_list;

static int collect_stale(void *ud, const char *id, const char *version) {
  stale_list *s = ud;
  if (is_loaded(s->l, id, version) || s->n == 256) return 0;
  snprintf(s->id[s->n], sizeof s->id[0], "%s", id);
  snprintf(s->version[s->n], sizeof s->version[0], "%s", version);
  s->n++;
  return 0;
}

int reg_catalogue_sync(void) {
  if (g_reg.catalogue_synced) return STORE_OK;
  loaded *l = calloc(1, sizeof *l);
  stale_list *s = calloc(1, sizeof *s);
  int rc = STORE_ERROR;
  if (!l || !s) goto done;
  nno_stack *st;
  for (size_t i = 0; l->n < 256 && api->stack_at(g_reg.p, i, &st) == NNO_OK;
       i++)
    if (api->stack_info(st, &l->id[l->n], &l->version[l->n]) == NNO_OK) l->n++;
  /* Versions found but refused are listed too (with their state and
   * error, api_install.c); none of them can be activated. */
  nno_stack_entry e;
  if (NNO_HAS(api, stack_catalogue_at))
    for (size_t i = 0;
         l->n < 256 && api->stack_catalogue_at(g_reg.p, i, &e) == NNO_OK; i++)
      if (e.state == NNO_STACK_REFUSED &&
          !is_loaded(l, e.id.ptr, e.version.ptr)) {
        l->id[l->n] = e.id;
        l->version[l->n] = e.version;
        l->n++;
      }
  s->l = l;
  if ((rc = store_begin(g_reg.db)) != 0) goto done;
  for (size_t i = 0; i < l->n && !rc; i++)
    rc = store_stack_add(g_reg.db, l->id[i].ptr, l->version[i].ptr);
  /* Versions no longer installed leave the catalogue, unless a platform
   * still has them activated (the foreign key keeps those). */
  if (!rc) rc = store_stack_each(g_reg.db, collect_stale, s);
  for (size_t i = 0; i < s->n && !rc; i++)
    rc = store_stack_remove_unused(g_reg.db, s->id[i], s->version[i]);
  if (!rc) rc = store_commit(g_reg.db);
  if (rc) {
    api->log(g_reg.p, NNO_LOG_WARN, "cannot update the stack catalogue: %s",
             sqlite3_errmsg(g_reg.db));
    store_rollback(g_reg.db);
    goto done;
  }
  g_reg.catalogue_synced = 1;
done:
  free(l);
  free(s);
  return rc;
}

static void sweep_later(void *ud) {
  (void)ud;
  reg_prov_sweep();
}

/* Stacks load after core plugins: look them up once the host has loaded
 * everything. The sweep runs on the next turn of the loop, after the
 * provisioning plugin (ready after this one) recovered its journal. */
static void registry_ready(nno_plugin *p) {
  reg_resolve_stacks();
  reg_catalogue_sync();
  reg_prov_lookup();
  reg_billing_lookup();
  if (g_reg.prov) {
    if (reg_defer(sweep_later, NULL)) reg_prov_sweep();
  } else
    api_platforms_sweep();
}

/* ---- the RESOLVE hook -------------------------------------------------- */

/* Platform/stack/version triples already logged as missing since the last
 * change of the loaded stacks: each is logged once. */
#define MISSING_LOGGED_MAX 64
static uint64_t missing_logged[MISSING_LOGGED_MAX];
static size_t nmissing_logged;

static uint64_t hash3(const char *a, const char *b, const char *c) {
  uint64_t h = 1469598103934665603ull;
  for (const char *s[3] = {a, b, c}, **p = s; p < s + 3; p++) {
    for (const char *q = *p; *q; q++) h = (h ^ (unsigned char)*q) * 1099511628211ull;
    h = (h ^ 0xff) * 1099511628211ull;
  }
  return h;
}

/* The platform has activations whose version this worker has not loaded
 * (removed by hand, or refused): tell the host, so that a request no other
 * stack routes is answered 503 naming it rather than 404. */
static void missing_stacks(nno_req *req, const rt_entry *e) {
  const char *a = e->acts;
  for (size_t i = 0; i < e->nacts; i++) {
    const char *ver = a + strlen(a) + 1;
    if (!find_stack(NULL, a, ver)) {
      if (NNO_HAS(api, req_stack_missing)) api->req_stack_missing(req, a, ver);
      uint64_t h = hash3(e->id, a, ver);
      size_t j = 0;
      while (j < nmissing_logged && missing_logged[j] != h) j++;
      if (j == nmissing_logged) {
        if (nmissing_logged < MISSING_LOGGED_MAX)
          missing_logged[nmissing_logged++] = h;
        api->log(g_reg.p, NNO_LOG_ERROR,
                 "platform %s has stack %s %s active, but it is not loaded",
                 e->id, a, ver);
      }
    }
    a = ver + strlen(ver) + 1;
  }
}

/* Since ABI 1.3: a version was installed or removed. Handles change: look
 * them all up again, and bring the catalogue in line on next use. */
static void registry_stacks_changed(nno_plugin *p) {
  (void)p;
  nmissing_logged = 0;
  g_reg.stacks_resolved = 0;
  g_reg.catalogue_synced = 0;
  reg_resolve_stacks();
}

/* The plan picks the request's budgets in a sandbox (ABI 1.4); one the
 * host does not take (not [a-z0-9-]) leaves the defaults. */
static void set_plan(nno_req *req, const rt_entry *e) {
  if (NNO_HAS(api, req_set_plan))
    (void)api->req_set_plan(g_reg.p, req, e->plan[0] ? e->plan : "free");
}

/* A request on auth.svc.{stackId}.{p}.{base}: scoped to that stack of the
 * platform alone, so the name reaches no other stack's routes. 404 naming
 * it when the platform has no such stack active; 503 (the host's) when it
 * is active but not loaded here. */
static int resolve_auth_svc(nno_req *req, const rt_entry *e, const char *sid,
                            size_t slen) {
  const char *a = e->acts;
  for (size_t i = 0; i < e->nacts; i++) {
    const char *ver = a + strlen(a) + 1;
    if (strlen(a) == slen && memcmp(a, sid, slen) == 0) {
      nno_stack *s = find_stack(NULL, a, ver);
      if (!s && NNO_HAS(api, req_stack_missing))
        api->req_stack_missing(req, a, ver);
      int rc = api->req_set_scope(req, e->id, e->idlen, 0, &s, s ? 1 : 0);
      if (!rc) set_plan(req, e);
      return rc ? rc : NNO_OK;
    }
    a = ver + strlen(ver) + 1;
  }
  char detail[200];
  snprintf(detail, sizeof detail, "stack \"%.*s\" is not active on platform %s",
           (int)(slen > 64 ? 64 : slen), sid, e->id);
  api->res_problem(req, 404, "Not Found", detail);
  return NNO_DONE;
}

/* Per request: one atomic load (the counter), a host-name suffix test and
 * one hash lookup. The database is only read when the counter moved. */
static int on_resolve(nno_req *req, void *ud) {
  if (!g_reg.stacks_resolved) reg_resolve_stacks();
  reg_refresh();
  nno_str path = api->req_path(req);
  const char *id = NULL;
  size_t idlen = 0, strip = 0;
  /* {platformId}.{baseDomain} and {anything}.{platformId}.{baseDomain}
   * belong to the platform. The host decides first, so a platform's hosts
   * never serve the core API nor another platform's /p/{id} path (its
   * cookie and its origin cover every name under {platformId}.{base}). */
  nno_str h = api->req_host(req);
  int claimed =
      rt_host_platform(h.ptr, h.len, g_reg.base_domain, g_reg.base_len, &id,
                       &idlen);
  int by_path = !claimed && path.len >= 3 && memcmp(path.ptr, "/p/", 3) == 0;
  /* admin.{base} is the operator view's origin: nothing a package answers
   * is served there, so no package's page can read what the view keeps. */
  if (by_path &&
      rt_host_is_admin(h.ptr, h.len, g_reg.base_domain, g_reg.base_len)) {
    api->res_problem(req, 404, "Not Found",
                     "platforms are not served on the operator view's host");
    return NNO_DONE;
  }
  /* /p/{platformId}/...: only on hosts no platform claims. */
  if (by_path) {
    id = path.ptr + 3;
    const char *slash = memchr(id, '/', path.len - 3);
    idlen = slash ? (size_t)(slash - id) : path.len - 3;
    strip = 3 + idlen;
  }
  if (!id) return NNO_OK; /* the core API */
  const rt_entry *e =
      hu_id_valid(id, idlen) ? rt_get(g_reg.routes, id, idlen) : NULL;
  char detail[160];
  if (!e || e->status == RT_DELETING) {
    snprintf(detail, sizeof detail, "no platform \"%.*s\"",
             (int)(idlen > 64 ? 64 : idlen), id);
    api->res_problem(req, 404, "Not Found", detail);
    return NNO_DONE;
  }
  if (e->status == RT_SUSPENDED) {
    snprintf(detail, sizeof detail, "platform %s is suspended", e->id);
    api->res_problem(req, 403, "Forbidden", detail);
    return NNO_DONE;
  }
  /* auth.svc.{stackId}.{p}.{base}: that one stack of the platform. */
  const char *sid;
  size_t slen;
  if (claimed && rt_auth_svc_stack(h.ptr, h.len, (size_t)(id - h.ptr), &sid,
                                   &slen))
    return resolve_auth_svc(req, e, sid, slen);
  if (e->nstacks < e->nacts) missing_stacks(req, e);
  int rc =
      api->req_set_scope(req, e->id, e->idlen, strip, e->stacks, e->nstacks);
  if (!rc) set_plan(req, e);
  return rc ? rc : NNO_OK;
}

/* ---- the nno.registry service ------------------------------------------ */

static int svc_platform_status(const char *id, char *out, size_t cap) {
  if (!id || !out) return NNO_EINVAL;
  reg_refresh();
  const rt_entry *e = rt_get(g_reg.routes, id, strlen(id));
  if (!e) return NNO_ENOENT;
  const char *s = rt_status_name(e->status);
  if (strlen(s) >= cap) return NNO_EINVAL;
  memcpy(out, s, strlen(s) + 1);
  return NNO_OK;
}

static int svc_platform_plan(const char *id, char *out, size_t cap) {
  if (!id || !out) return NNO_EINVAL;
  reg_refresh();
  const rt_entry *e = rt_get(g_reg.routes, id, strlen(id));
  if (!e) return NNO_ENOENT;
  const char *s = e->plan[0] ? e->plan : "free";
  if (strlen(s) >= cap) return NNO_EINVAL;
  memcpy(out, s, strlen(s) + 1);
  return NNO_OK;
}

static int svc_operator_key_check(const char *key, size_t len) {
  if (!key) return 0;
  reg_refresh(); /* a rotation in another worker changes the hash */
  return opkey_matches(key, len);
}

static int svc_tenant_within(const char *platform, const char *tenant,
                             const char *ancestor) {
  if (!platform || !tenant || !ancestor) return NNO_EINVAL;
  int rc = store_tenant_within(g_reg.db, platform, tenant, ancestor);
  if (rc >= 0) return rc;
  return rc == STORE_BUSY ? NNO_EBUSY : NNO_EIO;
}

static int svc_audit_add(const char *actor, const char *action,
                         const char *target, const char *request_id,
                         const char *detail_json) {
  if (!actor || !*actor || !action || !*action || !target ||
      strlen(actor) > 128 || strlen(action) > 64 || strlen(target) > 256)
    return NNO_EINVAL;
  if (detail_json) {
    json_error_t e;
    json_t *d = json_loads(detail_json, 0, &e);
    int ok = json_is_object(d);
    json_decref(d);
    if (!ok) return NNO_EINVAL;
  }
  int rc = store_audit_add(g_reg.db, actor, action, target, request_id,
                           detail_json);
  return rc == STORE_OK ? NNO_OK : rc == STORE_BUSY ? NNO_EBUSY : NNO_EIO;
}

static int svc_tenant_active(const char *platform, const char *tenant) {
  char key[2 * 33];
  if (!platform || !tenant || strlen(platform) > 32 || strlen(tenant) > 32)
    return NNO_EINVAL;
  reg_refresh();
  if (!g_reg.nsuspended) return 1;
  snprintf(key, sizeof key, "%s/%s", platform, tenant);
  return bsearch(key, g_reg.suspended, g_reg.nsuspended,
                 sizeof g_reg.suspended[0], cmp_key)
             ? 0
             : 1;
}

static int svc_platform_incarnation(const char *id, char *out, size_t cap) {
  if (!id || !out || cap < 17 || !hu_id_valid(id, strlen(id)))
    return NNO_EINVAL;
  int rc = store_platform_incarnation(g_reg.db, id, out, cap);
  return rc == STORE_OK         ? NNO_OK
         : rc == STORE_NOTFOUND ? NNO_ENOENT
         : rc == STORE_BUSY     ? NNO_EBUSY
                                : NNO_EIO;
}

static int svc_tenant_path(const char *platform, const char *tenant,
                           char *out, size_t cap) {
  if (!platform || !tenant || !out || !cap || strlen(platform) > 32 ||
      strlen(tenant) > 32)
    return NNO_EINVAL;
  reg_refresh();
  switch (ttab_path(g_reg.tenants, platform, tenant, out, cap)) {
  case TTAB_OK:
    return NNO_OK;
  case TTAB_NOTFOUND:
    return NNO_ENOENT;
  default:
    return NNO_EINVAL;
  }
}

static int store_to_nno(int rc) {
  return rc == STORE_OK         ? NNO_OK
         : rc == STORE_NOTFOUND ? NNO_ENOENT
         : rc == STORE_BUSY     ? NNO_EBUSY
                                : NNO_EIO;
}

static int svc_platform_profile(const char *id, char *out, size_t cap) {
  store_platform p;
  char *branding = NULL;
  if (!id || !out || !cap || !hu_id_valid(id, strlen(id))) return NNO_EINVAL;
  int rc = store_platform_get(g_reg.db, id, &p);
  if (!rc) rc = store_platform_branding(g_reg.db, id, &branding);
  if (!rc && strcmp(p.status, "deleting") == 0) rc = STORE_NOTFOUND;
  if (rc) {
    free(branding);
    return store_to_nno(rc);
  }
  json_t *b = branding ? json_loads(branding, 0, NULL) : json_object();
  free(branding);
  if (!json_is_object(b)) { /* the schema's CHECK makes this impossible */
    json_decref(b);
    b = json_object();
  }
  json_t *o = json_pack("{s:s, s:s, s:s, s:s, s:o}", "id", p.id, "name",
                        p.name, "class", p.cls, "status", p.status,
                        "branding", b);
  if (!o) return NNO_ENOMEM;
  size_t n = json_dumpb(o, out, cap, JSON_COMPACT);
  json_decref(o);
  if (n == 0 || n >= cap) return NNO_EINVAL;
  out[n] = '\0';
  return NNO_OK;
}

static int svc_platform_stack_at(const char *id, size_t i, nno_stack **out) {
  if (!id || !out) return NNO_EINVAL;
  reg_refresh();
  const rt_entry *e = rt_get(g_reg.routes, id, strlen(id));
  if (!e || e->status == RT_DELETING || i >= e->nstacks) return NNO_ENOENT;
  *out = e->stacks[i];
  return NNO_OK;
}

typedef struct tenant_each {
  int (*each)(void *ud, const char *id, const char *name, const char *path,
              const char *status);
  void *ud;
  int stopped, value; /* the caller stopped the walk with `value` */
  int seen, more;      /* rows given; a row past the bound exists */
} tenant_each;

static int tenant_each_cb(void *ud, const char *id, const char *name,
                          const char *path, const char *status) {
  tenant_each *te = ud;
  /* The walk reads one row past the bound only to tell that it exists. */
  if (te->seen == NNO_REGISTRY_TENANTS_MAX) {
    te->more = 1;
    return -1;
  }
  te->seen++;
  int rc = te->each(te->ud, id, name, path, status);
  if (!rc) return 0;
  te->stopped = 1;
  te->value = rc;
  return -1; /* not a store_rc: the walk only stops */
}

static int svc_tenant_list(const char *platform, const char *root,
                           int (*each)(void *ud, const char *id,
                                       const char *name, const char *path,
                                       const char *status),
                           void *ud) {
  char status[16];
  if (!platform || !each || !hu_id_valid(platform, strlen(platform)) ||
      (root && strlen(root) > STORE_ID_MAX))
    return NNO_EINVAL;
  if (root && !*root) root = NULL;
  int rc = store_platform_status(g_reg.db, platform, status, sizeof status);
  if (!rc && strcmp(status, "deleting") == 0) rc = STORE_NOTFOUND;
  if (rc) return store_to_nno(rc);
  tenant_each te = {each, ud, 0, 0, 0, 0};
  rc = store_tenant_tree(g_reg.db, platform, root,
                         NNO_REGISTRY_TENANTS_MAX + 1, tenant_each_cb, &te);
  if (te.stopped) return te.value;
  return te.more ? NNO_ETOOBIG : store_to_nno(rc);
}

typedef struct page_walk {
  int (*each)(void *ud, const char *id, const char *plan);
  void *ud;
  int stopped, value;
} page_walk;

static int page_each_cb(void *ud, const char *id, const char *status,
                        const char *plan) {
  page_walk *w = ud;
  (void)status;
  int rc = w->each(w->ud, id, plan && *plan ? plan : "free");
  if (!rc) return 0;
  w->stopped = 1;
  w->value = rc;
  return -1; /* not a store_rc: the walk only stops */
}

static int svc_platform_page(const char *after, size_t max,
                             int (*each)(void *ud, const char *id,
                                         const char *plan),
                             void *ud) {
  if (!each || max < 1 || max > NNO_REGISTRY_PAGE_MAX ||
      (after && strlen(after) > STORE_ID_MAX))
    return NNO_EINVAL;
  page_walk w = {each, ud, 0, 0};
  int rc = store_platform_page(g_reg.db, after && *after ? after : NULL,
                               (int)max, page_each_cb, &w);
  if (w.stopped) return w.value;
  return store_to_nno(rc);
}

static const nno_registry_v1 service = {
    .size = sizeof(nno_registry_v1),
    .platform_status = svc_platform_status,
    .operator_key_check = svc_operator_key_check,
    .tenant_within = svc_tenant_within,
    .platform_plan = svc_platform_plan,
    .audit_add = svc_audit_add,
    .tenant_active = svc_tenant_active,
    .platform_incarnation = svc_platform_incarnation,
    .tenant_path = svc_tenant_path,
    .platform_profile = svc_platform_profile,
    .platform_stack_at = svc_platform_stack_at,
    .tenant_list = svc_tenant_list,
    .platform_set_plan = reg_svc_set_plan,
    .platform_set_status = reg_svc_set_status,
    .platform_page = svc_platform_page,
};

/* ---- init and fini ----------------------------------------------------- */

static void cleanup(void) {
  free(g_reg.suspended);
  g_reg.suspended = NULL;
  g_reg.nsuspended = 0;
  ttab_free(g_reg.tenants);
  g_reg.tenants = NULL;
  rt_free(g_reg.routes);
  g_reg.routes = NULL;
  if (g_reg.db) sqlite3_close_v2(g_reg.db);
  g_reg.db = NULL;
}

static int registry_init(nno_plugin *p, const nno_host_api *host) {
  char err[512];
  int rc = NNO_EIO;
  api = host;
  nno_sdk_init(p, host);
  memset(&g_reg, 0, sizeof g_reg);
  g_reg.p = p;
  if (!NNO_HAS(api, req_host)) {
    api->plugin_fail(p,
                     "this host lacks the gateway hooks the registry "
                     "needs (ABI %u.%u)",
                     api->abi_major, api->abi_minor);
    return NNO_ENOTSUP;
  }
  if (sodium_init() < 0) {
    api->plugin_fail(p, "cannot initialise libsodium");
    return NNO_EIO;
  }
  const char *data = api->host_data_dir(p);
  if (mkdir(data, 0700) != 0 && errno != EEXIST) {
    api->plugin_fail(p, "cannot create %s: %s", data, strerror(errno));
    return NNO_EIO;
  }
  if (snprintf(g_reg.db_path, sizeof g_reg.db_path, "%s/core.db", data) >=
          (int)sizeof g_reg.db_path ||
      snprintf(g_reg.key_path, sizeof g_reg.key_path, "%s/operator.key",
               data) >= (int)sizeof g_reg.key_path) {
    api->plugin_fail(p, "data directory path too long: %s", data);
    return NNO_EINVAL;
  }
  const char *base = api->host_base_domain(p);
  g_reg.base_len = strlen(base);
  if (g_reg.base_len >= sizeof g_reg.base_domain) g_reg.base_len = 0;
  for (size_t i = 0; i < g_reg.base_len; i++)
    g_reg.base_domain[i] =
        (char)((base[i] >= 'A' && base[i] <= 'Z') ? base[i] + 32 : base[i]);

  if (store_open(g_reg.db_path, &g_reg.db, err, sizeof err) ||
      store_migrate(g_reg.db, err, sizeof err)) {
    api->plugin_fail(p, "%s", err);
    goto fail;
  }
  /* A stack move left under this process id by an earlier process (ids
   * are reused, in a container from the same few): none of ours is in
   * progress yet. */
  if (store_begin(g_reg.db) == STORE_OK) {
    if (store_move_forget_pid(g_reg.db, (int64_t)getpid()) ||
        store_commit(g_reg.db))
      store_rollback(g_reg.db);
  }
  /* Read the counter before the snapshot: a change committed after this
   * point moves the counter past it and is replayed. */
  api->counter_get(p, REG_COUNTER, &g_reg.counter_seen);
  int64_t min = 0;
  rc = NNO_ENOMEM;
  if (!(g_reg.routes = rt_new())) {
    api->plugin_fail(p, "out of memory");
    goto fail;
  }
  rc = NNO_EIO;
  int src = store_begin_read(g_reg.db);
  if (!src) src = store_change_bounds(g_reg.db, &min, &g_reg.seq_applied);
  if (!src) src = load_all(g_reg.routes);
  if (!src) src = reg_load_suspended();
  if (!src) src = store_commit(g_reg.db);
  if (src) {
    api->plugin_fail(p, "cannot load platforms from %s: %s", g_reg.db_path,
                     sqlite3_errmsg(g_reg.db));
    store_rollback(g_reg.db);
    goto fail;
  }
  if ((rc = opkey_init()) != 0) goto fail;
  if ((rc = api_platforms_init(p)) || (rc = api_tenants_init(p)) ||
      (rc = api_stacks_init(p)) || (rc = api_install_init(p)) || (rc = api_audit_init(p)) ||
      (rc = api_quarantine_init(p)) || (rc = api_logs_init(p)) ||
      (rc = api->route_add(p, "POST", "/api/v1/operator-key/rotate",
                           opkey_on_rotate, NULL))) {
    api->plugin_fail(p, "cannot bind the operator API: %s", api->strerror(rc));
    goto fail;
  }
  if ((rc = api->gateway_hook_add(p, NNO_STAGE_RESOLVE, on_resolve, NULL)) ||
      (rc = api->service_publish(p, NNO_REGISTRY_SERVICE, NNO_REGISTRY_VERSION,
                                 &service))) {
    api->plugin_fail(p, "cannot register with the gateway: %s",
                     api->strerror(rc));
    goto fail;
  }
  api->log(p, NNO_LOG_INFO, "registry ready: %zu platforms, schema %d",
           rt_count(g_reg.routes), store_latest_version());
  return NNO_OK;
fail:
  cleanup();
  return rc ? rc : NNO_EIO;
}

static void registry_fini(nno_plugin *p) { cleanup(); }

NNO_PLUGIN(.name = "registry", .version = "1.0.0", .kind = NNO_KIND_CORE,
           .on_plugin_init = registry_init, .on_plugin_fini = registry_fini,
           .on_host_ready = registry_ready,
           .on_stacks_changed = registry_stacks_changed,
           .on_host_event = reg_on_host_event)
