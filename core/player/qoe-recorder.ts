// The player side of QoE beacons: turns what the player saw (first frame, stalls, switches,
// latency samples, errors) into the batches of `POST /api/qoe` (core/contracts/qoe.ts), at most
// 20 events and one batch per period, plus a heartbeat of time played and stalled. Pure: the
// page calls `tick(now)` and sends what it returns.
import { QOE_MAX_EVENTS } from '../contracts/qoe-limits.ts';
import type { QoeBatchInput, QoeEvent } from '../contracts/qoe.ts';

export const QOE_PERIOD_MS = 10_000;
/** Latency is sampled into the batch at most this often. */
const LATENCY_EVERY_MS = 5_000;
/** Events kept while the beacon endpoint cannot be reached; older ones are dropped. */
const MAX_QUEUED = 200;

export class QoeRecorder {
  readonly streamId: string;
  readonly session: string;
  readonly page: 'watch' | 'party';
  private queue: QoeEvent[] = [];
  private lastFlush: number;
  private lastLatencyAt = -Infinity;
  private playingSince: number | null = null;
  private stalledSince: number | null = null;
  private playingMs = 0;
  private stalledMs = 0;
  private started = false;
  private firstFrameSent = false;

  constructor(opts: { streamId: string; session: string; page: 'watch' | 'party'; now: number }) {
    this.streamId = opts.streamId;
    this.session = opts.session;
    this.page = opts.page;
    this.lastFlush = opts.now;
  }

  private push(e: QoeEvent): void {
    this.queue.push(e);
    if (this.queue.length > MAX_QUEUED) this.queue.splice(0, this.queue.length - MAX_QUEUED);
  }

  firstFrame(ttffMs: number, now: number): void {
    if (this.firstFrameSent) return;
    this.firstFrameSent = true;
    this.push({ type: 'ttff', ms: Math.max(0, Math.round(ttffMs)) });
    this.playing(now);
  }

  /** The video is advancing. Ends a stall (a rebuffer, once playback had started). */
  playing(now: number): void {
    if (this.stalledSince !== null) {
      const ms = now - this.stalledSince;
      this.stalledMs += ms;
      if (this.started) this.push({ type: 'rebuffer', ms: Math.round(ms) });
      this.stalledSince = null;
    }
    this.started = true;
    this.playingSince ??= now;
  }

  /** The video waits for data although it should play. */
  stalled(now: number): void {
    this.stopPlaying(now);
    this.stalledSince ??= now;
  }

  /** Paused, ended or hidden by the viewer: neither playing nor stalled. */
  idle(now: number): void {
    this.stopPlaying(now);
    if (this.stalledSince !== null) {
      this.stalledMs += now - this.stalledSince;
      this.stalledSince = null;
    }
  }

  private stopPlaying(now: number): void {
    if (this.playingSince !== null) {
      this.playingMs += now - this.playingSince;
      this.playingSince = null;
    }
  }

  renditionSwitch(from: string | null, to: string, bitrate: number, auto: boolean): void {
    this.push({ type: 'switch', from, to, bitrate: Math.round(bitrate), auto });
  }

  latency(sec: number, now: number): void {
    if (!Number.isFinite(sec) || sec < 0 || now - this.lastLatencyAt < LATENCY_EVERY_MS) return;
    this.lastLatencyAt = now;
    this.push({ type: 'latency', sec: Math.round(sec * 1000) / 1000 });
  }

  error(kind: string, detail: string, fatal: boolean): void {
    const ascii = (s: string, n: number) => s.replace(/[^\x20-\x7E]/g, '?').slice(0, n);
    this.push({ type: 'error', kind: ascii(kind, 40), detail: ascii(detail, 80), fatal });
  }

  /**
   * Batches due now: everything queued once a period has passed (with a heartbeat), or early
   * when a full batch is waiting; `final` (page hidden or closing) flushes whatever there is.
   */
  tick(now: number, final = false): QoeBatchInput[] {
    // The first frame goes out at once: it also tells the stats that this viewer is watching.
    const due = final || now - this.lastFlush >= QOE_PERIOD_MS || this.queue.some((e) => e.type === 'ttff');
    if (!due && this.queue.length < QOE_MAX_EVENTS) return [];
    if (due) {
      // Close the running intervals into this heartbeat and reopen them.
      if (this.playingSince !== null) {
        this.playingMs += now - this.playingSince;
        this.playingSince = now;
      }
      if (this.stalledSince !== null) {
        this.stalledMs += now - this.stalledSince;
        this.stalledSince = now;
      }
      this.push({ type: 'heartbeat', playingMs: Math.round(this.playingMs), stalledMs: Math.round(this.stalledMs) });
      this.playingMs = 0;
      this.stalledMs = 0;
      this.lastFlush = now;
    }
    const batches: QoeBatchInput[] = [];
    while (this.queue.length > 0 && (due || this.queue.length >= QOE_MAX_EVENTS)) {
      const events = this.queue.splice(0, QOE_MAX_EVENTS);
      batches.push({ v: 1, streamId: this.streamId, session: this.session, page: this.page, events });
    }
    return batches;
  }

  /** A batch the endpoint did not take goes back to the front of the queue (network hiccup). */
  requeue(batch: QoeBatchInput): void {
    this.queue.unshift(...(batch.events as QoeEvent[]));
    if (this.queue.length > MAX_QUEUED) this.queue.length = MAX_QUEUED;
  }
}
