// What the object answers from the live model (core/live/live-snapshot.ts, media-wait.ts,
// clip-cut.ts): the snapshot a media playlist renders, the presentation, the status, whether a
// missing media object is coming (PH-04, PH-05), and where a clip's ends are.
import { describe, expect, it } from 'vitest';
import { clipTimes, renditionsToClose, segmentClosed } from '../../core/live/clip-cut.ts';
import {
  blockingState,
  mediaSnapshot,
  presentationRenditions,
  streamStatus,
  thumbnailFloor,
  type SnapshotContext,
} from '../../core/live/live-snapshot.ts';
import { mediaWait } from '../../core/live/media-wait.ts';
import { renditionOf } from '../../core/live/stream-model.ts';
import { AUDIO_INFO, LADDER, T0, TIMING, VIDEO_INFO, modelWith, seg } from '../support/live-model.ts';

const CTX: SnapshotContext = { streamId: 'st1', ladder: LADDER, timing: TIMING, leaseEpoch: 1, ended: false };

describe('media playlist snapshots', () => {
  it('lists the window with parts near the edge, reports the other renditions, and starts where asked', () => {
    const model = modelWith({ v: [seg(1), seg(2), seg(3), seg(4), seg(5, { open: 2 })], a: [seg(1), seg(2), seg(3), seg(4, { open: 1 })] });
    const snap = mediaSnapshot(model, renditionOf(model, 'v'), CTX, {});
    expect(snap).toMatchObject({
      streamId: 'st1',
      rendition: 'v',
      mediaSequence: 1,
      discontinuitySequence: 0,
      skippedSegments: 0,
      ended: false,
    });
    expect(snap.segments.map((s) => [s.msn, s.duration, s.parts?.length ?? null])).toEqual([
      [1, 1, null],
      [2, 1, 5],
      [3, 1, 5],
      [4, 1, 5],
      [5, null, 2],
    ]);
    expect(snap.reports).toEqual([{ rendition: 'a', lastMsn: 4, lastPart: 0 }]);
    expect(snap.nextEpoch).toBeUndefined();
    const startOver = mediaSnapshot(model, renditionOf(model, 'v'), CTX, {}, T0 + 2500);
    expect([startOver.mediaSequence, startOver.startTimeOffset, startOver.segments[0]!.msn]).toEqual([3, 0, 3]);
  });

  it('after a reconnection names the new epoch for the next part; a rung the epoch lacks hints nothing', () => {
    const model = modelWith({ v: [seg(1), seg(2)], a: [seg(1), seg(2)] });
    model.epochSet = { epoch: 2, names: ['v'] };
    const ctx = { ...CTX, leaseEpoch: 2 };
    expect(mediaSnapshot(model, renditionOf(model, 'v'), ctx, {}).nextEpoch).toBe(2);
    const audio = mediaSnapshot(model, renditionOf(model, 'a'), ctx, {});
    expect(audio.noMedia).toBe(true);
    // RR-03: the audio rung is not in this epoch's presentation, so the video playlist does not report it.
    expect(mediaSnapshot(model, renditionOf(model, 'v'), ctx, {}).reports).toEqual([]);
    expect(presentationRenditions(model, ctx)).toEqual([VIDEO_INFO]);
    expect(presentationRenditions(model, CTX)).toEqual([VIDEO_INFO, AUDIO_INFO]);
  });

  it('an ended stream lists no delta update, and its expired window nothing in the presentation', () => {
    const model = modelWith({ v: Array.from({ length: 12 }, (_, i) => seg(i + 1)) });
    expect(mediaSnapshot(model, renditionOf(model, 'v'), CTX, { skip: 'YES' }).skippedSegments).toBeGreaterThan(0);
    const ended = mediaSnapshot(model, renditionOf(model, 'v'), { ...CTX, ended: true }, { skip: 'YES' });
    expect([ended.skippedSegments, ended.ended]).toEqual([0, true]);
    renditionOf(model, 'v').window.clear();
    expect(presentationRenditions(model, { ...CTX, ended: true })).toEqual([]);
    expect(presentationRenditions(model, CTX)).toEqual([VIDEO_INFO]);
  });

  it('gives the blocking decision table the last complete segment and part', () => {
    const model = modelWith({ v: [seg(1), seg(2), seg(3, { open: 2 })] });
    const b = blockingState(renditionOf(model, 'v'), false, TIMING);
    expect([b.lastCompleteMsn, b.lastPartMsn, b.lastPartIndex, b.partCountOf(2), b.partCountOf(3), b.partCountOf(9)]).toEqual([
      2,
      3,
      1,
      5,
      null,
      null,
    ]);
  });

  it('reports the status of each rung, and the ingest session only while on air', () => {
    const model = modelWith({ v: [seg(1, { open: 3 })] });
    const lease = { epoch: 1, nodeId: 'n', acquiredAt: 5 };
    expect(streamStatus(model, LADDER, 'live', lease, 9)).toEqual({
      state: 'live',
      epoch: 1,
      ingest: { nodeId: 'n', region: undefined, epoch: 1, startedAt: 5, lastPushAt: 9 },
      renditions: [
        { rendition: 'v', kind: 'video', codecs: 'avc1.64001f', lastMsn: 1, lastPart: 2 },
        { rendition: 'a', kind: null, codecs: null, lastMsn: 0, lastPart: 0 },
      ],
    });
    expect(streamStatus(model, LADDER, 'ended', lease, 9)).toMatchObject({ state: 'ended', ingest: null });
    expect(streamStatus(model, LADDER, 'idle', null, null)).toMatchObject({ state: 'idle', epoch: null, ingest: null });
  });

  it('a thumbnail time reaches back as far as the DVR window', () => {
    const model = modelWith({ v: [seg(3), seg(4)] });
    expect(thumbnailFloor(model, 'v', T0 + 2500)).toEqual({ notBefore: T0 + 2000 - 10_000 });
    expect(thumbnailFloor(model, 'v', T0 + 1000)).toMatchObject({ status: 404, message: 'that time is before the DVR window' });
    expect(thumbnailFloor(model, 'a', T0)).toMatchObject({ status: 404, message: 'no live window' });
  });
});

describe('a media object that is not there yet (PH-04, PH-05)', () => {
  const model = modelWith({ v: [seg(1), seg(2, { open: 2 })] });
  const rs = renditionOf(model, 'v');
  const ctx = { leaseEpoch: 1, ended: false, partTarget: 0.2 };

  it('answers what is published, waits for what comes next, and refuses what never will', () => {
    expect(mediaWait(model, ctx, rs, 1, { kind: 'part', msn: 2, part: 1 })).toBe('respond');
    expect(mediaWait(model, ctx, rs, 1, { kind: 'part', msn: 2, part: 2 })).toBe('wait');
    expect(mediaWait(model, ctx, rs, 1, { kind: 'part', msn: 3, part: 0 })).toBe('wait');
    expect(mediaWait(model, ctx, rs, 1, { kind: 'part', msn: 4, part: 0 })).toBe('never');
    expect(mediaWait(model, ctx, rs, 1, { kind: 'segment', msn: 2 })).toBe('wait');
    expect(mediaWait(model, ctx, rs, 1, { kind: 'segment', msn: 3 })).toBe('never');
    expect(mediaWait(model, ctx, rs, 1, { kind: 'init' })).toBe('respond');
    expect(mediaWait(model, { ...ctx, leaseEpoch: 2 }, rs, 2, { kind: 'init' })).toBe('wait');
    expect(mediaWait(model, { ...ctx, ended: true }, rs, 1, { kind: 'part', msn: 2, part: 2 })).toBe('never');
    expect(mediaWait(model, ctx, rs, 3, { kind: 'part', msn: 2, part: 2 })).toBe('never');
  });

  it('a part after the final part of the open segment never comes', () => {
    const m = modelWith({ v: [seg(1, { open: 2, partsComplete: true })] });
    expect(mediaWait(m, ctx, renditionOf(m, 'v'), 1, { kind: 'part', msn: 1, part: 2 })).toBe('never');
    expect(mediaWait(m, ctx, renditionOf(m, 'v'), 1, { kind: 'part', msn: 2, part: 0 })).toBe('wait');
  });
});

describe('clip ends', () => {
  it('maps points to times, and refuses to count back from a live edge that does not exist', () => {
    expect(clipTimes(T0 + 60_000, { fromEdge: 30 }, { fromEdge: 0 })).toEqual({ startMs: T0 + 30_000, endMs: T0 + 60_000 });
    expect(clipTimes(null, { at: T0 }, { at: T0 + 1 })).toEqual({ startMs: T0, endMs: T0 + 1 });
    expect(clipTimes(null, { at: T0 }, { fromEdge: 0 })).toMatchObject({ status: 422, code: 'clip_out_of_range' });
  });

  it('waits for the renditions that still have the open segment open, in this epoch', () => {
    const model = modelWith({ v: [seg(1), seg(2, { open: 3 })], a: [seg(1), seg(2)], x: [seg(1), seg(2, { open: 1 })] });
    model.epochSet = { epoch: 1, names: ['v', 'a'] };
    expect(renditionsToClose(model, ['v', 'a', 'x'], 1, 2)).toEqual(['v']);
    expect(segmentClosed(renditionOf(model, 'a'), 2)).toBe(true);
    expect(segmentClosed(renditionOf(model, 'v'), 1)).toBe(true);
    expect(segmentClosed(renditionOf(model, 'v'), 2)).toBe(false);
  });
});
