/* Private helpers shared by store.c and store_model.c: statements with
 * bound values, result-code mapping, column copies. Not part of the
 * store's interface (store.h). */
#ifndef NNO_REGISTRY_STORE_INT_H
#define NNO_REGISTRY_STORE_INT_H

#include <stddef.h>

#include <sqlite3.h>

/* A sqlite result code (extended codes on) as a store_rc. */
int store__map_rc(sqlite3 *db, int rc);
/* Prepare `sql` into *st (NULL on failure). */
int store__prep(sqlite3 *db, const char *sql, sqlite3_stmt **st);
/* Prepare `sql` and bind values by `fmt`: 's' a const char * (NULL binds
 * NULL), 'i' an int64_t. *st is ready to step; finalize it. */
int store__query(sqlite3 *db, sqlite3_stmt **st, const char *sql,
                 const char *fmt, ...);
/* Run a statement that returns no rows, binding as store__query; *changes
 * (if not NULL) receives the number of rows changed. Finalizes. */
int store__run(sqlite3 *db, int *changes, const char *sql, const char *fmt,
               ...);
/* Step: STORE_OK with a row, STORE_NOTFOUND at the end, or an error. */
int store__next_row(sqlite3 *db, sqlite3_stmt *st);
/* Copy column i as text into out (cap bytes; "" for NULL). */
void store__col(sqlite3_stmt *st, int i, char *out, size_t cap);
/* One text column of the one row `sql` (with a single text parameter
 * `key`) selects, copied into out. STORE_OK, STORE_NOTFOUND or an error. */
int store__scalar(sqlite3 *db, const char *sql, const char *key, char *out,
                  size_t cap);
/* Column i as text, borrowed until the next step (NULL for NULL). */
const char *store__col_str(sqlite3_stmt *st, int i);

#endif
