// The room's shared state and the one reducer that advances it by a batch of events. The Room
// keeps its welcome state with it, every RoomShard keeps a mirror with it, and the browser client
// keeps its view with it: one function, so a late joiner and a long-connected viewer agree.
import type { RoomEvent, RoomSnapshot } from './room-protocol.ts';
import { ROOM_LIMITS } from './room-wire.ts';
import { emptyVoice } from './voice-wire.ts';

export interface BatchBody {
  epoch: string;
  seq: number;
  from?: number;
  t: number;
  events: RoomEvent[];
}

/** Serialises consecutive batches (same epoch, in order) as one frame covering `from`..`seq`. */
export function mergeBatches(batches: readonly BatchBody[]): string {
  const first = batches[0]!;
  const last = batches[batches.length - 1]!;
  const events: RoomEvent[] = [];
  for (const b of batches) for (const e of b.events) events.push(e);
  return JSON.stringify({ type: 'batch', epoch: last.epoch, seq: last.seq, from: first.from ?? first.seq, t: last.t, events });
}

export function emptySnapshot(anonymous = true): RoomSnapshot {
  return { history: [], polls: [], playback: null, presence: { count: 0 }, slowModeSec: 0, anonymous, voice: emptyVoice() };
}

/**
 * Applies events in order and returns the new state (the input is not modified). Idempotent per
 * chat id, so a message that is both in a snapshot and in the next batch appears once.
 */
export function applyEvents(state: RoomSnapshot, events: readonly RoomEvent[]): RoomSnapshot {
  let next: RoomSnapshot = state;
  for (const ev of events) next = applyEvent(next, ev);
  return next;
}

export function applyEvent(s: RoomSnapshot, ev: RoomEvent): RoomSnapshot {
  switch (ev.kind) {
    case 'chat': {
      if (s.history.some((m) => m.id === ev.message.id)) return s;
      const history = [...s.history, ev.message];
      if (history.length > ROOM_LIMITS.historySize) history.splice(0, history.length - ROOM_LIMITS.historySize);
      return { ...s, history };
    }
    case 'chat.delete':
      return { ...s, history: s.history.filter((m) => m.id !== ev.id) };
    case 'reactions':
    case 'host.reaction':
      return s; // transient: shown and forgotten
    case 'poll': {
      const polls = s.polls.filter((p) => p.id !== ev.poll.id);
      polls.push(ev.poll);
      polls.sort((a, b) => a.id - b.id);
      // Keep every open poll and the most recent closed ones.
      while (polls.length > ROOM_LIMITS.pollsKept) {
        const i = polls.findIndex((p) => !p.open);
        if (i < 0) break;
        polls.splice(i, 1);
      }
      return { ...s, polls };
    }
    case 'presence':
      return { ...s, presence: ev.presence };
    case 'playback':
      return { ...s, playback: ev.playback };
    case 'slow':
      return { ...s, slowModeSec: ev.seconds };
    case 'settings':
      return { ...s, anonymous: ev.anonymous };
    case 'voice': {
      const members = (s.voice?.members ?? []).slice();
      const i = members.findIndex((m) => m.conn === ev.member.conn);
      if (i >= 0) members[i] = ev.member;
      else members.push(ev.member);
      return { ...s, voice: { mode: s.voice?.mode ?? 'mesh', members } };
    }
    case 'voice.left':
      return { ...s, voice: { mode: s.voice?.mode ?? 'mesh', members: (s.voice?.members ?? []).filter((m) => m.conn !== ev.conn) } };
    case 'voice.mode':
      return { ...s, voice: { mode: ev.mode, members: s.voice?.members ?? [] } };
  }
}
