/* Resources of the plugin ABI (1.2): a package's sql, kv and blob
 * resources on the request's platform, checked against its manifest and
 * forwarded to the "nno.storage" provider a core plugin publishes; the
 * end of a request (res_end); res_blob; and platform_event's host-made
 * requests.
 *
 * A request counts its pending operations (req.res_pending): it is not
 * ended while one is pending (res_end answers NNO_EBUSY, a handler that
 * returns meanwhile is ended by the last completion), so the request and
 * its handles stay valid until every completion ran, client or not. The
 * first operation of a request calls platform_enter; the end of the
 * request calls platform_leave (res_request_end) — for a body streamed by
 * res_blob, once the stream is over (req_reset). */
#ifndef NNO_HOST_RES_H
#define NNO_HOST_RES_H

#include <nno/plugin.h>
#include <nno/storage.h>

struct worker;
struct plugin;
struct stack;

/* Find the "nno.storage" provider among the services published so far
 * (called once the core plugins are loaded); NULL keeps resource calls
 * answering NNO_ENOTSUP. */
void res_bind_provider(struct worker *w);

/* res_end(): NNO_ESTATE when ended or not active, NNO_EBUSY while an
 * operation is pending; else ends the response (now, or when the handler
 * returns if called from inside it). */
int res_req_end(nno_req *r);

/* The request is over: platform_leave if it entered. */
void res_request_end(nno_req *r);

/* The gateway's handler returned `rc` (not NNO_ASYNC) with operations
 * pending: the response is ended by the last completion. */
void res_end_when_idle(nno_req *r);

/* The platform_event hook of the descriptor, or NULL (an older descriptor
 * that does not reach it, or none set). */
int (*res_event_hook(const nno_plugin_desc *d))(nno_plugin *, int, nno_req *);

/* Status of a failed lifecycle hook → the NNO_E... code given to done. */
int res_status_code(int status);

/* The ABI members. */
int res_sql_open(nno_req *r, const char *name, nno_sql **out);
int res_sql_exec(nno_sql *db, const char *sql, const char *params,
                 nno_sql_done_fn done, void *ud);
int res_sql_batch(nno_sql *db, const char *batch, nno_sql_done_fn done,
                  void *ud);
int res_kv_open(nno_req *r, const char *name, nno_kv **out);
int res_kv_get(nno_kv *kv, const char *key, size_t key_len,
               nno_kv_done_fn done, void *ud);
int res_kv_put(nno_kv *kv, const char *key, size_t key_len, const void *value,
               size_t value_len, uint64_t ttl_s, nno_kv_done_fn done,
               void *ud);
int res_kv_delete(nno_kv *kv, const char *key, size_t key_len,
                  nno_kv_done_fn done, void *ud);
int res_kv_list(nno_kv *kv, const char *prefix, size_t prefix_len,
                const char *cursor, uint32_t limit, nno_kv_done_fn done,
                void *ud);
int res_blob_open(nno_req *r, const char *name, nno_blob **out);
int res_blob_put(nno_blob *b, const char *key, size_t key_len,
                 const char *content_type, const void *data, size_t len,
                 nno_blob_done_fn done, void *ud);
int res_blob_head(nno_blob *b, const char *key, size_t key_len,
                  nno_blob_done_fn done, void *ud);
int res_blob_delete(nno_blob *b, const char *key, size_t key_len,
                    nno_blob_done_fn done, void *ud);
int res_blob_list(nno_blob *b, const char *prefix, size_t prefix_len,
                  const char *cursor, uint32_t limit, nno_blob_done_fn done,
                  void *ud);
int res_blob(nno_req *r, nno_blob *b, const char *key, size_t key_len);
int res_platform_event(nno_plugin *p, nno_stack *s, const char *platform,
                       int event,
                       void (*done)(int status, const char *message, void *ud),
                       void *ud);

/* Bounds the host checks before forwarding (plugin.h, storage.h). */
#define RES_KV_KEY_MAX 512
#define RES_KV_VALUE_MAX (1u << 20)
#define RES_BLOB_KEY_MAX 1024
#define RES_SQL_MAX (100u << 10)
#define RES_BATCH_MAX (1u << 20)
#define RES_CURSOR_MAX 1024
#define RES_LIST_MAX 1000

/* Key rules, exposed for the unit tests: 1 when valid. */
int res_kv_key_ok(const char *key, size_t len);
int res_blob_key_ok(const char *key, size_t len);

#endif
