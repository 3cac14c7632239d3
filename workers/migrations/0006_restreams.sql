-- Restream (simulcast) destinations of a stream. The publish URL and key are kept only encrypted
-- (AES-GCM, workers/restream-secrets.ts); the API shows url_display and key_hint. The status is
-- what the media node that has the publisher last reported (fenced by the lease epoch).
CREATE TABLE restreams (
  id TEXT PRIMARY KEY,
  stream_id TEXT NOT NULL,
  name TEXT NOT NULL DEFAULT '',
  url_display TEXT NOT NULL,
  key_hint TEXT NOT NULL,
  secret TEXT NOT NULL,
  enabled INTEGER NOT NULL DEFAULT 1,
  -- JSON RestreamStatus (core/contracts/restream.ts) without the id; null until a node reports.
  status TEXT,
  status_epoch INTEGER NOT NULL DEFAULT 0,
  status_node TEXT,
  status_at INTEGER,
  created_at INTEGER NOT NULL,
  updated_at INTEGER NOT NULL
);
CREATE INDEX restreams_stream ON restreams (stream_id, created_at);
