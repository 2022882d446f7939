/* The quarantine table (policy in quarantine.h).
 *
 * One MAP_SHARED segment: a header, the per-worker crash records, the
 * per-package worker-crash counts, an index of key hashes (one word per
 * slot, so a lookup reads a few adjacent words), the wildcard entries and
 * the entries.
 *
 * Writers (a crash noted, a release, an event claimed) hold the table's
 * one lock, a word holding the owner's pid: they are rare, short and never
 * on a request's path. A writer that died holding it is noticed (its pid
 * is gone, or it is the master's unreaped child) and the lock taken over.
 *
 * Readers (quarantine_check, on a request's path) take no lock: while
 * nothing is quarantined, `latest_until` is 0 or past and the answer is
 * one atomic load away. Otherwise the key's hash is looked for in the
 * index and the entry read under its sequence counter (odd while a writer
 * changes it; the reader tries again). Slots are never emptied once used
 * (an evicted entry is replaced), so a never-used slot ends a search.
 *
 * Times are unix milliseconds (CLOCK_REALTIME, as the ABI reports them). */
#include "quarantine.h"

#include <errno.h>
#include <sched.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/random.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "loader.h"
#include "log.h"
#include "metrics.h"
#include "req.h"
#include "worker.h"

enum { EV_QUARANTINE = 1, EV_RELEASE = 2 };

typedef struct qent {
  _Atomic uint32_t seq;      /* odd while the entry is being written */
  uint32_t level;            /* quarantines so far: the backoff doubles */
  uint64_t hash;             /* of the key; 0: never used */
  _Atomic uint64_t until_ms; /* quarantined until then; 0: not */
  uint64_t since_ms;         /* the quarantine began */
  uint64_t probation_ms;     /* a crash before then quarantines at once */
  uint64_t window_ms;        /* the crash window when last quarantined */
  uint64_t last_ms;          /* the last crash */
  uint32_t crashes;          /* counted when it was quarantined */
  uint32_t nring, head;      /* crash times held, next one to write */
  uint32_t events;           /* EV_* not yet claimed (under the lock) */
  uint64_t evseq_q, evseq_r; /* their order */
  uint32_t ev_crashes;       /* the quarantine event as it happened */
  uint64_t ev_until;
  char platform[33], package[65], version[65], stack[130];
  char sid[65]; /* the stack's id: part of the key */
  char reason[64], rid[73];
  uint64_t ring[QUARANTINE_RING]; /* crash times, a ring of crash_limit */
} qent;

typedef struct pkg_count {
  _Atomic int state; /* 0 free, 1 named (written by the master only) */
  char name[65];
  _Atomic uint64_t n;
} pkg_count;

typedef struct qhdr {
  _Atomic int32_t lock;          /* pid holding the table, 0 when free */
  _Atomic uint32_t nwild;        /* wildcard entries ever used */
  _Atomic uint64_t latest_until; /* no quarantine ends later; 0: none yet */
  _Atomic uint64_t pending;      /* events not yet claimed */
  _Atomic uint64_t evseq;        /* the last event's number */
  _Atomic uint64_t total, full;
  size_t nslots;
  uint64_t seed; /* keys the hash: drawn when mapped, never shown */
  quarantine_crash crash[METRICS_MAX_WORKERS];
  pkg_count pkgs[QUARANTINE_PKG_COUNTS];
} qhdr;

static qhdr *hdr;
static _Atomic uint64_t *idx;
static qent *wild, *ents;
static size_t map_len;
static _Atomic uint64_t test_now;

/* ---- small helpers --------------------------------------------------------
 */

static uint64_t now_ms(void) {
  uint64_t t = atomic_load_explicit(&test_now, memory_order_relaxed);
  if (t) return t;
  struct timespec ts;
  clock_gettime(CLOCK_REALTIME, &ts);
  return (uint64_t)ts.tv_sec * 1000 + (uint64_t)ts.tv_nsec / 1000000;
}

void quarantine_set_now(uint64_t ms) {
  atomic_store_explicit(&test_now, ms, memory_order_relaxed);
}

/* Copy `s` into dst[cap], cut to fit, always terminated. */
static void put(char *dst, size_t cap, const char *s) {
  size_t n = s ? strnlen(s, cap - 1) : 0;
  memcpy(dst, s ? s : "", n);
  dst[n] = '\0';
}

/* FNV-1a over the key, started from the table's random seed, so which
 * keys share a slot cannot be worked out offline. */
static uint64_t key_hash(const char *platform, const char *sid,
                         const char *package, const char *version) {
  uint64_t h = 1469598103934665603ull, seed = hdr ? hdr->seed : 0;
  for (int i = 0; i < 8; i++)
    h = (h ^ (unsigned char)(seed >> (8 * i))) * 1099511628211ull;
  const char *parts[4] = {platform, sid, package, version};
  for (int i = 0; i < 4; i++) {
    for (const char *q = parts[i]; *q; q++)
      h = (h ^ (unsigned char)*q) * 1099511628211ull;
    h = (h ^ 0xff) * 1099511628211ull; /* a separator no name holds */
  }
  return h ? h : 1;
}

static int same_key(const qent *e, uint64_t h, const char *platform,
                    const char *sid, const char *package,
                    const char *version) {
  return e->hash == h &&
         strncmp(e->platform, platform, sizeof e->platform) == 0 &&
         strncmp(e->sid, sid, sizeof e->sid) == 0 &&
         strncmp(e->package, package, sizeof e->package) == 0 &&
         strncmp(e->version, version, sizeof e->version) == 0;
}

static void begin_write(qent *e) {
  atomic_fetch_add_explicit(&e->seq, 1, memory_order_acq_rel);
  atomic_thread_fence(memory_order_release);
}

static void end_write(qent *e) {
  atomic_thread_fence(memory_order_release);
  atomic_fetch_add_explicit(&e->seq, 1, memory_order_acq_rel);
}

/* ---- mapping --------------------------------------------------------------
 */

int quarantine_init(size_t slots) {
  if (hdr) return 0;
  if (slots < QUARANTINE_SLOTS_MIN || slots > QUARANTINE_SLOTS_MAX) {
    errno = EINVAL;
    return -1;
  }
  size_t hl = (sizeof(qhdr) + 63) & ~(size_t)63;
  size_t il = (slots * sizeof(uint64_t) + 63) & ~(size_t)63;
  size_t len = hl + il + (QUARANTINE_WILD + slots) * sizeof(qent);
  void *p = mmap(NULL, len, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS,
                 -1, 0);
  if (p == MAP_FAILED) return -1;
  /* Zero-filled: unlocked, nothing quarantined, every slot unused. */
  hdr = p;
  hdr->nslots = slots;
  if (getrandom(&hdr->seed, sizeof hdr->seed, 0) != sizeof hdr->seed) {
    munmap(p, len);
    hdr = NULL;
    return -1;
  }
  idx = (_Atomic uint64_t *)((char *)p + hl);
  wild = (qent *)((char *)p + hl + il);
  ents = wild + QUARANTINE_WILD;
  map_len = len;
  return 0;
}

void quarantine_fini(void) {
  if (!hdr) return;
  munmap(hdr, map_len);
  hdr = NULL;
  idx = NULL;
  wild = ents = NULL;
  map_len = 0;
}

/* ---- the lock -------------------------------------------------------------
 */

/* The owner `pid` is gone for good: no such process, or a child of ours
 * that exited and is not reaped yet (the master waiting on a worker that
 * died holding the lock), or ourselves (an earlier process with our pid). */
static int owner_dead(int32_t pid, int32_t self) {
  if (pid == self) return 1;
  int saved = errno, dead = kill(pid, 0) != 0 && errno == ESRCH;
  if (!dead) {
    siginfo_t si;
    memset(&si, 0, sizeof si);
    dead = waitid(P_PID, (id_t)pid, &si, WEXITED | WNOHANG | WNOWAIT) == 0 &&
           si.si_pid == pid;
  }
  errno = saved;
  return dead;
}

/* A writer died inside begin_write/end_write: its entry stays as it left
 * it (every field is sane alone), its counter is made even again. */
static void repair(void) {
  for (size_t j = 0; j < QUARANTINE_WILD + hdr->nslots; j++) {
    qent *e = j < QUARANTINE_WILD ? &wild[j] : &ents[j - QUARANTINE_WILD];
    if (atomic_load_explicit(&e->seq, memory_order_relaxed) & 1)
      atomic_fetch_add_explicit(&e->seq, 1, memory_order_release);
  }
}

static void lock(void) {
  int32_t self = (int32_t)getpid();
  for (unsigned spins = 1;; spins++) {
    int32_t o = 0;
    if (atomic_compare_exchange_weak_explicit(
            &hdr->lock, &o, self, memory_order_acquire, memory_order_relaxed))
      return;
    if (spins % 64 == 0) sched_yield();
    if (o && spins % 4096 == 0 && owner_dead(o, self) &&
        atomic_compare_exchange_strong_explicit(
            &hdr->lock, &o, self, memory_order_acquire, memory_order_relaxed)) {
      repair();
      return;
    }
  }
}

static void unlock(void) {
  atomic_store_explicit(&hdr->lock, 0, memory_order_release);
}

/* ---- reading --------------------------------------------------------------
 */

/* Entry `e` against the key: -1 another key, 0 this key and not
 * quarantined, 1 quarantined (out filled when not NULL). */
static int read_entry(qent *e, uint64_t h, const char *platform,
                      const char *sid, const char *package, const char *version, uint64_t now,
                      quarantine_info *out) {
  for (unsigned spins = 1;; spins++) {
    uint32_t s1 = atomic_load_explicit(&e->seq, memory_order_acquire);
    if (s1 & 1) {
      sched_yield();
      if (spins % 1024 == 0) {
        /* Its writer may have died mid-write: the lock repairs it. */
        lock();
        unlock();
      }
      continue;
    }
    int match = same_key(e, h, platform, sid, package, version);
    uint64_t until = atomic_load_explicit(&e->until_ms, memory_order_relaxed);
    uint32_t crashes = e->crashes;
    char reason[64];
    memcpy(reason, e->reason, sizeof reason);
    atomic_thread_fence(memory_order_acquire);
    if (atomic_load_explicit(&e->seq, memory_order_relaxed) != s1) continue;
    if (!match) return -1;
    if (until <= now) return 0;
    if (out) {
      out->retry_after_s = (until - now + 999) / 1000;
      if (!out->retry_after_s) out->retry_after_s = 1;
      out->crashes = crashes;
      reason[sizeof reason - 1] = '\0';
      memcpy(out->reason, reason, sizeof reason);
    }
    return 1;
  }
}

int quarantine_check(const char *platform, const char *sid,
                     const char *package, const char *version,
                     quarantine_info *out) {
  if (!hdr) return 0;
  uint64_t latest =
      atomic_load_explicit(&hdr->latest_until, memory_order_acquire);
  if (latest == 0) return 0; /* nothing was ever quarantined */
  uint64_t now = now_ms();
  if (now >= latest || !platform || !sid || !package || !version) return 0;
  size_t n = hdr->nslots, probe = n;
  uint64_t h = key_hash(platform, sid, package, version);
  size_t i = h % n;
  for (size_t k = 0; k < probe; k++, i = i + 1 == n ? 0 : i + 1) {
    uint64_t x = atomic_load_explicit(&idx[i], memory_order_acquire);
    if (x == 0) break;
    if (x != h) continue;
    int rc =
        read_entry(&ents[i], h, platform, sid, package, version, now, out);
    if (rc >= 0) {
      if (rc) return 1;
      break;
    }
  }
  if (!atomic_load_explicit(&hdr->nwild, memory_order_acquire)) return 0;
  uint64_t hw = key_hash("*", sid, package, version);
  for (size_t k = 0; k < QUARANTINE_WILD; k++)
    if (read_entry(&wild[k], hw, "*", sid, package, version, now, out) == 1)
      return 1;
  return 0;
}

int quarantine_refuse(nno_req *r) {
  const plugin *p = r->plugin;
  quarantine_info qi;
  if (!p || !p->stack[0] || !hdr ||
      !atomic_load_explicit(&hdr->latest_until, memory_order_relaxed) ||
      !quarantine_check(r->scope, p->stack_id, p->man.name, p->man.version,
                        &qi))
    return 0;
  char detail[384];
  snprintf(detail, sizeof detail,
           "package %s %s is quarantined on platform %s after %u %s "
           "(last: %s); retry in %llu s",
           p->man.name, p->man.version, r->scope[0] ? r->scope : "(none)",
           qi.crashes, qi.crashes == 1 ? "crash" : "crashes",
           qi.reason[0] ? qi.reason : "crash",
           (unsigned long long)qi.retry_after_s);
  req_problem(r, 503, "Service Unavailable", detail);
  char line[48];
  int n = snprintf(line, sizeof line, "Retry-After: %llu\r\n",
                   (unsigned long long)qi.retry_after_s);
  buf_append(&r->headers, line, (size_t)n, SIZE_MAX);
  return 1;
}

/* ---- writing (under the lock) ------------------------------------------- */

/* May `e` give its slot to another key? Only when nothing about it would
 * be lost that matters: not quarantined, not on probation, no event
 * waiting to be delivered. */
static int evictable(const qent *e, uint64_t now) {
  return atomic_load_explicit(&e->until_ms, memory_order_relaxed) <= now &&
         e->probation_ms <= now && e->events == 0;
}

/* (Re)make `e` the entry of the key. Inside begin_write/end_write. */
static void claim_entry(qent *e, uint64_t h, const char *platform,
                        const char *sid, const char *package,
                        const char *version) {
  e->hash = h;
  e->level = 0;
  atomic_store_explicit(&e->until_ms, 0, memory_order_relaxed);
  e->since_ms = e->probation_ms = e->window_ms = e->last_ms = 0;
  e->crashes = e->nring = e->head = 0;
  e->events = 0;
  put(e->platform, sizeof e->platform, platform);
  put(e->sid, sizeof e->sid, sid);
  put(e->package, sizeof e->package, package);
  put(e->version, sizeof e->version, version);
  e->stack[0] = e->reason[0] = e->rid[0] = '\0';
}

/* The entry of the key in the table, made when absent (in a never-used
 * slot of its window, else in place of the evictable entry whose last
 * crash is oldest); NULL when every slot of the window holds an entry
 * that may not be evicted. Returned inside begin_write. */
static qent *entry_for(const char *platform, const char *sid,
                       const char *package, const char *version, uint64_t now) {
  size_t n = hdr->nslots, probe = n;
  uint64_t h = key_hash(platform, sid, package, version);
  size_t i = h % n, cand = SIZE_MAX;
  for (size_t k = 0; k < probe; k++, i = i + 1 == n ? 0 : i + 1) {
    uint64_t x = atomic_load_explicit(&idx[i], memory_order_relaxed);
    if (x == 0) { /* never used: the key is not further on */
      cand = i;
      break;
    }
    if (x == h && same_key(&ents[i], h, platform, sid, package, version)) {
      begin_write(&ents[i]);
      return &ents[i];
    }
    if (evictable(&ents[i], now) &&
        (cand == SIZE_MAX || ents[i].last_ms < ents[cand].last_ms))
      cand = i;
  }
  if (cand == SIZE_MAX) return NULL;
  qent *e = &ents[cand];
  begin_write(e);
  claim_entry(e, h, platform, sid, package, version);
  atomic_store_explicit(&idx[cand], h, memory_order_release);
  return e;
}

/* The wildcard entry of package@version (platform "*"), made when absent;
 * NULL when all are taken and none may be evicted. Inside begin_write. */
static qent *wild_for(const char *sid, const char *package,
                      const char *version, uint64_t now) {
  uint64_t h = key_hash("*", sid, package, version);
  qent *cand = NULL;
  for (size_t k = 0; k < QUARANTINE_WILD; k++) {
    qent *e = &wild[k];
    if (e->hash == h && same_key(e, h, "*", sid, package, version)) {
      begin_write(e);
      return e;
    }
    if (!cand && (e->hash == 0 || evictable(e, now))) cand = e;
  }
  if (!cand) return NULL;
  begin_write(cand);
  if (cand->hash == 0)
    atomic_fetch_add_explicit(&hdr->nwild, 1, memory_order_release);
  claim_entry(cand, h, "*", sid, package, version);
  return cand;
}

static void add_event(qent *e, int kind) {
  uint64_t seq =
      atomic_fetch_add_explicit(&hdr->evseq, 1, memory_order_relaxed) + 1;
  if (!(e->events & kind))
    atomic_fetch_add_explicit(&hdr->pending, 1, memory_order_release);
  e->events |= (uint32_t)kind;
  if (kind == EV_QUARANTINE)
    e->evseq_q = seq;
  else
    e->evseq_r = seq;
}

static uint64_t backoff_ms(uint64_t base, uint32_t level) {
  uint64_t b = base ? base : 1;
  for (uint32_t l = 1; l < level && b < QUARANTINE_MAX_MS; l++) b *= 2;
  return b > QUARANTINE_MAX_MS ? QUARANTINE_MAX_MS : b;
}

static int valid_key(const char *platform, const char *package,
                     const char *version) {
  return platform && package && version && package[0] && version[0] &&
         strlen(platform) < 33 && strlen(package) < 65 && strlen(version) < 65;
}

int quarantine_note_crash(const nno_config *cfg, const char *platform,
                          const char *package, const char *version,
                          const char *stk, const char *reason,
                          const char *rid) {
  if (!hdr || !cfg || !valid_key(platform, package, version)) return -1;
  /* The key's stack is the id of "id@version": another stack's package of
   * the same name is another key. */
  char sid[65];
  {
    const char *s = stk ? stk : "", *at = strchr(s, '@');
    size_t n = at ? (size_t)(at - s) : strlen(s);
    if (n >= sizeof sid) return -1;
    memcpy(sid, s, n);
    sid[n] = '\0';
  }
  uint64_t now = now_ms();
  uint64_t k = (uint64_t)cfg->sandbox_crash_limit,
           window = (uint64_t)cfg->sandbox_crash_window_ms;
  if (k < 1) k = 1;
  if (k > QUARANTINE_RING) k = QUARANTINE_RING;
  lock();
  int wildcard = 0;
  qent *e = entry_for(platform, sid, package, version, now);
  if (!e) {
    /* Fail closed: this stack's package version goes on every platform
     * (never another stack's package of the same name). */
    wildcard = 1;
    atomic_fetch_add_explicit(&hdr->full, 1, memory_order_relaxed);
    e = wild_for(sid, package, version, now);
    if (!e) {
      unlock();
      logline l;
      log_begin(&l, NNO_LOG_ERROR, "quarantine table full: crash not recorded");
      log_str(&l, "platform", platform);
      log_str(&l, "package", package);
      log_str(&l, "version", version);
      log_end(&l);
      return -1;
    }
  }
  put(e->stack, sizeof e->stack, stk);
  put(e->reason, sizeof e->reason, reason);
  put(e->rid, sizeof e->rid, rid);
  e->last_ms = now;
  uint64_t until = atomic_load_explicit(&e->until_ms, memory_order_relaxed);
  int quarantined = 0;
  uint32_t count = 0;
  if (until <= now) {
    /* The ring holds the last k crash times (k may have changed with a
     * reload: what is beyond it is forgotten). */
    if (e->nring > k) e->nring = (uint32_t)k;
    e->head %= (uint32_t)k;
    e->ring[e->head] = now;
    e->head = (uint32_t)((e->head + 1) % k);
    if (e->nring < k) e->nring++;
    for (uint32_t j = 0; j < e->nring; j++)
      if (now - e->ring[j] <= window) count++;
    int probation = e->level > 0 && now < e->probation_ms;
    /* A crash that found no room for its own key is not counted towards
     * K: the package version is quarantined everywhere at once. */
    if (count >= k || probation || wildcard) {
      e->level++;
      uint64_t b = backoff_ms((uint64_t)cfg->sandbox_quarantine_ms, e->level);
      until = now + b;
      e->since_ms = now;
      e->crashes = count;
      e->window_ms = window;
      e->probation_ms = until + window;
      e->nring = e->head = 0;
      e->ev_crashes = count;
      e->ev_until = until;
      atomic_store_explicit(&e->until_ms, until, memory_order_release);
      add_event(e, EV_QUARANTINE);
      atomic_fetch_add_explicit(&hdr->total, 1, memory_order_relaxed);
      if (until >
          atomic_load_explicit(&hdr->latest_until, memory_order_relaxed))
        atomic_store_explicit(&hdr->latest_until, until, memory_order_release);
      quarantined = 1;
    }
  }
  uint32_t level = e->level;
  end_write(e);
  unlock();
  if (wildcard) {
    logline l;
    log_begin(&l, NNO_LOG_ERROR,
              "quarantine table full near this key: the package version "
              "is counted on every platform");
    log_str(&l, "platform", platform);
    log_str(&l, "package", package);
    log_str(&l, "version", version);
    log_end(&l);
  }
  if (quarantined) {
    logline l;
    log_begin(&l, NNO_LOG_WARN, "package quarantined");
    log_str(&l, "platform", wildcard ? "*" : platform);
    log_str(&l, "package", package);
    log_str(&l, "version", version);
    log_str(&l, "stack", stk ? stk : "");
    log_int(&l, "crashes", count);
    log_int(&l, "backoff_level", level);
    log_int(&l, "quarantine_ms", (long long)(until - now));
    log_str(&l, "reason", reason ? reason : "");
    log_str(&l, "rid", rid ? rid : "");
    log_end(&l);
  }
  return quarantined;
}

int quarantine_release(const char *platform, const char *package,
                       const char *version) {
  if (!valid_key(platform, package, version)) return NNO_EINVAL;
  if (!hdr) return NNO_ENOENT;
  uint64_t now = now_ms();
  /* Every stack's entry of (platform, package, version) that is
   * quarantined: a release is rare, the whole table is read. */
  int released = 0;
  lock();
  for (size_t j = 0; j < QUARANTINE_WILD + hdr->nslots; j++) {
    qent *e = j < QUARANTINE_WILD ? &wild[j] : &ents[j - QUARANTINE_WILD];
    if (j < QUARANTINE_WILD ? !e->hash
        : !atomic_load_explicit(&idx[j - QUARANTINE_WILD], memory_order_relaxed))
      continue;
    if (strcmp(e->platform, platform) || strcmp(e->package, package) ||
        strcmp(e->version, version) ||
        atomic_load_explicit(&e->until_ms, memory_order_relaxed) <= now)
      continue;
    begin_write(e);
    atomic_store_explicit(&e->until_ms, 0, memory_order_release);
    e->probation_ms = now + e->window_ms;
    e->nring = e->head = 0;
    add_event(e, EV_RELEASE);
    end_write(e);
    released++;
  }
  unlock();
  if (!released) return NNO_ENOENT;
  logline l;
  log_begin(&l, NNO_LOG_INFO, "package released from quarantine");
  log_str(&l, "platform", platform);
  log_str(&l, "package", package);
  log_str(&l, "version", version);
  log_end(&l);
  return 0;
}

/* ---- listing ------------------------------------------------------------ */

/* The j-th entry, wildcard ones first; NULL for a slot never used (its
 * index word is 0: its pages need not be read, nor made to exist). */
static qent *nth_entry(size_t j) {
  if (j < QUARANTINE_WILD) return wild[j].hash ? &wild[j] : NULL;
  j -= QUARANTINE_WILD;
  return atomic_load_explicit(&idx[j], memory_order_relaxed) ? &ents[j] : NULL;
}

int quarantine_at(size_t i, nno_quarantine *out) {
  /* A copy per process, for the views handed out. */
  static char platform[33], package[65], version[65], stk[130];
  static char reason[64], rid[73];
  if (!out || out->size == 0) return NNO_EINVAL;
  if (!hdr) return NNO_ENOENT;
  uint64_t now = now_ms();
  size_t total = QUARANTINE_WILD + hdr->nslots, seen = 0;
  nno_quarantine q;
  memset(&q, 0, sizeof q);
  int found = 0;
  lock();
  for (size_t j = 0; j < total && !found; j++) {
    qent *e = nth_entry(j);
    if (!e || atomic_load_explicit(&e->until_ms, memory_order_relaxed) <= now)
      continue;
    if (seen++ != i) continue;
    memcpy(platform, e->platform, sizeof platform);
    memcpy(package, e->package, sizeof package);
    memcpy(version, e->version, sizeof version);
    memcpy(stk, e->stack, sizeof stk);
    memcpy(reason, e->reason, sizeof reason);
    memcpy(rid, e->rid, sizeof rid);
    q.crashes = e->crashes;
    q.level = e->level;
    q.since_ms = e->since_ms;
    q.until_ms = atomic_load_explicit(&e->until_ms, memory_order_relaxed);
    found = 1;
  }
  unlock();
  if (!found) return NNO_ENOENT;
  q.size = out->size < sizeof q ? out->size : sizeof q;
  q.platform = (nno_str){platform, strlen(platform)};
  q.package = (nno_str){package, strlen(package)};
  q.version = (nno_str){version, strlen(version)};
  q.stack = (nno_str){stk, strlen(stk)};
  q.reason = (nno_str){reason, strlen(reason)};
  q.request_id = (nno_str){rid, strlen(rid)};
  memcpy(out, &q, q.size);
  return 0;
}

/* ---- events ------------------------------------------------------------- */

int quarantine_claim(quarantine_event *out) {
  if (!hdr || !atomic_load_explicit(&hdr->pending, memory_order_acquire))
    return 0;
  lock();
  qent *best = NULL;
  int kind = 0;
  uint64_t best_seq = UINT64_MAX;
  size_t total = QUARANTINE_WILD + hdr->nslots;
  for (size_t j = 0; j < total; j++) {
    qent *e = nth_entry(j);
    if (!e || !e->events) continue;
    if ((e->events & EV_QUARANTINE) && e->evseq_q < best_seq) {
      best = e;
      kind = EV_QUARANTINE;
      best_seq = e->evseq_q;
    }
    if ((e->events & EV_RELEASE) && e->evseq_r < best_seq) {
      best = e;
      kind = EV_RELEASE;
      best_seq = e->evseq_r;
    }
  }
  if (!best) {
    unlock();
    return 0;
  }
  memset(out, 0, sizeof *out);
  out->kind = kind == EV_QUARANTINE ? NNO_HOST_EVENT_QUARANTINE
                                    : NNO_HOST_EVENT_RELEASE;
  memcpy(out->platform, best->platform, sizeof out->platform);
  memcpy(out->package, best->package, sizeof out->package);
  memcpy(out->version, best->version, sizeof out->version);
  memcpy(out->stack, best->stack, sizeof out->stack);
  memcpy(out->reason, best->reason, sizeof out->reason);
  memcpy(out->rid, best->rid, sizeof out->rid);
  out->crashes = kind == EV_QUARANTINE ? best->ev_crashes : 0;
  out->until_ms = kind == EV_QUARANTINE ? best->ev_until : 0;
  begin_write(best);
  best->events &= ~(uint32_t)kind;
  end_write(best);
  atomic_fetch_sub_explicit(&hdr->pending, 1, memory_order_release);
  unlock();
  return 1;
}

static nno_str view(const char *s) {
  return (nno_str){s, strlen(s)};
}

void quarantine_poll(worker *w) {
  quarantine_event ev;
  while (quarantine_claim(&ev)) {
    nno_host_event hev;
    memset(&hev, 0, sizeof hev);
    hev.size = sizeof hev;
    hev.kind = ev.kind;
    hev.platform = view(ev.platform);
    hev.package = view(ev.package);
    hev.version = view(ev.version);
    hev.stack = view(ev.stack);
    hev.reason = view(ev.reason);
    hev.request_id = view(ev.rid);
    hev.crashes = ev.crashes;
    hev.until_ms = ev.until_ms;
    for (plugin *p = w && w->plugins ? w->plugins->head : NULL; p;
         p = p->next) {
      const nno_plugin_desc *d = p->desc;
      if (!d || p->man.kind != NNO_KIND_CORE ||
          d->size < offsetof(nno_plugin_desc, on_host_event) +
                        sizeof d->on_host_event ||
          !d->on_host_event)
        continue;
      d->on_host_event((nno_plugin *)p, &hev);
    }
  }
}

static uv_timer_t poll_timer;
static int poll_started;

static void on_poll_timer(uv_timer_t *t) {
  quarantine_poll(t->data);
}

void quarantine_start(worker *w) {
  uv_timer_init(&w->loop, &poll_timer);
  poll_timer.data = w;
  uv_timer_start(&poll_timer, on_poll_timer, 1000, 1000);
  uv_unref((uv_handle_t *)&poll_timer);
  poll_started = 1;
}

void quarantine_stop(worker *w) {
  (void)w;
  if (!poll_started) return;
  poll_started = 0;
  uv_close((uv_handle_t *)&poll_timer, NULL);
}

/* ---- crash records, counts, stats ------------------------------------- */

quarantine_crash *quarantine_crash_slot(int slot) {
  if (!hdr || slot < 0 || slot >= METRICS_MAX_WORKERS) return NULL;
  return &hdr->crash[slot];
}

void quarantine_count_worker_crash(const char *package) {
  if (!hdr) return;
  const char *name = package && package[0] ? package : "(none)";
  pkg_count *free_slot = NULL;
  for (size_t i = 0; i < QUARANTINE_PKG_COUNTS; i++) {
    pkg_count *c = &hdr->pkgs[i];
    if (!atomic_load_explicit(&c->state, memory_order_acquire)) {
      if (!free_slot) free_slot = c;
      continue;
    }
    if (strncmp(c->name, name, sizeof c->name) == 0) {
      atomic_fetch_add_explicit(&c->n, 1, memory_order_relaxed);
      return;
    }
  }
  /* The last slot is kept for every package that finds no other. */
  pkg_count *c = free_slot && free_slot != &hdr->pkgs[QUARANTINE_PKG_COUNTS - 1]
                     ? free_slot
                     : &hdr->pkgs[QUARANTINE_PKG_COUNTS - 1];
  if (!atomic_load_explicit(&c->state, memory_order_acquire)) {
    put(c->name, sizeof c->name,
        c == &hdr->pkgs[QUARANTINE_PKG_COUNTS - 1] ? "(other)" : name);
    atomic_store_explicit(&c->state, 1, memory_order_release);
  }
  atomic_fetch_add_explicit(&c->n, 1, memory_order_relaxed);
}

int quarantine_pkg_crashes_at(size_t i, char *name, uint64_t *count) {
  if (!hdr) return -1;
  for (size_t j = 0, seen = 0; j < QUARANTINE_PKG_COUNTS; j++) {
    pkg_count *c = &hdr->pkgs[j];
    if (!atomic_load_explicit(&c->state, memory_order_acquire)) continue;
    if (seen++ != i) continue;
    memcpy(name, c->name, sizeof c->name);
    *count = atomic_load_explicit(&c->n, memory_order_relaxed);
    return 0;
  }
  return -1;
}

void quarantine_get_stats(quarantine_stats *out) {
  memset(out, 0, sizeof *out);
  if (!hdr) return;
  out->total = atomic_load_explicit(&hdr->total, memory_order_relaxed);
  out->full = atomic_load_explicit(&hdr->full, memory_order_relaxed);
}
