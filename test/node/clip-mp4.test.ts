// The clip MP4 muxer (core/cmaf/clip-mp4.ts): a clip's CMAF tracks merged into one regular
// MP4 (one moov with a trak per track, sample tables rebuilt from the truns, an edit list that
// starts at the clip's start part), checked box by box on hand-built fragments, and end to end on
// the real ladder's output cut the way the StreamState cuts clips: ffprobe sees both streams and
// the clip's duration, ffmpeg decodes exactly the clip's frames, from the start part's first frame.
import { execFile } from 'node:child_process';
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { CmafChunker } from '../../transcoder-node/cmaf/chunker.ts';
import type { CmafChunkerEvent, CmafInitEvent, CmafPartEvent, CmafSegmentEvent } from '../../transcoder-node/cmaf/chunker.ts';
import { LadderProcess } from '../../transcoder-node/ladder.ts';
import type { LadderRung } from '../../transcoder-node/ladder.ts';
import { createLogger } from '../../transcoder-node/log.ts';
import { BoxError, concatBytes, iterateBoxes } from '../../core/cmaf/boxes.ts';
import {
  ClipEncodingChanged,
  FragmentInterleaver,
  MOVIE_TIMESCALE,
  muxClip,
  type ClipSegmentSource,
  type ClipTiming,
} from '../../core/cmaf/clip-mp4.ts';
import { cutClip, type ClipSegment } from '../../core/live/clip-cut.ts';
import { defaultExportRendition, exportContentDisposition, exportRenditions, exportTracks } from '../../core/contracts/clip-export.ts';
import type { LadderRung as StreamRung } from '../../core/contracts/stream-config.ts';
import { fragment, initSegment, readMp4, samplePayload, type SampleSpec } from '../support/fmp4-fixtures.ts';

const run = promisify(execFile);

interface TrackSource {
  init: Uint8Array;
  segments: Uint8Array[];
  /** Inits per segment index where the epoch changes. */
  inits?: Map<number, Uint8Array>;
}

/** The whole file, as the export job writes it (in memory here). */
async function mux(tracks: TrackSource[], timing: ClipTiming): Promise<Uint8Array> {
  const chunks: Uint8Array[] = [];
  const muxer = await muxClip({
    inits: tracks.map((t) => t.init),
    segmentCounts: tracks.map((t) => t.segments.length),
    readSegment: async (t, i): Promise<ClipSegmentSource> => ({ bytes: tracks[t]!.segments[i]!.slice(), init: tracks[t]!.inits?.get(i) }),
    write: async (b) => void chunks.push(b.slice()),
    timing,
  });
  const file = concatBytes(...chunks);
  muxer.patchHead(file);
  return file;
}

// ---------------------------------------------------------------------------------------------
// Hand-built fragments: 30 fps video (timescale 15360, 512 ticks a frame), AAC-like audio
// (48 kHz, 1024 samples a frame), 0.2 s parts, 1 s segments.

const VIDEO_TS = 15360;
const AUDIO_TS = 48000;
const frames = (n: number, syncFirst: boolean, size = 100): SampleSpec[] =>
  Array.from({ length: n }, (_, i) => ({ duration: 512, size: size + i, sync: syncFirst && i === 0 }));
/** Where the hand-built audio starts: 9.96 s, 40 ms before the video's 10 s. */
const AUDIO_START = 478_080;
const audioFrames = (n: number): SampleSpec[] => Array.from({ length: n }, () => ({ duration: 1024, size: 40, sync: true }));

/** A 1 s video segment at `second` on the timeline: five 6-frame parts, the first with a keyframe. */
function videoSegment(second: number, seq: number, parts = 5): Uint8Array {
  const out: Uint8Array[] = [];
  for (let p = 0; p < parts; p++)
    out.push(fragment({ sequence: seq + p, decodeTime: second * VIDEO_TS + p * 6 * 512, samples: frames(6, p === 0), tag: 0x76 }));
  return concatBytes(...out);
}

/** Audio parts of 9 frames (0.192 s) starting at `startTick`. */
function audioSegment(startTick: number, seq: number, parts = 5): Uint8Array {
  const out: Uint8Array[] = [];
  for (let p = 0; p < parts; p++)
    out.push(fragment({ sequence: seq + p, decodeTime: startTick + p * 9 * 1024, samples: audioFrames(9), tag: 0x61 }));
  return concatBytes(...out);
}

describe('muxClip on hand-built fragments', () => {
  const video = () => ({
    init: initSegment({ kind: 'video', timescale: VIDEO_TS }),
    segments: [videoSegment(10, 1), videoSegment(11, 6), videoSegment(12, 11)],
  });
  // Audio segments start 40 ms before the video's (they close on the 192 ms audio-part grid).
  const audio = () => ({
    init: initSegment({ kind: 'audio', timescale: AUDIO_TS }),
    segments: [0, 1, 2].map((k) => audioSegment(AUDIO_START + k * 45 * 1024, 1 + 5 * k)),
  });

  it('a regular MP4: ftyp, mdat, moov with a trak per track (ids 1, 2), tables and no mvex, edit lists at the start part', async () => {
    const file = await mux([video(), audio()], { startOffset: 0.4, duration: 2.2 });
    const mp4 = readMp4(file);
    expect(mp4.topLevel).toEqual(['ftyp', 'mdat', 'moov']);
    expect(mp4.brands).toEqual(['isom', 'isom', 'iso2', 'avc1', 'mp41']);
    expect(mp4.movieTimescale).toBe(MOVIE_TIMESCALE);
    expect(mp4.movieDuration).toBe(2200);
    expect(mp4.nextTrackId).toBe(3);
    expect(mp4.tracks.map((t) => [t.trackId, t.handler, t.timescale, t.duration])).toEqual([
      [1, 'vide', VIDEO_TS, 2200],
      [2, 'soun', AUDIO_TS, 2200],
    ]);
    // The presentation starts 0.4 s into the video (12 frames after its keyframe), and at the
    // same instant of the audio, which began 40 ms earlier: 0.44 s into it.
    expect(mp4.tracks[0]!.edits).toEqual([{ duration: 2200, mediaTime: 0.4 * VIDEO_TS }]);
    expect(mp4.tracks[1]!.edits).toEqual([{ duration: 2200, mediaTime: 0.44 * AUDIO_TS }]);
    expect(mp4.tracks[0]!.boxes).toEqual(['stsd', 'stts', 'stss', 'stsc', 'stsz', 'stco']);
    // Every audio sample is a sync sample: no stss.
    expect(mp4.tracks[1]!.boxes).toEqual(['stsd', 'stts', 'stsc', 'stsz', 'stco']);
    const v = mp4.tracks[0]!.samples;
    expect(v).toHaveLength(90);
    expect(v.filter((s) => s.sync).map((s) => s.dts / VIDEO_TS)).toEqual([0, 1, 2]);
  });

  it('every sample lands where the tables say, each track in decode order, the tracks interleaved by time', async () => {
    const file = await mux([video(), audio()], { startOffset: 0, duration: 3 });
    const mp4 = readMp4(file);
    const origin = [10 * VIDEO_TS, AUDIO_START];
    mp4.tracks.forEach((track, t) => {
      for (const s of track.samples) {
        // Each sample's bytes are its tag and its source decode time: the one the tables give it.
        expect(file.subarray(s.offset, s.offset + s.size)).toEqual(
          samplePayload(t === 0 ? 0x76 : 0x61, BigInt(origin[t]! + s.dts), s.size),
        );
      }
    });
    expect(mp4.tracks.map((t) => t.samples.at(-1)!.dts)).toEqual([89 * 512, 134 * 1024]);
    // Interleaved by decode time, a fragment (≤ one part) at a time: in file order, no sample is
    // more than a part older than one written before it.
    const inFileOrder = mp4.tracks
      .flatMap((t, i) => t.samples.map((s) => ({ offset: s.offset, time: (origin[i]! + s.dts) / t.timescale })))
      .sort((a, b) => a.offset - b.offset);
    let latest = -Infinity;
    for (const s of inFileOrder) {
      expect(s.time).toBeGreaterThan(latest - 0.2);
      latest = Math.max(latest, s.time);
    }
  });

  it('a track whose first sample comes after the clip starts begins with an empty edit', async () => {
    // Audio that starts 100 ms after the clip's start (the first video frame).
    const late = { init: initSegment({ kind: 'audio', timescale: AUDIO_TS }), segments: [audioSegment(484_800, 1)] };
    const mp4 = readMp4(await mux([{ ...video(), segments: [videoSegment(10, 1)] }, late], { startOffset: 0, duration: 1 }));
    expect(mp4.tracks[0]!.edits).toEqual([{ duration: 1000, mediaTime: 0 }]);
    expect(mp4.tracks[1]!.edits).toEqual([
      { duration: 100, mediaTime: -1 },
      { duration: 900, mediaTime: 0 },
    ]);
  });

  it('a gap in the timeline (a segment missing): the sample before it lasts until the next one', async () => {
    const v = video();
    v.segments.splice(1, 1); // 11 s → 12 s is missing (EXT-X-GAP)
    const mp4 = readMp4(await mux([v], { startOffset: 0, duration: 3 }));
    const s = mp4.tracks[0]!.samples;
    expect(s).toHaveLength(60);
    expect(s[29]!.dts).toBe(29 * 512);
    expect(s[30]!.dts).toBe(2 * VIDEO_TS); // decode times are kept across the gap
  });

  it('composition offsets go into ctts (version 1 when one is negative); each trun is a chunk, stsc in runs', async () => {
    const samples: SampleSpec[] = [
      { duration: 512, size: 10, sync: true, cto: 1024 },
      { duration: 512, size: 11, sync: false, cto: -512 },
      { duration: 512, size: 12, sync: false, cto: 0 },
      { duration: 512, size: 13, sync: false, cto: 0 },
    ];
    const seg = concatBytes(
      fragment({ sequence: 1, decodeTime: 0, samples, runs: 2 }),
      fragment({ sequence: 2, decodeTime: 2048, samples: frames(3, false), runs: 1 }),
    );
    const file = await mux([{ init: initSegment({ kind: 'video', timescale: VIDEO_TS }), segments: [seg] }], {
      startOffset: 0,
      duration: (7 * 512) / VIDEO_TS,
    });
    const mp4 = readMp4(file);
    const t = mp4.tracks[0]!;
    expect(t.boxes).toEqual(['stsd', 'stts', 'ctts', 'stss', 'stsc', 'stsz', 'stco']);
    expect(t.samples.map((s) => s.cto)).toEqual([1024, -512, 0, 0, 0, 0, 0]);
    expect(t.samples.map((s) => s.size)).toEqual([10, 11, 12, 13, 100, 101, 102]);
    const moov = [...iterateBoxes(file)].find((b) => b.type === 'moov')!.bytes;
    const ctts = indexOfBox(moov, 'ctts');
    expect(moov[ctts + 8]).toBe(1); // version 1: signed offsets
    // Three chunks: 2 + 2 samples (two truns), then 3.
    const stsc = indexOfBox(moov, 'stsc');
    const v = new DataView(moov.buffer, moov.byteOffset + stsc + 8);
    expect([v.getUint32(4), v.getUint32(8), v.getUint32(12), v.getUint32(20), v.getUint32(24)]).toEqual([2, 1, 2, 3, 3]);
  });

  it('boxes before a fragment (styp, from CMAF chunks) are dropped; a segment cut after a part is whole fragments', async () => {
    const seg = concatBytes(
      fragment({ sequence: 1, decodeTime: 0, samples: frames(6, true), styp: true }),
      fragment({ sequence: 2, decodeTime: 3072, samples: frames(6, false), styp: true }),
    );
    const file = await mux([{ init: initSegment({ kind: 'video', timescale: VIDEO_TS }), segments: [seg] }], {
      startOffset: 0,
      duration: 0.4,
    });
    expect(readMp4(file).tracks[0]!.samples).toHaveLength(12);
    expect(new TextDecoder().decode(file)).not.toContain('styp');
  });

  it('refuses fragments it cannot place: an explicit base data offset, trun data outside its mdat, another track', async () => {
    const init = initSegment({ kind: 'video', timescale: VIDEO_TS });
    const bad = async (seg: Uint8Array, message: RegExp) => {
      await expect(mux([{ init, segments: [seg] }], { startOffset: 0, duration: 0.2 })).rejects.toThrow(BoxError);
      await expect(mux([{ init, segments: [seg] }], { startOffset: 0, duration: 0.2 })).rejects.toThrow(message);
    };
    await bad(fragment({ sequence: 1, decodeTime: 0, samples: frames(6, true), baseDataOffset: true }), /base data offset/);
    await bad(fragment({ sequence: 1, decodeTime: 0, samples: frames(6, true), corruptDataOffset: 64 }), /outside its mdat/);
    await bad(fragment({ sequence: 1, decodeTime: 0, samples: frames(6, true), trackId: 2 }), /track 2/);
    await bad(fragment({ sequence: 1, decodeTime: 0, samples: frames(6, true) }).subarray(0, 120), /overruns|trailing|ends inside/);
  });

  it('a reconnection inside the clip: an init describing the samples the same way continues the track, a changed one is refused', async () => {
    const v = video();
    const same = initSegment({ kind: 'video', timescale: VIDEO_TS });
    const ok = readMp4(await mux([{ ...v, inits: new Map([[2, same]]) }], { startOffset: 0, duration: 3 }));
    expect(ok.tracks[0]!.samples).toHaveLength(90);
    const changed = initSegment({ kind: 'video', timescale: VIDEO_TS, codecPrivate: Uint8Array.of(1, 2, 3) });
    const err = await mux([{ ...v, inits: new Map([[2, changed]]) }], { startOffset: 0, duration: 3 }).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(ClipEncodingChanged);
    expect((err as ClipEncodingChanged).track).toBe(0);
    const otherScale = initSegment({ kind: 'video', timescale: 90000 });
    await expect(mux([{ ...v, inits: new Map([[1, otherScale]]) }], { startOffset: 0, duration: 3 })).rejects.toThrow(ClipEncodingChanged);
  });
});

function indexOfBox(bytes: Uint8Array, type: string): number {
  const t = Array.from(type, (c) => c.charCodeAt(0));
  for (let i = 4; i + 4 <= bytes.byteLength; i++)
    if (bytes[i] === t[0] && bytes[i + 1] === t[1] && bytes[i + 2] === t[2] && bytes[i + 3] === t[3]) return i - 4;
  return -1;
}

describe('FragmentInterleaver', () => {
  const f = (track: number, time: number) => ({ track, time });
  it('releases a fragment only once every track not ended has one queued, earliest first, the lower track on a tie', () => {
    const il = new FragmentInterleaver<{ track: number; time: number }>(2);
    expect(il.next()).toBe(0);
    il.push([f(0, 0), f(0, 0.2), f(0, 0.4)]);
    expect(il.take()).toEqual([]); // track 1 has nothing yet: it might have something earlier
    expect(il.next()).toBe(1);
    il.push([f(1, -0.04), f(1, 0.2)]);
    expect(il.take()).toEqual([f(1, -0.04), f(0, 0), f(0, 0.2), f(1, 0.2)]);
    expect(il.next()).toBe(1);
    il.end(1);
    expect(il.next()).toBeNull();
    expect(il.take()).toEqual([f(0, 0.4)]);
    expect(il.done).toBe(false);
    il.end(0);
    expect(il.done).toBe(true);
  });
});

describe('the export contract', () => {
  const ladder = [
    { name: '480p', kind: 'video', width: 854, height: 480, videoBitrate: 1_200_000, codec: 'h264' },
    { name: '720p', kind: 'video', width: 1280, height: 720, videoBitrate: 2_500_000, codec: 'h264' },
    { name: 'audio', kind: 'audio', audioBitrate: 128_000, channels: 2 },
  ] satisfies StreamRung[];

  it('export: true is the tallest video rendition with the audio; an audio-only stream exports its audio', () => {
    expect(defaultExportRendition(ladder)).toBe('720p');
    expect(exportTracks(ladder, '720p')).toEqual(['720p', 'audio']);
    expect(exportTracks(ladder, 'audio')).toEqual(['audio']);
    expect(exportTracks(ladder.slice(0, 2), '480p')).toEqual(['480p']);
    expect(defaultExportRendition([ladder[2]!])).toBe('audio');
  });

  it('named renditions are checked against the ladder and deduplicated in order', () => {
    expect(exportRenditions(ladder, undefined)).toEqual(['720p']);
    expect(exportRenditions(ladder, ['480p', 'audio', '480p'])).toEqual(['480p', 'audio']);
    expect(exportRenditions(ladder, ['1080p'])).toEqual({ error: 'the stream has no rendition 1080p' });
  });

  it('downloads are attachments named after the clip, with the exact title in filename* (RFC 8187)', () => {
    expect(exportContentDisposition('goal', 'cl1', '720p', false)).toBe('attachment; filename="goal-720p.mp4"');
    expect(exportContentDisposition('', 'cl1', 'audio', true)).toBe('attachment; filename="cl1-audio.m4a"');
    expect(exportContentDisposition('Tor! "Müller" 1:0', 'cl1', '720p', false)).toBe(
      `attachment; filename="Tor_ _Muller_ 1_0-720p.mp4"; filename*=UTF-8''Tor!%20%22M%C3%BCller%22%201%3A0-720p.mp4`,
    );
    expect(exportContentDisposition('⚽⚽', 'cl1', '720p', false)).toBe(
      `attachment; filename="cl1-720p.mp4"; filename*=UTF-8''%E2%9A%BD%E2%9A%BD-720p.mp4`,
    );
  });
});

// ---------------------------------------------------------------------------------------------
// The real ladder.

const FPS = 30;
const LADDER: LadderRung[] = [
  { name: '240p', kind: 'video', width: 426, height: 240, videoBitrate: 300_000, codec: 'h264' },
  { name: 'audio', kind: 'audio', audioBitrate: 96_000, channels: 2 },
];

interface Rendition {
  init: Uint8Array;
  segments: CmafSegmentEvent[];
  parts: CmafPartEvent[];
  whole: Uint8Array;
}

let dir: string;
const renditions = new Map<string, Rendition>();

beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), 'clip-mp4-'));
  const quiet = createLogger({ test: 'clip-mp4' });
  const ladder = new LadderProcess({
    args: {
      input: [
        { format: 'lavfi', options: ['-t', '6'], url: `testsrc2=size=426x240:rate=${FPS}` },
        { format: 'lavfi', options: ['-t', '6'], url: 'sine=frequency=1000:sample_rate=48000' },
      ],
      audioSource: '1:a:0',
      ladder: LADDER,
      partTarget: 0.2,
      segmentTarget: 1,
      fps: FPS,
    },
    logger: quiet,
  });
  const outputs = LADDER.map((_, i) => {
    const chunks: Uint8Array[] = [];
    ladder.outputs[i]!.on('data', (b: Buffer) => chunks.push(new Uint8Array(b)));
    return new Promise<Uint8Array[]>((resolve) => ladder.outputs[i]!.on('end', () => resolve(chunks)));
  });
  const [exit, ...all] = await Promise.all([ladder.exited, ...outputs]);
  expect(exit).toEqual({ code: 0, signal: null });
  LADDER.forEach((rung, i) => {
    const chunker = new CmafChunker({ startMsn: 1, segmentTarget: 1, partTarget: 0.2, logger: quiet });
    const events: CmafChunkerEvent[] = [...all[i]!.flatMap((c) => chunker.push(c)), ...chunker.end()];
    renditions.set(rung.name, {
      init: events.find((e): e is CmafInitEvent => e.type === 'init')!.bytes,
      segments: events.filter((e): e is CmafSegmentEvent => e.type === 'segment'),
      parts: events.filter((e): e is CmafPartEvent => e.type === 'part'),
      whole: concatBytes(...all[i]!),
    });
  });
}, 60_000);

afterAll(async () => {
  if (dir) await rm(dir, { recursive: true, force: true });
});

/** A rendition's segments as the StreamState keeps them (time origin 0 instead of a wall clock). */
function clipSegments(r: Rendition): ClipSegment[] {
  return r.segments.map((s) => ({
    msn: s.msn,
    programDateTime: r.parts.find((p) => p.msn === s.msn && p.part === 0)!.startTime * 1000,
    duration: s.duration,
    parts: r.parts.filter((p) => p.msn === s.msn).map((p) => ({ duration: p.duration, size: p.bytes.byteLength })),
  }));
}

/** What the export job reads for one track of a clip [startMs, endMs): its cut's segments, the last one up to its end part. */
function cutTrack(name: string, startMs: number, endMs: number) {
  const r = renditions.get(name)!;
  const cut = cutClip(clipSegments(r), startMs, endMs)!;
  const segments = r.segments.filter((s) => s.msn >= cut.firstMsn && s.msn <= cut.lastMsn).map((s) => s.bytes);
  if (cut.lastByteLength !== null) segments[segments.length - 1] = segments.at(-1)!.subarray(0, cut.lastByteLength);
  return { cut, source: { init: r.init, segments } };
}

async function framemd5(file: string, stream: 'v' | 'a'): Promise<Array<{ duration: number; hash: string }>> {
  const { stdout } = await run(
    'ffmpeg',
    ['-hide_banner', '-v', 'error', '-i', file, '-map', `0:${stream}:0`, '-fps_mode', 'passthrough', '-f', 'framemd5', '-'],
    { maxBuffer: 32 * 1024 * 1024 },
  );
  return stdout
    .split('\n')
    .filter((l) => l && !l.startsWith('#'))
    .map((l) => {
      const f = l.split(',').map((x) => x.trim());
      return { duration: Number(f[3]), hash: f.at(-1)! };
    });
}

async function ffprobe(file: string) {
  const { stdout } = await run('ffprobe', [
    '-v',
    'error',
    '-show_entries',
    'format=duration,start_time:stream=codec_type,codec_name,start_time,duration',
    '-of',
    'json',
    file,
  ]);
  return JSON.parse(stdout) as {
    format: { duration: string; start_time: string };
    streams: Array<{ codec_type: string; codec_name: string; start_time: string; duration: string }>;
  };
}

describe('a clip of the real ladder (ffmpeg 5.1 output), remuxed and checked by ffprobe and ffmpeg', () => {
  // From 1.45 s (segment 2, part 2: 1.4 s) to 4.5 s (segment 5, part 2 ends at 4.6 s).
  const START_MS = 1450;
  const END_MS = 4500;

  it("video + audio: both streams, the clip's duration, and exactly its frames from the start part's first one", async () => {
    const v = cutTrack('240p', START_MS, END_MS);
    const a = cutTrack('audio', START_MS, END_MS);
    expect([v.cut.startOffset, v.cut.duration]).toEqual([0.4, 3.2]);
    const file = join(dir, 'clip.mp4');
    await writeFile(file, await mux([v.source, a.source], { startOffset: v.cut.startOffset, duration: v.cut.duration }));

    const probe = await ffprobe(file);
    expect(probe.streams.map((s) => [s.codec_type, s.codec_name])).toEqual([
      ['video', 'h264'],
      ['audio', 'aac'],
    ]);
    expect(Number(probe.format.duration)).toBeCloseTo(3.2, 3);
    expect(Number(probe.format.start_time)).toBe(0);
    for (const s of probe.streams) expect(Number(s.start_time), s.codec_type).toBe(0);

    // The source, decoded whole: frame k shows at k / 30 s.
    const sourceFile = join(dir, 'source-240p.mp4');
    await writeFile(sourceFile, renditions.get('240p')!.whole);
    const source = await framemd5(sourceFile, 'v');
    const clip = await framemd5(file, 'v');
    const first = Math.round(1.4 * FPS);
    expect(clip).toHaveLength(Math.round(3.2 * FPS));
    // The edit list hides the lead-in from the segment's keyframe: the first frame shown is the start part's.
    expect(clip.map((f) => f.hash)).toEqual(source.slice(first, first + clip.length).map((f) => f.hash));
    // Decoding starts at the segment's keyframe (1 s): the lead-in is in the file, marked sync once per segment.
    const mp4 = readMp4(new Uint8Array(await readFile(file)));
    expect(mp4.tracks[0]!.samples.filter((s) => s.sync).map((s) => s.dts / mp4.tracks[0]!.timescale)).toEqual([0, 1, 2, 3]);
    expect(mp4.tracks[0]!.samples).toHaveLength(3 * FPS + 0.6 * FPS);

    // Audio: the decoded samples last the clip's duration, to an AAC frame.
    const audio = await framemd5(file, 'a');
    const seconds = audio.reduce((n, f) => n + f.duration, 0) / 48000;
    expect(Math.abs(seconds - 3.2)).toBeLessThanOrEqual(1024 / 48000 + 1e-9);
  });

  it("audio only: one AAC stream of the clip's duration (an .m4a)", async () => {
    const a = cutTrack('audio', START_MS, END_MS);
    const file = join(dir, 'clip.m4a');
    await writeFile(file, await mux([a.source], { startOffset: a.cut.startOffset, duration: a.cut.duration }));
    const probe = await ffprobe(file);
    expect(probe.streams.map((s) => s.codec_name)).toEqual(['aac']);
    expect(Math.abs(Number(probe.format.duration) - a.cut.duration)).toBeLessThan(0.002);
    // Audio parts are 192 ms: the cut starts and ends on them.
    expect(Math.abs(a.cut.duration - 3.2)).toBeLessThanOrEqual(0.192 * 2);
  });

  it('a clip that starts on a segment boundary needs no lead-in: every sample shown', async () => {
    const v = cutTrack('240p', 2000, 3000);
    expect([v.cut.startOffset, v.cut.duration]).toEqual([0, 1]);
    const file = join(dir, 'one-segment.mp4');
    await writeFile(file, await mux([v.source], { startOffset: 0, duration: 1 }));
    const mp4 = readMp4(new Uint8Array(await readFile(file)));
    expect(mp4.tracks[0]!.edits).toEqual([{ duration: 1000, mediaTime: 0 }]);
    expect(await framemd5(file, 'v')).toHaveLength(FPS);
  });
});
