// The DVR window's index (core/live/segment-window.ts): every answer equals the one a plain
// array gives, after any mix of appends, closes and drops, across compactions.
import { describe, expect, it } from 'vitest';
import { SegmentWindow, type WindowEntry } from '../../core/live/segment-window.ts';
import { computeSkip, partsRetained } from '../../core/playlist/window.ts';
import { playlistTiming } from '../../core/contracts/stream-config.ts';

function rng(seed: number): () => number {
  return () => {
    seed = (seed + 0x6d2b79f5) | 0;
    let t = Math.imul(seed ^ (seed >>> 15), 1 | seed);
    t = (t + Math.imul(t ^ (t >>> 7), 61 | t)) ^ t;
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

type E = WindowEntry & { parts: Array<{ duration: number }> };

describe('SegmentWindow', () => {
  it('matches an array under random appends, closes and drops (with MSN gaps and compaction)', () => {
    const rand = rng(7);
    const win = new SegmentWindow<E>();
    const ref: E[] = [];
    let msn = 1;
    let pdt = Date.UTC(2026, 0, 1);
    for (let step = 0; step < 20_000; step++) {
      const r = rand();
      const last = ref.at(-1);
      if (last && last.duration === null && r < 0.45) {
        const d = Math.round((0.5 + rand()) * 1e5) / 1e5;
        win.closeLast(d);
        last.duration = d;
        pdt += d * 1000;
      } else if ((!last || last.duration !== null) && r < 0.75) {
        // Now and then an MSN is skipped (a rendition that lagged at a reconnection).
        msn += rand() < 0.02 ? 2 : 1;
        const e: E = { msn, programDateTime: Math.round(pdt), duration: null, parts: [{ duration: 0.2 }] };
        win.push(e);
        ref.push(e);
      } else if (ref.length > 3) {
        expect(win.shift()).toBe(ref.shift());
      }
      if (step % 97 === 0) {
        expect(win.length).toBe(ref.length);
        expect(win.first).toBe(ref[0]);
        expect(win.last).toBe(ref.at(-1));
        expect(win.at(-2)).toBe(ref.at(-2));
        expect(win.completeSeconds).toBeCloseTo(
          ref.reduce((n, s) => n + (s.duration ?? 0), 0),
          6,
        );
        const probe = ref[Math.floor(rand() * ref.length)];
        if (probe) {
          expect(win.indexOfMsn(probe.msn)).toBe(ref.indexOf(probe));
          expect(win.byMsn(probe.msn)).toBe(probe);
          expect(win.indexOfMsn(probe.msn + 0.5)).toBe(-1);
          const t = probe.programDateTime + 1;
          const expected = ref.findLastIndex((s) => s.programDateTime <= t);
          expect(win.indexAtTime(t)).toBe(expected);
        }
        expect(win.indexAtTime(0)).toBe(0);
        const from = Math.floor(rand() * ref.length);
        expect(win.slice(from)).toEqual(ref.slice(from));
        const view = win.view(from);
        expect(view.length).toBe(ref.length - from);
        expect(view.at(0)).toBe(ref[from]);
        expect(view.at(view.length)).toBeUndefined();
      }
    }
  });

  it('feeds the window maths through a view exactly as an array would (DU-03, PART-12)', () => {
    const timing = playlistTiming({ partTarget: 0.2, segmentTarget: 1 });
    const win = new SegmentWindow<E>();
    const ref: E[] = [];
    for (let i = 1; i <= 500; i++) {
      const e: E = { msn: i, programDateTime: i * 1000, duration: i === 500 ? null : 1, parts: [{ duration: 0.2 }, { duration: 0.2 }] };
      win.push(e);
      ref.push(e);
    }
    for (const from of [0, 1, 250, 480, 495]) {
      expect(computeSkip(win.view(from), timing)).toBe(computeSkip(ref.slice(from), timing));
      expect(partsRetained(win.view(from), timing)).toBe(partsRetained(ref.slice(from), timing));
    }
  });

  it('clear() empties the window and its duration', () => {
    const win = new SegmentWindow<E>();
    win.push({ msn: 1, programDateTime: 0, duration: 1, parts: [] });
    win.clear();
    expect(win.length).toBe(0);
    expect(win.completeSeconds).toBe(0);
    expect(win.indexOfMsn(1)).toBe(-1);
  });
});
