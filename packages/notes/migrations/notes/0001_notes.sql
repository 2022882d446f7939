-- The notes of a platform. One row per note, stamped with the tenant path
-- of the caller that wrote it ("" for a platform-wide caller): reads filter
-- on it with a prefix test, so a caller bound to tenant eu sees eu and
-- eu/fr, never us. STRICT and the CHECKs keep the bounds in the database
-- itself, whatever the C code does.
CREATE TABLE notes (
  id INTEGER PRIMARY KEY,
  tenant_path TEXT NOT NULL CHECK (length(tenant_path) <= 1023),
  title TEXT NOT NULL CHECK (length(title) BETWEEN 1 AND 200),
  body TEXT NOT NULL DEFAULT '' CHECK (length(body) <= 32768),
  created_by TEXT NOT NULL,
  created_at TEXT NOT NULL,
  updated_at TEXT NOT NULL
) STRICT;

-- Lists walk one tenant's rows in id order.
CREATE INDEX notes_by_tenant ON notes (tenant_path, id);
