// Across a reconnection (core/live/gap-plan.ts, epoch-start.ts, end-assembly.ts): a rendition that
// lagged gets EXT-X-GAP segments copied from the others (SEG-04, MUT-04), the new epoch starts
// after the highest MSN on one timeline, and each open segment of the old epoch is closed from
// the parts it announced.
import { describe, expect, it } from 'vitest';
import { announcedSpan, closeAssembled, openSegments } from '../../core/live/end-assembly.ts';
import { startEpoch, type EpochStartContext } from '../../core/live/epoch-start.ts';
import { fillGaps, type GapContext } from '../../core/live/gap-plan.ts';
import { referenceOrder, renditionOf } from '../../core/live/stream-model.ts';
import { LADDER, modelWith, seg } from '../support/live-model.ts';

const ctx = (model: Parameters<typeof referenceOrder>[0], stored: GapContext['storedSegment'] = () => null): GapContext => ({
  order: referenceOrder(model, LADDER),
  inLadder: (n) => n === 'v' || n === 'a',
  windowSeconds: 3600,
  storedSegment: stored,
});

describe('gap segments', () => {
  it('a rendition that lagged gets gap segments with the time, duration and discontinuity of the one that has them', () => {
    const model = modelWith({
      v: [seg(1), seg(2), seg(3, { discontinuity: true, dsn: 1, duration: 0.8 })],
      a: [seg(1)],
    });
    const changes = fillGaps(model, 4, ctx(model));
    expect(changes.map((c) => c.kind)).toEqual(['segment', 'window', 'segment', 'window']);
    const a = renditionOf(model, 'a');
    expect(
      a.window.slice().map((s) => [s.msn, s.gap, s.duration, s.discontinuity, s.dsn, s.epoch, s.programDateTime - seg(1).programDateTime]),
    ).toEqual([
      [1, false, 1, false, 0, 1, 0],
      [2, true, 1, false, 0, 1, 1000],
      [3, true, 0.8, true, 1, 1, 2000],
    ]);
    expect(a.newest).toEqual({ msn: 3, epoch: 1, dsn: 1 });
    // The rendition that has them is left alone.
    expect(renditionOf(model, 'v').window.length).toBe(3);
  });

  it('takes MSNs older than every other window from the stored DVR index, and stops where nothing has them', () => {
    const model = modelWith({ v: [seg(4)], a: [seg(1)] });
    const asked: number[] = [];
    fillGaps(
      model,
      5,
      ctx(model, (msn, except) => {
        asked.push(msn);
        expect(except).toBe('a');
        return msn === 2 ? { duration: 0.6, programDateTime: 7, discontinuity: false } : null;
      }),
    );
    expect(asked).toEqual([2, 3]);
    expect(
      renditionOf(model, 'a')
        .window.slice()
        .map((s) => [s.msn, s.gap, s.duration]),
    ).toEqual([
      [1, false, 1],
      [2, true, 0.6],
    ]);
  });

  it('leaves empty windows, open last segments and renditions outside the ladder alone', () => {
    const model = modelWith({ v: [seg(1), seg(2), seg(3)], a: [], x: [seg(1)] });
    renditionOf(model, 'a');
    const open = modelWith({ v: [seg(1), seg(2)], a: [seg(1, { open: 2 })] });
    expect(fillGaps(model, 4, ctx(model))).toEqual([]);
    expect(fillGaps(open, 3, ctx(open))).toEqual([]);
  });
});

describe('where a new epoch starts', () => {
  const ctx = (newBroadcast: boolean, media: Record<string, number> = {}): EpochStartContext => ({
    newBroadcast,
    ladder: LADDER,
    windowSeconds: 3600,
    previousOffset: 12.5,
    previousMediaSeconds: (r) => media[r] ?? 0,
    storedSegment: () => null,
  });

  it('a reconnection continues after the highest MSN any rendition reached, on the same timeline', () => {
    const model = modelWith({ v: [seg(1), seg(2), seg(3)], a: [seg(1), seg(2)] });
    const start = startEpoch(model, ctx(false, { v: 3.0004, a: 2 }));
    expect(start.startMsn).toBe(4);
    // Where the reference (video) rendition's media of the previous epoch ended, rounded up to the ms.
    expect(start.timeOffset).toBe(15.501);
    expect(start.changes.filter((c) => c.kind === 'segment')).toHaveLength(1);
    expect(model.epochStartMsn).toBe(4);
  });

  it('a new broadcast empties the windows and starts its timeline at 0, MSNs still growing', () => {
    const model = modelWith({ v: [seg(1), seg(2)], a: [seg(1), seg(2)] });
    const start = startEpoch(model, ctx(true, { v: 2 }));
    expect([start.startMsn, start.timeOffset]).toEqual([3, 0]);
    expect(start.changes.map((c) => c.kind)).toEqual(['window', 'window']);
    expect(renditionOf(model, 'v').window.length).toBe(0);
    expect(startEpoch(modelWith({}), ctx(true)).startMsn).toBe(1);
  });
});

describe('closing an epoch abruptly', () => {
  it('finds each open segment as it gets to its rendition, and closes it with the parts R2 had', () => {
    const model = modelWith({ v: [seg(1), seg(2, { open: 3 })], a: [seg(1), seg(2, { open: 2 })] });
    const found = openSegments(model);
    const first = found.next().value!;
    expect([first.rs.name, first.segment.msn]).toEqual(['v', 2]);
    // Closed meanwhile (by its own push): not reported, nor changed.
    renditionOf(model, 'a').window.closeLast(0.4);
    expect(found.next().done).toBe(true);
    expect(closeAssembled(first.rs, first.segment, 2, 0.2 + 0.2000001)).toEqual({
      kind: 'close',
      rendition: 'v',
      msn: 2,
      duration: 0.4,
      partCount: 2,
    });
    expect(first.segment).toMatchObject({ duration: 0.4, partCount: 2 });
    expect(first.segment.parts).toHaveLength(2);
    expect(closeAssembled(first.rs, first.segment, 1, 0.2)).toBeNull();
  });

  it('an open segment closes with every announced part, with nothing to read or write', () => {
    expect(announcedSpan([{ duration: 0.2 }, { duration: 0.2 }, { duration: 0.1 }])).toEqual({ partCount: 3, seconds: 0.2 + 0.2 + 0.1 });
    expect(announcedSpan([])).toBeNull();
  });
});
