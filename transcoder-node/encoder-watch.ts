// Whether a ladder keeps up with real time, from ffmpeg's `-progress` blocks: the encoder's speed
// over a sliding window, its fps and dropped/duplicated frames, and how far the encoded media has
// drifted behind the wall clock since the ladder started. Pure: the caller passes the time.

/** One `-progress` block, read. */
export interface ProgressSample {
  /** Wall-clock time the block was read (ms). */
  atMs: number;
  /** Media time encoded so far (s); null until the first frame has left the encoders. */
  outTime: number | null;
  frame: number;
  fps: number;
  droppedFrames: number;
  duplicatedFrames: number;
}

/** Reads one block of `-progress` key=value pairs (ffmpeg writes N/A before it knows a figure). */
export function parseProgress(block: Record<string, string>, atMs: number): ProgressSample {
  const num = (key: string): number | null => {
    const raw = block[key];
    if (raw === undefined || raw === 'N/A' || raw === '') return null;
    const value = Number(raw);
    return Number.isFinite(value) ? value : null;
  };
  const outUs = num('out_time_us') ?? num('out_time_ms'); // both are microseconds in ffmpeg 5+
  return {
    atMs,
    // 0 until the first frame has left every encoder: nothing to measure yet.
    outTime: outUs !== null && outUs > 0 ? outUs / 1e6 : null,
    frame: num('frame') ?? 0,
    fps: num('fps') ?? 0,
    droppedFrames: num('drop_frames') ?? 0,
    duplicatedFrames: num('dup_frames') ?? 0,
  };
}

export interface EncoderWatchOptions {
  /** Below this speed (media seconds per wall second, over the window) the ladder is slower than real time. Default 0.95. */
  minSpeed?: number;
  /** ... and only once the media has drifted this far behind the wall clock (s). Default 2. */
  maxLagSeconds?: number;
  /** The window the speed is measured over (s). Default 5. */
  windowSeconds?: number;
  /**
   * ... and only once both have held this long without a break (s). Default 10: a ladder starved
   * for a few seconds (a start on a busy machine, a neighbour's burst) catches up by itself, and
   * shedding a rung for it would cost its viewers a discontinuity for nothing.
   */
  sustainSeconds?: number;
}

export interface EncoderStatus {
  /** Media seconds encoded per wall-clock second over the window; null until a window is full. */
  speed: number | null;
  fps: number;
  droppedFrames: number;
  duplicatedFrames: number;
  /** How far the encoded media has fallen behind the wall clock since the first frame (s, ≥ 0). */
  lagSeconds: number;
  /** Slower than real time and already late: the viewers' latency grows while this holds. */
  behind: boolean;
  /** `behind` changed with this sample. */
  changed: boolean;
}

export class EncoderWatch {
  private readonly minSpeed: number;
  private readonly maxLag: number;
  private readonly windowMs: number;
  private readonly sustainMs: number;
  /** Since when speed and lag have both been past their bounds without a break (ms); null: they are not. */
  private slowSinceMs: number | null = null;
  /** Samples with a media time, oldest first, spanning at most a little more than the window. */
  private readonly recent: Array<{ atMs: number; outTime: number }> = [];
  /** The smallest (wall − media) offset seen: the start-up delay (probe, first GOP), not drift. */
  private baseOffset = Infinity;
  private behind = false;
  private last: EncoderStatus = {
    speed: null,
    fps: 0,
    droppedFrames: 0,
    duplicatedFrames: 0,
    lagSeconds: 0,
    behind: false,
    changed: false,
  };

  constructor(opts: EncoderWatchOptions = {}) {
    this.minSpeed = opts.minSpeed ?? 0.95;
    this.maxLag = opts.maxLagSeconds ?? 2;
    this.windowMs = (opts.windowSeconds ?? 5) * 1000;
    this.sustainMs = (opts.sustainSeconds ?? 10) * 1000;
    if (!(this.minSpeed > 0 && this.minSpeed <= 1)) throw new RangeError('minSpeed is in (0, 1]');
    if (!(this.maxLag >= 0) || !(this.windowMs > 0) || !(this.sustainMs >= 0))
      throw new RangeError('maxLagSeconds ≥ 0, windowSeconds > 0 and sustainSeconds ≥ 0');
  }

  get status(): EncoderStatus {
    return this.last;
  }

  push(sample: ProgressSample): EncoderStatus {
    let speed: number | null = null;
    let lag = this.last.lagSeconds;
    if (sample.outTime !== null) {
      const offset = sample.atMs / 1000 - sample.outTime;
      this.baseOffset = Math.min(this.baseOffset, offset);
      lag = Math.max(0, offset - this.baseOffset);
      this.recent.push({ atMs: sample.atMs, outTime: sample.outTime });
      // Keep the newest sample that is at least a window old, and everything after it.
      while (this.recent.length > 2 && sample.atMs - this.recent[1]!.atMs >= this.windowMs) this.recent.shift();
      const first = this.recent[0]!;
      const span = sample.atMs - first.atMs;
      if (span >= this.windowMs) speed = (sample.outTime - first.outTime) / (span / 1000);
    }
    let behind = this.behind;
    if (speed !== null) {
      const slow = speed < this.minSpeed && lag > this.maxLag;
      if (!slow) this.slowSinceMs = null;
      else this.slowSinceMs ??= sample.atMs;
      if (slow && sample.atMs - this.slowSinceMs! >= this.sustainMs) behind = true;
      else if (speed >= this.minSpeed) behind = false;
    }
    const changed = behind !== this.behind;
    this.behind = behind;
    this.last = {
      speed,
      fps: sample.fps,
      droppedFrames: sample.droppedFrames,
      duplicatedFrames: sample.duplicatedFrames,
      lagSeconds: lag,
      behind,
      changed,
    };
    return this.last;
  }
}
