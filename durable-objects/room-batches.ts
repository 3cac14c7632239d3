// What a room says, as one numbered sequence of batch frames: everything that happened since the
// last batch (events, reaction counts summed, a changed presence) is cut every FLUSH_MS into one
// frame, serialised once, folded into the room's snapshot, kept in the resume ring, sent to the
// Room's own sockets and queued for every shard.
import {
  REACTIONS,
  ROOM_LIMITS,
  type Reaction,
  type ReactionCounts,
  type RoomEvent,
  type RoomSnapshot,
} from '../core/rooms/room-protocol.ts';
import { applyEvents } from '../core/rooms/room-state.ts';
import type { FrameRing, SocketHub } from './room-sockets.ts';
import type { RoomStore } from './room-store.ts';
import type { Roster } from './room-roster.ts';
import type { ShardLinks } from './room-shard-links.ts';

/** Batches are cut this often (the platform's advice: batch small messages every 50–100 ms). */
export const FLUSH_MS = 50;
/** Reaction counts go out at most this often. */
export const REACTIONS_MS = 100;
/** A big room's viewer count goes out at most this often. */
export const PRESENCE_MS = 1000;

/** Where a batch comes from and where it goes. */
export interface BatchWiring {
  store: RoomStore;
  hub: SocketHub;
  ring: FrameRing;
  links: ShardLinks;
  roster: Roster;
  /** Events known only when a batch is cut (the polls changed since the last one). */
  late(): RoomEvent[];
}

export class RoomBatches {
  private readonly io: BatchWiring;
  /** Names this sequence: a viewer resumes from its ring only within the epoch it was told. */
  readonly epoch: string;
  private seq: number;
  /** The room as of `seq`: what a joining viewer is given. */
  private view: RoomSnapshot;

  private pending: RoomEvent[] = [];
  private presenceDirty = false;
  private reactions: Record<string, number> = {};
  private reactionsPending = false;
  private lastReactionsAt = 0;
  private lastPresenceAt = 0;
  private flushTimer: ReturnType<typeof setTimeout> | null = null;

  /** Continues the stored sequence (or starts one) from the room's state as storage has it. */
  constructor(io: BatchWiring, state: RoomSnapshot) {
    this.io = io;
    let epoch = io.store.getMeta<string>('epoch');
    if (!epoch) {
      epoch = crypto.randomUUID().replace(/-/g, '').slice(0, 12);
      io.store.setMeta('epoch', epoch);
    }
    this.epoch = epoch;
    io.ring.clear(epoch);
    this.seq = io.store.getMeta<number>('seq') ?? 0;
    this.view = state;
  }

  /** The room as of the latest batch, with its place in the sequence. */
  get current(): { epoch: string; seq: number; state: RoomSnapshot } {
    return { epoch: this.epoch, seq: this.seq, state: this.view };
  }

  get state(): RoomSnapshot {
    return this.view;
  }

  /** Puts an event in the next batch. */
  add(event: RoomEvent): void {
    this.pending.push(event);
    this.flushSoon();
  }

  /** Someone joined or left: the next batch reports presence (throttled in a big room). */
  presenceChanged(): void {
    this.presenceDirty = true;
  }

  addReactions(counts: ReactionCounts): void {
    let any = false;
    for (const r of REACTIONS) {
      const n = counts[r as Reaction];
      if (typeof n === 'number' && n > 0 && Number.isFinite(n)) {
        this.reactions[r] = (this.reactions[r] ?? 0) + Math.floor(n);
        any = true;
      }
    }
    if (any) {
      this.reactionsPending = true;
      this.flushSoon();
    }
  }

  /**
   * A timer runs only while something is waiting to go out, so an idle room has no timer and
   * can hibernate (a pending setTimeout keeps an object in memory).
   */
  flushSoon(): void {
    if (this.flushTimer !== null) return;
    const at = Date.now();
    this.flushTimer = setTimeout(() => {
      // How late the timer fired says how busy the object's thread is (stats()).
      this.io.hub.meter.add('flush timer late', Math.max(0, Date.now() - at - FLUSH_MS), 1);
      this.flush();
    }, FLUSH_MS);
  }

  flushNow(): void {
    if (this.flushTimer !== null) clearTimeout(this.flushTimer);
    this.flush();
  }

  /** Cuts one batch: serialised once, sent to every local socket and queued for every shard. */
  private flush(): void {
    this.io.hub.meter.time('flush', () => this.cut());
  }

  private cut(): void {
    this.flushTimer = null;
    const now = Date.now();
    const events = this.pending;
    this.pending = [];
    events.push(...this.io.late());
    // A small room lists names and updates them with every batch. A big room only reports a
    // count, at most once a second: otherwise a join storm of N viewers costs O(N²) sends.
    const roster = this.io.roster;
    if (this.presenceDirty && (roster.memberCount <= ROOM_LIMITS.presenceNamesMax || now - this.lastPresenceAt >= PRESENCE_MS)) {
      events.push({ kind: 'presence', presence: roster.presence() });
      this.presenceDirty = false;
      this.lastPresenceAt = now;
    }
    if (this.reactionsPending && now - this.lastReactionsAt >= REACTIONS_MS) {
      events.push({ kind: 'reactions', counts: this.reactions as ReactionCounts });
      this.reactions = {};
      this.reactionsPending = false;
      this.lastReactionsAt = now;
    }
    if (events.length > 0) {
      this.seq++;
      this.io.store.setMeta('seq', this.seq);
      const body = { epoch: this.epoch, seq: this.seq, t: now, events };
      const text = JSON.stringify({ type: 'batch', ...body });
      this.view = applyEvents(this.view, events);
      this.io.ring.push(this.epoch, this.seq, text);
      this.io.hub.publish(body, text);
      this.io.links.send(this.seq, text);
    }
    if (this.reactionsPending || this.presenceDirty || this.pending.length > 0) this.flushSoon();
  }
}
