/* package.json and stack.json: parsing and validation with exact messages.
 *
 * Every error message names the file, the field (as a JSON path), what was
 * expected and what was got, e.g.
 *   package.json: field "version": expected a semver version, got "1.x"
 *   package.json: field "routes[2].method": expected an HTTP method, got 42
 *   package.json: field "name": expected a name matching ..., got nothing
 * "got" shows a missing field as `nothing`; a string, number, true, false
 * or null as JSON (a string longer than 60 bytes is cut, `"abc..."`); a
 * container as `an object`, `an empty object`, `an array` or `an empty
 * array`. Other shapes:
 *   WHAT: invalid JSON at line L column C: <jansson's text>
 *   WHAT: expected an object at the top level, got VALUE
 *   WHAT: field "routes[1]": duplicate route "GET /a", already declared by
 *         routes[0]              (also: duplicate package "x", already
 *                                 listed as packages[0])
 *   WHAT: too large (N bytes, at most 1048576)
 *   PATH: cannot open: <strerror>          (also "cannot read")
 *   WHAT: out of memory
 * An unknown field anywhere is refused, naming the nearest known one when
 * it is within 2 edits (a typo), else the fields expected there:
 *   WHAT: field "requries": unknown field (did you mean "requires"?)
 *   WHAT: field "routes[0].handler": unknown field (expected "method",
 *         "path" or "scope")
 * and so is a key given twice in any object.
 *
 * Limits: 1 MiB of JSON, 256 routes, 64 requires, 256 stack packages,
 * 16 resources, 1024 bytes per string. "resources" entries are objects of
 * exactly "type" ("sql", "kv" or "blob") and "name" (1..32 bytes of
 * [a-z][a-z0-9-]*), each type+name once:
 *   WHAT: field "resources[1]": duplicate resource "sql notes", already
 *         declared by resources[0] Patterns that differ only in parameter names
 * ("/u/{id}", "/u/{name}") are duplicates, as they are to the router.
 * Strings are allocated with jansson's allocator (json_set_alloc_funcs);
 * change it only while no manifest is alive.
 */
#ifndef NNO_HOST_MANIFEST_H
#define NNO_HOST_MANIFEST_H

#include <stddef.h>
#include <stdint.h>

#include "semver.h"

#define MANIFEST_ERR_MAX 512

typedef struct manifest_route {
  char *method;  /* upper-case HTTP token, or "*" */
  char *path;    /* pattern, validated by route_pattern_valid() rules */
  char *scope;   /* required scope, or NULL (checked by later policies) */
} manifest_route;

typedef struct manifest_require {
  char *service; /* "nno.iam" */
  char *range;   /* semver range on the service's version, e.g. "^1" */
} manifest_require;

/* One entry of "resources" (ABI 1.2): what the package uses on each
 * platform. At most MANIFEST_RESOURCES_MAX, each type+name once. */
#define MANIFEST_RESOURCES_MAX 16
#define MANIFEST_RESOURCE_NAME_MAX 32
typedef struct manifest_resource {
  char type[8];                               /* "sql", "kv" or "blob" */
  char name[MANIFEST_RESOURCE_NAME_MAX + 1];  /* [a-z][a-z0-9-]{0,31} */
} manifest_resource;

typedef struct package_manifest {
  char *name;        /* [a-z][a-z0-9-]{0,63} */
  char *version;     /* semver text */
  semver ver;
  uint16_t abi_major, abi_minor; /* from "abi": "1.0" */
  int kind;          /* NNO_KIND_CORE or NNO_KIND_FEATURE */
  char *library;     /* file name relative to the manifest's folder: no '/',
                        no "..", ends in ".so" */
  char *description; /* may be NULL */
  manifest_route *routes;
  size_t nroutes;
  manifest_require *requires;
  size_t nrequires;
  /* "uses": services looked up when present (the package answers without
   * them): not resolved at load, but a table of pointers all the same, so
   * such a package cannot run sandboxed. */
  manifest_require *uses;
  size_t nuses;
  char *config_json; /* "config" object re-serialised compactly; "{}" */
  char *scopes_json; /* "scopes" array as JSON, "[]" when absent */
  char *ui_json;     /* "ui" object as JSON, "{}" when absent */
  char *resources_json; /* "resources" array as JSON, "[]" when absent */
  manifest_resource *resources; /* the same, checked */
  size_t nresources;
} package_manifest;

typedef struct stack_package {
  char *name;  /* package name */
  char *range; /* semver range the stack wants ("1.0.0", "^1.0") */
} stack_package;

/* One entry of a stack's "requires": another stack that must be active
 * on the platform at a version in `range`. */
typedef struct stack_require {
  char *stack; /* stack id */
  char *range; /* semver range, e.g. "^1" */
} stack_require;

typedef struct stack_manifest {
  char *id;      /* [a-z][a-z0-9-]{0,63} */
  char *version; /* semver text */
  semver ver;
  char *name;    /* display name; defaults to id */
  char *description; /* may be NULL */
  stack_package *packages;
  size_t npackages; /* >= 1 */
  stack_require *requires; /* "requires": [{"stack", "version"}] */
  size_t nrequires;
} stack_manifest;

/* The entry of m->resources of `type` and `name`, or NULL. */
const manifest_resource *manifest_resource_find(const package_manifest *m,
                                                const char *type,
                                                const char *name);

/* Parse and validate. On failure returns -1, writes a one-line message into
 * err (at most MANIFEST_ERR_MAX bytes, NUL-terminated) and leaves *out
 * zeroed. `what` names the source in messages ("package.json" or a path).
 * On success the caller frees with the matching _free(). */
int package_manifest_parse(const char *json, size_t len, const char *what,
                           package_manifest *out, char *err);
int package_manifest_load(const char *path, package_manifest *out, char *err);
void package_manifest_free(package_manifest *m);

int stack_manifest_parse(const char *json, size_t len, const char *what,
                         stack_manifest *out, char *err);
int stack_manifest_load(const char *path, stack_manifest *out, char *err);
void stack_manifest_free(stack_manifest *m);

/* As _load, from a file already open on `fd` (read from its current
 * offset; left open), named `what` in messages: the loader opens and
 * judges the file first (trust_open), then reads what it judged. */
int package_manifest_read(int fd, const char *what, package_manifest *out,
                          char *err);
int stack_manifest_read(int fd, const char *what, stack_manifest *out,
                        char *err);

/* Route patterns: start with '/', segments of [A-Za-z0-9._~!$&'()*+,;=:@%-]
 * or a whole-segment parameter "{name}" ([a-z_][a-z0-9_]*), a final
 * "{name...}" wildcard; no empty segment except a trailing "/"; at most 16
 * parameters, each name once. Also refused: "." and ".." segments (clients
 * normalise them away), a '%' not starting %XX, more than 1024 bytes.
 * Returns 0 or -1 with a reason in err (which may be NULL), e.g.
 * "empty segment at byte 3". Implemented in router.c. */
int route_pattern_valid(const char *pattern, char *err, size_t errlen);

#endif
