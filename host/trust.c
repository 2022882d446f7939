/* Trusted paths (see trust.h). */
#include "trust.h"

#include <errno.h>
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

int trust_path(const char *root, const char *path, char *err, size_t errlen) {
  char rroot[PATH_MAX], rpath[PATH_MAX];
  if (!realpath(root, rroot)) {
    snprintf(err, errlen, "cannot resolve \"%s\": %s", root, strerror(errno));
    return -1;
  }
  if (!realpath(path, rpath)) {
    /* Nothing there: no code or data comes from it, and the caller's
     * own open reports it in its words. */
    if (errno == ENOENT) return 0;
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
  if (check_one(rroot, err, errlen)) return -1;
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
  return 0;
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
