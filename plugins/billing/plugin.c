/* The billing core plugin: start-up in module order, the nno.billing
 * service and shutdown. The modules are listed in internal.h. */
#include <stdio.h>
#include <string.h>

#include <jansson.h>

#include "internal.h"

const nno_host_api *api;
billing_state g_bill;

static const nno_billing_v1 service = {
    .size = sizeof(nno_billing_v1),
    .plan_limits = billing_plan_limits,
    .default_plan = billing_default_plan,
    .platform_limits = billing_platform_limits,
    .platform_changed = billing_platform_changed,
    .plan_at = billing_plan_at,
};

/* The sections of billing's configuration; each module checks its own. A
 * key outside them is a typo that must not pass silently. */
static int check_sections(const char *text, char *err, size_t cap) {
  static const char *const known[] = {"plans", "default_plan", "metering",
                                      "provider", "stripe"};
  json_t *root = json_loads(text ? text : "{}", 0, NULL);
  if (!json_is_object(root)) {
    json_decref(root);
    snprintf(err, cap, "config: expected an object");
    return -1;
  }
  const char *k;
  json_t *v;
  int rc = 0;
  json_object_foreach(root, k, v) {
    size_t i = 0, n = sizeof known / sizeof *known;
    while (i < n && strcmp(known[i], k) != 0) i++;
    if (i == n) {
      snprintf(err, cap,
               "config: unknown section \"%.64s\" (billing reads plans, "
               "default_plan, metering, provider, stripe)",
               k);
      rc = -1;
      break;
    }
  }
  json_decref(root);
  return rc;
}

static int billing_init(nno_plugin *p, const nno_host_api *host) {
  api = host;
  memset(&g_bill, 0, sizeof g_bill);
  g_bill.p = p;
  g_bill.config_json = api->plugin_config(p);
  snprintf(g_bill.db_path, sizeof g_bill.db_path, "%s/billing.db",
           api->host_data_dir(p));
  char err[512] = "";
  sqlite3 *db = NULL;
  int rc = check_sections(g_bill.config_json, err, sizeof err);
  if (!rc) rc = billing_store_open(&db, err, sizeof err);
  if (!rc) rc = billing_store_migrate(db, err, sizeof err);
  sqlite3_close_v2(db);
  if (!rc) rc = billing_plans_init(err, sizeof err);
  if (!rc) rc = billing_meter_init(err, sizeof err);
  if (!rc) rc = billing_usage_init(err, sizeof err);
  if (!rc) rc = billing_provider_init(err, sizeof err);
  if (!rc) rc = billing_webhook_init(err, sizeof err);
  if (!rc)
    rc = api->service_publish(p, NNO_BILLING_SERVICE, NNO_BILLING_VERSION,
                              &service);
  if (rc) {
    api->plugin_fail(p, "%s", err[0] ? err : "cannot start");
    return NNO_EINVAL;
  }
  return 0;
}

static void billing_ready(nno_plugin *p) {
  const void *v = NULL;
  uint32_t ver = 0;
  if (api->service_lookup(p, NNO_REGISTRY_SERVICE, 1, &v, &ver) == 0)
    g_bill.registry = v;
  billing_plans_ready();
  billing_meter_ready();
  billing_provider_ready();
}

static void billing_fini(nno_plugin *p) {
  (void)p;
  billing_provider_fini();
  billing_meter_fini();
  billing_plans_fini();
}

NNO_PLUGIN(.name = "billing", .version = "1.0.0", .kind = NNO_KIND_CORE,
           .on_plugin_init = billing_init, .on_plugin_fini = billing_fini,
           .on_host_ready = billing_ready)
