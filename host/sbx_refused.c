/* The table of refused sandboxed stack versions (see sbx_refused.h).
 *
 * A fixed array of entries, each under a sequence counter: odd while a
 * writer fills it. Writers (a failed trial, rare) take an entry by moving
 * its counter from even to odd; one that finds it odd (another writer)
 * leaves it, and the version is simply tried again later. Readers copy an
 * entry and keep the copy only if the counter was even and unchanged. */
#include "sbx_refused.h"

#include <errno.h>
#include <limits.h>
#include <stdatomic.h>
#include <stdio.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>

#define REFUSED_SLOTS 64
#define REFUSED_PROBE 8

typedef struct refused {
  _Atomic uint64_t seq;
  uint64_t fp; /* 0: empty */
  char dir[1024];
  char file[1024];
  char err[512];
} refused;

static refused *tab; /* REFUSED_SLOTS entries, shared */

int sbx_refused_init(void) {
  if (tab) return 0;
  void *p = mmap(NULL, REFUSED_SLOTS * sizeof *tab, PROT_READ | PROT_WRITE,
                 MAP_SHARED | MAP_ANONYMOUS, -1, 0);
  if (p == MAP_FAILED) return -1;
  tab = p; /* zero-filled: every entry empty */
  return 0;
}

static uint64_t fnv(uint64_t h, const void *p, size_t n) {
  const unsigned char *s = p;
  for (size_t i = 0; i < n; i++) h = (h ^ s[i]) * 0x100000001b3ull;
  return h;
}

static int take(refused *e) {
  uint64_t s = atomic_load_explicit(&e->seq, memory_order_acquire);
  return !(s & 1) &&
         atomic_compare_exchange_strong_explicit(
             &e->seq, &s, s + 1, memory_order_acq_rel, memory_order_relaxed);
}

static void give(refused *e) {
  atomic_fetch_add_explicit(&e->seq, 1, memory_order_release);
}

void sbx_refused_clear(void) {
  if (!tab) return;
  for (size_t i = 0; i < REFUSED_SLOTS; i++)
    if (take(&tab[i])) {
      tab[i].fp = 0;
      tab[i].dir[0] = '\0';
      give(&tab[i]);
    }
}

uint64_t sbx_refused_fingerprint(const char *dir) {
  static const char *const names[] = {"", "/stack.json", "/CHECKSUMS",
                                      "/.install.json"};
  uint64_t h = 0xcbf29ce484222325ull;
  for (size_t i = 0; i < sizeof names / sizeof names[0]; i++) {
    char path[PATH_MAX];
    struct stat sb;
    if ((size_t)snprintf(path, sizeof path, "%s%s", dir, names[i]) >=
        sizeof path)
      return 0;
    if (stat(path, &sb) != 0) {
      if (i <= 1) return 0; /* the folder and its stack.json: required */
      h = fnv(h, "-", 1);
      continue;
    }
    uint64_t v[7] = {(uint64_t)sb.st_dev,           (uint64_t)sb.st_ino,
                     (uint64_t)sb.st_size,          (uint64_t)sb.st_mtim.tv_sec,
                     (uint64_t)sb.st_mtim.tv_nsec,  (uint64_t)sb.st_ctim.tv_sec,
                     (uint64_t)sb.st_ctim.tv_nsec};
    h = fnv(h, v, sizeof v);
  }
  return h ? h : 1;
}

/* The first of the REFUSED_PROBE entries `dir` may be in. */
static size_t home(const char *dir) {
  return (size_t)(fnv(0xcbf29ce484222325ull, dir, strlen(dir)) %
                  REFUSED_SLOTS);
}

int sbx_refused_find(const char *dir, uint64_t fp, char *file, size_t filecap,
                     char *err, size_t errlen) {
  if (!tab || !fp || strlen(dir) >= sizeof tab->dir) return 0;
  size_t h = home(dir);
  for (size_t k = 0; k < REFUSED_PROBE; k++) {
    refused *e = &tab[(h + k) % REFUSED_SLOTS];
    uint64_t s = atomic_load_explicit(&e->seq, memory_order_acquire);
    if (s & 1) continue;
    refused copy;
    memcpy(copy.dir, e->dir, sizeof copy.dir);
    copy.fp = e->fp;
    memcpy(copy.file, e->file, sizeof copy.file);
    memcpy(copy.err, e->err, sizeof copy.err);
    atomic_thread_fence(memory_order_acquire);
    if (atomic_load_explicit(&e->seq, memory_order_relaxed) != s) continue;
    copy.dir[sizeof copy.dir - 1] = copy.file[sizeof copy.file - 1] =
        copy.err[sizeof copy.err - 1] = '\0';
    if (copy.fp != fp || strcmp(copy.dir, dir) != 0) continue;
    snprintf(file, filecap, "%s", copy.file);
    snprintf(err, errlen, "%s", copy.err);
    return 1;
  }
  return 0;
}

void sbx_refused_note(const char *dir, uint64_t fp, const char *file,
                      const char *err) {
  if (!tab || !fp || strlen(dir) >= sizeof tab->dir) return;
  size_t h = home(dir);
  /* The folder's own entry (an older fingerprint), else an empty one,
   * else the folder's first (a full table forgets a refusal: that version
   * is only tried again). */
  refused *pick = NULL;
  for (size_t k = 0; k < REFUSED_PROBE && !pick; k++) {
    refused *e = &tab[(h + k) % REFUSED_SLOTS];
    if (strncmp(e->dir, dir, sizeof e->dir) == 0) pick = e;
  }
  for (size_t k = 0; k < REFUSED_PROBE && !pick; k++) {
    refused *e = &tab[(h + k) % REFUSED_SLOTS];
    if (!e->fp) pick = e;
  }
  if (!pick) pick = &tab[h];
  if (!take(pick)) return;
  pick->fp = fp;
  snprintf(pick->dir, sizeof pick->dir, "%s", dir);
  snprintf(pick->file, sizeof pick->file, "%s", file ? file : "");
  snprintf(pick->err, sizeof pick->err, "%s", err);
  give(pick);
}
