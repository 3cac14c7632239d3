// The media node's metrics, served on /metrics in the Prometheus text format (prom-client):
// process and event loop, publishers by protocol, encoder speed per stream, push latency, origin
// retries and refusals, ingest bytes, SRT loss, registry heartbeats, WHEP viewers. Names and alerts are in
// docs/operations.md ("Metrics and alerts"). A small JSON summary stays on /metrics.json.
import { Counter, Gauge, Histogram, Registry, collectDefaultMetrics } from 'prom-client';
import type { PublishProtocol } from './admission.ts';
import type { EncoderStatus } from './encoder-watch.ts';
import type { RestreamState } from '../core/contracts/restream.ts';

/** The SRT connection counters this exports (SrtConnection['stats'] has them). */
export interface SrtCounters {
  packets: number;
  lost: number;
  retransmitted: number;
  dropped: number;
  undecryptable: number;
}
const SRT_FIELDS = ['packets', 'lost', 'retransmitted', 'dropped', 'undecryptable'] as const;

/** The WHEP endpoint's figures (webrtc/whep-endpoint.ts): viewers now and totals since the start. */
export interface WhepFigures {
  viewers: number;
  maxViewers: number;
  counters: {
    accepted: number;
    refused: number;
    unauthorized: number;
    full: number;
    forwarded: Record<'video' | 'audio', { packets: number; bytes: number }>;
  };
}

export interface MetricsOptions {
  nodeId: string;
  region: string;
  capacity: number;
  /** Publishers now, by protocol. */
  sessions: () => Partial<Record<PublishProtocol, number>>;
  /** Why the node refuses new publishers now (a ladder below real time), or null. */
  overloaded: () => string | null;
  /** The party-voice SFU now: rooms and seats, and packets forwarded and dropped (muted) so far. */
  sfu?: () => { rooms: number; seats: number; forwarded: number; dropped: number };
  /** The restream destinations running now, by state. */
  restreams?: () => Partial<Record<RestreamState, number>>;
  /** The WHEP endpoint's viewers and totals. */
  whep?: () => WhepFigures;
}

export class Metrics {
  readonly registry = new Registry();
  private readonly sessionsStarted: Counter<'protocol'>;
  private readonly refused: Counter<'protocol' | 'reason'>;
  private readonly pushDuration: Histogram<'kind'>;
  private readonly pushedBytes: Counter;
  private readonly pushRetries: Counter<'code'>;
  private readonly pushRefusals: Counter<'code'>;
  private readonly ingestBytes: Counter<'protocol'>;
  private readonly encoderSpeed: Gauge<'stream'>;
  private readonly encoderFps: Gauge<'stream'>;
  private readonly encoderLag: Gauge<'stream'>;
  private readonly encoderBehind: Gauge<'stream'>;
  private readonly droppedFrames: Counter<'stream'>;
  private readonly duplicatedFrames: Counter<'stream'>;
  private readonly sheds: Counter<'rendition'>;
  private readonly srt: Record<(typeof SRT_FIELDS)[number], Counter>;
  private readonly registryCalls: Counter<'call' | 'outcome'>;
  private readonly registryLastOk: Gauge;
  private readonly restreamFailures: Counter;
  /** Live SRT connections' counters and what of them was already counted. */
  private readonly srtFeeds = new Map<SrtCounters, SrtCounters>();
  /** Per stream: the frame counters of the running ffmpeg already counted (they restart with it). */
  private readonly frameCounts = new Map<string, { dropped: number; duplicated: number }>();
  // The JSON summary (/metrics.json, read by bench:latency): recent part push latencies.
  private readonly partLatencies: number[] = [];
  private started = 0;
  private refusedCount = 0;
  private pushes = 0;
  private pushedByteCount = 0;

  constructor(opts: MetricsOptions) {
    const registers = [this.registry];
    collectDefaultMetrics({ register: this.registry });
    new Gauge({
      name: 'edgelive_node_info',
      help: 'Always 1; the labels say which node this is.',
      labelNames: ['node_id', 'region'],
      registers,
    }).set({ node_id: opts.nodeId, region: opts.region }, 1);
    new Gauge({ name: 'edgelive_capacity', help: 'Publishers this node takes (CAPACITY).', registers }).set(opts.capacity);
    new Gauge({
      name: 'edgelive_overloaded',
      help: '1 while a ladder runs below real time with nothing left to shed: new publishers are refused.',
      registers,
      collect() {
        this.set(opts.overloaded() ? 1 : 0);
      },
    });
    new Gauge({
      name: 'edgelive_sessions',
      help: 'Publishers on this node now, by ingest protocol.',
      labelNames: ['protocol'],
      registers,
      collect() {
        const now = opts.sessions();
        for (const protocol of ['rtmp', 'srt', 'whip'] as const) this.set({ protocol }, now[protocol] ?? 0);
      },
    });
    this.sessionsStarted = new Counter({
      name: 'edgelive_sessions_started_total',
      help: 'Publishers accepted, by protocol.',
      labelNames: ['protocol'],
      registers,
    });
    this.refused = new Counter({
      name: 'edgelive_publishers_refused_total',
      help: 'Publishers refused: over_capacity, node_overloaded, or the origin refused the key (its error code).',
      labelNames: ['protocol', 'reason'],
      registers,
    });
    this.pushDuration = new Histogram({
      name: 'edgelive_push_duration_seconds',
      help: 'From an object ready at the node to its acknowledgement by the origin (retries included), by kind.',
      labelNames: ['kind'],
      buckets: [0.025, 0.05, 0.1, 0.15, 0.2, 0.3, 0.5, 0.75, 1, 1.5, 2.5, 5, 10],
      registers,
    });
    this.pushedBytes = new Counter({ name: 'edgelive_pushed_bytes_total', help: 'Media bytes acknowledged by the origin.', registers });
    this.pushRetries = new Counter({
      name: 'edgelive_push_retries_total',
      help: 'Push attempts that failed and are tried again (network, 5xx, 429), by error code.',
      labelNames: ['code'],
      registers,
    });
    this.pushRefusals = new Counter({
      name: 'edgelive_push_refusals_total',
      help: 'Pushes the origin refused for good (4xx), by error code.',
      labelNames: ['code'],
      registers,
    });
    this.ingestBytes = new Counter({
      name: 'edgelive_ingest_bytes_total',
      help: 'Media bytes received from publishers, by protocol (FLV for RTMP, MPEG-TS for SRT).',
      labelNames: ['protocol'],
      registers,
    });
    this.encoderSpeed = new Gauge({
      name: 'edgelive_encoder_speed',
      help: 'Media seconds the ladder encodes per wall-clock second (over 5 s); below 1 it falls behind real time.',
      labelNames: ['stream'],
      registers,
    });
    this.encoderFps = new Gauge({
      name: 'edgelive_encoder_fps',
      help: 'Frames per second the ladder encodes (top rung).',
      labelNames: ['stream'],
      registers,
    });
    this.encoderLag = new Gauge({
      name: 'edgelive_encoder_lag_seconds',
      help: 'How far the encoded media has fallen behind the wall clock since the ladder started.',
      labelNames: ['stream'],
      registers,
    });
    this.encoderBehind = new Gauge({
      name: 'edgelive_encoder_behind_realtime',
      help: '1 while the ladder is slower than real time and late.',
      labelNames: ['stream'],
      registers,
    });
    this.droppedFrames = new Counter({
      name: 'edgelive_encoder_dropped_frames_total',
      help: 'Frames the ladder dropped to hold its frame rate.',
      labelNames: ['stream'],
      registers,
    });
    this.duplicatedFrames = new Counter({
      name: 'edgelive_encoder_duplicated_frames_total',
      help: 'Frames the ladder duplicated to hold its frame rate.',
      labelNames: ['stream'],
      registers,
    });
    this.sheds = new Counter({
      name: 'edgelive_ladder_sheds_total',
      help: 'Ladders restarted without their top rung because they ran below real time, by the rung shed.',
      labelNames: ['rendition'],
      registers,
    });
    this.srt = {
      packets: new Counter({ name: 'edgelive_srt_packets_received_total', help: 'SRT data packets received.', registers }),
      lost: new Counter({
        name: 'edgelive_srt_packets_lost_total',
        help: 'SRT data packets found missing (and asked for again).',
        registers,
      }),
      retransmitted: new Counter({
        name: 'edgelive_srt_packets_retransmitted_total',
        help: 'SRT data packets received as retransmissions.',
        registers,
      }),
      dropped: new Counter({
        name: 'edgelive_srt_packets_dropped_total',
        help: 'SRT data packets given up on (too late, or dropped by the sender).',
        registers,
      }),
      undecryptable: new Counter({
        name: 'edgelive_srt_packets_undecryptable_total',
        help: 'SRT data packets that could not be decrypted.',
        registers,
      }),
    };
    this.registryCalls = new Counter({
      name: 'edgelive_registry_calls_total',
      help: 'Calls to the ingest registry (register, heartbeat), by outcome.',
      labelNames: ['call', 'outcome'],
      registers,
    });
    this.registryLastOk = new Gauge({
      name: 'edgelive_registry_last_success_timestamp_seconds',
      help: 'When the registry last answered a register or heartbeat (Unix time).',
      registers,
    });
    new Gauge({
      name: 'edgelive_sfu_rooms',
      help: 'Party-voice rooms with a seat on the SFU of this node now.',
      registers,
      collect() {
        this.set(opts.sfu?.().rooms ?? 0);
      },
    });
    new Gauge({
      name: 'edgelive_sfu_seats',
      help: 'Party-voice seats (member peer connections) on the SFU of this node now.',
      registers,
      collect() {
        this.set(opts.sfu?.().seats ?? 0);
      },
    });
    // Counters the SFU keeps itself, exported as they stand at each scrape.
    let forwardedSeen = 0;
    new Counter({
      name: 'edgelive_sfu_forwarded_packets_total',
      help: 'RTP packets the SFU sent to voice members (one per receiving member per packet).',
      registers,
      collect() {
        const now = opts.sfu?.().forwarded ?? 0;
        if (now > forwardedSeen) this.inc(now - forwardedSeen);
        forwardedSeen = now;
      },
    });
    let droppedSeen = 0;
    new Counter({
      name: 'edgelive_sfu_muted_packets_total',
      help: 'Microphone packets the SFU did not forward because a moderator muted their member.',
      registers,
      collect() {
        const now = opts.sfu?.().dropped ?? 0;
        if (now > droppedSeen) this.inc(now - droppedSeen);
        droppedSeen = now;
      },
    });
    new Gauge({
      name: 'edgelive_restream_destinations',
      help: 'Restream destinations of the publishers on this node, by state (connecting, live, retrying, failed, stopped).',
      labelNames: ['state'],
      registers,
      collect() {
        const now = opts.restreams?.() ?? {};
        for (const state of ['connecting', 'live', 'retrying', 'failed', 'stopped'] as const) this.set({ state }, now[state] ?? 0);
      },
    });
    this.restreamFailures = new Counter({
      name: 'edgelive_restream_failures_total',
      help: 'Restream attempts that failed (the destination refused, went away or stopped reading); each is retried with back-off up to RESTREAM_MAX_FAILURES in a row.',
      registers,
    });
    if (opts.whep) this.registerWhep(opts.whep);
  }

  /**
   * WHEP playback: viewers now and the node's limit, and counters read from the endpoint's totals
   * at each scrape (the hot path only adds to plain numbers; the counters take the difference).
   */
  private registerWhep(read: () => WhepFigures): void {
    const registers = [this.registry];
    new Gauge({
      name: 'edgelive_whep_viewers',
      help: 'WebRTC (WHEP) viewers on this node now.',
      registers,
      collect() {
        this.set(read().viewers);
      },
    });
    new Gauge({
      name: 'edgelive_whep_capacity',
      help: 'WebRTC viewers this node holds (WHEP_MAX_VIEWERS); past it WHEP answers 503.',
      registers,
      collect() {
        this.set(read().maxViewers);
      },
    });
    const fromTotals = <L extends string>(
      name: string,
      help: string,
      labelNames: L[],
      totals: () => Array<[Partial<Record<L, string>>, number]>,
    ) => {
      const seen = new Map<string, number>();
      new Counter({
        name,
        help,
        labelNames,
        registers,
        collect() {
          for (const [labels, total] of totals()) {
            const key = JSON.stringify(labels);
            // inc(0) too: every series exists from the first scrape, so rate() sees it start at 0.
            this.inc(labels, Math.max(0, total - (seen.get(key) ?? 0)));
            seen.set(key, Math.max(total, seen.get(key) ?? 0));
          }
        },
      });
    };
    fromTotals('edgelive_whep_sessions_started_total', 'WebRTC viewers accepted (an answer sent).', [], () => [
      [{}, read().counters.accepted],
    ]);
    fromTotals(
      'edgelive_whep_refused_total',
      'WHEP offers refused before anything was allocated: capacity (WHEP_MAX_VIEWERS, 503), ticket (missing, forged, expired), other (size, SDP, rate, stream not here).',
      ['reason'],
      () => {
        const c = read().counters;
        return [
          [{ reason: 'capacity' }, c.full],
          [{ reason: 'ticket' }, c.unauthorized],
          [{ reason: 'other' }, c.refused - c.full - c.unauthorized],
        ];
      },
    );
    const kinds = ['video', 'audio'] as const;
    fromTotals('edgelive_whep_forwarded_packets_total', 'RTP packets sent to WebRTC viewers, by kind.', ['kind'], () =>
      kinds.map((kind): [{ kind: string }, number] => [{ kind }, read().counters.forwarded[kind].packets]),
    );
    fromTotals('edgelive_whep_forwarded_bytes_total', 'RTP bytes sent to WebRTC viewers (headers included), by kind.', ['kind'], () =>
      kinds.map((kind): [{ kind: string }, number] => [{ kind }, read().counters.forwarded[kind].bytes]),
    );
  }

  get contentType(): string {
    return this.registry.contentType;
  }

  /** The Prometheus text exposition. */
  async render(): Promise<string> {
    this.syncSrt();
    return this.registry.metrics();
  }

  sessionStarted(protocol: PublishProtocol): void {
    this.started++;
    this.sessionsStarted.inc({ protocol });
  }

  publisherRefused(protocol: PublishProtocol, reason: string): void {
    this.refusedCount++;
    this.refused.inc({ protocol, reason });
  }

  ingestReceived(protocol: PublishProtocol, bytes: number): void {
    this.ingestBytes.inc({ protocol }, bytes);
  }

  /** An acknowledged push (`kind` part, or other: init and segments). */
  pushAcked(kind: 'part' | 'other', ms: number, bytes: number, file?: string): void {
    this.pushes++;
    this.pushedByteCount += bytes;
    this.pushedBytes.inc(bytes);
    const label = kind === 'part' ? 'part' : file === 'init.mp4' ? 'init' : 'segment';
    this.pushDuration.observe({ kind: label }, ms / 1000);
    if (kind === 'part') {
      this.partLatencies.push(ms);
      // A bounded ring of recent samples keeps memory flat on long streams.
      if (this.partLatencies.length > 2048) this.partLatencies.splice(0, 1024);
    }
  }

  /** A failed origin call of a push: retried (network, 5xx, 429) or refused for good. */
  pushFailed(code: string, retryable: boolean): void {
    (retryable ? this.pushRetries : this.pushRefusals).inc({ code });
  }

  registryCall(call: 'register' | 'heartbeat', ok: boolean): void {
    this.registryCalls.inc({ call, outcome: ok ? 'ok' : 'failed' });
    if (ok) this.registryLastOk.set(Date.now() / 1000);
  }

  /** The latest `-progress` reading of a stream's ladder. `restarted`: a new ffmpeg (its frame counters start at 0). */
  encoder(stream: string, s: EncoderStatus, restarted = false): void {
    if (s.speed !== null) this.encoderSpeed.set({ stream }, round(s.speed));
    this.encoderFps.set({ stream }, s.fps);
    this.encoderLag.set({ stream }, round(s.lagSeconds));
    this.encoderBehind.set({ stream }, s.behind ? 1 : 0);
    const seen = restarted ? { dropped: 0, duplicated: 0 } : (this.frameCounts.get(stream) ?? { dropped: 0, duplicated: 0 });
    // inc(0) too: every stream has its series from its first reading, so rate() sees it start at 0.
    this.droppedFrames.inc({ stream }, Math.max(0, s.droppedFrames - seen.dropped));
    this.duplicatedFrames.inc({ stream }, Math.max(0, s.duplicatedFrames - seen.duplicated));
    this.frameCounts.set(stream, {
      dropped: Math.max(seen.dropped, s.droppedFrames),
      duplicated: Math.max(seen.duplicated, s.duplicatedFrames),
    });
  }

  restreamFailed(): void {
    this.restreamFailures.inc();
  }

  ladderShed(rendition: string): void {
    this.sheds.inc({ rendition });
  }

  /** The publisher of `stream` left: its series go (the node's series stay bounded by its live streams). */
  streamEnded(stream: string): void {
    for (const m of [this.encoderSpeed, this.encoderFps, this.encoderLag, this.encoderBehind, this.droppedFrames, this.duplicatedFrames])
      m.remove({ stream });
    this.frameCounts.delete(stream);
  }

  /** Counts an SRT connection's packet counters until the returned function is called (at its end). */
  trackSrt(stats: SrtCounters): () => void {
    this.srtFeeds.set(stats, { packets: 0, lost: 0, retransmitted: 0, dropped: 0, undecryptable: 0 });
    return () => {
      this.syncSrt();
      this.srtFeeds.delete(stats);
    };
  }

  private syncSrt(): void {
    for (const [stats, counted] of this.srtFeeds) {
      for (const f of SRT_FIELDS) {
        const delta = stats[f] - counted[f];
        if (delta > 0) this.srt[f].inc(delta);
        counted[f] = stats[f];
      }
    }
  }

  /** The JSON summary of /metrics.json. */
  snapshot(): Record<string, unknown> {
    const sorted = [...this.partLatencies].sort((a, b) => a - b);
    const q = (p: number) => (sorted.length ? sorted[Math.min(sorted.length - 1, Math.floor(p * sorted.length))] : null);
    return {
      sessionsStarted: this.started,
      sessionsRefused: this.refusedCount,
      pushes: this.pushes,
      pushedBytes: this.pushedByteCount,
      partPushMs: { p50: q(0.5), p99: q(0.99), samples: sorted.length },
    };
  }
}

function round(x: number): number {
  return Math.round(x * 1000) / 1000;
}
