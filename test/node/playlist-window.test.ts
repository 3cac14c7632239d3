// What a media playlist lists: parts retention near the live edge (PART-12) and the number of
// segments a delta update skips (DU-03), checked on hand cases and against a brute-force reference.
import { describe, expect, it } from 'vitest';
import type { MediaPlaylistSnapshot, PlaylistTiming, SegmentInfo } from '../../core/contracts/live-model.ts';
import { computeSkip, deltaSnapshot, partsRetained, PART_RETENTION_TARGET_DURATIONS } from '../../core/playlist/window.ts';

const timing = (targetDuration: number, canSkipUntil = 6 * targetDuration): PlaylistTiming => ({
  targetDuration,
  partTarget: 0.2,
  partHoldBack: 0.6,
  holdBack: 3 * targetDuration,
  liveStartOffset: 0.4,
  canSkipUntil,
});
const complete = (...d: number[]) => d.map((duration) => ({ duration }));
const open = (...parts: number[]) => ({ duration: null, parts: parts.map((duration) => ({ duration })) });

/** A small deterministic PRNG (mulberry32), so property sweeps are reproducible. */
function rng(seed: number): () => number {
  return () => {
    seed = (seed + 0x6d2b79f5) | 0;
    let t = Math.imul(seed ^ (seed >>> 15), 1 | seed);
    t = (t + Math.imul(t ^ (t >>> 7), 61 | t)) ^ t;
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

/** Random segments of 1–6 parts of 0.1–0.2 s (5 decimals), like a transcoder cuts them. */
function randomWindow(rand: () => number, n: number, withOpen: boolean) {
  const seg = () => {
    const parts = Array.from({ length: 1 + Math.floor(rand() * 6) }, () => ({ duration: Math.round((0.1 + rand() * 0.1) * 1e5) / 1e5 }));
    return parts;
  };
  const segments: Array<{ duration: number | null; parts: Array<{ duration: number }> }> = [];
  for (let i = 0; i < n; i++) {
    const parts = seg();
    segments.push({ duration: Math.round(parts.reduce((a, p) => a + p.duration, 0) * 1e5) / 1e5, parts });
  }
  if (withOpen) segments.push({ duration: null, parts: seg().slice(0, Math.floor(rand() * 4)) });
  return segments;
}

describe('PART-12 parts retention', () => {
  it('PART-12 keeps parts of segments ending within 3×TD of the playlist end, counting the open parts', () => {
    expect(PART_RETENTION_TARGET_DURATIONS).toBe(3);
    // Open parent 0.4 s in: complete segments end 0.4, 1.4, 2.4, 3.4 s before the end.
    expect(partsRetained([...complete(1, 1, 1, 1, 1), open(0.2, 0.2)], timing(1))).toBe(4);
    // Exactly 3×TD from the end is still within.
    expect(partsRetained([...complete(1, 1, 1, 1, 1), open(0.2, 0.2, 0.2, 0.2, 0.2)], timing(1))).toBe(4);
    expect(partsRetained(complete(1, 1, 1, 1, 1), timing(1))).toBe(4);
    expect(partsRetained(complete(2, 2, 2, 2, 2), timing(2))).toBe(4);
    expect(partsRetained(complete(0.5), timing(1))).toBe(1);
  });

  it('PART-12 always keeps the open parent, even with no or unknown parts', () => {
    expect(partsRetained([open()], timing(1))).toBe(1);
    expect(partsRetained([{ duration: null, parts: null }], timing(1))).toBe(1);
    expect(partsRetained([...complete(1, 1), { duration: null }], timing(1))).toBe(3);
    expect(partsRetained([], timing(1))).toBe(0);
  });

  it('PART-12 matches a reference on absolute times, with 5-decimal durations (no float drift)', () => {
    const rand = rng(12);
    for (let trial = 0; trial < 500; trial++) {
      const td = 1 + Math.floor(rand() * 3);
      const segs = randomWindow(rand, Math.floor(rand() * 25), rand() < 0.7);
      // Reference: absolute end time of each complete segment in 1e-5 s, from the window start.
      const ends: number[] = [];
      let t = 0;
      for (const s of segs) {
        t += Math.round((s.duration ?? s.parts.reduce((a, p) => a + p.duration, 0)) * 1e5);
        ends.push(t);
      }
      const playlistEnd = t;
      const keep = segs.filter((s, i) => s.duration === null || playlistEnd - ends[i]! <= 3 * td * 1e5).length;
      expect(partsRetained(segs, timing(td)), `trial ${trial}`).toBe(keep);
    }
  });
});

describe('DU-03 skip boundary', () => {
  it('DU-03 skips exactly the segments ending at or before E − CAN-SKIP-UNTIL', () => {
    // E = 10, boundary 4: segments end at 1..10, the first four end ≤ 4.
    expect(computeSkip(complete(1, 1, 1, 1, 1, 1, 1, 1, 1, 1), timing(1))).toBe(4);
    // Segment 4 ends at 4.00001 > 4: not skipped.
    expect(computeSkip(complete(1, 1, 1, 1.00001, 0.99999, 1, 1, 1, 1, 1), timing(1))).toBe(3);
    // An open segment at the end does not move E.
    expect(computeSkip([...complete(1, 1, 1, 1, 1, 1, 1, 1, 1, 1), open(0.2, 0.2, 0.2)], timing(1))).toBe(4);
    expect(computeSkip([...complete(1, 1, 1, 1, 1, 1, 1, 1, 1, 1), { duration: null }], timing(1))).toBe(4);
  });

  it('DU-03 nothing to skip: a window no longer than the boundary, no boundary, or empty', () => {
    expect(computeSkip(complete(1, 1, 1, 1, 1, 1), timing(1))).toBe(0);
    expect(computeSkip(complete(1, 1, 1, 1, 1, 1, 1), timing(1))).toBe(1);
    expect(computeSkip(complete(1, 1, 1, 1, 1, 1, 1), timing(1, 0))).toBe(0);
    expect(computeSkip([], timing(1))).toBe(0);
    expect(computeSkip([open(0.2)], timing(1))).toBe(0);
  });

  it('DU-03 needs only the durations and adds them without float drift', () => {
    // 0.1 is not exact in binary: 60 of them must still put the boundary exactly at 5.0 s.
    const tenths = Array.from({ length: 60 }, () => ({ duration: 0.1 }));
    expect(computeSkip(tenths, timing(1, 1))).toBe(50);
    const sixths = Array.from({ length: 42 }, () => ({ duration: 0.16667 }));
    // E = 7.00014, boundary 1.00014: segment k ends at 0.16667 × k; 6 × 0.16667 = 1.00002 ≤ 1.00014.
    expect(computeSkip(sixths, timing(1, 6))).toBe(6);
  });

  it('DU-03 matches a brute-force reference: a prefix, every skipped end ≤ boundary, the next one after it', () => {
    const rand = rng(7);
    for (let trial = 0; trial < 1000; trial++) {
      const td = 1 + Math.floor(rand() * 2);
      const csu = 6 * td + Math.floor(rand() * 3) * 0.5;
      const segs = randomWindow(rand, Math.floor(rand() * 80), rand() < 0.5);
      const done = segs.filter((s) => s.duration !== null) as Array<{ duration: number }>;
      const ends: number[] = [];
      let t = 0;
      for (const s of done) ends.push((t += Math.round(s.duration * 1e5)));
      const boundary = t - Math.round(csu * 1e5);
      const expected = ends.filter((e) => e <= boundary).length;
      const n = computeSkip(segs, timing(td, csu));
      expect(n, `trial ${trial}`).toBe(expected);
      for (let i = 0; i < n; i++) expect(ends[i]).toBeLessThanOrEqual(boundary);
      if (n < ends.length) expect(ends[n]).toBeGreaterThan(boundary);
    }
  });
});

describe('deltaSnapshot', () => {
  const seg = (msn: number, duration: number | null): SegmentInfo => ({
    msn,
    epoch: 1,
    duration,
    programDateTime: 1_767_225_600_000 + msn * 1000,
    discontinuity: false,
    parts: duration === null ? [{ duration: 0.2, independent: true }] : undefined,
  });
  const full: MediaPlaylistSnapshot = {
    streamId: 's',
    rendition: 'v',
    timing: timing(1),
    mediaSequence: 11,
    discontinuitySequence: 3,
    skippedSegments: 0,
    segments: [...Array.from({ length: 10 }, (_, i) => seg(11 + i, 1)), seg(21, null)],
    ended: false,
    reports: [{ rendition: 'a', lastMsn: 21, lastPart: 0 }],
  };

  it('DU-02 drops the skipped segments, keeps MEDIA-SEQUENCE, DISCONTINUITY-SEQUENCE and everything else', () => {
    const d = deltaSnapshot(full);
    expect(d.skippedSegments).toBe(4);
    expect(d.mediaSequence).toBe(11);
    expect(d.discontinuitySequence).toBe(3);
    expect(d.segments.map((s) => s.msn)).toEqual([15, 16, 17, 18, 19, 20, 21]);
    expect(d.reports).toBe(full.reports);
    expect(full.segments).toHaveLength(11); // the input is not mutated
  });

  it('DU-02 ignores _HLS_skip after ENDLIST, on a delta, and when nothing can be skipped', () => {
    const ended = { ...full, ended: true };
    expect(deltaSnapshot(ended)).toBe(ended);
    const d = deltaSnapshot(full);
    expect(deltaSnapshot(d)).toBe(d);
    const short = { ...full, segments: full.segments.slice(-4) };
    expect(deltaSnapshot(short)).toBe(short);
  });
});
