/* The pool thread's side of each job: the database and argon2id. No host
 * call happens here; results and error texts go back in the job, and the
 * loop thread (auth.c) answers. */
#include <stdio.h>
#include <string.h>

#include "auth.h"

static int hash_password(const auth_shared *sh, const char *pw,
                         char out[AUTH_HASH_MAX]) {
  return crypto_pwhash_str_alg(out, pw, strlen(pw), sh->pw_ops, sh->pw_mem,
                               crypto_pwhash_ALG_ARGON2ID13);
}

void auth_work_dummy(void *ud) {
  auth_shared *sh = ud;
  char pw[33];
  unsigned char r[16];
  randombytes_buf(r, sizeof r);
  sodium_bin2hex(pw, sizeof pw, r, sizeof r);
  if (hash_password(sh, pw, sh->dummy) == 0)
    atomic_store_explicit(&sh->dummy_ready, 1, memory_order_release);
}

/* Spend what verifying a real password costs, for an email that has no
 * user (or a user without a password): against the dummy hash, or, until
 * that exists, by hashing the attempt with the same parameters. */
static void verify_nothing(const auth_job *j) {
  char scratch[AUTH_HASH_MAX];
  if (atomic_load_explicit(&j->sh->dummy_ready, memory_order_acquire)) {
    /* The outcome is failure either way; only the time spent matters. */
    if (crypto_pwhash_str_verify(j->sh->dummy, j->password,
                                 strlen(j->password)) == 0)
      return;
  } else if (hash_password(j->sh, j->password, scratch) == 0) {
    sodium_memzero(scratch, sizeof scratch);
  }
}

static auth_job_result from_store(auth_job *j, sqlite3 *db, int rc) {
  if (rc == AUTH_BUSY || rc == AUTH_ERR)
    snprintf(j->err, sizeof j->err, "%s", auth_store_error(db));
  return rc == AUTH_BUSY ? JR_BUSY : JR_ERR;
}

static sqlite3 *open_db(auth_job *j) {
  sqlite3 *db;
  int rc =
      auth_store_open(j->sh->data_dir, j->platform, &db, j->err, sizeof j->err);
  if (rc == AUTH_OK && (rc = auth_store_claim(db, j->incarnation)) != AUTH_OK) {
    snprintf(j->err, sizeof j->err, "%s", auth_store_error(db));
    auth_store_close(db);
  }
  if (rc != AUTH_OK)
    j->result = rc == AUTH_BUSY     ? JR_BUSY
                : rc == AUTH_UNSAFE ? JR_UNSAFE
                                    : JR_ERR;
  return rc == AUTH_OK ? db : NULL;
}

/* A hash made with other parameters than today's is replaced after a
 * successful sign-in; failing to do so is not an error. */
static void maybe_rehash(auth_job *j, sqlite3 *db) {
  char fresh[AUTH_HASH_MAX];
  if (crypto_pwhash_str_needs_rehash(j->user.hash, j->sh->pw_ops,
                                     j->sh->pw_mem) == 0)
    return;
  if (hash_password(j->sh, j->password, fresh) == 0)
    (void)auth_store_set_hash(db, j->user.id, j->user.hash, fresh);
  sodium_memzero(fresh, sizeof fresh);
}

static void do_signin(auth_job *j, sqlite3 *db) {
  char email[sizeof j->user.email];
  memcpy(email, j->user.email, sizeof email);
  int rc = auth_store_by_email(db, email, &j->user);
  if (rc == AUTH_NOTFOUND || (rc == AUTH_OK && !j->user.hash[0])) {
    verify_nothing(j);
    j->result = JR_BADPASS;
    return;
  }
  if (rc != AUTH_OK) {
    j->result = from_store(j, db, rc);
    return;
  }
  if (crypto_pwhash_str_verify(j->user.hash, j->password,
                               strlen(j->password)) != 0) {
    j->result = JR_BADPASS;
    return;
  }
  maybe_rehash(j, db);
  j->result = JR_OK;
}

static void do_signup(auth_job *j, sqlite3 *db) {
  auth_user found;
  int rc = auth_store_by_email(db, j->user.email, &found);
  sodium_memzero(&found, sizeof found);
  if (rc == AUTH_OK) {
    j->result = JR_EXISTS;
    return;
  }
  if (rc != AUTH_NOTFOUND) {
    j->result = from_store(j, db, rc);
    return;
  }
  if (hash_password(j->sh, j->password, j->user.hash) != 0) {
    j->result = JR_NOMEM;
    return;
  }
  rc = auth_store_insert(db, &j->user);
  j->result = rc == AUTH_OK       ? JR_OK
              : rc == AUTH_EXISTS ? JR_EXISTS
                                  : from_store(j, db, rc);
}

static void do_lookup(auth_job *j, sqlite3 *db) {
  char id[sizeof j->user.id];
  memcpy(id, j->user.id, sizeof id);
  int rc = auth_store_by_id(db, id, &j->user);
  j->result = rc == AUTH_OK         ? JR_OK
              : rc == AUTH_NOTFOUND ? JR_NOUSER
                                    : from_store(j, db, rc);
}

/* j->user holds the row the lookup read: its hash is the one to verify
 * and, compare-and-set, to replace. */
static void do_password(auth_job *j) {
  char fresh[AUTH_HASH_MAX];
  if (!j->user.hash[0] || crypto_pwhash_str_verify(j->user.hash, j->password,
                                                   strlen(j->password)) != 0) {
    if (!j->user.hash[0]) verify_nothing(j);
    j->result = JR_BADPASS;
    return;
  }
  if (hash_password(j->sh, j->new_password, fresh) != 0) {
    j->result = JR_NOMEM;
    return;
  }
  sqlite3 *db = open_db(j);
  if (db) {
    int rc = auth_store_set_hash(db, j->user.id, j->user.hash, fresh);
    j->result = rc == AUTH_OK         ? JR_OK
                : rc == AUTH_NOTFOUND ? JR_CHANGED
                                      : from_store(j, db, rc);
    auth_store_close(db);
  }
  sodium_memzero(fresh, sizeof fresh);
}

void auth_work(void *ud) {
  auth_job *j = ud;
  j->result = JR_ERR;
  if (j->kind == JOB_PASSWORD) {
    do_password(j);
    return;
  }
  sqlite3 *db = open_db(j);
  if (!db) return;
  switch (j->kind) {
  case JOB_SIGNIN:
    do_signin(j, db);
    break;
  case JOB_SIGNUP:
    do_signup(j, db);
    break;
  case JOB_LOOKUP:
    do_lookup(j, db);
    break;
  case JOB_PASSWORD:
    break; /* handled above */
  }
  auth_store_close(db);
}
