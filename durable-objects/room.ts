// Room: the one authoritative object per room. It orders and stores chat, counts reactions, runs
// polls, keeps presence, sanctions and the watch party's playback state, and cuts everything
// that happened into one batch frame every 50 ms. A small room's viewers connect to it directly;
// past `directCapacity` sockets it places new viewers on RoomShard objects, which forward what
// their viewers send (ingest) and fan its batches out (deliver). See docs/rooms.md.
import { DurableObject } from 'cloudflare:workers';
import type { Env } from '../workers/env.ts';
import {
  CLOSE,
  REACTIONS,
  ROOM_LIMITS,
  errorFrame,
  type ErrorCode,
  type Member,
  type Poll,
  type Presence,
  type Reaction,
  type ReactionCounts,
  type Role,
  type RoomBoundMessage,
  type RoomEvent,
  type RoomSnapshot,
} from '../core/rooms/room-protocol.ts';
import { applyEvents } from '../core/rooms/room-state.ts';
import { isStaff, mayDo, outranks } from '../core/rooms/room-rules.ts';
import { ROOM_RATE_LIMITS, fullBucket, msUntil, takeToken, type BucketState } from '../core/rooms/room-token-bucket.ts';
import { RoomStore, type RoomSettings } from './room-store.ts';
import { FrameRing, SocketHub, reciprocateClose, type Meter } from './room-sockets.ts';
import { readAdmission, shardName, type ConnIdentity } from '../core/contracts/room-admission.ts';
import { closeQuietly, refuseUpgrade, upgradeResponse } from '../workers/websocket-answers.ts';

/** Optional tuning from wrangler.toml `[vars]`; per-room settings override them. */
export interface RoomVars {
  ROOM_DIRECT_CAPACITY?: string;
  ROOM_SHARD_CAPACITY?: string;
  ROOM_MAX_SHARDS?: string;
}

export const ROOM_DEFAULTS = { directCapacity: 1000, shardCapacity: 2000, maxShards: 16 } as const;

/** Batches are cut this often (the platform's advice: batch small messages every 50–100 ms). */
export const FLUSH_MS = 50;
/** Reaction counts go out at most this often. */
export const REACTIONS_MS = 100;
/** An admission not followed by a connection within this time no longer holds a place. */
const RESERVATION_MS = 30_000;
/** A big room's viewer count goes out at most this often. */
export const PRESENCE_MS = 1000;
/** A host's `at` further than this from the room's clock is ignored. */
const PLAYBACK_SKEW_MS = 5_000;

export interface AdmitRequest {
  room: string;
  conn: string;
  uid: string;
  role: Role;
  /** True when a room token vouches for the viewer; false for anonymous viewers. */
  viaToken: boolean;
}
export type AdmitResult =
  | { ok: true; shard: number }
  | { ok: false; code: ErrorCode; reason: string; close: number };

/** What a shard sends the room: everything its viewers did since its last call. */
export interface IngestBatch {
  shard: number;
  joins: ConnIdentity[];
  leaves: string[];
  reactions: ReactionCounts;
  messages: Array<{ from: ConnIdentity; msg: RoomBoundMessage }>;
  /** Sockets the shard holds after this batch (the room reconciles if it disagrees). */
  total: number;
}
export interface IngestResult {
  replies: Array<{ conn: string; text: string }>;
}

export interface RoomInfo {
  room: string | null;
  viewers: number;
  connections: number;
  direct: number;
  shards: Array<{ index: number; connections: number }>;
  anonymous: boolean;
  seq: number;
}

interface ShardLink {
  queue: Array<{ seq: number; text: string }>;
  inFlight: boolean;
  failures: number;
  /** Consecutive ingests whose socket count disagreed with ours, and when we last reconciled. */
  mismatches: number;
  reconciledAt: number;
}

interface Conn extends ConnIdentity {
  shard: number;
}

export class Room extends DurableObject<Env> {
  private readonly store: RoomStore;
  private readonly hub: SocketHub;
  private readonly ring = new FrameRing();
  private roomId: string | null;
  private readonly epoch: string;
  private seq: number;
  /** The room as of `seq`: what a joining viewer is given. */
  private view: RoomSnapshot;
  private settings: RoomSettings;

  private readonly conns = new Map<string, Conn>();
  /** Connections per holder (-1: the Room itself), kept in step with `conns`. */
  private readonly held = new Map<number, number>();
  private readonly viewers = new Map<string, { name: string; role: Role; conns: number }>();
  private readonly reserved = new Map<string, { shard: number; at: number }>();
  private readonly shards = new Map<number, ShardLink>();
  private readonly sanctions = new Map<string, { muteUntil?: number | null; banned?: boolean }>();
  private readonly openPolls = new Map<number, Poll>();
  private readonly dirtyPolls = new Set<number>();
  private readonly lastChatAt = new Map<string, number>();
  private readonly chatBuckets = new Map<string, BucketState>();

  private pending: RoomEvent[] = [];
  private presenceDirty = false;
  private reactions: Record<string, number> = {};
  private reactionsPending = false;
  private lastReactionsAt = 0;
  private lastPresenceAt = 0;
  private flushTimer: ReturnType<typeof setTimeout> | null = null;

  constructor(ctx: DurableObjectState, env: Env) {
    super(ctx, env);
    // Everything here is synchronous SQLite reads: the constructor runs on every wake from
    // hibernation, so it rebuilds memory from storage and sockets without awaiting anything.
    this.store = new RoomStore(ctx.storage.sql);
    this.hub = new SocketHub(ctx);
    this.roomId = this.store.getMeta<string>('room') ?? null;
    let epoch = this.store.getMeta<string>('epoch');
    if (!epoch) {
      epoch = crypto.randomUUID().replace(/-/g, '').slice(0, 12);
      this.store.setMeta('epoch', epoch);
    }
    this.epoch = epoch;
    this.ring.clear(epoch);
    this.seq = this.store.getMeta<number>('seq') ?? 0;
    this.settings = this.store.getMeta<RoomSettings>('settings') ?? { anonymous: true };

    for (const s of this.store.sanctions()) {
      const cur = this.sanctions.get(s.uid) ?? {};
      if (s.kind === 'ban') cur.banned = true;
      else cur.muteUntil = s.until;
      this.sanctions.set(s.uid, cur);
    }
    for (const a of this.hub.members()) this.addConn(a, -1);
    for (const m of this.store.shardMembers()) {
      this.addConn(m, m.shard);
      this.link(m.shard); // so the next batch reaches every shard that holds viewers
    }
    this.presenceDirty = false;

    const polls = this.store.recentPolls(ROOM_LIMITS.pollsKept);
    for (const p of polls) if (p.open) this.openPolls.set(p.id, p);
    this.view = {
      history: this.store.recentMessages(ROOM_LIMITS.historySize),
      polls,
      playback: this.store.playback(),
      presence: this.presence(),
      slowModeSec: this.store.getMeta<number>('slow') ?? 0,
      anonymous: this.settings.anonymous,
    };
  }

  // ---------------------------------------------------------------------------------------------
  // Admission (RPC from the Worker) and direct connections (fetch from the Worker).

  /**
   * Decides whether a viewer may join and which object will hold the socket: the Room itself
   * while the room is small, otherwise the first shard with room to spare. A place is reserved
   * until the socket arrives, so a burst of joins does not overfill one shard.
   */
  admit(req: AdmitRequest): AdmitResult {
    return this.hub.meter.time('admit', () => this.decideAdmission(req));
  }

  private decideAdmission(req: AdmitRequest): AdmitResult {
    this.rememberRoom(req.room);
    const now = Date.now();
    if (!req.viaToken && !this.settings.anonymous) {
      return { ok: false, code: 'anonymous_not_allowed', reason: 'this room needs a room token', close: CLOSE.unauthorized };
    }
    if (this.sanctions.get(req.uid)?.banned) {
      return { ok: false, code: 'banned', reason: 'you are banned from this room', close: CLOSE.forbidden };
    }
    for (const [conn, r] of this.reserved) if (now - r.at > RESERVATION_MS) this.reserved.delete(conn);
    const load = new Map(this.held);
    for (const r of this.reserved.values()) load.set(r.shard, (load.get(r.shard) ?? 0) + 1);
    const cap = this.capacities();
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
    if (shard >= 0) this.link(shard);
    return { ok: true, shard };
  }

  override async fetch(request: Request): Promise<Response> {
    const a = readAdmission(request);
    if (!a || a.shard !== -1 || request.headers.get('Upgrade')?.toLowerCase() !== 'websocket') {
      return new Response(JSON.stringify({ error: { code: 'bad_request', message: 'expected an admitted WebSocket upgrade' } }), {
        status: 400,
        headers: { 'content-type': 'application/json' },
      });
    }
    this.rememberRoom(a.room);
    this.reserved.delete(a.conn);
    // A ban can land between admission and the upgrade.
    if (this.sanctions.get(a.uid)?.banned) return refuseUpgrade('banned', 'you are banned from this room', CLOSE.forbidden);
    const now = Date.now();
    const joinStart = performance.now();
    const pair = new WebSocketPair();
    const client = pair[0];
    const server = pair[1];
    this.hub.accept(server, { conn: a.conn, uid: a.uid, name: a.name, role: a.role, room: a.room, shard: -1, joinedAt: now });
    this.addConn(a, -1);
    this.hub.welcome(server, a, { epoch: this.epoch, seq: this.seq, state: this.view }, this.ring, now);
    this.scheduleFlush();
    this.hub.meter.add('join', performance.now() - joinStart);
    return upgradeResponse(client);
  }

  // ---------------------------------------------------------------------------------------------
  // Hibernation handlers for the Room's own sockets. All three are defined: the runtime calls
  // them on a rebuilt instance after a wake, and a missing one is an error in the test pool.

  override async webSocketMessage(ws: WebSocket, message: string | ArrayBuffer): Promise<void> {
    const now = Date.now(); // t1 for clock pings: stamped before any work
    const msg = this.hub.receive(ws, message, now);
    if (!msg) return;
    const who = this.hub.identity(ws);
    if (!who) return closeQuietly(ws, CLOSE.policy, 'unknown connection');
    switch (msg.type) {
      case 'ping':
        this.hub.sendText(ws, JSON.stringify({ type: 'pong', t0: msg.t0, t1: now, t2: Date.now() }));
        return;
      case 'resync':
        this.hub.sendText(ws, this.stateFrame());
        return;
      case 'react':
        this.addReactions({ [msg.reaction]: 1 });
        return;
      default: {
        const reply = this.handle(who, msg, now);
        if (reply) this.hub.sendText(ws, reply);
      }
    }
  }

  override async webSocketClose(ws: WebSocket, code: number, reason: string): Promise<void> {
    this.leave(ws);
    reciprocateClose(ws, code, reason);
  }

  override async webSocketError(ws: WebSocket, error: unknown): Promise<void> {
    void error;
    this.leave(ws);
  }

  private leave(ws: WebSocket): void {
    this.hub.drop(ws);
    const a = this.hub.identity(ws);
    if (a) this.removeConn(a.conn);
  }

  // ---------------------------------------------------------------------------------------------
  // RPC from shards.

  /** The state as of the latest batch, for a shard building (or rebuilding) its mirror. */
  snapshot(): { epoch: string; seq: number; state: RoomSnapshot } {
    return { epoch: this.epoch, seq: this.seq, state: this.view };
  }

  /** Applies a shard's batch of joins, leaves, reactions and messages; returns the replies. */
  ingest(room: string, batch: IngestBatch): IngestResult {
    const items = batch.joins.length + batch.leaves.length + batch.messages.length;
    return this.hub.meter.time('ingest', () => this.applyIngest(room, batch), items);
  }

  private applyIngest(room: string, batch: IngestBatch): IngestResult {
    this.rememberRoom(room);
    const now = Date.now();
    const link = this.link(batch.shard);
    if (batch.joins.length) {
      for (const j of batch.joins) {
        this.reserved.delete(j.conn);
        this.addConn(j, batch.shard);
      }
      this.store.addShardMembers(batch.joins.map((j) => ({ ...j, shard: batch.shard })));
    }
    if (batch.leaves.length) {
      for (const c of batch.leaves) this.removeConn(c);
      this.store.removeShardMembers(batch.leaves);
    }
    this.addReactions(batch.reactions);
    const replies: IngestResult['replies'] = [];
    for (const { from, msg } of batch.messages) {
      const text = this.handle(from, msg, now);
      if (text) replies.push({ conn: from.conn, text });
    }
    const held = this.held.get(batch.shard) ?? 0;
    // A count that stays wrong (a shard restarted without telling us who left) is repaired from
    // the shard's own list; a single disagreement is usually a close still in flight.
    link.mismatches = held === batch.total ? 0 : link.mismatches + 1;
    if (link.mismatches >= 3 && now - link.reconciledAt > 10_000) {
      link.reconciledAt = now;
      link.mismatches = 0;
      void this.reconcile(batch.shard);
    }
    this.scheduleFlush();
    return { replies };
  }

  /** Where this room's time goes, and each shard's (for operators and the benchmark). */
  async stats(): Promise<{ room: Meter['counts']; since: number; shards: Array<{ index: number; counts: Meter['counts'] }> }> {
    const shards = await Promise.all(
      [...this.shards.keys()].map(async (index) => ({ index, counts: await this.shardStub(index).stats().catch(() => ({})) })),
    );
    return { room: this.hub.meter.counts, since: this.hub.meter.since, shards };
  }

  info(): RoomInfo {
    const byShard = new Map([...this.held].filter(([, n]) => n > 0));
    return {
      room: this.roomId,
      viewers: this.viewers.size,
      connections: this.conns.size,
      direct: byShard.get(-1) ?? 0,
      shards: [...byShard]
        .filter(([i]) => i >= 0)
        .sort((a, b) => a[0] - b[0])
        .map(([index, connections]) => ({ index, connections })),
      anonymous: this.settings.anonymous,
      seq: this.seq,
    };
  }

  configure(room: string, patch: Partial<RoomSettings>): RoomSettings {
    this.rememberRoom(room);
    this.settings = { ...this.settings, ...patch };
    this.store.setMeta('settings', this.settings);
    if (patch.anonymous !== undefined && patch.anonymous !== this.view.anonymous) {
      this.pending.push({ kind: 'settings', anonymous: patch.anonymous });
      this.flushNow(); // so the very next joiner is told, not one 50 ms later
    }
    return this.settings;
  }

  // ---------------------------------------------------------------------------------------------
  // The rules: one place decides every room-bound message, wherever the sender is connected.

  private handle(from: ConnIdentity, msg: RoomBoundMessage, now: number): string | null {
    const rid = msg.rid;
    const ack = (id?: number) =>
      rid === undefined ? null : JSON.stringify(id === undefined ? { type: 'ack', rid } : { type: 'ack', rid, id });
    if (!mayDo(from.role, msg.type)) return errorFrame('forbidden', `${from.role} may not ${msg.type}`, rid);
    const sanction = this.sanctions.get(from.uid);
    if (sanction?.banned) return errorFrame('banned', 'you are banned from this room', rid);

    switch (msg.type) {
      case 'chat': {
        if (sanction?.muteUntil !== undefined && (sanction.muteUntil === null || sanction.muteUntil > now)) {
          const until = sanction.muteUntil === null ? 'further notice' : new Date(sanction.muteUntil).toISOString();
          return errorFrame('muted', `you are muted until ${until}`, rid);
        }
        if (!isStaff(from.role)) {
          const slow = this.view.slowModeSec;
          const last = this.lastChatAt.get(from.uid);
          if (slow > 0 && last !== undefined && now - last < slow * 1000) {
            return errorFrame('slow_mode', `slow mode: wait ${Math.ceil((slow * 1000 - (now - last)) / 1000)} s`, rid);
          }
          let bucket = this.chatBuckets.get(from.uid);
          if (!bucket) this.chatBuckets.set(from.uid, (bucket = fullBucket(ROOM_RATE_LIMITS.viewerChat, now)));
          if (!takeToken(ROOM_RATE_LIMITS.viewerChat, bucket, now)) {
            const wait = msUntil(ROOM_RATE_LIMITS.viewerChat, bucket, now);
            return errorFrame('rate_limited', `too many chat messages; wait ${wait} ms`, rid);
          }
          this.lastChatAt.set(from.uid, now);
        }
        const message = this.store.insertMessage({
          uid: from.uid,
          name: from.name,
          role: from.role,
          text: msg.text,
          ts: now,
          ...(msg.pdt !== undefined ? { pdt: msg.pdt } : {}),
        });
        this.pending.push({ kind: 'chat', message });
        this.scheduleFlush();
        return ack(message.id);
      }
      case 'poll.open': {
        const closesAt = msg.durationSec ? now + msg.durationSec * 1000 : null;
        const poll = this.store.insertPoll({ question: msg.question, options: msg.options, openedBy: from.name, openedAt: now, closesAt });
        this.openPolls.set(poll.id, poll);
        this.dirtyPolls.add(poll.id);
        if (closesAt !== null) void this.armAlarm();
        this.scheduleFlush();
        return ack(poll.id);
      }
      case 'poll.vote': {
        const poll = this.openPolls.get(msg.pollId);
        if (!poll) {
          return this.store.getPoll(msg.pollId)
            ? errorFrame('poll_closed', 'this poll is closed', rid)
            : errorFrame('not_found', 'no such poll', rid);
        }
        if (msg.option >= poll.options.length) return errorFrame('invalid_message', 'option: no such option', rid);
        const prev = this.store.vote(poll.id, from.uid, msg.option);
        if (prev !== msg.option) {
          const counts = [...poll.counts];
          if (prev !== null) counts[prev] = Math.max(0, (counts[prev] ?? 0) - 1);
          counts[msg.option] = (counts[msg.option] ?? 0) + 1;
          this.openPolls.set(poll.id, { ...poll, counts });
          this.dirtyPolls.add(poll.id);
          this.scheduleFlush();
        }
        return ack(poll.id);
      }
      case 'poll.close': {
        if (!this.closePoll(msg.pollId, now)) {
          return this.store.getPoll(msg.pollId)
            ? errorFrame('poll_closed', 'this poll is already closed', rid)
            : errorFrame('not_found', 'no such poll', rid);
        }
        void this.armAlarm();
        return ack(msg.pollId);
      }
      case 'mod.delete': {
        if (!this.store.deleteMessage(msg.messageId)) return errorFrame('not_found', 'no such message', rid);
        this.pending.push({ kind: 'chat.delete', id: msg.messageId });
        this.scheduleFlush();
        return ack(msg.messageId);
      }
      case 'mod.mute':
      case 'mod.ban': {
        const target = this.viewers.get(msg.uid)?.role ?? 'viewer';
        if (!outranks(from.role, target)) return errorFrame('forbidden', `a ${from.role} may not sanction a ${target}`, rid);
        const cur = this.sanctions.get(msg.uid) ?? {};
        if (msg.type === 'mod.mute') {
          cur.muteUntil = now + msg.seconds * 1000;
          this.store.setSanction({ uid: msg.uid, kind: 'mute', until: cur.muteUntil }, from.uid);
        } else {
          cur.banned = true;
          this.store.setSanction({ uid: msg.uid, kind: 'ban', until: null }, from.uid);
          this.kick(msg.uid, 'banned', 'you were banned from this room', CLOSE.forbidden);
        }
        this.sanctions.set(msg.uid, cur);
        return ack();
      }
      case 'mod.unmute':
      case 'mod.unban': {
        const kind = msg.type === 'mod.unmute' ? 'mute' : 'ban';
        this.store.removeSanction(msg.uid, kind);
        const cur = this.sanctions.get(msg.uid);
        if (cur) {
          if (kind === 'mute') delete cur.muteUntil;
          else delete cur.banned;
          if (cur.muteUntil === undefined && !cur.banned) this.sanctions.delete(msg.uid);
        }
        return ack();
      }
      case 'mod.slow': {
        this.store.setMeta('slow', msg.seconds);
        this.pending.push({ kind: 'slow', seconds: msg.seconds });
        this.scheduleFlush();
        return ack();
      }
      case 'playback.set': {
        const at = msg.at !== undefined && Math.abs(msg.at - now) <= PLAYBACK_SKEW_MS ? msg.at : now;
        const prev = this.store.playback();
        const playback = { playing: msg.playing, position: msg.position, rate: msg.rate, at, by: from.name, version: (prev?.version ?? 0) + 1 };
        this.store.setPlayback(playback);
        this.pending.push({ kind: 'playback', playback });
        this.scheduleFlush();
        return ack(playback.version);
      }
    }
  }

  private closePoll(id: number, now: number): boolean {
    if (!this.store.closePoll(id, now)) return false;
    this.openPolls.delete(id);
    this.dirtyPolls.add(id);
    this.scheduleFlush();
    return true;
  }

  /** Closes every viewer's socket that belongs to `uid`, here and on every shard. */
  private kick(uid: string, code: ErrorCode, reason: string, closeCode: number): void {
    const frame = errorFrame(code, reason);
    for (const ws of this.hub.byUid(uid)) {
      this.hub.sendText(ws, frame);
      closeQuietly(ws, closeCode, code);
    }
    const shards = new Set<number>();
    for (const c of this.conns.values()) if (c.uid === uid && c.shard >= 0) shards.add(c.shard);
    for (const i of shards) {
      void this.shardStub(i)
        .kick(uid, frame, closeCode)
        .catch((err: unknown) => console.error(JSON.stringify({ level: 'error', msg: 'room: kick failed', shard: i, error: String(err) })));
    }
  }

  // ---------------------------------------------------------------------------------------------
  // Polls close by alarm: one alarm per object, set to the earliest open deadline.

  private async armAlarm(): Promise<void> {
    const next = this.store.nextPollDeadline();
    if (next === null) await this.ctx.storage.deleteAlarm();
    else await this.ctx.storage.setAlarm(next);
  }

  override async alarm(): Promise<void> {
    // Alarms are delivered at least once: closing an already-closed poll is a no-op.
    const now = Date.now();
    for (const id of this.store.duePolls(now)) this.closePoll(id, now);
    await this.armAlarm();
  }

  // ---------------------------------------------------------------------------------------------
  // Presence.

  private addConn(c: ConnIdentity, shard: number): void {
    if (this.conns.has(c.conn)) return;
    this.conns.set(c.conn, { conn: c.conn, uid: c.uid, name: c.name, role: c.role, shard });
    this.held.set(shard, (this.held.get(shard) ?? 0) + 1);
    const v = this.viewers.get(c.uid);
    if (v) v.conns++;
    else this.viewers.set(c.uid, { name: c.name, role: c.role, conns: 1 });
    this.presenceDirty = true;
  }

  private removeConn(conn: string): void {
    if (!this.removeConnQuiet(conn)) return;
    this.presenceDirty = true;
    this.scheduleFlush();
  }

  private presence(): Presence {
    const count = this.viewers.size;
    if (count > ROOM_LIMITS.presenceNamesMax) return { count };
    const members: Member[] = [...this.viewers].map(([uid, v]) => ({ uid, name: v.name, role: v.role }));
    members.sort((a, b) => a.name.localeCompare(b.name) || a.uid.localeCompare(b.uid));
    return { count, members };
  }

  private addReactions(counts: ReactionCounts): void {
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
      this.scheduleFlush();
    }
  }

  // ---------------------------------------------------------------------------------------------
  // Batching and fan-out.

  /**
   * A timer runs only while something is waiting to go out, so an idle room has no timer and
   * can hibernate (a pending setTimeout keeps an object in memory).
   */
  private scheduleFlush(): void {
    if (this.flushTimer !== null) return;
    const at = Date.now();
    this.flushTimer = setTimeout(() => {
      // How late the timer fired says how busy the object's thread is (stats()).
      this.hub.meter.add('flush timer late', Math.max(0, Date.now() - at - FLUSH_MS), 1);
      this.flush();
    }, FLUSH_MS);
  }

  private flushNow(): void {
    if (this.flushTimer !== null) clearTimeout(this.flushTimer);
    this.flush();
  }

  /** Cuts one batch: serialised once, sent to every local socket and queued for every shard. */
  private flush(): void {
    this.hub.meter.time('flush', () => this.cutBatch());
  }

  private cutBatch(): void {
    this.flushTimer = null;
    const now = Date.now();
    const events = this.pending;
    this.pending = [];
    for (const id of this.dirtyPolls) {
      const poll = this.openPolls.get(id) ?? this.store.getPoll(id);
      if (poll) events.push({ kind: 'poll', poll });
    }
    this.dirtyPolls.clear();
    // A small room lists names and updates them with every batch. A big room only reports a
    // count, at most once a second: otherwise a join storm of N viewers costs O(N²) sends.
    if (this.presenceDirty && (this.viewers.size <= ROOM_LIMITS.presenceNamesMax || now - this.lastPresenceAt >= PRESENCE_MS)) {
      events.push({ kind: 'presence', presence: this.presence() });
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
      this.store.setMeta('seq', this.seq);
      const body = { epoch: this.epoch, seq: this.seq, t: now, events };
      const text = JSON.stringify({ type: 'batch', ...body });
      this.view = applyEvents(this.view, events);
      this.ring.push(this.epoch, this.seq, text);
      this.hub.publish(body, text);
      for (const [i, link] of this.shards) {
        link.queue.push({ seq: this.seq, text });
        void this.pump(i);
      }
    }
    if (this.reactionsPending || this.presenceDirty || this.pending.length > 0) this.scheduleFlush();
  }

  private link(shard: number): ShardLink {
    let l = this.shards.get(shard);
    if (!l) this.shards.set(shard, (l = { queue: [], inFlight: false, failures: 0, mismatches: 0, reconciledAt: 0 }));
    return l;
  }

  private shardStub(i: number) {
    return this.env.ROOM_SHARD.getByName(shardName(this.roomId ?? 'unknown', i));
  }

  /**
   * Sends a shard its queued batches, one call at a time: calls never overlap, so the shard sees
   * batches in order, and while one is in flight the next batches gather into a single call —
   * a slow shard gets fewer, larger deliveries instead of a growing pile of calls.
   */
  private async pump(i: number): Promise<void> {
    const link = this.shards.get(i);
    if (!link || link.inFlight || link.queue.length === 0) return;
    const frames = link.queue.splice(0);
    link.inFlight = true;
    try {
      await this.shardStub(i).deliver(this.roomId ?? '', frames);
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

  /** Replaces what the room believes a shard holds with what the shard says it holds. */
  private async reconcile(i: number): Promise<void> {
    try {
      const members = await this.shardStub(i).members();
      for (const [conn, c] of this.conns) if (c.shard === i) this.removeConnQuiet(conn);
      for (const m of members) this.addConn(m, i);
      this.store.replaceShardMembers(i, members);
      this.presenceDirty = true;
      this.scheduleFlush();
    } catch (err) {
      console.error(JSON.stringify({ level: 'warn', msg: 'room: reconcile failed', shard: i, error: String(err) }));
    }
  }

  /** Forgets a connection without announcing it; false if it was not known. */
  private removeConnQuiet(conn: string): boolean {
    const c = this.conns.get(conn);
    if (!c) return false;
    this.conns.delete(conn);
    this.held.set(c.shard, (this.held.get(c.shard) ?? 1) - 1);
    const v = this.viewers.get(c.uid);
    if (v && --v.conns <= 0) this.viewers.delete(c.uid);
    return true;
  }

  private stateFrame(): string {
    return JSON.stringify({ type: 'state', epoch: this.epoch, seq: this.seq, state: this.view });
  }

  private capacities(): { directCapacity: number; shardCapacity: number; maxShards: number } {
    const vars = this.env as Env & RoomVars;
    const num = (v: string | undefined, d: number) => {
      const n = Number(v);
      return Number.isInteger(n) && n > 0 ? n : d;
    };
    return {
      directCapacity: this.settings.directCapacity ?? num(vars.ROOM_DIRECT_CAPACITY, ROOM_DEFAULTS.directCapacity),
      shardCapacity: this.settings.shardCapacity ?? num(vars.ROOM_SHARD_CAPACITY, ROOM_DEFAULTS.shardCapacity),
      maxShards: this.settings.maxShards ?? num(vars.ROOM_MAX_SHARDS, ROOM_DEFAULTS.maxShards),
    };
  }

  private rememberRoom(room: string): void {
    if (this.roomId === null) {
      this.roomId = room;
      this.store.setMeta('room', room);
    }
  }
}
