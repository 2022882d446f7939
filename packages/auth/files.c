/* The files of a platform's auth database: made owner-only, and refused
 * when anyone but this process's user could change them. Runs on pool
 * threads, like the rest of the database code (store.c). */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "auth.h"

/* AUTH_OK, or AUTH_UNSAFE with the reason in err: `st` (of `path`) must
 * belong to this process's user and not be writable by group or others. */
static int owned_and_closed(const char *path, const struct stat *st,
                            char *err, size_t cap) {
  if (st->st_uid != geteuid()) {
    snprintf(err, cap,
             "refusing %s: owned by uid %u, not by the host's user (uid %u)",
             path, (unsigned)st->st_uid, (unsigned)geteuid());
    return AUTH_UNSAFE;
  }
  if (st->st_mode & (S_IWGRP | S_IWOTH)) {
    snprintf(err, cap,
             "refusing %s: writable by group or others (mode %04o); run "
             "chmod go-w on it",
             path, (unsigned)(st->st_mode & 07777));
    return AUTH_UNSAFE;
  }
  return AUTH_OK;
}

/* Create folder `path` (0700) when missing, then check it. */
static int folder(const char *path, char *err, size_t cap) {
  struct stat st;
  if (mkdir(path, 0700) != 0 && errno != EEXIST) {
    snprintf(err, cap, "cannot create %s: %s", path, strerror(errno));
    return AUTH_ERR;
  }
  if (stat(path, &st) != 0) {
    snprintf(err, cap, "cannot read %s: %s", path, strerror(errno));
    return AUTH_ERR;
  }
  if (!S_ISDIR(st.st_mode)) {
    snprintf(err, cap, "refusing %s: not a folder", path);
    return AUTH_UNSAFE;
  }
  return owned_and_closed(path, &st, err, cap);
}

/* Check file `path` if it exists (lstat: never opened, never followed),
 * narrowing a mode readable by group or others to 0600: the file holds
 * password hashes. */
static int file(const char *path, char *err, size_t cap) {
  struct stat st;
  if (lstat(path, &st) != 0) {
    if (errno == ENOENT) return AUTH_OK;
    snprintf(err, cap, "cannot read %s: %s", path, strerror(errno));
    return AUTH_ERR;
  }
  if (!S_ISREG(st.st_mode)) {
    snprintf(err, cap, "refusing %s: not a regular file", path);
    return AUTH_UNSAFE;
  }
  int rc = owned_and_closed(path, &st, err, cap);
  if (rc == AUTH_OK && (st.st_mode & 077) && chmod(path, 0600) != 0) {
    snprintf(err, cap, "cannot make %s owner-only: %s", path, strerror(errno));
    return AUTH_ERR;
  }
  return rc;
}

int auth_files_prepare(const char *data_dir, const char *platform, char *path,
                       size_t pcap, char *err, size_t cap) {
  static const char *const sidecars[] = {"-wal", "-shm"};
  char side[PATH_MAX];
  int n = snprintf(path, pcap, "%s/platforms", data_dir), rc;
  if (n < 0 || (size_t)n >= pcap) goto too_long;
  if ((rc = folder(path, err, cap)) != AUTH_OK) return rc;
  n = snprintf(path, pcap, "%s/platforms/%s", data_dir, platform);
  if (n < 0 || (size_t)n >= pcap) goto too_long;
  if ((rc = folder(path, err, cap)) != AUTH_OK) return rc;
  n = snprintf(path, pcap, "%s/platforms/%s/%s-default-auth.db", data_dir,
               platform, platform);
  if (n < 0 || (size_t)n >= pcap || (size_t)n + 5 > sizeof side)
    goto too_long;
  /* Create it owner-only (sqlite gives -wal and -shm the same mode). Only
   * with O_EXCL: closing a descriptor of a file that exists would drop the
   * POSIX locks another connection of this process holds on it. */
  int fd = open(path, O_RDWR | O_CREAT | O_EXCL | O_CLOEXEC | O_NOFOLLOW, 0600);
  if (fd >= 0) {
    close(fd);
  } else if (errno != EEXIST) {
    snprintf(err, cap, "cannot create %s: %s", path, strerror(errno));
    return AUTH_ERR;
  }
  if ((rc = file(path, err, cap)) != AUTH_OK) return rc;
  for (size_t i = 0; i < 2; i++) {
    snprintf(side, sizeof side, "%s%s", path, sidecars[i]);
    if ((rc = file(side, err, cap)) != AUTH_OK) return rc;
  }
  return AUTH_OK;
too_long:
  snprintf(err, cap, "data directory path too long");
  return AUTH_ERR;
}
