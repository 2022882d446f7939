/* The `none` provider (the embedded default): every call completes at
 * once, with no effect and no id. Plans and quotas work; nothing is
 * charged. */
#include <string.h>

#include "driver.h"

static int complete(drv_done_fn done, void *ud) {
  drv_result res;
  memset(&res, 0, sizeof res);
  res.outcome = DRV_OK;
  done(&res, ud);
  return 0;
}

static int none_customer(const char *key, const char *platform,
                         drv_done_fn done, void *ud) {
  (void)key;
  (void)platform;
  return complete(done, ud);
}

static int none_subscription(const char *key, const char *platform,
                             const char *customer, const char *subscription,
                             const char *price, drv_done_fn done, void *ud) {
  (void)key;
  (void)platform;
  (void)customer;
  (void)subscription;
  (void)price;
  return complete(done, ud);
}

static int none_cancel(const char *key, const char *subscription,
                       drv_done_fn done, void *ud) {
  (void)key;
  (void)subscription;
  return complete(done, ud);
}

static int none_usage(const char *key, const char *customer, uint64_t value,
                      int64_t timestamp, drv_done_fn done, void *ud) {
  (void)key;
  (void)customer;
  (void)value;
  (void)timestamp;
  return complete(done, ud);
}

const billing_driver billing_driver_none = {
    .name = "none",
    .ensure_customer = none_customer,
    .ensure_subscription = none_subscription,
    .cancel_subscription = none_cancel,
    .send_usage = none_usage,
};
