/* The "nno.billing" service, version 1: what the billing core plugin
 * publishes for the other core plugins (IAM's rate limits, provisioning's
 * storage quota, the registry's plan changes) and for feature packages
 * that enforce a plan's limits themselves (auth's users).
 *
 * A plan is data: stored in DATA/billing.db and managed through
 * /api/v1/plans, with the host configuration able to override any plan
 * (plugin_config "billing": {"plans": {...}}). Every worker holds the
 * whole table in memory and sees a change within a second.
 *
 * THREAD: call on the worker's loop thread. Calls answer from memory
 * (no I/O) unless they say otherwise.
 * OWNERSHIP: arguments are borrowed for the call; results are written
 * into the caller's memory. The vtable is borrowed until the caller's
 * fini. Test `size` before calling a member added later. */
#ifndef NNO_BILLING_H
#define NNO_BILLING_H

#include <stddef.h>
#include <stdint.h>

#define NNO_BILLING_SERVICE "nno.billing"
#define NNO_BILLING_VERSION 1

/* A token bucket: `rate` tokens a second, at most `burst`. */
typedef struct nno_rate {
  double rate;
  uint32_t burst;
} nno_rate;

/* The limits of one plan. A limit of 0 means "no limit". */
typedef struct nno_plan_limits {
  size_t size;          /* set by the caller: sizeof(nno_plan_limits) */
  char name[33];        /* [a-z0-9-], 1..32 bytes */
  uint64_t requests_per_month; /* requests admitted per calendar month, UTC */
  uint64_t storage_bytes;      /* all resources of the platform together */
  uint64_t users;              /* user accounts of the platform */
  uint64_t api_keys;           /* live (unrevoked) API keys of the platform */
  /* Rate limits (IAM): per platform, per API key, per user session, per
   * anonymous client address. */
  nno_rate platform, key, user, anonymous;
  uint32_t soft_pct;  /* 1..100: warn past this share of a quota (100: no
                         warning before the limit) */
  uint32_t grace_pct; /* 0..100: requests admitted past the monthly quota,
                         as a share of it, with a warning, before 402 */
  uint32_t grace_days; /* a platform whose payment failed is suspended
                          this many days later unless paid */
} nno_plan_limits;

typedef struct nno_billing_v1 {
  /* sizeof(nno_billing_v1) as the plugin was built. */
  size_t size;
  /* The limits of plan `name`. NNO_ENOENT for a plan that does not exist
   * (the caller falls back to the default plan's limits: see
   * default_plan). */
  int (*plan_limits)(const char *name, nno_plan_limits *out);
  /* The name of the plan a platform gets when its own is unknown, and the
   * plan of new platforms ("free" unless configured). NUL-terminated,
   * borrowed until the next call. */
  const char *(*default_plan)(void);
  /* The limits of platform `platform`'s plan (the registry's `plan`
   * field; the default plan's when that plan does not exist). NNO_ENOENT
   * for an unknown platform. */
  int (*platform_limits)(const char *platform, nno_plan_limits *out);
  /* The registry tells billing that platform `platform` was created, had
   * its plan changed, or was deleted (`plan` NULL): billing keeps the
   * provider in step (customer, subscription) in the background. `actor`
   * and `request_id` are for the audit trail (request_id may be NULL).
   * Returns 0 once the intent is stored (durable), or a negative code. */
  int (*platform_changed)(const char *platform, const char *plan,
                          const char *actor, const char *request_id);
  /* The name of the i-th plan by name (i = 0.. until NNO_ENOENT), for
   * messages listing the plans that exist. From memory, as plan_limits.
   * NNO_EINVAL when `cap` is too small (33 is enough). Test `size`
   * first. */
  int (*plan_at)(size_t i, char *out, size_t cap);
} nno_billing_v1;

#endif
