// One restream destination on the media node: an ffmpeg of its own fed by a tap of the publisher's
// stream (input-relay.ts: bounded, drops rather than slows the publisher), its status (connecting,
// live, retrying with the last error, failed after too many failures in a row, stopped), and
// reconnection with exponential back-off.
import { spawn, type ChildProcess } from 'node:child_process';
import { createInterface } from 'node:readline';
import { restreamBackoffMs, type RestreamState, type RestreamStatus } from '../../core/contracts/restream.ts';
import { trackProbe, type TrackDecision } from '../input-tracks.ts';
import type { SourceTap, TapConsumer } from '../input-relay.ts';
import type { Logger } from '../log.ts';
import type { MediaContainer } from '../publisher.ts';
import { buildRestreamArgs, planRestream, redactUrl } from './args.ts';

/** What an operator can tune (docs/operations.md, "Restreams"). */
export interface RestreamLimits {
  /** Bytes of the source a destination's ffmpeg may hold unread before the tap drops (to its next keyframe). */
  maxBufferedBytes: number;
  /** First retry delay; it doubles with each failure in a row up to backoffMaxMs. */
  backoffBaseMs: number;
  backoffMaxMs: number;
  /** Live this long and the failure count starts again from zero. */
  stableMs: number;
  /** Failed attempts in a row after which the destination is given up (`failed`); 0: never. */
  maxFailures: number;
  /** Bits per second of a video track that has to be transcoded. */
  videoBitrate: number;
  /** Longest wait for the source's codecs before starting ffmpeg (normally the first tags say). */
  probeTimeoutMs: number;
  /** A destination that takes no bytes (or sends no answer) this long fails the attempt. */
  writeTimeoutMs: number;
}

export const DEFAULT_RESTREAM_LIMITS: RestreamLimits = {
  maxBufferedBytes: 4 * 1024 * 1024,
  backoffBaseMs: 1000,
  backoffMaxMs: 60_000,
  stableMs: 15_000,
  maxFailures: 10,
  videoBitrate: 6_000_000,
  probeTimeoutMs: 3000,
  writeTimeoutMs: 10_000,
};

export interface RestreamDestinationOptions {
  id: string;
  /** The full publish URL (key included): never logged as it is. */
  url: string;
  /** Where the source comes from: a tap per attempt. */
  tap: (consumer: TapConsumer, maxBufferedBytes: number) => SourceTap;
  container: MediaContainer;
  logger: Logger;
  limits: RestreamLimits;
  /** Called on every change of status. */
  onChange: (status: RestreamStatus) => void;
  ffmpegPath?: string;
  random?: () => number;
}

export class RestreamDestination {
  readonly id: string;
  readonly url: string;
  private readonly opts: RestreamDestinationOptions;
  private readonly log: Logger;
  private state: RestreamState = 'stopped';
  private error: string | null = null;
  private since = Date.now();
  private failures = 0;
  private nextAttemptAt: number | null = null;
  private droppedBefore = 0;
  private tap: SourceTap | null = null;
  private child: ChildProcess | null = null;
  private retryTimer: NodeJS.Timeout | null = null;
  private stableTimer: NodeJS.Timeout | null = null;
  private stopping: string | null = null;
  private sourceEnded = false;
  /** Settles when the current attempt is over (its ffmpeg gone). */
  private exited: Promise<void> = Promise.resolve();
  private resolveExited: () => void = () => {};

  constructor(opts: RestreamDestinationOptions) {
    this.opts = opts;
    this.id = opts.id;
    this.url = opts.url;
    this.log = opts.logger.child({ restream: opts.id });
  }

  get status(): RestreamStatus {
    return {
      id: this.id,
      state: this.state,
      error: this.error,
      since: this.since,
      failures: this.failures,
      nextAttemptAt: this.nextAttemptAt,
      droppedBytes: this.droppedBefore + (this.tap?.droppedBytes ?? 0),
    };
  }

  /** The ffmpeg of the current attempt (tests check that it is gone after stop). */
  get pid(): number | undefined {
    return this.child?.pid;
  }

  start(): void {
    if (this.stopping === null && this.state === 'stopped') this.attempt();
  }

  /** Stops for good: the running ffmpeg is ended, no retry follows. */
  async stop(reason: string): Promise<void> {
    if (this.stopping !== null) return this.exited;
    this.stopping = reason;
    if (this.retryTimer) clearTimeout(this.retryTimer);
    const child = this.child;
    if (child) {
      child.kill('SIGTERM');
      // A destination that does not answer can keep ffmpeg in a blocking write: it gets SIGKILL.
      const kill = setTimeout(() => child.kill('SIGKILL'), 3000);
      await this.exited;
      clearTimeout(kill);
    } else this.finish();
  }

  private set(state: RestreamState, error: string | null, nextAttemptAt: number | null = null): void {
    if (state !== this.state) this.since = Date.now();
    this.state = state;
    this.error = error;
    this.nextAttemptAt = nextAttemptAt;
    this.opts.onChange(this.status);
  }

  private attempt(): void {
    this.retryTimer = null;
    if (this.stopping !== null) return;
    this.set('connecting', this.error);
    const limits = this.opts.limits;
    const probe = trackProbe(this.opts.container);
    const head: Buffer[] = [];
    let headBytes = 0;
    let child: ChildProcess | null = null;
    let ended = false;
    this.exited = new Promise((resolve) => (this.resolveExited = resolve));
    const launch = (source: TrackDecision) => {
      clearTimeout(probeTimer);
      if (child || this.stopping !== null || ended) return;
      child = this.spawn(source);
      for (const b of head.splice(0)) child.stdin!.write(b);
      headBytes = 0;
      if (ended) child.stdin!.end();
    };
    const consumer: TapConsumer = {
      write: (bytes) => {
        if (child) return void child.stdin!.write(bytes);
        head.push(bytes);
        headBytes += bytes.byteLength;
        const decision = probe.push(bytes);
        if (decision) launch(decision);
      },
      buffered: () => (child ? child.stdin!.writableLength : headBytes),
      end: () => {
        ended = true;
        this.sourceEnded = true;
        if (child) child.stdin!.end();
        else {
          clearTimeout(probeTimer);
          // Maybe called from inside tap(), before this.tap is set: settle after it.
          queueMicrotask(() => {
            this.tapDone();
            if (this.stopping === null) this.set('stopped', 'the publisher stopped');
            this.resolveExited();
          });
        }
      },
    };
    // The tap's first units (header, metadata, codec configurations) usually decide at once.
    const probeTimer = setTimeout(() => launch(probe.end()), limits.probeTimeoutMs);
    this.tap = this.opts.tap(consumer, limits.maxBufferedBytes);
  }

  private spawn(source: TrackDecision): ChildProcess {
    const limits = this.opts.limits;
    const args = buildRestreamArgs({
      container: this.opts.container,
      source,
      url: this.url,
      videoBitrate: limits.videoBitrate,
      writeTimeoutSeconds: limits.writeTimeoutMs / 1000,
    });
    const child = spawn(this.opts.ffmpegPath ?? 'ffmpeg', args, { stdio: ['pipe', 'ignore', 'pipe'] });
    this.child = child;
    this.log.info('restream ffmpeg started', { pid: child.pid, plan: planRestream(source), codecs: source.codecs ?? null });
    // A destination gone makes ffmpeg exit; writes after that are reported through the exit.
    child.stdin!.on('error', () => {});
    let lastError: string | null = null;
    let done = false;
    const lines = createInterface({ input: child.stderr!, crlfDelay: Infinity });
    let block: Record<string, string> = {};
    lines.on('line', (line) => {
      const m = /^([a-z_0-9]+)=(.*)$/.exec(line);
      if (m) {
        block[m[1]!] = m[2]!.trim();
        if (m[1] === 'progress') {
          this.progress(block);
          block = {};
        }
        return;
      }
      if (line.trim() === '') return;
      lastError = redactUrl(line.trim(), this.url).slice(0, 500);
      this.log.warn('restream ffmpeg', { line: lastError });
    });
    const exit = (code: number | null, signal: NodeJS.Signals | null, err?: Error) => {
      if (done) return;
      done = true;
      // The last lines of stderr arrive before 'close'; 'exit' can come first.
      const reason = err
        ? `ffmpeg could not run: ${err.message}`
        : (lastError ?? (code === 0 ? 'the destination closed the connection' : `ffmpeg exited (${code ?? signal})`));
      // No ffmpeg on this node: trying again cannot help.
      this.attemptEnded(reason, err !== undefined);
      this.resolveExited();
    };
    child.once('error', (err) => exit(null, null, err));
    child.once('close', (code, signal) => exit(code, signal));
    return child;
  }

  /** A `-progress` block: bytes written to the destination and media time moving mean live. */
  private progress(block: Record<string, string>): void {
    if (this.state === 'live' || this.stopping !== null) return;
    const size = Number(block.total_size);
    const outUs = Number(block.out_time_us ?? block.out_time_ms);
    if (!(size > 0 && outUs > 0)) return;
    this.set('live', null);
    this.log.info('restream live', { failures: this.failures });
    this.stableTimer = setTimeout(() => {
      this.failures = 0;
      this.opts.onChange(this.status);
    }, this.opts.limits.stableMs);
  }

  private tapDone(): void {
    if (this.tap) {
      this.droppedBefore += this.tap.droppedBytes;
      this.tap.close();
      this.tap = null;
    }
    if (this.stableTimer) clearTimeout(this.stableTimer);
    this.stableTimer = null;
    this.child = null;
  }

  private attemptEnded(reason: string, hopeless = false): void {
    this.tapDone();
    if (this.stopping !== null) return this.finish();
    if (this.sourceEnded) return this.set('stopped', 'the publisher stopped');
    this.failures++;
    const max = this.opts.limits.maxFailures;
    if (hopeless || (max > 0 && this.failures >= max)) {
      this.log.error('restream failed; given up', { error: reason, failures: this.failures });
      return this.set('failed', reason);
    }
    const delay = restreamBackoffMs(
      this.failures,
      this.opts.limits.backoffBaseMs,
      this.opts.limits.backoffMaxMs,
      (this.opts.random ?? Math.random)(),
    );
    this.log.warn('restream failed; retrying', { error: reason, failures: this.failures, retryInMs: delay });
    this.set('retrying', reason, Date.now() + delay);
    this.retryTimer = setTimeout(() => this.attempt(), delay);
  }

  private finish(): void {
    this.tapDone();
    this.set('stopped', this.stopping);
    this.resolveExited();
  }
}
