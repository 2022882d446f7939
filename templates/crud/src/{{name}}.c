/* {{name}}: items in the platform's sql resource "items".
 *
 *   GET    /items          the caller's items, a page at a time
 *   POST   /items          {"name"} -> 201 the item
 *   GET    /items/{id}     one item
 *   PATCH  /items/{id}     {"name"} -> the item
 *   DELETE /items/{id}     -> 204
 *
 * Every row is stamped with the caller's tenant path when written, and
 * every query filters on it (IN_SUBTREE): a caller bound to a tenant sees
 * that tenant's rows and its sub-tenants', nothing else. Each request
 * opens the database of its own platform: no platform reaches another's.
 *
 * Storage calls are asynchronous: a handler starts one and returns
 * NNO_ASYNC; the callback answers and calls res_end(). Client text only
 * ever travels as a parameter, never inside the SQL. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <nno/plugin.h>
#include <nno/sdk.h>

static const nno_host_api *api;

#define ITEMS_SQL "items" /* package.json's resource */
#define NAME_MAX_BYTES 200
#define REQUEST_MAX 4096
#define COLUMNS "id, tenant_path AS tenant, name, created_by, created_at, updated_at"
#define NOW "strftime('%Y-%m-%dT%H:%M:%SZ', 'now')"

/* The subtree test on ?1, the caller's tenant path: "" sees every row,
 * "eu" sees "eu" and "eu/...". */
#define IN_SUBTREE               \
  "(?1 = '' OR tenant_path = ?1" \
  " OR substr(tenant_path, 1, length(?1) + 1) = ?1 || '/')"

/* What a request carries to its callback (in the request's arena). */
typedef struct step {
  nno_sql *db;
  int status; /* what to answer a row with */
  nno_pager pg;
} step;

static step *step_new(nno_req *req) {
  step *st = api->req_alloc(req, sizeof *st);
  if (!st) {
    nno_problem(req, 500, NULL, "out of memory");
    return NULL;
  }
  memset(st, 0, sizeof *st);
  st->status = 200;
  return st;
}

/* The route's {id}: 1 to 18 digits, no leading zero; else 404. */
static int item_id(nno_req *req, json_int_t *id) {
  nno_str s;
  if (api->req_param(req, "id", &s) != NNO_OK || s.len < 1 || s.len > 18 ||
      s.ptr[0] == '0')
    goto none;
  json_int_t v = 0;
  for (size_t i = 0; i < s.len; i++) {
    if (s.ptr[i] < '0' || s.ptr[i] > '9') goto none;
    v = v * 10 + (s.ptr[i] - '0');
  }
  *id = v;
  return 0;
none:
  nno_problem(req, 404, NULL, "no such item");
  return -1;
}

/* Open the database and run `sql` with `params` (a JSON array, consumed).
 * 0, or -1 after answering. */
static int run(nno_req *req, step *st, const char *sql, json_t *params,
               nno_sql_done_fn done) {
  int rc = st->db ? NNO_OK : api->sql_open(req, ITEMS_SQL, &st->db);
  char *text = params ? nno_json_text(params) : NULL;
  json_decref(params);
  if (rc == NNO_OK && !text) {
    nno_problem(req, 500, NULL, "out of memory");
    return -1;
  }
  if (rc == NNO_OK) rc = api->sql_exec(st->db, sql, text, done, st);
  free(text);
  if (rc == NNO_OK) return 0;
  nno_problem_storage(req, rc, "the items database", NULL);
  return -1;
}

/* [caller's tenant path, id]: ?1 for IN_SUBTREE, ?2 the item. */
static json_t *item_params(nno_req *req, json_int_t id) {
  nno_str path = api->req_tenant_path(req);
  return json_pack("[s%, I]", path.ptr ? path.ptr : "", path.len, id);
}

static json_t *rows_of(nno_req *req, const nno_sql_result *res) {
  json_t *rows = json_loadb(res->rows.ptr, res->rows.len, 0, NULL);
  if (json_is_array(rows)) return rows;
  json_decref(rows);
  nno_problem(req, 500, NULL, "the items database answered no rows");
  return NULL;
}

/* A query returning the item, or nothing: missing and outside the
 * caller's subtree are the same 404. */
static void answer_item(nno_req *req, const nno_sql_result *res, void *ud) {
  step *st = ud;
  json_t *rows = NULL;
  if (res->error)
    nno_problem_storage(req, res->error, "the items database",
                        res->error_message);
  else if ((rows = rows_of(req, res)) && json_array_size(rows) == 0)
    nno_problem(req, 404, NULL, "no such item");
  else if (rows)
    nno_send_json(req, st->status, json_incref(json_array_get(rows, 0)));
  json_decref(rows);
  api->res_end(req);
}

static const nno_field fields[] = {NNO_FIELD_STR("name", 1, 1, NAME_MAX_BYTES)};

/* The body {"name"}, checked; NULL after answering. */
static json_t *read_item(nno_req *req) {
  json_t *o;
  if (nno_body_object(req, REQUEST_MAX, NNO_BODY_JSON_TYPE, &o)) return NULL;
  if (nno_fields_check(req, o, fields, 1) ||
      nno_check_name(req, "name", json_string_value(json_object_get(o, "name")),
                     NAME_MAX_BYTES)) {
    json_decref(o);
    return NULL;
  }
  return o;
}

static int on_create(nno_req *req, void *ud) {
  (void)ud;
  char actor[NNO_ACTOR_MAX];
  step *st = step_new(req);
  json_t *o = st ? read_item(req) : NULL;
  if (!o) return NNO_OK;
  /* Stamped with the caller's tenant path: who may see the row is decided
   * once, when it is written. */
  nno_str path = api->req_tenant_path(req);
  nno_caller_actor(req, actor, sizeof actor);
  json_t *params = json_pack("[s%, O, s]", path.ptr ? path.ptr : "", path.len,
                             json_object_get(o, "name"), actor);
  json_decref(o);
  st->status = 201;
  if (run(req, st,
          "INSERT INTO items (tenant_path, name, created_by, created_at,"
          " updated_at) VALUES (?1, ?2, ?3, " NOW ", " NOW ") RETURNING " COLUMNS,
          params, answer_item))
    return NNO_OK;
  return NNO_ASYNC;
}

static int on_get(nno_req *req, void *ud) {
  (void)ud;
  json_int_t id;
  step *st = step_new(req);
  if (!st || item_id(req, &id)) return NNO_OK;
  if (run(req, st,
          "SELECT " COLUMNS " FROM items WHERE id = ?2 AND " IN_SUBTREE,
          item_params(req, id), answer_item))
    return NNO_OK;
  return NNO_ASYNC;
}

static int on_update(nno_req *req, void *ud) {
  (void)ud;
  json_int_t id;
  step *st = step_new(req);
  if (!st || item_id(req, &id)) return NNO_OK;
  json_t *o = read_item(req);
  if (!o) return NNO_OK;
  json_t *params = item_params(req, id);
  if (params) json_array_append(params, json_object_get(o, "name"));
  json_decref(o);
  if (run(req, st,
          "UPDATE items SET name = ?3, updated_at = " NOW
          " WHERE id = ?2 AND " IN_SUBTREE " RETURNING " COLUMNS,
          params, answer_item))
    return NNO_OK;
  return NNO_ASYNC;
}

static void deleted(nno_req *req, const nno_sql_result *res, void *ud) {
  (void)ud;
  json_t *rows = NULL;
  if (res->error)
    nno_problem_storage(req, res->error, "the items database",
                        res->error_message);
  else if ((rows = rows_of(req, res)) && json_array_size(rows) == 0)
    nno_problem(req, 404, NULL, "no such item");
  else if (rows)
    api->res_status(req, 204);
  json_decref(rows);
  api->res_end(req);
}

static int on_delete(nno_req *req, void *ud) {
  (void)ud;
  json_int_t id;
  step *st = step_new(req);
  if (!st || item_id(req, &id)) return NNO_OK;
  if (run(req, st,
          "DELETE FROM items WHERE id = ?2 AND " IN_SUBTREE " RETURNING id",
          item_params(req, id), deleted))
    return NNO_OK;
  return NNO_ASYNC;
}

/* A page in id order; the cursor is the last id of the page before. Ask
 * for limit + 1 rows: the extra one only says a next page exists. */
static void answer_list(nno_req *req, const nno_sql_result *res, void *ud) {
  step *st = ud;
  json_t *rows = NULL, *row;
  size_t i;
  char key[24];
  if (res->error) {
    nno_problem_storage(req, res->error, "the items database",
                        res->error_message);
    goto out;
  }
  if (!(rows = rows_of(req, res))) goto out;
  json_array_foreach(rows, i, row) {
    if (nno_pager_full(&st->pg)) break;
    snprintf(key, sizeof key, "%lld",
             (long long)json_integer_value(json_object_get(row, "id")));
    if (nno_pager_add(&st->pg, json_incref(row), key) != NNO_OK) {
      nno_problem(req, 500, NULL, "out of memory");
      goto out;
    }
  }
  nno_pager_send(req, &st->pg);
out:
  nno_pager_free(&st->pg);
  json_decref(rows);
  api->res_end(req);
}

static int on_list(nno_req *req, void *ud) {
  (void)ud;
  char after[NNO_PAGE_KEY_MAX];
  step *st = step_new(req);
  if (!st) return NNO_OK;
  if (nno_pager_start(req, &st->pg, 20, 100, after, sizeof after))
    return NNO_OK;
  size_t n = strlen(after);
  if (n > 18 || strspn(after, "0123456789") != n) {
    nno_pager_free(&st->pg);
    return nno_problem(req, 422, "cursor",
                       "field \"cursor\": not a cursor this API returned");
  }
  nno_str path = api->req_tenant_path(req);
  json_t *params = json_pack("[s%, I, i]", path.ptr ? path.ptr : "", path.len,
                             (json_int_t)(n ? strtoll(after, NULL, 10) : 0),
                             st->pg.limit + 1);
  if (run(req, st,
          "SELECT " COLUMNS " FROM items WHERE " IN_SUBTREE
          " AND id > ?2 ORDER BY id LIMIT ?3",
          params, answer_list)) {
    nno_pager_free(&st->pg);
    return NNO_OK;
  }
  return NNO_ASYNC;
}

static int {{c_name}}_init(nno_plugin *p, const nno_host_api *host) {
  api = host;
  nno_sdk_init(p, host);
  static const struct {
    const char *method, *path;
    nno_handler_fn fn;
  } routes[] = {
      {"GET", "/items", on_list},         {"POST", "/items", on_create},
      {"GET", "/items/{id}", on_get},     {"PATCH", "/items/{id}", on_update},
      {"DELETE", "/items/{id}", on_delete},
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

/* name and version must be the manifest's: the Makefile passes
 * package.json's version as PACKAGE_VERSION. */
NNO_PLUGIN(.name = "{{name}}", .version = PACKAGE_VERSION,
           .kind = NNO_KIND_FEATURE, .on_plugin_init = {{c_name}}_init)
