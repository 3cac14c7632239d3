// The D1 catalog of playback signing keys and this isolate's view of it: the token verifier
// (keys imported once, status trusted for 30 s) and the managed key the minting route signs with.
import type { JWK } from 'jose';
import {
  KEY_CACHE_TTL_MS,
  PlaybackTokenVerifier,
  generateSigningKeyPair,
  importSigningKey,
  type GeneratedKeyPair,
  type KeyLookup,
  type SigningKey,
} from '../core/auth/playback-token.ts';

export interface SigningKeyRow {
  kid: string;
  name: string;
  alg: string;
  public_jwk: string;
  private_jwk: string | null;
  managed: 0 | 1;
  created_at: number;
  revoked_at: number | null;
}

/** The managed signing key as this isolate last read it. */
let managed: { key: SigningKey; at: number } | null = null;

/** One verifier per isolate: its key and token caches are what make verification cost microseconds. */
export const playbackVerifier = new PlaybackTokenVerifier();

/** The catalog's answer for a key id, as the verifier asks it (one indexed read per key per TTL). */
export async function lookupSigningKey(db: D1Database, kid: string): Promise<KeyLookup> {
  const row = await db
    .prepare('SELECT public_jwk, revoked_at FROM signing_keys WHERE kid = ?')
    .bind(kid)
    .first<Pick<SigningKeyRow, 'public_jwk' | 'revoked_at'>>();
  if (!row) return { status: 'unknown' };
  if (row.revoked_at !== null) return { status: 'revoked' };
  return { status: 'active', publicJwk: JSON.parse(row.public_jwk) as JWK };
}

export function signingKeyJson(row: SigningKeyRow) {
  return {
    kid: row.kid,
    name: row.name,
    alg: row.alg,
    managed: row.managed === 1,
    publicJwk: JSON.parse(row.public_jwk) as JWK,
    createdAt: new Date(row.created_at).toISOString(),
    revokedAt: row.revoked_at === null ? null : new Date(row.revoked_at).toISOString(),
  };
}

/** Creates a key pair; only the managed key keeps its private half in the catalog. */
export async function createSigningKey(
  db: D1Database,
  name: string,
  managed = false,
): Promise<{ pair: GeneratedKeyPair; row: SigningKeyRow }> {
  const pair = await generateSigningKeyPair();
  const row: SigningKeyRow = {
    kid: pair.kid,
    name,
    alg: 'ES256',
    public_jwk: JSON.stringify(pair.publicJwk),
    private_jwk: managed ? JSON.stringify(pair.privateJwk) : null,
    managed: managed ? 1 : 0,
    created_at: Date.now(),
    revoked_at: null,
  };
  await db
    .prepare('INSERT INTO signing_keys (kid, name, alg, public_jwk, private_jwk, managed, created_at) VALUES (?, ?, ?, ?, ?, ?, ?)')
    .bind(row.kid, row.name, row.alg, row.public_jwk, row.private_jwk, row.managed, row.created_at)
    .run();
  return { pair, row };
}

export async function listSigningKeys(db: D1Database): Promise<SigningKeyRow[]> {
  const rows = await db.prepare('SELECT * FROM signing_keys ORDER BY created_at DESC, kid').all<SigningKeyRow>();
  return rows.results;
}

export async function getSigningKey(db: D1Database, kid: string): Promise<SigningKeyRow | null> {
  return db.prepare('SELECT * FROM signing_keys WHERE kid = ?').bind(kid).first<SigningKeyRow>();
}

/**
 * Revokes a key: it stays listed (so tokens signed with it are told `key_revoked`), a managed
 * key loses its private half, and this isolate forgets it at once; the others within 30 s.
 */
export async function revokeSigningKey(db: D1Database, kid: string): Promise<SigningKeyRow | null> {
  await db
    .prepare('UPDATE signing_keys SET revoked_at = ?, private_jwk = NULL WHERE kid = ? AND revoked_at IS NULL')
    .bind(Date.now(), kid)
    .run();
  playbackVerifier.forgetKey(kid);
  if (managed?.key.kid === kid) managed = null;
  return getSigningKey(db, kid);
}

/**
 * The key the minting route signs with: the newest active managed key, created on first use.
 * Re-read every 30 s so a revoked managed key is replaced everywhere soon after.
 */
export async function managedSigningKey(db: D1Database, now = Date.now()): Promise<SigningKey> {
  if (managed && now - managed.at < KEY_CACHE_TTL_MS) return managed.key;
  const row = await db
    .prepare(
      'SELECT kid, private_jwk FROM signing_keys WHERE managed = 1 AND revoked_at IS NULL AND private_jwk IS NOT NULL ORDER BY created_at DESC LIMIT 1',
    )
    .first<Pick<SigningKeyRow, 'kid' | 'private_jwk'>>();
  // Two isolates racing here may each create one; both keys are valid, the newer wins afterwards.
  const jwk = row?.private_jwk ?? JSON.stringify((await createSigningKey(db, 'managed (token minting)', true)).pair.privateJwk);
  const key = await importSigningKey(jwk);
  managed = { key, at: now };
  return key;
}
