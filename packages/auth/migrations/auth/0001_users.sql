-- The users of a platform. The id is 16 hex digits; the email is unique
-- whatever its case; the hash, when set, is an argon2id string (never a
-- password). STRICT and the CHECKs hold these rules in the database itself.
CREATE TABLE users (
  id TEXT NOT NULL PRIMARY KEY
    CHECK (length(id) = 16 AND id NOT GLOB '*[^0-9a-f]*'),
  email TEXT NOT NULL UNIQUE COLLATE NOCASE
    CHECK (length(email) BETWEEN 3 AND 254),
  name TEXT CHECK (name IS NULL OR length(name) BETWEEN 1 AND 128),
  password_hash TEXT
    CHECK (password_hash IS NULL OR password_hash GLOB '$argon2id$*'),
  created_at TEXT NOT NULL,
  updated_at TEXT NOT NULL
) STRICT, WITHOUT ROWID;
