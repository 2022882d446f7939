/* Private prototypes of the provisioning core plugin.
 *
 * Two halves. The drivers (driver_sql.c, driver_kv.c, driver_blob.c),
 * the quota accounting (quota.c), the file helpers (fsutil.c), the
 * journal (journal.c) and the migrations (migrate.c) are plain C on
 * sqlite and POSIX: they never call the host, so they run on pool
 * threads and in unit tests as they are. plugin.c, provision.c and api.c
 * are the loop-thread half that meets the host.
 *
 * THREAD: driver, quota, fsutil, journal and migrate functions may run on
 * any thread; each call uses only what it is given (its own sqlite
 * connection, opened and closed within the call). */
#ifndef NNO_PROV_H
#define NNO_PROV_H

#include <stddef.h>
#include <stdint.h>
#include <sys/stat.h>

#include <jansson.h>
#include <sqlite3.h>

#define PROV_ID_MAX 65      /* ids: 1..64 of [a-z0-9-], NUL included */
#define PROV_MSG_MAX 256    /* error messages, NUL included */
#define PROV_KV_KEY_MAX 512
#define PROV_BLOB_KEY_MAX 1024
#define PROV_CTYPE_MAX 256

/* ---- bounds and results ------------------------------------------------ */

/* The bounds of one data-plane call (the plugin's config). */
typedef struct prov_bounds {
  uint32_t max_rows;       /* rows of one result (1000) */
  size_t max_result;       /* bytes of one result's JSON (1 MiB) */
  uint32_t time_ms;        /* time of one call (1000) */
  size_t max_sql;          /* bytes of SQL text, a batch's JSON too (100 KiB) */
  uint32_t max_batch;      /* statements in a batch (100) */
  size_t kv_value_max;     /* bytes of a kv value (1 MiB) */
  size_t blob_max;         /* bytes of a blob object (64 MiB) */
  uint32_t remove_wait_ms; /* a removal's wait for requests in flight
                              (30000); then it goes ahead */
} prov_bounds;

/* The defaults (the plugin's README lists them). */
void prov_bounds_default(prov_bounds *b);

/* What a driver call answers. OWNERSHIP: `json`, `cursor` and `value` are
 * malloc'd and released by prov_out_free; `fd` (blob reads) belongs to
 * whoever takes it (set it to -1 then). */
typedef struct prov_out {
  int error;                /* 0 or a negative NNO_E... code */
  char msg[PROV_MSG_MAX];   /* why, when error != 0 */
  char *json;               /* rows, keys or objects (NUL-terminated) */
  size_t json_len;
  char *cursor;             /* next page's cursor ("" or NULL at the end) */
  uint64_t changes;
  int64_t last_id;
  int found;
  void *value;
  size_t value_len;
  uint64_t expires;
  uint64_t size, modified;
  char etag[72];            /* "\"<hex>\"" */
  char ctype[PROV_CTYPE_MAX];
  int fd;
} prov_out;

void prov_out_init(prov_out *o);
void prov_out_free(prov_out *o);
/* Set o->error and o->msg (printf-like); returns `err`. */
/* A list's page into `o`: `arr` (taken; NULL means out of memory) as the
 * JSON text and `cursor` ("" at the end), unless `rc` already failed.
 * Returns `rc`, or NNO_ENOMEM with the message set. */
int prov_page_end(prov_out *o, json_t *arr, const char *cursor, int rc);
/* A list's arguments: `cursor` (hex of the last key given, or NULL/"")
 * decoded into `after` (*alen bytes), `limit` 1..1000. 0, or the error set
 * in `o` naming the `what` ("bucket", "namespace") the cursor came from. */
int prov_page_start(const char *cursor, unsigned char *after, size_t cap,
                    size_t *alen, uint32_t limit, const char *what,
                    prov_out *o);
int prov_fail(prov_out *o, int err, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

/* ---- files (fsutil.c) -------------------------------------------------- */

/* The clock of the drivers (unix seconds); tests replace it. */
extern uint64_t (*prov_clock)(void);

/* 1 if s[0..n) is an id: 1..64 of [a-z0-9-]. */
int prov_id_ok(const char *s, size_t n);
/* Make folder `path` (0700) unless it exists; an existing one must be a
 * real folder (not a link), owned by us and not writable by group or
 * others. 0, or a negative NNO_E... code with msg. */
int prov_mkdir(const char *path, char *msg, size_t cap);
/* The same checks on an existing folder, without making it. NNO_ENOENT
 * when it does not exist. */
int prov_dir_check(const char *path, char *msg, size_t cap);
/* Remove `path` and everything under it, never following a link (nftw
 * FTW_PHYS|FTW_DEPTH). 0 (also when absent) or NNO_EIO. */
int prov_rmtree(const char *path);
/* Bytes of the regular file `path`, 0 when absent. */
uint64_t prov_file_size(const char *path);
/* `path` must be a regular file (not a link) of ours, not writable by
 * group or others: 0, NNO_ENOENT ("not provisioned") or NNO_EIO. */
int prov_file_check(const char *path, char *msg, size_t cap);
/* 1 if k[0..n) is a key: 1..max bytes of UTF-8 without control
 * characters (NUL included). */
int prov_key_ok(const char *k, size_t n, size_t max);
/* Lower-case hex of n bytes into out (2n+1 bytes); 0 or -1. */
int prov_hex(const void *p, size_t n, char *out, size_t cap);
/* Back from hex into out (cap bytes), its length in *n; 0 or -1. */
int prov_unhex(const char *s, void *out, size_t cap, size_t *n);
/* Create the empty file `path` (0600) if missing. 0 or NNO_EIO. */
int prov_touch(const char *path);
/* The platform's activation lock: an exclusive flock on
 * DATA/platforms/{p}/.activate (made if missing), waited for up to
 * `wait_ms` (polled: a pool thread never blocks on it for long). An
 * activation holds it from its first step until its row is written (or it
 * failed), an alignment while it migrates, so neither runs between the
 * other's migrations and row. 0 with *fd (-1 when the platform has no
 * folder yet: nothing to guard), NNO_EBUSY when still held, NNO_EIO. */
int prov_activation_lock(const char *data, const char *platform,
                         unsigned wait_ms, int *fd);
/* fsync file or folder `path`, then the folder that holds it: what a new
 * file written without syncs (synchronous=OFF) needs once, at the end, to
 * be durable. 0 or NNO_EIO. */
int prov_sync(const char *path);

/* Connections kept per pool thread (conncache.c). take: the cached
 * connection to `path` if the file there is still the one it was opened
 * on (a regular file of ours), else NULL; *st is the file's lstat (zeroed
 * when the file is not usable). give: keep `db` for `path` as *st described
 * it when the connection was taken or opened; closed instead if a
 * transaction is open or *st is zeroed. clear: close this thread's. */
sqlite3 *prov_conn_take(const char *path, struct stat *st);
void prov_conn_give(const char *path, const struct stat *st, sqlite3 *db);
void prov_conn_clear(void);

/* ---- quota (quota.c) --------------------------------------------------- */

/* A platform's storage account: its folder and its limit in bytes. */
typedef struct prov_quota {
  const char *pdir;  /* DATA/platforms/{p} */
  uint64_t limit;    /* bytes; 0 means no limit (sql and kv writes then
                        skip the lock; blob puts still take it, as it
                        also orders puts of one key) */
} prov_quota;

/* Held while a write checks and adds what it writes: an exclusive flock
 * on pdir/.quota, so that two writes of one platform (any worker) never
 * both spend the same remaining bytes. */
typedef struct prov_qlock {
  int fd;
  uint64_t used;      /* usage when the lock was taken */
  uint64_t remaining; /* limit - used (0 when over); UINT64_MAX: no limit */
} prov_qlock;

/* Bytes the platform's resources use: sql and kv files (with their WAL
 * and journal), blob buckets' indexes and the sizes their indexes hold.
 * Reads folders and small indexes only: no walk over the objects. */
uint64_t prov_usage(const char *pdir);
/* Lock the account and measure it. 0 or a negative code with msg. */
int prov_quota_begin(const prov_quota *q, prov_qlock *l, char *msg, size_t cap);
void prov_quota_end(prov_qlock *l);

/* Plans: {"free": {"storage_mb": 100}, ...} and the default. */
typedef struct prov_plans {
  struct {
    char name[33];
    uint64_t storage_mb;
  } v[32];
  size_t n;
  uint64_t default_mb;
} prov_plans;
/* The limit in bytes of plan `name` (NULL: the default). */
uint64_t prov_plan_limit(const prov_plans *p, const char *name);

/* ---- platforms in use (inuse.c) ---------------------------------------- */

/* One platform this worker's requests use: the shared flock on its
 * .inuse is held while refs > 0. */
typedef struct prov_inuse {
  char platform[PROV_ID_MAX];
  unsigned refs;
  int fd;
} prov_inuse;

typedef struct prov_inuse_tab {
  prov_inuse *v;
  size_t n, cap;
} prov_inuse_tab;

/* A request starts using `platform`: 0, NNO_EBUSY while it is being
 * removed (its .inuse locked exclusive, or already unlinked), NNO_ENOENT
 * when it has no folder, NNO_EINVAL for a bad id. */
int prov_enter(prov_inuse_tab *t, const char *data, const char *platform);
/* The end of one successful enter; the last one releases the lock. */
void prov_leave(prov_inuse_tab *t, const char *platform);
void prov_inuse_free(prov_inuse_tab *t);

/* ---- drivers ----------------------------------------------------------- */

/* sql: run one statement (batch 0; `params` a JSON array, object or NULL)
 * or a batch (batch 1: `sql` is the JSON array of {"sql","params"}) on
 * the database file `path` (never created here). Writes are bounded by
 * `q` when not NULL. Returns o->error. */
int psql_run(const char *path, const prov_bounds *b, const prov_quota *q,
             int batch, const char *sql, const char *params, prov_out *o);
/* Create the database `path` (0600, WAL) if missing. */
int psql_create(const char *path, char *msg, size_t cap);
/* The same, then `schema` run in the new database (the kv driver's). */
int psql_create_with(const char *path, const char *schema, char *msg,
                     size_t cap);
/* Open `path` as packages do (no create, the guards on); for migrate.c. */
int psql_open(const char *path, const prov_bounds *b, sqlite3 **db,
              char *msg, size_t cap);
/* While `on` is 1, the guards of the calling thread's connection let our
 * own statements through (PRAGMA, transactions, _nno_ tables). */
void psql_trust(sqlite3 *db, int on);

/* kv: op 'g', 'p', 'd', 'l' on the namespace file `path`. */
int pkv_run(const char *path, const prov_bounds *b, const prov_quota *q,
            int op, const char *key, size_t klen, const void *value,
            size_t vlen, uint64_t ttl_s, const char *cursor, uint32_t limit,
            prov_out *o);
int pkv_create(const char *path, char *msg, size_t cap);

/* blob: op 'p', 'h', 'd', 'l' on the bucket folder `dir`. */
int pblob_run(const char *dir, const prov_bounds *b, const prov_quota *q,
              int op, const char *key, size_t klen, const char *ctype,
              const void *data, size_t len, const char *cursor,
              uint32_t limit, prov_out *o);
/* Open object `key` for reading: o->fd and its description. */
int pblob_read(const char *dir, const char *key, size_t klen, prov_out *o);
int pblob_create(const char *dir, char *msg, size_t cap);
/* Remove what a crash left in the bucket: temporary files, objects the
 * index does not name, index rows whose object is gone. Takes the
 * platform's quota lock (writes hold it) when `q` is given. */
int pblob_sweep(const char *dir, const prov_quota *q);
/* Bytes the bucket's index says its objects hold, plus the index. */
uint64_t pblob_usage(const char *dir);

/* ---- core.db: resources and the journal (journal.c) -------------------- */

typedef struct prov_resource {
  char platform[PROV_ID_MAX], incarnation[33], stack[PROV_ID_MAX];
  char type[8], name[PROV_ID_MAX], driver[16], state[16];
  char error[PROV_MSG_MAX];
  char created_at[32], updated_at[32];
} prov_resource;

/* Open core.db (created if missing) and apply our migrations. */
int pj_open(const char *path, sqlite3 **db, char *msg, size_t cap);
int pj_migrate(sqlite3 *db, char *msg, size_t cap);

/* The resource row (platform, stack, type, name): 1 found, 0 not, <0. */
int pj_resource_get(sqlite3 *db, const char *platform, const char *stack,
                    const char *type, const char *name, prov_resource *out);
/* Insert or update the row; `error` NULL clears it. */
int pj_resource_put(sqlite3 *db, const char *platform, const char *incarnation,
                    const char *stack, const char *type, const char *name,
                    const char *state, const char *error);
/* 1 if another (stack, name) of the platform and type has the same
 * "{stack}-{name}" (the same file), 0 if not, or a negative code. */
int pj_resource_clash(sqlite3 *db, const char *platform, const char *stack,
                      const char *type, const char *name);
int pj_resource_del(sqlite3 *db, const char *platform, const char *stack,
                    const char *type, const char *name);
int pj_resource_del_platform(sqlite3 *db, const char *platform);
/* Rows of `platform` ordered by (type, stack, name), after the key
 * "type/stack/name" `after` ("" for the first), at most `limit`. */
int pj_resource_list(sqlite3 *db, const char *platform, const char *after,
                     int limit, int (*fn)(void *, const prov_resource *),
                     void *ud);

/* An open intent. `args` is JSON text (the call's arguments, and the
 * "created" list of what this call made). */
typedef struct prov_intent {
  int64_t id;
  char op[16], platform[PROV_ID_MAX], step[96];
  char *args; /* malloc'd */
} prov_intent;

int pj_intent_open(sqlite3 *db, const char *op, const char *platform,
                   const char *args, int64_t *id);
int pj_intent_step(sqlite3 *db, int64_t id, const char *step,
                   const char *args);
int pj_intent_close(sqlite3 *db, int64_t id);
/* Every open intent, oldest first; fn's intent is borrowed. */
int pj_intent_each(sqlite3 *db, int (*fn)(void *, const prov_intent *),
                   void *ud);

/* ---- the control plane's steps (steps.c, pool side) --------------------- */

/* Where a resource lives: DATA/platforms/{p}/{type}/{p}-{stack}-{name}
 * (+ ".db" for sql and kv). 0 or NNO_EINVAL (bad id or type). */
int prov_resource_path(const char *data, const char *platform,
                       const char *stack, const char *type, const char *name,
                       char *out, size_t cap);
int prov_platform_dir(const char *data, const char *platform, char *out,
                      size_t cap);

/* What every platform has: DATA/platforms/{p}/ with shell/, sql/, kv/,
 * blob/, .inuse and .quota. Idempotent. */
int prov_platform_files(const char *data, const char *platform, char *msg,
                        size_t cap);
/* Create the resource at `path` (see prov_resource_path) if missing. */
int prov_resource_make(const char *path, const char *type, char *msg,
                       size_t cap);
/* Remove it (a file with its -wal and -shm, or a bucket folder). */
int prov_resource_unlink(const char *path);
/* A package of the stack being activated (copied off the loop). */
typedef struct prov_pkg {
  char name[PROV_ID_MAX];
  char *dir;       /* the package folder */
  char *resources; /* its manifest's "resources" JSON */
} prov_pkg;

/* Journal an "activate" intent (*intent), create the resources the
 * packages declare (those missing; journalled before each is made), apply
 * their migrations and mark them ready. The intent stays open: the caller
 * sends ACTIVATED, then calls prov_activate_end. On failure, what this
 * call made is undone, the failing resource's row records the error, the
 * intent is closed, and `step` and `msg` say what failed. */
int prov_activate_run(sqlite3 *db, const char *data, const char *platform,
                      const char *incarnation, const char *stack,
                      const prov_pkg *pkgs, size_t n, int64_t *intent,
                      char *step, size_t scap, char *msg, size_t cap);
/* Close the intent; `ok` 0 first undoes what it created. */
int prov_activate_end(sqlite3 *db, const char *data, const char *platform,
                      int64_t intent, int ok);
/* Finish or undo every open intent of core.db `db` under DATA `data`
 * (crash recovery; one worker, at start). Returns how many it handled,
 * or a negative code with msg. */
int prov_recover(sqlite3 *db, const char *data, char *msg, size_t cap);
/* Undo what intent `args` ("created" list) made: remove the files and
 * forget their rows. */
int prov_undo_created(sqlite3 *db, const char *data, const char *platform,
                      const char *args);
/* Remove the platform's folder (renamed aside first) and its rows. */
int prov_remove_data(sqlite3 *db, const char *data, const char *platform,
                     const char *incarnation, char *msg, size_t cap);
/* tar.gz of the platform's folder into `out` (written aside, then
 * renamed). Regular files and folders only. */
int prov_archive(const char *pdir, const char *out, char *msg, size_t cap);

/* ---- migrations (migrate.c) -------------------------------------------- */

/* Bring the sql resource `dbpath` to the package's migrations/{name}/
 * in one transaction: apply the NNNN_*.sql it lacks, recording each in
 * _nno_migrations with its NNNN_*.down.sql text; or, when the database is
 * further than the folder goes (a rollback), run the stored inverses down
 * to it (NNO_EREFUSED if one is missing). `pkgdir` is the package folder.
 * 0, or a negative code with msg; on error the database is unchanged. */
int prov_migrate(const char *dbpath, int fresh, const char *pkgdir,
                 const char *package,
                 const char *name, char *msg, size_t cap);
/* prov_migrate in three steps, so that the migrations of several
 * packages (several databases) commit together or not at all: begin runs
 * them in a transaction left open on *db (opened when *db is NULL,
 * reused when it holds the transaction of an earlier package on the same
 * file; left NULL when there is nothing to do); then commit (which closes
 * it, and syncs a fresh file) or abort (rolls back, closes). begin's
 * error leaves *db for abort. Every down migration shipped is run and
 * undone right after its up (mig_down_check): one the guards refuse
 * refuses the activation. */
int prov_migrate_begin(sqlite3 **db, const char *dbpath, int fresh,
                       const char *pkgdir, const char *package,
                       const char *name, char *msg, size_t cap);
int prov_migrate_commit(sqlite3 *db, const char *dbpath, int fresh, char *msg,
                        size_t cap);
void prov_migrate_abort(sqlite3 *db);
/* prov_migrate, telling (each when not NULL) in *from the level the
 * database was at before (-1 when it was not read) and in *to the level
 * it is at after a success. */
int prov_migrate_to(const char *dbpath, int fresh, const char *pkgdir,
                    const char *package, const char *name, int64_t *from,
                    int64_t *to, char *msg, size_t cap);

/* ---- failpoints -------------------------------------------------------- */

/* In the test-only build (NNO_FAILPOINTS): 1 when env NNO_FAILPOINT names
 * `step` (the step then fails); raise(SIGKILL) when NNO_FAILPOINT_KILL
 * names it. Always 0 in the installed plugin. */
#ifdef NNO_FAILPOINTS
int prov_failpoint(const char *step);
#else
#define prov_failpoint(step) 0
#endif

#endif /* NNO_PROV_H */
