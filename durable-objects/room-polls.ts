// The Room's polls in memory: the open ones, which the rules read on every vote, and those changed
// since the last batch, over the store that keeps every poll and vote. Due polls are closed by
// the Room's alarm (one alarm per object, set to the earliest open deadline).
import { ROOM_LIMITS, type Poll, type RoomEvent } from '../core/rooms/room-protocol.ts';
import type { RoomEffect } from '../core/rooms/room-decisions.ts';
import type { RoomStore } from './room-store.ts';

type PollInsert = Extract<RoomEffect, { kind: 'poll.insert' }>;
type PollVote = Extract<RoomEffect, { kind: 'poll.vote' }>;

export class RoomPolls {
  private readonly store: RoomStore;
  private readonly open = new Map<number, Poll>();
  private readonly changed = new Set<number>();

  constructor(store: RoomStore) {
    this.store = store;
  }

  /** The recent polls, for the state a joining viewer is given; keeps the open ones in memory. */
  load(): Poll[] {
    const polls = this.store.recentPolls(ROOM_LIMITS.pollsKept);
    for (const p of polls) if (p.open) this.open.set(p.id, p);
    return polls;
  }

  openPoll(id: number): Poll | undefined {
    return this.open.get(id);
  }

  insert(e: PollInsert): Poll {
    const poll = this.store.insertPoll(e.poll);
    this.open.set(poll.id, poll);
    this.changed.add(poll.id);
    return poll;
  }

  vote(e: PollVote): void {
    this.store.vote(e.pollId, e.uid, e.option);
    const poll = this.open.get(e.pollId);
    if (poll) this.open.set(e.pollId, { ...poll, counts: e.counts });
    this.changed.add(e.pollId);
  }

  /** Closes a poll; false when it was closed already (alarms are delivered at least once). */
  close(id: number, now: number): boolean {
    if (!this.store.closePoll(id, now)) return false;
    this.open.delete(id);
    this.changed.add(id);
    return true;
  }

  /** One event per poll changed since the last call, for the next batch. */
  drain(): RoomEvent[] {
    const events: RoomEvent[] = [];
    for (const id of this.changed) {
      const poll = this.open.get(id) ?? this.store.getPoll(id);
      if (poll) events.push({ kind: 'poll', poll });
    }
    this.changed.clear();
    return events;
  }
}
