/* ABI checks: the loader's descriptor checks against real fixture objects,
 * NNO_HAS on a table from an older host, error names, JSON validation and
 * the gateway's header validators. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <dlfcn.h>
#include <fcntl.h>
#include <unistd.h>

#include <cmocka.h>

#include <nno/plugin.h>

#include "api.h"
#include "gateway.h"
#include "jsonv.h"
#include "loader.h"
#include "logring.h"
#include "meter.h"
#include "req.h"
#include "res.h"

static void check(const char *name, int want_rc, const char *want_fmt) {
  char dir[1024], so[1100], err[LOADER_ERR_MAX], want[LOADER_ERR_MAX];
  snprintf(dir, sizeof dir, "%s/stacks/%s/%s/1.0.0/packages/%s", NNO_TEST_DIR,
           name, name, name);
  snprintf(so, sizeof so, "%s/lib%s.so", dir, name);
  int rc = loader_check_package(dir, err, sizeof err);
  assert_int_equal(rc, want_rc);
  if (want_fmt) {
    snprintf(want, sizeof want, want_fmt, so);
    assert_string_equal(err, want);
  }
}

static void test_descriptor_checks(void **st) {
  check("probe", 0, NULL);
  check("badmajor", -1,
        "incompatible plugin \"%s\": built for ABI 2.0, host provides 1.5");
  check("newminor", -1,
        "incompatible plugin \"%s\": built for ABI 1.6, host provides 1.5");
  check("nosym", -1, "plugin \"%s\": missing symbol nno_plugin_descriptor "
                     "(declare the plugin with NNO_PLUGIN(...))");
}

static void test_manifest_mismatch(void **st) {
  /* The probe object checked against a manifest naming something else. */
  char so[1100], err[LOADER_ERR_MAX];
  snprintf(so, sizeof so, "%s/stacks/probe/probe/1.0.0/packages/probe/libprobe.so",
           NNO_TEST_DIR);
  package_manifest m;
  memset(&m, 0, sizeof m);
  m.name = "other";
  m.version = "1.0.0";
  m.abi_major = 1;
  m.abi_minor = NNO_ABI_MINOR;
  m.kind = NNO_KIND_FEATURE;
  assert_int_equal(loader_check_object(so, -1, &m, NULL, NULL, err, sizeof err),
                   -1);
  assert_non_null(strstr(err, "descriptor name \"probe\" differs from "
                              "package.json name \"other\""));
  m.name = "probe";
  m.version = "1.0.1";
  assert_int_equal(loader_check_object(so, -1, &m, NULL, NULL, err, sizeof err),
                   -1);
  assert_non_null(strstr(err, "descriptor version \"1.0.0\" differs"));
  m.version = "1.0.0";
  m.kind = NNO_KIND_CORE;
  assert_int_equal(loader_check_object(so, -1, &m, NULL, NULL, err, sizeof err),
                   -1);
  assert_non_null(strstr(err, "descriptor kind \"feature\" differs"));
  m.kind = NNO_KIND_FEATURE;
  m.abi_major = 2;
  assert_int_equal(loader_check_object(so, -1, &m, NULL, NULL, err, sizeof err),
                   -1);
  assert_non_null(strstr(err, "built for ABI 2.5, host provides 1.5"));
  m.abi_major = 1;
  assert_int_equal(loader_check_object(so, -1, &m, NULL, NULL, err, sizeof err),
                   0);
  assert_int_equal(loader_check_object("/nonexistent.so", -1, &m, NULL, NULL,
                                       err, sizeof err),
                   -1);
  assert_non_null(strstr(err, "plugin \"/nonexistent.so\": cannot load: "));
  /* Loaded from a descriptor, as the loader does: messages still name the
   * object's path, never /proc/self/fd/N. */
  int fd = open(so, O_RDONLY | O_CLOEXEC);
  assert_true(fd >= 0);
  void *dl = NULL;
  const nno_plugin_desc *d = NULL;
  assert_int_equal(loader_check_object(so, fd, &m, &dl, &d, err, sizeof err),
                   0);
  assert_non_null(dl);
  assert_string_equal(d->name, "probe");
  dlclose(dl);
  m.name = "other";
  assert_int_equal(loader_check_object(so, fd, &m, NULL, NULL, err, sizeof err),
                   -1);
  assert_non_null(strstr(err, so));
  assert_null(strstr(err, "/proc/self/fd"));
  close(fd);
  char text[1100], want[2300];
  snprintf(text, sizeof text, "%s/stacks/probe/probe/1.0.0/stack.json",
           NNO_TEST_DIR);
  fd = open(text, O_RDONLY | O_CLOEXEC);
  assert_true(fd >= 0);
  assert_int_equal(
      loader_check_object(text, fd, &m, NULL, NULL, err, sizeof err), -1);
  snprintf(want, sizeof want, "plugin \"%s\": cannot load: %s: ", text, text);
  assert_non_null(strstr(err, want));
  assert_null(strstr(err, "/proc/self/fd"));
  close(fd);
}

static void test_table_growth(void **st) {
  const nno_host_api *api = api_table();
  assert_int_equal(api->size, sizeof(nno_host_api));
  assert_int_equal(api->abi_major, NNO_ABI_MAJOR);
  assert_true(NNO_HAS(api, service_lookup));
  /* A host built before service_lookup existed: the table ends earlier. */
  nno_host_api older = *api;
  older.size = offsetof(nno_host_api, service_lookup);
  assert_false(NNO_HAS(&older, service_lookup));
  assert_true(NNO_HAS(&older, service_publish));
  /* Every slot of this host's table is filled. */
  const char *p = (const char *)api + offsetof(nno_host_api, strerror);
  for (; p < (const char *)api + sizeof *api; p += sizeof(void *)) {
    void *fn;
    memcpy(&fn, p, sizeof fn);
    assert_non_null(fn);
  }
}

/* ABI 1.5: meters, the end-of-request hook and req_plan are in the table;
 * meters and the hook are the core plugins' (a feature package is refused
 * and reads nothing), each plugin's meters its own; req_plan reads what
 * RESOLVE set. */
static void test_table_15(void **st) {
  const nno_host_api *api = api_table();
  assert_true(NNO_HAS(api, meter_add));
  assert_true(NNO_HAS(api, meter_get));
  assert_true(NNO_HAS(api, meter_next));
  assert_true(NNO_HAS(api, meter_epoch));
  assert_true(NNO_HAS(api, gateway_done_add));
  assert_true(NNO_HAS(api, req_plan));
  nno_host_api older = *api;
  older.size = offsetof(nno_host_api, meter_add);
  assert_false(NNO_HAS(&older, meter_add));
  assert_false(NNO_HAS(&older, req_plan));
  assert_true(NNO_HAS(&older, quarantine_release));

  static plugin a, b, feat;
  memset(&a, 0, sizeof a);
  memset(&b, 0, sizeof b);
  memset(&feat, 0, sizeof feat);
  a.man.kind = b.man.kind = NNO_KIND_CORE;
  a.man.name = "billing";
  b.man.name = "other";
  feat.man.kind = NNO_KIND_FEATURE;
  feat.man.name = "billing"; /* a package named like a core plugin */
  nno_plugin *ap = (nno_plugin *)&a, *bp = (nno_plugin *)&b,
             *fp = (nno_plugin *)&feat;
  assert_int_equal(meter_init(METER_SLOTS_MIN), 0);
  uint64_t v = 9;
  assert_int_equal(api->meter_add(ap, "a|acme", 6, 2, 0, &v), 0);
  assert_int_equal(v, 2);
  assert_int_equal(api->meter_get(ap, "a|acme", 6, &v), 0);
  assert_int_equal(v, 2);
  assert_int_equal(api->meter_get(bp, "a|acme", 6, &v), NNO_ENOENT);
  assert_int_equal(v, 0);
  v = 9;
  assert_int_equal(api->meter_add(fp, "a|acme", 6, 1, 0, &v), NNO_ESTATE);
  assert_int_equal(v, 0);
  assert_int_equal(api->meter_get(fp, "a|acme", 6, &v), NNO_ESTATE);
  size_t cursor = 0;
  nno_meter_entry e = {.size = sizeof e};
  assert_int_equal(api->meter_next(fp, &cursor, &e), NNO_ESTATE);
  assert_int_equal(api->meter_next(bp, &cursor, &e), NNO_ENOENT);
  cursor = 0;
  assert_int_equal(api->meter_next(ap, &cursor, &e), 0);
  assert_int_equal(e.key.len, 6);
  assert_true(api->meter_epoch(ap) != 0);
  assert_int_equal(api->meter_epoch(fp), 0);
  meter_fini();
  /* Outside on_plugin_init, or from a feature package: refused. */
  assert_int_equal(api->gateway_done_add(ap, NULL, NULL), NNO_ESTATE);
  assert_int_equal(api->gateway_done_add(fp, NULL, NULL), NNO_ESTATE);
  static nno_req r;
  memset(&r, 0, sizeof r);
  req_reset(&r);
  assert_int_equal(api->req_plan(&r).len, 0);
  r.stage = NNO_STAGE_RESOLVE;
  assert_int_equal(api->req_set_plan(ap, &r, "gold"), 0);
  r.stage = 0;
  assert_int_equal(api->req_plan(&r).len, 4);
  assert_memory_equal(api->req_plan(&r).ptr, "gold", 4);
}

static int count_line(void *ud, uint64_t seq, const char *line, size_t len) {
  (void)seq, (void)line, (void)len;
  (*(int *)ud)++;
  return 0;
}

/* ABI 1.5: log_tail is in the table, the core plugins' only; it reads the
 * one platform's lines of the ring. */
static void test_table_15_log_tail(void **st) {
  (void)st;
  const nno_host_api *api = api_table();
  assert_true(NNO_HAS(api, log_tail));
  nno_host_api older = *api;
  older.size = offsetof(nno_host_api, log_tail);
  assert_false(NNO_HAS(&older, log_tail));
  assert_true(NNO_HAS(&older, req_plan));
  static plugin core, feat;
  memset(&core, 0, sizeof core);
  memset(&feat, 0, sizeof feat);
  core.man.kind = NNO_KIND_CORE;
  core.man.name = "registry";
  feat.man.kind = NNO_KIND_FEATURE;
  feat.man.name = "registry";
  nno_plugin *cp = (nno_plugin *)&core, *fp = (nno_plugin *)&feat;
  int n = 0;
  uint64_t next = 7;
  /* No ring mapped. */
  assert_int_equal(api->log_tail(cp, "acme", 0, 10, count_line, &n, &next),
                   NNO_ENOENT);
  assert_int_equal(logring_init(LOGRING_BYTES_MIN), 0);
  logring_meta m = {"acme", 4, "notes", 5, "rid-1", 5, NNO_LOG_INFO};
  assert_int_equal(logring_append(&m, "{\"msg\":\"a\"}", 11), 1);
  m.platform = "other";
  m.platform_len = 5;
  assert_int_equal(logring_append(&m, "{\"msg\":\"b\"}", 11), 2);
  assert_int_equal(api->log_tail(fp, "acme", 0, 10, count_line, &n, &next),
                   NNO_ESTATE);
  assert_int_equal(n, 0);
  assert_int_equal(api->log_tail(cp, "", 0, 10, count_line, &n, &next),
                   NNO_EINVAL);
  assert_int_equal(api->log_tail(cp, NULL, 0, 10, count_line, &n, &next),
                   NNO_EINVAL);
  assert_int_equal(api->log_tail(cp, "acme", 0, 10, NULL, &n, &next),
                   NNO_EINVAL);
  assert_int_equal(api->log_tail(cp, "acme", 0, 10, count_line, &n, &next), 1);
  assert_int_equal(n, 1);
  assert_int_equal(next, 2);
  assert_int_equal(api->log_tail(cp, "acme", next, 10, count_line, &n, &next),
                   0);
  assert_int_equal(n, 1);
  logring_fini();
}

/* ABI 1.5: meter handles are in the table, the core plugins' only, in
 * the calling plugin's namespace. */
static void test_table_15_meter_handle(void **st) {
  (void)st;
  const nno_host_api *api = api_table();
  assert_true(NNO_HAS(api, meter_handle));
  assert_true(NNO_HAS(api, meter_add_h));
  nno_host_api older = *api;
  older.size = offsetof(nno_host_api, meter_handle);
  assert_false(NNO_HAS(&older, meter_handle));
  assert_true(NNO_HAS(&older, log_tail));
  static plugin core, other, feat;
  memset(&core, 0, sizeof core);
  memset(&other, 0, sizeof other);
  memset(&feat, 0, sizeof feat);
  core.man.kind = other.man.kind = NNO_KIND_CORE;
  core.man.name = "billing";
  other.man.name = "iam";
  feat.man.kind = NNO_KIND_FEATURE;
  feat.man.name = "billing";
  nno_plugin *cp = (nno_plugin *)&core, *op = (nno_plugin *)&other,
             *fp = (nno_plugin *)&feat;
  assert_int_equal(meter_init(METER_SLOTS_MIN), 0);
  nno_meter_handle h;
  uint64_t v = 0;
  assert_int_equal(api->meter_handle(cp, "a|acme", 6, &h), NNO_ENOENT);
  assert_int_equal(api->meter_add(cp, "a|acme", 6, 1, 0, NULL), 0);
  assert_int_equal(api->meter_handle(cp, "a|acme", 6, &h), 0);
  assert_int_equal(api->meter_add_h(cp, &h, 2, 0, &v), 0);
  assert_int_equal(v, 3);
  assert_int_equal(api->meter_add_h(op, &h, 1, 0, &v), NNO_ENOENT);
  assert_int_equal(api->meter_add_h(fp, &h, 1, 0, &v), NNO_ESTATE);
  assert_int_equal(api->meter_handle(fp, "a|acme", 6, &h), NNO_ESTATE);
  assert_int_equal(h.epoch, 0);
  assert_int_equal(api->meter_get(cp, "a|acme", 6, &v), 0);
  assert_int_equal(v, 3);
  meter_fini();
}

/* Every member added in ABI 1.2 is in the table, and a 1.1 host's table
 * says it has none of them. */
static void test_table_12(void **st) {
  const nno_host_api *api = api_table();
  assert_int_equal(api->abi_minor, NNO_ABI_MINOR);
  assert_true(NNO_HAS(api, req_stack_missing));
  assert_true(NNO_HAS(api, req_platform));
  assert_true(NNO_HAS(api, req_tenant_path));
  assert_true(NNO_HAS(api, req_set_tenant_path));
  assert_true(NNO_HAS(api, plugin_stack));
  assert_true(NNO_HAS(api, sql_open));
  assert_true(NNO_HAS(api, sql_exec));
  assert_true(NNO_HAS(api, sql_batch));
  assert_true(NNO_HAS(api, kv_open));
  assert_true(NNO_HAS(api, kv_get));
  assert_true(NNO_HAS(api, kv_put));
  assert_true(NNO_HAS(api, kv_delete));
  assert_true(NNO_HAS(api, kv_list));
  assert_true(NNO_HAS(api, blob_open));
  assert_true(NNO_HAS(api, blob_put));
  assert_true(NNO_HAS(api, blob_head));
  assert_true(NNO_HAS(api, blob_delete));
  assert_true(NNO_HAS(api, blob_list));
  assert_true(NNO_HAS(api, res_blob));
  assert_true(NNO_HAS(api, platform_event));
  assert_true(NNO_HAS(api, stack_package_at));
  assert_non_null(api->stack_package_at);
  nno_host_api older = *api;
  older.size = offsetof(nno_host_api, req_platform);
  assert_true(NNO_HAS(&older, req_remote_addr));
  assert_false(NNO_HAS(&older, req_platform));
  assert_false(NNO_HAS(&older, stack_package_at));
}

static int hook_a(nno_plugin *p, int event, nno_req *r) { return 0; }

/* on_platform_event is read only when the descriptor's size reaches it:
 * a 1.1 descriptor ends before it, whatever lies after it in memory. */
static void test_event_hook_by_size(void **st) {
  nno_plugin_desc d = {.magic = NNO_PLUGIN_MAGIC,
                       .size = sizeof(nno_plugin_desc),
                       .on_platform_event = hook_a};
  assert_ptr_equal(res_event_hook(&d), hook_a);
  d.size = offsetof(nno_plugin_desc, on_platform_event);
  assert_null(res_event_hook(&d));
  d.size = offsetof(nno_plugin_desc, on_platform_event) + sizeof(void *) - 1;
  assert_null(res_event_hook(&d));
  d.size = sizeof(nno_plugin_desc);
  d.on_platform_event = NULL;
  assert_null(res_event_hook(&d));
  assert_null(res_event_hook(NULL));
}

static void test_resource_keys(void **st) {
  char big[1100];
  memset(big, 'k', sizeof big);
  assert_true(res_kv_key_ok("a", 1));
  assert_true(res_kv_key_ok("a/../b \xc3\xa9", 9));
  assert_true(res_kv_key_ok(big, 512));
  assert_false(res_kv_key_ok(big, 513));
  assert_false(res_kv_key_ok(big, 0));
  assert_false(res_kv_key_ok("a\x01", 2));
  assert_false(res_kv_key_ok("a\x7f", 2));
  assert_false(res_kv_key_ok("\xc3", 1));
  assert_true(res_blob_key_ok("a/b.txt", 7));
  assert_true(res_blob_key_ok("a/.b/..c", 8));
  assert_true(res_blob_key_ok(big, 1024));
  assert_false(res_blob_key_ok(big, 1025));
  static const char *bad[] = {"", "/a", "a/", "a//b", ".", "..", "a/./b",
                              "a/../b", "a\\b", "a\nb", "../a"};
  for (size_t i = 0; i < sizeof bad / sizeof *bad; i++)
    if (res_blob_key_ok(bad[i], strlen(bad[i])))
      fail_msg("blob key \"%s\" accepted", bad[i]);
}

static void test_status_codes(void **st) {
  assert_int_equal(res_status_code(400), NNO_EINVAL);
  assert_int_equal(res_status_code(422), NNO_EINVAL);
  assert_int_equal(res_status_code(404), NNO_ENOENT);
  assert_int_equal(res_status_code(409), NNO_EREFUSED);
  assert_int_equal(res_status_code(413), NNO_ETOOBIG);
  assert_int_equal(res_status_code(503), NNO_EBUSY);
  assert_int_equal(res_status_code(504), NNO_ETIMEDOUT);
  assert_int_equal(res_status_code(507), NNO_EQUOTA);
  assert_int_equal(res_status_code(500), NNO_EIO);
  assert_int_equal(res_status_code(403), NNO_EIO);
}

/* Who is calling, own stack, stack packages, and the checks of the open
 * calls, on a request and plugins made here (no worker: no provider). */
static void test_caller_and_open(void **st) {
  const nno_host_api *api = api_table();
  static plugin core, feat;
  static nno_req r;
  manifest_resource res[2] = {{"sql", "notes"}, {"kv", "cache"}};
  memset(&core, 0, sizeof core);
  memset(&feat, 0, sizeof feat);
  core.man.kind = NNO_KIND_CORE;
  core.man.name = "core";
  feat.man.kind = NNO_KIND_FEATURE;
  feat.man.name = "feat";
  feat.man.version = "1.0.0";
  feat.man.resources = res;
  feat.man.nresources = 2;
  feat.man.resources_json = "[]";
  snprintf(feat.stack_id, sizeof feat.stack_id, "notes");
  snprintf(feat.stack_version, sizeof feat.stack_version, "2.0.0");
  snprintf(feat.absdir, sizeof feat.absdir, "/x/feat");
  memset(&r, 0, sizeof r);
  req_reset(&r);
  r.active = 1;

  /* Tenant path: core plugins in AUTHN only, bounded, shown with a caller. */
  nno_plugin *cp = (nno_plugin *)&core, *fp = (nno_plugin *)&feat;
  assert_int_equal(api->req_set_tenant_path(cp, &r, "eu/fr"), NNO_ESTATE);
  r.stage = NNO_STAGE_AUTHN;
  assert_int_equal(api->req_set_tenant_path(fp, &r, "eu/fr"), NNO_ESTATE);
  assert_int_equal(api->req_set_tenant_path(cp, &r, "eu/fr"), 0);
  assert_int_equal(api->req_tenant_path(&r).len, 0); /* no caller yet */
  assert_int_equal(api->req_set_caller(cp, &r, NNO_CALLER_KEY, "acme", "fr",
                                       "k1", "*", NULL), 0);
  nno_str tp = api->req_tenant_path(&r);
  assert_int_equal(tp.len, 5);
  assert_memory_equal(tp.ptr, "eu/fr", 5);
  char path[1100];
  memset(path, 'a', sizeof path);
  path[1024] = '\0';
  assert_int_equal(api->req_set_tenant_path(cp, &r, path), NNO_ETOOBIG);
  path[1023] = '\0';
  assert_int_equal(api->req_set_tenant_path(cp, &r, path), 0);
  assert_int_equal(api->req_tenant_path(&r).len, 1023);
  assert_int_equal(api->req_set_tenant_path(
                       cp, &r, "a/b/c/d/e/f/g/h/i/j/k/l/m/n/o/p"), 0);
  assert_int_equal(api->req_set_tenant_path(
                       cp, &r, "a/b/c/d/e/f/g/h/i/j/k/l/m/n/o/p/q"),
                   NNO_ETOOBIG);
  assert_int_equal(api->req_set_tenant_path(cp, &r, "a//b"), NNO_EINVAL);
  assert_int_equal(api->req_set_tenant_path(cp, &r, "a/"), NNO_EINVAL);
  assert_int_equal(api->req_set_tenant_path(cp, &r, NULL), 0);
  assert_int_equal(api->req_tenant_path(&r).len, 0);
  r.stage = 0;

  /* Own stack and the stack's packages. */
  nno_str id, ver, n, v, d, rj;
  assert_int_equal(api->plugin_stack(cp, &id, &ver), NNO_ENOENT);
  assert_int_equal(api->plugin_stack(fp, &id, &ver), 0);
  assert_string_equal(id.ptr, "notes");
  assert_string_equal(ver.ptr, "2.0.0");
  plugin *ps[1] = {&feat};
  stack s = {.plugins = ps, .nplugins = 1};
  /* A feature package loaded in process may list them too (the console
   * composes its platform's packages' UI from their folders). */
  assert_int_equal(api->stack_package_at(fp, (nno_stack *)&s, 0, &n, &v, &d,
                                         &rj), 0);
  assert_string_equal(n.ptr, "feat");
  assert_int_equal(api->stack_package_at(cp, (nno_stack *)&s, 0, &n, &v, &d,
                                         &rj), 0);
  assert_string_equal(n.ptr, "feat");
  assert_string_equal(d.ptr, "/x/feat");
  assert_string_equal(rj.ptr, "[]");
  assert_int_equal(api->stack_package_at(cp, (nno_stack *)&s, 1, &n, &v, &d,
                                         &rj), NNO_ENOENT);
  assert_int_equal(api->platform_event(fp, (nno_stack *)&s, "acme",
                                       NNO_PLATFORM_ACTIVATED, NULL, NULL),
                   NNO_ESTATE);

  /* Open: bad args, no platform, undeclared, then no provider. */
  nno_sql *db;
  nno_kv *kv;
  assert_int_equal(api->sql_open(&r, NULL, &db), NNO_EINVAL);
  assert_int_equal(api->sql_open(&r, "Notes", &db), NNO_EINVAL);
  r.plugin = &feat;
  assert_int_equal(api->sql_open(&r, "notes", &db), NNO_ENOENT);
  memcpy(r.scope, "acme", 5);
  r.scope_len = 4;
  assert_int_equal(api->req_platform(&r).len, 4);
  assert_int_equal(api->sql_open(&r, "other", &db), NNO_ENOENT);
  assert_int_equal(api->kv_open(&r, "notes", &kv), NNO_ENOENT);
  r.plugin = &core; /* a core plugin's handler: no stack, no resources */
  assert_int_equal(api->kv_open(&r, "cache", &kv), NNO_ENOENT);
  r.plugin = &feat;
  assert_int_equal(api->sql_open(&r, "notes", &db), NNO_ENOTSUP);
  assert_int_equal(api->kv_open(&r, "cache", &kv), NNO_ENOTSUP);
  /* Ending: nothing pending ends; one pending is refused. */
  r.res_pending = 1;
  r.in_handler = 1;
  assert_int_equal(api->res_end(&r), NNO_EBUSY);
  r.res_pending = 0;
  assert_int_equal(api->res_end(&r), 0);
  assert_int_equal(api->res_end(&r), NNO_ESTATE);
  req_release(&r);
}

static void test_errors(void **st) {
  assert_string_equal(nno__err_name(NNO_EINVAL), "NNO_EINVAL");
  assert_string_equal(nno__err_name(NNO_EBUSY), "NNO_EBUSY");
  assert_string_equal(nno__strerror(NNO_ETOOBIG), "size limit exceeded");
  assert_string_equal(nno__err_name(-999), "NNO_E?");
  assert_string_equal(api_table()->strerror(NNO_ENOENT), "no such entry");
}

static void test_json_valid(void **st) {
  static const char *good[] = {
      "{}", "[]", "0", "-0.5e+10", "\"a\\u00e9\\n\"", " {\"a\":[1,2,{\"b\":null}]} ",
      "true", "\"\xc3\xa9\"", "[[[[]]]]", "{\"a\":{\"b\":{}}}"};
  static const char *bad[] = {
      "", "{", "}", "[1,]", "{\"a\":}", "{\"a\" 1}", "01", "1.", ".5", "+1",
      "\"\\x\"", "\"a", "nul", "[1] [2]", "{\"a\":1,}", "\"\xc3\"", "\"\xed\xa0\x80\"",
      "\"\x01\"", "{1:2}", "1e"};
  for (size_t i = 0; i < sizeof good / sizeof *good; i++)
    assert_true(json_valid(good[i], strlen(good[i])));
  for (size_t i = 0; i < sizeof bad / sizeof *bad; i++)
    assert_false(json_valid(bad[i], strlen(bad[i])));
  char deep[2 * JSONV_MAX_DEPTH + 2];
  memset(deep, '[', JSONV_MAX_DEPTH);
  memset(deep + JSONV_MAX_DEPTH, ']', JSONV_MAX_DEPTH);
  assert_true(json_valid(deep, 2 * JSONV_MAX_DEPTH));
  memset(deep, '[', JSONV_MAX_DEPTH + 1);
  memset(deep + JSONV_MAX_DEPTH + 1, ']', JSONV_MAX_DEPTH + 1);
  assert_false(json_valid(deep, 2 * JSONV_MAX_DEPTH + 2));
}

/* A problem body quotes what plugins give it (jansson's error text cuts
 * UTF-8 sequences): the literal stays valid JSON, bad bytes as U+FFFD. */
static void test_json_append_string(void **st) {
  static const struct {
    const char *in, *out;
  } cases[] = {
      {"a\"b\\c\n\x7f", "\"a\\\"b\\\\c\\u000a\\u007f\""},
      {"caf\xc3\xa9 \xf0\x9f\x98\x80", "\"caf\xc3\xa9 \xf0\x9f\x98\x80\""},
      {"near '\"\\ud80\xd0'", "\"near '\\\"\\\\ud80\xef\xbf\xbd'\""},
      {"\xff\xc0\x80\xed\xa0\x80x",
       "\"\xef\xbf\xbd\xef\xbf\xbd\xef\xbf\xbd\xef\xbf\xbd\xef\xbf\xbd"
       "\xef\xbf\xbdx\""},
  };
  for (size_t i = 0; i < sizeof cases / sizeof *cases; i++) {
    buf b = {0};
    assert_int_equal(json_append_string(&b, cases[i].in, strlen(cases[i].in)),
                     0);
    assert_int_equal(b.len, strlen(cases[i].out));
    assert_memory_equal(b.p, cases[i].out, b.len);
    assert_true(json_valid(b.p, b.len));
    buf_free(&b);
  }
  char text[] = "a\nb\xd0\tc\xc3\xa9";
  json_text_clean(text);
  assert_string_equal(text, "a?b??c\xc3\xa9");
}

static void test_trace_validators(void **st) {
  const char *ok = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01";
  assert_true(gateway_traceparent_valid(ok, strlen(ok)));
  const char *bad[] = {
      "00-00000000000000000000000000000000-00f067aa0ba902b7-01",
      "00-4bf92f3577b34da6a3ce929d0e0e4736-0000000000000000-01",
      "00-4BF92F3577B34DA6A3CE929D0E0E4736-00f067aa0ba902b7-01",
      "ff-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01",
      "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-0",
      "00_4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01"};
  for (size_t i = 0; i < sizeof bad / sizeof *bad; i++)
    assert_false(gateway_traceparent_valid(bad[i], strlen(bad[i])));
  assert_true(gateway_request_id_valid("abc-1.2_3:4", 11));
  assert_false(gateway_request_id_valid("", 0));
  assert_false(gateway_request_id_valid("a b", 3));
  char long_id[65];
  memset(long_id, 'a', sizeof long_id);
  assert_true(gateway_request_id_valid(long_id, 64));
  assert_false(gateway_request_id_valid(long_id, 65));
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_descriptor_checks), cmocka_unit_test(test_manifest_mismatch),
      cmocka_unit_test(test_table_growth),      cmocka_unit_test(test_errors),
      cmocka_unit_test(test_json_valid),        cmocka_unit_test(test_trace_validators),
      cmocka_unit_test(test_json_append_string),
      cmocka_unit_test(test_table_12),          cmocka_unit_test(test_event_hook_by_size),
      cmocka_unit_test(test_resource_keys),     cmocka_unit_test(test_status_codes),
      cmocka_unit_test(test_caller_and_open),
      cmocka_unit_test(test_table_15),
      cmocka_unit_test(test_table_15_log_tail),
      cmocka_unit_test(test_table_15_meter_handle),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
