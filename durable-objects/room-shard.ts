// RoomShard: holds a bounded share of a big room's sockets (ROOM_SHARD_CAPACITY, e.g. 2,000).
// It answers what it can by itself — clock pings, resyncs, and the welcome of a joining viewer
// from its mirror of the room's state — counts its viewers' reactions, forwards everything else
// to the Room in one call at a time (ingest), and fans the Room's batch frames out to its
// sockets (deliver). The Room stays the only authority; a shard can be rebuilt from it at any time.
import { DurableObject } from 'cloudflare:workers';
import type { Env } from '../workers/env.ts';
import { REACTIONS, isHostReaction, type RoomBoundMessage, type RoomSnapshot } from '../core/rooms/room-protocol.ts';
import { applyEvents, type BatchBody } from '../core/rooms/room-state.ts';
import type { IngestBatch } from '../core/contracts/room-rpc.ts';
import { FrameRing, SocketHub, admittedUpgrade, type Attachment } from './room-sockets.ts';
import type { ConnIdentity } from '../core/contracts/room-admission.ts';
import { closeQuietly, refuseUpgrade, upgradeResponse } from '../workers/websocket-answers.ts';

/** Reactions are counted here and forwarded at most this often. */
const REACTIONS_FORWARD_MS = 100;

interface Mirror {
  epoch: string;
  seq: number;
  state: RoomSnapshot;
}

interface Outbox {
  joins: ConnIdentity[];
  leaves: string[];
  reactions: Record<string, number>;
  reactionCount: number;
  messages: Array<{ from: ConnIdentity; msg: RoomBoundMessage }>;
}

const emptyOutbox = (): Outbox => ({ joins: [], leaves: [], reactions: {}, reactionCount: 0, messages: [] });

export class RoomShard extends DurableObject<Env> {
  private readonly hub: SocketHub;
  private readonly ring = new FrameRing();
  private roomId: string | null = null;
  private index = -1;
  private mirror: Mirror | null = null;
  /** The last batch forwarded to this shard's sockets (unknown after a wake). */
  private forwarded: { epoch: string; seq: number } | null = null;
  private mirrorLoading: Promise<Mirror> | null = null;
  private out: Outbox = emptyOutbox();
  private sending = false;
  private failures = 0;
  private outTimer: ReturnType<typeof setTimeout> | null = null;

  constructor(ctx: DurableObjectState, env: Env) {
    super(ctx, env);
    this.hub = new SocketHub(ctx);
    // After a wake, which room this shard serves is on any of its sockets' attachments.
    const any = ctx.getWebSockets()[0];
    const first = any ? this.hub.identity(any) : null;
    if (first) {
      this.roomId = first.room;
      this.index = first.shard;
    }
  }

  override async fetch(request: Request): Promise<Response> {
    const a = admittedUpgrade(request, 'shard');
    if (a instanceof Response) return a;
    this.roomId = a.room;
    this.index = a.shard;
    let mirror: Mirror;
    try {
      mirror = await this.ensureMirror();
    } catch {
      // 1013 "try again later": the client's reconnect backoff takes it from here.
      return refuseUpgrade('unavailable', 'the room is not reachable; retrying', 1013);
    }
    // From here to the return nothing awaits, so the welcome (at mirror.seq) and the next
    // delivered batch (mirror.seq + 1) cannot cross.
    const now = Date.now();
    const joinStart = performance.now();
    const pair = new WebSocketPair();
    const client = pair[0];
    const server = pair[1];
    this.hub.accept(server, { conn: a.conn, uid: a.uid, name: a.name, role: a.role, room: a.room, shard: a.shard, joinedAt: now });
    this.hub.welcome(server, a, this.mirror ?? mirror, this.ring, now);
    this.out.joins.push({ conn: a.conn, uid: a.uid, name: a.name, role: a.role });
    this.sendSoon(0);
    this.hub.meter.add('join', performance.now() - joinStart);
    return upgradeResponse(client);
  }

  override async webSocketMessage(ws: WebSocket, message: string | ArrayBuffer): Promise<void> {
    // Clock pings are answered by the hub, here, not at the Room: they need no authority.
    const inbound = this.hub.inbound(ws, message, Date.now());
    if (!inbound) return;
    const { who, msg } = inbound;
    this.learnRoom(who);
    switch (msg.type) {
      case 'resync': {
        const m = await this.ensureMirror().catch(() => null);
        if (m) this.hub.sendText(ws, JSON.stringify({ type: 'state', epoch: m.epoch, seq: m.seq, state: m.state }));
        return;
      }
      case 'react':
        if (!isHostReaction(who.role, msg)) {
          this.out.reactions[msg.reaction] = (this.out.reactions[msg.reaction] ?? 0) + 1;
          this.out.reactionCount++;
          this.sendSoon(REACTIONS_FORWARD_MS);
          return;
        }
      // falls through: a host's reaction at a moment of the stream goes to the Room as a message
      default:
        this.out.messages.push({ from: { conn: who.conn, uid: who.uid, name: who.name, role: who.role }, msg });
        this.sendSoon(0);
    }
  }

  override async webSocketClose(ws: WebSocket, code: number, reason: string): Promise<void> {
    this.leave(this.hub.ended(ws, { code, reason }));
  }

  override async webSocketError(ws: WebSocket, error: unknown): Promise<void> {
    void error;
    this.leave(this.hub.ended(ws));
  }

  private leave(who: Attachment | null): void {
    if (!who) return;
    this.learnRoom(who);
    this.out.leaves.push(who.conn);
    this.sendSoon(0);
  }

  /** After a wake, which room and shard this is comes with the first socket that speaks. */
  private learnRoom(who: Attachment): void {
    if (this.roomId === null) {
      this.roomId = who.room;
      this.index = who.shard;
    }
  }

  // ---------------------------------------------------------------------------------------------
  // RPC from the Room.

  /**
   * Fans out the Room's batch frames (already serialised: each is sent as is to every socket).
   * The Room sends them in order, one call at a time, so they are forwarded even when this
   * instance has just been rebuilt and knows nothing yet. The mirror (used only to greet joiners
   * and answer resyncs) follows along when it can and is reloaded lazily when it cannot. If
   * frames were lost on the way (a gap), every socket here gets a fresh state instead.
   */
  async deliver(room: string, frames: Array<{ seq: number; text: string }>): Promise<void> {
    this.hub.meter.add('deliver', 0, frames.length);
    if (this.roomId === null && room) this.roomId = room;
    for (const f of frames) {
      const body = JSON.parse(f.text) as BatchBody;
      const last = this.forwarded;
      if (last && body.epoch === last.epoch && f.seq <= last.seq) continue; // a repeat
      if (last && (body.epoch !== last.epoch || f.seq !== last.seq + 1)) {
        const m = await this.reloadMirror();
        this.hub.release(); // what is already queued goes first, then the state
        this.hub.broadcast(JSON.stringify({ type: 'state', epoch: m.epoch, seq: m.seq, state: m.state }));
        this.forwarded = { epoch: m.epoch, seq: m.seq };
        if (m.epoch === body.epoch && f.seq <= m.seq) continue; // the state already covers it
      }
      this.forwarded = { epoch: body.epoch, seq: f.seq };
      const m = this.mirror;
      if (m && m.epoch === body.epoch && f.seq === m.seq + 1) {
        m.state = applyEvents(m.state, body.events);
        m.seq = f.seq;
        this.ring.push(m.epoch, f.seq, f.text);
      } else if (m && (m.epoch !== body.epoch || f.seq > m.seq + 1)) {
        this.mirror = null; // behind: rebuilt from the Room when next needed
      }
      // Paced: a busy shard sends one merged frame per socket for several batches.
      this.hub.publish(body, f.text);
    }
  }

  /** Closes every socket of a viewer (a ban), after telling them why. */
  kick(uid: string, frame: string, closeCode: number): number {
    const sockets = this.hub.byUid(uid);
    for (const ws of sockets) {
      this.hub.sendText(ws, frame);
      closeQuietly(ws, closeCode, 'banned');
    }
    return sockets.length;
  }

  /** Frames the Room addresses to single connections here (relayed voice signalling), in order. */
  relay(frames: Array<{ conn: string; text: string }>): number {
    let sent = 0;
    for (const f of frames) {
      const ws = this.hub.byConn(f.conn);
      if (ws && this.hub.sendText(ws, f.text)) sent++;
    }
    return sent;
  }

  stats(): SocketHub['meter']['counts'] {
    return this.hub.meter.counts;
  }

  /** Who this shard holds, for the Room to reconcile its presence. */
  members(): ConnIdentity[] {
    return this.hub.members().map((a) => ({ conn: a.conn, uid: a.uid, name: a.name, role: a.role }));
  }

  // ---------------------------------------------------------------------------------------------

  private room() {
    return this.env.ROOM.getByName(this.roomId ?? 'unknown');
  }

  private ensureMirror(): Promise<Mirror> {
    if (this.mirror) return Promise.resolve(this.mirror);
    return this.reloadMirror();
  }

  /** One snapshot call at a time, shared by everyone waiting for it. */
  private reloadMirror(): Promise<Mirror> {
    if (!this.mirrorLoading) {
      this.mirrorLoading = (async () => {
        try {
          const snap = await this.room().snapshot();
          const m: Mirror = { epoch: snap.epoch, seq: snap.seq, state: snap.state };
          if (!this.mirror || this.mirror.epoch !== m.epoch || this.mirror.seq <= m.seq) {
            this.mirror = m;
            this.ring.clear(m.epoch);
          }
          return this.mirror;
        } finally {
          this.mirrorLoading = null;
        }
      })();
    }
    return this.mirrorLoading;
  }

  /**
   * Forwards the outbox to the Room, one call at a time: while a call is in flight new items
   * gather and go together in the next, so a busy shard makes fewer, larger calls. Joins, leaves
   * and messages go at once; reactions alone wait up to 100 ms to be counted together.
   */
  private sendSoon(delayMs: number): void {
    if (this.sending) return;
    if (this.outTimer !== null) {
      if (delayMs > 0) return;
      clearTimeout(this.outTimer);
    }
    this.outTimer = setTimeout(() => {
      this.outTimer = null;
      void this.sendOut();
    }, delayMs);
  }

  private async sendOut(): Promise<void> {
    const o = this.out;
    if (this.sending || (o.joins.length === 0 && o.leaves.length === 0 && o.reactionCount === 0 && o.messages.length === 0)) return;
    this.out = emptyOutbox();
    this.sending = true;
    const total = this.hub.size;
    const reactions: Record<string, number> = {};
    for (const r of REACTIONS) if (o.reactions[r]) reactions[r] = o.reactions[r]!;
    const batch: IngestBatch = { shard: this.index, joins: o.joins, leaves: o.leaves, reactions, messages: o.messages, total };
    const t = performance.now();
    try {
      const res = await this.room().ingest(this.roomId ?? '', batch);
      this.hub.meter.add('ingest call', performance.now() - t, batch.joins.length + batch.leaves.length + batch.messages.length);
      this.failures = 0;
      for (const r of res.replies) {
        const ws = this.hub.byConn(r.conn);
        if (ws) this.hub.sendText(ws, r.text);
      }
    } catch (err) {
      this.failures++;
      console.error(
        JSON.stringify({ level: 'warn', msg: 'room shard: ingest failed', shard: this.index, failures: this.failures, error: String(err) }),
      );
      // Presence changes and reaction counts are kept for the next call. Messages are answered
      // with an error after a few failures rather than held: the sender can retry, and a held
      // chat message arriving minutes late would be worse than none.
      this.out.joins.unshift(...o.joins);
      this.out.leaves.unshift(...o.leaves);
      for (const [r, n] of Object.entries(o.reactions)) this.out.reactions[r] = (this.out.reactions[r] ?? 0) + n;
      this.out.reactionCount += o.reactionCount;
      if (this.failures < 3) this.out.messages.unshift(...o.messages);
      else {
        for (const { from, msg } of o.messages) {
          const ws = this.hub.byConn(from.conn);
          if (ws)
            this.hub.sendText(
              ws,
              JSON.stringify({
                type: 'error',
                ...(msg.rid ? { rid: msg.rid } : {}),
                code: 'unavailable',
                reason: 'the room did not answer; try again',
              }),
            );
        }
      }
    } finally {
      this.sending = false;
    }
    const pending = this.out.joins.length + this.out.leaves.length + this.out.messages.length;
    if (pending > 0) this.sendSoon(this.failures ? 50 * 2 ** Math.min(this.failures, 5) : 0);
    else if (this.out.reactionCount > 0) this.sendSoon(REACTIONS_FORWARD_MS);
  }
}
