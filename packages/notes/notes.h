/* What the three files of the notes package share: the host table, the
 * per-request state, and the helpers every handler uses to check a note
 * id and to run SQL. notes.c holds the notes themselves (sql), drafts.c the
 * drafts (kv), files.c the attached files (blob). */
#ifndef NNO_NOTES_H
#define NNO_NOTES_H

#include <stdint.h>

#include <jansson.h>

#include <nno/plugin.h>
#include <nno/sdk.h>

/* The host table and this plugin, set once in on_plugin_init. */
extern const nno_host_api *api;
extern nno_plugin *self;

/* The resource names of package.json's "resources". */
#define NOTES_SQL "notes"
#define NOTES_KV "drafts"
#define NOTES_BLOB "files"

#define NOTE_TITLE_MAX 200
#define NOTE_BODY_MAX 32768
/* A JSON body holds a title and a body, escaped: bounded well above. */
#define NOTE_REQUEST_MAX (8 * NOTE_BODY_MAX)
#define FILE_NAME_MAX 128

/*
 * The subtree test, as SQL, on positional parameter ?1 (the caller's
 * tenant path): a platform-wide caller ("") sees every row; a caller bound
 * to "eu" sees rows of "eu" and of any path starting with "eu/". substr()
 * rather than LIKE: nothing in a path needs escaping.
 */
#define IN_SUBTREE               \
  "(?1 = '' OR tenant_path = ?1" \
  " OR substr(tenant_path, 1, length(?1) + 1) = ?1 || '/')"

/* What a request carries from one asynchronous step to the next. Lives in
 * the request's arena (req_alloc): nothing to free but `keys`. */
typedef struct step {
  nno_sql *db;
  nno_blob *files;
  int64_t id;                   /* the note */
  char name[FILE_NAME_MAX + 1]; /* a file's name */
  char key[64 + FILE_NAME_MAX]; /* "notes/{id}/{name}" or "notes/{id}/" */
  size_t key_len;
  int status;   /* what to answer with a row */
  json_t *keys; /* deleting a note: the file keys left to delete */
  size_t next;  /* ... the next one to delete */
  /* a PUT's stored file, answered once the note is known to be there */
  char etag[128];
  int64_t size;
  uint64_t modified;
  /* files.c: what to do once the note is known to be the caller's */
  void (*then)(nno_req *req, struct step *st);
} step;

/* A new step in the request's arena, or NULL after answering 500. */
step *step_new(nno_req *req);

/* The route's {id} as a note id into *id: 0, or -1 after answering 404
 * (an id is 1 to 18 digits without a leading zero: anything else names no
 * note). */
int note_id(nno_req *req, int64_t *id);

/* Open the notes database into st->db: 0, or -1 after answering. */
int open_sql(nno_req *req, step *st);

/* Run `sql` with `params` (a JSON array, consumed; NULL when out of
 * memory) on st->db; `done` gets `st`. 0, or -1 after answering the
 * problem (the callback then never runs). */
int run_sql(nno_req *req, step *st, const char *sql, json_t *params,
            nno_sql_done_fn done);

/* A JSON array [caller's tenant path, id]: the parameters of a query on
 * one note, ?1 for IN_SUBTREE and ?2 for the id. NULL out of memory. */
json_t *note_params(nno_req *req, int64_t id);

/* ISO 8601 UTC ("2026-12-04T19:00:00Z") of unix time t. */
void iso_time(uint64_t t, char out[32]);

/* Routes (drafts.c, files.c). */
int on_draft_get(nno_req *req, void *ud);
int on_draft_put(nno_req *req, void *ud);
int on_draft_delete(nno_req *req, void *ud);
int on_files_list(nno_req *req, void *ud);
int on_file_get(nno_req *req, void *ud);
int on_file_put(nno_req *req, void *ud);
int on_file_delete(nno_req *req, void *ud);

/* Deleting a note: remove its files, then call `then` (files.c). 0, or -1
 * after answering. */
int files_remove_all(nno_req *req, step *st, void (*then)(nno_req *, step *));

#endif
