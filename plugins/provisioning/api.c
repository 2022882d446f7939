/* The routes: a platform's resources, one page at a time with its storage
 * quota, and one resource.
 *
 *   GET /api/v1/platforms/{platform}/resources
 *   GET /api/v1/platforms/{platform}/resources/{type}/{name}
 *
 * {name} is "{stack}-{name}" (the resource's file name without the
 * platform), or the bare name when one resource of that type has it.
 * IAM's AUTHZ stage admits the caller (scope resources:read). Rows come
 * from core.db on the loop; sizes and usage are measured on the pool. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <jansson.h>
#include <nno/sdk.h>

#include "internal.h"

#define PAGE_DEFAULT 50
#define PAGE_MAX 200

/* Bytes one resource holds on disk (see internal.h). */
uint64_t prov_resource_bytes(const prov_resource *r) {
  char path[4096], p2[4200];
  if (prov_resource_path(g_prov.data, r->platform, r->stack, r->type, r->name,
                         path, sizeof path))
    return 0;
  if (strcmp(r->type, "blob") == 0) return pblob_usage(path);
  uint64_t n = prov_file_size(path);
  snprintf(p2, sizeof p2, "%s-wal", path);
  return n + prov_file_size(p2);
}

static json_t *resource_json(const prov_resource *r, uint64_t size) {
  return json_pack("{s:s, s:s, s:s, s:s, s:s, s:s?, s:I, s:s, s:s}", "type",
                   r->type, "name", r->name, "stack", r->stack, "driver",
                   r->driver, "state", r->state, "error",
                   r->error[0] ? r->error : NULL, "size_bytes",
                   (json_int_t)size, "created_at", r->created_at,
                   "updated_at", r->updated_at);
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

/* Rows read on the loop, their sizes (and the platform's usage) measured
 * on the pool: reading folders and bucket indexes is file I/O. */
typedef struct measure {
  nno_req *req;
  char platform[PROV_ID_MAX];
  prov_resource *rows;
  uint64_t *sizes;
  size_t n, cap;
  int page;     /* 1: a page with the quota; 0: one resource */
  int limit, more;
  uint64_t used;
} measure;

static void measure_free(measure *m) {
  free(m->rows);
  free(m->sizes);
  free(m);
}

static int collect(void *ud, const prov_resource *r) {
  measure *m = ud;
  if (m->page && (int)m->n == m->limit) {
    m->more = 1;
    return 1;
  }
  if (m->n == m->cap) {
    size_t c = m->cap ? m->cap * 2 : 16;
    prov_resource *v = realloc(m->rows, c * sizeof *v);
    if (!v) return NNO_ENOMEM;
    m->rows = v;
    m->cap = c;
  }
  m->rows[m->n++] = *r;
  return 0;
}

static void measure_work(void *ud) {
  measure *m = ud;
  for (size_t i = 0; m->sizes && i < m->n; i++)
    m->sizes[i] = prov_resource_bytes(&m->rows[i]);
  char pdir[4096];
  if (m->page && prov_platform_dir(g_prov.data, m->platform, pdir,
                                   sizeof pdir) == 0)
    m->used = prov_usage(pdir);
}

static void measure_after(int status, void *ud) {
  measure *m = ud;
  nno_req *req = m->req;
  if (status) {
    nno_problem_retry(req, 503, 1, "the worker is stopping");
  } else if (!m->page) {
    json_t *v = resource_json(&m->rows[0], m->sizes[0]);
    if (v) json_object_set_new(v, "platform", json_string(m->platform));
    nno_send_json(req, 200, v);
  } else {
    json_t *items = json_array();
    for (size_t i = 0; items && i < m->n; i++)
      if (json_array_append_new(items, resource_json(&m->rows[i], m->sizes[i]))) {
        json_decref(items);
        items = NULL;
      }
    char last[256];
    if (m->n)
      snprintf(last, sizeof last, "%s/%s/%s", m->rows[m->n - 1].type,
               m->rows[m->n - 1].stack, m->rows[m->n - 1].name);
    json_t *page = items ? nno_page_json(items, m->more ? last : NULL) : NULL;
    uint64_t limit = prov_limit_of(m->platform);
    json_t *q = json_pack("{s:o, s:I}", "limit_bytes",
                          limit ? json_integer((json_int_t)limit) : json_null(),
                          "used_bytes", (json_int_t)m->used);
    if (page && q) {
      json_object_set_new(page, "quota", q);
    } else {
      json_decref(page);
      json_decref(q);
      page = NULL;
    }
    nno_send_json(req, 200, page);
  }
  measure_free(m);
  api->res_end(req);
}

/* Queue the measuring; the handler's return value. */
static int measure_start(nno_req *req, measure *m) {
  m->req = req;
  m->sizes = calloc(m->n ? m->n : 1, sizeof *m->sizes);
  if (!m->sizes || api->work_queue(g_prov.p, measure_work, measure_after, m)) {
    measure_free(m);
    return nno_problem(req, 500, NULL, "cannot measure the resources");
  }
  return NNO_ASYNC;
}

static int on_list(nno_req *req, void *ud) {
  (void)ud;
  char id[PROV_ID_MAX], after[NNO_PAGE_KEY_MAX];
  int limit;
  if (platform_param(req, id) ||
      nno_page_read(req, PAGE_DEFAULT, PAGE_MAX, &limit, after, sizeof after))
    return NNO_OK;
  measure *m = calloc(1, sizeof *m);
  if (!m) return nno_problem(req, 500, NULL, "out of memory");
  snprintf(m->platform, sizeof m->platform, "%s", id);
  m->page = 1;
  m->limit = limit;
  int rc = pj_resource_list(g_prov.db, id, after, limit + 1, collect, m);
  if (rc < 0) {
    measure_free(m);
    return rc == NNO_EBUSY
               ? nno_problem_retry(req, 503, 1, "core.db is busy; try again")
               : nno_problem(req, 500, NULL, "cannot read the resources");
  }
  return measure_start(req, m);
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
  measure *m = calloc(1, sizeof *m);
  if (!m || !(m->rows = malloc(sizeof *m->rows))) {
    free(m);
    return nno_problem(req, 500, NULL, "out of memory");
  }
  snprintf(m->platform, sizeof m->platform, "%s", id);
  m->rows[0] = f.hit;
  m->n = 1;
  return measure_start(req, m);
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
