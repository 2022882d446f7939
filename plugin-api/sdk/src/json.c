/* JSON responses, bodies and field tables (see nno/sdk/json.h). */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "internal.h"

/* ---- responses ----------------------------------------------------------- */

char *nno_json_text(const json_t *v) {
  return v ? json_dumps(v, JSON_COMPACT | JSON_ENCODE_ANY) : NULL;
}

int nno_send_text(nno_req *req, int status, const char *json) {
  return nno__sdk_api->res_json(req, status, json, strlen(json));
}

int nno_send_json(nno_req *req, int status, json_t *v) {
  char *text = nno_json_text(v);
  json_decref(v);
  if (!text) return nno_problem(req, 500, NULL, "out of memory");
  int rc = nno_send_text(req, status, text);
  free(text);
  /* Over the response bound, or a string that is not UTF-8. */
  if (rc != NNO_OK && rc != NNO_ESTATE)
    nno_problem(req, 500, NULL, "cannot write the response");
  return NNO_OK;
}

const char *nno_json_type_name(const json_t *v) {
  switch (v ? json_typeof(v) : JSON_NULL) {
  case JSON_OBJECT:
    return "an object";
  case JSON_ARRAY:
    return "an array";
  case JSON_STRING:
    return "a string";
  case JSON_INTEGER:
  case JSON_REAL:
    return "a number";
  case JSON_TRUE:
  case JSON_FALSE:
    return "a boolean";
  default:
    return "null";
  }
}

/* ---- request bodies ------------------------------------------------------ */

/* Content-Type is application/json, with or without parameters. */
static int is_json(nno_req *req) {
  static const char mt[] = "application/json";
  const size_t n = sizeof mt - 1;
  nno_str ct;
  if (nno__sdk_api->req_header(req, "Content-Type", &ct) != NNO_OK) return 0;
  if (ct.len < n || strncasecmp(ct.ptr, mt, n) != 0) return 0;
  return ct.len == n || ct.ptr[n] == ';' || ct.ptr[n] == ' ' ||
         ct.ptr[n] == '\t';
}

int nno_body_object(nno_req *req, size_t max_bytes, unsigned flags,
                    json_t **out) {
  *out = NULL;
  if ((flags & NNO_BODY_JSON_TYPE) && !is_json(req))
    return nno_problem(req, 415, NULL, "send the body as application/json"), -1;
  nno_str b = nno__sdk_api->req_body(req);
  if (max_bytes && b.len > max_bytes)
    return nno_problem(req, 413, NULL, "the body is over %zu bytes", max_bytes),
           -1;
  if (b.len == 0 && (flags & NNO_BODY_EMPTY_OK)) {
    if (!(*out = json_object()))
      return nno_problem(req, 500, NULL, "out of memory"), -1;
    return 0;
  }
  json_error_t e;
  json_t *v = json_loadb(b.ptr ? b.ptr : "", b.len,
                         JSON_REJECT_DUPLICATES | JSON_DECODE_ANY, &e);
  if (!v)
    return nno_problem(req, 400, NULL, "invalid JSON at line %d column %d: %s",
                       e.line, e.column, e.text),
           -1;
  if (!json_is_object(v)) {
    json_decref(v);
    return nno_problem(req, 422, NULL, "the body must be a JSON object"), -1;
  }
  *out = v;
  return 0;
}

/* ---- field tables -------------------------------------------------------- */

const char *nno_fields_unknown(const json_t *obj, const nno_field *f,
                               size_t n) {
  const char *key;
  json_t *val;
  json_object_foreach((json_t *)obj, key, val) {
    size_t i = 0;
    while (i < n && strcmp(f[i].name, key) != 0) i++;
    if (i == n) return key;
  }
  return NULL;
}

/* What a type accepts, for messages; NULL for NNO_FIELD_ANY. */
static const char *expected(int type) {
  switch (type) {
  case NNO_FIELD_STRING:
    return "a string";
  case NNO_FIELD_STRING_OR_NULL:
    return "a string or null";
  case NNO_FIELD_BOOL:
    return "true or false";
  case NNO_FIELD_INTEGER:
    return "an integer";
  case NNO_FIELD_ARRAY:
    return "an array";
  case NNO_FIELD_OBJECT:
    return "an object";
  default:
    return NULL;
  }
}

static int type_ok(int type, const json_t *v) {
  switch (type) {
  case NNO_FIELD_STRING:
    return json_is_string(v);
  case NNO_FIELD_STRING_OR_NULL:
    return json_is_string(v) || json_is_null(v);
  case NNO_FIELD_BOOL:
    return json_is_boolean(v);
  case NNO_FIELD_INTEGER:
    return json_is_integer(v);
  case NNO_FIELD_ARRAY:
    return json_is_array(v);
  case NNO_FIELD_OBJECT:
    return json_is_object(v);
  default:
    return 1;
  }
}

int nno_fields_check(nno_req *req, const json_t *obj, const nno_field *f,
                     size_t n) {
  const char *unknown = nno_fields_unknown(obj, f, n);
  if (unknown) {
    nno_problem(req, 422, unknown, "field \"%.64s\": unknown field", unknown);
    return -1;
  }
  for (size_t i = 0; i < n; i++) {
    const json_t *v = json_object_get(obj, f[i].name);
    if (!v) {
      if (!f[i].required) continue;
      nno_problem(req, 422, f[i].name, "field \"%s\": is required", f[i].name);
      return -1;
    }
    if (!type_ok(f[i].type, v)) {
      nno_problem(req, 422, f[i].name, "field \"%s\": expected %s, got %s",
                  f[i].name, expected(f[i].type), nno_json_type_name(v));
      return -1;
    }
    size_t len = json_is_string(v) ? json_string_length(v) : 0;
    if (json_is_string(v) && f[i].max_bytes &&
        (len < f[i].min_bytes || len > f[i].max_bytes)) {
      nno_problem(req, 422, f[i].name,
                  "field \"%s\": expected %zu to %zu bytes, got %zu", f[i].name,
                  f[i].min_bytes, f[i].max_bytes, len);
      return -1;
    }
  }
  return 0;
}
