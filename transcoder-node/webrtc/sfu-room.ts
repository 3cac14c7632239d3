// The party-voice rooms of the SFU: per room, its seats (one per member connection), which member
// is on which receive slot of which other member, and the forwarding — each member's microphone
// RTP copied to every other member's slot for it, nothing decoded or mixed. A join or a leave
// changes the slots and sends every member its new roster; a moderator's mute (`forced`) stops
// that member's audio here, whatever their client sends.
import { withoutHeaderExtension } from './rtp-forward.ts';
import type { SfuSeat } from './sfu-seat.ts';

export interface SfuCounters {
  /** Packets sent to receivers (one per receiver per packet). */
  forwarded: number;
  /** Microphone packets dropped because their member is muted by a moderator. */
  dropped: number;
}

class SfuRoom {
  readonly seats = new Map<string, SfuSeat>();
  /** Seats (conn) muted by the room's moderators, as the Room last said. */
  forced = new Set<string>();
}

export class SfuRooms {
  readonly counters: SfuCounters = { forwarded: 0, dropped: 0 };
  readonly #rooms = new Map<string, SfuRoom>();

  /** Rooms with a seat now (a room known only by its moderation holds none). */
  get roomCount(): number {
    let n = 0;
    for (const r of this.#rooms.values()) if (r.seats.size > 0) n++;
    return n;
  }

  get seatCount(): number {
    let n = 0;
    for (const r of this.#rooms.values()) n += r.seats.size;
    return n;
  }

  seatsIn(room: string): number {
    return this.#rooms.get(room)?.seats.size ?? 0;
  }

  seat(room: string, conn: string): SfuSeat | undefined {
    return this.#rooms.get(room)?.seats.get(conn);
  }

  all(): SfuSeat[] {
    return [...this.#rooms.values()].flatMap((r) => [...r.seats.values()]);
  }

  /** Seats `seat` in its room, slots both ways; an earlier seat of the same connection is closed. */
  join(seat: SfuSeat): void {
    const earlier = this.seat(seat.room, seat.conn);
    if (earlier && earlier !== seat) {
      this.leave(earlier);
      earlier.close('the member connected again');
    }
    let room = this.#rooms.get(seat.room);
    if (!room) this.#rooms.set(seat.room, (room = new SfuRoom()));
    seat.forced = room.forced.has(seat.conn);
    for (const other of room.seats.values()) {
      other.assign(seat.conn);
      seat.assign(other.conn);
    }
    room.seats.set(seat.conn, seat);
    this.#announce(room);
  }

  /** Takes `seat` out (it ended); the others' slots for it are freed. */
  leave(seat: SfuSeat): void {
    const room = this.#rooms.get(seat.room);
    if (!room || room.seats.get(seat.conn) !== seat) return;
    room.seats.delete(seat.conn);
    // The last one out forgets the room (its mutes too: the Room says them again on every change).
    if (room.seats.size === 0) {
      this.#rooms.delete(seat.room);
      return;
    }
    for (const other of room.seats.values()) {
      other.release(seat.conn);
      // A member that had no slot for someone (overflow) gets the freed one.
      for (const waiting of room.seats.values()) if (waiting !== other) other.assign(waiting.conn);
    }
    this.#announce(room);
  }

  /** The Room's moderators muted these seats (and only these): their audio is not forwarded. */
  setForced(roomId: string, conns: string[]): void {
    let room = this.#rooms.get(roomId);
    if (!room) {
      if (conns.length === 0) return;
      this.#rooms.set(roomId, (room = new SfuRoom()));
    }
    room.forced = new Set(conns);
    for (const s of room.seats.values()) s.forced = room.forced.has(s.conn);
    if (room.seats.size === 0 && room.forced.size === 0) this.#rooms.delete(roomId);
    else this.#announce(room);
  }

  /** The data channel of `seat` opened: its first roster. */
  ready(seat: SfuSeat): void {
    const room = this.#rooms.get(seat.room);
    if (room?.seats.get(seat.conn) === seat) seat.sendRoster([...room.forced], room.seats.size - 1 - seat.slotOf.size);
  }

  /** One microphone packet of `from`, to every other member of its room. */
  forward(from: SfuSeat, packet: Buffer): void {
    const room = this.#rooms.get(from.room);
    if (!room || room.seats.get(from.conn) !== from) return;
    if (from.forced) {
      this.counters.dropped++;
      return;
    }
    const bare = withoutHeaderExtension(packet);
    const now = performance.now();
    for (const seat of room.seats.values()) {
      if (seat !== from && seat.deliver(from.conn, bare, now)) this.counters.forwarded++;
    }
  }

  #announce(room: SfuRoom): void {
    const forced = [...room.forced];
    for (const s of room.seats.values()) s.sendRoster(forced, room.seats.size - 1 - s.slotOf.size);
  }
}
