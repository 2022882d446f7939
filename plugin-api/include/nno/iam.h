/* The "nno.iam" service, version 1: what the IAM core plugin publishes
 * for packages that sign users in (the auth package) and for other core
 * plugins.
 *
 *   const void *vt;
 *   uint32_t ver;
 *   if (api->service_lookup(p, NNO_IAM_SERVICE, 1, &vt, &ver) == NNO_OK) {
 *     const nno_iam_v1 *iam = vt;
 *     ...
 *   }
 *
 * Add "requires": {"nno.iam": "^1"} to the package manifest to be refused
 * at load time when IAM is absent.
 *
 * Sessions belong to IAM (the gateway validates them on every request of
 * the platform); users and their passwords belong to the package that
 * signs them in. A session token is shown once, to the caller of
 * session_create; IAM stores only its SHA-256.
 *
 * The vtable only grows at the end; test `size` before calling a member
 * added after version 1.
 *
 * THREAD: call from the worker's loop thread only.
 * OWNERSHIP: the vtable is borrowed until the caller's own fini; every
 * string argument is borrowed for the call only. */
#ifndef NNO_IAM_H
#define NNO_IAM_H

#include <stddef.h>
#include <stdint.h>

#include "plugin.h"

#define NNO_IAM_SERVICE "nno.iam"
#define NNO_IAM_VERSION 1

/* "nnos_" + 16 hex (the session id) + "_" + 43 base64url characters. */
#define NNO_IAM_TOKEN_MAX 72
/* A session id: 16 lower-case hex characters. */
#define NNO_IAM_ID_MAX 17

/* A new session, from session_create. */
typedef struct nno_iam_session {
  char token[NNO_IAM_TOKEN_MAX]; /* the secret: give it to the client once */
  char id[NNO_IAM_ID_MAX];       /* the session id (not secret) */
  int64_t idle_expires;          /* unix seconds: ends if unused until then */
  int64_t expires;               /* unix seconds: ends then regardless */
} nno_iam_session;

/* A platform's access policy, from platform_access. */
typedef struct nno_iam_access {
  int signup;           /* 1: users may sign themselves up */
  int64_t idle_s;       /* session idle expiry, seconds */
  int64_t absolute_s;   /* session absolute expiry, seconds */
} nno_iam_access;

/* What device_answer does. */
#define NNO_IAM_DEVICE_SHOW 0
#define NNO_IAM_DEVICE_APPROVE 1
#define NNO_IAM_DEVICE_DENY 2

typedef struct nno_iam_v1 {
  /* sizeof(nno_iam_v1) as IAM was built. */
  size_t size;
  /*
   * Open a session for user `user_id` (1..64 bytes of [A-Za-z0-9_.-]) of
   * `platform`, bound to `tenant` (NULL or "" for none) and granting
   * `scopes` (space-separated; NULL for the platform's default user
   * scopes). Writes the token and expiries to *out. NNO_ENOENT if the
   * platform does not exist, NNO_EINVAL for bad arguments, NNO_EBUSY when
   * the database is busy, NNO_EIO on other storage errors.
   */
  int (*session_create)(const char *platform, const char *user_id,
                        const char *tenant, const char *scopes,
                        nno_iam_session *out);
  /*
   * End one session of `platform` by id (sign-out). Every worker stops
   * accepting it within a second. NNO_ENOENT if there is no such live
   * session.
   */
  int (*session_revoke)(const char *platform, const char *session_id);
  /*
   * End every session of user `user_id` of `platform`, except
   * `keep_session_id` (NULL or "" for none): after a password change, or
   * when a user is removed. Writes how many ended to *count (may be NULL).
   */
  int (*session_revoke_user)(const char *platform, const char *user_id,
                             const char *keep_session_id, size_t *count);
  /* The platform's access policy (defaults when none was set). */
  int (*platform_access)(const char *platform, nno_iam_access *out);
  /*
   * Whether the space-separated scopes `granted` (`len` bytes, as
   * nno_caller.scopes gives them) allow scope `needed` (NUL-terminated,
   * e.g. "features:notes:read"), by the same rules IAM applies to routes
   * ("*", "features:notes:*"...): 1 yes, 0 no. Memory only. Test `size`
   * first.
   */
  int (*scope_allows)(const char *granted, size_t len, const char *needed);
  /*
   * Answer request `req` of a route of the platform it is scoped to as
   * IAM's device-code routes answer (RFC 8628; `nno login`), so that a
   * person approves in a browser on the platform's own host, with its
   * session cookie: `what` is NNO_IAM_DEVICE_SHOW (GET, ?user_code=: what
   * approving would give), NNO_IAM_DEVICE_APPROVE or NNO_IAM_DEVICE_DENY
   * (POST {"user_code"}). IAM checks the caller itself (the operator, or a
   * key or session of that platform bound to no tenant and holding
   * keys:write; none: 401), so the route may be `public`. Returns NNO_OK
   * once it has answered, NNO_EINVAL for an unknown `what`. Test `size`
   * first.
   * OWNERSHIP: `req` is borrowed for the call; call from its handler, in
   * the host's process (a sandboxed package finds no service).
   */
  int (*device_answer)(nno_req *req, int what);
} nno_iam_v1;

#endif
