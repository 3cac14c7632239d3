-- Publish tokens that were used and must remember it (core/auth/publish-token.ts): a single-use
-- token once accepted, and the session a session-bound token was first used with. Reusable tokens
-- leave no row. A row is kept until its token expires (`expires_at`, ms since the Unix epoch), then
-- deleted by the next use of any token: an expired token is refused before this table is read.
CREATE TABLE publish_token_uses (
  nonce TEXT PRIMARY KEY,
  stream_id TEXT NOT NULL,
  -- SHA-256 (hex) of the session a session-bound token is bound to; NULL for a single-use token.
  session_hash TEXT,
  used_at INTEGER NOT NULL,
  expires_at INTEGER NOT NULL
);
CREATE INDEX publish_token_uses_expiry ON publish_token_uses (expires_at);
