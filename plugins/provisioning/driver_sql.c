/* The local driver's sql resources: one sqlite file per resource, opened
 * for each call with the guards that keep package SQL inside its file
 * (an authorizer, no ATTACH, no extensions, defensive mode) and within
 * its bounds (rows, result bytes, time, text length, batch size, the
 * platform's quota). */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include <jansson.h>
#include <nno/plugin.h>
#include <sodium.h>

#include "prov.h"

/* Our own statements run with the guard off. A connection is used by one
 * thread at a time and a thread runs one call at a time, so the flag of
 * the running thread is the flag of the running connection. */
static __thread int g_trusted;
/* Set when the guard refused something: the statement's failure, whatever
 * code sqlite reports for it, is a refusal. */
static __thread int g_denied;

void psql_trust(sqlite3 *db, int on) {
  (void)db;
  g_trusted = on;
}

static int is_nno(const char *s) { return s && strncasecmp(s, "_nno_", 5) == 0; }

/* PRAGMAs a package may run: reads only. The first group takes a table
 * or index name, the second no argument at all (with one it would set). */
static int pragma_ok(const char *name, const char *arg) {
  static const char *const named[] = {"table_info",  "table_xinfo",
                                      "index_list",  "index_info",
                                      "index_xinfo", "foreign_key_list",
                                      "foreign_key_check"};
  static const char *const bare[] = {"user_version", "application_id",
                                     "data_version", "page_count",
                                     "page_size",    "freelist_count",
                                     "encoding",     "schema_version"};
  if (!name) return 0;
  for (size_t i = 0; i < sizeof named / sizeof *named; i++)
    if (strcasecmp(name, named[i]) == 0) return !is_nno(arg);
  for (size_t i = 0; i < sizeof bare / sizeof *bare; i++)
    if (strcasecmp(name, bare[i]) == 0) return arg == NULL;
  return 0;
}

static int check(int action, const char *a, const char *b,
                 const char *dbname) {
  if (g_trusted) return SQLITE_OK;
  if (dbname && strcmp(dbname, "main") != 0 && strcmp(dbname, "temp") != 0)
    return SQLITE_DENY;
  switch (action) {
  case SQLITE_ATTACH:
  case SQLITE_DETACH:
  case SQLITE_TRANSACTION: /* each call is its own transaction */
  case SQLITE_SAVEPOINT:
    return SQLITE_DENY;
  case SQLITE_PRAGMA:
    return pragma_ok(a, b) ? SQLITE_OK : SQLITE_DENY;
  case SQLITE_FUNCTION:
    return b && (strcasecmp(b, "load_extension") == 0 ||
                 strcasecmp(b, "fts3_tokenizer") == 0)
               ? SQLITE_DENY
               : SQLITE_OK;
  case SQLITE_READ:
  case SQLITE_UPDATE:
    return is_nno(a) ? SQLITE_DENY : SQLITE_OK;
  default:
    return is_nno(a) || is_nno(b) ? SQLITE_DENY : SQLITE_OK;
  }
}

static int guard(void *ud, int action, const char *a, const char *b,
                 const char *dbname, const char *trigger) {
  (void)ud, (void)trigger;
  int rc = check(action, a, b, dbname);
  if (rc == SQLITE_DENY) g_denied = 1;
  return rc;
}

/* The time bound: interrupt once the deadline passed. */
typedef struct deadline {
  struct timespec end;
} deadline;

static int on_progress(void *ud) {
  deadline *d = ud;
  struct timespec now;
  clock_gettime(CLOCK_MONOTONIC, &now);
  return now.tv_sec > d->end.tv_sec ||
         (now.tv_sec == d->end.tv_sec && now.tv_nsec >= d->end.tv_nsec);
}

int psql_open(const char *path, const prov_bounds *b, sqlite3 **db,
              char *msg, size_t cap) {
  *db = NULL;
  int rc = prov_file_check(path, msg, cap);
  if (rc) return rc;
  int src = sqlite3_open_v2(path, db,
                            SQLITE_OPEN_READWRITE | SQLITE_OPEN_NOMUTEX |
                                SQLITE_OPEN_NOFOLLOW,
                            NULL);
  if (src != SQLITE_OK) {
    snprintf(msg, cap, "cannot open the resource: %s",
             *db ? sqlite3_errmsg(*db) : "out of memory");
    sqlite3_close_v2(*db);
    *db = NULL;
    return src == SQLITE_CANTOPEN ? NNO_ENOENT : NNO_EIO;
  }
  sqlite3_extended_result_codes(*db, 1);
  sqlite3_db_config(*db, SQLITE_DBCONFIG_DEFENSIVE, 1, NULL);
  sqlite3_db_config(*db, SQLITE_DBCONFIG_ENABLE_LOAD_EXTENSION, 0, NULL);
  sqlite3_db_config(*db, SQLITE_DBCONFIG_TRUSTED_SCHEMA, 0, NULL);
  sqlite3_limit(*db, SQLITE_LIMIT_ATTACHED, 0);
  sqlite3_limit(*db, SQLITE_LIMIT_SQL_LENGTH, (int)b->max_sql);
  sqlite3_busy_timeout(*db, (int)b->time_ms);
  g_trusted = 1;
  src = sqlite3_exec(*db,
                     "PRAGMA foreign_keys=ON; PRAGMA journal_size_limit=1048576;",
                     NULL, NULL, NULL);
  g_trusted = 0;
  if (src != SQLITE_OK) {
    snprintf(msg, cap, "cannot open the resource: %s", sqlite3_errmsg(*db));
    sqlite3_close_v2(*db);
    *db = NULL;
    return (src & 0xff) == SQLITE_BUSY ? NNO_EBUSY : NNO_EIO;
  }
  sqlite3_set_authorizer(*db, guard, NULL);
  return 0;
}

int psql_create(const char *path, char *msg, size_t cap) {
  return psql_create_with(path, "", msg, cap);
}

int psql_create_with(const char *path, const char *schema, char *msg,
                     size_t cap) {
  int fd = open(path, O_RDWR | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0600);
  if (fd < 0 && errno != EEXIST) {
    snprintf(msg, cap, "cannot create %s: %s", path, strerror(errno));
    return NNO_EIO;
  }
  if (fd >= 0) close(fd);
  int rc = prov_file_check(path, msg, cap);
  if (rc) return rc == NNO_ENOENT ? NNO_EIO : rc;
  sqlite3 *db = NULL;
  int src = sqlite3_open_v2(path, &db,
                            SQLITE_OPEN_READWRITE | SQLITE_OPEN_NOMUTEX |
                                SQLITE_OPEN_NOFOLLOW,
                            NULL);
  if (src == SQLITE_OK) {
    sqlite3_busy_timeout(db, 5000);
    src = sqlite3_exec(db, "PRAGMA synchronous=OFF; PRAGMA journal_mode=WAL",
                       NULL, NULL, NULL);
  if (src == SQLITE_OK) src = sqlite3_exec(db, schema, NULL, NULL, NULL);
  }
  if (src != SQLITE_OK)
    snprintf(msg, cap, "cannot create %s: %s", path,
             db ? sqlite3_errmsg(db) : "out of memory");
  sqlite3_close_v2(db);
  /* Built without syncs (a crash before it is recorded ready discards
   * it): made durable once, here. */
  if (src == SQLITE_OK && prov_sync(path)) {
    snprintf(msg, cap, "cannot sync %s: %s", path, strerror(errno));
    return NNO_EIO;
  }
  return src == SQLITE_OK ? 0 : NNO_EIO;
}

/* ---- one call --------------------------------------------------------- */

/* A result's JSON text, bounded. */
typedef struct buf {
  char *p;
  size_t n, cap, max;
} buf;

static int buf_add(buf *b, const char *s, size_t n) {
  if (b->n + n + 1 > b->max) return NNO_ETOOBIG;
  if (b->n + n + 1 > b->cap) {
    size_t c = b->cap ? b->cap : 256;
    while (c < b->n + n + 1) c *= 2;
    char *p = realloc(b->p, c);
    if (!p) return NNO_ENOMEM;
    b->p = p;
    b->cap = c;
  }
  memcpy(b->p + b->n, s, n);
  b->n += n;
  b->p[b->n] = '\0';
  return 0;
}

typedef struct call {
  sqlite3 *db;
  const prov_bounds *b;
  prov_out *o;
  buf out;
  uint64_t rows;   /* rows so far (a batch counts them all) */
  uint64_t changes;
  int64_t last_id;
} call;

/* The map of a sqlite code onto ours, with the message. */
static int sql_error(call *c, int src, const char *what) {
  const char *m = sqlite3_errmsg(c->db);
  if (g_denied) src = SQLITE_AUTH;
  switch (src & 0xff) {
  case SQLITE_CONSTRAINT:
    return prov_fail(c->o, NNO_EREFUSED, "%s", m);
  case SQLITE_FULL:
    return prov_fail(c->o, NNO_EQUOTA,
                     "the platform's storage quota would be exceeded; "
                     "nothing was written");
  case SQLITE_INTERRUPT:
    return prov_fail(c->o, NNO_ETIMEDOUT, "over the time bound of %u ms",
                     c->b->time_ms);
  case SQLITE_BUSY:
  case SQLITE_LOCKED:
    return prov_fail(c->o, NNO_EBUSY, "the database stayed locked");
  case SQLITE_AUTH:
    return prov_fail(c->o, NNO_EINVAL,
                     "refused: this statement reaches outside the resource "
                     "(ATTACH, PRAGMA, load_extension, transactions and "
                     "_nno_ tables are not allowed)");
  case SQLITE_TOOBIG:
    return prov_fail(c->o, NNO_ETOOBIG, "%s", m);
  case SQLITE_NOMEM:
    return prov_fail(c->o, NNO_ENOMEM, "out of memory");
  case SQLITE_ERROR:
  case SQLITE_RANGE:
  case SQLITE_MISMATCH:
    return prov_fail(c->o, NNO_EINVAL, "%s", m);
  default:
    return prov_fail(c->o, NNO_EIO, "%s: %s", what, m);
  }
}

/* The first keyword of `sql`, past blanks and comments, upper-cased. */
static void first_word(const char *s, char *out, size_t cap) {
  for (;;) {
    while (*s == ' ' || *s == '\t' || *s == '\n' || *s == '\r' || *s == '\f')
      s++;
    if (s[0] == '-' && s[1] == '-') {
      while (*s && *s != '\n') s++;
    } else if (s[0] == '/' && s[1] == '*') {
      const char *e = strstr(s + 2, "*/");
      s = e ? e + 2 : s + strlen(s);
    } else {
      break;
    }
  }
  size_t n = 0;
  while (n + 1 < cap && ((*s >= 'a' && *s <= 'z') || (*s >= 'A' && *s <= 'Z')))
    out[n++] = (char)(*s >= 'a' ? *s - 32 : *s), s++;
  out[n] = '\0';
}

static int bind_one(sqlite3_stmt *st, int i, const json_t *v) {
  switch (json_typeof(v)) {
  case JSON_NULL: return sqlite3_bind_null(st, i);
  case JSON_TRUE: return sqlite3_bind_int(st, i, 1);
  case JSON_FALSE: return sqlite3_bind_int(st, i, 0);
  case JSON_INTEGER: return sqlite3_bind_int64(st, i, json_integer_value(v));
  case JSON_REAL: return sqlite3_bind_double(st, i, json_real_value(v));
  case JSON_STRING:
    return sqlite3_bind_text(st, i, json_string_value(v),
                             (int)json_string_length(v), SQLITE_TRANSIENT);
  default: return SQLITE_MISMATCH;
  }
}

static int bind_params(call *c, sqlite3_stmt *st, const json_t *params) {
  int want = sqlite3_bind_parameter_count(st);
  if (!params || json_is_null(params)) {
    if (want)
      return prov_fail(c->o, NNO_EINVAL,
                       "the statement has %d parameters and none were given",
                       want);
    return 0;
  }
  if (json_is_array(params)) {
    if ((int)json_array_size(params) != want)
      return prov_fail(c->o, NNO_EINVAL,
                       "the statement has %d parameters, %zu were given", want,
                       json_array_size(params));
    for (int i = 0; i < want; i++)
      if (bind_one(st, i + 1, json_array_get(params, (size_t)i)) != SQLITE_OK)
        return prov_fail(c->o, NNO_EINVAL,
                         "parameter %d: expected null, a boolean, a number or "
                         "a string",
                         i + 1);
    return 0;
  }
  if (!json_is_object(params))
    return prov_fail(c->o, NNO_EINVAL,
                     "params: expected an array (positional) or an object "
                     "(named)");
  const char *k;
  json_t *v;
  json_object_foreach((json_t *)params, k, v) {
    char name[130];
    int idx = 0;
    if (strlen(k) + 2 > sizeof name)
      return prov_fail(c->o, NNO_EINVAL, "parameter name too long");
    if (k[0] == ':' || k[0] == '@' || k[0] == '$') {
      idx = sqlite3_bind_parameter_index(st, k);
    } else {
      static const char pre[] = ":@$";
      for (int j = 0; j < 3 && !idx; j++) {
        snprintf(name, sizeof name, "%c%s", pre[j], k);
        idx = sqlite3_bind_parameter_index(st, name);
      }
    }
    if (!idx)
      return prov_fail(c->o, NNO_EINVAL,
                       "the statement has no parameter named \"%.64s\"", k);
    if (bind_one(st, idx, v) != SQLITE_OK)
      return prov_fail(c->o, NNO_EINVAL,
                       "parameter \"%.64s\": expected null, a boolean, a "
                       "number or a string",
                       k);
  }
  return 0;
}

/* One row as a JSON object appended to c->out. */
static int add_row(call *c, sqlite3_stmt *st, int first) {
  json_t *row = json_object();
  if (!row) return prov_fail(c->o, NNO_ENOMEM, "out of memory");
  int n = sqlite3_column_count(st), rc = 0;
  for (int i = 0; i < n && !rc; i++) {
    json_t *v = NULL;
    switch (sqlite3_column_type(st, i)) {
    case SQLITE_INTEGER: v = json_integer(sqlite3_column_int64(st, i)); break;
    case SQLITE_FLOAT: v = json_real(sqlite3_column_double(st, i)); break;
    case SQLITE_TEXT:
      v = json_stringn((const char *)sqlite3_column_text(st, i),
                       (size_t)sqlite3_column_bytes(st, i));
      break;
    case SQLITE_BLOB: {
      size_t len = (size_t)sqlite3_column_bytes(st, i);
      if (len > c->b->max_result) {
        rc = NNO_ETOOBIG;
        break;
      }
      size_t cap = sodium_base64_encoded_len(len, sodium_base64_VARIANT_ORIGINAL);
      char *t = malloc(cap);
      if (t) {
        const void *p = sqlite3_column_blob(st, i);
        sodium_bin2base64(t, cap, p ? p : "", len,
                          sodium_base64_VARIANT_ORIGINAL);
        v = json_string(t);
        free(t);
      }
      break;
    }
    default: v = json_null(); break;
    }
    if (rc) break;
    if (!v) v = json_null(); /* a NaN real, or out of memory */
    const char *name = sqlite3_column_name(st, i);
    if (json_object_set_new(row, name ? name : "?", v)) rc = NNO_ENOMEM;
  }
  char *t = rc ? NULL : json_dumps(row, JSON_COMPACT | JSON_ENCODE_ANY);
  json_decref(row);
  if (!rc && !t) rc = NNO_ENOMEM;
  if (!rc && !first) rc = buf_add(&c->out, ",", 1);
  if (!rc) rc = buf_add(&c->out, t, strlen(t));
  free(t);
  if (rc == NNO_ETOOBIG)
    return prov_fail(c->o, rc, "the result is over %zu bytes",
                     c->b->max_result);
  if (rc) return prov_fail(c->o, rc, "out of memory");
  return 0;
}

/* Prepare, check, bind and run one package statement; its rows go to
 * c->out as one JSON array. `write` tells whether it may change the file
 * (set before running). */
static int prepare(call *c, const char *sql, sqlite3_stmt **st) {
  const char *tail = NULL;
  char w[16];
  *st = NULL;
  g_denied = 0;
  first_word(sql, w, sizeof w);
  if (strcmp(w, "VACUUM") == 0)
    return prov_fail(c->o, NNO_EINVAL, "refused: VACUUM is not allowed");
  int src = sqlite3_prepare_v2(c->db, sql, -1, st, &tail);
  if (src != SQLITE_OK) return sql_error(c, src, "prepare");
  if (!*st) return prov_fail(c->o, NNO_EINVAL, "no statement in the text");
  if (tail && *tail) {
    sqlite3_stmt *more = NULL;
    g_trusted = 1; /* only looking: is there another statement? */
    int r2 = sqlite3_prepare_v2(c->db, tail, -1, &more, NULL);
    g_trusted = 0;
    int another = r2 != SQLITE_OK || more != NULL;
    sqlite3_finalize(more);
    if (another) {
      sqlite3_finalize(*st);
      *st = NULL;
      return prov_fail(c->o, NNO_EINVAL,
                       "one statement per call: use a batch for several");
    }
  }
  return 0;
}

static int run_stmt(call *c, sqlite3_stmt *st, const json_t *params) {
  int rc = bind_params(c, st, params);
  if (rc) return rc;
  g_denied = 0;
  if ((rc = buf_add(&c->out, "[", 1)))
    return prov_fail(c->o, rc, "the result is over %zu bytes", c->b->max_result);
  int src, first = 1;
  while ((src = sqlite3_step(st)) == SQLITE_ROW) {
    if (++c->rows > c->b->max_rows)
      return prov_fail(c->o, NNO_ETOOBIG, "the result is over %u rows",
                       c->b->max_rows);
    if ((rc = add_row(c, st, first))) return rc;
    first = 0;
  }
  if (src != SQLITE_DONE) return sql_error(c, src, "step");
  if ((rc = buf_add(&c->out, "]", 1)))
    return prov_fail(c->o, rc, "the result is over %zu bytes", c->b->max_result);
  if (!sqlite3_stmt_readonly(st)) {
    c->changes += (uint64_t)sqlite3_changes64(c->db);
    c->last_id = sqlite3_last_insert_rowid(c->db);
  }
  return 0;
}

static int trusted_exec(call *c, const char *sql) {
  g_trusted = 1;
  int src = sqlite3_exec(c->db, sql, NULL, NULL, NULL);
  g_trusted = 0;
  return src == SQLITE_OK ? 0 : sql_error(c, src, sql);
}

static void rollback(call *c) {
  if (!sqlite3_get_autocommit(c->db)) {
    g_trusted = 1;
    sqlite3_exec(c->db, "ROLLBACK", NULL, NULL, NULL);
    g_trusted = 0;
  }
}

/* Bound the file's growth to what the quota leaves. */
static int cap_growth(call *c, const prov_qlock *l) {
  if (l->remaining == UINT64_MAX) return 0;
  sqlite3_stmt *st = NULL;
  int64_t pages = 0, psize = 4096;
  g_trusted = 1;
  if (sqlite3_prepare_v2(c->db, "PRAGMA page_count", -1, &st, NULL) == SQLITE_OK &&
      sqlite3_step(st) == SQLITE_ROW)
    pages = sqlite3_column_int64(st, 0);
  sqlite3_finalize(st);
  st = NULL;
  if (sqlite3_prepare_v2(c->db, "PRAGMA page_size", -1, &st, NULL) == SQLITE_OK &&
      sqlite3_step(st) == SQLITE_ROW)
    psize = sqlite3_column_int64(st, 0);
  sqlite3_finalize(st);
  g_trusted = 0;
  if (psize <= 0) psize = 4096;
  /* The WAL holds a copy of each page written: count both. */
  int64_t grow = (int64_t)(l->remaining / 2 / (uint64_t)psize);
  char sql[64];
  snprintf(sql, sizeof sql, "PRAGMA max_page_count=%lld",
           (long long)(pages + grow > 0 ? pages + grow : 1));
  return trusted_exec(c, sql);
}

static json_t *parse_params(call *c, const char *text) {
  if (!text || !*text) return json_null();
  json_error_t e;
  json_t *v = json_loads(text, JSON_REJECT_DUPLICATES | JSON_DECODE_ANY, &e);
  if (!v)
    prov_fail(c->o, NNO_EINVAL, "params: invalid JSON (line %d, column %d)",
              e.line, e.column);
  return v;
}

int psql_run(const char *path, const prov_bounds *b, const prov_quota *q,
             int batch, const char *sql, const char *params, prov_out *o) {
  call c = {.b = b, .o = o, .out = {.max = b->max_result}};
  json_t *list = NULL, *pv = NULL;
  sqlite3_stmt *st = NULL;
  prov_qlock l = {.fd = -1, .remaining = UINT64_MAX};
  int rc = 0, write = 0, capped = 0;
  if (!sql) return prov_fail(o, NNO_EINVAL, "no SQL");
  if (strlen(sql) > b->max_sql)
    return prov_fail(o, NNO_ETOOBIG, "the SQL text is over %zu bytes",
                     b->max_sql);
  if (batch) {
    json_error_t e;
    list = json_loads(sql, JSON_REJECT_DUPLICATES, &e);
    if (!list || !json_is_array(list)) {
      json_decref(list);
      return prov_fail(o, NNO_EINVAL,
                       "a batch is a JSON array of {\"sql\", \"params\"}");
    }
    if (json_array_size(list) == 0 || json_array_size(list) > b->max_batch) {
      json_decref(list);
      return prov_fail(o, NNO_ETOOBIG, "a batch holds 1 to %u statements",
                       b->max_batch);
    }
    size_t i;
    json_t *it;
    json_array_foreach(list, i, it) {
      json_t *s = json_object_get(it, "sql"), *p = json_object_get(it, "params");
      if (!json_is_object(it) || !json_is_string(s) ||
          json_object_size(it) != (p ? 2u : 1u)) {
        json_decref(list);
        return prov_fail(o, NNO_EINVAL,
                         "batch item %zu: expected {\"sql\": \"...\", "
                         "\"params\": [...]}",
                         i);
      }
    }
  } else if (!(pv = parse_params(&c, params))) {
    return o->error;
  }
  struct stat fst;
  if (!(c.db = prov_conn_take(path, &fst)) &&
      (rc = psql_open(path, b, &c.db, o->msg, sizeof o->msg))) {
    o->error = rc;
    goto done;
  }
  deadline d;
  clock_gettime(CLOCK_MONOTONIC, &d.end);
  d.end.tv_sec += b->time_ms / 1000;
  d.end.tv_nsec += (long)(b->time_ms % 1000) * 1000000L;
  if (d.end.tv_nsec >= 1000000000L) d.end.tv_sec++, d.end.tv_nsec -= 1000000000L;
  sqlite3_progress_handler(c.db, 1000, on_progress, &d);

  if (!batch) {
    if ((rc = prepare(&c, sql, &st))) goto done;
    write = !sqlite3_stmt_readonly(st);
  } else {
    write = 1; /* a batch is one write transaction */
  }
  if (write && q && q->limit) { /* no limit: nothing to measure */
    if ((rc = prov_quota_begin(q, &l, o->msg, sizeof o->msg))) {
      o->error = rc;
      goto done;
    }
    if ((rc = cap_growth(&c, &l))) goto done;
    capped = l.remaining != UINT64_MAX;
  }
  if (write && (rc = trusted_exec(&c, "BEGIN IMMEDIATE"))) goto done;
  if (!batch) {
    rc = run_stmt(&c, st, pv);
  } else {
    size_t i;
    json_t *it;
    if ((rc = buf_add(&c.out, "[", 1))) {
      prov_fail(o, rc, "out of memory");
      goto done;
    }
    json_array_foreach(list, i, it) {
      if (i && (rc = buf_add(&c.out, ",", 1))) {
        prov_fail(o, rc, "the result is over %zu bytes", b->max_result);
        break;
      }
      if ((rc = prepare(&c, json_string_value(json_object_get(it, "sql")), &st)))
        break;
      rc = run_stmt(&c, st, json_object_get(it, "params"));
      sqlite3_finalize(st);
      st = NULL;
      if (rc) {
        char m[PROV_MSG_MAX];
        snprintf(m, sizeof m, "statement %zu: %s", i, o->msg);
        memcpy(o->msg, m, sizeof m);
        break;
      }
    }
    if (!rc && (rc = buf_add(&c.out, "]", 1)))
      prov_fail(o, rc, "the result is over %zu bytes", b->max_result);
  }
  sqlite3_finalize(st);
  st = NULL;
  if (!rc && write) rc = trusted_exec(&c, "COMMIT");
done:
  sqlite3_finalize(st);
  if (c.db) {
    if (rc) rollback(&c);
    sqlite3_progress_handler(c.db, 0, NULL, NULL);
    /* The next call on this connection may be another platform plan's:
     * no cap carried over. */
    if (capped && trusted_exec(&c, "PRAGMA max_page_count=4294967294"))
      memset(&fst, 0, sizeof fst);
    prov_conn_give(path, &fst, c.db);
  }
  prov_quota_end(&l);
  json_decref(list);
  json_decref(pv);
  if (rc) {
    if (!o->error) o->error = rc;
    free(c.out.p);
    return o->error;
  }
  o->json = c.out.p;
  o->json_len = c.out.n;
  o->changes = c.changes;
  o->last_id = c.last_id;
  return 0;
}
