/* File helpers shared by the drivers and the control plane: ids, secure
 * folders, removal that never follows a link, results, failpoints. */
#include <errno.h>
#include <fcntl.h>
#include <ftw.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include <nno/plugin.h>

#include "prov.h"

static uint64_t wall_clock(void) { return (uint64_t)time(NULL); }
uint64_t (*prov_clock)(void) = wall_clock;

void prov_bounds_default(prov_bounds *b) {
  b->max_rows = 1000;
  b->max_result = 1u << 20;
  b->time_ms = 1000;
  b->max_sql = 100u << 10;
  b->max_batch = 100;
  b->kv_value_max = 1u << 20;
  b->blob_max = 64u << 20;
  b->remove_wait_ms = 30000;
}

void prov_out_init(prov_out *o) {
  memset(o, 0, sizeof *o);
  o->fd = -1;
}

void prov_out_free(prov_out *o) {
  free(o->json);
  free(o->cursor);
  free(o->value);
  if (o->fd >= 0) close(o->fd);
  o->json = o->cursor = NULL;
  o->value = NULL;
  o->fd = -1;
}

int prov_page_start(const char *cursor, unsigned char *after, size_t cap,
                    size_t *alen, uint32_t limit, const char *what,
                    prov_out *o) {
  *alen = 0;
  if (cursor && *cursor &&
      (prov_unhex(cursor, after, cap, alen) || *alen == 0))
    return prov_fail(o, NNO_EINVAL, "cursor: not a cursor this %s gave",
                     what);
  if (limit < 1 || limit > 1000)
    return prov_fail(o, NNO_EINVAL, "limit: expected 1 to 1000");
  return 0;
}

int prov_page_end(prov_out *o, json_t *arr, const char *cursor, int rc) {
  if (!rc && arr) {
    o->json = json_dumps(arr, JSON_COMPACT);
    o->cursor = strdup(cursor);
    if (!o->json || !o->cursor) rc = NNO_ENOMEM;
    else o->json_len = strlen(o->json);
  } else if (!arr) {
    rc = NNO_ENOMEM;
  }
  json_decref(arr);
  if (rc == NNO_ENOMEM) return prov_fail(o, rc, "out of memory");
  return rc;
}

int prov_fail(prov_out *o, int err, const char *fmt, ...) {
  va_list ap;
  va_start(ap, fmt);
  vsnprintf(o->msg, sizeof o->msg, fmt, ap);
  va_end(ap);
  o->error = err;
  return err;
}

int prov_id_ok(const char *s, size_t n) {
  if (!s || n < 1 || n > 64) return 0;
  for (size_t i = 0; i < n; i++)
    if (!((s[i] >= 'a' && s[i] <= 'z') || (s[i] >= '0' && s[i] <= '9') ||
          s[i] == '-'))
      return 0;
  return 1;
}

int prov_dir_check(const char *path, char *msg, size_t cap) {
  struct stat st;
  if (lstat(path, &st) != 0) {
    if (errno == ENOENT) return NNO_ENOENT;
    snprintf(msg, cap, "cannot read %s: %s", path, strerror(errno));
    return NNO_EIO;
  }
  if (!S_ISDIR(st.st_mode)) {
    snprintf(msg, cap, "%s is not a folder (a link or a file)", path);
    return NNO_EIO;
  }
  if (st.st_uid != geteuid() || (st.st_mode & 022)) {
    snprintf(msg, cap,
             "%s is owned by another user or writable by group or others: "
             "refused",
             path);
    return NNO_EIO;
  }
  return 0;
}

int prov_mkdir(const char *path, char *msg, size_t cap) {
  if (mkdir(path, 0700) != 0 && errno != EEXIST) {
    snprintf(msg, cap, "cannot create %s: %s", path, strerror(errno));
    return NNO_EIO;
  }
  int rc = prov_dir_check(path, msg, cap);
  if (rc == NNO_ENOENT) {
    snprintf(msg, cap, "%s vanished while being created", path);
    return NNO_EIO;
  }
  return rc;
}

static int rm_one(const char *path, const struct stat *st, int flag,
                  struct FTW *ftw) {
  (void)st, (void)ftw;
  int rc = (flag == FTW_DP) ? rmdir(path) : unlink(path);
  return rc != 0 && errno != ENOENT ? -1 : 0;
}

int prov_rmtree(const char *path) {
  struct stat st;
  if (lstat(path, &st) != 0) return errno == ENOENT ? 0 : NNO_EIO;
  if (!S_ISDIR(st.st_mode)) return unlink(path) == 0 ? 0 : NNO_EIO;
  return nftw(path, rm_one, 16, FTW_PHYS | FTW_DEPTH) == 0 ? 0 : NNO_EIO;
}

uint64_t prov_file_size(const char *path) {
  struct stat st;
  if (lstat(path, &st) != 0 || !S_ISREG(st.st_mode)) return 0;
  return (uint64_t)st.st_size;
}

int prov_sync(const char *path) {
  int rc = 0;
  int fd = open(path, O_RDONLY | O_NOFOLLOW | O_CLOEXEC);
  if (fd < 0 || fsync(fd) != 0) rc = NNO_EIO;
  if (fd >= 0) close(fd);
  char dir[4096];
  const char *slash = strrchr(path, '/');
  size_t n = slash ? (size_t)(slash - path) : 0;
  if (!n || n >= sizeof dir) return rc;
  memcpy(dir, path, n);
  dir[n] = '\0';
  fd = open(dir, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
  if (fd < 0 || fsync(fd) != 0) rc = NNO_EIO;
  if (fd >= 0) close(fd);
  return rc;
}

int prov_touch(const char *path) {
  int fd = open(path, O_WRONLY | O_CREAT | O_NOFOLLOW | O_CLOEXEC, 0600);
  if (fd < 0) return NNO_EIO;
  close(fd);
  return 0;
}

int prov_activation_lock(const char *data, const char *platform,
                         unsigned wait_ms, int *fd) {
  char path[4200];
  *fd = -1;
  if (!prov_id_ok(platform, strlen(platform))) return NNO_EINVAL;
  snprintf(path, sizeof path, "%s/platforms/%s/.activate", data, platform);
  int f = open(path, O_RDWR | O_CREAT | O_NOFOLLOW | O_CLOEXEC, 0600);
  if (f < 0) return errno == ENOENT ? 0 : NNO_EIO;
  int rc;
  for (unsigned waited = 0;; waited += 10) {
    while ((rc = flock(f, LOCK_EX | LOCK_NB)) != 0 && errno == EINTR) {
    }
    if (rc == 0 || errno != EWOULDBLOCK || waited >= wait_ms) break;
    struct timespec ts = {0, 10 * 1000 * 1000};
    nanosleep(&ts, NULL);
  }
  if (rc != 0) {
    int busy = errno == EWOULDBLOCK;
    close(f);
    return busy ? NNO_EBUSY : NNO_EIO;
  }
  *fd = f;
  return 0;
}

#ifdef NNO_FAILPOINTS
int prov_failpoint(const char *step) {
  const char *k = getenv("NNO_FAILPOINT_KILL");
  if (k && strcmp(k, step) == 0) raise(SIGKILL);
  const char *f = getenv("NNO_FAILPOINT");
  return f && strcmp(f, step) == 0;
}
#endif

int prov_file_check(const char *path, char *msg, size_t cap) {
  struct stat st;
  if (lstat(path, &st) != 0) {
    if (errno == ENOENT) {
      snprintf(msg, cap, "not provisioned");
      return NNO_ENOENT;
    }
    snprintf(msg, cap, "cannot read the resource: %s", strerror(errno));
    return NNO_EIO;
  }
  if (!S_ISREG(st.st_mode) || st.st_uid != geteuid() || (st.st_mode & 022)) {
    snprintf(msg, cap,
             "the resource's file is not a regular file of ours: refused");
    return NNO_EIO;
  }
  return 0;
}

int prov_key_ok(const char *k, size_t n, size_t max) {
  if (!k || n < 1 || n > max) return 0;
  for (size_t i = 0; i < n;) {
    unsigned char c = (unsigned char)k[i];
    size_t len;
    uint32_t cp;
    if (c < 0x80) {
      if (c < 0x20 || c == 0x7f) return 0;
      i++;
      continue;
    } else if ((c & 0xe0) == 0xc0) {
      len = 2, cp = c & 0x1f;
    } else if ((c & 0xf0) == 0xe0) {
      len = 3, cp = c & 0x0f;
    } else if ((c & 0xf8) == 0xf0) {
      len = 4, cp = c & 0x07;
    } else {
      return 0;
    }
    if (i + len > n) return 0;
    for (size_t j = 1; j < len; j++) {
      unsigned char d = (unsigned char)k[i + j];
      if ((d & 0xc0) != 0x80) return 0;
      cp = (cp << 6) | (d & 0x3f);
    }
    if ((len == 2 && cp < 0x80) || (len == 3 && cp < 0x800) ||
        (len == 4 && (cp < 0x10000 || cp > 0x10ffff)) ||
        (cp >= 0xd800 && cp <= 0xdfff) || (cp >= 0x80 && cp < 0xa0))
      return 0;
    i += len;
  }
  return 1;
}

int prov_hex(const void *p, size_t n, char *out, size_t cap) {
  static const char h[] = "0123456789abcdef";
  const unsigned char *b = p;
  if (cap < 2 * n + 1) return -1;
  for (size_t i = 0; i < n; i++) {
    out[2 * i] = h[b[i] >> 4];
    out[2 * i + 1] = h[b[i] & 15];
  }
  out[2 * n] = '\0';
  return 0;
}

int prov_unhex(const char *s, void *out, size_t cap, size_t *n) {
  size_t len = strlen(s);
  unsigned char *b = out;
  if (len % 2 || len / 2 > cap) return -1;
  for (size_t i = 0; i < len; i += 2) {
    int v = 0;
    for (int j = 0; j < 2; j++) {
      char c = s[i + j];
      int d = c >= '0' && c <= '9' ? c - '0' : c >= 'a' && c <= 'f' ? c - 'a' + 10 : -1;
      if (d < 0) return -1;
      v = v * 16 + d;
    }
    b[i / 2] = (unsigned char)v;
  }
  *n = len / 2;
  return 0;
}
