// The Room's side of its shards: one link per shard that carries the room's batch frames to it,
// one call at a time and in order, and notices when a shard's own count of its sockets keeps
// disagreeing with the Room's (then the Room reconciles from the shard's list).
import type { RoomShard } from './room-shard.ts';

interface ShardLink {
  queue: Array<{ seq: number; text: string }>;
  inFlight: boolean;
  failures: number;
  /** Consecutive ingests whose socket count disagreed with ours, and when we last reconciled. */
  mismatches: number;
  reconciledAt: number;
}

export class ShardLinks {
  private readonly links = new Map<number, ShardLink>();
  private readonly shard: (i: number) => DurableObjectStub<RoomShard>;
  private readonly room: () => string;

  constructor(shard: (i: number) => DurableObjectStub<RoomShard>, room: () => string) {
    this.shard = shard;
    this.room = room;
  }

  /** Links a shard (from then on every batch reaches it). */
  link(i: number): void {
    this.linkOf(i);
  }

  /** The shards linked so far. */
  indices(): number[] {
    return [...this.links.keys()];
  }

  /** Queues a batch frame for every linked shard. */
  send(seq: number, text: string): void {
    for (const [i, link] of this.links) {
      link.queue.push({ seq, text });
      void this.pump(i);
    }
  }

  /**
   * Compares a shard's count of its sockets with the Room's, and says when to reconcile: a count
   * that stays wrong (a shard restarted without telling us who left) is repaired from the shard's
   * own list; a single disagreement is usually a close still in flight.
   */
  shouldReconcile(i: number, held: number, total: number, now: number): boolean {
    const link = this.linkOf(i);
    link.mismatches = held === total ? 0 : link.mismatches + 1;
    if (link.mismatches >= 3 && now - link.reconciledAt > 10_000) {
      link.reconciledAt = now;
      link.mismatches = 0;
      return true;
    }
    return false;
  }

  private linkOf(i: number): ShardLink {
    let l = this.links.get(i);
    if (!l) this.links.set(i, (l = { queue: [], inFlight: false, failures: 0, mismatches: 0, reconciledAt: 0 }));
    return l;
  }

  /**
   * Sends a shard its queued batches, one call at a time: calls never overlap, so the shard sees
   * batches in order, and while one is in flight the next batches gather into a single call —
   * a slow shard gets fewer, larger deliveries instead of a growing pile of calls.
   */
  private async pump(i: number): Promise<void> {
    const link = this.links.get(i);
    if (!link || link.inFlight || link.queue.length === 0) return;
    const frames = link.queue.splice(0);
    link.inFlight = true;
    try {
      await this.shard(i).deliver(this.room(), frames);
      link.failures = 0;
    } catch (err) {
      link.failures++;
      console.error(JSON.stringify({ level: 'warn', msg: 'room: deliver failed', shard: i, failures: link.failures, error: String(err) }));
      // Keep the frames for a retry unless the shard keeps failing; a shard that missed frames
      // notices the gap and rebuilds its mirror from snapshot(), so dropping is safe.
      if (link.failures < 5) link.queue.unshift(...frames);
      else link.queue.length = 0;
      await new Promise((r) => setTimeout(r, 50 * 2 ** Math.min(link.failures, 5)));
    } finally {
      link.inFlight = false;
    }
    if (link.queue.length > 0) void this.pump(i);
  }
}
