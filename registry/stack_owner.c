/* Whose stack versions a caller sees and uses.
 *
 * A version installed by a platform's key (stack_install_owned) is that
 * platform's private code: the host records the platform as its owner.
 * The operator sees and activates every version, anywhere (its
 * decision). Any other caller sees only the operator's versions and its
 * own platform's; another platform's do not exist for it (the same
 * answers as a stack never installed). A version chosen without being
 * named (activation or creation without "version") is the newest that is
 * the operator's or the target platform's own, never another platform's. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "internal.h"

int reg_viewer(nno_req *req, char out[STORE_ID_MAX + 1]) {
  nno_caller c;
  out[0] = '\0';
  if (!NNO_HAS(api, req_caller) || api->req_caller(req, &c) != NNO_OK ||
      c.kind == NNO_CALLER_NONE || c.kind == NNO_CALLER_OPERATOR)
    return 0; /* the operator (its key checked without IAM, or by IAM) */
  /* A credential of no platform sees no platform's versions: "\x01" is
   * no platform's id. */
  if (!c.platform.len || c.platform.len > STORE_ID_MAX) {
    out[0] = '\x01';
    out[1] = '\0';
    return 1;
  }
  memcpy(out, c.platform.ptr, c.platform.len);
  out[c.platform.len] = '\0';
  return 1;
}

void reg_stack_owner(const char *id, const char *version,
                     char out[STORE_ID_MAX + 1]) {
  out[0] = '\0';
  if (!NNO_HAS(api, stack_owner) ||
      api->stack_owner(g_reg.p, id, version, out, STORE_ID_MAX + 1) != NNO_OK)
    out[0] = '\0'; /* a host that records none, or a version it lost */
}

int reg_stack_visible(const char *viewer, const char *id,
                      const char *version) {
  if (!viewer) return 1;
  char owner[STORE_ID_MAX + 1];
  reg_stack_owner(id, version, owner);
  return !owner[0] || strcmp(owner, viewer) == 0;
}

int reg_stack_usable(const char *pid, const char *viewer, const char *id,
                     const char *version) {
  char owner[STORE_ID_MAX + 1];
  reg_stack_owner(id, version, owner);
  if (!owner[0]) return 1;
  return strcmp(owner, pid) == 0 && (!viewer || strcmp(viewer, pid) == 0);
}

int reg_stack_version_of(nno_stack *s, const char *id,
                         char v[STORE_STACK_MAX + 1]) {
  nno_str sid, sver;
  if (api->stack_info(s, &sid, &sver) != NNO_OK || sid.len != strlen(id) ||
      memcmp(sid.ptr, id, sid.len) != 0 || sver.len > STORE_STACK_MAX)
    return 0;
  memcpy(v, sver.ptr, sver.len);
  v[sver.len] = '\0';
  return 1;
}

/* The newest loaded version of `id` usable on `pid` (usable), or visible
 * to `viewer` (not usable); NULL when none is. */
static nno_stack *newest_where(const char *id, const char *pid,
                               const char *viewer, int usable) {
  nno_stack *s, *best = NULL;
  char bestv[STORE_STACK_MAX + 1] = "";
  for (size_t i = 0; api->stack_at(g_reg.p, i, &s) == NNO_OK; i++) {
    char v[STORE_STACK_MAX + 1], gt[STORE_STACK_MAX + 2];
    if (!reg_stack_version_of(s, id, v)) continue;
    if (usable ? !reg_stack_usable(pid, viewer, id, v)
               : !reg_stack_visible(viewer, id, v))
      continue;
    snprintf(gt, sizeof gt, ">%s", bestv);
    if (!best || !NNO_HAS(api, version_satisfies) ||
        api->version_satisfies(v, gt) == 1) {
      best = s;
      snprintf(bestv, sizeof bestv, "%s", v);
    }
  }
  return best;
}

nno_stack *reg_stack_newest_visible(const char *viewer, const char *id) {
  return newest_where(id, NULL, viewer, 0);
}

nno_stack *reg_stack_newest_usable(const char *pid, const char *viewer,
                                   const char *id) {
  return newest_where(id, pid, viewer, 1);
}

/* ---- versions a deleted platform leaves --------------------------------- */

/* At most this many of one platform's versions are handled at once (the
 * host bounds how many a platform may own: stacks.max_owned_versions). */
#define OWNED_MAX 256

typedef struct owned_list {
  size_t n;
  char id[OWNED_MAX][STORE_STACK_MAX + 1];
  char version[OWNED_MAX][STORE_STACK_MAX + 1];
} owned_list;

/* The installed versions `pid` owns, from the host's catalogue (loaded or
 * refused alike). */
static void owned_by(const char *pid, owned_list *l) {
  nno_stack_entry e;
  l->n = 0;
  if (!NNO_HAS(api, stack_catalogue_at) || !NNO_HAS(api, stack_owner)) return;
  for (size_t i = 0;
       l->n < OWNED_MAX && api->stack_catalogue_at(g_reg.p, i, &e) == NNO_OK;
       i++) {
    char owner[STORE_ID_MAX + 1];
    if (e.id.len > STORE_STACK_MAX || e.version.len > STORE_STACK_MAX)
      continue;
    snprintf(l->id[l->n], sizeof l->id[0], "%.*s", (int)e.id.len, e.id.ptr);
    snprintf(l->version[l->n], sizeof l->version[0], "%.*s",
             (int)e.version.len, e.version.ptr);
    reg_stack_owner(l->id[l->n], l->version[l->n], owner);
    if (owner[0] && strcmp(owner, pid) == 0) l->n++;
  }
}

size_t reg_owned_versions(const char *pid, char *out, size_t cap) {
  owned_list *l = calloc(1, sizeof *l);
  size_t n = 0;
  if (cap) out[0] = '\0';
  if (!l) return 0;
  owned_by(pid, l);
  n = l->n;
  for (size_t i = 0; i < l->n && cap; i++) {
    size_t len = strlen(out);
    snprintf(out + len, cap - len, "%s%s %s", i ? ", " : "", l->id[i],
             l->version[i]);
  }
  free(l);
  return n;
}

typedef struct use_of {
  const char *stack, *version;
  char first[STORE_ID_MAX + 1];
} use_of;

static int note_use(void *ud, const store_activation *a) {
  use_of *u = ud;
  if (strcmp(a->stack, u->stack) != 0 || strcmp(a->version, u->version) != 0)
    return 0;
  snprintf(u->first, sizeof u->first, "%s", a->platform);
  return 1; /* one is enough */
}

/* Remove one version nobody uses; 1 removed, 0 kept (logged why). */
static int drop_one(const char *pid, const char *id, const char *version) {
  char err[512], moving[STORE_ID_MAX + 1];
  use_of u = {id, version, ""};
  int rc = store_begin(g_reg.db);
  if (rc) goto store_failed;
  /* Under the write lock: no activation of it can start meanwhile. */
  rc = store_activation_list(g_reg.db, NULL, NULL, 0, note_use, &u);
  if (rc && rc != 1) goto store_failed;
  if (u.first[0]) {
    store_rollback(g_reg.db);
    api->log(g_reg.p, NNO_LOG_INFO,
             "platform %s deleted: its stack %s %s stays (active on "
             "platform %s)",
             pid, id, version, u.first);
    return 0;
  }
  rc = store_move_to(g_reg.db, id, version, moving);
  if (rc != STORE_NOTFOUND) {
    if (rc) goto store_failed;
    store_rollback(g_reg.db);
    api->log(g_reg.p, NNO_LOG_WARN,
             "platform %s deleted: its stack %s %s stays (platform %s is "
             "moving to it); remove it with nno stack remove",
             pid, id, version, moving);
    return 0;
  }
  if (api->stack_remove(g_reg.p, id, version, err, sizeof err) != NNO_OK) {
    store_rollback(g_reg.db);
    api->log(g_reg.p, NNO_LOG_WARN,
             "platform %s deleted: cannot remove its stack %s %s: %s", pid,
             id, version, err);
    return 0;
  }
  /* The version leaves the catalogue (nobody has it). */
  rc = store_stack_remove_unused(g_reg.db, id, version);
  if (!rc) rc = store_commit(g_reg.db);
  if (rc) {
    store_rollback(g_reg.db);
    api->log(g_reg.p, NNO_LOG_WARN,
             "platform %s deleted: its stack %s %s removed from disk, the "
             "catalogue row stays until the next sync: %s",
             pid, id, version, sqlite3_errmsg(g_reg.db));
  } else {
    reg_committed();
  }
  api->log(g_reg.p, NNO_LOG_INFO,
           "platform %s deleted: removed its stack %s %s", pid, id, version);
  return 1;
store_failed:
  store_rollback(g_reg.db);
  api->log(g_reg.p, NNO_LOG_WARN,
           "platform %s deleted: cannot check its stack %s %s: %s", pid, id,
           version, sqlite3_errmsg(g_reg.db));
  return 0;
}

void reg_platform_stacks_drop(const char *pid) {
  if (!NNO_HAS(api, stack_remove)) return;
  owned_list *l = calloc(1, sizeof *l);
  if (!l) {
    api->log(g_reg.p, NNO_LOG_WARN,
             "platform %s deleted: out of memory listing its stacks", pid);
    return;
  }
  owned_by(pid, l);
  for (size_t i = 0; i < l->n; i++) drop_one(pid, l->id[i], l->version[i]);
  free(l);
}
