/* JSON responses, JSON object bodies and field tables, with jansson (the
 * package links it too: `pkg-config --libs nno-sdk` names it). */
#ifndef NNO_SDK_JSON_H
#define NNO_SDK_JSON_H

#include <stddef.h>

#include <jansson.h>
#include <nno/sdk/base.h>

#ifdef __cplusplus
extern "C" {
#endif

/* ---- responses ----------------------------------------------------------- */

/* Compact JSON text of any value. OWNERSHIP: malloc'd, the caller frees;
 * NULL when out of memory. */
NNO_SDK_API char *nno_json_text(const json_t *v);

/* Answer `status` with v's JSON text. `v` is consumed (NULL allowed: a
 * failed json_pack). Out of memory, or a response the host refuses,
 * answers 500 instead. Returns NNO_OK. */
NNO_SDK_API int nno_send_json(nno_req *req, int status, json_t *v);

/* Answer `status` with JSON text (NUL-terminated, valid JSON). Returns
 * res_json's code. */
NNO_SDK_API int nno_send_text(nno_req *req, int status, const char *json);

/* "an object", "an array", "a string", "a number", "a boolean" or "null",
 * for messages. OWNERSHIP: static. */
NNO_SDK_API const char *nno_json_type_name(const json_t *v);

/* ---- request bodies ------------------------------------------------------ */

enum {
  /* 415 unless Content-Type is application/json (parameters allowed): a
   * cross-site form cannot send that media type without a preflight. */
  NNO_BODY_JSON_TYPE = 1 << 0,
  /* An empty body reads as {} (otherwise it is invalid JSON: 400). */
  NNO_BODY_EMPTY_OK = 1 << 1,
};

/*
 * Read the request body as a JSON object (duplicate keys refused). 0 with
 * *out set (OWNERSHIP: the caller releases it with json_decref), or -1
 * after answering: 415 (see NNO_BODY_JSON_TYPE), 413 when over `max_bytes`
 * (0: only the host's own bound), 400 for invalid JSON (with line and
 * column), 422 when it is not an object.
 */
NNO_SDK_API int nno_body_object(nno_req *req, size_t max_bytes, unsigned flags,
                                json_t **out);

/* ---- field tables -------------------------------------------------------- */

/* What a field may hold. */
typedef enum nno_field_type {
  NNO_FIELD_ANY = 0,    /* anything: the caller checks it */
  NNO_FIELD_STRING = 1, /* a string */
  NNO_FIELD_STRING_OR_NULL = 2,
  NNO_FIELD_BOOL = 3,
  NNO_FIELD_INTEGER = 4,
  NNO_FIELD_ARRAY = 5,
  NNO_FIELD_OBJECT = 6,
} nno_field_type;

/* One allowed member of a request object. For strings, `max_bytes` > 0
 * bounds the length to min_bytes..max_bytes (bytes, not characters). */
typedef struct nno_field {
  const char *name;
  int type; /* nno_field_type */
  int required;
  size_t min_bytes, max_bytes;
} nno_field;

/* Table rows: any type, and a string of min..max bytes. */
#define NNO_FIELD(name, type, required) \
  { (name), (type), (required), 0, 0 }
#define NNO_FIELD_STR(name, required, min, max) \
  { (name), NNO_FIELD_STRING, (required), (min), (max) }

/* The first member of `obj` that is not in the table, or NULL. Answers
 * nothing: for a package with a message of its own. OWNERSHIP: the name
 * is borrowed from obj. */
NNO_SDK_API const char *nno_fields_unknown(const json_t *obj,
                                           const nno_field *f, size_t n);

/*
 * Check `obj` against the table: a member not in it, then, in table order,
 * a required member missing, a member of the wrong type or a string out of
 * its bounds answers 422 naming the field ("field": name, and a detail
 * starting `field "name": `) and returns -1; 0 when all is well. null is a
 * value like any other: only NNO_FIELD_ANY and NNO_FIELD_STRING_OR_NULL
 * accept it.
 */
NNO_SDK_API int nno_fields_check(nno_req *req, const json_t *obj,
                                 const nno_field *f, size_t n);

#ifdef __cplusplus
}
#endif
#endif /* NNO_SDK_JSON_H */
