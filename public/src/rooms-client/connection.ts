// The room client's connection: one WebSocket at a time to the room, reconnected with backoff
// (and resuming where it left off) until a final close or `close()`; a connection that stops
// answering the clock pings is given up; requests that expect an answer are matched to it by id.
// The events it raises are typed in events.ts; what arrives is read by dispatch.ts.
import { ROOM_PROTOCOL_VERSION, formatResume, isFinalClose } from '../../../core/rooms/room-wire.ts';
import type { ClientMessageInput, ErrorCode, RoomSnapshot, You } from '../../../core/rooms/room-protocol.ts';
import { ClockEstimator } from '../../../core/rooms/room-clock.ts';
import type { Handler, RoomClientEvents } from './events.ts';

/** The subset of the WebSocket API the client uses (browser, Node 22 and `ws` all provide it). */
export interface WebSocketLike {
  readonly readyState: number;
  onopen: ((ev: unknown) => void) | null;
  onmessage: ((ev: { data: unknown }) => void) | null;
  onclose: ((ev: { code: number; reason: string }) => void) | null;
  onerror: ((ev: unknown) => void) | null;
  send(data: string): void;
  close(code?: number, reason?: string): void;
}
export type WebSocketFactory = new (url: string) => WebSocketLike;

export interface RoomClientOptions {
  /** Origin of the edgelive Worker, e.g. `https://live.example.com` (ws/wss is derived). */
  origin: string;
  room: string;
  /** Display name for anonymous viewers (ignored when a token names the viewer). */
  name?: string;
  /** A room token (role moderator or host, or a closed room). */
  token?: string;
  WebSocket?: WebSocketFactory;
  /** The local clock in ms (fractional allowed); defaults to the high-resolution wall clock. */
  now?: () => number;
  reconnect?: { minMs?: number; maxMs?: number } | false;
  clock?: {
    /** Pings sent right after connecting, this far apart. */
    burst?: number;
    burstIntervalMs?: number;
    /** Then one ping this often (0 disables). */
    intervalMs?: number;
    /** Samples the estimator keeps. */
    window?: number;
  };
  /** Replies not received within this time reject with `unavailable`. */
  requestTimeoutMs?: number;
}

export class RoomError extends Error {
  readonly code: ErrorCode;
  constructor(code: ErrorCode, reason: string) {
    super(`${code}: ${reason}`);
    this.code = code;
    this.name = 'RoomError';
  }
}

interface PendingRequest {
  resolve: (id: number | undefined) => void;
  reject: (err: RoomError) => void;
  timer: ReturnType<typeof setTimeout>;
}

const OPEN = 1;

export abstract class RoomConnection {
  protected readonly opts: RoomClientOptions;
  private readonly WS: WebSocketFactory;
  protected readonly nowFn: () => number;
  protected readonly clockEst: ClockEstimator;
  private readonly handlers = new Map<keyof RoomClientEvents, Set<(p: never) => void>>();
  protected readonly pending = new Map<string, PendingRequest>();
  private ws: WebSocketLike | null = null;
  private closedByUser = false;
  protected attempt = 0;
  private reconnectTimer: ReturnType<typeof setTimeout> | null = null;
  private pingTimers: Array<ReturnType<typeof setTimeout>> = [];
  private pingInterval: ReturnType<typeof setInterval> | null = null;
  private nextRid = 1;
  protected session: string | undefined;
  protected epoch: string | null = null;
  protected seq = 0;
  private lastFrameAt = 0;
  protected openWaiters: Array<{ resolve: () => void; reject: (e: Error) => void }> = [];

  /** The room as this client knows it (null before the first welcome). */
  state: RoomSnapshot | null = null;
  you: You | null = null;

  constructor(opts: RoomClientOptions) {
    this.opts = opts;
    const WS = opts.WebSocket ?? (globalThis as unknown as { WebSocket?: WebSocketFactory }).WebSocket;
    if (!WS) throw new Error('no WebSocket implementation: pass options.WebSocket');
    this.WS = WS;
    this.nowFn = opts.now ?? (typeof performance !== 'undefined' ? () => performance.timeOrigin + performance.now() : () => Date.now());
    this.clockEst = new ClockEstimator(opts.clock?.window ?? 32);
  }

  /** Reads one text frame from the room (dispatch.ts). */
  protected abstract onFrame(text: string): void;

  // --- events ----------------------------------------------------------------------------------

  on<K extends keyof RoomClientEvents>(event: K, handler: Handler<K>): () => void {
    let set = this.handlers.get(event);
    if (!set) this.handlers.set(event, (set = new Set()));
    set.add(handler as (p: never) => void);
    return () => set.delete(handler as (p: never) => void);
  }

  protected emit<K extends keyof RoomClientEvents>(event: K, payload: RoomClientEvents[K]): void {
    const set = this.handlers.get(event);
    if (!set) return;
    for (const h of set) {
      try {
        (h as Handler<K>)(payload);
      } catch (err) {
        console.error('room client handler failed', err);
      }
    }
  }

  // --- connection --------------------------------------------------------------------------------

  /** Connects (or reconnects); resolves at the first welcome, rejects on a final refusal. */
  connect(): Promise<void> {
    this.closedByUser = false;
    if (this.connected) return Promise.resolve();
    const p = new Promise<void>((resolve, reject) => this.openWaiters.push({ resolve, reject }));
    if (!this.ws) this.open();
    return p;
  }

  get connected(): boolean {
    return this.ws !== null && this.ws.readyState === OPEN && this.you !== null;
  }

  /** Closes for good (no reconnect). */
  close(): void {
    this.closedByUser = true;
    if (this.reconnectTimer) clearTimeout(this.reconnectTimer);
    this.reconnectTimer = null;
    this.stopPings();
    const ws = this.ws;
    this.ws = null;
    if (ws) {
      ws.onclose = null;
      ws.onmessage = null;
      ws.onerror = null;
      try {
        ws.close(1000, 'bye');
      } catch {
        /* already closed */
      }
    }
    this.failPending('unavailable', 'client closed');
    for (const w of this.openWaiters.splice(0)) w.reject(new Error('closed'));
  }

  private url(): string {
    const u = new URL(`/rooms/${encodeURIComponent(this.opts.room)}/ws`, this.opts.origin);
    u.protocol = u.protocol === 'https:' ? 'wss:' : u.protocol === 'http:' ? 'ws:' : u.protocol;
    u.searchParams.set('v', String(ROOM_PROTOCOL_VERSION));
    if (this.opts.token) u.searchParams.set('token', this.opts.token);
    else if (this.opts.name) u.searchParams.set('name', this.opts.name);
    if (this.session) u.searchParams.set('session', this.session);
    if (this.epoch !== null) u.searchParams.set('resume', formatResume(this.epoch, this.seq));
    return u.toString();
  }

  private open(): void {
    let ws: WebSocketLike;
    try {
      ws = new this.WS(this.url());
    } catch (err) {
      this.scheduleReconnect(1006, String(err));
      return;
    }
    this.ws = ws;
    this.you = null;
    ws.onmessage = (ev) => {
      this.lastFrameAt = Date.now();
      if (typeof ev.data === 'string') this.onFrame(ev.data);
    };
    ws.onclose = (ev) => this.lost(ws, ev.code, ev.reason);
    ws.onerror = () => {
      /* a close event follows */
    };
  }

  private lost(ws: WebSocketLike, code: number, reason: string): void {
    if (this.ws !== ws) return;
    this.ws = null;
    this.you = null;
    ws.onclose = null;
    ws.onmessage = null;
    this.stopPings();
    this.failPending('unavailable', 'connection lost before the room answered');
    this.scheduleReconnect(code, reason);
  }

  /**
   * A connection that has said nothing for three ping intervals (pings are always answered) is
   * dead even if no close event came — a laptop lid, a NAT timeout: give up on it and reconnect.
   */
  private checkAlive(): void {
    const every = this.opts.clock?.intervalMs ?? 5000;
    const ws = this.ws;
    if (ws && every > 0 && Date.now() - this.lastFrameAt > 3 * every) {
      try {
        ws.close(4000, 'no answer');
      } catch {
        /* already closing */
      }
      this.lost(ws, 1006, 'no answer from the room');
    }
  }

  private scheduleReconnect(code: number, reason: string): void {
    const final = isFinalClose(code);
    const willReconnect = !this.closedByUser && !final && this.opts.reconnect !== false;
    this.emit('close', { code, reason, willReconnect });
    if (!willReconnect) {
      for (const w of this.openWaiters.splice(0)) w.reject(new Error(`room closed the connection: ${code} ${reason}`));
      return;
    }
    // Exponential backoff with full jitter, so a room that restarts is not hit by every viewer
    // in the same instant.
    const backoff = this.opts.reconnect === false ? undefined : this.opts.reconnect;
    const min = backoff?.minMs || 500;
    const max = backoff?.maxMs || 15_000;
    const delay = Math.min(max, min * 2 ** this.attempt) * (0.5 + Math.random() / 2);
    this.attempt++;
    this.reconnectTimer = setTimeout(() => {
      this.reconnectTimer = null;
      if (!this.closedByUser) this.open();
    }, delay);
  }

  // --- outbound --------------------------------------------------------------------------------

  protected sendRaw(msg: ClientMessageInput): boolean {
    const ws = this.ws;
    if (!ws || ws.readyState !== OPEN) return false;
    ws.send(JSON.stringify(msg));
    return true;
  }

  /** Sends a message that expects an ack; resolves with the id the room returns. */
  protected request(msg: ClientMessageInput): Promise<number | undefined> {
    const rid = String(this.nextRid++);
    return new Promise((resolve, reject) => {
      if (!this.sendRaw({ ...msg, rid } as ClientMessageInput)) {
        reject(new RoomError('unavailable', 'not connected'));
        return;
      }
      const timer = setTimeout(
        () => this.settle(rid, new RoomError('unavailable', 'no answer from the room')),
        this.opts.requestTimeoutMs ?? 10_000,
      );
      this.pending.set(rid, { resolve, reject, timer });
    });
  }

  protected settle(rid: string, err: RoomError | null, id?: number): void {
    const p = this.pending.get(rid);
    if (!p) return;
    this.pending.delete(rid);
    clearTimeout(p.timer);
    if (err) p.reject(err);
    else p.resolve(id);
  }

  private failPending(code: ErrorCode, reason: string): void {
    for (const rid of [...this.pending.keys()]) this.settle(rid, new RoomError(code, reason));
  }

  // --- clock pings (they also keep the connection known to be alive) -----------------------------

  /** Sends one clock ping now. */
  ping(): boolean {
    return this.sendRaw({ type: 'ping', t0: this.nowFn() });
  }

  protected startPings(): void {
    this.stopPings();
    const c = this.opts.clock ?? {};
    const burst = c.burst ?? 8;
    const gap = c.burstIntervalMs ?? 100;
    for (let i = 0; i < burst; i++) this.pingTimers.push(setTimeout(() => this.ping(), i * gap));
    const every = c.intervalMs ?? 5000;
    if (every > 0) {
      this.pingInterval = setInterval(() => {
        this.checkAlive();
        this.ping();
      }, every);
    }
  }

  private stopPings(): void {
    for (const t of this.pingTimers) clearTimeout(t);
    this.pingTimers = [];
    if (this.pingInterval) clearInterval(this.pingInterval);
    this.pingInterval = null;
  }
}
