// The socket side shared by Room (for a small room's own viewers) and RoomShard (for a big room's
// share of viewers): accepting hibernatable sockets, who each socket is, admission of inbound
// frames (size, rate, schema), broadcast of pre-serialised frames, and the recent-frame ring that
// lets a reconnecting viewer resume without a full snapshot.
import {
  CLOSE,
  ROOM_PROTOCOL_VERSION,
  errorFrame,
  parseClientFrame,
  type ClientMessage,
  type RoomSnapshot,
} from '../core/rooms/room-protocol.ts';
import { ROOM_RATE_LIMITS, fullBucket, takeToken, type BucketState } from '../core/rooms/room-token-bucket.ts';
import { mergeBatches, type BatchBody } from '../core/rooms/room-state.ts';
import { readAdmission, type Admission, type ConnIdentity } from '../core/contracts/room-admission.ts';
import { closeQuietly } from '../workers/websocket-answers.ts';

/**
 * After a broadcast that took B ms, the next waits at least PACE_FACTOR × B: sending can then
 * take at most half of a holder's time, however many sockets it holds and however busy the
 * room is. Batches that arrive meanwhile go out merged, one frame per socket.
 */
export const PACE_FACTOR = 1;

/** Per-connection state that survives hibernation (kept small: the limit is 16 KiB). */
export interface Attachment extends ConnIdentity {
  room: string;
  shard: number;
  joinedAt: number;
}

/**
 * In-memory per-connection state. The rate bucket lives here rather than in the attachment:
 * rewriting the attachment on every frame costs a serialisation, and an object only hibernates
 * after 10 s without events, by which time a bucket has refilled anyway — so losing it to
 * hibernation loses nothing.
 */
interface Live {
  bucket: BucketState;
  strikes: number;
  lastRefusalAt: number;
}

/** Recent batch frames by sequence number, for resuming viewers. Bounded by count and bytes. */
export class FrameRing {
  private frames: Array<{ seq: number; text: string }> = [];
  private bytes = 0;
  private readonly maxFrames: number;
  private readonly maxBytes: number;
  epoch = '';

  constructor(maxFrames = 600, maxBytes = 4 * 1024 * 1024) {
    this.maxFrames = maxFrames;
    this.maxBytes = maxBytes;
  }

  push(epoch: string, seq: number, text: string): void {
    if (epoch !== this.epoch) this.clear(epoch);
    this.frames.push({ seq, text });
    this.bytes += text.length;
    while (this.frames.length > this.maxFrames || (this.bytes > this.maxBytes && this.frames.length > 1)) {
      this.bytes -= this.frames.shift()!.text.length;
    }
  }

  clear(epoch: string): void {
    this.epoch = epoch;
    this.frames = [];
    this.bytes = 0;
  }

  /**
   * The frames after `seq` if the ring still holds all of them (an empty list when the viewer is
   * current), or null when a snapshot is needed instead.
   */
  since(epoch: string, seq: number, currentSeq: number): string[] | null {
    if (epoch !== this.epoch) return null;
    if (seq > currentSeq) return null;
    if (seq === currentSeq) return [];
    const first = this.frames[0];
    if (!first || first.seq > seq + 1) return null;
    return this.frames.filter((f) => f.seq > seq).map((f) => f.text);
  }
}

/**
 * Where an object's time goes: calls, milliseconds inside them and items handled, per activity.
 * In memory only (lost on eviction); read through `stats()` by operators and the benchmark.
 */
export class Meter {
  readonly since = Date.now();
  readonly counts: Record<string, { n: number; ms: number; items: number }> = {};

  time<T>(name: string, fn: () => T, items = 0): T {
    const t = performance.now();
    try {
      return fn();
    } finally {
      this.add(name, performance.now() - t, items);
    }
  }

  add(name: string, ms: number, items = 0): void {
    const c = (this.counts[name] ??= { n: 0, ms: 0, items: 0 });
    c.n++;
    c.ms += ms;
    c.items += items;
  }
}

export class SocketHub {
  private readonly ctx: DurableObjectState;
  private readonly live = new WeakMap<WebSocket, Live>();
  /**
   * The open sockets, kept here rather than asked of the runtime on every broadcast:
   * `getWebSockets()` builds a fresh array of wrappers each call, which costs as much as a
   * send per socket. Rebuilt from the runtime after every wake (this constructor).
   */
  private readonly open = new Set<WebSocket>();
  /** Batches waiting for the pacer, and what recently greeted sockets already have (release). */
  private paced: Array<{ body: BatchBody; text: string }> = [];
  private readonly fresh = new Map<WebSocket, number>();
  private paceTimer: ReturnType<typeof setTimeout> | null = null;
  private nextSendAt = 0;
  readonly meter = new Meter();

  constructor(ctx: DurableObjectState) {
    this.ctx = ctx;
    for (const ws of ctx.getWebSockets()) if (ws.readyState === 1) this.open.add(ws);
  }

  /** Sockets this object holds that are open (as far as it has been told). */
  get size(): number {
    return this.open.size;
  }

  /**
   * Accepts through the hibernation API: the runtime, not this object, holds the socket, so the
   * object can be evicted while thousands of viewers stay connected and is rebuilt (constructor,
   * then the handler) when one of them speaks. Tags let us find a viewer's sockets after a wake.
   */
  accept(ws: WebSocket, a: Attachment): void {
    this.ctx.acceptWebSocket(ws, [`c:${a.conn}`, `u:${a.uid}`]);
    ws.serializeAttachment(a);
    this.open.add(ws);
  }

  /** Forgets a socket that closed or failed. */
  drop(ws: WebSocket): void {
    this.open.delete(ws);
    this.fresh.delete(ws);
  }

  identity(ws: WebSocket): Attachment | null {
    try {
      return (ws.deserializeAttachment() as Attachment | null) ?? null;
    } catch {
      return null;
    }
  }

  /**
   * Admits one inbound frame: the rate bucket is checked before anything is parsed, so a flood
   * costs a few comparisons per frame and never the work of the messages it carries. Refusals
   * are answered in-band (at most one a second while a flood lasts), and a connection that keeps
   * flooding is closed. Returns the validated message, or null when it was answered here.
   */
  receive(ws: WebSocket, frame: string | ArrayBuffer, now: number): ClientMessage | null {
    this.meter.add('frame in', 0, 1);
    let live = this.live.get(ws);
    if (!live) {
      live = { bucket: fullBucket(ROOM_RATE_LIMITS.connection, now), strikes: 0, lastRefusalAt: 0 };
      this.live.set(ws, live);
    }
    if (!takeToken(ROOM_RATE_LIMITS.connection, live.bucket, now)) {
      live.strikes++;
      if (live.strikes >= ROOM_RATE_LIMITS.strikesBeforeClose) {
        this.sendText(ws, errorFrame('rate_limited', 'too many messages; disconnected'));
        closeQuietly(ws, CLOSE.policy, 'rate limit');
      } else if (now - live.lastRefusalAt >= 1000) {
        live.lastRefusalAt = now;
        this.sendText(ws, errorFrame('rate_limited', 'too many messages; slow down'));
      }
      return null;
    }
    live.strikes = 0;
    const parsed = parseClientFrame(frame);
    if (!parsed.ok) {
      this.sendText(ws, errorFrame(parsed.code, parsed.reason, parsed.rid));
      return null;
    }
    return parsed.message;
  }

  /**
   * The front door both holders share: admits a frame (`receive`), finds who sent it (a socket
   * without an identity is closed), and answers clock pings itself — a ping needs no authority,
   * only a quick reply, stamped `t1` at receipt (`now`) and `t2` as it leaves.
   */
  inbound(
    ws: WebSocket,
    frame: string | ArrayBuffer,
    now: number,
  ): { who: Attachment; msg: Exclude<ClientMessage, { type: 'ping' }> } | null {
    const msg = this.receive(ws, frame, now);
    if (!msg) return null;
    const who = this.identity(ws);
    if (!who) {
      closeQuietly(ws, CLOSE.policy, 'unknown connection');
      return null;
    }
    if (msg.type === 'ping') {
      this.sendText(ws, JSON.stringify({ type: 'pong', t0: msg.t0, t1: now, t2: Date.now() }));
      return null;
    }
    return { who, msg };
  }

  /**
   * A socket closed (`close` given: its code and reason) or failed: forgets it, answers the close,
   * and returns who it was so the holder can record the leave. One handler for Room and shard.
   */
  ended(ws: WebSocket, close?: { code: number; reason: string }): Attachment | null {
    this.drop(ws);
    const who = this.identity(ws);
    if (close) reciprocateClose(ws, close.code, close.reason);
    return who;
  }

  /** Sends one already-serialised frame to every open socket; returns how many it reached. */
  broadcast(text: string): number {
    const t = performance.now();
    let n = 0;
    for (const ws of this.open) {
      try {
        ws.send(text);
        n++;
      } catch {
        this.open.delete(ws); // closing or closed: its close event will follow
      }
    }
    this.meter.add('broadcast', performance.now() - t, n);
    return n;
  }

  /**
   * Sends a batch to every socket, paced by the cost of the previous broadcast (PACE_FACTOR):
   * at once when the holder is idle, otherwise merged with the batches that follow it.
   */
  publish(body: BatchBody, text: string): void {
    this.paced.push({ body, text });
    if (this.paceTimer !== null) return;
    const wait = this.nextSendAt - performance.now();
    if (wait <= 0) this.release();
    else this.paceTimer = setTimeout(() => this.release(), wait);
  }

  /** Sends whatever the pacer holds now (before a state frame, which must not overtake it). */
  release(): void {
    if (this.paceTimer !== null) clearTimeout(this.paceTimer);
    this.paceTimer = null;
    const batches = this.paced;
    this.paced = [];
    if (batches.length === 0) return;
    const text = batches.length === 1 ? batches[0]!.text : mergeBatches(batches.map((b) => b.body));
    const t = performance.now();
    if (this.fresh.size === 0) this.broadcast(text);
    else {
      // Sockets greeted after some of these batches were cut already have them: send each only
      // the part it lacks, so a joiner never sees a batch twice.
      const last = batches[batches.length - 1]!.body.seq;
      for (const ws of this.open) {
        const seen = this.fresh.get(ws);
        if (seen === undefined) this.sendText(ws, text);
        else if (seen < last) {
          const rest = batches.filter((b) => b.body.seq > seen);
          this.sendText(ws, rest.length === 1 ? rest[0]!.text : mergeBatches(rest.map((b) => b.body)));
          this.fresh.delete(ws);
        }
      }
    }
    this.nextSendAt = performance.now() + (performance.now() - t) * PACE_FACTOR;
    if (batches.length > 1) this.meter.add('merged', 0, batches.length);
  }

  sendText(ws: WebSocket, text: string): boolean {
    // Sockets the runtime lists can already be closing; sending to them throws.
    try {
      ws.send(text);
      return true;
    } catch {
      return false;
    }
  }

  byConn(conn: string): WebSocket | undefined {
    return this.ctx.getWebSockets(`c:${conn}`)[0];
  }

  byUid(uid: string): WebSocket[] {
    return this.ctx.getWebSockets(`u:${uid}`);
  }

  /** Open sockets and who they are (used to rebuild presence after a wake). */
  members(): Attachment[] {
    const out: Attachment[] = [];
    for (const ws of this.ctx.getWebSockets()) {
      if (ws.readyState !== 1) continue;
      const a = this.identity(ws);
      if (a) out.push(a);
    }
    return out;
  }

  /**
   * Greets a new socket: a resume (just the missed frames) when the ring still covers the
   * viewer's last sequence number, otherwise a full snapshot.
   */
  welcome(ws: WebSocket, a: Admission, view: { epoch: string; seq: number; state: RoomSnapshot }, ring: FrameRing, now: number): void {
    const you = { uid: a.uid, name: a.name, role: a.role, conn: a.conn };
    const base = { type: 'welcome', v: ROOM_PROTOCOL_VERSION, room: a.room, you, ...(a.session ? { session: a.session } : {}) };
    const missed = a.resume ? ring.since(a.resume.epoch, a.resume.seq, view.seq) : null;
    // Batches up to view.seq may still reach this holder (queued for pacing, or on their way from
    // the Room): remember what this socket has, so it never gets a batch twice.
    this.fresh.set(ws, view.seq);
    if (a.resume && missed) {
      this.sendText(ws, JSON.stringify({ ...base, epoch: view.epoch, seq: a.resume.seq, resumed: true, serverTime: now }));
      for (const f of missed) this.sendText(ws, f);
      return;
    }
    this.sendText(ws, JSON.stringify({ ...base, epoch: view.epoch, seq: view.seq, resumed: false, state: view.state, serverTime: now }));
  }
}

/**
 * Answers a viewer's close. From compatibility date 2026-04-07 the runtime does this itself
 * (`web_socket_auto_reply_to_close`) and a second close is harmless; older runtimes, including
 * some local ones, leave the viewer's socket hanging in CLOSING without it. Codes 1005, 1006
 * and 1015 describe the absence of a close frame and must not be sent back.
 */
export function reciprocateClose(ws: WebSocket, code: number, reason: string): void {
  if (code === 1005 || code === 1006 || code === 1015) return;
  closeQuietly(ws, code, reason);
}

/**
 * The admission of an upgrade the Worker forwarded to a holder — the Room (`shard` -1) or a shard
 * (index ≥ 0) — or the 400 answer to anything else.
 */
export function admittedUpgrade(request: Request, holder: 'room' | 'shard'): Admission | Response {
  const a = readAdmission(request);
  const mine = a !== null && (holder === 'room' ? a.shard === -1 : a.shard >= 0);
  if (!mine || request.headers.get('Upgrade')?.toLowerCase() !== 'websocket') {
    return new Response(JSON.stringify({ error: { code: 'bad_request', message: 'expected an admitted WebSocket upgrade' } }), {
      status: 400,
      headers: { 'content-type': 'application/json' },
    });
  }
  return a;
}
