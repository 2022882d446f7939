/* POST /api/v1/billing/webhooks/stripe. (To be written.) */
#include "internal.h"

int billing_webhook_init(char *err, size_t cap) { (void)err; (void)cap; return 0; }
