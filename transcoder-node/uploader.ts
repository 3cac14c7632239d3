// Pushes one rendition's init, parts and segments to the origin strictly in order, with retries
// and a bounded queue: when the queue is full, `whenWritable()` makes the producer wait, which
// pauses the ffmpeg pipe and, through it, the publisher's socket (back-pressure end to end).
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
  /** Jobs queued before the producer is asked to wait. */
  highWaterMark?: number;
  maxAttempts?: number;
  baseDelayMs?: number;
  /** Called once when the origin refuses a push for good (stale epoch, ended stream, …). */
  onFatal: (err: OriginError) => void;
  /** Called after each acknowledged push with the time from readyAt to the acknowledgement. */
  onAck?: (job: UploadJob, ms: number) => void;
}

export class RenditionUploader {
  private readonly queue: UploadJob[] = [];
  private readonly opts: Required<Omit<UploaderOptions, 'onAck'>> & Pick<UploaderOptions, 'onAck'>;
  private running = false;
  private failed = false;
  private drainWaiters: Array<() => void> = [];
  private idleWaiters: Array<() => void> = [];

  constructor(opts: UploaderOptions) {
    this.opts = { highWaterMark: 32, maxAttempts: 8, baseDelayMs: 100, ...opts };
  }

  get pending(): number {
    return this.queue.length;
  }

  get dead(): boolean {
    return this.failed;
  }

  enqueue(job: UploadJob): void {
    if (this.failed) return;
    this.queue.push(job);
    if (!this.running) void this.run();
  }

  /** Resolves when the queue is below its high-water mark. */
  whenWritable(): Promise<void> {
    if (this.queue.length < this.opts.highWaterMark || this.failed) return Promise.resolve();
    return new Promise((resolve) => this.drainWaiters.push(resolve));
  }

  /** Resolves when every queued job has been acknowledged (or the uploader has failed). */
  whenIdle(): Promise<void> {
    if ((this.queue.length === 0 && !this.running) || this.failed) return Promise.resolve();
    return new Promise((resolve) => this.idleWaiters.push(resolve));
  }

  private async run(): Promise<void> {
    this.running = true;
    while (this.queue.length > 0 && !this.failed) {
      const job = this.queue[0]!;
      const ok = await this.sendWithRetry(job);
      if (!ok) break;
      this.queue.shift();
      if (this.queue.length < this.opts.highWaterMark) this.release('drain');
    }
    this.running = false;
    this.release('drain');
    this.release('idle');
  }

  private async sendWithRetry(job: UploadJob): Promise<boolean> {
    for (let attempt = 1; ; attempt++) {
      try {
        await this.opts.send(job);
        this.opts.onAck?.(job, Date.now() - job.readyAt);
        return true;
      } catch (err) {
        const e = err instanceof OriginError ? err : new OriginError(0, 'error', String(err));
        if (!e.retryable || attempt >= this.opts.maxAttempts) {
          this.opts.logger.error('push refused for good', { file: job.file, status: e.status, code: e.code, reason: e.message, attempt });
          this.failed = true;
          this.queue.length = 0;
          this.opts.onFatal(e);
          return false;
        }
        const delay = Math.min(5_000, this.opts.baseDelayMs * 2 ** (attempt - 1)) * (0.5 + Math.random() / 2);
        this.opts.logger.warn('push failed, retrying', { file: job.file, status: e.status, code: e.code, attempt, delayMs: Math.round(delay) });
        await new Promise((r) => setTimeout(r, delay));
      }
    }
  }

  private release(which: 'drain' | 'idle'): void {
    const list = which === 'drain' ? this.drainWaiters : this.idleWaiters;
    if (which === 'idle' && (this.queue.length > 0 || this.running) && !this.failed) return;
    const waiters = list.splice(0);
    for (const w of waiters) w();
  }
}
