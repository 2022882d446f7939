-- A note's id is never given again once the note is deleted. Without
-- AUTOINCREMENT SQLite hands out max(id) + 1, so deleting the newest note
-- and creating another reused its id, and with it every file still keyed
-- "notes/{id}/..." in the bucket: a file stored while the note was being
-- deleted (its PUT past the note check, its object not yet indexed when
-- the DELETE listed the files) became the new note's, whoever wrote it.
-- The table is rebuilt with AUTOINCREMENT; the rows keep their ids.
CREATE TABLE notes_ids (
  id INTEGER PRIMARY KEY AUTOINCREMENT,
  tenant_path TEXT NOT NULL CHECK (length(tenant_path) <= 1023),
  title TEXT NOT NULL CHECK (length(title) BETWEEN 1 AND 200),
  body TEXT NOT NULL DEFAULT '' CHECK (length(body) <= 32768),
  created_by TEXT NOT NULL,
  created_at TEXT NOT NULL,
  updated_at TEXT NOT NULL
) STRICT;
INSERT INTO notes_ids (id, tenant_path, title, body, created_by, created_at,
                       updated_at)
  SELECT id, tenant_path, title, body, created_by, created_at, updated_at
  FROM notes;
DROP TABLE notes;
ALTER TABLE notes_ids RENAME TO notes;
CREATE INDEX notes_by_tenant ON notes (tenant_path, id);
