-- Live-to-VOD recordings and instant clips (their VOD playlists are built from the stream's
-- StreamState over the same R2 objects), and webhooks with their deliveries and attempts.
CREATE TABLE recordings (
  id TEXT PRIMARY KEY,
  stream_id TEXT NOT NULL,
  status TEXT NOT NULL CHECK (status IN ('recording', 'ready', 'expired')),
  started_at INTEGER NOT NULL,
  ended_at INTEGER,
  -- Seconds of media (the first rendition of the ladder), known once ready.
  duration REAL,
  first_msn INTEGER NOT NULL,
  last_msn INTEGER,
  -- Publisher reconnections inside the recording (EXT-X-DISCONTINUITY tags).
  discontinuities INTEGER NOT NULL DEFAULT 0,
  expires_at INTEGER,
  created_at INTEGER NOT NULL,
  updated_at INTEGER NOT NULL
);
CREATE INDEX recordings_stream ON recordings (stream_id, started_at);

CREATE TABLE clips (
  id TEXT PRIMARY KEY,
  stream_id TEXT NOT NULL,
  status TEXT NOT NULL CHECK (status IN ('ready', 'expired')),
  title TEXT NOT NULL DEFAULT '',
  -- Wall-clock ms of the first presented sample and of the end of the last one.
  start_at INTEGER NOT NULL,
  end_at INTEGER NOT NULL,
  duration REAL NOT NULL,
  first_msn INTEGER NOT NULL,
  last_msn INTEGER NOT NULL,
  export_status TEXT CHECK (export_status IN ('pending', 'processing', 'ready', 'failed')),
  export_key TEXT,
  export_error TEXT,
  expires_at INTEGER NOT NULL,
  created_at INTEGER NOT NULL,
  updated_at INTEGER NOT NULL
);
CREATE INDEX clips_stream ON clips (stream_id, created_at);
CREATE INDEX clips_export ON clips (export_status, created_at);

-- Operators' webhook endpoints. The secret signs every delivery (HMAC), so it is kept.
CREATE TABLE webhooks (
  id TEXT PRIMARY KEY,
  url TEXT NOT NULL,
  secret TEXT NOT NULL,
  events TEXT NOT NULL,
  description TEXT NOT NULL DEFAULT '',
  created_at INTEGER NOT NULL
);
CREATE INDEX webhooks_created ON webhooks (created_at);

CREATE TABLE webhook_deliveries (
  id TEXT PRIMARY KEY,
  webhook_id TEXT NOT NULL,
  event_id TEXT NOT NULL,
  event_type TEXT NOT NULL,
  payload TEXT NOT NULL,
  status TEXT NOT NULL CHECK (status IN ('pending', 'delivered', 'failed')),
  attempts INTEGER NOT NULL DEFAULT 0,
  next_attempt_at INTEGER,
  created_at INTEGER NOT NULL,
  updated_at INTEGER NOT NULL,
  -- One delivery per endpoint and event, however often the event message is redelivered.
  UNIQUE (webhook_id, event_id)
);
CREATE INDEX webhook_deliveries_webhook ON webhook_deliveries (webhook_id, created_at);

CREATE TABLE webhook_attempts (
  delivery_id TEXT NOT NULL,
  attempt INTEGER NOT NULL,
  at INTEGER NOT NULL,
  -- HTTP status of the receiver's answer; null when there was none (network error, timeout).
  status_code INTEGER,
  error TEXT,
  duration_ms INTEGER NOT NULL,
  PRIMARY KEY (delivery_id, attempt)
);
