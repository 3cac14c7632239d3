// The pure fMP4 parsers: RFC 6381 codec strings from real ffmpeg init segments (HEVC, Opus, mono
// 44.1 kHz AAC), and the LLHLS.md §3.3 rules for a fragment's start, duration and INDEPENDENT flag
// (first-sample flag precedence, duration fallbacks, tfdt versions) on hand-built moofs.
import { execFile } from 'node:child_process';
import { promisify } from 'node:util';
import { describe, expect, it } from 'vitest';
import { BoxError } from '../../core/cmaf/boxes.ts';
import { parseFragment, parseInit } from '../../core/cmaf/fmp4.ts';
import type { InitInfo, TrackInfo } from '../../core/cmaf/fmp4.ts';

const run = promisify(execFile);

/** Runs ffmpeg to stdout and returns its fMP4 bytes. */
async function ffmpegFmp4(args: string[]): Promise<Uint8Array> {
  const { stdout } = await run(
    'ffmpeg',
    [
      '-hide_banner',
      '-v',
      'error',
      '-nostdin',
      ...args,
      '-f',
      'mp4',
      '-movflags',
      '+frag_keyframe+empty_moov+default_base_moof+skip_trailer',
      'pipe:1',
    ],
    { encoding: 'buffer', maxBuffer: 16 * 1024 * 1024 },
  );
  return new Uint8Array(stdout);
}

async function ffprobe(bytes: Uint8Array): Promise<Record<string, string>> {
  const child = execFile('ffprobe', ['-v', 'error', '-show_streams', '-of', 'flat=s=_', 'pipe:0']);
  const out = new Promise<string>((resolve, reject) => {
    let text = '';
    child.stdout!.on('data', (d: Buffer) => (text += d));
    child.on('close', () => resolve(text));
    child.on('error', reject);
  });
  child.stdin!.on('error', () => {});
  child.stdin!.end(bytes);
  const fields: Record<string, string> = {};
  for (const line of (await out).split('\n')) {
    const m = /^streams_stream_0_([a-z_]+)=(.*)$/.exec(line);
    if (m) fields[m[1]!] = m[2]!.replace(/^"|"$/g, '');
  }
  return fields;
}

describe('parseInit on real ffmpeg output', () => {
  it('HEVC (libx265, hvc1): hvc1.<profile>.<compat>.L<level>.<constraints> from hvcC', async () => {
    const bytes = await ffmpegFmp4([
      '-f',
      'lavfi',
      '-i',
      'testsrc2=size=128x72:rate=10',
      '-t',
      '0.3',
      '-c:v',
      'libx265',
      '-preset',
      'ultrafast',
      '-x265-params',
      'log-level=error',
      '-tag:v',
      'hvc1',
    ]);
    const probe = await ffprobe(bytes);
    const [track] = parseInit(bytes).tracks;
    expect(probe).toMatchObject({ codec_name: 'hevc', profile: 'Main' });
    // Main profile (1), compatible with Main and Main 10 (bits 1 and 2 → 0x6), level_idc as ffprobe
    // reads it, and the progressive_source + frame_only constraint byte x265 writes (0x90).
    expect(track).toMatchObject({ kind: 'video', sampleEntry: 'hvc1', codec: `hvc1.1.6.L${probe.level}.90`, width: 128, height: 72 });
  });

  it('Opus is `opus`; mono 44.1 kHz AAC is mp4a.40.2 with 1 channel at 44100 Hz', async () => {
    const opus = parseInit(
      await ffmpegFmp4(['-f', 'lavfi', '-i', 'sine=sample_rate=48000', '-t', '0.2', '-c:a', 'libopus', '-b:a', '32k']),
    );
    expect(opus.tracks[0]).toMatchObject({ kind: 'audio', handler: 'soun', sampleEntry: 'Opus', codec: 'opus', channels: 1 });
    const aac = parseInit(await ffmpegFmp4(['-f', 'lavfi', '-i', 'sine=sample_rate=44100', '-t', '0.2', '-c:a', 'aac', '-ac', '1']));
    expect(aac.tracks[0]).toMatchObject({ kind: 'audio', codec: 'mp4a.40.2', channels: 1, sampleRate: 44100, timescale: 44100 });
    expect(aac.majorBrand).toBe('iso5');
    expect(aac.compatibleBrands).toContain('iso6');
  });

  it('refuses bytes that are not an init segment', () => {
    expect(() => parseInit(new Uint8Array([0, 0, 0, 8, 0x66, 0x72, 0x65, 0x65]))).toThrow(/no moov/);
    expect(() => parseInit(new Uint8Array(3))).toThrow(BoxError);
  });
});

// ---------------------------------------------------------------------------------------------
// Hand-built moofs

const SYNC = 0x02000000;
const NON_SYNC = 0x01010000;

function box(type: string, ...parts: Uint8Array[]): Uint8Array {
  const body = Buffer.concat(parts);
  const out = new Uint8Array(8 + body.byteLength);
  new DataView(out.buffer).setUint32(0, out.byteLength);
  out.set(new TextEncoder().encode(type), 4);
  out.set(body, 8);
  return out;
}

function u32(...values: number[]): Uint8Array {
  const out = new Uint8Array(4 * values.length);
  values.forEach((v, i) => new DataView(out.buffer).setUint32(4 * i, v >>> 0));
  return out;
}

function u64(v: bigint): Uint8Array {
  const out = new Uint8Array(8);
  new DataView(out.buffer).setBigUint64(0, v);
  return out;
}

interface TrafSpec {
  trackId: number;
  tfdt: bigint;
  tfdtVersion?: 0 | 1;
  defaultDuration?: number;
  defaultFlags?: number;
  firstSampleFlags?: number;
  samples: Array<{ duration?: number; flags?: number }>;
}

function traf(t: TrafSpec): Uint8Array {
  let tfhdFlags = 0x020000;
  const tfhdFields: number[] = [];
  if (t.defaultDuration !== undefined) (tfhdFlags |= 0x08), tfhdFields.push(t.defaultDuration);
  tfhdFields.push(100); // default sample size
  tfhdFlags |= 0x10;
  if (t.defaultFlags !== undefined) (tfhdFlags |= 0x20), tfhdFields.push(t.defaultFlags);
  const tfhd = box('tfhd', u32(tfhdFlags, t.trackId, ...tfhdFields));
  const tfdt = t.tfdtVersion === 0 ? box('tfdt', u32(0, Number(t.tfdt))) : box('tfdt', u32(0x01000000), u64(t.tfdt));
  const perDuration = t.samples.some((s) => s.duration !== undefined);
  const perFlags = t.samples.some((s) => s.flags !== undefined);
  let trunFlags = 0x01;
  if (t.firstSampleFlags !== undefined) trunFlags |= 0x04;
  if (perDuration) trunFlags |= 0x100;
  if (perFlags) trunFlags |= 0x400;
  const fields: number[] = [trunFlags, t.samples.length, 0 /* data offset */];
  if (t.firstSampleFlags !== undefined) fields.push(t.firstSampleFlags);
  for (const s of t.samples) {
    if (perDuration) fields.push(s.duration ?? 0);
    if (perFlags) fields.push(s.flags ?? 0);
  }
  return box('traf', tfhd, tfdt, box('trun', u32(...fields)));
}

function moof(...trafs: TrafSpec[]): Uint8Array {
  return box('moof', box('mfhd', u32(0, 42)), ...trafs.map(traf));
}

function track(trackId: number, kind: 'video' | 'audio', timescale: number, trex: Partial<TrackInfo['defaults']> = {}): TrackInfo {
  return {
    trackId,
    handler: kind === 'video' ? 'vide' : 'soun',
    kind,
    timescale,
    sampleEntry: kind === 'video' ? 'avc1' : 'mp4a',
    codec: kind === 'video' ? 'avc1.64001f' : 'mp4a.40.2',
    defaults: { sampleDescriptionIndex: 1, sampleDuration: 0, sampleSize: 0, sampleFlags: 0, ...trex },
  };
}

const videoInit = (trex: Partial<TrackInfo['defaults']> = {}): InitInfo => ({
  majorBrand: 'iso5',
  compatibleBrands: ['iso6'],
  tracks: [track(1, 'video', 90000, trex)],
});
const six = (flags?: number) => Array.from({ length: 6 }, () => (flags === undefined ? {} : { flags }));

describe('parseFragment: INDEPENDENT from the first sample flags (LLHLS.md §3.3 step 5)', () => {
  it('trun first_sample_flags come first, even over per-sample flags and the tfhd default', () => {
    const f = parseFragment(
      moof({ trackId: 1, tfdt: 0n, defaultDuration: 3000, defaultFlags: NON_SYNC, firstSampleFlags: SYNC, samples: six(NON_SYNC) }),
      videoInit(),
    );
    expect(f).toMatchObject({ sequenceNumber: 42, independent: true });
    expect(f.trafs[0]!.firstSampleFlags).toBe(SYNC);
  });

  it('then the first per-sample flags', () => {
    const sync = [{ flags: SYNC }, ...six(NON_SYNC).slice(1)];
    expect(
      parseFragment(moof({ trackId: 1, tfdt: 0n, defaultDuration: 3000, defaultFlags: NON_SYNC, samples: sync }), videoInit()).independent,
    ).toBe(true);
    const nonSync = [{ flags: NON_SYNC }, { flags: SYNC }];
    expect(
      parseFragment(moof({ trackId: 1, tfdt: 0n, defaultDuration: 3000, defaultFlags: SYNC, samples: nonSync }), videoInit()).independent,
    ).toBe(false);
  });

  it('then the tfhd default_sample_flags, then the trex default', () => {
    expect(
      parseFragment(
        moof({ trackId: 1, tfdt: 0n, defaultDuration: 3000, defaultFlags: SYNC, samples: six() }),
        videoInit({ sampleFlags: NON_SYNC }),
      ).independent,
    ).toBe(true);
    expect(
      parseFragment(
        moof({ trackId: 1, tfdt: 0n, defaultDuration: 3000, defaultFlags: NON_SYNC, samples: six() }),
        videoInit({ sampleFlags: SYNC }),
      ).independent,
    ).toBe(false);
    expect(
      parseFragment(moof({ trackId: 1, tfdt: 0n, defaultDuration: 3000, samples: six() }), videoInit({ sampleFlags: NON_SYNC }))
        .independent,
    ).toBe(false);
    expect(
      parseFragment(moof({ trackId: 1, tfdt: 0n, defaultDuration: 3000, samples: six() }), videoInit({ sampleFlags: SYNC })).independent,
    ).toBe(true);
  });

  it('sync means is_non_sync_sample = 0, whatever the other bits say', () => {
    expect(
      parseFragment(moof({ trackId: 1, tfdt: 0n, defaultDuration: 1, firstSampleFlags: 0, samples: six() }), videoInit()).independent,
    ).toBe(true);
    expect(
      parseFragment(moof({ trackId: 1, tfdt: 0n, defaultDuration: 1, firstSampleFlags: 0x00010000, samples: six() }), videoInit())
        .independent,
    ).toBe(false);
  });

  it('audio-only fragments are always independent; with video present, video decides', () => {
    const audioInit: InitInfo = { majorBrand: 'iso5', compatibleBrands: [], tracks: [track(1, 'audio', 48000)] };
    expect(
      parseFragment(moof({ trackId: 1, tfdt: 0n, defaultDuration: 1024, defaultFlags: NON_SYNC, samples: six() }), audioInit).independent,
    ).toBe(true);

    const muxed: InitInfo = { majorBrand: 'iso5', compatibleBrands: [], tracks: [track(1, 'audio', 48000), track(2, 'video', 15360)] };
    const f = parseFragment(
      moof(
        { trackId: 1, tfdt: 48000n, defaultDuration: 1024, samples: six() },
        { trackId: 2, tfdt: 15360n, defaultDuration: 512, defaultFlags: NON_SYNC, samples: six() },
      ),
      muxed,
    );
    expect(f).toMatchObject({ primaryTrackId: 2, timescale: 15360, startTime: 1, duration: 0.2, independent: false });
    expect(f.trafs.map((t) => t.trackId)).toEqual([1, 2]);
  });
});

describe('parseFragment: start time and duration', () => {
  it('per-sample durations, else the tfhd default, else the trex default', () => {
    const perSample = [1000, 2000, 3000].map((duration) => ({ duration }));
    expect(parseFragment(moof({ trackId: 1, tfdt: 0n, defaultDuration: 9, samples: perSample }), videoInit()).durationTicks).toBe(6000);
    expect(
      parseFragment(moof({ trackId: 1, tfdt: 0n, defaultDuration: 3000, samples: six() }), videoInit({ sampleDuration: 7 })).durationTicks,
    ).toBe(18000);
    const f = parseFragment(moof({ trackId: 1, tfdt: 0n, samples: six() }), videoInit({ sampleDuration: 1500 }));
    expect([f.durationTicks, f.duration]).toEqual([9000, 0.1]);
  });

  it('tfdt version 0 (32-bit) and version 1 (64-bit) give baseMediaDecodeTime and startTime in seconds', () => {
    expect(
      parseFragment(moof({ trackId: 1, tfdt: 450000n, tfdtVersion: 0, defaultDuration: 3000, samples: six() }), videoInit()).startTime,
    ).toBe(5);
    const big = 90000n * 100000n; // ≈ 27.8 hours: past 2^32 ticks
    const f = parseFragment(moof({ trackId: 1, tfdt: big, defaultDuration: 3000, samples: six() }), videoInit());
    expect([f.baseMediaDecodeTime, f.startTime]).toEqual([Number(big), 100000]);
  });

  it('refuses a traf for an undeclared track, a traf without tfdt and a trun with more samples than bytes', () => {
    expect(() => parseFragment(moof({ trackId: 9, tfdt: 0n, samples: six() }), videoInit())).toThrow(/does not declare/);
    const noTfdt = box('moof', box('mfhd', u32(0, 1)), box('traf', box('tfhd', u32(0x020000, 1)), box('trun', u32(0, 0))));
    expect(() => parseFragment(noTfdt, videoInit())).toThrow(/no tfdt/);
    const lying = box(
      'moof',
      box('mfhd', u32(0, 1)),
      box('traf', box('tfhd', u32(0x020000, 1)), box('tfdt', u32(0, 0)), box('trun', u32(0x100, 0x7fffffff))),
    );
    expect(() => parseFragment(lying, videoInit())).toThrow(/declares 2147483647 samples/);
    expect(() => parseFragment(box('mdat'), videoInit())).toThrow(/expected moof/);
  });
});
