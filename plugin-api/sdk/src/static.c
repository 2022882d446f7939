/* Static files (see nno/sdk/static.h): checked paths, a small cache
 * revalidated by fstat, ETag and 304. */
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <nno/sdk/problem.h>
#include <nno/sdk/static.h>

#include "internal.h"

/* The cache's bounds: entries and bytes held. Past either, the least
 * recently used entries go. */
#define CACHE_ENTRIES 128
#define CACHE_BYTES ((size_t)32 << 20)

int nno_static_path_ok(const char *rel, size_t len) {
  size_t segments = 0, seg_len = 0;
  if (!rel || len == 0 || len > NNO_STATIC_PATH_MAX) return 0;
  for (size_t i = 0; i <= len; i++) {
    if (i == len || rel[i] == '/') {
      if (seg_len == 0) return 0; /* empty: leading, trailing or "//" */
      if (++segments > NNO_STATIC_SEGMENTS_MAX) return 0;
      seg_len = 0;
      continue;
    }
    char c = rel[i];
    if (seg_len == 0 && c == '.') return 0; /* ".", "..", dot-files */
    if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') ||
          (c >= '0' && c <= '9') || c == '.' || c == '_' || c == '-'))
      return 0;
    seg_len++;
  }
  return 1;
}

const char *nno_static_type(const char *name, size_t len) {
  static const struct {
    const char *ext, *type;
  } types[] = {
      {"html", "text/html; charset=utf-8"},
      {"js", "text/javascript; charset=utf-8"},
      {"mjs", "text/javascript; charset=utf-8"},
      {"css", "text/css; charset=utf-8"},
      {"svg", "image/svg+xml"},
      {"png", "image/png"},
      {"jpg", "image/jpeg"},
      {"jpeg", "image/jpeg"},
      {"gif", "image/gif"},
      {"webp", "image/webp"},
      {"ico", "image/x-icon"},
      {"json", "application/json"},
      {"woff2", "font/woff2"},
      {"txt", "text/plain; charset=utf-8"},
      {"map", "application/json"},
  };
  size_t dot = len;
  while (dot > 0 && name[dot - 1] != '.' && name[dot - 1] != '/') dot--;
  if (dot > 0 && name[dot - 1] == '.') {
    const char *ext = name + dot;
    size_t n = len - dot;
    for (size_t i = 0; i < sizeof types / sizeof *types; i++)
      if (strlen(types[i].ext) == n && strncasecmp(ext, types[i].ext, n) == 0)
        return types[i].type;
  }
  return "application/octet-stream";
}

void nno_static_etag(const void *data, size_t len, char *out, size_t cap) {
  /* FNV-1a, 64 bits, and the length: a strong validator for files this
   * small (not a secret, nothing to forge). */
  const unsigned char *p = data;
  uint64_t h = 0xcbf29ce484222325ull;
  for (size_t i = 0; i < len; i++) {
    h ^= p[i];
    h *= 0x100000001b3ull;
  }
  snprintf(out, cap, "\"%016llx-%llx\"", (unsigned long long)h,
           (unsigned long long)len);
}

/* ---- the cache ----------------------------------------------------------- */

typedef struct entry {
  char *path; /* resolved, absolute; NULL for a free slot */
  dev_t dev;
  ino_t ino;
  off_t size;
  struct timespec mtime, ctime;
  char *data;
  size_t len;
  char etag[NNO_STATIC_ETAG_MAX];
  uint64_t used; /* the clock at its last use */
} entry;

static entry cache[CACHE_ENTRIES];
static size_t cache_bytes;
static uint64_t cache_clock;

static void entry_drop(entry *e) {
  if (!e->path) return;
  cache_bytes -= e->len;
  free(e->path);
  free(e->data);
  memset(e, 0, sizeof *e);
}

void nno_static_cache_clear(void) {
  for (size_t i = 0; i < CACHE_ENTRIES; i++) entry_drop(&cache[i]);
  cache_bytes = 0;
}

static int same_file(const entry *e, const struct stat *st) {
  return e->dev == st->st_dev && e->ino == st->st_ino &&
         e->size == st->st_size && e->mtime.tv_sec == st->st_mtim.tv_sec &&
         e->mtime.tv_nsec == st->st_mtim.tv_nsec &&
         e->ctime.tv_sec == st->st_ctim.tv_sec &&
         e->ctime.tv_nsec == st->st_ctim.tv_nsec;
}

/* A slot for `need` more bytes: least recently used entries dropped until
 * both bounds hold. */
static entry *slot_for(size_t need) {
  for (;;) {
    entry *free_slot = NULL, *oldest = NULL;
    for (size_t i = 0; i < CACHE_ENTRIES; i++) {
      entry *e = &cache[i];
      if (!e->path) {
        if (!free_slot) free_slot = e;
      } else if (!oldest || e->used < oldest->used) {
        oldest = e;
      }
    }
    if (free_slot && cache_bytes + need <= CACHE_BYTES) return free_slot;
    if (!oldest) return free_slot;
    entry_drop(oldest);
  }
}

/* Read all of fd (st_size bytes expected) into a new buffer. */
static int read_all(int fd, size_t size, char **out) {
  char *buf = malloc(size ? size : 1);
  size_t got = 0;
  if (!buf) return NNO_ENOMEM;
  while (got < size) {
    ssize_t n = read(fd, buf + got, size - got);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) {
      free(buf);
      return NNO_EIO; /* an error, or the file shrank under us */
    }
    got += (size_t)n;
  }
  *out = buf;
  return 0;
}

int nno_static_open(const char *root, const char *rel, size_t rel_len,
                    nno_static_file *out) {
  char joined[PATH_MAX], rroot[PATH_MAX], rfile[PATH_MAX];
  struct stat st;
  int fd = -1, rc;
  if (!root || !out) return NNO_EINVAL;
  if (!nno_static_path_ok(rel, rel_len)) return NNO_EINVAL;
  if (snprintf(joined, sizeof joined, "%s/%.*s", root, (int)rel_len, rel) >=
      (int)sizeof joined)
    return NNO_ENOENT;
  /* Containment: what the path resolves to lies under the folder itself
   * (a link anywhere on the way to outside it does not count). */
  if (!realpath(root, rroot) || !realpath(joined, rfile)) return NNO_ENOENT;
  size_t rl = strlen(rroot);
  if (strncmp(rfile, rroot, rl) != 0 || (rl > 1 && rfile[rl] != '/'))
    return NNO_ENOENT;
  /* The path as given, not as resolved: a link as the file itself is
   * refused, even one pointing inside the folder. */
  fd = open(joined, O_RDONLY | O_NOFOLLOW | O_CLOEXEC | O_NONBLOCK);
  if (fd < 0) return errno == ENOMEM ? NNO_ENOMEM : NNO_ENOENT;
  if (fstat(fd, &st) != 0) {
    rc = NNO_EIO;
    goto done;
  }
  if (!S_ISREG(st.st_mode)) {
    rc = NNO_ENOENT;
    goto done;
  }
  if (st.st_size < 0 || (uint64_t)st.st_size > NNO_STATIC_FILE_MAX) {
    rc = NNO_ETOOBIG;
    goto done;
  }
  entry *e = NULL;
  for (size_t i = 0; i < CACHE_ENTRIES; i++)
    if (cache[i].path && strcmp(cache[i].path, rfile) == 0) {
      e = &cache[i];
      break;
    }
  if (e && !same_file(e, &st)) {
    entry_drop(e);
    e = NULL;
  }
  if (!e) {
    char *data = NULL, *path = strdup(rfile);
    size_t size = (size_t)st.st_size;
    if (!path) {
      rc = NNO_ENOMEM;
      goto done;
    }
    rc = read_all(fd, size, &data);
    if (rc) {
      free(path);
      goto done;
    }
    e = slot_for(size);
    if (!e) { /* cannot happen: dropping everything frees a slot */
      free(path);
      free(data);
      rc = NNO_ENOMEM;
      goto done;
    }
    e->path = path;
    e->dev = st.st_dev;
    e->ino = st.st_ino;
    e->size = st.st_size;
    e->mtime = st.st_mtim;
    e->ctime = st.st_ctim;
    e->data = data;
    e->len = size;
    nno_static_etag(data, size, e->etag, sizeof e->etag);
    cache_bytes += size;
  }
  e->used = ++cache_clock;
  out->data = e->data;
  out->len = e->len;
  out->type = nno_static_type(rel, rel_len);
  memcpy(out->etag, e->etag, sizeof out->etag);
  rc = 0;
done:
  close(fd);
  return rc;
}

/* ---- answers ------------------------------------------------------------- */

int nno_static_not_modified(nno_req *req, const char *etag) {
  const nno_host_api *api = nno__sdk_api;
  nno_str v;
  size_t el;
  if (!etag || api->req_header(req, "If-None-Match", &v) != NNO_OK) return 0;
  el = strlen(etag);
  const char *p = v.ptr, *end = v.ptr + v.len;
  while (p < end) {
    while (p < end && (*p == ' ' || *p == '\t' || *p == ',')) p++;
    const char *q = p;
    while (q < end && *q != ',') q++;
    const char *t = q;
    while (t > p && (t[-1] == ' ' || t[-1] == '\t')) t--;
    if (t - p == 1 && *p == '*') return 1;
    if (t - p >= 2 && p[0] == 'W' && p[1] == '/') p += 2;
    if ((size_t)(t - p) == el && memcmp(p, etag, el) == 0) return 1;
    p = q;
  }
  return 0;
}

int nno_static_answer(nno_req *req, const char *type, const void *body,
                      size_t len, const char *etag, const char *cache_control) {
  const nno_host_api *api = nno__sdk_api;
  int not_modified = nno_static_not_modified(req, etag);
  api->res_status(req, not_modified ? 304 : 200);
  if (etag) api->res_header(req, "ETag", etag);
  if (cache_control) api->res_header(req, "Cache-Control", cache_control);
  api->res_header(req, "X-Content-Type-Options", "nosniff");
  if (not_modified) return NNO_OK;
  api->res_header(req, "Content-Type",
                  type ? type : "application/octet-stream");
  if (len && api->res_write(req, body, len) != NNO_OK)
    return nno_problem(req, 500, NULL, "the file could not be sent");
  return NNO_OK;
}

int nno_static_serve(nno_req *req, const char *root, const char *rel,
                     size_t rel_len, const char *cache_control) {
  nno_static_file f;
  int rc = nno_static_open(root, rel, rel_len, &f);
  switch (rc) {
  case 0:
    return nno_static_answer(req, f.type, f.data, f.len, f.etag, cache_control);
  case NNO_EINVAL:
  case NNO_ENOENT:
  case NNO_ETOOBIG: /* never served: as if absent */
    return nno_problem(req, 404, NULL, "no such file");
  default:
    nno__sdk_api->log(nno__sdk_plugin, NNO_LOG_ERROR, "static file %.*s: %s",
                      (int)rel_len, rel, nno__sdk_api->strerror(rc));
    return nno_problem(req, 500, NULL, "the file could not be read");
  }
}
