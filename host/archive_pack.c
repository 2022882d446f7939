/* Stack archives written: pack a stack folder into a reproducible
 * .tar.gz and sign one (format in stack_archive.h). */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <archive.h>
#include <archive_entry.h>
#include <sodium.h>

#include "archive_internal.h"
#include "config.h"
#include "manifest.h"

#define IOBUF (64 * 1024)

/* -- small file helpers --------------------------------------------------- */

int arc_write_all(int fd, const void *buf, size_t n) {
  const char *p = buf;
  while (n) {
    ssize_t w = write(fd, p, n);
    if (w < 0) {
      if (errno == EINTR) continue;
      return -1;
    }
    p += w;
    n -= (size_t)w;
  }
  return 0;
}

int arc_read_file(int dirfd, const char *path, size_t max, char **out,
                  size_t *len) {
  *out = NULL;
  *len = 0;
  int fd = openat(dirfd, path, O_RDONLY | O_NOFOLLOW | O_CLOEXEC);
  if (fd < 0) return -1;
  struct stat st;
  if (fstat(fd, &st) != 0) goto fail;
  if (!S_ISREG(st.st_mode)) {
    errno = EINVAL;
    goto fail;
  }
  if ((uint64_t)st.st_size > max) {
    errno = EFBIG;
    goto fail;
  }
  size_t cap = (size_t)st.st_size + 1, n = 0;
  char *buf = malloc(cap);
  if (!buf) goto fail;
  for (;;) {
    if (n == cap - 1) break; /* a file growing under us is cut at its size */
    ssize_t r = read(fd, buf + n, cap - 1 - n);
    if (r < 0 && errno == EINTR) continue;
    if (r < 0) {
      free(buf);
      goto fail;
    }
    if (r == 0) break;
    n += (size_t)r;
  }
  buf[n] = '\0';
  close(fd);
  *out = buf;
  *len = n;
  return 0;
fail:;
  int saved = errno;
  close(fd);
  errno = saved;
  return -1;
}

int arc_tmp_beside(const char *final, char *tmp, size_t tmplen) {
  if (snprintf(tmp, tmplen, "%s.XXXXXX", final) >= (int)tmplen) {
    errno = ENAMETOOLONG;
    return -1;
  }
  int fd = mkostemp(tmp, O_CLOEXEC);
  if (fd < 0) return -1;
  if (fchmod(fd, 0644) != 0) {
    int saved = errno;
    close(fd);
    unlink(tmp);
    errno = saved;
    return -1;
  }
  return fd;
}

int arc_commit(int fd, const char *tmp, const char *final) {
  int saved;
  if (fsync(fd) != 0) {
    saved = errno;
    close(fd);
    goto fail;
  }
  if (close(fd) != 0 || rename(tmp, final) != 0) {
    saved = errno;
    goto fail;
  }
  /* The rename itself made durable: fsync the folder (best effort). */
  char dir[PATH_MAX];
  snprintf(dir, sizeof dir, "%s", final);
  char *slash = strrchr(dir, '/');
  if (slash == dir)
    dir[1] = '\0';
  else if (slash)
    *slash = '\0';
  else
    snprintf(dir, sizeof dir, ".");
  int dfd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  if (dfd >= 0) {
    (void)fsync(dfd);
    close(dfd);
  }
  return 0;
fail:
  unlink(tmp);
  errno = saved;
  return -1;
}

int archive_sha256_fd(int fd, char hex[65]) {
  crypto_hash_sha256_state st;
  unsigned char buf[IOBUF], h[crypto_hash_sha256_BYTES];
  if (sodium_init() < 0) return -1;
  crypto_hash_sha256_init(&st);
  for (;;) {
    ssize_t r = read(fd, buf, sizeof buf);
    if (r < 0 && errno == EINTR) continue;
    if (r < 0) return -1;
    if (r == 0) break;
    crypto_hash_sha256_update(&st, buf, (size_t)r);
  }
  crypto_hash_sha256_final(&st, h);
  arc_hex(h, sizeof h, hex);
  return 0;
}

/* -- writing entries ------------------------------------------------------- */

/* Open a gzip'd pax writer on fd, reproducible (no time in the gzip
 * header). NULL with err. */
static struct archive *writer_open(int fd, char *err, size_t errlen) {
  struct archive *w = archive_write_new();
  if (!w) {
    snprintf(err, errlen, "out of memory");
    return NULL;
  }
  if (archive_write_add_filter_gzip(w) != ARCHIVE_OK ||
      archive_write_set_format_pax_restricted(w) != ARCHIVE_OK ||
      archive_write_set_options(w, "gzip:!timestamp") != ARCHIVE_OK ||
      archive_write_open_fd(w, fd) != ARCHIVE_OK) {
    snprintf(err, errlen, "archive writer: %s", archive_error_string(w));
    archive_write_free(w);
    return NULL;
  }
  return w;
}

/* The header of one entry, normalised: mtime 0, owner 0, no names, modes
 * 0755 for folders and executables (.so), 0644 otherwise. */
static int put_header(struct archive *w, const char *path, int dir, int exec,
                      uint64_t size, char *err, size_t errlen) {
  struct archive_entry *e = archive_entry_new();
  if (!e) {
    snprintf(err, errlen, "out of memory");
    return -1;
  }
  archive_entry_set_pathname(e, path);
  archive_entry_set_filetype(e, dir ? AE_IFDIR : AE_IFREG);
  archive_entry_set_perm(e, dir || exec ? 0755 : 0644);
  archive_entry_set_size(e, dir ? 0 : (la_int64_t)size);
  archive_entry_set_mtime(e, 0, 0);
  archive_entry_set_uid(e, 0);
  archive_entry_set_gid(e, 0);
  int r = archive_write_header(w, e);
  archive_entry_free(e);
  if (r < ARCHIVE_WARN) {
    snprintf(err, errlen, "%s: %s", path, archive_error_string(w));
    return -1;
  }
  return 0;
}

static int put_data(struct archive *w, const char *path, const void *buf,
                    size_t n, char *err, size_t errlen) {
  if (n && archive_write_data(w, buf, n) != (la_ssize_t)n) {
    snprintf(err, errlen, "%s: %s", path, archive_error_string(w));
    return -1;
  }
  return 0;
}

static int writer_close(struct archive *w, char *err, size_t errlen) {
  int r = archive_write_close(w);
  if (r != ARCHIVE_OK)
    snprintf(err, errlen, "archive writer: %s", archive_error_string(w));
  archive_write_free(w);
  return r == ARCHIVE_OK ? 0 : -1;
}

/* -- pack ------------------------------------------------------------------ */

/* One entry to pack: `path` inside the archive, `src` on disk (NULL for a
 * folder). */
typedef struct pent {
  char *path, *src;
  int dir;
  uint64_t size;
  unsigned char sha[crypto_hash_sha256_BYTES];
} pent;

typedef struct plist {
  pent *v;
  size_t n, cap;
  char *err;
  size_t errlen;
} plist;

static int plist_add(plist *l, const char *path, const char *src, int dir) {
  const char *kind;
  char why[128];
  if (arc_name_check(path, &kind, why, sizeof why) != 0) {
    char p[256];
    arc_printable(path, p, sizeof p);
    snprintf(l->err, l->errlen, "%s: %s (it could not be extracted)", p, why);
    return -1;
  }
  if (l->n == l->cap) {
    size_t cap = l->cap ? l->cap * 2 : 64;
    pent *v = realloc(l->v, cap * sizeof *v);
    if (!v) goto oom;
    l->v = v;
    l->cap = cap;
  }
  pent *e = &l->v[l->n];
  memset(e, 0, sizeof *e);
  e->dir = dir;
  e->path = strdup(path);
  e->src = src ? strdup(src) : NULL;
  if (!e->path || (src && !e->src)) {
    free(e->path);
    free(e->src);
    goto oom;
  }
  l->n++;
  return 0;
oom:
  snprintf(l->err, l->errlen, "out of memory");
  return -1;
}

static void plist_free(plist *l) {
  for (size_t i = 0; i < l->n; i++) {
    free(l->v[i].path);
    free(l->v[i].src);
  }
  free(l->v);
}

/* Add src (a file on disk) as `path`: a regular file, never a link. */
static int add_file(plist *l, const char *src, const char *path) {
  struct stat st;
  if (lstat(src, &st) != 0) {
    snprintf(l->err, l->errlen, "%s: %s", src, strerror(errno));
    return -1;
  }
  if (!S_ISREG(st.st_mode)) {
    snprintf(l->err, l->errlen,
             "%s: not a regular file (a stack archive holds regular files "
             "and folders only)",
             src);
    return -1;
  }
  return plist_add(l, path, src, 0);
}

/* Add the folder src as `path` and everything under it. */
static int add_tree(plist *l, const char *src, const char *path, int depth) {
  if (depth > 32) {
    snprintf(l->err, l->errlen, "%s: folders nested too deep", src);
    return -1;
  }
  if (plist_add(l, path, NULL, 1) != 0) return -1;
  DIR *d = opendir(src);
  if (!d) {
    snprintf(l->err, l->errlen, "%s: %s", src, strerror(errno));
    return -1;
  }
  int rc = 0;
  struct dirent *de;
  while (rc == 0 && (errno = 0, de = readdir(d))) {
    if (!strcmp(de->d_name, ".") || !strcmp(de->d_name, "..")) continue;
    char s[PATH_MAX], p[PATH_MAX];
    if (snprintf(s, sizeof s, "%s/%s", src, de->d_name) >= (int)sizeof s ||
        snprintf(p, sizeof p, "%s/%s", path, de->d_name) >= (int)sizeof p) {
      snprintf(l->err, l->errlen, "%s: path too long", src);
      rc = -1;
      break;
    }
    struct stat st;
    if (lstat(s, &st) != 0) {
      snprintf(l->err, l->errlen, "%s: %s", s, strerror(errno));
      rc = -1;
    } else if (S_ISDIR(st.st_mode)) {
      rc = add_tree(l, s, p, depth + 1);
    } else {
      rc = add_file(l, s, p);
    }
  }
  if (rc == 0 && errno) {
    snprintf(l->err, l->errlen, "%s: %s", src, strerror(errno));
    rc = -1;
  }
  closedir(d);
  return rc;
}

/* Add packages/{name}/ of the stack in dir: manifest, library, and the
 * migrations/ and ui/ folders when present. */
static int add_package(plist *l, const char *dir, const char *name) {
  char src[PATH_MAX], path[PATH_MAX], merr[512];
  package_manifest m;
  snprintf(path, sizeof path, "packages/%s", name);
  if (plist_add(l, path, NULL, 1) != 0) return -1;
  snprintf(src, sizeof src, "%s/packages/%s/package.json", dir, name);
  if (package_manifest_load(src, &m, merr) != 0) {
    snprintf(l->err, l->errlen, "%s", merr);
    return -1;
  }
  snprintf(path, sizeof path, "packages/%s/package.json", name);
  int rc = add_file(l, src, path);
  if (rc == 0) {
    snprintf(src, sizeof src, "%s/packages/%s/%s", dir, name, m.library);
    snprintf(path, sizeof path, "packages/%s/%s", name, m.library);
    rc = add_file(l, src, path);
  }
  package_manifest_free(&m);
  static const char *const subdirs[] = {"migrations", "ui"};
  for (size_t i = 0; rc == 0 && i < 2; i++) {
    struct stat st;
    snprintf(src, sizeof src, "%s/packages/%s/%s", dir, name, subdirs[i]);
    snprintf(path, sizeof path, "packages/%s/%s", name, subdirs[i]);
    if (lstat(src, &st) != 0) {
      if (errno == ENOENT) continue;
      snprintf(l->err, l->errlen, "%s: %s", src, strerror(errno));
      rc = -1;
    } else if (!S_ISDIR(st.st_mode)) {
      snprintf(l->err, l->errlen, "%s: not a folder", src);
      rc = -1;
    } else {
      rc = add_tree(l, src, path, 0);
    }
  }
  return rc;
}

static int pent_cmp(const void *a, const void *b) {
  return strcmp(((const pent *)a)->path, ((const pent *)b)->path);
}

/* Digest and size of one file, read in full. */
static int digest_file(pent *e, char *err, size_t errlen) {
  int fd = open(e->src, O_RDONLY | O_NOFOLLOW | O_CLOEXEC);
  if (fd < 0) {
    snprintf(err, errlen, "%s: %s", e->src, strerror(errno));
    return -1;
  }
  crypto_hash_sha256_state st;
  unsigned char buf[IOBUF];
  crypto_hash_sha256_init(&st);
  e->size = 0;
  for (;;) {
    ssize_t r = read(fd, buf, sizeof buf);
    if (r < 0 && errno == EINTR) continue;
    if (r < 0) {
      snprintf(err, errlen, "%s: %s", e->src, strerror(errno));
      close(fd);
      return -1;
    }
    if (r == 0) break;
    crypto_hash_sha256_update(&st, buf, (size_t)r);
    e->size += (uint64_t)r;
  }
  close(fd);
  crypto_hash_sha256_final(&st, e->sha);
  return 0;
}

/* Copy file e into the writer, checking it did not change since digested. */
static int put_file(struct archive *w, const pent *e, char *err,
                    size_t errlen) {
  size_t n = strlen(e->path);
  int exec = n > 3 && !strcmp(e->path + n - 3, ".so");
  if (put_header(w, e->path, 0, exec, e->size, err, errlen) != 0) return -1;
  int fd = open(e->src, O_RDONLY | O_NOFOLLOW | O_CLOEXEC);
  if (fd < 0) {
    snprintf(err, errlen, "%s: %s", e->src, strerror(errno));
    return -1;
  }
  crypto_hash_sha256_state st;
  unsigned char buf[IOBUF], h[crypto_hash_sha256_BYTES];
  uint64_t total = 0;
  int rc = 0;
  crypto_hash_sha256_init(&st);
  for (;;) {
    ssize_t r = read(fd, buf, sizeof buf);
    if (r < 0 && errno == EINTR) continue;
    if (r < 0) {
      snprintf(err, errlen, "%s: %s", e->src, strerror(errno));
      rc = -1;
      break;
    }
    if (r == 0) break;
    if (total + (uint64_t)r > e->size) break; /* grew: caught below */
    total += (uint64_t)r;
    crypto_hash_sha256_update(&st, buf, (size_t)r);
    if (put_data(w, e->path, buf, (size_t)r, err, errlen) != 0) {
      rc = -1;
      break;
    }
  }
  close(fd);
  if (rc != 0) return -1;
  crypto_hash_sha256_final(&st, h);
  if (total != e->size || memcmp(h, e->sha, sizeof h) != 0) {
    snprintf(err, errlen, "%s: changed while being packed", e->src);
    return -1;
  }
  return 0;
}

int archive_pack(const char *dir, const char *out, char *written, size_t wcap,
                 char *err, size_t errlen) {
  plist l = {.err = err, .errlen = errlen};
  stack_manifest sm;
  char src[PATH_MAX], merr[512], final[PATH_MAX], tmp[PATH_MAX];
  char *sums = NULL;
  struct archive *w = NULL;
  int fd = -1, rc = -1, have_sm = 0;

  if (sodium_init() < 0) {
    snprintf(err, errlen, "libsodium failed to initialise");
    return -1;
  }
  snprintf(src, sizeof src, "%s/stack.json", dir);
  if (stack_manifest_load(src, &sm, merr) != 0) {
    snprintf(err, errlen, "%s", merr);
    return -1;
  }
  have_sm = 1;

  /* Where to write: a folder gets {id}-{version}.tar.gz. */
  struct stat st;
  const char *folder = out ? out : "";
  if (!out || (stat(out, &st) == 0 && S_ISDIR(st.st_mode))) {
    if (snprintf(final, sizeof final, "%s%s%s-%s.tar.gz", out ? folder : "",
                 out && *out && out[strlen(out) - 1] != '/' ? "/" : "",
                 sm.id, sm.version) >= (int)sizeof final) {
      snprintf(err, errlen, "%s: path too long", folder);
      goto out;
    }
  } else if (snprintf(final, sizeof final, "%s", out) >= (int)sizeof final) {
    snprintf(err, errlen, "output path too long");
    goto out;
  }

  if (add_file(&l, src, "stack.json") != 0) goto out;
  if (sm.npackages && plist_add(&l, "packages", NULL, 1) != 0) goto out;
  for (size_t i = 0; i < sm.npackages; i++)
    if (add_package(&l, dir, sm.packages[i].name) != 0) goto out;
  qsort(l.v, l.n, sizeof *l.v, pent_cmp);
  for (size_t i = 1; i < l.n; i++)
    if (!strcmp(l.v[i].path, l.v[i - 1].path)) {
      snprintf(err, errlen, "%s: packed twice (is a package listed twice?)",
               l.v[i].path);
      goto out;
    }

  /* CHECKSUMS: every file, in path order (the list is sorted). */
  size_t cap = 1, slen = 0;
  for (size_t i = 0; i < l.n; i++)
    if (!l.v[i].dir) cap += 64 + 2 + strlen(l.v[i].path) + 1;
  sums = malloc(cap);
  if (!sums) {
    snprintf(err, errlen, "out of memory");
    goto out;
  }
  sums[0] = '\0';
  for (size_t i = 0; i < l.n; i++) {
    if (l.v[i].dir) continue;
    char hex[65];
    if (digest_file(&l.v[i], err, errlen) != 0) goto out;
    arc_hex(l.v[i].sha, sizeof l.v[i].sha, hex);
    slen +=
        (size_t)snprintf(sums + slen, cap - slen, "%s  %s\n", hex, l.v[i].path);
  }

  fd = arc_tmp_beside(final, tmp, sizeof tmp);
  if (fd < 0) {
    snprintf(err, errlen, "%s: %s", final, strerror(errno));
    goto out;
  }
  if (!(w = writer_open(fd, err, errlen))) goto out;
  /* CHECKSUMS sorts before every lower-case path: "C" < "p" < "s". */
  if (put_header(w, ARCHIVE_CHECKSUMS, 0, 0, slen, err, errlen) != 0 ||
      put_data(w, ARCHIVE_CHECKSUMS, sums, slen, err, errlen) != 0)
    goto out;
  for (size_t i = 0; i < l.n; i++) {
    const pent *e = &l.v[i];
    if (e->dir ? put_header(w, e->path, 1, 0, 0, err, errlen)
               : put_file(w, e, err, errlen))
      goto out;
  }
  int wrc = writer_close(w, err, errlen);
  w = NULL;
  if (wrc != 0) goto out;
  if (arc_commit(fd, tmp, final) != 0) {
    fd = -1;
    snprintf(err, errlen, "%s: %s", final, strerror(errno));
    goto out;
  }
  fd = -1;
  snprintf(written, wcap, "%s", final);
  rc = 0;
out:
  if (w) archive_write_free(w);
  if (fd >= 0) {
    close(fd);
    unlink(tmp);
  }
  free(sums);
  plist_free(&l);
  if (have_sm) stack_manifest_free(&sm);
  return rc;
}

/* -- sign ------------------------------------------------------------------ */

/* A reader of the archive file `path`: gzip'd tar only. */
static struct archive *reader_open(const char *path, char *err, size_t errlen) {
  struct archive *r = archive_read_new();
  if (!r) {
    snprintf(err, errlen, "out of memory");
    return NULL;
  }
  archive_read_support_filter_gzip(r);
  archive_read_support_format_tar(r);
  if (archive_read_open_filename(r, path, IOBUF) != ARCHIVE_OK) {
    snprintf(err, errlen, "%s: %s", path, archive_error_string(r));
    archive_read_free(r);
    return NULL;
  }
  return r;
}

/* Read the CHECKSUMS entry of archive `path` into a malloc'd buffer. */
static int read_checksums(const char *path, char **out, size_t *len, char *err,
                          size_t errlen) {
  struct archive *r = reader_open(path, err, errlen);
  struct archive_entry *e;
  int rc = -1, h;
  *out = NULL;
  *len = 0;
  if (!r) return -1;
  while ((h = archive_read_next_header(r, &e)) == ARCHIVE_OK ||
         h == ARCHIVE_WARN) {
    const char *name = archive_entry_pathname(e);
    if (!name || strcmp(name, ARCHIVE_CHECKSUMS) != 0) continue;
    la_int64_t size = archive_entry_size(e);
    if (archive_entry_filetype(e) != AE_IFREG || size < 0 ||
        (uint64_t)size > ARC_CHECKSUMS_MAX) {
      snprintf(err, errlen,
               "%s: its CHECKSUMS is not a file of at most %zu "
               "bytes",
               path, ARC_CHECKSUMS_MAX);
      goto out;
    }
    char *buf = malloc((size_t)size + 1);
    if (!buf) {
      snprintf(err, errlen, "out of memory");
      goto out;
    }
    la_ssize_t n = size ? archive_read_data(r, buf, (size_t)size) : 0;
    if (n != size) {
      snprintf(err, errlen, "%s: %s", path,
               n < 0 ? archive_error_string(r) : "CHECKSUMS cut short");
      free(buf);
      goto out;
    }
    buf[size] = '\0';
    *out = buf;
    *len = (size_t)size;
    rc = 0;
    goto out;
  }
  if (h == ARCHIVE_EOF)
    snprintf(err, errlen,
             "%s: no CHECKSUMS entry ('nno stack pack' writes archives "
             "with one)",
             path);
  else
    snprintf(err, errlen, "%s: %s", path, archive_error_string(r));
out:
  archive_read_free(r);
  return rc;
}

/* Copy every entry of `r` into `w` except an old SIGNATURE, placing
 * `sig` at its sorted place. */
static int copy_signed(struct archive *r, struct archive *w, const char *in,
                       const char *sig, char *err, size_t errlen) {
  struct archive_entry *e;
  int h, placed = 0;
  char buf[IOBUF];
  while ((h = archive_read_next_header(r, &e)) == ARCHIVE_OK ||
         h == ARCHIVE_WARN) {
    const char *name = archive_entry_pathname(e);
    if (!name) {
      snprintf(err, errlen, "%s: an entry without a readable name", in);
      return -1;
    }
    if (!strcmp(name, ARCHIVE_SIGNATURE)) continue;
    if (!placed && strcmp(name, ARCHIVE_SIGNATURE) > 0) {
      if (put_header(w, ARCHIVE_SIGNATURE, 0, 0, strlen(sig), err, errlen) ||
          put_data(w, ARCHIVE_SIGNATURE, sig, strlen(sig), err, errlen))
        return -1;
      placed = 1;
    }
    unsigned type = archive_entry_filetype(e);
    if (archive_entry_hardlink(e) || (type != AE_IFREG && type != AE_IFDIR)) {
      char p[256];
      arc_printable(name, p, sizeof p);
      snprintf(err, errlen,
               "%s: entry \"%s\" is not a regular file or a folder", in, p);
      return -1;
    }
    if (type == AE_IFDIR) {
      char d[ARC_NAME_MAX + 2];
      snprintf(d, sizeof d, "%s", name);
      size_t n = strlen(d);
      if (n > 1 && d[n - 1] == '/') d[n - 1] = '\0';
      if (put_header(w, d, 1, 0, 0, err, errlen) != 0) return -1;
      continue;
    }
    la_int64_t size = archive_entry_size(e);
    if (put_header(w, name, 0, (archive_entry_perm(e) & 0111) != 0,
                   (uint64_t)(size < 0 ? 0 : size), err, errlen) != 0)
      return -1;
    for (;;) {
      la_ssize_t n = archive_read_data(r, buf, sizeof buf);
      if (n < 0) {
        snprintf(err, errlen, "%s: %s", in, archive_error_string(r));
        return -1;
      }
      if (n == 0) break;
      if (put_data(w, name, buf, (size_t)n, err, errlen) != 0) return -1;
    }
  }
  if (h != ARCHIVE_EOF) {
    snprintf(err, errlen, "%s: %s", in, archive_error_string(r));
    return -1;
  }
  if (!placed &&
      (put_header(w, ARCHIVE_SIGNATURE, 0, 0, strlen(sig), err, errlen) ||
       put_data(w, ARCHIVE_SIGNATURE, sig, strlen(sig), err, errlen)))
    return -1;
  return 0;
}

/* Extract `in` into a temporary folder (removed after) with the host's
 * default limits and no keyring: a signature vouches for CHECKSUMS, so
 * CHECKSUMS must first be true of the files (and the archive one a host
 * would take). An old SIGNATURE, replaced by signing, is not judged.
 * 0, or -1 with err. */
static int verify_before_sign(const char *in, char *err, size_t errlen) {
  nno_config *cfg = malloc(sizeof *cfg);
  char staging[PATH_MAX];
  const char *t = getenv("TMPDIR");
  archive_limits lim;
  archive_info info;
  archive_error e;
  int rc = -1;
  if (!cfg) {
    snprintf(err, errlen, "out of memory");
    return -1;
  }
  config_defaults(cfg, ".");
  archive_limits_from_config(cfg, &lim);
  free(cfg);
  memset(&e, 0, sizeof e);
  int fd = open(in, O_RDONLY | O_CLOEXEC);
  if (fd < 0) {
    snprintf(err, errlen, "%s: %s", in, strerror(errno));
    return -1;
  }
  snprintf(staging, sizeof staging, "%s/nno-sign-XXXXXX", t && *t ? t : "/tmp");
  if (!mkdtemp(staging)) {
    snprintf(err, errlen, "cannot make a temporary folder: %s",
             strerror(errno));
    close(fd);
    return -1;
  }
  if (archive_extract(fd, staging, &lim, NULL, &info, &e) == 0 ||
      strcmp(e.kind, "bad-signature") == 0)
    rc = 0;
  else if (e.file[0])
    snprintf(err, errlen, "%s: field \"%s\": %s (not signed)", in, e.file,
             e.message);
  else
    snprintf(err, errlen, "%s: %s (not signed)", in, e.message);
  close(fd);
  archive_rmtree(staging);
  return rc;
}

int archive_sign(const char *in, const char *key_path, const char *out,
                 char id[17], char *err, size_t errlen) {
  unsigned char sk[64], pk[32], sig[crypto_sign_BYTES];
  char b64[sodium_base64_ENCODED_LEN(crypto_sign_BYTES,
                                     sodium_base64_VARIANT_ORIGINAL)];
  char line[256], tmp[PATH_MAX];
  char *sums = NULL;
  size_t slen = 0;
  struct archive *r = NULL, *w = NULL;
  int fd = -1, rc = -1;

  if (!out) out = in;
  if (arc_secret_load(key_path, sk, pk, id, err, errlen) != 0) return -1;
  if (verify_before_sign(in, err, errlen) != 0) goto out;
  if (read_checksums(in, &sums, &slen, err, errlen) != 0) goto out;
  crypto_sign_detached(sig, NULL, (const unsigned char *)sums, slen, sk);
  sodium_bin2base64(b64, sizeof b64, sig, sizeof sig,
                    sodium_base64_VARIANT_ORIGINAL);
  snprintf(line, sizeof line,
           "{\"algorithm\":\"ed25519\",\"key_id\":\"%s\",\"signature\":\"%s\"}"
           "\n",
           id, b64);

  if (!(r = reader_open(in, err, errlen))) goto out;
  fd = arc_tmp_beside(out, tmp, sizeof tmp);
  if (fd < 0) {
    snprintf(err, errlen, "%s: %s", out, strerror(errno));
    goto out;
  }
  if (!(w = writer_open(fd, err, errlen))) goto out;
  if (copy_signed(r, w, in, line, err, errlen) != 0) goto out;
  int wrc = writer_close(w, err, errlen);
  w = NULL;
  if (wrc != 0) goto out;
  int cfd = fd;
  fd = -1;
  if (arc_commit(cfd, tmp, out) != 0) {
    snprintf(err, errlen, "%s: %s", out, strerror(errno));
    goto out;
  }
  rc = 0;
out:
  sodium_memzero(sk, sizeof sk);
  if (w) archive_write_free(w);
  if (r) archive_read_free(r);
  if (fd >= 0) {
    close(fd);
    unlink(tmp);
  }
  free(sums);
  return rc;
}
