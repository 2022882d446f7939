/* The registry's schema, as numbered migrations applied in order by
 * store_migrate(). A migration is never edited once released: a change to
 * the schema is a new entry at the end. Every invariant of the data model
 * that a database can hold is written here as a constraint or a trigger,
 * so no code path (and no hand-run sqlite3 shell) can store a row the API
 * would refuse. */
#include "store.h"

/* Ids: `min` to 32 of [a-z0-9-], starting and ending with a letter or
 * digit; platforms 3 at least, tenants 2 (store.h says why). */
#define ID_RULE_MIN(c, min)                                                    \
  "length(" c ") BETWEEN " min " AND 32 AND " c                                \
  " NOT GLOB '*[^a-z0-9-]*' AND " c " GLOB '[a-z0-9]*' AND " c                 \
  " GLOB '*[a-z0-9]'"
#define ID_RULE(c) ID_RULE_MIN(c, "3")
#define TENANT_ID_RULE(c) ID_RULE_MIN(c, "2")

/* Timestamps: ISO-8601 UTC to the second. */
#define TIME_RULE(c)                                                           \
  c " GLOB '[0-9][0-9][0-9][0-9]-[0-1][0-9]-[0-3][0-9]T[0-2][0-9]:[0-5][0-9]"  \
    ":[0-6][0-9]Z'"

#define NAME_RULE(c) "length(" c ") BETWEEN 1 AND 128"

/* The ancestors of NEW.parent_id, NEW.parent_id included, must not contain
 * NEW.id. UNION (not UNION ALL) makes the walk end even on a cycle that
 * somehow already exists. */
#define TENANT_CYCLE                                                           \
  "NEW.parent_id IS NOT NULL AND (NEW.parent_id = NEW.id OR EXISTS ("          \
  " WITH RECURSIVE up(id) AS ("                                                \
  "  SELECT NEW.parent_id"                                                     \
  "  UNION"                                                                    \
  "  SELECT t.parent_id FROM tenants t JOIN up ON t.id = up.id"                \
  "   WHERE t.platform_id = NEW.platform_id AND t.parent_id IS NOT NULL)"      \
  " SELECT 1 FROM up WHERE up.id = NEW.id))"

static const char m1_base[] =
    "CREATE TABLE platforms ("
    " id TEXT NOT NULL PRIMARY KEY CHECK (" ID_RULE("id") "),"
    " name TEXT NOT NULL CHECK (" NAME_RULE("name") "),"
    " class TEXT NOT NULL DEFAULT 'platform'"
    "  CHECK (class IN ('platform', 'user_project')),"
    " status TEXT NOT NULL DEFAULT 'active'"
    "  CHECK (status IN ('active', 'suspended', 'deleting')),"
    " plan TEXT NOT NULL DEFAULT 'free'"
    "  CHECK (length(plan) BETWEEN 1 AND 32 AND plan NOT GLOB '*[^a-z0-9-]*'),"
    " owner TEXT CHECK (owner IS NULL OR length(owner) <= 128),"
    " created_at TEXT NOT NULL CHECK (" TIME_RULE("created_at") "),"
    " updated_at TEXT NOT NULL CHECK (" TIME_RULE("updated_at") "),"
    " version INTEGER NOT NULL DEFAULT 1 CHECK (version >= 1)"
    ") STRICT, WITHOUT ROWID;"
    "CREATE INDEX platforms_by_class ON platforms(class, id);"
    "CREATE INDEX platforms_by_status ON platforms(status, id);"
    "CREATE TRIGGER platforms_id_fixed BEFORE UPDATE OF id ON platforms"
    " WHEN NEW.id IS NOT OLD.id"
    " BEGIN SELECT RAISE(ABORT, 'a platform id cannot change'); END;"

    "CREATE TABLE tenants ("
    " platform_id TEXT NOT NULL REFERENCES platforms(id) ON DELETE CASCADE,"
    " id TEXT NOT NULL CHECK (" TENANT_ID_RULE("id") "),"
    " parent_id TEXT,"
    " name TEXT NOT NULL CHECK (" NAME_RULE("name") "),"
    " status TEXT NOT NULL DEFAULT 'active'"
    "  CHECK (status IN ('active', 'suspended')),"
    " created_at TEXT NOT NULL CHECK (" TIME_RULE("created_at") "),"
    " updated_at TEXT NOT NULL CHECK (" TIME_RULE("updated_at") "),"
    " version INTEGER NOT NULL DEFAULT 1 CHECK (version >= 1),"
    " PRIMARY KEY (platform_id, id),"
    /* NO ACTION: a tenant with children cannot be deleted alone; a
     * platform's cascade removes the whole tree in one statement. */
    " FOREIGN KEY (platform_id, parent_id) REFERENCES tenants(platform_id, id)"
    ") STRICT, WITHOUT ROWID;"
    "CREATE INDEX tenants_by_parent ON tenants(platform_id, parent_id, id);"
    "CREATE TRIGGER tenants_no_cycle_insert BEFORE INSERT ON tenants"
    " WHEN " TENANT_CYCLE
    " BEGIN SELECT RAISE(ABORT, 'tenant cycle: a tenant cannot be its own"
    " ancestor'); END;"
    "CREATE TRIGGER tenants_no_cycle_update BEFORE UPDATE OF parent_id"
    " ON tenants WHEN " TENANT_CYCLE
    " BEGIN SELECT RAISE(ABORT, 'tenant cycle: a tenant cannot be its own"
    " ancestor'); END;"
    "CREATE TRIGGER tenants_id_fixed BEFORE UPDATE OF platform_id, id"
    " ON tenants WHEN NEW.id IS NOT OLD.id"
    " OR NEW.platform_id IS NOT OLD.platform_id"
    " BEGIN SELECT RAISE(ABORT, 'a tenant id cannot change'); END;"

    "CREATE TABLE stacks ("
    " id TEXT NOT NULL PRIMARY KEY CHECK (length(id) BETWEEN 1 AND 64"
    "  AND id GLOB '[a-z]*' AND id NOT GLOB '*[^a-z0-9-]*'),"
    " added_at TEXT NOT NULL CHECK (" TIME_RULE("added_at") ")"
    ") STRICT, WITHOUT ROWID;"
    "CREATE TABLE stack_versions ("
    " stack_id TEXT NOT NULL REFERENCES stacks(id) ON DELETE CASCADE,"
    " version TEXT NOT NULL CHECK (length(version) BETWEEN 5 AND 64"
    "  AND version GLOB '[0-9]*.[0-9]*.[0-9]*'),"
    " added_at TEXT NOT NULL CHECK (" TIME_RULE("added_at") "),"
    " PRIMARY KEY (stack_id, version)"
    ") STRICT, WITHOUT ROWID;"

    "CREATE TABLE activations ("
    " platform_id TEXT NOT NULL REFERENCES platforms(id) ON DELETE CASCADE,"
    " stack_id TEXT NOT NULL,"
    " version TEXT NOT NULL,"
    " activated_at TEXT NOT NULL CHECK (" TIME_RULE("activated_at") "),"
    " activated_by TEXT NOT NULL CHECK (length(activated_by) BETWEEN 1"
    "  AND 128),"
    " PRIMARY KEY (platform_id, stack_id),"
    /* An activation names a catalogued version, which then cannot leave
     * the catalogue while in use. */
    " FOREIGN KEY (stack_id, version) REFERENCES stack_versions(stack_id,"
    "  version)"
    ") STRICT, WITHOUT ROWID;"
    "CREATE INDEX activations_by_version ON activations(stack_id, version);"

    "CREATE TABLE resources ("
    " platform_id TEXT NOT NULL REFERENCES platforms(id) ON DELETE CASCADE,"
    " type TEXT NOT NULL CHECK (length(type) BETWEEN 1 AND 32"
    "  AND type NOT GLOB '*[^a-z0-9_-]*'),"
    " name TEXT NOT NULL CHECK (" NAME_RULE("name") "),"
    " driver TEXT NOT NULL CHECK (length(driver) BETWEEN 1 AND 32"
    "  AND driver NOT GLOB '*[^a-z0-9_-]*'),"
    " state TEXT NOT NULL"
    "  CHECK (state IN ('pending', 'ready', 'failed', 'deleting')),"
    " created_at TEXT NOT NULL CHECK (" TIME_RULE("created_at") "),"
    " updated_at TEXT NOT NULL CHECK (" TIME_RULE("updated_at") "),"
    " UNIQUE (platform_id, type, name)"
    ") STRICT;"

    "CREATE TABLE audit ("
    " seq INTEGER PRIMARY KEY AUTOINCREMENT,"
    " at TEXT NOT NULL CHECK (" TIME_RULE("at") "),"
    " actor TEXT NOT NULL CHECK (length(actor) BETWEEN 1 AND 128),"
    " action TEXT NOT NULL CHECK (length(action) BETWEEN 1 AND 64"
    "  AND action NOT GLOB '*[^a-z_.]*'),"
    " target TEXT NOT NULL CHECK (length(target) BETWEEN 1 AND 256),"
    " request_id TEXT CHECK (request_id IS NULL OR length(request_id) <= 64),"
    " detail TEXT CHECK (detail IS NULL OR json_valid(detail))"
    ") STRICT;"
    "CREATE INDEX audit_by_target ON audit(target, seq);"
    "CREATE INDEX audit_by_action ON audit(action, seq);"

    "CREATE TABLE changes ("
    " seq INTEGER PRIMARY KEY AUTOINCREMENT,"
    " platform_id TEXT NOT NULL CHECK (" ID_RULE("platform_id") "),"
    " at TEXT NOT NULL CHECK (" TIME_RULE("at") ")"
    ") STRICT;"

    "CREATE TABLE settings ("
    " key TEXT NOT NULL PRIMARY KEY CHECK (length(key) BETWEEN 1 AND 64),"
    " value TEXT NOT NULL,"
    " updated_at TEXT NOT NULL CHECK (" TIME_RULE("updated_at") ")"
    ") STRICT, WITHOUT ROWID;";

static const char m2_idempotency[] =
    "CREATE TABLE idempotency ("
    " key TEXT NOT NULL CHECK (length(key) BETWEEN 1 AND 128),"
    " actor TEXT NOT NULL CHECK (length(actor) BETWEEN 1 AND 128),"
    " method TEXT NOT NULL CHECK (method IN ('POST', 'PUT', 'PATCH',"
    "  'DELETE')),"
    " path TEXT NOT NULL CHECK (length(path) BETWEEN 1 AND 1023),"
    " request_hash TEXT NOT NULL CHECK (length(request_hash) = 64"
    "  AND request_hash NOT GLOB '*[^0-9a-f]*'),"
    " status INTEGER NOT NULL CHECK (status BETWEEN 200 AND 599),"
    " body TEXT NOT NULL,"
    " location TEXT,"
    " created_at TEXT NOT NULL CHECK (" TIME_RULE("created_at") "),"
    " PRIMARY KEY (key, actor)"
    ") STRICT, WITHOUT ROWID;"
    "CREATE INDEX idempotency_by_age ON idempotency(created_at);";

/* A platform's incarnation: 16 random hex characters drawn when the row is
 * inserted (and the folders of deleted platforms still to remove), so a platform deleted and created again under the same id is
 * told apart from the old one by what keeps per-platform data outside
 * core.db (the auth package's users). Existing rows get one each. */
static const char m3_incarnation[] =
    "ALTER TABLE platforms ADD COLUMN incarnation TEXT NOT NULL DEFAULT '';"
    "UPDATE platforms SET incarnation = lower(hex(randomblob(8)));"
    "CREATE TRIGGER platforms_incarnation AFTER INSERT ON platforms"
    " WHEN NEW.incarnation = '' BEGIN"
    " UPDATE platforms SET incarnation = lower(hex(randomblob(8)))"
    "  WHERE id = NEW.id; END;"
    "CREATE TRIGGER platforms_incarnation_fixed BEFORE UPDATE OF incarnation"
    " ON platforms WHEN OLD.incarnation <> ''"
    " AND NEW.incarnation <> OLD.incarnation BEGIN"
    " SELECT RAISE(ABORT, 'a platform keeps its incarnation'); END;"
    /* Folders of deleted platforms still to remove (DATA/platforms/{id}):
     * written by the deletion's own transaction, so a crash before the
     * folder is gone leaves a row for the next start to finish. */
    "CREATE TABLE platform_removals ("
    " id TEXT NOT NULL PRIMARY KEY,"
    " incarnation TEXT NOT NULL"
    ") STRICT, WITHOUT ROWID;"
    "CREATE TRIGGER platforms_removal AFTER DELETE ON platforms BEGIN"
    " INSERT OR REPLACE INTO platform_removals (id, incarnation)"
    " VALUES (OLD.id, OLD.incarnation); END;";

/* Resources are the provisioning plugin's now (its own journal and
 * GET /api/v1/platforms/{p}/resources); the registry never wrote a row. */
static const char m4_no_resources[] = "DROP TABLE resources;";

/* Creations still being provisioned: written with the platform's row and
 * dropped with its 201 (or with the row), so a process killed in between
 * leaves a row for the next start to undo (pid: the worker that creates;
 * key, actor: its pending Idempotency-Key, if any). */
static const char m5_creations[] =
    "CREATE TABLE platform_creations ("
    " id TEXT NOT NULL PRIMARY KEY,"
    " pid INTEGER NOT NULL,"
    " idem_key TEXT,"
    " idem_actor TEXT"
    ") STRICT, WITHOUT ROWID;"
    "CREATE TRIGGER platforms_creation_gone AFTER DELETE ON platforms BEGIN"
    " DELETE FROM platform_creations WHERE id = OLD.id; END;";

/* A deleted tenant's id is never given to a new tenant of the platform:
 * packages keep rows under tenant paths ("eu/fr"), and a new tenant of the
 * same id would inherit what the old one left. Retired ids go with their
 * platform. */
static const char m6_retired_tenants[] =
    "CREATE TABLE retired_tenants ("
    " platform_id TEXT NOT NULL REFERENCES platforms(id) ON DELETE CASCADE,"
    " id TEXT NOT NULL,"
    " PRIMARY KEY (platform_id, id)"
    ") STRICT, WITHOUT ROWID;"
    "CREATE TRIGGER tenants_retire AFTER DELETE ON tenants"
    " WHEN EXISTS (SELECT 1 FROM platforms WHERE id = OLD.platform_id) BEGIN"
    " INSERT OR IGNORE INTO retired_tenants VALUES (OLD.platform_id, OLD.id);"
    " END;"
    "CREATE TRIGGER tenants_not_retired BEFORE INSERT ON tenants"
    " WHEN EXISTS (SELECT 1 FROM retired_tenants"
    "  WHERE platform_id = NEW.platform_id AND id = NEW.id) BEGIN"
    " SELECT RAISE(ABORT, 'tenant retired'); END;";

/* A stack being moved (activated, upgraded, rolled back, deactivated) on a
 * platform: one at a time per platform across workers. Taken in the
 * transaction that decides to provision, dropped with the activation's
 * row or its failure; pid names the worker, so a row left by a process
 * that died is taken over. */
static const char m7_moves[] =
    "CREATE TABLE platform_moves ("
    " platform_id TEXT NOT NULL PRIMARY KEY"
    "  REFERENCES platforms(id) ON DELETE CASCADE,"
    " stack_id TEXT NOT NULL,"
    " version TEXT NOT NULL,"
    " pid INTEGER NOT NULL"
    ") STRICT, WITHOUT ROWID;";

/* What a platform shows its users (logo, colours): a JSON object as text,
 * NULL when none was set. The API checks its fields (branding.c); the
 * database bounds its size and shape. */
static const char m8_branding[] =
    "ALTER TABLE platforms ADD COLUMN branding TEXT"
    " CHECK (branding IS NULL OR (length(branding) <= 100000"
    "  AND json_valid(branding) AND json_type(branding) = 'object'));";

/* Who suspended a platform ("" while active) and why: an operator's
 * suspension is never lifted by a service (billing's payment received
 * resumes only what billing suspended). Platforms suspended before this
 * was recorded count as the operator's: nothing lifts them blind. */
static const char m9_suspender[] =
    "ALTER TABLE platforms ADD COLUMN suspended_by TEXT NOT NULL DEFAULT ''"
    " CHECK (length(suspended_by) <= 128);"
    "ALTER TABLE platforms ADD COLUMN suspend_reason TEXT NOT NULL"
    " DEFAULT '' CHECK (length(suspend_reason) <= 256);"
    "UPDATE platforms SET suspended_by = 'operator'"
    " WHERE status = 'suspended';";

const store_migration store_migrations[] = {
    {1,
     "platforms, tenants, catalogue, activations, resources, audit, "
     "changes, settings",
     m1_base},
    {2, "idempotency keys", m2_idempotency},
    {3, "platform incarnations", m3_incarnation},
    {4, "resources left to the provisioning plugin", m4_no_resources},
    {5, "creations in progress", m5_creations},
    {6, "retired tenant ids", m6_retired_tenants},
    {7, "stack moves in progress", m7_moves},
    {8, "platform branding", m8_branding},
    {9, "who suspended a platform", m9_suspender},
};

const size_t store_nmigrations =
    sizeof store_migrations / sizeof store_migrations[0];
