// Load clients for the rooms benchmark: real WebSocket clients (the `ws` package, the fastest
// client Node has) that count what they receive cheaply enough that 10,000 of them fit in one
// Node thread next to the server. They understand both the room's batch frames and the bare
// baseline's relayed frames, measure delivery latency from the send time embedded in each chat
// text, detect gaps in batch sequence numbers, and (for the clock clients) run the same
// ClockEstimator the browser client uses, through an artificial offset and network jitter.
import WebSocket from 'ws';
import { ClockEstimator, clockSample } from '../../core/rooms/room-clock.ts';

/** Latency histogram with 1 ms buckets up to 120 s. */
export class Histogram {
  private readonly counts = new Uint32Array(120_001);
  n = 0;
  max = 0;
  add(ms: number): void {
    const b = Math.max(0, Math.min(this.counts.length - 1, Math.round(ms)));
    this.counts[b]!++;
    this.n++;
    if (ms > this.max) this.max = ms;
  }
  quantile(q: number): number {
    if (this.n === 0) return NaN;
    const target = Math.ceil(q * this.n);
    let acc = 0;
    for (let i = 0; i < this.counts.length; i++) {
      acc += this.counts[i]!;
      if (acc >= target) return i;
    }
    return this.counts.length - 1;
  }
}

/** Shared tallies of one run. */
export class RunMetrics {
  readonly latency = new Histogram();
  /** Deliveries per chat message (index = message number). */
  readonly deliveries: Uint32Array;
  /** When each message reached its first and its last client (ms): the fan-out spread. */
  readonly firstAt: Float64Array;
  readonly lastAt: Float64Array;
  duplicates = 0;
  gaps = 0;
  frames = 0;
  bytes = 0;
  constructor(maxMessages: number) {
    this.deliveries = new Uint32Array(maxMessages);
    this.firstAt = new Float64Array(maxMessages);
    this.lastAt = new Float64Array(maxMessages);
  }

  /** p50 and p99 over messages of (last − first delivery), for messages that reached everyone. */
  spread(sent: number, n: number): { p50: number; p99: number } {
    const s: number[] = [];
    for (let i = 0; i < sent; i++) if (this.deliveries[i] === n) s.push(this.lastAt[i]! - this.firstAt[i]!);
    s.sort((a, b) => a - b);
    const q = (p: number) => (s.length ? s[Math.min(s.length - 1, Math.ceil(p * s.length) - 1)]! : NaN);
    return { p50: q(0.5), p99: q(0.99) };
  }
}

export interface ClockSim {
  /** This client's clock minus the machine's (ms). */
  offsetMs: number;
  /** One-way network delay to add to a ping or a pong (ms). */
  delay: () => number;
}

const CHAT = '"text":"bench:';
const REACTIONS = '"kind":"reactions","counts":';
const SEQ = /"seq":(\d+)(?:,"from":(\d+))?/;
const perfNow = () => performance.timeOrigin + performance.now();

export class LoadClient {
  readonly ws: WebSocket;
  readonly opened: Promise<void>;
  private readonly m: RunMetrics;
  private readonly seen: Uint8Array;
  private lastSeq = -1;
  reactions = 0;
  chats = 0;
  closedCode: number | null = null;
  readonly clock: (ClockSim & { est: ClockEstimator; est48: ClockEstimator; minDelayOnly: ClockEstimator }) | null;

  constructor(url: string, metrics: RunMetrics, clock: ClockSim | null) {
    this.m = metrics;
    this.seen = new Uint8Array(metrics.deliveries.length);
    // The client's default window (32 samples), a longer one, and the lowest-delay sample alone.
    this.clock = clock
      ? { ...clock, est: new ClockEstimator(32), est48: new ClockEstimator(48), minDelayOnly: new ClockEstimator(32) }
      : null;
    this.ws = new WebSocket(url, { perMessageDeflate: false });
    this.opened = new Promise((resolve, reject) => {
      this.ws.once('open', () => resolve());
      this.ws.once('error', reject);
      this.ws.once('close', (code) => reject(new Error(`closed before open: ${code}`)));
    });
    this.ws.on('close', (code) => (this.closedCode = code));
    this.ws.on('error', () => {});
    this.ws.on('message', (data: Buffer, isBinary: boolean) => {
      if (!isBinary) this.onText(data.toString());
    });
  }

  private onText(text: string): void {
    const now = Date.now();
    this.m.frames++;
    this.m.bytes += text.length;
    if (text.startsWith('{"type":"batch"')) {
      const m = SEQ.exec(text.slice(0, 100));
      const seq = Number(m?.[1] ?? -1);
      const from = m?.[2] !== undefined ? Number(m[2]) : seq;
      if (this.lastSeq >= 0 && from !== this.lastSeq + 1) {
        if (seq <= this.lastSeq) return; // a repeat
        this.m.gaps++;
      }
      this.lastSeq = seq;
    } else if (text.startsWith('{"type":"welcome"') || text.startsWith('{"type":"state"')) {
      const w = JSON.parse(text) as { seq: number };
      this.lastSeq = w.seq;
      return; // history in a snapshot is not a delivery
    } else if (text.startsWith('{"type":"pong"')) {
      this.onPong(text);
      return;
    } else if (text.startsWith('{"type":"react"')) {
      this.reactions++; // the baseline relays each reaction as is
      return;
    }
    // Chat: the text carries the message number and the sender's send time.
    let i = text.indexOf(CHAT);
    while (i >= 0) {
      const s = i + CHAT.length;
      const colon = text.indexOf(':', s);
      const end = text.indexOf('"', colon);
      const n = Number(text.slice(s, colon));
      const sentAt = Number(text.slice(colon + 1, end));
      if (this.seen[n]) this.m.duplicates++;
      else {
        this.seen[n] = 1;
        this.m.deliveries[n]!++;
        this.m.latency.add(now - sentAt);
        if (this.m.firstAt[n] === 0) this.m.firstAt[n] = now;
        if (now > this.m.lastAt[n]!) this.m.lastAt[n] = now;
        this.chats++;
      }
      i = text.indexOf(CHAT, end);
    }
    const r = text.indexOf(REACTIONS);
    if (r >= 0) {
      const start = r + REACTIONS.length;
      const counts = JSON.parse(text.slice(start, text.indexOf('}', start) + 1)) as Record<string, number>;
      for (const v of Object.values(counts)) this.reactions += v;
    }
  }

  send(text: string): void {
    if (this.ws.readyState === 1) this.ws.send(text);
  }

  /** A clock ping through the simulated network: held `delay()` ms on the way out. */
  ping(): void {
    const c = this.clock;
    if (!c) return;
    const t0 = perfNow() + c.offsetMs;
    setTimeout(() => this.send(JSON.stringify({ type: 'ping', t0 })), c.delay());
  }

  private onPong(text: string): void {
    const c = this.clock;
    if (!c) return;
    const p = JSON.parse(text) as { t0: number; t1: number; t2: number };
    // ... and the pong is held `delay()` ms on the way back before the client sees it.
    setTimeout(() => {
      const s = clockSample(p.t0, p.t1, p.t2, perfNow() + c.offsetMs);
      c.est.add(s);
      c.est48.add(s);
      c.minDelayOnly.add(s);
    }, c.delay());
  }

  /** |estimated − true| offset (ms): by the estimator, and by the lowest-delay sample alone. */
  clockError(reference: number): { bounds: number; bounds48: number; minDelay: number; samples: number } | null {
    const c = this.clock;
    if (!c) return null;
    const e = c.est.estimate();
    const e48 = c.est48.estimate();
    const best = c.minDelayOnly.best();
    if (!e || !e48 || !best) return null;
    const truth = reference - c.offsetMs;
    return {
      bounds: Math.abs(e.offset - truth),
      bounds48: Math.abs(e48.offset - truth),
      minDelay: Math.abs(best.offset - truth),
      samples: e.samples,
    };
  }

  close(): void {
    try {
      this.ws.terminate();
    } catch {
      /* closed */
    }
  }
}

/** Opens clients with bounded concurrency; returns them in order. */
export async function connectAll(make: (i: number) => LoadClient, n: number, concurrency: number): Promise<LoadClient[]> {
  const out: LoadClient[] = new Array(n);
  let next = 0;
  let failed = 0;
  async function worker(): Promise<void> {
    while (next < n) {
      const i = next++;
      for (let attempt = 0; ; attempt++) {
        const c = make(i);
        try {
          await c.opened;
          out[i] = c;
          break;
        } catch (err) {
          c.close();
          if (attempt >= 5) {
            failed++;
            throw err;
          }
          await new Promise((r) => setTimeout(r, 100 * 2 ** attempt));
        }
      }
    }
  }
  await Promise.all(Array.from({ length: concurrency }, worker));
  if (failed) throw new Error(`${failed} clients failed to connect`);
  return out;
}

/**
 * The machine's clock as the server sees it, minus this process's high-resolution clock: the
 * reference the clock error is measured against (Date.now() floors to whole ms, hence + 0.5).
 */
export function clockReference(): number {
  let sum = 0;
  const n = 2000;
  for (let i = 0; i < n; i++) sum += Date.now() + 0.5 - perfNow();
  return sum / n;
}
