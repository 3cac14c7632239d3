// The SRT receive window (ring + bitmaps) against a plain model of the same rules: random
// arrivals, duplicates, drop requests and NAK lists, across the 31-bit sequence wrap.
import { describe, expect, it } from 'vitest';
import { seqAdd, seqDiff } from '../../transcoder-node/srt/packet.ts';
import { DISCARDED, ReceiveWindow } from '../../transcoder-node/srt/receive-window.ts';

/** The rules written the obvious way (a map, walks over every sequence number). */
class Model {
  next: number;
  highest: number;
  held = new Map<number, Buffer>();
  delivered: Buffer[] = [];
  readonly capacity: number;

  constructor(isn: number, capacity: number) {
    this.next = isn;
    this.highest = seqAdd(isn, -1);
    this.capacity = capacity;
  }

  offer(seq: number, payload: Buffer): string {
    const d = seqDiff(seq, this.next);
    if (d < 0 || this.held.has(seq)) return 'duplicate';
    if (d >= this.capacity) return 'beyond-window';
    this.held.set(seq, payload);
    if (seqDiff(seq, this.highest) > 0) this.highest = seq;
    this.drain();
    return 'accepted';
  }

  skipThrough(last: number): number {
    const span = seqDiff(last, this.next) + 1;
    if (span <= 0 || span > this.capacity) return 0;
    let skipped = 0;
    while (seqDiff(last, this.next) >= 0) {
      const p = this.held.get(this.next);
      if (p) {
        this.held.delete(this.next);
        if (p !== DISCARDED) this.delivered.push(p);
      } else skipped++;
      this.next = seqAdd(this.next, 1);
    }
    if (seqDiff(this.highest, this.next) < -1) this.highest = seqAdd(this.next, -1);
    this.drain();
    return skipped;
  }

  lossRanges(max: number): Array<[number, number]> {
    const out: Array<[number, number]> = [];
    for (let s = this.next; seqDiff(s, this.highest) <= 0; s = seqAdd(s, 1)) {
      if (this.held.has(s)) continue;
      const last = out.at(-1);
      if (last && seqAdd(last[1], 1) === s) last[1] = s;
      else if (out.length === max) break;
      else out.push([s, s]);
    }
    return out;
  }

  get missing(): number {
    return Math.max(0, seqDiff(this.highest, this.next) + 1 - this.held.size);
  }

  private drain(): void {
    for (let p = this.held.get(this.next); p; p = this.held.get(this.next)) {
      this.held.delete(this.next);
      if (p !== DISCARDED) this.delivered.push(p);
      this.next = seqAdd(this.next, 1);
    }
  }
}

/** A small deterministic PRNG (mulberry32), so a failure can be replayed. */
function random(seed: number): () => number {
  return () => {
    seed = (seed + 0x6d2b79f5) | 0;
    let t = Math.imul(seed ^ (seed >>> 15), 1 | seed);
    t = (t + Math.imul(t ^ (t >>> 7), 61 | t)) ^ t;
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

describe('SRT receive window', () => {
  for (const [isn, capacity, seed] of [
    [1000, 100, 1],
    [0x7fffff80, 1024, 2], // crosses the 31-bit wrap
    [5, 8192, 3],
    [0x7ffffff0, 37, 4],
  ] as const) {
    it(`behaves like the plain model (isn ${isn}, window ${capacity})`, () => {
      const rnd = random(seed);
      const delivered: Buffer[] = [];
      const win = new ReceiveWindow(isn, capacity, (p) => delivered.push(p));
      const model = new Model(isn, capacity);
      for (let step = 0; step < 8000; step++) {
        const r = rnd();
        if (r < 0.9) {
          // Mostly near the front, sometimes anywhere in (and a bit beyond) the window, sometimes behind.
          const spread = rnd() < 0.8 ? 8 : capacity + 4;
          const seq = seqAdd(model.next, Math.floor(rnd() * spread) - (rnd() < 0.05 ? 3 : 0));
          const payload = rnd() < 0.05 ? DISCARDED : Buffer.from([step & 0xff, step >> 8]);
          const want = win.wants(seq);
          const got = win.offer(seq, payload, step).kind;
          expect(got).toBe(model.offer(seq, payload));
          expect(want).toBe(got === 'accepted');
        } else if (r < 0.95) {
          const last = seqAdd(model.next, Math.floor(rnd() * (capacity + 10)) - 5);
          expect(win.skipThrough(last)).toBe(model.skipThrough(last));
        } else {
          expect(win.lossRanges(8)).toEqual(model.lossRanges(8));
        }
        expect(win.next).toBe(model.next);
        expect(win.held).toBe(model.held.size);
        expect(win.missing).toBe(model.missing);
        expect(win.held + win.missing).toBeLessThanOrEqual(capacity);
        expect(win.gapCount).toBeLessThanOrEqual(capacity);
      }
      expect(delivered).toEqual(model.delivered);
      expect(delivered.length).toBeGreaterThan(500);
    });
  }

  it('refuses a packet at the flow window or beyond, and keeps nothing of it', () => {
    const win = new ReceiveWindow(10, 64, () => {});
    expect(win.offer(10 + 64, Buffer.from('x'), 0)).toEqual({ kind: 'beyond-window', distance: 64 });
    expect(win.offer(10 + 200_000, Buffer.from('x'), 0)).toEqual({ kind: 'beyond-window', distance: 200_000 });
    expect(win.offer(10 + 63, Buffer.from('x'), 0)).toEqual({ kind: 'accepted', lost: [10, 72] });
    expect({ held: win.held, missing: win.missing, gaps: win.gapCount }).toEqual({ held: 1, missing: 63, gaps: 1 });
  });

  it('gives up on a gap once it was noticed longer ago than the latency, up to the next packet held', () => {
    const delivered: string[] = [];
    const win = new ReceiveWindow(0, 64, (p) => delivered.push(p.toString()));
    win.offer(0, Buffer.from('a'), 0);
    win.offer(3, Buffer.from('d'), 100); // 1 and 2 noticed missing at t=100
    win.offer(5, Buffer.from('f'), 150); // 4 noticed missing at t=150
    win.offer(1, Buffer.from('b'), 160); // a retransmission fills 1
    expect(win.dropTooLate(200, 120)).toBeNull(); // 2 was noticed 100 ms ago: not yet
    expect(win.dropTooLate(221, 120)).toEqual([2, 2]);
    expect(delivered).toEqual(['a', 'b', 'd']);
    expect(win.dropTooLate(260, 120)).toBeNull(); // 4 was noticed at 150
    expect(win.dropTooLate(271, 120)).toEqual([4, 4]);
    expect(delivered).toEqual(['a', 'b', 'd', 'f']);
    expect({ next: win.next, held: win.held, missing: win.missing, gaps: win.gapCount }).toEqual({ next: 6, held: 0, missing: 0, gaps: 0 });
  });
});
