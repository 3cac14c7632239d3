// The browser client for a room (no framework): connects, reconnects with backoff and resumes
// where it left off, keeps the room's state with the same reducer the server uses, syncs to the
// room clock, and offers typed events and methods. It runs unchanged in Node 22 (global
// WebSocket) and accepts another WebSocket implementation (e.g. `ws`) for tests and benchmarks.
//
// Everything a room sends is text. Render chat, names and poll options with `textContent`
// (never `innerHTML`): nothing another viewer typed may run in this page.
import { ROOM_PROTOCOL_VERSION, formatResume, isFinalClose, readServerFrame } from '../../core/rooms/room-wire.ts';
import type {
  ChatMessage,
  ClientMessageInput,
  ErrorCode,
  Member,
  PlaybackState,
  Poll,
  Presence,
  Reaction,
  ReactionCounts,
  RoomEvent,
  RoomSnapshot,
  ServerMessage,
  You,
} from '../../core/rooms/room-protocol.ts';
import { applyEvents } from '../../core/rooms/room-state.ts';
import type { VoiceMember, VoiceSignalBody, VoiceState } from '../../core/rooms/voice-protocol.ts';
import { ClockEstimator, clockSample, playbackCorrection, playbackPositionAt, type ClockEstimate } from '../../core/rooms/room-clock.ts';

export type {
  ChatMessage,
  Member,
  PlaybackState,
  Poll,
  Presence,
  Reaction,
  ReactionCounts,
  RoomSnapshot,
  You,
  ClockEstimate,
  VoiceMember,
  VoiceSignalBody,
  VoiceState,
};

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

/** Events and their payloads. */
export interface RoomClientEvents {
  /** Connected and greeted; `resumed` when only missed batches were replayed. */
  open: { you: You; resumed: boolean };
  /** The whole state was (re)placed: first join, resync or a resume that needed a snapshot. */
  state: RoomSnapshot;
  chat: ChatMessage;
  'chat.delete': { id: number };
  reactions: ReactionCounts;
  /** A host's reaction at a moment of the stream (`pdt`, ms), to be shown when the video reaches it. */
  'host.reaction': { reaction: Reaction; pdt: number; name: string };
  poll: Poll;
  presence: Presence & { joined: Member[]; left: Member[] };
  playback: PlaybackState;
  slow: { seconds: number };
  settings: { anonymous: boolean };
  /** Voice seats or mode changed (or the whole state was replaced): the room's voice now. */
  voice: VoiceState;
  /** A signal another voice seat addressed to this connection. */
  'voice.signal': { from: string; uid: string; signal: VoiceSignalBody };
  /** Where the SFU is and the token it takes (the answer to `requestSfu`). */
  'voice.sfu': { endpoint: string; token: string; expiresAt: number };
  /** Every batch as received, after it was applied (for tools and tests). */
  batch: { seq: number; t: number; events: RoomEvent[] };
  /** An error the room answered that no pending request was waiting for. */
  error: { code: ErrorCode; reason: string };
  close: { code: number; reason: string; willReconnect: boolean };
  clock: ClockEstimate;
}
type Handler<K extends keyof RoomClientEvents> = (payload: RoomClientEvents[K]) => void;

interface PendingRequest {
  resolve: (id: number | undefined) => void;
  reject: (err: RoomError) => void;
  timer: ReturnType<typeof setTimeout>;
}

const OPEN = 1;

export class RoomClient {
  private readonly opts: RoomClientOptions;
  private readonly WS: WebSocketFactory;
  private readonly nowFn: () => number;
  private readonly clockEst: ClockEstimator;
  private readonly handlers = new Map<keyof RoomClientEvents, Set<(p: never) => void>>();
  private readonly pending = new Map<string, PendingRequest>();
  private ws: WebSocketLike | null = null;
  private closedByUser = false;
  private attempt = 0;
  private reconnectTimer: ReturnType<typeof setTimeout> | null = null;
  private pingTimers: Array<ReturnType<typeof setTimeout>> = [];
  private pingInterval: ReturnType<typeof setInterval> | null = null;
  private nextRid = 1;
  private session: string | undefined;
  private epoch: string | null = null;
  private seq = 0;
  private resyncing = false;
  private fallbackOffset = 0;
  private lastFrameAt = 0;
  private openWaiters: Array<{ resolve: () => void; reject: (e: Error) => void }> = [];

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

  // --- events ----------------------------------------------------------------------------------

  on<K extends keyof RoomClientEvents>(event: K, handler: Handler<K>): () => void {
    let set = this.handlers.get(event);
    if (!set) this.handlers.set(event, (set = new Set()));
    set.add(handler as (p: never) => void);
    return () => set.delete(handler as (p: never) => void);
  }

  private emit<K extends keyof RoomClientEvents>(event: K, payload: RoomClientEvents[K]): void {
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

  // --- inbound ---------------------------------------------------------------------------------

  private onFrame(text: string): void {
    const msg = readServerFrame(text);
    if (!msg) return;
    switch (msg.type) {
      case 'welcome': {
        this.you = msg.you;
        if (msg.session) this.session = msg.session;
        this.fallbackOffset = msg.serverTime - this.nowFn();
        this.attempt = 0;
        if (msg.resumed) {
          this.epoch = msg.epoch;
          this.seq = msg.seq;
        } else if (msg.state) {
          this.replaceState(msg.epoch, msg.seq, msg.state);
        }
        this.emit('open', { you: msg.you, resumed: msg.resumed });
        for (const w of this.openWaiters.splice(0)) w.resolve();
        this.startPings();
        return;
      }
      case 'state':
        this.replaceState(msg.epoch, msg.seq, msg.state);
        return;
      case 'batch':
        this.onBatch(msg);
        return;
      case 'ack':
        if (msg.rid) this.settle(msg.rid, null, msg.id);
        return;
      case 'error':
        if (msg.rid && this.pending.has(msg.rid)) this.settle(msg.rid, new RoomError(msg.code, msg.reason));
        else this.emit('error', { code: msg.code, reason: msg.reason });
        return;
      case 'voice.signal':
        this.emit('voice.signal', { from: msg.from, uid: msg.uid, signal: msg.signal });
        return;
      case 'voice.sfu':
        this.emit('voice.sfu', { endpoint: msg.endpoint, token: msg.token, expiresAt: msg.expiresAt });
        return;
      case 'pong': {
        const s = clockSample(msg.t0, msg.t1, msg.t2, this.nowFn());
        this.clockEst.add(s);
        const est = this.clockEst.estimate();
        if (est) this.emit('clock', est);
        return;
      }
    }
  }

  private replaceState(epoch: string, seq: number, state: RoomSnapshot): void {
    this.epoch = epoch;
    this.seq = seq;
    this.resyncing = false;
    const before = this.state?.presence;
    this.state = state;
    this.emit('state', state);
    this.emit('voice', state.voice);
    if (before) this.emit('presence', { ...state.presence, ...diffMembers(before, state.presence) });
  }

  private onBatch(b: Extract<ServerMessage, { type: 'batch' }>): void {
    if (this.state === null || this.resyncing) return;
    if (b.epoch === this.epoch && b.seq <= this.seq) return; // already have it
    // A merged frame covers batches `from`..`seq`; it must start right after what we have.
    if (b.epoch !== this.epoch || (b.from ?? b.seq) !== this.seq + 1) {
      // A gap: ask for the whole state rather than guess.
      this.resyncing = true;
      this.sendRaw({ type: 'resync' });
      return;
    }
    const before = this.state;
    this.state = applyEvents(before, b.events);
    this.seq = b.seq;
    for (const ev of b.events) {
      switch (ev.kind) {
        case 'chat':
          this.emit('chat', ev.message);
          break;
        case 'chat.delete':
          this.emit('chat.delete', { id: ev.id });
          break;
        case 'reactions':
          this.emit('reactions', ev.counts);
          break;
        case 'host.reaction':
          this.emit('host.reaction', { reaction: ev.reaction, pdt: ev.pdt, name: ev.name });
          break;
        case 'poll':
          this.emit('poll', ev.poll);
          break;
        case 'presence':
          this.emit('presence', { ...ev.presence, ...diffMembers(before.presence, ev.presence) });
          break;
        case 'playback':
          this.emit('playback', ev.playback);
          break;
        case 'slow':
          this.emit('slow', { seconds: ev.seconds });
          break;
        case 'settings':
          this.emit('settings', { anonymous: ev.anonymous });
          break;
      }
    }
    if (b.events.some((ev) => ev.kind.startsWith('voice'))) this.emit('voice', this.state.voice);
    this.emit('batch', { seq: b.seq, t: b.t, events: b.events });
  }

  // --- outbound --------------------------------------------------------------------------------

  private sendRaw(msg: ClientMessageInput): boolean {
    const ws = this.ws;
    if (!ws || ws.readyState !== OPEN) return false;
    ws.send(JSON.stringify(msg));
    return true;
  }

  /** Sends a message that expects an ack; resolves with the id the room returns. */
  private request(msg: ClientMessageInput): Promise<number | undefined> {
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

  private settle(rid: string, err: RoomError | null, id?: number): void {
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

  /** Sends a chat message; `pdt` is the program-date-time (ms) of the frame being watched. */
  async chat(text: string, opts: { pdt?: number } = {}): Promise<number> {
    return (await this.request({ type: 'chat', text, ...(opts.pdt !== undefined ? { pdt: Math.round(opts.pdt) } : {}) }))!;
  }

  /** Fire-and-forget: reactions are counted, never acknowledged one by one. */
  /** `pdt`: the moment of the stream it reacts to (a host's reaction is then shown at that moment). */
  react(reaction: Reaction, pdt?: number): boolean {
    return this.sendRaw({ type: 'react', reaction, ...(pdt !== undefined ? { pdt } : {}) });
  }

  /** `pdt`: the moment of the stream the poll belongs to (viewers see it when their video reaches it). */
  async openPoll(question: string, options: string[], durationSec?: number, pdt?: number): Promise<number> {
    return (await this.request({
      type: 'poll.open',
      question,
      options,
      ...(durationSec ? { durationSec } : {}),
      ...(pdt !== undefined ? { pdt } : {}),
    }))!;
  }

  async vote(pollId: number, option: number): Promise<void> {
    await this.request({ type: 'poll.vote', pollId, option });
  }

  async closePoll(pollId: number): Promise<void> {
    await this.request({ type: 'poll.close', pollId });
  }

  async deleteMessage(messageId: number): Promise<void> {
    await this.request({ type: 'mod.delete', messageId });
  }

  async mute(uid: string, seconds: number): Promise<void> {
    await this.request({ type: 'mod.mute', uid, seconds });
  }

  async unmute(uid: string): Promise<void> {
    await this.request({ type: 'mod.unmute', uid });
  }

  async ban(uid: string): Promise<void> {
    await this.request({ type: 'mod.ban', uid });
  }

  async unban(uid: string): Promise<void> {
    await this.request({ type: 'mod.unban', uid });
  }

  async setSlowMode(seconds: number): Promise<void> {
    await this.request({ type: 'mod.slow', seconds });
  }

  /** Host only: where the watch party is. `at` defaults to this client's `roomNow()`. */
  async setPlayback(p: { playing: boolean; position: number; rate?: number; at?: number }): Promise<number> {
    return (await this.request({
      type: 'playback.set',
      playing: p.playing,
      position: p.position,
      rate: p.rate ?? 1,
      at: Math.round(p.at ?? this.roomNow()),
    }))!;
  }

  // --- voice (the WebRTC side is public/src/voice/, loaded when a member joins) -------------------

  get roomId(): string {
    return this.opts.room;
  }

  /** The signed session of an anonymous viewer (also kept by the browser as a cookie). */
  get sessionToken(): string | undefined {
    return this.session;
  }

  async joinVoice(opts: { muted?: boolean; camera?: boolean } = {}): Promise<void> {
    await this.request({ type: 'voice.join', muted: opts.muted ?? false, camera: opts.camera ?? false });
  }

  async leaveVoice(): Promise<void> {
    await this.request({ type: 'voice.leave' });
  }

  /** Mute and camera changes are acknowledged; speaking flips are sent without an answer. */
  async updateVoice(patch: { muted?: boolean; camera?: boolean }): Promise<void> {
    await this.request({ type: 'voice.update', ...patch });
  }

  reportSpeaking(speaking: boolean): boolean {
    return this.sendRaw({ type: 'voice.update', speaking });
  }

  /** Sends a signal to one voice seat (its connection id); refusals arrive as `error` events. */
  signal(to: string, signal: VoiceSignalBody): boolean {
    // `type` first: the room lets a long frame through only when it starts with it.
    return this.sendRaw({ type: 'voice.signal', to, signal });
  }

  async voiceMute(uid: string): Promise<void> {
    await this.request({ type: 'voice.mute', uid });
  }

  async voiceUnmute(uid: string): Promise<void> {
    await this.request({ type: 'voice.unmute', uid });
  }

  async voiceRemove(uid: string): Promise<void> {
    await this.request({ type: 'voice.remove', uid });
  }

  /** While voice is in `sfu` mode: the answer comes as a `voice.sfu` event. */
  requestSfu(): boolean {
    return this.sendRaw({ type: 'voice.sfu' });
  }

  // --- clock -----------------------------------------------------------------------------------

  /** The room's clock (ms): the local clock plus the estimated offset. */
  roomNow(): number {
    return this.nowFn() + this.clockOffset();
  }

  /** Estimated offset (room − local, ms); before the first pong, the welcome's rough value. */
  clockOffset(): number {
    return this.clockEst.estimate()?.offset ?? this.fallbackOffset;
  }

  clockEstimate(): ClockEstimate | null {
    return this.clockEst.estimate();
  }

  /** Sends one clock ping now. */
  ping(): boolean {
    return this.sendRaw({ type: 'ping', t0: this.nowFn() });
  }

  /** Where the watch party's media should be now (s), or null if no playback state is set. */
  playbackPosition(atRoomMs = this.roomNow()): number | null {
    const p = this.state?.playback;
    return p ? playbackPositionAt(p, atRoomMs) : null;
  }

  /**
   * For a follower's player: given where the local media is (s), whether to do nothing, nudge
   * the playback rate (small drift) or seek (≥ 0.5 s). Null when there is no playback state.
   */
  followPlayback(localPosition: number): ReturnType<typeof playbackCorrection> | null {
    const p = this.state?.playback;
    return p ? playbackCorrection(p, this.roomNow(), localPosition) : null;
  }

  private startPings(): void {
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

function diffMembers(before: Presence, after: Presence): { joined: Member[]; left: Member[] } {
  if (!before.members || !after.members) return { joined: [], left: [] };
  const was = new Map(before.members.map((m) => [m.uid, m]));
  const now = new Map(after.members.map((m) => [m.uid, m]));
  return {
    joined: after.members.filter((m) => !was.has(m.uid)),
    left: before.members.filter((m) => !now.has(m.uid)),
  };
}
