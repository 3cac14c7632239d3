// The rules of a party's voice, pure like the rest of the room's rules: who takes a seat, when
// the group moves between the peer-to-peer mesh and the SFU, which signalling is relayed (only
// between two seats of the mesh, at a bounded rate), and what moderators may do in voice.
import type { ClientMessage, Role } from './room-protocol.ts';
import { outranks, sanctionBinds } from './room-rules.ts';
import { ROOM_RATE_LIMITS, fullBucket, msUntil, takeToken, type BucketSpec, type BucketState } from './room-token-bucket.ts';
import { VOICE_LIMITS, voiceSignalFrame, type VoiceMember, type VoiceMode } from './voice-protocol.ts';
import {
  ack,
  checkSanctionChange,
  refuse,
  type RoomDecision,
  type RoomEffect,
  type RoomView,
  type SanctionState,
  type Sender,
} from './room-effects.ts';

export type VoiceMessage = Extract<ClientMessage, { type: `voice.${string}` }>;

export function isVoiceMessage(m: { type: string }): m is VoiceMessage {
  return m.type.startsWith('voice.');
}

/**
 * The mode a group of `count` should be in. Without an SFU it is always the mesh (and joins past
 * `meshMax` are refused). With one, a group moves to the SFU when it passes `meshMax` and back to
 * the mesh only when it is `meshHysteresis` below it, so one member leaving and coming back does
 * not tear every connection down twice.
 */
export function nextVoiceMode(count: number, current: VoiceMode, cfg: { meshMax: number; sfu: boolean }): VoiceMode {
  if (!cfg.sfu) return 'mesh';
  if (current === 'mesh') return count > cfg.meshMax ? 'sfu' : 'mesh';
  return count <= cfg.meshMax - VOICE_LIMITS.meshHysteresis ? 'mesh' : 'sfu';
}

/** Whether a member is muted in voice by a moderator whose rank holds them. */
export function voiceForced(s: SanctionState | undefined, role: Role): boolean {
  return s?.voiceMuted === true && sanctionBinds(s.voiceBy, role);
}

/** Effects of a seat being given up (leave, removal, a closed connection). */
export function leaveVoice(view: RoomView, conn: string): RoomEffect[] {
  if (!view.voiceSeat(conn)) return [];
  const effects: RoomEffect[] = [{ kind: 'voice.unseat', conn }];
  const mode = nextVoiceMode(view.voiceCount() - 1, view.voiceMode(), view.voiceConfig());
  if (mode !== view.voiceMode()) effects.push({ kind: 'voice.mode', mode });
  return effects;
}

/** Takes a token from a copy of the bucket; the copy when it had one, else null. */
function spend(
  spec: BucketSpec,
  bucket: BucketState | undefined,
  now: number,
): { ok: true; bucket: BucketState } | { ok: false; waitMs: number } {
  const b = bucket ? { ...bucket } : fullBucket(spec, now);
  return takeToken(spec, b, now) ? { ok: true, bucket: b } : { ok: false, waitMs: msUntil(spec, b, now) };
}

/** Acks when the sender asked for an answer (`rid`); signals and speaking flips usually do not. */
const quiet = (rid: string | undefined, effects: RoomEffect[]): RoomDecision =>
  rid === undefined ? { reply: null, effects } : ack(rid, effects);

/** Decides one voice message. Pure: reads `view`, changes nothing. Role and ban are checked by the caller. */
export function decideVoiceMessage(view: RoomView, from: Sender, msg: VoiceMessage, now: number): RoomDecision {
  const rid = msg.rid;
  switch (msg.type) {
    case 'voice.join': {
      const cfg = view.voiceConfig();
      const forced = voiceForced(view.sanction(from.uid), from.role);
      const mine = view.voiceSeat(from.conn);
      if (mine) {
        const member: VoiceMember = { ...mine, muted: msg.muted || forced, forced, camera: msg.camera, speaking: false };
        return ack(rid, [{ kind: 'voice.seat', member, persist: true }]);
      }
      // One seat per member: a second tab takes the seat over from the first.
      const elsewhere = view.voiceSeatOf(from.uid);
      const count = view.voiceCount() - (elsewhere ? 1 : 0) + 1;
      if (count > VOICE_LIMITS.maxMembers || (count > cfg.meshMax && !cfg.sfu)) {
        const limit = cfg.sfu ? VOICE_LIMITS.maxMembers : cfg.meshMax;
        return refuse('voice_full', `voice is full (${limit} members)`, rid);
      }
      const effects: RoomEffect[] = [];
      if (elsewhere) effects.push({ kind: 'voice.unseat', conn: elsewhere.conn });
      const member: VoiceMember = {
        conn: from.conn,
        uid: from.uid,
        name: from.name,
        role: from.role,
        muted: msg.muted || forced,
        forced,
        speaking: false,
        camera: msg.camera,
      };
      effects.push({ kind: 'voice.seat', member, persist: true });
      const mode = nextVoiceMode(count, view.voiceMode(), cfg);
      if (mode !== view.voiceMode()) effects.push({ kind: 'voice.mode', mode });
      return ack(rid, effects);
    }
    case 'voice.leave':
      return ack(rid, leaveVoice(view, from.conn));
    case 'voice.update': {
      const seat = view.voiceSeat(from.conn);
      if (!seat) return refuse('not_in_voice', 'join voice first', rid);
      if (msg.muted === false && seat.forced) return refuse('muted', 'a moderator muted you in voice', rid);
      const paced = spend(ROOM_RATE_LIMITS.voiceUpdates, view.voicePace(from.conn).updates, now);
      if (!paced.ok) return refuse('rate_limited', `too many voice updates; wait ${paced.waitMs} ms`, rid);
      const muted = msg.muted ?? seat.muted;
      const member: VoiceMember = {
        ...seat,
        muted,
        speaking: muted ? false : (msg.speaking ?? seat.speaking),
        camera: msg.camera ?? seat.camera,
      };
      const persist = member.muted !== seat.muted || member.camera !== seat.camera;
      return quiet(rid, [
        { kind: 'voice.pace', conn: from.conn, updates: paced.bucket },
        { kind: 'voice.seat', member, persist },
      ]);
    }
    case 'voice.signal': {
      // Only between two seats of the mesh: a connection without a seat reaches nobody, and
      // nobody reaches a connection that holds no seat.
      if (!view.voiceSeat(from.conn)) return refuse('not_in_voice', 'join voice first', rid);
      if (view.voiceMode() !== 'mesh') return refuse('forbidden', 'voice goes through the media server now: ask for voice.sfu', rid);
      if (msg.to === from.conn) return refuse('invalid_message', 'to: that is you', rid);
      const target = view.voiceSeat(msg.to);
      if (!target) return refuse('not_in_voice', 'no such member in voice', rid);
      const paced = spend(ROOM_RATE_LIMITS.voiceSignals, view.voicePace(from.conn).signals, now);
      if (!paced.ok) return refuse('rate_limited', `too many signalling messages; wait ${paced.waitMs} ms`, rid);
      return quiet(rid, [
        { kind: 'voice.pace', conn: from.conn, signals: paced.bucket },
        { kind: 'voice.relay', to: target.conn, frame: voiceSignalFrame(from.conn, from.uid, msg.signal) },
      ]);
    }
    case 'voice.mute': {
      const denied = checkSanctionChange(view, from, msg.uid, 'voice', now, rid);
      if (denied) return denied;
      const effects: RoomEffect[] = [{ kind: 'sanction.set', uid: msg.uid, sanction: 'voice', until: null, by: from }];
      const seat = view.voiceSeatOf(msg.uid);
      if (seat) effects.push({ kind: 'voice.seat', member: { ...seat, muted: true, forced: true, speaking: false }, persist: true });
      return ack(rid, effects);
    }
    case 'voice.unmute': {
      const denied = checkSanctionChange(view, from, msg.uid, 'voice', now, rid);
      if (denied) return denied;
      const effects: RoomEffect[] = [{ kind: 'sanction.lift', uid: msg.uid, sanction: 'voice' }];
      // Lifted, not unmuted: the member chooses when to speak again.
      const seat = view.voiceSeatOf(msg.uid);
      if (seat?.forced) effects.push({ kind: 'voice.seat', member: { ...seat, forced: false }, persist: true });
      return ack(rid, effects);
    }
    case 'voice.remove': {
      const target = view.rankOf(msg.uid);
      if (!outranks(from.role, target)) return refuse('forbidden', `a ${from.role} may not remove a ${target} from voice`, rid);
      const seat = view.voiceSeatOf(msg.uid);
      if (!seat) return refuse('not_in_voice', 'that member is not in voice', rid);
      return ack(rid, leaveVoice(view, seat.conn));
    }
    case 'voice.sfu': {
      if (!view.voiceSeat(from.conn)) return refuse('not_in_voice', 'join voice first', rid);
      if (view.voiceMode() !== 'sfu') return refuse('forbidden', 'voice is peer to peer: signal the other members', rid);
      // The answer is the `voice.sfu` frame itself (the token needs an asynchronous signature).
      return { reply: null, effects: [{ kind: 'voice.sfu', conn: from.conn, ...(rid !== undefined ? { rid } : {}) }] };
    }
  }
}
