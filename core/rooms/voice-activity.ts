// Who is speaking, from an audio level: a detector with two thresholds and a hold, so a voice
// that dips between words does not flicker, plus the spacing that keeps a member's speaking
// flips few enough for the room (each one is a message to every member). Pure: levels in, a
// boolean out, time given by the caller.

export interface SpeakingSpec {
  /** Level (dBFS, RMS) above which a voice starts counting as speaking. */
  onDb: number;
  /** Level below which it may stop. */
  offDb: number;
  /** Above `onDb` this long before speaking starts (a click or a cough is not speech). */
  attackMs: number;
  /** Below `offDb` this long before speaking stops (the pauses between words). */
  releaseMs: number;
}

export const SPEAKING: SpeakingSpec = { onDb: -45, offDb: -55, attackMs: 60, releaseMs: 350 };

/** Speaking flips a member sends the room at most this often. */
export const SPEAKING_REPORT_MS = 250;

export function dbfs(rms: number): number {
  return rms <= 1e-9 ? -Infinity : 20 * Math.log10(rms);
}

/** RMS of samples in [-1, 1] (an AnalyserNode's float time-domain data). */
export function rms(samples: ArrayLike<number>): number {
  let sum = 0;
  for (let i = 0; i < samples.length; i++) sum += samples[i]! * samples[i]!;
  return samples.length ? Math.sqrt(sum / samples.length) : 0;
}

export class SpeakingDetector {
  speaking = false;
  private readonly spec: SpeakingSpec;
  private since: number | null = null;

  constructor(spec: SpeakingSpec = SPEAKING) {
    this.spec = spec;
  }

  /** Feeds one level (dBFS) at time `now` (ms); returns whether `speaking` changed. */
  update(levelDb: number, now: number): boolean {
    const crossing = this.speaking ? levelDb < this.spec.offDb : levelDb >= this.spec.onDb;
    if (!crossing) {
      this.since = null;
      return false;
    }
    this.since ??= now;
    if (now - this.since < (this.speaking ? this.spec.releaseMs : this.spec.attackMs)) return false;
    this.speaking = !this.speaking;
    this.since = null;
    return true;
  }
}
