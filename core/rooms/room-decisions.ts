// The room's rules for every message a member sends, as one pure function: given what the room
// knows (a read-only view), who sent what and when, it answers the reply and the effects (storage
// writes, broadcasts, kicks) the Room then carries out. Mute, slow mode, rate and rank decisions
// live here and nowhere else, and are tested in Node without an object or a socket.
import type { ChatMessage, ErrorCode, PlaybackState, Poll, Role, RoomBoundMessage } from './room-protocol.ts';
import { CLOSE } from './room-protocol.ts';
import { isStaff, mayDo, mayOverride, outranks, sanctionBinds } from './room-rules.ts';
import { ROOM_RATE_LIMITS, fullBucket, msUntil, takeToken, type BucketState } from './room-token-bucket.ts';

/** A host's `at` further than this from the room's clock is ignored. */
export const PLAYBACK_SKEW_MS = 5_000;

export interface SanctionState {
  /** ms; null = until lifted; absent = not muted. */
  muteUntil?: number | null;
  /** The rank of who muted (absent: recorded before ranks were, counts as a host). */
  muteBy?: Role;
  banned?: boolean;
  banBy?: Role;
}

/** Who sent a message, as the Worker established it. */
export interface Sender {
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
}

export type SanctionKind = 'mute' | 'ban';

/** What the Room must do, in order. Nothing here has happened yet when it is returned. */
export type RoomEffect =
  | { kind: 'chat.pace'; uid: string; lastAt: number; bucket: BucketState }
  | { kind: 'chat.insert'; message: Omit<ChatMessage, 'id'> }
  | { kind: 'chat.delete'; id: number }
  | { kind: 'poll.insert'; poll: { question: string; options: string[]; openedBy: string; openedAt: number; closesAt: number | null } }
  | { kind: 'poll.vote'; pollId: number; uid: string; option: number; counts: number[] }
  | { kind: 'poll.close'; pollId: number }
  | { kind: 'sanction.set'; uid: string; sanction: SanctionKind; until: number | null; by: Sender }
  | { kind: 'sanction.lift'; uid: string; sanction: SanctionKind }
  | { kind: 'kick'; uid: string; code: ErrorCode; reason: string; close: number }
  | { kind: 'slow.set'; seconds: number }
  | { kind: 'playback.set'; playback: PlaybackState };

/**
 * The answer to the sender. `id: 'inserted'` stands for the id of the row the decision's insert
 * effect creates (a chat message or a poll), which only the store can tell.
 */
export type RoomReply =
  | { type: 'ack'; rid?: string; id?: number | 'inserted' }
  | { type: 'error'; rid?: string; code: ErrorCode; reason: string };

export interface RoomDecision {
  reply: RoomReply;
  effects: RoomEffect[];
}

const refuse = (code: ErrorCode, reason: string, rid?: string): RoomDecision => ({
  reply: rid === undefined ? { type: 'error', code, reason } : { type: 'error', rid, code, reason },
  effects: [],
});

const ack = (rid: string | undefined, effects: RoomEffect[] = [], id?: number | 'inserted'): RoomDecision => ({
  reply: id === undefined ? { type: 'ack', rid } : { type: 'ack', rid, id },
  effects,
});

function isMuted(s: SanctionState | undefined, now: number): boolean {
  return s?.muteUntil !== undefined && (s.muteUntil === null || s.muteUntil > now);
}

/** The rank that set a sanction of `kind` that is in force, or null when none is. */
function sanctionSetter(s: SanctionState | undefined, kind: SanctionKind, now: number): Role | null {
  if (kind === 'ban') return s?.banned ? (s.banBy ?? 'host') : null;
  return isMuted(s, now) ? (s!.muteBy ?? 'host') : null;
}

/**
 * Whether `actor` may set or lift a sanction of `kind` on `uid`: they must outrank the member's
 * rank (their identity's, online or not), and be at least the rank of whoever set the sanction
 * in force — a moderator cannot shorten or lift a host's ban.
 */
function checkSanctionChange(view: RoomView, actor: Sender, uid: string, kind: SanctionKind, now: number, rid: string | undefined): RoomDecision | null {
  const target = view.rankOf(uid);
  if (!outranks(actor.role, target)) return refuse('forbidden', `a ${actor.role} may not sanction a ${target}`, rid);
  const setBy = sanctionSetter(view.sanction(uid), kind, now);
  if (setBy !== null && !mayOverride(actor.role, setBy)) {
    return refuse('forbidden', `a ${setBy} imposed this ${kind}; a ${actor.role} may not change it`, rid);
  }
  return null;
}

/** Decides one room-bound message. Pure: reads `view`, changes nothing. */
export function decideRoomMessage(view: RoomView, from: Sender, msg: RoomBoundMessage, now: number): RoomDecision {
  const rid = msg.rid;
  if (!mayDo(from.role, msg.type)) return refuse('forbidden', `${from.role} may not ${msg.type}`, rid);
  const sanction = view.sanction(from.uid);
  // A sanction holds only when who set it outranks the sender (ranks from identity, not presence).
  if (sanction?.banned && sanctionBinds(sanction.banBy, from.role)) return refuse('banned', 'you are banned from this room', rid);

  switch (msg.type) {
    case 'chat': {
      if (isMuted(sanction, now) && sanctionBinds(sanction!.muteBy, from.role)) {
        const until = sanction!.muteUntil === null ? 'further notice' : new Date(sanction!.muteUntil!).toISOString();
        return refuse('muted', `you are muted until ${until}`, rid);
      }
      const effects: RoomEffect[] = [];
      if (!isStaff(from.role)) {
        const slow = view.slowModeSec();
        const pace = view.chatPace(from.uid);
        const last = pace.lastAt;
        if (slow > 0 && last !== undefined && now - last < slow * 1000) {
          return refuse('slow_mode', `slow mode: wait ${Math.ceil((slow * 1000 - (now - last)) / 1000)} s`, rid);
        }
        const bucket = pace.bucket ? { ...pace.bucket } : fullBucket(ROOM_RATE_LIMITS.viewerChat, now);
        if (!takeToken(ROOM_RATE_LIMITS.viewerChat, bucket, now)) {
          const wait = msUntil(ROOM_RATE_LIMITS.viewerChat, bucket, now);
          return refuse('rate_limited', `too many chat messages; wait ${wait} ms`, rid);
        }
        effects.push({ kind: 'chat.pace', uid: from.uid, lastAt: now, bucket });
      }
      effects.push({
        kind: 'chat.insert',
        message: { uid: from.uid, name: from.name, role: from.role, text: msg.text, ts: now, ...(msg.pdt !== undefined ? { pdt: msg.pdt } : {}) },
      });
      return ack(rid, effects, 'inserted');
    }
    case 'poll.open': {
      const closesAt = msg.durationSec ? now + msg.durationSec * 1000 : null;
      return ack(rid, [{ kind: 'poll.insert', poll: { question: msg.question, options: msg.options, openedBy: from.name, openedAt: now, closesAt } }], 'inserted');
    }
    case 'poll.vote': {
      const poll = view.openPoll(msg.pollId);
      if (!poll) return view.pollExists(msg.pollId) ? refuse('poll_closed', 'this poll is closed', rid) : refuse('not_found', 'no such poll', rid);
      if (msg.option >= poll.options.length) return refuse('invalid_message', 'option: no such option', rid);
      const prev = view.voteOf(poll.id, from.uid);
      if (prev === msg.option) return ack(rid, [], poll.id);
      const counts = [...poll.counts];
      if (prev !== null) counts[prev] = Math.max(0, (counts[prev] ?? 0) - 1);
      counts[msg.option] = (counts[msg.option] ?? 0) + 1;
      return ack(rid, [{ kind: 'poll.vote', pollId: poll.id, uid: from.uid, option: msg.option, counts }], poll.id);
    }
    case 'poll.close': {
      if (!view.openPoll(msg.pollId)) {
        return view.pollExists(msg.pollId) ? refuse('poll_closed', 'this poll is already closed', rid) : refuse('not_found', 'no such poll', rid);
      }
      return ack(rid, [{ kind: 'poll.close', pollId: msg.pollId }], msg.pollId);
    }
    case 'mod.delete': {
      if (!view.messageLive(msg.messageId)) return refuse('not_found', 'no such message', rid);
      return ack(rid, [{ kind: 'chat.delete', id: msg.messageId }], msg.messageId);
    }
    case 'mod.mute':
    case 'mod.ban': {
      const denied = checkSanctionChange(view, from, msg.uid, msg.type === 'mod.mute' ? 'mute' : 'ban', now, rid);
      if (denied) return denied;
      if (msg.type === 'mod.mute') {
        return ack(rid, [{ kind: 'sanction.set', uid: msg.uid, sanction: 'mute', until: now + msg.seconds * 1000, by: from }]);
      }
      return ack(rid, [
        { kind: 'sanction.set', uid: msg.uid, sanction: 'ban', until: null, by: from },
        { kind: 'kick', uid: msg.uid, code: 'banned', reason: 'you were banned from this room', close: CLOSE.forbidden },
      ]);
    }
    case 'mod.unmute':
    case 'mod.unban': {
      const kind = msg.type === 'mod.unmute' ? 'mute' : 'ban';
      const denied = checkSanctionChange(view, from, msg.uid, kind, now, rid);
      if (denied) return denied;
      return ack(rid, [{ kind: 'sanction.lift', uid: msg.uid, sanction: kind }]);
    }
    case 'mod.slow':
      return ack(rid, [{ kind: 'slow.set', seconds: msg.seconds }]);
    case 'playback.set': {
      const at = msg.at !== undefined && Math.abs(msg.at - now) <= PLAYBACK_SKEW_MS ? msg.at : now;
      const prev = view.playback();
      const playback: PlaybackState = { playing: msg.playing, position: msg.position, rate: msg.rate, at, by: from.name, version: (prev?.version ?? 0) + 1 };
      return ack(rid, [{ kind: 'playback.set', playback }], playback.version);
    }
  }
}

/** The reply as the frame the sender receives (`inserted` resolved to the new row's id). */
export function replyFrame(reply: RoomReply, insertedId?: number): string {
  if (reply.type === 'error') {
    return JSON.stringify(reply.rid === undefined ? { type: 'error', code: reply.code, reason: reply.reason } : { type: 'error', rid: reply.rid, code: reply.code, reason: reply.reason });
  }
  const id = reply.id === 'inserted' ? insertedId : reply.id;
  return JSON.stringify(id === undefined ? { type: 'ack', rid: reply.rid } : { type: 'ack', rid: reply.rid, id });
}
