// Publish tokens in the Worker (core/auth/publish-token.ts): minting for the admin API, and which
// stream a publisher's credential, a stream key or a publish token, starts (the origin's authorize,
// the WHIP entry's status). The per-stream key is derived from ADMIN_TOKEN, the one secret whose
// holders may mint through the API anyway, and from the stream key's hash: neither alone mints.
import {
  isPublishToken,
  newPublishNonce,
  parsePublishToken,
  publishTokenKey,
  signPublishToken,
  verifyPublishToken,
  type PresentedPublishToken,
  type PublishTokenUse,
} from '../core/auth/publish-token.ts';
import { findStreamByKey, toRecord, type StreamRecord, type StreamRow } from './catalog.ts';
import type { Env } from './env.ts';
import { HttpError } from './http.ts';

export interface MintedPublishToken {
  token: string;
  streamId: string;
  /** Unix seconds. */
  expiresAt: number;
  use: PublishTokenUse;
}

function rootSecret(env: Pick<Env, 'ADMIN_TOKEN'>): string {
  if (!env.ADMIN_TOKEN) throw new HttpError(500, 'misconfigured', 'ADMIN_TOKEN is not set');
  return env.ADMIN_TOKEN;
}

/** A token for the stream, or null when there is no such stream. */
export async function mintPublishToken(
  env: Env,
  streamId: string,
  opts: { expiresIn: number; use: PublishTokenUse },
  now = Date.now(),
): Promise<MintedPublishToken | null> {
  const row = await env.DB.prepare('SELECT key_hash FROM streams WHERE id = ?').bind(streamId).first<Pick<StreamRow, 'key_hash'>>();
  if (!row) return null;
  const expiresAt = Math.floor(now / 1000) + opts.expiresIn;
  const token = await signPublishToken(
    { streamId, expiresAt, nonce: newPublishNonce(), use: opts.use },
    await publishTokenKey(rootSecret(env), row.key_hash),
  );
  return { token, streamId, expiresAt, use: opts.use };
}

const refused = (code: string, message: string) => new HttpError(403, code, message);

/**
 * The stream a publisher's credential starts, or a 403 saying why not (`unknown_stream_key`, or a
 * publish token's `invalid_publish_token`, `publish_token_expired`, `publish_token_used`,
 * `publish_token_session`). `consume` (the authorize that takes a lease) spends a single-use token
 * and binds a session-bound one to the session presented; without it (a status read) a single-use
 * token is only checked and a session-bound one must match its binding if it has one.
 */
export async function streamForCredential(
  env: Env,
  credential: string,
  opts: { consume: boolean },
  now = Date.now(),
): Promise<StreamRecord> {
  if (!isPublishToken(credential)) {
    const stream = await findStreamByKey(env.DB, credential);
    if (!stream) throw refused('unknown_stream_key', 'no stream has this key (wrong, rotated or deleted)');
    return stream;
  }
  const presented = parsePublishToken(credential);
  if (!presented) throw refused('invalid_publish_token', 'malformed publish token');
  const row = await env.DB.prepare('SELECT * FROM streams WHERE id = ?').bind(presented.streamId).first<StreamRow>();
  // A deleted stream's token and a forged one get the same answer.
  if (!row) throw refused('invalid_publish_token', 'not a valid publish token (tampered, or its stream was deleted)');
  const verdict = await verifyPublishToken(presented, await publishTokenKey(rootSecret(env), row.key_hash), Math.floor(now / 1000));
  if (!verdict.ok) throw refused(verdict.code, verdict.message);
  if (presented.use !== 'reusable') await checkUse(env.DB, presented, opts.consume, now);
  return toRecord(row);
}

async function sha256Hex(text: string): Promise<string> {
  const digest = await crypto.subtle.digest('SHA-256', new TextEncoder().encode(text));
  return [...new Uint8Array(digest)].map((b) => b.toString(16).padStart(2, '0')).join('');
}

/**
 * Single use and session binding, in D1 (one primary, so two first uses racing each other cannot
 * both win the insert). Rows of expired tokens are swept by the same batch.
 */
async function checkUse(db: D1Database, presented: PresentedPublishToken, consume: boolean, now: number): Promise<void> {
  const sessionHash = presented.session === null ? null : await sha256Hex(presented.session);
  if (consume) {
    const [, inserted] = await db.batch([
      db.prepare('DELETE FROM publish_token_uses WHERE expires_at < ?').bind(now),
      db
        .prepare(
          'INSERT INTO publish_token_uses (nonce, stream_id, session_hash, used_at, expires_at) VALUES (?, ?, ?, ?, ?) ON CONFLICT (nonce) DO NOTHING',
        )
        .bind(presented.nonce, presented.streamId, presented.use === 'session' ? sessionHash : null, now, presented.expiresAt * 1000),
    ]);
    if (inserted!.meta.changes === 1) return;
    if (presented.use === 'single') throw refused('publish_token_used', 'this single-use publish token was already used: mint a new one');
  }
  if (presented.use !== 'session') return;
  const bound = await db
    .prepare('SELECT session_hash FROM publish_token_uses WHERE nonce = ?')
    .bind(presented.nonce)
    .first<{ session_hash: string | null }>();
  if (bound && bound.session_hash !== sessionHash) {
    throw refused('publish_token_session', 'this publish token is bound to the session of its first use, not this one');
  }
}
