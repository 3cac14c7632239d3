// The snapshot and timing self-checks (core/playlist/check.ts): what the renderer cannot fix is
// named by its checklist rule.
import { describe, expect, it } from 'vitest';
import type { MediaPlaylistSnapshot } from '../../core/contracts/live-model.ts';
import { snapshotProblems, timingProblems } from '../../core/playlist/check.ts';
import { TIMING, liveStream } from '../support/playlist-fixtures.ts';

describe('snapshot self-checks', () => {
  it('flag what the renderer cannot fix: numbering, long parts, epoch change without discontinuity, open segment after ENDLIST', () => {
    const { video, audio } = liveStream();
    const good = video.snapshot({ others: [audio] });
    expect(snapshotProblems(good)).toEqual([]);
    const bad: MediaPlaylistSnapshot = {
      ...good,
      mediaSequence: good.mediaSequence + 1,
      ended: true,
      reports: [{ rendition: '720p', lastMsn: 1, lastPart: 0 }],
      segments: good.segments.map((s, i) =>
        i === 1
          ? { ...s, epoch: s.epoch + 5 }
          : i === good.segments.length - 1
            ? { ...s, parts: [{ duration: 0.25, independent: true }, ...s.parts!] }
            : s,
      ),
    };
    const problems = snapshotProblems(bad).map((p) => p.split(':')[0]);
    expect(problems).toEqual(expect.arrayContaining(['MP-03', 'SEG-03', 'MP-10', 'PART-08', 'RR-03']));
    expect(
      timingProblems({ targetDuration: 1, partTarget: 0.2, partHoldBack: 0.4, holdBack: 3, liveStartOffset: 0.4, canSkipUntil: 5 }).map(
        (p) => p.split(':')[0],
      ),
    ).toEqual(['MP-05', 'DU-01']);
    expect(timingProblems({ ...TIMING, holdBack: 2 }).map((p) => p.split(':')[0])).toEqual(['MP-05']);
    // The live start: not closer than the least hold-back the spec allows, not behind PART-HOLD-BACK.
    expect(timingProblems({ ...TIMING, liveStartOffset: 0.3 }).map((p) => p.split(':')[0])).toEqual(['MP-11']);
    expect(timingProblems({ ...TIMING, liveStartOffset: 0.8 }).map((p) => p.split(':')[0])).toEqual(['MP-11']);
    expect(timingProblems({ ...TIMING, liveStartOffset: 0 })).toEqual([]);
  });
});
