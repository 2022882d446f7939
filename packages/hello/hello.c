/* hello: the smallest useful feature package.
 *
 *   GET /hello              {"message":"hello, world"}
 *   GET /hello/{name}       {"message":"hello, NAME"}
 *   GET /hello/later?ms=N   the same greeting after N ms (0..10000, default
 *                           100), answered from a timer: the handler returns
 *                           NNO_ASYNC and the worker serves others meanwhile.
 *
 * The greeting word comes from the manifest's "config": {"greeting": ...}.
 * Built only against plugin-api/: the ABI, and the SDK for the problem
 * answers, the query parameter and reading the config. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <nno/plugin.h>
#include <nno/sdk.h>

static const nno_host_api *api;
static nno_plugin *self;

typedef struct state {
  char greeting[32];
} state;

/* Write {"message":"<greeting>, <name>"} with the name JSON-escaped, into
 * the request's arena: this handler is the benchmarks' feature route, so
 * it builds its answer without a JSON library's allocations. */
static int greet(nno_req *req, const state *st, const char *name,
                 size_t len) {
  static const char hex[] = "0123456789abcdef";
  size_t gl = strlen(st->greeting);
  /* Worst case every byte becomes \u00XX (6 bytes). */
  size_t cap = 16 + gl + len * 6;
  char *out = api->req_alloc(req, cap);
  if (!out) return NNO_ENOMEM;
  size_t n = 0;
  memcpy(out, "{\"message\":\"", 12);
  n = 12;
  memcpy(out + n, st->greeting, gl);
  n += gl;
  out[n++] = ',';
  out[n++] = ' ';
  for (size_t i = 0; i < len; i++) {
    unsigned char c = (unsigned char)name[i];
    if (c == '"' || c == '\\') {
      out[n++] = '\\';
      out[n++] = (char)c;
    } else if (c < 0x20 || c == 0x7f) {
      memcpy(out + n, "\\u00", 4);
      out[n + 4] = hex[c >> 4];
      out[n + 5] = hex[c & 15];
      n += 6;
    } else {
      out[n++] = (char)c;
    }
  }
  memcpy(out + n, "\"}", 2);
  return api->res_json(req, 200, out, n + 2);
}

static int on_hello(nno_req *req, void *ud) {
  return greet(req, ud, "world", 5);
}

static int on_hello_name(nno_req *req, void *ud) {
  nno_str name;
  if (api->req_param(req, "name", &name) != NNO_OK) return NNO_EINVAL;
  if (name.len > 128)
    return nno_problem(req, 400, NULL, "name is longer than 128 bytes");
  return greet(req, ud, name.ptr, name.len);
}

typedef struct later {
  nno_req *req;
  const state *st;
} later;

static void on_later_timer(nno_timer *t, void *ud) {
  later *l = ud;
  api->timer_stop(t);
  /* The client may have gone; the response is then simply dropped. */
  if (greet(l->req, l->st, "later", 5) != NNO_OK)
    nno_problem(l->req, 500, NULL, "cannot greet");
  api->res_end(l->req); /* frees l: it lives in the request's arena */
}

static int on_hello_later(nno_req *req, void *ud) {
  long ms = 100;
  char q[16];
  int r = nno_query_copy(req, "ms", q, sizeof q);
  if (r < 0) return NNO_OK; /* answered: too long */
  if (r > 0) {
    char *end;
    ms = strtol(q, &end, 10);
    if (!q[0] || *end || ms < 0 || ms > 10000)
      return nno_problem(req, 400, NULL,
                         "ms must be an integer from 0 to 10000");
  }
  later *l = api->req_alloc(req, sizeof *l);
  if (!l) return NNO_ENOMEM;
  l->req = req;
  l->st = ud;
  nno_timer *t;
  int rc = api->timer_start(self, (uint64_t)ms, 0, on_later_timer, l, &t);
  if (rc != NNO_OK) return rc;
  return NNO_ASYNC;
}

/* Read "greeting" (1 to 31 bytes) from the config object, which the host
 * has validated as JSON; anything else keeps the default. */
static void read_greeting(const char *json, char *out, size_t cap) {
  json_t *cfg = json_loads(json, 0, NULL);
  json_t *g = json_object_get(cfg, "greeting");
  size_t n = json_string_length(g);
  if (json_is_string(g) && n > 0 && n < cap)
    memcpy(out, json_string_value(g), n + 1);
  json_decref(cfg);
}

static int hello_init(nno_plugin *p, const nno_host_api *host) {
  api = host;
  self = p;
  nno_sdk_init(p, host);
  state *st = calloc(1, sizeof *st);
  if (!st) return NNO_ENOMEM;
  strcpy(st->greeting, "hello");
  read_greeting(api->plugin_config(p), st->greeting, sizeof st->greeting);
  api->plugin_set_data(p, st);
  int rc;
  if ((rc = api->route_add(p, "GET", "/hello", on_hello, st)) ||
      (rc = api->route_add(p, "GET", "/hello/later", on_hello_later, st)) ||
      (rc = api->route_add(p, "GET", "/hello/{name}", on_hello_name, st))) {
    api->plugin_fail(p, "cannot bind routes: %s", api->strerror(rc));
    free(st);
    api->plugin_set_data(p, NULL);
    return rc;
  }
  return NNO_OK;
}

static void hello_fini(nno_plugin *p) { free(api->plugin_data(p)); }

NNO_PLUGIN(.name = "hello", .version = "1.0.0", .kind = NNO_KIND_FEATURE,
           .on_plugin_init = hello_init, .on_plugin_fini = hello_fini)
