/* What every operator API handler shares beyond the SDK (nno/sdk.h:
 * problems, JSON bodies and field tables, ids, parameters, pages, the
 * actor): operator authentication, store errors, idempotency keys
 * and audit rows.
 *
 * Functions that "answer" write a complete response; the handler then
 * returns NNO_OK without writing anything else. THREAD: loop thread. */
#ifndef NNO_REGISTRY_HTTP_UTIL_H
#define NNO_REGISTRY_HTTP_UTIL_H

#include <stddef.h>
#include <stdint.h>

#include <jansson.h>
#include <nno/plugin.h>
#include <nno/sdk.h>

#include "store.h"

/* ---- authentication ---------------------------------------------------- */

/* 1 when the request carries `Authorization: Bearer <operator key>`;
 * otherwise answers 401 with `WWW-Authenticate: Bearer realm="nno"` and
 * returns 0. Every /api/v1 handler calls this first. */
int hu_authorized(nno_req *req);

/* ---- problems ---------------------------------------------------------- */

/* Answer 503 (busy) or 500 for a store error, logging sqlite's message
 * (never shown to the client). Returns NNO_OK. */
int hu_store_error(nno_req *req, int rc);

/* ---- values ------------------------------------------------------------ */

/* Bounds of the operator API: names of platforms and tenants, pages. */
#define REG_NAME_MAX 128
#define REG_PAGE_DEFAULT 50
#define REG_PAGE_MAX 500

/* A platform id: nno_id_valid() with STORE_PLATFORM_ID_MIN..STORE_ID_MAX. */
static inline int hu_id_valid(const char *s, size_t n) {
  return nno_id_valid(s, n, STORE_PLATFORM_ID_MIN, STORE_ID_MAX);
}
/* Random id: prefix + 10 lowercase base32 characters. */
void hu_random_id(const char *prefix, char *out, size_t cap);

/* Read route parameter {id} into `id` (STORE_ID_MAX + 1 bytes) and check
 * that the platform exists: 0, or -1 after answering 404 (or a store
 * error). */
int hu_platform(nno_req *req, char *id);
/* The same for an id already read. */
int hu_need_platform(nno_req *req, const char *id);
/* Roll back the open transaction and answer for store error `rc`. */
int hu_fail(nno_req *req, int rc);

/* ---- pages ------------------------------------------------------------- */

/* nno_pager_add() from a store callback: a store_rc. */
static inline int hu_pager_add(nno_pager *pg, json_t *item, const char *key) {
  return nno_pager_add(pg, item, key) ? STORE_ERROR : STORE_OK;
}


/* ---- idempotency ------------------------------------------------------- */

typedef struct hu_idem {
  int active; /* an Idempotency-Key was sent */
  store_idem e;
} hu_idem;

/* The status recorded for a request whose answer is not known yet (an
 * asynchronous one, while provisioning runs); recorded answers are 2xx
 * otherwise. Older than HU_IDEM_STALE_S, it is taken for a process that
 * died and forgotten. */
#define HU_IDEM_PENDING 202
#define HU_IDEM_STALE_S 600

/* Inside the handler's write transaction: read Idempotency-Key. Returns 0
 * to go on (ik->active says whether to record the result), or 1 after
 * answering (a replay, a 422 for a reused key with another request, a 400
 * for a malformed key, or a store error): the caller rolls back. The same
 * request still pending: 409 (Retry-After: 1), or with `can_wait` 2
 * without answering: the caller rolls back and waits (reg_idem_wait). */
int hu_idem_begin(nno_req *req, hu_idem *ik);
int hu_idem_begin_wait(nno_req *req, hu_idem *ik, int can_wait);
/* Inside the transaction: record this request as pending, so concurrent
 * retries wait for its answer. A store_rc. */
int hu_idem_pending(hu_idem *ik);
/* Forget the pending record (before recording the answer in the same
 * transaction, or alone after a failure: only successes are recorded). */
int hu_idem_forget(hu_idem *ik);
/* Inside the same transaction, before COMMIT: record the answer. */
int hu_idem_record(hu_idem *ik, int status, const char *body,
                   const char *location);
void hu_idem_clear(hu_idem *ik);

/* ---- audit ------------------------------------------------------------- */

/* Add an audit row for this request (actor nno_caller_actor(), its
 * request id);
 * `detail` may be NULL. Returns a store_rc. */
int hu_audit(nno_req *req, const char *action, const char *target,
             const json_t *detail);

#endif
