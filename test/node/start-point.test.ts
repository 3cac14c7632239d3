// The watch page's start (core/player/start-point.ts): the live playlists we render, with their
// EXT-X-START moved back to the keyframe before it, read by hls.js's own parser, start hls.js on an
// independent part — the last one at or before the start the playlist names — whatever the number
// of parts the open segment has published.
import { describe, expect, it } from 'vitest';
import { startOnIndependentPart } from '../../core/player/start-point.ts';
import { LiveRendition, TIMING, parseHls, render, type Any } from '../support/playlist-fixtures.ts';

/** Where hls.js starts a live playlist it has just parsed (base-stream-controller setStartPosition). */
const startOf = (details: Any) => details.edge + details.startTimeOffset;

/** A live rendition with 8 whole segments and `open` parts of the next one published. */
function live(open: number): LiveRendition {
  const r = new LiveRendition('360p', TIMING);
  for (let i = 0; i < 8; i++) r.segment(5);
  for (let i = 0; i < open; i++) r.part(0.2);
  return r;
}

describe('startOnIndependentPart', () => {
  for (const open of [0, 1, 2, 3, 4]) {
    it(`starts on the keyframe at or before EXT-X-START (${open} parts of the open segment published)`, () => {
      const text = render(live(open).snapshot());
      const before = parseHls(text);
      const after = parseHls(startOnIndependentPart(text));
      const named = startOf(before);
      const start = startOf(after);
      const independent = (after.partList as Any[]).filter((p) => p.independent).map((p) => p.start as number);
      // On an independent part, the last one at or before the named start, and never later than it.
      expect(independent.some((s) => Math.abs(s - start) < 1e-6)).toBe(true);
      expect(start).toBeLessThanOrEqual(named + 1e-6);
      expect(independent.filter((s) => s > start + 1e-6 && s <= named + 1e-6)).toEqual([]);
      // Only EXT-X-START changed.
      expect(startOnIndependentPart(text).replace(/^#EXT-X-START:.*$/m, '')).toBe(text.replace(/^#EXT-X-START:.*$/m, ''));
    });
  }

  it('moves a start that falls inside a segment: 3 parts published, the named start is part 1 of it', () => {
    const text = render(live(3).snapshot());
    expect(text).toContain('#EXT-X-START:TIME-OFFSET=-0.4,PRECISE=YES');
    expect(startOnIndependentPart(text)).toContain('#EXT-X-START:TIME-OFFSET=-0.6,PRECISE=YES');
  });

  it('leaves a playlist alone when it has ended, names no start, or a start from the beginning', () => {
    const r = live(2);
    const ended = render(r.close().snapshot({ ended: true }));
    expect(startOnIndependentPart(ended)).toBe(ended);
    const text = render(live(2).snapshot());
    const noStart = text.replace(/^#EXT-X-START:.*\n/m, '');
    expect(startOnIndependentPart(noStart)).toBe(noStart);
    const fromStart = text.replace(/TIME-OFFSET=-0.4/, 'TIME-OFFSET=2');
    expect(startOnIndependentPart(fromStart)).toBe(fromStart);
  });
});
