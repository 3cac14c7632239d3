// The real ladder (ffmpeg 5.1 with buildLadderArgs, 4 s of lavfi test media, 360p + 240p + audio)
// through CmafChunker: LL-HLS part and segment rules (LLHLS.md §1.3, §1.4, §3), cross-checked
// against ffprobe and mux.js's own fMP4 parsing.
import { execFile } from 'node:child_process';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { createRequire } from 'node:module';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { CmafChunker } from '../../transcoder-node/cmaf/chunker.ts';
import type { CmafChunkerEvent, CmafInitEvent, CmafPartEvent, CmafSegmentEvent } from '../../transcoder-node/cmaf/chunker.ts';
import { LadderProcess } from '../../transcoder-node/ladder.ts';
import type { LadderRung } from '../../transcoder-node/ladder.ts';
import { createLogger } from '../../transcoder-node/log.ts';

const run = promisify(execFile);

const PART_TARGET = 0.2;
const SEGMENT_TARGET = 1;
const FPS = 30;
const SECONDS = 4;
const START_MSN = 1;
const LADDER: LadderRung[] = [
  { name: '360p', kind: 'video', width: 640, height: 360, videoBitrate: 600_000, codec: 'h264' },
  { name: '240p', kind: 'video', width: 426, height: 240, videoBitrate: 300_000, codec: 'h264' },
  { name: 'audio', kind: 'audio', audioBitrate: 96_000, channels: 2 },
];

/** The slice of mux.js we use (it ships no types). */
interface MuxBox {
  type: string;
  boxes?: MuxBox[];
  trackId?: number;
  defaultSampleDuration?: number;
  defaultSampleFlags?: number;
  baseMediaDecodeTime?: number | bigint;
  samples?: Array<{ duration?: number; flags?: { isNonSyncSample: number; dependsOn: number } }>;
}
interface MuxJs {
  mp4: {
    probe: {
      tracks(init: Uint8Array): Array<{ id: number; type: string; codec: string; timescale: number }>;
      timescale(init: Uint8Array): Record<number, number>;
      startTime(timescales: Record<number, number>, fragment: Uint8Array): number;
    };
    tools: { inspect(bytes: Uint8Array): MuxBox[] };
  };
}
const muxjs = createRequire(import.meta.url)('mux.js') as MuxJs;

interface Rendition {
  rung: LadderRung;
  /** The bytes exactly as they came out of ffmpeg's pipe, chunk by chunk. */
  chunks: Uint8Array[];
  whole: Uint8Array;
  file: string;
  events: CmafChunkerEvent[];
  init: CmafInitEvent;
  parts: CmafPartEvent[];
  segments: CmafSegmentEvent[];
}

let dir: string;
const renditions = new Map<string, Rendition>();
const quiet = createLogger({ test: 'cmaf-ladder-output' });

function chunk(bytes: Uint8Array, events: CmafChunkerEvent[] = []): CmafChunkerEvent[] {
  const c = new CmafChunker({ startMsn: START_MSN, segmentTarget: SEGMENT_TARGET, partTarget: PART_TARGET, logger: quiet });
  events.push(...c.push(bytes), ...c.end());
  return events;
}

function feed(pieces: Uint8Array[]): CmafChunkerEvent[] {
  const c = new CmafChunker({ startMsn: START_MSN, segmentTarget: SEGMENT_TARGET, partTarget: PART_TARGET, logger: quiet });
  const events: CmafChunkerEvent[] = [];
  for (const p of pieces) events.push(...c.push(p));
  events.push(...c.end());
  return events;
}

beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), 'cmaf-ladder-'));
  const ladder = new LadderProcess({
    args: {
      input: [
        { format: 'lavfi', options: ['-t', String(SECONDS)], url: `testsrc2=size=640x360:rate=${FPS}` },
        { format: 'lavfi', options: ['-t', String(SECONDS)], url: 'sine=frequency=1000:sample_rate=48000' },
      ],
      audioSource: '1:a:0',
      ladder: LADDER,
      partTarget: PART_TARGET,
      segmentTarget: SEGMENT_TARGET,
      fps: FPS,
    },
    logger: quiet,
  });
  const collected = LADDER.map((_, i) => {
    const chunks: Uint8Array[] = [];
    const out = ladder.outputs[i]!;
    out.on('data', (b: Buffer) => chunks.push(new Uint8Array(b)));
    return new Promise<Uint8Array[]>((resolve) => out.on('end', () => resolve(chunks)));
  });
  const [exit, ...outputs] = await Promise.all([ladder.exited, ...collected]);
  expect(exit).toEqual({ code: 0, signal: null });

  for (const [i, rung] of LADDER.entries()) {
    const chunks = outputs[i]!;
    const whole = new Uint8Array(Buffer.concat(chunks));
    const file = join(dir, `${rung.name}.mp4`);
    await writeFile(file, whole);
    const events = feed(chunks);
    renditions.set(rung.name, {
      rung,
      chunks,
      whole,
      file,
      events,
      init: events.find((e): e is CmafInitEvent => e.type === 'init')!,
      parts: events.filter((e): e is CmafPartEvent => e.type === 'part'),
      segments: events.filter((e): e is CmafSegmentEvent => e.type === 'segment'),
    });
  }
}, 60_000);

afterAll(async () => {
  if (dir) await rm(dir, { recursive: true, force: true });
});

const video = () => ['360p', '240p'].map((n) => renditions.get(n)!);
const audio = () => renditions.get('audio')!;
const all = () => [...renditions.values()];

async function ffprobeStream(file: string): Promise<Record<string, string>> {
  const { stdout } = await run('ffprobe', ['-v', 'error', '-show_streams', '-of', 'flat=s=_', file]);
  const fields: Record<string, string> = {};
  for (const line of stdout.split('\n')) {
    const m = /^streams_stream_0_([a-z_]+)=(.*)$/.exec(line);
    if (m) fields[m[1]!] = m[2]!.replace(/^"|"$/g, '');
  }
  return fields;
}

function muxFind(boxes: MuxBox[], path: string[]): MuxBox[] {
  const [head, ...rest] = path;
  const here = boxes.filter((b) => b.type === head);
  return rest.length === 0 ? here : here.flatMap((b) => muxFind(b.boxes ?? [], rest));
}

describe('the event stream', () => {
  it('is init, then parts, each segment right after its last part, no errors', () => {
    for (const r of all()) {
      expect(r.events.filter((e) => e.type === 'error')).toEqual([]);
      expect(r.events[0]!.type).toBe('init');
      expect(r.events.filter((e) => e.type === 'init')).toHaveLength(1);
      let msn = START_MSN;
      let partIndex = 0;
      for (const e of r.events.slice(1)) {
        if (e.type === 'part') {
          expect([e.msn, e.part]).toEqual([msn, partIndex++]);
        } else if (e.type === 'segment') {
          expect([e.msn, e.partCount]).toEqual([msn, partIndex]);
          msn++;
          partIndex = 0;
        }
      }
      expect(r.events.at(-1)!.type).toBe('segment');
    }
  });

  it('init bytes are exactly the ftyp+moov ffmpeg wrote first, and parts+init cover the whole output', () => {
    for (const r of all()) {
      const total = r.init.bytes.byteLength + r.parts.reduce((n, p) => n + p.bytes.byteLength, 0);
      expect(total).toBe(r.whole.byteLength); // skip_trailer: no mfra, nothing else
      expect(Buffer.from(r.whole.subarray(0, r.init.bytes.byteLength)).equals(Buffer.from(r.init.bytes))).toBe(true);
    }
  });
});

describe('init info', () => {
  it('codecs match mux.js and ffprobe; width, height, frame rate and timescale match ffprobe', async () => {
    for (const r of video()) {
      const probe = await ffprobeStream(r.file);
      const [mux] = muxjs.mp4.probe.tracks(r.init.bytes);
      const level = Number(probe.level).toString(16).padStart(2, '0');
      expect(r.init.info).toMatchObject({
        kind: 'video',
        codecs: mux!.codec,
        width: Number(probe.width),
        height: Number(probe.height),
        frameRate: FPS,
        timescale: Number(probe.time_base!.split('/')[1]),
      });
      expect(probe.profile).toBe('High');
      expect(r.init.info.codecs).toMatch(new RegExp(`^avc1\\.64[0-9a-f]{2}${level}$`));
      expect(mux!.timescale).toBe(r.init.info.timescale);
    }
    expect(video().map((r) => [r.init.info.width, r.init.info.height])).toEqual([
      [640, 360],
      [426, 240],
    ]);

    const a = audio();
    const probe = await ffprobeStream(a.file);
    const [mux] = muxjs.mp4.probe.tracks(a.init.bytes);
    expect(probe).toMatchObject({ codec_name: 'aac', profile: 'LC', sample_rate: '48000', channels: '2' });
    expect(a.init.info).toMatchObject({ kind: 'audio', codecs: 'mp4a.40.2', channels: 2, sampleRate: 48000, timescale: 48000 });
    expect(mux!.codec).toBe('mp4a.40.2');
    expect(a.init.info.frameRate).toBeUndefined();
  });
});

describe('part durations', () => {
  it('PART-08: every part, video and audio, is at most PART-TARGET', () => {
    for (const r of all()) for (const p of r.parts) expect(p.duration).toBeLessThanOrEqual(PART_TARGET + 1e-9);
  });

  it('PART-09: every video part is at least 85 % of PART-TARGET unless independent or last of its segment', () => {
    for (const r of video()) {
      for (const p of r.parts) {
        const seg = r.segments.find((s) => s.msn === p.msn)!;
        const exempt = p.independent || p.part === seg.partCount - 1;
        if (!exempt) expect(p.duration).toBeGreaterThanOrEqual(0.85 * PART_TARGET);
      }
      // At 30 fps every video part is exactly 6 frames.
      expect(new Set(r.parts.map((p) => p.duration))).toEqual(new Set([0.2]));
    }
  });

  it('audio parts are 9 AAC frames (192 ms) except possibly the last, and all independent', () => {
    const a = audio();
    expect(a.parts.every((p) => p.independent)).toBe(true);
    for (const p of a.parts.slice(0, -1)) expect(p.duration).toBeCloseTo((9 * 1024) / 48000, 9);
  });
});

describe('segments', () => {
  it('SEG-06: every segment starts with an independent part; video segments are one segment target long', () => {
    for (const r of all()) {
      for (const s of r.segments) expect(r.parts.find((p) => p.msn === s.msn && p.part === 0)!.independent).toBe(true);
    }
    for (const r of video()) {
      expect(r.segments.map((s) => s.duration)).toEqual(Array(SECONDS / SEGMENT_TARGET).fill(SEGMENT_TARGET));
      expect(r.segments.map((s) => s.partCount)).toEqual(Array(SECONDS / SEGMENT_TARGET).fill(5));
      // Only the first part of a segment starts with a keyframe: one IDR per segment.
      expect(r.parts.filter((p) => p.independent).map((p) => p.part)).toEqual(Array(SECONDS / SEGMENT_TARGET).fill(0));
    }
  });

  it('MSNs of video and audio renditions stay aligned, their start times within one part of each other', () => {
    const msns = all().map((r) => r.segments.map((s) => s.msn));
    expect(msns[0]).toEqual([1, 2, 3, 4]);
    for (const m of msns) expect(m).toEqual(msns[0]);
    for (const [i] of msns[0]!.entries()) {
      const starts = all().map((r) => r.segments[i]!.startTime);
      expect(Math.max(...starts) - Math.min(...starts)).toBeLessThanOrEqual(PART_TARGET);
    }
    // Audio cuts at the part nearest each point of the segment grid: within half a part of it.
    const audioPart = (9 * 1024) / 48000;
    for (const [k, s] of audio().segments.entries()) expect(Math.abs(s.startTime - k * SEGMENT_TARGET)).toBeLessThanOrEqual(audioPart / 2);
  });

  it('with keyframesOnGrid (as the session runs it) each segment closes with its final part, same segments', () => {
    for (const r of all()) {
      const c = new CmafChunker({
        startMsn: START_MSN,
        segmentTarget: SEGMENT_TARGET,
        partTarget: PART_TARGET,
        keyframesOnGrid: true,
        logger: quiet,
      });
      const events = [...r.chunks.flatMap((b) => c.push(b)), ...c.end()];
      expect(
        events.filter((e): e is CmafSegmentEvent => e.type === 'segment'),
        r.rung.name,
      ).toEqual(r.segments);
      expect(c.stats.gridMisses, r.rung.name).toBe(0);
      // The segment event comes right after its final part, so the origin can hint part 0 of the next MSN.
      const finals = events.flatMap((e, i) =>
        e.type === 'part' && e.final ? [[e.msn, events[i + 1]!.type === 'segment' && (events[i + 1] as CmafSegmentEvent).msn]] : [],
      );
      // (The last one too when the media ends on the grid, as this 4 s input does for video.)
      const closed = r.segments.map((s) => [s.msn, s.msn]);
      expect(finals, r.rung.name).toEqual(r.rung.kind === 'video' ? closed : closed.slice(0, finals.length));
      expect(finals.length, r.rung.name).toBeGreaterThanOrEqual(r.segments.length - 1);
    }
  });

  it("EXTINF is the sum of the segment's part durations", () => {
    for (const r of all()) {
      for (const s of r.segments) {
        const sum = r.parts.filter((p) => p.msn === s.msn).reduce((n, p) => n + p.duration, 0);
        expect(s.duration).toBeCloseTo(sum, 9);
      }
    }
  });
});

describe('agreement with mux.js', () => {
  it('INDEPENDENT, start time and duration of every part match mux.js parsing of the same bytes', () => {
    for (const r of all()) {
      const timescales = muxjs.mp4.probe.timescale(r.init.bytes);
      const timescale = r.init.info.timescale;
      for (const p of r.parts) {
        const boxes = muxjs.mp4.tools.inspect(p.bytes);
        const tfhd = muxFind(boxes, ['moof', 'traf', 'tfhd'])[0]!;
        const trun = muxFind(boxes, ['moof', 'traf', 'trun'])[0]!;
        const tfdt = muxFind(boxes, ['moof', 'traf', 'tfdt'])[0]!;
        const samples = trun.samples!;
        const first = samples[0]!.flags;
        // First-sample flags, else the tfhd default (trex defaults are 0 in ffmpeg's output).
        const nonSync = first ? first.isNonSyncSample : ((tfhd.defaultSampleFlags ?? 0) >> 16) & 1;
        if (r.init.info.kind === 'video') expect(p.independent).toBe(nonSync === 0);
        const ticks = samples.reduce((n, s) => n + (s.duration ?? tfhd.defaultSampleDuration!), 0);
        expect(p.duration).toBe(ticks / timescale);
        expect(p.startTime).toBe(Number(tfdt.baseMediaDecodeTime) / timescale);
        expect(p.startTime).toBeCloseTo(muxjs.mp4.probe.startTime(timescales, p.bytes), 9);
      }
    }
  });
});

describe('PART-07 and timestamps', () => {
  it('a segment is byte for byte the concatenation of its parts', () => {
    for (const r of all()) {
      for (const s of r.segments) {
        const parts = r.parts.filter((p) => p.msn === s.msn).map((p) => p.bytes);
        expect(Buffer.from(s.bytes).equals(Buffer.concat(parts))).toBe(true);
      }
    }
  });

  it('tfdt is continuous across parts and segments, from 0 on every rendition', () => {
    for (const r of all()) {
      expect(r.parts[0]!.startTime).toBe(0);
      for (let i = 1; i < r.parts.length; i++) {
        const prev = r.parts[i - 1]!;
        const ticks = (t: number) => Math.round(t * r.init.info.timescale);
        expect(ticks(r.parts[i]!.startTime)).toBe(ticks(prev.startTime) + ticks(prev.duration));
      }
      for (let i = 1; i < r.segments.length; i++) {
        const prev = r.segments[i - 1]!;
        expect(r.segments[i]!.startTime).toBeCloseTo(prev.startTime + prev.duration, 9);
      }
    }
  });

  it('init + segments decode as one stream with every frame', async () => {
    const r = video()[0]!;
    const file = join(dir, 'rejoined.mp4');
    await writeFile(file, Buffer.concat([r.init.bytes, ...r.segments.map((s) => s.bytes)]));
    const { stdout, stderr } = await run('ffprobe', [
      '-v',
      'error',
      '-count_frames',
      '-select_streams',
      'v:0',
      '-show_entries',
      'stream=nb_read_frames',
      '-of',
      'csv=p=0',
      file,
    ]);
    expect(stderr).toBe('');
    expect(stdout.trim()).toBe(String(SECONDS * FPS));
  });
});

describe('split independence', () => {
  function summary(events: CmafChunkerEvent[]) {
    return events.map((e) => {
      if (e.type === 'error') return { type: e.type, message: e.error.message };
      const { bytes, ...rest } = e;
      return { ...rest, bytes: Buffer.from(bytes).toString('base64') };
    });
  }

  it("the chunker gives identical output for ffmpeg's own chunks, one whole buffer, 1-byte and random-sized pieces", () => {
    for (const r of all()) {
      const reference = summary(r.events);
      expect(summary(chunk(r.whole))).toEqual(reference);
      const bytes = Array.from({ length: r.whole.byteLength }, (_, i) => r.whole.subarray(i, i + 1));
      expect(summary(feed(bytes))).toEqual(reference);
      let seed = 12345;
      const random = () => (seed = (seed * 1103515245 + 12345) % 2 ** 31) / 2 ** 31;
      const pieces: Uint8Array[] = [];
      for (let at = 0; at < r.whole.byteLength; ) {
        const n = 1 + Math.floor(random() * 3000);
        pieces.push(r.whole.subarray(at, at + n));
        at += n;
      }
      expect(summary(feed(pieces))).toEqual(reference);
    }
  });
});
