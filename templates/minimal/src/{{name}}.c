/* {{name}}: a feature package with one route.
 *
 *   GET /hello   {"message": "hello from {{name}}"}
 *
 * A key of the platform with scope features:{{name}}:read (or features:*)
 * may call it: IAM checks the manifest's "scope" before the handler runs.
 * Built against the plugin API (nno/plugin.h) and the SDK (nno/sdk.h: JSON
 * answers, problems, request bodies), both found by pkg-config. */
#include <nno/plugin.h>
#include <nno/sdk.h>

static const nno_host_api *api;

static int on_hello(nno_req *req, void *ud) {
  (void)ud;
  return nno_send_json(req, 200,
                       json_pack("{s:s}", "message", "hello from {{name}}"));
}

static int {{c_name}}_init(nno_plugin *p, const nno_host_api *host) {
  api = host;
  nno_sdk_init(p, host);
  int rc = api->route_add(p, "GET", "/hello", on_hello, NULL);
  if (rc != NNO_OK)
    api->plugin_fail(p, "cannot bind GET /hello: %s", api->strerror(rc));
  return rc;
}

/* name and version must be the manifest's: the Makefile passes
 * package.json's version as PACKAGE_VERSION. */
NNO_PLUGIN(.name = "{{name}}", .version = PACKAGE_VERSION,
           .kind = NNO_KIND_FEATURE, .on_plugin_init = {{c_name}}_init)
