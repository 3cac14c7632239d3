// Room tokens and anonymous sessions: jose (the JWT library playback tokens use) over Web Crypto,
// no Worker globals, so the same code runs in the Worker, in workerd tests and in Node.
//
// A room token is a compact JWS with HS256 (HMAC-SHA-256) and claims { room, name, role, exp }.
// The algorithm is pinned: a token whose header names any other `alg` is refused before any key
// is used (the JWT algorithm-confusion class of bugs). HMAC was chosen over ES256 because the
// only issuer is our own backend, which already holds the secret; a deployment that needs
// third-party issuers can add an ES256 verifier next to this one without touching the rooms.
import { CompactSign, compactVerify, errors } from 'jose';
import { z } from 'zod';
import { RoleName, RoomId, type Role } from '../rooms/room-protocol.ts';

export interface RoomTokenClaims {
  /** Room id, or '*' for a token valid in every room (operators, tests). */
  room: string;
  name: string;
  role: Role;
  /** Expiry, seconds since the epoch (JWT NumericDate). */
  exp: number;
  iat?: number;
}

const Claims = z.object({
  room: z.union([RoomId, z.literal('*')]),
  name: z.string().min(1).max(64),
  role: RoleName,
  exp: z.number().int().positive(),
  iat: z.number().int().positive().optional(),
});

export type TokenCheck = { ok: true; claims: RoomTokenClaims } | { ok: false; code: 'token_invalid' | 'token_expired'; reason: string };

const enc = new TextEncoder();
const dec = new TextDecoder();
const keyCache = new Map<string, Promise<CryptoKey>>();

function hmacKey(secret: string): Promise<CryptoKey> {
  let k = keyCache.get(secret);
  if (!k) {
    k = crypto.subtle.importKey('raw', enc.encode(secret), { name: 'HMAC', hash: 'SHA-256' }, false, ['sign', 'verify']);
    keyCache.set(secret, k);
  }
  return k;
}

export function base64url(bytes: Uint8Array): string {
  let bin = '';
  for (const b of bytes) bin += String.fromCharCode(b);
  return btoa(bin).replace(/\+/g, '-').replace(/\//g, '_').replace(/=+$/, '');
}

/** A compact JWS over `payload` with HS256 (room tokens, voice SFU tokens), signed by jose. */
export async function signJwsHs256(payload: object, secret: string): Promise<string> {
  return new CompactSign(enc.encode(JSON.stringify(payload))).setProtectedHeader({ alg: 'HS256', typ: 'JWT' }).sign(await hmacKey(secret));
}

/**
 * Checks a compact JWS's shape, pinned algorithm (HS256: any other `alg`, `none` included, is
 * refused before a key is touched: jose's `algorithms` allow-list) and signature; returns the
 * payload, not yet validated (the callers check their claims and expiry at an injectable time).
 */
export async function verifyJwsHs256(
  token: string,
  secret: string,
): Promise<{ ok: true; payload: unknown } | { ok: false; reason: string }> {
  if (token.length > 2048) return { ok: false, reason: 'token too long' };
  let bytes: Uint8Array;
  try {
    ({ payload: bytes } = await compactVerify(token, await hmacKey(secret), { algorithms: ['HS256'] }));
  } catch (err) {
    if (err instanceof errors.JOSEAlgNotAllowed) return { ok: false, reason: 'alg must be HS256' };
    if (err instanceof errors.JWSSignatureVerificationFailed) return { ok: false, reason: 'bad signature' };
    return { ok: false, reason: 'not a compact JWS' };
  }
  try {
    return { ok: true, payload: JSON.parse(dec.decode(bytes)) };
  } catch {
    return { ok: false, reason: 'bad JSON' };
  }
}

export function signRoomToken(claims: RoomTokenClaims, secret: string): Promise<string> {
  return signJwsHs256(claims, secret);
}

/**
 * Checks signature, algorithm, expiry and room. `nowSec` is injectable for tests. A token for
 * another room is `token_invalid`: it is genuine but grants nothing here.
 */
export async function verifyRoomToken(token: string, secret: string, roomId: string, nowSec: number): Promise<TokenCheck> {
  const bad = (reason: string): TokenCheck => ({ ok: false, code: 'token_invalid', reason });
  const jws = await verifyJwsHs256(token, secret);
  if (!jws.ok) return bad(jws.reason);
  const c = Claims.safeParse(jws.payload);
  if (!c.success) return bad('bad claims');
  if (c.data.exp <= nowSec) return { ok: false, code: 'token_expired', reason: 'token expired' };
  if (c.data.room !== '*' && c.data.room !== roomId) return bad('token is for another room');
  return { ok: true, claims: c.data };
}

// ---------------------------------------------------------------------------------------------
// Anonymous sessions: the room gives an anonymous viewer a random id and a signature over it, so
// a reconnect keeps the same id (one vote, one mute, one rate limit) without an account.

export function newAnonymousId(): string {
  return base64url(crypto.getRandomValues(new Uint8Array(12)));
}

async function signAnonymous(context: string, anonId: string, secret: string): Promise<string> {
  const sig = new Uint8Array(await crypto.subtle.sign('HMAC', await hmacKey(secret), enc.encode(`${context}|${anonId}`)));
  return `${anonId}.${base64url(sig.slice(0, 16))}`;
}

async function verifyAnonymous(context: string, value: string, secret: string): Promise<string | null> {
  const m = /^([A-Za-z0-9_-]{16})\.([A-Za-z0-9_-]{22})$/.exec(value);
  if (!m) return null;
  const expected = await signAnonymous(context, m[1]!, secret);
  const a = enc.encode(expected);
  const b = enc.encode(value);
  if (a.byteLength !== b.byteLength) return null;
  let diff = 0;
  for (let i = 0; i < a.byteLength; i++) diff |= a[i]! ^ b[i]!;
  return diff === 0 ? m[1]! : null;
}

export function signSession(roomId: string, anonId: string, secret: string): Promise<string> {
  return signAnonymous(`session|${roomId}`, anonId, secret);
}

/** Returns the anonymous id a session vouches for, or null. */
export function verifySession(session: string, roomId: string, secret: string): Promise<string | null> {
  return verifyAnonymous(`session|${roomId}`, session, secret);
}

/**
 * The anonymous identity a browser keeps in a cookie (`ANONYMOUS_COOKIE`): the same signed id in
 * every room of the deployment, so reloading the page, opening it again or reconnecting without
 * the page's `session` keeps one member — one vote, one mute, one chat rate.
 */
export const ANONYMOUS_COOKIE = 'edgelive_anon';

export function signAnonymousIdentity(anonId: string, secret: string): Promise<string> {
  return signAnonymous('anon', anonId, secret);
}

export function verifyAnonymousIdentity(value: string, secret: string): Promise<string | null> {
  return verifyAnonymous('anon', value, secret);
}

/**
 * A keyed hash of a client's address: rooms count anonymous joins per address without ever
 * storing one (the key is the room secret, so the hash cannot be reversed by trying addresses).
 */
export function addressKey(address: string, secret: string): Promise<string> {
  return keyedHash(`addr|${address}`, secret);
}

/** 16 base64url characters of HMAC-SHA-256: an id that says nothing about what it was made from. */
export async function keyedHash(value: string, secret: string): Promise<string> {
  const sig = new Uint8Array(await crypto.subtle.sign('HMAC', await hmacKey(secret), enc.encode(value)));
  return base64url(sig.slice(0, 12));
}
