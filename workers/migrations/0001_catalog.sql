-- The catalog of streams. Stream keys are stored as SHA-256 hashes; the key itself is shown once.
CREATE TABLE streams (
  id TEXT PRIMARY KEY,
  title TEXT NOT NULL DEFAULT '',
  key_hash TEXT NOT NULL UNIQUE,
  settings TEXT NOT NULL,
  status TEXT NOT NULL DEFAULT 'idle' CHECK (status IN ('idle', 'live', 'ended')),
  created_at INTEGER NOT NULL,
  updated_at INTEGER NOT NULL
);
CREATE INDEX streams_created ON streams (created_at);
