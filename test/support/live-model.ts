// Live models for the Node tests of core/live: renditions with their windows written out
// segment by segment, as a StreamState object would hold them.
import type { PlaylistTiming, RenditionInfo } from '../../core/contracts/live-model.ts';
import type { LadderRung } from '../../core/contracts/stream-config.ts';
import { newLiveModel, renditionOf, type LiveModel, type SegmentRecord } from '../../core/live/stream-model.ts';

export const T0 = Date.UTC(2026, 10, 21, 12, 0, 0);

export const TIMING: PlaylistTiming = {
  targetDuration: 1,
  partTarget: 0.2,
  partHoldBack: 0.6,
  holdBack: 3,
  canSkipUntil: 6,
  liveStartOffset: 0.4,
};

export const LADDER: LadderRung[] = [
  { name: 'v', kind: 'video', width: 640, height: 360, videoBitrate: 800_000 } as LadderRung,
  { name: 'a', kind: 'audio', audioBitrate: 128_000 } as LadderRung,
];

export const VIDEO_INFO: RenditionInfo = { name: 'v', kind: 'video', codecs: 'avc1.64001f', bandwidth: 900_000, averageBandwidth: 800_000 };
export const AUDIO_INFO: RenditionInfo = { name: 'a', kind: 'audio', codecs: 'mp4a.40.2', bandwidth: 140_000, averageBandwidth: 128_000 };

/** A complete 1 s segment of five 0.2 s parts (or open, with `open` parts), epoch 1, starting at T0 + (msn − 1) s. */
export function seg(msn: number, o: Partial<SegmentRecord> & { open?: number } = {}): SegmentRecord {
  const partCount = o.open ?? 5;
  return {
    msn,
    epoch: 1,
    duration: o.open !== undefined ? null : 1,
    programDateTime: T0 + (msn - 1) * 1000,
    discontinuity: false,
    partCount,
    parts: Array.from({ length: partCount }, (_, i) => ({ duration: 0.2, independent: i === 0 })),
    gap: false,
    dsn: 0,
    ...o,
  };
}

/** A model whose renditions hold these segments (their init of epoch 1 announced). */
export function modelWith(windows: Record<string, SegmentRecord[]>, epoch = 1): LiveModel {
  const model = newLiveModel();
  for (const [name, segments] of Object.entries(windows)) {
    const rs = renditionOf(model, name);
    rs.info = name === 'a' ? AUDIO_INFO : { ...VIDEO_INFO, name };
    rs.initEpoch = epoch;
    for (const s of segments) rs.window.push(s);
    const last = segments.at(-1);
    if (last) rs.newest = { msn: last.msn, epoch: last.epoch, dsn: last.dsn };
  }
  return model;
}
