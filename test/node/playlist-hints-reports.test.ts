// LL-HLS rendering: preload hints (§1.5) and rendition reports (§1.6), parsed back as players do.
import { describe, expect, it } from 'vitest';
import type { MediaPlaylistSnapshot } from '../../core/contracts/live-model.ts';
import { renderMediaPlaylist } from '../../core/playlist/render.ts';
import {
  T0,
  TIMING,
  liveStream,
  type Any,
  parseM3u8,
  parseHls,
  lines,
  count,
  render,
  scenarios,
  LiveRendition,
} from '../support/playlist-fixtures.ts';

describe('preload hints (§1.5)', () => {
  it('PH-01 the hint URI is byte for byte the URI of the PART that later appears (mid-segment and across a boundary)', () => {
    const video = new LiveRendition('720p', TIMING);
    video.segment().segment().part(0.2);
    for (let step = 0; step < 14; step++) {
      const q = 'token=T';
      const before = render(video.snapshot(), q);
      const hint = lines(before).find((l) => l.startsWith('#EXT-X-PRELOAD-HINT:'))!;
      const uri = hint.slice(hint.indexOf('URI="') + 5, -1);
      video.part(0.2);
      // A parent closed as soon as its final part is published: the hint then names part 0 of the next (PH-08).
      if (video.open!.parts.length === 5) video.close();
      const after = render(video.snapshot(), q);
      expect(after).toContain(`,URI="${uri}"`);
      expect(lines(after).find((l) => l.includes(`URI="${uri}"`))).toMatch(/^#EXT-X-PART:/);
    }
  });

  it('PH-02 a live playlist hints the next part: next index of the open parent, or part 0 of MSN+1 after a close', () => {
    const video = new LiveRendition('720p', TIMING);
    video.segment().part(0.2).part(0.2);
    expect(lines(render(video.snapshot())).find((l) => l.startsWith('#EXT-X-PRELOAD-HINT'))).toBe(
      '#EXT-X-PRELOAD-HINT:TYPE=PART,URI="1/2.2.m4s"',
    );
    video.part(0.2).close();
    const text = render(video.snapshot());
    expect(lines(text).find((l) => l.startsWith('#EXT-X-PRELOAD-HINT'))).toBe('#EXT-X-PRELOAD-HINT:TYPE=PART,URI="1/3.0.m4s"');
    expect(parseHls(text).preloadHint).toMatchObject({ TYPE: 'PART', URI: '1/3.0.m4s' });
  });

  it('PH-02 an open parent of a new epoch with no part yet hints its MAP and part 0, listing nothing else for it', () => {
    const snap: MediaPlaylistSnapshot = {
      ...new LiveRendition('720p', TIMING).segment().segment().snapshot(),
    };
    snap.segments = [...snap.segments, { msn: 3, epoch: 2, duration: null, programDateTime: T0 + 5000, discontinuity: true, parts: [] }];
    const text = renderMediaPlaylist(snap);
    expect(lines(text).slice(-2)).toEqual([
      '#EXT-X-PRELOAD-HINT:TYPE=MAP,URI="2/init.mp4"',
      '#EXT-X-PRELOAD-HINT:TYPE=PART,URI="2/3.0.m4s"',
    ]);
    expect(count(text, '#EXT-X-DISCONTINUITY')).toBe(0);
    parseM3u8(text);
    parseHls(text);
    // Same epoch: only the PART hint.
    snap.segments[2] = { ...snap.segments[2]!, epoch: 1, discontinuity: false, parts: undefined };
    expect(lines(renderMediaPlaylist(snap)).slice(-1)).toEqual(['#EXT-X-PRELOAD-HINT:TYPE=PART,URI="1/3.0.m4s"']);
  });

  it('PH-01/PH-05 an open parent with its final part out hints part 0 of MSN+1 (no part that will never exist)', () => {
    const video = new LiveRendition('720p', TIMING);
    video.segment().part(0.2).part(0.2).part(0.2).part(0.2).part(0.2);
    const snap = video.snapshot();
    snap.segments.at(-1)!.partsComplete = true;
    const text = render(snap);
    expect(lines(text).find((l) => l.startsWith('#EXT-X-PRELOAD-HINT'))).toBe('#EXT-X-PRELOAD-HINT:TYPE=PART,URI="1/3.0.m4s"');
    // Still the open parent (no EXTINF yet): its parts are listed, then the hint of the next parent (PH-08).
    expect(count(text, '#EXTINF')).toBe(1);
    expect(parseM3u8(text).preloadSegment.parts).toHaveLength(5);
    expect(parseHls(text).preloadHint).toMatchObject({ TYPE: 'PART', URI: '1/3.0.m4s' });
    // Once it closes, the hint is the same part: a client holding it loses nothing.
    video.close().part(0.2);
    expect(render(video.snapshot())).toContain('#EXT-X-PART:DURATION=0.2,URI="1/3.0.m4s",INDEPENDENT=YES');
  });

  it("PH-02 after a publisher reconnected, the hint names the new epoch's first part and its MAP", () => {
    const video = new LiveRendition('720p', TIMING);
    video.segment().segment();
    const snap = { ...video.snapshot(), nextEpoch: 2 };
    const text = render(snap);
    expect(lines(text).slice(-2)).toEqual([
      '#EXT-X-PRELOAD-HINT:TYPE=MAP,URI="2/init.mp4"',
      '#EXT-X-PRELOAD-HINT:TYPE=PART,URI="2/3.0.m4s"',
    ]);
    parseM3u8(text);
    parseHls(text);
    // The URIs are those the new epoch's first parent then lists (PH-01).
    video.newEpoch().part(0.2);
    const after = render(video.snapshot());
    expect(after).toContain('#EXT-X-MAP:URI="2/init.mp4"');
    expect(after).toContain('URI="2/3.0.m4s"');
  });

  it('PH-03 at most one hint per TYPE', () => {
    for (const s of scenarios()) {
      const hints = lines(render(s.snap)).filter((l) => l.startsWith('#EXT-X-PRELOAD-HINT'));
      const types = hints.map((h) => /TYPE=([A-Z]+)/.exec(h)![1]);
      expect(new Set(types).size).toBe(types.length);
      expect(hints.length).toBe(s.name === 'ended' ? 0 : 1);
    }
  });

  it('PH-07 no hint once ENDLIST is present, even with parts listed', () => {
    const video = new LiveRendition('720p', TIMING);
    video.segment().segment();
    const text = render(video.snapshot({ ended: true }));
    expect(count(text, '#EXT-X-PART')).toBe(10);
    expect(count(text, '#EXT-X-PRELOAD-HINT')).toBe(0);
  });
});

describe('rendition reports (§1.6)', () => {
  it('RR-01 report URIs are relative to the media playlist and resolve to the sibling playlist (with the query)', () => {
    const { video, audio } = liveStream();
    const text = render(video.snapshot({ others: [audio] }), 'token=abc');
    const hls = parseHls(text, 'https://edge.example/live/demo/720p/index.m3u8?token=abc');
    expect(hls.renditionReports).toHaveLength(1);
    expect(hls.renditionReports[0].URI).toBe('../audio/index.m3u8?token=abc');
    expect(new URL(hls.renditionReports[0].URI, 'https://edge.example/live/demo/720p/index.m3u8').href).toBe(
      'https://edge.example/live/demo/audio/index.m3u8?token=abc',
    );
  });

  it('RR-02 LAST-MSN/LAST-PART name the last published part of the other rendition (open or just closed)', () => {
    const { video, audio } = liveStream();
    let m = parseM3u8(render(video.snapshot({ others: [audio] })));
    expect(m.renditionReports).toEqual([{ uri: '../audio/index.m3u8', lastMsn: 19, lastPart: 1 }]);
    audio.part(0.2).part(0.2).part(0.2).close();
    m = parseM3u8(render(video.snapshot({ others: [audio] })));
    expect(m.renditionReports).toEqual([{ uri: '../audio/index.m3u8', lastMsn: 19, lastPart: 4 }]);
  });

  it('RR-03 one report for every other rendition (video reports audio and the other videos, never itself), after the hint', () => {
    const timing = TIMING;
    const r = ['720p', '480p', '360p', 'audio'].map((n) => new LiveRendition(n, timing).segment().part(0.2));
    for (const self of r) {
      const text = render(self.snapshot({ others: r.filter((o) => o !== self) }));
      const reports = parseM3u8(text).renditionReports.map((x: Any) => x.uri);
      expect(reports).toEqual(r.filter((o) => o !== self).map((o) => `../${o.name}/index.m3u8`));
      const ls = lines(text);
      expect(ls.findIndex((l) => l.startsWith('#EXT-X-RENDITION-REPORT'))).toBeGreaterThan(
        ls.findIndex((l) => l.startsWith('#EXT-X-PRELOAD-HINT')),
      );
    }
  });
});
