/* The pool thread's side of each job: argon2id, nothing else. No host call
 * happens here; the database is read before and written after, on the
 * loop (auth.c, store.c), and results go back in the job. */
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

/* 1 if j->password is the password of the user read (no user, or one
 * without a password, costs the same and is 0). */
static int verified(const auth_job *j) {
  if (!j->found || !j->user.hash[0]) {
    verify_nothing(j);
    return 0;
  }
  return crypto_pwhash_str_verify(j->user.hash, j->password,
                                  strlen(j->password)) == 0;
}

/* Sign-in: verify; a hash made with other parameters than today's gets a
 * fresh one, which the loop stores (failing to is not an error). */
static void do_signin(auth_job *j) {
  if (!verified(j)) {
    j->result = JR_BADPASS;
    return;
  }
  if (crypto_pwhash_str_needs_rehash(j->user.hash, j->sh->pw_ops,
                                     j->sh->pw_mem) != 0 &&
      hash_password(j->sh, j->password, j->fresh) != 0)
    j->fresh[0] = '\0';
  j->result = JR_OK;
}

static void do_signup(auth_job *j) {
  j->result =
      hash_password(j->sh, j->password, j->fresh) == 0 ? JR_OK : JR_NOMEM;
}

/* j->user holds the row the lookup read: its hash is the one to verify
 * and, compare-and-set, to replace. */
static void do_password(auth_job *j) {
  if (!verified(j)) {
    j->result = JR_BADPASS;
    return;
  }
  j->result =
      hash_password(j->sh, j->new_password, j->fresh) == 0 ? JR_OK : JR_NOMEM;
}

void auth_work(void *ud) {
  auth_job *j = ud;
  j->result = JR_ERR;
  j->fresh[0] = '\0';
  switch (j->kind) {
  case JOB_SIGNIN:
    do_signin(j);
    break;
  case JOB_SIGNUP:
    do_signup(j);
    break;
  case JOB_PASSWORD:
    do_password(j);
    break;
  case JOB_LOOKUP:
    break; /* never queued: a lookup is one read */
  }
}
