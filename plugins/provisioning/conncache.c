/* Open sqlite connections kept per pool thread, so that a resource call
 * does not pay for opening its database (and sqlite for rebuilding its WAL
 * index and re-reading the schema) every time.
 *
 * Each thread has its own few slots (thread-local): a connection is only
 * ever used by the thread that opened it, as sqlite's NOMUTEX mode needs.
 * A connection is taken out while in use and given back after the call,
 * with no transaction open. It is reused only for the very file it was
 * opened on: the path must still name the same device and inode, a regular
 * file of ours — a platform deleted and created again gets new files, and
 * the old connection is closed, never used on them. Idle connections are
 * closed after PROV_CONN_IDLE_S, which also lets the disk space of a
 * deleted platform go. */
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "prov.h"

#define SLOTS 8
#define PROV_CONN_IDLE_S 30

typedef struct slot {
  char *path;
  dev_t dev;
  ino_t ino;
  sqlite3 *db;
  time_t used;
} slot;

static __thread slot g_slot[SLOTS];

static void drop(slot *s) {
  sqlite3_close_v2(s->db);
  free(s->path);
  memset(s, 0, sizeof *s);
}

sqlite3 *prov_conn_take(const char *path, struct stat *st) {
  time_t now = time(NULL);
  int ok = lstat(path, st) == 0 && S_ISREG(st->st_mode) &&
           st->st_uid == geteuid() && !(st->st_mode & 022);
  sqlite3 *db = NULL;
  for (int i = 0; i < SLOTS; i++) {
    slot *s = &g_slot[i];
    if (!s->db) continue;
    if (strcmp(s->path, path) == 0) {
      if (ok && s->dev == st->st_dev && s->ino == st->st_ino && !db) {
        db = s->db;
        free(s->path);
        memset(s, 0, sizeof *s);
      } else {
        drop(s);
      }
    } else if (now - s->used > PROV_CONN_IDLE_S) {
      drop(s);
    }
  }
  if (!ok) memset(st, 0, sizeof *st);
  return db;
}

void prov_conn_give(const char *path, const struct stat *st, sqlite3 *db) {
  if (!db) return;
  if (!st->st_ino || !sqlite3_get_autocommit(db)) {
    sqlite3_close_v2(db);
    return;
  }
  slot *free_slot = NULL, *oldest = NULL;
  for (int i = 0; i < SLOTS; i++) {
    slot *s = &g_slot[i];
    if (!s->db) {
      if (!free_slot) free_slot = s;
    } else if (!oldest || s->used < oldest->used) {
      oldest = s;
    }
  }
  slot *s = free_slot;
  if (!s) {
    drop(oldest);
    s = oldest;
  }
  if (!(s->path = strdup(path))) {
    sqlite3_close_v2(db);
    return;
  }
  s->dev = st->st_dev;
  s->ino = st->st_ino;
  s->db = db;
  s->used = time(NULL);
}

void prov_conn_clear(void) {
  for (int i = 0; i < SLOTS; i++)
    if (g_slot[i].db) drop(&g_slot[i]);
}
