// Who is in a room right now: every connection and the object that holds its socket (the Room,
// or a shard), how many each holder has, and the members behind them — the room's presence, by
// identity. Memory only: the Room rebuilds it on wake from its sockets and the stored shard lists.
import { ROOM_LIMITS, type Member, type Presence, type Role } from '../core/rooms/room-protocol.ts';
import type { ConnIdentity } from '../core/contracts/room-admission.ts';
import type { RoomInfo } from '../core/contracts/room-rpc.ts';

interface Conn extends ConnIdentity {
  /** -1: the Room holds the socket; otherwise the shard index. */
  shard: number;
}

export class Roster {
  private readonly conns = new Map<string, Conn>();
  /** Connections per holder (-1: the Room itself), kept in step with `conns`. */
  private readonly held = new Map<number, number>();
  private readonly members = new Map<string, { name: string; role: Role; conns: number }>();

  /** Adds a connection; false when it was already known. */
  add(c: ConnIdentity, shard: number): boolean {
    if (this.conns.has(c.conn)) return false;
    this.conns.set(c.conn, { conn: c.conn, uid: c.uid, name: c.name, role: c.role, shard });
    this.held.set(shard, (this.held.get(shard) ?? 0) + 1);
    const m = this.members.get(c.uid);
    if (m) m.conns++;
    else this.members.set(c.uid, { name: c.name, role: c.role, conns: 1 });
    return true;
  }

  /** Forgets a connection; false when it was not known. */
  remove(conn: string): boolean {
    const c = this.conns.get(conn);
    if (!c) return false;
    this.conns.delete(conn);
    this.held.set(c.shard, (this.held.get(c.shard) ?? 1) - 1);
    const m = this.members.get(c.uid);
    if (m && --m.conns <= 0) this.members.delete(c.uid);
    return true;
  }

  /** Who holds a connection's socket (-1: the Room), or undefined when it is not in the room. */
  holderOf(conn: string): number | undefined {
    return this.conns.get(conn)?.shard;
  }

  /** The rank a member is online with, if they are online. */
  onlineRole(uid: string): Role | undefined {
    return this.members.get(uid)?.role;
  }

  /** Connections per holder (-1: the Room itself). */
  get load(): ReadonlyMap<number, number> {
    return this.held;
  }

  heldBy(shard: number): number {
    return this.held.get(shard) ?? 0;
  }

  get memberCount(): number {
    return this.members.size;
  }

  /** The connections a shard holds. */
  connsOn(shard: number): string[] {
    return [...this.conns.values()].filter((c) => c.shard === shard).map((c) => c.conn);
  }

  /** The shards that hold a connection of `uid`. */
  shardsOf(uid: string): Set<number> {
    const shards = new Set<number>();
    for (const c of this.conns.values()) if (c.uid === uid && c.shard >= 0) shards.add(c.shard);
    return shards;
  }

  /** Names while the room is small enough to list them; a big room only reports its count. */
  presence(): Presence {
    const count = this.members.size;
    if (count > ROOM_LIMITS.presenceNamesMax) return { count };
    const members: Member[] = [...this.members].map(([uid, v]) => ({ uid, name: v.name, role: v.role }));
    members.sort((a, b) => a.name.localeCompare(b.name) || a.uid.localeCompare(b.uid));
    return { count, members };
  }

  counts(): Pick<RoomInfo, 'viewers' | 'connections' | 'direct' | 'shards'> {
    const byShard = new Map([...this.held].filter(([, n]) => n > 0));
    return {
      viewers: this.members.size,
      connections: this.conns.size,
      direct: byShard.get(-1) ?? 0,
      shards: [...byShard]
        .filter(([i]) => i >= 0)
        .sort((a, b) => a[0] - b[0])
        .map(([index, connections]) => ({ index, connections })),
    };
  }
}
