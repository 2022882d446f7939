/* Values of a request: ids and names, route and query parameters copied
 * with bounds, and who the caller is as an actor string. */
#ifndef NNO_SDK_REQUEST_H
#define NNO_SDK_REQUEST_H

#include <stddef.h>
#include <stdint.h>

#include <nno/sdk/base.h>

#ifdef __cplusplus
extern "C" {
#endif

/* ---- ids and names ------------------------------------------------------- */

/* 1 if s[0..n) is an id: `min` to `max` characters of [a-z0-9-], starting
 * and ending with a letter or digit (platform and tenant ids). */
NNO_SDK_API int nno_id_valid(const char *s, size_t n, size_t min, size_t max);

/* 0 if the NUL-terminated `s` is an id (nno_id_valid); otherwise answers
 * 422 naming `field` and saying what was expected, and returns -1. */
NNO_SDK_API int nno_check_id(nno_req *req, const char *field, const char *s,
                             size_t min, size_t max);

/* 0 if `s` is a display name: 1 to `max_chars` UTF-8 characters, no
 * control characters; otherwise answers 422 naming `field`, returns -1. */
NNO_SDK_API int nno_check_name(nno_req *req, const char *field, const char *s,
                               size_t max_chars);

/* `s` as a JSON string literal for a message, cut after 40 bytes (on a
 * character boundary, "..." added) so a hostile value cannot fill it.
 * `cap` >= 16. */
NNO_SDK_API void nno_quote(const char *s, char *out, size_t cap);

/*
 * "Did you mean": the member of `known` (NULL-terminated) nearest to
 * `word` within `max_edits` edits (an insertion, a deletion, a
 * substitution or a swap of neighbours each costs 1), the first of equals;
 * NULL when none is that near. Words of 40 bytes or more are never near.
 * For naming the field a misspelt key meant. Pure: needs no nno_sdk_init.
 * OWNERSHIP: returns an element of `known`.
 */
NNO_SDK_API const char *nno_nearest(const char *word,
                                    const char *const *known,
                                    size_t max_edits);

/* ---- versions: ETag and If-Match ----------------------------------------- */

/* Add `ETag: "v<version>"` to the response: the version of the stored row
 * it shows (bumped by every write). */
NNO_SDK_API void nno_etag(nno_req *req, int64_t version);

/* Whether a write may go on over a row at version `current`: 1 when the
 * request has no If-Match, or one of its comma-separated tags is `*` or
 * exactly "v<current>" (blanks around each allowed); else 0, and the
 * caller answers 412 changing nothing. Answers nothing itself. */
NNO_SDK_API int nno_if_match(nno_req *req, int64_t current);

/* ---- parameters ---------------------------------------------------------- */

/*
 * Copy route parameter `{name}` into out (cap bytes, NUL-terminated). 0, or
 * -1 when the route has none, it is empty, longer than cap - 1 or holds a
 * NUL byte. Answers nothing: what a bad parameter means (usually 404) is
 * the caller's. On -1, out still holds the first cap - 1 bytes ("" when
 * absent), fit for the message.
 */
NNO_SDK_API int nno_param_copy(nno_req *req, const char *name, char *out,
                               size_t cap);

/* Copy query parameter `name` (percent-decoded) into out. 1 when present,
 * 0 when absent (out is ""), -1 after answering 422 naming the field when
 * longer than cap - 1 or holding a NUL byte. */
NNO_SDK_API int nno_query_copy(nno_req *req, const char *name, char *out,
                               size_t cap);

/* ---- the caller ---------------------------------------------------------- */

/* Bound of an actor string, NUL included. */
#define NNO_ACTOR_MAX 160

/* Who the request acts as, for audit rows: "operator" (also when no
 * credential was recorded, or the host lacks req_caller), "key:{id}" or
 * "user:{platform}/{id}". Cut to cap - 1 bytes. */
NNO_SDK_API void nno_caller_actor(nno_req *req, char *out, size_t cap);

/* The client an address stands for, as a rate-limit key part: an IPv6
 * address becomes its /64 ("2001:db8:1:2::/64": a client holds at least
 * that many addresses, so counting them one by one would let it mint
 * 2^64 buckets); IPv4 and IPv4-mapped addresses stay whole. `addr` is
 * req_remote_addr()'s text (len bytes, NULL for none). Writes a
 * NUL-terminated key of at most cap - 1 bytes and returns its length; an
 * IPv4 or unknown text is cut to fit, an IPv6 key that does not fit gives
 * "" and 0. */
NNO_SDK_API size_t nno_client_key(const char *addr, size_t len, char *out,
                                  size_t cap);

#ifdef __cplusplus
}
#endif
#endif /* NNO_SDK_REQUEST_H */
