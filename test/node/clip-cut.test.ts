// Where a clip cuts a rendition (core/live/clip-cut.ts): to the part at both ends.
import { describe, expect, it } from 'vitest';
import { cutClip, type ClipSegment } from '../../core/live/clip-cut.ts';

const T0 = Date.UTC(2026, 0, 1, 12);
/** n segments of five 0.2 s parts of 100 bytes, starting at T0 + gapMs before segment `gapAt`. */
function segments(n: number, gapAt = -1, gapMs = 0): ClipSegment[] {
  const out: ClipSegment[] = [];
  let t = T0;
  for (let i = 0; i < n; i++) {
    if (i === gapAt) t += gapMs;
    out.push({ msn: i + 1, programDateTime: t, duration: 1, parts: Array.from({ length: 5 }, () => ({ duration: 0.2, size: 100 })) });
    t += 1000;
  }
  return out;
}

describe('cutClip', () => {
  it('starts at the part holding the start and ends with the part holding the end', () => {
    // 2.5 s → 7.3 s: segment 3 from its part 2 (2.4 s), to segment 8 through its part 1 (7.2–7.4 s).
    const cut = cutClip(segments(10), T0 + 2500, T0 + 7300)!;
    expect(cut).toMatchObject({ firstMsn: 3, lastMsn: 8, startOffset: 0.4, lastPartCount: 2, lastDuration: 0.4, lastByteLength: 200 });
    expect(cut.startMs).toBe(T0 + 2400);
    expect(cut.endMs).toBe(T0 + 7400);
    expect(cut.duration).toBeCloseTo(5, 6);
  });

  it('lists a whole last segment without a byte range when the end is in its last part', () => {
    const cut = cutClip(segments(10), T0 + 1000, T0 + 4900)!;
    expect(cut).toMatchObject({ firstMsn: 2, lastMsn: 5, startOffset: 0, lastByteLength: null, lastDuration: 1, duration: 4 });
  });

  it('an end on a part boundary does not take the next part', () => {
    const cut = cutClip(segments(10), T0, T0 + 3400)!;
    expect(cut).toMatchObject({ lastMsn: 4, lastPartCount: 2, duration: 3.4 });
  });

  it('a clip inside one segment', () => {
    const cut = cutClip(segments(3), T0 + 1200, T0 + 1500)!;
    expect(cut).toMatchObject({ firstMsn: 2, lastMsn: 2, startOffset: 0.2, lastPartCount: 3, lastByteLength: 300 });
    expect(cut.duration).toBeCloseTo(0.4, 6);
  });

  it('a start in a reconnection gap begins at the next segment', () => {
    const cut = cutClip(segments(6, 3, 2000), T0 + 3500, T0 + 6500)!;
    expect(cut).toMatchObject({ firstMsn: 4, startOffset: 0 });
    expect(cut.startMs).toBe(T0 + 5000);
  });

  it('nothing to cut: an empty range or no media in it', () => {
    expect(cutClip(segments(3), T0 + 2000, T0 + 2000)).toBeNull();
    expect(cutClip(segments(3), T0 + 5000, T0 + 6000)).toBeNull();
    expect(cutClip([], T0, T0 + 1000)).toBeNull();
  });
});
