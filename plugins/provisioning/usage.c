/* nno.provisioning's resource_usage: the bytes each resource of a
 * platform (or of every platform) holds, measured on the pool from the
 * rows of DATA/core.db, for usage reports and billing's hourly samples. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <jansson.h>

#include "internal.h"

typedef struct usage_job {
  char platform[PROV_ID_MAX]; /* "" : every platform */
  nno_prov_done_fn done;
  void *ud;
  json_t *out;
  int status;
  char msg[256];
} usage_job;

/* Pool: a read-only connection of its own, the rows, then each file. */
static void usage_work(void *arg) {
  usage_job *j = arg;
  sqlite3 *db = NULL;
  sqlite3_stmt *st = NULL;
  int rc = sqlite3_open_v2(g_prov.core, &db,
                           SQLITE_OPEN_READONLY | SQLITE_OPEN_NOMUTEX, NULL);
  if (rc == SQLITE_OK) {
    sqlite3_busy_timeout(db, 5000);
    rc = sqlite3_prepare_v2(
        db,
        "SELECT platform, stack, type, name FROM prov_resources"
        " WHERE state = 'ready' AND (?1 = '' OR platform = ?1)"
        " ORDER BY platform LIMIT ?2",
        -1, &st, NULL);
  }
  if (rc == SQLITE_OK) {
    sqlite3_bind_text(st, 1, j->platform, -1, SQLITE_STATIC);
    sqlite3_bind_int(st, 2, NNO_PROV_USAGE_MAX);
  }
  j->out = json_object();
  while (rc == SQLITE_OK && j->out && sqlite3_step(st) == SQLITE_ROW) {
    prov_resource r;
    memset(&r, 0, sizeof r);
    snprintf(r.platform, sizeof r.platform, "%s", sqlite3_column_text(st, 0));
    snprintf(r.stack, sizeof r.stack, "%s", sqlite3_column_text(st, 1));
    snprintf(r.type, sizeof r.type, "%s", sqlite3_column_text(st, 2));
    snprintf(r.name, sizeof r.name, "%s", sqlite3_column_text(st, 3));
    char key[8 + 2 * PROV_ID_MAX + 2];
    snprintf(key, sizeof key, "%s:%s-%s", r.type, r.stack, r.name);
    json_t *p = json_object_get(j->out, r.platform);
    if (!p) {
      p = json_object();
      if (!p || json_object_set_new(j->out, r.platform, p)) rc = SQLITE_NOMEM;
    }
    if (rc == SQLITE_OK &&
        json_object_set_new(p, key,
                            json_integer((json_int_t)prov_resource_bytes(&r))))
      rc = SQLITE_NOMEM;
  }
  if (rc != SQLITE_OK || !j->out) {
    j->status = rc == SQLITE_NOMEM || !j->out ? NNO_ENOMEM : NNO_EIO;
    snprintf(j->msg, sizeof j->msg, "core.db: %s",
             db ? sqlite3_errmsg(db) : "cannot open");
  }
  sqlite3_finalize(st);
  sqlite3_close_v2(db);
}

static void usage_after(int status, void *arg) {
  usage_job *j = arg;
  char *text = NULL;
  if (status) {
    j->status = status;
    snprintf(j->msg, sizeof j->msg, "the worker is stopping");
  } else if (!j->status && !(text = json_dumps(j->out, JSON_COMPACT))) {
    j->status = NNO_ENOMEM;
    snprintf(j->msg, sizeof j->msg, "out of memory");
  }
  if (j->status)
    j->done(j->status, "usage", j->msg, j->ud);
  else
    j->done(0, NULL, text, j->ud);
  free(text);
  json_decref(j->out);
  free(j);
}

int prov_resource_usage(const char *platform, nno_prov_done_fn done, void *ud) {
  if (!done || (platform && !prov_id_ok(platform, strlen(platform))))
    return NNO_EINVAL;
  usage_job *j = calloc(1, sizeof *j);
  if (!j) return NNO_ENOMEM;
  snprintf(j->platform, sizeof j->platform, "%s", platform ? platform : "");
  j->done = done;
  j->ud = ud;
  int rc = api->work_queue(g_prov.p, usage_work, usage_after, j);
  if (rc) free(j);
  return rc;
}
