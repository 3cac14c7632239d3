// Accepting a pushed object (core/live/push-rules.ts) and trimming the DVR window
// (core/live/window-trim.ts), on plain models: the verdict for every kind of push, and exactly
// what announcing one changes and asks the store to write.
import { describe, expect, it } from 'vitest';
import type { IngestPush } from '../../core/contracts/stream-rpc.ts';
import { announcePush, decidePush, type PushContext } from '../../core/live/push-rules.ts';
import { pushRefusal } from '../../core/live/stream-phase.ts';
import { MIN_WINDOW_SEGMENTS, clearWindows, trimWindow, windowMark, windowSeconds } from '../../core/live/window-trim.ts';
import { newLiveModel, renditionOf } from '../../core/live/stream-model.ts';
import { T0, modelWith, seg } from '../support/live-model.ts';

const CTX: PushContext = { leaseEpoch: 1, refusal: null, inLadder: true };
const part = (msn: number, p: number, epoch = 1, final?: boolean): IngestPush => ({
  epoch,
  rendition: 'v',
  kind: 'part',
  msn,
  part: p,
  meta: { duration: 0.2, independent: p === 0, programDateTime: T0 + (msn - 1) * 1000 + p * 200, ...(final ? { final } : {}) },
});
const segment = (msn: number, partCount: number, epoch = 1): IngestPush => ({
  epoch,
  rendition: 'v',
  kind: 'segment',
  msn,
  meta: { duration: partCount * 0.2, partCount, programDateTime: T0 + (msn - 1) * 1000 },
});
const init = (epoch = 1, renditions?: string[]): IngestPush => ({
  epoch,
  rendition: 'v',
  kind: 'init',
  meta: { kind: 'video', codecs: 'avc1.64001f', bandwidth: 900_000, averageBandwidth: 800_000, ...(renditions ? { renditions } : {}) },
});

describe('decidePush: the verdict on a push', () => {
  const model = modelWith({ v: [seg(1), seg(2, { open: 2 })] });

  it('refuses another epoch, a stream that takes no pushes, a rendition outside the ladder', () => {
    expect(decidePush(model, { ...CTX, leaseEpoch: 2 }, part(2, 2))).toMatchObject({ status: 409, code: 'stale_epoch' });
    expect(decidePush(model, { ...CTX, leaseEpoch: null }, part(2, 2))).toMatchObject({ status: 409, code: 'stale_epoch' });
    expect(decidePush(model, { ...CTX, refusal: pushRefusal('ending') }, part(2, 2))).toMatchObject({ status: 409, code: 'stream_ended' });
    expect(decidePush(model, { ...CTX, refusal: pushRefusal('revoked') }, part(2, 2))).toMatchObject({
      status: 409,
      code: 'lease_revoked',
    });
    expect(decidePush(model, { ...CTX, inLadder: false }, part(2, 2))).toMatchObject({ status: 404, code: 'rendition_not_found' });
  });

  it('stores an init segment always, and refuses media of an epoch whose init is missing', () => {
    expect(decidePush(model, CTX, init())).toBe('store');
    const noInit = modelWith({ v: [] });
    renditionOf(noInit, 'v').initEpoch = null;
    expect(decidePush(noInit, CTX, part(1, 0))).toMatchObject({ status: 409, code: 'init_missing' });
    expect(decidePush(model, { ...CTX, leaseEpoch: 2 }, part(3, 0, 2))).toMatchObject({ status: 409, code: 'init_missing' });
  });

  it('parts: the next one is stored, announced ones are duplicates, up to one MSN ahead is held, further is out of order', () => {
    expect(decidePush(model, CTX, part(2, 2))).toBe('store');
    expect(decidePush(model, CTX, part(2, 1))).toEqual({ status: 200, duplicate: true });
    expect(decidePush(model, CTX, part(1, 4))).toEqual({ status: 200, duplicate: true });
    expect(decidePush(model, CTX, part(2, 4))).toBe('ahead');
    expect(decidePush(model, CTX, part(3, 0))).toBe('ahead');
    expect(decidePush(model, CTX, part(3, 3))).toBe('ahead');
    expect(decidePush(model, CTX, part(4, 0))).toMatchObject({ status: 409, code: 'out_of_order', message: 'expected part 2.2, got 4.0' });
  });

  it('segments: the open one with all its parts is stored; with parts to come it is held; closed ones are duplicates', () => {
    expect(decidePush(model, CTX, segment(2, 2))).toBe('store');
    expect(decidePush(model, CTX, segment(2, 5))).toBe('ahead');
    expect(decidePush(model, CTX, segment(2, 1))).toMatchObject({ code: 'out_of_order' });
    expect(decidePush(model, CTX, segment(1, 5))).toEqual({ status: 200, duplicate: true });
    // None of its parts announced yet: the next segment is on its way.
    expect(decidePush(model, CTX, segment(3, 5))).toBe('ahead');
    expect(decidePush(model, CTX, segment(4, 5))).toMatchObject({ code: 'out_of_order', message: 'segment 4 is not the open segment' });
  });

  it('a new epoch starts at its start MSN, whatever the window holds of the old one', () => {
    const m = modelWith({ v: [seg(1), seg(2)] });
    m.epochStartMsn = 3;
    renditionOf(m, 'v').initEpoch = 2;
    const ctx = { ...CTX, leaseEpoch: 2 };
    expect(decidePush(m, ctx, part(3, 0, 2))).toBe('store');
    expect(decidePush(m, ctx, part(3, 1, 2))).toBe('ahead');
    expect(decidePush(m, ctx, part(5, 0, 2))).toMatchObject({ code: 'out_of_order' });
  });
});

describe('announcePush: what an announcement changes and writes', () => {
  it('an init segment sets the rendition info, and the epoch set once per epoch', () => {
    const model = newLiveModel();
    expect(announcePush(model, init(1, ['v']), 100, 60).map((c) => c.kind)).toEqual(['epoch-set', 'rendition']);
    expect(model.epochSet).toEqual({ epoch: 1, names: ['v'] });
    expect(renditionOf(model, 'v')).toMatchObject({ initEpoch: 1, info: { name: 'v', kind: 'video', codecs: 'avc1.64001f' } });
    expect(announcePush(model, init(1, ['v']), 100, 60).map((c) => c.kind)).toEqual(['rendition']);
  });

  it('the first part opens its segment (a row, the window mark, the part); later parts write the part only', () => {
    const model = modelWith({ v: [seg(1)] });
    const first = announcePush(model, part(2, 0), 1234, 60);
    expect(first.map((c) => c.kind)).toEqual(['segment', 'window', 'part']);
    expect(first[2]).toEqual({
      kind: 'part',
      rendition: 'v',
      msn: 2,
      index: 0,
      part: { duration: 0.2, independent: true },
      size: 1234,
      partCount: 1,
    });
    expect(announcePush(model, part(2, 1, 1, true), 10, 60)).toEqual([
      { kind: 'part', rendition: 'v', msn: 2, index: 1, part: { duration: 0.2, independent: false }, size: 10, partCount: 2 },
    ]);
    const open = renditionOf(model, 'v').window.last!;
    expect(open).toMatchObject({ msn: 2, duration: null, partCount: 2, partsComplete: true, discontinuity: false, dsn: 0 });
    expect(announcePush(model, segment(2, 2), 10, 60)).toEqual([{ kind: 'close', rendition: 'v', msn: 2, duration: 0.4, partCount: 2 }]);
    expect(open.duration).toBe(0.4);
  });

  it('the first segment of a new epoch is a discontinuity and counts in the discontinuity sequence', () => {
    const model = modelWith({ v: [seg(1, { dsn: 3 })] });
    announcePush(model, part(2, 0, 2), 10, 60);
    expect(renditionOf(model, 'v').window.last).toMatchObject({ msn: 2, epoch: 2, discontinuity: true, dsn: 4 });
    expect(renditionOf(model, 'v').newest).toEqual({ msn: 2, epoch: 2, dsn: 4 });
  });
});

describe('the DVR window', () => {
  it('keeps the window seconds but never fewer than 7 segments, and releases parts away from the live edge', () => {
    const model = modelWith({ v: Array.from({ length: 20 }, (_, i) => seg(i + 1)) });
    const rs = renditionOf(model, 'v');
    expect(trimWindow(rs, 10)).toEqual({ kind: 'window', rendition: 'v', mark: { first: 11, discSeq: 0 } });
    expect(rs.window.length).toBe(10);
    expect(trimWindow(rs, 3)).toMatchObject({ mark: { first: 20 - MIN_WINDOW_SEGMENTS + 1 } });
    expect(rs.window.length).toBe(MIN_WINDOW_SEGMENTS);
    // An open segment at the front is never dropped.
    const open = modelWith({ v: [seg(1, { open: 2 }), ...Array.from({ length: 10 }, (_, i) => seg(i + 2))] });
    trimWindow(renditionOf(open, 'v'), 1);
    expect(renditionOf(open, 'v').window.first!.msn).toBe(1);
    // Each call drops the parts of the segment 12 before the last (earlier calls dropped older ones).
    const long = modelWith({ v: Array.from({ length: 14 }, (_, i) => seg(i + 1)) });
    trimWindow(renditionOf(long, 'v'), 3600);
    expect(
      renditionOf(long, 'v')
        .window.slice()
        .map((s) => s.parts !== null),
    ).toEqual([true, false, ...Array(12).fill(true)]);
  });

  it('is never under 3 × TD, stores its first MSN and discontinuity sequence, and starts after the newest when cleared', () => {
    expect(windowSeconds(7200, 1)).toBe(7200);
    expect(windowSeconds(2, 4)).toBe(12);
    const model = modelWith({ v: [seg(5, { discontinuity: true, dsn: 2 }), seg(6, { dsn: 2 })], a: [] });
    expect(windowMark(renditionOf(model, 'v'))).toEqual({ first: 5, discSeq: 1 });
    expect(clearWindows(model)).toEqual([{ kind: 'window', rendition: 'v', mark: { first: 7, discSeq: 2 } }]);
    expect(renditionOf(model, 'v').window.length).toBe(0);
  });
});
