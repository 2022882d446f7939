/* The "nno.storage" service, version 1: the storage provider behind the
 * resource calls of the plugin ABI (sql_*, kv_*, blob_*, res_blob).
 *
 * Feature packages never see this table. The host looks it up once the
 * core plugins have loaded and forwards each resource call of a package to
 * it, naming the resource explicitly: the request's platform, the stack of
 * the calling package, the type and the name the package asked for, after
 * checking that the package's manifest declares that resource. Only core
 * plugins publish it (the provisioning plugin, with its drivers); a host
 * without a provider answers NNO_ENOTSUP to every resource call.
 *
 * THREAD: every member is called on the worker's loop thread, returns
 * quickly (the work runs on the pool) and calls its completion exactly
 * once, on the loop, unless it returned an error. The result passed to a
 * completion is borrowed for the duration of the call.
 * OWNERSHIP: the ref's strings are borrowed for the duration of the call
 * only: copy what the operation needs. Buffers marked "borrowed until
 * done" stay valid until the completion has run. */
#ifndef NNO_STORAGE_H
#define NNO_STORAGE_H

#include <stddef.h>
#include <stdint.h>

#include <nno/plugin.h>

#define NNO_STORAGE_SERVICE "nno.storage"
#define NNO_STORAGE_VERSION 1

/* Which resource: all NUL-terminated, already validated by the host
 * (ids of 1..64 bytes of [a-z0-9-], type one of "sql", "kv", "blob"). */
typedef struct nno_resource_ref {
  const char *platform; /* the request's platform */
  const char *stack;    /* the stack of the package that asks */
  const char *package;  /* the package that asks (for logs and errors) */
  const char *type;     /* "sql", "kv" or "blob" */
  const char *name;     /* the name the manifest declares */
} nno_resource_ref;

typedef void (*nno_storage_sql_fn)(const nno_sql_result *res, void *ud);
typedef void (*nno_storage_kv_fn)(const nno_kv_result *res, void *ud);
typedef void (*nno_storage_blob_fn)(const nno_blob_result *res, void *ud);
/* res_blob's read side: on success `fd` is an open, readable descriptor
 * positioned at the start of the object's bytes (the host owns it and
 * closes it) and `res` describes the object; on failure or when the
 * object does not exist (`res->found` 0), `fd` is -1. */
typedef void (*nno_storage_read_fn)(const nno_blob_result *res, int fd,
                                    void *ud);

typedef struct nno_storage_v1 {
  /* sizeof(nno_storage_v1) as the provider was built. */
  size_t size;

  /* A request starts using platform `platform`'s resources: called once
   * per request, before its first operation. 0, or NNO_EBUSY while the
   * platform is being deleted (its data is being removed), NNO_ENOENT if
   * the platform has no provisioned data. Every successful enter is
   * matched by one leave, when the request ends and none of its
   * operations is pending; deletion waits for the leaves. */
  int (*platform_enter)(const char *platform);
  void (*platform_leave)(const char *platform);

  /* sql_exec (batch 0: `sql` is one statement, `params` JSON or NULL)
   * and sql_batch (batch 1: `sql` is the batch's JSON array, `params`
   * NULL). Strings copied. */
  int (*sql_run)(const nno_resource_ref *ref, int batch, const char *sql,
                 const char *params, nno_storage_sql_fn done, void *ud);

  /* The kv calls; op is 'g'et, 'p'ut, 'd'elete or 'l'ist. `key` is the
   * key (or the prefix for a list), `value` the value of a put (copied),
   * `ttl_s` for a put, `cursor` (NUL-terminated or NULL) and `limit` for
   * a list. */
  int (*kv_run)(const nno_resource_ref *ref, int op, const char *key,
                size_t key_len, const void *value, size_t value_len,
                uint64_t ttl_s, const char *cursor, uint32_t limit,
                nno_storage_kv_fn done, void *ud);

  /* The blob calls; op is 'p'ut, 'h'ead, 'd'elete or 'l'ist. For a put,
   * `data` is borrowed until done and `content_type` copied. */
  int (*blob_run)(const nno_resource_ref *ref, int op, const char *key,
                  size_t key_len, const char *content_type, const void *data,
                  size_t len, const char *cursor, uint32_t limit,
                  nno_storage_blob_fn done, void *ud);
  /* Open object `key` for reading (res_blob). */
  int (*blob_read)(const nno_resource_ref *ref, const char *key,
                   size_t key_len, nno_storage_read_fn done, void *ud);
} nno_storage_v1;

#endif
