/* IAM's settings, from the manifest's "config" object:
 *
 *   "plans": {"free": {"platform": [rps, burst], "key": [rps, burst],
 *                      "user": [rps, burst], "anonymous": [rps, burst]}, ...}
 *   "default_plan": "free"         for platforms whose plan is not listed
 *   "session_idle_s", "session_absolute_s", "session_cache_s" (<= 300),
 *   "session_cache_max", "user_scopes"
 *   "device_ttl_s" (600), "device_interval_s" (2), "device_pending_max"
 *   (1000): the device-code flow's code life, polling interval and pending
 *   codes per platform (a backstop: the real bound is per address)
 *   "device_codes_per_addr" (10) per "device_codes_window_s" (600): the
 *   codes one client address may ask for, across platforms
 */
#include <stdio.h>
#include <string.h>

#include <jansson.h>

#include "internal.h"

static void plan_defaults(iam_plan *p, const char *name) {
  memset(p, 0, sizeof *p);
  snprintf(p->name, sizeof p->name, "%s", name);
  p->platform_rps = 200, p->platform_burst = 400;
  p->key_rps = 50, p->key_burst = 100;
  p->user_rps = 20, p->user_burst = 40;
  p->anon_rps = 10, p->anon_burst = 20;
}

static int pair(json_t *o, const char *k, double *rps, uint32_t *burst,
                char *err, size_t cap, const char *plan) {
  json_t *v = json_object_get(o, k);
  if (!v) return 0;
  if (!json_is_array(v) || json_array_size(v) != 2 ||
      !json_is_number(json_array_get(v, 0)) ||
      !json_is_integer(json_array_get(v, 1)) ||
      !(json_number_value(json_array_get(v, 0)) >= 0.001) ||
      json_integer_value(json_array_get(v, 1)) < 1 ||
      json_integer_value(json_array_get(v, 1)) > 100000000) {
    snprintf(err, cap,
             "config.plans.%s.%s: expected [rate per second >= 0.001, burst "
             ">= 1]",
             plan, k);
    return -1;
  }
  *rps = json_number_value(json_array_get(v, 0));
  *burst = (uint32_t)json_integer_value(json_array_get(v, 1));
  return 0;
}

static int int_in(json_t *root, const char *k, int64_t lo, int64_t hi,
                  int64_t *out, char *err, size_t cap) {
  json_t *v = json_object_get(root, k);
  if (!v) return 0;
  if (!json_is_integer(v) || json_integer_value(v) < lo ||
      json_integer_value(v) > hi) {
    snprintf(err, cap, "config.%s: expected an integer in %lld..%lld", k,
             (long long)lo, (long long)hi);
    return -1;
  }
  *out = json_integer_value(v);
  return 0;
}

int iam_config_parse(const char *json, iam_config *c, char *err, size_t cap) {
  memset(c, 0, sizeof *c);
  plan_defaults(&c->plans[0], "free");
  c->nplans = 1;
  c->session_idle_s = 3600;
  c->session_absolute_s = 7 * 86400;
  c->session_cache_s = 300;
  c->session_cache_max = 65536;
  c->device_ttl_s = 600;
  c->device_interval_s = 2;
  c->device_pending_max = 1000;
  c->device_codes_per_addr = 10;
  c->device_codes_window_s = 600;
  snprintf(c->user_scopes, sizeof c->user_scopes, "features:*");
  json_error_t je;
  json_t *root = json_loads(json ? json : "{}", 0, &je);
  if (!json_is_object(root)) {
    snprintf(err, cap, "config: not a JSON object");
    json_decref(root);
    return -1;
  }
  int rc = 0;
  json_t *plans = json_object_get(root, "plans"), *pv;
  const char *name;
  if (plans) {
    c->nplans = 0;
    json_object_foreach(plans, name, pv) {
      if (c->nplans == 16 || strlen(name) >= sizeof c->plans[0].name ||
          !json_is_object(pv)) {
        snprintf(err, cap, "config.plans: at most 16 objects, names under 33 "
                           "bytes");
        rc = -1;
        break;
      }
      iam_plan *p = &c->plans[c->nplans++];
      plan_defaults(p, name);
      if (pair(pv, "platform", &p->platform_rps, &p->platform_burst, err, cap,
               name) ||
          pair(pv, "key", &p->key_rps, &p->key_burst, err, cap, name) ||
          pair(pv, "user", &p->user_rps, &p->user_burst, err, cap, name) ||
          pair(pv, "anonymous", &p->anon_rps, &p->anon_burst, err, cap,
               name)) {
        rc = -1;
        break;
      }
    }
  }
  if (!rc && plans && (!json_is_object(plans) || c->nplans == 0)) {
    snprintf(err, cap, "config.plans: expected a non-empty object of plans");
    rc = -1;
  }
  json_t *dp = json_object_get(root, "default_plan");
  if (!rc && dp) {
    const iam_plan *p = json_is_string(dp)
                            ? iam_plan_find(c, json_string_value(dp))
                            : NULL;
    if (!p || strcmp(p->name, json_string_value(dp)) != 0) {
      snprintf(err, cap, "config.default_plan: not one of config.plans");
      rc = -1;
    } else {
      c->default_plan = (size_t)(p - c->plans);
    }
  }
  int64_t cmax = (int64_t)c->session_cache_max;
  if (!rc)
    rc = int_in(root, "session_idle_s", 60, 365 * 86400, &c->session_idle_s,
                err, cap) ||
         int_in(root, "session_absolute_s", 60, 365 * 86400,
                &c->session_absolute_s, err, cap) ||
         int_in(root, "session_cache_s", 1, 300, &c->session_cache_s, err,
                cap) ||
         int_in(root, "session_cache_max", 1, 1 << 20, &cmax, err, cap) ||
         int_in(root, "device_ttl_s", 1, 3600, &c->device_ttl_s, err, cap) ||
         int_in(root, "device_interval_s", 1, 60, &c->device_interval_s, err,
                cap) ||
         int_in(root, "device_pending_max", 1, 100000,
                &c->device_pending_max, err, cap) ||
         int_in(root, "device_codes_per_addr", 1, 100000,
                &c->device_codes_per_addr, err, cap) ||
         int_in(root, "device_codes_window_s", 1, 86400,
                &c->device_codes_window_s, err, cap)
             ? -1
             : 0;
  c->session_cache_max = (size_t)cmax;
  json_t *us = json_object_get(root, "user_scopes");
  if (!rc && us) {
    if (!json_is_string(us) ||
        strlen(json_string_value(us)) >= sizeof c->user_scopes) {
      snprintf(err, cap, "config.user_scopes: expected a string of scopes");
      rc = -1;
    } else {
      snprintf(c->user_scopes, sizeof c->user_scopes, "%s",
               json_string_value(us));
    }
  }
  json_decref(root);
  return rc;
}

const iam_plan *iam_plan_find(const iam_config *c, const char *name) {
  for (size_t i = 0; i < c->nplans; i++)
    if (strcmp(c->plans[i].name, name) == 0) return &c->plans[i];
  return &c->plans[c->default_plan];
}
