/* The routes: a platform's resources, one page at a time with its storage
 * quota, and one resource.
 *
 *   GET /api/v1/platforms/{platform}/resources
 *   GET /api/v1/platforms/{platform}/resources/{type}/{name}
 *
 * {name} is "{stack}-{name}" (the resource's file name without the
 * platform), or the bare name when one resource of that type has it.
 * IAM's AUTHZ stage admits the caller (scope resources:read). */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <jansson.h>
#include <nno/sdk.h>

#include "internal.h"

#define PAGE_DEFAULT 50
#define PAGE_MAX 200

/* Bytes one resource holds on disk. */
static uint64_t resource_size(const prov_resource *r) {
  char path[4096], p2[4200];
  if (prov_resource_path(g_prov.data, r->platform, r->stack, r->type, r->name,
                         path, sizeof path))
    return 0;
  if (strcmp(r->type, "blob") == 0) return pblob_usage(path);
  uint64_t n = prov_file_size(path);
  snprintf(p2, sizeof p2, "%s-wal", path);
  return n + prov_file_size(p2);
}

static json_t *resource_json(const prov_resource *r) {
  return json_pack("{s:s, s:s, s:s, s:s, s:s, s:s?, s:I, s:s, s:s}", "type",
                   r->type, "name", r->name, "stack", r->stack, "driver",
                   r->driver, "state", r->state, "error",
                   r->error[0] ? r->error : NULL, "size_bytes",
                   (json_int_t)resource_size(r), "created_at", r->created_at,
                   "updated_at", r->updated_at);
}

static json_t *quota_json(const char *platform) {
  char pdir[4096];
  uint64_t used = 0;
  if (prov_platform_dir(g_prov.data, platform, pdir, sizeof pdir) == 0)
    used = prov_usage(pdir);
  uint64_t limit = prov_limit_of(platform);
  return json_pack("{s:o, s:I}", "limit_bytes",
                   limit ? json_integer((json_int_t)limit) : json_null(),
                   "used_bytes", (json_int_t)used);
}

/* The {platform} parameter; -1 after answering 404. */
static int platform_param(nno_req *req, char *id) {
  if (nno_param_copy(req, "platform", id, PROV_ID_MAX) ||
      !prov_id_ok(id, strlen(id))) {
    nno_problem(req, 404, NULL, "no such platform");
    return -1;
  }
  char st[16];
  if (g_prov.reg && g_prov.reg->platform_status(id, st, sizeof st) == NNO_ENOENT) {
    nno_problem(req, 404, NULL, "no such platform: %s", id);
    return -1;
  }
  return 0;
}

static int add_item(void *ud, const prov_resource *r) {
  nno_pager *pg = ud;
  if (nno_pager_full(pg)) return 0;
  char key[256];
  snprintf(key, sizeof key, "%s/%s/%s", r->type, r->stack, r->name);
  int rc = nno_pager_add(pg, resource_json(r), key);
  return rc ? rc : 0;
}

static int on_list(nno_req *req, void *ud) {
  (void)ud;
  char id[PROV_ID_MAX], after[NNO_PAGE_KEY_MAX];
  nno_pager pg;
  if (platform_param(req, id) ||
      nno_pager_start(req, &pg, PAGE_DEFAULT, PAGE_MAX, after, sizeof after))
    return NNO_OK;
  int rc = pj_resource_list(g_prov.db, id, after, pg.limit + 1, add_item, &pg);
  if (rc) {
    nno_pager_free(&pg);
    return rc == NNO_EBUSY
               ? nno_problem_retry(req, 503, 1, "core.db is busy; try again")
               : nno_problem(req, 500, NULL, "cannot read the resources");
  }
  json_t *items = pg.items;
  pg.items = NULL;
  json_t *page = nno_page_json(items, pg.more ? pg.last : NULL);
  if (page && json_object_set_new(page, "quota", quota_json(id))) {
    json_decref(page);
    page = NULL;
  }
  return nno_send_json(req, 200, page);
}

typedef struct find_st {
  const char *type, *name;
  prov_resource hit;
  int n;
} find_st;

static int match(void *ud, const prov_resource *r) {
  find_st *f = ud;
  char full[2 * PROV_ID_MAX + 1];
  if (strcmp(r->type, f->type) != 0) return 0;
  snprintf(full, sizeof full, "%s-%s", r->stack, r->name);
  if (strcmp(full, f->name) == 0) {
    f->hit = *r;
    f->n = -1; /* exact: wins */
    return 1;
  }
  if (strcmp(r->name, f->name) == 0) {
    f->hit = *r;
    f->n++;
  }
  return 0;
}

static int on_get(nno_req *req, void *ud) {
  (void)ud;
  char id[PROV_ID_MAX], type[8], name[2 * PROV_ID_MAX + 1];
  if (platform_param(req, id)) return NNO_OK;
  if (nno_param_copy(req, "type", type, sizeof type) ||
      (strcmp(type, "sql") && strcmp(type, "kv") && strcmp(type, "blob")))
    return nno_problem(req, 404, NULL,
                       "no such resource type: expected sql, kv or blob");
  if (nno_param_copy(req, "name", name, sizeof name))
    return nno_problem(req, 404, NULL, "no such resource");
  find_st f;
  memset(&f, 0, sizeof f);
  f.type = type;
  f.name = name;
  /* A platform has few resources: scan them (10000 at most). */
  int rc = pj_resource_list(g_prov.db, id, "", 10000, match, &f);
  if (rc < 0)
    return nno_problem(req, 500, NULL, "cannot read the resources");
  if (f.n == 0)
    return nno_problem(req, 404, NULL, "platform %s has no %s resource %s", id,
                       type, name);
  if (f.n > 1)
    return nno_problem(req, 409, NULL,
                       "several stacks have a %s resource named %s: ask for "
                       "{stack}-{name}",
                       type, name);
  json_t *v = resource_json(&f.hit);
  if (v) json_object_set_new(v, "platform", json_string(id));
  return nno_send_json(req, 200, v);
}

int prov_api_init(nno_plugin *p) {
  nno_sdk_init(p, api);
  int rc = api->route_add(p, "GET", "/api/v1/platforms/{platform}/resources",
                          on_list, NULL);
  if (!rc)
    rc = api->route_add(p, "GET",
                        "/api/v1/platforms/{platform}/resources/{type}/{name}",
                        on_get, NULL);
  return rc;
}
