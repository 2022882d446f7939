/* The registry's sqlite store, continued: queries over the data model
 * (platforms, tenants, the stack catalogue, activations, resources). */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "store.h"
#include "store_int.h"

/* ---- platforms --------------------------------------------------------- */

#define P_COLS                                                                 \
  "id, name, class, status, plan, owner, created_at, updated_at, version"

static void read_platform(sqlite3_stmt *st, store_platform *p) {
  store__col(st, 0, p->id, sizeof p->id);
  store__col(st, 1, p->name, sizeof p->name);
  store__col(st, 2, p->cls, sizeof p->cls);
  store__col(st, 3, p->status, sizeof p->status);
  store__col(st, 4, p->plan, sizeof p->plan);
  p->has_owner = sqlite3_column_type(st, 5) != SQLITE_NULL;
  store__col(st, 5, p->owner, sizeof p->owner);
  store__col(st, 6, p->created_at, sizeof p->created_at);
  store__col(st, 7, p->updated_at, sizeof p->updated_at);
  p->version = sqlite3_column_int64(st, 8);
}

int store_platform_get(sqlite3 *db, const char *id, store_platform *out) {
  sqlite3_stmt *st;
  int rc = store__query(
      db, &st, "SELECT " P_COLS " FROM platforms WHERE id = ?", "s", id);
  if (rc) return rc;
  rc = store__next_row(db, st);
  if (rc == STORE_OK) read_platform(st, out);
  sqlite3_finalize(st);
  return rc;
}

int store_platform_insert(sqlite3 *db, store_platform *p) {
  store_now(p->created_at);
  memcpy(p->updated_at, p->created_at, sizeof p->updated_at);
  p->version = 1;
  return store__run(
      db, NULL, "INSERT INTO platforms (" P_COLS ") VALUES (?,?,?,?,?,?,?,?,1)",
      "ssssssss", p->id, p->name, p->cls, p->status, p->plan,
      p->has_owner ? p->owner : NULL, p->created_at, p->updated_at);
}

/* After an UPDATE that changed nothing: missing or another version? */
static int stale_or_missing(sqlite3 *db, const char *sql, const char *a,
                            const char *b) {
  sqlite3_stmt *st;
  int rc = b ? store__query(db, &st, sql, "ss", a, b)
             : store__query(db, &st, sql, "s", a);
  if (rc) return rc;
  rc = store__next_row(db, st);
  sqlite3_finalize(st);
  return rc == STORE_OK ? STORE_STALE : rc;
}

int store_platform_update(sqlite3 *db, store_platform *p, int64_t if_version) {
  char now[STORE_TIME_MAX + 1];
  int n = 0;
  store_now(now);
  int rc = store__run(db, &n,
                      "UPDATE platforms SET name = ?, plan = ?, owner = ?,"
                      " updated_at = ?, version = version + 1"
                      " WHERE id = ?5 AND (?6 <= 0 OR version = ?6)",
                      "sssssi", p->name, p->plan,
                      p->has_owner ? p->owner : NULL, now, p->id, if_version);
  if (rc) return rc;
  if (n == 0)
    return stale_or_missing(db, "SELECT 1 FROM platforms WHERE id = ?", p->id,
                            NULL);
  return store_platform_get(db, p->id, p);
}

int store_platform_set_status(sqlite3 *db, const char *id, const char *status,
                              store_platform *out) {
  char now[STORE_TIME_MAX + 1];
  int n = 0;
  store_now(now);
  int rc = store__run(db, &n,
                      "UPDATE platforms SET status = ?, updated_at = ?,"
                      " version = version + 1 WHERE id = ?",
                      "sss", status, now, id);
  if (rc) return rc;
  if (n == 0) return STORE_NOTFOUND;
  return store_platform_get(db, id, out);
}

int store_platform_suspender(sqlite3 *db, const char *id, char *by,
                             size_t cap) {
  return store__scalar(db, "SELECT suspended_by FROM platforms WHERE id = ?",
                       id, by, cap);
}

int store_platform_set_suspender(sqlite3 *db, const char *id, const char *by,
                                 const char *reason) {
  int n = 0;
  int rc = store__run(db, &n,
                      "UPDATE platforms SET suspended_by = ?,"
                      " suspend_reason = ? WHERE id = ?",
                      "sss", by, reason, id);
  if (rc) return rc;
  return n ? STORE_OK : STORE_NOTFOUND;
}

int store_platform_delete(sqlite3 *db, const char *id) {
  int n = 0;
  int rc = store__run(db, &n, "DELETE FROM platforms WHERE id = ?", "s", id);
  return rc ? rc : n ? STORE_OK : STORE_NOTFOUND;
}

int store_platform_list(sqlite3 *db, const char *cls, const char *status,
                        const char *after, int limit, store_platform_cb cb,
                        void *ud) {
  sqlite3_stmt *st;
  store_platform p;
  int rc = store__query(db, &st,
                        "SELECT " P_COLS
                        " FROM platforms"
                        " WHERE (?1 IS NULL OR class = ?1)"
                        " AND (?2 IS NULL OR status = ?2)"
                        " AND (?3 IS NULL OR id > ?3) ORDER BY id LIMIT ?4",
                        "sssi", cls, status, after, (int64_t)limit);
  if (rc) return rc;
  while ((rc = store__next_row(db, st)) == STORE_OK) {
    read_platform(st, &p);
    if ((rc = cb(ud, &p)) != 0) break;
  }
  sqlite3_finalize(st);
  return rc == STORE_NOTFOUND ? STORE_OK : rc;
}

/* Each row (id, status, plan) of `st` to `cb`; finalizes `st`. */
static int status_rows(sqlite3 *db, sqlite3_stmt *st, store_status_cb cb,
                       void *ud) {
  int rc;
  while ((rc = store__next_row(db, st)) == STORE_OK)
    if ((rc = cb(ud, store__col_str(st, 0), store__col_str(st, 1),
                  store__col_str(st, 2))) != 0)
      break;
  sqlite3_finalize(st);
  return rc == STORE_NOTFOUND ? STORE_OK : rc;
}

int store_platform_each(sqlite3 *db, store_status_cb cb, void *ud) {
  sqlite3_stmt *st;
  int rc =
      store__query(db, &st, "SELECT id, status, plan FROM platforms ORDER BY id", "");
  return rc ? rc : status_rows(db, st, cb, ud);
}

int store_platform_page(sqlite3 *db, const char *after, int limit,
                        store_status_cb cb, void *ud) {
  sqlite3_stmt *st;
  int rc = store__query(db, &st,
                        "SELECT id, status, plan FROM platforms"
                        " WHERE status != 'deleting'"
                        " AND (?1 IS NULL OR id > ?1) ORDER BY id LIMIT ?2",
                        "si", after, (int64_t)limit);
  return rc ? rc : status_rows(db, st, cb, ud);
}

int store_platform_status(sqlite3 *db, const char *id, char *out, size_t cap) {
  return store__scalar(db, "SELECT status FROM platforms WHERE id = ?", id,
                       out, cap);
}

int store_tenant_within(sqlite3 *db, const char *platform, const char *tenant,
                        const char *ancestor) {
  sqlite3_stmt *st;
  /* Walk up from `tenant`; the depth bound ends the walk on any tree. */
  int rc = store__query(
      db, &st,
      "WITH RECURSIVE up(id, depth) AS ("
      " SELECT id, 0 FROM tenants WHERE platform_id = ?1 AND id = ?2"
      " UNION ALL"
      " SELECT t.parent_id, up.depth + 1 FROM tenants t JOIN up ON t.id = up.id"
      "  WHERE t.platform_id = ?1 AND t.parent_id IS NOT NULL AND up.depth < 64)"
      " SELECT 1 FROM up WHERE id = ?3 LIMIT 1",
      "sss", platform, tenant, ancestor);
  if (rc) return rc;
  rc = store__next_row(db, st);
  sqlite3_finalize(st);
  if (rc == STORE_OK) return 1;
  return rc == STORE_NOTFOUND ? 0 : rc;
}

int store_platform_plan(sqlite3 *db, const char *id, char *out, size_t cap) {
  return store__scalar(db, "SELECT plan FROM platforms WHERE id = ?", id, out,
                       cap);
}

int store_platform_incarnation(sqlite3 *db, const char *id, char *out,
                               size_t cap) {
  return store__scalar(db,
                       "SELECT incarnation FROM platforms WHERE id = ?"
                       " AND status <> 'deleting'",
                       id, out, cap);
}

int store_platform_incarnation_any(sqlite3 *db, const char *id, char *out,
                                   size_t cap) {
  return store__scalar(db, "SELECT incarnation FROM platforms WHERE id = ?",
                       id, out, cap);
}

int store_platform_branding(sqlite3 *db, const char *id, char **out) {
  sqlite3_stmt *st;
  *out = NULL;
  int rc = store__query(db, &st, "SELECT branding FROM platforms WHERE id = ?",
                        "s", id);
  if (rc) return rc;
  rc = store__next_row(db, st);
  if (rc == STORE_OK) {
    const char *b = store__col_str(st, 0);
    if (b && !(*out = strdup(b))) rc = STORE_ERROR;
  }
  sqlite3_finalize(st);
  return rc;
}

int store_platform_set_branding(sqlite3 *db, const char *id,
                                const char *json) {
  int n = 0;
  int rc = store__run(db, &n, "UPDATE platforms SET branding = ? WHERE id = ?",
                      "ss", json, id);
  if (rc) return rc;
  return n ? STORE_OK : STORE_NOTFOUND;
}

int store_tenant_tree(sqlite3 *db, const char *platform, const char *root,
                      int limit, store_tenant_tree_cb cb, void *ud) {
  sqlite3_stmt *st;
  int rc;
  char rpath[1024] = "";
  if (root) {
    /* The root's own path, walking up (at most a few levels). */
    rc = store__query(
        db, &st,
        "WITH RECURSIVE up(id, parent_id, path, depth) AS ("
        " SELECT id, parent_id, id, 0 FROM tenants"
        "  WHERE platform_id = ?1 AND id = ?2"
        " UNION ALL SELECT t.id, t.parent_id, t.id || '/' || up.path,"
        "  up.depth + 1 FROM tenants t JOIN up ON t.id = up.parent_id"
        "  WHERE t.platform_id = ?1 AND up.depth < 64)"
        "SELECT path FROM up WHERE parent_id IS NULL",
        "ss", platform, root);
    if (rc) return rc;
    rc = store__next_row(db, st);
    if (rc == STORE_OK) store__col(st, 0, rpath, sizeof rpath);
    sqlite3_finalize(st);
    if (rc) return rc;
  }
  /* Sorting the paths with '/' below every id character gives depth-first
   * order, siblings by id. */
  rc = store__query(
      db, &st,
      "WITH RECURSIVE sub(id, name, status, path, depth) AS ("
      " SELECT id, name, status, coalesce(?3, id), 0 FROM tenants"
      "  WHERE platform_id = ?1 AND"
      "  (CASE WHEN ?2 IS NULL THEN parent_id IS NULL ELSE id = ?2 END)"
      " UNION ALL SELECT t.id, t.name, t.status, sub.path || '/' || t.id,"
      "  sub.depth + 1 FROM tenants t JOIN sub ON t.parent_id = sub.id"
      "  WHERE t.platform_id = ?1 AND sub.depth < 64)"
      "SELECT id, name, path, status FROM sub"
      " ORDER BY replace(path, '/', char(1)) LIMIT ?4",
      "sssi", platform, root, root ? rpath : NULL, (int64_t)limit);
  if (rc) return rc;
  while ((rc = store__next_row(db, st)) == STORE_OK)
    if ((rc = cb(ud, store__col_str(st, 0), store__col_str(st, 1),
                 store__col_str(st, 2), store__col_str(st, 3))) != 0)
      break;
  sqlite3_finalize(st);
  return rc == STORE_NOTFOUND ? STORE_OK : rc;
}

int store_removal_each(sqlite3 *db, store_removal_cb cb, void *ud) {
  sqlite3_stmt *st;
  int rc = store__query(db, &st,
                        "SELECT r.id, p.id IS NOT NULL, r.incarnation"
                        " FROM platform_removals r"
                        " LEFT JOIN platforms p ON p.id = r.id ORDER BY r.id",
                        "");
  if (rc) return rc;
  while ((rc = store__next_row(db, st)) == STORE_OK)
    if ((rc = cb(ud, store__col_str(st, 0), sqlite3_column_int(st, 1),
                 store__col_str(st, 2))) != 0)
      break;
  sqlite3_finalize(st);
  return rc == STORE_NOTFOUND ? STORE_OK : rc;
}

int store_removal_done(sqlite3 *db, const char *id) {
  return store__run(db, NULL, "DELETE FROM platform_removals WHERE id = ?",
                    "s", id);
}

int store_creation_put(sqlite3 *db, const char *id, int64_t pid,
                       const char *key, const char *actor) {
  return store__run(db, NULL,
                    "INSERT OR REPLACE INTO platform_creations (id, pid,"
                    " idem_key, idem_actor) VALUES (?, ?, ?, ?)",
                    "siss", id, pid, key, actor);
}

int store_creation_done(sqlite3 *db, const char *id) {
  int changes = 0;
  int rc = store__run(db, &changes,
                      "DELETE FROM platform_creations WHERE id = ?", "s", id);
  return rc ? rc : changes ? STORE_OK : STORE_NOTFOUND;
}

int store_move_take(sqlite3 *db, const char *platform, const char *stack,
                    const char *version, int64_t pid, char *hs, char *hv,
                    int64_t *hpid) {
  sqlite3_stmt *st;
  int rc = store__query(db, &st,
                        "SELECT stack_id, version, pid FROM platform_moves"
                        " WHERE platform_id = ?",
                        "s", platform);
  if (rc) return rc;
  rc = store__next_row(db, st);
  if (rc == STORE_OK) {
    store__col(st, 0, hs, STORE_STACK_MAX + 1);
    store__col(st, 1, hv, STORE_STACK_MAX + 1);
    *hpid = sqlite3_column_int64(st, 2);
  }
  sqlite3_finalize(st);
  if (rc == STORE_OK) return STORE_EXISTS;
  if (rc != STORE_NOTFOUND) return rc;
  return store_move_steal(db, platform, stack, version, pid);
}

int store_move_steal(sqlite3 *db, const char *platform, const char *stack,
                     const char *version, int64_t pid) {
  return store__run(db, NULL,
                    "INSERT OR REPLACE INTO platform_moves (platform_id,"
                    " stack_id, version, pid) VALUES (?, ?, ?, ?)",
                    "sssi", platform, stack, version ? version : "", pid);
}

int store_move_to(sqlite3 *db, const char *stack, const char *version,
                  char *platform) {
  sqlite3_stmt *st;
  int rc = store__query(db, &st,
                        "SELECT platform_id FROM platform_moves"
                        " WHERE stack_id = ? AND version = ? LIMIT 1",
                        "ss", stack, version);
  if (rc) return rc;
  rc = store__next_row(db, st);
  if (rc == STORE_OK) store__col(st, 0, platform, STORE_ID_MAX + 1);
  sqlite3_finalize(st);
  return rc;
}

int store_move_done(sqlite3 *db, const char *platform, int64_t pid) {
  return store__run(db, NULL,
                    "DELETE FROM platform_moves WHERE platform_id = ?"
                    " AND pid = ?",
                    "si", platform, pid);
}

int store_move_forget_pid(sqlite3 *db, int64_t pid) {
  return store__run(db, NULL, "DELETE FROM platform_moves WHERE pid = ?", "i",
                    pid);
}

int store_creation_each(sqlite3 *db, store_creation_cb cb, void *ud) {
  sqlite3_stmt *st;
  int rc = store__query(db, &st,
                        "SELECT id, pid, idem_key, idem_actor"
                        " FROM platform_creations ORDER BY id",
                        "");
  if (rc) return rc;
  while ((rc = store__next_row(db, st)) == STORE_OK)
    if ((rc = cb(ud, store__col_str(st, 0), sqlite3_column_int64(st, 1),
                 store__col_str(st, 2), store__col_str(st, 3))) != 0)
      break;
  sqlite3_finalize(st);
  return rc == STORE_NOTFOUND ? STORE_OK : rc;
}

int store_tenant_suspended_each(sqlite3 *db, store_tenant_key_cb cb,
                                void *ud) {
  sqlite3_stmt *st;
  /* Down from every suspended tenant; UNION ends the walk on any tree. */
  int rc = store__query(
      db, &st,
      "WITH RECURSIVE down(p, id) AS ("
      " SELECT platform_id, id FROM tenants WHERE status = 'suspended'"
      " UNION"
      " SELECT t.platform_id, t.id FROM tenants t JOIN down"
      "  ON t.platform_id = down.p AND t.parent_id = down.id)"
      " SELECT p, id FROM down ORDER BY p, id",
      "");
  if (rc) return rc;
  while ((rc = store__next_row(db, st)) == STORE_OK)
    if ((rc = cb(ud, store__col_str(st, 0), store__col_str(st, 1))) != 0)
      break;
  sqlite3_finalize(st);
  return rc == STORE_NOTFOUND ? STORE_OK : rc;
}

int store_tenant_link_each(sqlite3 *db, store_tenant_link_cb cb, void *ud) {
  sqlite3_stmt *st;
  int rc = store__query(db, &st,
                        "SELECT platform_id, id, parent_id FROM tenants"
                        " ORDER BY platform_id, id",
                        "");
  if (rc) return rc;
  while ((rc = store__next_row(db, st)) == STORE_OK)
    if ((rc = cb(ud, store__col_str(st, 0), store__col_str(st, 1),
                 sqlite3_column_type(st, 2) == SQLITE_NULL
                     ? NULL
                     : store__col_str(st, 2))) != 0)
      break;
  sqlite3_finalize(st);
  return rc == STORE_NOTFOUND ? STORE_OK : rc;
}

/* ---- tenants ----------------------------------------------------------- */

#define T_COLS                                                                 \
  "platform_id, id, parent_id, name, status, created_at, updated_at, version"

static void read_tenant(sqlite3_stmt *st, store_tenant *t) {
  store__col(st, 0, t->platform, sizeof t->platform);
  store__col(st, 1, t->id, sizeof t->id);
  t->has_parent = sqlite3_column_type(st, 2) != SQLITE_NULL;
  store__col(st, 2, t->parent, sizeof t->parent);
  store__col(st, 3, t->name, sizeof t->name);
  store__col(st, 4, t->status, sizeof t->status);
  store__col(st, 5, t->created_at, sizeof t->created_at);
  store__col(st, 6, t->updated_at, sizeof t->updated_at);
  t->version = sqlite3_column_int64(st, 7);
}

int store_tenant_get(sqlite3 *db, const char *platform, const char *id,
                     store_tenant *out) {
  sqlite3_stmt *st;
  int rc = store__query(db, &st,
                        "SELECT " T_COLS
                        " FROM tenants"
                        " WHERE platform_id = ? AND id = ?",
                        "ss", platform, id);
  if (rc) return rc;
  rc = store__next_row(db, st);
  if (rc == STORE_OK) read_tenant(st, out);
  sqlite3_finalize(st);
  return rc;
}

int store_tenant_insert(sqlite3 *db, store_tenant *t) {
  store_now(t->created_at);
  memcpy(t->updated_at, t->created_at, sizeof t->updated_at);
  t->version = 1;
  return store__run(
      db, NULL, "INSERT INTO tenants (" T_COLS ") VALUES (?,?,?,?,?,?,?,1)",
      "sssssss", t->platform, t->id, t->has_parent ? t->parent : NULL, t->name,
      t->status, t->created_at, t->updated_at);
}

int store_tenant_update(sqlite3 *db, store_tenant *t, int64_t if_version) {
  char now[STORE_TIME_MAX + 1];
  int n = 0;
  store_now(now);
  int rc = store__run(db, &n,
                      "UPDATE tenants SET name = ?, parent_id = ?, status = ?,"
                      " updated_at = ?, version = version + 1"
                      " WHERE platform_id = ?5 AND id = ?6"
                      " AND (?7 <= 0 OR version = ?7)",
                      "ssssssi", t->name, t->has_parent ? t->parent : NULL,
                      t->status, now, t->platform, t->id, if_version);
  if (rc) return rc;
  if (n == 0)
    return stale_or_missing(
        db, "SELECT 1 FROM tenants WHERE platform_id = ? AND id = ?",
        t->platform, t->id);
  return store_tenant_get(db, t->platform, t->id, t);
}

int store_tenant_delete(sqlite3 *db, const char *platform, const char *id,
                        int cascade) {
  int n = 0;
  int rc;
  if (cascade)
    rc = store__run(
        db, &n,
        "DELETE FROM tenants WHERE platform_id = ?1 AND id IN ("
        " WITH RECURSIVE sub(id) AS (SELECT ?2 UNION"
        "  SELECT t.id FROM tenants t JOIN sub ON t.parent_id = sub.id"
        "  WHERE t.platform_id = ?1)"
        " SELECT id FROM sub)",
        "ss", platform, id);
  else
    rc = store__run(db, &n,
                    "DELETE FROM tenants WHERE platform_id = ? AND id = ?",
                    "ss", platform, id);
  return rc ? rc : n ? STORE_OK : STORE_NOTFOUND;
}

int store_tenant_children(sqlite3 *db, const char *platform, const char *id,
                          int64_t *count) {
  sqlite3_stmt *st;
  int rc = store__query(db, &st,
                        "SELECT count(*) FROM tenants"
                        " WHERE platform_id = ? AND parent_id = ?",
                        "ss", platform, id);
  if (rc) return rc;
  rc = store__next_row(db, st);
  if (rc == STORE_OK) *count = sqlite3_column_int64(st, 0);
  sqlite3_finalize(st);
  return rc;
}

int store_tenant_list(sqlite3 *db, const char *platform, const char *parent,
                      const char *under, const char *after, int limit,
                      store_tenant_cb cb, void *ud) {
  sqlite3_stmt *st;
  store_tenant t;
  int rc = store__query(
      db, &st,
      "WITH RECURSIVE sub(id) AS ("
      " SELECT id FROM tenants WHERE platform_id = ?1 AND parent_id = ?2"
      " UNION SELECT t.id FROM tenants t JOIN sub ON t.parent_id = sub.id"
      "  WHERE t.platform_id = ?1)"
      "SELECT " T_COLS
      " FROM tenants WHERE platform_id = ?1"
      " AND (?2 IS NULL OR id IN sub) AND (?3 IS NULL OR parent_id = ?3)"
      " AND (?4 IS NULL OR id > ?4) ORDER BY id LIMIT ?5",
      "ssssi", platform, under, parent, after, (int64_t)limit);
  if (rc) return rc;
  while ((rc = store__next_row(db, st)) == STORE_OK) {
    read_tenant(st, &t);
    if ((rc = cb(ud, &t)) != 0) break;
  }
  sqlite3_finalize(st);
  return rc == STORE_NOTFOUND ? STORE_OK : rc;
}

/* ---- the stack catalogue ----------------------------------------------- */

int store_stack_add(sqlite3 *db, const char *id, const char *version) {
  char now[STORE_TIME_MAX + 1];
  store_now(now);
  /* ON CONFLICT DO NOTHING, not INSERT OR IGNORE: the latter would also
   * silently skip rows failing a CHECK. */
  int rc = store__run(db, NULL,
                      "INSERT INTO stacks (id, added_at) VALUES (?, ?)"
                      " ON CONFLICT DO NOTHING",
                      "ss", id, now);
  if (rc) return rc;
  return store__run(db, NULL,
                    "INSERT INTO stack_versions (stack_id, version, added_at)"
                    " VALUES (?, ?, ?) ON CONFLICT DO NOTHING",
                    "sss", id, version, now);
}

int store_stack_remove_unused(sqlite3 *db, const char *id,
                              const char *version) {
  int rc =
      store__run(db, NULL,
                 "DELETE FROM stack_versions WHERE stack_id = ?1"
                 " AND version = ?2 AND NOT EXISTS (SELECT 1 FROM activations"
                 " WHERE stack_id = ?1 AND version = ?2)",
                 "ss", id, version);
  if (rc) return rc;
  return store__run(db, NULL,
                    "DELETE FROM stacks WHERE id = ?1 AND NOT EXISTS"
                    " (SELECT 1 FROM stack_versions WHERE stack_id = ?1)",
                    "s", id);
}

int store_stack_version_exists(sqlite3 *db, const char *id,
                               const char *version) {
  sqlite3_stmt *st;
  int rc = store__query(db, &st,
                        "SELECT 1 FROM stack_versions WHERE stack_id = ?"
                        " AND version = ?",
                        "ss", id, version);
  if (rc) return rc;
  rc = store__next_row(db, st);
  sqlite3_finalize(st);
  return rc;
}

int store_stack_each(sqlite3 *db, store_stack_version_cb cb, void *ud) {
  sqlite3_stmt *st;
  int rc =
      store__query(db, &st, "SELECT stack_id, version FROM stack_versions", "");
  if (rc) return rc;
  while ((rc = store__next_row(db, st)) == STORE_OK)
    if ((rc = cb(ud, store__col_str(st, 0), store__col_str(st, 1))) != 0) break;
  sqlite3_finalize(st);
  return rc == STORE_NOTFOUND ? STORE_OK : rc;
}

/* Call cb with one stack and its versions. */
static int stack_versions(sqlite3 *db, const char *id, store_stack_cb cb,
                          void *ud) {
  sqlite3_stmt *st;
  char **v = NULL;
  size_t n = 0, cap = 0;
  int rc = store__query(db, &st,
                        "SELECT version FROM stack_versions WHERE stack_id = ?"
                        " ORDER BY version COLLATE semver",
                        "s", id);
  if (rc) return rc;
  while ((rc = store__next_row(db, st)) == STORE_OK) {
    if (n == cap) {
      size_t nc = cap ? cap * 2 : 8;
      char **nv = realloc(v, nc * sizeof *nv);
      if (!nv) {
        rc = STORE_ERROR;
        goto done;
      }
      v = nv;
      cap = nc;
    }
    if (!(v[n] = strdup(store__col_str(st, 0)))) {
      rc = STORE_ERROR;
      goto done;
    }
    n++;
  }
  if (rc == STORE_NOTFOUND) rc = cb(ud, id, (const char *const *)v, n);
done:
  sqlite3_finalize(st);
  for (size_t i = 0; i < n; i++) free(v[i]);
  free(v);
  return rc;
}

int store_stack_list(sqlite3 *db, const char *after, int limit,
                     store_stack_cb cb, void *ud) {
  sqlite3_stmt *st;
  int rc = store__query(db, &st,
                        "SELECT id FROM stacks WHERE (?1 IS NULL OR id > ?1)"
                        " ORDER BY id LIMIT ?2",
                        "si", after, (int64_t)limit);
  if (rc) return rc;
  while ((rc = store__next_row(db, st)) == STORE_OK)
    if ((rc = stack_versions(db, store__col_str(st, 0), cb, ud)) != 0) break;
  sqlite3_finalize(st);
  return rc == STORE_NOTFOUND ? STORE_OK : rc;
}

int store_stack_get(sqlite3 *db, const char *id, store_stack_cb cb, void *ud) {
  sqlite3_stmt *st;
  int rc = store__query(db, &st, "SELECT 1 FROM stacks WHERE id = ?", "s", id);
  if (rc) return rc;
  rc = store__next_row(db, st);
  sqlite3_finalize(st);
  return rc ? rc : stack_versions(db, id, cb, ud);
}

/* ---- activations ------------------------------------------------------- */

#define A_COLS "platform_id, stack_id, version, activated_at, activated_by"

static void read_activation(sqlite3_stmt *st, store_activation *a) {
  store__col(st, 0, a->platform, sizeof a->platform);
  store__col(st, 1, a->stack, sizeof a->stack);
  store__col(st, 2, a->version, sizeof a->version);
  store__col(st, 3, a->activated_at, sizeof a->activated_at);
  store__col(st, 4, a->activated_by, sizeof a->activated_by);
}

int store_activation_get(sqlite3 *db, const char *platform, const char *stack,
                         store_activation *out) {
  sqlite3_stmt *st;
  int rc = store__query(db, &st,
                        "SELECT " A_COLS
                        " FROM activations"
                        " WHERE platform_id = ? AND stack_id = ?",
                        "ss", platform, stack);
  if (rc) return rc;
  rc = store__next_row(db, st);
  if (rc == STORE_OK) read_activation(st, out);
  sqlite3_finalize(st);
  return rc;
}

int store_activation_put(sqlite3 *db, store_activation *a) {
  store_now(a->activated_at);
  return store__run(db, NULL,
                    "INSERT INTO activations (" A_COLS
                    ") VALUES (?1,?2,?3,?4,?5)"
                    " ON CONFLICT (platform_id, stack_id) DO UPDATE SET"
                    " version = ?3, activated_at = ?4, activated_by = ?5",
                    "sssss", a->platform, a->stack, a->version, a->activated_at,
                    a->activated_by);
}

int store_activation_delete(sqlite3 *db, const char *platform,
                            const char *stack) {
  int n = 0;
  int rc = store__run(
      db, &n, "DELETE FROM activations WHERE platform_id = ? AND stack_id = ?",
      "ss", platform, stack);
  return rc ? rc : n ? STORE_OK : STORE_NOTFOUND;
}

int store_activation_list(sqlite3 *db, const char *platform, const char *after,
                          int limit, store_activation_cb cb, void *ud) {
  sqlite3_stmt *st;
  store_activation a;
  int rc =
      store__query(db, &st,
                   "SELECT " A_COLS
                   " FROM activations"
                   " WHERE (?1 IS NULL OR platform_id = ?1)"
                   " AND (?2 IS NULL OR stack_id > ?2)"
                   " ORDER BY platform_id, stack_id LIMIT ?3",
                   "ssi", platform, after, (int64_t)(limit > 0 ? limit : -1));
  if (rc) return rc;
  while ((rc = store__next_row(db, st)) == STORE_OK) {
    read_activation(st, &a);
    if ((rc = cb(ud, &a)) != 0) break;
  }
  sqlite3_finalize(st);
  return rc == STORE_NOTFOUND ? STORE_OK : rc;
}
