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
  isHostReaction,
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
import { decideRoomMessage, replyFrame, type RoomEffect, type RoomView, type SanctionState } from '../core/rooms/room-decisions.ts';
import { higherRole, sanctionBinds } from '../core/rooms/room-rules.ts';
import {
  ANONYMOUS_DEFAULTS,
  decideAnonymousJoin,
  idsSpec,
  joinsSpec,
  refillMs,
  type AnonymousLimits,
} from '../core/rooms/room-admission.ts';
import type { BucketState } from '../core/rooms/room-token-bucket.ts';
import { RoomStore, type RoomSettings } from './room-store.ts';
import { ConnRelay, VoiceSeats, pushSfuModeration, voiceConfigOf, type VoiceVars } from './room-voice.ts';
import { leaveVoice } from '../core/rooms/voice-decisions.ts';
import { VOICE_SFU_TOKEN_TTL_SEC, signVoiceSfuToken } from '../core/auth/voice-sfu-token.ts';
import { FrameRing, SocketHub, admittedUpgrade, type Meter } from './room-sockets.ts';
import { shardName, type ConnIdentity } from '../core/contracts/room-admission.ts';
import { closeQuietly, refuseUpgrade, upgradeResponse } from '../workers/websocket-answers.ts';

/** Optional tuning from wrangler.toml `[vars]`; per-room settings override them. */
export interface RoomVars {
  ROOM_DIRECT_CAPACITY?: string;
  ROOM_SHARD_CAPACITY?: string;
  ROOM_MAX_SHARDS?: string;
  ROOM_ANON_JOINS_PER_MINUTE?: string;
  ROOM_ANON_IDS_PER_HOUR?: string;
  /** The media node's SFU for voice groups past the mesh (docs/rooms.md § Voice), and its shared secret. */
  VOICE_SFU_URL?: string;
  VOICE_SFU_SECRET?: string;
  VOICE_MESH_MAX?: string;
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

export interface AdmitRequest {
  room: string;
  conn: string;
  uid: string;
  role: Role;
  /** True when a room token vouches for the viewer; false for anonymous viewers. */
  viaToken: boolean;
  /** Anonymous viewers: a keyed hash of their address (never the address itself). */
  address?: string;
  /** Anonymous viewers: true when the Worker minted their identity for this join. */
  newIdentity?: boolean;
}
export type AdmitResult = { ok: true; shard: number } | { ok: false; code: ErrorCode; reason: string; close: number };

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
  private readonly sanctions = new Map<string, SanctionState>();
  /** Staff ranks by identity (from the tokens they joined with), online or not. */
  private readonly ranks = new Map<string, Role>();
  /** Anonymous joins per address (in memory: a minute's budget survives no eviction, and needs not). */
  private readonly anonJoins = new Map<string, BucketState>();
  private readonly openPolls = new Map<number, Poll>();
  private readonly dirtyPolls = new Set<number>();
  private readonly lastChatAt = new Map<string, number>();
  private readonly chatBuckets = new Map<string, BucketState>();

  private readonly voice: VoiceSeats;
  /** Frames for one connection (relayed signalling), wherever it is held. */
  private readonly relay = new ConnRelay({
    holderOf: (conn) => this.conns.get(conn)?.shard,
    sendHere: (conn, text) => {
      const ws = this.hub.byConn(conn);
      if (ws) this.hub.sendText(ws, text);
    },
    sendToShard: async (i, frames) => {
      await this.shard(i).relay(frames);
    },
  });

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
      if (s.kind === 'ban') {
        cur.banned = true;
        cur.banBy = s.byRole;
      } else if (s.kind === 'voice') {
        cur.voiceMuted = true;
        cur.voiceBy = s.byRole;
      } else {
        cur.muteUntil = s.until;
        cur.muteBy = s.byRole;
      }
      this.sanctions.set(s.uid, cur);
    }
    for (const r of this.store.ranks()) this.ranks.set(r.uid, r.role);
    for (const a of this.hub.members()) this.addConn(a, -1);
    for (const m of this.store.shardMembers()) {
      this.addConn(m, m.shard);
      this.link(m.shard); // so the next batch reaches every shard that holds viewers
    }
    this.presenceDirty = false;
    this.voice = new VoiceSeats(
      this.store,
      (conn) => this.conns.has(conn),
      (forced, seq) =>
        void pushSfuModeration(this.env as Env & VoiceVars, this.roomId ?? '', forced, seq, () => this.voice.forcedSeq === seq),
    );

    const polls = this.store.recentPolls(ROOM_LIMITS.pollsKept);
    for (const p of polls) if (p.open) this.openPolls.set(p.id, p);
    this.view = {
      history: this.store.recentMessages(ROOM_LIMITS.historySize),
      polls,
      playback: this.store.playback(),
      presence: this.presence(),
      slowModeSec: this.store.getMeta<number>('slow') ?? 0,
      anonymous: this.settings.anonymous,
      voice: this.voice.state(),
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
    if (req.viaToken) this.recordRank(req.uid, req.role);
    if (this.isBanned(req.uid, req.role)) {
      return { ok: false, code: 'banned', reason: 'you are banned from this room', close: CLOSE.forbidden };
    }
    if (!req.viaToken) {
      const refused = this.spendAnonymousJoin(req.address ?? 'unknown', req.newIdentity ?? true, now);
      if (refused) return refused;
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

  /** A ban holds a member only when who set it outranks the rank they join with. */
  private isBanned(uid: string, role: Role): boolean {
    const s = this.sanctions.get(uid);
    return s?.banned === true && sanctionBinds(s.banBy, role);
  }

  /** Remembers the rank a token gives an identity, so moderation checks it while they are away. */
  private recordRank(uid: string, role: Role): void {
    if ((this.ranks.get(uid) ?? 'viewer') === role) return;
    if (role === 'viewer') this.ranks.delete(uid);
    else this.ranks.set(uid, role);
    this.store.setRank(uid, role);
  }

  /** Spends an anonymous join from the address's budgets (core/rooms/room-admission.ts); the refusal, if any. */
  private spendAnonymousJoin(address: string, newIdentity: boolean, now: number): AdmitResult | null {
    const limits = this.anonymousLimits();
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

  override async fetch(request: Request): Promise<Response> {
    const a = admittedUpgrade(request, 'room');
    if (a instanceof Response) return a;
    this.rememberRoom(a.room);
    this.reserved.delete(a.conn);
    // A ban can land between admission and the upgrade.
    if (this.isBanned(a.uid, a.role)) return refuseUpgrade('banned', 'you are banned from this room', CLOSE.forbidden);
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
    const inbound = this.hub.inbound(ws, message, now);
    if (!inbound) return;
    const { who, msg } = inbound;
    switch (msg.type) {
      case 'resync':
        this.hub.sendText(ws, this.stateFrame());
        return;
      case 'react':
        if (!isHostReaction(who.role, msg)) {
          this.addReactions({ [msg.reaction]: 1 });
          return;
        }
      // falls through: a host's reaction at a moment of the stream is the room's to relay
      default: {
        const reply = this.handle(who, msg, now);
        if (reply !== null) this.hub.sendText(ws, reply);
      }
    }
  }

  override async webSocketClose(ws: WebSocket, code: number, reason: string): Promise<void> {
    const who = this.hub.ended(ws, { code, reason });
    if (who) this.removeConn(who.conn);
  }

  override async webSocketError(ws: WebSocket, error: unknown): Promise<void> {
    void error;
    const who = this.hub.ended(ws);
    if (who) this.removeConn(who.conn);
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
      if (text !== null) replies.push({ conn: from.conn, text });
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
      [...this.shards.keys()].map(async (index) => ({
        index,
        counts: await this.shard(index)
          .stats()
          .catch(() => ({})),
      })),
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
  // The rules (core/rooms/room-decisions.ts) decide every room-bound message, wherever the
  // sender is connected; the Room carries out what they decide.

  private handle(from: ConnIdentity, msg: RoomBoundMessage, now: number): string | null {
    const decision = decideRoomMessage(this.rules, from, msg, now);
    let inserted: number | undefined;
    for (const effect of decision.effects) inserted = this.apply(effect, now) ?? inserted;
    return decision.reply === null ? null : replyFrame(decision.reply, inserted);
  }

  /** Carries out one effect; returns the id of the row it inserted, if it inserted one. */
  private apply(e: RoomEffect, now: number): number | undefined {
    switch (e.kind) {
      case 'chat.pace':
        this.lastChatAt.set(e.uid, e.lastAt);
        this.chatBuckets.set(e.uid, e.bucket);
        return;
      case 'chat.insert': {
        const message = this.store.insertMessage(e.message);
        this.pending.push({ kind: 'chat', message });
        this.scheduleFlush();
        return message.id;
      }
      case 'host.reaction':
        this.pending.push({ kind: 'host.reaction', reaction: e.reaction, pdt: e.pdt, name: e.name });
        this.scheduleFlush();
        return;
      case 'chat.delete':
        this.store.deleteMessage(e.id);
        this.pending.push({ kind: 'chat.delete', id: e.id });
        this.scheduleFlush();
        return;
      case 'poll.insert': {
        const poll = this.store.insertPoll(e.poll);
        this.openPolls.set(poll.id, poll);
        this.dirtyPolls.add(poll.id);
        if (poll.closesAt !== null) void this.armAlarm();
        this.scheduleFlush();
        return poll.id;
      }
      case 'poll.vote': {
        this.store.vote(e.pollId, e.uid, e.option);
        const poll = this.openPolls.get(e.pollId);
        if (poll) this.openPolls.set(e.pollId, { ...poll, counts: e.counts });
        this.dirtyPolls.add(e.pollId);
        this.scheduleFlush();
        return;
      }
      case 'poll.close':
        this.closePoll(e.pollId, now);
        void this.armAlarm();
        return;
      case 'sanction.set': {
        this.store.setSanction({ uid: e.uid, kind: e.sanction, until: e.until, byRole: e.by.role }, e.by.uid);
        const cur = this.sanctions.get(e.uid) ?? {};
        if (e.sanction === 'mute') {
          cur.muteUntil = e.until;
          cur.muteBy = e.by.role;
        } else if (e.sanction === 'voice') {
          cur.voiceMuted = true;
          cur.voiceBy = e.by.role;
        } else {
          cur.banned = true;
          cur.banBy = e.by.role;
        }
        this.sanctions.set(e.uid, cur);
        return;
      }
      case 'sanction.lift': {
        this.store.removeSanction(e.uid, e.sanction);
        const cur = this.sanctions.get(e.uid);
        if (cur) {
          if (e.sanction === 'mute') {
            delete cur.muteUntil;
            delete cur.muteBy;
          } else if (e.sanction === 'voice') {
            delete cur.voiceMuted;
            delete cur.voiceBy;
          } else {
            delete cur.banned;
            delete cur.banBy;
          }
          if (cur.muteUntil === undefined && !cur.banned && !cur.voiceMuted) this.sanctions.delete(e.uid);
        }
        return;
      }
      case 'kick':
        this.kick(e.uid, e.code, e.reason, e.close);
        return;
      case 'slow.set':
        this.store.setMeta('slow', e.seconds);
        this.pending.push({ kind: 'slow', seconds: e.seconds });
        this.scheduleFlush();
        return;
      case 'playback.set':
        this.store.setPlayback(e.playback);
        this.pending.push({ kind: 'playback', playback: e.playback });
        this.scheduleFlush();
        return;
      case 'voice.seat':
        this.pending.push(this.voice.take(e.member, e.persist));
        this.scheduleFlush();
        return;
      case 'voice.unseat': {
        const ev = this.voice.leave(e.conn);
        if (ev) this.pending.push(ev);
        this.scheduleFlush();
        return;
      }
      case 'voice.mode':
        this.pending.push(this.voice.setMode(e.mode));
        this.scheduleFlush();
        return;
      case 'voice.pace':
        this.voice.setPace(e.conn, { ...(e.signals ? { signals: e.signals } : {}), ...(e.updates ? { updates: e.updates } : {}) });
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
    const vars = this.env as Env & RoomVars;
    const seat = this.voice.seat(conn);
    if (!seat || !vars.VOICE_SFU_URL || !vars.VOICE_SFU_SECRET) return;
    const exp = Math.floor(Date.now() / 1000) + VOICE_SFU_TOKEN_TTL_SEC;
    const token = await signVoiceSfuToken({ room: this.roomId ?? '', conn, uid: seat.uid, name: seat.name, exp }, vars.VOICE_SFU_SECRET);
    const frame = { type: 'voice.sfu', ...(rid !== undefined ? { rid } : {}), endpoint: vars.VOICE_SFU_URL, token, expiresAt: exp * 1000 };
    this.relay.send(conn, JSON.stringify(frame));
  }

  /** What the rules may read: memory where the Room keeps it, the store for the rest. */
  private readonly rules: RoomView = {
    slowModeSec: () => this.view.slowModeSec,
    sanction: (uid) => this.sanctions.get(uid),
    chatPace: (uid) => ({ lastAt: this.lastChatAt.get(uid), bucket: this.chatBuckets.get(uid) }),
    openPoll: (id) => this.openPolls.get(id),
    pollExists: (id) => this.store.getPoll(id) !== null,
    voteOf: (pollId, uid) => this.store.voteOf(pollId, uid),
    messageLive: (id) => this.store.messageLive(id),
    playback: () => this.store.playback(),
    // The identity's rank, online or not; an older room may know a staff member only online.
    rankOf: (uid) => higherRole(this.ranks.get(uid) ?? 'viewer', this.viewers.get(uid)?.role ?? 'viewer'),
    voiceSeat: (conn) => this.voice.seat(conn),
    voiceSeatOf: (uid) => this.voice.seatOf(uid),
    voiceCount: () => this.voice.count,
    voiceMode: () => this.voice.mode,
    voiceConfig: () => voiceConfigOf(this.env as Env & VoiceVars, this.settings.voiceMeshMax),
    voicePace: (conn) => this.voice.paceOf(conn),
  };

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
      void this.shard(i)
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

  private shard(i: number) {
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
      await this.shard(i).deliver(this.roomId ?? '', frames);
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
      const members = await this.shard(i).members();
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
    // A closed connection gives its voice seat up (and may move the group back to the mesh).
    for (const e of leaveVoice(this.rules, conn)) this.apply(e, Date.now());
    this.held.set(c.shard, (this.held.get(c.shard) ?? 1) - 1);
    const v = this.viewers.get(c.uid);
    if (v && --v.conns <= 0) this.viewers.delete(c.uid);
    return true;
  }

  private stateFrame(): string {
    return JSON.stringify({ type: 'state', epoch: this.epoch, seq: this.seq, state: this.view });
  }

  private anonymousLimits(): AnonymousLimits {
    const vars = this.env as Env & RoomVars;
    return {
      joinsPerMinute:
        this.settings.anonymousJoinsPerMinute ?? positiveInt(vars.ROOM_ANON_JOINS_PER_MINUTE, ANONYMOUS_DEFAULTS.joinsPerMinute),
      idsPerHour: this.settings.anonymousIdsPerHour ?? positiveInt(vars.ROOM_ANON_IDS_PER_HOUR, ANONYMOUS_DEFAULTS.idsPerHour),
    };
  }

  private capacities(): { directCapacity: number; shardCapacity: number; maxShards: number } {
    const vars = this.env as Env & RoomVars;
    const num = positiveInt;
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

function positiveInt(v: string | undefined, fallback: number): number {
  const n = Number(v);
  return Number.isInteger(n) && n > 0 ? n : fallback;
}
