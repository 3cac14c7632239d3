// Media playlist rendering against the LL-HLS checklist (LLHLS.md §1.1–1.4): realistic snapshots
// from a small live-stream simulator (test/support/playlist-fixtures.ts), parsed back by m3u8-parser
// and by hls.js's own parser. Hints and reports: playlist-hints-reports.test.ts; delta updates, the multivariant playlist and golden playlists:
// playlist-delta-multivariant.test.ts; the snapshot self-checks: playlist-self-checks.test.ts.
import { describe, expect, it } from 'vitest';
import { snapshotProblems, timingProblems } from '../../core/playlist/check.ts';
import { formatDecimal, formatProgramDateTime } from '../../core/playlist/render.ts';
import { deltaSnapshot } from '../../core/playlist/window.ts';
import {
  T0,
  round5,
  TIMING,
  liveStream,
  type Any,
  parseM3u8,
  parseHls,
  lines,
  tag,
  count,
  render,
  scenarios,
  LiveRendition,
} from '../support/playlist-fixtures.ts';

describe('playlist syntax (§1.1)', () => {
  it('SYN-01 first line is exactly #EXTM3U', () => {
    for (const s of scenarios()) expect(lines(render(s.snap, s.query))[0]).toBe('#EXTM3U');
  });

  it('SYN-02 UTF-8 without BOM, LF line ends, no control chars, no whitespace, no blank lines', () => {
    for (const s of scenarios()) {
      const text = render(s.snap, s.query);
      expect(text.charCodeAt(0)).not.toBe(0xfeff);
      expect(text.endsWith('\n')).toBe(true);
      expect(text).not.toMatch(/[\u0000-\u0009\u000b-\u001f\u007f-\u009f]/);
      expect(text).not.toMatch(/[ \t]/);
      expect(text).not.toContain('\n\n');
      // A lone surrogate would not survive the UTF-8 round trip.
      expect(Buffer.from(text, 'utf8').toString('utf8')).toBe(text);
    }
  });

  it('SYN-03 attribute names are [A-Z0-9-] and appear once per attribute list', () => {
    for (const s of scenarios()) {
      for (const line of lines(render(s.snap, s.query))) {
        const colon = line.indexOf(':');
        if (!line.startsWith('#EXT-X-') || colon < 0 || !line.includes('=')) continue;
        const names = line
          .slice(colon + 1)
          .replace(/"[^"]*"/g, '""')
          .split(',')
          .map((a) => a.split('=')[0]!);
        for (const n of names) expect(n).toMatch(/^[A-Z0-9-]+$/);
        expect(new Set(names).size).toBe(names.length);
      }
    }
  });

  it('SYN-04 values: quoted strings hold no quote/CR/LF, enumerations unquoted, numbers well-formed', () => {
    for (const s of scenarios()) {
      const text = render(s.snap, s.query);
      for (const line of lines(text)) {
        if (!line.startsWith('#EXT-X-') || !line.includes('=')) continue;
        const attrs = line.slice(line.indexOf(':') + 1).match(/[A-Z0-9-]+=("[^"\r\n]*"|[^,]*)/g)!;
        for (const a of attrs) {
          const [name, value] = [a.slice(0, a.indexOf('=')), a.slice(a.indexOf('=') + 1)];
          if (['URI'].includes(name)) expect(value).toMatch(/^"[^"\r\n]+"$/);
          if (['CAN-BLOCK-RELOAD', 'INDEPENDENT', 'TYPE'].includes(name)) expect(value).toMatch(/^[A-Z]+$/);
          if (['DURATION', 'PART-TARGET', 'PART-HOLD-BACK', 'CAN-SKIP-UNTIL'].includes(name)) {
            expect(value).toMatch(/^\d+(\.\d{1,5})?$/);
          }
          if (['LAST-MSN', 'LAST-PART', 'SKIPPED-SEGMENTS'].includes(name)) expect(value).toMatch(/^\d+$/);
        }
      }
      for (const l of lines(text).filter((x) => x.startsWith('#EXTINF:'))) expect(l).toMatch(/^#EXTINF:\d+(\.\d{1,5})?,$/);
    }
  });

  it('SYN-05 one of each media playlist tag, no multivariant tags, at most one SKIP', () => {
    for (const s of scenarios()) {
      const text = render(s.snap, s.query);
      for (const t of [
        '#EXTM3U',
        '#EXT-X-VERSION',
        '#EXT-X-TARGETDURATION',
        '#EXT-X-SERVER-CONTROL',
        '#EXT-X-PART-INF',
        '#EXT-X-MEDIA-SEQUENCE',
        '#EXT-X-DISCONTINUITY-SEQUENCE',
      ]) {
        expect(count(text, t), `${s.name} ${t}`).toBe(1);
      }
      expect(count(text, '#EXT-X-SKIP')).toBeLessThanOrEqual(1);
      expect(count(text, '#EXT-X-ENDLIST')).toBeLessThanOrEqual(1);
      for (const t of ['#EXT-X-STREAM-INF', '#EXT-X-MEDIA', '#EXT-X-I-FRAME-STREAM-INF', '#EXT-X-SESSION-DATA']) {
        expect(count(text, t)).toBe(0);
      }
      parseM3u8(text);
      parseHls(text);
    }
  });

  it('formats decimals with at most 5 places, trimmed, never in exponent notation', () => {
    expect(formatDecimal(2)).toBe('2');
    expect(formatDecimal(0.2)).toBe('0.2');
    expect(formatDecimal(3 * 0.2)).toBe('0.6');
    expect(formatDecimal(0.33334)).toBe('0.33334');
    expect(formatDecimal(1.0000000001)).toBe('1');
    expect(formatDecimal(0.000001)).toBe('0');
    expect(formatDecimal(1e-7)).toBe('0');
    expect(formatDecimal(123456.123456)).toBe('123456.12346');
    expect(formatDecimal(1e21)).toBe('1000000000000000000000');
    expect(formatDecimal(-1)).toBe('0');
    expect(formatDecimal(Number.NaN)).toBe('0');
    expect(formatProgramDateTime(Date.UTC(2026, 0, 1, 0, 0, 0, 7))).toBe('2026-01-01T00:00:00.007Z');
  });
});

describe('media playlist header (§1.2)', () => {
  it('MP-01 VERSION 6 for a full playlist, 9 for a delta update (MP-01a)', () => {
    const { video, audio } = liveStream();
    const full = video.snapshot({ others: [audio] });
    expect(lines(render(full))[1]).toBe('#EXT-X-VERSION:6');
    const delta = deltaSnapshot(full);
    expect(delta.skippedSegments).toBeGreaterThan(0);
    expect(lines(render(delta))[1]).toBe('#EXT-X-VERSION:9');
    expect(parseM3u8(render(delta)).version).toBe(9);
    expect(parseHls(render(full)).version).toBe(6);
  });

  it('MP-02 TARGETDURATION is an integer every rounded EXTINF fits under, constant across reloads', () => {
    for (const s of scenarios()) {
      const m = parseM3u8(render(s.snap));
      expect(Number.isInteger(m.targetDuration)).toBe(true);
      expect(m.targetDuration).toBe(TIMING.targetDuration);
      for (const seg of m.segments) expect(Math.round(seg.duration)).toBeLessThanOrEqual(m.targetDuration);
    }
    expect(timingProblems(TIMING)).toEqual([]);
  });

  it('MP-03 MEDIA-SEQUENCE before any segment and before SKIP; first listed MSN = MEDIA-SEQUENCE + SKIPPED', () => {
    const { video, audio } = liveStream();
    const full = video.snapshot({ others: [audio] });
    const delta = deltaSnapshot(full);
    for (const snap of [full, delta]) {
      const text = render(snap);
      const ls = lines(text);
      const ms = ls.findIndex((l) => l.startsWith('#EXT-X-MEDIA-SEQUENCE:'));
      const firstSegmentTag = ls.findIndex((l) => /^#EXT(INF:|-X-PART:|-X-MAP:|-X-PROGRAM-DATE-TIME:|-X-DISCONTINUITY$)/.test(l));
      expect(ms).toBeGreaterThan(0);
      expect(ms).toBeLessThan(firstSegmentTag);
      const skip = ls.findIndex((l) => l.startsWith('#EXT-X-SKIP:'));
      if (snap.skippedSegments > 0) expect(ms).toBeLessThan(skip);
      expect(ls[ms]).toBe(`#EXT-X-MEDIA-SEQUENCE:${full.mediaSequence}`);
      const hls = parseHls(text);
      expect(hls.startSN).toBe(full.mediaSequence);
      const firstReal = hls.fragments.find((f: Any) => f);
      expect(firstReal.sn).toBe(full.mediaSequence + snap.skippedSegments);
      expect(firstReal.relurl).toBe(`${snap.segments[0]!.epoch}/${snap.segments[0]!.msn}.m4s`);
    }
  });

  it('MP-04 DISCONTINUITY-SEQUENCE always present, before segments; each segment keeps its DSN as the window slides', () => {
    const video = new LiveRendition('720p', TIMING, 6);
    for (let i = 0; i < 4; i++) video.segment();
    video.newEpoch();
    for (let i = 0; i < 3; i++) video.segment();
    const dsnByMsn = new Map<number, number>();
    for (let step = 0; step < 12; step++) {
      const snap = video.snapshot();
      const text = render(snap);
      expect(count(text, '#EXT-X-DISCONTINUITY-SEQUENCE')).toBe(1);
      const ls = lines(text);
      expect(ls.findIndex((l) => l.startsWith('#EXT-X-DISCONTINUITY-SEQUENCE:'))).toBeLessThan(
        ls.findIndex((l) => l.startsWith('#EXT-X-MAP')),
      );
      const hls = parseHls(text);
      for (const f of hls.fragments) {
        const seen = dsnByMsn.get(f.sn);
        if (seen !== undefined) expect(f.cc, `DSN of ${f.sn}`).toBe(seen);
        dsnByMsn.set(f.sn, f.cc);
      }
      if (step === 6) video.newEpoch();
      video.segment();
    }
    // The first epoch slid out completely and the DSN still only grew.
    expect(video.discontinuitySequence).toBe(1);
    expect([...dsnByMsn.values()]).toEqual([...dsnByMsn.values()].sort((a, b) => a - b));
    expect(Math.max(...dsnByMsn.values())).toBe(2);
  });

  it('MP-05 SERVER-CONTROL: CAN-BLOCK-RELOAD, PART-HOLD-BACK ≥ 3×PART-TARGET, CAN-SKIP-UNTIL ≥ 6×TD, constant and identical across renditions', () => {
    const { video, audio } = liveStream();
    const seen = new Set<string>();
    for (let i = 0; i < 8; i++) {
      for (const [r, other] of [
        [video, audio],
        [audio, video],
      ] as const) {
        const snap = r.snapshot({ others: [other] });
        for (const text of [render(snap), render(deltaSnapshot(snap))]) {
          const line = lines(text).find((l) => l.startsWith('#EXT-X-SERVER-CONTROL:'))!;
          seen.add(line);
          const m = parseM3u8(text);
          expect(m.serverControl.canBlockReload).toBe(true);
          expect(m.serverControl.partHoldBack).toBeGreaterThanOrEqual(3 * m.partTargetDuration - 1e-9);
          expect(m.serverControl.canSkipUntil).toBeGreaterThanOrEqual(6 * m.targetDuration);
          const hls = parseHls(text);
          expect(hls.canBlockReload).toBe(true);
          expect(hls.partHoldBack).toBe(0.6);
          expect(hls.canSkipUntil).toBe(6);
        }
      }
      video.part(0.2);
      audio.part(0.2);
      if (i % 5 === 4) {
        video.close();
        audio.close();
      }
    }
    expect([...seen]).toEqual(['#EXT-X-SERVER-CONTROL:CAN-BLOCK-RELOAD=YES,CAN-SKIP-UNTIL=6,HOLD-BACK=3,PART-HOLD-BACK=0.6']);
  });

  it('MP-06 PART-INF present with PART-TARGET ≥ every part DURATION and ≤ TD', () => {
    for (const s of scenarios()) {
      const text = render(s.snap);
      const m = parseM3u8(text);
      expect(m.partInf.partTarget).toBe(0.2);
      expect(m.partInf.partTarget).toBeLessThanOrEqual(m.targetDuration);
      const all = [...m.segments, ...(m.preloadSegment ? [m.preloadSegment] : [])].flatMap((seg: Any) => seg.parts ?? []);
      expect(all.length).toBeGreaterThan(0);
      for (const p of all) expect(p.duration).toBeLessThanOrEqual(m.partInf.partTarget);
    }
  });

  it('MP-07 every segment and the open parent have an EXT-X-MAP of their epoch, placed before their first PART', () => {
    for (const s of scenarios()) {
      const text = render(s.snap, s.query);
      const m = parseM3u8(text);
      const q = s.query ? `?${s.query}` : '';
      const listed = s.snap.segments;
      const parsed = [...m.segments, ...(m.preloadSegment?.parts ? [m.preloadSegment] : [])];
      expect(parsed.length).toBe(listed.length);
      parsed.forEach((seg: Any, i: number) => expect(seg.map.uri).toBe(`${listed[i]!.epoch}/init.mp4${q}`));
      for (const f of parseHls(text).fragments.filter(Boolean)) {
        expect(f.initSegment.relurl).toBe(`${f.relurl.split('/')[0]}/init.mp4${q}`);
      }
      // One MAP per epoch run, each before the first PART/EXTINF of the run.
      const epochsListed = listed.map((x) => x.epoch).filter((e, i, a) => i === 0 || a[i - 1] !== e);
      expect(count(text, '#EXT-X-MAP')).toBe(epochsListed.length);
    }
  });

  it('MP-08 / MP-09 no INDEPENDENT-SEGMENTS and no PLAYLIST-TYPE in a live sliding-window media playlist', () => {
    for (const s of scenarios()) {
      const text = render(s.snap);
      expect(count(text, '#EXT-X-INDEPENDENT-SEGMENTS')).toBe(0);
      expect(count(text, '#EXT-X-PLAYLIST-TYPE')).toBe(0);
    }
  });

  it('MP-10 an ended playlist has ENDLIST as its last line and no PRELOAD-HINT; hls.js sees it as not live', () => {
    const s = scenarios().find((x) => x.name === 'ended')!;
    const text = render(s.snap);
    expect(lines(text).at(-1)).toBe('#EXT-X-ENDLIST');
    expect(count(text, '#EXT-X-PRELOAD-HINT')).toBe(0);
    expect(parseM3u8(text).endList).toBe(true);
    const hls = parseHls(text);
    expect(hls.live).toBe(false);
    expect(hls.preloadHint).toBeUndefined();
    // Parts near the end and the reports stay (MUT-01 only adds ENDLIST).
    expect(count(text, '#EXT-X-PART')).toBeGreaterThan(0);
    expect(count(text, '#EXT-X-RENDITION-REPORT')).toBe(1);
    // A live playlist never has ENDLIST.
    for (const x of scenarios().filter((y) => y.name !== 'ended')) expect(count(render(x.snap), '#EXT-X-ENDLIST')).toBe(0);
  });
});

describe('where stock players start and stay (MP-05, MP-11)', () => {
  it('MP-05 HOLD-BACK is written: 3×TD, what players out of low-latency mode hold back (hls.js, Shaka, Video.js read it)', () => {
    const { video, audio } = liveStream();
    const text = render(video.snapshot({ others: [audio] }));
    expect(parseM3u8(text).serverControl.holdBack).toBe(3);
    expect(parseHls(text).holdBack).toBe(3 * parseHls(text).targetduration);
    expect(parseHls(text).partHoldBack).toBe(0.6);
  });

  it('MP-11 a live playlist starts players 2×PART-TARGET before its end, on every reload and delta; an ended one has no start', () => {
    const { video, audio } = liveStream();
    const seen = new Set<string>();
    for (let i = 0; i < 7; i++) {
      const snap = video.snapshot({ others: [audio] });
      for (const text of [render(snap), render(deltaSnapshot(snap))]) {
        const start = lines(text).filter((l) => l.startsWith('#EXT-X-START:'));
        expect(start).toHaveLength(1);
        seen.add(start[0]!);
        // In the header: before the first segment tag.
        expect(lines(text).indexOf(start[0]!)).toBeLessThan(lines(text).findIndex((l) => l.startsWith('#EXT-X-MEDIA-SEQUENCE')));
        expect(parseM3u8(text).start).toEqual({ timeOffset: -0.4, precise: true });
        const details = parseHls(text);
        expect(details.startTimeOffset).toBe(-0.4);
        // hls.js starts at the playlist's edge plus the (negative) offset: between PART-HOLD-BACK
        // (where it aims) and the newest part.
        const startAt = details.edge + details.startTimeOffset;
        expect(details.edge - startAt).toBeLessThan(details.partHoldBack);
        expect(details.edge - startAt).toBeGreaterThanOrEqual(2 * details.partTarget - 1e-9);
      }
      video.part(0.2);
      if (i % 5 === 4) video.close();
    }
    expect([...seen]).toEqual(['#EXT-X-START:TIME-OFFSET=-0.4,PRECISE=YES']);
    video.part(0.2).close();
    expect(render(video.snapshot({ others: [audio], ended: true }))).not.toContain('#EXT-X-START');
  });
});

describe('segment tags (§1.3)', () => {
  it('SEG-01 EXTINF on every complete segment, equal to the sum of its parts; none on the open parent', () => {
    const s = scenarios().find((x) => x.name === 'live')!;
    const text = render(s.snap);
    const complete = s.snap.segments.filter((x) => x.duration !== null);
    expect(count(text, '#EXTINF')).toBe(complete.length);
    const m = parseM3u8(text);
    m.segments.forEach((seg: Any, i: number) => {
      expect(seg.duration).toBe(complete[i]!.duration);
      if (seg.parts) expect(round5(seg.parts.reduce((a: number, p: Any) => a + p.duration, 0))).toBe(seg.duration);
    });
    expect(m.preloadSegment.duration).toBeUndefined();
    const hls = parseHls(text);
    expect(hls.fragments.length).toBe(complete.length);
    expect(hls.fragmentHint.sn).toBe(s.snap.segments.at(-1)!.msn);
  });

  it('SEG-02 PROGRAM-DATE-TIME on every segment (and the open parent), ISO 8601 with ms and Z, before its first PART', () => {
    for (const s of scenarios()) {
      const text = render(s.snap);
      const listed = s.snap.segments;
      expect(count(text, '#EXT-X-PROGRAM-DATE-TIME')).toBe(listed.length);
      const m = parseM3u8(text);
      const parsed = [...m.segments, ...(m.preloadSegment?.parts ? [m.preloadSegment] : [])];
      parsed.forEach((seg: Any, i: number) => {
        expect(seg.dateTimeString).toMatch(/^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z$/);
        expect(Date.parse(seg.dateTimeString)).toBe(listed[i]!.programDateTime);
      });
      for (const f of parseHls(text).fragments.filter(Boolean)) expect(f.rawProgramDateTime).toBeTruthy();
      // PDT sits between the previous segment's URI (or header) and this parent's first PART/EXTINF.
      const ls = lines(text);
      ls.forEach((l, i) => {
        if (!l.startsWith('#EXT-X-PART:') || ls[i - 1]!.startsWith('#EXT-X-PART:')) return;
        expect(ls[i - 1]).toMatch(/^#EXT-X-PROGRAM-DATE-TIME:/);
      });
    }
  });

  it('SEG-03 the first segment of a new epoch has DISCONTINUITY then a new MAP, before its PDT and parts', () => {
    const video = new LiveRendition('720p', TIMING);
    video.segment().segment().newEpoch().part(0.2).part(0.2);
    const text = render(video.snapshot({ retainAllParts: true }));
    const ls = lines(text);
    const d = ls.indexOf('#EXT-X-DISCONTINUITY');
    expect(ls.slice(d, d + 4)).toEqual([
      '#EXT-X-DISCONTINUITY',
      '#EXT-X-MAP:URI="2/init.mp4"',
      `#EXT-X-PROGRAM-DATE-TIME:${formatProgramDateTime(video.segments[2]!.programDateTime)}`,
      '#EXT-X-PART:DURATION=0.2,URI="2/3.0.m4s",INDEPENDENT=YES',
    ]);
    const m = parseM3u8(text);
    expect(m.discontinuityStarts).toEqual([2]);
    expect(m.preloadSegment.timeline).toBe(1);
    const hls = parseHls(text);
    expect(hls.fragments.map((f: Any) => f.cc)).toEqual([0, 0]);
    expect(hls.fragmentHint.cc).toBe(1);
    expect(hls.fragmentHint.initSegment.relurl).toBe('2/init.mp4');
  });

  it('SEG-03 a discontinuity on the first listed segment is still written (the sequence counts only removed ones)', () => {
    const video = new LiveRendition('720p', TIMING, 3);
    video.segment().newEpoch();
    for (let i = 0; i < 3; i++) video.segment();
    const snap = video.snapshot();
    expect(snap.segments[0]!.discontinuity).toBe(true);
    expect(snap.discontinuitySequence).toBe(0);
    const text = render(snap);
    const at = lines(text).indexOf('#EXT-X-DISCONTINUITY-SEQUENCE:0') + 1;
    expect(lines(text).slice(at, at + 2)).toEqual(['#EXT-X-DISCONTINUITY', '#EXT-X-MAP:URI="2/init.mp4"']);
    expect(parseHls(text).fragments[0].cc).toBe(1);
  });
});

describe('gap segments (SEG-04)', () => {
  it('a rendition without media for an MSN lists it as EXT-X-GAP with its EXTINF and URI, no parts; MSNs stay continuous', () => {
    const audio = new LiveRendition('audio', TIMING);
    audio.segment().segment().segment();
    const snap = audio.snapshot();
    // MSN 3: the other renditions have it, this one lagged (a reconnect fenced its pushes off).
    snap.segments[2] = { ...snap.segments[2]!, gap: true, parts: [] };
    snap.segments.push({
      msn: 4,
      epoch: 2,
      duration: null,
      programDateTime: T0 + 3000,
      discontinuity: true,
      parts: [{ duration: 0.2, independent: true }],
    });
    const text = render(snap);
    const l = lines(text);
    const gapAt = l.indexOf('#EXT-X-GAP');
    expect(l.slice(gapAt - 1, gapAt + 3)).toEqual([
      '#EXT-X-PROGRAM-DATE-TIME:2026-01-01T12:00:02.000Z',
      '#EXT-X-GAP',
      '#EXTINF:1,',
      '1/3.m4s',
    ]);
    expect(count(text, '#EXT-X-GAP')).toBe(1);
    const m = parseM3u8(text);
    expect(m.segments.map((s: Any) => s.uri)).toEqual(['1/1.m4s', '1/2.m4s', '1/3.m4s']);
    // m3u8-parser 7 skips EXT-X-GAP silently; hls.js marks the fragment as a gap and loads nothing for it.
    const hls = parseHls(text);
    expect(hls.fragments.map((f: Any) => [f.sn, f.gap === true])).toEqual([
      [1, false],
      [2, false],
      [3, true],
    ]);
    expect(hls.partList.at(-1).fragment.sn).toBe(4);
  });

  it('the checker refuses a gap that is open or has parts', () => {
    const snap = new LiveRendition('audio', TIMING).segment().segment().snapshot();
    snap.segments[1] = { ...snap.segments[1]!, gap: true };
    expect(snapshotProblems(snap)).toEqual(['SEG-04: segment 2 is a gap, so complete and without parts']);
  });
});

describe('partial segments (§1.4)', () => {
  it('PART-01 every PART has a quoted URI and a DURATION', () => {
    for (const s of scenarios()) {
      for (const l of lines(render(s.snap, s.query)).filter((x) => x.startsWith('#EXT-X-PART:'))) {
        expect(l).toMatch(/^#EXT-X-PART:DURATION=\d+(\.\d+)?,URI="[^"]+"(,INDEPENDENT=YES)?$/);
      }
    }
  });

  it('PART-02 INDEPENDENT=YES exactly on parts that start with a sync sample', () => {
    const video = new LiveRendition('720p', TIMING);
    video.part(0.2, true).part(0.2, false).part(0.2, true).part(0.2, false).close();
    video.part(0.2, true).part(0.2, false);
    const text = render(video.snapshot());
    const m = parseM3u8(text);
    expect(m.segments[0].parts.map((p: Any) => p.independent === true)).toEqual([true, false, true, false]);
    const hls = parseHls(text);
    expect(hls.partList.map((p: Any) => p.independent)).toEqual([true, false, true, false, true, false]);
  });

  it('PART-05 parts sit between the previous segment and their parent EXTINF; the open parent last, with no EXTINF', () => {
    const s = scenarios().find((x) => x.name === 'live')!;
    const text = render(s.snap);
    const ls = lines(text);
    const open = s.snap.segments.at(-1)!;
    // After the last URI line come only the open parent's tags, the hint and the reports.
    const lastUri = ls.findLastIndex((l) => !l.startsWith('#'));
    expect(ls.slice(lastUri + 1).map(tag)).toEqual([
      '#EXT-X-PROGRAM-DATE-TIME',
      ...open.parts!.map(() => '#EXT-X-PART'),
      '#EXT-X-PRELOAD-HINT',
      '#EXT-X-RENDITION-REPORT',
    ]);
    // Each complete parent's PARTs name its own MSN and come right before its EXTINF.
    const m = parseM3u8(text);
    for (const seg of m.segments.filter((x: Any) => x.parts)) {
      const msn = seg.uri.split('/')[1].split('.')[0];
      for (const p of seg.parts) expect(p.uri.split('/')[1].split('.')[0]).toBe(msn);
      const extinf = ls.indexOf(seg.uri) - 1;
      expect(ls[extinf]).toMatch(/^#EXTINF:/);
      expect(ls[extinf - 1]).toBe(`#EXT-X-PART:DURATION=${formatDecimal(seg.parts.at(-1).duration)},URI="${seg.parts.at(-1).uri}"`);
    }
  });

  it('PART-06 part indexes start at 0 in every parent and carry the parent MSN', () => {
    const s = scenarios().find((x) => x.name === 'live')!;
    const hls = parseHls(render(s.snap));
    const byParent = new Map<number, number[]>();
    for (const p of hls.partList) {
      const [epoch, name] = p.relurl.split('/');
      const [msn, index] = name.split('.').map(Number);
      expect(msn).toBe(p.fragment.sn);
      expect(index).toBe(p.index);
      expect(Number(epoch)).toBe(s.snap.segments.find((x) => x.msn === msn)!.epoch);
      byParent.set(msn, [...(byParent.get(msn) ?? []), index]);
    }
    for (const idx of byParent.values()) expect(idx).toEqual(idx.map((_, i) => i));
  });

  it('PART-12 parts are listed only for segments ending within 3×TD of the playlist end, plus the open parent', () => {
    const { video, audio } = liveStream();
    for (let step = 0; step < 12; step++) {
      const snap = video.snapshot({ others: [audio] });
      const m = parseM3u8(render(snap));
      const openParts = snap.segments.at(-1)!.duration === null ? snap.segments.at(-1)!.parts!.length * 0.2 : 0;
      // Distance from the playlist end to each complete segment's end.
      let fromEnd = openParts;
      const expected: boolean[] = [];
      for (let i = m.segments.length - 1; i >= 0; i--) {
        expected.unshift(fromEnd <= 3 * TIMING.targetDuration + 1e-9);
        fromEnd += m.segments[i].duration;
      }
      expect(m.segments.map((x: Any) => Boolean(x.parts))).toEqual(expected);
      expect(expected.filter(Boolean).length).toBeGreaterThanOrEqual(2);
      if (snap.segments.at(-1)!.duration === null) expect(m.preloadSegment.parts.length).toBeGreaterThan(0);
      video.part(0.2);
      if (step % 5 === 4) video.close();
    }
  });
});
