// The room's rules for every message a member sends, as one pure function: given what the room
// knows (a read-only view), who sent what and when, it answers the reply and the effects (storage
// writes, broadcasts, kicks) the Room then carries out. Mute, slow mode, rate and rank decisions
// live here and nowhere else (voice's in voice-decisions.ts, which this hands voice messages to),
// and are tested in Node without an object or a socket.
import type { PlaybackState, RoomBoundMessage } from './room-protocol.ts';
import { CLOSE } from './room-protocol.ts';
import { isStaff, mayDo, sanctionBinds } from './room-rules.ts';
import { ROOM_RATE_LIMITS, fullBucket, msUntil, takeToken } from './room-token-bucket.ts';
import {
  ack,
  checkSanctionChange,
  isMuted,
  refuse,
  type RoomDecision,
  type RoomEffect,
  type RoomView,
  type Sender,
} from './room-effects.ts';
import { decideVoiceMessage, isVoiceMessage } from './voice-decisions.ts';

export {
  replyFrame,
  type RoomDecision,
  type RoomEffect,
  type RoomReply,
  type RoomView,
  type SanctionKind,
  type SanctionState,
  type Sender,
} from './room-effects.ts';

/** A host's `at` further than this from the room's clock is ignored. */
export const PLAYBACK_SKEW_MS = 5_000;

/** Decides one room-bound message. Pure: reads `view`, changes nothing. */
export function decideRoomMessage(view: RoomView, from: Sender, msg: RoomBoundMessage, now: number): RoomDecision {
  const rid = msg.rid;
  if (!mayDo(from.role, msg.type)) return refuse('forbidden', `${from.role} may not ${msg.type}`, rid);
  const sanction = view.sanction(from.uid);
  // A sanction holds only when who set it outranks the sender (ranks from identity, not presence).
  if (sanction?.banned && sanctionBinds(sanction.banBy, from.role)) return refuse('banned', 'you are banned from this room', rid);

  if (isVoiceMessage(msg)) return decideVoiceMessage(view, from, msg, now);

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
        message: {
          uid: from.uid,
          name: from.name,
          role: from.role,
          text: msg.text,
          ts: now,
          ...(msg.pdt !== undefined ? { pdt: msg.pdt } : {}),
        },
      });
      return ack(rid, effects, 'inserted');
    }
    case 'poll.open': {
      const closesAt = msg.durationSec ? now + msg.durationSec * 1000 : null;
      const poll = {
        question: msg.question,
        options: msg.options,
        openedBy: from.name,
        openedAt: now,
        closesAt,
        ...(msg.pdt !== undefined ? { pdt: msg.pdt } : {}),
      };
      return ack(rid, [{ kind: 'poll.insert', poll }], 'inserted');
    }
    case 'poll.vote': {
      const poll = view.openPoll(msg.pollId);
      if (!poll)
        return view.pollExists(msg.pollId) ? refuse('poll_closed', 'this poll is closed', rid) : refuse('not_found', 'no such poll', rid);
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
        return view.pollExists(msg.pollId)
          ? refuse('poll_closed', 'this poll is already closed', rid)
          : refuse('not_found', 'no such poll', rid);
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
    case 'react':
      // The audience's reactions are counted where they arrive (Room or shard) and never get here;
      // a host's reaction at a moment of the stream is relayed on its own with that moment.
      if (msg.pdt === undefined || from.role !== 'host')
        return refuse('forbidden', 'only a host reaction at a moment of the stream is relayed', rid);
      return ack(rid, [{ kind: 'host.reaction', reaction: msg.reaction, pdt: msg.pdt, name: from.name }]);
    case 'playback.set': {
      const at = msg.at !== undefined && Math.abs(msg.at - now) <= PLAYBACK_SKEW_MS ? msg.at : now;
      const prev = view.playback();
      const playback: PlaybackState = {
        playing: msg.playing,
        position: msg.position,
        rate: msg.rate,
        at,
        by: from.name,
        version: (prev?.version ?? 0) + 1,
      };
      return ack(rid, [{ kind: 'playback.set', playback }], playback.version);
    }
  }
}
