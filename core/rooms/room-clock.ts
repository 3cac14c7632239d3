// Clock-offset math for the room's shared clock, and where a watch party's media should be at a
// given room time. Pure functions over numbers, tested without sockets.
//
// One exchange: the client sends t0 (its clock), the server stamps t1 on receipt and t2 on reply
// (its clock), the client stamps t3 on arrival. Because delays are never negative, the true
// offset θ (server − client) satisfies  t2 − t3 ≤ θ ≤ t1 − t0  — every sample is an interval
// that contains θ, and the one with the lowest round-trip delay is the narrowest.
import type { PlaybackState } from './room-protocol.ts';

export interface ClockSample {
  /** Midpoint estimate of θ from this exchange alone (the classic NTP offset). */
  offset: number;
  /** Round-trip delay excluding server time: (t3 − t0) − (t2 − t1). */
  delay: number;
  /** Bounds on θ implied by causality. */
  lo: number;
  hi: number;
  /** Client time the sample was taken (t3). */
  at: number;
}

/** `resolutionMs` widens the bounds by the server stamp's granularity (Date.now() is whole ms). */
export function clockSample(t0: number, t1: number, t2: number, t3: number, resolutionMs = 1): ClockSample {
  return {
    offset: (t1 - t0 + (t2 - t3)) / 2,
    delay: t3 - t0 - (t2 - t1),
    lo: t2 - t3,
    hi: t1 - t0 + resolutionMs,
    at: t3,
  };
}

export interface ClockEstimate {
  /** Estimated θ: add it to the client clock to get room time. */
  offset: number;
  /** Half the width of the interval θ is known to lie in (an error bound, not a guess). */
  uncertainty: number;
  samples: number;
}

/**
 * Keeps the recent samples and estimates θ. The estimate starts from the lowest-delay sample and
 * tightens it with the others: the intersection of all recent intervals still contains θ and is
 * never wider than the lowest-delay sample's own interval, so its midpoint is at least as good.
 * If the intervals stop overlapping (the client's clock was stepped, or it drifted over the
 * window), older samples are dropped and the lowest-delay sample alone is used.
 */
export class ClockEstimator {
  readonly window: number;
  /**
   * Samples older than this are dropped: two clocks drift apart by up to ~0.1 ms a second, so
   * an old interval can stop containing today's offset.
   */
  readonly maxAgeMs: number;
  private samples: ClockSample[] = [];

  constructor(window = 32, maxAgeMs = 300_000) {
    this.window = window;
    this.maxAgeMs = maxAgeMs;
  }

  add(sample: ClockSample): void {
    if (!(sample.delay >= 0) || !Number.isFinite(sample.offset)) return; // impossible sample: drop it
    this.samples.push(sample);
    if (this.samples.length > this.window) this.samples.shift();
    while (this.samples.length > 1 && this.samples[0]!.at < sample.at - this.maxAgeMs) this.samples.shift();
  }

  reset(): void {
    this.samples = [];
  }

  get size(): number {
    return this.samples.length;
  }

  /** The lowest-delay recent sample, or null before the first. */
  best(): ClockSample | null {
    let best: ClockSample | null = null;
    for (const s of this.samples) if (!best || s.delay < best.delay) best = s;
    return best;
  }

  estimate(): ClockEstimate | null {
    const best = this.best();
    if (!best) return null;
    let lo = -Infinity;
    let hi = Infinity;
    for (const s of this.samples) {
      lo = Math.max(lo, s.lo);
      hi = Math.min(hi, s.hi);
    }
    if (lo > hi) {
      // Inconsistent window: keep only samples taken since the best one and fall back to it.
      this.samples = this.samples.filter((s) => s.at >= best.at);
      return { offset: best.offset, uncertainty: (best.hi - best.lo) / 2, samples: this.samples.length };
    }
    return { offset: (lo + hi) / 2, uncertainty: (hi - lo) / 2, samples: this.samples.length };
  }
}

/** Where a follower's media should be (seconds) at room time `roomNowMs`. */
export function playbackPositionAt(state: PlaybackState, roomNowMs: number): number {
  if (!state.playing) return state.position;
  return Math.max(0, state.position + ((roomNowMs - state.at) / 1000) * state.rate);
}

/**
 * How a follower should correct: a small error is absorbed by nudging the rate, a large one by
 * seeking. Returns the seconds the follower is ahead (+) or behind (−) and the action.
 */
export function playbackCorrection(
  state: PlaybackState,
  roomNowMs: number,
  localPosition: number,
  seekThresholdSec = 0.5,
): { drift: number; action: 'none' | 'nudge' | 'seek'; target: number; rate: number } {
  const target = playbackPositionAt(state, roomNowMs);
  const drift = localPosition - target;
  if (!state.playing || Math.abs(drift) >= seekThresholdSec) {
    return { drift, action: Math.abs(drift) < 0.05 ? 'none' : 'seek', target, rate: state.rate };
  }
  if (Math.abs(drift) < 0.05) return { drift, action: 'none', target, rate: state.rate };
  // Catch up or fall back over about two seconds, never changing speed by more than 10 %.
  const rate = state.rate * Math.min(1.1, Math.max(0.9, 1 - drift / 2));
  return { drift, action: 'nudge', target, rate };
}
