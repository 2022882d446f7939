/* The admin core plugin: serves the operator view (ui/, embedded at build
 * time) under /admin/ on the core API hosts. The page holds no secret and
 * no data: it calls /api/v1/... with the operator key the operator types,
 * so its routes are public, and the core API keeps deciding who may do
 * what. See README.md. */
#include <string.h>

#include <nno/plugin.h>
#include <nno/sdk/base.h>
#include <nno/sdk/problem.h>
#include <nno/sdk/static.h>

#include "assets.h"

static const nno_host_api *api;

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

/* The asset named exactly `name` (`len` bytes), or NULL. Names are file
 * names only: a path with a '/', a '..' or an encoded byte names none. */
static const admin_asset *asset_find(const char *name, size_t len) {
  for (size_t i = 0; i < admin_nassets; i++) {
    const admin_asset *a = &admin_assets[i];
    if (strlen(a->name) == len && memcmp(a->name, name, len) == 0) return a;
  }
  return NULL;
}

/* GET /admin: the page lives at /admin/ (its relative URLs need the
 * slash). */
static int on_admin_root(nno_req *req, void *ud) {
  (void)ud;
  int rc = api->res_status(req, 308);
  if (!rc) rc = api->res_header(req, "Location", "/admin/");
  if (!rc) rc = api->res_header(req, "Cache-Control", "no-cache");
  return rc ? nno_problem(req, 500, NULL, "cannot answer") : NNO_OK;
}

/* GET (and HEAD) /admin/{file...}: index.html for an empty rest. */
static int on_admin_file(nno_req *req, void *ud) {
  (void)ud;
  nno_str file = {"", 0};
  if (api->req_param(req, "file", &file) != NNO_OK) file.len = 0;
  const admin_asset *a = file.len ? asset_find(file.ptr, file.len)
                                  : asset_find("index.html", 10);
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
