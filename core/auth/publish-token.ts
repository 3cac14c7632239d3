// Publish tokens: short-lived credentials that start one stream's ingest where its stream key would
// (a WHIP bearer, an RTMP stream name, an SRT stream id) without revealing or replacing the key, so
// a Go-live page or a guest encoder never holds it. Pure Web Crypto: the Worker mints and checks
// them, the media node and the Go-live page only read which stream one names.
//
//   pt1.{streamId}.{expiresAt}.{nonce}.{use}.{mac}[.{session}]
//
// `mac` is HMAC-SHA-256 over everything before it, keyed per stream by HMAC(root secret, the
// stream key's stored hash): rotating the key changes the hash, so every token of the stream stops
// verifying at once (revocation needs no list), and the catalog's hashes alone cannot mint one.
// `use` is r (reusable until it expires), o (one accepted use), s (bound to the session of its first
// use). A session-bound token is presented with `.{session}` appended: a random string its first
// publisher chose, which every later use must repeat.

export const PUBLISH_TOKEN_VERSION = 'pt1';
export type PublishTokenUse = 'reusable' | 'single' | 'session';

const USE_CODE: Record<PublishTokenUse, string> = { reusable: 'r', single: 'o', session: 's' };
const USE_OF: Record<string, PublishTokenUse> = { r: 'reusable', o: 'single', s: 'session' };

/** The session a session-bound token's publisher appends: 16–43 base64url characters (at least 96 bits). */
export const PUBLISH_SESSION_RE = /^[A-Za-z0-9_-]{16,43}$/;
const TOKEN_RE = /^pt1\.([A-Za-z0-9_-]{1,64})\.(\d{1,12})\.([A-Za-z0-9_-]{16})\.([ros])\.([A-Za-z0-9_-]{43})(?:\.([A-Za-z0-9_-]{16,43}))?$/;

/** What a token grants: one stream, until `expiresAt` (Unix seconds), used as `use` says. */
export interface PublishGrant {
  streamId: string;
  expiresAt: number;
  /** 16 base64url characters (96 random bits): names the token for single use and session binding. */
  nonce: string;
  use: PublishTokenUse;
}

/** A token as presented: its grant, the session appended (if any), and what the MAC covers. */
export interface PresentedPublishToken extends PublishGrant {
  session: string | null;
  /** The token without its session: what is compared and stored. */
  token: string;
  signed: string;
  mac: Uint8Array;
}

export type PublishTokenRefusal = {
  code: 'invalid_publish_token' | 'publish_token_expired' | 'publish_token_used' | 'publish_token_session';
  message: string;
};

const enc = new TextEncoder();
/** The label the per-stream key is derived under (domain separation from any other use of the root secret). */
const KEY_LABEL = 'edgelive publish token v1\n';

function base64url(bytes: Uint8Array): string {
  let bin = '';
  for (const b of bytes) bin += String.fromCharCode(b);
  return btoa(bin).replace(/\+/g, '-').replace(/\//g, '_').replace(/=+$/, '');
}

function fromBase64url(s: string): Uint8Array {
  const bin = atob(s.replace(/-/g, '+').replace(/_/g, '/') + '='.repeat((4 - (s.length % 4)) % 4));
  const out = new Uint8Array(bin.length);
  for (let i = 0; i < bin.length; i++) out[i] = bin.charCodeAt(i);
  return out;
}

/** Whether a credential is a publish token (rather than a stream key); says nothing of its validity. */
export function isPublishToken(credential: string): boolean {
  return credential.startsWith(`${PUBLISH_TOKEN_VERSION}.`);
}

/** Reads a presented token, or null when it is not one (malformed). Checks nothing cryptographic. */
export function parsePublishToken(credential: string): PresentedPublishToken | null {
  const m = TOKEN_RE.exec(credential);
  if (!m) return null;
  const [, streamId, exp, nonce, use, mac, session] = m as unknown as [string, string, string, string, string, string, string | undefined];
  const token = session === undefined ? credential : credential.slice(0, -(session.length + 1));
  return {
    streamId,
    expiresAt: Number(exp),
    nonce,
    use: USE_OF[use]!,
    session: session ?? null,
    token,
    signed: token.slice(0, token.length - mac.length - 1),
    mac: fromBase64url(mac),
  };
}

/** The stream a credential names if it is a publish token (unverified: only for refusing mismatches early). */
export function publishTokenStream(credential: string): string | null {
  return parsePublishToken(credential)?.streamId ?? null;
}

/** A token presented with a session appended (what a session-bound token's publisher sends). */
export function withPublishSession(token: string, session: string): string {
  if (!PUBLISH_SESSION_RE.test(session)) throw new RangeError('a publish session is 16–43 base64url characters');
  return `${token}.${session}`;
}

export function newPublishNonce(): string {
  return base64url(crypto.getRandomValues(new Uint8Array(12)));
}

/** A new random session for a session-bound token (22 characters, 128 bits). */
export function newPublishSession(): string {
  return base64url(crypto.getRandomValues(new Uint8Array(16)));
}

/** The stream's token key: HMAC-SHA-256(rootSecret, label + the stream key's SHA-256 hex). */
export async function publishTokenKey(rootSecret: string, streamKeyHash: string): Promise<CryptoKey> {
  const root = await crypto.subtle.importKey('raw', enc.encode(rootSecret), { name: 'HMAC', hash: 'SHA-256' }, false, ['sign']);
  const derived = await crypto.subtle.sign('HMAC', root, enc.encode(KEY_LABEL + streamKeyHash));
  return crypto.subtle.importKey('raw', derived, { name: 'HMAC', hash: 'SHA-256' }, false, ['sign', 'verify']);
}

export async function signPublishToken(grant: PublishGrant, key: CryptoKey): Promise<string> {
  if (!/^[A-Za-z0-9_-]{1,64}$/.test(grant.streamId)) throw new RangeError('not a stream id');
  if (!/^[A-Za-z0-9_-]{16}$/.test(grant.nonce)) throw new RangeError('a nonce is 16 base64url characters');
  if (!Number.isInteger(grant.expiresAt) || grant.expiresAt < 0) throw new RangeError('expiresAt is Unix seconds');
  const signed = `${PUBLISH_TOKEN_VERSION}.${grant.streamId}.${grant.expiresAt}.${grant.nonce}.${USE_CODE[grant.use]}`;
  const mac = new Uint8Array(await crypto.subtle.sign('HMAC', key, enc.encode(signed)));
  return `${signed}.${base64url(mac)}`;
}

/**
 * Checks a presented token's MAC with its stream's key, its expiry and, for a session-bound token,
 * that a session is presented. Single use and the session's match need the catalog (the caller's).
 */
export async function verifyPublishToken(
  presented: PresentedPublishToken,
  key: CryptoKey,
  nowSec: number,
): Promise<{ ok: true } | ({ ok: false } & PublishTokenRefusal)> {
  // crypto.subtle.verify compares in constant time.
  const valid = await crypto.subtle.verify('HMAC', key, presented.mac as Uint8Array<ArrayBuffer>, enc.encode(presented.signed));
  if (!valid)
    return { ok: false, code: 'invalid_publish_token', message: 'not a valid publish token (tampered, or its stream key was rotated)' };
  if (presented.expiresAt <= nowSec)
    return { ok: false, code: 'publish_token_expired', message: 'the publish token has expired: mint a new one' };
  if (presented.use === 'session' && presented.session === null) {
    return {
      ok: false,
      code: 'publish_token_session',
      message: 'this publish token is bound to a session: present it as {token}.{session}',
    };
  }
  return { ok: true };
}
