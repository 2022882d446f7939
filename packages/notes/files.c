/* Files attached to a note, in the blob bucket "files" under the key
 * "notes/{id}/{name}".
 *
 *   PUT    /notes/{id}/files/{name}   the request body, stored as it is
 *   GET    /notes/{id}/files/{name}   the file (HEAD too; ETag, 304)
 *   DELETE /notes/{id}/files/{name}   204, or 404
 *   GET    /notes/{id}/files          the note's files, a page at a time
 *
 * Every route first reads the note through the caller's subtree (sql):
 * a file is reachable exactly when its note is. Names are checked here,
 * strictly, before they become part of a key; the host checks keys again
 * (no "..", no leading '/'), and the bucket is the request's platform's
 * whatever the key says. */
#include <stdio.h>
#include <string.h>

#include "notes.h"

/* 1 to FILE_NAME_MAX of [A-Za-z0-9._-], not starting with '.': no '/', no
 * '%' (the path is not decoded, so "%2e%2e" stays three odd characters
 * and is refused rather than guessed at), no "." or "..". */
static int name_valid(nno_str s) {
  if (s.len < 1 || s.len > FILE_NAME_MAX || s.ptr[0] == '.') return 0;
  for (size_t i = 0; i < s.len; i++) {
    char c = s.ptr[i];
    if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') ||
          (c >= '0' && c <= '9') || c == '.' || c == '_' || c == '-'))
      return 0;
  }
  return 1;
}

static int open_blob(nno_req *req, step *st) {
  int rc = api->blob_open(req, NOTES_BLOB, &st->files);
  if (rc == NNO_OK) return 0;
  nno_problem_storage(req, rc, "the files", NULL);
  return -1;
}

/* The note's visibility checked, on to st->then; or the 404. */
static void note_checked(nno_req *req, const nno_sql_result *res, void *ud) {
  step *st = ud;
  if (res->error) {
    nno_problem_storage(req, res->error, "the notes database",
                        res->error_message);
  } else if (res->rows.len <= 2) { /* "[]" */
    nno_problem(req, 404, NULL, "no such note");
  } else {
    st->then(req, st);
    return;
  }
  api->res_end(req);
}

/* Read {id} and, with `named`, {name}; open the database and the bucket;
 * check the note is the caller's, then run `then` from the callback.
 * NNO_ASYNC, or NNO_OK after answering. */
static int start(nno_req *req, int named, void (*then)(nno_req *, step *)) {
  step *st = step_new(req);
  if (!st || note_id(req, &st->id)) return NNO_OK;
  int n;
  if (named) {
    nno_str name;
    if (api->req_param(req, "name", &name) != NNO_OK || !name_valid(name))
      return nno_problem(req, 400, NULL,
                         "a file name is 1 to %d of A-Z a-z 0-9 . _ -, not "
                         "starting with '.'",
                         FILE_NAME_MAX);
    memcpy(st->name, name.ptr, name.len);
    st->name[name.len] = '\0';
    n = snprintf(st->key, sizeof st->key, "notes/%lld/%s", (long long)st->id,
                 st->name);
  } else {
    n = snprintf(st->key, sizeof st->key, "notes/%lld/", (long long)st->id);
  }
  st->key_len = (size_t)n;
  st->then = then;
  if (open_sql(req, st) || open_blob(req, st) ||
      run_sql(req, st, "SELECT id FROM notes WHERE id = ?2 AND " IN_SUBTREE,
              note_params(req, st->id), note_checked))
    return NNO_OK;
  return NNO_ASYNC;
}

/* ---- PUT ---------------------------------------------------------------- */

/* The stored file, answered. */
static void put_answer(nno_req *req, step *st) {
  char at[32];
  iso_time(st->modified, at);
  api->res_header(req, "ETag", st->etag);
  nno_send_json(req, 200,
                json_pack("{s:s, s:I, s:s, s:s}", "name", st->name, "size",
                          (json_int_t)st->size, "etag", st->etag, "modified",
                          at));
  api->res_end(req);
}

/* The note went while its file was stored: the file is removed (a
 * note's id is never given again, so nothing else could reach it) and
 * the PUT answers as if the note had been gone from the start. */
static void orphan_removed(nno_req *req, const nno_blob_result *res,
                           void *ud) {
  if (res->error)
    nno_problem_storage(req, res->error, "the files", res->error_message);
  else
    nno_problem(req, 404, NULL, "no such note");
  api->res_end(req);
}

static void put_rechecked(nno_req *req, const nno_sql_result *res, void *ud) {
  step *st = ud;
  int rc;
  if (res->error) {
    nno_problem_storage(req, res->error, "the notes database",
                        res->error_message);
  } else if (res->rows.len > 2) { /* not "[]": the note is still there */
    put_answer(req, st);
    return;
  } else if ((rc = api->blob_delete(st->files, st->key, st->key_len,
                                    orphan_removed, st)) == NNO_OK) {
    return;
  } else {
    nno_problem_storage(req, rc, "the files", NULL);
  }
  api->res_end(req);
}

/* Stored; the note is read again before answering, since a DELETE may
 * have removed it (and listed its files) while the object was written. */
static void put_done(nno_req *req, const nno_blob_result *res, void *ud) {
  step *st = ud;
  if (res->error) {
    nno_problem_storage(req, res->error, "the files", res->error_message);
    api->res_end(req);
    return;
  }
  snprintf(st->etag, sizeof st->etag, "%.*s", (int)res->etag.len,
           res->etag.ptr);
  st->size = (int64_t)res->size;
  st->modified = res->modified;
  if (run_sql(req, st, "SELECT id FROM notes WHERE id = ?2 AND " IN_SUBTREE,
              note_params(req, st->id), put_rechecked))
    api->res_end(req);
}

static void put_file(nno_req *req, step *st) {
  char type[128];
  const char *ct = NULL;
  nno_str h;
  /* The Content-Type is stored and sent back with the file: keep it to
   * printable ASCII, bounded, or store the default. */
  if (api->req_header(req, "Content-Type", &h) == NNO_OK && h.len > 0 &&
      h.len < sizeof type) {
    int ok = 1;
    for (size_t i = 0; i < h.len; i++)
      if (h.ptr[i] < 0x20 || h.ptr[i] > 0x7e) ok = 0;
    if (!ok) {
      nno_problem(req, 400, NULL, "Content-Type: printable ASCII only");
      api->res_end(req);
      return;
    }
    memcpy(type, h.ptr, h.len);
    type[h.len] = '\0';
    ct = type;
  }
  /* The body is handed over as it is, not copied: it stays valid until
   * put_done, because the request does. */
  nno_str body = api->req_body(req);
  int rc = api->blob_put(st->files, st->key, st->key_len, ct, body.ptr,
                         body.len, put_done, st);
  if (rc == NNO_OK) return;
  nno_problem_storage(req, rc, "the files", NULL);
  api->res_end(req);
}

int on_file_put(nno_req *req, void *ud) {
  return start(req, 1, put_file);
}

/* ---- GET (and HEAD) ------------------------------------------------------ */

static void get_file(nno_req *req, step *st) {
  /* A file is whatever a writer sent, with the type they named, served
   * on the platform's own origin (where its users' session cookie
   * lives): a browser must save it, never render or run it there. The
   * name is [A-Za-z0-9._-] only, safe inside the quotes. */
  char disp[32 + FILE_NAME_MAX];
  snprintf(disp, sizeof disp, "attachment; filename=\"%s\"", st->name);
  api->res_header(req, "Content-Disposition", disp);
  api->res_header(req, "X-Content-Type-Options", "nosniff");
  api->res_header(req, "Content-Security-Policy",
                  "default-src 'none'; sandbox");
  /* res_blob answers (200, 304 or 404) and ends the response itself. */
  int rc = api->res_blob(req, st->files, st->key, st->key_len);
  if (rc == NNO_OK) return;
  nno_problem_storage(req, rc, "the files", NULL);
  api->res_end(req);
}

int on_file_get(nno_req *req, void *ud) {
  return start(req, 1, get_file);
}

/* ---- DELETE -------------------------------------------------------------- */

static void delete_done(nno_req *req, const nno_blob_result *res, void *ud) {
  if (res->error)
    nno_problem_storage(req, res->error, "the files", res->error_message);
  else if (!res->found)
    nno_problem(req, 404, NULL, "no such file");
  else
    api->res_status(req, 204);
  api->res_end(req);
}

static void delete_file(nno_req *req, step *st) {
  int rc = api->blob_delete(st->files, st->key, st->key_len, delete_done, st);
  if (rc == NNO_OK) return;
  nno_problem_storage(req, rc, "the files", NULL);
  api->res_end(req);
}

int on_file_delete(nno_req *req, void *ud) {
  return start(req, 1, delete_file);
}

/* ---- the list ------------------------------------------------------------ */

/* The bucket pages by itself: its cursor is wrapped into ours (the SDK's
 * opaque encoding) and handed back to it on the next request. */
typedef struct list_step {
  step st;
  int limit;
  char after[NNO_PAGE_KEY_MAX];
} list_step;

static void listed(nno_req *req, const nno_blob_result *res, void *ud) {
  step *st = ud;
  json_t *objs = NULL, *items = NULL, *o;
  size_t i;
  char next[NNO_PAGE_KEY_MAX];
  if (res->error) {
    nno_problem_storage(req, res->error, "the files", res->error_message);
    goto out;
  }
  objs = json_loadb(res->objects.ptr, res->objects.len, 0, NULL);
  items = json_array();
  if (!json_is_array(objs) || !items || res->cursor.len >= sizeof next) {
    nno_problem(req, 500, NULL, "the files answered an unreadable list");
    goto out;
  }
  /* Each object's key, less the note's prefix, is the file's name; its
   * time is written like the note's. */
  json_array_foreach(objs, i, o) {
    const char *key = json_string_value(json_object_get(o, "key"));
    if (!key || strncmp(key, st->key, st->key_len) != 0) continue;
    json_t *item = json_deep_copy(o), *mod = json_object_get(o, "modified");
    char at[32];
    iso_time(json_is_integer(mod) ? (uint64_t)json_integer_value(mod) : 0, at);
    if (!item ||
        json_object_set_new(item, "name", json_string(key + st->key_len)) !=
            0 ||
        json_object_set_new(item, "modified", json_string(at)) != 0 ||
        json_object_del(item, "key") != 0 ||
        json_array_append_new(items, item) != 0) {
      json_decref(item);
      nno_problem(req, 500, NULL, "out of memory");
      goto out;
    }
  }
  memcpy(next, res->cursor.ptr, res->cursor.len);
  next[res->cursor.len] = '\0';
  nno_send_json(req, 200, nno_page_json(items, next[0] ? next : NULL));
  items = NULL;
out:
  json_decref(items);
  json_decref(objs);
  api->res_end(req);
}

static void list_files(nno_req *req, step *st) {
  list_step *ls = (list_step *)st;
  int rc = api->blob_list(st->files, st->key, st->key_len,
                          ls->after[0] ? ls->after : NULL, (uint32_t)ls->limit,
                          listed, st);
  if (rc == NNO_OK) return;
  nno_problem_storage(req, rc, "the files", NULL);
  api->res_end(req);
}

int on_files_list(nno_req *req, void *ud) {
  list_step *ls = api->req_alloc(req, sizeof *ls);
  if (!ls) return nno_problem(req, 500, NULL, "out of memory");
  memset(ls, 0, sizeof *ls);
  if (nno_page_read(req, 50, 100, &ls->limit, ls->after, sizeof ls->after))
    return NNO_OK;
  step *st = &ls->st;
  if (note_id(req, &st->id)) return NNO_OK;
  st->key_len = (size_t)snprintf(st->key, sizeof st->key, "notes/%lld/",
                                 (long long)st->id);
  st->then = list_files;
  if (open_sql(req, st) || open_blob(req, st) ||
      run_sql(req, st, "SELECT id FROM notes WHERE id = ?2 AND " IN_SUBTREE,
              note_params(req, st->id), note_checked))
    return NNO_OK;
  return NNO_ASYNC;
}

/* ---- every file of a note (DELETE /notes/{id}) --------------------------- */

/* List a page of the note's files, delete them one by one, list again:
 * done when a list comes back empty. One operation at a time keeps the
 * request's footprint small whatever the number of files. */
static void remove_next(nno_req *req, step *st);

static void removed_one(nno_req *req, const nno_blob_result *res, void *ud) {
  step *st = ud;
  if (res->error) {
    json_decref(st->keys);
    st->keys = NULL;
    nno_problem_storage(req, res->error, "the files", res->error_message);
    api->res_end(req);
    return;
  }
  remove_next(req, st);
}

static void listed_for_removal(nno_req *req, const nno_blob_result *res,
                               void *ud) {
  step *st = ud;
  json_t *objs = NULL;
  /* Parsed first: json_is_array() is a macro that reads its argument
   * twice. */
  if (!res->error)
    objs = json_loadb(res->objects.ptr, res->objects.len, 0, NULL);
  if (res->error) {
    nno_problem_storage(req, res->error, "the files", res->error_message);
  } else if (!json_is_array(objs)) {
    nno_problem(req, 500, NULL, "the files answered an unreadable list");
  } else if (json_array_size(objs) == 0) {
    json_decref(objs);
    st->then(req, st); /* no file left: on to the row */
    return;
  } else {
    st->keys = objs;
    st->next = 0;
    remove_next(req, st);
    return;
  }
  json_decref(objs);
  api->res_end(req);
}

static void remove_next(nno_req *req, step *st) {
  int rc;
  if (st->next < json_array_size(st->keys)) {
    json_t *o = json_array_get(st->keys, st->next++);
    const char *key = json_string_value(json_object_get(o, "key"));
    rc = key ? api->blob_delete(st->files, key, strlen(key), removed_one, st)
             : NNO_EIO;
  } else {
    json_decref(st->keys);
    st->keys = NULL;
    rc = api->blob_list(st->files, st->key, st->key_len, NULL, 100,
                        listed_for_removal, st);
  }
  if (rc == NNO_OK) return;
  json_decref(st->keys);
  st->keys = NULL;
  nno_problem_storage(req, rc, "the files", NULL);
  api->res_end(req);
}

int files_remove_all(nno_req *req, step *st, void (*then)(nno_req *, step *)) {
  int rc = api->blob_open(req, NOTES_BLOB, &st->files);
  if (rc == NNO_OK) {
    st->key_len = (size_t)snprintf(st->key, sizeof st->key, "notes/%lld/",
                                   (long long)st->id);
    st->then = then;
    rc = api->blob_list(st->files, st->key, st->key_len, NULL, 100,
                        listed_for_removal, st);
  }
  if (rc == NNO_OK) return 0;
  nno_problem_storage(req, rc, "the files", NULL);
  return -1;
}
