/* Package and stack manifests (host/manifest.c): the same bytes parsed as
 * a package.json and as a stack.json. A refusal leaves the output zeroed
 * with a one-line message; an acceptance holds only values that pass the
 * same rules again, and routes the router takes without complaint (the
 * manifest's duplicate rule is the router's). */
#include <stdint.h>
#include <string.h>

#include <jansson.h>
#include <nno/plugin.h>

#include "fuzz.h"
#include "jsonv.h"
#include "manifest.h"
#include "router.h"

static void check_err(const char *err, const char *what) {
  size_t n = strnlen(err, MANIFEST_ERR_MAX);
  FUZZ_ASSERT(n < MANIFEST_ERR_MAX);
  FUZZ_ASSERT(n > strlen(what) + 2);
  FUZZ_ASSERT(strncmp(err, what, strlen(what)) == 0);
  /* One line of valid UTF-8: it goes to stderr and into JSON log lines. */
  for (size_t i = 0; i < n;) {
    size_t k = json_utf8_len(err + i, n - i);
    FUZZ_ASSERT(k > 0);
    FUZZ_ASSERT((unsigned char)err[i] >= 0x20 && err[i] != 0x7f);
    i += k;
  }
}

static int zeroed(const void *p, size_t n) {
  const unsigned char *b = p;
  for (size_t i = 0; i < n; i++)
    if (b[i]) return 0;
  return 1;
}

static void check_json(const char *s, int object) {
  FUZZ_ASSERT(s != NULL);
  FUZZ_ASSERT(json_valid(s, strlen(s)));
  FUZZ_ASSERT(s[0] == (object ? '{' : '['));
}

static void check_package(const package_manifest *m) {
  semver v;
  FUZZ_ASSERT(m->name && m->name[0] >= 'a' && m->name[0] <= 'z');
  FUZZ_ASSERT(strlen(m->name) <= 64);
  FUZZ_ASSERT(m->version && semver_parse(m->version, &v) == 0);
  FUZZ_ASSERT(semver_cmp(&v, &m->ver) == 0);
  FUZZ_ASSERT(m->kind == NNO_KIND_CORE || m->kind == NNO_KIND_FEATURE);
  FUZZ_ASSERT(m->library && !strchr(m->library, '/'));
  FUZZ_ASSERT(!strstr(m->library, ".."));
  FUZZ_ASSERT(m->nroutes <= 256 && m->nrequires <= 64);
  check_json(m->config_json, 1);
  check_json(m->ui_json, 1);
  check_json(m->scopes_json, 0);
  check_json(m->resources_json, 0);
  FUZZ_ASSERT(m->nresources <= MANIFEST_RESOURCES_MAX);
  for (size_t i = 0; i < m->nresources; i++) {
    const manifest_resource *q = &m->resources[i];
    FUZZ_ASSERT(!strcmp(q->type, "sql") || !strcmp(q->type, "kv") ||
                !strcmp(q->type, "blob"));
    FUZZ_ASSERT(q->name[0] >= 'a' && q->name[0] <= 'z');
    FUZZ_ASSERT(manifest_resource_find(m, q->type, q->name) == q);
  }
  router *r = router_new();
  FUZZ_ASSERT(r != NULL);
  for (size_t i = 0; i < m->nroutes; i++) {
    FUZZ_ASSERT(m->routes[i].method && m->routes[i].path);
    FUZZ_ASSERT(route_pattern_valid(m->routes[i].path, NULL, 0) == 0);
    FUZZ_ASSERT(router_add(r, m->routes[i].method, m->routes[i].path, NULL) ==
                0);
  }
  router_free(r);
  for (size_t i = 0; i < m->nrequires; i++) {
    FUZZ_ASSERT(m->requires[i].service && m->requires[i].range);
    FUZZ_ASSERT(semver_range_valid(m->requires[i].range) == 0);
  }
}

static void check_stack(const stack_manifest *m) {
  semver v;
  FUZZ_ASSERT(m->id && m->name && m->version);
  FUZZ_ASSERT(semver_parse(m->version, &v) == 0);
  FUZZ_ASSERT(semver_cmp(&v, &m->ver) == 0);
  FUZZ_ASSERT(m->npackages >= 1 && m->npackages <= 256);
  for (size_t i = 0; i < m->npackages; i++) {
    FUZZ_ASSERT(m->packages[i].name && m->packages[i].range);
    FUZZ_ASSERT(semver_range_valid(m->packages[i].range) == 0);
    for (size_t j = 0; j < i; j++)
      FUZZ_ASSERT(strcmp(m->packages[i].name, m->packages[j].name) != 0);
  }
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  char err[MANIFEST_ERR_MAX];
  package_manifest pm;
  stack_manifest sm;
  const char *json = (const char *)data;

  if (package_manifest_parse(json, size, "package.json", &pm, err) == 0) {
    FUZZ_ASSERT(err[0] == '\0');
    check_package(&pm);
    package_manifest_free(&pm);
  } else {
    check_err(err, "package.json");
  }
  FUZZ_ASSERT(zeroed(&pm, sizeof pm));

  if (stack_manifest_parse(json, size, "stack.json", &sm, err) == 0) {
    FUZZ_ASSERT(err[0] == '\0');
    check_stack(&sm);
    stack_manifest_free(&sm);
  } else {
    check_err(err, "stack.json");
  }
  FUZZ_ASSERT(zeroed(&sm, sizeof sm));
  return 0;
}
