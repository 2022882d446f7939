/* package.json and stack.json: parsing and validation with exact messages.
 * The shapes of the messages are listed in manifest.h; every one is built
 * by fail() or fail_field() below. */
#include "manifest.h"

#include <errno.h>
#include <fcntl.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <jansson.h>
#include <nno/plugin.h>
#include <nno/sdk/request.h>

#include "jsonv.h"

#define MANIFEST_FILE_MAX 1048576 /* 1 MiB */
#define MANIFEST_STR_MAX 1024
#define MANIFEST_ROUTES_MAX 256
#define MANIFEST_REQUIRES_MAX 64
#define MANIFEST_PACKAGES_MAX 256
#define NAME_MAX_LEN 64
#define SERVICE_MAX_LEN 64
#define METHOD_MAX_LEN 32
/* A rendered string keeps at most this many bytes of its JSON text. */
#define RENDER_MAX 60
#define RENDER_BUF (RENDER_MAX + 16)
#define FIELD_BUF 128

#define NAME_RULE "a name matching [a-z][a-z0-9-]{0,63}"

/* One parse: where its messages go. */
typedef struct pctx {
  const char *what;
  char *err;
} pctx;

/* ---- memory ------------------------------------------------------------ */

/* Every block a manifest owns comes from jansson's allocator, like the text
 * json_dumps() returns: one hook, json_set_alloc_funcs(), then governs all
 * of a manifest's memory (the tests fail allocation N through it). Change
 * the hook only while no manifest is alive. */
static void *m_alloc(size_t n) {
  json_malloc_t a;
  json_free_t f;
  json_get_alloc_funcs(&a, &f);
  return a(n);
}

static void m_free(void *p) {
  json_malloc_t a;
  json_free_t f;
  if (!p) return;
  json_get_alloc_funcs(&a, &f);
  f(p);
}

static void *m_calloc(size_t n, size_t size) {
  /* n is bounded by the *_MAX limits, so n * size cannot overflow. */
  void *p = m_alloc(n * size);
  if (p) memset(p, 0, n * size);
  return p;
}

static char *m_strdup(const char *s) {
  size_t n = strlen(s) + 1;
  char *d = m_alloc(n);
  if (d) memcpy(d, s, n);
  return d;
}

/* ---- messages ---------------------------------------------------------- */

NNO_PRINTF(2, 3)
static int fail(pctx *c, const char *fmt, ...) {
  va_list ap;
  va_start(ap, fmt);
  if (c->err) {
    int n = snprintf(c->err, MANIFEST_ERR_MAX, "%s: ", c->what);
    if (n >= 0 && n < MANIFEST_ERR_MAX)
      vsnprintf(c->err + n, (size_t)(MANIFEST_ERR_MAX - n), fmt, ap);
  }
  va_end(ap);
  return -1;
}

static int fail_oom(pctx *c) { return fail(c, "out of memory"); }

/* Writes `s` as a JSON string, keeping at most RENDER_MAX bytes of escaped
 * text and never splitting an escape or a UTF-8 sequence. `buf` holds
 * RENDER_BUF bytes: 2 quotes + 60 + "..." + NUL at worst. */
static void render_str(const char *s, char *buf) {
  static const char hex[] = "0123456789abcdef";
  const unsigned char *p = (const unsigned char *)s;
  size_t o = 0;
  buf[o++] = '"';
  while (*p) {
    char e[8];
    size_t n = 0, step = 1;
    if (*p == '"' || *p == '\\') {
      e[n++] = '\\';
      e[n++] = (char)*p;
    } else if (*p == '\n' || *p == '\t' || *p == '\r') {
      e[n++] = '\\';
      e[n++] = *p == '\n' ? 'n' : *p == '\t' ? 't' : 'r';
    } else if (*p < 0x20 || *p == 0x7f) {
      memcpy(e, "\\u00", 4);
      e[4] = hex[*p >> 4];
      e[5] = hex[*p & 15];
      n = 6;
    } else {
      /* A UTF-8 lead byte says how long its sequence is. */
      step = *p >= 0xf0 ? 4 : *p >= 0xe0 ? 3 : *p >= 0xc0 ? 2 : 1;
      while (n < step && p[n]) {
        e[n] = (char)p[n];
        n++;
      }
      step = n;
    }
    if (o - 1 + n > RENDER_MAX) {
      memcpy(buf + o, "...", 3);
      o += 3;
      break;
    }
    memcpy(buf + o, e, n);
    o += n;
    p += step;
  }
  buf[o++] = '"';
  buf[o] = '\0';
}

/* Writes what was found, in the form the file comment describes. */
static void render(const json_t *v, char *buf, size_t cap) {
  if (!v) {
    snprintf(buf, cap, "nothing");
  } else if (json_is_object(v)) {
    snprintf(buf, cap, json_object_size(v) ? "an object" : "an empty object");
  } else if (json_is_array(v)) {
    snprintf(buf, cap, json_array_size(v) ? "an array" : "an empty array");
  } else if (json_is_string(v)) {
    render_str(json_string_value(v), buf);
  } else if (json_is_integer(v)) {
    snprintf(buf, cap, "%" JSON_INTEGER_FORMAT, json_integer_value(v));
  } else if (json_is_real(v)) {
    /* The shortest text that reads back as the same double. */
    double d = json_real_value(v);
    snprintf(buf, cap, "%.15g", d);
    if (strtod(buf, NULL) != d) snprintf(buf, cap, "%.17g", d);
    if (!strpbrk(buf, ".eE")) strncat(buf, ".0", cap - strlen(buf) - 1);
  } else {
    snprintf(buf, cap, "%s",
             json_is_true(v)    ? "true"
             : json_is_false(v) ? "false"
                                : "null");
  }
}

static int fail_field(pctx *c, const char *field, const char *expected,
                      const json_t *got) {
  char r[RENDER_BUF];
  render(got, r, sizeof r);
  return fail(c, "field \"%s\": expected %s, got %s", field, expected, r);
}

/* ---- value rules ------------------------------------------------------- */

static int is_lower(char c) { return c >= 'a' && c <= 'z'; }
static int is_digit(char c) { return c >= '0' && c <= '9'; }

static int name_ok(const char *s) {
  size_t n = 0;
  if (!is_lower(s[0])) return 0;
  for (; s[n]; n++)
    if (!is_lower(s[n]) && !is_digit(s[n]) && s[n] != '-') return 0;
  return n <= NAME_MAX_LEN;
}

/* "nno.iam": dot-separated words of [a-z][a-z0-9_-]*. */
static int service_ok(const char *s) {
  size_t n = 0;
  for (int word_start = 1; s[n]; n++) {
    if (word_start && !is_lower(s[n])) return 0;
    word_start = s[n] == '.';
    if (!word_start && !is_lower(s[n]) && !is_digit(s[n]) && s[n] != '-' &&
        s[n] != '_')
      return 0;
  }
  return n > 0 && n <= SERVICE_MAX_LEN && s[n - 1] != '.';
}

static int version_ok(const char *s) {
  semver v;
  return semver_parse(s, &v) == 0;
}

static int range_ok(const char *s) { return semver_range_valid(s) == 0; }

/* Reads one number of "MAJOR.MINOR": no leading zero, at most 65535. */
static const char *abi_num(const char *s, uint16_t *out) {
  unsigned long v = 0;
  const char *p = s;
  if (!is_digit(*p) || (p[0] == '0' && is_digit(p[1]))) return NULL;
  for (; is_digit(*p); p++)
    if ((v = v * 10 + (unsigned long)(*p - '0')) > UINT16_MAX) return NULL;
  *out = (uint16_t)v;
  return p;
}

static int abi_parse(const char *s, uint16_t *major, uint16_t *minor) {
  if (!(s = abi_num(s, major)) || *s++ != '.') return -1;
  if (!(s = abi_num(s, minor)) || *s) return -1;
  return 0;
}

static int abi_ok(const char *s) {
  uint16_t a, b;
  return abi_parse(s, &a, &b) == 0;
}

static int kind_ok(const char *s) {
  return strcmp(s, "core") == 0 || strcmp(s, "feature") == 0;
}

/* A plain file name next to the manifest: nothing that could reach out of
 * the package's folder. */
static int library_ok(const char *s) {
  size_t n = strlen(s);
  return n > 3 && strcmp(s + n - 3, ".so") == 0 && !strchr(s, '/') &&
         !strstr(s, "..");
}

static int method_ok(const char *s) {
  size_t n = 0;
  if (strcmp(s, "*") == 0) return 1;
  for (; s[n]; n++)
    if (s[n] < 'A' || s[n] > 'Z') return 0;
  return n > 0 && n <= METHOD_MAX_LEN;
}

/* ---- readers ----------------------------------------------------------- */

/* Checks that `v` is a string that `valid` accepts (NULL: any string). */
static int check_str(pctx *c, const char *field, const json_t *v,
                     const char *expected, int (*valid)(const char *)) {
  if (!json_is_string(v) || (valid && !valid(json_string_value(v))))
    return fail_field(c, field, expected, v);
  if (json_string_length(v) > MANIFEST_STR_MAX)
    return fail_field(c, field, "a string of at most 1024 bytes", v);
  return 0;
}

/* Copies the string member `key` of `obj` into *out, which stays NULL when
 * the member is absent and optional. */
static int get_str(pctx *c, json_t *obj, const char *key, const char *field,
                   int required, const char *expected,
                   int (*valid)(const char *), char **out) {
  json_t *v = json_object_get(obj, key);
  if (!v) return required ? fail_field(c, field, expected, NULL) : 0;
  if (check_str(c, field, v, expected, valid) < 0) return -1;
  if (!(*out = m_strdup(json_string_value(v)))) return fail_oom(c);
  return 0;
}

/* A string member of the top level, described once (Fluent Bit's config
 * map): its key, whether it is required, what a good value looks like,
 * and where it is stored (NO_COPY: checked here, converted by the caller). */
typedef struct str_field {
  const char *key;
  int required;
  const char *expected;
  int (*valid)(const char *s);
  size_t off;
} str_field;

#define NO_COPY ((size_t)-1)

static const str_field package_fields[] = {
    {"name", 1, NAME_RULE, name_ok, offsetof(package_manifest, name)},
    {"version", 1, "a semver version", version_ok,
     offsetof(package_manifest, version)},
    {"abi", 1, "an ABI version \"MAJOR.MINOR\"", abi_ok, NO_COPY},
    {"kind", 1, "\"core\" or \"feature\"", kind_ok, NO_COPY},
    {"library", 1, "a file name ending in \".so\" without \"/\" or \"..\"",
     library_ok, offsetof(package_manifest, library)},
    {"description", 0, "a string", NULL,
     offsetof(package_manifest, description)},
};

static const str_field stack_fields[] = {
    {"id", 1, NAME_RULE, name_ok, offsetof(stack_manifest, id)},
    {"version", 1, "a semver version", version_ok,
     offsetof(stack_manifest, version)},
    {"name", 0, "a string", NULL, offsetof(stack_manifest, name)},
    {"description", 0, "a string", NULL,
     offsetof(stack_manifest, description)},
};

static int get_fields(pctx *c, json_t *root, const str_field *f, size_t n,
                      void *out) {
  for (size_t i = 0; i < n; i++) {
    char *tmp = NULL;
    char **dst = f[i].off == NO_COPY ? &tmp : (char **)((char *)out + f[i].off);
    int rc = get_str(c, root, f[i].key, f[i].key, f[i].required, f[i].expected,
                     f[i].valid, dst);
    m_free(tmp);
    if (rc < 0) return -1;
  }
  return 0;
}

/* Refuses members of `obj` other than `keys` (NULL-terminated), naming
 * the nearest known key when one is within 2 edits (a typo), else the
 * known keys: a misspelt field would otherwise be ignored in silence.
 * `field` is the object's JSON path ("" for the top level). */
static int check_keys(pctx *c, json_t *obj, const char *field,
                      const char *const *keys) {
  const char *k;
  json_t *v;
  json_object_foreach(obj, k, v) {
    size_t i = 0;
    while (keys[i] && strcmp(keys[i], k) != 0) i++;
    if (keys[i]) continue;
    char path[FIELD_BUF + RENDER_BUF], r[RENDER_BUF];
    /* The key as JSON text, without its quotes, in the path. */
    render_str(k, r);
    r[strlen(r) - 1] = '\0';
    snprintf(path, sizeof path, "%s%s%s", field, field[0] ? "." : "", r + 1);
    const char *best = nno_nearest(k, keys, 2);
    if (best)
      return fail(c, "field \"%s\": unknown field (did you mean \"%s\"?)",
                  path, best);
    char known[384];
    size_t o = 0;
    known[0] = '\0';
    for (i = 0; keys[i] && o < sizeof known; i++) {
      int n = snprintf(known + o, sizeof known - o, "%s\"%s\"",
                       i == 0 ? "" : keys[i + 1] ? ", " : " or ", keys[i]);
      if (n < 0) break;
      o += (size_t)n;
    }
    return fail(c, "field \"%s\": unknown field (expected %s)", path, known);
  }
  return 0;
}

/* Parses the whole text; the top level must be an object. Duplicate keys
 * are refused anywhere: the later one would silently win. */
static int load_root(pctx *c, const char *json, size_t len, json_t **root) {
  json_error_t e;
  if (!json) return fail(c, "no input");
  if (len > MANIFEST_FILE_MAX)
    return fail(c, "too large (%zu bytes, at most %d)", len, MANIFEST_FILE_MAX);
  /* jansson does not always set the error code byte: start from zero. */
  memset(&e, 0, sizeof e);
  *root = json_loadb(json, len, JSON_REJECT_DUPLICATES | JSON_DECODE_ANY, &e);
  if (!*root) {
    /* jansson leaves the text empty when it cannot even set up its
     * lexer, which only an allocation failure causes. */
    if (json_error_code(&e) == json_error_out_of_memory || !e.text[0])
      return fail_oom(c);
    json_text_clean(e.text); /* it quotes the input near the error */
    return fail(c, "invalid JSON at line %d column %d: %s", e.line, e.column,
                e.text);
  }
  if (!json_is_object(*root)) {
    char r[RENDER_BUF];
    render(*root, r, sizeof r);
    return fail(c, "expected an object at the top level, got %s", r);
  }
  return 0;
}

/* Stores member `key` (an object or an array) as compact JSON, or `dflt`
 * when absent. */
static int get_blob(pctx *c, json_t *root, const char *key, int object,
                    char **out) {
  json_t *v = json_object_get(root, key);
  if (v && (object ? !json_is_object(v) : !json_is_array(v)))
    return fail_field(c, key, object ? "an object" : "an array", v);
  *out = v ? json_dumps(v, JSON_COMPACT) : m_strdup(object ? "{}" : "[]");
  return *out ? 0 : fail_oom(c);
}

/* ---- package.json ------------------------------------------------------ */

/* Do two patterns match the same paths? Parameter names do not count:
 * "/u/{id}" and "/u/{name}" collide in the router. */
static int same_shape(const char *a, const char *b) {
  while (*a && *b) {
    if (*a == '{' && *b == '{') {
      const char *ea = strchr(a, '}'), *eb = strchr(b, '}');
      if ((ea[-1] == '.') != (eb[-1] == '.')) return 0;
      a = ea + 1;
      b = eb + 1;
    } else if (*a++ != *b++) {
      return 0;
    }
  }
  return *a == *b;
}

static const char *const route_keys[] = {"method", "path", "scope", NULL};

static int parse_route(pctx *c, json_t *r, size_t i, manifest_route *rt) {
  char field[FIELD_BUF], sub[FIELD_BUF], why[128];
  snprintf(field, sizeof field, "routes[%zu]", i);
  if (!json_is_object(r)) return fail_field(c, field, "a route object", r);
  if (check_keys(c, r, field, route_keys) < 0)
    return -1;
  snprintf(sub, sizeof sub, "routes[%zu].method", i);
  if (get_str(c, r, "method", sub, 1, "an HTTP method", method_ok,
              &rt->method) < 0)
    return -1;
  snprintf(sub, sizeof sub, "routes[%zu].path", i);
  if (get_str(c, r, "path", sub, 1, "a route pattern", NULL, &rt->path) < 0)
    return -1;
  if (route_pattern_valid(rt->path, why, sizeof why) < 0) {
    char expected[160];
    snprintf(expected, sizeof expected, "a route pattern (%s)", why);
    return fail_field(c, sub, expected, json_object_get(r, "path"));
  }
  snprintf(sub, sizeof sub, "routes[%zu].scope", i);
  return get_str(c, r, "scope", sub, 0, "a string", NULL, &rt->scope);
}

static int parse_routes(pctx *c, json_t *root, package_manifest *m) {
  json_t *arr = json_object_get(root, "routes");
  if (!arr) return 0;
  if (!json_is_array(arr))
    return fail_field(c, "routes", "an array of routes", arr);
  size_t n = json_array_size(arr);
  if (n > MANIFEST_ROUTES_MAX)
    return fail(c, "field \"routes\": expected at most %d routes, got %zu",
                MANIFEST_ROUTES_MAX, n);
  if (n == 0) return 0;
  if (!(m->routes = m_calloc(n, sizeof *m->routes))) return fail_oom(c);
  for (size_t i = 0; i < n; i++) {
    manifest_route *rt = &m->routes[i];
    /* Count the entry first so that _free() reclaims a half-filled one. */
    m->nroutes = i + 1;
    if (parse_route(c, json_array_get(arr, i), i, rt) < 0) return -1;
    /* At most 256 routes, so the quadratic scan stays small. */
    for (size_t j = 0; j < i; j++)
      if (strcmp(m->routes[j].method, rt->method) == 0 &&
          same_shape(m->routes[j].path, rt->path))
        return fail(c,
                    "field \"routes[%zu]\": duplicate route \"%s %s\", "
                    "already declared by routes[%zu]",
                    i, rt->method, rt->path, j);
  }
  return 0;
}

/* "requires" or "uses" (`key`): {"service.name": "range", ...} into
 * *out / *n. */
static int parse_services(pctx *c, json_t *root, const char *key,
                          manifest_require **out, size_t *nout) {
  json_t *obj = json_object_get(root, key), *v;
  const char *k;
  char field[FIELD_BUF], r[RENDER_BUF];
  if (!obj) return 0;
  if (!json_is_object(obj))
    return fail_field(c, key,
                      "an object of service names to version ranges", obj);
  size_t n = json_object_size(obj);
  if (n > MANIFEST_REQUIRES_MAX)
    return fail(c, "field \"%s\": expected at most %d services, got %zu",
                key, MANIFEST_REQUIRES_MAX, n);
  if (n == 0) return 0;
  if (!(*out = m_calloc(n, sizeof **out))) return fail_oom(c);
  json_object_foreach(obj, k, v) {
    manifest_require *q = &(*out)[*nout];
    if (!service_ok(k)) {
      render_str(k, r);
      return fail(c,
                  "field \"%s\": expected service names like "
                  "\"nno.iam\", got %s",
                  key, r);
    }
    snprintf(field, sizeof field, "%s.%s", key, k);
    if (check_str(c, field, v, "a semver range", range_ok) < 0) return -1;
    (*nout)++;
    if (!(q->service = m_strdup(k)) ||
        !(q->range = m_strdup(json_string_value(v))))
      return fail_oom(c);
  }
  return 0;
}

/* ---- resources (ABI 1.2) ----------------------------------------------- */

static const char *const resource_keys[] = {"type", "name", NULL};

static int resource_type_ok(const char *s) {
  return strcmp(s, "sql") == 0 || strcmp(s, "kv") == 0 ||
         strcmp(s, "blob") == 0;
}

static int resource_name_ok(const char *s) {
  size_t n = 0;
  if (!is_lower(s[0])) return 0;
  for (; s[n]; n++)
    if (!is_lower(s[n]) && !is_digit(s[n]) && s[n] != '-') return 0;
  return n <= MANIFEST_RESOURCE_NAME_MAX;
}

static int parse_resources(pctx *c, json_t *root, package_manifest *m) {
  json_t *arr = json_object_get(root, "resources");
  char field[FIELD_BUF];
  if (!arr) return 0;
  if (!json_is_array(arr))
    return fail_field(c, "resources", "an array", arr);
  size_t n = json_array_size(arr);
  if (n > MANIFEST_RESOURCES_MAX)
    return fail(c,
                "field \"resources\": expected at most %d resources, got %zu",
                MANIFEST_RESOURCES_MAX, n);
  if (n == 0) return 0;
  if (!(m->resources = m_calloc(n, sizeof *m->resources))) return fail_oom(c);
  for (size_t i = 0; i < n; i++) {
    json_t *e = json_array_get(arr, i);
    manifest_resource *r = &m->resources[i];
    snprintf(field, sizeof field, "resources[%zu]", i);
    if (!json_is_object(e))
      return fail_field(c, field,
                        "an object with \"type\" and \"name\"", e);
    if (check_keys(c, e, field, resource_keys) < 0)
      return -1;
    snprintf(field, sizeof field, "resources[%zu].type", i);
    if (check_str(c, field, json_object_get(e, "type"),
                  "\"sql\", \"kv\" or \"blob\"", resource_type_ok) < 0)
      return -1;
    snprintf(field, sizeof field, "resources[%zu].name", i);
    if (check_str(c, field, json_object_get(e, "name"),
                  "a resource name matching [a-z][a-z0-9-]{0,31}",
                  resource_name_ok) < 0)
      return -1;
    /* Both checked above: they fit. */
    snprintf(r->type, sizeof r->type, "%s",
             json_string_value(json_object_get(e, "type")));
    snprintf(r->name, sizeof r->name, "%s",
             json_string_value(json_object_get(e, "name")));
    m->nresources = i + 1;
    for (size_t j = 0; j < i; j++)
      if (strcmp(m->resources[j].type, r->type) == 0 &&
          strcmp(m->resources[j].name, r->name) == 0)
        return fail(c,
                    "field \"resources[%zu]\": duplicate resource \"%s %s\", "
                    "already declared by resources[%zu]",
                    i, r->type, r->name, j);
  }
  return 0;
}

const manifest_resource *manifest_resource_find(const package_manifest *m,
                                                const char *type,
                                                const char *name) {
  for (size_t i = 0; i < m->nresources; i++)
    if (strcmp(m->resources[i].type, type) == 0 &&
        strcmp(m->resources[i].name, name) == 0)
      return &m->resources[i];
  return NULL;
}

/* ---- ui: what a package adds to the console shell -------------------- */

#define UI_ROUTES_MAX 32
#define UI_NAV_MAX 16
#define UI_LABEL_MAX 40
#define UI_PATH_MAX 255
#define UI_SEGMENTS_MAX 8

static const char *const ui_keys[] = {"module", "nav", "routes", NULL};
static const char *const ui_route_keys[] = {"path", "scope", NULL};
static const char *const ui_nav_keys[] = {"label", "path", "scope", "order",
                                          NULL};

/* A file of the package's ui/ folder, as the shell serves it: "ui/" then
 * 1..8 segments of [A-Za-z0-9._-], none starting with '.', ending in .js
 * or .mjs (a module). */
static int ui_module_ok(const char *s) {
  size_t n = strlen(s), segs = 0;
  if (n > UI_PATH_MAX || strncmp(s, "ui/", 3) != 0) return 0;
  if (!(n > 6 && strcmp(s + n - 3, ".js") == 0) &&
      !(n > 7 && strcmp(s + n - 4, ".mjs") == 0))
    return 0;
  for (const char *p = s + 3; *p;) {
    size_t len = strcspn(p, "/");
    if (len == 0 || p[0] == '.' || ++segs > UI_SEGMENTS_MAX) return 0;
    for (size_t i = 0; i < len; i++) {
      char ch = p[i];
      if (!is_lower(ch) && !is_digit(ch) && !(ch >= 'A' && ch <= 'Z') &&
          ch != '.' && ch != '_' && ch != '-')
        return 0;
    }
    p += len;
    if (*p == '/' && !*++p) return 0;
  }
  return segs > 0;
}

/* "read", "write", "authenticated", or a scope of 2 or 3 parts of
 * [a-z0-9_*.-] joined by ':' ("features:notes:read"). */
static int ui_scope_ok(const char *s) {
  if (strcmp(s, "read") == 0 || strcmp(s, "write") == 0 ||
      strcmp(s, "authenticated") == 0)
    return 1;
  size_t parts = 1, len = 0;
  for (; *s; s++) {
    if (*s == ':') {
      if (len == 0 || ++parts > 3) return 0;
      len = 0;
    } else if (is_lower(*s) || is_digit(*s) || *s == '_' || *s == '*' ||
               *s == '.' || *s == '-') {
      if (++len > 64) return 0;
    } else {
      return 0;
    }
  }
  return parts >= 2 && len > 0;
}

static int ui_label_ok(const char *s) {
  size_t n = strlen(s);
  if (n == 0 || n > UI_LABEL_MAX) return 0;
  for (; *s; s++)
    if ((unsigned char)*s < 0x20 || *s == 0x7f) return 0;
  return 1;
}

/* A client-side route of the shell: a route pattern without wildcard. */
static int ui_route_path(pctx *c, json_t *v, const char *field) {
  char why[128], expected[160];
  if (check_str(c, field, v, "a route pattern", NULL) < 0) return -1;
  const char *path = json_string_value(v);
  if (route_pattern_valid(path, why, sizeof why) < 0) {
    snprintf(expected, sizeof expected, "a route pattern (%s)", why);
    return fail_field(c, field, expected, v);
  }
  if (strstr(path, "...}"))
    return fail_field(c, field, "a route pattern without a {name...} wildcard",
                      v);
  return 0;
}

static int ui_scope(pctx *c, json_t *obj, const char *field) {
  json_t *v = json_object_get(obj, "scope");
  if (!v) return 0;
  return check_str(c, field, v,
                   "\"read\", \"write\", \"authenticated\" or a scope like "
                   "\"features:notes:read\"",
                   ui_scope_ok);
}

/* The array `key` of `ui`: objects with only `keys`, at most `max`. */
static int ui_array(pctx *c, json_t *ui, const char *key, size_t max,
                    const char *const *keys, json_t **out) {
  char field[FIELD_BUF];
  *out = json_object_get(ui, key);
  if (!*out) return 0;
  snprintf(field, sizeof field, "ui.%s", key);
  if (!json_is_array(*out)) return fail_field(c, field, "an array", *out);
  if (json_array_size(*out) > max)
    return fail(c, "field \"%s\": expected at most %zu entries, got %zu", field,
                max, json_array_size(*out));
  for (size_t i = 0; i < json_array_size(*out); i++) {
    json_t *e = json_array_get(*out, i);
    snprintf(field, sizeof field, "ui.%s[%zu]", key, i);
    if (!json_is_object(e)) return fail_field(c, field, "an object", e);
    if (check_keys(c, e, field, keys) < 0) return -1;
  }
  return 0;
}

/* "ui": {"module", "routes": [{"path", "scope"}], "nav": [{"label",
 * "path", "scope", "order"}]}. Checked here so that the loader, `nno
 * check-package` and `nno stack check` refuse the same manifests; the
 * console package reads the same object back from the manifest. */
static int parse_ui(pctx *c, json_t *root) {
  json_t *ui = json_object_get(root, "ui"), *routes, *nav, *v;
  char field[FIELD_BUF];
  if (!ui || !json_is_object(ui)) return 0; /* get_blob() says why */
  if (check_keys(c, ui, "ui", ui_keys) < 0 ||
      ui_array(c, ui, "routes", UI_ROUTES_MAX, ui_route_keys, &routes) < 0 ||
      ui_array(c, ui, "nav", UI_NAV_MAX, ui_nav_keys, &nav) < 0)
    return -1;
  v = json_object_get(ui, "module");
  if (v && check_str(c, "ui.module", v,
                     "a file under \"ui/\" ending in \".js\" or \".mjs\" "
                     "(segments of [A-Za-z0-9._-], none starting with \".\")",
                     ui_module_ok) < 0)
    return -1;
  if (!v && (routes || nav))
    return fail_field(c, "ui.module",
                      "the module that renders ui.routes and ui.nav", NULL);
  if (v && !json_array_size(routes))
    return fail_field(c, "ui.routes", "at least one route for ui.module",
                      routes);
  for (size_t i = 0; i < json_array_size(routes); i++) {
    json_t *e = json_array_get(routes, i);
    snprintf(field, sizeof field, "ui.routes[%zu].path", i);
    if (ui_route_path(c, json_object_get(e, "path"), field) < 0) return -1;
    for (size_t j = 0; j < i; j++)
      if (same_shape(json_string_value(json_object_get(e, "path")),
                     json_string_value(json_object_get(
                         json_array_get(routes, j), "path"))))
        return fail(c,
                    "field \"ui.routes[%zu]\": duplicate route \"%s\", "
                    "already declared by ui.routes[%zu]",
                    i, json_string_value(json_object_get(e, "path")), j);
    snprintf(field, sizeof field, "ui.routes[%zu].scope", i);
    if (ui_scope(c, e, field) < 0) return -1;
  }
  for (size_t i = 0; i < json_array_size(nav); i++) {
    json_t *e = json_array_get(nav, i), *p;
    snprintf(field, sizeof field, "ui.nav[%zu].label", i);
    if (check_str(c, field, json_object_get(e, "label"),
                  "a label of 1 to 40 bytes without control characters",
                  ui_label_ok) < 0)
      return -1;
    snprintf(field, sizeof field, "ui.nav[%zu].path", i);
    p = json_object_get(e, "path");
    if (check_str(c, field, p, "the path of one of ui.routes", NULL) < 0)
      return -1;
    size_t j = 0;
    while (j < json_array_size(routes) &&
           strcmp(json_string_value(p),
                  json_string_value(json_object_get(json_array_get(routes, j),
                                                    "path"))) != 0)
      j++;
    if (j == json_array_size(routes))
      return fail_field(c, field, "the path of one of ui.routes", p);
    snprintf(field, sizeof field, "ui.nav[%zu].scope", i);
    if (ui_scope(c, e, field) < 0) return -1;
    snprintf(field, sizeof field, "ui.nav[%zu].order", i);
    v = json_object_get(e, "order");
    if (v && (!json_is_integer(v) || json_integer_value(v) < 0 ||
              json_integer_value(v) > 1000))
      return fail_field(c, field, "an integer from 0 to 1000", v);
  }
  return 0;
}

static const char *const package_keys_top[] = {
    "name",   "version", "abi",   "kind", "library",   "description",
    "routes", "requires", "uses", "config", "scopes", "ui", "resources",
    NULL};

int package_manifest_parse(const char *json, size_t len, const char *what,
                           package_manifest *out, char *err) {
  pctx c = {what ? what : "package.json", err};
  json_t *root = NULL, *v;
  if (err) err[0] = '\0';
  memset(out, 0, sizeof *out);
  if (load_root(&c, json, len, &root) < 0 ||
      check_keys(&c, root, "", package_keys_top) < 0)
    goto fail;
  if (get_fields(&c, root, package_fields,
                 sizeof package_fields / sizeof *package_fields, out) < 0)
    goto fail;
  /* Checked by get_fields() already, so these conversions succeed. */
  semver_parse(out->version, &out->ver);
  abi_parse(json_string_value(json_object_get(root, "abi")), &out->abi_major,
            &out->abi_minor);
  v = json_object_get(root, "kind");
  out->kind = strcmp(json_string_value(v), "core") == 0 ? NNO_KIND_CORE
                                                        : NNO_KIND_FEATURE;
  if (parse_routes(&c, root, out) < 0 ||
      parse_services(&c, root, "requires", &out->requires, &out->nrequires) <
          0 ||
      parse_services(&c, root, "uses", &out->uses, &out->nuses) < 0 ||
      get_blob(&c, root, "config", 1, &out->config_json) < 0 ||
      get_blob(&c, root, "scopes", 0, &out->scopes_json) < 0 ||
      get_blob(&c, root, "ui", 1, &out->ui_json) < 0 || parse_ui(&c, root) < 0 ||
      parse_resources(&c, root, out) < 0 ||
      get_blob(&c, root, "resources", 0, &out->resources_json) < 0)
    goto fail;
  json_decref(root);
  return 0;

fail:
  json_decref(root);
  package_manifest_free(out);
  return -1;
}

void package_manifest_free(package_manifest *m) {
  if (!m) return;
  for (size_t i = 0; i < m->nroutes; i++) {
    m_free(m->routes[i].method);
    m_free(m->routes[i].path);
    m_free(m->routes[i].scope);
  }
  for (size_t i = 0; i < m->nrequires; i++) {
    m_free(m->requires[i].service);
    m_free(m->requires[i].range);
  }
  for (size_t i = 0; i < m->nuses; i++) {
    m_free(m->uses[i].service);
    m_free(m->uses[i].range);
  }
  m_free(m->routes);
  m_free(m->requires);
  m_free(m->uses);
  m_free(m->name);
  m_free(m->version);
  m_free(m->library);
  m_free(m->description);
  m_free(m->config_json);
  m_free(m->scopes_json);
  m_free(m->ui_json);
  m_free(m->resources_json);
  m_free(m->resources);
  memset(m, 0, sizeof *m);
}

/* ---- stack.json -------------------------------------------------------- */

static const char *const package_keys[] = {"name", "version", NULL};

/* Fills stack package `p` from "packages[i]" (array form) or from the
 * member "packages.NAME" (object form, name given). */
static int parse_stack_package(pctx *c, json_t *e, size_t i, const char *name,
                               stack_package *p) {
  char field[FIELD_BUF], sub[FIELD_BUF];
  if (name) {
    if (!name_ok(name)) {
      char r[RENDER_BUF];
      render_str(name, r);
      return fail(c,
                  "field \"packages\": expected package names matching "
                  "[a-z][a-z0-9-]{0,63}, got %s",
                  r);
    }
    snprintf(field, sizeof field, "packages.%s", name);
    if (check_str(c, field, e, "a semver range", range_ok) < 0) return -1;
    if (!(p->name = m_strdup(name)) ||
        !(p->range = m_strdup(json_string_value(e))))
      return fail_oom(c);
    return 0;
  }
  snprintf(field, sizeof field, "packages[%zu]", i);
  if (!json_is_object(e))
    return fail_field(c, field, "an object with \"name\" and \"version\"", e);
  if (check_keys(c, e, field, package_keys) < 0)
    return -1;
  snprintf(sub, sizeof sub, "packages[%zu].name", i);
  if (get_str(c, e, "name", sub, 1, NAME_RULE, name_ok, &p->name) < 0)
    return -1;
  snprintf(sub, sizeof sub, "packages[%zu].version", i);
  return get_str(c, e, "version", sub, 1, "a semver range", range_ok,
                 &p->range);
}

static int parse_packages(pctx *c, json_t *root, stack_manifest *m) {
  json_t *v = json_object_get(root, "packages");
  size_t n = json_is_array(v)    ? json_array_size(v)
             : json_is_object(v) ? json_object_size(v)
                                 : 0;
  if (n == 0)
    return fail_field(c, "packages", "a non-empty array or object of packages",
                      v);
  if (n > MANIFEST_PACKAGES_MAX)
    return fail(c, "field \"packages\": expected at most %d packages, got %zu",
                MANIFEST_PACKAGES_MAX, n);
  if (!(m->packages = m_calloc(n, sizeof *m->packages))) return fail_oom(c);
  if (json_is_object(v)) {
    const char *k;
    json_t *e;
    /* JSON_REJECT_DUPLICATES already refused a name given twice. */
    json_object_foreach(v, k, e) {
      if (parse_stack_package(c, e, 0, k, &m->packages[m->npackages++]) < 0)
        return -1;
    }
    return 0;
  }
  for (size_t i = 0; i < n; i++) {
    stack_package *p = &m->packages[m->npackages++];
    if (parse_stack_package(c, json_array_get(v, i), i, NULL, p) < 0) return -1;
    for (size_t j = 0; j < i; j++)
      if (strcmp(m->packages[j].name, p->name) == 0)
        return fail(c,
                    "field \"packages[%zu]\": duplicate package \"%s\", "
                    "already listed as packages[%zu]",
                    i, p->name, j);
  }
  return 0;
}

static const char *const stack_keys_top[] = {
    "id", "version", "name", "description", "packages", "requires", NULL};
static const char *const stack_require_keys[] = {"stack", "version", NULL};

/* "requires": [{"stack": ID, "version": RANGE}, ...], each stack once. */
static int parse_stack_requires(pctx *c, json_t *root, stack_manifest *m) {
  json_t *arr = json_object_get(root, "requires");
  char field[FIELD_BUF], sub[FIELD_BUF];
  if (!arr) return 0;
  if (!json_is_array(arr))
    return fail_field(c, "requires",
                      "an array of {\"stack\", \"version\"} objects", arr);
  size_t n = json_array_size(arr);
  if (n > MANIFEST_REQUIRES_MAX)
    return fail(c, "field \"requires\": expected at most %d stacks, got %zu",
                MANIFEST_REQUIRES_MAX, n);
  if (n == 0) return 0;
  if (!(m->requires = m_calloc(n, sizeof *m->requires))) return fail_oom(c);
  for (size_t i = 0; i < n; i++) {
    json_t *e = json_array_get(arr, i);
    stack_require *q = &m->requires[m->nrequires++];
    snprintf(field, sizeof field, "requires[%zu]", i);
    if (!json_is_object(e))
      return fail_field(c, field, "an object with \"stack\" and \"version\"",
                        e);
    if (check_keys(c, e, field, stack_require_keys) < 0) return -1;
    snprintf(sub, sizeof sub, "requires[%zu].stack", i);
    if (get_str(c, e, "stack", sub, 1, "a stack id matching "
                "[a-z][a-z0-9-]{0,63}", name_ok, &q->stack) < 0)
      return -1;
    snprintf(sub, sizeof sub, "requires[%zu].version", i);
    if (get_str(c, e, "version", sub, 1, "a semver range", range_ok,
                &q->range) < 0)
      return -1;
    if (strcmp(q->stack, m->id) == 0)
      return fail(c, "field \"requires[%zu].stack\": a stack cannot require "
                  "itself", i);
    for (size_t j = 0; j < i; j++)
      if (strcmp(m->requires[j].stack, q->stack) == 0)
        return fail(c,
                    "field \"requires[%zu]\": duplicate stack \"%s\", "
                    "already required by requires[%zu]",
                    i, q->stack, j);
  }
  return 0;
}

int stack_manifest_parse(const char *json, size_t len, const char *what,
                         stack_manifest *out, char *err) {
  pctx c = {what ? what : "stack.json", err};
  json_t *root = NULL;
  if (err) err[0] = '\0';
  memset(out, 0, sizeof *out);
  if (load_root(&c, json, len, &root) < 0 ||
      check_keys(&c, root, "", stack_keys_top) < 0)
    goto fail;
  if (get_fields(&c, root, stack_fields,
                 sizeof stack_fields / sizeof *stack_fields, out) < 0)
    goto fail;
  semver_parse(out->version, &out->ver);
  if (!out->name && !(out->name = m_strdup(out->id))) {
    fail_oom(&c);
    goto fail;
  }
  if (parse_packages(&c, root, out) < 0 ||
      parse_stack_requires(&c, root, out) < 0)
    goto fail;
  json_decref(root);
  return 0;

fail:
  json_decref(root);
  stack_manifest_free(out);
  return -1;
}

void stack_manifest_free(stack_manifest *m) {
  if (!m) return;
  for (size_t i = 0; i < m->npackages; i++) {
    m_free(m->packages[i].name);
    m_free(m->packages[i].range);
  }
  for (size_t i = 0; i < m->nrequires; i++) {
    m_free(m->requires[i].stack);
    m_free(m->requires[i].range);
  }
  m_free(m->packages);
  m_free(m->requires);
  m_free(m->description);
  m_free(m->id);
  m_free(m->version);
  m_free(m->name);
  memset(m, 0, sizeof *m);
}

/* ---- files ------------------------------------------------------------- */

/* Reads the whole regular file open on `fd` (left open), of at most
 * MANIFEST_FILE_MAX bytes, into a malloc'd buffer. The size is checked
 * before reading, and again while reading in case the file grows. */
static int read_fd(pctx *c, int fd, char **out, size_t *out_len) {
  struct stat st;
  char *buf = NULL;
  size_t len = 0, cap;
  if (fstat(fd, &st) < 0) {
    fail(c, "cannot read: %s", strerror(errno));
    goto fail;
  }
  if (!S_ISREG(st.st_mode)) {
    fail(c, "not a regular file");
    goto fail;
  }
  if (st.st_size > MANIFEST_FILE_MAX) {
    fail(c, "too large (%lld bytes, at most %d)", (long long)st.st_size,
         MANIFEST_FILE_MAX);
    goto fail;
  }
  cap = (size_t)st.st_size + 1;
  if (!(buf = malloc(cap))) {
    fail_oom(c);
    goto fail;
  }
  for (;;) {
    if (len == cap) {
      /* The file grew since fstat(): keep reading, within the limit. */
      if (len > MANIFEST_FILE_MAX) {
        fail(c, "too large (more than %d bytes)", MANIFEST_FILE_MAX);
        goto fail;
      }
      cap = cap * 2 > MANIFEST_FILE_MAX + 1 ? MANIFEST_FILE_MAX + 1 : cap * 2;
      char *nb = realloc(buf, cap);
      if (!nb) {
        fail_oom(c);
        goto fail;
      }
      buf = nb;
    }
    ssize_t n = read(fd, buf + len, cap - len);
    if (n < 0 && errno == EINTR) continue;
    if (n < 0) {
      fail(c, "cannot read: %s", strerror(errno));
      goto fail;
    }
    if (n == 0) break;
    len += (size_t)n;
  }
  *out = buf;
  *out_len = len;
  return 0;

fail:
  free(buf);
  return -1;
}

/* Read fd (named `what` in messages) and hand its text to `parse`, which
 * fills `out`; the one body behind the four entry points below. */
typedef int (*parse_fn)(const char *json, size_t len, const char *what,
                        void *out, char *err);

static int pkg_parse(const char *json, size_t len, const char *what,
                     void *out, char *err) {
  return package_manifest_parse(json, len, what, out, err);
}

static int stk_parse(const char *json, size_t len, const char *what,
                     void *out, char *err) {
  return stack_manifest_parse(json, len, what, out, err);
}

static int read_parse(int fd, const char *what, parse_fn parse, void *out,
                      size_t out_size, char *err) {
  pctx c = {what, err};
  char *buf = NULL;
  size_t len = 0;
  if (err) err[0] = '\0';
  memset(out, 0, out_size);
  if (fd < 0) return fail(&c, "cannot open: %s", strerror(errno));
  if (read_fd(&c, fd, &buf, &len) < 0) return -1;
  int rc = parse(buf, len, what, out, err);
  free(buf);
  return rc;
}

static int load_parse(const char *path, parse_fn parse, void *out,
                      size_t out_size, char *err) {
  int fd = open(path, O_RDONLY | O_CLOEXEC);
  int rc = read_parse(fd, path, parse, out, out_size, err);
  if (fd >= 0) close(fd);
  return rc;
}

int package_manifest_load(const char *path, package_manifest *out, char *err) {
  return load_parse(path, pkg_parse, out, sizeof *out, err);
}

int stack_manifest_load(const char *path, stack_manifest *out, char *err) {
  return load_parse(path, stk_parse, out, sizeof *out, err);
}

int package_manifest_read(int fd, const char *what, package_manifest *out,
                          char *err) {
  return read_parse(fd, what, pkg_parse, out, sizeof *out, err);
}

int stack_manifest_read(int fd, const char *what, stack_manifest *out,
                        char *err) {
  return read_parse(fd, what, stk_parse, out, sizeof *out, err);
}
