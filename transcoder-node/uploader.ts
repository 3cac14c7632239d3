// Pushes one rendition's init, parts and segments to the origin in order, a few at a time, with
// retries and a bounded queue: when the queue is full, `whenWritable()` makes the producer wait,
// which pauses the ffmpeg pipe and, through it, the publisher's socket (back-pressure end to end).
//
// Pipelining: up to `maxInFlight` pushes travel at once, so one slow push (a segment, a slow R2
// write) no longer holds up the parts behind it. Order is kept by the origin, not by the wire:
// StreamState stores a push that arrives ahead of its predecessor and announces it only after
// the predecessor (docs/architecture.md, the live path, steps 4-5). An init segment travels
// alone: nothing of an epoch is accepted before its init.
import type { Logger } from './log.ts';
import { OriginError } from './origin-client.ts';

export interface UploadJob {
  /** File name in the rendition folder: init.mp4, {msn}.m4s, {msn}.{part}.m4s. */
  file: string;
  bytes: Uint8Array;
  meta: unknown;
  /** When the producer finished the object (for the publish-latency metric). */
  readyAt: number;
}

export interface UploaderOptions {
  send: (job: UploadJob) => Promise<void>;
  logger: Logger;
  /** Jobs queued (in flight included) before the producer is asked to wait. */
  highWaterMark?: number;
  /** Pushes in flight at once (1: strictly one after the other). */
  maxInFlight?: number;
  maxAttempts?: number;
  baseDelayMs?: number;
  /** Called once when the origin refuses a push for good (stale epoch, ended stream, …). */
  onFatal: (err: OriginError) => void;
  /** Called after each acknowledged push with the time from readyAt to the acknowledgement. */
  onAck?: (job: UploadJob, ms: number) => void;
}

/** In flight at once by default: enough to overlap a segment push with the parts after it. */
export const DEFAULT_MAX_IN_FLIGHT = 3;

/** A job that travels alone: the init segment (the origin refuses media of an epoch before it). */
function travelsAlone(job: UploadJob): boolean {
  return job.file === 'init.mp4';
}

interface Slot {
  job: UploadJob;
  acked: boolean;
}

export class RenditionUploader {
  /** Not sent yet, oldest first. */
  private readonly queue: UploadJob[] = [];
  /** Sent and not yet retired, in queue order; retired from the front once acknowledged. */
  private readonly inFlight: Slot[] = [];
  private readonly opts: Required<Omit<UploaderOptions, 'onAck'>> & Pick<UploaderOptions, 'onAck'>;
  private failed = false;
  private drainWaiters: Array<() => void> = [];
  private idleWaiters: Array<() => void> = [];

  constructor(opts: UploaderOptions) {
    this.opts = { highWaterMark: 32, maxInFlight: DEFAULT_MAX_IN_FLIGHT, maxAttempts: 8, baseDelayMs: 100, ...opts };
    if (this.opts.maxInFlight < 1) this.opts.maxInFlight = 1;
  }

  /** Jobs not yet acknowledged: queued and in flight. */
  get pending(): number {
    return this.queue.length + this.inFlight.length;
  }

  get dead(): boolean {
    return this.failed;
  }

  enqueue(job: UploadJob): void {
    if (this.failed) return;
    this.queue.push(job);
    this.pump();
  }

  /** Resolves when fewer than the high-water mark of jobs are pending. */
  whenWritable(): Promise<void> {
    if (this.pending < this.opts.highWaterMark || this.failed) return Promise.resolve();
    return new Promise((resolve) => this.drainWaiters.push(resolve));
  }

  /** Resolves when every queued job has been acknowledged (or the uploader has failed). */
  whenIdle(): Promise<void> {
    if (this.pending === 0 || this.failed) return Promise.resolve();
    return new Promise((resolve) => this.idleWaiters.push(resolve));
  }

  /** Starts as many queued jobs as the window allows. */
  private pump(): void {
    while (!this.failed && this.queue.length > 0 && this.inFlight.length < this.opts.maxInFlight) {
      const next = this.queue[0]!;
      if (this.inFlight.length > 0 && (travelsAlone(next) || travelsAlone(this.inFlight[0]!.job))) break;
      this.queue.shift();
      const slot: Slot = { job: next, acked: false };
      this.inFlight.push(slot);
      void this.sendWithRetry(next).then((ok) => {
        if (!ok || this.failed) return;
        slot.acked = true;
        // Acknowledgements come back in order (the origin announces in order), but a duplicate's
        // 200 may overtake: retire only the acknowledged front of the window.
        while (this.inFlight.length > 0 && this.inFlight[0]!.acked) this.inFlight.shift();
        this.pump();
        if (this.pending < this.opts.highWaterMark) this.release('drain');
        if (this.pending === 0) this.release('idle');
      });
    }
  }

  private async sendWithRetry(job: UploadJob): Promise<boolean> {
    for (let attempt = 1; ; attempt++) {
      try {
        await this.opts.send(job);
        if (this.failed) return false;
        this.opts.onAck?.(job, Date.now() - job.readyAt);
        return true;
      } catch (err) {
        if (this.failed) return false;
        const e = err instanceof OriginError ? err : new OriginError(0, 'error', String(err));
        if (!e.retryable || attempt >= this.opts.maxAttempts) {
          this.fail(job, e, attempt);
          return false;
        }
        const delay = Math.min(5_000, this.opts.baseDelayMs * 2 ** (attempt - 1)) * (0.5 + Math.random() / 2);
        this.opts.logger.warn('push failed, retrying', {
          file: job.file,
          status: e.status,
          code: e.code,
          attempt,
          delayMs: Math.round(delay),
        });
        await new Promise((r) => setTimeout(r, delay));
        if (this.failed) return false;
      }
    }
  }

  private fail(job: UploadJob, e: OriginError, attempt: number): void {
    this.opts.logger.error('push refused for good', { file: job.file, status: e.status, code: e.code, reason: e.message, attempt });
    this.failed = true;
    this.queue.length = 0;
    this.inFlight.length = 0;
    this.opts.onFatal(e);
    this.release('drain');
    this.release('idle');
  }

  private release(which: 'drain' | 'idle'): void {
    const waiters = (which === 'drain' ? this.drainWaiters : this.idleWaiters).splice(0);
    for (const w of waiters) w();
  }
}
