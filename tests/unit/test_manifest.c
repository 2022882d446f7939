/* Unit tests for host/manifest.c: package.json and stack.json, every error
 * message compared exactly, and allocation failure N for N = 1, 2, ... */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <jansson.h>
#include <nno/plugin.h>

#include "manifest.h"

#define N(a) (sizeof(a) / sizeof *(a))

static const char pkg_json[] =
    "{\"name\":\"hello\",\"version\":\"1.2.3-rc.1+b7\",\"abi\":\"1.0\","
    "\"kind\":\"feature\",\"library\":\"libhello.so\","
    "\"description\":\"Says hello\","
    "\"routes\":[{\"method\":\"GET\",\"path\":\"/hello\","
    "\"scope\":\"features:hello:read\"},"
    "{\"method\":\"*\",\"path\":\"/hello/{name}\"},"
    "{\"method\":\"GET\",\"path\":\"/hello/{name}\"}],"
    "\"requires\":{\"nno.iam\":\"^1\",\"nno.kv\":\">=1.2 <2\"},"
    "\"uses\":{\"nno.blob\":\"^2\"},"
    "\"resources\":[{\"type\":\"kv\",\"name\":\"cache\"},"
    "{\"name\":\"notes\",\"type\":\"sql\"}],\"scopes\":[\"features:hello:read\"],"
    "\"ui\":{\"module\":\"ui/hello.js\",\"routes\":[{\"path\":\"/hello\","
    "\"scope\":\"read\"},{\"path\":\"/hello/{name}\"}],\"nav\":[{\"label\":"
    "\"Hello\",\"path\":\"/hello\",\"order\":10}]},\"config\":{\"greeting\":\"hello\",\"n\":[1,2]}}";

static const char stack_json[] =
    "{\"id\":\"default\",\"version\":\"1.0.0\",\"name\":\"Default\","
    "\"packages\":[{\"name\":\"hello\",\"version\":\"^1.0.0\"},"
    "{\"name\":\"todo\",\"version\":\"1.x || 2.x\"}]}";

static int is_zero(const void *p, size_t n) {
  const unsigned char *b = p;
  for (size_t i = 0; i < n; i++)
    if (b[i]) return 0;
  return 1;
}

/* ---- valid manifests --------------------------------------------------- */

static void test_package_valid(void **state) {
  package_manifest m;
  char err[MANIFEST_ERR_MAX];
  (void)state;
  assert_int_equal(
      package_manifest_parse(pkg_json, strlen(pkg_json), NULL, &m, err), 0);
  assert_string_equal(err, "");
  assert_string_equal(m.name, "hello");
  assert_string_equal(m.version, "1.2.3-rc.1+b7");
  assert_int_equal(m.ver.major, 1);
  assert_int_equal(m.ver.patch, 3);
  assert_string_equal(m.ver.pre, "rc.1");
  assert_int_equal(m.abi_major, 1);
  assert_int_equal(m.abi_minor, 0);
  assert_int_equal(m.kind, NNO_KIND_FEATURE);
  assert_string_equal(m.library, "libhello.so");
  assert_string_equal(m.description, "Says hello");
  assert_int_equal(m.nroutes, 3);
  assert_string_equal(m.routes[0].method, "GET");
  assert_string_equal(m.routes[0].path, "/hello");
  assert_string_equal(m.routes[0].scope, "features:hello:read");
  assert_string_equal(m.routes[1].method, "*");
  assert_string_equal(m.routes[1].path, "/hello/{name}");
  assert_null(m.routes[1].scope);
  assert_int_equal(m.nrequires, 2);
  assert_string_equal(m.requires[0].service, "nno.iam");
  assert_string_equal(m.requires[0].range, "^1");
  assert_string_equal(m.requires[1].service, "nno.kv");
  assert_string_equal(m.requires[1].range, ">=1.2 <2");
  assert_int_equal(m.nuses, 1);
  assert_string_equal(m.uses[0].service, "nno.blob");
  assert_string_equal(m.uses[0].range, "^2");
  assert_string_equal(m.config_json, "{\"greeting\":\"hello\",\"n\":[1,2]}");
  assert_string_equal(m.scopes_json, "[\"features:hello:read\"]");
  assert_string_equal(m.ui_json,
                      "{\"module\":\"ui/hello.js\",\"routes\":[{\"path\":"
                      "\"/hello\",\"scope\":\"read\"},{\"path\":"
                      "\"/hello/{name}\"}],\"nav\":[{\"label\":\"Hello\","
                      "\"path\":\"/hello\",\"order\":10}]}");
  assert_string_equal(m.resources_json,
                      "[{\"type\":\"kv\",\"name\":\"cache\"},"
                      "{\"name\":\"notes\",\"type\":\"sql\"}]");
  assert_int_equal(m.nresources, 2);
  assert_string_equal(m.resources[0].type, "kv");
  assert_string_equal(m.resources[0].name, "cache");
  assert_string_equal(m.resources[1].type, "sql");
  assert_string_equal(m.resources[1].name, "notes");
  assert_ptr_equal(manifest_resource_find(&m, "sql", "notes"),
                   &m.resources[1]);
  assert_null(manifest_resource_find(&m, "kv", "notes"));
  assert_null(manifest_resource_find(&m, "blob", "cache"));
  package_manifest_free(&m);
  assert_true(is_zero(&m, sizeof m));
  package_manifest_free(&m); /* idempotent */
}

static void test_package_minimal(void **state) {
  static const char j[] =
      "{\"name\":\"a\",\"version\":\"0.0.0\",\"abi\":\"65535.0\","
      "\"kind\":\"core\",\"library\":\"a.so\",\"routes\":[],"
      "\"requires\":{}}";
  package_manifest m;
  char err[MANIFEST_ERR_MAX];
  (void)state;
  assert_int_equal(package_manifest_parse(j, strlen(j), "x", &m, err), 0);
  assert_int_equal(m.kind, NNO_KIND_CORE);
  assert_int_equal(m.abi_major, 65535);
  assert_null(m.description);
  assert_null(m.routes);
  assert_int_equal(m.nroutes, 0);
  assert_int_equal(m.nrequires, 0);
  assert_string_equal(m.config_json, "{}");
  assert_string_equal(m.scopes_json, "[]");
  assert_string_equal(m.ui_json, "{}");
  assert_string_equal(m.resources_json, "[]");
  assert_int_equal(m.nresources, 0);
  assert_null(m.resources);
  package_manifest_free(&m);
}

/* 16 resources pass, names of 1 and 32 bytes too; one more is refused
 * (pkg_bad). */
static void test_package_resources_limit(void **state) {
  static const char head[] =
      "{\"name\":\"a\",\"version\":\"1.0.0\",\"abi\":\"1.3\","
      "\"kind\":\"feature\",\"library\":\"a.so\",\"resources\":[";
  char j[4096];
  size_t o = (size_t)snprintf(j, sizeof j, "%s", head);
  for (int i = 0; i < 16; i++)
    o += (size_t)snprintf(j + o, sizeof j - o,
                          "%s{\"type\":\"%s\",\"name\":\"%s%d\"}",
                          i ? "," : "", i % 2 ? "blob" : "sql",
                          i == 15 ? "a2345678901234567890123456789" : "n", i);
  snprintf(j + o, sizeof j - o, "]}");
  package_manifest m;
  char err[MANIFEST_ERR_MAX];
  (void)state;
  assert_int_equal(package_manifest_parse(j, strlen(j), NULL, &m, err), 0);
  assert_int_equal(m.nresources, 16);
  assert_string_equal(m.resources[15].type, "blob");
  assert_int_equal(strlen(m.resources[15].name), 31);
  package_manifest_free(&m);
  static const char one[] =
      "{\"name\":\"a\",\"version\":\"1.0.0\",\"abi\":\"1.3\","
      "\"kind\":\"feature\",\"library\":\"a.so\",\"resources\":["
      "{\"type\":\"kv\",\"name\":\"a2345678901234567890123456789012\"},"
      "{\"type\":\"kv\",\"name\":\"b\"}]}";
  assert_int_equal(package_manifest_parse(one, strlen(one), NULL, &m, err), 0);
  assert_int_equal(strlen(m.resources[0].name), 32);
  assert_string_equal(m.resources[1].name, "b");
  package_manifest_free(&m);
}

static void test_package_route_limit(void **state) {
  /* 256 routes pass, 257 are refused. */
  json_t *root = json_loads(pkg_json, 0, NULL), *routes = json_array();
  package_manifest m;
  char err[MANIFEST_ERR_MAX], path[32];
  (void)state;
  for (int i = 0; i < 257; i++) {
    snprintf(path, sizeof path, "/r%d", i);
    json_array_append_new(
        routes, json_pack("{s:s,s:s}", "method", "GET", "path", path));
  }
  json_object_set_new(root, "routes", routes);
  char *text = json_dumps(root, 0);
  assert_int_equal(package_manifest_parse(text, strlen(text), NULL, &m, err),
                   -1);
  assert_string_equal(
      err,
      "package.json: field \"routes\": expected at most 256 routes, "
      "got 257");
  free(text);
  json_array_remove(routes, 256);
  text = json_dumps(root, 0);
  assert_int_equal(package_manifest_parse(text, strlen(text), NULL, &m, err),
                   0);
  assert_int_equal(m.nroutes, 256);
  assert_string_equal(m.routes[255].path, "/r255");
  package_manifest_free(&m);
  free(text);
  json_decref(root);
}

static void test_stack_valid(void **state) {
  stack_manifest s;
  char err[MANIFEST_ERR_MAX];
  (void)state;
  assert_int_equal(
      stack_manifest_parse(stack_json, strlen(stack_json), NULL, &s, err), 0);
  assert_string_equal(s.id, "default");
  assert_string_equal(s.version, "1.0.0");
  assert_int_equal(s.ver.major, 1);
  assert_string_equal(s.name, "Default");
  assert_int_equal(s.npackages, 2);
  assert_string_equal(s.packages[0].name, "hello");
  assert_string_equal(s.packages[0].range, "^1.0.0");
  assert_string_equal(s.packages[1].name, "todo");
  assert_string_equal(s.packages[1].range, "1.x || 2.x");
  stack_manifest_free(&s);
  assert_true(is_zero(&s, sizeof s));
  stack_manifest_free(&s);

  /* A description and the stacks it requires. */
  static const char req[] =
      "{\"id\":\"crm\",\"version\":\"2.0.0\",\"description\":\"CRM\","
      "\"packages\":{\"hello\":\"^1\"},"
      "\"requires\":[{\"stack\":\"default\",\"version\":\"^1\"}]}";
  assert_int_equal(stack_manifest_parse(req, strlen(req), NULL, &s, err), 0);
  assert_string_equal(s.description, "CRM");
  assert_int_equal(s.nrequires, 1);
  assert_string_equal(s.requires[0].stack, "default");
  assert_string_equal(s.requires[0].range, "^1");
  stack_manifest_free(&s);
  assert_true(is_zero(&s, sizeof s));

  /* The object form, and the name defaulting to the id. */
  static const char obj[] =
      "{\"id\":\"mini\",\"version\":\"2.0.0\","
      "\"packages\":{\"hello\":\"^1.0.0\",\"todo\":\"*\"}}";
  assert_int_equal(stack_manifest_parse(obj, strlen(obj), NULL, &s, err), 0);
  assert_string_equal(s.name, "mini");
  assert_int_equal(s.npackages, 2);
  assert_string_equal(s.packages[0].name, "hello");
  assert_string_equal(s.packages[0].range, "^1.0.0");
  assert_string_equal(s.packages[1].name, "todo");
  assert_string_equal(s.packages[1].range, "*");
  stack_manifest_free(&s);
}

/* ---- bad package.json: one member replaced or removed ------------------ */

typedef struct bad_case {
  const char *key;
  const char *value; /* JSON text, or NULL to remove the member */
  const char *msg;   /* the whole expected message */
} bad_case;

#define P "package.json: field "
#define NAME_RULE "a name matching [a-z][a-z0-9-]{0,63}"

static const bad_case pkg_bad[] = {
    /* every required field missing */
    {"name", NULL, P "\"name\": expected " NAME_RULE ", got nothing"},
    {"version", NULL, P "\"version\": expected a semver version, got nothing"},
    {"abi", NULL,
     P "\"abi\": expected an ABI version \"MAJOR.MINOR\", got nothing"},
    {"kind", NULL, P "\"kind\": expected \"core\" or \"feature\", got nothing"},
    {"library", NULL,
     P "\"library\": expected a file name ending in \".so\" without \"/\" or "
       "\"..\", got nothing"},
    /* wrong types, rendered each way */
    {"name", "42", P "\"name\": expected " NAME_RULE ", got 42"},
    {"name", "-7", P "\"name\": expected " NAME_RULE ", got -7"},
    {"name", "[]", P "\"name\": expected " NAME_RULE ", got an empty array"},
    {"name", "[\"x\"]", P "\"name\": expected " NAME_RULE ", got an array"},
    {"name", "{}", P "\"name\": expected " NAME_RULE ", got an empty object"},
    {"name", "{\"a\":1}", P "\"name\": expected " NAME_RULE ", got an object"},
    {"version", "1.5", P "\"version\": expected a semver version, got 1.5"},
    {"version", "1e300",
     P "\"version\": expected a semver version, got 1e+300"},
    {"abi", "1", P "\"abi\": expected an ABI version \"MAJOR.MINOR\", got 1"},
    {"abi", "1.0",
     P "\"abi\": expected an ABI version \"MAJOR.MINOR\", got 1.0"},
    {"kind", "true", P "\"kind\": expected \"core\" or \"feature\", got true"},
    {"kind", "false",
     P "\"kind\": expected \"core\" or \"feature\", got false"},
    {"library", "null",
     P "\"library\": expected a file name ending in \".so\" without \"/\" or "
       "\"..\", got null"},
    {"description", "42", P "\"description\": expected a string, got 42"},
    {"description", "null", P "\"description\": expected a string, got null"},
    /* bad names */
    {"name", "\"Hello\"", P "\"name\": expected " NAME_RULE ", got \"Hello\""},
    {"name", "\"1abc\"", P "\"name\": expected " NAME_RULE ", got \"1abc\""},
    {"name", "\"\"", P "\"name\": expected " NAME_RULE ", got \"\""},
    {"name", "\"a_b\"", P "\"name\": expected " NAME_RULE ", got \"a_b\""},
    {"name",
     "\"a1234567890123456789012345678901234567890123456789012345678901234\"",
     P "\"name\": expected " NAME_RULE
       ", got \"a123456789012345678901234567890123456789012345678901234567"
       "89...\""},
    /* rendering: escapes, and a long string cut inside its quotes */
    {"name", "\"a\\\"b\\n\\u0001\"",
     P "\"name\": expected " NAME_RULE ", got \"a\\\"b\\n\\u0001\""},
    {"name",
     "\"a1234567890123456789012345678901234567890123456789012345678901234\"",
     P "\"name\": expected " NAME_RULE
       ", got \"a12345678901234567890123456789012345678901234567890123456789"
       "...\""},
    /* bad semver */
    {"version", "\"1.x\"",
     P "\"version\": expected a semver version, "
       "got \"1.x\""},
    {"version", "\"v1.0.0\"",
     P "\"version\": expected a semver version, "
       "got \"v1.0.0\""},
    {"version", "\"1.0\"",
     P "\"version\": expected a semver version, "
       "got \"1.0\""},
    {"version", "\"01.0.0\"",
     P "\"version\": expected a semver version, "
       "got \"01.0.0\""},
    /* bad abi */
    {"abi", "\"1\"",
     P "\"abi\": expected an ABI version \"MAJOR.MINOR\", got \"1\""},
    {"abi", "\"01.0\"",
     P "\"abi\": expected an ABI version \"MAJOR.MINOR\", got \"01.0\""},
    {"abi", "\"1.00\"",
     P "\"abi\": expected an ABI version \"MAJOR.MINOR\", got \"1.00\""},
    {"abi", "\"1.0.0\"",
     P "\"abi\": expected an ABI version \"MAJOR.MINOR\", got \"1.0.0\""},
    {"abi", "\"1.x\"",
     P "\"abi\": expected an ABI version \"MAJOR.MINOR\", got \"1.x\""},
    {"abi", "\"65536.0\"",
     P "\"abi\": expected an ABI version \"MAJOR.MINOR\", got \"65536.0\""},
    {"abi", "\" 1.0\"",
     P "\"abi\": expected an ABI version \"MAJOR.MINOR\", got \" 1.0\""},
    /* bad kind */
    {"kind", "\"plugin\"",
     P "\"kind\": expected \"core\" or \"feature\", got \"plugin\""},
    {"kind", "\"Core\"",
     P "\"kind\": expected \"core\" or \"feature\", got \"Core\""},
    /* bad library */
    {"library", "\"lib/x.so\"",
     P "\"library\": expected a file name ending in \".so\" without \"/\" or "
       "\"..\", got \"lib/x.so\""},
    {"library", "\"/usr/lib/x.so\"",
     P "\"library\": expected a file name ending in \".so\" without \"/\" or "
       "\"..\", got \"/usr/lib/x.so\""},
    {"library", "\"..x.so\"",
     P "\"library\": expected a file name ending in \".so\" without \"/\" or "
       "\"..\", got \"..x.so\""},
    {"library", "\"libx\"",
     P "\"library\": expected a file name ending in \".so\" without \"/\" or "
       "\"..\", got \"libx\""},
    {"library", "\"libx.so.1\"",
     P "\"library\": expected a file name ending in \".so\" without \"/\" or "
       "\"..\", got \"libx.so.1\""},
    {"library", "\".so\"",
     P "\"library\": expected a file name ending in \".so\" without \"/\" or "
       "\"..\", got \".so\""},
    /* routes */
    {"routes", "{}",
     P "\"routes\": expected an array of routes, got an empty object"},
    {"routes", "\"GET /\"",
     P "\"routes\": expected an array of routes, got \"GET /\""},
    {"routes", "[42]", P "\"routes[0]\": expected a route object, got 42"},
    {"routes", "[{\"path\":\"/a\"}]",
     P "\"routes[0].method\": expected an HTTP method, got nothing"},
    {"routes",
     "[{\"method\":\"GET\",\"path\":\"/a\"},{\"method\":\"get\","
     "\"path\":\"/b\"}]",
     P "\"routes[1].method\": expected an HTTP method, got \"get\""},
    {"routes", "[{\"method\":42,\"path\":\"/a\"}]",
     P "\"routes[0].method\": expected an HTTP method, got 42"},
    {"routes", "[{\"method\":\"\",\"path\":\"/a\"}]",
     P "\"routes[0].method\": expected an HTTP method, got \"\""},
    {"routes", "[{\"method\":\"G-T\",\"path\":\"/a\"}]",
     P "\"routes[0].method\": expected an HTTP method, got \"G-T\""},
    {"routes", "[{\"method\":\"GET\"}]",
     P "\"routes[0].path\": expected a route pattern, got nothing"},
    {"routes", "[{\"method\":\"GET\",\"path\":[]}]",
     P "\"routes[0].path\": expected a route pattern, got an empty array"},
    {"routes", "[{\"method\":\"GET\",\"path\":\"hello\"}]",
     P "\"routes[0].path\": expected a route pattern (must start with "
       "\"/\"), got \"hello\""},
    {"routes", "[{\"method\":\"GET\",\"path\":\"/a//b\"}]",
     P "\"routes[0].path\": expected a route pattern (empty segment at byte "
       "3), got \"/a//b\""},
    {"routes", "[{\"method\":\"GET\",\"path\":\"/a/{B}\"}]",
     P "\"routes[0].path\": expected a route pattern (a parameter name must "
       "match [a-z_][a-z0-9_]* (byte 4)), got \"/a/{B}\""},
    {"routes", "[{\"method\":\"GET\",\"path\":\"/a\",\"handler\":\"x\"}]",
     P "\"routes[0].handler\": unknown field (expected \"method\", "
       "\"path\" or \"scope\")"},
    {"routes", "[{\"methd\":\"GET\",\"path\":\"/a\"}]",
     P "\"routes[0].methd\": unknown field (did you mean \"method\"?)"},
    /* Unknown top-level fields: a typo names the field meant. */
    {"requries", "{}",
     P "\"requries\": unknown field (did you mean \"requires\"?)"},
    {"libary", "\"libx.so\"",
     P "\"libary\": unknown field (did you mean \"library\"?)"},
    {"author", "\"me\"",
     P "\"author\": unknown field (expected \"name\", \"version\", "
       "\"abi\", \"kind\", \"library\", \"description\", \"routes\", "
       "\"requires\", \"uses\", \"config\", \"scopes\", \"ui\" or "
       "\"resources\")"},
    {"routes", "[{\"method\":\"GET\",\"path\":\"/a\",\"scope\":42}]",
     P "\"routes[0].scope\": expected a string, got 42"},
    {"routes",
     "[{\"method\":\"GET\",\"path\":\"/a\"},"
     "{\"method\":\"POST\",\"path\":\"/a\"},"
     "{\"method\":\"GET\",\"path\":\"/a\"}]",
     P "\"routes[2]\": duplicate route \"GET /a\", already declared by "
       "routes[0]"},
    {"routes",
     "[{\"method\":\"GET\",\"path\":\"/u/{id}\"},"
     "{\"method\":\"GET\",\"path\":\"/u/{name}\"}]",
     P "\"routes[1]\": duplicate route \"GET /u/{name}\", already declared "
       "by routes[0]"},
    /* uses: as requires */
    {"uses", "[]",
     P "\"uses\": expected an object of service names to version "
       "ranges, got an empty array"},
    {"uses", "{\"nno.iam\":\"^y\"}",
     P "\"uses.nno.iam\": expected a semver range, got \"^y\""},
    /* requires */
    {"requires", "[]",
     P "\"requires\": expected an object of service names to version "
       "ranges, got an empty array"},
    {"requires", "{\"nno.iam\":\"^y\"}",
     P "\"requires.nno.iam\": expected a semver range, got \"^y\""},
    {"requires", "{\"nno.iam\":\"\"}",
     P "\"requires.nno.iam\": expected a semver range, got \"\""},
    {"requires", "{\"nno.iam\":1}",
     P "\"requires.nno.iam\": expected a semver range, got 1"},
    {"requires", "{\"nno.iam\":\">=1 <2\",\"nno.kv\":\"1.0.0 | 2\"}",
     P "\"requires.nno.kv\": expected a semver range, got \"1.0.0 | 2\""},
    {"requires", "{\"Bad Name\":\"^1\"}",
     P "\"requires\": expected service names like \"nno.iam\", "
       "got \"Bad Name\""},
    {"requires", "{\"nno.\":\"^1\"}",
     P "\"requires\": expected service names like \"nno.iam\", got \"nno.\""},
    /* the JSON blobs */
    {"config", "[]", P "\"config\": expected an object, got an empty array"},
    {"config", "null", P "\"config\": expected an object, got null"},
    {"ui", "\"x\"", P "\"ui\": expected an object, got \"x\""},
    /* ui: what the console shell composes */
    {"ui", "{\"modul\":\"ui/a.js\"}",
     P "\"ui.modul\": unknown field (did you mean \"module\"?)"},
    {"ui", "{\"module\":\"a.js\",\"routes\":[{\"path\":\"/a\"}]}",
     P "\"ui.module\": expected a file under \"ui/\" ending in \".js\" or "
       "\".mjs\" (segments of [A-Za-z0-9._-], none starting with \".\"), "
       "got \"a.js\""},
    {"ui", "{\"module\":\"ui/../x.js\",\"routes\":[{\"path\":\"/a\"}]}",
     P "\"ui.module\": expected a file under \"ui/\" ending in \".js\" or "
       "\".mjs\" (segments of [A-Za-z0-9._-], none starting with \".\"), "
       "got \"ui/../x.js\""},
    {"ui", "{\"module\":\"ui/.a.js\",\"routes\":[{\"path\":\"/a\"}]}",
     P "\"ui.module\": expected a file under \"ui/\" ending in \".js\" or "
       "\".mjs\" (segments of [A-Za-z0-9._-], none starting with \".\"), "
       "got \"ui/.a.js\""},
    {"ui", "{\"module\":\"ui/a.css\",\"routes\":[{\"path\":\"/a\"}]}",
     P "\"ui.module\": expected a file under \"ui/\" ending in \".js\" or "
       "\".mjs\" (segments of [A-Za-z0-9._-], none starting with \".\"), "
       "got \"ui/a.css\""},
    {"ui", "{\"routes\":[{\"path\":\"/a\"}]}",
     P "\"ui.module\": expected the module that renders ui.routes and "
       "ui.nav, got nothing"},
    {"ui", "{\"module\":\"ui/a.js\"}",
     P "\"ui.routes\": expected at least one route for ui.module, got "
       "nothing"},
    {"ui", "{\"module\":\"ui/a.js\",\"routes\":[{\"path\":\"a\"}]}",
     P "\"ui.routes[0].path\": expected a route pattern (must start with "
       "\"/\"), got \"a\""},
    {"ui", "{\"module\":\"ui/a.js\",\"routes\":[{\"path\":\"/a/{x...}\"}]}",
     P "\"ui.routes[0].path\": expected a route pattern without a "
       "{name...} wildcard, got \"/a/{x...}\""},
    {"ui",
     "{\"module\":\"ui/a.js\",\"routes\":[{\"path\":\"/a/{x}\"},"
     "{\"path\":\"/a/{y}\"}]}",
     P "\"ui.routes[1]\": duplicate route \"/a/{y}\", already declared by "
       "ui.routes[0]"},
    {"ui", "{\"module\":\"ui/a.js\",\"routes\":[{\"path\":\"/a\","
           "\"scope\":\"Admin\"}]}",
     P "\"ui.routes[0].scope\": expected \"read\", \"write\", "
       "\"authenticated\" or a scope like \"features:notes:read\", got "
       "\"Admin\""},
    {"ui", "{\"module\":\"ui/a.js\",\"routes\":[{\"path\":\"/a\"}],"
           "\"nav\":[{\"label\":\"A\",\"path\":\"/b\"}]}",
     P "\"ui.nav[0].path\": expected the path of one of ui.routes, got "
       "\"/b\""},
    {"ui", "{\"module\":\"ui/a.js\",\"routes\":[{\"path\":\"/a\"}],"
           "\"nav\":[{\"label\":\"\",\"path\":\"/a\"}]}",
     P "\"ui.nav[0].label\": expected a label of 1 to 40 bytes without "
       "control characters, got \"\""},
    {"ui", "{\"module\":\"ui/a.js\",\"routes\":[{\"path\":\"/a\"}],"
           "\"nav\":[{\"label\":\"A\",\"path\":\"/a\",\"order\":1001}]}",
     P "\"ui.nav[0].order\": expected an integer from 0 to 1000, got 1001"},
    {"ui", "{\"module\":\"ui/a.js\",\"routes\":[{\"path\":\"/a\"}],"
           "\"nav\":[{\"label\":\"A\",\"path\":\"/a\",\"icon\":\"x\"}]}",
     P "\"ui.nav[0].icon\": unknown field (expected \"label\", \"path\", "
       "\"scope\" or \"order\")"},
    {"ui", "{\"module\":\"ui/a.js\",\"routes\":{}}",
     P "\"ui.routes\": expected an array, got an empty object"},
    {"scopes", "{}", P "\"scopes\": expected an array, got an empty object"},
    {"resources", "1", P "\"resources\": expected an array, got 1"},
    {"resources", "[\"sql\"]",
     P "\"resources[0]\": expected an object with \"type\" and \"name\", "
       "got \"sql\""},
    {"resources", "[{\"type\":\"sql\",\"name\":\"a\",\"size\":1}]",
     P "\"resources[0].size\": unknown field (expected \"type\" or "
       "\"name\")"},
    {"resources", "[{\"type\":\"sql\",\"name\":\"a\"},{\"name\":\"b\"}]",
     P "\"resources[1].type\": expected \"sql\", \"kv\" or \"blob\", got "
       "nothing"},
    {"resources", "[{\"type\":\"table\",\"name\":\"a\"}]",
     P "\"resources[0].type\": expected \"sql\", \"kv\" or \"blob\", got "
       "\"table\""},
    {"resources", "[{\"type\":\"kv\"}]",
     P "\"resources[0].name\": expected a resource name matching "
       "[a-z][a-z0-9-]{0,31}, got nothing"},
    {"resources", "[{\"type\":\"kv\",\"name\":\"\"}]",
     P "\"resources[0].name\": expected a resource name matching "
       "[a-z][a-z0-9-]{0,31}, got \"\""},
    {"resources", "[{\"type\":\"kv\",\"name\":\"Notes\"}]",
     P "\"resources[0].name\": expected a resource name matching "
       "[a-z][a-z0-9-]{0,31}, got \"Notes\""},
    {"resources", "[{\"type\":\"kv\",\"name\":\"a_b\"}]",
     P "\"resources[0].name\": expected a resource name matching "
       "[a-z][a-z0-9-]{0,31}, got \"a_b\""},
    {"resources",
     "[{\"type\":\"kv\",\"name\":\"a23456789012345678901234567890123\"}]",
     P "\"resources[0].name\": expected a resource name matching "
       "[a-z][a-z0-9-]{0,31}, got \"a23456789012345678901234567890123\""},
    {"resources", "[{\"type\":\"kv\",\"name\":7}]",
     P "\"resources[0].name\": expected a resource name matching "
       "[a-z][a-z0-9-]{0,31}, got 7"},
    {"resources",
     "[{\"type\":\"sql\",\"name\":\"a\"},{\"type\":\"kv\",\"name\":\"a\"},"
     "{\"type\":\"sql\",\"name\":\"a\"}]",
     P "\"resources[2]\": duplicate resource \"sql a\", already declared "
       "by resources[0]"},
    {"resources",
     "[{\"type\":\"kv\",\"name\":\"a\"},{\"type\":\"kv\",\"name\":\"b\"},"
     "{\"type\":\"kv\",\"name\":\"c\"},{\"type\":\"kv\",\"name\":\"d\"},"
     "{\"type\":\"kv\",\"name\":\"e\"},{\"type\":\"kv\",\"name\":\"f\"},"
     "{\"type\":\"kv\",\"name\":\"g\"},{\"type\":\"kv\",\"name\":\"h\"},"
     "{\"type\":\"sql\",\"name\":\"a\"},{\"type\":\"sql\",\"name\":\"b\"},"
     "{\"type\":\"sql\",\"name\":\"c\"},{\"type\":\"sql\",\"name\":\"d\"},"
     "{\"type\":\"sql\",\"name\":\"e\"},{\"type\":\"sql\",\"name\":\"f\"},"
     "{\"type\":\"sql\",\"name\":\"g\"},{\"type\":\"sql\",\"name\":\"h\"},"
     "{\"type\":\"blob\",\"name\":\"a\"}]",
     P "\"resources\": expected at most 16 resources, got 17"},
};

/* The valid package with `key` replaced by `value` (or removed). */
static char *variant(const char *base, const char *key, const char *value) {
  json_t *root = json_loads(base, 0, NULL);
  assert_non_null(root);
  if (value) {
    json_error_t e;
    json_t *v = json_loads(value, JSON_DECODE_ANY, &e);
    if (!v) fail_msg("bad test JSON %s: %s", value, e.text);
    json_object_set_new(root, key, v);
  } else {
    json_object_del(root, key);
  }
  char *text = json_dumps(root, 0);
  json_decref(root);
  return text;
}

static void test_package_bad(void **state) {
  (void)state;
  for (size_t i = 0; i < N(pkg_bad); i++) {
    package_manifest m;
    char err[MANIFEST_ERR_MAX];
    char *text = variant(pkg_json, pkg_bad[i].key, pkg_bad[i].value);
    int rc = package_manifest_parse(text, strlen(text), NULL, &m, err);
    free(text);
    if (rc != -1) fail_msg("case %zu (%s) was accepted", i, pkg_bad[i].key);
    if (strcmp(err, pkg_bad[i].msg) != 0)
      fail_msg("case %zu:\n got  %s\n want %s", i, err, pkg_bad[i].msg);
    assert_true(is_zero(&m, sizeof m));
  }
}

static void test_long_strings(void **state) {
  package_manifest m;
  char err[MANIFEST_ERR_MAX], v[2048], want[512];
  (void)state;
  /* 1024 bytes pass, 1025 are refused, and the value is shown cut. */
  memset(v, 'a', sizeof v);
  v[0] = '"';
  v[1025] = '"';
  v[1026] = '\0';
  char *text = variant(pkg_json, "description", v);
  assert_int_equal(package_manifest_parse(text, strlen(text), NULL, &m, err),
                   0);
  assert_int_equal(strlen(m.description), 1024);
  package_manifest_free(&m);
  free(text);
  v[1025] = 'a';
  v[1026] = '"';
  v[1027] = '\0';
  text = variant(pkg_json, "description", v);
  assert_int_equal(package_manifest_parse(text, strlen(text), NULL, &m, err),
                   -1);
  free(text);
  snprintf(want, sizeof want,
           P
           "\"description\": expected a string of at most 1024 bytes, "
           "got \"%.60s...\"",
           v + 1);
  assert_string_equal(err, want);

  /* A cut never splits a UTF-8 sequence: 59 bytes, then a 3-byte euro. */
  v[0] = '"';
  memset(v + 1, 'a', 59);
  strcpy(v + 60, "\xe2\x82\xaczzzz\"");
  text = variant(pkg_json, "name", v);
  assert_int_equal(package_manifest_parse(text, strlen(text), NULL, &m, err),
                   -1);
  free(text);
  snprintf(want, sizeof want,
           P "\"name\": expected " NAME_RULE ", got \"%.59s...\"", v + 1);
  assert_string_equal(err, want);
  /* Two-byte characters: 30 of them fill the 60 bytes. */
  strcpy(v, "\"");
  for (int i = 0; i < 40; i++) strcat(v, "\xc3\xa9");
  strcat(v, "\"");
  text = variant(pkg_json, "name", v);
  package_manifest_parse(text, strlen(text), NULL, &m, err);
  free(text);
  snprintf(want, sizeof want,
           P "\"name\": expected " NAME_RULE ", got \"%.60s...\"", v + 1);
  assert_string_equal(err, want);
}

/* ---- bad text ---------------------------------------------------------- */

typedef struct text_case {
  const char *json;
  const char *msg;
} text_case;

static const text_case text_bad[] = {
    {"",
     "p.json: invalid JSON at line 1 column 0: unexpected token near end "
     "of file"},
    {"{\"name\":",
     "p.json: invalid JSON at line 1 column 8: unexpected "
     "token near end of file"},
    {"{\"a\":1,}",
     "p.json: invalid JSON at line 1 column 8: string or '}' "
     "expected near '}'"},
    {"{\"a\":1} x",
     "p.json: invalid JSON at line 1 column 9: end of file "
     "expected near 'x'"},
    {"{\n\"name\":\"a\",\n\"name\":\"b\"}",
     "p.json: invalid JSON at line 3 column 6: duplicate object key near "
     "'\"name\"'"},
    {"{\"a\":\"\\u0000\"}",
     "p.json: invalid JSON at line 1 column 13: "
     "\\u0000 is not allowed without JSON_ALLOW_NUL "
     "near '\"\\u0000\"'"},
    {"\xff",
     "p.json: invalid JSON at line 1 column 0: unable to decode byte "
     "0xff"},
    /* jansson quotes the bytes near the error: a line break among them,
     * or a UTF-8 sequence it cut, becomes '?' (one line, valid UTF-8). */
    {"{\"a\":\"x\\u12\n\"}",
     "p.json: invalid JSON at line 2 column 0: invalid escape near "
     "'\"x\\u12?'"},
    {"{\"a\":\"\\ud80\xd0\xa2\"}",
     "p.json: invalid JSON at line 1 column 12: invalid escape near "
     "'\"\\ud80?'"},
    {"[]", "p.json: expected an object at the top level, got an empty array"},
    {"[1]", "p.json: expected an object at the top level, got an array"},
    {"42", "p.json: expected an object at the top level, got 42"},
    {"\"x\"", "p.json: expected an object at the top level, got \"x\""},
    {"null", "p.json: expected an object at the top level, got null"},
};

static void test_bad_text(void **state) {
  (void)state;
  for (size_t i = 0; i < N(text_bad); i++) {
    package_manifest m;
    stack_manifest s;
    char err[MANIFEST_ERR_MAX];
    const char *j = text_bad[i].json;
    if (package_manifest_parse(j, strlen(j), "p.json", &m, err) != -1)
      fail_msg("case %zu accepted", i);
    if (strcmp(err, text_bad[i].msg) != 0)
      fail_msg("case %zu:\n got  %s\n want %s", i, err, text_bad[i].msg);
    /* The stack parser shares the front end. */
    assert_int_equal(stack_manifest_parse(j, strlen(j), "p.json", &s, err), -1);
    assert_string_equal(err, text_bad[i].msg);
  }
}

static void test_oversize(void **state) {
  package_manifest m;
  stack_manifest s;
  char err[MANIFEST_ERR_MAX];
  size_t n = 1024 * 1024 + 1;
  char *big = malloc(n);
  (void)state;
  assert_non_null(big);
  memset(big, ' ', n);
  big[0] = '{';
  big[n - 1] = '}';
  assert_int_equal(package_manifest_parse(big, n, NULL, &m, err), -1);
  assert_string_equal(err,
                      "package.json: too large (1048577 bytes, at most "
                      "1048576)");
  assert_int_equal(stack_manifest_parse(big, n, NULL, &s, err), -1);
  assert_string_equal(err,
                      "stack.json: too large (1048577 bytes, at most 1048576)");
  /* One byte less is parsed (and then misses its fields). */
  big[n - 2] = '}';
  assert_int_equal(package_manifest_parse(big, n - 1, NULL, &m, err), -1);
  assert_string_equal(err, P "\"name\": expected " NAME_RULE ", got nothing");
  free(big);
}

/* ---- bad stack.json ---------------------------------------------------- */

#define S "stack.json: field "

static const bad_case stack_bad[] = {
    {"id", NULL, S "\"id\": expected " NAME_RULE ", got nothing"},
    {"id", "\"Default\"", S "\"id\": expected " NAME_RULE ", got \"Default\""},
    {"version", NULL, S "\"version\": expected a semver version, got nothing"},
    {"version", "\"^1.0.0\"",
     S "\"version\": expected a semver version, got \"^1.0.0\""},
    {"name", "42", S "\"name\": expected a string, got 42"},
    {"packages", NULL,
     S "\"packages\": expected a non-empty array or object of packages, got "
       "nothing"},
    {"packages", "[]",
     S "\"packages\": expected a non-empty array or object of packages, got "
       "an empty array"},
    {"packages", "{}",
     S "\"packages\": expected a non-empty array or object of packages, got "
       "an empty object"},
    {"packages", "\"hello\"",
     S "\"packages\": expected a non-empty array or object of packages, got "
       "\"hello\""},
    {"packages", "[42]",
     S "\"packages[0]\": expected an object with \"name\" and \"version\", "
       "got 42"},
    {"packages", "[{\"name\":\"hello\",\"range\":\"^1\"}]",
     S "\"packages[0].range\": unknown field (expected \"name\" or "
       "\"version\")"},
    {"packages", "[{\"name\":\"hello\",\"verison\":\"^1\"}]",
     S "\"packages[0].verison\": unknown field (did you mean "
       "\"version\"?)"},
    {"descripton", "\"x\"",
     S "\"descripton\": unknown field (did you mean \"description\"?)"},
    {"description", "42", S "\"description\": expected a string, got 42"},
    {"requires", "{}",
     S "\"requires\": expected an array of {\"stack\", \"version\"} "
       "objects, got an empty object"},
    {"requires", "[{\"stack\":\"base\"}]",
     S "\"requires[0].version\": expected a semver range, got nothing"},
    {"requires", "[{\"stack\":\"Base\",\"version\":\"^1\"}]",
     S "\"requires[0].stack\": expected a stack id matching "
       "[a-z][a-z0-9-]{0,63}, got \"Base\""},
    {"requires", "[{\"stack\":\"base\",\"version\":\"^y\"}]",
     S "\"requires[0].version\": expected a semver range, got \"^y\""},
    {"requires", "[{\"stack\":\"base\",\"version\":\"^1\",\"opt\":1}]",
     S "\"requires[0].opt\": unknown field (expected \"stack\" or "
       "\"version\")"},
    {"requires",
     "[{\"stack\":\"base\",\"version\":\"^1\"},"
     "{\"stack\":\"base\",\"version\":\"^2\"}]",
     S "\"requires[1]\": duplicate stack \"base\", already required by "
       "requires[0]"},
    {"requires", "[{\"stack\":\"default\",\"version\":\"^1\"}]",
     S "\"requires[0].stack\": a stack cannot require itself"},
    {"packages", "[{\"version\":\"^1\"}]",
     S "\"packages[0].name\": expected " NAME_RULE ", got nothing"},
    {"packages", "[{\"name\":\"Hello\",\"version\":\"^1\"}]",
     S "\"packages[0].name\": expected " NAME_RULE ", got \"Hello\""},
    {"packages", "[{\"name\":\"hello\"}]",
     S "\"packages[0].version\": expected a semver range, got nothing"},
    {"packages", "[{\"name\":\"hello\",\"version\":\"^y\"}]",
     S "\"packages[0].version\": expected a semver range, got \"^y\""},
    {"packages",
     "[{\"name\":\"hello\",\"version\":\"1\"},"
     "{\"name\":\"todo\",\"version\":\"1\"},"
     "{\"name\":\"hello\",\"version\":\"2\"}]",
     S "\"packages[2]\": duplicate package \"hello\", already listed as "
       "packages[0]"},
    {"packages", "{\"Hello\":\"^1\"}",
     S "\"packages\": expected package names matching [a-z][a-z0-9-]{0,63}, "
       "got \"Hello\""},
    {"packages", "{\"hello\":1}",
     S "\"packages.hello\": expected a semver range, got 1"},
    {"packages", "{\"hello\":\"^1\",\"todo\":\"1 || \"}",
     S "\"packages.todo\": expected a semver range, got \"1 || \""},
};

static void test_stack_bad(void **state) {
  (void)state;
  for (size_t i = 0; i < N(stack_bad); i++) {
    stack_manifest s;
    char err[MANIFEST_ERR_MAX];
    char *text = variant(stack_json, stack_bad[i].key, stack_bad[i].value);
    int rc = stack_manifest_parse(text, strlen(text), NULL, &s, err);
    free(text);
    if (rc != -1) fail_msg("case %zu (%s) was accepted", i, stack_bad[i].key);
    if (strcmp(err, stack_bad[i].msg) != 0)
      fail_msg("case %zu:\n got  %s\n want %s", i, err, stack_bad[i].msg);
    assert_true(is_zero(&s, sizeof s));
  }
  /* A name given twice in the object form is caught by the JSON reader. */
  static const char dup[] =
      "{\"id\":\"a\",\"version\":\"1.0.0\","
      "\"packages\":{\"hello\":\"1\",\"hello\":\"2\"}}";
  stack_manifest s;
  char err[MANIFEST_ERR_MAX];
  assert_int_equal(stack_manifest_parse(dup, strlen(dup), NULL, &s, err), -1);
  assert_string_equal(err,
                      "stack.json: invalid JSON at line 1 column 59: "
                      "duplicate object key near '\"hello\"'");
}

/* ---- files ------------------------------------------------------------- */

static void write_file(const char *path, const char *data, size_t n) {
  FILE *f = fopen(path, "wb");
  assert_non_null(f);
  assert_int_equal(fwrite(data, 1, n, f), n);
  fclose(f);
}

static void test_load(void **state) {
  package_manifest m;
  stack_manifest s;
  char err[MANIFEST_ERR_MAX], dir[] = "/tmp/nno-manifest-XXXXXX", path[256],
                              want[512];
  (void)state;
  assert_non_null(mkdtemp(dir));

  snprintf(path, sizeof path, "%s/package.json", dir);
  write_file(path, pkg_json, strlen(pkg_json));
  assert_int_equal(package_manifest_load(path, &m, err), 0);
  assert_string_equal(m.name, "hello");
  package_manifest_free(&m);

  snprintf(path, sizeof path, "%s/stack.json", dir);
  write_file(path, stack_json, strlen(stack_json));
  assert_int_equal(stack_manifest_load(path, &s, err), 0);
  assert_int_equal(s.npackages, 2);
  stack_manifest_free(&s);

  /* Messages about the content name the file. */
  snprintf(path, sizeof path, "%s/bad.json", dir);
  write_file(path, "{\"id\":\"x\"}", 10);
  assert_int_equal(stack_manifest_load(path, &s, err), -1);
  snprintf(want, sizeof want,
           "%s: field \"version\": expected a semver version, got nothing",
           path);
  assert_string_equal(err, want);
  assert_true(is_zero(&s, sizeof s));

  /* I/O errors name the file and the reason. */
  assert_int_equal(package_manifest_load("/nonexistent/package.json", &m, err),
                   -1);
  assert_string_equal(err,
                      "/nonexistent/package.json: cannot open: No such "
                      "file or directory");
  assert_true(is_zero(&m, sizeof m));
  assert_int_equal(stack_manifest_load("/nonexistent/stack.json", &s, err), -1);
  assert_string_equal(err,
                      "/nonexistent/stack.json: cannot open: No such "
                      "file or directory");
  assert_int_equal(package_manifest_load(dir, &m, err), -1);
  snprintf(want, sizeof want, "%s: not a regular file", dir);
  assert_string_equal(err, want);

  /* Oversize files are refused from their size, before reading. */
  size_t n = 1024 * 1024 + 1;
  char *big = calloc(1, n);
  assert_non_null(big);
  snprintf(path, sizeof path, "%s/big.json", dir);
  write_file(path, big, n);
  free(big);
  assert_int_equal(package_manifest_load(path, &m, err), -1);
  snprintf(want, sizeof want, "%s: too large (1048577 bytes, at most 1048576)",
           path);
  assert_string_equal(err, want);

  /* An empty file is a JSON error, not an I/O one. */
  snprintf(path, sizeof path, "%s/empty.json", dir);
  write_file(path, "", 0);
  assert_int_equal(package_manifest_load(path, &m, err), -1);
  snprintf(want, sizeof want,
           "%s: invalid JSON at line 1 column 0: unexpected token near end "
           "of file",
           path);
  assert_string_equal(err, want);

  const char *names[] = {"package.json", "stack.json", "bad.json", "big.json",
                         "empty.json"};
  for (size_t i = 0; i < N(names); i++) {
    snprintf(path, sizeof path, "%s/%s", dir, names[i]);
    unlink(path);
  }
  rmdir(dir);
}

static void test_free_zeroed(void **state) {
  package_manifest m;
  stack_manifest s;
  (void)state;
  memset(&m, 0, sizeof m);
  memset(&s, 0, sizeof s);
  package_manifest_free(&m);
  package_manifest_free(&m);
  stack_manifest_free(&s);
  stack_manifest_free(&s);
  package_manifest_free(NULL);
  stack_manifest_free(NULL);
}

/* ---- allocation failure ------------------------------------------------ */

/* jansson's allocator, failing call number g_fail_at and counting the
 * blocks alive. The manifest code allocates through it too. */
static long g_calls, g_fail_at, g_live;

static void *fault_malloc(size_t n) {
  if (++g_calls == g_fail_at) return NULL;
  void *p = malloc(n);
  if (p) g_live++;
  return p;
}

static void fault_free(void *p) {
  if (p) g_live--;
  free(p);
}

/* Parses `json` with allocation N failing for N = 1, 2, ... until a parse
 * succeeds. Every failure must leak nothing, leave the output zeroed and
 * say "out of memory" -- except inside json_loadb(), where jansson reports
 * some allocation failures as syntax errors. */
static void fault_loop(const char *json, int stack) {
  char err[MANIFEST_ERR_MAX];
  const char *what = stack ? "stack.json: " : "package.json: ";
  char oom[64], bad_json[64];
  long n, noom = 0;
  snprintf(oom, sizeof oom, "%sout of memory", what);
  snprintf(bad_json, sizeof bad_json, "%sinvalid JSON at ", what);
  json_set_alloc_funcs(fault_malloc, fault_free);
  for (n = 1;; n++) {
    package_manifest m;
    stack_manifest s;
    g_calls = 0;
    g_live = 0;
    g_fail_at = n;
    int rc = stack ? stack_manifest_parse(json, strlen(json), NULL, &s, err)
                   : package_manifest_parse(json, strlen(json), NULL, &m, err);
    if (rc == 0) {
      if (stack)
        stack_manifest_free(&s);
      else
        package_manifest_free(&m);
      if (g_live != 0) fail_msg("%ld blocks leaked on success", g_live);
      break;
    }
    if (g_live != 0) fail_msg("allocation %ld failed: %ld leaked", n, g_live);
    if (strcmp(err, oom) == 0)
      noom++;
    else if (strncmp(err, bad_json, strlen(bad_json)) != 0)
      fail_msg("allocation %ld failed: message \"%s\"", n, err);
    if (stack ? !is_zero(&s, sizeof s) : !is_zero(&m, sizeof m))
      fail_msg("allocation %ld failed: output not zeroed", n);
  }
  json_set_alloc_funcs(malloc, free);
  /* The loop must have covered many allocation sites, including every
   * one of manifest.c's own (each reported as "out of memory"). */
  assert_true(n > 20);
  assert_true(noom >= 10);
}

static void test_fault_package(void **state) {
  (void)state;
  fault_loop(pkg_json, 0);
}

static void test_fault_stack(void **state) {
  static const char obj[] =
      "{\"id\":\"mini\",\"version\":\"2.0.0\","
      "\"packages\":{\"hello\":\"^1.0.0\",\"todo\":\"*\"}}";
  (void)state;
  fault_loop(stack_json, 1);
  fault_loop(obj, 1);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_package_valid),
      cmocka_unit_test(test_package_minimal),
      cmocka_unit_test(test_package_route_limit),
      cmocka_unit_test(test_package_resources_limit),
      cmocka_unit_test(test_stack_valid),
      cmocka_unit_test(test_package_bad),
      cmocka_unit_test(test_long_strings),
      cmocka_unit_test(test_bad_text),
      cmocka_unit_test(test_oversize),
      cmocka_unit_test(test_stack_bad),
      cmocka_unit_test(test_load),
      cmocka_unit_test(test_free_zeroed),
      cmocka_unit_test(test_fault_package),
      cmocka_unit_test(test_fault_stack),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
