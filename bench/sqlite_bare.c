/* The peer of the notes benchmark (bench/notes.sh): the same statement the
 * notes package runs, in a bare loop over sqlite — no HTTP, no gateway, no
 * JSON — with the pragmas the local driver opens its databases with.
 *
 *   sqlite_bare DB SECONDS THREADS PREFILL SQL
 *
 * Each of THREADS threads opens its own connection to DB and runs SQL in a
 * loop for SECONDS, each run its own transaction (as sql_exec does; DB
 * is in WAL mode already, as the driver makes its databases),
 * binding ?1 to a text id and ?2 to the iteration number. With PREFILL 0,
 * ?1 is a fresh id each time ("b-{thread}-{i}": the write case); with
 * PREFILL n, ?1 cycles over the ids "r-0".."r-{n-1}" (the read case: the
 * script inserted those rows first). Every row a statement returns is read
 * column by column. Prints "RESULT ops ops_per_s".
 */
#include <pthread.h>
#include <sqlite3.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

static const char *g_db, *g_sql;
static double g_secs;
static long g_prefill;
static atomic_long g_ops;

static double now(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static void *run(void *arg) {
  long t = (long)(intptr_t)arg, i = 0;
  sqlite3 *db;
  sqlite3_stmt *st;
  char id[64];
  if (sqlite3_open_v2(g_db, &db, SQLITE_OPEN_READWRITE, NULL) != SQLITE_OK ||
      sqlite3_busy_timeout(db, 5000) != SQLITE_OK ||
      sqlite3_exec(db, "PRAGMA foreign_keys=ON;", NULL, NULL, NULL) !=
          SQLITE_OK ||
      sqlite3_prepare_v2(db, g_sql, -1, &st, NULL) != SQLITE_OK) {
    fprintf(stderr, "sqlite_bare: %s\n", sqlite3_errmsg(db));
    exit(1);
  }
  double end = now() + g_secs;
  while (now() < end) {
    for (int k = 0; k < 64; k++, i++) {
      if (g_prefill)
        snprintf(id, sizeof id, "r-%ld", (i * 7919 + t) % g_prefill);
      else
        snprintf(id, sizeof id, "b-%ld-%ld", t, i);
      sqlite3_bind_text(st, 1, id, -1, SQLITE_TRANSIENT);
      sqlite3_bind_int64(st, 2, i);
      int rc;
      while ((rc = sqlite3_step(st)) == SQLITE_ROW)
        for (int c = 0; c < sqlite3_column_count(st); c++)
          (void)sqlite3_column_text(st, c);
      if (rc == SQLITE_BUSY) { /* starved past busy_timeout: try again */
        sqlite3_reset(st);
        k--, i--;
        continue;
      }
      if (rc != SQLITE_DONE) {
        fprintf(stderr, "sqlite_bare: %s\n", sqlite3_errmsg(db));
        exit(1);
      }
      sqlite3_reset(st);
    }
    atomic_fetch_add(&g_ops, 64);
  }
  sqlite3_finalize(st);
  sqlite3_close(db);
  return NULL;
}

int main(int argc, char **argv) {
  if (argc != 6) {
    fprintf(stderr, "usage: sqlite_bare DB SECONDS THREADS PREFILL SQL\n");
    return 2;
  }
  g_db = argv[1];
  g_secs = atof(argv[2]);
  int threads = atoi(argv[3]);
  g_prefill = atol(argv[4]);
  g_sql = argv[5];
  if (g_secs <= 0 || threads < 1 || threads > 64 || g_prefill < 0) {
    fprintf(stderr, "sqlite_bare: bad arguments\n");
    return 2;
  }
  pthread_t th[64];
  double t0 = now();
  for (long t = 0; t < threads; t++)
    pthread_create(&th[t], NULL, run, (void *)(intptr_t)t);
  for (int t = 0; t < threads; t++) pthread_join(th[t], NULL);
  double dt = now() - t0;
  long ops = atomic_load(&g_ops);
  printf("RESULT %ld %.1f\n", ops, (double)ops / dt);
  return 0;
}
