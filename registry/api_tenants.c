/* Operator API: the tenant tree of a platform.
 *
 *   POST   /api/v1/platforms/{platform}/tenants         create (Idempotency-Key)
 *   GET    /api/v1/platforms/{platform}/tenants         list: parent, under, pages
 *   GET    /api/v1/platforms/{platform}/tenants/{tenant}   one, with ETag
 *   PATCH  /api/v1/platforms/{platform}/tenants/{tenant}   name, parent, status
 *   DELETE /api/v1/platforms/{platform}/tenants/{tenant}   cascade=true for subtrees
 *
 * Tenants do not affect routing, so their changes write no changes row;
 * they move the counter, because a tenant's status (or its ancestors')
 * decides whether credentials bound to it may act (tenant_active). The database refuses cycles itself (a trigger);
 * the handlers check first so the answer can name the field. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "http_util.h"
#include "internal.h"

static json_t *tenant_json(const store_tenant *t) {
  return json_pack("{s:s, s:s, s:o, s:s, s:s, s:s, s:s, s:I}", "id", t->id,
                   "platform", t->platform, "parent",
                   t->has_parent ? json_string(t->parent) : json_null(), "name",
                   t->name, "status", t->status, "created_at", t->created_at,
                   "updated_at", t->updated_at, "version",
                   (json_int_t)t->version);
}

static int send_tenant(nno_req *req, int status, const store_tenant *t) {
  nno_etag(req, t->version);
  return nno_send_json(req, status, tenant_json(t));
}

static const char *str(json_t *o, const char *k) {
  return json_string_value(json_object_get(o, k));
}

/* Read {tenant}; -1 after answering 404 when it cannot be a tenant id. */
static int read_tid(nno_req *req, const char *pid, char *tid) {
  if (nno_param_copy(req, "tenant", tid, STORE_ID_MAX + 1) == 0 &&
      nno_id_valid(tid, strlen(tid), STORE_TENANT_ID_MIN, STORE_ID_MAX))
    return 0;
  nno_str v = {"", 0};
  api->req_param(req, "tenant", &v);
  nno_problem(req, 404, NULL, "no tenant \"%.*s\" in platform \"%s\"",
              (int)(v.len > 64 ? 64 : v.len), v.ptr, pid);
  return -1;
}

/* 0 if tenant `tid` of `pid` exists; else -1 after answering 422 naming
 * `field` (or a store error). */
static int need_tenant(nno_req *req, const char *field, const char *pid,
                       const char *tid) {
  store_tenant t;
  int rc = nno_id_valid(tid, strlen(tid), STORE_TENANT_ID_MIN, STORE_ID_MAX)
               ? store_tenant_get(g_reg.db, pid, tid, &t)
               : STORE_NOTFOUND;
  if (rc == STORE_OK) return 0;
  if (rc == STORE_NOTFOUND) {
    char q[128];
    nno_quote(tid, q, sizeof q);
    nno_problem(req, 422, field,
                "field \"%s\": no tenant %s in platform \"%s\"", field, q, pid);
  } else {
    hu_store_error(req, rc);
  }
  return -1;
}

/* The tenant a tenant-bound caller (a key or user of one tenant) is
 * confined to, into out; 0 for callers that see the whole platform. */
static int caller_tenant(nno_req *req, char *out, size_t cap) {
  nno_caller c;
  if (!NNO_HAS(api, req_caller) || api->req_caller(req, &c) != NNO_OK ||
      c.tenant.len == 0 || c.tenant.len >= cap)
    return 0;
  memcpy(out, c.tenant.ptr, c.tenant.len);
  out[c.tenant.len] = '\0';
  return 1;
}

/* 0 if a tenant-bound caller may act on `tid` (its tenant or below; NULL
 * means the platform's root, which it may not), or if the caller is not
 * tenant-bound; else -1 after answering 403 (or a store error). */
static int within_caller(nno_req *req, const char *pid, const char *tid,
                         const char *field) {
  char own[STORE_ID_MAX + 1];
  if (!caller_tenant(req, own, sizeof own)) return 0;
  int rc = tid ? store_tenant_within(g_reg.db, pid, tid, own) : 0;
  if (rc == 1) return 0;
  if (rc < 0) {
    hu_store_error(req, rc);
    return -1;
  }
  nno_problem(req, 403, field,
              "field \"%s\": this credential is confined to tenant \"%s\" "
              "and its sub-tenants",
              field, own);
  return -1;
}

static int on_create(nno_req *req, void *ud) {
  static const nno_field fields[] = {
      NNO_FIELD("id", NNO_FIELD_STRING, 0),
      NNO_FIELD("name", NNO_FIELD_STRING, 1),
      NNO_FIELD("parent", NNO_FIELD_STRING_OR_NULL, 0)};
  char pid[STORE_ID_MAX + 1], loc[128], target[80];
  json_t *b = NULL, *obj = NULL;
  char *text = NULL;
  hu_idem ik = {0};
  store_tenant t;
  int rc;
  if (!hu_authorized(req) || hu_platform(req, pid) ||
      nno_body_object(req, 0, NNO_BODY_EMPTY_OK, &b))
    return NNO_OK;
  if (nno_fields_check(req, b, fields, sizeof fields / sizeof fields[0]))
    goto done;
  memset(&t, 0, sizeof t);
  const char *id = str(b, "id"), *name = str(b, "name"),
             *parent = str(b, "parent");
  if (id && nno_check_id(req, "id", id, STORE_TENANT_ID_MIN, STORE_ID_MAX))
    goto done;
  if (nno_check_name(req, "name", name, REG_NAME_MAX)) goto done;
  snprintf(t.platform, sizeof t.platform, "%s", pid);
  if (id)
    snprintf(t.id, sizeof t.id, "%s", id);
  else
    hu_random_id("t-", t.id, sizeof t.id);
  snprintf(t.name, sizeof t.name, "%s", name);
  snprintf(t.status, sizeof t.status, "active");

  if ((rc = store_begin(g_reg.db)) != 0) {
    hu_store_error(req, rc);
    goto done;
  }
  if (hu_idem_begin(req, &ik) || hu_need_platform(req, pid) ||
      (parent && need_tenant(req, "parent", pid, parent)) ||
      within_caller(req, pid, parent, "parent")) {
    store_rollback(g_reg.db);
    goto done;
  }
  if (parent) {
    t.has_parent = 1;
    snprintf(t.parent, sizeof t.parent, "%s", parent);
  }
  rc = store_tenant_insert(g_reg.db, &t);
  if (rc == STORE_RETIRED) {
    store_rollback(g_reg.db);
    nno_problem(req, 409, "id",
                "field \"id\": \"%s\" belonged to a deleted tenant of "
                "platform \"%s\"; a tenant id is never given again, so that "
                "nothing kept under the old tenant reaches a new one: choose "
                "another id",
                t.id, pid);
    goto done;
  }
  if (rc == STORE_EXISTS || rc == STORE_CYCLE) {
    store_rollback(g_reg.db);
    nno_problem(req, 409, NULL,
                "tenant \"%s\" already exists in platform \"%s\"", t.id, pid);
    goto done;
  }
  if (!rc && (!(obj = tenant_json(&t)) || !(text = nno_json_text(obj))))
    rc = STORE_ERROR;
  snprintf(loc, sizeof loc, "/api/v1/platforms/%s/tenants/%s", pid, t.id);
  snprintf(target, sizeof target, "tenant:%s/%s", pid, t.id);
  if (rc || (rc = hu_audit(req, "tenant.create", target, obj)) ||
      (rc = hu_idem_record(&ik, 201, text, loc)) ||
      (rc = store_commit(g_reg.db))) {
    hu_fail(req, rc);
    goto done;
  }
  reg_committed(); /* a child of a suspended tenant starts suspended */
  api->res_header(req, "Location", loc);
  nno_etag(req, t.version);
  nno_send_text(req, 201, text);
done:
  hu_idem_clear(&ik);
  free(text);
  json_decref(obj);
  json_decref(b);
  return NNO_OK;
}

static int list_cb(void *ud, const store_tenant *t) {
  nno_pager *pg = ud;
  return nno_pager_full(pg) ? 0 : hu_pager_add(pg, tenant_json(t), t->id);
}

static int on_list(nno_req *req, void *ud) {
  char pid[STORE_ID_MAX + 1], after[600], parent[64], under[64];
  nno_pager pg;
  if (!hu_authorized(req) || hu_platform(req, pid) ||
      nno_pager_start(req, &pg, REG_PAGE_DEFAULT, REG_PAGE_MAX, after,
                      sizeof after))
    return NNO_OK;
  int hp = nno_query_copy(req, "parent", parent, sizeof parent);
  int hn = hp < 0 ? -1 : nno_query_copy(req, "under", under, sizeof under);
  if (hp < 0 || hn < 0) goto done;
  /* A tenant-bound caller lists inside its subtree only. */
  if (!hp && !hn && caller_tenant(req, under, sizeof under)) hn = 1;
  if (hp && hn) {
    nno_problem(req, 422, "under",
                "field \"under\": give either parent (direct "
                "children) or under (the whole subtree), not both");
    goto done;
  }
  if ((hp && need_tenant(req, "parent", pid, parent)) ||
      (hn && need_tenant(req, "under", pid, under)) ||
      (hp && within_caller(req, pid, parent, "parent")) ||
      (hn && within_caller(req, pid, under, "under")))
    goto done;
  int rc =
      store_tenant_list(g_reg.db, pid, hp ? parent : NULL, hn ? under : NULL,
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
  char pid[STORE_ID_MAX + 1], tid[STORE_ID_MAX + 1];
  store_tenant t;
  if (!hu_authorized(req) || hu_platform(req, pid) || read_tid(req, pid, tid))
    return NNO_OK;
  int rc = store_tenant_get(g_reg.db, pid, tid, &t);
  if (rc == STORE_NOTFOUND)
    return nno_problem(req, 404, NULL, "no tenant \"%s\" in platform \"%s\"",
                       tid, pid);
  if (rc) return hu_store_error(req, rc);
  return send_tenant(req, 200, &t);
}

/* Inside a write transaction: the platform, tenant {tid} and If-Match.
 * -1 after rolling back and answering. */
static int load_for_write(nno_req *req, const char *pid, const char *tid,
                          store_tenant *t) {
  if (hu_need_platform(req, pid)) goto fail;
  int rc = store_tenant_get(g_reg.db, pid, tid, t);
  if (rc == STORE_NOTFOUND) {
    nno_problem(req, 404, NULL, "no tenant \"%s\" in platform \"%s\"", tid,
                pid);
    goto fail;
  }
  if (rc) {
    hu_store_error(req, rc);
    goto fail;
  }
  if (!nno_if_match(req, t->version)) {
    nno_problem(req, 412, NULL,
                "If-Match does not match the tenant's current ETag \"v%lld\"",
                (long long)t->version);
    goto fail;
  }
  return 0;
fail:
  store_rollback(g_reg.db);
  return -1;
}

static int on_patch(nno_req *req, void *ud) {
  static const nno_field fields[] = {
      NNO_FIELD("name", NNO_FIELD_STRING, 0),
      NNO_FIELD("parent", NNO_FIELD_STRING_OR_NULL, 0),
      NNO_FIELD("status", NNO_FIELD_STRING, 0)};
  char pid[STORE_ID_MAX + 1], tid[STORE_ID_MAX + 1], target[80];
  json_t *b = NULL;
  store_tenant t;
  int rc;
  if (!hu_authorized(req)) return NNO_OK;
  /* {id} is read without the existence check, which happens inside the
   * transaction. */
  if (nno_param_copy(req, "platform", pid, sizeof pid) ||
      !hu_id_valid(pid, strlen(pid))) {
    nno_str v = {"", 0};
    api->req_param(req, "platform", &v);
    return nno_problem(req, 404, NULL, "no platform \"%.*s\"",
                       (int)(v.len > 64 ? 64 : v.len), v.ptr);
  }
  if (read_tid(req, pid, tid) || nno_body_object(req, 0, NNO_BODY_EMPTY_OK, &b))
    return NNO_OK;
  if (nno_fields_check(req, b, fields, sizeof fields / sizeof fields[0]))
    goto done;
  const char *name = str(b, "name"), *status = str(b, "status");
  json_t *parent = json_object_get(b, "parent");
  if (name && nno_check_name(req, "name", name, REG_NAME_MAX)) goto done;
  if (status && strcmp(status, "active") != 0 &&
      strcmp(status, "suspended") != 0) {
    char q[128];
    nno_quote(status, q, sizeof q);
    nno_problem(req, 422, "status",
                "field \"status\": expected \"active\" or \"suspended\", got "
                "%s",
                q);
    goto done;
  }
  if ((rc = store_begin(g_reg.db)) != 0) {
    hu_store_error(req, rc);
    goto done;
  }
  if (load_for_write(req, pid, tid, &t)) goto done;
  if ((json_is_string(parent) &&
       need_tenant(req, "parent", pid, json_string_value(parent))) ||
      (parent && within_caller(req, pid, json_string_value(parent),
                               "parent"))) {
    store_rollback(g_reg.db);
    goto done;
  }
  if (name) snprintf(t.name, sizeof t.name, "%s", name);
  if (status) snprintf(t.status, sizeof t.status, "%s", status);
  if (parent) {
    t.has_parent = json_is_string(parent);
    snprintf(t.parent, sizeof t.parent, "%s",
             t.has_parent ? json_string_value(parent) : "");
  }
  if (json_object_size(b) == 0) {
    store_rollback(g_reg.db);
    send_tenant(req, 200, &t);
    goto done;
  }
  rc = store_tenant_update(g_reg.db, &t, t.version);
  if (rc == STORE_CYCLE) {
    store_rollback(g_reg.db);
    if (strcmp(t.parent, tid) == 0)
      nno_problem(req, 422, "parent",
                  "field \"parent\": a tenant cannot be its own parent");
    else
      nno_problem(req, 422, "parent",
                  "field \"parent\": \"%s\" is a descendant of \"%s\"; a "
                  "tenant cannot move under its own subtree",
                  t.parent, tid);
    goto done;
  }
  snprintf(target, sizeof target, "tenant:%s/%s", pid, tid);
  json_t *detail = json_pack("{s:O}", "changes", b);
  if (rc || (rc = hu_audit(req, "tenant.update", target, detail)) ||
      (rc = store_commit(g_reg.db))) {
    json_decref(detail);
    hu_fail(req, rc);
    goto done;
  }
  json_decref(detail);
  reg_committed(); /* status or parent: who may act changes */
  send_tenant(req, 200, &t);
done:
  json_decref(b);
  return NNO_OK;
}

static int on_delete(nno_req *req, void *ud) {
  char pid[STORE_ID_MAX + 1], tid[STORE_ID_MAX + 1], target[80], c[16];
  store_tenant t;
  int64_t children = 0;
  int rc;
  if (!hu_authorized(req) || hu_platform(req, pid) || read_tid(req, pid, tid))
    return NNO_OK;
  int hc = nno_query_copy(req, "cascade", c, sizeof c);
  if (hc < 0) return NNO_OK;
  if (hc && strcmp(c, "true") != 0 && strcmp(c, "false") != 0)
    return nno_problem(req, 422, "cascade",
                       "field \"cascade\": expected true or false");
  int cascade = hc && strcmp(c, "true") == 0;
  if ((rc = store_begin(g_reg.db)) != 0) return hu_store_error(req, rc);
  if (load_for_write(req, pid, tid, &t)) return NNO_OK;
  if (!cascade &&
      (rc = store_tenant_children(g_reg.db, pid, tid, &children)) != 0)
    return hu_fail(req, rc);
  if (children > 0) {
    store_rollback(g_reg.db);
    return nno_problem(req, 409, NULL,
                       "tenant \"%s\" has %lld child tenant%s; delete them "
                       "first or pass cascade=true",
                       tid, (long long)children, children == 1 ? "" : "s");
  }
  snprintf(target, sizeof target, "tenant:%s/%s", pid, tid);
  json_t *detail = json_pack("{s:b}", "cascade", cascade);
  if ((rc = store_tenant_delete(g_reg.db, pid, tid, cascade)) ||
      (rc = hu_audit(req, "tenant.delete", target, detail)) ||
      (rc = store_commit(g_reg.db))) {
    json_decref(detail);
    return hu_fail(req, rc);
  }
  json_decref(detail);
  reg_committed(); /* an id used again must not inherit a suspension */
  api->res_status(req, 204);
  return NNO_OK;
}

int api_tenants_init(nno_plugin *p) {
  static const struct {
    const char *method, *path;
    nno_handler_fn fn;
  } routes[] = {
      {"POST", "/api/v1/platforms/{platform}/tenants", on_create},
      {"GET", "/api/v1/platforms/{platform}/tenants", on_list},
      {"GET", "/api/v1/platforms/{platform}/tenants/{tenant}", on_get},
      {"PATCH", "/api/v1/platforms/{platform}/tenants/{tenant}", on_patch},
      {"DELETE", "/api/v1/platforms/{platform}/tenants/{tenant}", on_delete},
  };
  for (size_t i = 0; i < sizeof routes / sizeof routes[0]; i++) {
    int rc =
        api->route_add(p, routes[i].method, routes[i].path, routes[i].fn, NULL);
    if (rc) return rc;
  }
  return NNO_OK;
}
