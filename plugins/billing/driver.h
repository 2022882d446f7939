/* The payment provider behind billing: a driver vtable (none, stripe),
 * the provider's settings, the outbox seam, and the pure wire helpers
 * (form encoding, webhook signatures) that the unit tests link alone.
 *
 * THREAD: the loop, except the wire helpers (pure, any thread).
 * OWNERSHIP: every argument is borrowed for the call; a driver copies
 * what it keeps. */
#ifndef NNO_BILLING_DRIVER_H
#define NNO_BILLING_DRIVER_H

#include <stddef.h>
#include <stdint.h>

#include <sqlite3.h>

#include <nno/registry.h>

/* ---- wire helpers (stripe_wire.c, no host calls) ----------------------- */

/* A growing form body "k=v&k=v" (application/x-www-form-urlencoded), at
 * most FORM_MAX bytes. Keys are written as given (bracket nesting is the
 * caller's: "items[0][price]"), both keys and values percent-encoded
 * except for [A-Za-z0-9-._~] (brackets too, as curl and Stripe's own
 * libraries do). */
#define FORM_MAX 8192
typedef struct form {
  char buf[FORM_MAX];
  size_t len;
  int overflow; /* 1 once something did not fit: the body is unusable */
} form;

void form_init(form *f);
void form_add(form *f, const char *key, const char *value);
void form_add_u64(form *f, const char *key, uint64_t value);

/* What verifying a Stripe-Signature header found. */
enum {
  SIG_OK = 0,
  SIG_MALFORMED = -1, /* over SIG_HEADER_MAX, no t, a t not digits, no v1 */
  SIG_MISMATCH = -2,  /* no v1 matches */
  SIG_EXPIRED = -3,   /* t more than tolerance_s from now */
};

/* Bounds of a Stripe-Signature header: its bytes, and the v1 values
 * compared (the first ones that are 64 hex digits). */
#define SIG_HEADER_MAX 8192
#define SIG_V1_MAX 16

/* Verify `header` ("t=..,v1=..[,v1=..]") against HMAC-SHA256 keyed with
 * `secret` over "{t}.{body}": split on ',', the first t taken, every v1
 * of 64 hex digits compared in constant time (the first SIG_V1_MAX of
 * them); a v1 of another shape, other schemes and parts without '=' are
 * skipped. The timestamp is checked after the signature, so an expired
 * but authentic event is told apart only once it verified. */
int stripe_sig_verify(const char *header, size_t header_len,
                      const char *secret, const void *body, size_t body_len,
                      int64_t now_s, int64_t tolerance_s);

/* The header a Stripe endpoint would send for `body` at time t (tests). */
int stripe_sig_make(const char *secret, int64_t t, const void *body,
                    size_t body_len, char *out, size_t cap);

/* Copy `in` into `out` (cap bytes) with every token that looks like a
 * secret ("sk_...", "rk_...", "whsec_...", "Bearer ...") replaced by
 * "[redacted]": for errors that are logged or stored. */
void secret_redact(const char *in, char *out, size_t cap);

/* ---- settings (provider.c parses them) ---------------------------------- */

typedef struct billing_provider_cfg {
  char provider[16];       /* "none" or "stripe" */
  char api_base[256];      /* https://api.stripe.com */
  char secret_key[256];    /* never logged */
  char webhook_secret[256];/* never logged */
  char api_version[64];    /* Stripe-Version */
  char meter_event[128];   /* meter events' event_name */
  int64_t tolerance_s;     /* webhook timestamp tolerance */
  int64_t timeout_ms;      /* one provider call */
  int64_t backoff_base_ms, backoff_max_ms;
  int64_t poll_ms;         /* outbox tick */
  int64_t usage_scan_ms;   /* closed buckets → usage jobs */
  int64_t grace_check_ms;  /* payment failed → suspended */
  int64_t flush_ms;        /* metering.flush_ms: when an hour is closed */
} billing_provider_cfg;

extern billing_provider_cfg g_pcfg;

/* ---- drivers ------------------------------------------------------------ */

enum { DRV_OK = 0, DRV_RETRY = 1, DRV_FAIL = 2 };

/* The outcome of one driver call. Borrowed during the callback. */
typedef struct drv_result {
  int outcome;             /* DRV_OK, DRV_RETRY, DRV_FAIL */
  uint64_t retry_after_ms; /* the provider asked to wait this long (0) */
  char id[128];            /* cus_..., sub_...; "" when none */
  char error[256];         /* why, redacted; "" on success */
} drv_result;

typedef void (*drv_done_fn)(const drv_result *res, void *ud);

/* Each call starts the work and returns 0, then calls `done` exactly once
 * on the loop (possibly before returning, for `none`); or returns a
 * negative NNO_E... code and never calls it. `key` is the outbox job's id,
 * sent as the Idempotency-Key of every POST. */
typedef struct billing_driver {
  const char *name;
  int (*ensure_customer)(const char *key, const char *platform,
                         drv_done_fn done, void *ud);
  /* Create the subscription of `customer` to `price` (subscription "") or
   * move the existing one's item to `price`. */
  int (*ensure_subscription)(const char *key, const char *platform,
                             const char *customer, const char *subscription,
                             const char *price, drv_done_fn done, void *ud);
  int (*cancel_subscription)(const char *key, const char *subscription,
                             drv_done_fn done, void *ud);
  /* One meter event: `value` requests of `customer` in the hour starting
   * at `timestamp`; `key` is also its identifier. */
  int (*send_usage)(const char *key, const char *customer, uint64_t value,
                    int64_t timestamp, drv_done_fn done, void *ud);
} billing_driver;

extern const billing_driver billing_driver_none;
extern const billing_driver billing_driver_stripe;

/* ---- outbox.c ------------------------------------------------------------ */

/* One leased job, handed to provider_send. */
typedef struct outbox_job {
  char id[192];
  char kind[16];
  char platform[64];
  char *body; /* JSON text, malloc'd; freed by the outbox */
  int cancels; /* set by provider_send: this subscription job cancels */
} outbox_job;

int billing_outbox_init(char *err, size_t cap);
void billing_outbox_ready(void);
void billing_outbox_fini(void);
/* The loop's connection to billing.db (NULL before init, after fini). */
sqlite3 *billing_outbox_db(void);
/* Store a job (INSERT OR IGNORE: an id is sent once) inside the caller's
 * transaction. 0 or an sqlite code. */
int billing_outbox_add(sqlite3 *db, const char *id, const char *kind,
                       const char *platform, const char *body_json);
/* A fresh job id "{kind}-{platform}-{ms}-{hex}". */
void billing_outbox_new_id(const char *kind, const char *platform, char *out,
                           size_t cap);
/* Wall-clock milliseconds. */
int64_t billing_now_ms(void);

/* ---- provider.c (used by outbox.c and webhook.c) ------------------------ */

/* Send `job` through the driver; calls billing_outbox_done when over. */
void provider_send(outbox_job *job);
/* Record a job's outcome: provider.c applies its effect on success inside
 * the same transaction (the outbox's). */
int provider_apply(sqlite3 *db, const outbox_job *job, const drv_result *res);
/* The outcome of provider_send (outbox.c). Takes `job`. */
void billing_outbox_done(outbox_job *job, const drv_result *res);
/* Closed hourly buckets of class 0 → usage jobs (outbox.c's tick). */
int provider_usage_scan(sqlite3 *db);
/* Payment failures past their plan's grace → suspended (timer; also
 * right after a webhook said a payment failed). */
void provider_grace_check(void);

/* A platform's row of `accounts`. */
typedef struct billing_account {
  int found;
  char platform[64], plan[33], customer[128], subscription[128], payment[16];
  int64_t failed_at;
  int suspended_by_billing;
  int64_t sub_event_at; /* created of the last subscription event applied */
} billing_account;

/* Read `platform`'s account (found 0 when it has none). An sqlite code. */
int billing_account_get(sqlite3 *db, const char *platform, billing_account *a);
/* The registry when it has platform_set_plan and platform_set_status,
 * else NULL. */
const nno_registry_v1 *billing_registry_writer(void);

#endif
