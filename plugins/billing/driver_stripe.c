/* The `stripe` provider: Stripe's /v1 API through the host's http_fetch
 * (libcurl on the worker's loop). Every call carries the secret key as a
 * bearer token and a pinned Stripe-Version; every POST a form body with
 * bracket nesting and the outbox job's id as its Idempotency-Key, so a
 * retry of a request that did reach Stripe is answered with the first
 * result instead of being applied twice.
 *
 * Outcomes: 2xx → DRV_OK with the object's id; 429, 409 (a request with
 * the same key still running), 5xx, network errors and timeouts →
 * DRV_RETRY (with Retry-After when given); any other answer → DRV_FAIL
 * with Stripe's error message, secrets redacted. The secret is never
 * logged: it lives in g_pcfg and in the header built for each call. */
#include <ctype.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include <jansson.h>
#include <sodium.h>

#include "driver.h"
#include "internal.h"

/* The most bytes of a Stripe answer read (objects here are a few KiB). */
#define STRIPE_RESPONSE_MAX (256 * 1024)

enum { STEP_ONE = 0, STEP_SUB_READ, STEP_SUB_UPDATE };

/* One call in flight; freed when `done` has been called. */
typedef struct call {
  drv_done_fn done;
  void *ud;
  int step;
  char key[192];
  char platform[64];
  char subscription[128];
  char price[128];
} call;

/* 1 if `s` may stand in a URL path as a Stripe id. */
static int id_ok(const char *s) {
  size_t n = strlen(s);
  if (n == 0 || n > 100) return 0;
  for (size_t i = 0; i < n; i++)
    if (!isalnum((unsigned char)s[i]) && s[i] != '_') return 0;
  return 1;
}

static void finish(call *c, drv_result *res) {
  c->done(res, c->ud);
  free(c);
}

/* Retry-After in seconds from a raw header block, as milliseconds. */
static uint64_t retry_after_ms(nno_str headers) {
  const char *p = headers.ptr, *end = headers.ptr + headers.len;
  static const char name[] = "retry-after:";
  size_t n = sizeof name - 1;
  while (p < end) {
    const char *nl = memchr(p, '\n', (size_t)(end - p));
    const char *le = nl ? nl : end;
    if ((size_t)(le - p) > n && strncasecmp(p, name, n) == 0) {
      const char *v = p + n;
      while (v < le && *v == ' ') v++;
      uint64_t s = 0;
      int digits = 0;
      while (v < le && *v >= '0' && *v <= '9' && digits < 7) {
        s = s * 10 + (uint64_t)(*v++ - '0');
        digits++;
      }
      return digits ? s * 1000 : 0;
    }
    p = nl ? nl + 1 : end;
  }
  return 0;
}

/* Classify an answer into `res`; the parsed body is returned (the caller
 * decrefs) for a 2xx, else NULL. */
static json_t *classify(const nno_http_response *r, drv_result *res) {
  memset(res, 0, sizeof *res);
  if (r->error) {
    res->outcome = DRV_RETRY;
    char e[200];
    snprintf(e, sizeof e, "%s", r->error_message ? r->error_message
                                                 : api->strerror(r->error));
    secret_redact(e, res->error, sizeof res->error);
    return NULL;
  }
  json_t *body = json_loadb(r->body.ptr, r->body.len, 0, NULL);
  if (r->status >= 200 && r->status < 300) {
    if (!json_is_object(body)) {
      json_decref(body);
      res->outcome = DRV_RETRY;
      snprintf(res->error, sizeof res->error,
               "stripe %d: an answer that is not a JSON object", r->status);
      return NULL;
    }
    res->outcome = DRV_OK;
    const char *id = json_string_value(json_object_get(body, "id"));
    if (id) snprintf(res->id, sizeof res->id, "%s", id);
    return body;
  }
  json_t *err = json_object_get(body, "error");
  const char *msg = json_string_value(json_object_get(err, "message"));
  const char *type = json_string_value(json_object_get(err, "type"));
  char e[256];
  snprintf(e, sizeof e, "stripe %d %s: %s", r->status, type ? type : "error",
           msg ? msg : "no message");
  secret_redact(e, res->error, sizeof res->error);
  json_decref(body);
  if (r->status == 429 || r->status == 409 || r->status >= 500) {
    res->outcome = DRV_RETRY;
    res->retry_after_ms = retry_after_ms(r->headers);
  } else {
    res->outcome = DRV_FAIL;
  }
  return NULL;
}

static void on_answer(const nno_http_response *r, void *ud);

/* Send one request of `c`: `fm` NULL for a GET/DELETE without a body. */
static int request(call *c, const char *method, const char *path,
                   const form *fm) {
  if (fm && fm->overflow) return NNO_ETOOBIG;
  if (!g_pcfg.secret_key[0]) return NNO_ESTATE;
  char url[512], auth[300], ver[96], idem[224];
  int n = snprintf(url, sizeof url, "%s%s", g_pcfg.api_base, path);
  if (n < 0 || (size_t)n >= sizeof url) return NNO_ETOOBIG;
  snprintf(auth, sizeof auth, "Authorization: Bearer %s", g_pcfg.secret_key);
  snprintf(ver, sizeof ver, "Stripe-Version: %s", g_pcfg.api_version);
  snprintf(idem, sizeof idem, "Idempotency-Key: %s", c->key);
  const char *headers[6];
  size_t h = 0;
  headers[h++] = auth;
  headers[h++] = ver;
  headers[h++] = "Accept: application/json";
  if (strcmp(method, "GET") != 0) headers[h++] = idem;
  if (fm) headers[h++] = "Content-Type: application/x-www-form-urlencoded";
  headers[h] = NULL;
  nno_http_request req;
  memset(&req, 0, sizeof req);
  req.size = sizeof req;
  req.method = method;
  req.url = url;
  req.headers = headers;
  req.body = fm ? fm->buf : NULL;
  req.body_len = fm ? fm->len : 0;
  req.timeout_ms = (uint32_t)g_pcfg.timeout_ms;
  req.max_response_bytes = STRIPE_RESPONSE_MAX;
  int rc = api->http_fetch(g_bill.p, &req, on_answer, c);
  sodium_memzero(auth, sizeof auth);
  return rc;
}

static void fail_now(call *c, int rc) {
  drv_result res;
  memset(&res, 0, sizeof res);
  res.outcome = DRV_RETRY;
  snprintf(res.error, sizeof res.error, "cannot send: %s", api->strerror(rc));
  finish(c, &res);
}

static void on_answer(const nno_http_response *r, void *ud) {
  call *c = ud;
  drv_result res;
  json_t *body = classify(r, &res);
  if (c->step == STEP_SUB_READ && body) {
    /* The subscription's first item, to move it to the new price. */
    json_t *items = json_object_get(json_object_get(body, "items"), "data");
    const char *item =
        json_string_value(json_object_get(json_array_get(items, 0), "id"));
    char item_id[128] = "";
    if (item) snprintf(item_id, sizeof item_id, "%s", item);
    json_decref(body);
    if (!item_id[0]) {
      memset(&res, 0, sizeof res);
      res.outcome = DRV_FAIL;
      snprintf(res.error, sizeof res.error, "subscription has no item");
      finish(c, &res);
      return;
    }
    form fm;
    form_init(&fm);
    form_add(&fm, "items[0][id]", item_id);
    form_add(&fm, "items[0][price]", c->price);
    form_add(&fm, "metadata[platform]", c->platform);
    char path[192];
    snprintf(path, sizeof path, "/v1/subscriptions/%s", c->subscription);
    c->step = STEP_SUB_UPDATE;
    int rc = request(c, "POST", path, &fm);
    if (rc) fail_now(c, rc);
    return;
  }
  json_decref(body);
  finish(c, &res);
}

static call *call_new(const char *key, drv_done_fn done, void *ud) {
  call *c = calloc(1, sizeof *c);
  if (!c) return NULL;
  c->done = done;
  c->ud = ud;
  snprintf(c->key, sizeof c->key, "%s", key);
  return c;
}

/* Start `c`'s first request, or free it and return the error. */
static int start(call *c, const char *method, const char *path,
                 const form *fm) {
  int rc = request(c, method, path, fm);
  if (rc) free(c);
  return rc;
}

static int stripe_customer(const char *key, const char *platform,
                           drv_done_fn done, void *ud) {
  call *c = call_new(key, done, ud);
  if (!c) return NNO_ENOMEM;
  form fm;
  form_init(&fm);
  form_add(&fm, "name", platform);
  form_add(&fm, "metadata[platform]", platform);
  return start(c, "POST", "/v1/customers", &fm);
}

static int stripe_subscription(const char *key, const char *platform,
                               const char *customer, const char *subscription,
                               const char *price, drv_done_fn done, void *ud) {
  if (subscription[0] && !id_ok(subscription)) return NNO_EINVAL;
  call *c = call_new(key, done, ud);
  if (!c) return NNO_ENOMEM;
  snprintf(c->platform, sizeof c->platform, "%s", platform);
  snprintf(c->subscription, sizeof c->subscription, "%s", subscription);
  snprintf(c->price, sizeof c->price, "%s", price);
  if (subscription[0]) {
    char path[192];
    snprintf(path, sizeof path, "/v1/subscriptions/%s", subscription);
    c->step = STEP_SUB_READ;
    return start(c, "GET", path, NULL);
  }
  form fm;
  form_init(&fm);
  form_add(&fm, "customer", customer);
  form_add(&fm, "items[0][price]", price);
  form_add(&fm, "metadata[platform]", platform);
  return start(c, "POST", "/v1/subscriptions", &fm);
}

static int stripe_cancel(const char *key, const char *subscription,
                         drv_done_fn done, void *ud) {
  if (!id_ok(subscription)) return NNO_EINVAL;
  call *c = call_new(key, done, ud);
  if (!c) return NNO_ENOMEM;
  char path[192];
  snprintf(path, sizeof path, "/v1/subscriptions/%s", subscription);
  return start(c, "DELETE", path, NULL);
}

static int stripe_usage(const char *key, const char *customer, uint64_t value,
                        int64_t timestamp, drv_done_fn done, void *ud) {
  call *c = call_new(key, done, ud);
  if (!c) return NNO_ENOMEM;
  form fm;
  form_init(&fm);
  form_add(&fm, "event_name", g_pcfg.meter_event);
  form_add(&fm, "payload[stripe_customer_id]", customer);
  form_add_u64(&fm, "payload[value]", value);
  form_add_u64(&fm, "timestamp", (uint64_t)timestamp);
  form_add(&fm, "identifier", key);
  return start(c, "POST", "/v1/billing/meter_events", &fm);
}

const billing_driver billing_driver_stripe = {
    .name = "stripe",
    .ensure_customer = stripe_customer,
    .ensure_subscription = stripe_subscription,
    .cancel_subscription = stripe_cancel,
    .send_usage = stripe_usage,
};
