// The room WebSocket protocol, defined once: schemas and types for every frame a viewer sends
// and every frame a room sends back. Imported by the Room and RoomShard objects, the Worker
// route, the browser client and the tests, so the sides can never drift.
//
// Everything in it is text. Chat and names are stored and relayed exactly as validated here,
// never as HTML; clients must render them with `textContent`.
import { z } from 'zod';
import { RoleName, Uid } from './room-roles.ts';
import { SIGNAL_FRAME_PREFIX, VOICE_LIMITS, VoiceClientMessages, VoiceEvents, VoiceServerMessages, VoiceState } from './voice-protocol.ts';

// The plain values of the protocol (version, limits, reaction and role names, close and error
// codes, the resume token) live in ./room-wire.ts, which has no schema library: the browser's
// client imports them from there, so its bundle carries no zod. Re-exported here unchanged.
export {
  CLOSE,
  ERROR_CODES,
  REACTIONS,
  ROLES,
  ROOM_LIMITS,
  ROOM_PROTOCOL_VERSION,
  formatResume,
  isFinalClose,
  parseResume,
  type ErrorCode,
  type Reaction,
  type Role,
} from './room-wire.ts';
import { ERROR_CODES, REACTIONS, ROOM_LIMITS, type ErrorCode, type Role } from './room-wire.ts';
export { RoleName, Uid, ConnId } from './room-roles.ts';

// ---------------------------------------------------------------------------------------------
// Text rules. Control characters, bidi overrides and lone surrogates are removed: they are never
// needed in chat, and bidi overrides let one message spoof the look of another.

const STRIP = /[\u0000-\u0008\u000B-\u001F\u007F-\u009F\u202A-\u202E\u2066-\u2069\uFEFF]/g;
/** At least one character that is neither white space nor zero-width. */
const VISIBLE = /[^\s\u200B-\u200D\u2060]/;
const LONE_SURROGATE = /[\uD800-\uDBFF](?![\uDC00-\uDFFF])|(?<![\uD800-\uDBFF])[\uDC00-\uDFFF]/g;

/** Normalizes user text: drops control and bidi-override characters, repairs surrogates, trims. */
export function cleanText(input: string, allowNewlines: boolean): string {
  let s = input.replace(LONE_SURROGATE, '\uFFFD').replace(STRIP, '');
  s = allowNewlines ? s.replace(/\t/g, ' ').replace(/\n{3,}/g, '\n\n') : s.replace(/[\t\n]+/g, ' ');
  return s.trim();
}

/** Length in code points, so an emoji counts as one character. */
export function charCount(s: string): number {
  let n = 0;
  for (const _ of s) n++;
  return n;
}

const text = (max: number, allowNewlines: boolean) =>
  z
    .string()
    .max(max * 2 + 64)
    .transform((s) => cleanText(s, allowNewlines))
    .refine((s) => VISIBLE.test(s), 'must not be empty')
    .refine((s) => charCount(s) <= max, `at most ${max} characters`);

export const DisplayName = text(ROOM_LIMITS.nameMaxChars, false);
export const ChatText = text(ROOM_LIMITS.chatMaxChars, true);
export const RoomId = z.string().regex(/^[A-Za-z0-9_-]{1,64}$/, 'room id: 1-64 of A-Z a-z 0-9 _ -');
export const ReactionName = z.enum(REACTIONS);

const rid = z.string().min(1).max(40).optional();
/** Epoch milliseconds between 2000 and 2200: a program-date-time or a room-clock time. */
const epochMs = z.number().int().min(946_684_800_000).max(7_258_118_400_000);

// ---------------------------------------------------------------------------------------------
// Viewer → room. Every message may carry `rid`; replies (`ack` / `error`) echo it.

export const ChatSend = z.strictObject({
  type: z.literal('chat'),
  rid,
  text: ChatText,
  /** The stream's EXT-X-PROGRAM-DATE-TIME (ms) at the frame the sender was watching. */
  pdt: epochMs.optional(),
});
export const ReactSend = z.strictObject({
  type: z.literal('react'),
  rid,
  reaction: ReactionName,
  /**
   * The program-date-time (ms) of the frame the sender was watching. A host's reaction with one
   * is relayed on its own (`host.reaction`), so each viewer sees it at that moment of the stream;
   * everyone else's are counted together as before.
   */
  pdt: epochMs.optional(),
});
export const PollOpen = z.strictObject({
  type: z.literal('poll.open'),
  rid,
  question: text(ROOM_LIMITS.pollQuestionMaxChars, false),
  options: z.array(text(ROOM_LIMITS.pollOptionMaxChars, false)).min(ROOM_LIMITS.pollOptionsMin).max(ROOM_LIMITS.pollOptionsMax),
  durationSec: z.number().int().min(1).max(ROOM_LIMITS.pollDurationMaxSec).optional(),
  /** The program-date-time (ms) of the frame the opener was watching: viewers see the poll when their video reaches it. */
  pdt: epochMs.optional(),
});
export const PollVote = z.strictObject({
  type: z.literal('poll.vote'),
  rid,
  pollId: z.number().int().positive(),
  option: z
    .number()
    .int()
    .min(0)
    .max(ROOM_LIMITS.pollOptionsMax - 1),
});
export const PollClose = z.strictObject({ type: z.literal('poll.close'), rid, pollId: z.number().int().positive() });
export const ModDelete = z.strictObject({ type: z.literal('mod.delete'), rid, messageId: z.number().int().positive() });
export const ModMute = z.strictObject({
  type: z.literal('mod.mute'),
  rid,
  uid: Uid,
  seconds: z.number().int().min(1).max(ROOM_LIMITS.muteMaxSec),
});
export const ModUnmute = z.strictObject({ type: z.literal('mod.unmute'), rid, uid: Uid });
export const ModBan = z.strictObject({ type: z.literal('mod.ban'), rid, uid: Uid });
export const ModUnban = z.strictObject({ type: z.literal('mod.unban'), rid, uid: Uid });
export const ModSlow = z.strictObject({
  type: z.literal('mod.slow'),
  rid,
  seconds: z.number().int().min(0).max(ROOM_LIMITS.slowModeMaxSec),
});
export const PlaybackSet = z.strictObject({
  type: z.literal('playback.set'),
  rid,
  playing: z.boolean(),
  /** Media position in seconds at room-clock time `at`. */
  position: z.number().min(0).max(1e7),
  rate: z.number().min(0.25).max(4),
  /** The host's `roomNow()` when it acted; the room uses its own clock if absent or implausible. */
  at: epochMs.optional(),
});
export const Ping = z.strictObject({ type: z.literal('ping'), t0: z.number().finite() });
export const Resync = z.strictObject({ type: z.literal('resync'), rid });

export const ClientMessage = z.discriminatedUnion('type', [
  ChatSend,
  ReactSend,
  PollOpen,
  PollVote,
  PollClose,
  ModDelete,
  ModMute,
  ModUnmute,
  ModBan,
  ModUnban,
  ModSlow,
  PlaybackSet,
  Ping,
  Resync,
  ...VoiceClientMessages,
]);
export type ClientMessage = z.infer<typeof ClientMessage>;
/** The input shape (before normalization), for senders. */
export type ClientMessageInput = z.input<typeof ClientMessage>;
export type ClientMessageType = ClientMessage['type'];

/**
 * Messages the room (not the shard) must decide; the rest a shard answers itself. A `react` goes
 * to the room only as a host's reaction with a program-date-time (`isHostReaction`).
 */
export type RoomBoundMessage = Exclude<ClientMessage, { type: 'ping' | 'resync' }>;

/** A host's reaction at a moment of the stream: relayed one by one, not counted with the audience's. */
export function isHostReaction(role: Role, msg: ClientMessage): msg is z.infer<typeof ReactSend> & { pdt: number } {
  return msg.type === 'react' && role === 'host' && msg.pdt !== undefined;
}

// ---------------------------------------------------------------------------------------------
// Room state, as every mirror (Room, RoomShard, client) holds it.

export const Member = z.object({ uid: z.string(), name: z.string(), role: RoleName });
export type Member = z.infer<typeof Member>;

export const ChatMessage = z.object({
  id: z.number().int(),
  uid: z.string(),
  name: z.string(),
  role: RoleName,
  text: z.string(),
  /** Server time (ms) when the room accepted it. */
  ts: z.number(),
  /** Program-date-time (ms) of the stream frame the sender was watching, if any. */
  pdt: z.number().optional(),
});
export type ChatMessage = z.infer<typeof ChatMessage>;

export const Poll = z.object({
  id: z.number().int(),
  question: z.string(),
  options: z.array(z.string()),
  counts: z.array(z.number().int()),
  open: z.boolean(),
  openedBy: z.string(),
  openedAt: z.number(),
  closesAt: z.number().nullable(),
  closedAt: z.number().nullable(),
  /** Program-date-time (ms) of the frame the opener was watching, if any. */
  pdt: z.number().optional(),
});
export type Poll = z.infer<typeof Poll>;

export const PlaybackState = z.object({
  playing: z.boolean(),
  /** Media position (s) at room-clock time `at` (ms). */
  position: z.number(),
  rate: z.number(),
  at: z.number(),
  by: z.string(),
  /** Increments with every change, so a follower can tell a new command from a repeat. */
  version: z.number().int(),
});
export type PlaybackState = z.infer<typeof PlaybackState>;

export const Presence = z.object({
  count: z.number().int(),
  /** Present only while count ≤ ROOM_LIMITS.presenceNamesMax. */
  members: z.array(Member).optional(),
});
export type Presence = z.infer<typeof Presence>;

export const RoomSnapshot = z.object({
  history: z.array(ChatMessage),
  polls: z.array(Poll),
  playback: PlaybackState.nullable(),
  presence: Presence,
  slowModeSec: z.number().int(),
  anonymous: z.boolean(),
  voice: VoiceState,
});
export type RoomSnapshot = z.infer<typeof RoomSnapshot>;

export const ReactionCounts = z.partialRecord(ReactionName, z.number().int().positive());
export type ReactionCounts = z.infer<typeof ReactionCounts>;

/** What happened in the room; a batch carries a list of them. */
export const RoomEvent = z.discriminatedUnion('kind', [
  z.object({ kind: z.literal('chat'), message: ChatMessage }),
  z.object({ kind: z.literal('chat.delete'), id: z.number().int() }),
  z.object({ kind: z.literal('reactions'), counts: ReactionCounts }),
  z.object({ kind: z.literal('poll'), poll: Poll }),
  /** A host's reaction, to be shown when each viewer's video reaches `pdt`. */
  z.object({ kind: z.literal('host.reaction'), reaction: ReactionName, pdt: z.number(), name: z.string() }),
  z.object({ kind: z.literal('presence'), presence: Presence }),
  z.object({ kind: z.literal('playback'), playback: PlaybackState }),
  z.object({ kind: z.literal('slow'), seconds: z.number().int() }),
  z.object({ kind: z.literal('settings'), anonymous: z.boolean() }),
  ...VoiceEvents,
]);
export type RoomEvent = z.infer<typeof RoomEvent>;

// ---------------------------------------------------------------------------------------------
// Room → viewer.

export const You = z.object({ uid: z.string(), name: z.string(), role: RoleName, conn: z.string() });
export type You = z.infer<typeof You>;

export const ServerMessage = z.discriminatedUnion('type', [
  z.object({
    type: z.literal('welcome'),
    v: z.number().int(),
    room: z.string(),
    you: You,
    /** Anonymous viewers get a signed session to present on reconnect, keeping their id. */
    session: z.string().optional(),
    epoch: z.string(),
    seq: z.number().int(),
    /** True when the missed batches follow and `state` is absent. */
    resumed: z.boolean(),
    state: RoomSnapshot.optional(),
    serverTime: z.number(),
  }),
  z.object({ type: z.literal('state'), epoch: z.string(), seq: z.number().int(), state: RoomSnapshot }),
  z.object({
    type: z.literal('batch'),
    epoch: z.string(),
    seq: z.number().int(),
    /**
     * Present when a busy shard merged consecutive batches `from`..`seq` into one frame: each
     * socket then costs one send per delivery instead of one per batch.
     */
    from: z.number().int().optional(),
    /** Server time the (last) batch was cut. */
    t: z.number(),
    events: z.array(RoomEvent),
  }),
  z.object({
    type: z.literal('ack'),
    rid: z.string().optional(),
    /** The chat message id or poll id the request created or touched. */
    id: z.number().int().optional(),
  }),
  z.object({ type: z.literal('error'), rid: z.string().optional(), code: z.enum(ERROR_CODES), reason: z.string() }),
  z.object({ type: z.literal('pong'), t0: z.number(), t1: z.number(), t2: z.number() }),
  ...VoiceServerMessages,
]);
export type ServerMessage = z.infer<typeof ServerMessage>;
export type ServerMessageOf<T extends ServerMessage['type']> = Extract<ServerMessage, { type: T }>;

// ---------------------------------------------------------------------------------------------
// Parsing at the edge of a room object.

export type Parsed = { ok: true; message: ClientMessage } | { ok: false; code: ErrorCode; reason: string; rid?: string };

/** Validates one inbound frame: size first (cheap), then JSON, then the schema. */
export function parseClientFrame(frame: string | ArrayBuffer): Parsed {
  if (typeof frame !== 'string') return { ok: false, code: 'bad_frame', reason: 'binary frames are not accepted' };
  // Session descriptions are longer than any other message: a signalling frame (its type first)
  // may be longer; every other frame is refused by length before anything is parsed.
  if (
    frame.length > ROOM_LIMITS.maxFrameChars &&
    (frame.length > VOICE_LIMITS.signalFrameMaxChars || !frame.startsWith(SIGNAL_FRAME_PREFIX))
  ) {
    return { ok: false, code: 'frame_too_large', reason: `frames are limited to ${ROOM_LIMITS.maxFrameChars} characters` };
  }
  let raw: unknown;
  try {
    raw = JSON.parse(frame);
  } catch {
    return { ok: false, code: 'bad_frame', reason: 'frame is not JSON' };
  }
  if (typeof raw !== 'object' || raw === null || Array.isArray(raw)) {
    return { ok: false, code: 'bad_frame', reason: 'frame is not a JSON object' };
  }
  const r = ClientMessage.safeParse(raw);
  if (!r.success) {
    const issue = r.error.issues[0];
    const where = issue?.path.length ? `${issue.path.join('.')}: ` : '';
    const maybeRid = (raw as { rid?: unknown }).rid;
    return {
      ok: false,
      code: 'invalid_message',
      reason: `${where}${issue?.message ?? 'invalid'}`.slice(0, 200),
      ...(typeof maybeRid === 'string' && maybeRid.length <= 40 ? { rid: maybeRid } : {}),
    };
  }
  return { ok: true, message: r.data };
}

export function errorFrame(code: ErrorCode, reason: string, rid?: string): string {
  return JSON.stringify(rid === undefined ? { type: 'error', code, reason } : { type: 'error', rid, code, reason });
}
