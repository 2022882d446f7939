/* Failed sign-in limits: two token buckets of the host per job, one for
 * the account and one for the client's address (see README.md). Loop
 * thread only, like every host call. */
#include <stdio.h>
#include <string.h>

#include <nno/sdk.h>

#include "auth.h"

#define LIMIT_KEY_MAX 120 /* the host's bound on a limit_take key */

static const auth_config *cfg;
static const nno_host_api *api;
static nno_plugin *self;

void auth_limits_init(const auth_config *c) {
  cfg = c;
  api = nno_sdk_api();
  self = nno_sdk_plugin();
}

typedef struct bucket {
  char key[LIMIT_KEY_MAX + 1];
  size_t len;
  double rate;
  uint32_t burst;
} bucket;

/* "acct:{platform}:{email, lower-case}", or a digest of the email when
 * that would be over the host's key bound (a digest has no '@', so it
 * never equals a real address). */
static void acct_bucket(const auth_job *j, bucket *b) {
  char email[AUTH_EMAIL_MAX + 1];
  size_t n = strlen(j->user.email);
  for (size_t i = 0; i <= n; i++) {
    char c = j->user.email[i];
    email[i] = (char)(c >= 'A' && c <= 'Z' ? c + 32 : c);
  }
  int len = snprintf(b->key, sizeof b->key, "acct:%s:%s", j->platform, email);
  if (len < 0 || (size_t)len >= sizeof b->key) {
    unsigned char d[16];
    char hex[33];
    crypto_generichash(d, sizeof d, (const unsigned char *)email, n, NULL, 0);
    sodium_bin2hex(hex, sizeof hex, d, sizeof d);
    len = snprintf(b->key, sizeof b->key, "acct:%s:%s", j->platform, hex);
  }
  b->len = (size_t)len;
  b->burst = cfg->acct_burst;
  b->rate = cfg->acct_burst / cfg->acct_window_s;
}

static void addr_bucket(const auth_job *j, bucket *b) {
  int len = snprintf(b->key, sizeof b->key, "addr:%s:%s", j->platform,
                     j->addr[0] ? j->addr : "unknown");
  b->len = len > 0 ? (size_t)len : 0;
  b->burst = cfg->addr_burst;
  b->rate = cfg->addr_burst / cfg->addr_window_s;
}

/* 0: the bucket has a token; 1: empty, *wait_ms until one is back; 2: the
 * host's table has no room for the bucket (a refusal with limit 0: a
 * bucket that exists always has limit == burst >= 1), *wait_ms the host's
 * hint; -1: the limiter failed. A cost-0 take only looks; the cost-1 take
 * on an empty bucket is refused and takes nothing, but says how long to
 * wait. */
static int bucket_empty(const bucket *b, uint64_t *wait_ms) {
  nno_limit_result r;
  int rc = api->limit_take(self, b->key, b->len, b->rate, b->burst, 0, &r);
  if (rc == NNO_OK && r.remaining > 0) return 0;
  if (rc == NNO_OK && r.allowed)
    rc = api->limit_take(self, b->key, b->len, b->rate, b->burst, 1, &r);
  if (rc != NNO_OK) {
    api->log(self, NNO_LOG_ERROR, "limit_take: %s", api->err_name(rc));
    return -1;
  }
  if (r.allowed) return 0; /* refilled in between: that token is spent */
  *wait_ms = r.retry_after_ms;
  return r.limit == 0 ? 2 : 1;
}

/* The buckets a job's failures count in: the account and the address; a
 * sign-up's (a taken email) only the address, as a sign-up names no
 * account of its own. Returns how many were filled. */
static size_t job_buckets(const auth_job *j, bucket b[2]) {
  size_t n = 0;
  if (j->kind != JOB_SIGNUP) acct_bucket(j, &b[n++]);
  addr_bucket(j, &b[n++]);
  return n;
}

/* Before verifying a password, or looking an email up for a sign-up:
 * answer 429 when the account or the address has no failure left, 503
 * when the host's table has no room to count them (its capacity, not the
 * caller's failures: no lock-out is claimed). 1 when answered, 0 to go
 * on. */
int auth_locked_out(const auth_job *j) {
  bucket b[2];
  uint64_t wait = 0, w;
  int locked = 0, full = 0;
  size_t n = job_buckets(j, b);
  for (size_t i = 0; i < n; i++) {
    w = 0;
    int rc = bucket_empty(&b[i], &w);
    if (rc < 0) {
      nno_problem(j->req, 500, NULL, "cannot check sign-in limits");
      return 1;
    }
    if (rc && w > wait) wait = w;
    locked |= rc == 1;
    full |= rc == 2;
  }
  if (full && !locked) {
    api->log(self, NNO_LOG_WARN,
             "sign-ins refused on platform %s: the rate-limit table is full",
             j->platform);
    nno_problem_retry(j->req, 503, (wait + 999) / 1000, "%s",
                      "the host's rate-limit table is full; try again later");
    return 1;
  }
  if (!locked) return 0;
  api->log(self, NNO_LOG_WARN, "sign-ins locked out on platform %s",
           j->platform);
  nno_problem_retry(j->req, 429, (wait + 999) / 1000, "%s",
                    j->kind == JOB_SIGNUP
                        ? "too many failed sign-ins or sign-ups from this "
                          "address; try again later"
                        : "too many failed sign-ins; try again later");
  return 1;
}

void auth_count_failure(const auth_job *j) {
  bucket b[2];
  nno_limit_result r;
  size_t n = job_buckets(j, b);
  for (size_t i = 0; i < n; i++) {
    int rc =
        api->limit_take(self, b[i].key, b[i].len, b[i].rate, b[i].burst, 1, &r);
    if (rc != NNO_OK)
      api->log(self, NNO_LOG_ERROR, "limit_take: %s", api->err_name(rc));
  }
}
