/* Storage accounting per platform: what its resources use, measured under
 * an exclusive file lock by every write so that a write that would go past
 * the platform's plan answers NNO_EQUOTA before writing anything. */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <sys/file.h>
#include <unistd.h>

#include <nno/plugin.h>

#include "prov.h"

/* Sum of the regular files of one folder (sql/ or kv/). */
static uint64_t files_size(const char *dir) {
  DIR *d = opendir(dir);
  if (!d) return 0;
  uint64_t sum = 0;
  char path[4096];
  for (struct dirent *e; (e = readdir(d));) {
    size_t n = strlen(e->d_name);
    /* -shm files are shared memory, not data: their size comes and goes */
    if (e->d_name[0] == '.' || (n > 4 && !strcmp(e->d_name + n - 4, "-shm")))
      continue;
    snprintf(path, sizeof path, "%s/%s", dir, e->d_name);
    sum += prov_file_size(path);
  }
  closedir(d);
  return sum;
}

uint64_t prov_usage(const char *pdir) {
  char path[4096];
  uint64_t sum = 0;
  snprintf(path, sizeof path, "%s/sql", pdir);
  sum += files_size(path);
  snprintf(path, sizeof path, "%s/kv", pdir);
  sum += files_size(path);
  snprintf(path, sizeof path, "%s/blob", pdir);
  DIR *d = opendir(path);
  if (d) {
    char b[4096];
    for (struct dirent *e; (e = readdir(d));) {
      if (e->d_name[0] == '.') continue;
      snprintf(b, sizeof b, "%s/%s", path, e->d_name);
      sum += pblob_usage(b);
    }
    closedir(d);
  }
  return sum;
}

int prov_quota_begin(const prov_quota *q, prov_qlock *l, char *msg,
                     size_t cap) {
  char path[4096];
  l->fd = -1;
  l->used = 0;
  l->remaining = UINT64_MAX;
  snprintf(path, sizeof path, "%s/.quota", q->pdir);
  l->fd = open(path, O_RDWR | O_CREAT | O_NOFOLLOW | O_CLOEXEC, 0600);
  if (l->fd < 0) {
    snprintf(msg, cap, "cannot open the platform's quota lock: %s",
             strerror(errno));
    return errno == ENOENT ? NNO_ENOENT : NNO_EIO;
  }
  int rc;
  while ((rc = flock(l->fd, LOCK_EX)) != 0 && errno == EINTR) {
  }
  if (rc != 0) {
    snprintf(msg, cap, "cannot lock the platform's quota: %s",
             strerror(errno));
    close(l->fd);
    l->fd = -1;
    return NNO_EIO;
  }
  l->used = prov_usage(q->pdir);
  if (q->limit) l->remaining = l->used >= q->limit ? 0 : q->limit - l->used;
  return 0;
}

void prov_quota_end(prov_qlock *l) {
  if (l->fd >= 0) close(l->fd); /* drops the flock */
  l->fd = -1;
}

uint64_t prov_plan_limit(const prov_plans *p, const char *name) {
  uint64_t mb = p->default_mb;
  for (size_t i = 0; name && i < p->n; i++)
    if (strcmp(p->v[i].name, name) == 0) mb = p->v[i].storage_mb;
  return mb * 1024 * 1024;
}
