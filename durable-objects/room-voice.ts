// The Room's side of party voice: the seats (who is in voice, muted, speaking, on camera), kept
// in memory and in SQLite so a hibernated Room wakes with them; the group's mode (mesh or SFU);
// the per-seat signalling buckets; the relay that carries a frame to one connection wherever it
// is held — the Room's own socket, or a shard, one ordered call at a time; what the media node's
// SFU is told (its configuration, the seats a moderator muted) and the SFU grants. RoomVoice
// carries out the voice effects the rules (core/rooms/voice-decisions.ts) decide.
import {
  VOICE_SFU_MODERATION_TTL_SEC,
  VOICE_SFU_TOKEN_TTL_SEC,
  signVoiceSfuModeration,
  signVoiceSfuToken,
} from '../core/auth/voice-sfu-token.ts';
import { voiceSfuRoomUrl } from '../core/contracts/voice-sfu.ts';
import type { RoomEvent } from '../core/rooms/room-protocol.ts';
import type { RoomEffect, RoomView } from '../core/rooms/room-decisions.ts';
import type { BucketState } from '../core/rooms/room-token-bucket.ts';
import { VOICE_LIMITS, type VoiceMember, type VoiceMode, type VoiceState } from '../core/rooms/voice-protocol.ts';
import type { RoomStore } from './room-store.ts';

/** The Worker's voice variables (wrangler.toml `[vars]`, secrets; docs/rooms.md § Voice). */
export interface VoiceVars {
  /** The media node's SFU for voice groups past the mesh, and the secret it shares with the Worker. */
  VOICE_SFU_URL?: string;
  VOICE_SFU_SECRET?: string;
  /** Members a mesh holds before the group moves to the SFU (default and most 8; tests lower it). */
  VOICE_MESH_MAX?: string;
}

/** The switch size and whether an SFU is configured; a room's own setting wins over the variable. */
export function voiceConfigOf(vars: VoiceVars, roomMeshMax: number | undefined): { meshMax: number; sfu: boolean } {
  const fromVars = Number(vars.VOICE_MESH_MAX);
  const meshMax =
    roomMeshMax ?? (Number.isInteger(fromVars) && fromVars >= 1 ? Math.min(fromVars, VOICE_LIMITS.meshMax) : VOICE_LIMITS.meshMax);
  return { meshMax, sfu: Boolean(vars.VOICE_SFU_URL && vars.VOICE_SFU_SECRET) };
}

/**
 * Tells the SFU which seats of the room a moderator muted (all of them, each time: the node keeps
 * the newest by `seq`, so a repeat or a late one is harmless), so their audio stops at the node
 * whatever their client sends. Tried up to three times while it is still the newest (`current`):
 * a lost lift would keep a member silent at the node. The members' clients gate a muted seat too.
 */
export async function pushSfuModeration(
  vars: VoiceVars,
  room: string,
  forced: string[],
  seq: number,
  current: () => boolean = () => true,
): Promise<void> {
  if (!vars.VOICE_SFU_URL || !vars.VOICE_SFU_SECRET || !room) return;
  const exp = Math.floor(Date.now() / 1000) + VOICE_SFU_MODERATION_TTL_SEC;
  const token = await signVoiceSfuModeration({ room, forced, seq, exp }, vars.VOICE_SFU_SECRET);
  let error = '';
  for (let attempt = 0; attempt < 3 && current(); attempt++) {
    if (attempt > 0) await new Promise((r) => setTimeout(r, 1000 * attempt));
    try {
      const res = await fetch(`${voiceSfuRoomUrl(vars.VOICE_SFU_URL, room)}/moderation`, {
        method: 'POST',
        headers: { authorization: `Bearer ${token}` },
        signal: AbortSignal.timeout(10_000),
      });
      await res.body?.cancel();
      if (res.ok) return;
      error = `HTTP ${res.status}`;
      // Refused for its signature or room: trying again would not change that.
      if (res.status < 500) break;
    } catch (err) {
      error = String(err);
    }
  }
  if (current()) console.error(JSON.stringify({ level: 'warn', msg: 'room: the SFU was not told of a voice mute', room, error }));
}

export class VoiceSeats {
  private readonly store: RoomStore;
  /** By connection, in the order members joined. */
  private readonly seats = new Map<string, VoiceMember>();
  private readonly byUid = new Map<string, string>();
  private readonly pace = new Map<string, { signals?: BucketState; updates?: BucketState }>();
  mode: VoiceMode;
  readonly #onForced: ((forced: string[], seq: number) => void) | undefined;
  #forcedSeq = 0;

  /** The sequence number of the newest moderation told to the SFU. */
  get forcedSeq(): number {
    return this.#forcedSeq;
  }

  /**
   * Loads the seats; a seat whose connection is gone (`alive` says no) is dropped silently.
   * `onForced` hears the seats a moderator muted whenever that changes in `sfu` mode (and when the
   * group moves to the SFU), with an increasing sequence number.
   */
  constructor(store: RoomStore, alive: (conn: string) => boolean, onForced?: (forced: string[], seq: number) => void) {
    this.store = store;
    this.#onForced = onForced;
    this.mode = store.getMeta<VoiceMode>('voiceMode') ?? 'mesh';
    for (const seat of store.voiceSeats()) {
      if (alive(seat.conn)) this.put(seat);
      else store.removeVoiceSeat(seat.conn);
    }
  }

  get count(): number {
    return this.seats.size;
  }

  seat(conn: string): VoiceMember | undefined {
    return this.seats.get(conn);
  }

  seatOf(uid: string): VoiceMember | undefined {
    const conn = this.byUid.get(uid);
    return conn === undefined ? undefined : this.seats.get(conn);
  }

  paceOf(conn: string): { signals?: BucketState; updates?: BucketState } {
    return this.pace.get(conn) ?? {};
  }

  setPace(conn: string, p: { signals?: BucketState; updates?: BucketState }): void {
    this.pace.set(conn, { ...this.pace.get(conn), ...p });
  }

  state(): VoiceState {
    return { mode: this.mode, members: [...this.seats.values()] };
  }

  /** Takes or changes a seat; returns the event that tells everyone. */
  take(member: VoiceMember, persist: boolean): RoomEvent {
    const before = this.seats.get(member.conn)?.forced ?? false;
    this.put(member);
    if (persist) this.store.setVoiceSeat(member);
    if (before !== member.forced && this.mode === 'sfu') this.tellSfu();
    return { kind: 'voice', member };
  }

  /** Gives a seat up; the event, or null when the connection held none. */
  leave(conn: string): RoomEvent | null {
    const seat = this.seats.get(conn);
    if (!seat) return null;
    this.seats.delete(conn);
    this.pace.delete(conn);
    if (this.byUid.get(seat.uid) === conn) this.byUid.delete(seat.uid);
    this.store.removeVoiceSeat(conn);
    return { kind: 'voice.left', conn };
  }

  setMode(mode: VoiceMode): RoomEvent {
    this.mode = mode;
    this.store.setMeta('voiceMode', mode);
    if (mode === 'sfu') this.tellSfu();
    return { kind: 'voice.mode', mode };
  }

  private tellSfu(): void {
    this.#forcedSeq = Math.max(Date.now(), this.#forcedSeq + 1);
    const forced = [...this.seats.values()].filter((s) => s.forced).map((s) => s.conn);
    this.#onForced?.(forced, this.#forcedSeq);
  }

  private put(member: VoiceMember): void {
    this.seats.set(member.conn, member);
    this.byUid.set(member.uid, member.conn);
  }
}

/**
 * Carries frames to single connections. A connection the Room holds gets the frame at once; one
 * held by a shard gets it through that shard's `relay`, queued so that calls to a shard never
 * overlap and frames arrive in the order they were sent (an offer before its candidates).
 */
export class ConnRelay {
  private readonly queues = new Map<number, { frames: Array<{ conn: string; text: string }>; inFlight: boolean }>();
  private readonly holderOf: (conn: string) => number | undefined;
  private readonly sendHere: (conn: string, text: string) => void;
  private readonly sendToShard: (shard: number, frames: Array<{ conn: string; text: string }>) => Promise<void>;

  constructor(opts: {
    holderOf: (conn: string) => number | undefined;
    sendHere: (conn: string, text: string) => void;
    sendToShard: (shard: number, frames: Array<{ conn: string; text: string }>) => Promise<void>;
  }) {
    this.holderOf = opts.holderOf;
    this.sendHere = opts.sendHere;
    this.sendToShard = opts.sendToShard;
  }

  /** False when the connection is not (or no longer) in the room. */
  send(conn: string, text: string): boolean {
    const holder = this.holderOf(conn);
    if (holder === undefined) return false;
    if (holder < 0) {
      this.sendHere(conn, text);
      return true;
    }
    let q = this.queues.get(holder);
    if (!q) this.queues.set(holder, (q = { frames: [], inFlight: false }));
    q.frames.push({ conn, text });
    void this.pump(holder);
    return true;
  }

  private async pump(shard: number): Promise<void> {
    const q = this.queues.get(shard);
    if (!q || q.inFlight || q.frames.length === 0) return;
    const frames = q.frames.splice(0);
    q.inFlight = true;
    try {
      await this.sendToShard(shard, frames);
    } catch (err) {
      // Signalling is not retried: a peer whose offer was lost times out and offers again.
      console.error(JSON.stringify({ level: 'warn', msg: 'room: relay failed', shard, frames: frames.length, error: String(err) }));
    } finally {
      q.inFlight = false;
    }
    if (q.frames.length > 0) void this.pump(shard);
  }
}

/** The voice effects of core/rooms/room-effects.ts. */
export type VoiceEffect = Extract<RoomEffect, { kind: `voice.${string}` }>;

/** What voice reads of the rules' view: the seats, the mode, the group's limits, the buckets. */
export type VoiceView = Pick<RoomView, 'voiceSeat' | 'voiceSeatOf' | 'voiceCount' | 'voiceMode' | 'voiceConfig' | 'voicePace'>;

/** What RoomVoice needs of the Room that holds it. */
export interface VoiceHost {
  store: RoomStore;
  /** Who holds a connection's socket (-1: the Room, otherwise a shard), undefined when it is gone. */
  holderOf(conn: string): number | undefined;
  sendHere(conn: string, text: string): void;
  sendToShard(shard: number, frames: Array<{ conn: string; text: string }>): Promise<void>;
  roomId(): string;
  /** The Worker's voice variables, and the room's own mesh size (its settings), if it has one. */
  vars(): VoiceVars;
  roomMeshMax(): number | undefined;
  /** Puts a voice event in the next batch (null: no event, but a batch is due all the same). */
  announce(event: RoomEvent | null): void;
}

/** Party voice in the Room: the seats, the relay of signalling, and the SFU grants. */
export class RoomVoice {
  private readonly host: VoiceHost;
  private readonly seats: VoiceSeats;
  /** Frames for one connection (relayed signalling), wherever it is held. */
  private readonly relay: ConnRelay;

  /** Loads the seats; call it once the Room knows which connections are alive. */
  constructor(host: VoiceHost) {
    this.host = host;
    this.relay = new ConnRelay({ holderOf: host.holderOf, sendHere: host.sendHere, sendToShard: host.sendToShard });
    this.seats = new VoiceSeats(
      host.store,
      (conn) => host.holderOf(conn) !== undefined,
      // Retried while it is the newest message (a lift lost under load would keep a member silent).
      (forced, seq) => void pushSfuModeration(host.vars(), host.roomId(), forced, seq, () => this.seats.forcedSeq === seq),
    );
  }

  readonly view: VoiceView = {
    voiceSeat: (conn) => this.seats.seat(conn),
    voiceSeatOf: (uid) => this.seats.seatOf(uid),
    voiceCount: () => this.seats.count,
    voiceMode: () => this.seats.mode,
    voiceConfig: () => voiceConfigOf(this.host.vars(), this.host.roomMeshMax()),
    voicePace: (conn) => this.seats.paceOf(conn),
  };

  state(): VoiceState {
    return this.seats.state();
  }

  /** Carries out one voice effect. */
  apply(e: VoiceEffect): void {
    switch (e.kind) {
      case 'voice.seat':
        this.host.announce(this.seats.take(e.member, e.persist));
        return;
      case 'voice.unseat':
        this.host.announce(this.seats.leave(e.conn));
        return;
      case 'voice.mode':
        this.host.announce(this.seats.setMode(e.mode));
        return;
      case 'voice.pace':
        this.seats.setPace(e.conn, { ...(e.signals ? { signals: e.signals } : {}), ...(e.updates ? { updates: e.updates } : {}) });
        return;
      case 'voice.relay':
        this.relay.send(e.to, e.frame);
        return;
      case 'voice.sfu':
        void this.grantSfu(e.conn, e.rid);
        return;
    }
  }

  /** Sends a seat the SFU's endpoint and a token for it (the signature is asynchronous). */
  private async grantSfu(conn: string, rid: string | undefined): Promise<void> {
    const vars = this.host.vars();
    const seat = this.seats.seat(conn);
    if (!seat || !vars.VOICE_SFU_URL || !vars.VOICE_SFU_SECRET) return;
    const exp = Math.floor(Date.now() / 1000) + VOICE_SFU_TOKEN_TTL_SEC;
    const token = await signVoiceSfuToken({ room: this.host.roomId(), conn, uid: seat.uid, name: seat.name, exp }, vars.VOICE_SFU_SECRET);
    const frame = { type: 'voice.sfu', ...(rid !== undefined ? { rid } : {}), endpoint: vars.VOICE_SFU_URL, token, expiresAt: exp * 1000 };
    this.relay.send(conn, JSON.stringify(frame));
  }
}
