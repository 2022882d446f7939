/* Counting from the gateway (LIMIT and done hooks), the flush into hourly
 * buckets, quota enforcement. (To be written.) */
#include "internal.h"

int billing_meter_init(char *err, size_t cap) { (void)err; (void)cap; return 0; }
void billing_meter_ready(void) {}
void billing_meter_fini(void) {}
