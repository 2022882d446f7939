/* console: the console shell of each platform.
 *
 *   GET /                    the shell's page (ui/index.html, {{base}}
 *                            replaced), only on the console.{p} host;
 *                            elsewhere a 404 naming the console's URL
 *   GET /console/boot.js     the page's loader: imports the shell, shows an
 *                            error with "Try again" when it cannot
 *   GET /console/profile     the platform's name, branding, sign-up and
 *                            the shell's asset prefix (public)
 *   GET /console/ui          the UI contributions of the packages active
 *                            on the platform that the caller may use
 *   GET /console/tenants     the tenants the caller may act in
 *   GET /device              the page approving a device login (public)
 *   GET /console/device, POST /console/device/approve|deny
 *                            what it shows and does, answered by IAM
 *   GET /console/ui/{stack}/{stack_version}/{package}/{version}/{file...}
 *                            a file of that package's ui/ folder, only
 *                            while that stack version is active on the
 *                            platform (public)
 *
 * The registry (nno.registry) says which stacks a platform runs and what
 * it shows; IAM (nno.iam) says what a caller's scopes allow. */
#include <limits.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "console.h"

const nno_host_api *api;
nno_plugin *self;

/* Bound of a platform id, a stack id or version, NUL included. */
#define ID_MAX 65
/* The shell page, after its template is filled. */
#define PAGE_MAX (256u << 10)

/* The headers of every HTML page (CONSOLE.md: no inline script or
 * style; nothing from another origin). */
static const char csp[] =
    "default-src 'none'; script-src 'self'; style-src 'self'; "
    "img-src 'self' data:; connect-src 'self'; font-src 'self'; "
    "manifest-src 'self'; base-uri 'none'; form-action 'self'; "
    "frame-ancestors 'none'";

/* The headers of every asset: a document opened from an asset URL loads
 * nothing and runs no script. */
static const char asset_csp[] = "default-src 'none'; sandbox";

static const nno_registry_v1 *registry;
static const nno_iam_v1 *iam;

const nno_registry_v1 *console_registry(void) {
  const void *vt;
  uint32_t ver;
  if (!registry &&
      api->service_lookup(self, NNO_REGISTRY_SERVICE, 1, &vt, &ver) == NNO_OK)
    registry = vt;
  return registry;
}

const nno_iam_v1 *console_iam(void) {
  const void *vt;
  uint32_t ver;
  if (!iam &&
      api->service_lookup(self, NNO_IAM_SERVICE, 1, &vt, &ver) == NNO_OK)
    iam = vt;
  return iam;
}

#define HAS_MEMBER(vt, type, m) \
  ((vt) && (vt)->size >= offsetof(type, m) + sizeof(vt)->m && (vt)->m)

/* 1 if the request came by a host name of platform `p`, {name}.{p}.{base}
 * (RESOLVE scoped it by its host), 0 if by the /p/{p}/ path: a host shared
 * with the core API, the operator view and every other platform, where a
 * console file would run in an origin that is not the platform's own. */
static int on_own_host(nno_req *req, const char *p) {
  nno_str h = api->req_host(req);
  const char *base = api->host_base_domain(self);
  size_t pl = strlen(p), bl = strlen(base), tail = pl + 1 + bl;
  if (h.len < tail + 2) return 0; /* at least "x." before {p}.{base} */
  const char *t = h.ptr + h.len - tail;
  return t[-1] == '.' && t[-2] != '.' && memcmp(t, p, pl) == 0 &&
         t[pl] == '.' && memcmp(t + pl + 1, base, bl) == 0;
}

static int not_the_console(nno_req *req, const char *platform);

/* The request's platform, NUL-terminated, or 0 after answering 404: no
 * platform, or one reached by path (every console route answers only on
 * the platform's own hosts; the 404 names the console's URL). */
static int platform_of(nno_req *req, char out[ID_MAX]) {
  nno_str p = api->req_platform(req);
  if (p.len == 0 || p.len >= ID_MAX)
    return nno_problem(req, 404, NULL, "no platform serves this request"), 0;
  memcpy(out, p.ptr, p.len);
  out[p.len] = '\0';
  if (!on_own_host(req, out)) return not_the_console(req, out), 0;
  return 1;
}

/* This package's own asset prefix, "/console/ui/{stack}/{stack_version}/
 * console/{version}". */
static void base_of(char *out, size_t cap) {
  nno_str id = {"", 0}, ver = {"", 0};
  api->plugin_stack(self, &id, &ver);
  snprintf(out, cap, "/console/ui/%.*s/%.*s/%s/%s", (int)id.len, id.ptr,
           (int)ver.len, ver.ptr, api->plugin_name(self),
           api->plugin_version(self));
}

static void no_store(nno_req *req) {
  api->res_header(req, "Cache-Control", "no-store");
}

/* ---- the page --------------------------------------------------------------
 */

/* The folder of package `name` at `version` of stack `s`, or NULL. */
static const char *package_dir(nno_stack *s, const char *name, size_t nl,
                               const char *version, size_t vl) {
  nno_str n, v, d;
  for (size_t i = 0;
       api->stack_package_at(self, s, i, &n, &v, &d, NULL) == NNO_OK; i++)
    if (n.len == nl && memcmp(n.ptr, name, nl) == 0 && v.len == vl &&
        memcmp(v.ptr, version, vl) == 0)
      return d.ptr;
  return NULL;
}

/* Where the console of platform `p` is, for a request that came
 * elsewhere: the scheme-less host with the request's own port. */
static int not_the_console(nno_req *req, const char *platform) {
  nno_str host;
  const char *port = "";
  int port_len = 0;
  if (api->req_header(req, "Host", &host) == NNO_OK) {
    const char *c = memchr(host.ptr, ':', host.len);
    /* An IPv6 literal has colons of its own; its port follows "]". */
    const char *b = memchr(host.ptr, ']', host.len);
    if (b) c = memchr(b, ':', host.len - (size_t)(b - host.ptr));
    if (c) {
      port = c;
      port_len = (int)(host.len - (size_t)(c - host.ptr));
      if (port_len > 6) port_len = 0;
    }
  }
  return nno_problem(
      req, 404, NULL,
      "the console of platform %s is at http://console.%s.%s%.*s/", platform,
      platform, api->host_base_domain(self), port_len, port);
}

/* This package's own ui/ folder into `out`; 0 when unknown. */
static int own_ui_dir(char out[PATH_MAX]) {
  nno_str id, ver;
  nno_stack *s;
  if (api->plugin_stack(self, &id, &ver) != NNO_OK ||
      api->stack_find(self, id.ptr, ver.ptr, &s) != NNO_OK)
    return 0;
  const char *name = api->plugin_name(self),
             *version = api->plugin_version(self);
  const char *dir =
      package_dir(s, name, strlen(name), version, strlen(version));
  return dir && snprintf(out, PATH_MAX, "%s/ui", dir) < PATH_MAX;
}

/* Serve page `file` of ui/ (a template: "{{base}}" filled) with the
 * pages' headers, only on console.{p}.{base}. */
static int serve_page(nno_req *req, const char *file) {
  char platform[ID_MAX], base[256], etag[NNO_STATIC_ETAG_MAX];
  nno_str host = api->req_host(req);
  nno_static_file f;
  if (!platform_of(req, platform)) return NNO_OK;
  if (host.len < 8 || memcmp(host.ptr, "console.", 8) != 0)
    return not_the_console(req, platform);
  char uidir[PATH_MAX];
  if (!own_ui_dir(uidir))
    return nno_problem(req, 500, NULL, "the console's folder is unknown");
  int rc = nno_static_open(uidir, file, strlen(file), &f);
  if (rc != 0) {
    api->log(self, NNO_LOG_ERROR, "ui/%s: %s", file, api->strerror(rc));
    return nno_problem(req, 500, NULL, "the console's page cannot be read");
  }
  /* Fill the template: every "{{base}}" becomes the asset prefix. */
  base_of(base, sizeof base);
  size_t bl = strlen(base), n = 0;
  char *page = api->req_alloc(req, PAGE_MAX);
  if (!page) return NNO_ENOMEM;
  for (size_t i = 0; i < f.len;) {
    const char *src = f.data + i;
    size_t take = 1;
    if (f.len - i >= 8 && memcmp(src, "{{base}}", 8) == 0) {
      src = base;
      take = bl;
      i += 8;
    } else {
      i++;
    }
    if (n + take > PAGE_MAX)
      return nno_problem(req, 500, NULL, "the console's page is too large");
    memcpy(page + n, src, take);
    n += take;
  }
  nno_static_etag(page, n, etag, sizeof etag);
  api->res_header(req, "Content-Security-Policy", csp);
  api->res_header(req, "X-Frame-Options", "DENY");
  api->res_header(req, "Referrer-Policy", "no-referrer");
  return nno_static_answer(req, "text/html; charset=utf-8", page, n, etag,
                           "no-cache");
}

static int on_page(nno_req *req, void *ud) {
  (void)ud;
  return serve_page(req, "index.html");
}

/* ---- approving a device login ----------------------------------------------
 */

/* GET /device: where `nno login` sends a person (IAM's verification_uri),
 * ui/device/device.html; ?code= is read by its script. */
static int on_device_page(nno_req *req, void *ud) {
  (void)ud;
  return serve_page(req, "device/device.html");
}

/* GET /console/device and POST /console/device/approve|deny: answered by
 * IAM (nno.iam device_answer), which checks the caller itself, so that the
 * routes can be public for the operator key (refused on feature routes by
 * the chain) while a session cookie still obeys the chain's origin rule
 * for changes. Only on the platform's own hosts. */
static int on_device(nno_req *req, void *ud) {
  char platform[ID_MAX];
  const nno_iam_v1 *im = console_iam();
  if (!platform_of(req, platform)) return NNO_OK;
  if (!HAS_MEMBER(im, nno_iam_v1, device_answer))
    return nno_problem(req, 501, NULL,
                       "this host's IAM cannot approve device logins here");
  return im->device_answer(req, (int)(intptr_t)ud);
}

/* The page's loader (ui/boot.js), outside the versioned asset path: it
 * imports the shell and, when the shell's files cannot be fetched, shows
 * an error with "Try again" instead of a page stuck on "Loading…". */
static int on_boot(nno_req *req, void *ud) {
  char platform[ID_MAX], uidir[PATH_MAX];
  (void)ud;
  if (!platform_of(req, platform)) return NNO_OK;
  if (!own_ui_dir(uidir))
    return nno_problem(req, 500, NULL, "the console's folder is unknown");
  api->res_header(req, "Content-Security-Policy", asset_csp);
  api->res_header(req, "X-Frame-Options", "DENY");
  api->res_header(req, "Cross-Origin-Resource-Policy", "same-origin");
  return nno_static_serve(req, uidir, "boot.js", 7, "no-cache");
}

/* ---- profile, composition, tenants
 * ------------------------------------------- */

static int on_profile(nno_req *req, void *ud) {
  char platform[ID_MAX], base[256];
  const nno_registry_v1 *reg = console_registry();
  const nno_iam_v1 *im = console_iam();
  json_t *profile = NULL;
  (void)ud;
  if (!platform_of(req, platform)) return NNO_OK;
  if (HAS_MEMBER(reg, nno_registry_v1, platform_profile)) {
    char *buf = malloc(NNO_REGISTRY_PROFILE_MAX);
    if (!buf) return NNO_ENOMEM;
    int rc = reg->platform_profile(platform, buf, NNO_REGISTRY_PROFILE_MAX);
    if (rc == NNO_OK) profile = json_loads(buf, JSON_REJECT_DUPLICATES, NULL);
    free(buf);
    if (rc == NNO_ENOENT)
      return nno_problem(req, 404, NULL, "no such platform");
    if (rc == NNO_EBUSY)
      return nno_problem_retry(req, 503, 1, "the registry is busy");
    if (rc != NNO_OK || !json_is_object(profile)) {
      json_decref(profile);
      return nno_problem(req, 500, NULL,
                         "the platform's profile is unreadable");
    }
  } else {
    /* A registry without profiles: what the status says. */
    char status[16] = "active";
    if (HAS_MEMBER(reg, nno_registry_v1, platform_status))
      reg->platform_status(platform, status, sizeof status);
    profile =
        json_pack("{s:s, s:s, s:s, s:s, s:{}}", "id", platform, "name",
                  platform, "class", "platform", "status", status, "branding");
    if (!profile) return NNO_ENOMEM;
  }
  nno_iam_access access = {0};
  if (HAS_MEMBER(im, nno_iam_v1, platform_access) &&
      im->platform_access(platform, &access) != NNO_OK)
    access.signup = 0;
  base_of(base, sizeof base);
  json_object_set_new(profile, "signup", json_boolean(access.signup));
  json_object_set_new(profile, "base", json_string(base));
  no_store(req);
  return nno_send_json(req, 200, profile);
}

static int on_compose(nno_req *req, void *ud) {
  char platform[ID_MAX];
  nno_caller c;
  (void)ud;
  if (!platform_of(req, platform)) return NNO_OK;
  if (api->req_caller(req, &c) != NNO_OK) c.scopes.ptr = NULL, c.scopes.len = 0;
  json_t *out = console_compose(platform, c.scopes.ptr, c.scopes.len);
  if (!out) return NNO_ENOMEM;
  no_store(req);
  return nno_send_json(req, 200, out);
}

static int tenant_each(void *ud, const char *id, const char *name,
                       const char *path, const char *status) {
  return json_array_append_new(
             ud, json_pack("{s:s, s:s, s:s, s:s}", "id", id, "name", name,
                           "path", path, "status", status))
             ? NNO_ENOMEM
             : 0;
}

/* The tenants the caller may act in, listed only for a caller whose
 * scopes allow tenants:read (the core API's tenant list asks the same);
 * anyone else learns only its own binding. */
static int on_tenants(nno_req *req, void *ud) {
  char platform[ID_MAX], tenant[ID_MAX];
  const nno_registry_v1 *reg = console_registry();
  nno_caller c;
  int truncated = 0;
  (void)ud;
  if (!platform_of(req, platform)) return NNO_OK;
  if (api->req_caller(req, &c) != NNO_OK || c.tenant.len >= ID_MAX)
    return nno_problem(req, 500, NULL, "the caller is unknown");
  memcpy(tenant, c.tenant.ptr, c.tenant.len);
  tenant[c.tenant.len] = '\0';
  json_t *items = json_array();
  if (!items) return NNO_ENOMEM;
  if (console_allows(c.scopes.ptr, c.scopes.len, "tenants:read")) {
    if (!HAS_MEMBER(reg, nno_registry_v1, tenant_list)) {
      json_decref(items);
      return nno_problem_retry(req, 503, 1,
                               "the registry cannot list tenants");
    }
    int rc = reg->tenant_list(platform, tenant[0] ? tenant : NULL,
                              tenant_each, items);
    if (rc == NNO_ETOOBIG) {
      truncated = 1; /* the first NNO_REGISTRY_TENANTS_MAX are listed */
      rc = 0;
    }
    if (rc == NNO_ENOENT && tenant[0]) {
      /* The credential's tenant is gone: nothing to act in. */
      json_array_clear(items);
      rc = 0;
    }
    if (rc != 0) {
      json_decref(items);
      if (rc == NNO_EBUSY)
        return nno_problem_retry(req, 503, 1, "the registry is busy");
      if (rc == NNO_ENOENT)
        return nno_problem(req, 404, NULL, "no such platform");
      return nno_problem(req, 500, NULL, "the tenants cannot be listed");
    }
  }
  json_t *out =
      json_pack("{s:o, s:o}", "tenant",
                tenant[0] ? json_string(tenant) : json_null(), "items", items);
  if (!out) return NNO_ENOMEM;
  if (truncated && json_object_set_new(out, "truncated", json_true())) {
    json_decref(out);
    return NNO_ENOMEM;
  }
  no_store(req);
  return nno_send_json(req, 200, out);
}

/* ---- assets ----------------------------------------------------------------
 */

/* 1 if folder `dir` lies under DATA/stacks/ (an installed archive, never
 * edited in place: its versioned URLs may be cached for good). */
static int installed_uncached(const char *dir) {
  char want[PATH_MAX], rstacks[PATH_MAX], rdir[PATH_MAX];
  if (snprintf(want, sizeof want, "%s/stacks", api->host_data_dir(self)) >=
          (int)sizeof want ||
      !realpath(want, rstacks) || !realpath(dir, rdir))
    return 0;
  size_t n = strlen(rstacks);
  return strncmp(rdir, rstacks, n) == 0 && rdir[n] == '/';
}

/* installed() per package folder, remembered until the set of stacks
 * changes (the folder views stay valid until then): two realpath() walks
 * per asset request otherwise. */
#define INSTALLED_MEMO 64
static struct {
  const char *dir;
  int installed;
} memo[INSTALLED_MEMO];
static size_t nmemo;

static int installed(const char *dir) {
  for (size_t i = 0; i < nmemo; i++)
    if (memo[i].dir == dir) return memo[i].installed;
  int v = installed_uncached(dir);
  if (nmemo < INSTALLED_MEMO) {
    memo[nmemo].dir = dir;
    memo[nmemo++].installed = v;
  }
  return v;
}

static int on_asset(nno_req *req, void *ud) {
  char platform[ID_MAX], uidir[PATH_MAX];
  const nno_registry_v1 *reg = console_registry();
  nno_str sid, sver, pkg, pver, file, id, ver;
  nno_stack *s;
  const char *dir = NULL;
  (void)ud;
  if (!platform_of(req, platform)) return NNO_OK;
  if (api->req_param(req, "stack", &sid) != NNO_OK ||
      api->req_param(req, "stack_version", &sver) != NNO_OK ||
      api->req_param(req, "package", &pkg) != NNO_OK ||
      api->req_param(req, "version", &pver) != NNO_OK ||
      api->req_param(req, "file", &file) != NNO_OK)
    return nno_problem(req, 404, NULL, "no such file");
  /* Only a version the platform runs now: the stack, then the package. */
  if (HAS_MEMBER(reg, nno_registry_v1, platform_stack_at))
    for (size_t i = 0; !dir && reg->platform_stack_at(platform, i, &s) == 0;
         i++)
      if (api->stack_info(s, &id, &ver) == NNO_OK && id.len == sid.len &&
          memcmp(id.ptr, sid.ptr, id.len) == 0 && ver.len == sver.len &&
          memcmp(ver.ptr, sver.ptr, ver.len) == 0)
        dir = package_dir(s, pkg.ptr, pkg.len, pver.ptr, pver.len);
  if (!dir || snprintf(uidir, sizeof uidir, "%s/ui", dir) >= (int)sizeof uidir)
    return nno_problem(req, 404, NULL, "no such file");
  /* A package's file is served in the console's origin: an .html or .svg
   * opened directly must not be a live page there. The policy is ignored
   * by a page that loads a script or stylesheet, so modules still run. */
  api->res_header(req, "Content-Security-Policy", asset_csp);
  api->res_header(req, "X-Frame-Options", "DENY");
  api->res_header(req, "Cross-Origin-Resource-Policy", "same-origin");
  return nno_static_serve(
      req, uidir, file.ptr, file.len,
      installed(dir) ? "public, max-age=31536000, immutable" : "no-cache");
}

/* ---- the plugin ------------------------------------------------------------
 */

static void on_stacks_changed(nno_plugin *p) {
  (void)p;
  console_compose_clear();
  nno_static_cache_clear();
  nmemo = 0;
}

static int on_init(nno_plugin *p, const nno_host_api *a) {
  static const struct {
    const char *method, *path;
    nno_handler_fn fn;
    intptr_t what;
  } routes[] = {
      {"GET", "/", on_page, 0},
      {"GET", "/console/boot.js", on_boot, 0},
      {"GET", "/console/profile", on_profile, 0},
      {"GET", "/console/ui", on_compose, 0},
      {"GET", "/console/tenants", on_tenants, 0},
      {"GET", "/console/ui/{stack}/{stack_version}/{package}/{version}/{file...}",
       on_asset, 0},
      {"GET", "/device", on_device_page, 0},
      {"GET", "/console/device", on_device, NNO_IAM_DEVICE_SHOW},
      {"POST", "/console/device/approve", on_device, NNO_IAM_DEVICE_APPROVE},
      {"POST", "/console/device/deny", on_device, NNO_IAM_DEVICE_DENY},
  };
  self = p;
  api = a;
  nno_sdk_init(p, a);
  if (!NNO_HAS(a, stack_package_at) || !NNO_HAS(a, plugin_stack)) {
    a->plugin_fail(p, "the console needs a host of ABI 1.2 or newer");
    return NNO_EVERSION;
  }
  for (size_t i = 0; i < sizeof routes / sizeof *routes; i++) {
    int rc = a->route_add(p, routes[i].method, routes[i].path, routes[i].fn,
                          (void *)routes[i].what);
    if (rc != NNO_OK) {
      a->plugin_fail(p, "route %s %s: %s", routes[i].method, routes[i].path,
                     a->strerror(rc));
      return rc;
    }
  }
  return NNO_OK;
}

static void on_fini(nno_plugin *p) {
  (void)p;
  console_compose_clear();
  nno_static_cache_clear();
  nmemo = 0;
}

NNO_PLUGIN(.name = "console", .version = "1.0.0", .kind = NNO_KIND_FEATURE,
           .on_plugin_init = on_init, .on_plugin_fini = on_fini,
           .on_stacks_changed = on_stacks_changed)
