/* The manifest's "config" object: hashing cost and concurrency, and the
 * failed sign-in limits. Unknown keys are errors, like the host's own
 * configuration. */
#include <stdio.h>
#include <string.h>

#include <jansson.h>

#include "auth.h"

typedef struct int_key {
  const char *name;
  long long min, max, def;
} int_key;

enum {
  K_OPS,
  K_MEM,
  K_CONC,
  K_QUEUE,
  K_ACCT_BURST,
  K_ACCT_WINDOW,
  K_ADDR_BURST,
  K_ADDR_WINDOW,
  K_COUNT
};

/* Defaults: libsodium's "interactive" argon2id cost (2 passes, 64 MiB),
 * 5 failures per account and 20 per address per 15 minutes. */
static const int_key keys[K_COUNT] = {
    [K_OPS] = {"pwhash_ops", 1, 16, 2},
    [K_MEM] = {"pwhash_mem_kib", 8, 1048576, 65536},
    [K_CONC] = {"pwhash_concurrency", 1, 64, 2},
    [K_QUEUE] = {"pwhash_queue", 0, 10000, 64},
    [K_ACCT_BURST] = {"signin_account_burst", 1, 1000, 5},
    [K_ACCT_WINDOW] = {"signin_account_window_s", 1, 86400, 900},
    [K_ADDR_BURST] = {"signin_address_burst", 1, 100000, 20},
    [K_ADDR_WINDOW] = {"signin_address_window_s", 1, 86400, 900},
};

static int find_key(const char *name) {
  for (int i = 0; i < K_COUNT; i++)
    if (strcmp(keys[i].name, name) == 0) return i;
  return -1;
}

int auth_config_parse(const char *text, auth_config *c, char *err, size_t cap) {
  long long v[K_COUNT];
  for (int i = 0; i < K_COUNT; i++) v[i] = keys[i].def;
  json_error_t je;
  json_t *o = json_loads(text ? text : "{}", JSON_REJECT_DUPLICATES, &je);
  if (!o || !json_is_object(o)) {
    snprintf(err, cap, "config: expected a JSON object");
    json_decref(o);
    return -1;
  }
  const char *name;
  json_t *val;
  json_object_foreach(o, name, val) {
    int k = find_key(name);
    if (k < 0) {
      snprintf(err, cap, "config: unknown field \"%.64s\"", name);
      json_decref(o);
      return -1;
    }
    long long x = json_is_integer(val) ? json_integer_value(val) : 0;
    if (!json_is_integer(val) || x < keys[k].min || x > keys[k].max) {
      snprintf(err, cap,
               "config field \"%s\": expected an integer from %lld to %lld",
               name, keys[k].min, keys[k].max);
      json_decref(o);
      return -1;
    }
    v[k] = x;
  }
  json_decref(o);
  c->pw_ops = (unsigned long long)v[K_OPS];
  c->pw_mem = (size_t)v[K_MEM] * 1024;
  c->concurrency = (unsigned)v[K_CONC];
  c->queue_max = (unsigned)v[K_QUEUE];
  c->acct_burst = (uint32_t)v[K_ACCT_BURST];
  c->acct_window_s = (double)v[K_ACCT_WINDOW];
  c->addr_burst = (uint32_t)v[K_ADDR_BURST];
  c->addr_window_s = (double)v[K_ADDR_WINDOW];
  if (c->pw_ops < crypto_pwhash_argon2id_OPSLIMIT_MIN ||
      c->pw_mem < crypto_pwhash_argon2id_MEMLIMIT_MIN) {
    snprintf(err, cap, "config: argon2id needs at least %u passes and %u KiB",
             (unsigned)crypto_pwhash_argon2id_OPSLIMIT_MIN,
             (unsigned)(crypto_pwhash_argon2id_MEMLIMIT_MIN / 1024));
    return -1;
  }
  return 0;
}
