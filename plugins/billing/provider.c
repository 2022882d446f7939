/* The payment provider kept in step: customers, subscriptions, usage
 * reports, payment state. (To be written.) */
#include "internal.h"

int billing_provider_init(char *err, size_t cap) { (void)err; (void)cap; return 0; }
void billing_provider_ready(void) {}
void billing_provider_fini(void) {}
int billing_platform_changed(const char *platform, const char *plan,
                             const char *actor, const char *request_id) {
  (void)platform; (void)plan; (void)actor; (void)request_id; return 0;
}
