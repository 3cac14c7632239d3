// What a decision of the room's rules is: the read-only view the rules read, who sent the
// message, the reply and the effects the Room carries out — and the few helpers every rule set
// (room-decisions.ts for chat, polls, moderation and playback; voice-decisions.ts for voice)
// shares, such as the rank check on sanctions.
import type { ChatMessage, ErrorCode, PlaybackState, Poll, Reaction, Role } from './room-protocol.ts';
import { mayOverride, outranks } from './room-rules.ts';
import type { BucketState } from './room-token-bucket.ts';
import type { VoiceMember, VoiceMode } from './voice-protocol.ts';

export interface SanctionState {
  /** ms; null = until lifted; absent = not muted. */
  muteUntil?: number | null;
  /** The rank of who muted (absent: recorded before ranks were, counts as a host). */
  muteBy?: Role;
  banned?: boolean;
  banBy?: Role;
  /** Muted in voice by a moderator (until lifted). */
  voiceMuted?: boolean;
  voiceBy?: Role;
}

/** Who sent a message, as the Worker established it, and from which connection. */
export interface Sender {
  conn: string;
  uid: string;
  name: string;
  role: Role;
}

/** What the rules read. The Room answers from memory and its store; a test from plain data. */
export interface RoomView {
  /** Seconds between a viewer's chat messages (0: off), as the room last announced it. */
  slowModeSec(): number;
  sanction(uid: string): SanctionState | undefined;
  /** When the member's last chat was accepted and their chat bucket (per uid, not per socket). */
  chatPace(uid: string): { lastAt?: number; bucket?: BucketState };
  openPoll(id: number): Poll | undefined;
  /** True for any poll the room has, open or closed. */
  pollExists(id: number): boolean;
  voteOf(pollId: number, uid: string): number | null;
  /** True for a chat message that exists and is not deleted. */
  messageLive(id: number): boolean;
  playback(): PlaybackState | null;
  /** The rank a member holds in this room, whether or not they are online. */
  rankOf(uid: string): Role;
  /** The voice seat a connection holds, and the one a member holds (from any connection). */
  voiceSeat(conn: string): VoiceMember | undefined;
  voiceSeatOf(uid: string): VoiceMember | undefined;
  voiceCount(): number;
  voiceMode(): VoiceMode;
  /** The mesh's size limit, and whether an SFU is configured to take larger groups. */
  voiceConfig(): { meshMax: number; sfu: boolean };
  /** A connection's buckets for signalling and for voice updates (speaking flips). */
  voicePace(conn: string): { signals?: BucketState; updates?: BucketState };
}

/** Chat mute, ban, and mute in voice. */
export type SanctionKind = 'mute' | 'ban' | 'voice';

/** What the Room must do, in order. Nothing here has happened yet when it is returned. */
export type RoomEffect =
  | { kind: 'chat.pace'; uid: string; lastAt: number; bucket: BucketState }
  | { kind: 'chat.insert'; message: Omit<ChatMessage, 'id'> }
  | { kind: 'chat.delete'; id: number }
  | {
      kind: 'poll.insert';
      poll: { question: string; options: string[]; openedBy: string; openedAt: number; closesAt: number | null; pdt?: number };
    }
  /** A host's reaction at a moment of the stream, relayed on its own (pages show it when their video gets there). */
  | { kind: 'host.reaction'; reaction: Reaction; pdt: number; name: string }
  | { kind: 'poll.vote'; pollId: number; uid: string; option: number; counts: number[] }
  | { kind: 'poll.close'; pollId: number }
  | { kind: 'sanction.set'; uid: string; sanction: SanctionKind; until: number | null; by: Sender }
  | { kind: 'sanction.lift'; uid: string; sanction: SanctionKind }
  | { kind: 'kick'; uid: string; code: ErrorCode; reason: string; close: number }
  | { kind: 'slow.set'; seconds: number }
  | { kind: 'playback.set'; playback: PlaybackState }
  /** Takes or changes a seat in voice (`persist`: what storage keeps changed, not only `speaking`). */
  | { kind: 'voice.seat'; member: VoiceMember; persist: boolean }
  | { kind: 'voice.unseat'; conn: string }
  | { kind: 'voice.mode'; mode: VoiceMode }
  | { kind: 'voice.pace'; conn: string; signals?: BucketState; updates?: BucketState }
  /** Sends a frame to one connection, wherever it is held (the Room, or a shard). */
  | { kind: 'voice.relay'; to: string; frame: string }
  /** Signs an SFU token for the connection and sends it the `voice.sfu` frame. */
  | { kind: 'voice.sfu'; conn: string; rid?: string };

/**
 * The answer to the sender. `id: 'inserted'` stands for the id of the row the decision's insert
 * effect creates (a chat message or a poll), which only the store can tell.
 */
export type RoomReply =
  | { type: 'ack'; rid?: string; id?: number | 'inserted' }
  | { type: 'error'; rid?: string; code: ErrorCode; reason: string };

export interface RoomDecision {
  /** Null: nothing goes back (a relayed signal or a voice update sent without `rid`). */
  reply: RoomReply | null;
  effects: RoomEffect[];
}

export const refuse = (code: ErrorCode, reason: string, rid?: string): RoomDecision => ({
  reply: rid === undefined ? { type: 'error', code, reason } : { type: 'error', rid, code, reason },
  effects: [],
});

export const ack = (rid: string | undefined, effects: RoomEffect[] = [], id?: number | 'inserted'): RoomDecision => ({
  reply: id === undefined ? { type: 'ack', rid } : { type: 'ack', rid, id },
  effects,
});

export function isMuted(s: SanctionState | undefined, now: number): boolean {
  return s?.muteUntil !== undefined && (s.muteUntil === null || s.muteUntil > now);
}

/** The rank that set a sanction of `kind` that is in force, or null when none is. */
function sanctionSetter(s: SanctionState | undefined, kind: SanctionKind, now: number): Role | null {
  if (kind === 'ban') return s?.banned ? (s.banBy ?? 'host') : null;
  if (kind === 'voice') return s?.voiceMuted ? (s.voiceBy ?? 'host') : null;
  return isMuted(s, now) ? (s!.muteBy ?? 'host') : null;
}

/**
 * Whether `actor` may set or lift a sanction of `kind` on `uid`: they must outrank the member's
 * rank (their identity's, online or not), and be at least the rank of whoever set the sanction
 * in force — a moderator cannot shorten or lift a host's ban.
 */
export function checkSanctionChange(
  view: RoomView,
  actor: Sender,
  uid: string,
  kind: SanctionKind,
  now: number,
  rid: string | undefined,
): RoomDecision | null {
  const target = view.rankOf(uid);
  if (!outranks(actor.role, target)) return refuse('forbidden', `a ${actor.role} may not sanction a ${target}`, rid);
  const setBy = sanctionSetter(view.sanction(uid), kind, now);
  if (setBy !== null && !mayOverride(actor.role, setBy)) {
    return refuse('forbidden', `a ${setBy} imposed this ${kind}; a ${actor.role} may not change it`, rid);
  }
  return null;
}

/** The reply as the frame the sender receives (`inserted` resolved to the new row's id). */
export function replyFrame(reply: RoomReply, insertedId?: number): string {
  if (reply.type === 'error') {
    return JSON.stringify(
      reply.rid === undefined
        ? { type: 'error', code: reply.code, reason: reply.reason }
        : { type: 'error', rid: reply.rid, code: reply.code, reason: reply.reason },
    );
  }
  const id = reply.id === 'inserted' ? insertedId : reply.id;
  return JSON.stringify(id === undefined ? { type: 'ack', rid: reply.rid } : { type: 'ack', rid: reply.rid, id });
}
