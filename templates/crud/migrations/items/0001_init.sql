-- The items of a platform, one row each, stamped with the tenant path of
-- the caller that wrote it ("" for a platform-wide caller). Every query
-- filters on it, so a caller bound to tenant eu sees eu and eu/fr, never
-- us. Migrations are applied once, in order, when the stack is activated:
-- never edit a released one, add 0002_....sql.
CREATE TABLE items (
  id INTEGER PRIMARY KEY AUTOINCREMENT,
  tenant_path TEXT NOT NULL CHECK (length(tenant_path) <= 1023),
  name TEXT NOT NULL CHECK (length(name) BETWEEN 1 AND 200),
  created_by TEXT NOT NULL,
  created_at TEXT NOT NULL,
  updated_at TEXT NOT NULL
) STRICT;

CREATE INDEX items_by_tenant ON items (tenant_path, id);
