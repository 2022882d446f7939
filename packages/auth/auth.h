/* Shared declarations of the auth package: its configuration, the users
 * table (store.c, through the platform's sql resource "auth") and the
 * jobs whose argon2id part runs on the host's thread pool (work.c). */
#ifndef NNO_AUTH_H
#define NNO_AUTH_H

#include <limits.h>
#include <stdatomic.h>
#include <stddef.h>
#include <stdint.h>

#include <sodium.h>

#include <nno/plugin.h>

#define AUTH_BODY_MAX 4096
#define AUTH_EMAIL_MIN 3
#define AUTH_EMAIL_MAX 254
#define AUTH_PASS_MIN 8
#define AUTH_PASS_MAX 256
#define AUTH_NAME_MAX 128
#define AUTH_PLATFORM_MAX 32
#define AUTH_USER_ID_LEN 16
#define AUTH_HASH_MAX crypto_pwhash_STRBYTES

/* ---- configuration (config.c) ------------------------------------------- */

typedef struct auth_config {
  unsigned long long pw_ops; /* argon2id passes */
  size_t pw_mem;             /* argon2id memory, bytes */
  unsigned concurrency;      /* hashing jobs in flight per worker */
  unsigned queue_max;        /* jobs waiting for a slot per worker */
  uint32_t acct_burst;       /* failed sign-ins per account... */
  double acct_window_s;      /* ...refilled over this many seconds */
  uint32_t addr_burst;       /* the same per client address */
  double addr_window_s;
} auth_config;

/* Parse the manifest's "config" over the defaults. 0, or -1 with a
 * message in err. */
int auth_config_parse(const char *json, auth_config *c, char *err, size_t cap);

/* ---- the users table (store.c) ------------------------------------------ */

typedef struct auth_user {
  char id[AUTH_USER_ID_LEN + 1];
  char email[AUTH_EMAIL_MAX + 1];
  char name[AUTH_NAME_MAX + 1]; /* "" when has_name is 0 */
  int has_name;
  char hash[AUTH_HASH_MAX]; /* "" when the user has no password */
} auth_user;

/* 1 if `s` (len bytes) is a platform id: 3..32 of [a-z0-9-], starting and
 * ending with a letter or digit (nno_id_valid). */
int auth_platform_valid(const char *s, size_t len);

/* ---- jobs ---------------------------------------------------------------- */

typedef enum auth_job_kind {
  JOB_SIGNUP,   /* read the email; hash (pool); insert */
  JOB_SIGNIN,   /* read the user; verify, maybe rehash (pool); maybe update */
  JOB_LOOKUP,   /* read the caller's user (session info, password stage 1) */
  JOB_PASSWORD, /* verify the current password and hash the new (pool);
                   store it if the old hash is still there */
} auth_job_kind;

typedef enum auth_job_result {
  JR_OK,
  JR_BADPASS, /* wrong password (or no user, for sign-in) */
  JR_NOMEM,   /* argon2 could not get its memory */
  JR_ERR,
} auth_job_result;

/* What the pool thread needs besides the job; set before the first job. */
typedef struct auth_shared {
  unsigned long long pw_ops;
  size_t pw_mem;
  /* A hash of a random password with the configured parameters, verified
   * against when the email is unknown, so that a wrong email costs the
   * same time as a wrong password. `dummy_ready` is 1 once it is written
   * (release/acquire). */
  char dummy[AUTH_HASH_MAX];
  atomic_int dummy_ready;
} auth_shared;

/* One request's sign-up, sign-in, lookup or password change, from the
 * handler to the answer. The loop thread owns it, except while the pool
 * runs auth_work() on it. */
typedef struct auth_job {
  struct auth_job *next; /* waiting for a hashing slot */
  nno_req *req;
  nno_sql *db; /* the platform's sql resource "auth" */
  const auth_shared *sh;
  auth_job_kind kind;
  auth_job_kind then; /* JOB_LOOKUP: what the lookup is for */
  int gated;          /* holds a hashing slot */
  int found;          /* the user was read */
  auth_job_result result;
  char platform[AUTH_PLATFORM_MAX + 1];
  char session[65]; /* the caller's session id */
  char addr[64];    /* the client's address (an IPv6 one as its /64) */
  auth_user user;   /* in: email and name, or id; out: the stored row */
  char password[AUTH_PASS_MAX + 1];     /* the password, or the current */
  char new_password[AUTH_PASS_MAX + 1]; /* password change: the new one */
  char fresh[AUTH_HASH_MAX];            /* pool out: a hash to store, or "" */
  /* Sign-up: the platform plan's bound on users (0: none) and the plan's
   * name, from nno.billing when loaded. */
  uint64_t max_users;
  char plan[33];
} auth_job;

/* The pool thread's side of every job (an nno_work_fn): argon2id only. */
void auth_work(void *ud);
/* Compute sh->dummy (an nno_work_fn, queued once at start). */
void auth_work_dummy(void *ud);

/* ---- failed sign-in limits (limits.c) ------------------------------------ */

/* Use `c` (borrowed until fini) for the buckets' sizes and windows. */
void auth_limits_init(const auth_config *c);
/* Before verifying a password, or looking an email up for a sign-up:
 * answer 429 when the account or the address has no failure left, 503
 * when the host's table has no room to count them. 1 when answered, 0 to
 * go on. */
int auth_locked_out(const auth_job *j);
/* Count a failure (wrong password, taken email) in the job's buckets. */
void auth_count_failure(const auth_job *j);

/* ---- the users table, through the sql resource (store.c) ----------------- */

/* Each starts one statement on j->db; `done` gets j. NNO_OK, or an error
 * code (the callback then never runs). Loop thread. */
int auth_store_by_email(auth_job *j, nno_sql_done_fn done);
int auth_store_by_id(auth_job *j, nno_sql_done_fn done);
/* Insert j->user under a new random id (written to j->user.id), with the
 * hash j->fresh. A taken email fails with NNO_EREFUSED (UNIQUE). With
 * j->max_users, nothing is inserted (changes 0) when the platform has
 * that many users already: one statement, so two sign-ups on two workers
 * cannot both pass the last place. */
int auth_store_insert(auth_job *j, nno_sql_done_fn done);
/* Replace the hash of j->user.id by j->fresh if it is still
 * j->user.hash; `changes` of the result is 0 when it was not. */
int auth_store_set_hash(auth_job *j, nno_sql_done_fn done);
/* Read the row of a by_email/by_id result into j->user: 1 found, 0 none,
 * -1 unreadable. */
int auth_store_row(auth_job *j, const nno_sql_result *res);

#endif
