/* A plan's JSON: checking it and laying it over a plan (the API's bodies,
 * the configuration's plans, the stored rows), and writing the limits
 * back. Pure: no host call and no storage, so it is unit-tested alone. */
#include <stdio.h>
#include <string.h>

#include <jansson.h>
#include <nno/sdk.h>

#include "internal.h"

#define MIB (1024ull * 1024ull)

/* What a plan given without a field holds: the free plan's values. */
#define FREE_SEED                       \
  {                                     \
    .l = {.name = "free",               \
          .requests_per_month = 100000, \
          .storage_bytes = 100 * MIB,   \
          .users = 1000,                \
          .api_keys = 10,               \
          .platform = {200, 400},       \
          .key = {50, 100},             \
          .user = {20, 40},             \
          .anonymous = {20, 60},        \
          .soft_pct = 80,               \
          .grace_pct = 0,               \
          .grace_days = 7},             \
  }
static const plan_row free_seed = FREE_SEED;

void plan_defaults(plan_row *r) {
  *r = free_seed;
}

/* ---- parsing ------------------------------------------------------------- */

/* Bounds of each number of a plan. */
#define MAX_REQUESTS 1000000000000ull /* 10^12 a month */
#define MAX_STORAGE (1ull << 50)      /* 1 PiB */
#define MAX_USERS 1000000000ull
#define MAX_KEYS 1000000ull
/* A rate below one token in 1000 s would answer Retry-After beyond any
 * client's patience (and past what a header's integer holds). */
#define MIN_RATE 0.001
#define MAX_RATE 10000000.0
#define MAX_BURST 100000000ll

static const char *const plan_fields[] = {"name",
                                          "requests_per_month",
                                          "storage_bytes",
                                          "users",
                                          "api_keys",
                                          "rates",
                                          "soft_pct",
                                          "grace_pct",
                                          "grace_days",
                                          "provider_price",
                                          NULL};
static const char *const rate_fields[] = {"platform", "key", "user",
                                          "anonymous", NULL};
static const char *const pair_fields[] = {"rate", "burst", NULL};

/* Refuse a member of `obj` not in `keys`, naming the nearest known one
 * (within 2 edits) or all of them. 0, or -1 with field and msg. */
static int only_keys(const json_t *obj, const char *path,
                     const char *const *keys, plan_error *e) {
  const char *k;
  json_t *v;
  json_object_foreach((json_t *)obj, k, v) {
    size_t i = 0;
    while (keys[i] && strcmp(keys[i], k) != 0) i++;
    if (keys[i]) continue;
    const char *best = nno_nearest(k, keys, 2);
    char q[80];
    snprintf(e->field, sizeof e->field, "%s%s%.40s", path, path[0] ? "." : "",
             k);
    nno_quote(e->field, q, sizeof q);
    if (best) {
      snprintf(e->msg, sizeof e->msg,
               "field %s: unknown field (did you mean \"%s\"?)", q, best);
    } else {
      size_t o = 0;
      o += (size_t)snprintf(e->msg, sizeof e->msg,
                            "field %s: unknown field (expected", q);
      for (i = 0; keys[i] && o < sizeof e->msg; i++)
        o += (size_t)snprintf(e->msg + o, sizeof e->msg - o, "%s %s",
                              i ? "," : "", keys[i]);
      if (o < sizeof e->msg) snprintf(e->msg + o, sizeof e->msg - o, ")");
    }
    return -1;
  }
  return 0;
}

static int fail(plan_error *e, const char *field, const char *fmt,
                unsigned long long lo, unsigned long long hi) {
  snprintf(e->field, sizeof e->field, "%s", field);
  char what[160];
  snprintf(what, sizeof what, fmt, lo, hi);
  snprintf(e->msg, sizeof e->msg, "field \"%s\": %s", field, what);
  return -1;
}

/* An unsigned integer member in lo..hi into *out when present. */
static int take_u64(const json_t *o, const char *k, uint64_t lo, uint64_t hi,
                    uint64_t *out, plan_error *e) {
  json_t *v = json_object_get(o, k);
  if (!v) return 0;
  if (!json_is_integer(v) || json_integer_value(v) < (json_int_t)lo ||
      (uint64_t)json_integer_value(v) > hi)
    return fail(e, k, "expected an integer in %llu..%llu", lo, hi);
  *out = (uint64_t)json_integer_value(v);
  return 0;
}

static int take_u32(const json_t *o, const char *k, uint32_t lo, uint32_t hi,
                    uint32_t *out, plan_error *e) {
  uint64_t v = *out;
  if (take_u64(o, k, lo, hi, &v, e)) return -1;
  *out = (uint32_t)v;
  return 0;
}

/* One bucket {"rate": r, "burst": b}, either member optional. */
static int take_pair(const json_t *rates, const char *k, nno_rate *r,
                     plan_error *e) {
  json_t *v = json_object_get(rates, k);
  char path[48];
  snprintf(path, sizeof path, "rates.%s", k);
  if (!v) return 0;
  if (!json_is_object(v)) {
    snprintf(e->field, sizeof e->field, "%s", path);
    snprintf(e->msg, sizeof e->msg,
             "field \"%s\": expected {\"rate\": tokens a second in "
             "%g..%.0f, \"burst\": 1..%lld}",
             path, MIN_RATE, MAX_RATE, MAX_BURST);
    return -1;
  }
  if (only_keys(v, path, pair_fields, e)) return -1;
  json_t *rate = json_object_get(v, "rate"),
         *burst = json_object_get(v, "burst");
  if (rate) {
    double d = json_number_value(rate);
    if (!json_is_number(rate) || !(d >= MIN_RATE) || d > MAX_RATE) {
      snprintf(e->field, sizeof e->field, "%s.rate", path);
      snprintf(e->msg, sizeof e->msg,
               "field \"%s.rate\": expected a number of tokens a second "
               "from %g to %.0f",
               path, MIN_RATE, MAX_RATE);
      return -1;
    }
    r->rate = d;
  }
  if (burst) {
    if (!json_is_integer(burst) || json_integer_value(burst) < 1 ||
        json_integer_value(burst) > MAX_BURST) {
      snprintf(e->field, sizeof e->field, "%s.burst", path);
      snprintf(e->msg, sizeof e->msg,
               "field \"%s.burst\": expected an integer in 1..%lld", path,
               MAX_BURST);
      return -1;
    }
    r->burst = (uint32_t)json_integer_value(burst);
  }
  return 0;
}

int plan_price_valid(const char *s) {
  size_t n = strlen(s);
  if (n == 0) return 1;
  if (n <= 6 || n >= PLAN_PRICE_MAX || strncmp(s, "price_", 6) != 0) return 0;
  for (size_t i = 6; i < n; i++)
    if (!((s[i] >= 'a' && s[i] <= 'z') || (s[i] >= 'A' && s[i] <= 'Z') ||
          (s[i] >= '0' && s[i] <= '9')))
      return 0;
  return 1;
}

int plan_name_valid(const char *s) {
  size_t n = strlen(s);
  if (n < 1 || n > 32) return 0;
  for (size_t i = 0; i < n; i++)
    if (!((s[i] >= 'a' && s[i] <= 'z') || (s[i] >= '0' && s[i] <= '9') ||
          s[i] == '-'))
      return 0;
  return 1;
}

int plan_apply(const json_t *obj, plan_row *r, plan_error *e) {
  memset(e, 0, sizeof *e);
  if (!json_is_object(obj)) {
    snprintf(e->msg, sizeof e->msg, "a plan is a JSON object");
    return -1;
  }
  if (only_keys(obj, "", plan_fields, e)) return -1;
  plan_row n = *r; /* nothing changes unless everything is valid */
  json_t *rates = json_object_get(obj, "rates");
  if (take_u64(obj, "requests_per_month", 0, MAX_REQUESTS,
               &n.l.requests_per_month, e) ||
      take_u64(obj, "storage_bytes", 0, MAX_STORAGE, &n.l.storage_bytes, e) ||
      take_u64(obj, "users", 0, MAX_USERS, &n.l.users, e) ||
      take_u64(obj, "api_keys", 0, MAX_KEYS, &n.l.api_keys, e) ||
      take_u32(obj, "soft_pct", 1, 100, &n.l.soft_pct, e) ||
      take_u32(obj, "grace_pct", 0, 100, &n.l.grace_pct, e) ||
      take_u32(obj, "grace_days", 0, 90, &n.l.grace_days, e))
    return -1;
  if (rates) {
    if (!json_is_object(rates)) {
      snprintf(e->field, sizeof e->field, "rates");
      snprintf(e->msg, sizeof e->msg,
               "field \"rates\": expected an object of platform, key, user, "
               "anonymous");
      return -1;
    }
    if (only_keys(rates, "rates", rate_fields, e) ||
        take_pair(rates, "platform", &n.l.platform, e) ||
        take_pair(rates, "key", &n.l.key, e) ||
        take_pair(rates, "user", &n.l.user, e) ||
        take_pair(rates, "anonymous", &n.l.anonymous, e))
      return -1;
  }
  json_t *price = json_object_get(obj, "provider_price");
  if (price) {
    if (!json_is_string(price) || !plan_price_valid(json_string_value(price))) {
      char q[64];
      nno_quote(json_is_string(price) ? json_string_value(price) : "", q,
                sizeof q);
      snprintf(e->field, sizeof e->field, "provider_price");
      snprintf(e->msg, sizeof e->msg,
               "field \"provider_price\": expected \"\" or price_ followed by "
               "letters and digits (at most %d bytes), got %s",
               PLAN_PRICE_MAX - 1,
               json_is_string(price) ? q : nno_json_type_name(price));
      return -1;
    }
    snprintf(n.price, sizeof n.price, "%s", json_string_value(price));
  }
  *r = n;
  return 0;
}

static json_t *pair_json(const nno_rate *r) {
  return json_pack("{s:f, s:i}", "rate", r->rate, "burst", (int)r->burst);
}

json_t *plan_limits_json(const plan_row *r) {
  return json_pack(
      "{s:I, s:I, s:I, s:I, s:{s:o, s:o, s:o, s:o}, s:i, s:i, s:i}",
      "requests_per_month", (json_int_t)r->l.requests_per_month,
      "storage_bytes", (json_int_t)r->l.storage_bytes, "users",
      (json_int_t)r->l.users, "api_keys", (json_int_t)r->l.api_keys, "rates",
      "platform", pair_json(&r->l.platform), "key", pair_json(&r->l.key),
      "user", pair_json(&r->l.user), "anonymous", pair_json(&r->l.anonymous),
      "soft_pct", (int)r->l.soft_pct, "grace_pct", (int)r->l.grace_pct,
      "grace_days", (int)r->l.grace_days);
}
