// Fixtures of the playlist rendering tests (test/node/playlist-*.test.ts): live and VOD snapshots,
// a stream at 0.2 s parts, and the parsers (hls.js, m3u8-parser) that read what we render as players do.
import { M3U8Parser } from 'hls.js';
import { expect } from 'vitest';
import { Parser } from 'm3u8-parser';
import type {
  MediaPlaylistSnapshot,
  PartInfo,
  PlaylistTiming,
  PresentationSnapshot,
  RenditionReport,
  SegmentInfo,
} from '../../core/contracts/live-model.ts';
import { playlistTiming } from '../../core/contracts/stream-config.ts';
import { snapshotProblems } from '../../core/playlist/check.ts';
import { renderMediaPlaylist } from '../../core/playlist/render.ts';
import { deltaSnapshot, partsRetained } from '../../core/playlist/window.ts';
// ---- a live rendition, the way the DO will hold it -------------------------------------------

export const T0 = Date.UTC(2026, 0, 1, 12, 0, 0);
export const round5 = (x: number) => Math.round(x * 1e5) / 1e5;

export interface SimSegment {
  msn: number;
  epoch: number;
  duration: number | null;
  programDateTime: number;
  discontinuity: boolean;
  parts: PartInfo[];
}

/** Publishes parts and segments, slides the window, and builds snapshots like the DO does. */
export class LiveRendition {
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
export const TIMING = playlistTiming({ partTarget: 0.2, segmentTarget: 1 });

/** Two epochs (the discontinuity stays in the window), parts near the edge, an open segment. */
export function liveStream(): { video: LiveRendition; audio: LiveRendition } {
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

export const BASE = 'https://edge.example/live/demo/720p/index.m3u8';

// eslint-disable-next-line @typescript-eslint/no-explicit-any
export type Any = any;

export function parseM3u8(text: string): Any {
  const parser = new Parser();
  const warnings: string[] = [];
  // The ambient declaration of this untyped package is minimal; `on` is its event API.
  (parser as unknown as { on(e: string, f: (w: { message: string }) => void): void }).on('warn', (w) => warnings.push(w.message));
  parser.push(text);
  parser.end();
  expect(warnings).toEqual([]);
  return parser.manifest;
}

export function parseHls(text: string, url = BASE): Any {
  const details: Any = M3U8Parser.parseLevelPlaylist(text, url, 0, 'main' as Any, 0, null);
  expect(details.playlistParsingError).toBeNull();
  return details;
}

export const lines = (text: string) => text.split('\n').slice(0, -1);
export const tag = (line: string) => (line.startsWith('#') ? line.split(':', 1)[0]! : 'URI');
export const count = (text: string, t: string) => lines(text).filter((l) => tag(l) === t).length;

export function render(snap: MediaPlaylistSnapshot, uriQuery?: string): string {
  expect(snapshotProblems(snap)).toEqual([]);
  return renderMediaPlaylist(snap, { uriQuery });
}

/** Every rendered variant of the scenarios, with what it is. */
export function scenarios(): Array<{ name: string; snap: MediaPlaylistSnapshot; query?: string }> {
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

// ---- header tags -------------------------------------------------------------------------------

// ---- segments ----------------------------------------------------------------------------------

// ---- parts -------------------------------------------------------------------------------------

// ---- preload hints -----------------------------------------------------------------------------

// ---- rendition reports -------------------------------------------------------------------------

// ---- delta updates -----------------------------------------------------------------------------

export interface ParsedSegment {
  msn: number;
  uri: string;
  duration: number;
  map: string;
  pdt: string;
  discontinuity: boolean;
  parts: string[];
}

export function segmentList(text: string): {
  mediaSequence: number;
  discontinuitySequence: number;
  skipped: number;
  segments: ParsedSegment[];
} {
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
export function applyDelta(previousFull: string, delta: string): ParsedSegment[] {
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

// ---- query propagation -------------------------------------------------------------------------

// ---- multivariant ------------------------------------------------------------------------------

export const PRESENTATION: PresentationSnapshot = {
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

export function parseMultivariant(text: string, url = 'https://edge.example/live/demo/index.m3u8'): { m3u8: Any; hls: Any; media: Any } {
  const m3u8 = parseM3u8(text);
  const hls: Any = M3U8Parser.parseMasterPlaylist(text, url);
  expect(hls.playlistParsingError).toBeNull();
  const media: Any = M3U8Parser.parseMasterPlaylistMedia(text, url, hls);
  return { m3u8, hls, media };
}

// ---- golden playlists --------------------------------------------------------------------------
