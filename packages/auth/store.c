/* The users of one platform, in its sql resource "auth" (package.json):
 * the database provisioning made for the platform's default stack, with
 * the schema of migrations/auth/. This file only builds statements and
 * reads rows; the host runs them off the loop and calls back on it.
 * Every value goes in as a parameter. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <jansson.h>

#include <nno/sdk.h>

#include "auth.h"

#define USER_COLUMNS "id, email, name, password_hash"
#define NOW "strftime('%Y-%m-%dT%H:%M:%SZ', 'now')"

int auth_platform_valid(const char *s, size_t len) {
  return nno_id_valid(s, len, 3, AUTH_PLATFORM_MAX);
}

/* Run `sql` with `params` (consumed; NULL: out of memory). The text may
 * hold a hash: overwritten before it is freed. */
static int run(auth_job *j, const char *sql, json_t *params,
               nno_sql_done_fn done) {
  char *text = params ? nno_json_text(params) : NULL;
  json_decref(params);
  if (!text) return NNO_ENOMEM;
  int rc = nno_sdk_api()->sql_exec(j->db, sql, text, done, j);
  sodium_memzero(text, strlen(text));
  free(text);
  return rc;
}

int auth_store_by_email(auth_job *j, nno_sql_done_fn done) {
  /* The column is COLLATE NOCASE: the address matches in any case. */
  return run(j, "SELECT " USER_COLUMNS " FROM users WHERE email = ?1",
             json_pack("[s]", j->user.email), done);
}

int auth_store_by_id(auth_job *j, nno_sql_done_fn done) {
  return run(j, "SELECT " USER_COLUMNS " FROM users WHERE id = ?1",
             json_pack("[s]", j->user.id), done);
}

int auth_store_insert(auth_job *j, nno_sql_done_fn done) {
  unsigned char b[AUTH_USER_ID_LEN / 2];
  /* 64 random bits: a collision is as likely as guessing a key, and would
   * only fail this sign-up (PRIMARY KEY). */
  randombytes_buf(b, sizeof b);
  sodium_bin2hex(j->user.id, sizeof j->user.id, b, sizeof b);
  return run(
      j,
      "INSERT INTO users (id, email, name, password_hash, created_at,"
      " updated_at) SELECT ?1, ?2, ?3, ?4, " NOW ", " NOW
      " WHERE ?5 = 0 OR (SELECT count(*) FROM users) < ?5",
      json_pack("[s, s, o, s, I]", j->user.id, j->user.email,
                j->user.has_name ? json_string(j->user.name) : json_null(),
                j->fresh, (json_int_t)j->max_users),
      done);
}

int auth_store_set_hash(auth_job *j, nno_sql_done_fn done) {
  /* Compare-and-set: a password changed meanwhile (another worker, another
   * session) leaves the row alone, and changes is 0. */
  return run(
      j,
      "UPDATE users SET password_hash = ?1, updated_at = " NOW
      " WHERE id = ?2 AND password_hash IS ?3",
      json_pack("[s, s, o]", j->fresh, j->user.id,
                j->user.hash[0] ? json_string(j->user.hash) : json_null()),
      done);
}

/* Copy string member `name` of `o` into out (cap bytes): 1 copied, 0 null
 * or absent ("" then), -1 not a string or too long. */
static int member(json_t *o, const char *name, char *out, size_t cap) {
  json_t *v = json_object_get(o, name);
  out[0] = '\0';
  if (!v || json_is_null(v)) return 0;
  size_t n = json_string_length(v);
  if (!json_is_string(v) || n >= cap) return -1;
  memcpy(out, json_string_value(v), n + 1);
  return 1;
}

int auth_store_row(auth_job *j, const nno_sql_result *res) {
  json_t *rows = json_loadb(res->rows.ptr, res->rows.len, 0, NULL);
  json_t *o = json_array_get(rows, 0);
  int rc = -1;
  auth_user *u = &j->user;
  if (json_is_array(rows) && json_array_size(rows) == 0) {
    rc = 0;
  } else if (json_is_object(o) && member(o, "id", u->id, sizeof u->id) == 1 &&
             member(o, "email", u->email, sizeof u->email) == 1 &&
             (u->has_name = member(o, "name", u->name, sizeof u->name)) >= 0 &&
             member(o, "password_hash", u->hash, sizeof u->hash) >= 0) {
    rc = 1;
  }
  json_decref(rows);
  return rc;
}
