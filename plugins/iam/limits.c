/* Pure helpers of IAM's rate limiting: what a refusal of the host's limiter means.
 * Linked into the unit tests without the host. */

#include "internal.h"

int iam_limit_table_full(const nno_limit_result *r) {
  /* A bucket that exists always reports limit == burst >= 1; the host
   * answers limit 0 when its table had no room to create one. */
  return !r->allowed && r->limit == 0;
}
