/* Operator API: platforms (their resources are the provisioning plugin's).
 *
 *   POST   /api/v1/platforms                  create (Idempotency-Key)
 *   GET    /api/v1/platforms                  list: class, status, pages
 *   GET    /api/v1/platforms/{platform}             one, with ETag
 *   PATCH  /api/v1/platforms/{platform}             name, plan, owner; If-Match
 *   DELETE /api/v1/platforms/{platform}             with tenants, activations...
 *   POST   /api/v1/platforms/{platform}/suspend     status -> suspended
 *   POST   /api/v1/platforms/{platform}/resume      status -> active
 *
 * Each handler authenticates first, runs its writes in one BEGIN IMMEDIATE
 * transaction (audit row, and a changes row when routing is affected,
 * included) and answers only after COMMIT. */
#define _XOPEN_SOURCE 700 /* nftw */
#include <errno.h>
#include <ftw.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "http_util.h"
#include "internal.h"

static json_t *platform_json(const store_platform *p) {
  return json_pack("{s:s, s:s, s:s, s:s, s:s, s:o, s:s, s:s, s:I}", "id", p->id,
                   "name", p->name, "class", p->cls, "status", p->status,
                   "plan", p->plan, "owner",
                   p->has_owner ? json_string(p->owner) : json_null(),
                   "created_at", p->created_at, "updated_at", p->updated_at,
                   "version", (json_int_t)p->version);
}

/* Answer `status` with the platform and its ETag. */
static int send_platform(nno_req *req, int status, const store_platform *p) {
  hu_etag(req, p->version);
  return nno_send_json(req, status, platform_json(p));
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

static int check_plan(nno_req *req, const char *s) {
  size_t n = strlen(s);
  int ok = n >= 1 && n <= 32;
  for (size_t i = 0; i < n && ok; i++)
    ok = (s[i] >= 'a' && s[i] <= 'z') || (s[i] >= '0' && s[i] <= '9') ||
         s[i] == '-';
  if (ok) return 0;
  char q[128];
  nno_quote(s, q, sizeof q);
  nno_problem(req, 422, "plan",
              "field \"plan\": expected 1 to 32 characters of [a-z0-9-], "
              "got %s",
              q);
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
    if (check_plan(req, plan)) return -1;
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

static int on_create(nno_req *req, void *ud) {
  static const nno_field fields[] = {
      NNO_FIELD("id", NNO_FIELD_STRING, 0),
      NNO_FIELD("name", NNO_FIELD_STRING, 1),
      NNO_FIELD("class", NNO_FIELD_STRING, 0),
      NNO_FIELD("plan", NNO_FIELD_STRING, 0),
      NNO_FIELD("owner", NNO_FIELD_STRING_OR_NULL, 0)};
  json_t *b = NULL, *obj = NULL;
  char *text = NULL, loc[96], target[48];
  hu_idem ik = {0};
  store_platform p;
  int rc;
  if (!hu_authorized(req) || nno_body_object(req, 0, NNO_BODY_EMPTY_OK, &b))
    return NNO_OK;
  if (nno_fields_check(req, b, fields, sizeof fields / sizeof fields[0]))
    goto done;
  memset(&p, 0, sizeof p);
  const char *id = str(b, "id"), *cls = str(b, "class");
  if (id && nno_check_id(req, "id", id, STORE_PLATFORM_ID_MIN, STORE_ID_MAX))
    goto done;
  if (id && strcmp(id, RT_CORE_LABEL) == 0) {
    /* api.{baseDomain} is the core API's host, not a platform's. */
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
  snprintf(p.plan, sizeof p.plan, "free");
  snprintf(p.status, sizeof p.status, "active");
  if (take_common(req, b, &p)) goto done;

  if ((rc = store_begin(g_reg.db)) != 0) {
    hu_store_error(req, rc);
    goto done;
  }
  if (hu_idem_begin(req, &ik)) {
    store_rollback(g_reg.db);
    goto done;
  }
  rc = store_platform_insert(g_reg.db, &p);
  if (rc == STORE_EXISTS) {
    store_rollback(g_reg.db);
    nno_problem(req, 409, NULL, "platform \"%s\" already exists", p.id);
    goto done;
  }
  if (!rc && (!(obj = platform_json(&p)) || !(text = nno_json_text(obj))))
    rc = STORE_ERROR;
  snprintf(loc, sizeof loc, "/api/v1/platforms/%s", p.id);
  snprintf(target, sizeof target, "platform:%s", p.id);
  if (rc || (rc = hu_audit(req, "platform.create", target, obj)) ||
      (rc = store_change_add(g_reg.db, p.id)) ||
      (rc = hu_idem_record(&ik, 201, text, loc)) ||
      (rc = store_commit(g_reg.db))) {
    hu_fail(req, rc);
    goto done;
  }
  reg_committed();
  api->res_header(req, "Location", loc);
  hu_etag(req, p.version);
  nno_send_text(req, 201, text);
done:
  hu_idem_clear(&ik);
  free(text);
  json_decref(obj);
  json_decref(b);
  return NNO_OK;
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
  if (!hu_if_match(req, p->version)) {
    store_rollback(g_reg.db);
    nno_problem(req, 412, NULL,
                "If-Match does not match the platform's current ETag "
                "\"v%lld\"",
                (long long)p->version);
    return -1;
  }
  return 0;
}

static int on_patch(nno_req *req, void *ud) {
  static const nno_field fields[] = {
      NNO_FIELD("name", NNO_FIELD_STRING, 0),
      NNO_FIELD("plan", NNO_FIELD_STRING, 0),
      NNO_FIELD("owner", NNO_FIELD_STRING_OR_NULL, 0)};
  char id[STORE_ID_MAX + 1], target[48];
  json_t *b = NULL;
  store_platform p;
  int rc;
  if (!hu_authorized(req) || read_id(req, id) ||
      nno_body_object(req, 0, NNO_BODY_EMPTY_OK, &b))
    return NNO_OK;
  if (nno_fields_check(req, b, fields, sizeof fields / sizeof fields[0]))
    goto done;
  if ((rc = store_begin(g_reg.db)) != 0) {
    hu_store_error(req, rc);
    goto done;
  }
  if (load_for_write(req, id, &p)) goto done;
  if (take_common(req, b, &p)) {
    store_rollback(g_reg.db);
    goto done;
  }
  if (json_object_size(b) == 0) { /* nothing to change */
    store_rollback(g_reg.db);
    send_platform(req, 200, &p);
    goto done;
  }
  snprintf(target, sizeof target, "platform:%s", id);
  json_t *detail = json_pack("{s:O}", "changes", b);
  /* The plan is in every worker's table (rate limits): replay it. */
  if ((rc = store_platform_update(g_reg.db, &p, p.version)) ||
      (rc = hu_audit(req, "platform.update", target, detail)) ||
      (rc = store_change_add(g_reg.db, id)) ||
      (rc = store_commit(g_reg.db))) {
    json_decref(detail);
    hu_fail(req, rc);
    goto done;
  }
  json_decref(detail);
  reg_committed();
  send_platform(req, 200, &p);
done:
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

static int sweep_one(void *ud, const char *id, int exists) {
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

static int on_delete(nno_req *req, void *ud) {
  char id[STORE_ID_MAX + 1], target[48];
  store_platform p;
  int rc;
  if (!hu_authorized(req) || read_id(req, id)) return NNO_OK;
  if ((rc = store_begin(g_reg.db)) != 0) return hu_store_error(req, rc);
  if (load_for_write(req, id, &p)) return NNO_OK;
  snprintf(target, sizeof target, "platform:%s", id);
  json_t *detail = platform_json(&p);
  if ((rc = store_platform_delete(g_reg.db, id)) ||
      (rc = hu_audit(req, "platform.delete", target, detail)) ||
      (rc = store_change_add(g_reg.db, id)) || (rc = store_commit(g_reg.db))) {
    json_decref(detail);
    return hu_fail(req, rc);
  }
  json_decref(detail);
  reg_committed();
  remove_platform_dir(id);
  api->res_status(req, 204);
  return NNO_OK;
}

/* suspend and resume: ud is the target status. */
static int on_status(nno_req *req, void *ud) {
  const char *want = ud;
  char id[STORE_ID_MAX + 1], target[48], action[32];
  store_platform p;
  int rc;
  if (!hu_authorized(req) || read_id(req, id)) return NNO_OK;
  if ((rc = store_begin(g_reg.db)) != 0) return hu_store_error(req, rc);
  if (load_for_write(req, id, &p)) return NNO_OK;
  if (strcmp(p.status, "deleting") == 0) {
    store_rollback(g_reg.db);
    return nno_problem(req, 409, NULL, "platform %s is being deleted", id);
  }
  if (strcmp(p.status, want) == 0) { /* already there: nothing to do */
    store_rollback(g_reg.db);
    return send_platform(req, 200, &p);
  }
  snprintf(target, sizeof target, "platform:%s", id);
  snprintf(action, sizeof action, "platform.%s",
           strcmp(want, "active") == 0 ? "resume" : "suspend");
  json_t *detail = json_pack("{s:s, s:s}", "from", p.status, "to", want);
  if ((rc = store_platform_set_status(g_reg.db, id, want, &p)) ||
      (rc = hu_audit(req, action, target, detail)) ||
      (rc = store_change_add(g_reg.db, id)) || (rc = store_commit(g_reg.db))) {
    json_decref(detail);
    return hu_fail(req, rc);
  }
  json_decref(detail);
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
