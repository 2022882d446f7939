/* Unit tests for the plugin SDK (plugin-api/sdk), linked without the host:
 * a fake nno_host_api records what the SDK writes to one fake request. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>
#include <jansson.h>

#include <nno/sdk.h>

/* ---- the fake host ------------------------------------------------------- */

/* One request: what it carries, and what the SDK answered. */
struct nno_req {
  const char *params[4][2]; /* route parameters: name, value */
  const char *query[4][2];  /* query parameters, decoded */
  size_t query_len[4];      /* their lengths (0: strlen) */
  const char *content_type; /* NULL: no Content-Type */
  const char *if_match;     /* NULL: no If-Match */
  const char *body;
  size_t body_len;
  nno_caller caller;
  int json_fails; /* res_json answers NNO_EINVAL, like an over-bound body */
  /* the answer */
  int status;
  char headers[1024]; /* "Name: value\n"... */
  char out[4096];
  size_t out_len;
  int problems; /* res_problem calls */
};

static nno_str view(const char *s, size_t n) {
  nno_str v = {s, n ? n : strlen(s)};
  return v;
}

static int f_req_param(nno_req *r, const char *name, nno_str *out) {
  for (int i = 0; i < 4 && r->params[i][0]; i++)
    if (strcmp(r->params[i][0], name) == 0) {
      out->ptr = r->params[i][1];
      out->len = strlen(r->params[i][1]);
      return NNO_OK;
    }
  return NNO_ENOENT;
}

static int f_req_query_param(nno_req *r, const char *name, nno_str *out) {
  for (int i = 0; i < 4 && r->query[i][0]; i++)
    if (strcmp(r->query[i][0], name) == 0) {
      *out = r->query_len[i]
                 ? view(r->query[i][1], r->query_len[i])
                 : (nno_str){r->query[i][1], strlen(r->query[i][1])};
      return NNO_OK;
    }
  return NNO_ENOENT;
}

static int f_req_header(nno_req *r, const char *name, nno_str *out) {
  if (strcmp(name, "If-Match") == 0 && r->if_match) {
    *out = (nno_str){r->if_match, strlen(r->if_match)};
    return NNO_OK;
  }
  if (strcmp(name, "Content-Type") != 0 || !r->content_type) return NNO_ENOENT;
  *out = view(r->content_type, 0);
  return NNO_OK;
}

static nno_str f_req_body(nno_req *r) {
  nno_str v = {r->body, r->body_len};
  return v;
}

static nno_str f_req_id(nno_req *r) {
  (void)r;
  return view("rid-1", 0);
}

static int f_req_caller(nno_req *r, nno_caller *out) {
  *out = r->caller;
  return NNO_OK;
}

static int f_res_status(nno_req *r, int status) {
  r->status = status;
  return NNO_OK;
}

static int f_res_header(nno_req *r, const char *name, const char *value) {
  size_t n = strlen(r->headers);
  snprintf(r->headers + n, sizeof r->headers - n, "%s: %s\n", name, value);
  return NNO_OK;
}

static int f_res_write(nno_req *r, const void *data, size_t len) {
  assert_true(r->out_len + len < sizeof r->out);
  memcpy(r->out + r->out_len, data, len);
  r->out_len += len;
  r->out[r->out_len] = '\0';
  return NNO_OK;
}

static int f_res_json(nno_req *r, int status, const char *json, size_t len) {
  if (r->json_fails) return NNO_EINVAL;
  r->status = status;
  r->headers[0] = '\0';
  f_res_header(r, "Content-Type", "application/json");
  r->out_len = 0;
  return f_res_write(r, json, len);
}

/* Like the host: replaces what was written, one JSON object. */
static int f_res_problem(nno_req *r, int status, const char *title,
                         const char *detail) {
  json_t *o = json_pack("{s:s, s:s, s:i, s:s, s:s}", "type", "about:blank",
                        "title", title, "status", status, "detail",
                        detail ? detail : "", "request_id", "rid-1");
  char *text = json_dumps(o, JSON_COMPACT);
  json_decref(o);
  r->status = status;
  r->headers[0] = '\0';
  f_res_header(r, "Content-Type", "application/problem+json");
  r->out_len = 0;
  f_res_write(r, text, strlen(text));
  free(text);
  r->problems++;
  return NNO_OK;
}

/* The last log line, to check what is logged rather than sent. */
static char last_log[512];
static int last_level;
static void f_log(nno_plugin *p, int level, const char *fmt, ...) {
  va_list ap;
  (void)p;
  va_start(ap, fmt);
  vsnprintf(last_log, sizeof last_log, fmt, ap);
  va_end(ap);
  last_level = level;
}

static const char *f_err_name(int err) {
  switch (err) {
#define NAME(n, v, m) \
  case NNO_##n: return "NNO_" #n;
    NNO_ERRNO_MAP(NAME)
#undef NAME
  default: return "?";
  }
}

static nno_host_api fake = {
    .size = sizeof(nno_host_api),
    .abi_major = NNO_ABI_MAJOR,
    .abi_minor = NNO_ABI_MINOR,
    .req_param = f_req_param,
    .req_query_param = f_req_query_param,
    .req_header = f_req_header,
    .req_body = f_req_body,
    .req_id = f_req_id,
    .res_status = f_res_status,
    .res_header = f_res_header,
    .res_write = f_res_write,
    .res_json = f_res_json,
    .res_problem = f_res_problem,
    .req_caller = f_req_caller,
    .log = f_log,
    .err_name = f_err_name,
};

static int setup(void **st) {
  (void)st;
  nno_sdk_init((nno_plugin *)&fake, &fake);
  return 0;
}

/* The answer's body as JSON (released by the caller). */
static json_t *answer(const nno_req *r) {
  json_error_t e;
  json_t *v = json_loads(r->out, 0, &e);
  if (!v) fail_msg("answer is not JSON: %s (%s)", r->out, e.text);
  return v;
}

static const char *str(const json_t *o, const char *key) {
  return json_string_value(json_object_get(o, key));
}

/* Assert r answered a problem with this status, field (NULL: none) and
 * detail (NULL: any). */
static void assert_problem(const nno_req *r, int status, const char *field,
                           const char *detail) {
  assert_int_equal(r->status, status);
  assert_non_null(
      strstr(r->headers, "Content-Type: application/problem+json\n"));
  json_t *o = answer(r);
  assert_int_equal(json_integer_value(json_object_get(o, "status")), status);
  assert_string_equal(str(o, "title"), nno_status_title(status));
  assert_string_equal(str(o, "request_id"), "rid-1");
  if (field)
    assert_string_equal(str(o, "field"), field);
  else
    assert_null(json_object_get(o, "field"));
  if (detail) assert_string_equal(str(o, "detail"), detail);
  json_decref(o);
}

/* ---- problems ------------------------------------------------------------ */

static void test_titles(void **st) {
  (void)st;
  assert_string_equal(nno_status_title(404), "Not Found");
  assert_string_equal(nno_status_title(413), "Content Too Large");
  assert_string_equal(nno_status_title(415), "Unsupported Media Type");
  assert_string_equal(nno_status_title(422), "Unprocessable Content");
  assert_string_equal(nno_status_title(429), "Too Many Requests");
  assert_string_equal(nno_status_title(503), "Service Unavailable");
  assert_string_equal(nno_status_title(507), "Insufficient Storage");
  assert_string_equal(nno_status_title(599), "Internal Server Error");
  assert_string_equal(nno_status_title(418), "Bad Request");
}

static void test_problem(void **st) {
  (void)st;
  nno_req r = {0};
  assert_int_equal(nno_problem(&r, 404, NULL, "no platform \"%s\"", "x"),
                   NNO_OK);
  assert_problem(&r, 404, NULL, "no platform \"x\"");
  assert_int_equal(r.problems, 1);
  assert_null(strstr(r.headers, "WWW-Authenticate"));

  /* A field: written by hand, with the same members and the field. */
  nno_req f = {0};
  nno_problem(&f, 422, "name", "field \"%s\": is required", "name");
  assert_problem(&f, 422, "name", "field \"name\": is required");
  assert_int_equal(f.problems, 0);

  /* A 401 says how to authenticate. */
  nno_req u = {0};
  nno_problem(&u, 401, NULL, "sign in first");
  assert_problem(&u, 401, NULL, "sign in first");
  assert_non_null(
      strstr(u.headers, "WWW-Authenticate: Bearer realm=\"nno\"\n"));
}

static void test_problem_detail_bound(void **st) {
  (void)st;
  char big[3000];
  memset(big, 'x', sizeof big - 1);
  big[sizeof big - 1] = '\0';
  nno_req r = {0};
  nno_problem(&r, 400, NULL, "%s", big);
  json_t *o = answer(&r);
  assert_int_equal(strlen(str(o, "detail")), NNO_PROBLEM_DETAIL_MAX - 1);
  json_decref(o);
}

static void test_problem_retry(void **st) {
  (void)st;
  nno_req r = {0};
  nno_problem_retry(&r, 429, 7, "too many: %d", 3);
  assert_problem(&r, 429, NULL, "too many: 3");
  assert_non_null(strstr(r.headers, "Retry-After: 7\n"));
  nno_req z = {0};
  nno_problem_retry(&z, 503, 0, "busy");
  assert_non_null(strstr(z.headers, "Retry-After: 1\n"));
}

/* Each resource error answers the status the ABI documents; the
 * provider's message goes to the log, never into the answer. */
static void test_problem_storage(void **st) {
  (void)st;
  static const struct {
    int err, status;
  } map[] = {{NNO_EINVAL, 400},   {NNO_EREFUSED, 409}, {NNO_ETOOBIG, 413},
             {NNO_EQUOTA, 507},   {NNO_ENOENT, 503},   {NNO_ENOTSUP, 503},
             {NNO_EBUSY, 503},    {NNO_ETIMEDOUT, 504}, {NNO_EIO, 500},
             {NNO_ENOMEM, 500}};
  for (size_t i = 0; i < sizeof map / sizeof *map; i++) {
    nno_req r = {0};
    assert_int_equal(nno_storage_status(map[i].err), map[i].status);
    assert_int_equal(nno_problem_storage(&r, map[i].err, "the notes",
                                         "/var/secret/path.db: locked"),
                     NNO_OK);
    assert_problem(&r, map[i].status, NULL, NULL);
    assert_null(strstr(r.out, "/var/secret"));
    assert_non_null(strstr(r.out, "the notes: "));
    assert_non_null(strstr(last_log, "/var/secret/path.db: locked"));
    assert_int_equal(last_level,
                     map[i].status == 500 ? NNO_LOG_ERROR : NNO_LOG_INFO);
    if (map[i].status == 503)
      assert_non_null(strstr(r.headers, "Retry-After: 1\n"));
    else
      assert_null(strstr(r.headers, "Retry-After"));
  }
  nno_req q = {0};
  nno_problem_storage(&q, NNO_EQUOTA, "the files", NULL);
  assert_problem(&q, 507, NULL,
                 "the files: the platform's storage quota would be exceeded");
}

/* ---- JSON ---------------------------------------------------------------- */

static void test_send_json(void **st) {
  (void)st;
  nno_req r = {0};
  assert_int_equal(nno_send_json(&r, 201, json_pack("{s:i}", "a", 1)), NNO_OK);
  assert_int_equal(r.status, 201);
  assert_string_equal(r.out, "{\"a\":1}");
  /* A failed json_pack, and a body the host refuses, answer 500. */
  nno_req n = {0};
  nno_send_json(&n, 200, NULL);
  assert_problem(&n, 500, NULL, "out of memory");
  nno_req b = {.json_fails = 1};
  nno_send_json(&b, 200, json_pack("{s:i}", "a", 1));
  assert_problem(&b, 500, NULL, "cannot write the response");
}

static int read_body(nno_req *r, const char *body, const char *ctype,
                     size_t max, unsigned flags, json_t **out) {
  r->body = body;
  r->body_len = strlen(body);
  r->content_type = ctype;
  return nno_body_object(r, max, flags, out);
}

static void test_body_object(void **st) {
  (void)st;
  json_t *o;
  nno_req r = {0};
  assert_int_equal(read_body(&r, "{\"a\":1}", NULL, 0, 0, &o), 0);
  assert_int_equal(json_integer_value(json_object_get(o, "a")), 1);
  json_decref(o);
  assert_int_equal(r.status, 0); /* nothing answered */

  nno_req bad = {0};
  assert_int_equal(read_body(&bad, "{\"a\":", NULL, 0, 0, &o), -1);
  assert_null(o);
  assert_problem(&bad, 400, NULL, NULL);
  json_t *p = answer(&bad);
  assert_non_null(strstr(str(p, "detail"), "invalid JSON at line 1 column"));
  json_decref(p);

  nno_req dup = {0};
  assert_int_equal(read_body(&dup, "{\"a\":1,\"a\":2}", NULL, 0, 0, &o), -1);
  assert_int_equal(dup.status, 400);

  static const char *const not_objects[] = {"[1]", "\"x\"", "3", "null"};
  for (size_t i = 0; i < 4; i++) {
    nno_req n = {0};
    assert_int_equal(read_body(&n, not_objects[i], NULL, 0, 0, &o), -1);
    assert_problem(&n, 422, NULL, "the body must be a JSON object");
  }

  /* Empty: invalid JSON, unless NNO_BODY_EMPTY_OK. */
  nno_req e = {0};
  assert_int_equal(read_body(&e, "", NULL, 0, 0, &o), -1);
  assert_int_equal(e.status, 400);
  nno_req e2 = {0};
  assert_int_equal(read_body(&e2, "", NULL, 0, NNO_BODY_EMPTY_OK, &o), 0);
  assert_true(json_is_object(o) && json_object_size(o) == 0);
  json_decref(o);
}

static void test_body_bounds_and_type(void **st) {
  (void)st;
  json_t *o;
  nno_req big = {0};
  assert_int_equal(read_body(&big, "{\"a\":\"0123456789\"}", NULL, 10, 0, &o),
                   -1);
  assert_problem(&big, 413, NULL, "the body is over 10 bytes");
  nno_req fits = {0};
  assert_int_equal(read_body(&fits, "{\"a\":\"01\"}", NULL, 10, 0, &o), 0);
  json_decref(o);

  static const char *const refused[] = {NULL, "text/plain", "application/jsonx",
                                        "application/x-www-form-urlencoded"};
  for (size_t i = 0; i < 4; i++) {
    nno_req r = {0};
    assert_int_equal(read_body(&r, "{}", refused[i], 0, NNO_BODY_JSON_TYPE, &o),
                     -1);
    assert_problem(&r, 415, NULL, "send the body as application/json");
  }
  static const char *const taken[] = {"application/json",
                                      "Application/JSON; charset=utf-8",
                                      "application/json ;x=y"};
  for (size_t i = 0; i < 3; i++) {
    nno_req r = {0};
    assert_int_equal(read_body(&r, "{}", taken[i], 0, NNO_BODY_JSON_TYPE, &o),
                     0);
    json_decref(o);
  }
}

static const nno_field fields[] = {
    NNO_FIELD("id", NNO_FIELD_STRING, 0),
    NNO_FIELD_STR("email", 1, 3, 8),
    {"name", NNO_FIELD_STRING_OR_NULL, 0, 1, 4},
    NNO_FIELD("on", NNO_FIELD_BOOL, 0),
    NNO_FIELD("n", NNO_FIELD_INTEGER, 0),
    NNO_FIELD("tags", NNO_FIELD_ARRAY, 0),
    NNO_FIELD("meta", NNO_FIELD_OBJECT, 0),
    NNO_FIELD("any", NNO_FIELD_ANY, 0),
};
#define NFIELDS (sizeof fields / sizeof *fields)

/* Check `json` against the table: 0, or -1 with the answer in *r. */
static int check(nno_req *r, const char *json) {
  json_t *o = json_loads(json, 0, NULL);
  assert_non_null(o);
  int rc = nno_fields_check(r, o, fields, NFIELDS);
  json_decref(o);
  return rc;
}

static void test_fields(void **st) {
  (void)st;
  nno_req r = {0};
  assert_int_equal(check(&r,
                         "{\"email\":\"a@b\",\"name\":null,\"on\":true,"
                         "\"n\":3,\"tags\":[],\"meta\":{},\"any\":null}"),
                   0);
  assert_int_equal(r.status, 0);

  static const struct {
    const char *body, *field, *detail;
  } bad[] = {
      {"{\"email\":\"a@b\",\"role\":1}", "role",
       "field \"role\": unknown field"},
      {"{}", "email", "field \"email\": is required"},
      {"{\"email\":5}", "email",
       "field \"email\": expected a string, got a number"},
      {"{\"email\":null}", "email",
       "field \"email\": expected a string, got null"},
      {"{\"email\":\"ab\"}", "email",
       "field \"email\": expected 3 to 8 bytes, got 2"},
      {"{\"email\":\"abcdefghi\"}", "email",
       "field \"email\": expected 3 to 8 bytes, got 9"},
      {"{\"email\":\"a@b\",\"name\":\"\"}", "name",
       "field \"name\": expected 1 to 4 bytes, got 0"},
      {"{\"email\":\"a@b\",\"name\":[]}", "name",
       "field \"name\": expected a string or null, got an array"},
      {"{\"email\":\"a@b\",\"on\":1}", "on",
       "field \"on\": expected true or false, got a number"},
      {"{\"email\":\"a@b\",\"n\":1.5}", "n",
       "field \"n\": expected an integer, got a number"},
      {"{\"email\":\"a@b\",\"tags\":{}}", "tags",
       "field \"tags\": expected an array, got an object"},
      {"{\"email\":\"a@b\",\"meta\":\"x\"}", "meta",
       "field \"meta\": expected an object, got a string"},
      {"{\"email\":\"a@b\",\"id\":false}", "id",
       "field \"id\": expected a string, got a boolean"},
      /* Unknown members first, then the table's order. */
      {"{\"n\":\"x\",\"zz\":1}", "zz", "field \"zz\": unknown field"},
      {"{\"n\":\"x\"}", "email", "field \"email\": is required"},
  };
  for (size_t i = 0; i < sizeof bad / sizeof *bad; i++) {
    nno_req b = {0};
    assert_int_equal(check(&b, bad[i].body), -1);
    assert_problem(&b, 422, bad[i].field, bad[i].detail);
  }

  json_t *o = json_loads("{\"email\":1,\"who\":2}", 0, NULL);
  assert_string_equal(nno_fields_unknown(o, fields, NFIELDS), "who");
  json_object_del(o, "who");
  assert_null(nno_fields_unknown(o, fields, NFIELDS));
  json_decref(o);
}

/* ---- ids, names, parameters ---------------------------------------------- */

static int id(const char *s, size_t min) {
  return nno_id_valid(s, strlen(s), min, 32);
}

static void test_ids(void **st) {
  (void)st;
  assert_true(id("acme", 3));
  assert_true(id("a-1", 3));
  assert_true(id("a", 1));
  assert_true(id("0123456789abcdef0123456789abcdef", 3));
  assert_false(id("0123456789abcdef0123456789abcdef0", 3));
  assert_false(id("ab", 3));
  assert_false(id("", 0));
  assert_false(id("-ab", 1));
  assert_false(id("ab-", 1));
  assert_false(id("Acme", 1));
  assert_false(id("a_b", 1));
  assert_false(id("a.b", 1));
  assert_false(nno_id_valid("ab\0c", 4, 1, 32));
  assert_false(nno_id_valid(NULL, 0, 0, 32));

  nno_req r = {0};
  assert_int_equal(nno_check_id(&r, "id", "acme", 3, 32), 0);
  assert_int_equal(r.status, 0);
  nno_req b = {0};
  assert_int_equal(nno_check_id(&b, "id", "A!", 3, 32), -1);
  assert_problem(&b, 422, "id",
                 "field \"id\": expected 3 to 32 characters of [a-z0-9-], "
                 "got \"A!\"");
  nno_req e = {0};
  nno_check_id(&e, "parent", "-ab", 2, 32);
  assert_problem(&e, 422, "parent",
                 "field \"parent\": expected 2 to 32 characters of [a-z0-9-] "
                 "starting and ending with a letter or digit, got \"-ab\"");
}

static void test_names(void **st) {
  (void)st;
  nno_req r = {0};
  assert_int_equal(nno_check_name(&r, "name", "Zoë", 3), 0); /* 3 characters */
  nno_req l = {0};
  assert_int_equal(nno_check_name(&l, "name", "Zoë!", 3), -1);
  assert_problem(&l, 422, "name",
                 "field \"name\": expected 1 to 3 characters, "
                 "got 4");
  nno_req e = {0};
  assert_int_equal(nno_check_name(&e, "name", "", 3), -1);
  assert_problem(&e, 422, "name",
                 "field \"name\": expected 1 to 3 characters, "
                 "got 0");
  nno_req c = {0};
  assert_int_equal(nno_check_name(&c, "owner", "a\tb", 30), -1);
  assert_problem(&c, 422, "owner",
                 "field \"owner\": control characters are not allowed");
}

static void test_quote(void **st) {
  (void)st;
  char q[256];
  nno_quote("a\"b\\c\n", q, sizeof q);
  assert_string_equal(q, "\"a\\\"b\\\\c\\u000a\"");
  char long_s[100];
  memset(long_s, 'y', 99);
  long_s[99] = '\0';
  nno_quote(long_s, q, sizeof q);
  assert_int_equal(strlen(q), 40 + 3 + 2);
  assert_string_equal(q + 41, "...\"");
  /* The cut never splits a character: 39 ASCII bytes, then "é". */
  char utf[64];
  memset(utf, 'z', 39);
  strcpy(utf + 39, "\xc3\xa9tail");
  nno_quote(utf, q, sizeof q);
  assert_int_equal(strlen(q), 39 + 3 + 2);
  /* A small buffer is never overrun. */
  char small[16];
  nno_quote(long_s, small, sizeof small);
  assert_true(strlen(small) < sizeof small);
}

static void test_params(void **st) {
  (void)st;
  char out[8];
  nno_req r = {.params = {{"id", "acme"}, {"long", "0123456789"}, {"e", ""}}};
  assert_int_equal(nno_param_copy(&r, "id", out, sizeof out), 0);
  assert_string_equal(out, "acme");
  /* Too long: -1, with the first bytes kept for a message. */
  assert_int_equal(nno_param_copy(&r, "long", out, sizeof out), -1);
  assert_string_equal(out, "0123456");
  assert_int_equal(nno_param_copy(&r, "e", out, sizeof out), -1);
  assert_string_equal(out, "");
  assert_int_equal(nno_param_copy(&r, "none", out, sizeof out), -1);
  assert_string_equal(out, "");
  assert_int_equal(r.status, 0); /* nothing answered */

  nno_req q = {.query = {{"a", "x y"}, {"long", "0123456789"}, {"nul", "a\0b"}},
               .query_len = {0, 0, 3}};
  assert_int_equal(nno_query_copy(&q, "a", out, sizeof out), 1);
  assert_string_equal(out, "x y");
  assert_int_equal(nno_query_copy(&q, "b", out, sizeof out), 0);
  assert_string_equal(out, "");
  assert_int_equal(q.status, 0);
  assert_int_equal(nno_query_copy(&q, "long", out, sizeof out), -1);
  assert_problem(&q, 422, "long", "field \"long\": too long");
  nno_req n = {.query = {{"nul", "a\0b"}}, .query_len = {3}};
  assert_int_equal(nno_query_copy(&n, "nul", out, sizeof out), -1);
  assert_problem(&n, 422, "nul", "field \"nul\": contains a NUL byte");
}

/* ---- pages --------------------------------------------------------------- */

static void test_limit_parse(void **st) {
  (void)st;
  static const struct {
    const char *s;
    int ok, v;
  } cases[] = {{"1", 1, 1},   {"500", 1, 500}, {"0001", 1, 1},
               {"0", 0, 0},   {"501", 0, 0},   {"", 0, 0},
               {"abc", 0, 0}, {"2x", 0, 0},    {"+1", 0, 0},
               {" 1", 0, 0},  {"-1", 0, 0},    {"99999999999999999999", 0, 0}};
  for (size_t i = 0; i < sizeof cases / sizeof *cases; i++) {
    int v = -7;
    assert_int_equal(nno_limit_parse(cases[i].s, strlen(cases[i].s), 500, &v),
                     cases[i].ok);
    assert_int_equal(v, cases[i].ok ? cases[i].v : -7);
  }
  /* The length bounds the text: bytes past it are not read. */
  int v;
  assert_true(nno_limit_parse("12x", 2, 500, &v) && v == 12);
}

static void test_cursor_vectors(void **st) {
  (void)st;
  /* RFC 4648 section 10, in the URL-safe alphabet and without padding. */
  static const char *const vec[][2] = {
      {"f", "Zg"},        {"fo", "Zm8"},        {"foo", "Zm9v"},
      {"foob", "Zm9vYg"}, {"fooba", "Zm9vYmE"}, {"foobar", "Zm9vYmFy"},
      {"\xfb\xff", "-_8"}};
  char enc[32], dec[32];
  size_t n;
  for (size_t i = 0; i < sizeof vec / sizeof *vec; i++) {
    assert_int_equal(
        nno_cursor_encode(vec[i][0], strlen(vec[i][0]), enc, sizeof enc), 0);
    assert_string_equal(enc, vec[i][1]);
    assert_int_equal(nno_cursor_decode(enc, strlen(enc), dec, sizeof dec, &n),
                     0);
    assert_int_equal(n, strlen(vec[i][0]));
    assert_string_equal(dec, vec[i][0]);
  }
  /* Every length round-trips. */
  char key[NNO_PAGE_KEY_MAX], big[NNO_CURSOR_MAX], back[NNO_PAGE_KEY_MAX];
  for (size_t len = 1; len < sizeof key; len++) {
    for (size_t i = 0; i < len; i++) key[i] = (char)(1 + (i * 37 + len) % 255);
    assert_int_equal(nno_cursor_encode(key, len, big, sizeof big), 0);
    assert_int_equal(nno_cursor_decode(big, strlen(big), back, sizeof back, &n),
                     0);
    assert_int_equal(n, len);
    assert_memory_equal(back, key, len);
  }
  /* Over the buffer: refused, not cut. */
  assert_int_equal(nno_cursor_encode("foobar", 6, enc, 8), -1);
  assert_int_equal(nno_cursor_encode("foobar", 6, enc, 9), 0);
}

static void test_cursor_refused(void **st) {
  (void)st;
  static const char *const bad[] = {
      "",      /* empty */
      "Z",     /* a length no encoding has */
      "Zh",    /* leftover bits not zero: "Zg" is the cursor of "f" */
      "Zm9",   /* the same with two bytes */
      "Zg==",  /* padding */
      "Zm+v",  /* the standard alphabet */
      "Zm/v",  /* ditto */
      "Zm 9v", /* a space */
      "AA",    /* decodes to a NUL byte */
      "YQBi",  /* "a\0b" */
  };
  char out[32];
  for (size_t i = 0; i < sizeof bad / sizeof *bad; i++)
    assert_int_equal(
        nno_cursor_decode(bad[i], strlen(bad[i]), out, sizeof out, NULL), -1);
  /* Longer than the buffer. */
  assert_int_equal(nno_cursor_decode("Zm9vYmFy", 8, out, 6, NULL), -1);
  assert_string_equal(out, "");
  assert_int_equal(nno_cursor_decode("Zm9vYmFy", 8, out, 7, NULL), 0);
}

static void test_page_read(void **st) {
  (void)st;
  int limit;
  char after[64];
  nno_req d = {0};
  assert_int_equal(nno_page_read(&d, 50, 500, &limit, after, sizeof after), 0);
  assert_int_equal(limit, 50);
  assert_string_equal(after, "");

  nno_req g = {.query = {{"limit", "7"}, {"cursor", "Zm9vYmFy"}}};
  assert_int_equal(nno_page_read(&g, 50, 500, &limit, after, sizeof after), 0);
  assert_int_equal(limit, 7);
  assert_string_equal(after, "foobar");

  nno_req l = {.query = {{"limit", "0"}}};
  assert_int_equal(nno_page_read(&l, 50, 500, &limit, after, sizeof after), -1);
  assert_problem(
      &l, 422, "limit",
      "field \"limit\": expected an integer from 1 to 500, got \"0\"");
  nno_req c = {.query = {{"cursor", "Zh"}}};
  assert_int_equal(nno_page_read(&c, 50, 500, &limit, after, sizeof after), -1);
  assert_problem(&c, 422, "cursor",
                 "field \"cursor\": not a cursor this API returned");
}

/* A page of `total` items with limit `limit`, as a store would fill it
 * (limit + 1 rows asked). */
static json_t *page(const char *limit, int total) {
  nno_req r = {.query = {{"limit", limit}}};
  nno_pager pg;
  char after[64];
  assert_int_equal(nno_pager_start(&r, &pg, 50, 500, after, sizeof after), 0);
  for (int i = 0; i < total && i < pg.limit + 1; i++) {
    char key[16];
    snprintf(key, sizeof key, "k%d", i);
    if (nno_pager_full(&pg)) break;
    assert_int_equal(nno_pager_add(&pg, json_integer(i), key), NNO_OK);
  }
  assert_int_equal(nno_pager_send(&r, &pg), NNO_OK);
  assert_null(pg.items);
  nno_pager_free(&pg); /* harmless after send */
  assert_int_equal(r.status, 200);
  return answer(&r);
}

static void test_pager(void **st) {
  (void)st;
  json_t *p = page("2", 5);
  assert_int_equal(json_array_size(json_object_get(p, "items")), 2);
  char enc[16];
  nno_cursor_encode("k1", 2, enc, sizeof enc);
  assert_string_equal(str(p, "next_cursor"), enc);
  json_decref(p);

  p = page("5", 5); /* exactly a page: no next one */
  assert_int_equal(json_array_size(json_object_get(p, "items")), 5);
  assert_true(json_is_null(json_object_get(p, "next_cursor")));
  json_decref(p);

  /* A key over the bound is refused (the item is released). */
  nno_pager pg = {.items = json_array()};
  char key[NNO_PAGE_KEY_MAX + 1];
  memset(key, 'k', sizeof key - 1);
  key[sizeof key - 1] = '\0';
  assert_int_equal(nno_pager_add(&pg, json_integer(1), key), NNO_ETOOBIG);
  assert_int_equal(nno_pager_add(&pg, NULL, "k"), NNO_ENOMEM);
  assert_int_equal(pg.n, 0);
  nno_pager_free(&pg);
}

/* ---- the caller ---------------------------------------------------------- */

static void test_actor(void **st) {
  (void)st;
  char a[NNO_ACTOR_MAX];
  nno_req none = {0};
  nno_caller_actor(&none, a, sizeof a);
  assert_string_equal(a, "operator");
  nno_req op = {
      .caller = {.kind = NNO_CALLER_OPERATOR, .subject = {"operator", 8}}};
  nno_caller_actor(&op, a, sizeof a);
  assert_string_equal(a, "operator");
  nno_req key = {.caller = {.kind = NNO_CALLER_KEY,
                            .platform = {"acme", 4},
                            .subject = {"0123456789abcdefXX", 16}}};
  nno_caller_actor(&key, a, sizeof a);
  assert_string_equal(a, "key:0123456789abcdef");
  nno_req user = {.caller = {.kind = NNO_CALLER_USER,
                             .platform = {"acme", 4},
                             .subject = {"u1", 2}}};
  nno_caller_actor(&user, a, sizeof a);
  assert_string_equal(a, "user:acme/u1");
  char small[8];
  nno_caller_actor(&user, small, sizeof small);
  assert_string_equal(small, "user:ac");

  /* A host of ABI 1.0 has no req_caller: the operator. */
  nno_host_api old = fake;
  old.size = offsetof(nno_host_api, req_set_caller);
  nno_sdk_init((nno_plugin *)&old, &old);
  nno_caller_actor(&key, a, sizeof a);
  assert_string_equal(a, "operator");
  nno_sdk_init((nno_plugin *)&fake, &fake);
  assert_ptr_equal(nno_sdk_api(), &fake);
}

/* ---- client keys ---- */

static void addr_is(const char *addr, const char *want) {
  char out[64];
  size_t n = nno_client_key(addr, strlen(addr), out, sizeof out);
  assert_string_equal(out, want);
  assert_int_equal(n, strlen(want));
}

static void test_client_key(void **st) {
  (void)st;
  /* IPv4 stays whole; so does an IPv4-mapped IPv6 address. */
  addr_is("127.0.0.1", "127.0.0.1");
  addr_is("203.0.113.7", "203.0.113.7");
  addr_is("::ffff:203.0.113.7", "::ffff:203.0.113.7");
  /* IPv6: the /64, whatever the interface identifier. */
  addr_is("2001:db8:1:2:3:4:5:6", "2001:db8:1:2::/64");
  addr_is("2001:db8:1:2::ffff", "2001:db8:1:2::/64");
  addr_is("2001:DB8:1:2:aaaa:bbbb:cccc:dddd", "2001:db8:1:2::/64");
  addr_is("::1", "0:0:0:0::/64");
  addr_is("fe80::1", "fe80:0:0:0::/64");
  /* Not an address: kept as given, truncated to fit. */
  addr_is("unknown", "unknown");
  addr_is("", "");
  char small[8];
  assert_int_equal(nno_client_key("203.0.113.7", 11, small, sizeof small), 7);
  assert_string_equal(small, "203.0.1");
  assert_int_equal(nno_client_key("2001:db8:1:2::1", 15, small, sizeof small),
                   0); /* a /64 that does not fit is no key at all */
}

/* ---- versions and "did you mean" ---------------------------------------- */

static void test_etag(void **st) {
  (void)st;
  nno_req r = {0};
  nno_etag(&r, 42);
  assert_string_equal(r.headers, "ETag: \"v42\"\n");
  memset(&r, 0, sizeof r);
  nno_etag(&r, 9007199254740993LL);
  assert_string_equal(r.headers, "ETag: \"v9007199254740993\"\n");
}

static void test_if_match(void **st) {
  (void)st;
  static const struct {
    const char *header; /* NULL: none sent */
    int64_t current;
    int want;
  } cases[] = {
      {NULL, 7, 1},                 /* no precondition */
      {"\"v7\"", 7, 1},
      {"\"v7\"", 8, 0},             /* stale */
      {"*", 123, 1},
      {" * ", 1, 1},
      {"\"v1\", \"v7\"", 7, 1},     /* a list */
      {" \"v1\" ,\t\"v7\"\t", 7, 1}, /* blanks around the tags */
      {"\"v1\", \"v2\"", 7, 0},
      {"\"v70\"", 7, 0},            /* not a prefix match */
      {"\"v7", 7, 0},               /* unterminated */
      {"v7", 7, 0},                 /* unquoted */
      {"W/\"v7\"", 7, 0},           /* weak tags never match */
      {"\"V7\"", 7, 0},
      {"", 7, 0},
      {",", 7, 0},
      {"**", 7, 0},
  };
  for (size_t i = 0; i < sizeof cases / sizeof *cases; i++) {
    nno_req r = {0};
    r.if_match = cases[i].header;
    if (nno_if_match(&r, cases[i].current) != cases[i].want)
      fail_msg("If-Match '%s' over v%lld: expected %d",
               cases[i].header ? cases[i].header : "(none)",
               (long long)cases[i].current, cases[i].want);
    assert_int_equal(r.status, 0); /* answers nothing */
    assert_string_equal(r.headers, "");
  }
}

static void test_nearest(void **st) {
  (void)st;
  static const char *const keys[] = {"users", "api_keys", "storage_bytes",
                                     "soft_pct", "grace_pct", NULL};
  assert_string_equal(nno_nearest("usres", keys, 2), "users"); /* a swap */
  assert_string_equal(nno_nearest("user", keys, 2), "users");  /* deletion */
  assert_string_equal(nno_nearest("apikeys", keys, 2), "api_keys");
  assert_string_equal(nno_nearest("storage-byte", keys, 2), "storage_bytes");
  assert_string_equal(nno_nearest("users", keys, 0), "users");
  assert_null(nno_nearest("user", keys, 0));
  assert_null(nno_nearest("requests", keys, 2)); /* nothing that near */
  assert_null(nno_nearest("", keys, 2));
  /* equals: the first listed */
  static const char *const pair[] = {"abd", "abc", NULL};
  assert_string_equal(nno_nearest("ab", pair, 2), "abd");
  assert_string_equal(nno_nearest("abc", pair, 2), "abc"); /* nearer */
  /* long words are never near, whatever the bound */
  char w[41];
  memset(w, 'a', 40);
  w[40] = '\0';
  const char *const long_keys[] = {w, NULL};
  assert_null(nno_nearest(w, long_keys, 2));
  assert_null(nno_nearest(NULL, keys, 2));
  assert_null(nno_nearest("users", NULL, 2));
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_titles),
      cmocka_unit_test(test_problem),
      cmocka_unit_test(test_problem_detail_bound),
      cmocka_unit_test(test_problem_retry),
      cmocka_unit_test(test_send_json),
      cmocka_unit_test(test_body_object),
      cmocka_unit_test(test_body_bounds_and_type),
      cmocka_unit_test(test_fields),
      cmocka_unit_test(test_ids),
      cmocka_unit_test(test_names),
      cmocka_unit_test(test_quote),
      cmocka_unit_test(test_params),
      cmocka_unit_test(test_limit_parse),
      cmocka_unit_test(test_cursor_vectors),
      cmocka_unit_test(test_cursor_refused),
      cmocka_unit_test(test_page_read),
      cmocka_unit_test(test_pager),
      cmocka_unit_test(test_actor),
      cmocka_unit_test(test_problem_storage),
      cmocka_unit_test(test_client_key),
      cmocka_unit_test(test_etag),
      cmocka_unit_test(test_if_match),
      cmocka_unit_test(test_nearest),
  };
  return cmocka_run_group_tests(tests, setup, NULL);
}
