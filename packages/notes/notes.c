/* notes: the model feature package — read this first (see README.md).
 *
 *   GET    /notes                      the caller's notes, a page at a time
 *   POST   /notes                      {"title", "body"?} -> 201 the note
 *   GET    /notes/{id}                 one note
 *   PATCH  /notes/{id}                 {"title"?, "body"?} -> the note
 *   DELETE /notes/{id}                 the note and its files -> 204
 *   GET|PUT|DELETE /notes/draft        the caller's draft (drafts.c, kv)
 *   GET    /notes/{id}/files           its files (files.c, blob)
 *   GET|PUT|DELETE /notes/{id}/files/{name}
 *
 * It owns no file and no connection: package.json declares three
 * resources, the platform's provisioning creates them when the stack is
 * activated, and each request opens the ones of its own platform. That is
 * all the isolation between platforms there is to write: a handle can only
 * reach the request's platform. Between tenants of one platform, every
 * query carries the caller's tenant path (IN_SUBTREE).
 *
 * Every storage call is asynchronous: a handler starts one, returns
 * NNO_ASYNC, and the callback answers and calls res_end() — or starts the
 * next step. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "notes.h"

const nno_host_api *api;
nno_plugin *self;

/* The columns a note is answered with. Lists leave out the body: a page of
 * 100 notes of 32 KiB would pass the host's bound on a result (1 MiB). */
#define NOTE_COLUMNS \
  "id, tenant_path AS tenant, title, body, created_by, created_at, updated_at"
#define LIST_COLUMNS \
  "id, tenant_path AS tenant, title, created_by, created_at, updated_at"
#define NOW "strftime('%Y-%m-%dT%H:%M:%SZ', 'now')"

/* ---- helpers shared by the three files ----------------------------------- */

step *step_new(nno_req *req) {
  step *st = api->req_alloc(req, sizeof *st);
  if (!st) {
    nno_problem(req, 500, NULL, "out of memory");
    return NULL;
  }
  memset(st, 0, sizeof *st);
  st->status = 200;
  return st;
}

int note_id(nno_req *req, int64_t *id) {
  nno_str s;
  if (api->req_param(req, "id", &s) != NNO_OK || s.len < 1 || s.len > 18 ||
      s.ptr[0] == '0')
    goto none;
  int64_t v = 0;
  for (size_t i = 0; i < s.len; i++) {
    if (s.ptr[i] < '0' || s.ptr[i] > '9') goto none;
    v = v * 10 + (s.ptr[i] - '0');
  }
  *id = v;
  return 0;
none:
  nno_problem(req, 404, NULL, "no such note");
  return -1;
}

int open_sql(nno_req *req, step *st) {
  int rc = api->sql_open(req, NOTES_SQL, &st->db);
  if (rc == NNO_OK) return 0;
  nno_problem_storage(req, rc, "the notes database", NULL);
  return -1;
}

int run_sql(nno_req *req, step *st, const char *sql, json_t *params,
            nno_sql_done_fn done) {
  char *text = params ? nno_json_text(params) : NULL;
  json_decref(params);
  if (!text) {
    nno_problem(req, 500, NULL, "out of memory");
    return -1;
  }
  int rc = api->sql_exec(st->db, sql, text, done, st);
  free(text);
  if (rc == NNO_OK) return 0;
  nno_problem_storage(req, rc, "the notes database", NULL);
  return -1;
}

json_t *note_params(nno_req *req, int64_t id) {
  nno_str path = api->req_tenant_path(req);
  return json_pack("[s%, I]", path.ptr ? path.ptr : "", path.len,
                   (json_int_t)id);
}

void iso_time(uint64_t t, char out[32]) {
  time_t tt = (time_t)t;
  struct tm tm;
  if (!gmtime_r(&tt, &tm) || !strftime(out, 32, "%Y-%m-%dT%H:%M:%SZ", &tm))
    snprintf(out, 32, "1970-01-01T00:00:00Z");
}

/* The rows of a result, parsed; NULL after answering 500. */
static json_t *rows_of(nno_req *req, const nno_sql_result *res) {
  json_t *rows = json_loadb(res->rows.ptr, res->rows.len, 0, NULL);
  if (json_is_array(rows)) return rows;
  json_decref(rows);
  nno_problem(req, 500, NULL, "the notes database answered no rows");
  return NULL;
}

/* ---- one note ------------------------------------------------------------ */

/* A query that returns the note (or nothing: it does not exist, or is
 * outside the caller's subtree — the same 404 either way, so a caller
 * cannot tell another tenant's note from a missing one). */
static void answer_note(nno_req *req, const nno_sql_result *res, void *ud) {
  step *st = ud;
  json_t *rows = NULL;
  if (res->error)
    nno_problem_storage(req, res->error, "the notes database",
                        res->error_message);
  else if ((rows = rows_of(req, res)) && json_array_size(rows) == 0)
    nno_problem(req, 404, NULL, "no such note");
  else if (rows)
    nno_send_json(req, st->status, json_incref(json_array_get(rows, 0)));
  json_decref(rows);
  api->res_end(req);
}

static int on_get(nno_req *req, void *ud) {
  step *st = step_new(req);
  if (!st || note_id(req, &st->id) || open_sql(req, st)) return NNO_OK;
  if (run_sql(req, st,
              "SELECT " NOTE_COLUMNS
              " FROM notes WHERE id = ?2 AND " IN_SUBTREE,
              note_params(req, st->id), answer_note))
    return NNO_OK;
  return NNO_ASYNC;
}

/* The fields a note's body may hold. POST requires the title; PATCH takes
 * either or both. */
static const nno_field create_fields[] = {
    NNO_FIELD_STR("title", 1, 1, NOTE_TITLE_MAX),
    NNO_FIELD_STR("body", 0, 0, NOTE_BODY_MAX)};
static const nno_field patch_fields[] = {
    NNO_FIELD_STR("title", 0, 1, NOTE_TITLE_MAX),
    NNO_FIELD_STR("body", 0, 0, NOTE_BODY_MAX)};

/* A string member, or JSON null when absent (SQL NULL: coalesce keeps the
 * old value). */
static json_t *or_null(json_t *o, const char *name) {
  json_t *v = json_object_get(o, name);
  return v ? json_incref(v) : json_null();
}

static int on_create(nno_req *req, void *ud) {
  json_t *o;
  char actor[NNO_ACTOR_MAX];
  step *st = step_new(req);
  if (!st) return NNO_OK;
  if (nno_body_object(req, NOTE_REQUEST_MAX, NNO_BODY_JSON_TYPE, &o))
    return NNO_OK;
  if (nno_fields_check(req, o, create_fields, 2) ||
      nno_check_name(req, "title",
                     json_string_value(json_object_get(o, "title")),
                     NOTE_TITLE_MAX) ||
      open_sql(req, st)) {
    json_decref(o);
    return NNO_OK;
  }
  /* The row is stamped with the caller's tenant path: who may see it is
   * decided once, when it is written. Text goes in as parameters, never
   * into the SQL. */
  nno_str path = api->req_tenant_path(req);
  json_t *body = json_object_get(o, "body");
  nno_caller_actor(req, actor, sizeof actor);
  json_t *params = json_pack("[s%, O, s, s]", path.ptr ? path.ptr : "",
                             path.len, json_object_get(o, "title"),
                             body ? json_string_value(body) : "", actor);
  json_decref(o);
  st->status = 201;
  if (run_sql(req, st,
              "INSERT INTO notes (tenant_path, title, body, created_by,"
              " created_at, updated_at) VALUES (?1, ?2, ?3, ?4, " NOW ", " NOW
              ") RETURNING " NOTE_COLUMNS,
              params, answer_note))
    return NNO_OK;
  return NNO_ASYNC;
}

static int on_patch(nno_req *req, void *ud) {
  json_t *o;
  step *st = step_new(req);
  if (!st || note_id(req, &st->id)) return NNO_OK;
  if (nno_body_object(req, NOTE_REQUEST_MAX, NNO_BODY_JSON_TYPE, &o))
    return NNO_OK;
  json_t *title = json_object_get(o, "title");
  if (nno_fields_check(req, o, patch_fields, 2) ||
      (title && nno_check_name(req, "title", json_string_value(title),
                               NOTE_TITLE_MAX))) {
    json_decref(o);
    return NNO_OK;
  }
  if (json_object_size(o) == 0) {
    json_decref(o);
    return nno_problem(req, 422, NULL,
                       "nothing to change: send a title, a "
                       "body or both");
  }
  json_t *params = note_params(req, st->id);
  if (params) {
    json_array_append_new(params, or_null(o, "title"));
    json_array_append_new(params, or_null(o, "body"));
  }
  json_decref(o);
  if (open_sql(req, st) ||
      run_sql(req, st,
              "UPDATE notes SET title = coalesce(?3, title),"
              " body = coalesce(?4, body), updated_at = " NOW
              " WHERE id = ?2 AND " IN_SUBTREE " RETURNING " NOTE_COLUMNS,
              params, answer_note))
    return NNO_OK;
  return NNO_ASYNC;
}

/* DELETE: find the note (in the caller's subtree), remove its files, then
 * the row. Files first: if one cannot be removed the note stays, and the
 * same DELETE again finishes the job; the other way round would leave
 * files no route can reach. Once the row is gone the files are swept
 * again: a PUT past its note check before the row went may have stored
 * its file after the first listing. A PUT storing after the sweep finds
 * the note gone and removes its own file (files.c), so none is left. */
static void swept(nno_req *req, step *st) {
  (void)st;
  api->res_status(req, 204);
  api->res_end(req);
}

static void deleted(nno_req *req, const nno_sql_result *res, void *ud) {
  step *st = ud;
  if (res->error)
    nno_problem_storage(req, res->error, "the notes database",
                        res->error_message);
  else if (files_remove_all(req, st, swept) == 0)
    return; /* swept answers */
  api->res_end(req);
}

static void files_gone(nno_req *req, step *st) {
  if (run_sql(req, st, "DELETE FROM notes WHERE id = ?2 AND " IN_SUBTREE,
              note_params(req, st->id), deleted))
    api->res_end(req);
}

static void found_for_delete(nno_req *req, const nno_sql_result *res,
                             void *ud) {
  step *st = ud;
  json_t *rows = NULL;
  if (res->error)
    nno_problem_storage(req, res->error, "the notes database",
                        res->error_message);
  else if ((rows = rows_of(req, res)) && json_array_size(rows) == 0)
    nno_problem(req, 404, NULL, "no such note");
  else if (rows && files_remove_all(req, st, files_gone) == 0) {
    json_decref(rows);
    return; /* the next step answers */
  }
  json_decref(rows);
  api->res_end(req);
}

static int on_delete(nno_req *req, void *ud) {
  step *st = step_new(req);
  if (!st || note_id(req, &st->id) || open_sql(req, st)) return NNO_OK;
  if (run_sql(req, st, "SELECT id FROM notes WHERE id = ?2 AND " IN_SUBTREE,
              note_params(req, st->id), found_for_delete))
    return NNO_OK;
  return NNO_ASYNC;
}

/* ---- the list ------------------------------------------------------------ */

/* A page in id order. The cursor is the last id of the page before (the
 * SDK encodes it); ask for limit + 1 rows to know whether a next page
 * exists. */
typedef struct list_step {
  step st;
  nno_pager pg;
} list_step;

static void answer_list(nno_req *req, const nno_sql_result *res, void *ud) {
  list_step *ls = ud;
  json_t *rows = NULL, *row;
  size_t i;
  char key[24];
  if (res->error) {
    nno_problem_storage(req, res->error, "the notes database",
                        res->error_message);
    goto out;
  }
  if (!(rows = rows_of(req, res))) goto out;
  json_array_foreach(rows, i, row) {
    if (nno_pager_full(&ls->pg)) break;
    snprintf(key, sizeof key, "%lld",
             (long long)json_integer_value(json_object_get(row, "id")));
    if (nno_pager_add(&ls->pg, json_incref(row), key) != NNO_OK) {
      nno_problem(req, 500, NULL, "out of memory");
      goto out;
    }
  }
  nno_pager_send(req, &ls->pg);
out:
  nno_pager_free(&ls->pg);
  json_decref(rows);
  api->res_end(req);
}

static int on_list(nno_req *req, void *ud) {
  char after[NNO_PAGE_KEY_MAX];
  list_step *ls = api->req_alloc(req, sizeof *ls);
  if (!ls) return nno_problem(req, 500, NULL, "out of memory");
  memset(ls, 0, sizeof *ls);
  if (nno_pager_start(req, &ls->pg, 20, 100, after, sizeof after))
    return NNO_OK;
  /* The cursors this API makes hold a decimal id. */
  size_t n = strlen(after);
  if (n > 18 || strspn(after, "0123456789") != n) {
    nno_pager_free(&ls->pg);
    return nno_problem(req, 422, "cursor",
                       "field \"cursor\": not a cursor this API returned");
  }
  long long from = n ? strtoll(after, NULL, 10) : 0;
  nno_str path = api->req_tenant_path(req);
  json_t *params = json_pack("[s%, I, i]", path.ptr ? path.ptr : "", path.len,
                             (json_int_t)from, ls->pg.limit + 1);
  if (open_sql(req, &ls->st) ||
      run_sql(req, &ls->st,
              "SELECT " LIST_COLUMNS " FROM notes WHERE " IN_SUBTREE
              " AND id > ?2 ORDER BY id LIMIT ?3",
              params, answer_list)) {
    nno_pager_free(&ls->pg);
    return NNO_OK;
  }
  return NNO_ASYNC;
}

/* ---- the plugin ---------------------------------------------------------- */

static int notes_init(nno_plugin *p, const nno_host_api *host) {
  api = host;
  self = p;
  nno_sdk_init(p, host);
  if (!NNO_HAS(api, res_blob)) {
    api->plugin_fail(p, "notes needs a host with ABI 1.2 (this one has %u.%u)",
                     api->abi_major, api->abi_minor);
    return NNO_ENOTSUP;
  }
  static const struct {
    const char *method, *path;
    nno_handler_fn fn;
  } routes[] = {
      {"GET", "/notes", on_list},
      {"POST", "/notes", on_create},
      {"GET", "/notes/draft", on_draft_get},
      {"PUT", "/notes/draft", on_draft_put},
      {"DELETE", "/notes/draft", on_draft_delete},
      {"GET", "/notes/{id}", on_get},
      {"PATCH", "/notes/{id}", on_patch},
      {"DELETE", "/notes/{id}", on_delete},
      {"GET", "/notes/{id}/files", on_files_list},
      {"GET", "/notes/{id}/files/{name}", on_file_get},
      {"PUT", "/notes/{id}/files/{name}", on_file_put},
      {"DELETE", "/notes/{id}/files/{name}", on_file_delete},
  };
  for (size_t i = 0; i < sizeof routes / sizeof *routes; i++) {
    int rc =
        api->route_add(p, routes[i].method, routes[i].path, routes[i].fn, NULL);
    if (rc != NNO_OK) {
      api->plugin_fail(p, "cannot bind %s %s: %s", routes[i].method,
                       routes[i].path, api->strerror(rc));
      return rc;
    }
  }
  return NNO_OK;
}

NNO_PLUGIN(.name = "notes", .version = "1.0.0", .kind = NNO_KIND_FEATURE,
           .on_plugin_init = notes_init)
