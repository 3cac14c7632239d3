// The room protocol's plain values, defined once: version, limits, reaction and role names, close
// and error codes, the resume token. No schema library, so the browser's rooms client imports
// these without pulling zod into its bundle; room-protocol.ts re-exports them beside its schemas.
import type { ServerMessage } from './room-protocol.ts';

/** Bumped on any incompatible change; the client sends it as `?v=` and the Worker refuses others. */
export const ROOM_PROTOCOL_VERSION = 1;

export const ROOM_LIMITS = {
  /** Largest inbound frame, in UTF-16 code units, checked before parsing. */
  maxFrameChars: 4096,
  chatMaxChars: 500,
  nameMaxChars: 32,
  /** Messages sent to a joining viewer (and kept by every mirror of the room's state). */
  historySize: 50,
  pollQuestionMaxChars: 200,
  pollOptionMaxChars: 80,
  pollOptionsMin: 2,
  pollOptionsMax: 10,
  pollDurationMaxSec: 24 * 3600,
  /** Rooms with at most this many viewers also list their names. */
  presenceNamesMax: 100,
  /** Recent polls (open and closed) kept in the room's state. */
  pollsKept: 5,
  slowModeMaxSec: 3600,
  muteMaxSec: 7 * 24 * 3600,
} as const;

/** The fixed reaction set; clients map each name to a glyph. */
export const REACTIONS = ['like', 'love', 'laugh', 'wow', 'sad', 'clap', 'fire', 'party'] as const;
export type Reaction = (typeof REACTIONS)[number];

export const ROLES = ['viewer', 'moderator', 'host'] as const;
export type Role = (typeof ROLES)[number];

/** Close codes a room uses. 44xx are final: a client must not reconnect after them. */
export const CLOSE = {
  badRequest: 4400,
  unauthorized: 4401,
  forbidden: 4403,
  full: 4503,
  /** Too many anonymous joins or new identities from one address: retry later, with backoff. */
  tooMany: 4429,
  /** Policy violation (abuse): 1008 is the standard code. */
  policy: 1008,
  goingAway: 1001,
} as const;

export function isFinalClose(code: number): boolean {
  return code === CLOSE.badRequest || code === CLOSE.unauthorized || code === CLOSE.forbidden;
}

/** Error codes answered in-band as `{ type: 'error', code, reason }`. */
export const ERROR_CODES = [
  'bad_frame', // not JSON, binary, or not an object
  'frame_too_large',
  'invalid_message', // failed the schema
  'unsupported_version',
  'rate_limited',
  'slow_mode',
  'muted',
  'banned',
  'forbidden', // role does not allow it
  'not_found',
  'poll_closed',
  'anonymous_not_allowed',
  'token_invalid',
  'token_expired',
  'room_full',
  'unavailable',
  'voice_full', // the mesh is full and no SFU is configured
  'not_in_voice', // a voice message from (or to) a connection that holds no seat
] as const;
export type ErrorCode = (typeof ERROR_CODES)[number];

/** `resume` query value: `<epoch>.<seq>`. */
export function formatResume(epoch: string, seq: number): string {
  return `${epoch}.${seq}`;
}
export function parseResume(value: string | null | undefined): { epoch: string; seq: number } | null {
  if (!value) return null;
  const m = /^([A-Za-z0-9_-]{1,32})\.(\d{1,15})$/.exec(value);
  return m ? { epoch: m[1]!, seq: Number(m[2]) } : null;
}

/**
 * The browser's check of a frame a room sent: JSON, an object of a known `type`, and the fields
 * the client relies on to order what it applies (epoch, seq, events, state, clock stamps) of the
 * right kind. The room validated everything it relays with the schemas of room-protocol.ts, so
 * this is a guard against a garbled or foreign frame, not a second schema: a frame that fails is
 * dropped (the client resyncs on the next sequence gap).
 */
export function readServerFrame(text: string): ServerMessage | null {
  let m: unknown;
  try {
    m = JSON.parse(text);
  } catch {
    return null;
  }
  if (typeof m !== 'object' || m === null || Array.isArray(m)) return null;
  const f = m as Record<string, unknown>;
  const str = (k: string) => typeof f[k] === 'string';
  const int = (k: string) => Number.isInteger(f[k]);
  const obj = (k: string) => typeof f[k] === 'object' && f[k] !== null;
  const ok = (() => {
    switch (f.type) {
      case 'welcome':
        return (
          str('epoch') &&
          int('seq') &&
          typeof f.resumed === 'boolean' &&
          obj('you') &&
          typeof f.serverTime === 'number' &&
          (f.state === undefined || obj('state'))
        );
      case 'state':
        return str('epoch') && int('seq') && obj('state');
      case 'batch':
        return str('epoch') && int('seq') && (f.from === undefined || int('from')) && Array.isArray(f.events);
      case 'ack':
        return f.rid === undefined || str('rid');
      case 'error':
        return str('code') && str('reason') && (f.rid === undefined || str('rid'));
      case 'pong':
        return typeof f.t0 === 'number' && typeof f.t1 === 'number' && typeof f.t2 === 'number';
      case 'voice.signal':
        return str('from') && str('uid') && obj('signal') && typeof (f.signal as { type?: unknown }).type === 'string';
      case 'voice.sfu':
        return str('endpoint') && str('token') && typeof f.expiresAt === 'number' && (f.rid === undefined || str('rid'));
      default:
        return false;
    }
  })();
  return ok ? (f as unknown as ServerMessage) : null;
}
