/* What every operator API handler shares: operator authentication, JSON
 * bodies and field checks, problem responses, pages and cursors, ETags,
 * and idempotency keys.
 *
 * Functions that "answer" write a complete response; the handler then
 * returns NNO_OK without writing anything else. THREAD: loop thread. */
#ifndef NNO_REGISTRY_HTTP_UTIL_H
#define NNO_REGISTRY_HTTP_UTIL_H

#include <stddef.h>
#include <stdint.h>

#include <jansson.h>
#include <nno/plugin.h>

#include "store.h"

/* ---- authentication ---------------------------------------------------- */

/* 1 when the request carries `Authorization: Bearer <operator key>`;
 * otherwise answers 401 with `WWW-Authenticate: Bearer realm="nno"` and
 * returns 0. Every /api/v1 handler calls this first. */
int hu_authorized(nno_req *req);

/* ---- problems ---------------------------------------------------------- */

/* Answer an application/problem+json response with the request id, and
 * `field` when not NULL. The detail is printf-formatted. Returns NNO_OK. */
int hu_problem(nno_req *req, int status, const char *field, const char *fmt,
               ...) NNO_PRINTF(4, 5);
/* Answer 503 (busy) or 500 for a store error, logging sqlite's message
 * (never shown to the client). Returns NNO_OK. */
int hu_store_error(nno_req *req, int rc);

/* ---- JSON -------------------------------------------------------------- */

/* Compact JSON text of v (malloc'd; NULL on failure). */
char *hu_dump(const json_t *v);
/* Answer `status` with v's JSON (v is released). Returns NNO_OK or an
 * error code when out of memory. */
int hu_send(nno_req *req, int status, json_t *v);
/* Answer `status` with JSON text. */
int hu_send_text(nno_req *req, int status, const char *json);

/* Parse the request body as a JSON object (an empty body is {}). Returns 0
 * with *out set (release it), or -1 after answering 400 (bad JSON, with
 * line and column) or 422 (not an object). */
int hu_body(nno_req *req, json_t **out);

enum { HU_STR = 1, HU_STR_OR_NULL = 2 };

typedef struct hu_field {
  const char *name;
  int type; /* HU_STR... */
  int required;
} hu_field;

/* Check `obj` against the allowed fields: unknown fields, missing required
 * ones and wrong types answer 422 naming the field; returns -1 then, 0 if
 * all is well. */
int hu_fields(nno_req *req, json_t *obj, const hu_field *f, size_t n);

/* ---- values ------------------------------------------------------------ */

/* 0 if `s` is an id of `min` (STORE_PLATFORM_ID_MIN or STORE_TENANT_ID_MIN)
 * to 32 of [a-z0-9-], starting and ending with a letter or digit;
 * otherwise answers 422 naming `field` and returns -1. */
int hu_check_id(nno_req *req, const char *field, const char *s, size_t min);
/* The same test without answering: 1 if valid. */
int hu_id_ok(const char *s, size_t n, size_t min);
/* A platform id (hu_id_ok with STORE_PLATFORM_ID_MIN). */
int hu_id_valid(const char *s, size_t n);
/* 1 to 128 characters, no control characters; answers 422 otherwise. */
int hu_check_name(nno_req *req, const char *field, const char *s);
/* `s` as a JSON string literal for a message, cut after 40 bytes (on a
 * character boundary) so a hostile value cannot fill it. */
void hu_quote(const char *s, char *out, size_t cap);
/* Copy route parameter `name` into out (NUL-terminated); -1 if missing or
 * longer than cap - 1. */
int hu_param(nno_req *req, const char *name, char *out, size_t cap);
/* Copy query parameter `name` (decoded) into out. 1 when present, 0 when
 * absent, -1 after answering 422 when longer than cap - 1. */
int hu_query(nno_req *req, const char *name, char *out, size_t cap);
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

/* The `limit` (1..500, default 50) and `cursor` query parameters. The
 * cursor's decoded key goes into `after` ("" when none). Returns 0, or -1
 * after answering 422. */
int hu_page(nno_req *req, int *limit, char *after, size_t cap);
/* {"items": items, "next_cursor": cursor of `next_key` or null}; items is
 * released. */
json_t *hu_page_json(json_t *items, const char *next_key);

/* Collects one page of a list. Query limit + 1 rows: the extra row only
 * tells that there is a next page. */
typedef struct hu_pager {
  json_t *items;
  int limit, n, more;
  char last[600]; /* sort key of the last item added */
} hu_pager;

/* Read limit and cursor (into `after`) and start an empty page; -1 after
 * answering. */
int hu_pager_start(nno_req *req, hu_pager *pg, char *after, size_t cap);
/* 1 (and remember there is more) once the page holds `limit` items: the
 * row at hand is not added. */
int hu_pager_full(hu_pager *pg);
/* Append item (stolen) whose sort key is `key`; a store_rc. */
int hu_pager_add(hu_pager *pg, json_t *item, const char *key);
/* Answer 200 with the page; the items are handed over. */
int hu_pager_send(nno_req *req, hu_pager *pg);
void hu_pager_free(hu_pager *pg);

/* ---- ETags ------------------------------------------------------------- */

/* Add `ETag: "v<version>"`. */
void hu_etag(nno_req *req, int64_t version);
/* 1 if there is no If-Match, or it is "*" or lists "v<current>"; else 0. */
int hu_if_match(nno_req *req, int64_t current);

/* ---- idempotency ------------------------------------------------------- */

typedef struct hu_idem {
  int active; /* an Idempotency-Key was sent */
  store_idem e;
} hu_idem;

/* Inside the handler's write transaction: read Idempotency-Key. Returns 0
 * to go on (ik->active says whether to record the result), or 1 after
 * answering (a replay, a 422 for a reused key with another request, a 400
 * for a malformed key, or a store error): the caller rolls back. */
int hu_idem_begin(nno_req *req, hu_idem *ik);
/* Inside the same transaction, before COMMIT: record the answer. */
int hu_idem_record(hu_idem *ik, int status, const char *body,
                   const char *location);
void hu_idem_clear(hu_idem *ik);

/* ---- audit ------------------------------------------------------------- */

/* Who this request acts as, for audit rows and idempotency keys:
 * "operator", "key:{id}" or "user:{platform}/{id}". */
void hu_actor(nno_req *req, char *out, size_t cap);

/* Add an audit row for this request (actor hu_actor(), its request id);
 * `detail` may be NULL. Returns a store_rc. */
int hu_audit(nno_req *req, const char *action, const char *target,
             const json_t *detail);

#endif
