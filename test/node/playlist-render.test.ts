// Media and multivariant playlist rendering against the LL-HLS checklist (LLHLS.md §1.1–1.7, §1.10):
// realistic snapshots from a small live-stream simulator, parsed back by m3u8-parser and by hls.js's
// own parser, plus byte-exact golden playlists.
import { M3U8Parser } from 'hls.js';
import { Parser } from 'm3u8-parser';
import { describe, expect, it } from 'vitest';
import type {
  MediaPlaylistSnapshot,
  PartInfo,
  PlaylistTiming,
  PresentationSnapshot,
  RenditionReport,
  SegmentInfo,
} from '../../core/contracts/live-model.ts';
import { playlistTiming } from '../../core/contracts/stream-config.ts';
import { snapshotProblems, timingProblems } from '../../core/playlist/check.ts';
import { formatDecimal, formatProgramDateTime, renderMediaPlaylist, renderMultivariantPlaylist } from '../../core/playlist/render.ts';
import { computeSkip, deltaSnapshot, partsRetained } from '../../core/playlist/window.ts';

// ---- a live rendition, the way the DO will hold it -------------------------------------------

const T0 = Date.UTC(2026, 0, 1, 12, 0, 0);
const round5 = (x: number) => Math.round(x * 1e5) / 1e5;

interface SimSegment {
  msn: number;
  epoch: number;
  duration: number | null;
  programDateTime: number;
  discontinuity: boolean;
  parts: PartInfo[];
}

/** Publishes parts and segments, slides the window, and builds snapshots like the DO does. */
class LiveRendition {
  readonly segments: SimSegment[] = [];
  discontinuitySequence = 0;
  epoch = 1;
  nextMsn = 1;
  clock = T0;
  private pendingDiscontinuity = false;

  readonly name: string;
  readonly timing: PlaylistTiming;
  readonly windowSegments: number;

  constructor(name: string, timing: PlaylistTiming, windowSegments = 12) {
    this.name = name;
    this.timing = timing;
    this.windowSegments = windowSegments;
  }

  get open(): SimSegment | undefined {
    const last = this.segments.at(-1);
    return last && last.duration === null ? last : undefined;
  }

  part(duration: number, independent?: boolean): this {
    let seg = this.open;
    if (!seg) {
      seg = {
        msn: this.nextMsn++,
        epoch: this.epoch,
        duration: null,
        programDateTime: this.clock,
        discontinuity: this.pendingDiscontinuity,
        parts: [],
      };
      this.pendingDiscontinuity = false;
      this.segments.push(seg);
    }
    seg.parts.push({ duration, independent: independent ?? seg.parts.length === 0 });
    this.clock += Math.round(duration * 1000);
    return this;
  }

  close(): this {
    const seg = this.open!;
    seg.duration = round5(seg.parts.reduce((a, p) => a + p.duration, 0));
    const complete = this.segments.filter((s) => s.duration !== null).length;
    for (let n = complete; n > this.windowSegments; n--) {
      const gone = this.segments.shift()!;
      if (gone.discontinuity) this.discontinuitySequence++;
    }
    return this;
  }

  /** A whole segment: `n` parts of 0.2 s, optionally a shorter final part. */
  segment(n = 5, finalPart?: number): this {
    for (let i = 0; i < n; i++) this.part(0.2);
    if (finalPart !== undefined) this.part(finalPart);
    return this.close();
  }

  /** An encoder restart: a new epoch, a timestamp jump, a discontinuity on its first segment. */
  newEpoch(gapMs = 2500): this {
    this.epoch++;
    this.clock += gapMs;
    this.pendingDiscontinuity = true;
    return this;
  }

  report(): RenditionReport {
    const last = this.segments.at(-1)!;
    return { rendition: this.name, lastMsn: last.msn, lastPart: last.parts.length - 1 };
  }

  snapshot(opts: { ended?: boolean; others?: LiveRendition[]; retainAllParts?: boolean } = {}): MediaPlaylistSnapshot {
    const keep = opts.retainAllParts ? this.segments.length : partsRetained(this.segments, this.timing);
    const segments: SegmentInfo[] = this.segments.map((s, i) => ({
      msn: s.msn,
      epoch: s.epoch,
      duration: s.duration,
      programDateTime: s.programDateTime,
      discontinuity: s.discontinuity,
      parts: i >= this.segments.length - keep ? s.parts.map((p) => ({ ...p })) : undefined,
    }));
    return {
      streamId: 'demo',
      rendition: this.name,
      timing: this.timing,
      mediaSequence: this.segments[0]!.msn,
      discontinuitySequence: this.discontinuitySequence,
      skippedSegments: 0,
      segments,
      ended: opts.ended ?? false,
      reports: (opts.others ?? []).map((o) => o.report()),
    };
  }
}

/** TD 1, PART-TARGET 0.2, PART-HOLD-BACK 0.6, CAN-SKIP-UNTIL 6: the default stream settings. */
const TIMING = playlistTiming({ partTarget: 0.2, segmentTarget: 1 });

/** Two epochs (the discontinuity stays in the window), parts near the edge, an open segment. */
function liveStream(): { video: LiveRendition; audio: LiveRendition } {
  const video = new LiveRendition('720p', TIMING);
  const audio = new LiveRendition('audio', TIMING);
  for (const r of [video, audio]) {
    for (let i = 0; i < 9; i++) r.segment(5, i % 3 === 2 ? 0.13333 : undefined);
    r.newEpoch();
    for (let i = 0; i < 9; i++) r.segment(5);
    r.part(0.2).part(0.2);
  }
  return { video, audio };
}

// ---- parsing helpers ---------------------------------------------------------------------------

const BASE = 'https://edge.example/live/demo/720p/index.m3u8';

// eslint-disable-next-line @typescript-eslint/no-explicit-any
type Any = any;

function parseM3u8(text: string): Any {
  const parser = new Parser();
  const warnings: string[] = [];
  // The ambient declaration of this untyped package is minimal; `on` is its event API.
  (parser as unknown as { on(e: string, f: (w: { message: string }) => void): void }).on('warn', (w) => warnings.push(w.message));
  parser.push(text);
  parser.end();
  expect(warnings).toEqual([]);
  return parser.manifest;
}

function parseHls(text: string, url = BASE): Any {
  const details: Any = M3U8Parser.parseLevelPlaylist(text, url, 0, 'main' as Any, 0, null);
  expect(details.playlistParsingError).toBeNull();
  return details;
}

const lines = (text: string) => text.split('\n').slice(0, -1);
const tag = (line: string) => (line.startsWith('#') ? line.split(':', 1)[0]! : 'URI');
const count = (text: string, t: string) => lines(text).filter((l) => tag(l) === t).length;

function render(snap: MediaPlaylistSnapshot, uriQuery?: string): string {
  expect(snapshotProblems(snap)).toEqual([]);
  return renderMediaPlaylist(snap, { uriQuery });
}

/** Every rendered variant of the scenarios, with what it is. */
function scenarios(): Array<{ name: string; snap: MediaPlaylistSnapshot; query?: string }> {
  const { video, audio } = liveStream();
  const live = video.snapshot({ others: [audio] });
  const out: Array<{ name: string; snap: MediaPlaylistSnapshot; query?: string }> = [
    { name: 'live', snap: live },
    { name: 'live+query', snap: live, query: 'token=eyJ.abc_-~' },
    { name: 'delta', snap: deltaSnapshot(live) },
    { name: 'audio', snap: audio.snapshot({ others: [video] }) },
  ];
  video.part(0.2).part(0.2).part(0.2).close();
  audio.part(0.2).part(0.2).part(0.2).close();
  out.push({ name: 'just-closed', snap: video.snapshot({ others: [audio] }) });
  out.push({ name: 'ended', snap: video.snapshot({ others: [audio], ended: true }) });
  return out;
}

// ---- syntax ------------------------------------------------------------------------------------

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

// ---- header tags -------------------------------------------------------------------------------

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

// ---- segments ----------------------------------------------------------------------------------

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

// ---- parts -------------------------------------------------------------------------------------

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

// ---- preload hints -----------------------------------------------------------------------------

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

// ---- rendition reports -------------------------------------------------------------------------

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

// ---- delta updates -----------------------------------------------------------------------------

interface ParsedSegment {
  msn: number;
  uri: string;
  duration: number;
  map: string;
  pdt: string;
  discontinuity: boolean;
  parts: string[];
}

function segmentList(text: string): { mediaSequence: number; discontinuitySequence: number; skipped: number; segments: ParsedSegment[] } {
  const m = parseM3u8(text);
  const skipped = m.skip?.skippedSegments ?? 0;
  return {
    mediaSequence: m.mediaSequence,
    discontinuitySequence: m.discontinuitySequence,
    skipped,
    segments: m.segments.map((s: Any, i: number) => ({
      msn: m.mediaSequence + skipped + i,
      uri: s.uri,
      duration: s.duration,
      map: s.map.uri,
      pdt: s.dateTimeString,
      discontinuity: Boolean(s.discontinuity),
      parts: (s.parts ?? []).map((p: Any) => p.uri),
    })),
  };
}

/** What a client does with a delta (§6.3.7): the skipped segments come from its previous copy. */
function applyDelta(previousFull: string, delta: string): ParsedSegment[] {
  const prev = segmentList(previousFull);
  const d = segmentList(delta);
  const kept: ParsedSegment[] = [];
  for (let msn = d.mediaSequence; msn < d.mediaSequence + d.skipped; msn++) {
    const old = prev.segments.find((s) => s.msn === msn);
    if (!old) throw new Error(`the previous playlist lacks skipped segment ${msn}`);
    // Parts of a skipped segment are gone from the new playlist (they are > 3 TD from the end).
    kept.push({ ...old, parts: [] });
  }
  return [...kept, ...d.segments];
}

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

// ---- query propagation -------------------------------------------------------------------------

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

// ---- multivariant ------------------------------------------------------------------------------

const PRESENTATION: PresentationSnapshot = {
  streamId: 'demo',
  ended: false,
  renditions: [
    {
      name: '480p',
      kind: 'video',
      codecs: 'avc1.64001f',
      bandwidth: 1_512_000,
      averageBandwidth: 1_260_000,
      width: 854,
      height: 480,
      frameRate: 30,
    },
    { name: 'audio', kind: 'audio', codecs: 'mp4a.40.2', bandwidth: 140_800, averageBandwidth: 128_000, channels: 2 },
    {
      name: '720p',
      kind: 'video',
      codecs: 'avc1.64001f',
      bandwidth: 3_150_000,
      averageBandwidth: 2_625_000,
      width: 1280,
      height: 720,
      frameRate: 30,
    },
    {
      name: '360p',
      kind: 'video',
      codecs: 'avc1.64001e',
      bandwidth: 882_000,
      averageBandwidth: 735_000,
      width: 640,
      height: 360,
      frameRate: 29.97,
    },
  ],
};

function parseMultivariant(text: string, url = 'https://edge.example/live/demo/index.m3u8'): { m3u8: Any; hls: Any; media: Any } {
  const m3u8 = parseM3u8(text);
  const hls: Any = M3U8Parser.parseMasterPlaylist(text, url);
  expect(hls.playlistParsingError).toBeNull();
  const media: Any = M3U8Parser.parseMasterPlaylistMedia(text, url, hls);
  return { m3u8, hls, media };
}

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

// ---- golden playlists --------------------------------------------------------------------------

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
