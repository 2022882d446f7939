/* Metrics in a MAP_SHARED segment inherited by every worker. */
#include "metrics.h"
#include "meter.h"
#include "quarantine.h"
#include "ratelimit.h"
#include "watchdog.h"

#include <nno/plugin.h>

#include <stdarg.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>

static const double bucket_le[METRICS_NBUCKETS - 1] = {
    0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05,
    0.1,    0.25,  0.5,    1,     2.5,  5};

typedef struct series_key {
  _Atomic int state; /* 0 free, 1 being written, 2 ready */
  int status;
  char route[METRICS_ROUTE_MAX];
} series_key;

typedef struct worker_slot {
  _Atomic int used;
  _Atomic int pid;
  _Atomic int ready;
  _Atomic int plugins;
  /* Written only by the slot's worker; read by whoever renders. */
  _Atomic uint64_t count[METRICS_MAX_SERIES];
  _Atomic uint64_t bucket[METRICS_NBUCKETS];
  _Atomic uint64_t sum_us;
  _Atomic uint64_t total;
} worker_slot;

typedef struct named_counter {
  _Atomic int state; /* 0 free, 1 being written, 2 ready */
  char name[METRICS_COUNTER_NAME];
  _Atomic uint64_t value;
} named_counter;

typedef struct labelled {
  _Atomic int state; /* 0 free, 1 being written, 2 ready */
  int slot;          /* a gauge's worker slot; -1 for a counter */
  char key[METRICS_LABELLED_KEY];
  _Atomic int64_t value;
} labelled;

typedef struct shm {
  _Atomic uint64_t restarts;
  labelled lab[METRICS_MAX_LABELLED];
  named_counter counters[METRICS_MAX_COUNTERS];
  series_key keys[METRICS_MAX_SERIES];
  worker_slot slots[METRICS_MAX_WORKERS];
} shm;

static shm *g;
static worker_slot *me;

int metrics_init(void) {
  if (g) return 0;
  void *p = mmap(NULL, sizeof(shm), PROT_READ | PROT_WRITE,
                 MAP_SHARED | MAP_ANONYMOUS, -1, 0);
  if (p == MAP_FAILED) return -1;
  g = p; /* zero-filled by the kernel */
  return 0;
}

void metrics_worker_started(int slot, pid_t pid) {
  worker_slot *s = &g->slots[slot];
  atomic_store(&s->pid, (int)pid);
  atomic_store(&s->used, 1);
}

void metrics_worker_stopped(int slot) {
  for (int i = 0; i < METRICS_MAX_LABELLED; i++)
    if (atomic_load(&g->lab[i].state) == 2 && g->lab[i].slot == slot)
      atomic_store(&g->lab[i].value, 0);
  atomic_store(&g->slots[slot].ready, 0);
  atomic_store(&g->slots[slot].pid, 0);
  atomic_store(&g->slots[slot].used, 0);
}

void metrics_worker_restart(void) { atomic_fetch_add(&g->restarts, 1); }

int metrics_free_slot(void) {
  for (int i = 0; i < METRICS_MAX_WORKERS; i++)
    if (!atomic_load(&g->slots[i].used)) return i;
  return -1;
}

void metrics_bind(int slot) { me = &g->slots[slot]; }

void metrics_set_ready(int ready, int plugins_loaded) {
  if (!me) return;
  atomic_store(&me->plugins, plugins_loaded);
  atomic_store(&me->ready, ready);
}

static uint32_t hash_key(const char *route, int status) {
  uint32_t h = 2166136261u ^ (uint32_t)status;
  for (const unsigned char *p = (const unsigned char *)route; *p; p++)
    h = (h ^ *p) * 16777619u;
  return h;
}

/* Find or claim the series index; -1 when the table is full. Claiming uses
 * a compare-and-swap so two workers adding the same series agree. */
static int series_index(const char *route, int status) {
  uint32_t h = hash_key(route, status);
  for (uint32_t i = 0; i < METRICS_MAX_SERIES; i++) {
    series_key *k = &g->keys[(h + i) % METRICS_MAX_SERIES];
    int st = atomic_load_explicit(&k->state, memory_order_acquire);
    if (st == 0) {
      int expect = 0;
      if (atomic_compare_exchange_strong(&k->state, &expect, 1)) {
        k->status = status;
        snprintf(k->route, sizeof k->route, "%s", route);
        atomic_store_explicit(&k->state, 2, memory_order_release);
        return (int)((h + i) % METRICS_MAX_SERIES);
      }
      st = expect;
    }
    while (st == 1) st = atomic_load_explicit(&k->state, memory_order_acquire);
    if (k->status == status && strncmp(k->route, route, METRICS_ROUTE_MAX - 1) == 0)
      return (int)((h + i) % METRICS_MAX_SERIES);
  }
  return -1;
}

/* A tiny per-process cache in front of the shared table: the same few
 * series repeat, so most requests skip hashing the route. */
static struct {
  const char *route;
  int status;
  int idx;
  char copy[METRICS_ROUTE_MAX];
} cache[8];

void metrics_request(const char *route, int status, uint64_t dur_us) {
  if (!me) return;
  int idx = -1;
  unsigned slot = ((unsigned)(uintptr_t)route >> 4 ^ (unsigned)status) & 7;
  /* The pointer is only a fast hint; the copy guards against a freed and
   * reused pattern string. */
  if (cache[slot].route == route && cache[slot].status == status &&
      strncmp(cache[slot].copy, route, METRICS_ROUTE_MAX - 1) == 0) {
    idx = cache[slot].idx;
  } else {
    idx = series_index(route, status);
    if (idx < 0) idx = series_index("overflow", 0);
    cache[slot].route = route;
    snprintf(cache[slot].copy, sizeof cache[slot].copy, "%s", route);
    cache[slot].status = status;
    cache[slot].idx = idx;
  }
  if (idx >= 0)
    atomic_fetch_add_explicit(&me->count[idx], 1, memory_order_relaxed);
  int b = 0;
  while (b < METRICS_NBUCKETS - 1 && (double)dur_us / 1e6 > bucket_le[b]) b++;
  atomic_fetch_add_explicit(&me->bucket[b], 1, memory_order_relaxed);
  atomic_fetch_add_explicit(&me->sum_us, dur_us, memory_order_relaxed);
  atomic_fetch_add_explicit(&me->total, 1, memory_order_relaxed);
}

int metrics_counter(const char *name, int create, _Atomic uint64_t **out) {
  size_t n = strlen(name);
  if (n == 0 || n >= METRICS_COUNTER_NAME) return NNO_EINVAL;
  /* Plugins read their generation counters on every request, by the same
   * literal: remember where a name was found, by the address it came
   * from, and confirm with one comparison (slots never move or change
   * name once published). */
  static _Thread_local struct {
    const char *from;
    int idx;
  } hit[16];
  size_t h = ((uintptr_t)name >> 3) & 15;
  if (hit[h].from == name) {
    named_counter *c = &g->counters[hit[h].idx];
    if (atomic_load_explicit(&c->state, memory_order_acquire) == 2 &&
        strcmp(c->name, name) == 0) {
      *out = &c->value;
      return 0;
    }
  }
  for (int i = 0; i < METRICS_MAX_COUNTERS; i++) {
    named_counter *c = &g->counters[i];
    int st = atomic_load_explicit(&c->state, memory_order_acquire);
    if (st == 0) {
      if (!create) return NNO_ENOENT;
      int expect = 0;
      if (atomic_compare_exchange_strong(&c->state, &expect, 1)) {
        memcpy(c->name, name, n + 1);
        atomic_store_explicit(&c->state, 2, memory_order_release);
        *out = &c->value;
        return 0;
      }
      st = expect;
    }
    while (st == 1) st = atomic_load_explicit(&c->state, memory_order_acquire);
    if (strcmp(c->name, name) == 0) {
      hit[h].from = name;
      hit[h].idx = i;
      *out = &c->value;
      return 0;
    }
  }
  return create ? NNO_ETOOBIG : NNO_ENOENT;
}

void metrics_labelled_add(const char *key, int gauge, int64_t delta) {
  if (!g) return;
  int slot = gauge ? (me ? (int)(me - g->slots) : 0) : -1;
  size_t n = strlen(key);
  if (n == 0 || n >= METRICS_LABELLED_KEY) return;
  uint32_t h = hash_key(key, slot);
  for (uint32_t i = 0; i < METRICS_MAX_LABELLED; i++) {
    labelled *e = &g->lab[(h + i) % METRICS_MAX_LABELLED];
    int st = atomic_load_explicit(&e->state, memory_order_acquire);
    if (st == 0) {
      int expect = 0;
      if (atomic_compare_exchange_strong(&e->state, &expect, 1)) {
        e->slot = slot;
        memcpy(e->key, key, n + 1);
        atomic_store_explicit(&e->state, 2, memory_order_release);
        atomic_fetch_add_explicit(&e->value, delta, memory_order_relaxed);
        return;
      }
      st = expect;
    }
    while (st == 1) st = atomic_load_explicit(&e->state, memory_order_acquire);
    if (e->slot == slot && strcmp(e->key, key) == 0) {
      atomic_fetch_add_explicit(&e->value, delta, memory_order_relaxed);
      return;
    }
  }
}

static int cmp_lab(const void *a, const void *b) {
  return strcmp((*(const labelled *const *)a)->key,
                (*(const labelled *const *)b)->key);
}


int metrics_slot_ready(int slot) {
  return atomic_load(&g->slots[slot].ready);
}

int metrics_all_ready(void) {
  int any = 0;
  for (int i = 0; i < METRICS_MAX_WORKERS; i++) {
    worker_slot *s = &g->slots[i];
    if (!atomic_load(&s->used)) continue;
    any = 1;
    if (!atomic_load(&s->ready)) return 0;
  }
  return any;
}

size_t metrics_worker_pids(pid_t *out, size_t max) {
  size_t n = 0;
  for (int i = 0; i < METRICS_MAX_WORKERS && n < max; i++)
    if (atomic_load(&g->slots[i].used) && atomic_load(&g->slots[i].pid))
      out[n++] = atomic_load(&g->slots[i].pid);
  return n;
}

typedef struct sbuf {
  char *p;
  size_t len, cap;
  int oom;
} sbuf;



static void sb_printf(sbuf *b, const char *fmt, ...) {
  if (b->oom) return;
  for (;;) {
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(b->p + b->len, b->cap - b->len, fmt, ap);
    va_end(ap);
    if (n < 0) { b->oom = 1; return; }
    if ((size_t)n < b->cap - b->len) { b->len += (size_t)n; return; }
    size_t cap = b->cap * 2 + (size_t)n;
    char *np = realloc(b->p, cap);
    if (!np) { b->oom = 1; return; }
    b->p = np;
    b->cap = cap;
  }
}

/* The named counters plugins keep (counter_add): generation numbers and
 * event counts, one series each, labelled by name. Names are the plugins'
 * own ([a-z0-9._-] by convention); any other byte is left out. */
static void render_counters(sbuf *b) {
  int head = 0;
  for (int i = 0; i < METRICS_MAX_COUNTERS; i++) {
    named_counter *c = &g->counters[i];
    if (atomic_load_explicit(&c->state, memory_order_acquire) != 2) continue;
    char name[METRICS_COUNTER_NAME];
    size_t n = 0;
    for (const char *q = c->name; *q && n + 1 < sizeof name; q++)
      if ((*q >= 'a' && *q <= 'z') || (*q >= '0' && *q <= '9') ||
          *q == '.' || *q == '_' || *q == '-')
        name[n++] = *q;
    name[n] = '\0';
    if (!head)
      sb_printf(b, "# HELP nno_plugin_counter Named counters of the core "
                   "plugins.\n# TYPE nno_plugin_counter counter\n");
    head = 1;
    sb_printf(b, "nno_plugin_counter{name=\"%s\"} %llu\n", name,
              (unsigned long long)atomic_load_explicit(
                  &c->value, memory_order_relaxed));
  }
}

/* The labelled series, summed by key, grouped by name with a TYPE line. */
static void render_labelled(sbuf *b) {
  static const labelled *v[METRICS_MAX_LABELLED];
  size_t n = 0;
  for (int i = 0; i < METRICS_MAX_LABELLED; i++)
    if (atomic_load(&g->lab[i].state) == 2) v[n++] = &g->lab[i];
  qsort(v, n, sizeof *v, cmp_lab);
  char name[METRICS_LABELLED_KEY] = "";
  for (size_t i = 0; i < n;) {
    int64_t sum = 0;
    size_t j = i;
    for (; j < n && strcmp(v[j]->key, v[i]->key) == 0; j++)
      sum += atomic_load(&((labelled *)v[j])->value);
    /* A labelled gauge at 0 is of something gone (a sandbox that ended):
     * no series, rather than a stale one. */
    if (v[i]->slot >= 0 && sum == 0 && strchr(v[i]->key, '{')) {
      i = j;
      continue;
    }
    size_t nl = strcspn(v[i]->key, "{");
    if (strlen(name) != nl || strncmp(name, v[i]->key, nl) != 0) {
      memcpy(name, v[i]->key, nl);
      name[nl] = '\0';
      sb_printf(b, "# TYPE %s %s\n", name, v[i]->slot < 0 ? "counter" : "gauge");
    }
    sb_printf(b, "%s %lld\n", v[i]->key, (long long)sum);
    i = j;
  }
}

/* Escape a label value for Prometheus text format. */
static void sb_label(sbuf *b, const char *s) {
  char tmp[METRICS_ROUTE_MAX * 2];
  size_t j = 0;
  for (; *s && j + 2 < sizeof tmp; s++) {
    if (*s == '"' || *s == '\\') tmp[j++] = '\\';
    if (*s == '\n') { tmp[j++] = '\\'; tmp[j++] = 'n'; continue; }
    tmp[j++] = *s;
  }
  tmp[j] = '\0';
  sb_printf(b, "%s", tmp);
}

/* The quarantine table's series (quarantine.h). */
static void render_quarantine(sbuf *b) {
  quarantine_stats qs;
  quarantine_get_stats(&qs);
  sb_printf(b, "# HELP nno_quarantined Package versions quarantined on a "
               "platform now (\"*\": every platform).\n"
               "# TYPE nno_quarantined gauge\n");
  nno_quarantine q;
  for (size_t i = 0;; i++) {
    q.size = sizeof q;
    if (quarantine_at(i, &q) != 0) break;
    sb_printf(b, "nno_quarantined{platform=\"");
    sb_label(b, q.platform.ptr);
    sb_printf(b, "\",package=\"");
    sb_label(b, q.package.ptr);
    sb_printf(b, "\",version=\"");
    sb_label(b, q.version.ptr);
    sb_printf(b, "\"} 1\n");
  }
  sb_printf(b,
            "# HELP nno_quarantines_total Quarantines started.\n"
            "# TYPE nno_quarantines_total counter\n"
            "nno_quarantines_total %llu\n"
            "# HELP nno_quarantine_full_total Crashes that found no slot near "
            "their key in the quarantine table.\n"
            "# TYPE nno_quarantine_full_total counter\n"
            "nno_quarantine_full_total %llu\n"
            "# HELP nno_worker_crashes_total Workers ended by a fatal signal "
            "in a package's code (\"(none)\": in the host's).\n"
            "# TYPE nno_worker_crashes_total counter\n",
            (unsigned long long)qs.total, (unsigned long long)qs.full);
  char name[65];
  uint64_t n;
  for (size_t i = 0; quarantine_pkg_crashes_at(i, name, &n) == 0; i++) {
    sb_printf(b, "nno_worker_crashes_total{package=\"");
    sb_label(b, name);
    sb_printf(b, "\"} %llu\n", (unsigned long long)n);
  }
}

int metrics_render(char **out, size_t *len) {
  sbuf b = {malloc(8192), 0, 8192, 0};
  if (!b.p) return -1;
  b.p[0] = '\0';
  uint64_t buckets[METRICS_NBUCKETS] = {0}, sum = 0, total = 0;
  int workers = 0, plugins = 0;
  for (int w = 0; w < METRICS_MAX_WORKERS; w++) {
    worker_slot *s = &g->slots[w];
    for (int i = 0; i < METRICS_NBUCKETS; i++) buckets[i] += atomic_load(&s->bucket[i]);
    sum += atomic_load(&s->sum_us);
    total += atomic_load(&s->total);
    if (atomic_load(&s->used)) {
      workers++;
      plugins = atomic_load(&s->plugins);
    }
  }
  sb_printf(&b, "# HELP nno_http_requests_total HTTP requests by route and status.\n"
                "# TYPE nno_http_requests_total counter\n");
  for (int i = 0; i < METRICS_MAX_SERIES; i++) {
    series_key *k = &g->keys[i];
    if (atomic_load(&k->state) != 2) continue;
    uint64_t n = 0;
    for (int w = 0; w < METRICS_MAX_WORKERS; w++) n += atomic_load(&g->slots[w].count[i]);
    sb_printf(&b, "nno_http_requests_total{route=\"");
    sb_label(&b, k->route);
    sb_printf(&b, "\",status=\"%d\"} %llu\n", k->status, (unsigned long long)n);
  }
  sb_printf(&b, "# HELP nno_http_request_duration_seconds Request latency.\n"
                "# TYPE nno_http_request_duration_seconds histogram\n");
  uint64_t cum = 0;
  for (int i = 0; i < METRICS_NBUCKETS; i++) {
    cum += buckets[i];
    if (i < METRICS_NBUCKETS - 1)
      sb_printf(&b, "nno_http_request_duration_seconds_bucket{le=\"%g\"} %llu\n",
                bucket_le[i], (unsigned long long)cum);
    else
      sb_printf(&b, "nno_http_request_duration_seconds_bucket{le=\"+Inf\"} %llu\n",
                (unsigned long long)cum);
  }
  sb_printf(&b, "nno_http_request_duration_seconds_sum %.6f\n"
                "nno_http_request_duration_seconds_count %llu\n",
            (double)sum / 1e6, (unsigned long long)total);
  sb_printf(&b, "# HELP nno_worker_restarts_total Workers respawned after dying.\n"
                "# TYPE nno_worker_restarts_total counter\n"
                "nno_worker_restarts_total %llu\n",
            (unsigned long long)atomic_load(&g->restarts));
  sb_printf(&b, "# HELP nno_workers Live worker processes.\n"
                "# TYPE nno_workers gauge\nnno_workers %d\n", workers);
  sb_printf(&b, "# HELP nno_plugins_loaded Plugins loaded per worker.\n"
                "# TYPE nno_plugins_loaded gauge\nnno_plugins_loaded %d\n", plugins);
  limits_stats rl;
  limits_get_stats(&rl);
  sb_printf(&b,
            "# HELP nno_ratelimit_buckets_total Slots of the shared rate-limit "
            "table (limits.rate_buckets).\n"
            "# TYPE nno_ratelimit_buckets_total gauge\n"
            "nno_ratelimit_buckets_total %llu\n"
            "# HELP nno_ratelimit_buckets_used Slots holding a bucket.\n"
            "# TYPE nno_ratelimit_buckets_used gauge\n"
            "nno_ratelimit_buckets_used %llu\n"
            "# HELP nno_ratelimit_evictions_total Full buckets whose slot went "
            "to another key.\n"
            "# TYPE nno_ratelimit_evictions_total counter\n"
            "nno_ratelimit_evictions_total %llu\n"
            "# HELP nno_ratelimit_full_total Takes refused because no slot "
            "near the key was free or full.\n"
            "# TYPE nno_ratelimit_full_total counter\n"
            "nno_ratelimit_full_total %llu\n"
            "# HELP nno_ratelimit_lock_steals_total Slot locks taken over from "
            "a dead process.\n"
            "# TYPE nno_ratelimit_lock_steals_total counter\n"
            "nno_ratelimit_lock_steals_total %llu\n",
            (unsigned long long)rl.total, (unsigned long long)rl.used,
            (unsigned long long)rl.evictions, (unsigned long long)rl.full,
            (unsigned long long)rl.steals);
  meter_stats ms;
  meter_get_stats(&ms);
  sb_printf(&b,
            "# HELP nno_meter_slots_total Slots of the shared meter table "
            "(limits.meter_slots).\n"
            "# TYPE nno_meter_slots_total gauge\n"
            "nno_meter_slots_total %llu\n"
            "# HELP nno_meter_slots_used Slots holding a meter key.\n"
            "# TYPE nno_meter_slots_used gauge\n"
            "nno_meter_slots_used %llu\n"
            "# HELP nno_meter_full_total New meter keys refused for want of "
            "a slot.\n"
            "# TYPE nno_meter_full_total counter\n"
            "nno_meter_full_total %llu\n",
            (unsigned long long)ms.total, (unsigned long long)ms.used,
            (unsigned long long)ms.full);
  size_t wl = 0;
  char *wt = watchdog_metrics_text(&wl);
  if (wt) sb_printf(&b, "%s", wt);
  free(wt);
  render_quarantine(&b);
  render_labelled(&b);
  render_counters(&b);
  if (b.oom) {
    free(b.p);
    return -1;
  }
  *out = b.p;
  *len = b.len;
  return 0;
}
