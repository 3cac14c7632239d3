// Admission to a room: the refusals (a room that needs a token, a ban, an address past its
// anonymous budgets) and the placement of an admitted viewer's socket — on the Room while the
// room is small, then on the first shard with room to spare — with a reservation held until the
// socket arrives, so a burst of joins does not overfill one shard.
import { CLOSE } from '../core/rooms/room-protocol.ts';
import { decideAnonymousJoin, idsSpec, joinsSpec, refillMs, type AnonymousLimits } from '../core/rooms/room-admission.ts';
import type { BucketState } from '../core/rooms/room-token-bucket.ts';
import type { AdmitRequest, AdmitResult } from '../core/contracts/room-rpc.ts';
import type { Capacities } from './room-config.ts';
import type { Moderation } from './room-moderation.ts';
import type { RoomStore } from './room-store.ts';

/** An admission not followed by a connection within this time no longer holds a place. */
const RESERVATION_MS = 30_000;

/** What placement reads of the room when it decides. */
export interface PlacementInput {
  /** Whether the room takes viewers without a room token. */
  anonymous: boolean;
  moderation: Moderation;
  /** Connections per holder (-1: the Room itself). */
  held: ReadonlyMap<number, number>;
  capacities: Capacities;
  anonymousLimits: AnonymousLimits;
}

export class Placement {
  private readonly store: RoomStore;
  private readonly reserved = new Map<string, { shard: number; at: number }>();
  /** Anonymous joins per address (in memory: a minute's budget survives no eviction, and needs not). */
  private readonly anonJoins = new Map<string, BucketState>();

  constructor(store: RoomStore) {
    this.store = store;
  }

  /** The connection arrived (or left a shard's batch): its reservation no longer holds a place. */
  arrived(conn: string): void {
    this.reserved.delete(conn);
  }

  decide(req: AdmitRequest, room: PlacementInput, now: number): AdmitResult {
    if (!req.viaToken && !room.anonymous) {
      return { ok: false, code: 'anonymous_not_allowed', reason: 'this room needs a room token', close: CLOSE.unauthorized };
    }
    if (req.viaToken) room.moderation.recordRank(req.uid, req.role);
    if (room.moderation.isBanned(req.uid, req.role)) {
      return { ok: false, code: 'banned', reason: 'you are banned from this room', close: CLOSE.forbidden };
    }
    if (!req.viaToken) {
      const refused = this.spendAnonymousJoin(room.anonymousLimits, req.address ?? 'unknown', req.newIdentity ?? true, now);
      if (refused) return refused;
    }
    for (const [conn, r] of this.reserved) if (now - r.at > RESERVATION_MS) this.reserved.delete(conn);
    const load = new Map(room.held);
    for (const r of this.reserved.values()) load.set(r.shard, (load.get(r.shard) ?? 0) + 1);
    const cap = room.capacities;
    let shard: number | null = null;
    if ((load.get(-1) ?? 0) < cap.directCapacity) shard = -1;
    else {
      for (let i = 0; i < cap.maxShards; i++) {
        if ((load.get(i) ?? 0) < cap.shardCapacity) {
          shard = i;
          break;
        }
      }
    }
    if (shard === null) return { ok: false, code: 'room_full', reason: 'this room is full', close: CLOSE.full };
    this.reserved.set(req.conn, { shard, at: now });
    return { ok: true, shard };
  }

  /** Spends an anonymous join from the address's budgets (core/rooms/room-admission.ts); the refusal, if any. */
  private spendAnonymousJoin(limits: AnonymousLimits, address: string, newIdentity: boolean, now: number): AdmitResult | null {
    const d = decideAnonymousJoin(
      limits,
      { joins: this.anonJoins.get(address), ids: newIdentity ? this.store.anonMints(address) : undefined },
      newIdentity,
      now,
    );
    if (this.anonJoins.size >= 10_000 && !this.anonJoins.has(address)) {
      // Bounded memory: forget the buckets that are full again (forgetting one changes nothing).
      const full = refillMs(joinsSpec(limits));
      for (const [a, b] of this.anonJoins) if (now - b.at >= full) this.anonJoins.delete(a);
    }
    this.anonJoins.set(address, d.joins);
    if (!d.ok) {
      const retry = Math.ceil(d.retryAfterMs / 1000);
      return { ok: false, code: 'rate_limited', reason: `${d.reason} (retry in ${retry} s)`, close: CLOSE.tooMany };
    }
    if (d.ids) this.store.setAnonMints(address, d.ids, now - refillMs(idsSpec(limits)));
    return null;
  }
}
