/* The composition: each active package's "ui" (its package.json, read
 * once per loaded stack version and kept until the set of stacks
 * changes), filtered by the caller's scopes. */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "console.h"

/* Bounds of what is read: the manifest's size, the arrays of "ui". */
#define MANIFEST_MAX (1u << 20)
#define ROUTES_MAX 32
#define NAV_MAX 16
#define ORDER_DEFAULT 100

/* The parsed "ui" of the packages of one stack version, keyed by its
 * handle: a JSON array of {"package", "version", "module", "routes",
 * "nav"} with module as its URL and every scope in full, for the packages
 * that contribute one. */
typedef struct stack_ui {
  struct stack_ui *next;
  nno_stack *stack;
  json_t *packages;
} stack_ui;

static stack_ui *cached;

void console_compose_clear(void) {
  while (cached) {
    stack_ui *s = cached;
    cached = s->next;
    json_decref(s->packages);
    free(s);
  }
}

/* The full scope of an entry's "scope" (absent: read). The rules of the
 * schema (which strings a scope may be, route patterns, labels, orders)
 * are the host's: the loader refused any manifest that breaks them
 * (host/manifest.c, the same check `nno check-package` runs), so only the
 * shape is guarded here, against a file edited after it was loaded. */
static json_t *full_scope(const char *package, const json_t *v) {
  const char *s = v ? json_string_value(v) : "read";
  if (!s) return NULL;
  if (strcmp(s, "read") == 0 || strcmp(s, "write") == 0)
    return json_sprintf("features:%s:%s", package, s);
  return json_string(s);
}

/* The "ui" of one package, as the composition keeps it, or NULL (none, or
 * one the schema refuses: logged). */
static json_t *parse_ui(const char *stack_id, const char *stack_version,
                        const char *package, const char *version,
                        const json_t *ui) {
  const char *why = NULL;
  json_t *out = NULL, *routes = NULL, *nav = NULL;
  const char *module = json_string_value(json_object_get(ui, "module"));
  const json_t *jr = json_object_get(ui, "routes");
  const json_t *jn = json_object_get(ui, "nav");
  size_t ml = module ? strlen(module) : 0;
  if (!json_is_object(ui)) return NULL;
  if (!jr && !jn) return NULL; /* nothing for the shell */
  if (!module || ml < 4 || strncmp(module, "ui/", 3) != 0 ||
      !nno_static_path_ok(module + 3, ml - 3) ||
      !((ml > 3 && strcmp(module + ml - 3, ".js") == 0) ||
        (ml > 4 && strcmp(module + ml - 4, ".mjs") == 0))) {
    why = "module: expected a path under ui/ ending .js or .mjs";
    goto bad;
  }
  if (!json_is_array(jr) || json_array_size(jr) < 1 ||
      json_array_size(jr) > ROUTES_MAX) {
    why = "routes: expected 1 to 32 routes";
    goto bad;
  }
  if (jn && (!json_is_array(jn) || json_array_size(jn) > NAV_MAX)) {
    why = "nav: expected at most 16 entries";
    goto bad;
  }
  routes = json_array();
  nav = json_array();
  if (!routes || !nav) goto oom;
  size_t i;
  const json_t *e;
  json_array_foreach(jr, i, e) {
    const char *path = json_string_value(json_object_get(e, "path"));
    json_t *scope = full_scope(package, json_object_get(e, "scope"));
    if (!path || path[0] != '/' || !scope) {
      json_decref(scope);
      why = "routes: expected {\"path\": \"/x/{param}\", \"scope\": ...}";
      goto bad;
    }
    if (json_array_append_new(
            routes, json_pack("{s:s, s:o}", "path", path, "scope", scope)))
      goto oom;
  }
  json_array_foreach(jn, i, e) {
    const char *label = json_string_value(json_object_get(e, "label"));
    const char *path = json_string_value(json_object_get(e, "path"));
    const json_t *jo = json_object_get(e, "order");
    json_int_t order = jo ? json_integer_value(jo) : ORDER_DEFAULT;
    json_t *scope = full_scope(package, json_object_get(e, "scope"));
    int known = 0;
    size_t k;
    const json_t *r;
    json_array_foreach(routes, k, r) {
      if (path &&
          strcmp(json_string_value(json_object_get(r, "path")), path) == 0)
        known = 1;
    }
    if (!label || !known || !scope || (jo && !json_is_integer(jo))) {
      json_decref(scope);
      why = "nav: expected {\"label\", \"path\" of a route, \"order\" 0..1000}";
      goto bad;
    }
    if (json_array_append_new(
            nav, json_pack("{s:s, s:s, s:o, s:I}", "label", label, "path", path,
                           "scope", scope, "order", order)))
      goto oom;
  }
  out = json_pack("{s:s, s:s, s:o, s:o, s:o}", "package", package, "version",
                  version, "module",
                  json_sprintf("/console/ui/%s/%s/%s/%s/%s", stack_id,
                               stack_version, package, version, module + 3),
                  "routes", routes, "nav", nav);
  routes = nav = NULL; /* json_pack took them, even when it failed */
  if (!out) goto oom;
  return out;
bad:
  api->log(self, NNO_LOG_WARN,
           "package %s %s: its \"ui\" is not shown in the console: %s", package,
           version, why);
  json_decref(routes);
  json_decref(nav);
  return NULL;
oom:
  json_decref(routes);
  json_decref(nav);
  json_decref(out);
  return NULL;
}

/* The "ui" member of {dir}/package.json; NULL when absent or unreadable
 * (logged). OWNERSHIP: a new reference. */
static json_t *read_manifest_ui(const char *dir, const char *package) {
  char path[4096];
  struct stat st;
  json_t *root = NULL, *ui = NULL;
  char *text = NULL;
  size_t got = 0;
  if (snprintf(path, sizeof path, "%s/package.json", dir) >= (int)sizeof path)
    return NULL;
  int fd = open(path, O_RDONLY | O_NOFOLLOW | O_CLOEXEC);
  if (fd < 0) goto fail;
  if (fstat(fd, &st) != 0 || !S_ISREG(st.st_mode) || st.st_size < 0 ||
      (uint64_t)st.st_size > MANIFEST_MAX)
    goto fail;
  text = malloc((size_t)st.st_size + 1);
  if (!text) goto fail;
  while (got < (size_t)st.st_size) {
    ssize_t n = read(fd, text + got, (size_t)st.st_size - got);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) goto fail;
    got += (size_t)n;
  }
  root = json_loadb(text, got, JSON_REJECT_DUPLICATES, NULL);
  if (!root) goto fail;
  ui = json_incref(json_object_get(root, "ui"));
  json_decref(root);
  free(text);
  close(fd);
  return ui;
fail:
  api->log(self, NNO_LOG_WARN, "package %s: cannot read its manifest", package);
  free(text);
  if (fd >= 0) close(fd);
  return NULL;
}

/* The packages of stack `s` with their parsed "ui", from the cache or
 * read now. NULL when out of memory. */
static stack_ui *stack_ui_get(nno_stack *s) {
  nno_str sid, sver, name, version, dir;
  for (stack_ui *c = cached; c; c = c->next)
    if (c->stack == s) return c;
  if (api->stack_info(s, &sid, &sver) != NNO_OK) return NULL;
  stack_ui *c = calloc(1, sizeof *c);
  if (!c) return NULL;
  c->stack = s;
  c->packages = json_array();
  if (!c->packages) {
    free(c);
    return NULL;
  }
  for (size_t i = 0;
       api->stack_package_at(self, s, i, &name, &version, &dir, NULL) == NNO_OK;
       i++) {
    /* The shell is not a feature of itself. */
    if (strcmp(name.ptr, "console") == 0) continue;
    json_t *ui = read_manifest_ui(dir.ptr, name.ptr);
    json_t *parsed =
        ui ? parse_ui(sid.ptr, sver.ptr, name.ptr, version.ptr, ui) : NULL;
    json_decref(ui);
    if (parsed) {
      json_object_set_new(parsed, "stack", json_string(sid.ptr));
      json_object_set_new(parsed, "stack_version", json_string(sver.ptr));
      json_array_append_new(c->packages, parsed);
    }
  }
  c->next = cached;
  cached = c;
  return c;
}

int console_allows(const char *granted, size_t len, const char *scope) {
  const nno_iam_v1 *iam = console_iam();
  if (strcmp(scope, "authenticated") == 0) return 1;
  if (!iam ||
      iam->size <
          offsetof(nno_iam_v1, scope_allows) + sizeof iam->scope_allows ||
      !iam->scope_allows)
    return 0;
  return iam->scope_allows(granted ? granted : "", granted ? len : 0, scope) ==
         1;
}

/* Add `scope` to the array `set` unless it is there. */
static int scope_add(json_t *set, const char *scope) {
  size_t i;
  const json_t *v;
  json_array_foreach(set, i, v) {
    if (strcmp(json_string_value(v), scope) == 0) return 0;
  }
  return json_array_append_new(set, json_string(scope));
}

/* One package of the composition as the caller sees it, or NULL when
 * none of its routes is allowed (or out of memory). */
static json_t *package_for(const json_t *pkg, const char *scopes, size_t len) {
  json_t *routes = json_array(), *nav = json_array(), *set = json_array();
  json_t *hidden = json_array();
  size_t i;
  const json_t *e;
  if (!routes || !nav || !set || !hidden) goto drop;
  json_array_foreach(json_object_get(pkg, "routes"), i, e) {
    const char *scope = json_string_value(json_object_get(e, "scope"));
    if (!console_allows(scopes, len, scope)) {
      /* Named, so the shell does not match it with a parameter route
       * ("/notes/new" is not note "new"). */
      if (json_array_append(hidden, json_object_get(e, "path"))) goto drop;
      continue;
    }
    if (json_array_append(routes, (json_t *)e) || scope_add(set, scope))
      goto drop;
  }
  if (json_array_size(routes) == 0) goto drop;
  json_array_foreach(json_object_get(pkg, "nav"), i, e) {
    const char *scope = json_string_value(json_object_get(e, "scope"));
    const char *path = json_string_value(json_object_get(e, "path"));
    int routed = 0;
    size_t k;
    const json_t *r;
    if (!console_allows(scopes, len, scope)) continue;
    /* An entry leading to a route the caller may not see goes too. */
    json_array_foreach(routes, k, r) {
      if (strcmp(json_string_value(json_object_get(r, "path")), path) == 0)
        routed = 1;
    }
    if (!routed) continue;
    if (json_array_append(nav, (json_t *)e) || scope_add(set, scope)) goto drop;
  }
  json_t *out = json_pack(
      "{s:O, s:O, s:O, s:O, s:O, s:o, s:o, s:o}", "stack",
      json_object_get(pkg, "stack"), "stack_version",
      json_object_get(pkg, "stack_version"), "package",
      json_object_get(pkg, "package"), "version",
      json_object_get(pkg, "version"), "module", json_object_get(pkg, "module"),
      "nav", nav, "routes", routes, "scopes", set);
  if (!out || json_array_size(hidden) == 0) {
    json_decref(hidden);
    return out;
  }
  if (json_object_set_new(out, "hidden", hidden)) { /* took `hidden` */
    json_decref(out);
    return NULL;
  }
  return out;
drop:
  json_decref(hidden);
  json_decref(routes);
  json_decref(nav);
  json_decref(set);
  return NULL;
}

json_t *console_compose(const char *platform, const char *scopes, size_t len) {
  const nno_registry_v1 *reg = console_registry();
  json_t *out =
      json_pack("{s:s, s:o}", "platform", platform, "packages", json_array());
  json_t *list = json_object_get(out, "packages");
  nno_stack *s;
  if (!out) return NULL;
  if (!reg ||
      reg->size < offsetof(nno_registry_v1, platform_stack_at) +
                      sizeof reg->platform_stack_at ||
      !reg->platform_stack_at)
    return out; /* a registry that cannot say: nothing to show */
  for (size_t i = 0; reg->platform_stack_at(platform, i, &s) == NNO_OK; i++) {
    stack_ui *c = stack_ui_get(s);
    size_t k;
    const json_t *pkg;
    if (!c) {
      json_decref(out);
      return NULL;
    }
    json_array_foreach(c->packages, k, pkg) {
      json_t *seen = package_for(pkg, scopes, len);
      if (seen && json_array_append_new(list, seen)) {
        json_decref(out);
        return NULL;
      }
    }
  }
  return out;
}
