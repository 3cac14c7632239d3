// VOD playlists of recordings and clips (renderVodPlaylist) and the start-over tag of live
// playlists (EXT-X-START), parsed back by m3u8-parser and by hls.js's own parser (LLHLS.md MP-09,
// MP-10, MP-11, SEG-02, SEG-03, SEG-05).
import { M3U8Parser } from 'hls.js';
import { Parser } from 'm3u8-parser';
import { describe, expect, it } from 'vitest';
import type { MediaPlaylistSnapshot, VodPlaylistSnapshot } from '../../core/contracts/live-model.ts';
import { renderMediaPlaylist, renderVodPlaylist } from '../../core/playlist/render.ts';
import { playlistTiming } from '../../core/contracts/stream-config.ts';

// eslint-disable-next-line @typescript-eslint/no-explicit-any
type Any = any;
const T0 = Date.UTC(2026, 0, 1, 12);

function m3u8(text: string): Any {
  const p = new Parser();
  p.push(text);
  p.end();
  return p.manifest;
}

function hls(text: string): Any {
  const details: Any = M3U8Parser.parseLevelPlaylist(text, 'https://edge.example/vod/rc1/v/index.m3u8', 0, 'main' as Any, 0, null);
  expect(details.playlistParsingError).toBeNull();
  return details;
}

/** Three segments of epoch 1, a reconnection 2 s later, two of epoch 2. */
function recording(): VodPlaylistSnapshot {
  const segs = [1, 2, 3].map((msn) => ({ msn, epoch: 1, duration: 1, programDateTime: T0 + (msn - 1) * 1000, discontinuity: msn === 1 }));
  segs.push(
    { msn: 4, epoch: 2, duration: 1, programDateTime: T0 + 5000, discontinuity: true },
    { msn: 5, epoch: 2, duration: 0.6, programDateTime: T0 + 6000, discontinuity: false },
  );
  return { rendition: 'v', targetDuration: 1, segments: segs };
}

describe('VOD playlists', () => {
  it('MP-09/MP-10: PLAYLIST-TYPE:VOD, every segment, ENDLIST last; nothing live', () => {
    const text = renderVodPlaylist(recording());
    const lines = text.split('\n').filter(Boolean);
    expect(lines.slice(0, 5)).toEqual([
      '#EXTM3U',
      '#EXT-X-VERSION:6',
      '#EXT-X-TARGETDURATION:1',
      '#EXT-X-PLAYLIST-TYPE:VOD',
      '#EXT-X-MEDIA-SEQUENCE:0',
    ]);
    expect(lines.at(-1)).toBe('#EXT-X-ENDLIST');
    for (const t of ['PART', 'PRELOAD-HINT', 'SKIP', 'SERVER-CONTROL', 'PART-INF', 'RENDITION-REPORT'])
      expect(text).not.toContain(`#EXT-X-${t}`);
    const m = m3u8(text);
    expect(m).toMatchObject({ playlistType: 'VOD', endList: true, targetDuration: 1 });
    expect(m.segments.map((s: Any) => s.uri)).toEqual(['1/1.m4s', '1/2.m4s', '1/3.m4s', '2/4.m4s', '2/5.m4s']);
    const h = hls(text);
    expect(h.live).toBe(false);
    expect(h.type).toBe('VOD');
    expect(h.totalduration).toBeCloseTo(4.6, 6);
  });

  it('SEG-04: a segment the rendition has no media for is EXT-X-GAP with its EXTINF; hls.js counts its time', () => {
    const snap = recording();
    snap.segments[2] = { ...snap.segments[2]!, gap: true };
    const text = renderVodPlaylist(snap);
    expect(text).toContain('#EXT-X-GAP\n#EXTINF:1,\n1/3.m4s\n');
    const h = hls(text);
    expect(h.fragments.map((f: Any) => f.gap === true)).toEqual([false, false, true, false, false]);
    expect(h.totalduration).toBeCloseTo(4.6, 6);
  });

  it('SEG-03: a reconnection is DISCONTINUITY + a new MAP + its PDT; none on the first segment', () => {
    const text = renderVodPlaylist(recording());
    const m = m3u8(text);
    expect(m.segments.map((s: Any) => Boolean(s.discontinuity))).toEqual([false, false, false, true, false]);
    expect(m.segments.map((s: Any) => s.map.uri)).toEqual(['1/init.mp4', '1/init.mp4', '1/init.mp4', '2/init.mp4', '2/init.mp4']);
    // PDT on the first segment and after the discontinuity: every segment is dated from them.
    expect(text.match(/#EXT-X-PROGRAM-DATE-TIME:/g)).toHaveLength(2);
    const h = hls(text);
    expect(h.fragments.map((f: Any) => f.cc)).toEqual([0, 0, 0, 1, 1]);
    expect(h.fragments.map((f: Any) => f.programDateTime)).toEqual([T0, T0 + 1000, T0 + 2000, T0 + 5000, T0 + 6000]);
  });

  it('a clip: EXT-X-START at the start part (PRECISE), a byte range of its last segment (SEG-05)', () => {
    const snap = recording();
    snap.segments = snap.segments.slice(1, 3);
    snap.segments[1]!.duration = 0.4;
    snap.segments[1]!.byteLength = 2345;
    snap.startTimeOffset = 0.2;
    const text = renderVodPlaylist(snap, { uriQuery: 'token=abc' });
    expect(text).toContain('#EXT-X-START:TIME-OFFSET=0.2,PRECISE=YES\n');
    expect(text).toContain('#EXTINF:0.4,\n#EXT-X-BYTERANGE:2345@0\n1/3.m4s?token=abc\n');
    const m = m3u8(text);
    expect(m.start).toEqual({ timeOffset: 0.2, precise: true });
    expect(m.segments[1].byterange).toEqual({ length: 2345, offset: 0 });
    expect(m.segments[0].map.uri).toBe('1/init.mp4?token=abc');
    const h = hls(text);
    expect(h.startTimeOffset).toBe(0.2);
    expect(h.fragments[1].byteRange).toEqual([0, 2345]);
    // No START for a clip that begins on a segment boundary.
    expect(renderVodPlaylist({ ...snap, startTimeOffset: 0 })).not.toContain('#EXT-X-START');
  });
});

describe('start-over (MP-11)', () => {
  it('a start-over live playlist carries EXT-X-START:TIME-OFFSET=0,PRECISE=YES in its header, also in delta updates', () => {
    const timing = playlistTiming({ partTarget: 0.2, segmentTarget: 1 });
    const snap: MediaPlaylistSnapshot = {
      streamId: 's',
      rendition: 'v',
      timing,
      mediaSequence: 7,
      discontinuitySequence: 0,
      skippedSegments: 0,
      segments: [7, 8, 9].map((msn) => ({ msn, epoch: 1, duration: 1, programDateTime: T0 + msn * 1000, discontinuity: false })),
      ended: false,
      reports: [],
      startTimeOffset: 0,
    };
    const text = renderMediaPlaylist(snap);
    const lines = text.split('\n');
    expect(lines.indexOf('#EXT-X-START:TIME-OFFSET=0,PRECISE=YES')).toBeLessThan(
      lines.findIndex((l) => l.startsWith('#EXT-X-MEDIA-SEQUENCE')),
    );
    expect(m3u8(text).start).toEqual({ timeOffset: 0, precise: true });
    expect(hls(text).startTimeOffset).toBe(0);
    expect(text).not.toContain('PLAYLIST-TYPE');
    // Exactly one EXT-X-START: the start-over point replaces the live start near the edge.
    expect(text.match(/#EXT-X-START/g)).toHaveLength(1);
    expect(renderMediaPlaylist({ ...snap, startTimeOffset: undefined })).toContain('#EXT-X-START:TIME-OFFSET=-0.4,PRECISE=YES\n');
    expect(renderMediaPlaylist({ ...snap, startTimeOffset: undefined, ended: true })).not.toContain('#EXT-X-START');
  });
});
