/* The admin core plugin: serves the operator view (ui/, embedded at build
 * time) under /admin/ on "admin.{baseDomain}", an origin of its own where
 * nothing a package controls is served (the registry answers no /p/{id}/
 * path there), so no package's page can read the key the view keeps in
 * sessionStorage. The other core API hosts send /admin/... there. The page
 * holds no secret and no data: it calls /api/v1/... with the operator key
 * the operator types, so its routes are public, and the core API keeps
 * deciding who may do what. See README.md. */
#include <stdio.h>
#include <string.h>
#include <strings.h>

#include <nno/plugin.h>
#include <nno/sdk/base.h>
#include <nno/sdk/problem.h>
#include <nno/sdk/static.h>

#include "assets.h"

static const nno_host_api *api;
static nno_plugin *self;

/* The page's policy (CONSOLE.md, "Security headers") on every file, as a
 * script or a stylesheet opened as a document must not run anything
 * either. nno_static_answer adds X-Content-Type-Options, the ETag and the
 * Cache-Control. */
static const char *const security_headers[][2] = {
    {"Content-Security-Policy",
     "default-src 'none'; script-src 'self'; style-src 'self'; "
     "img-src 'self' data:; connect-src 'self'; font-src 'self'; "
     "manifest-src 'self'; base-uri 'none'; form-action 'self'; "
     "frame-ancestors 'none'"},
    {"X-Frame-Options", "DENY"},
    {"Referrer-Policy", "no-referrer"},
};

/* The label before the base domain of the operator view's host. */
#define ADMIN_LABEL "admin."

/* Longest Location sent: "//admin." + base (< 256) + ":" + port + the
 * path and query (bounded by the host's request line). */
#define LOCATION_MAX 8192

/* The asset named exactly `name` (`len` bytes), or NULL. Names are file
 * names only: a path with a '/', a '..' or an encoded byte names none. */
static const admin_asset *asset_find(const char *name, size_t len) {
  for (size_t i = 0; i < admin_nassets; i++) {
    const admin_asset *a = &admin_assets[i];
    if (strlen(a->name) == len && memcmp(a->name, name, len) == 0) return a;
  }
  return NULL;
}

/* The cross-origin isolation headers, on every answer (a redirect and a
 * problem included). */
static int isolation_headers(nno_req *req) {
  int (*add)(nno_req *, const char *, const char *) =
      NNO_HAS(api, res_header_keep) ? api->res_header_keep : api->res_header;
  int rc = add(req, "Cross-Origin-Opener-Policy", "same-origin");
  if (!rc) rc = add(req, "Cross-Origin-Resource-Policy", "same-origin");
  return rc;
}

/* 1 when the request came to "admin.{base}" (the host name without its
 * port, lower-cased by the host; the base compared without case). */
static int on_admin_host(nno_req *req) {
  const char *base = api->host_base_domain(self);
  nno_str h = api->req_host(req);
  size_t al = sizeof ADMIN_LABEL - 1, bl = strlen(base);
  return bl && h.len == al + bl && memcmp(h.ptr, ADMIN_LABEL, al) == 0 &&
         strncasecmp(h.ptr + al, base, bl) == 0;
}

/* A 308 to `path` (and the request's query) on "admin.{base}", keeping the
 * port of the Host header when it is digits only (any other is dropped).
 * Scheme-relative, so the browser keeps the scheme it used. */
static int to_admin_host(nno_req *req, const char *path, size_t plen) {
  const char *base = api->host_base_domain(self);
  nno_str host = {"", 0}, query = api->req_query(req);
  const char *port = "";
  size_t port_len = 0;
  if (api->req_header(req, "Host", &host) == NNO_OK) {
    /* The port follows the last ':' after any IPv6 literal's ']'. */
    const char *b = memchr(host.ptr, ']', host.len);
    const char *from = b ? b : host.ptr;
    const char *c = memchr(from, ':', host.len - (size_t)(from - host.ptr));
    if (c) {
      port = c + 1;
      port_len = host.len - (size_t)(port - host.ptr);
      int ok = port_len >= 1 && port_len <= 5;
      for (size_t i = 0; ok && i < port_len; i++)
        ok = port[i] >= '0' && port[i] <= '9';
      if (!ok) port_len = 0;
    }
  }
  char *loc = api->req_alloc(req, LOCATION_MAX);
  if (!loc) return NNO_ENOMEM;
  int n = snprintf(loc, LOCATION_MAX, "//%s%s%s%.*s%.*s%s%.*s", ADMIN_LABEL,
                   base, port_len ? ":" : "", (int)port_len, port, (int)plen,
                   path, query.len ? "?" : "", (int)query.len, query.ptr);
  if (n < 0 || n >= LOCATION_MAX)
    return nno_problem(req, 414, NULL, "the address is too long");
  int rc = isolation_headers(req);
  if (!rc) rc = api->res_status(req, 308);
  if (!rc) rc = api->res_header(req, "Location", loc);
  if (!rc) rc = api->res_header(req, "Cache-Control", "no-cache");
  return rc ? nno_problem(req, 500, NULL, "cannot answer") : NNO_OK;
}

/* GET /admin: the page lives at /admin/ (its relative URLs need the
 * slash), on the admin host. */
static int on_admin_root(nno_req *req, void *ud) {
  (void)ud;
  return to_admin_host(req, "/admin/", 7);
}

/* GET (and HEAD) /admin/{file...}: index.html for an empty rest. */
static int on_admin_file(nno_req *req, void *ud) {
  (void)ud;
  if (!on_admin_host(req)) {
    nno_str path = api->req_path(req);
    return to_admin_host(req, path.ptr, path.len);
  }
  if (isolation_headers(req))
    return nno_problem(req, 500, NULL, "cannot answer");
  nno_str file = {"", 0};
  if (api->req_param(req, "file", &file) != NNO_OK) file.len = 0;
  const admin_asset *a =
      file.len ? asset_find(file.ptr, file.len) : asset_find("index.html", 10);
  /* The path is not echoed: it is the client's, and says nothing new. */
  if (!a)
    return nno_problem(req, 404, NULL, "no such file in the operator view");
  int rc = NNO_OK;
  for (size_t i = 0;
       !rc && i < sizeof security_headers / sizeof *security_headers; i++)
    rc = api->res_header(req, security_headers[i][0], security_headers[i][1]);
  if (rc) return nno_problem(req, 500, NULL, "cannot answer");
  /* Unversioned URLs: the browser revalidates, and gets 304 while the
   * build is the same. */
  return nno_static_answer(req, nno_static_type(a->name, strlen(a->name)),
                           a->data, a->len, a->etag, "no-cache");
}

static int admin_init(nno_plugin *p, const nno_host_api *host) {
  api = host;
  self = p;
  nno_sdk_init(p, host);
  if (!asset_find("index.html", 10)) {
    api->plugin_fail(p, "built without its ui/index.html");
    return NNO_EINVAL;
  }
  int rc = api->route_add(p, "GET", "/admin", on_admin_root, NULL);
  if (!rc)
    rc = api->route_add(p, "GET", "/admin/{file...}", on_admin_file, NULL);
  if (rc) {
    api->plugin_fail(p, "cannot bind its routes: %s", api->err_name(rc));
    return rc;
  }
  return NNO_OK;
}

NNO_PLUGIN(.name = "admin", .version = "1.0.0", .kind = NNO_KIND_CORE,
           .on_plugin_init = admin_init)
