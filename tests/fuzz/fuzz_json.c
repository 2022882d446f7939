/* JSON bodies of the operator API.
 *
 * 1. host/jsonv.c's allocation-free validator against jansson as an
 *    oracle: the same verdict on the same bytes, except where they are
 *    documented to differ —
 *      - nesting: jsonv refuses deeper than JSONV_MAX_DEPTH (128),
 *        jansson allows 2048;
 *      - numbers: jansson refuses integers outside int64 and reals that
 *        overflow a double, jsonv checks only the grammar;
 *      - NUL bytes: jansson reads one right after a number as nothing;
 *      - \uXXXX escapes: jansson refuses \u0000 (without JSON_ALLOW_NUL)
 *        and unpaired surrogates, jsonv checks only the four hex digits.
 * 2. the plugin SDK's body helpers as the registry's handlers call them
 *    (nno_body_object, nno_fields_check, nno_check_id, nno_check_name,
 *    nno_page_read, nno_if_match), on a fake host: every answer they
 *    write must be a well-formed problem document, as a client would
 *    receive it (the problem body is built like host/req.c's req_problem,
 *    with its own json_append_string). A "limit", "cursor" or "if_match"
 *    string member of the body is passed as that query parameter or
 *    header. */
#include <stdint.h>
#include <string.h>

#include <jansson.h>
#include <nno/plugin.h>

#include "fuzz.h"
#include "http_util.h"
#include "internal.h"
#include "jsonv.h"
#include "req.h"

/* ---- 1. the oracle ------------------------------------------------------ */

static size_t depth_of(const json_t *v) {
  size_t d = 0;
  if (json_is_object(v)) {
    const char *k;
    json_t *e;
    json_object_foreach((json_t *)v, k, e) {
      size_t x = depth_of(e);
      if (x > d) d = x;
    }
    return d + 1;
  }
  if (json_is_array(v)) {
    for (size_t i = 0; i < json_array_size(v); i++) {
      size_t x = depth_of(json_array_get(v, i));
      if (x > d) d = x;
    }
    return d + 1;
  }
  return 0;
}

/* Does the text hold a \u escape jansson refuses: \u0000 or a surrogate
 * that is not a high one followed by a low one? Scans strings only. */
static int has_bad_escape(const uint8_t *s, size_t n) {
  int in = 0;
  for (size_t i = 0; i < n; i++) {
    if (!in) {
      if (s[i] == '"') in = 1;
      continue;
    }
    if (s[i] == '"') {
      in = 0;
    } else if (s[i] == '\\' && i + 1 < n) {
      if (s[i + 1] == 'u' && i + 5 < n) {
        unsigned v = (unsigned)strtoul((char[5]){(char)s[i + 2], (char)s[i + 3],
                                                 (char)s[i + 4], (char)s[i + 5], 0},
                                       NULL, 16);
        if (v == 0 || (v >= 0xdc00 && v <= 0xdfff)) return 1;
        if (v >= 0xd800 && v <= 0xdbff) {
          if (!(i + 11 < n && s[i + 6] == '\\' && s[i + 7] == 'u')) return 1;
          unsigned w = (unsigned)strtoul(
              (char[5]){(char)s[i + 8], (char)s[i + 9], (char)s[i + 10],
                        (char)s[i + 11], 0},
              NULL, 16);
          if (w < 0xdc00 || w > 0xdfff) return 1;
          i += 6;
        }
        i += 5;
      } else {
        i++;
      }
    }
  }
  return 0;
}

static void oracle(const uint8_t *data, size_t size) {
  json_error_t e;
  int mine = json_valid((const char *)data, size);
  json_t *v = json_loadb((const char *)data, size, JSON_DECODE_ANY, &e);
  if (v) {
    /* jansson accepted: jsonv too, unless nested deeper than it allows,
     * or jansson swallowed a NUL byte (it reads one right after a number
     * as nothing: "[1,2\0]" loads as [1,2]). */
    if (!mine)
      FUZZ_ASSERT(depth_of(v) > JSONV_MAX_DEPTH || memchr(data, '\0', size));
    json_decref(v);
    return;
  }
  if (!mine) return;
  enum json_error_code code = json_error_code(&e);
  FUZZ_ASSERT(code == json_error_numeric_overflow ||
              has_bad_escape(data, size) || code == json_error_out_of_memory);
}

/* ---- 2. the body helpers on a fake host ---------------------------------- */

const nno_host_api *api;
reg g_reg;
void reg_refresh(void) {}

typedef struct fake {
  const char *query[2][2]; /* name, value */
  const char *if_match;
  int answered;
  int status;
} fake;

static fake F;

static void check_problem_text(const char *text, size_t n, int status) {
  FUZZ_ASSERT(json_valid(text, n));
  json_error_t e;
  json_t *o = json_loadb(text, n, 0, &e);
  FUZZ_ASSERT(o != NULL);
  FUZZ_ASSERT(json_integer_value(json_object_get(o, "status")) == status);
  FUZZ_ASSERT(json_is_string(json_object_get(o, "detail")));
  FUZZ_ASSERT(json_is_string(json_object_get(o, "request_id")));
  json_decref(o);
}

static void answered(int status) {
  FUZZ_ASSERT(!F.answered);
  FUZZ_ASSERT(status >= 400 && status <= 599);
  F.answered = 1;
  F.status = status;
}

static nno_str f_req_id(nno_req *r) {
  (void)r;
  return (nno_str){"0123456789abcdef", 16};
}

static int f_res_problem(nno_req *r, int status, const char *title,
                         const char *detail) {
  char num[16];
  buf b = {0};
  nno_str rid = f_req_id(r);
  answered(status);
  snprintf(num, sizeof num, "%d", status);
  FUZZ_ASSERT(buf_append(&b, "{\"type\":\"about:blank\",\"title\":", 30,
                         SIZE_MAX) == 0 &&
              json_append_string(&b, title, strlen(title)) == 0 &&
              buf_append(&b, ",\"status\":", 10, SIZE_MAX) == 0 &&
              buf_append(&b, num, strlen(num), SIZE_MAX) == 0 &&
              buf_append(&b, ",\"detail\":", 10, SIZE_MAX) == 0 &&
              json_append_string(&b, detail, strlen(detail)) == 0 &&
              buf_append(&b, ",\"request_id\":", 14, SIZE_MAX) == 0 &&
              json_append_string(&b, rid.ptr, rid.len) == 0 &&
              buf_append(&b, "}", 1, SIZE_MAX) == 0);
  check_problem_text(b.p, b.len, status);
  buf_free(&b);
  return 0;
}

static int f_res_status(nno_req *r, int status) {
  (void)r;
  answered(status);
  return 0;
}

static int f_res_header(nno_req *r, const char *name, const char *value) {
  (void)r;
  FUZZ_ASSERT(!strchr(name, '\n') && !strchr(value, '\n'));
  FUZZ_ASSERT(!strchr(name, '\r') && !strchr(value, '\r'));
  return 0;
}

static int f_res_write(nno_req *r, const void *data, size_t len) {
  (void)r;
  FUZZ_ASSERT(F.answered);
  check_problem_text(data, len, F.status);
  return 0;
}

static int f_req_header(nno_req *r, const char *name, nno_str *out) {
  (void)r;
  if (strcmp(name, "If-Match") == 0 && F.if_match) {
    *out = (nno_str){F.if_match, strlen(F.if_match)};
    return 0;
  }
  return NNO_ENOENT;
}

static int f_req_query_param(nno_req *r, const char *name, nno_str *out) {
  (void)r;
  for (int i = 0; i < 2; i++)
    if (F.query[i][0] && strcmp(F.query[i][0], name) == 0) {
      *out = (nno_str){F.query[i][1], strlen(F.query[i][1])};
      return 0;
    }
  return NNO_ENOENT;
}

static const uint8_t *g_body;
static size_t g_body_len;

static nno_str f_req_body(nno_req *r) {
  (void)r;
  return (nno_str){(const char *)g_body, g_body_len};
}

static const nno_host_api fake_api = {
    .size = sizeof(nno_host_api),
    .req_id = f_req_id,
    .res_problem = f_res_problem,
    .res_status = f_res_status,
    .res_header = f_res_header,
    .res_write = f_res_write,
    .req_header = f_req_header,
    .req_query_param = f_req_query_param,
    .req_body = f_req_body,
};

static const char *str_member(json_t *o, const char *k) {
  json_t *v = json_object_get(o, k);
  return json_is_string(v) ? json_string_value(v) : NULL;
}

static void body_helpers(const uint8_t *data, size_t size) {
  static const nno_field fields[] = {
      NNO_FIELD("id", NNO_FIELD_STRING, 0),
      NNO_FIELD("name", NNO_FIELD_STRING, 1),
      NNO_FIELD("class", NNO_FIELD_STRING, 0),
      NNO_FIELD("plan", NNO_FIELD_STRING, 0),
      NNO_FIELD("owner", NNO_FIELD_STRING_OR_NULL, 0),
      NNO_FIELD_STR("limit", 0, 0, 64),
      NNO_FIELD("cursor", NNO_FIELD_STRING, 0),
      NNO_FIELD("if_match", NNO_FIELD_STRING, 0)};
  nno_req *req = (nno_req *)&F; /* opaque to the helpers */
  json_t *b = NULL;
  api = &fake_api;
  nno_sdk_init(NULL, &fake_api);
  memset(&F, 0, sizeof F);
  g_body = data;
  g_body_len = size;
  if (nno_body_object(req, 0, NNO_BODY_EMPTY_OK, &b)) {
    FUZZ_ASSERT(b == NULL && F.answered);
    FUZZ_ASSERT(F.status == 400 || F.status == 413 || F.status == 422);
    return;
  }
  FUZZ_ASSERT(json_is_object(b) && !F.answered);
  if (nno_fields_check(req, b, fields, sizeof fields / sizeof *fields)) {
    FUZZ_ASSERT(F.answered && F.status == 422);
    json_decref(b);
    return;
  }
  const char *id = str_member(b, "id"), *name = str_member(b, "name");
  FUZZ_ASSERT(name != NULL);
  if (id) {
    F.answered = 0;
    int ok = hu_id_valid(id, strlen(id));
    FUZZ_ASSERT(nno_check_id(req, "id", id, STORE_PLATFORM_ID_MIN,
                             STORE_ID_MAX) == (ok ? 0 : -1));
    FUZZ_ASSERT(F.answered == !ok);
  }
  F.answered = 0;
  if (nno_check_name(req, "name", name, REG_NAME_MAX)) FUZZ_ASSERT(F.answered);
  char q[256];
  nno_quote(name, q, sizeof q);
  FUZZ_ASSERT(json_valid(q, strlen(q)));

  F.answered = 0;
  F.query[0][0] = "limit";
  F.query[0][1] = str_member(b, "limit");
  F.query[1][0] = "cursor";
  F.query[1][1] = str_member(b, "cursor");
  if (!F.query[0][1]) F.query[0][0] = NULL;
  if (!F.query[1][1]) F.query[1][0] = NULL;
  int limit = 0;
  char after[200];
  if (nno_page_read(req, REG_PAGE_DEFAULT, REG_PAGE_MAX, &limit, after,
                    sizeof after) == 0) {
    FUZZ_ASSERT(!F.answered && limit >= 1 && limit <= REG_PAGE_MAX);
    FUZZ_ASSERT(memchr(after, '\0', sizeof after) != NULL);
  } else {
    FUZZ_ASSERT(F.answered && F.status == 422);
  }
  F.if_match = str_member(b, "if_match");
  int m = nno_if_match(req, 7);
  FUZZ_ASSERT(m == 0 || m == 1);
  if (!F.if_match) FUZZ_ASSERT(m == 1);
  json_decref(b);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  oracle(data, size);
  body_helpers(data, size);
  return 0;
}
