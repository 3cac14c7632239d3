// Room: the one authoritative object per room. It orders and stores chat, counts reactions, runs
// polls, keeps presence, sanctions and the watch party's playback state, and cuts everything
// that happened into one batch frame every 50 ms. A small room's viewers connect to it directly;
// past `directCapacity` sockets it places new viewers on RoomShard objects, which forward what
// their viewers send (ingest) and fan its batches out (deliver). See docs/rooms.md.
// This file is the shell that wires sockets, storage and the rules together; each part it holds
// is a module beside it: room-placement (admission), room-roster (presence), room-moderation,
// room-polls, room-voice, room-batches (the batch frames), room-shard-links, room-config.
import { DurableObject } from 'cloudflare:workers';
import type { Env } from '../workers/env.ts';
import {
  CLOSE,
  ROOM_LIMITS,
  errorFrame,
  isHostReaction,
  type ErrorCode,
  type RoomBoundMessage,
  type RoomSnapshot,
} from '../core/rooms/room-protocol.ts';
import { decideRoomMessage, replyFrame, type RoomEffect, type RoomView } from '../core/rooms/room-decisions.ts';
import { leaveVoice } from '../core/rooms/voice-decisions.ts';
import type { BucketState } from '../core/rooms/room-token-bucket.ts';
import type { AdmitRequest, AdmitResult, IngestBatch, IngestResult, RoomInfo } from '../core/contracts/room-rpc.ts';
import { shardName, type ConnIdentity } from '../core/contracts/room-admission.ts';
import { RoomStore, type RoomSettings } from './room-store.ts';
import { anonymousLimits, roomCapacities, type RoomVars } from './room-config.ts';
import { Placement } from './room-placement.ts';
import { Roster } from './room-roster.ts';
import { Moderation } from './room-moderation.ts';
import { RoomPolls } from './room-polls.ts';
import { RoomVoice } from './room-voice.ts';
import { ShardLinks } from './room-shard-links.ts';
import { RoomBatches } from './room-batches.ts';
import { FrameRing, SocketHub, admittedUpgrade, type Meter } from './room-sockets.ts';
import { closeQuietly, refuseUpgrade, upgradeResponse } from '../workers/websocket-answers.ts';

export class Room extends DurableObject<Env> {
  private readonly store: RoomStore;
  private readonly hub: SocketHub;
  private readonly ring = new FrameRing();
  private roomId: string | null;
  private settings: RoomSettings;

  private readonly roster = new Roster();
  private readonly placement: Placement;
  private readonly moderation: Moderation;
  private readonly polls: RoomPolls;
  private readonly voice: RoomVoice;
  private readonly links = new ShardLinks(
    (i) => this.shard(i),
    () => this.roomId ?? '',
  );
  private readonly lastChatAt = new Map<string, number>();
  private readonly chatBuckets = new Map<string, BucketState>();
  /** What the rules read: memory where the Room keeps it, the store for the rest. */
  private readonly rules: RoomView;

  private readonly batches: RoomBatches;

  constructor(ctx: DurableObjectState, env: Env) {
    super(ctx, env);
    // Everything here is synchronous SQLite reads: the constructor runs on every wake from
    // hibernation, so it rebuilds memory from storage and sockets without awaiting anything.
    this.store = new RoomStore(ctx.storage.sql);
    this.hub = new SocketHub(ctx);
    this.roomId = this.store.getMeta<string>('room') ?? null;
    this.settings = this.store.getMeta<RoomSettings>('settings') ?? { anonymous: true };

    this.moderation = new Moderation(this.store);
    this.placement = new Placement(this.store);
    for (const a of this.hub.members()) this.roster.add(a, -1);
    for (const m of this.store.shardMembers()) {
      this.roster.add(m, m.shard);
      this.links.link(m.shard); // so the next batch reaches every shard that holds viewers
    }
    // After the roster: a seat whose connection did not survive the sleep is dropped.
    this.voice = new RoomVoice({
      store: this.store,
      holderOf: (conn) => this.roster.holderOf(conn),
      sendHere: (conn, text) => {
        const ws = this.hub.byConn(conn);
        if (ws) this.hub.sendText(ws, text);
      },
      sendToShard: async (i, frames) => {
        await this.shard(i).relay(frames);
      },
      roomId: () => this.roomId ?? '',
      vars: () => this.env as Env & RoomVars,
      roomMeshMax: () => this.settings.voiceMeshMax,
      announce: (event) => {
        if (event) this.batches.add(event);
        else this.batches.flushSoon();
      },
    });
    this.polls = new RoomPolls(this.store);
    this.rules = {
      slowModeSec: () => this.batches.state.slowModeSec,
      sanction: (uid) => this.moderation.sanction(uid),
      chatPace: (uid) => ({ lastAt: this.lastChatAt.get(uid), bucket: this.chatBuckets.get(uid) }),
      openPoll: (id) => this.polls.openPoll(id),
      pollExists: (id) => this.store.getPoll(id) !== null,
      voteOf: (pollId, uid) => this.store.voteOf(pollId, uid),
      messageLive: (id) => this.store.messageLive(id),
      playback: () => this.store.playback(),
      rankOf: (uid) => this.moderation.rankOf(uid, this.roster.onlineRole(uid)),
      ...this.voice.view,
    };

    const state: RoomSnapshot = {
      history: this.store.recentMessages(ROOM_LIMITS.historySize),
      polls: this.polls.load(),
      playback: this.store.playback(),
      presence: this.roster.presence(),
      slowModeSec: this.store.getMeta<number>('slow') ?? 0,
      anonymous: this.settings.anonymous,
      voice: this.voice.state(),
    };
    const { store, hub, ring, links, roster, polls } = this;
    this.batches = new RoomBatches({ store, hub, ring, links, roster, late: () => polls.drain() }, state);
  }

  // ---------------------------------------------------------------------------------------------
  // Admission (RPC from the Worker) and direct connections (fetch from the Worker).

  /**
   * Decides whether a viewer may join and which object will hold the socket: the Room itself
   * while the room is small, otherwise the first shard with room to spare (room-placement.ts).
   */
  admit(req: AdmitRequest): AdmitResult {
    return this.hub.meter.time('admit', () => {
      this.rememberRoom(req.room);
      const placed = this.placement.decide(
        req,
        {
          anonymous: this.settings.anonymous,
          moderation: this.moderation,
          held: this.roster.load,
          capacities: roomCapacities(this.settings, this.env),
          anonymousLimits: anonymousLimits(this.settings, this.env),
        },
        Date.now(),
      );
      if (placed.ok && placed.shard >= 0) this.links.link(placed.shard);
      return placed;
    });
  }

  override async fetch(request: Request): Promise<Response> {
    const a = admittedUpgrade(request, 'room');
    if (a instanceof Response) return a;
    this.rememberRoom(a.room);
    this.placement.arrived(a.conn);
    // A ban can land between admission and the upgrade.
    if (this.moderation.isBanned(a.uid, a.role)) return refuseUpgrade('banned', 'you are banned from this room', CLOSE.forbidden);
    const now = Date.now();
    const joinStart = performance.now();
    const pair = new WebSocketPair();
    const client = pair[0];
    const server = pair[1];
    this.hub.accept(server, { conn: a.conn, uid: a.uid, name: a.name, role: a.role, room: a.room, shard: -1, joinedAt: now });
    this.addConn(a, -1);
    this.hub.welcome(server, a, this.batches.current, this.ring, now);
    this.batches.flushSoon();
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
        this.hub.sendText(ws, JSON.stringify({ type: 'state', ...this.batches.current }));
        return;
      case 'react':
        if (!isHostReaction(who.role, msg)) {
          this.batches.addReactions({ [msg.reaction]: 1 });
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
    return this.batches.current;
  }

  /** Applies a shard's batch of joins, leaves, reactions and messages; returns the replies. */
  ingest(room: string, batch: IngestBatch): IngestResult {
    const items = batch.joins.length + batch.leaves.length + batch.messages.length;
    return this.hub.meter.time('ingest', () => this.applyIngest(room, batch), items);
  }

  private applyIngest(room: string, batch: IngestBatch): IngestResult {
    this.rememberRoom(room);
    const now = Date.now();
    this.links.link(batch.shard);
    if (batch.joins.length) {
      for (const j of batch.joins) {
        this.placement.arrived(j.conn);
        this.addConn(j, batch.shard);
      }
      this.store.addShardMembers(batch.joins.map((j) => ({ ...j, shard: batch.shard })));
    }
    if (batch.leaves.length) {
      for (const c of batch.leaves) this.removeConn(c);
      this.store.removeShardMembers(batch.leaves);
    }
    this.batches.addReactions(batch.reactions);
    const replies: IngestResult['replies'] = [];
    for (const { from, msg } of batch.messages) {
      const text = this.handle(from, msg, now);
      if (text !== null) replies.push({ conn: from.conn, text });
    }
    if (this.links.shouldReconcile(batch.shard, this.roster.heldBy(batch.shard), batch.total, now)) void this.reconcile(batch.shard);
    this.batches.flushSoon();
    return { replies };
  }

  /** Where this room's time goes, and each shard's (for operators and the benchmark). */
  async stats(): Promise<{ room: Meter['counts']; since: number; shards: Array<{ index: number; counts: Meter['counts'] }> }> {
    const shards = await Promise.all(
      this.links.indices().map(async (index) => ({
        index,
        counts: await this.shard(index)
          .stats()
          .catch(() => ({})),
      })),
    );
    return { room: this.hub.meter.counts, since: this.hub.meter.since, shards };
  }

  info(): RoomInfo {
    return {
      room: this.roomId,
      ...this.roster.counts(),
      anonymous: this.settings.anonymous,
      seq: this.batches.current.seq,
    };
  }

  configure(room: string, patch: Partial<RoomSettings>): RoomSettings {
    this.rememberRoom(room);
    this.settings = { ...this.settings, ...patch };
    this.store.setMeta('settings', this.settings);
    if (patch.anonymous !== undefined && patch.anonymous !== this.batches.state.anonymous) {
      this.batches.add({ kind: 'settings', anonymous: patch.anonymous });
      this.batches.flushNow(); // so the very next joiner is told, not one 50 ms later
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
        this.batches.add({ kind: 'chat', message });
        return message.id;
      }
      case 'host.reaction':
        this.batches.add({ kind: 'host.reaction', reaction: e.reaction, pdt: e.pdt, name: e.name });
        return;
      case 'chat.delete':
        this.store.deleteMessage(e.id);
        this.batches.add({ kind: 'chat.delete', id: e.id });
        return;
      case 'poll.insert': {
        const poll = this.polls.insert(e);
        if (poll.closesAt !== null) void this.armAlarm();
        this.batches.flushSoon();
        return poll.id;
      }
      case 'poll.vote':
        this.polls.vote(e);
        this.batches.flushSoon();
        return;
      case 'poll.close':
        this.closePoll(e.pollId, now);
        void this.armAlarm();
        return;
      case 'sanction.set':
        this.moderation.set(e);
        return;
      case 'sanction.lift':
        this.moderation.lift(e);
        return;
      case 'kick':
        this.kick(e.uid, e.code, e.reason, e.close);
        return;
      case 'slow.set':
        this.store.setMeta('slow', e.seconds);
        this.batches.add({ kind: 'slow', seconds: e.seconds });
        return;
      case 'playback.set':
        this.store.setPlayback(e.playback);
        this.batches.add({ kind: 'playback', playback: e.playback });
        return;
      case 'voice.seat':
      case 'voice.unseat':
      case 'voice.mode':
      case 'voice.pace':
      case 'voice.relay':
      case 'voice.sfu':
        this.voice.apply(e);
        return;
    }
  }

  private closePoll(id: number, now: number): boolean {
    if (!this.polls.close(id, now)) return false;
    this.batches.flushSoon();
    return true;
  }

  /** Closes every viewer's socket that belongs to `uid`, here and on every shard. */
  private kick(uid: string, code: ErrorCode, reason: string, closeCode: number): void {
    const frame = errorFrame(code, reason);
    for (const ws of this.hub.byUid(uid)) {
      this.hub.sendText(ws, frame);
      closeQuietly(ws, closeCode, code);
    }
    for (const i of this.roster.shardsOf(uid)) {
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
  // Connections: the roster, kept in step with the Room's sockets and its shards' lists.

  private addConn(c: ConnIdentity, shard: number): void {
    if (this.roster.add(c, shard)) this.batches.presenceChanged();
  }

  private removeConn(conn: string): void {
    if (!this.removeConnQuiet(conn)) return;
    this.batches.presenceChanged();
    this.batches.flushSoon();
  }

  private shard(i: number) {
    return this.env.ROOM_SHARD.getByName(shardName(this.roomId ?? 'unknown', i));
  }

  /** Replaces what the room believes a shard holds with what the shard says it holds. */
  private async reconcile(i: number): Promise<void> {
    try {
      const members = await this.shard(i).members();
      for (const conn of this.roster.connsOn(i)) this.removeConnQuiet(conn);
      for (const m of members) this.addConn(m, i);
      this.store.replaceShardMembers(i, members);
      this.batches.presenceChanged();
      this.batches.flushSoon();
    } catch (err) {
      console.error(JSON.stringify({ level: 'warn', msg: 'room: reconcile failed', shard: i, error: String(err) }));
    }
  }

  /** Forgets a connection without announcing it; false if it was not known. */
  private removeConnQuiet(conn: string): boolean {
    if (!this.roster.remove(conn)) return false;
    // A closed connection gives its voice seat up (and may move the group back to the mesh).
    for (const e of leaveVoice(this.rules, conn)) this.apply(e, Date.now());
    return true;
  }

  private rememberRoom(room: string): void {
    if (this.roomId === null) {
      this.roomId = room;
      this.store.setMeta('room', room);
    }
  }
}
