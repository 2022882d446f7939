/* Platforms in use by this worker's requests: a count per platform, and
 * a shared flock on its .inuse held while the count is above zero, which
 * a removal (exclusive, non-blocking) waits for. */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <unistd.h>

#include <nno/plugin.h>

#include "prov.h"

static prov_inuse *find(prov_inuse_tab *t, const char *platform) {
  for (size_t i = 0; i < t->n; i++)
    if (strcmp(t->v[i].platform, platform) == 0) return &t->v[i];
  return NULL;
}

int prov_enter(prov_inuse_tab *t, const char *data, const char *platform) {
  if (!platform || !prov_id_ok(platform, strlen(platform))) return NNO_EINVAL;
  prov_inuse *u = find(t, platform);
  if (u) {
    u->refs++;
    return 0;
  }
  char path[4200];
  snprintf(path, sizeof path, "%s/platforms/%s/.inuse", data, platform);
  int fd = open(path, O_RDONLY | O_NOFOLLOW | O_CLOEXEC);
  if (fd < 0) return errno == ENOENT ? NNO_ENOENT : NNO_EIO;
  if (flock(fd, LOCK_SH | LOCK_NB) != 0) {
    int busy = errno == EWOULDBLOCK;
    close(fd);
    return busy ? NNO_EBUSY : NNO_EIO;
  }
  /* Locked a file its remover has already unlinked: the platform is
   * going; the folder of a new platform of the same id is not made yet. */
  struct stat st;
  if (fstat(fd, &st) != 0 || st.st_nlink == 0) {
    close(fd);
    return NNO_EBUSY;
  }
  if (t->n == t->cap) {
    size_t c = t->cap ? t->cap * 2 : 16;
    prov_inuse *v = realloc(t->v, c * sizeof *v);
    if (!v) {
      close(fd);
      return NNO_ENOMEM;
    }
    t->v = v;
    t->cap = c;
  }
  u = &t->v[t->n++];
  snprintf(u->platform, sizeof u->platform, "%s", platform);
  u->refs = 1;
  u->fd = fd;
  return 0;
}

void prov_leave(prov_inuse_tab *t, const char *platform) {
  prov_inuse *u = platform ? find(t, platform) : NULL;
  if (!u || --u->refs > 0) return;
  close(u->fd); /* drops the shared lock */
  *u = t->v[--t->n];
}

void prov_inuse_free(prov_inuse_tab *t) {
  for (size_t i = 0; i < t->n; i++) close(t->v[i].fd);
  free(t->v);
  memset(t, 0, sizeof *t);
}
