// LL-HLS rendering, continued: delta updates (§1.7) applied as a player would, URI queries, the
// multivariant playlist (§1.10) parsed by hls.js and m3u8-parser, and byte-exact golden playlists.
import { describe, expect, it } from 'vitest';
import type { MediaPlaylistSnapshot, PartInfo, PlaylistTiming, SegmentInfo } from '../../core/contracts/live-model.ts';
import { formatProgramDateTime, renderMediaPlaylist, renderMultivariantPlaylist } from '../../core/playlist/render.ts';
import { computeSkip, deltaSnapshot } from '../../core/playlist/window.ts';
import {
  round5,
  TIMING,
  liveStream,
  type Any,
  parseM3u8,
  parseHls,
  lines,
  count,
  render,
  scenarios,
  segmentList,
  applyDelta,
  PRESENTATION,
  parseMultivariant,
} from '../support/playlist-fixtures.ts';

describe('delta updates (§1.7)', () => {
  it('DU-02 a delta applied to the previous full playlist gives exactly the new full playlist', () => {
    const { video, audio } = liveStream();
    let checked = 0;
    for (let step = 0; step < 40; step++) {
      const previous = render(video.snapshot({ others: [audio] }));
      // The client asks for a delta within CAN-SKIP-UNTIL / 2 of its copy: a few parts later.
      for (let k = 0; k < 1 + (step % 4); k++) {
        video.part(0.2);
        audio.part(0.2);
        if (video.open!.parts.length === 5) {
          video.close();
          audio.close();
          if (step === 20) {
            video.newEpoch();
            audio.newEpoch();
          }
        }
      }
      const now = video.snapshot({ others: [audio] });
      const full = render(now);
      const delta = render(deltaSnapshot(now));
      expect(segmentList(delta).skipped).toBeGreaterThan(0);
      expect(applyDelta(previous, delta)).toEqual(segmentList(full).segments);
      // Everything after the segment list is untouched: open parent, hint, reports.
      const tail = (t: string) => lines(t).slice(lines(t).findLastIndex((l) => !l.startsWith('#')) + 1);
      expect(tail(delta)).toEqual(tail(full));
      // hls.js: placeholders for the skipped segments, then the listed ones with their own MSNs.
      const hls = parseHls(delta);
      expect(hls.skippedSegments).toBe(segmentList(delta).skipped);
      expect(hls.fragments.slice(0, hls.skippedSegments).every((f: Any) => f === null)).toBe(true);
      expect(hls.fragments.at(-1).sn).toBe(parseHls(full).fragments.at(-1).sn);
      checked++;
    }
    expect(checked).toBe(40);
  });

  it('DU-02 _HLS_skip on an ended playlist is ignored: the full playlist', () => {
    const s = scenarios().find((x) => x.name === 'ended')!;
    expect(deltaSnapshot(s.snap)).toBe(s.snap);
  });

  it('DU-03 skipped segments end at or before E − CAN-SKIP-UNTIL and every later one is listed', () => {
    const { video, audio } = liveStream();
    for (let step = 0; step < 30; step++) {
      const snap = video.snapshot({ others: [audio] });
      const full = segmentList(render(snap));
      const delta = segmentList(render(deltaSnapshot(snap)));
      const ends: number[] = [];
      let t = 0;
      for (const s of full.segments) ends.push((t = round5(t + s.duration)));
      const E = ends.at(-1)!;
      const boundary = round5(E - TIMING.canSkipUntil);
      for (let i = 0; i < full.segments.length; i++) {
        if (i < delta.skipped) expect(ends[i]).toBeLessThanOrEqual(boundary);
        else expect(ends[i]).toBeGreaterThan(boundary);
      }
      expect(delta.skipped).toBe(computeSkip(snap.segments, snap.timing));
      video.part(0.2, true);
      if (step % 3 === 2) video.close();
    }
  });

  it('DU-03 header, parts, hint and reports all remain in the delta; only the old segments go', () => {
    const { video, audio } = liveStream();
    const snap = video.snapshot({ others: [audio] });
    const full = render(snap);
    const delta = render(deltaSnapshot(snap));
    const header = (t: string) => lines(t).slice(2, 7);
    expect(header(delta)).toEqual(header(full));
    expect(count(delta, '#EXT-X-PART')).toBe(count(full, '#EXT-X-PART'));
    expect(count(delta, '#EXT-X-PRELOAD-HINT')).toBe(1);
    expect(count(delta, '#EXT-X-RENDITION-REPORT')).toBe(1);
    expect(full.length).toBeGreaterThan(delta.length);
  });

  it('DU-04 SKIP carries SKIPPED-SEGMENTS, once, right after MEDIA-SEQUENCE, with VERSION 9', () => {
    const { video, audio } = liveStream();
    const delta = deltaSnapshot(video.snapshot({ others: [audio] }));
    const text = render(delta);
    const ls = lines(text);
    expect(count(text, '#EXT-X-SKIP')).toBe(1);
    const i = ls.findIndex((l) => l.startsWith('#EXT-X-SKIP'));
    expect(ls[i]).toBe(`#EXT-X-SKIP:SKIPPED-SEGMENTS=${delta.skippedSegments}`);
    expect(ls[i - 2]).toMatch(/^#EXT-X-MEDIA-SEQUENCE:/);
    expect(ls[i - 1]).toMatch(/^#EXT-X-DISCONTINUITY-SEQUENCE:/);
    expect(ls[1]).toBe('#EXT-X-VERSION:9');
    expect(parseM3u8(text).skip).toEqual({ skippedSegments: delta.skippedSegments });
    // The first listed segment still carries its MAP and PDT, so the delta stands on its own.
    expect(ls[i + 1]).toMatch(/^#EXT-X-(MAP|DISCONTINUITY)/);
  });
});

describe('uriQuery', () => {
  it('is appended to every URI the media playlist writes (MAP, parts, segments, hint, reports)', () => {
    const s = scenarios().find((x) => x.name === 'live')!;
    const q = 'token=eyJhbGciOi.J9-_x';
    const text = render(s.snap, q);
    const uris = [...text.matchAll(/URI="([^"]*)"/g)].map((x) => x[1]!).concat(lines(text).filter((l) => !l.startsWith('#')));
    expect(uris.length).toBe(count(text, 'URI') + count(text, '#EXT-X-MAP') + count(text, '#EXT-X-PART') + 2);
    for (const u of uris) expect(u.endsWith(`?${q}`)).toBe(true);
    expect(renderMediaPlaylist(s.snap, { uriQuery: `?${q}` })).toBe(text);
    expect(renderMediaPlaylist(s.snap, { uriQuery: '' })).toBe(render(s.snap));
  });

  it('rejects a query that would break a quoted-string or the line (SYN-04)', () => {
    const s = scenarios()[0]!;
    for (const bad of ['a"b', 'a b', 'a\nb', 'a#b', 'é=1']) {
      expect(() => renderMediaPlaylist(s.snap, { uriQuery: bad })).toThrow(TypeError);
    }
  });
});

describe('multivariant playlist (§1.10)', () => {
  it('MV-01 / MV-02 every variant has BANDWIDTH and AVERAGE-BANDWIDTH including the audio, highest first', () => {
    const { hls } = parseMultivariant(renderMultivariantPlaylist(PRESENTATION));
    expect(hls.levels.map((l: Any) => [l.url, l.bitrate, l.attrs['AVERAGE-BANDWIDTH']])).toEqual([
      ['https://edge.example/live/demo/720p/index.m3u8', 3_290_800, '2753000'],
      ['https://edge.example/live/demo/480p/index.m3u8', 1_652_800, '1388000'],
      ['https://edge.example/live/demo/360p/index.m3u8', 1_022_800, '863000'],
    ]);
  });

  it('MV-03 CODECS lists the video and the audio group codecs', () => {
    const { m3u8 } = parseMultivariant(renderMultivariantPlaylist(PRESENTATION));
    expect(m3u8.playlists.map((p: Any) => p.attributes.CODECS)).toEqual([
      'avc1.64001f,mp4a.40.2',
      'avc1.64001f,mp4a.40.2',
      'avc1.64001e,mp4a.40.2',
    ]);
  });

  it('MV-04 RESOLUTION and FRAME-RATE (3 decimals) on every video variant', () => {
    const text = renderMultivariantPlaylist(PRESENTATION);
    const { m3u8, hls } = parseMultivariant(text);
    expect(m3u8.playlists.map((p: Any) => p.attributes.RESOLUTION)).toEqual([
      { width: 1280, height: 720 },
      { width: 854, height: 480 },
      { width: 640, height: 360 },
    ]);
    expect(hls.levels.map((l: Any) => l.attrs['FRAME-RATE'])).toEqual(['30.000', '30.000', '29.970']);
    expect(text).toContain(',FRAME-RATE=30.000,');
    expect(text).toContain(',FRAME-RATE=29.970,');
  });

  it('MV-05 / MV-06 AUDIO matches one EXT-X-MEDIA group: NAME, LANGUAGE, one DEFAULT, AUTOSELECT, CHANNELS, URI', () => {
    const text = renderMultivariantPlaylist(PRESENTATION);
    const { m3u8, hls, media } = parseMultivariant(text);
    for (const p of m3u8.playlists) expect(p.attributes.AUDIO).toBe('audio');
    expect(m3u8.mediaGroups.AUDIO).toEqual({
      audio: { audio: { default: true, autoselect: true, language: 'und', uri: 'audio/index.m3u8' } },
    });
    expect(media.AUDIO).toHaveLength(1);
    expect(media.AUDIO[0]).toMatchObject({ groupId: 'audio', name: 'audio', lang: 'und', default: true, autoselect: true, channels: '2' });
    expect(media.AUDIO[0].url).toBe('https://edge.example/live/demo/audio/index.m3u8');
    expect(hls.levels.every((l: Any) => l.audioGroups?.includes('audio') || l.attrs.AUDIO === 'audio')).toBe(true);
    // A second audio rendition: still one DEFAULT, and the variants declare the larger one.
    const two = renderMultivariantPlaylist({
      ...PRESENTATION,
      renditions: [
        ...PRESENTATION.renditions,
        { name: 'audio-hi', kind: 'audio', codecs: 'mp4a.40.2', bandwidth: 281_600, averageBandwidth: 256_000 },
      ],
    });
    expect(two.match(/DEFAULT=YES/g)).toHaveLength(1);
    expect(parseMultivariant(two).hls.levels[0].bitrate).toBe(3_150_000 + 281_600);
  });

  it('MV-07 INDEPENDENT-SEGMENTS in the multivariant, VERSION 6, and no media-playlist tags (SYN-05)', () => {
    const text = renderMultivariantPlaylist(PRESENTATION);
    expect(lines(text).slice(0, 3)).toEqual(['#EXTM3U', '#EXT-X-VERSION:6', '#EXT-X-INDEPENDENT-SEGMENTS']);
    expect(parseMultivariant(text).m3u8.independentSegments).toBe(true);
    for (const t of [
      '#EXT-X-TARGETDURATION',
      '#EXT-X-MEDIA-SEQUENCE',
      '#EXTINF',
      '#EXT-X-PART',
      '#EXT-X-ENDLIST',
      '#EXT-X-SERVER-CONTROL',
    ]) {
      expect(count(text, t)).toBe(0);
    }
    expect(count(renderMultivariantPlaylist({ ...PRESENTATION, ended: true }), '#EXT-X-ENDLIST')).toBe(0);
  });

  it('MV-01 an audio-only presentation lists the audio rendition as its variant', () => {
    const text = renderMultivariantPlaylist(
      { streamId: 'radio', ended: false, renditions: [PRESENTATION.renditions[1]!] },
      { uriQuery: 'token=r' },
    );
    expect(text).toBe(
      '#EXTM3U\n#EXT-X-VERSION:6\n#EXT-X-INDEPENDENT-SEGMENTS\n' +
        '#EXT-X-STREAM-INF:BANDWIDTH=140800,AVERAGE-BANDWIDTH=128000,CODECS="mp4a.40.2"\naudio/index.m3u8?token=r\n',
    );
    const { hls } = parseMultivariant(text);
    expect(hls.levels).toHaveLength(1);
    expect(hls.levels[0].audioCodec).toBe('mp4a.40.2');
  });

  it('appends uriQuery to every variant and media URI', () => {
    const text = renderMultivariantPlaylist(PRESENTATION, { uriQuery: 'token=abc' });
    const { m3u8 } = parseMultivariant(text);
    expect(m3u8.playlists.map((p: Any) => p.uri)).toEqual([
      '720p/index.m3u8?token=abc',
      '480p/index.m3u8?token=abc',
      '360p/index.m3u8?token=abc',
    ]);
    expect(m3u8.mediaGroups.AUDIO.audio.audio.uri).toBe('audio/index.m3u8?token=abc');
  });
});

describe('golden playlists (byte-exact)', () => {
  const timing: PlaylistTiming = {
    targetDuration: 2,
    partTarget: 0.5,
    partHoldBack: 1.5,
    holdBack: 6,
    liveStartOffset: 1,
    canSkipUntil: 12,
  };
  const parts = (...d: number[]): PartInfo[] => d.map((duration, i) => ({ duration, independent: i === 0 }));

  it('live: pruned parts, parts near the edge, open parent, hint, report, token', () => {
    const snap: MediaPlaylistSnapshot = {
      streamId: 'demo',
      rendition: '720p',
      timing,
      mediaSequence: 7,
      discontinuitySequence: 1,
      skippedSegments: 0,
      segments: [
        { msn: 7, epoch: 3, duration: 2, programDateTime: Date.UTC(2026, 0, 1, 0, 0, 0), discontinuity: false },
        {
          msn: 8,
          epoch: 3,
          duration: 1.96667,
          programDateTime: Date.UTC(2026, 0, 1, 0, 0, 2),
          discontinuity: false,
          parts: parts(0.5, 0.5, 0.5, 0.46667),
        },
        {
          msn: 9,
          epoch: 3,
          duration: null,
          programDateTime: Date.UTC(2026, 0, 1, 0, 0, 3, 967),
          discontinuity: false,
          parts: parts(0.5, 0.5),
        },
      ],
      ended: false,
      reports: [{ rendition: 'audio', lastMsn: 9, lastPart: 1 }],
    };
    const text = renderMediaPlaylist(snap, { uriQuery: 'token=t0k' });
    parseM3u8(text);
    expect(parseHls(text).fragmentHint.sn).toBe(9);
    expect(text).toBe(
      [
        '#EXTM3U',
        '#EXT-X-VERSION:6',
        '#EXT-X-TARGETDURATION:2',
        '#EXT-X-SERVER-CONTROL:CAN-BLOCK-RELOAD=YES,CAN-SKIP-UNTIL=12,HOLD-BACK=6,PART-HOLD-BACK=1.5',
        '#EXT-X-PART-INF:PART-TARGET=0.5',
        '#EXT-X-START:TIME-OFFSET=-1,PRECISE=YES',
        '#EXT-X-MEDIA-SEQUENCE:7',
        '#EXT-X-DISCONTINUITY-SEQUENCE:1',
        '#EXT-X-MAP:URI="3/init.mp4?token=t0k"',
        '#EXT-X-PROGRAM-DATE-TIME:2026-01-01T00:00:00.000Z',
        '#EXTINF:2,',
        '3/7.m4s?token=t0k',
        '#EXT-X-PROGRAM-DATE-TIME:2026-01-01T00:00:02.000Z',
        '#EXT-X-PART:DURATION=0.5,URI="3/8.0.m4s?token=t0k",INDEPENDENT=YES',
        '#EXT-X-PART:DURATION=0.5,URI="3/8.1.m4s?token=t0k"',
        '#EXT-X-PART:DURATION=0.5,URI="3/8.2.m4s?token=t0k"',
        '#EXT-X-PART:DURATION=0.46667,URI="3/8.3.m4s?token=t0k"',
        '#EXTINF:1.96667,',
        '3/8.m4s?token=t0k',
        '#EXT-X-PROGRAM-DATE-TIME:2026-01-01T00:00:03.967Z',
        '#EXT-X-PART:DURATION=0.5,URI="3/9.0.m4s?token=t0k",INDEPENDENT=YES',
        '#EXT-X-PART:DURATION=0.5,URI="3/9.1.m4s?token=t0k"',
        '#EXT-X-PRELOAD-HINT:TYPE=PART,URI="3/9.2.m4s?token=t0k"',
        '#EXT-X-RENDITION-REPORT:URI="../audio/index.m3u8?token=t0k",LAST-MSN=9,LAST-PART=1',
        '',
      ].join('\n'),
    );
  });

  it('ended: a new epoch, parts kept, reports, ENDLIST last and no hint', () => {
    const snap: MediaPlaylistSnapshot = {
      streamId: 'demo',
      rendition: 'audio',
      timing,
      mediaSequence: 20,
      discontinuitySequence: 2,
      skippedSegments: 0,
      segments: [
        { msn: 20, epoch: 4, duration: 1.5, programDateTime: Date.UTC(2026, 5, 30, 23, 59, 58, 500), discontinuity: false },
        {
          msn: 21,
          epoch: 5,
          duration: 1,
          programDateTime: Date.UTC(2026, 6, 1, 0, 0, 3),
          discontinuity: true,
          parts: [
            { duration: 0.5, independent: true },
            { duration: 0.5, independent: true },
          ],
        },
      ],
      ended: true,
      reports: [{ rendition: '720p', lastMsn: 21, lastPart: 1 }],
    };
    const text = renderMediaPlaylist(snap);
    expect(parseM3u8(text).endList).toBe(true);
    expect(parseHls(text).fragments.map((f: Any) => f.cc)).toEqual([2, 3]);
    expect(text).toBe(
      '#EXTM3U\n#EXT-X-VERSION:6\n#EXT-X-TARGETDURATION:2\n' +
        '#EXT-X-SERVER-CONTROL:CAN-BLOCK-RELOAD=YES,CAN-SKIP-UNTIL=12,HOLD-BACK=6,PART-HOLD-BACK=1.5\n' +
        '#EXT-X-PART-INF:PART-TARGET=0.5\n#EXT-X-MEDIA-SEQUENCE:20\n#EXT-X-DISCONTINUITY-SEQUENCE:2\n' +
        '#EXT-X-MAP:URI="4/init.mp4"\n#EXT-X-PROGRAM-DATE-TIME:2026-06-30T23:59:58.500Z\n#EXTINF:1.5,\n4/20.m4s\n' +
        '#EXT-X-DISCONTINUITY\n#EXT-X-MAP:URI="5/init.mp4"\n#EXT-X-PROGRAM-DATE-TIME:2026-07-01T00:00:03.000Z\n' +
        '#EXT-X-PART:DURATION=0.5,URI="5/21.0.m4s",INDEPENDENT=YES\n#EXT-X-PART:DURATION=0.5,URI="5/21.1.m4s",INDEPENDENT=YES\n' +
        '#EXTINF:1,\n5/21.m4s\n' +
        '#EXT-X-RENDITION-REPORT:URI="../720p/index.m3u8",LAST-MSN=21,LAST-PART=1\n' +
        '#EXT-X-ENDLIST\n',
    );
  });

  it('delta: VERSION 9 and SKIP, the first listed segment keeps its MAP', () => {
    const segs: SegmentInfo[] = [];
    for (let msn = 1; msn <= 9; msn++) {
      segs.push({ msn, epoch: 1, duration: 2, programDateTime: Date.UTC(2026, 0, 1) + (msn - 1) * 2000, discontinuity: false });
    }
    const full: MediaPlaylistSnapshot = {
      streamId: 'demo',
      rendition: '720p',
      timing,
      mediaSequence: 1,
      discontinuitySequence: 0,
      skippedSegments: 0,
      segments: segs,
      ended: false,
      reports: [],
    };
    // E = 18 s, boundary 6 s: segments 1..3 end at 2, 4, 6.
    const delta = deltaSnapshot(full);
    expect(delta.skippedSegments).toBe(3);
    const text = renderMediaPlaylist(delta);
    expect(parseM3u8(text).skip).toEqual({ skippedSegments: 3 });
    expect(parseHls(text).skippedSegments).toBe(3);
    expect(text).toBe(
      '#EXTM3U\n#EXT-X-VERSION:9\n#EXT-X-TARGETDURATION:2\n' +
        '#EXT-X-SERVER-CONTROL:CAN-BLOCK-RELOAD=YES,CAN-SKIP-UNTIL=12,HOLD-BACK=6,PART-HOLD-BACK=1.5\n' +
        '#EXT-X-PART-INF:PART-TARGET=0.5\n#EXT-X-START:TIME-OFFSET=-1,PRECISE=YES\n#EXT-X-MEDIA-SEQUENCE:1\n#EXT-X-DISCONTINUITY-SEQUENCE:0\n' +
        '#EXT-X-SKIP:SKIPPED-SEGMENTS=3\n' +
        segs
          .slice(3)
          .map(
            (s, i) =>
              `${i === 0 ? '#EXT-X-MAP:URI="1/init.mp4"\n' : ''}#EXT-X-PROGRAM-DATE-TIME:${formatProgramDateTime(s.programDateTime)}\n#EXTINF:2,\n1/${s.msn}.m4s\n`,
          )
          .join('') +
        '#EXT-X-PRELOAD-HINT:TYPE=PART,URI="1/10.0.m4s"\n',
    );
  });

  it('multivariant: audio group and three variants', () => {
    const text = renderMultivariantPlaylist(PRESENTATION, { uriQuery: 'token=t' });
    expect(parseMultivariant(text).hls.levels).toHaveLength(3);
    expect(text).toBe(
      [
        '#EXTM3U',
        '#EXT-X-VERSION:6',
        '#EXT-X-INDEPENDENT-SEGMENTS',
        '#EXT-X-MEDIA:TYPE=AUDIO,GROUP-ID="audio",NAME="audio",LANGUAGE="und",DEFAULT=YES,AUTOSELECT=YES,CHANNELS="2",URI="audio/index.m3u8?token=t"',
        '#EXT-X-STREAM-INF:BANDWIDTH=3290800,AVERAGE-BANDWIDTH=2753000,CODECS="avc1.64001f,mp4a.40.2",RESOLUTION=1280x720,FRAME-RATE=30.000,AUDIO="audio"',
        '720p/index.m3u8?token=t',
        '#EXT-X-STREAM-INF:BANDWIDTH=1652800,AVERAGE-BANDWIDTH=1388000,CODECS="avc1.64001f,mp4a.40.2",RESOLUTION=854x480,FRAME-RATE=30.000,AUDIO="audio"',
        '480p/index.m3u8?token=t',
        '#EXT-X-STREAM-INF:BANDWIDTH=1022800,AVERAGE-BANDWIDTH=863000,CODECS="avc1.64001e,mp4a.40.2",RESOLUTION=640x360,FRAME-RATE=29.970,AUDIO="audio"',
        '360p/index.m3u8?token=t',
        '',
      ].join('\n'),
    );
  });
});
