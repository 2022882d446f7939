/* Installed stacks at run time: see stacks.h. */
#include "stacks.h"

#include <arpa/inet.h>
#include <curl/curl.h>
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <jansson.h>
#include <limits.h>
#include <netinet/in.h>
#include <sodium.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>
#include <uv.h>

#include "stack_archive.h"
#include "callctx.h"
#include "config.h"
#include "loader.h"
#include "log.h"
#include "metrics.h"
#include "semver.h"
#include "worker.h"

#define CHECKSUMS_MAX (4u << 20)   /* the CHECKSUMS file read at load */
#define CATALOGUE_MAX 256          /* versions listed */
#define CHECK_OUT_MAX (1u << 20)   /* what the check prints */
#define URL_MAX 2048

/* In the test-only host (tests/, NNO_FAILPOINTS): SIGKILL this process when
 * env NNO_FAILPOINT_KILL names `step`, to test what a crash there leaves.
 * Nothing in the installed host. */
#ifdef NNO_FAILPOINTS
#include <signal.h>
static void failpoint(const char *step) {
  const char *k = getenv("NNO_FAILPOINT_KILL");
  if (k && strcmp(k, step) == 0) raise(SIGKILL);
}
#else
#define failpoint(step) ((void)0)
#endif

/* ---- small file helpers ------------------------------------------------ */

/* Recursively give every folder under `path` (itself included) u+w, so an
 * installed (read-only) tree can be moved or removed. Links are not
 * followed. */
static void make_writable(const char *path) {
  struct stat st;
  if (lstat(path, &st) != 0 || !S_ISDIR(st.st_mode)) return;
  chmod(path, 0700);
  DIR *d = opendir(path);
  if (!d) return;
  struct dirent *e;
  while ((e = readdir(d))) {
    if (strcmp(e->d_name, ".") == 0 || strcmp(e->d_name, "..") == 0) continue;
    char sub[PATH_MAX];
    if (snprintf(sub, sizeof sub, "%s/%s", path, e->d_name) < (int)sizeof sub)
      make_writable(sub);
  }
  closedir(d);
}

static void remove_tree(const char *path) {
  make_writable(path);
  archive_rmtree(path);
}

/* Make every file under `path` read-only (0444, 0555 when executable;
 * folders 0555 except `path` itself, which must stay writable until it is
 * renamed into place) and fsync files and folders. 0 or -1 (errno). */
static int seal_tree(const char *path, int top) {
  int fd = open(path, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
  if (fd < 0) return -1;
  DIR *d = fdopendir(fd);
  if (!d) {
    close(fd);
    return -1;
  }
  int rc = 0;
  struct dirent *e;
  while (rc == 0 && (e = readdir(d))) {
    if (strcmp(e->d_name, ".") == 0 || strcmp(e->d_name, "..") == 0) continue;
    char sub[PATH_MAX];
    struct stat st;
    if (snprintf(sub, sizeof sub, "%s/%s", path, e->d_name) >= (int)sizeof sub ||
        lstat(sub, &st) != 0) {
      rc = -1;
      break;
    }
    if (S_ISDIR(st.st_mode)) {
      rc = seal_tree(sub, 0);
    } else if (S_ISREG(st.st_mode)) {
      int f = open(sub, O_RDONLY | O_NOFOLLOW | O_CLOEXEC);
      if (f < 0 || fsync(f) != 0 ||
          fchmod(f, (st.st_mode & 0100) ? 0555 : 0444) != 0)
        rc = -1;
      if (f >= 0) close(f);
    } else {
      errno = EINVAL; /* extraction makes files and folders only */
      rc = -1;
    }
  }
  if (rc == 0 && fsync(fd) != 0) rc = -1;
  if (rc == 0 && !top && fchmod(fd, 0555) != 0) rc = -1;
  closedir(d);
  return rc;
}

static int fsync_path(const char *path) {
  int fd = open(path, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  if (fd < 0) return -1;
  int rc = fsync(fd);
  close(fd);
  return rc;
}

/* A stack id as folders are named: 1-64 of [a-z0-9-], not starting with
 * '-'. */
static int id_ok(const char *s) {
  size_t n = strlen(s);
  if (n == 0 || n > 64 || s[0] == '-') return 0;
  for (size_t i = 0; i < n; i++)
    if (!((s[i] >= 'a' && s[i] <= 'z') || (s[i] >= '0' && s[i] <= '9') ||
          s[i] == '-'))
      return 0;
  return 1;
}

static int version_ok(const char *s) {
  semver v;
  return strlen(s) < 64 && s[0] != '.' && !strchr(s, '/') &&
         semver_parse(s, &v) == 0;
}

/* Read a small JSON file: {"sha256","signed_by","installed_at","size",
 * "owner"} ("owner": the installing platform, "" or absent: the operator). */
static json_t *read_install_json(const char *dir) {
  char path[PATH_MAX];
  if (snprintf(path, sizeof path, "%s/%s", dir, STACKS_INSTALL_FILE) >=
      (int)sizeof path)
    return NULL;
  json_error_t je;
  json_t *j = json_load_file(path, 0, &je);
  if (j && !json_is_object(j)) {
    json_decref(j);
    j = NULL;
  }
  return j;
}

/* The whole of a small file of `dir` (NUL-terminated), or NULL. */
static char *slurp(const char *dir, const char *name, size_t max,
                   size_t *len) {
  char path[PATH_MAX];
  if (snprintf(path, sizeof path, "%s/%s", dir, name) >= (int)sizeof path)
    return NULL;
  int fd = open(path, O_RDONLY | O_NOFOLLOW | O_CLOEXEC);
  if (fd < 0) return NULL;
  char *b = malloc(max + 1);
  size_t n = 0;
  ssize_t k;
  while (b && n <= max && (k = read(fd, b + n, max + 1 - n)) > 0)
    n += (size_t)k;
  close(fd);
  if (!b || n > max) {
    free(b);
    return NULL;
  }
  b[n] = '\0';
  *len = n;
  return b;
}

int stacks_verify_trusted(const nno_config *cfg, const char *dir, char *err,
                          size_t errlen) {
  if (!cfg->trusted_keys[0]) return 0;
  json_t *j = read_install_json(dir);
  if (!j) return 0; /* not from an archive */
  json_decref(j);
  char kerr[ARCHIVE_ERR_MAX], by[17] = "";
  size_t slen = 0, glen = 0;
  archive_keyring *kr = malloc(sizeof *kr);
  archive_error *e = malloc(sizeof *e);
  /* The files were checked against CHECKSUMS just before. */
  char *sums = slurp(dir, ARCHIVE_CHECKSUMS, 16 << 20, &slen);
  char *sig = slurp(dir, ARCHIVE_SIGNATURE, 4096, &glen);
  int rc = -1;
  if (!kr || !e) {
    snprintf(err, errlen, "out of memory");
  } else if (archive_keyring_load(cfg->trusted_keys, kr, kerr, sizeof kerr)) {
    snprintf(err, errlen, "stacks.trusted_keys: %s", kerr);
  } else if (!sums) {
    snprintf(err, errlen, "modified after install: %s is missing",
             ARCHIVE_CHECKSUMS);
  } else if (archive_signature_check(sig, glen, sums, slen, kr, by, e) != 0) {
    if (!sig)
      snprintf(err, errlen,
               "installed unsigned, and stacks.trusted_keys requires a "
               "signature by one of its keys: install a signed archive of "
               "this version");
    else
      snprintf(err, errlen, "%s", e->message);
  } else {
    rc = 0;
  }
  free(sums);
  free(sig);
  free(kr);
  free(e);
  return rc;
}

/* ---- the sealed copy of an object -------------------------------------- */

int stacks_sealed_copy(int fd, const char *shown, char *err, size_t errlen) {
  int m = memfd_create("nno-object", MFD_CLOEXEC | MFD_ALLOW_SEALING);
  if (m < 0) {
    snprintf(err, errlen, "plugin \"%s\": cannot make a sealed copy: %s",
             shown, strerror(errno));
    return -1;
  }
  char buf[64 * 1024];
  off_t off = 0;
  for (;;) {
    ssize_t n = pread(fd, buf, sizeof buf, off);
    if (n < 0 && errno == EINTR) continue;
    if (n < 0) goto fail;
    if (n == 0) break;
    for (ssize_t w = 0; w < n;) {
      ssize_t k = write(m, buf + w, (size_t)(n - w));
      if (k < 0 && errno == EINTR) continue;
      if (k < 0) goto fail;
      w += k;
    }
    off += n;
  }
  if (fcntl(m, F_ADD_SEALS,
            F_SEAL_SHRINK | F_SEAL_GROW | F_SEAL_WRITE | F_SEAL_SEAL) != 0)
    goto fail;
  return m;
fail:
  snprintf(err, errlen, "plugin \"%s\": cannot make a sealed copy: %s", shown,
           strerror(errno));
  close(m);
  return -1;
}

/* ---- verification of an installed version at load ------------------------ */

typedef struct listed {
  char **path;
  unsigned char *seen;
  size_t n;
} listed;

static int cmp_str(const void *a, const void *b) {
  return strcmp(*(char *const *)a, *(char *const *)b);
}

static int sha256_file(const char *path, char hex[65]) {
  int fd = open(path, O_RDONLY | O_NOFOLLOW | O_CLOEXEC);
  if (fd < 0) return -1;
  int rc = archive_sha256_fd(fd, hex);
  close(fd);
  return rc;
}

/* Every regular file under dir/rel must be one listed (or the archive's
 * own files at the top). */
static int walk_unlisted(const char *dir, const char *rel, listed *l,
                         char *err, size_t errlen) {
  char path[PATH_MAX];
  snprintf(path, sizeof path, "%s%s%s", dir, rel[0] ? "/" : "", rel);
  DIR *d = opendir(path);
  if (!d) {
    snprintf(err, errlen, "modified after install: %s: %s", rel[0] ? rel : ".",
             strerror(errno));
    return -1;
  }
  int rc = 0;
  struct dirent *e;
  while (rc == 0 && (e = readdir(d))) {
    if (strcmp(e->d_name, ".") == 0 || strcmp(e->d_name, "..") == 0) continue;
    char r[PATH_MAX];
    if (snprintf(r, sizeof r, "%s%s%s", rel, rel[0] ? "/" : "", e->d_name) >=
        (int)sizeof r) {
      snprintf(err, errlen, "modified after install: a path is too long");
      rc = -1;
      break;
    }
    char full[PATH_MAX];
    struct stat st;
    snprintf(full, sizeof full, "%s/%s", dir, r);
    if (lstat(full, &st) != 0) continue;
    if (S_ISDIR(st.st_mode)) {
      rc = walk_unlisted(dir, r, l, err, errlen);
      continue;
    }
    if (!rel[0] && (strcmp(r, ARCHIVE_CHECKSUMS) == 0 ||
                    strcmp(r, ARCHIVE_SIGNATURE) == 0 ||
                    strcmp(r, STACKS_INSTALL_FILE) == 0))
      continue;
    const char *key = r;
    char **hit = bsearch(&key, l->path, l->n, sizeof *l->path, cmp_str);
    if (!hit || !S_ISREG(st.st_mode)) {
      snprintf(err, errlen, "modified after install: %s was added", r);
      rc = -1;
    }
  }
  closedir(d);
  return rc;
}

int stacks_verify_installed(const char *dir, int flags, char *err,
                            size_t errlen) {
  char path[PATH_MAX];
  struct stat st;
  if (snprintf(path, sizeof path, "%s/%s", dir, STACKS_INSTALL_FILE) >=
          (int)sizeof path ||
      lstat(path, &st) != 0)
    return 0; /* not from an archive */
  snprintf(path, sizeof path, "%s/%s", dir, ARCHIVE_CHECKSUMS);
  int fd = open(path, O_RDONLY | O_NOFOLLOW | O_CLOEXEC);
  if (fd < 0 || fstat(fd, &st) != 0 || !S_ISREG(st.st_mode) ||
      (uint64_t)st.st_size > CHECKSUMS_MAX) {
    snprintf(err, errlen, "modified after install: %s is missing or too large",
             ARCHIVE_CHECKSUMS);
    if (fd >= 0) close(fd);
    return -1;
  }
  char *text = malloc((size_t)st.st_size + 1);
  ssize_t got = text ? read(fd, text, (size_t)st.st_size) : -1;
  close(fd);
  if (got != st.st_size) {
    free(text);
    snprintf(err, errlen, "cannot read %s: %s", path, strerror(errno));
    return -1;
  }
  text[got] = '\0';
  listed l = {0};
  size_t cap = 0;
  int rc = 0;
  for (char *line = text, *nl; rc == 0 && *line; line = nl + 1) {
    nl = strchr(line, '\n');
    if (!nl) {
      snprintf(err, errlen, "modified after install: %s does not end with a "
               "newline", ARCHIVE_CHECKSUMS);
      rc = -1;
      break;
    }
    *nl = '\0';
    char *file = line + 66;
    if (strlen(line) < 67 || line[64] != ' ' || line[65] != ' ' ||
        file[0] == '/' || strstr(file, "..")) {
      snprintf(err, errlen, "modified after install: %s has a bad line",
               ARCHIVE_CHECKSUMS);
      rc = -1;
      break;
    }
    line[64] = '\0';
    char full[PATH_MAX], hex[65];
    size_t fl = strlen(file);
    int skip = (flags & STACKS_VERIFY_DATA) && fl > 3 &&
               strcmp(file + fl - 3, ".so") == 0;
    if (snprintf(full, sizeof full, "%s/%s", dir, file) >= (int)sizeof full ||
        (skip ? access(full, F_OK) : sha256_file(full, hex)) != 0) {
      snprintf(err, errlen, "modified after install: %.512s is missing", file);
      rc = -1;
      break;
    }
    if (!skip && strcmp(hex, line) != 0) {
      snprintf(err, errlen, "modified after install: %.512s", file);
      rc = -1;
      break;
    }
    if (l.n == cap) {
      cap = cap ? 2 * cap : 64;
      char **np = realloc(l.path, cap * sizeof *np);
      if (!np) {
        snprintf(err, errlen, "out of memory");
        rc = -1;
        break;
      }
      l.path = np;
    }
    l.path[l.n++] = file;
  }
  if (rc == 0) {
    if (l.n) qsort(l.path, l.n, sizeof *l.path, cmp_str);
    rc = walk_unlisted(dir, "", &l, err, errlen);
  }
  free(l.path);
  free(text);
  return rc;
}

/* ---- the catalogue ----------------------------------------------------- */

typedef struct cat_entry {
  char id[65], version[64];
  int state;
  char error[LOADER_ERR_MAX];
  const char *source;
  char signed_by[17], sha256[65], installed_at[32];
  char owner[64]; /* the installing platform; "" for the operator's */
} cat_entry;

static cat_entry *cat;
static size_t ncat;

void stacks_catalogue_reset(void) { ncat = 0; }

void stacks_catalogue_note(const nno_config *cfg, const char *root,
                           const char *dir, const char *id,
                           const char *version, const char *error) {
  if (!cat && !(cat = calloc(CATALOGUE_MAX, sizeof *cat))) return;
  if (ncat == CATALOGUE_MAX) return;
  cat_entry *e = &cat[ncat++];
  memset(e, 0, sizeof *e);
  snprintf(e->id, sizeof e->id, "%s", id);
  snprintf(e->version, sizeof e->version, "%s", version);
  e->state = error ? NNO_STACK_REFUSED : NNO_STACK_LOADED;
  snprintf(e->error, sizeof e->error, "%s", error ? error : "");
  char data_root[PATH_MAX];
  snprintf(data_root, sizeof data_root, "%s/stacks", cfg->data_dir);
  json_t *j = strcmp(root, data_root) == 0 ? read_install_json(dir) : NULL;
  if (j) {
    e->source = "installed";
    snprintf(e->sha256, sizeof e->sha256, "%s",
             json_string_value(json_object_get(j, "sha256")) ?: "");
    snprintf(e->signed_by, sizeof e->signed_by, "%s",
             json_string_value(json_object_get(j, "signed_by")) ?: "");
    snprintf(e->installed_at, sizeof e->installed_at, "%s",
             json_string_value(json_object_get(j, "installed_at")) ?: "");
    snprintf(e->owner, sizeof e->owner, "%s",
             json_string_value(json_object_get(j, "owner")) ?: "");
    json_decref(j);
  } else {
    e->source = cfg->builtin_stacks && strcmp(root, cfg->builtin_stack_dir) == 0
                    ? "builtin"
                    : "folder";
  }
}

static nno_str mkstr(const char *s) {
  nno_str v = {s, strlen(s)};
  return v;
}

int stacks_catalogue_at(size_t i, nno_stack_entry *out) {
  if (!out) return NNO_EINVAL;
  if (i >= ncat) return NNO_ENOENT;
  const cat_entry *e = &cat[i];
  out->id = mkstr(e->id);
  out->version = mkstr(e->version);
  out->state = e->state;
  out->error = mkstr(e->error);
  out->source = mkstr(e->source);
  out->signed_by = mkstr(e->signed_by);
  out->sha256 = mkstr(e->sha256);
  out->installed_at = mkstr(e->installed_at);
  return 0;
}

int stacks_owner(const char *id, const char *version, char *out, size_t cap) {
  if (!id || !version || !out || !cap) return NNO_EINVAL;
  for (size_t i = 0; i < ncat; i++)
    if (strcmp(cat[i].id, id) == 0 && strcmp(cat[i].version, version) == 0) {
      if (strlen(cat[i].owner) >= cap) return NNO_ETOOBIG;
      memcpy(out, cat[i].owner, strlen(cat[i].owner) + 1);
      return 0;
    }
  return NNO_ENOENT;
}

const char *stacks_why_missing(const char *id, size_t idlen,
                               const char *version) {
  for (size_t i = 0; i < ncat; i++)
    if (strlen(cat[i].id) == idlen && memcmp(cat[i].id, id, idlen) == 0 &&
        strcmp(cat[i].version, version) == 0)
      return cat[i].state == NNO_STACK_REFUSED ? cat[i].error
                                               : "it is being unloaded";
  return "it is not installed";
}

/* ---- the generation, polling, references -------------------------------- */

static _Atomic uint64_t *gen;
static uint64_t gen_seen;
static uv_timer_t poll_timer;
static uv_idle_t reap_idle;
static int started;

static void bump_generation(void) {
  _Atomic uint64_t *g = gen;
  if (g || metrics_counter(STACKS_GEN_COUNTER, 1, &g) == 0)
    atomic_fetch_add_explicit(g, 1, memory_order_acq_rel);
}

/* Unload the removed stacks nobody holds. From the loop, outside every
 * request callback. */
static void reap(uv_idle_t *h) {
  worker *w = h->data;
  uv_idle_stop(h);
  for (stack *st = w->plugins->stacks, *next; st; st = next) {
    next = st->next;
    if (st->removed && st->refs == 0) loader_stack_unload(w, st);
  }
}

static void reap_later(void) {
  if (started) uv_idle_start(&reap_idle, reap);
}

void stacks_ref(stack *st) {
  if (st) st->refs++;
}

void stacks_unref(stack *st) {
  if (!st || st->refs == 0) return;
  if (--st->refs == 0 && st->removed) reap_later();
}

static void stacks_changed(worker *w) {
  for (plugin *p = w->plugins->head; p; p = p->next) {
    const nno_plugin_desc *d = p->desc;
    if (d->size >= offsetof(nno_plugin_desc, on_stacks_changed) +
                       sizeof d->on_stacks_changed &&
        d->on_stacks_changed) {
      callctx cc;
      callctx_enter(p, NULL, &cc);
      d->on_stacks_changed((nno_plugin *)p);
      callctx_leave(&cc);
    }
  }
  reap_later();
}

static void sync_now(worker *w) {
  int rc = loader_sync_stacks(w);
  if (rc < 0) {
    log_error("out of memory rescanning the stack folders");
    return;
  }
  if (rc > 0) stacks_changed(w);
}

void stacks_poll(worker *w) {
  if (!gen && metrics_counter(STACKS_GEN_COUNTER, 0, &gen) != 0) return;
  uint64_t v = atomic_load_explicit(gen, memory_order_acquire);
  if (v == gen_seen) return;
  gen_seen = v;
  sync_now(w);
}

static void on_poll_timer(uv_timer_t *t) { stacks_poll(t->data); }

int stacks_start(worker *w) {
  if (metrics_counter(STACKS_GEN_COUNTER, 1, &gen) == 0)
    gen_seen = atomic_load_explicit(gen, memory_order_acquire);
  uv_timer_init(&w->loop, &poll_timer);
  poll_timer.data = w;
  uv_timer_start(&poll_timer, on_poll_timer, 1000, 1000);
  uv_unref((uv_handle_t *)&poll_timer);
  uv_idle_init(&w->loop, &reap_idle);
  reap_idle.data = w;
  uv_unref((uv_handle_t *)&reap_idle);
  started = 1;
  return 0;
}

void stacks_stop(worker *w) {
  (void)w;
  if (!started) return;
  started = 0;
  uv_close((uv_handle_t *)&poll_timer, NULL);
  uv_close((uv_handle_t *)&reap_idle, NULL);
}

/* ---- start-up ---------------------------------------------------------- */

void stacks_clean_staging(const char *data_dir) {
  static const char *const left[] = {".staging", ".trash"};
  for (size_t i = 0; i < 2; i++) {
    char p[PATH_MAX];
    struct stat st;
    if (snprintf(p, sizeof p, "%s/stacks/%s", data_dir, left[i]) >=
            (int)sizeof p ||
        lstat(p, &st) != 0 || !S_ISDIR(st.st_mode))
      continue;
    DIR *d = opendir(p);
    if (!d) continue;
    struct dirent *e;
    int n = 0;
    while ((e = readdir(d))) {
      if (strcmp(e->d_name, ".") == 0 || strcmp(e->d_name, "..") == 0)
        continue;
      char sub[PATH_MAX];
      if (snprintf(sub, sizeof sub, "%s/%s", p, e->d_name) >= (int)sizeof sub)
        continue;
      if (lstat(sub, &st) == 0 && S_ISDIR(st.st_mode))
        remove_tree(sub);
      else
        unlink(sub);
      n++;
    }
    closedir(d);
    if (n) log_info("removed %d interrupted stack %s under %s", n,
                    i == 0 ? "installs" : "removals", p);
  }
}

/* ---- removal ----------------------------------------------------------- */

int stacks_remove(worker *w, const char *id, const char *version, char *err,
                  size_t errlen) {
  if (!id || !version || !id_ok(id) || !version_ok(version)) {
    snprintf(err, errlen, "no installed stack version \"%s\" \"%s\"",
             id ? id : "", version ? version : "");
    return NNO_ENOENT;
  }
  const nno_config *cfg = w->cfg;
  char dir[PATH_MAX], trash[PATH_MAX], tmp[PATH_MAX];
  struct stat st;
  snprintf(dir, sizeof dir, "%s/stacks/%s/%s", cfg->data_dir, id, version);
  if (lstat(dir, &st) != 0 || !S_ISDIR(st.st_mode)) {
    /* Served from elsewhere (builtin, stacks_dirs)? */
    for (size_t i = 0; i < ncat; i++)
      if (strcmp(cat[i].id, id) == 0 && strcmp(cat[i].version, version) == 0) {
        snprintf(err, errlen,
                 "stack %s %s is not installed from an archive (it is a %s "
                 "stack): remove its folder instead", id, version,
                 cat[i].source);
        return NNO_EREFUSED;
      }
    snprintf(err, errlen, "stack %s %s is not installed", id, version);
    return NNO_ENOENT;
  }
  json_t *j = read_install_json(dir);
  if (!j) {
    snprintf(err, errlen,
             "stack %s %s was not installed from an archive: remove its "
             "folder instead", id, version);
    return NNO_EREFUSED;
  }
  json_decref(j);
  /* Out of sight at once (one rename), then removed at leisure. */
  snprintf(trash, sizeof trash, "%s/stacks/.trash", cfg->data_dir);
  if (mkdir(trash, 0700) != 0 && errno != EEXIST) goto io;
  unsigned char rnd[8];
  char hex[17];
  randombytes_buf(rnd, sizeof rnd);
  sodium_bin2hex(hex, sizeof hex, rnd, sizeof rnd);
  snprintf(tmp, sizeof tmp, "%s/%s", trash, hex);
  chmod(dir, 0700); /* moving a folder rewrites its ".." */
  if (rename(dir, tmp) != 0) {
    chmod(dir, 0555);
    goto io;
  }
  char parent[PATH_MAX];
  snprintf(parent, sizeof parent, "%s/stacks/%s", cfg->data_dir, id);
  fsync_path(parent);
  rmdir(parent); /* the last version of that id: fails otherwise */
  failpoint("remove:renamed");
  bump_generation();
  remove_tree(tmp);
  {
    logline l;
    log_begin(&l, NNO_LOG_INFO, "stack uninstalled");
    log_str(&l, "name", id);
    log_str(&l, "version", version);
    log_end(&l);
  }
  stacks_poll(w);
  return 0;
io:
  snprintf(err, errlen, "cannot remove %s: %s", dir, strerror(errno));
  return NNO_EIO;
}

/* ---- install ----------------------------------------------------------- */

typedef struct install_op {
  worker *w;
  nno_stack_install_fn done;
  void *ud;
  int in_fd; /* our own descriptor of the caller's archive, or -1 */
  char url[URL_MAX];
  char want_sha[65];
  char owner[64]; /* "" or the platform the stack id must belong to */
  long max_owned;  /* stacks.max_owned_versions, for an owned install */
  archive_limits lim;
  archive_keyring kr;
  int allow_private;
  long timeout_ms;
  char data[PATH_MAX];
  char staging_root[PATH_MAX];
  char stage[PATH_MAX];   /* the extracted folder */
  char fetched[PATH_MAX]; /* the downloaded file, "" when none */
  archive_info info;
  uint64_t size;
  /* the outcome */
  int status, http;
  char file[512], field[128], message[ARCHIVE_ERR_MAX];
  char *problems; /* JSON array text, or NULL: built from the above */
  /* the check */
  uv_process_t proc;
  uv_pipe_t out;
  uv_timer_t timer;
  char *out_buf;
  size_t out_len;
  int out_open, proc_open, timer_open, timed_out;
  int exited, out_closing, timer_closing;
  int64_t exit_status;
  int term_signal;
  uv_work_t work;
} install_op;

static void op_fail(install_op *op, int status, int http, const char *file,
                    const char *field, const char *fmt, ...)
    __attribute__((format(printf, 6, 7)));

static void op_fail(install_op *op, int status, int http, const char *file,
                    const char *field, const char *fmt, ...) {
  op->status = status;
  op->http = http;
  snprintf(op->file, sizeof op->file, "%s", file ? file : "");
  snprintf(op->field, sizeof op->field, "%s", field ? field : "");
  va_list ap;
  va_start(ap, fmt);
  vsnprintf(op->message, sizeof op->message, fmt, ap);
  va_end(ap);
}

/* -- fetching a URL (on the pool) -- */

/* Loopback, link-local, private, CGNAT, unique-local, multicast,
 * unspecified, reserved, documentation, benchmarking and broadcast
 * addresses -- and an IPv6 address carrying an IPv4 one (mapped,
 * compatible, SIIT, NAT64, 6to4) judged by the IPv4 address it carries,
 * since a translator on the path would deliver it there. */
static int addr4_private(uint32_t a) {
  return (a >> 24) == 0 || (a >> 24) == 10 || (a >> 24) == 127 ||
         (a >> 22) == (100u << 2 | 1) ||            /* 100.64/10 */
         (a >> 16) == (169u << 8 | 254) ||          /* 169.254/16 */
         (a >> 20) == (172u << 4 | 1) ||            /* 172.16/12 */
         (a >> 16) == (192u << 8 | 168) ||          /* 192.168/16 */
         (a >> 8) == (192u << 16 | 0 << 8 | 0) ||   /* 192.0.0/24 */
         (a >> 8) == (192u << 16 | 0 << 8 | 2) ||   /* 192.0.2/24 */
         (a >> 8) == (192u << 16 | 88u << 8 | 99) ||   /* 192.88.99/24 */
         (a >> 17) == (198u << 7 | 18 >> 1) ||      /* 198.18/15 */
         (a >> 8) == (198u << 16 | 51u << 8 | 100) || /* 198.51.100/24 */
         (a >> 8) == (203u << 16 | 0 << 8 | 113) ||  /* 203.0.113/24 */
         (a >> 28) >= 14;                           /* 224/4, 240/4 */
}

static uint32_t v4_at(const unsigned char *b) {
  return (uint32_t)b[0] << 24 | (uint32_t)b[1] << 16 | (uint32_t)b[2] << 8 |
         b[3];
}

static int all_zero(const unsigned char *b, size_t n) {
  for (size_t i = 0; i < n; i++)
    if (b[i]) return 0;
  return 1;
}

static int addr_private(const struct sockaddr *sa) {
  if (sa->sa_family == AF_INET)
    return addr4_private(
        ntohl(((const struct sockaddr_in *)sa)->sin_addr.s_addr));
  if (sa->sa_family != AF_INET6) return 1;
  const unsigned char *b =
      ((const struct sockaddr_in6 *)sa)->sin6_addr.s6_addr;
  /* ::/96 (compatible, with :: and ::1), ::ffff:0:0/96 (mapped),
   * ::ffff:0:0:0/96 (SIIT), 64:ff9b::/96 (NAT64): the last 32 bits. */
  if (all_zero(b, 10) && ((b[10] == 0 && b[11] == 0) ||
                          (b[10] == 0xff && b[11] == 0xff)))
    return addr4_private(v4_at(b + 12));
  if (all_zero(b, 8) && b[8] == 0xff && b[9] == 0xff && b[10] == 0 &&
      b[11] == 0)
    return addr4_private(v4_at(b + 12));
  if (b[0] == 0 && b[1] == 0x64 && b[2] == 0xff && b[3] == 0x9b)
    return all_zero(b + 4, 8) ? addr4_private(v4_at(b + 12))
                              : 1; /* 64:ff9b:1::/48, local NAT64 */
  if (b[0] == 0x20 && b[1] == 0x02) /* 2002::/16, 6to4 */
    return addr4_private(v4_at(b + 2));
  return b[0] == 0xff ||                                  /* multicast */
         (b[0] & 0xfe) == 0xfc ||                         /* fc00::/7 */
         (b[0] == 0xfe && (b[1] & 0x80) == 0x80) ||       /* fe80::/9 */
         (b[0] == 0x20 && b[1] == 0x01 && b[2] == 0 && b[3] == 0) ||
         /* 2001::/32, Teredo */
         (b[0] == 0x20 && b[1] == 0x01 && b[2] == 0x0d && b[3] == 0xb8) ||
         /* 2001:db8::/32, documentation */
         (b[0] == 0x01 && all_zero(b + 1, 7)) ||           /* 100::/64 */
         b[0] == 0;                                       /* ::/8 rest */
}

typedef struct fetch_ctx {
  install_op *op;
  int fd;
  uint64_t got;
  int too_big;
  char refused[INET6_ADDRSTRLEN + 8];
} fetch_ctx;

/* Every connection curl opens (each redirect hop too) is judged by the
 * address it goes to, after name resolution: no DNS trick gets past. */
static curl_socket_t open_socket(void *ud, curlsocktype purpose,
                                 struct curl_sockaddr *a) {
  fetch_ctx *fc = ud;
  (void)purpose;
  if (!fc->op->allow_private && addr_private(&a->addr)) {
    const void *raw = a->family == AF_INET
                          ? (const void *)&((struct sockaddr_in *)&a->addr)->sin_addr
                          : (const void *)&((struct sockaddr_in6 *)&a->addr)->sin6_addr;
    inet_ntop(a->family, raw, fc->refused, sizeof fc->refused);
    return CURL_SOCKET_BAD;
  }
  return socket(a->family, a->socktype | SOCK_CLOEXEC, a->protocol);
}

static size_t on_data(char *p, size_t size, size_t n, void *ud) {
  fetch_ctx *fc = ud;
  size_t len = size * n;
  if (fc->got + len > fc->op->lim.max_archive_bytes) {
    fc->too_big = 1;
    return 0;
  }
  for (size_t w = 0; w < len;) {
    ssize_t k = write(fc->fd, p + w, len - w);
    if (k < 0 && errno == EINTR) continue;
    if (k < 0) return 0;
    w += (size_t)k;
  }
  fc->got += len;
  return len;
}

/* Download op->url into a file under the staging folder: the open
 * descriptor, or -1 with the outcome set. */
static int fetch_url(install_op *op) {
  snprintf(op->fetched, sizeof op->fetched, "%s/fetch-XXXXXX",
           op->staging_root);
  int fd = mkostemp(op->fetched, O_CLOEXEC);
  if (fd < 0) {
    op->fetched[0] = '\0';
    op_fail(op, NNO_EIO, 500, "", "", "cannot create a file under %s: %s",
            op->staging_root, strerror(errno));
    return -1;
  }
  fetch_ctx fc = {.op = op, .fd = fd};
  char errbuf[CURL_ERROR_SIZE] = "";
  CURL *e = curl_easy_init();
  if (!e) {
    op_fail(op, NNO_ENOMEM, 500, "", "", "out of memory");
    close(fd);
    return -1;
  }
  curl_easy_setopt(e, CURLOPT_URL, op->url);
  curl_easy_setopt(e, CURLOPT_PROTOCOLS_STR, "http,https");
  curl_easy_setopt(e, CURLOPT_REDIR_PROTOCOLS_STR, "http,https");
  curl_easy_setopt(e, CURLOPT_FOLLOWLOCATION, 1L);
  curl_easy_setopt(e, CURLOPT_MAXREDIRS, 5L);
  curl_easy_setopt(e, CURLOPT_TIMEOUT_MS, op->timeout_ms);
  curl_easy_setopt(e, CURLOPT_NOSIGNAL, 1L);
  curl_easy_setopt(e, CURLOPT_PROXY, ""); /* judge the server, not a proxy */
  curl_easy_setopt(e, CURLOPT_MAXFILESIZE_LARGE,
                   (curl_off_t)op->lim.max_archive_bytes);
  curl_easy_setopt(e, CURLOPT_OPENSOCKETFUNCTION, open_socket);
  curl_easy_setopt(e, CURLOPT_OPENSOCKETDATA, &fc);
  curl_easy_setopt(e, CURLOPT_WRITEFUNCTION, on_data);
  curl_easy_setopt(e, CURLOPT_WRITEDATA, &fc);
  curl_easy_setopt(e, CURLOPT_ERRORBUFFER, errbuf);
  curl_easy_setopt(e, CURLOPT_USERAGENT, "nno/" NNO_VERSION);
  CURLcode rc = curl_easy_perform(e);
  long status = 0;
  curl_easy_getinfo(e, CURLINFO_RESPONSE_CODE, &status);
  curl_easy_cleanup(e);
  if (fc.too_big || rc == CURLE_FILESIZE_EXCEEDED) {
    op_fail(op, NNO_ETOOBIG, 413, "", "url",
            "the archive at the URL is larger than stacks.max_archive_bytes "
            "(%llu bytes)", (unsigned long long)op->lim.max_archive_bytes);
  } else if (fc.refused[0]) {
    op_fail(op, NNO_EREFUSED, 502, "", "url",
            "cannot fetch the URL: address %s is loopback, private or "
            "reserved (allow with stacks.fetch_allow_private)", fc.refused);
  } else if (rc != CURLE_OK) {
    op_fail(op, NNO_EIO, 502, "", "url", "cannot fetch the URL: %s",
            errbuf[0] ? errbuf : curl_easy_strerror(rc));
  } else if (status != 200) {
    op_fail(op, NNO_EIO, 502, "", "url",
            "cannot fetch the URL: the server answered %ld", status);
  } else {
    return fd;
  }
  close(fd);
  return -1;
}

/* -- ownership -- */

/* The owner recorded in an installed version's install record: "" for
 * the operator (also when the record names none, as before owners were
 * recorded), else the platform whose key installed it. Copies into
 * `out` (cap bytes); -1 when `dir` has no readable record. */
static int install_owner_of(const char *dir, char *out, size_t cap) {
  json_t *j = read_install_json(dir);
  if (!j) return -1;
  const char *o = json_string_value(json_object_get(j, "owner"));
  snprintf(out, cap, "%s", o ? o : "");
  json_decref(j);
  return 0;
}

/* An owned install adds a version only to an id whose installed versions
 * are all its owner's: 0 when so (or when the install is the operator's,
 * who installs anything), else -1 after op_fail (403). A version folder
 * without a readable record counts as the operator's. Runs on the pool,
 * reading the disk as it is then: called after extraction and again just
 * before the move into place. */
static int owner_conflict(install_op *op) {
  if (!op->owner[0]) return 0;
  char idir[PATH_MAX];
  if (snprintf(idir, sizeof idir, "%s/stacks/%s", op->data, op->info.id) >=
      (int)sizeof idir)
    return 0; /* no such folder can exist */
  DIR *d = opendir(idir);
  if (!d) {
    if (errno == ENOENT) return 0;
    op_fail(op, NNO_EIO, 500, "", "", "cannot read %s: %s", idir,
            strerror(errno));
    return -1;
  }
  int rc = 0, again = 0;
  long held = 0;
  struct dirent *de;
  while ((de = readdir(d)) != NULL) {
    if (de->d_name[0] == '.') continue;
    held++;
    if (strcmp(de->d_name, op->info.version) == 0) again = 1;
    char vdir[PATH_MAX], who[64] = "";
    if (snprintf(vdir, sizeof vdir, "%s/%s", idir, de->d_name) >=
        (int)sizeof vdir)
      continue;
    if (install_owner_of(vdir, who, sizeof who) != 0) who[0] = '\0';
    if (strcmp(who, op->owner) == 0) continue;
    op_fail(op, NNO_EREFUSED, 403, "stack.json", "id",
            "stack %s %s is installed by %s%s: a platform's key adds "
            "versions only to a stack id whose installed versions are all "
            "its own",
            op->info.id, de->d_name, who[0] ? "platform " : "the operator",
            who);
    rc = -1;
    break;
  }
  closedir(d);
  /* Bounded: every version is the owner's (above); a version already
   * there is answered as such (same bytes or not), never counted twice. */
  if (!rc && !again && op->max_owned > 0 && held >= op->max_owned) {
    op_fail(op, NNO_EREFUSED, 409, "stack.json", "version",
            "platform %s holds %ld installed versions of stack %s, at most "
            "%ld (stacks.max_owned_versions): remove one it no longer uses "
            "(DELETE /api/v1/stacks/%s/{version}) first",
            op->owner, held, op->info.id, op->max_owned, op->info.id);
    rc = -1;
  }
  return rc;
}

/* -- phase 1 (pool): fetch, digest, extract -- */

static void extract_work(uv_work_t *wk) {
  install_op *op = wk->data;
  char p[PATH_MAX];
  snprintf(p, sizeof p, "%s/stacks", op->data);
  if ((mkdir(p, 0755) != 0 && errno != EEXIST) ||
      (mkdir(op->staging_root, 0700) != 0 && errno != EEXIST)) {
    op_fail(op, NNO_EIO, 500, "", "", "cannot create %s: %s", op->staging_root,
            strerror(errno));
    return;
  }
  int fd = op->in_fd;
  if (op->url[0]) {
    fd = fetch_url(op);
    if (fd < 0) return;
  }
  struct stat st;
  if (fstat(fd, &st) != 0) {
    op_fail(op, NNO_EIO, 500, "", "", "cannot read the archive: %s",
            strerror(errno));
    goto done;
  }
  op->size = (uint64_t)st.st_size;
  if (op->size > op->lim.max_archive_bytes) {
    op_fail(op, NNO_ETOOBIG, 413, "", "",
            "the archive (%llu bytes) is larger than stacks.max_archive_bytes "
            "(%llu bytes)", (unsigned long long)op->size,
            (unsigned long long)op->lim.max_archive_bytes);
    goto done;
  }
  if (op->want_sha[0]) {
    char hex[65];
    if (lseek(fd, 0, SEEK_SET) != 0 || archive_sha256_fd(fd, hex) != 0) {
      op_fail(op, NNO_EIO, 500, "", "", "cannot read the archive: %s",
              strerror(errno));
      goto done;
    }
    if (sodium_compare((const unsigned char *)hex,
                       (const unsigned char *)op->want_sha, 64) != 0) {
      op_fail(op, NNO_EINVAL, 422, "", "sha256",
              "the archive's SHA-256 is %s, expected %s", hex, op->want_sha);
      goto done;
    }
  }
  snprintf(op->stage, sizeof op->stage, "%s/XXXXXX", op->staging_root);
  if (!mkdtemp(op->stage)) {
    op->stage[0] = '\0';
    op_fail(op, NNO_EIO, 500, "", "", "cannot create a staging folder: %s",
            strerror(errno));
    goto done;
  }
  archive_error ae;
  memset(&ae, 0, sizeof ae);
  if (lseek(fd, 0, SEEK_SET) != 0 ||
      archive_extract(fd, op->stage, &op->lim, &op->kr, &op->info, &ae) != 0) {
    op_fail(op, ae.http == 500 ? NNO_EIO : NNO_EREFUSED,
            ae.http ? ae.http : 422, ae.file, ae.kind, "%s",
            ae.message[0] ? ae.message : "the archive cannot be extracted");
    goto done;
  }
  if (!id_ok(op->info.id) || !version_ok(op->info.version)) {
    op_fail(op, NNO_EINVAL, 422, "stack.json", "id",
            "stack.json: id and version must name a folder (id of "
            "[a-z0-9-], semver version), got \"%s\" \"%s\"", op->info.id,
            op->info.version);
    goto done;
  }
  /* Exactly its own id: a prefix rule would let platform "abc" take
   * "abc-xyz", the own id of another platform. */
  if (op->owner[0] && strcmp(op->info.id, op->owner) != 0) {
    op_fail(op, NNO_EREFUSED, 403, "stack.json", "id",
            "a key of platform %s installs only the stack whose id is the "
            "platform's id, \"%s\"; this archive's id is \"%s\"",
            op->owner, op->owner, op->info.id);
    goto done;
  }
  if (owner_conflict(op)) goto done;
  failpoint("install:extracted");
done:
  if (fd != op->in_fd) close(fd);
}

/* -- phase 3 (pool): move into place -- */

static int same_install(install_op *op, const char *dir) {
  json_t *j = read_install_json(dir);
  const char *s = j ? json_string_value(json_object_get(j, "sha256")) : NULL;
  int same = s && strcmp(s, op->info.sha256) == 0;
  json_decref(j);
  return same;
}

/* The lock every worker takes, on the pool, around the last owner and
 * count check and the move into place (flock on DATA/stacks/.lock): two
 * uploads checked at once would both see room for one more version. Held
 * for a directory scan and a rename only. The descriptor, or -1 after
 * op_fail. */
static int place_lock(install_op *op) {
  char path[PATH_MAX];
  snprintf(path, sizeof path, "%s/stacks/.lock", op->data);
  int fd = open(path, O_RDWR | O_CREAT | O_CLOEXEC, 0600);
  if (fd < 0) {
    op_fail(op, NNO_EIO, 500, "", "", "cannot open %s: %s", path,
            strerror(errno));
    return -1;
  }
  while (flock(fd, LOCK_EX) != 0) {
    if (errno == EINTR) continue;
    op_fail(op, NNO_EIO, 500, "", "", "cannot lock %s: %s", path,
            strerror(errno));
    close(fd);
    return -1;
  }
  return fd;
}

static void place_work(uv_work_t *wk) {
  install_op *op = wk->data;
  char idir[PATH_MAX], final[PATH_MAX];
  snprintf(idir, sizeof idir, "%s/stacks/%s", op->data, op->info.id);
  snprintf(final, sizeof final, "%s/%s", idir, op->info.version);
  struct stat st;
  if (lstat(final, &st) == 0) goto exists;
  {
    char path[PATH_MAX], now[32];
    time_t t = time(NULL);
    struct tm tm;
    gmtime_r(&t, &tm);
    strftime(now, sizeof now, "%Y-%m-%dT%H:%M:%SZ", &tm);
    json_t *j = json_pack("{s:s, s:s, s:s, s:I, s:s}", "sha256",
                          op->info.sha256, "signed_by", op->info.signed_by,
                          "installed_at", now, "size", (json_int_t)op->size,
                          "owner", op->owner);
    snprintf(path, sizeof path, "%s/%s", op->stage, STACKS_INSTALL_FILE);
    int rc = j ? json_dump_file(j, path, JSON_COMPACT | JSON_SORT_KEYS) : -1;
    json_decref(j);
    if (rc != 0) {
      op_fail(op, NNO_EIO, 500, "", "", "cannot write %s", path);
      return;
    }
  }
  failpoint("install:recorded");
  if (seal_tree(op->stage, 1) != 0) {
    op_fail(op, NNO_EIO, 500, "", "", "cannot seal %s: %s", op->stage,
            strerror(errno));
    return;
  }
  failpoint("install:sealed");
  if (mkdir(idir, 0755) != 0 && errno != EEXIST) {
    op_fail(op, NNO_EIO, 500, "", "", "cannot create %s: %s", idir,
            strerror(errno));
    return;
  }
  /* Checked and moved in one step for every worker: the operator may have
   * placed a version of this id while the archive was checked, and
   * another upload of the same owner may be about to take the last room. */
  int lk = place_lock(op);
  if (lk < 0) return;
  if (owner_conflict(op)) {
    close(lk);
    return;
  }
  if (rename(op->stage, final) != 0) {
    int e = errno;
    close(lk);
    if (e == EEXIST || e == ENOTEMPTY) goto exists;
    op_fail(op, NNO_EIO, 500, "", "", "cannot move the stack into %s: %s",
            final, strerror(e));
    return;
  }
  close(lk); /* releases the lock */
  op->stage[0] = '\0'; /* in place: nothing to remove */
  failpoint("install:renamed");
  chmod(final, 0555);
  char top[PATH_MAX];
  snprintf(top, sizeof top, "%s/stacks", op->data);
  if (fsync_path(idir) != 0 || fsync_path(top) != 0) {
    op_fail(op, NNO_EIO, 500, "", "", "cannot sync %s: %s", idir,
            strerror(errno));
    return;
  }
  failpoint("install:synced");
  op->status = 0;
  op->http = 201;
  return;
exists:
  /* Installed already (or by another worker at the same moment): the same
   * archive is a success, another one a conflict. */
  if (same_install(op, final)) {
    op->status = 0;
    op->http = 200;
  } else {
    op_fail(op, NNO_EEXIST, 409, "", "version",
            "stack %s %s is already installed from another archive; remove "
            "it first or give the new one another version", op->info.id,
            op->info.version);
  }
}

/* -- finishing (loop) -- */

/* Nothing of a failed (or lost) install stays: before the answer. */
static void op_clean(install_op *op) {
  if (op->stage[0]) remove_tree(op->stage);
  op->stage[0] = '\0';
  if (op->fetched[0]) unlink(op->fetched);
  op->fetched[0] = '\0';
}

static void op_free(install_op *op) {
  op_clean(op);
  if (op->in_fd >= 0) close(op->in_fd);
  free(op->out_buf);
  free(op->problems);
  free(op);
}

static void finish(install_op *op) {
  if (op->out_open || op->proc_open || op->timer_open) return;
  if (op->status == 0 && op->http == 201) {
    bump_generation();
    logline l;
    log_begin(&l, NNO_LOG_INFO, "stack installed");
    log_str(&l, "name", op->info.id);
    log_str(&l, "version", op->info.version);
    log_str(&l, "sha256", op->info.sha256);
    log_str(&l, "signed_by", op->info.signed_by);
    log_end(&l);
  }
  op_clean(op);
  /* This worker serves it before answering. */
  stacks_poll(op->w);
  if (!op->problems) {
    json_t *a = json_array();
    if (op->status != 0)
      json_array_append_new(a, json_pack("{s:s, s:s, s:s}", "file", op->file,
                                         "field", op->field, "message",
                                         op->message));
    op->problems = json_dumps(a, JSON_COMPACT);
    json_decref(a);
  }
  nno_stack_install_result res = {
      .status = op->status,
      .http = op->http,
      .id = op->info.id,
      .version = op->info.version,
      .sha256 = op->info.sha256,
      .signed_by = op->info.signed_by,
      .file = op->file,
      .field = op->field,
      .message = op->message,
      .problems_json = op->problems ? op->problems : "[]",
  };
  op->done(&res, op->ud);
  op_free(op);
}

static void after_place(uv_work_t *wk, int status) {
  install_op *op = wk->data;
  if (status != 0 && op->http == 0)
    op_fail(op, NNO_EIO, 500, "", "", "the install was cancelled");
  finish(op);
}

static void place(install_op *op) {
  op->work.data = op;
  int rc = uv_queue_work(&op->w->loop, &op->work, place_work, after_place);
  if (rc) {
    op_fail(op, NNO_EIO, 500, "", "", "cannot queue the install: %s",
            uv_strerror(rc));
    finish(op);
  }
}

/* -- phase 2 (loop): the check, `nno stack check --json DIR` -- */

static void check_closed(uv_handle_t *h) {
  install_op *op = h->data;
  if (h == (uv_handle_t *)&op->out) op->out_open = 0;
  else if (h == (uv_handle_t *)&op->proc) op->proc_open = 0;
  else op->timer_open = 0;
  if (op->out_open || op->proc_open || op->timer_open) return;
  if (op->http) { /* failed before it could run */
    finish(op);
    return;
  }
  /* Judge what the check said. */
  if (op->timed_out) {
    op_fail(op, NNO_ETIMEDOUT, 422, "", "",
            "the check of stack %s %s did not finish within "
            "stacks.check_timeout_ms", op->info.id, op->info.version);
    finish(op);
    return;
  }
  json_t *rep = op->out_len ? json_loadb(op->out_buf, op->out_len, 0, NULL)
                            : NULL;
  json_t *probs = json_object_get(rep, "problems");
  if (op->term_signal == 0 && op->exit_status == 0 &&
      json_is_true(json_object_get(rep, "ok"))) {
    json_decref(rep);
    failpoint("install:checked");
    place(op);
    return;
  }
  if (op->term_signal == 0 && op->exit_status == 1 && json_is_array(probs) &&
      json_array_size(probs) > 0) {
    json_t *p0 = json_array_get(probs, 0);
    op_fail(op, NNO_EREFUSED, 422,
            json_string_value(json_object_get(p0, "file")) ?: "",
            json_string_value(json_object_get(p0, "field")) ?: "", "%s",
            json_string_value(json_object_get(p0, "message")) ?: "refused");
    /* Paths relative to the archive, not the staging folder. */
    size_t sl = strlen(op->stage);
    size_t i;
    json_t *p;
    json_array_foreach(probs, i, p) {
      const char *f = json_string_value(json_object_get(p, "file"));
      if (f && strncmp(f, op->stage, sl) == 0 && f[sl] == '/')
        json_object_set_new(p, "file", json_string(f + sl + 1));
    }
    if (strncmp(op->file, op->stage, sl) == 0 && op->file[sl] == '/')
      memmove(op->file, op->file + sl + 1, strlen(op->file + sl + 1) + 1);
    op->problems = json_dumps(probs, JSON_COMPACT);
  } else {
    op_fail(op, NNO_EIO, 500, "", "",
            "the check of stack %s %s could not run (exit %lld, signal %d)",
            op->info.id, op->info.version, (long long)op->exit_status,
            op->term_signal);
  }
  json_decref(rep);
  finish(op);
}

static void close_timer(install_op *op) {
  if (!op->timer_open || op->timer_closing) return;
  op->timer_closing = 1;
  uv_timer_stop(&op->timer);
  uv_close((uv_handle_t *)&op->timer, check_closed);
}

static void close_out(install_op *op) {
  if (!op->out_open || op->out_closing) return;
  op->out_closing = 1;
  uv_close((uv_handle_t *)&op->out, check_closed);
}

static void check_timeout(uv_timer_t *t) {
  install_op *op = t->data;
  if (!op->exited) { /* the check itself hangs */
    op->timed_out = 1;
    uv_process_kill(&op->proc, SIGKILL);
    return;
  }
  /* Exited, but something it started still holds its output open. */
  close_out(op);
  close_timer(op);
}

static void check_exit(uv_process_t *p, int64_t status, int sig) {
  install_op *op = p->data;
  op->exit_status = status;
  op->term_signal = sig;
  op->exited = 1;
  uv_close((uv_handle_t *)&op->proc, check_closed);
  /* Its output may still be on its way: read it, a little while. */
  if (op->out_open && !op->out_closing)
    uv_timer_start(&op->timer, check_timeout, 2000, 0);
  else
    close_timer(op);
}

static void out_alloc(uv_handle_t *h, size_t hint, uv_buf_t *b) {
  (void)h;
  (void)hint;
  static char slab[16 * 1024];
  b->base = slab;
  b->len = sizeof slab;
}

static void out_read(uv_stream_t *s, ssize_t n, const uv_buf_t *b) {
  install_op *op = s->data;
  if (n > 0) {
    if (op->out_len + (size_t)n <= CHECK_OUT_MAX) {
      char *nb = realloc(op->out_buf, op->out_len + (size_t)n + 1);
      if (nb) {
        memcpy(nb + op->out_len, b->base, (size_t)n);
        op->out_buf = nb;
        op->out_len += (size_t)n;
      }
    }
    return;
  }
  if (n < 0) {
    close_out(op);
    if (op->exited) close_timer(op);
  }
}

/* The worker's configuration, whole (config_to_json), in a memfd the
 * check reads as its --config: it decides isolation, limits and timeouts
 * as a worker loading the stack would, however the host was configured
 * (file, NNO_* variables, --set). -1 when it cannot be made. */
static int config_fd(const nno_config *cfg) {
  char *js = config_to_json(cfg);
  int fd = js ? memfd_create("nno-config", MFD_CLOEXEC) : -1;
  size_t len = js ? strlen(js) : 0, off = 0;
  while (fd >= 0 && off < len) {
    ssize_t k = write(fd, js + off, len - off);
    if (k < 0 && errno == EINTR) continue;
    if (k <= 0) break;
    off += (size_t)k;
  }
  free(js);
  if (fd >= 0 && (off != len || lseek(fd, 0, SEEK_SET) != 0)) {
    close(fd);
    fd = -1;
  }
  return fd;
}

static void check_start(install_op *op) {
  char exe[PATH_MAX];
  ssize_t n = readlink("/proc/self/exe", exe, sizeof exe - 1);
  if (n <= 0) {
    op_fail(op, NNO_EIO, 500, "", "", "cannot find the nno executable");
    finish(op);
    return;
  }
  exe[n] = '\0';
  const nno_config *cfg = op->w->cfg;
  int cfd = config_fd(cfg);
  if (cfd < 0) {
    op_fail(op, NNO_EIO, 500, "", "",
            "cannot give the check the host's configuration");
    finish(op);
    return;
  }
  /* Nothing but PATH from the environment: the configuration is all in
   * the file (an NNO_* variable would override it). */
  char e_path[PATH_MAX + 8];
  const char *path = getenv("PATH");
  snprintf(e_path, sizeof e_path, "PATH=%s", path ? path : "/usr/bin:/bin");
  char *env[] = {e_path, NULL};
  char *args[] = {exe,        "stack",           "check",   "--json",
                  "--config", "/proc/self/fd/0", op->stage, NULL};
  uv_pipe_init(&op->w->loop, &op->out, 0);
  op->out.data = op;
  op->out_open = 1;
  uv_stdio_container_t io[3];
  io[0].flags = UV_INHERIT_FD;
  io[0].data.fd = cfd;
  io[1].flags = UV_CREATE_PIPE | UV_WRITABLE_PIPE;
  io[1].data.stream = (uv_stream_t *)&op->out;
  io[2].flags = UV_INHERIT_FD; /* the check's own messages go to our log */
  io[2].data.fd = 2;
  uv_process_options_t o;
  memset(&o, 0, sizeof o);
  o.file = exe;
  o.args = args;
  o.env = env;
  o.exit_cb = check_exit;
  o.stdio = io;
  o.stdio_count = 3;
  o.flags = UV_PROCESS_WINDOWS_HIDE;
  op->proc.data = op;
  int rc = uv_spawn(&op->w->loop, &op->proc, &o);
  close(cfd); /* the check holds its own copy */
  if (rc) {
    op_fail(op, NNO_EIO, 500, "", "", "cannot run the check: %s",
            uv_strerror(rc));
    /* Both handles are closed before the install is finished. */
    op->proc_open = 1;
    uv_close((uv_handle_t *)&op->proc, check_closed);
    close_out(op);
    return;
  }
  op->proc_open = 1;
  uv_read_start((uv_stream_t *)&op->out, out_alloc, out_read);
  /* The check bounds its own children; this bounds the check. */
  uv_timer_init(&op->w->loop, &op->timer);
  op->timer.data = op;
  op->timer_open = 1;
  uv_timer_start(&op->timer, check_timeout,
                 (uint64_t)cfg->stack_check_timeout_ms + 5000, 0);
}

static void after_extract(uv_work_t *wk, int status) {
  install_op *op = wk->data;
  if (status != 0 && op->http == 0)
    op_fail(op, NNO_EIO, 500, "", "", "the install was cancelled");
  /* A stack of that id served from a folder the operator configured
   * (builtin, stacks_dirs) is the operator's too. */
  for (size_t i = 0; op->http == 0 && op->owner[0] && i < ncat; i++)
    if (strcmp(cat[i].id, op->info.id) == 0 &&
        strcmp(cat[i].source, "installed") != 0)
      op_fail(op, NNO_EREFUSED, 403, "stack.json", "id",
              "stack %s %s is the operator's (a %s stack): a platform's key "
              "adds versions only to a stack id whose versions are all its "
              "own", cat[i].id, cat[i].version, cat[i].source);
  if (op->http != 0) {
    finish(op);
    return;
  }
  check_start(op);
}

int stacks_install(worker *w, const nno_stack_install *in,
                   nno_stack_install_fn done, void *ud) {
  return stacks_install_owned(w, in, NULL, done, ud);
}

int stacks_install_owned(worker *w, const nno_stack_install *in,
                         const char *owner, nno_stack_install_fn done,
                         void *ud) {
  if (owner && (!*owner || strlen(owner) >= 64)) return NNO_EINVAL;
  if (!in || !done || (in->fd < 0) == (in->url == NULL)) return NNO_EINVAL;
  if (in->url && (strlen(in->url) >= URL_MAX ||
                  (strncmp(in->url, "http://", 7) != 0 &&
                   strncmp(in->url, "https://", 8) != 0)))
    return NNO_EINVAL;
  if (in->sha256) {
    size_t n = strlen(in->sha256);
    if (n != 64) return NNO_EINVAL;
    for (size_t i = 0; i < n; i++)
      if (!((in->sha256[i] >= '0' && in->sha256[i] <= '9') ||
            (in->sha256[i] >= 'a' && in->sha256[i] <= 'f')))
        return NNO_EINVAL;
  }
  install_op *op = calloc(1, sizeof *op);
  if (!op) return NNO_ENOMEM;
  op->w = w;
  op->done = done;
  op->ud = ud;
  op->in_fd = -1;
  const nno_config *cfg = w->cfg;
  char err[ARCHIVE_ERR_MAX];
  if (archive_keyring_load(cfg->trusted_keys, &op->kr, err, sizeof err) != 0) {
    log_error("stack install: %s", err);
    free(op);
    return NNO_EIO;
  }
  archive_limits_from_config(cfg, &op->lim);
  op->allow_private = cfg->stack_fetch_allow_private;
  op->timeout_ms = (long)cfg->stack_fetch_timeout_ms;
  snprintf(op->data, sizeof op->data, "%s", cfg->data_dir);
  snprintf(op->staging_root, sizeof op->staging_root, "%s/stacks/.staging",
           cfg->data_dir);
  if (owner) snprintf(op->owner, sizeof op->owner, "%s", owner);
  op->max_owned = (long)cfg->stack_max_owned_versions;
  if (in->url) snprintf(op->url, sizeof op->url, "%s", in->url);
  if (in->sha256) snprintf(op->want_sha, sizeof op->want_sha, "%s", in->sha256);
  if (in->fd >= 0) {
    /* Our own open file, with its own offset, that outlives the caller's
     * (a response may end before a refusal is written). */
    char p[64];
    snprintf(p, sizeof p, "/proc/self/fd/%d", in->fd);
    op->in_fd = open(p, O_RDONLY | O_CLOEXEC);
    if (op->in_fd < 0) {
      free(op);
      return NNO_EINVAL;
    }
  }
  op->work.data = op;
  int rc = uv_queue_work(&w->loop, &op->work, extract_work, after_extract);
  if (rc) {
    if (op->in_fd >= 0) close(op->in_fd);
    free(op);
    return NNO_EIO;
  }
  return 0;
}
