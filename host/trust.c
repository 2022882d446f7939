/* Trusted paths (see trust.h). */
#include "trust.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

int trust_stat(const char *path, const struct stat *st, char *err,
               size_t errlen) {
  uid_t me = geteuid();
  if (st->st_uid != me && st->st_uid != 0) {
    snprintf(err, errlen,
             "\"%s\" belongs to uid %u, not to the host's user (uid %u) or "
             "root",
             path, (unsigned)st->st_uid, (unsigned)me);
    return -1;
  }
  if (st->st_mode & (S_IWGRP | S_IWOTH)) {
    snprintf(err, errlen,
             "\"%s\" is writable by group or others (mode %04o); run chmod "
             "go-w on it",
             path, (unsigned)(st->st_mode & 07777));
    return -1;
  }
  return 0;
}

/* stat `path` and trust_stat it. */
static int check_one(const char *path, char *err, size_t errlen) {
  struct stat st;
  if (stat(path, &st) != 0) {
    snprintf(err, errlen, "cannot read \"%s\": %s", path, strerror(errno));
    return -1;
  }
  return trust_stat(path, &st, err, errlen);
}

/* The folder `above` holds `below` (both resolved). Whoever may write
 * `above` can rename `below` and put anything in its place, so `above`
 * must belong to this user or root and not be writable by group or others
 * -- unless it is sticky (/tmp: 1777), where only the owner of an entry may
 * rename it, and `below` belongs to this user or root. */
static int check_above(const char *above, const char *below, char *err,
                       size_t errlen) {
  struct stat st, bst;
  uid_t me = geteuid();
  if (stat(above, &st) != 0) {
    snprintf(err, errlen, "cannot read \"%s\": %s", above, strerror(errno));
    return -1;
  }
  if (!(st.st_mode & (S_IWGRP | S_IWOTH)) || !(st.st_mode & S_ISVTX))
    return trust_stat(above, &st, err, errlen);
  if (st.st_uid != me && st.st_uid != 0)
    return trust_stat(above, &st, err, errlen);
  if (lstat(below, &bst) != 0) {
    snprintf(err, errlen, "cannot read \"%s\": %s", below, strerror(errno));
    return -1;
  }
  if (bst.st_uid != me && bst.st_uid != 0) {
    snprintf(err, errlen,
             "\"%s\" belongs to uid %u, not to the host's user (uid %u) or "
             "root, in \"%s\" which others may write (mode %04o)",
             below, (unsigned)bst.st_uid, (unsigned)me, above,
             (unsigned)(st.st_mode & 07777));
    return -1;
  }
  return 0;
}

/* check_above for every folder above the resolved `rroot`, from "/" down
 * (nothing above "/"). */
static int check_ancestors(const char *rroot, char *err, size_t errlen) {
  char above[PATH_MAX], below[PATH_MAX];
  size_t n = strlen(rroot), a = 0; /* the folder above: rroot[0..a) */
  if (n <= 1) return 0;
  for (;;) {
    const char *next = strchr(rroot + a + 1, '/');
    size_t b = next ? (size_t)(next - rroot) : n; /* below: rroot[0..b) */
    memcpy(above, rroot, a ? a : 1);
    above[a ? a : 1] = '\0';
    memcpy(below, rroot, b);
    below[b] = '\0';
    if (check_above(above, below, err, errlen)) return -1;
    if (!next) return 0;
    a = b;
  }
}

int trust_path(const char *root, const char *path, char *resolved, char *err,
               size_t errlen) {
  char rroot[PATH_MAX], rpath[PATH_MAX];
  if (!realpath(root, rroot)) {
    snprintf(err, errlen, "cannot resolve \"%s\": %s", root, strerror(errno));
    return -1;
  }
  if (!realpath(path, rpath)) {
    /* Nothing there: no code or data comes from it, and the caller's
     * own open reports it in its words. */
    if (errno == ENOENT) {
      if (resolved) snprintf(resolved, PATH_MAX, "%s", path);
      return 0;
    }
    snprintf(err, errlen, "cannot resolve \"%s\": %s", path, strerror(errno));
    return -1;
  }
  size_t rl = strlen(rroot);
  /* "/" as the root: every absolute path is inside it. */
  if (rl == 1) rl = 0;
  if (strncmp(rpath, rroot, rl) != 0 ||
      (rpath[rl] != '/' && rpath[rl] != '\0')) {
    snprintf(err, errlen,
             "\"%s\" leaves its folder \"%s\": it resolves to \"%s\"", path,
             rroot, rpath);
    return -1;
  }
  /* Above the root first: who may write there may swap the root. */
  if (check_ancestors(rroot, err, errlen) || check_one(rroot, err, errlen))
    return -1;
  /* Every folder below the root, then the path itself: cut the resolved
   * path at each '/' after the root in turn. */
  size_t i = rl;
  while (rpath[i] == '/') {
    char *slash = strchr(rpath + i + 1, '/');
    if (slash) *slash = '\0';
    int rc = check_one(rpath, err, errlen);
    if (slash) *slash = '/';
    if (rc) return -1;
    if (!slash) break;
    i = (size_t)(slash - rpath);
  }
  if (resolved) snprintf(resolved, PATH_MAX, "%s", rpath);
  return 0;
}

int trust_open(const char *rpath, const char *shown, char *err, size_t errlen) {
  /* O_NONBLOCK: a FIFO in place of a file must not hang the loader. */
  int fd = open(rpath, O_RDONLY | O_NOFOLLOW | O_CLOEXEC | O_NONBLOCK);
  if (fd < 0) {
    snprintf(err, errlen, "cannot open \"%s\": %s", shown, strerror(errno));
    return -1;
  }
  struct stat st;
  if (fstat(fd, &st) != 0) {
    snprintf(err, errlen, "cannot read \"%s\": %s", shown, strerror(errno));
    goto fail;
  }
  if (!S_ISREG(st.st_mode)) {
    snprintf(err, errlen, "\"%s\" is not a regular file", shown);
    goto fail;
  }
  if (trust_stat(rpath, &st, err, errlen)) goto fail;
  return fd;
fail:
  close(fd);
  return -1;
}

int trust_data_dir(const char *dir, char *err, size_t errlen) {
  struct stat st;
  if (stat(dir, &st) != 0) {
    if (errno == ENOENT) return 0;
    snprintf(err, errlen, "cannot read the data folder \"%s\": %s", dir,
             strerror(errno));
    return -1;
  }
  if (!S_ISDIR(st.st_mode)) {
    snprintf(err, errlen, "the data folder \"%s\" is not a folder", dir);
    return -1;
  }
  return trust_stat(dir, &st, err, errlen);
}
