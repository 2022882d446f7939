/* The provisioning core plugin: start-up (config, core.db, crash
 * recovery), the "nno.storage" service (the local driver's data plane:
 * each call runs its driver on the pool and completes on the loop) and
 * the per-worker count of requests using each platform. The control
 * plane is provision.c, the routes api.c. See README.md. */
#include <errno.h>
#include <dirent.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <unistd.h>

#include <jansson.h>
#include <sodium.h>

#include "internal.h"

const nno_host_api *api;
prov_state g_prov;

/* ---- config ---------------------------------------------------------------- */

static int parse_config(const char *text, char *err, size_t cap) {
  prov_bounds *b = &g_prov.bounds;
  prov_plans *pl = &g_prov.plans;
  prov_bounds_default(b);
  memset(pl, 0, sizeof *pl);
  pl->default_mb = 100;
  json_error_t je;
  json_t *c = json_loads(text ? text : "{}", JSON_REJECT_DUPLICATES, &je);
  if (!json_is_object(c)) {
    snprintf(err, cap, "config: expected an object");
    json_decref(c);
    return -1;
  }
  static const struct {
    const char *key;
    size_t off, size;
    uint64_t min, max;
  } nums[] = {
      {"max_rows", offsetof(prov_bounds, max_rows), 4, 1, 1000000},
      {"max_result_bytes", offsetof(prov_bounds, max_result), 8, 1024, 1u << 30},
      {"time_ms", offsetof(prov_bounds, time_ms), 4, 10, 600000},
      {"max_sql_bytes", offsetof(prov_bounds, max_sql), 8, 64, 16u << 20},
      {"max_batch", offsetof(prov_bounds, max_batch), 4, 1, 10000},
      {"kv_value_max_bytes", offsetof(prov_bounds, kv_value_max), 8, 1, 64u << 20},
      {"blob_max_bytes", offsetof(prov_bounds, blob_max), 8, 1, 1ull << 40},
      {"remove_wait_ms", offsetof(prov_bounds, remove_wait_ms), 4, 0,
       3600000},
  };
  const char *k;
  json_t *v;
  int rc = 0;
  json_object_foreach(c, k, v) {
    size_t i;
    for (i = 0; i < sizeof nums / sizeof *nums; i++)
      if (strcmp(k, nums[i].key) == 0) break;
    if (i < sizeof nums / sizeof *nums) {
      json_int_t x = json_integer_value(v);
      if (!json_is_integer(v) || x < (json_int_t)nums[i].min ||
          (uint64_t)x > nums[i].max) {
        snprintf(err, cap, "config \"%s\": expected an integer from %llu to %llu",
                 k, (unsigned long long)nums[i].min,
                 (unsigned long long)nums[i].max);
        rc = -1;
        break;
      }
      if (nums[i].size == 4) *(uint32_t *)((char *)b + nums[i].off) = (uint32_t)x;
      else *(size_t *)((char *)b + nums[i].off) = (size_t)x;
    } else if (strcmp(k, "default_storage_mb") == 0) {
      if (!json_is_integer(v) || json_integer_value(v) < 0 ||
          json_integer_value(v) > (json_int_t)1 << 40) {
        snprintf(err, cap, "config \"default_storage_mb\": expected an integer "
                 ">= 0 (0: no limit)");
        rc = -1;
        break;
      }
      pl->default_mb = (uint64_t)json_integer_value(v);
    } else if (strcmp(k, "plans") == 0 && json_is_object(v)) {
      const char *pn;
      json_t *pv;
      json_object_foreach(v, pn, pv) {
        json_t *mb = json_object_get(pv, "storage_mb");
        if (pl->n >= sizeof pl->v / sizeof *pl->v ||
            strlen(pn) >= sizeof pl->v[0].name || !json_is_integer(mb) ||
            json_integer_value(mb) < 0) {
          snprintf(err, cap, "config \"plans\".\"%.32s\": expected "
                   "{\"storage_mb\": n} (at most 32 plans)", pn);
          rc = -1;
          break;
        }
        snprintf(pl->v[pl->n].name, sizeof pl->v[0].name, "%s", pn);
        pl->v[pl->n++].storage_mb = (uint64_t)json_integer_value(mb);
      }
      if (rc) break;
    } else {
      snprintf(err, cap, "config: unknown or malformed key \"%.64s\"", k);
      rc = -1;
      break;
    }
  }
  json_decref(c);
  return rc;
}

uint64_t prov_limit_of(const char *platform) {
  char plan[64];
  nno_plan_limits l = {.size = sizeof l};
  if (g_prov.billing && g_prov.billing->platform_limits(platform, &l) == 0)
    return l.storage_bytes;
  if (g_prov.reg && g_prov.reg->platform_plan(platform, plan, sizeof plan) == 0)
    return prov_plan_limit(&g_prov.plans, plan);
  return prov_plan_limit(&g_prov.plans, NULL);
}

/* ---- platforms in use ------------------------------------------------------- */

static int platform_enter(const char *platform) {
  return prov_enter(&g_prov.inuse, g_prov.data, platform);
}

static void platform_leave(const char *platform) {
  prov_leave(&g_prov.inuse, platform);
}

/* ---- the data plane ------------------------------------------------------------ */

typedef struct job {
  int type; /* 's', 'k', 'b', 'r' */
  int op, batch;
  char path[4096], pdir[4096];
  uint64_t limit;
  char *sql, *params, *key, *cursor, *ctype;
  size_t klen;
  void *value; /* kv put: copied */
  const void *data; /* blob put: borrowed until done */
  size_t len;
  uint64_t ttl;
  uint32_t lim;
  prov_out out;
  void *done, *ud;
} job;

static void job_free(job *j) {
  prov_out_free(&j->out);
  free(j->sql);
  free(j->params);
  free(j->key);
  free(j->cursor);
  free(j->ctype);
  free(j->value);
  free(j);
}

static void job_work(void *ud) {
  job *j = ud;
  prov_quota q = {j->pdir, j->limit};
  switch (j->type) {
  case 's':
    psql_run(j->path, &g_prov.bounds, &q, j->batch, j->sql, j->params, &j->out);
    break;
  case 'k':
    pkv_run(j->path, &g_prov.bounds, &q, j->op, j->key, j->klen, j->value,
            j->len, j->ttl, j->cursor, j->lim, &j->out);
    break;
  case 'b':
    pblob_run(j->path, &g_prov.bounds, &q, j->op, j->key, j->klen, j->ctype,
              j->data, j->len, j->cursor, j->lim, &j->out);
    break;
  default:
    pblob_read(j->path, j->key, j->klen, &j->out);
  }
}

static nno_str view(const char *s, size_t n) {
  nno_str v = {s ? s : "", s ? n : 0};
  return v;
}

static void job_after(int status, void *ud) {
  job *j = ud;
  prov_out *o = &j->out;
  if (status) {
    o->error = NNO_ECANCELED;
    snprintf(o->msg, sizeof o->msg, "the worker is stopping");
  }
  const char *msg = o->error ? o->msg : NULL;
  if (j->type == 's') {
    nno_sql_result r = {.error = o->error, .error_message = msg};
    r.rows = view(o->error ? "[]" : o->json, o->error ? 2 : o->json_len);
    r.changes = o->changes;
    r.last_insert_id = o->last_id;
    ((nno_storage_sql_fn)j->done)(&r, j->ud);
  } else if (j->type == 'k') {
    nno_kv_result r = {.error = o->error, .error_message = msg};
    r.found = o->found;
    r.value = view(o->value, o->value_len);
    r.expires = o->expires;
    r.keys = view(o->json ? o->json : "[]", o->json ? o->json_len : 2);
    r.cursor = view(o->cursor, o->cursor ? strlen(o->cursor) : 0);
    ((nno_storage_kv_fn)j->done)(&r, j->ud);
  } else {
    nno_blob_result r = {.error = o->error, .error_message = msg};
    r.found = o->found;
    r.size = o->size;
    r.etag = view(o->etag, strlen(o->etag));
    r.content_type = view(o->ctype, strlen(o->ctype));
    r.modified = o->modified;
    r.objects = view(o->json ? o->json : "[]", o->json ? o->json_len : 2);
    r.cursor = view(o->cursor, o->cursor ? strlen(o->cursor) : 0);
    if (j->type == 'b') {
      ((nno_storage_blob_fn)j->done)(&r, j->ud);
    } else {
      int fd = o->error || !o->found ? -1 : o->fd;
      if (fd >= 0) o->fd = -1; /* the host's now */
      ((nno_storage_read_fn)j->done)(&r, fd, j->ud);
    }
  }
  job_free(j);
}

/* A job for `ref`, its paths and limit set; NULL with *rc. */
static job *job_new(const nno_resource_ref *ref, int type, void *done,
                    void *ud, int *rc) {
  *rc = NNO_EINVAL;
  if (!ref || !done || !ref->platform || !ref->stack || !ref->type ||
      !ref->name)
    return NULL;
  const char *want = type == 's' ? "sql" : type == 'k' ? "kv" : "blob";
  if (strcmp(ref->type, want) != 0) return NULL;
  job *j = calloc(1, sizeof *j);
  if (!j) {
    *rc = NNO_ENOMEM;
    return NULL;
  }
  prov_out_init(&j->out);
  if (prov_resource_path(g_prov.data, ref->platform, ref->stack, ref->type,
                         ref->name, j->path, sizeof j->path) ||
      prov_platform_dir(g_prov.data, ref->platform, j->pdir, sizeof j->pdir)) {
    free(j);
    return NULL;
  }
  j->type = type;
  j->limit = prov_limit_of(ref->platform);
  j->done = done;
  j->ud = ud;
  *rc = 0;
  return j;
}

static int job_queue(job *j) {
  int rc = api->work_queue(g_prov.p, job_work, job_after, j);
  if (rc) job_free(j);
  return rc;
}

static char *dupn(const char *s, size_t n) {
  char *d = malloc(n + 1);
  if (d) {
    if (n) memcpy(d, s, n);
    d[n] = '\0';
  }
  return d;
}

static int sql_run(const nno_resource_ref *ref, int batch, const char *sql,
                   const char *params, nno_storage_sql_fn done, void *ud) {
  int rc;
  if (!sql) return NNO_EINVAL;
  job *j = job_new(ref, 's', (void *)done, ud, &rc);
  if (!j) return rc;
  j->batch = batch;
  j->sql = strdup(sql);
  j->params = params ? strdup(params) : NULL;
  if (!j->sql || (params && !j->params)) {
    job_free(j);
    return NNO_ENOMEM;
  }
  return job_queue(j);
}

static int kv_run(const nno_resource_ref *ref, int op, const char *key,
                  size_t key_len, const void *value, size_t value_len,
                  uint64_t ttl_s, const char *cursor, uint32_t limit,
                  nno_storage_kv_fn done, void *ud) {
  int rc;
  if ((!key && key_len) || (!value && value_len)) return NNO_EINVAL;
  if (op == 'p' && value_len > g_prov.bounds.kv_value_max) return NNO_ETOOBIG;
  job *j = job_new(ref, 'k', (void *)done, ud, &rc);
  if (!j) return rc;
  j->op = op;
  j->key = dupn(key, key_len);
  j->klen = key_len;
  j->value = op == 'p' ? dupn(value, value_len) : NULL;
  j->len = value_len;
  j->ttl = ttl_s;
  j->cursor = cursor ? strdup(cursor) : NULL;
  j->lim = limit;
  if (!j->key || (op == 'p' && !j->value) || (cursor && !j->cursor)) {
    job_free(j);
    return NNO_ENOMEM;
  }
  return job_queue(j);
}

static int blob_run(const nno_resource_ref *ref, int op, const char *key,
                    size_t key_len, const char *content_type, const void *data,
                    size_t len, const char *cursor, uint32_t limit,
                    nno_storage_blob_fn done, void *ud) {
  int rc;
  if ((!key && key_len) || (!data && len)) return NNO_EINVAL;
  job *j = job_new(ref, 'b', (void *)done, ud, &rc);
  if (!j) return rc;
  j->op = op;
  j->key = dupn(key, key_len);
  j->klen = key_len;
  j->ctype = content_type ? strdup(content_type) : NULL;
  j->data = data;
  j->len = len;
  j->cursor = cursor ? strdup(cursor) : NULL;
  j->lim = limit;
  if (!j->key || (content_type && !j->ctype) || (cursor && !j->cursor)) {
    job_free(j);
    return NNO_ENOMEM;
  }
  return job_queue(j);
}

static int blob_read(const nno_resource_ref *ref, const char *key,
                     size_t key_len, nno_storage_read_fn done, void *ud) {
  int rc;
  if (!key) return NNO_EINVAL;
  job *j = job_new(ref, 'b', (void *)done, ud, &rc);
  if (!j) return rc;
  j->type = 'r';
  j->key = dupn(key, key_len);
  j->klen = key_len;
  if (!j->key) {
    job_free(j);
    return NNO_ENOMEM;
  }
  return job_queue(j);
}

const nno_storage_v1 prov_storage = {
    .size = sizeof(nno_storage_v1),
    .platform_enter = platform_enter,
    .platform_leave = platform_leave,
    .sql_run = sql_run,
    .kv_run = kv_run,
    .blob_run = blob_run,
    .blob_read = blob_read,
};

/* ---- start-up ------------------------------------------------------------------ */

/* Sweep every bucket of every platform (what a crash left in them). */
static void sweep_buckets(void) {
  char root[4200], bdir[4400], bucket[4700], pdir[4400];
  snprintf(root, sizeof root, "%s/platforms", g_prov.data);
  DIR *d = opendir(root);
  if (!d) return;
  for (struct dirent *e; (e = readdir(d));) {
    if (!prov_id_ok(e->d_name, strlen(e->d_name))) continue;
    snprintf(pdir, sizeof pdir, "%s/%s", root, e->d_name);
    snprintf(bdir, sizeof bdir, "%s/blob", pdir);
    DIR *b = opendir(bdir);
    if (!b) continue;
    prov_quota q = {pdir, 0};
    for (struct dirent *f; (f = readdir(b));) {
      if (f->d_name[0] == '.') continue;
      snprintf(bucket, sizeof bucket, "%s/%s", bdir, f->d_name);
      pblob_sweep(bucket, &q);
    }
    closedir(b);
  }
  closedir(d);
}

static void prov_ready(nno_plugin *p) {
  const void *vt;
  uint32_t ver;
  if (api->service_lookup(p, NNO_BILLING_SERVICE, 1, &vt, &ver) == NNO_OK &&
      ((const nno_billing_v1 *)vt)->size >=
          offsetof(nno_billing_v1, platform_limits) + sizeof(void *))
    g_prov.billing = vt;
  if (api->service_lookup(p, NNO_REGISTRY_SERVICE, 1, &vt, &ver) == NNO_OK &&
      ((const nno_registry_v1 *)vt)->size >=
          offsetof(nno_registry_v1, platform_plan) + sizeof(void *))
    g_prov.reg = vt;
  else
    api->log(p, NNO_LOG_WARN,
             "the registry (nno.registry) is not loaded: every platform gets "
             "the default storage quota");
  /* One worker recovers, and keeps the lock for its lifetime: a worker
   * started later never undoes what a live one is doing. */
  char path[4200], msg[PROV_MSG_MAX] = "";
  snprintf(path, sizeof path, "%s/provisioning.lock", g_prov.data);
  int fd = open(path, O_RDWR | O_CREAT | O_NOFOLLOW | O_CLOEXEC, 0600);
  if (fd < 0 || flock(fd, LOCK_EX | LOCK_NB) != 0) {
    if (fd >= 0) close(fd);
    return;
  }
  g_prov.recover_fd = fd;
  int n = prov_recover(g_prov.db, g_prov.data, msg, sizeof msg);
  if (n < 0)
    api->log(p, NNO_LOG_ERROR, "cannot recover the provisioning journal: %s (%s)",
             msg, api->err_name(n));
  else if (n > 0)
    api->log(p, NNO_LOG_INFO, "recovered %d interrupted provisioning call(s)", n);
  sweep_buckets();
}

static void cleanup(void) {
  prov_inuse_free(&g_prov.inuse);
  if (g_prov.recover_fd >= 0) close(g_prov.recover_fd);
  if (g_prov.db) sqlite3_close_v2(g_prov.db);
  memset(&g_prov, 0, sizeof g_prov);
  g_prov.recover_fd = -1;
}

static int prov_init(nno_plugin *p, const nno_host_api *host) {
  char err[512], path[4200];
  api = host;
  memset(&g_prov, 0, sizeof g_prov);
  g_prov.p = p;
  g_prov.recover_fd = -1;
  if (!NNO_HAS(api, req_remote_addr)) {
    api->plugin_fail(p, "this host lacks ABI 1.1 (it provides %u.%u)",
                     api->abi_major, api->abi_minor);
    return NNO_ENOTSUP;
  }
  if (sodium_init() < 0) {
    api->plugin_fail(p, "cannot initialise libsodium");
    return NNO_EIO;
  }
  if (parse_config(api->plugin_config(p), err, sizeof err)) {
    api->plugin_fail(p, "%s", err);
    return NNO_EINVAL;
  }
  const char *data = api->host_data_dir(p);
  if (strlen(data) >= 2048) {
    api->plugin_fail(p, "the data folder's path is too long");
    return NNO_EINVAL;
  }
  snprintf(g_prov.data, sizeof g_prov.data, "%s", data);
  snprintf(path, sizeof path, "%s/platforms", data);
  int rc = NNO_EIO;
  if ((mkdir(data, 0700) != 0 && errno != EEXIST) ||
      prov_mkdir(path, err, sizeof err)) {
    api->plugin_fail(p, "cannot prepare %s: %s", path, err);
    goto fail;
  }
  snprintf(g_prov.core, sizeof g_prov.core, "%s/core.db", data);
  if ((rc = pj_open(g_prov.core, &g_prov.db, err, sizeof err)) ||
      (rc = pj_migrate(g_prov.db, err, sizeof err))) {
    api->plugin_fail(p, "%s", err);
    goto fail;
  }
  api->plugin_set_data(p, &g_prov);
  if ((rc = prov_api_init(p)) ||
      (rc = api->service_publish(p, NNO_STORAGE_SERVICE, NNO_STORAGE_VERSION,
                                 &prov_storage)) ||
      (rc = api->service_publish(p, NNO_PROVISIONING_SERVICE,
                                 NNO_PROVISIONING_VERSION,
                                 &prov_provisioning))) {
    api->plugin_fail(p, "cannot register: %s", api->strerror(rc));
    goto fail;
  }
  return NNO_OK;
fail:
  cleanup();
  return rc ? rc : NNO_EIO;
}

static void prov_fini(nno_plugin *p) {
  (void)p;
  prov_provision_fini();
  cleanup();
}

NNO_PLUGIN(.name = "provisioning", .version = "1.0.0", .kind = NNO_KIND_CORE,
           .on_plugin_init = prov_init, .on_plugin_fini = prov_fini,
           .on_host_ready = prov_ready)
