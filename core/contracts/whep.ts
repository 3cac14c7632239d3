// Sub-second playback (WHEP) between the Worker and the media node, defined once for both: the
// node's WHEP path for a stream, and the short-lived ticket with which the Worker, having checked
// the viewer's playback token and country, sends the viewer to the node holding the stream (307).
// The node verifies the ticket with the secret nodes already share with the origin (INGEST_SECRET)
// and never has to reach D1. Web Crypto only, so it runs in the Worker and in Node unchanged.
import { NAME_RE } from './object-keys.ts';

/** The node's WHEP route prefix: `POST {prefix}/{streamId}?ticket=…`, sessions under `{prefix}/sessions/{id}`. */
export const WHEP_PREFIX = '/whep';
/** Query parameter that carries the ticket (a 307 drops `Authorization` when it changes origin). */
export const WHEP_TICKET_PARAM = 'ticket';
/** Seconds a ticket admits its viewer: long enough for the redirect and a slow answer, no longer. */
export const WHEP_TICKET_TTL_SECONDS = 60;
/** Longest ticket a node reads (anything longer is refused unparsed). */
export const MAX_WHEP_TICKET_LENGTH = 512;

export interface WhepTicketClaims {
  /** The stream the viewer may receive. */
  sub: string;
  /** Unix seconds after which the ticket is refused. */
  exp: number;
}

export type WhepTicketVerdict =
  | { ok: true; claims: WhepTicketClaims }
  | { ok: false; code: 'invalid_ticket' | 'ticket_expired' | 'ticket_wrong_stream'; message: string };

const encoder = new TextEncoder();
/** Domain separation: a ticket's MAC can never be mistaken for an ingest request signature. */
const CONTEXT = 'edgelive-whep-ticket/v1\n';
const keys = new Map<string, Promise<CryptoKey>>();

function key(secret: string): Promise<CryptoKey> {
  let k = keys.get(secret);
  if (!k) {
    k = crypto.subtle.importKey('raw', encoder.encode(secret), { name: 'HMAC', hash: 'SHA-256' }, false, ['sign', 'verify']);
    keys.set(secret, k);
  }
  return k;
}

function b64url(bytes: Uint8Array): string {
  let s = '';
  for (const b of bytes) s += String.fromCharCode(b);
  return btoa(s).replace(/\+/g, '-').replace(/\//g, '_').replace(/=+$/, '');
}

function fromB64url(text: string): Uint8Array | null {
  if (!/^[A-Za-z0-9_-]*$/.test(text)) return null;
  try {
    const bin = atob(text.replace(/-/g, '+').replace(/_/g, '/') + '='.repeat((4 - (text.length % 4)) % 4));
    return Uint8Array.from(bin, (c) => c.charCodeAt(0));
  } catch {
    return null;
  }
}

/** `{payload}.{mac}`: base64url of `{"sub","exp"}` and of its HMAC-SHA256 under the shared secret. */
export async function mintWhepTicket(secret: string, claims: WhepTicketClaims): Promise<string> {
  const payload = b64url(encoder.encode(JSON.stringify({ sub: claims.sub, exp: claims.exp })));
  const mac = await crypto.subtle.sign('HMAC', await key(secret), encoder.encode(CONTEXT + payload));
  return `${payload}.${b64url(new Uint8Array(mac))}`;
}

/** Checks a ticket for `streamId` (constant-time MAC comparison by `crypto.subtle.verify`). */
export async function verifyWhepTicket(secret: string, ticket: string, streamId: string, nowMs = Date.now()): Promise<WhepTicketVerdict> {
  const bad = (message: string): WhepTicketVerdict => ({ ok: false, code: 'invalid_ticket', message });
  if (ticket.length > MAX_WHEP_TICKET_LENGTH) return bad('the ticket is too long');
  const [payload, macText, extra] = ticket.split('.');
  if (!payload || !macText || extra !== undefined) return bad('a ticket is {payload}.{mac}');
  const mac = fromB64url(macText);
  if (mac?.length !== 32) return bad('malformed ticket signature');
  const valid = await crypto.subtle.verify('HMAC', await key(secret), mac, encoder.encode(CONTEXT + payload));
  if (!valid) return bad('the ticket signature does not match');
  let claims: unknown;
  try {
    claims = JSON.parse(new TextDecoder().decode(fromB64url(payload) ?? new Uint8Array()));
  } catch {
    return bad('malformed ticket payload');
  }
  const c = claims as Partial<WhepTicketClaims> | null;
  if (!c || typeof c.sub !== 'string' || !NAME_RE.test(c.sub) || typeof c.exp !== 'number' || !Number.isFinite(c.exp))
    return bad('malformed ticket claims');
  if (nowMs / 1000 > c.exp) return { ok: false, code: 'ticket_expired', message: 'the ticket has expired: ask the origin again' };
  if (c.sub !== streamId) return { ok: false, code: 'ticket_wrong_stream', message: 'the ticket is for another stream' };
  return { ok: true, claims: { sub: c.sub, exp: c.exp } };
}

/** The URL a viewer is sent to: the node's WHEP base URL (as registered), the stream, the ticket. */
export function whepNodeUrl(nodeWhepUrl: string, streamId: string, ticket: string): string {
  const u = new URL(`${nodeWhepUrl.replace(/\/$/, '')}/${encodeURIComponent(streamId)}`);
  u.searchParams.set(WHEP_TICKET_PARAM, ticket);
  return u.toString();
}
