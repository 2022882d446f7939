/* The gateway: what happens to a parsed request — request id and trace
 * context, built-in endpoints, routing, dispatch to a plugin's handler,
 * access log and metrics. Later policy steps (authn, limits, ...) slot in
 * between routing and dispatch. */
#ifndef NNO_HOST_GATEWAY_H
#define NNO_HOST_GATEWAY_H

#include <nno/plugin.h>

#include "http.h"

struct conn;
struct plugin;

/* What a route points at. Owned by the plugin set. */
typedef struct route_target {
  struct plugin *plugin;
  nno_handler_fn fn;
  void *ud;
  const char *scope; /* the manifest's "scope" for the route, "" if none */
  uint64_t upload_max; /* route_add_upload's bound; 0: an ordinary route */
} route_target;

/* Set the request id, traceparent and start time (hr may be NULL for a
 * request refused before it was parsed). */
void gateway_prepare(struct conn *c, const http_request *hr);
/* The same for a request of no connection (platform_event). */
struct worker;
void gateway_prepare_req(struct worker *w, nno_req *r, const http_request *hr);
/* The request's W3C traceparent (55 characters, NUL-terminated), built on
 * first use from the received one or generated. Owned by the request. */
const char *gateway_traceparent(nno_req *r);
/* Handle a complete request; ends with conn_request_done() now or later. */
void gateway_handle(struct conn *c, const http_request *hr);
/* The head of a request whose body would be spooled (an upload route of
 * the core router matched its method and path; conn.c) is complete: set
 * the request up, run RESOLVE and CORS, route it, and for an upload route
 * run AUTHN..LIMIT, so a refusal is answered before the body is read.
 *   GW_ANSWERED  the response is ready in c->req (refused, or not routed)
 *   GW_UPLOAD    an upload route; stages passed: c->req.match is its route,
 *                gateway_handle() dispatches it once the body is in
 *   GW_ORDINARY  routed elsewhere after all (a platform's own route of the
 *                same path): the request was reset, and is handled as any
 *                other once its body is in memory */
enum { GW_ORDINARY = 0, GW_ANSWERED = 1, GW_UPLOAD = 2 };
int gateway_head(struct conn *c, const http_request *hr);
/* Record the finished request (metrics, access log), then call the
 * end-of-request hooks. */
void gateway_complete(struct conn *c);
/* Call every end-of-request hook (gateway_done_add) with `status` if the
 * request is owed them, and mark it paid: at most once per request. The
 * request cannot be written meanwhile. */
void gateway_done(nno_req *r, int status);

/* A request id is accepted from the client if it is 1..64 characters of
 * [A-Za-z0-9._:-]; otherwise one is generated. */
int gateway_request_id_valid(const char *s, size_t n);
/* W3C traceparent "00-<32 hex>-<16 hex>-<2 hex>", ids not all zero. */
int gateway_traceparent_valid(const char *s, size_t n);

#endif
