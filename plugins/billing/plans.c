/* Plans as data: the in-memory table every worker answers from, the host
 * configuration's overrides, and /api/v1/plans. (To be written.) */
#include "internal.h"

int billing_plans_init(char *err, size_t cap) { (void)err; (void)cap; return 0; }
void billing_plans_ready(void) {}
void billing_plans_fini(void) {}
int billing_plan_limits(const char *name, nno_plan_limits *out) {
  (void)name; (void)out; return NNO_ENOENT;
}
const char *billing_default_plan(void) { return "free"; }
int billing_platform_limits(const char *platform, nno_plan_limits *out) {
  (void)platform; (void)out; return NNO_ENOENT;
}
int billing_plan_price(const char *name, char *out, size_t cap) {
  (void)name; (void)out; (void)cap; return NNO_ENOENT;
}
int billing_plan_by_price(const char *price, char *out, size_t cap) {
  (void)price; (void)out; (void)cap; return NNO_ENOENT;
}
