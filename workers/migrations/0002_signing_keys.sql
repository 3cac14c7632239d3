-- Playback signing keys (ES256). Operator keys keep only their public JWK: the private key is
-- returned once at creation. The one managed key per generation, used by the token-minting
-- route, keeps its private JWK too (cleared when it is revoked). Revoked keys stay listed.
CREATE TABLE signing_keys (
  kid TEXT PRIMARY KEY,
  name TEXT NOT NULL DEFAULT '',
  alg TEXT NOT NULL DEFAULT 'ES256' CHECK (alg = 'ES256'),
  public_jwk TEXT NOT NULL,
  private_jwk TEXT,
  managed INTEGER NOT NULL DEFAULT 0 CHECK (managed IN (0, 1)),
  created_at INTEGER NOT NULL,
  revoked_at INTEGER
);
CREATE INDEX signing_keys_created ON signing_keys (created_at);
