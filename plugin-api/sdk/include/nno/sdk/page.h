/* Pages of a list: `limit` and `cursor` query parameters, opaque cursors,
 * and a pager building {"items":[...],"next_cursor":"..."|null}.
 *
 * A cursor is the sort key of the last item of a page, base64url-encoded
 * (no padding): opaque to clients, a plain string to the package, which
 * lists the items after it. */
#ifndef NNO_SDK_PAGE_H
#define NNO_SDK_PAGE_H

#include <stddef.h>

#include <jansson.h>
#include <nno/sdk/base.h>

#ifdef __cplusplus
extern "C" {
#endif

/* Bounds: a sort key of up to NNO_PAGE_KEY_MAX - 1 bytes encodes into a
 * cursor that fits NNO_CURSOR_MAX bytes (NUL included). */
#define NNO_PAGE_KEY_MAX 384
#define NNO_CURSOR_MAX 512

/* 1 if s[0..n) is a limit: decimal digits only, 1..max. */
NNO_SDK_API int nno_limit_parse(const char *s, size_t n, int max, int *out);

/* Encode `key` (n bytes) as a cursor into out. 0, or -1 when it does not
 * fit `cap`. */
NNO_SDK_API int nno_cursor_encode(const void *key, size_t n, char *out,
                                  size_t cap);

/* Decode a cursor into out (NUL-terminated) and *n (may be NULL). 0, or -1
 * when it is not one this SDK made: not canonical base64url, empty,
 * holding a NUL byte, or longer than cap - 1. */
NNO_SDK_API int nno_cursor_decode(const char *cur, size_t len, char *out,
                                  size_t cap, size_t *n);

/*
 * Read `limit` (1..max, default `def`) and `cursor` (decoded into `after`,
 * cap bytes, "" when absent) from the query. 0, or -1 after answering 422
 * naming the field: `field "limit": expected an integer from 1 to MAX, got
 * "..."` or `field "cursor": not a cursor this API returned`.
 */
NNO_SDK_API int nno_page_read(nno_req *req, int def, int max, int *limit,
                              char *after, size_t cap);

/* {"items": items, "next_cursor": the cursor of `next_key`, or null when
 * NULL}. `items` is consumed. OWNERSHIP: a new reference, NULL when out of
 * memory. */
NNO_SDK_API json_t *nno_page_json(json_t *items, const char *next_key);

/* Collects one page. Ask the store for limit + 1 items: the extra one
 * only tells that there is a next page. */
typedef struct nno_pager {
  json_t *items;
  int limit, n, more;
  char last[NNO_PAGE_KEY_MAX]; /* sort key of the last item added */
} nno_pager;

/* nno_page_read() into pg->limit and `after`, and an empty page. 0, or -1
 * after answering (422, or 500 when out of memory). */
NNO_SDK_API int nno_pager_start(nno_req *req, nno_pager *pg, int def, int max,
                                char *after, size_t cap);
/* 1 once the page holds `limit` items (the item at hand is then not
 * added, and there is a next page); 0 otherwise. */
NNO_SDK_API int nno_pager_full(nno_pager *pg);
/* Append `item` (consumed; NULL allowed: a failed json_pack) whose sort
 * key is `key`. 0, or NNO_ENOMEM (NNO_ETOOBIG for a key over the bound). */
NNO_SDK_API int nno_pager_add(nno_pager *pg, json_t *item, const char *key);
/* Answer 200 with the page; the items are handed over. Returns NNO_OK. */
NNO_SDK_API int nno_pager_send(nno_req *req, nno_pager *pg);
/* Release the items if the page was not sent. */
NNO_SDK_API void nno_pager_free(nno_pager *pg);

#ifdef __cplusplus
}
#endif
#endif /* NNO_SDK_PAGE_H */
