/* Route table: method + path pattern -> target, matched in one walk of a
 * segment trie (cost grows with the path's length, not the number of routes).
 *
 * Patterns (validated by route_pattern_valid() in manifest.h): "/hello",
 * "/hello/{name}", "/files/{rest...}". Precedence at each segment: a literal
 * segment beats "{param}", which beats "{rest...}"; matching backtracks, so
 * "/a/{x}/c" and "/a/b/d" both match what they should. A trailing "/" is
 * significant ("/hello" and "/hello/" are different routes).
 */
#ifndef NNO_HOST_ROUTER_H
#define NNO_HOST_ROUTER_H

#include <stddef.h>

#define ROUTER_MAX_PARAMS 16

typedef struct router router;

typedef struct route_param {
  const char *name; /* borrowed from the router (NUL-terminated) */
  size_t name_len;
  const char *value; /* borrowed from the matched path (not terminated) */
  size_t value_len;
} route_param;

typedef struct route_match {
  void *target;        /* what router_add() was given */
  const char *pattern; /* the route's pattern, NUL-terminated, borrowed */
  const char *method;  /* the route's method ("GET", "*"), borrowed */
  size_t nparams;
  route_param params[ROUTER_MAX_PARAMS];
} route_match;

router *router_new(void);
void router_free(router *r);

/* Add a route. `method` is an upper-case token or "*" (any method). Both
 * strings are copied. Returns 0, -EINVAL-like NNO_EINVAL for a bad pattern,
 * NNO_EEXIST when method+pattern is taken, NNO_ENOMEM. */
int router_add(router *r, const char *method, const char *pattern,
               void *target);

/* Number of routes added. */
size_t router_count(const router *r);

/* Match a request. Returns
 *   0            found; *m filled (params point into `path`),
 *   NNO_ENOENT   no route has this path,
 *   NNO_EINVAL   a route has this path but not this method: `allow` (if not
 *                NULL) receives the allowed methods, ", "-separated and
 *                NUL-terminated, truncated to allow_len.
 * A HEAD request matches a GET route when no HEAD route exists. */
int router_match(const router *r, const char *method, size_t method_len,
                 const char *path, size_t path_len, route_match *m,
                 char *allow, size_t allow_len);

#endif
