/* /api/v1/plans: the operator's view of the plan table (plans.c).
 *
 *   GET   /api/v1/plans          every plan, by name
 *   GET   /api/v1/plans/{name}   one, with its ETag
 *   POST  /api/v1/plans          create (fields not given: the free plan's)
 *
 * A provider_price belongs to one plan: a webhook maps it back to it.
 *   PATCH /api/v1/plans/{name}   change some fields; If-Match
 *   DELETE /api/v1/plans/{name}  a plan no platform uses; If-Match. The
 *                                free plan (every plan's seed, the plan
 *                                of platforms without one) and the
 *                                default plan are kept: 409
 *
 * Operator only (the manifest gives the routes no scope: IAM's AUTHZ
 * refuses every other credential; the handlers check again). A plan set
 * by the host configuration is read-only here: 409. Writes run in one
 * BEGIN IMMEDIATE transaction of billing.db with the audit row added
 * before COMMIT, then move the shared counter: every worker answers from
 * the new table on its next lookup. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>

#include <jansson.h>
#include <nno/sdk.h>

#include "internal.h"

#define PLAN_BODY_MAX 16384

/* 1 when the caller is the operator; otherwise answers 401 or 403. */
static int operator_only(nno_req *req) {
  nno_caller c;
  if (NNO_HAS(api, req_caller) && api->req_caller(req, &c) == NNO_OK &&
      c.kind != NNO_CALLER_NONE) {
    if (c.kind == NNO_CALLER_OPERATOR) return 1;
    nno_problem(req, 403, NULL,
                "plans are the operator's: no key or session of a platform "
                "may read or change them");
    return 0;
  }
  /* Without IAM: the operator key itself. */
  nno_str v;
  if (g_bill.registry && api->req_header(req, "Authorization", &v) == NNO_OK &&
      v.len > 7 && v.len < 512 && strncasecmp(v.ptr, "Bearer ", 7) == 0 &&
      g_bill.registry->operator_key_check(v.ptr + 7, v.len - 7) == 1)
    return 1;
  nno_problem(req, 401, NULL,
              "send the operator key as \"Authorization: Bearer <key>\"");
  return 0;
}

static int store_error(nno_req *req) {
  int code = sqlite3_errcode(g_plans.db);
  if ((code & 0xff) == SQLITE_BUSY || (code & 0xff) == SQLITE_LOCKED)
    return nno_problem_retry(req, 503, 1,
                             "billing.db is busy; retry in a moment");
  api->log(g_bill.p, NNO_LOG_ERROR, "billing.db: %s",
           sqlite3_errmsg(g_plans.db));
  return nno_problem(req, 500, NULL, "database error");
}

static int rollback_error(nno_req *req) {
  store_error(req); /* first: it reads the connection's error */
  sqlite3_exec(g_plans.db, "ROLLBACK", NULL, NULL, NULL);
  return NNO_OK;
}

/* {name} as a plan's name; -1 after answering 404. */
static int read_name(nno_req *req, char *name) {
  if (nno_param_copy(req, "name", name, 33) == 0 && plan_name_valid(name))
    return 0;
  char q[64];
  nno_quote(name, q, sizeof q);
  nno_problem(req, 404, NULL, "no plan %s", q);
  return -1;
}

static int config_refusal(nno_req *req, const char *name) {
  return nno_problem(req, 409, NULL,
                     "plan \"%s\" is set by the host configuration "
                     "(plugin_config \"billing\": \"plans\"): change it "
                     "there",
                     name);
}

/* Inside the open transaction: the audit row (core.db, through the
 * registry). A sqlite-like code: non-zero stops the write. */
static int audit(nno_req *req, const char *action, const char *name,
                 json_t *detail) {
  if (!g_bill.registry) return 0; /* no registry: no audit log to write */
  char actor[NNO_ACTOR_MAX], rid[64], target[48];
  nno_caller_actor(req, actor, sizeof actor);
  nno_str id = api->req_id(req);
  snprintf(rid, sizeof rid, "%.*s", (int)(id.len < 63 ? id.len : 63),
           id.ptr ? id.ptr : "");
  snprintf(target, sizeof target, "plan:%s", name);
  char *text = detail ? json_dumps(detail, JSON_COMPACT) : NULL;
  int rc = g_bill.registry->audit_add(actor, action, target,
                                      rid[0] ? rid : NULL, text);
  free(text);
  if (rc)
    api->log(g_bill.p, NNO_LOG_ERROR, "cannot write the audit row of %s %s: %s",
             action, target, api->err_name(rc));
  return rc;
}

/* After the row's write (sqlite code `rc`): the audit row, then COMMIT.
 * 0, or -1 after rolling back and answering. */
static int finish_write(nno_req *req, int rc, json_t *detail,
                        const char *action, const char *name) {
  if (rc || !detail) {
    if (!detail) api->log(g_bill.p, NNO_LOG_ERROR, "out of memory");
    rollback_error(req);
    return -1;
  }
  if (audit(req, action, name, detail)) {
    sqlite3_exec(g_plans.db, "ROLLBACK", NULL, NULL, NULL);
    nno_problem_retry(req, 503, 1,
                      "cannot write the audit log; nothing was changed");
    return -1;
  }
  if (sqlite3_exec(g_plans.db, "COMMIT", NULL, NULL, NULL) != SQLITE_OK) {
    rollback_error(req);
    return -1;
  }
  return 0;
}

/* Inside the transaction: the plan other than `self` whose price is
 * `price` ("" is nobody's) into owner. 1 found, 0 none, -1 store error.
 * A configured plan's price is the table's (the stored row's is under
 * it). */
static int price_owner(const char *price, const char *self, char *owner,
                       size_t cap) {
  if (!price[0]) return 0;
  plans_refresh();
  for (size_t i = 0; i < g_plans.n; i++)
    if (g_plans.v[i].from_config && strcmp(g_plans.v[i].l.name, self) &&
        strcmp(g_plans.v[i].price, price) == 0) {
      snprintf(owner, cap, "%s", g_plans.v[i].l.name);
      return 1;
    }
  sqlite3_stmt *st = NULL;
  int found = -1;
  if (sqlite3_prepare_v2(g_plans.db,
                         "SELECT name FROM plans WHERE provider_price = ?"
                         " AND name <> ? ORDER BY name",
                         -1, &st, NULL) != SQLITE_OK)
    return -1;
  sqlite3_bind_text(st, 1, price, -1, SQLITE_TRANSIENT);
  sqlite3_bind_text(st, 2, self, -1, SQLITE_TRANSIENT);
  int rc;
  found = 0;
  while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
    const char *n = (const char *)sqlite3_column_text(st, 0);
    const plan_row *t = plans_find(n);
    if (t && t->from_config) continue; /* its price is the config's */
    snprintf(owner, cap, "%s", n);
    found = 1;
    break;
  }
  if (rc != SQLITE_ROW && rc != SQLITE_DONE) found = -1;
  sqlite3_finalize(st);
  return found;
}

/* Inside the transaction: 0 when r's price is no other plan's; else -1
 * after rolling back and answering 422 (or the store's error). */
static int price_free(nno_req *req, const plan_row *r) {
  char owner[40];
  int rc = price_owner(r->price, r->l.name, owner, sizeof owner);
  if (rc < 0) {
    rollback_error(req);
    return -1;
  }
  if (rc == 0) return 0;
  sqlite3_exec(g_plans.db, "ROLLBACK", NULL, NULL, NULL);
  nno_problem(req, 422, "provider_price",
              "field \"provider_price\": \"%s\" is plan \"%s\"'s already "
              "(a price belongs to one plan)",
              r->price, owner);
  return -1;
}

static int send_plan(nno_req *req, int status, const plan_row *r) {
  nno_etag(req, r->version);
  return nno_send_json(req, status, plan_json(r));
}

/* ---- GET ----------------------------------------------------------------- */

static int on_list(nno_req *req, void *ud) {
  (void)ud;
  if (!operator_only(req)) return NNO_OK;
  plans_refresh();
  json_t *items = json_array();
  for (size_t i = 0; items && i < g_plans.n; i++)
    if (json_array_append_new(items, plan_json(&g_plans.v[i]))) {
      json_decref(items);
      items = NULL;
    }
  return nno_send_json(req, 200,
                       items ? json_pack("{s:o, s:s}", "items", items,
                                         "default_plan", billing_default_plan())
                             : NULL);
}

static int on_get(nno_req *req, void *ud) {
  (void)ud;
  char name[33];
  if (!operator_only(req) || read_name(req, name)) return NNO_OK;
  plans_refresh();
  const plan_row *r = plans_find(name);
  if (!r) return nno_problem(req, 404, NULL, "no plan \"%s\"", name);
  return send_plan(req, 200, r);
}

/* ---- POST ---------------------------------------------------------------- */

static int on_create(nno_req *req, void *ud) {
  (void)ud;
  json_t *b = NULL;
  plan_error e;
  if (!operator_only(req) ||
      nno_body_object(req, PLAN_BODY_MAX, 0, &b))
    return NNO_OK;
  json_t *jn = json_object_get(b, "name");
  const char *name = json_string_value(jn);
  plan_row r;
  plan_defaults(&r);
  if (!jn) {
    nno_problem(req, 422, "name", "field \"name\": required");
    goto done;
  }
  if (!name || !plan_name_valid(name)) {
    char q[64];
    nno_quote(name ? name : "", q, sizeof q);
    nno_problem(req, 422, "name",
                "field \"name\": expected 1 to 32 characters of [a-z0-9-], "
                "got %s",
                name ? q : nno_json_type_name(jn));
    goto done;
  }
  if (plan_apply(b, &r, &e)) {
    nno_problem(req, 422, e.field[0] ? e.field : NULL, "%s", e.msg);
    goto done;
  }
  snprintf(r.l.name, sizeof r.l.name, "%s", name);
  for (size_t i = 0; i < g_plans.ncfg; i++)
    if (strcmp(g_plans.cfg[i].l.name, name) == 0) {
      config_refusal(req, name);
      goto done;
    }
  r.created_at = r.updated_at = (int64_t)time(NULL);
  r.version = 1;
  r.from_config = 0;
  if (sqlite3_exec(g_plans.db, "BEGIN IMMEDIATE", NULL, NULL, NULL)) {
    store_error(req);
    goto done;
  }
  sqlite3_stmt *st = NULL;
  int64_t count = -1;
  if (sqlite3_prepare_v2(g_plans.db, "SELECT count(*) FROM plans", -1, &st,
                         NULL) == SQLITE_OK &&
      sqlite3_step(st) == SQLITE_ROW)
    count = sqlite3_column_int64(st, 0);
  sqlite3_finalize(st);
  if (count < 0) {
    rollback_error(req);
    goto done;
  }
  if (count >= PLANS_MAX) {
    sqlite3_exec(g_plans.db, "ROLLBACK", NULL, NULL, NULL);
    nno_problem(req, 409, NULL,
                "there are %d plans already, the most a host "
                "holds",
                PLANS_MAX);
    goto done;
  }
  if (price_free(req, &r)) goto done;
  int rc = plans_store_row(g_plans.db, &r, 1);
  if ((rc & 0xff) == SQLITE_CONSTRAINT) {
    sqlite3_exec(g_plans.db, "ROLLBACK", NULL, NULL, NULL);
    nno_problem(req, 409, "name", "plan \"%s\" already exists", name);
    goto done;
  }
  json_t *fields = json_deep_copy(b);
  json_object_del(fields, "name");
  json_t *detail = json_pack("{s:o}", "fields", fields);
  rc = finish_write(req, rc, detail, "plan.create", name);
  json_decref(detail);
  if (rc) goto done;
  plans_committed();
  char loc[64];
  snprintf(loc, sizeof loc, "/api/v1/plans/%s", name);
  api->res_header(req, "Location", loc);
  send_plan(req, 201, &r);
done:
  json_decref(b);
  return NNO_OK;
}

/* ---- PATCH --------------------------------------------------------------- */

/* Inside the transaction: the stored row `name` into *r. 1 found, 0 not,
 * -1 on a store error. */
static int load_row(const char *name, plan_row *r) {
  sqlite3_stmt *st = NULL;
  int found = -1;
  if (sqlite3_prepare_v2(g_plans.db,
                         "SELECT limits, provider_price, created_at,"
                         " updated_at, version FROM plans WHERE name = ?",
                         -1, &st, NULL) != SQLITE_OK)
    return -1;
  sqlite3_bind_text(st, 1, name, -1, SQLITE_TRANSIENT);
  int rc = sqlite3_step(st);
  if (rc == SQLITE_DONE) found = 0;
  if (rc == SQLITE_ROW) {
    plan_error e;
    plan_defaults(r);
    json_t *lim = json_loads((const char *)sqlite3_column_text(st, 0), 0, NULL);
    plan_apply(lim, r, &e); /* as the table read it: seed values kept */
    json_decref(lim);
    snprintf(r->l.name, sizeof r->l.name, "%s", name);
    snprintf(r->price, sizeof r->price, "%s",
             (const char *)sqlite3_column_text(st, 1));
    r->created_at = sqlite3_column_int64(st, 2);
    r->updated_at = sqlite3_column_int64(st, 3);
    r->version = sqlite3_column_int64(st, 4);
    r->from_config = 0;
    found = 1;
  }
  sqlite3_finalize(st);
  return found;
}

/* The members whose value changed, {field: {"from": a, "to": b}}; for
 * "rates", one entry per bucket ("rates.key"). A new object or NULL. */
static json_t *changes_of(const plan_row *before, const plan_row *after) {
  json_t *a = plan_json(before), *b = plan_json(after), *out = json_object();
  const char *k;
  json_t *v;
  if (a && b && out) json_object_foreach(b, k, v) {
      if (!strcmp(k, "version") || !strcmp(k, "updated_at") ||
          !strcmp(k, "created_at"))
        continue;
      json_t *old = json_object_get(a, k);
      if (strcmp(k, "rates") == 0) {
        const char *rk;
        json_t *rv;
        json_object_foreach(v, rk, rv) {
          json_t *ov = json_object_get(old, rk);
          char key[32];
          snprintf(key, sizeof key, "rates.%s", rk);
          if (!json_equal(ov, rv))
            json_object_set_new(out, key,
                                json_pack("{s:O, s:O}", "from", ov, "to", rv));
        }
      } else if (!json_equal(old, v)) {
        json_object_set_new(out, k,
                            json_pack("{s:O, s:O}", "from", old, "to", v));
      }
    }
  json_decref(a);
  json_decref(b);
  return out;
}

static int on_patch(nno_req *req, void *ud) {
  (void)ud;
  char name[33];
  json_t *b = NULL, *changes = NULL;
  plan_error e;
  plan_row before, r;
  if (!operator_only(req) || read_name(req, name) ||
      nno_body_object(req, PLAN_BODY_MAX,
                      NNO_BODY_EMPTY_OK, &b))
    return NNO_OK;
  json_t *jn = json_object_get(b, "name");
  if (jn && (!json_is_string(jn) || strcmp(json_string_value(jn), name))) {
    nno_problem(req, 422, "name",
                "field \"name\": a plan cannot be renamed (create another "
                "and move the platforms to it)");
    goto done;
  }
  for (size_t i = 0; i < g_plans.ncfg; i++)
    if (strcmp(g_plans.cfg[i].l.name, name) == 0) {
      config_refusal(req, name);
      goto done;
    }
  if (sqlite3_exec(g_plans.db, "BEGIN IMMEDIATE", NULL, NULL, NULL)) {
    store_error(req);
    goto done;
  }
  int found = load_row(name, &before);
  if (found <= 0) {
    if (found < 0) {
      rollback_error(req);
    } else {
      sqlite3_exec(g_plans.db, "ROLLBACK", NULL, NULL, NULL);
      nno_problem(req, 404, NULL, "no plan \"%s\"", name);
    }
    goto done;
  }
  if (!nno_if_match(req, before.version)) {
    sqlite3_exec(g_plans.db, "ROLLBACK", NULL, NULL, NULL);
    nno_problem(req, 412, NULL,
                "If-Match does not match the plan's current ETag \"v%lld\"",
                (long long)before.version);
    goto done;
  }
  r = before;
  if (plan_apply(b, &r, &e)) {
    sqlite3_exec(g_plans.db, "ROLLBACK", NULL, NULL, NULL);
    nno_problem(req, 422, e.field[0] ? e.field : NULL, "%s", e.msg);
    goto done;
  }
  if (!(changes = changes_of(&before, &r))) {
    rollback_error(req);
    goto done;
  }
  if (json_object_size(changes) == 0) { /* nothing to change */
    sqlite3_exec(g_plans.db, "ROLLBACK", NULL, NULL, NULL);
    send_plan(req, 200, &before);
    goto done;
  }
  if (strcmp(r.price, before.price) && price_free(req, &r)) goto done;
  r.version = before.version + 1;
  r.updated_at = (int64_t)time(NULL);
  json_t *detail = json_pack("{s:O}", "changes", changes);
  int rc = plans_store_row(g_plans.db, &r, 0);
  rc = finish_write(req, rc, detail, "plan.update", name);
  json_decref(detail);
  if (rc) goto done;
  plans_committed();
  send_plan(req, 200, &r);
done:
  json_decref(changes);
  json_decref(b);
  return NNO_OK;
}

/* ---- DELETE -------------------------------------------------------------- */

typedef struct plan_users {
  const char *plan;
  uint64_t n;
  char last[64];
  size_t seen;
} plan_users;

static int count_user(void *ud, const char *id, const char *plan) {
  plan_users *u = ud;
  if (strcmp(plan, u->plan) == 0) u->n++;
  snprintf(u->last, sizeof u->last, "%s", id);
  u->seen++;
  return 0;
}

/* The platforms on plan `name`, read from the registry page by page (or,
 * without the member, from billing's accounts). 0, or -1 with *why set
 * ("registry busy", "store error"). */
#define USERS_PAGE 500
static int plan_user_count(const char *name, uint64_t *out, const char **why) {
  const nno_registry_v1 *reg = g_bill.registry;
  *out = 0;
  if (reg && reg->size >= offsetof(nno_registry_v1, platform_page) +
                              sizeof reg->platform_page &&
      reg->platform_page) {
    plan_users u = {name, 0, "", 0};
    do {
      u.seen = 0;
      int rc = reg->platform_page(u.last, USERS_PAGE, count_user, &u);
      if (rc) {
        *why = rc == NNO_EBUSY ? "the registry is busy" : "registry error";
        return -1;
      }
    } while (u.seen == USERS_PAGE);
    *out = u.n;
    return 0;
  }
  sqlite3_stmt *st = NULL;
  int rc = sqlite3_prepare_v2(g_plans.db,
                              "SELECT count(*) FROM accounts WHERE plan = ?1",
                              -1, &st, NULL);
  if (rc == SQLITE_OK) {
    sqlite3_bind_text(st, 1, name, -1, SQLITE_STATIC);
    rc = sqlite3_step(st);
    if (rc == SQLITE_ROW) *out = (uint64_t)sqlite3_column_int64(st, 0);
  }
  sqlite3_finalize(st);
  if (rc != SQLITE_ROW) {
    *why = "store error";
    return -1;
  }
  return 0;
}

static int on_delete(nno_req *req, void *ud) {
  (void)ud;
  char name[33];
  plan_row before;
  if (!operator_only(req) || read_name(req, name)) return NNO_OK;
  for (size_t i = 0; i < g_plans.ncfg; i++)
    if (strcmp(g_plans.cfg[i].l.name, name) == 0)
      return config_refusal(req, name);
  if (strcmp(name, "free") == 0)
    return nno_problem(req, 409, NULL,
                       "plan \"free\" is never deleted: it holds the values "
                       "a plan takes for the fields it does not set, and is "
                       "the plan of platforms without one");
  if (strcmp(name, billing_default_plan()) == 0)
    return nno_problem(req, 409, NULL,
                       "plan \"%s\" is the default plan (plugin_config "
                       "\"billing\": \"default_plan\"): new platforms get "
                       "it",
                       name);
  if (sqlite3_exec(g_plans.db, "BEGIN IMMEDIATE", NULL, NULL, NULL))
    return store_error(req);
  int found = load_row(name, &before);
  if (found <= 0) {
    if (found < 0) return rollback_error(req);
    sqlite3_exec(g_plans.db, "ROLLBACK", NULL, NULL, NULL);
    return nno_problem(req, 404, NULL, "no plan \"%s\"", name);
  }
  if (!nno_if_match(req, before.version)) {
    sqlite3_exec(g_plans.db, "ROLLBACK", NULL, NULL, NULL);
    return nno_problem(req, 412, NULL,
                       "If-Match does not match the plan's current ETag "
                       "\"v%lld\"",
                       (long long)before.version);
  }
  uint64_t users = 0;
  const char *why = NULL;
  if (plan_user_count(name, &users, &why)) {
    sqlite3_exec(g_plans.db, "ROLLBACK", NULL, NULL, NULL);
    return nno_problem_retry(req, 503, 1,
                             "cannot count the platforms on plan \"%s\" "
                             "(%s); nothing was deleted",
                             name, why);
  }
  if (users) {
    sqlite3_exec(g_plans.db, "ROLLBACK", NULL, NULL, NULL);
    return nno_problem(req, 409, NULL,
                       "plan \"%s\" is used by %llu platform(s): move them "
                       "to another plan first (nno platform update ID --plan "
                       "P)",
                       name, (unsigned long long)users);
  }
  sqlite3_stmt *st = NULL;
  int rc = sqlite3_prepare_v2(g_plans.db, "DELETE FROM plans WHERE name = ?1",
                              -1, &st, NULL);
  if (rc == SQLITE_OK) {
    sqlite3_bind_text(st, 1, name, -1, SQLITE_STATIC);
    rc = sqlite3_step(st) == SQLITE_DONE ? SQLITE_OK : SQLITE_ERROR;
  }
  sqlite3_finalize(st);
  json_t *detail = json_pack("{s:o}", "plan", plan_json(&before));
  rc = finish_write(req, rc, detail, "plan.delete", name);
  json_decref(detail);
  if (rc) return NNO_OK;
  plans_committed();
  api->res_status(req, 204);
  return NNO_OK;
}

int plans_api_init(char *err, size_t cap) {
  static const struct {
    const char *method, *path;
    nno_handler_fn fn;
  } routes[] = {
      {"GET", "/api/v1/plans", on_list},
      {"GET", "/api/v1/plans/{name}", on_get},
      {"POST", "/api/v1/plans", on_create},
      {"PATCH", "/api/v1/plans/{name}", on_patch},
      {"DELETE", "/api/v1/plans/{name}", on_delete},
  };
  for (size_t i = 0; i < sizeof routes / sizeof *routes; i++) {
    int rc = api->route_add(g_bill.p, routes[i].method, routes[i].path,
                            routes[i].fn, NULL);
    if (rc) {
      snprintf(err, cap, "cannot bind %s %s: %s", routes[i].method,
               routes[i].path, api->strerror(rc));
      return -1;
    }
  }
  return 0;
}
