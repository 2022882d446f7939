/* Cached session validation, timed (bench/session.sh builds and runs it;
 * summary in bench/README.md, "Session validation").
 *
 *   session_bench [SESSIONS [LOOKUPS [REPS]]]     defaults 10000 1000000 5
 *
 * Fills an iam_cache with SESSIONS sessions (tokens made by iam_token_new,
 * as the auth package's sign-in does), then times LOOKUPS validations of
 * what iam_session_check (plugins/iam/policy.c) does on a cache hit:
 * iam_token_split, iam_now, iam_cache_get, crypto_hash_sha256 of the
 * token, sodium_memcmp against the stored hash, the expiry checks, the
 * "touch due?" test and the copy of the session out. Every validation must
 * succeed (the database branches — cache miss, idle expiry, touch — never
 * run here; the program fails if one would have).
 *
 * Two orders: "random" picks the token by a fixed pseudo-random sequence
 * over all SESSIONS (the cache's ~0.75 KiB entries and the tokens spread
 * over more memory than the L2 cache holds, as with many clients: the
 * first touch of a token and of its entry miss the CPU caches; in the
 * server the token sits in the request just parsed), "one" validates the
 * same token every time (one busy client: everything in the CPU caches).
 * Then each part alone, in both orders, to show where the time goes. Each
 * figure is the median of REPS timed passes (the minimum in brackets), in
 * ns per operation.
 *
 * Built against plugins/iam/session.c and keys.c only: iam_now is defined
 * here as plugin.c defines it; `api` and `g_iam` (internal.h) are not
 * referenced by those two files, so they are not defined. */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <sodium.h>

#include "internal.h"

#define TOUCH_EVERY_S 60 /* as in policy.c */
#define TOKEN_CAP 80

int64_t iam_now(void) { return (int64_t)time(NULL); }

static iam_cache *cache;
static int64_t cache_ttl_s = 300; /* the default session_cache_s */

/* iam_session_check's cache-hit path, step for step. -1 where the real
 * function would refuse; -2 where it would go to the database. */
static int check(const char *tok, size_t len, iam_sess *out) {
  char id[17];
  unsigned char h[32];
  if (iam_token_split(tok, len, IAM_SESSION_PREFIX, id)) return -1;
  int64_t now = iam_now();
  iam_sess *s = iam_cache_get(cache, id, now, cache_ttl_s);
  if (!s) return -2;
  crypto_hash_sha256(h, (const unsigned char *)tok, len);
  if (sodium_memcmp(h, s->hash, sizeof h) != 0) return -1;
  if (s->expires <= now) return -1;
  if (s->idle_expires <= now) return -2;
  if (now - s->touched_at >= TOUCH_EVERY_S) return -2;
  *out = *s;
  return 0;
}

static double now_ns(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (double)ts.tv_sec * 1e9 + (double)ts.tv_nsec;
}

static int cmp_double(const void *a, const void *b) {
  double x = *(const double *)a, y = *(const double *)b;
  return x < y ? -1 : x > y;
}

typedef struct run {
  const char *name;
  double med, min;
} run;

enum { PART_CHECK, PART_SPLIT, PART_NOW, PART_GET, PART_SHA, PART_COPY };

static char (*tokens)[TOKEN_CAP];
static size_t *token_len;
static uint32_t *order; /* LOOKUPS indexes into tokens */
static volatile uint64_t sink;
/* Where validations copy the session: external, so the copy is not
 * optimised away (in the plugin it goes on to req_set_caller). */
iam_sess bench_out;
static int64_t t_now; /* "now" for the parts that do not read the clock */

/* One timed pass of `what` over `order` (or token 0 when `one`); returns
 * ns per operation, or -1 if a validation failed. */
static double pass(int what, size_t lookups, int one) {
  char id[17];
  unsigned char h[32];
  uint64_t acc = 0;
  double t0 = now_ns();
  for (size_t i = 0; i < lookups; i++) {
    size_t k = one ? 0 : order[i];
    const char *tok = tokens[k];
    size_t len = token_len[k];
    switch (what) {
    case PART_CHECK:
      if (check(tok, len, &bench_out) != 0) return -1;
      acc += (uint64_t)bench_out.expires;
      break;
    case PART_SPLIT:
      acc += (uint64_t)iam_token_split(tok, len, IAM_SESSION_PREFIX, id);
      acc += (unsigned char)id[3];
      break;
    case PART_NOW:
      acc += (uint64_t)iam_now();
      break;
    case PART_GET: {
      /* the id as the split leaves it: 16 hex after the prefix */
      memcpy(id, tok + 5, 16);
      id[16] = '\0';
      iam_sess *s = iam_cache_get(cache, id, t_now, cache_ttl_s);
      if (!s) return -1;
      acc += (uint64_t)s->expires;
      break;
    }
    case PART_SHA:
      crypto_hash_sha256(h, (const unsigned char *)tok, len);
      acc += h[0];
      break;
    case PART_COPY: {
      memcpy(id, tok + 5, 16);
      id[16] = '\0';
      iam_sess *s = iam_cache_get(cache, id, t_now, cache_ttl_s);
      if (!s) return -1;
      bench_out = *s;
      acc += (uint64_t)bench_out.expires;
      break;
    }
    }
  }
  double t1 = now_ns();
  sink += acc;
  return (t1 - t0) / (double)lookups;
}

static int measure(run *r, int what, size_t lookups, int reps, int one) {
  double *v = calloc((size_t)reps, sizeof *v);
  if (!v) return -1;
  pass(what, lookups / 10 ? lookups / 10 : 1, one); /* warm-up */
  for (int i = 0; i < reps; i++) {
    if ((v[i] = pass(what, lookups, one)) < 0) {
      free(v);
      return -1;
    }
  }
  qsort(v, (size_t)reps, sizeof *v, cmp_double);
  r->med = v[reps / 2];
  r->min = v[0];
  free(v);
  return 0;
}

int main(int argc, char **argv) {
  size_t nsess = argc > 1 ? strtoul(argv[1], NULL, 10) : 10000;
  size_t lookups = argc > 2 ? strtoul(argv[2], NULL, 10) : 1000000;
  int reps = argc > 3 ? atoi(argv[3]) : 5;
  if (nsess == 0 || lookups == 0 || reps < 1) {
    fprintf(stderr, "usage: session_bench [SESSIONS [LOOKUPS [REPS]]]\n");
    return 2;
  }
  if (sodium_init() < 0) {
    fprintf(stderr, "session_bench: sodium_init failed\n");
    return 1;
  }
  /* The plugin's default session_cache_max is 65,536: room for all. */
  size_t max = nsess > 65536 ? nsess : 65536;
  cache = iam_cache_new(max);
  tokens = calloc(nsess, sizeof *tokens);
  token_len = calloc(nsess, sizeof *token_len);
  order = calloc(lookups, sizeof *order);
  if (!cache || !tokens || !token_len || !order) {
    fprintf(stderr, "session_bench: out of memory\n");
    return 1;
  }
  int64_t now = iam_now();
  t_now = now;
  for (size_t i = 0; i < nsess; i++) {
    iam_sess s;
    memset(&s, 0, sizeof s);
    iam_token_new(IAM_SESSION_PREFIX, tokens[i], TOKEN_CAP, s.id, s.hash);
    token_len[i] = strlen(tokens[i]);
    snprintf(s.platform, sizeof s.platform, "bench");
    snprintf(s.user, sizeof s.user, "user-%zu", i);
    snprintf(s.scopes, sizeof s.scopes, "features:*");
    s.expires = now + 604800;   /* session_absolute_s */
    s.idle_expires = now + 3600; /* session_idle_s */
    s.cached_at = now;
    s.touched_at = now;
    if (iam_cache_put(cache, &s) != 0) {
      fprintf(stderr, "session_bench: iam_cache_put failed\n");
      return 1;
    }
  }
  if (iam_cache_count(cache) != nsess) {
    fprintf(stderr, "session_bench: %zu sessions cached, %zu expected (an id "
                    "drawn twice?)\n", iam_cache_count(cache), nsess);
    return 1;
  }
  uint64_t x = 0x9e3779b97f4a7c15ull; /* xorshift64: a fixed sequence */
  for (size_t i = 0; i < lookups; i++) {
    x ^= x << 13, x ^= x >> 7, x ^= x << 17;
    order[i] = (uint32_t)(x % nsess);
  }

  printf("cached session validation: %zu sessions in the cache, %zu "
         "operations per pass;\nns per operation, median of %d passes "
         "[minimum]\n", nsess, lookups, reps);
  printf("%-32s %18s %18s\n", "", "random order", "one token");
  static const struct {
    const char *name;
    int what;
  } runs[] = {
      {"validation (the whole check)", PART_CHECK},
      {"  iam_token_split", PART_SPLIT},
      {"  iam_now (time())", PART_NOW},
      {"  iam_cache_get", PART_GET},
      {"  crypto_hash_sha256 (65 bytes)", PART_SHA},
      {"  iam_cache_get + copy out", PART_COPY},
  };
  for (size_t i = 0; i < sizeof runs / sizeof *runs; i++) {
    printf("%-32s", runs[i].name);
    for (int one = 0; one <= 1; one++) {
      run r = {runs[i].name, 0, 0};
      if (measure(&r, runs[i].what, lookups, reps, one) != 0) {
        fprintf(stderr, "\nsession_bench: %s: a validation failed\n", r.name);
        return 1;
      }
      printf("  %7.1f [%7.1f]", r.med, r.min);
    }
    printf("\n");
    if (i == 0) printf("parts:\n");
  }
  iam_cache_free(cache);
  free(tokens);
  free(token_len);
  free(order);
  return 0;
}
