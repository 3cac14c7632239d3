// Quality-of-experience beacons, defined once: the batch a player posts to `POST /api/qoe`, how
// each event becomes an Analytics Engine data point, and the mergeable per-minute aggregate that
// `GET /api/streams/:id/stats` answers from. Pure: no I/O, no Worker globals.
import { z } from 'zod';
import { NAME_RE } from './object-keys.ts';

// The plain limits live in ./qoe-limits.ts (no zod: the browser's QoE recorder imports them).
export { QOE_DEFAULT_WINDOW_MINUTES, QOE_KEEP_MINUTES, QOE_MAX_BODY, QOE_MAX_EVENTS, QOE_VIEWER_TTL_MS } from './qoe-limits.ts';
import { QOE_MAX_EVENTS } from './qoe-limits.ts';

const shortText = (max: number) =>
  z
    .string()
    .max(max)
    .regex(/^[\x20-\x7E]*$/, 'printable ASCII');
const ms = z
  .number()
  .finite()
  .min(0)
  .max(24 * 3600 * 1000);

export const QoeEvent = z.discriminatedUnion('type', [
  /** Time to first frame: from the page asking for the stream to the first frame shown. */
  z.strictObject({ type: z.literal('ttff'), ms }),
  /** One rebuffering episode (playback stalled after it had started), with its length. */
  z.strictObject({ type: z.literal('rebuffer'), ms }),
  /** The rendition being shown changed. */
  z.strictObject({
    type: z.literal('switch'),
    from: shortText(64).nullable(),
    to: shortText(64),
    bitrate: z.number().int().min(0).max(1e9),
    auto: z.boolean(),
  }),
  /** Live latency (s) as the player measures it (program-date-time of the frame vs its clock). */
  z.strictObject({ type: z.literal('latency'), sec: z.number().finite().min(0).max(86_400) }),
  /** A player error: hls.js's type and details, or a page-level kind (`forbidden`, `network`). */
  z.strictObject({ type: z.literal('error'), kind: shortText(40), detail: shortText(80), fatal: z.boolean() }),
  /** Sent at least every beacon period while the page is open: time spent playing and stalled since the last one. */
  z.strictObject({ type: z.literal('heartbeat'), playingMs: ms, stalledMs: ms }),
]);
export type QoeEvent = z.infer<typeof QoeEvent>;

export const QoeBatch = z.strictObject({
  v: z.literal(1),
  streamId: z.string().regex(NAME_RE, 'stream id'),
  /** Random per page load: one viewer, however many batches. */
  session: z.string().regex(/^[A-Za-z0-9_-]{8,64}$/, 'session id'),
  page: z.enum(['watch', 'party']).default('watch'),
  events: z.array(QoeEvent).min(1).max(QOE_MAX_EVENTS),
});
export type QoeBatch = z.infer<typeof QoeBatch>;
export type QoeBatchInput = z.input<typeof QoeBatch>;

export interface QoeDataPoint {
  indexes: [string];
  blobs: string[];
  doubles: number[];
}

/**
 * One Analytics Engine point per event. Layout (documented in docs/api.md, used by SQL queries):
 * index1 = stream id; blob1 = event type, blob2 = session, blob3 = page, blob4 = country,
 * blob5/blob6 = event detail (switch: from/to rendition; error: kind/detail);
 * double1 = the value (ms, seconds or bitrate), double2 = a second value (heartbeat stalledMs,
 * error fatal 0/1, switch auto 0/1).
 */
export function qoeDataPoints(batch: QoeBatch, country: string): QoeDataPoint[] {
  return batch.events.map((e) => {
    const base = [e.type, batch.session, batch.page, country];
    switch (e.type) {
      case 'ttff':
      case 'rebuffer':
        return { indexes: [batch.streamId], blobs: [...base, '', ''], doubles: [e.ms, 0] };
      case 'latency':
        return { indexes: [batch.streamId], blobs: [...base, '', ''], doubles: [e.sec, 0] };
      case 'switch':
        return { indexes: [batch.streamId], blobs: [...base, e.from ?? '', e.to], doubles: [e.bitrate, e.auto ? 1 : 0] };
      case 'error':
        return { indexes: [batch.streamId], blobs: [...base, e.kind, e.detail], doubles: [1, e.fatal ? 1 : 0] };
      case 'heartbeat':
        return { indexes: [batch.streamId], blobs: [...base, '', ''], doubles: [e.playingMs, e.stalledMs] };
    }
  });
}

// ---------------------------------------------------------------------------------------------
// Log-scale histograms: bucket i holds values in [BASE^i, BASE^(i+1)) of the unit, so a
// quantile is known within ±5 % whatever the range, and merging two is adding counts.

const BASE = 1.1;
const LOG_BASE = Math.log(BASE);

/** Sparse histogram: bucket index → count. Values ≤ 1 unit share bucket 0. */
export type Histogram = Record<string, number>;

export function histogramAdd(h: Histogram, value: number, count = 1): void {
  const i = value <= 1 ? 0 : Math.floor(Math.log(value) / LOG_BASE);
  h[i] = (h[i] ?? 0) + count;
}

export function histogramMerge(into: Histogram, from: Histogram): void {
  for (const [k, n] of Object.entries(from)) into[k] = (into[k] ?? 0) + n;
}

export function histogramCount(h: Histogram): number {
  let n = 0;
  for (const c of Object.values(h)) n += c;
  return n;
}

/** The q-quantile (0..1), as the geometric middle of its bucket; null for an empty histogram. */
export function histogramQuantile(h: Histogram, q: number): number | null {
  const entries = Object.entries(h)
    .map(([k, n]) => [Number(k), n] as const)
    .sort((a, b) => a[0] - b[0]);
  const total = entries.reduce((s, [, n]) => s + n, 0);
  if (total === 0) return null;
  const rank = Math.min(total, Math.max(1, Math.ceil(q * total)));
  let seen = 0;
  for (const [i, n] of entries) {
    seen += n;
    if (seen >= rank) return i === 0 ? 1 : BASE ** (i + 0.5);
  }
  return null;
}

// ---------------------------------------------------------------------------------------------
// The aggregate of one minute (or of any window: aggregates merge by adding).

export interface QoeAggregate {
  batches: number;
  /** Time to first frame, ms. */
  ttffMs: Histogram;
  /** Live latency samples, in ms (the histogram's unit). */
  latencyMs: Histogram;
  rebufferCount: number;
  rebufferMs: number;
  playingMs: number;
  switches: number;
  errors: number;
  fatalErrors: number;
  /** `kind/detail` → count, at most ERROR_KEYS distinct keys (the rest under `other`). */
  errorsByDetail: Record<string, number>;
}

const ERROR_KEYS = 20;

export function emptyAggregate(): QoeAggregate {
  return {
    batches: 0,
    ttffMs: {},
    latencyMs: {},
    rebufferCount: 0,
    rebufferMs: 0,
    playingMs: 0,
    switches: 0,
    errors: 0,
    fatalErrors: 0,
    errorsByDetail: {},
  };
}

function countError(into: Record<string, number>, key: string, n: number): void {
  const k = key in into || Object.keys(into).length < ERROR_KEYS ? key : 'other';
  into[k] = (into[k] ?? 0) + n;
}

/** The aggregate of one batch. */
export function aggregateBatch(batch: QoeBatch): QoeAggregate {
  const a = emptyAggregate();
  a.batches = 1;
  for (const e of batch.events) {
    switch (e.type) {
      case 'ttff':
        histogramAdd(a.ttffMs, e.ms);
        break;
      case 'latency':
        histogramAdd(a.latencyMs, e.sec * 1000);
        break;
      case 'rebuffer':
        a.rebufferCount++;
        a.rebufferMs += e.ms;
        break;
      case 'switch':
        a.switches++;
        break;
      case 'error':
        a.errors++;
        if (e.fatal) a.fatalErrors++;
        countError(a.errorsByDetail, `${e.kind}/${e.detail}`, 1);
        break;
      case 'heartbeat':
        a.playingMs += e.playingMs;
        break;
    }
  }
  return a;
}

export function mergeAggregate(into: QoeAggregate, from: QoeAggregate): QoeAggregate {
  into.batches += from.batches;
  histogramMerge(into.ttffMs, from.ttffMs);
  histogramMerge(into.latencyMs, from.latencyMs);
  into.rebufferCount += from.rebufferCount;
  into.rebufferMs += from.rebufferMs;
  into.playingMs += from.playingMs;
  into.switches += from.switches;
  into.errors += from.errors;
  into.fatalErrors += from.fatalErrors;
  for (const [k, n] of Object.entries(from.errorsByDetail)) countError(into.errorsByDetail, k, n);
  return into;
}

const round = (x: number | null, digits: number): number | null => (x === null ? null : Number(x.toFixed(digits)));
const quantile = (h: Histogram, q: number, scale: number, digits: number): number | null => {
  const v = histogramQuantile(h, q);
  return v === null ? null : round(v / scale, digits);
};

/** What `GET /api/streams/:id/stats` shows of an aggregate. */
export function summarizeAggregate(a: QoeAggregate) {
  const watched = a.playingMs + a.rebufferMs;
  return {
    beacons: a.batches,
    timeToFirstFrameMs: { count: histogramCount(a.ttffMs), p50: quantile(a.ttffMs, 0.5, 1, 0), p95: quantile(a.ttffMs, 0.95, 1, 0) },
    latencySec: { count: histogramCount(a.latencyMs), p50: quantile(a.latencyMs, 0.5, 1000, 3), p95: quantile(a.latencyMs, 0.95, 1000, 3) },
    rebuffering: {
      count: a.rebufferCount,
      seconds: round(a.rebufferMs / 1000, 1),
      ratio: watched > 0 ? round(a.rebufferMs / watched, 4) : null,
    },
    playingSeconds: round(a.playingMs / 1000, 1),
    renditionSwitches: a.switches,
    errors: { count: a.errors, fatal: a.fatalErrors, byDetail: a.errorsByDetail },
  };
}
export type QoeSummary = ReturnType<typeof summarizeAggregate>;
