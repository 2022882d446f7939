/* Token buckets in shared memory: one table the master maps before forking,
 * used by every worker, so a limit holds across workers exactly. */
#ifndef NNO_HOST_RATELIMIT_H
#define NNO_HOST_RATELIMIT_H

#include <stddef.h>
#include <stdint.h>

#include <nno/plugin.h>

#define LIMIT_KEY_MAX 128
#define LIMIT_BUCKETS 16384 /* slots; a key probes at most LIMIT_PROBE */
#define LIMIT_PROBE 16

/* Map the table (master, once, before fork). 0 or -1. */
int limits_init(void);

/* Take `cost` tokens from bucket `key` (see the ABI's limit_take). Returns 0
 * with *out filled, or NNO_ESTATE if the table was never mapped. */
int limits_take(const char *key, size_t key_len, double rate_per_s,
                uint32_t burst, uint32_t cost, nno_limit_result *out);

#endif
