/* Counting from the gateway, quota enforcement and the flush of the shared
 * meters into hourly buckets of DATA/billing.db.
 *
 * The counts live in the host's meter table (shared memory, ABI 1.5), so
 * every worker adds to the same numbers and a worker that dies loses
 * nothing it counted. Keys (billing's namespace):
 *   a|{platform}                             admitted by the LIMIT hook
 *   d|{platform}|{tenant}|{package}|{class}  how admitted requests ended
 *   r|{platform}                             admitted, then answered 429
 * The flush turns each key's growth since its mark into rows of `usage`
 * (class 0 for a|, negative class 0 for r|), in one transaction, and
 * moves the mark: sqlite's write lock serialises flushers of all workers,
 * and a flusher killed in the middle rolls back, so nothing is counted
 * twice and nothing is lost.
 *
 * The quota: the month to date of a platform is
 *   month_db_total + (V_a - mark_a) - (V_r - mark_r)
 * and `month_db_total - mark_a + mark_r` (the "base") does not move with
 * a flush (the total grows by what both marks move), so each worker
 * caches the base per platform and the check is one capped add on the
 * shared meter: exact across workers, with no database read on the hot
 * path. */
#include <errno.h>
#include <stddef.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <jansson.h>
#include <nno/provisioning.h>
#include <nno/sdk.h>

#include "internal.h"

#define PLAT_MAX 64 /* platform ids: 1..63 bytes */
#define FLUSH_MS_DEFAULT 5000
#define FLUSH_MS_MIN 50
#define FLUSH_MS_MAX 3600000
#define STORAGE_MS_DEFAULT 3600000

/* ---- time ---------------------------------------------------------------- */

int64_t billing_month_start(int64_t t) {
  time_t tt = (time_t)t;
  struct tm tm;
  gmtime_r(&tt, &tm);
  tm.tm_mday = 1;
  tm.tm_hour = tm.tm_min = tm.tm_sec = 0;
  return (int64_t)timegm(&tm);
}

int64_t billing_month_next(int64_t t) {
  time_t tt = (time_t)billing_month_start(t);
  struct tm tm;
  gmtime_r(&tt, &tm);
  tm.tm_mon += 1; /* timegm normalises December + 1 */
  return (int64_t)timegm(&tm);
}

void billing_rfc3339(int64_t t, char *out, size_t cap) {
  time_t tt = (time_t)t;
  struct tm tm;
  gmtime_r(&tt, &tm);
  strftime(out, cap, "%Y-%m-%dT%H:%M:%SZ", &tm);
}

/* ---- per-worker state ---------------------------------------------------- */

/* The month base of one platform (see the file's comment), as a refresh
 * job reads it. */
typedef struct base_entry {
  char platform[PLAT_MAX];
  int64_t month; /* billing_month_start of the month it is for; 0: none */
  int64_t base;  /* month_db_total - mark_a + mark_r */
} base_entry;

/* One way requests of a platform ended, resolved to its `d|` key: the
 * caller's tenant and the route's package as the kernel gave them (the
 * key holds them checked), and the status class. */
#define ENDS_PER_PLATFORM 4
typedef struct end_key {
  char tenant[PLAT_MAX], package[PLAT_MAX];
  uint8_t tenant_len, package_len, cls; /* cls 0: unused */
  nno_meter_handle h;
} end_key;

/* What this worker keeps per platform it has seen, so that a request
 * costs no hashing of meter keys, no plan lookup and no date arithmetic:
 * the month base, the handles of `a|` and `r|`, the plan's limits under
 * the plans' generation, the last ways its requests ended. Allocated once
 * per platform, never moved (the admitted set points at it), freed at
 * fini. */
typedef struct plat_entry {
  base_entry b;
  size_t len;             /* of b.platform */
  nno_meter_handle a, r;  /* epoch 0: not resolved yet */
  uint64_t r_seen;        /* `r|` as last read: never more than it is */
  uint64_t plans_gen;     /* g_plans.gen the limits are for; 0: none */
  char plan[sizeof(((nno_plan_limits *)0)->name)];
  size_t plan_len;
  int has_lim;            /* lim holds the plan's limits */
  nno_plan_limits lim;
  end_key ends[ENDS_PER_PLATFORM];
  unsigned ends_next;     /* the one replaced next */
} plat_entry;

/* A request admitted by this worker and the platform it counted for. */
typedef struct admitted {
  nno_req *r;
  plat_entry *e;
} admitted;

/* A user seen signed in since the last flush: "platform\0subject". */
typedef struct user_seen {
  char platform[PLAT_MAX];
  char subject[65];
} user_seen;

/* One meter read on the loop for a flush job. */
typedef struct flush_item {
  char key[NNO_METER_KEY_MAX + 1];
  size_t key_len;
  uint64_t value;
} flush_item;

/* One resource's bytes, measured by provisioning for the hourly sample. */
typedef struct storage_sample {
  char platform[PLAT_MAX];
  char resource[2 * PLAT_MAX + 8]; /* "sql:default-notes" */
  uint64_t bytes;
} storage_sample;

typedef struct flush_job {
  flush_item *items;
  size_t n;
  storage_sample *samples; /* measured at the start of `sample_hour` */
  size_t nsamples;
  int64_t sample_hour;
  user_seen *users;
  size_t nusers;
  uint64_t epoch;
  int64_t now;
  int failpoint; /* kill the worker inside the transaction */
  int ok;
  char err[256];
} flush_job;

static struct {
  int enabled;
  uint64_t flush_ms;
  uint64_t storage_ms; /* how often storage is measured */
  nno_timer *timer;
  int flushing;
  int failpoint; /* NNO_BILLING_FAILPOINT=flush_kill */
  char failpath[4200];
  sqlite3 *rdb; /* the loop's reader (base loads) */
  sqlite3 *fdb; /* flush jobs' connection: one job at a time */
  /* Requests admitted by this worker and not yet ended: an open-addressing
   * set of pointers (linear probing, deletion by backward shift). */
  admitted *adm;
  size_t adm_cap, adm_n, adm_max;
  /* Platforms seen, by id (open addressing, never shrinks). */
  plat_entry **bases;
  size_t bases_cap, bases_n;
  /* The month of the last request: [month, month_end), UTC. */
  int64_t month, month_end;
  int64_t tick; /* the coarse clock's milliseconds, per request */
  int64_t now;  /* its seconds (UTC): the time of the request */
  /* `g|plans`, moved after every committed plan change (with the shared
   * counter PLANS_COUNTER), read by handle: the plans are caught up only
   * when it moved, not on every request. */
  nno_meter_handle plans_h;
  uint64_t plans_moved;
  uint64_t flush_seen; /* billing.flush as last seen */
  int refreshing;
  /* Users seen since the last flush. */
  user_seen *users;
  size_t users_n, users_cap;
  int warned_full; /* the meter table is full: said once */
  int64_t full_logged_at; /* last "cannot count" line (once a minute) */
  /* Storage: measured every storage_ms and at each new hour by each
   * worker (the samples of one hour replace each other), written by the
   * next flush. */
  const nno_provisioning_v1 *prov;
  int64_t storage_hour; /* the hour this worker last measured */
  uint64_t storage_at;  /* when (ms of the monotonic clock) */
  int measuring;
  storage_sample *samples;
  size_t nsamples;
  int64_t sample_hour;
} M;

static uint64_t hash_bytes(const void *p, size_t n) {
  const unsigned char *s = p;
  uint64_t h = 1469598103934665603ull; /* FNV-1a */
  for (size_t i = 0; i < n; i++) h = (h ^ s[i]) * 1099511628211ull;
  return h;
}

static uint64_t hash_ptr(const void *p) {
  uint64_t x = (uint64_t)(uintptr_t)p;
  x ^= x >> 33;
  x *= 0xff51afd7ed558ccdull;
  x ^= x >> 33;
  return x;
}

/* ---- the admitted set ---------------------------------------------------- */

static int adm_grow(void) {
  size_t cap = M.adm_cap ? M.adm_cap * 2 : 1024;
  admitted *v = calloc(cap, sizeof *v);
  if (!v) return -1;
  for (size_t i = 0; i < M.adm_cap; i++) {
    if (!M.adm[i].r) continue;
    size_t j = hash_ptr(M.adm[i].r) & (cap - 1);
    while (v[j].r) j = (j + 1) & (cap - 1);
    v[j] = M.adm[i];
  }
  free(M.adm);
  M.adm = v;
  M.adm_cap = cap;
  return 0;
}

/* 0 when `r` is in the set, -1 when the set is at its bound. */
static int adm_add(nno_req *r, plat_entry *e) {
  if (M.adm_n >= M.adm_max) return -1;
  if ((M.adm_n + 1) * 2 > M.adm_cap && adm_grow()) return -1;
  size_t j = hash_ptr(r) & (M.adm_cap - 1);
  while (M.adm[j].r) {
    if (M.adm[j].r == r) return 0;
    j = (j + 1) & (M.adm_cap - 1);
  }
  M.adm[j].r = r;
  M.adm[j].e = e;
  M.adm_n++;
  return 0;
}

/* The platform `r` was admitted for, taking it out of the set; NULL when
 * it was not in it. */
static plat_entry *adm_remove(nno_req *r) {
  if (!M.adm_n) return NULL;
  size_t mask = M.adm_cap - 1, j = hash_ptr(r) & mask;
  while (M.adm[j].r && M.adm[j].r != r) j = (j + 1) & mask;
  if (!M.adm[j].r) return NULL;
  plat_entry *e = M.adm[j].e;
  M.adm[j].r = NULL;
  M.adm_n--;
  /* Backward shift: pull up the entries of the run that follows. */
  for (size_t k = (j + 1) & mask; M.adm[k].r; k = (k + 1) & mask) {
    size_t home = hash_ptr(M.adm[k].r) & mask;
    /* Move k to j if its home is not in (j, k] cyclically. */
    int between = j <= k ? (home > j && home <= k) : (home > j || home <= k);
    if (!between) {
      M.adm[j] = M.adm[k];
      M.adm[k].r = NULL;
      j = k;
    }
  }
  return e;
}

/* ---- month bases --------------------------------------------------------- */

/* Read a platform's base for the month starting at `month` on `db`, in one
 * read transaction so the total and the mark belong together. */
static int base_read(sqlite3 *db, const char *platform, int64_t month,
                     uint64_t epoch, int64_t *out) {
  sqlite3_stmt *st = NULL;
  int64_t total = 0, mark = 0;
  int64_t rmark = 0;
  char key[2 + PLAT_MAX], rkey[2 + PLAT_MAX];
  int n = snprintf(key, sizeof key, "a|%s", platform);
  int rn = snprintf(rkey, sizeof rkey, "r|%s", platform);
  int rc = sqlite3_exec(db, "BEGIN", NULL, NULL, NULL);
  if (rc == SQLITE_OK)
    rc = sqlite3_prepare_v2(db,
                            "SELECT coalesce(sum(requests), 0) FROM usage "
                            "WHERE platform = ?1 AND hour >= ?2 AND hour < ?3 "
                            "AND class = 0",
                            -1, &st, NULL);
  if (rc == SQLITE_OK) {
    sqlite3_bind_text(st, 1, platform, -1, SQLITE_STATIC);
    sqlite3_bind_int64(st, 2, month);
    sqlite3_bind_int64(st, 3, billing_month_next(month));
    rc = sqlite3_step(st);
    if (rc == SQLITE_ROW) total = sqlite3_column_int64(st, 0), rc = SQLITE_OK;
  }
  sqlite3_finalize(st);
  st = NULL;
  if (rc == SQLITE_OK)
    rc = sqlite3_prepare_v2(
        db, "SELECT epoch, value FROM meter_marks WHERE key = ?1", -1, &st,
        NULL);
  if (rc == SQLITE_OK) {
    sqlite3_bind_blob(st, 1, key, n, SQLITE_STATIC);
    rc = sqlite3_step(st);
    if (rc == SQLITE_ROW) {
      if ((uint64_t)sqlite3_column_int64(st, 0) == epoch)
        mark = sqlite3_column_int64(st, 1);
      rc = SQLITE_OK;
    } else if (rc == SQLITE_DONE) {
      rc = SQLITE_OK;
    }
  }
  if (rc == SQLITE_OK) {
    sqlite3_reset(st);
    sqlite3_bind_blob(st, 1, rkey, rn, SQLITE_STATIC);
    rc = sqlite3_step(st);
    if (rc == SQLITE_ROW) {
      if ((uint64_t)sqlite3_column_int64(st, 0) == epoch)
        rmark = sqlite3_column_int64(st, 1);
      rc = SQLITE_OK;
    } else if (rc == SQLITE_DONE) {
      rc = SQLITE_OK;
    }
  }
  sqlite3_finalize(st);
  sqlite3_exec(db, "COMMIT", NULL, NULL, NULL);
  if (rc != SQLITE_OK) return -1;
  /* stored + (a - mark) - (r - rmark): a flush moves both marks with the
   * rows, so this difference does not move. */
  *out = total - mark + rmark;
  return 0;
}

/* The entry of platform `id` (1..PLAT_MAX-1 bytes, as the kernel gave
 * it): found, or (create) made. NULL when absent or out of memory. */
static plat_entry *plat_find(nno_str id, int create) {
  if (id.len == 0 || id.len >= PLAT_MAX) return NULL;
  uint64_t h = hash_bytes(id.ptr, id.len);
  if (M.bases_cap) {
    size_t mask = M.bases_cap - 1;
    for (size_t j = h & mask; M.bases[j]; j = (j + 1) & mask)
      if (M.bases[j]->len == id.len &&
          memcmp(M.bases[j]->b.platform, id.ptr, id.len) == 0)
        return M.bases[j];
  }
  if (!create) return NULL;
  if ((M.bases_n + 1) * 2 > M.bases_cap) {
    size_t cap = M.bases_cap ? M.bases_cap * 2 : 64;
    plat_entry **v = calloc(cap, sizeof *v);
    if (!v) return NULL;
    for (size_t i = 0; i < M.bases_cap; i++) {
      if (!M.bases[i]) continue;
      size_t j = hash_bytes(M.bases[i]->b.platform, M.bases[i]->len) & (cap - 1);
      while (v[j]) j = (j + 1) & (cap - 1);
      v[j] = M.bases[i];
    }
    free(M.bases);
    M.bases = v;
    M.bases_cap = cap;
  }
  plat_entry *e = calloc(1, sizeof *e);
  if (!e) return NULL;
  memcpy(e->b.platform, id.ptr, id.len);
  e->len = id.len;
  size_t mask = M.bases_cap - 1, j = h & mask;
  while (M.bases[j]) j = (j + 1) & mask;
  M.bases[j] = e;
  M.bases_n++;
  return e;
}

/* Keep M.month..month_end around `now` (date arithmetic once a month,
 * not per request). */
static void month_of(int64_t now) {
  if (now >= M.month && now < M.month_end) return;
  M.month = billing_month_start(now);
  M.month_end = billing_month_next(now);
}

/* The base of a platform for the month of `now`: from the cache, or read
 * once (a point query on the loop, once per platform and month). */
static int base_get(plat_entry *pe, int64_t now, int64_t *out) {
  month_of(now);
  int64_t month = M.month;
  base_entry *e = &pe->b;
  if (e->month == month) {
    *out = e->base;
    return 0;
  }
  if (!M.rdb) {
    char err[256];
    if (billing_store_open(&M.rdb, err, sizeof err)) {
      api->log(g_bill.p, NNO_LOG_ERROR, "metering: %s", err);
      return -1;
    }
  }
  int64_t b;
  if (base_read(M.rdb, e->platform, month, api->meter_epoch(g_bill.p), &b))
    return -1;
  e->month = month;
  e->base = b;
  *out = b;
  return 0;
}

/* Re-read the cached bases after a flush committed somewhere. The base
 * does not move with a flush, so this only makes sure: a stale pair is
 * still exact. Runs on the pool with its own connection. */
typedef struct refresh_job {
  base_entry *v;
  size_t n;
  uint64_t epoch;
} refresh_job;

static void refresh_work(void *ud) {
  refresh_job *j = ud;
  sqlite3 *db = NULL;
  char err[256];
  if (billing_store_open(&db, err, sizeof err)) {
    j->n = 0;
    return;
  }
  for (size_t i = 0; i < j->n; i++)
    if (base_read(db, j->v[i].platform, j->v[i].month, j->epoch, &j->v[i].base))
      j->v[i].month = 0; /* unknown: read again when needed */
  sqlite3_close_v2(db);
}

static void refresh_after(int status, void *ud) {
  refresh_job *j = ud;
  for (size_t i = 0; !status && i < j->n; i++) {
    nno_str id = {j->v[i].platform, strlen(j->v[i].platform)};
    plat_entry *e = plat_find(id, 0);
    if (e && e->b.month == j->v[i].month && j->v[i].month)
      e->b.base = j->v[i].base;
  }
  free(j->v);
  free(j);
  M.refreshing = 0;
}

static void bases_refresh(void) {
  if (M.refreshing || !M.bases_n) return;
  refresh_job *j = calloc(1, sizeof *j);
  if (j) j->v = calloc(M.bases_n, sizeof *j->v);
  if (!j || !j->v) goto fail;
  for (size_t i = 0; i < M.bases_cap; i++)
    if (M.bases[i] && M.bases[i]->b.month) j->v[j->n++] = M.bases[i]->b;
  j->epoch = api->meter_epoch(g_bill.p);
  if (api->work_queue(g_bill.p, refresh_work, refresh_after, j) == NNO_OK) {
    M.refreshing = 1;
    return;
  }
fail:
  if (j) free(j->v);
  free(j);
}

/* ---- the month to date, for reports -------------------------------------- */

/* The platform's refunds since the host started: `r|{platform}` only
 * grows, so a value read earlier is never more than the current one. */
/* "{tag}|{platform}" into key (2 + PLAT_MAX bytes): keys built on every
 * request, so without printf. `platform` is shorter than PLAT_MAX. */
static size_t tag_key(char *key, char tag, const char *platform) {
  size_t n = strlen(platform);
  key[0] = tag;
  key[1] = '|';
  memcpy(key + 2, platform, n + 1);
  return n + 2;
}

static uint64_t refunded(const char *platform) {
  char key[2 + PLAT_MAX];
  uint64_t v = 0;
  size_t n = tag_key(key, 'r', platform);
  api->meter_get(g_bill.p, key, n, &v);
  return v;
}

int billing_meter_month(const char *platform, int64_t now, uint64_t *used) {
  int64_t base;
  uint64_t v = 0;
  char key[2 + PLAT_MAX];
  int n = snprintf(key, sizeof key, "a|%s", platform);
  if (n <= 0 || (size_t)n >= sizeof key) return NNO_EINVAL;
  plat_entry *e = plat_find((nno_str){platform, strlen(platform)}, 1);
  if (!e) return NNO_ENOMEM;
  if (base_get(e, now, &base)) return NNO_EIO;
  api->meter_get(g_bill.p, key, (size_t)n, &v);
  int64_t t = base + (int64_t)v - (int64_t)refunded(platform);
  *used = t > 0 ? (uint64_t)t : 0;
  return 0;
}

/* ---- the LIMIT hook ------------------------------------------------------ */

/* The limits of the request's plan; NULL when there are none to enforce
 * (no billing plans, or an unknown platform). Kept in the platform's
 * entry for as long as the request names the same plan and the plans
 * did not change (g_plans.gen, caught up first: one shared counter read);
 * a request naming no plan asks the registry each time, as before. */
/* Catch the plans up when `g|plans` moved (or when it cannot be read:
 * then on every request, as plans_refresh alone would). */
static void plans_check(void) {
  uint64_t v = 0;
  if (M.plans_h.epoch &&
      api->meter_add_h(g_bill.p, &M.plans_h, 0, 0, &v) == NNO_OK) {
    if (v == M.plans_moved) return;
    M.plans_moved = v;
  } else if (api->meter_handle(g_bill.p, "g|plans", 7, &M.plans_h) == NNO_OK) {
    M.plans_moved = (uint64_t)-1; /* read it on the next request */
  }
  plans_refresh();
}

void billing_meter_plans_moved(void) {
  if (!M.enabled) return;
  /* After PLANS_COUNTER: a worker that sees this move and reloads finds
   * the counter moved too. */
  if (api->meter_add(g_bill.p, "g|plans", 7, 1, 0, NULL) != NNO_OK)
    memset(&M.plans_h, 0, sizeof M.plans_h);
}

static const nno_plan_limits *request_limits(nno_req *r, plat_entry *e) {
  plans_check();
  nno_str plan = api->req_plan(r);
  if (plan.len && plan.len < sizeof e->plan && e->plans_gen == g_plans.gen &&
      e->plan_len == plan.len && memcmp(e->plan, plan.ptr, plan.len) == 0)
    return e->has_lim ? &e->lim : NULL;
  nno_plan_limits *lim = &e->lim;
  memset(lim, 0, sizeof *lim);
  lim->size = sizeof *lim;
  e->plans_gen = 0;
  e->plan_len = 0;
  e->has_lim = 0;
  if (plan.len && plan.len < sizeof e->plan) {
    memcpy(e->plan, plan.ptr, plan.len);
    e->plan[plan.len] = '\0';
    e->plan_len = plan.len;
    e->has_lim = billing_plan_limits(e->plan, lim) == 0 ||
                 billing_platform_limits(e->b.platform, lim) == 0;
    e->plans_gen = g_plans.gen;
    return e->has_lim ? lim : NULL;
  }
  return billing_platform_limits(e->b.platform, lim) == 0 ? lim : NULL;
}

/* "requests_per_month; used=N; limit=L; resets=...[; grace]" */
static void warning_text(char *out, size_t cap, uint64_t used, uint64_t quota,
                         int64_t reset, int grace) {
  char when[32];
  billing_rfc3339(reset, when, sizeof when);
  snprintf(out, cap, "requests_per_month; used=%llu; limit=%llu; resets=%s%s",
           (unsigned long long)used, (unsigned long long)quota, when,
           grace ? "; grace" : "");
}

static int quota_answer(nno_req *r, json_t *o, const char *detail,
                        int64_t reset, int64_t now);

/* 402 with the problem's own members (limit, used, quota, resets_at,
 * plan) and Retry-After: the seconds until the month resets. */
static int quota_refused(nno_req *r, const nno_plan_limits *lim, uint64_t used,
                         int64_t now) {
  int64_t reset = billing_month_next(now);
  char when[32], detail[256];
  billing_rfc3339(reset, when, sizeof when);
  snprintf(detail, sizeof detail,
           "the plan \"%s\" admits %llu requests a month (and %u%% grace); "
           "the count resets at %s",
           lim->name, (unsigned long long)lim->requests_per_month,
           lim->grace_pct, when);
  nno_str rid = api->req_id(r);
  nno_caller c;
  if (api->req_caller(r, &c) != NNO_OK || c.kind == NNO_CALLER_NONE) {
    /* An anonymous caller learns that the limit is reached and when it
     * resets: not the plan, nor how much was used. */
    snprintf(detail, sizeof detail,
             "this platform's monthly request quota is exhausted; the count "
             "resets at %s", when);
    json_t *a = json_pack("{s:s, s:s, s:i, s:s, s:s, s:s, s:s%}", "type",
                          "urn:nno:problem:quota", "title",
                          "Monthly request quota exceeded", "status", 402,
                          "detail", detail, "limit", "requests_per_month",
                          "resets_at", when, "request_id",
                          rid.ptr ? rid.ptr : "", rid.len);
    return quota_answer(r, a, detail, reset, now);
  }
  json_t *o = json_pack(
      "{s:s, s:s, s:i, s:s, s:s, s:I, s:I, s:s, s:s, s:s%}", "type",
      "urn:nno:problem:quota", "title", "Monthly request quota exceeded",
      "status", 402, "detail", detail, "limit", "requests_per_month", "used",
      (json_int_t)used, "quota", (json_int_t)lim->requests_per_month,
      "resets_at", when, "plan", lim->name, "request_id",
      rid.ptr ? rid.ptr : "", rid.len);
  return quota_answer(r, o, detail, reset, now);
}

/* Send the 402 problem `o` (taken; NULL: a plain problem with `detail`)
 * and Retry-After: the seconds until the month resets. */
static int quota_answer(nno_req *r, json_t *o, const char *detail,
                        int64_t reset, int64_t now) {
  char retry[24];
  char *text = o ? json_dumps(o, JSON_COMPACT) : NULL;
  json_decref(o);
  if (!text) {
    api->res_problem(r, 402, "Monthly request quota exceeded", detail);
  } else {
    api->res_status(r, 402);
    api->res_header(r, "Content-Type", "application/problem+json");
    api->res_write(r, text, strlen(text));
    free(text);
  }
  snprintf(retry, sizeof retry, "%lld",
           (long long)(reset - now > 0 ? reset - now : 1));
  api->res_header(r, "Retry-After", retry);
  return NNO_DONE;
}

static void check_flush_counter(void) {
  /* One clock reading per request (the coarse clock: no system call, a
   * few ms of resolution) gives the request's time (M.now) and the tick.
   * At most once per tick: a cached base is exact however stale (see
   * base_get), so this only keeps the cache fresh. */
  struct timespec ts;
  clock_gettime(CLOCK_REALTIME_COARSE, &ts);
  int64_t tick = (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
  M.now = (int64_t)ts.tv_sec;
  if (tick == M.tick) return;
  M.tick = tick;
  uint64_t v = 0;
  if (api->counter_get(g_bill.p, "billing.flush", &v) == NNO_OK &&
      v != M.flush_seen) {
    M.flush_seen = v;
    bases_refresh();
  }
}

/* The platform's admissions cannot be counted (the meter table has no
 * slot for its `a|` key): refused, never admitted uncounted. 503 with
 * Retry-After, logged at most once a minute per worker, counted in the
 * shared counter billing.meter_refused. */
static int capacity_refused(nno_req *r, const char *platform, int rc) {
  int64_t now = (int64_t)time(NULL);
  if (now - M.full_logged_at >= 60) {
    api->log(g_bill.p, NNO_LOG_ERROR,
             "metering: cannot count for platform %s: %s; its requests are "
             "refused (503) until the host restarts with more "
             "limits.meter_slots",
             platform, api->err_name(rc));
    M.full_logged_at = now;
  }
  api->counter_add(g_bill.p, "billing.meter_refused", 1, NULL);
  api->res_problem(r, 503, "Metering capacity exhausted",
                   "the host's meter table is full: this platform's requests "
                   "cannot be counted, so none is admitted");
  api->res_header(r, "Retry-After", "60");
  return NNO_DONE;
}

/* Add `delta` to the platform's `tag|{platform}` key through its handle
 * *h, as meter_add with `cap`: the key is hashed and looked up by name
 * only the first time (or when the handle went stale), then resolved. */
static int tag_add(plat_entry *e, char tag, nno_meter_handle *h,
                   uint64_t delta, uint64_t cap, uint64_t *after) {
  if (h->epoch) {
    int rc = api->meter_add_h(g_bill.p, h, delta, cap, after);
    if (rc != NNO_ENOENT) return rc;
  }
  char key[2 + PLAT_MAX];
  size_t n = tag_key(key, tag, e->b.platform);
  int rc = api->meter_add(g_bill.p, key, n, delta, cap, after);
  if (rc == NNO_OK || rc == NNO_EREFUSED)
    api->meter_handle(g_bill.p, key, n, h); /* zero-filled if it fails */
  return rc;
}

/* Read the platform's refunds (`r|`) again into e->r_seen: 1 when they
 * grew since last read. The quota's cap is computed from the refunds
 * last read: `r|` only grows, so a value read earlier makes the cap
 * stricter, never looser, and it is read again only when an add is
 * refused or a warning is due, which then stand on the current value.
 * Its handle is resolved once the key exists. */
static int refunds_moved(plat_entry *e) {
  uint64_t v = 0;
  if (!e->r.epoch) {
    char key[2 + PLAT_MAX];
    size_t n = tag_key(key, 'r', e->b.platform);
    api->meter_handle(g_bill.p, key, n, &e->r); /* zero-filled if absent */
  }
  if (e->r.epoch && api->meter_add_h(g_bill.p, &e->r, 0, 0, &v) == NNO_ENOENT)
    memset(&e->r, 0, sizeof e->r);
  if (v <= e->r_seen) return 0;
  e->r_seen = v;
  return 1;
}

static int on_limit(nno_req *r, void *ud) {
  (void)ud;
  nno_str plat = api->req_platform(r);
  if (!M.enabled || plat.len == 0 || plat.len >= PLAT_MAX) return NNO_OK;
  check_flush_counter();
  plat_entry *e = plat_find(plat, 1);
  if (!e) {
    char platform[PLAT_MAX];
    memcpy(platform, plat.ptr, plat.len);
    platform[plat.len] = '\0';
    return capacity_refused(r, platform, NNO_ENOMEM);
  }
  const nno_plan_limits *lim = request_limits(r, e);
  uint64_t quota = lim ? lim->requests_per_month : 0, after = 0;
  int64_t now = M.now, base = 0;
  int rc;
  if (quota && base_get(e, now, &base) == 0) {
    /* The month to date is base + a - r, r as last read (refunds_moved):
     * a refusal is decided on the current r. */
    uint64_t allowed = quota + quota * lim->grace_pct / 100;
    int64_t cap;
    for (int fresh = 0;; fresh = 1) {
      cap = (int64_t)allowed - (base - (int64_t)e->r_seen);
      rc = cap > 0 ? tag_add(e, 'a', &e->a, 1, (uint64_t)cap, &after)
                   : NNO_EREFUSED;
      if (rc != NNO_EREFUSED || fresh || !refunds_moved(e)) break;
    }
    if (rc == NNO_EREFUSED) {
      if (cap <= 0) {
        char key[2 + PLAT_MAX];
        size_t kn = tag_key(key, 'a', e->b.platform);
        api->meter_get(g_bill.p, key, kn, &after);
      }
      base -= (int64_t)e->r_seen;
      return quota_refused(r, lim, (uint64_t)(base + (int64_t)after), now);
    }
    base -= (int64_t)e->r_seen;
  } else {
    /* No quota (or its base cannot be read: counted, not refused). */
    quota = 0;
    rc = tag_add(e, 'a', &e->a, 1, 0, &after);
  }
  if (rc != NNO_OK) return capacity_refused(r, e->b.platform, rc);
  if (quota) {
    uint64_t used = (uint64_t)(base + (int64_t)after);
    uint32_t soft = lim->soft_pct ? lim->soft_pct : 100;
    uint64_t r0 = e->r_seen;
    /* A warning says the current month to date: r read again first. */
    if ((used > quota || used * 100 > quota * soft) && refunds_moved(e))
      used = used > e->r_seen - r0 ? used - (e->r_seen - r0) : 0;
    if (used > quota || used * 100 > quota * soft) {
      char w[160];
      warning_text(w, sizeof w, used, quota, M.month_end, used > quota);
      api->res_header_keep(r, "Nno-Quota-Warning", w);
    }
  }
  if (adm_add(r, e) && !M.warned_full) {
    api->log(g_bill.p, NNO_LOG_WARN,
             "metering: more requests in flight than the bound (%zu): their "
             "ends are not counted by status",
             M.adm_max);
    M.warned_full = 1;
  }
  return NNO_OK;
}

/* ---- the done hook ------------------------------------------------------- */

/* `s` fit for a key part: [a-z0-9._-] only, else "". */
static size_t key_part(nno_str s, char *out, size_t cap) {
  if (s.len >= cap) return 0;
  for (size_t i = 0; i < s.len; i++) {
    char c = s.ptr[i];
    if (!((c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '-' ||
          c == '.' || c == '_'))
      return out[0] = '\0', 0;
  }
  memcpy(out, s.ptr, s.len);
  out[s.len] = '\0';
  return s.len;
}

static void user_seen_add(const char *platform, nno_str subject) {
  if (subject.len == 0 || subject.len >= sizeof M.users->subject) return;
  for (size_t i = M.users_n; i-- > 0;) /* recent first: repeat callers */
    if (strcmp(M.users[i].platform, platform) == 0 &&
        strlen(M.users[i].subject) == subject.len &&
        memcmp(M.users[i].subject, subject.ptr, subject.len) == 0)
      return;
  if (M.users_n == M.users_cap) {
    size_t cap = M.users_cap ? M.users_cap * 2 : 64;
    if (cap > 65536) return; /* bounded: the rest waits for the next flush */
    user_seen *v = realloc(M.users, cap * sizeof *v);
    if (!v) return;
    M.users = v;
    M.users_cap = cap;
  }
  user_seen *u = &M.users[M.users_n++];
  snprintf(u->platform, sizeof u->platform, "%s", platform);
  memcpy(u->subject, subject.ptr, subject.len);
  u->subject[subject.len] = '\0';
}

/* True when the meter table is past DETAIL_SHARE_PCT percent full: the
 * host's own gauge (nno_meter_slots_used / limits.meter_slots), read from
 * the stats counters it publishes. */
#define DETAIL_SHARE_PCT 50
static int detail_crowded(void) {
  uint64_t used = 0, total = 0;
  if (api->counter_get(g_bill.p, "nno.meter_slots_used", &used) != NNO_OK ||
      api->counter_get(g_bill.p, "nno.meter_slots", &total) != NNO_OK ||
      total == 0)
    return 0;
  return used * 100 >= total * DETAIL_SHARE_PCT;
}

/* The cached `d|` key of (tenant, package, cls) in the platform's entry,
 * or NULL. The views are compared as the kernel gave them. */
static end_key *end_find(plat_entry *e, nno_str tenant, nno_str package,
                         int cls) {
  for (int i = 0; i < ENDS_PER_PLATFORM; i++) {
    end_key *k = &e->ends[i];
    if (k->cls == cls && k->tenant_len == tenant.len &&
        k->package_len == package.len &&
        (!package.len || memcmp(k->package, package.ptr, package.len) == 0) &&
        (!tenant.len || memcmp(k->tenant, tenant.ptr, tenant.len) == 0))
      return k;
  }
  return NULL;
}

/* Remember that (tenant, package, cls) counts in the key `key`, resolved
 * now (it exists: it was just added to). */
static void end_keep(plat_entry *e, nno_str tenant, nno_str package, int cls,
                     const char *key, size_t n) {
  if (tenant.len >= PLAT_MAX || package.len >= PLAT_MAX) return;
  end_key *k = &e->ends[e->ends_next++ % ENDS_PER_PLATFORM];
  if (api->meter_handle(g_bill.p, key, n, &k->h) != NNO_OK) {
    k->cls = 0;
    return;
  }
  memcpy(k->tenant, tenant.ptr, tenant.len);
  memcpy(k->package, package.ptr, package.len);
  k->tenant_len = (uint8_t)tenant.len;
  k->package_len = (uint8_t)package.len;
  k->cls = (uint8_t)cls;
}

static void on_done(nno_req *r, int status, void *ud) {
  (void)ud;
  plat_entry *e = adm_remove(r);
  if (!e) return;
  const char *platform = e->b.platform;
  nno_str pkg = {"", 0}, ten = {"", 0};
  nno_caller c;
  int have_caller = api->req_caller(r, &c) == NNO_OK;
  if (have_caller) ten = c.tenant;
  if (api->req_route(r, NULL, NULL, &pkg) != NNO_OK) pkg = (nno_str){"", 0};
  char key[NNO_METER_KEY_MAX + 1];
  int n;
  if (status == 429) {
    /* Refused by a rate limit after billing admitted it (IAM's limiter
     * runs after this plugin's LIMIT hook): not served, so it does not
     * count against the quota, nor in the classes. */
    if (tag_add(e, 'r', &e->r, 1, 0, NULL) == NNO_OK) return;
  }
  int cls = status == 499 ? 4 : status / 100;
  if (cls < 1 || cls > 5) cls = 5;
  /* The usual way: a key this platform's requests ended in before. */
  end_key *k = end_find(e, ten, pkg, cls);
  if (k && api->meter_add_h(g_bill.p, &k->h, 1, 0, NULL) == NNO_OK) goto user;
  if (k) k->cls = 0; /* stale: made again below */
  char tenant[PLAT_MAX] = "", package[PLAT_MAX] = "";
  key_part(ten, tenant, sizeof tenant);
  key_part(pkg, package, sizeof package);
  /* Past a share of the table, new ends are counted per platform only
   * (`d|{platform}|||{class}`): per-tenant keys must never crowd out the
   * `a|` keys the quotas need. */
  int rc = NNO_ETOOBIG;
  if (!detail_crowded()) {
    size_t lp = strlen(platform), lt = strlen(tenant), lk = strlen(package);
    if (lp + lt + lk + 7 <= NNO_METER_KEY_MAX) {
      char *o = key;
      *o++ = 'd', *o++ = '|';
      memcpy(o, platform, lp), o += lp, *o++ = '|';
      memcpy(o, tenant, lt), o += lt, *o++ = '|';
      memcpy(o, package, lk), o += lk, *o++ = '|';
      *o++ = (char)('0' + cls);
      rc = api->meter_add(g_bill.p, key, (size_t)(o - key), 1, 0, NULL);
      if (rc == NNO_OK) end_keep(e, ten, pkg, cls, key, (size_t)(o - key));
    }
  }
  if (rc != NNO_OK) {
    n = snprintf(key, sizeof key, "d|%s|||%d", platform, cls);
    api->meter_add(g_bill.p, key, (size_t)n, 1, 0, NULL);
  }
user:
  if (have_caller && c.kind == NNO_CALLER_USER)
    user_seen_add(platform, c.subject);
}

/* ---- the flush ----------------------------------------------------------- */

/* A key's usage row: platform, tenant, package, class. -1 if not ours. */
static int key_parse(const char *key, size_t len, char *platform, char *tenant,
                     char *package, int *cls) {
  char buf[NNO_METER_KEY_MAX + 1];
  if (len < 3 || len > NNO_METER_KEY_MAX) return -1;
  memcpy(buf, key, len);
  buf[len] = '\0';
  tenant[0] = package[0] = '\0';
  if ((buf[0] == 'a' || buf[0] == 'r') && buf[1] == '|') {
    /* r| (refunds) is stored as negative class 0 counts: class 0 of the
     * usage rows is what was admitted and served past the limits. */
    if (len - 2 >= PLAT_MAX) return -1;
    strcpy(platform, buf + 2);
    *cls = 0;
    return 0;
  }
  if (buf[0] != 'd' || buf[1] != '|') return -1;
  char *f[4], *s = buf + 2;
  for (int i = 0; i < 4; i++) {
    f[i] = s;
    char *bar = strchr(s, '|');
    if (i < 3) {
      if (!bar) return -1;
      *bar = '\0';
      s = bar + 1;
    } else if (bar) {
      return -1;
    }
  }
  if (!f[0][0] || strlen(f[0]) >= PLAT_MAX || strlen(f[1]) >= PLAT_MAX ||
      strlen(f[2]) >= PLAT_MAX || strlen(f[3]) != 1 || f[3][0] < '1' ||
      f[3][0] > '5')
    return -1;
  strcpy(platform, f[0]);
  strcpy(tenant, f[1]);
  strcpy(package, f[2]);
  *cls = f[3][0] - '0';
  return 0;
}

/* The failpoint of the crash test: fires once, for the flusher that
 * removes the trigger file (so a respawned worker does not die again). */
static void failpoint_flush(const flush_job *j) {
  if (j->failpoint && unlink(M.failpath) == 0) raise(SIGKILL);
}

static void flush_work(void *ud) {
  flush_job *j = ud;
  sqlite3_stmt *mark = NULL, *add = NULL, *setm = NULL, *user = NULL;
  sqlite3 *db = M.fdb;
  int rc = SQLITE_OK, wrote = 0;
  if (!db && billing_store_open(&M.fdb, j->err, sizeof j->err)) return;
  db = M.fdb;
  rc = sqlite3_exec(db, "BEGIN IMMEDIATE", NULL, NULL, NULL);
  if (rc == SQLITE_OK)
    rc = sqlite3_prepare_v2(
        db, "SELECT epoch, value FROM meter_marks WHERE key = ?1", -1, &mark,
        NULL);
  if (rc == SQLITE_OK)
    rc = sqlite3_prepare_v2(
        db,
        "INSERT INTO usage (platform, hour, tenant, package, class, requests) "
        "VALUES (?1, ?2, ?3, ?4, ?5, ?6) ON CONFLICT DO UPDATE SET "
        "requests = requests + excluded.requests",
        -1, &add, NULL);
  if (rc == SQLITE_OK)
    rc = sqlite3_prepare_v2(db,
                            "INSERT OR REPLACE INTO meter_marks (key, epoch, "
                            "value) VALUES (?1, ?2, ?3)",
                            -1, &setm, NULL);
  if (rc == SQLITE_OK)
    rc = sqlite3_prepare_v2(db,
                            "INSERT OR IGNORE INTO active_users (platform, "
                            "month, subject, first_seen) VALUES (?1, ?2, ?3, "
                            "?4)",
                            -1, &user, NULL);
  int64_t hour = j->now - j->now % 3600;
  for (size_t i = 0; rc == SQLITE_OK && i < j->n; i++) {
    flush_item *it = &j->items[i];
    char platform[PLAT_MAX], tenant[PLAT_MAX], package[PLAT_MAX];
    int cls;
    if (key_parse(it->key, it->key_len, platform, tenant, package, &cls))
      continue;
    uint64_t m = 0;
    sqlite3_reset(mark);
    sqlite3_bind_blob(mark, 1, it->key, (int)it->key_len, SQLITE_STATIC);
    rc = sqlite3_step(mark);
    if (rc == SQLITE_ROW) {
      if ((uint64_t)sqlite3_column_int64(mark, 0) == j->epoch)
        m = (uint64_t)sqlite3_column_int64(mark, 1);
      rc = SQLITE_OK;
    } else if (rc == SQLITE_DONE) {
      rc = SQLITE_OK;
    }
    /* A value read before another worker's flush may be behind its mark:
     * marks only move forward. */
    if (rc != SQLITE_OK || it->value <= m) continue;
    sqlite3_reset(add);
    sqlite3_bind_text(add, 1, platform, -1, SQLITE_TRANSIENT);
    sqlite3_bind_int64(add, 2, hour);
    sqlite3_bind_text(add, 3, tenant, -1, SQLITE_TRANSIENT);
    sqlite3_bind_text(add, 4, package, -1, SQLITE_TRANSIENT);
    sqlite3_bind_int(add, 5, cls);
    int64_t grew = (int64_t)(it->value - m);
    sqlite3_bind_int64(add, 6, it->key[0] == 'r' ? -grew : grew);
    rc = sqlite3_step(add);
    if (rc == SQLITE_DONE) {
      sqlite3_reset(setm);
      sqlite3_bind_blob(setm, 1, it->key, (int)it->key_len, SQLITE_STATIC);
      sqlite3_bind_int64(setm, 2, (int64_t)j->epoch);
      sqlite3_bind_int64(setm, 3, (int64_t)it->value);
      rc = sqlite3_step(setm);
      rc = rc == SQLITE_DONE ? SQLITE_OK : rc;
      wrote = 1;
    }
  }
  char month[8];
  time_t tt = (time_t)j->now;
  struct tm tm;
  gmtime_r(&tt, &tm);
  strftime(month, sizeof month, "%Y-%m", &tm);
  for (size_t i = 0; rc == SQLITE_OK && i < j->nusers; i++) {
    sqlite3_reset(user);
    sqlite3_bind_text(user, 1, j->users[i].platform, -1, SQLITE_STATIC);
    sqlite3_bind_text(user, 2, month, -1, SQLITE_STATIC);
    sqlite3_bind_text(user, 3, j->users[i].subject, -1, SQLITE_STATIC);
    sqlite3_bind_int64(user, 4, j->now);
    rc = sqlite3_step(user);
    rc = rc == SQLITE_DONE ? SQLITE_OK : rc;
  }
  sqlite3_stmt *smp = NULL;
  if (rc == SQLITE_OK && j->nsamples)
    rc = sqlite3_prepare_v2(db,
                            "INSERT OR REPLACE INTO storage_samples (platform, "
                            "resource, hour, bytes) VALUES (?1, ?2, ?3, ?4)",
                            -1, &smp, NULL);
  for (size_t i = 0; rc == SQLITE_OK && i < j->nsamples; i++) {
    sqlite3_reset(smp);
    sqlite3_bind_text(smp, 1, j->samples[i].platform, -1, SQLITE_STATIC);
    sqlite3_bind_text(smp, 2, j->samples[i].resource, -1, SQLITE_STATIC);
    sqlite3_bind_int64(smp, 3, j->sample_hour);
    sqlite3_bind_int64(smp, 4, (int64_t)j->samples[i].bytes);
    rc = sqlite3_step(smp);
    rc = rc == SQLITE_DONE ? SQLITE_OK : rc;
  }
  sqlite3_finalize(smp);
  if (rc == SQLITE_OK && wrote) failpoint_flush(j);
  sqlite3_finalize(mark);
  sqlite3_finalize(add);
  sqlite3_finalize(setm);
  sqlite3_finalize(user);
  if (rc == SQLITE_OK) rc = sqlite3_exec(db, "COMMIT", NULL, NULL, NULL);
  if (rc != SQLITE_OK) {
    snprintf(j->err, sizeof j->err, "%s", sqlite3_errmsg(db));
    sqlite3_exec(db, "ROLLBACK", NULL, NULL, NULL);
    return;
  }
  j->ok = 1;
}

static void flush_free(flush_job *j) {
  free(j->items);
  free(j->samples);
  free(j->users);
  free(j);
}

static void flush_after(int status, void *ud) {
  flush_job *j = ud;
  M.flushing = 0;
  if (!status && j->ok) {
    api->counter_add(g_bill.p, "billing.flush", 1, NULL);
  } else if (!status) {
    api->log(g_bill.p, NNO_LOG_WARN,
             "metering: flush failed (the counts wait for the next one): %s",
             j->err);
    /* The users seen go back to the set, the meters keep their counts. */
    for (size_t i = 0; i < j->nusers; i++)
      user_seen_add(
          j->users[i].platform,
          (nno_str){j->users[i].subject, strlen(j->users[i].subject)});
  }
  flush_free(j);
}

static void flush_start(void) {
  if (M.flushing) return;
  flush_job *j = calloc(1, sizeof *j);
  if (!j) return;
  size_t cap = 0, cursor = 0;
  nno_meter_entry e = {.size = sizeof e};
  while (api->meter_next(g_bill.p, &cursor, &e) == NNO_OK) {
    if (e.key.len == 0 || e.key.len > NNO_METER_KEY_MAX) continue;
    if (j->n == cap) {
      size_t c = cap ? cap * 2 : 64;
      flush_item *v = realloc(j->items, c * sizeof *v);
      if (!v) goto fail;
      j->items = v;
      cap = c;
    }
    flush_item *it = &j->items[j->n++];
    memcpy(it->key, e.key.ptr, e.key.len);
    it->key_len = e.key.len;
    it->value = e.value;
    e.size = sizeof e;
  }
  j->users = M.users;
  j->nusers = M.users_n;
  M.users = NULL;
  M.users_n = M.users_cap = 0;
  j->samples = M.samples;
  j->nsamples = M.nsamples;
  j->sample_hour = M.sample_hour;
  M.samples = NULL;
  M.nsamples = 0;
  j->epoch = api->meter_epoch(g_bill.p);
  j->now = (int64_t)time(NULL);
  j->failpoint = M.failpoint;
  if (api->work_queue(g_bill.p, flush_work, flush_after, j) != NNO_OK) {
    M.users = j->users, M.users_n = M.users_cap = j->nusers;
    j->users = NULL;
    goto fail;
  }
  M.flushing = 1;
  return;
fail:
  flush_free(j);
}

/* provisioning's answer: {platform: {resource: bytes}} as text. */
static void on_storage_measured(int status, const char *step,
                                const char *message, void *ud) {
  (void)step;
  int64_t hour = (int64_t)(intptr_t)ud;
  M.measuring = 0;
  if (status) {
    api->log(g_bill.p, NNO_LOG_WARN,
             "metering: storage not sampled this hour: %s",
             message ? message : api->err_name(status));
    M.storage_hour = 0; /* try again at the next flush */
    return;
  }
  json_t *all = message ? json_loads(message, 0, NULL) : NULL;
  size_t n = 0, k = 0;
  const char *plat, *res;
  json_t *per, *v;
  json_object_foreach(all, plat, per) n += json_object_size(per);
  storage_sample *s = n ? calloc(n, sizeof *s) : NULL;
  json_object_foreach(all, plat, per) {
    json_object_foreach(per, res, v) {
      if (!s || k == n || strlen(plat) >= sizeof s->platform ||
          strlen(res) >= sizeof s->resource || !json_is_integer(v))
        continue;
      snprintf(s[k].platform, sizeof s[k].platform, "%s", plat);
      snprintf(s[k].resource, sizeof s[k].resource, "%s", res);
      s[k].bytes = (uint64_t)json_integer_value(v);
      k++;
    }
  }
  json_decref(all);
  free(M.samples);
  M.samples = s;
  M.nsamples = k;
  M.sample_hour = hour;
}

/* Once an hour (and at start), ask provisioning for every resource's
 * bytes; the next flush writes them. */
static uint64_t mono_ms(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (uint64_t)ts.tv_sec * 1000 + (uint64_t)ts.tv_nsec / 1000000;
}

static void storage_tick(int64_t now) {
  int64_t hour = now - now % 3600;
  uint64_t ms = mono_ms();
  if (!M.prov || M.measuring ||
      (M.storage_hour == hour && ms - M.storage_at < M.storage_ms))
    return;
  if (M.prov->resource_usage(NULL, on_storage_measured,
                             (void *)(intptr_t)hour) == NNO_OK) {
    M.measuring = 1;
    M.storage_hour = hour;
    M.storage_at = ms;
  }
}

static void on_flush_timer(nno_timer *t, void *ud) {
  (void)t;
  (void)ud;
  storage_tick((int64_t)time(NULL));
  flush_start();
}

/* ---- configuration and lifecycle ----------------------------------------- */

/* One integer of the "metering" section within its bounds. */
static int config_int(json_t *v, const char *k, int64_t lo, int64_t hi,
                      uint64_t *out, char *err, size_t cap) {
  if (!json_is_integer(v) || json_integer_value(v) < lo ||
      json_integer_value(v) > hi) {
    snprintf(err, cap,
             "config.metering.%s: expected an integer from %lld to %lld "
             "(milliseconds)",
             k, (long long)lo, (long long)hi);
    return -1;
  }
  *out = (uint64_t)json_integer_value(v);
  return 0;
}

/* billing's config "metering": {"enabled": bool, "flush_ms": int,
 * "storage_ms": int}. */
static int config_parse(char *err, size_t cap) {
  M.enabled = 1;
  M.flush_ms = FLUSH_MS_DEFAULT;
  M.storage_ms = STORAGE_MS_DEFAULT;
  if (!g_bill.config_json || !g_bill.config_json[0]) return 0;
  json_error_t je;
  json_t *root = json_loads(g_bill.config_json, 0, &je);
  if (!root) return 0; /* plugin.c reports a config it cannot read */
  json_t *m = json_object_get(root, "metering");
  int rc = 0;
  if (m && !json_is_object(m)) {
    snprintf(err, cap, "config.metering: expected an object");
    rc = -1;
  }
  const char *k;
  json_t *v;
  if (!rc && m) json_object_foreach(m, k, v) {
      if (strcmp(k, "enabled") == 0) {
        if (!json_is_boolean(v)) {
          snprintf(err, cap, "config.metering.enabled: expected true or false");
          rc = -1;
          break;
        }
        M.enabled = json_is_true(v);
      } else if (strcmp(k, "flush_ms") == 0) {
        if ((rc = config_int(v, k, FLUSH_MS_MIN, FLUSH_MS_MAX, &M.flush_ms, err,
                             cap)))
          break;
      } else if (strcmp(k, "storage_ms") == 0) {
        if ((rc = config_int(v, k, 1000, STORAGE_MS_DEFAULT, &M.storage_ms, err,
                             cap)))
          break;
      } else {
        snprintf(err, cap,
                 "config.metering: unknown key \"%.40s\" (known: enabled, "
                 "flush_ms, storage_ms)",
                 k);
        rc = -1;
        break;
      }
    }
  json_decref(root);
  return rc;
}

int billing_meter_init(char *err, size_t cap) {
  nno_sdk_init(g_bill.p, api);
  memset(&M, 0, sizeof M);
  if (config_parse(err, cap)) return -1;
  int64_t conns = 10000;
  if (NNO_HAS(api, host_config_int))
    api->host_config_int(g_bill.p, "limits.max_connections", &conns);
  M.adm_max = (size_t)(conns > 0 ? conns : 10000) * 2;
  /* Test-only: see README.md, "Metering". */
  const char *fp = getenv("NNO_BILLING_FAILPOINT");
  if (fp && strcmp(fp, "flush_kill") == 0) {
    M.failpoint = 1;
    snprintf(M.failpath, sizeof M.failpath, "%s/billing-flush-kill",
             api->host_data_dir(g_bill.p));
  }
  if (!M.enabled) return 0;
  if (!NNO_HAS(api, req_plan) || !api->meter_add || !api->gateway_done_add ||
      !api->req_plan) {
    snprintf(err, cap, "metering needs a host with ABI 1.5 (meters)");
    return -1;
  }
  if (api->gateway_hook_add(g_bill.p, NNO_STAGE_LIMIT, on_limit, NULL) ||
      api->gateway_done_add(g_bill.p, on_done, NULL)) {
    snprintf(err, cap, "metering: cannot register the gateway hooks");
    return -1;
  }
  return 0;
}

void billing_meter_ready(void) {
  if (!M.enabled) return;
  const void *v = NULL;
  uint32_t ver = 0;
  if (api->service_lookup(g_bill.p, NNO_PROVISIONING_SERVICE, 1, &v, &ver) ==
      NNO_OK) {
    const nno_provisioning_v1 *pv = v;
    if (pv->size >= offsetof(nno_provisioning_v1, resource_usage) +
                        sizeof pv->resource_usage &&
        pv->resource_usage)
      M.prov = pv;
  }
  api->counter_get(g_bill.p, "billing.flush", &M.flush_seen);
  /* `g|plans` exists from the start, so that its handle resolves. */
  api->meter_add(g_bill.p, "g|plans", 7, 0, 0, NULL);
  /* Staggered by pid, so the workers' flushes spread over the interval. */
  uint64_t first = M.flush_ms / 2 + (uint64_t)getpid() % (M.flush_ms / 2 + 1);
  if (api->timer_start(g_bill.p, first, M.flush_ms, on_flush_timer, NULL,
                       &M.timer) != NNO_OK)
    api->log(g_bill.p, NNO_LOG_ERROR,
             "metering: cannot start the flush timer: nothing is flushed");
}

void billing_meter_fini(void) {
  /* The flush timer was stopped by the host before fini. */
  M.timer = NULL;
  /* A flush job in flight was canceled or has finished: its connection
   * is closed here, after the pool is done with it. */
  billing_usage_fini();
  sqlite3_close_v2(M.rdb);
  sqlite3_close_v2(M.fdb);
  free(M.adm);
  for (size_t i = 0; i < M.bases_cap; i++) free(M.bases[i]);
  free(M.bases);
  free(M.users);
  free(M.samples);
  memset(&M, 0, sizeof M);
}
