/* Shared declarations of the auth package: its configuration, the users
 * database (store.c) and the jobs that run on the host's thread pool
 * (work.c). Nothing declared here calls the host: the handlers in auth.c
 * do that, on the loop thread. */
#ifndef NNO_AUTH_H
#define NNO_AUTH_H

#include <limits.h>
#include <stdatomic.h>
#include <stddef.h>
#include <stdint.h>

#include <sodium.h>
#include <sqlite3.h>

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

/* ---- the users database (store.c) ---------------------------------------- */

enum {
  AUTH_OK = 0,
  AUTH_NOTFOUND = 1,
  AUTH_EXISTS = 2,
  AUTH_ERR = -1,
  AUTH_BUSY = -2,
  AUTH_UNSAFE = -3, /* a file or folder others could change: refused */
};

typedef struct auth_user {
  char id[AUTH_USER_ID_LEN + 1];
  char email[AUTH_EMAIL_MAX + 1];
  char name[AUTH_NAME_MAX + 1]; /* "" when has_name is 0 */
  int has_name;
  char hash[AUTH_HASH_MAX]; /* "" when the user has no password */
} auth_user;

/* A platform's incarnation (16 hex, from nno.registry), NUL included. */
#define AUTH_INCARNATION_MAX 17

/* 1 if `s` (len bytes) is a platform id: 3..32 of [a-z0-9-], starting and
 * ending with a letter or digit (nno_id_valid, which calls no host
 * function: store.c uses it on the pool). */
int auth_platform_valid(const char *s, size_t len);

/* Make DATA/platforms/ and DATA/platforms/{platform}/ (0700) and the
 * database file (0600) when missing, and check what exists: every folder
 * and file (and the -wal and -shm files) must belong to this process's
 * user and not be writable by group or others, else AUTH_UNSAFE with the
 * path and the reason in err (nothing is opened). A database file
 * readable by others is narrowed to 0600. AUTH_OK with the database's
 * path in `path`, or AUTH_ERR. (files.c) */
int auth_files_prepare(const char *data_dir, const char *platform, char *path,
                       size_t pcap, char *err, size_t cap);

/* Open (creating it, its folder and its schema when missing) the auth
 * database of `platform` under `data_dir`. AUTH_OK, or
 * AUTH_ERR/AUTH_BUSY/AUTH_UNSAFE with a message in err. */
int auth_store_open(const char *data_dir, const char *platform, sqlite3 **db,
                    char *err, size_t cap);
void auth_store_close(sqlite3 *db);
/* Tie the database to `incarnation` (the registry's, "" to skip): a
 * database last used by another incarnation of the platform (one deleted,
 * then created again under the same id) loses its users first, in one
 * transaction. One read when it already matches. AUTH_OK, AUTH_BUSY or
 * AUTH_ERR. */
int auth_store_claim(sqlite3 *db, const char *incarnation);
/* The user with this email (case-insensitive), or AUTH_NOTFOUND. */
int auth_store_by_email(sqlite3 *db, const char *email, auth_user *out);
/* The user with this id, or AUTH_NOTFOUND. */
int auth_store_by_id(sqlite3 *db, const char *id, auth_user *out);
/* Insert u (email, name, hash set) under a new random id written to u->id.
 * AUTH_EXISTS when the email is taken. */
int auth_store_insert(sqlite3 *db, auth_user *u);
/* Replace the password hash of user `id` if it is still `old_hash`;
 * AUTH_NOTFOUND when the user is gone or the hash changed meanwhile. */
int auth_store_set_hash(sqlite3 *db, const char *id, const char *old_hash,
                        const char *new_hash);
/* The last error of db as text, for a job's message. */
const char *auth_store_error(sqlite3 *db);

/* ---- jobs on the thread pool (work.c) ------------------------------------ */

typedef enum auth_job_kind {
  JOB_SIGNUP,   /* hash, insert */
  JOB_SIGNIN,   /* read, verify */
  JOB_LOOKUP,   /* read the caller's user (session info, password stage 1) */
  JOB_PASSWORD, /* verify the current password, hash and store the new */
} auth_job_kind;

typedef enum auth_job_result {
  JR_OK,
  JR_NOUSER,  /* no such user */
  JR_BADPASS, /* wrong password (or no user, for sign-in) */
  JR_EXISTS,  /* the email is taken */
  JR_CHANGED, /* the password changed under a password change */
  JR_BUSY,    /* the database stayed locked */
  JR_NOMEM,   /* argon2 could not get its memory */
  JR_UNSAFE,  /* the database's files are refused (auth_files_prepare) */
  JR_ERR,
} auth_job_result;

/* What the pool thread needs besides the job; set before the first job. */
typedef struct auth_shared {
  unsigned long long pw_ops;
  size_t pw_mem;
  const char *data_dir;
  /* A hash of a random password with the configured parameters, verified
   * against when the email is unknown, so that a wrong email costs the
   * same time as a wrong password. `dummy_ready` is 1 once it is written
   * (release/acquire). */
  char dummy[AUTH_HASH_MAX];
  atomic_int dummy_ready;
} auth_shared;

typedef struct auth_job {
  struct auth_job *next; /* waiting for a hashing slot */
  nno_req *req;
  const auth_shared *sh;
  auth_job_kind kind;
  auth_job_kind then; /* JOB_LOOKUP: what the lookup is for */
  int gated;          /* holds a hashing slot */
  auth_job_result result;
  char platform[AUTH_PLATFORM_MAX + 1];
  char incarnation[AUTH_INCARNATION_MAX]; /* the platform's, or "" */
  char session[65]; /* the caller's session id */
  char addr[64];    /* the client's address (an IPv6 one as its /64) */
  auth_user user;   /* in: email and name, or id; out: the stored row */
  char password[AUTH_PASS_MAX + 1];     /* the password, or the current */
  char new_password[AUTH_PASS_MAX + 1]; /* password change: the new one */
  char err[256];                        /* storage error, for the log */
} auth_job;

/* The pool thread's side of every job (an nno_work_fn). */
void auth_work(void *ud);
/* Compute sh->dummy (an nno_work_fn, queued once at start). */
void auth_work_dummy(void *ud);

#endif
