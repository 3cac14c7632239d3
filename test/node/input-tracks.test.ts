// Which tracks a publisher sends, and their codecs, read before the ladder starts
// (transcoder-node/input-tracks.ts): FLV as the RTMP ingest writes it (metadata, tags, header
// flags), MPEG-TS as SRT publishers send it (the PMT) and Matroska as the WHIP ingest writes it
// (the Tracks' CodecIDs), on hand-built streams and on real ffmpeg output.
import { execFile } from 'node:child_process';
import { promisify } from 'node:util';
import { beforeAll, describe, expect, it } from 'vitest';
import {
  FlvTrackProbe,
  MatroskaTrackProbe,
  TsTrackProbe,
  patchFlvHeaderFlags,
  rungsFor,
  type TrackDecision,
} from '../../transcoder-node/input-tracks.ts';
import { encodeAmf0, encodeAmf0EcmaArray } from '../../transcoder-node/rtmp/amf0.ts';
import { encodeFlvHeader, encodeFlvTag, parseFlv } from '../../transcoder-node/rtmp/flv.ts';
import { DEFAULT_LADDER } from '../../transcoder-node/ladder.ts';

const run = promisify(execFile);

/** What the RTMP layer writes: a header claiming both tracks, then the publisher's tags. */
function rtmpFlv(tags: Array<{ type: 8 | 9 | 18; ts: number; body?: Buffer }>): Buffer {
  return Buffer.concat([
    encodeFlvHeader(),
    ...tags.map((t) => encodeFlvTag({ type: t.type, timestamp: t.ts, body: t.body ?? Buffer.from([0x17, 0, 0, 0, 0]) })),
  ]);
}

const metadata = (obj: Record<string, number | boolean>) => Buffer.concat([encodeAmf0('onMetaData'), encodeAmf0EcmaArray(obj)]);

/** Feeds bytes in small pieces; the first decision, and how many bytes it took. */
function probe(
  p: FlvTrackProbe | TsTrackProbe | MatroskaTrackProbe,
  bytes: Uint8Array,
  piece = 7,
): { decision: TrackDecision | null; at: number } {
  for (let at = 0; at < bytes.byteLength; at += piece) {
    const d = p.push(bytes.subarray(at, at + piece));
    if (d) return { decision: d, at: at + piece };
  }
  return { decision: null, at: bytes.byteLength };
}

async function ffmpeg(args: string[]): Promise<Buffer> {
  const { stdout } = await run('ffmpeg', ['-hide_banner', '-loglevel', 'error', ...args], {
    encoding: 'buffer',
    maxBuffer: 32 * 1024 * 1024,
  });
  return stdout;
}

const VIDEO = ['-f', 'lavfi', '-i', 'testsrc2=size=160x90:rate=30'];
const AUDIO = ['-f', 'lavfi', '-i', 'sine=frequency=1000:sample_rate=48000'];
const H264 = ['-c:v', 'libx264', '-preset', 'ultrafast', '-g', '30'];

describe('FLV (RTMP ingest)', () => {
  it('onMetaData before the media decides at once: the codec ids name the tracks the encoder has', () => {
    const videoOnly = rtmpFlv([
      { type: 18, ts: 0, body: metadata({ width: 640, height: 360, videocodecid: 7, framerate: 30 }) },
      { type: 9, ts: 0 },
    ]);
    const d = probe(new FlvTrackProbe(), videoOnly);
    expect(d.decision).toEqual({ tracks: { audio: false, video: true }, source: 'metadata', codecs: { video: 'h264' } });
    // Decided on the script tag, before any media bytes were needed.
    expect(d.at).toBeLessThan(videoOnly.byteLength);
    const both = rtmpFlv([{ type: 18, ts: 0, body: metadata({ videocodecid: 7, audiocodecid: 10 }) }]);
    expect(probe(new FlvTrackProbe(), both).decision).toEqual({
      tracks: { audio: true, video: true },
      source: 'metadata',
      codecs: { video: 'h264', audio: 'aac' },
    });
    const audioOnly = rtmpFlv([{ type: 18, ts: 0, body: metadata({ audiocodecid: 10, audiosamplerate: 48000 }) }]);
    expect(probe(new FlvTrackProbe(), audioOnly).decision).toEqual({
      tracks: { audio: true, video: false },
      source: 'metadata',
      codecs: { audio: 'aac' },
    });
    // hasAudio/hasVideo, when an encoder sends them, win over the codec ids.
    const flagged = rtmpFlv([{ type: 18, ts: 0, body: metadata({ videocodecid: 7, audiocodecid: 10, hasAudio: false }) }]);
    expect(probe(new FlvTrackProbe(), flagged).decision?.tracks).toEqual({ audio: false, video: true });
  });

  it('without metadata the tags decide: both kinds seen, or one second of media of one kind', () => {
    const p = new FlvTrackProbe();
    const early = rtmpFlv([
      { type: 18, ts: 0, body: metadata({ title: 1 }) },
      ...[0, 33, 66, 500, 966].map((ts) => ({ type: 9 as const, ts })),
    ]);
    expect(probe(p, early).decision).toBeNull();
    const later = Buffer.concat([1000, 1033].map((ts) => encodeFlvTag({ type: 9, timestamp: ts, body: Buffer.from([0x27, 1]) })));
    expect(probe(p, later).decision).toEqual({ tracks: { audio: false, video: true }, source: 'tags', codecs: { video: 'h264' } });
    const mixed = rtmpFlv([
      { type: 9, ts: 0 },
      { type: 8, ts: 20, body: Buffer.from([0xaf, 1]) },
    ]);
    expect(probe(new FlvTrackProbe(), mixed).decision).toEqual({
      tracks: { audio: true, video: true },
      source: 'tags',
      codecs: { video: 'h264', audio: 'aac' },
    });
  });

  it('a stream that ends (or a wait that runs out) decides from what came; nothing at all assumes both', () => {
    const p = new FlvTrackProbe();
    expect(probe(p, rtmpFlv([{ type: 8, ts: 0, body: Buffer.from([0xaf, 0]) }])).decision).toBeNull();
    expect(p.end()).toEqual({ tracks: { audio: true, video: false }, source: 'tags', codecs: { audio: 'aac' } });
    expect(new FlvTrackProbe().end()).toEqual({ tracks: { audio: true, video: true }, source: 'fallback' });
  });

  it('header flags naming one track are believed; the header can be patched to the tracks found', () => {
    const header = encodeFlvHeader({ audio: false, video: true });
    expect(new FlvTrackProbe().push(header)).toEqual({ tracks: { audio: false, video: true }, source: 'flv-header' });
    const rtmp = encodeFlvHeader();
    patchFlvHeaderFlags(rtmp, { audio: false, video: true });
    expect(parseFlv(rtmp)).toMatchObject({ audio: false, video: true });
    patchFlvHeaderFlags(rtmp, { audio: true, video: false });
    expect(parseFlv(rtmp)).toMatchObject({ audio: true, video: false });
  });

  it('real ffmpeg FLV: `-an` is video only, with and without its header flags (as the RTMP layer rewrites them)', async () => {
    const file = await ffmpeg([...VIDEO, '-t', '1', ...H264, '-an', '-f', 'flv', '-']);
    expect(probe(new FlvTrackProbe(), file).decision).toEqual({ tracks: { audio: false, video: true }, source: 'flv-header' });
    const asRtmp = Buffer.from(file);
    patchFlvHeaderFlags(asRtmp, { audio: true, video: true });
    expect(probe(new FlvTrackProbe(), asRtmp).decision).toEqual({
      tracks: { audio: false, video: true },
      source: 'metadata',
      codecs: { video: 'h264' },
    });
  });
});

describe('MPEG-TS (SRT ingest)', () => {
  let both: Buffer;
  let videoOnly: Buffer;
  let audioOnly: Buffer;
  let opus: Buffer;
  beforeAll(async () => {
    [both, videoOnly, audioOnly, opus] = await Promise.all([
      ffmpeg([...VIDEO, ...AUDIO, '-t', '1', ...H264, '-c:a', 'aac', '-f', 'mpegts', '-']),
      ffmpeg([...VIDEO, '-t', '1', ...H264, '-an', '-f', 'mpegts', '-']),
      ffmpeg([...AUDIO, '-t', '1', '-c:a', 'aac', '-f', 'mpegts', '-']),
      ffmpeg([...AUDIO, '-t', '1', '-c:a', 'libopus', '-f', 'mpegts', '-']),
    ]);
  }, 60_000);

  it('the first PMT names the elementary streams: video, audio, both (AAC, and Opus by its registration descriptor)', () => {
    expect(probe(new TsTrackProbe(), both, 1000).decision).toEqual({
      tracks: { audio: true, video: true },
      source: 'pmt',
      codecs: { video: 'h264', audio: 'aac' },
    });
    expect(probe(new TsTrackProbe(), videoOnly, 1000).decision).toEqual({
      tracks: { audio: false, video: true },
      source: 'pmt',
      codecs: { video: 'h264' },
    });
    expect(probe(new TsTrackProbe(), audioOnly, 1000).decision).toEqual({
      tracks: { audio: true, video: false },
      source: 'pmt',
      codecs: { audio: 'aac' },
    });
    expect(probe(new TsTrackProbe(), opus, 1000).decision).toEqual({
      tracks: { audio: true, video: false },
      source: 'pmt',
      codecs: { audio: 'opus' },
    });
  });

  it('decides within the first packets, whatever the split, also after leading garbage', () => {
    const d = probe(new TsTrackProbe(), Buffer.concat([Buffer.from('garbage!'), videoOnly]), 13);
    expect(d.decision?.tracks).toEqual({ audio: false, video: true });
    expect(d.at).toBeLessThan(4 * 188);
  });
});

describe('codecs (what a restream can copy)', () => {
  it('FLV: legacy codec ids and enhanced-RTMP FourCCs, in tags and in metadata', () => {
    const hevcTag = Buffer.concat([Buffer.from([0x90]), Buffer.from('hvc1', 'latin1'), Buffer.from([0, 0, 0])]);
    const enhanced = rtmpFlv([
      { type: 9, ts: 0, body: hevcTag },
      { type: 8, ts: 0, body: Buffer.from([0x2f, 0xff]) },
    ]);
    expect(probe(new FlvTrackProbe(), enhanced).decision).toEqual({
      tracks: { audio: true, video: true },
      source: 'tags',
      codecs: { video: 'h265', audio: 'mp3' },
    });
    const fourccMeta = rtmpFlv([{ type: 18, ts: 0, body: metadata({ videocodecid: 0x68766331, audiocodecid: 0x4f707573 }) }]);
    expect(probe(new FlvTrackProbe(), fourccMeta).decision?.codecs).toEqual({ video: 'h265', audio: 'opus' });
    const vp6 = rtmpFlv([
      { type: 9, ts: 0, body: Buffer.from([0x14, 0]) },
      { type: 8, ts: 0, body: Buffer.from([0x6f, 0]) },
    ]);
    expect(probe(new FlvTrackProbe(), vp6).decision?.codecs).toEqual({ video: 'other', audio: 'other' });
  });

  it('MPEG-TS: HEVC by its stream type', async () => {
    const hevc = await ffmpeg([
      ...VIDEO,
      ...AUDIO,
      '-t',
      '0.5',
      '-c:v',
      'libx265',
      '-preset',
      'ultrafast',
      '-x265-params',
      'log-level=error',
      '-c:a',
      'mp2',
      '-f',
      'mpegts',
      '-',
    ]);
    expect(probe(new TsTrackProbe(), hevc, 1000).decision).toEqual({
      tracks: { audio: true, video: true },
      source: 'pmt',
      codecs: { video: 'h265', audio: 'other' },
    });
  });

  it('Matroska: the Tracks of real ffmpeg output, decided at the first Cluster', async () => {
    const both = await ffmpeg([...VIDEO, ...AUDIO, '-t', '0.5', ...H264, '-c:a', 'libopus', '-f', 'matroska', '-']);
    const d = probe(new MatroskaTrackProbe(), both, 100);
    expect(d.decision).toEqual({ tracks: { audio: true, video: true }, source: 'mkv-tracks', codecs: { video: 'h264', audio: 'opus' } });
    expect(d.at).toBeLessThan(both.byteLength / 2);
    const audioOnly = await ffmpeg([...AUDIO, '-t', '0.5', '-c:a', 'aac', '-f', 'matroska', '-']);
    expect(probe(new MatroskaTrackProbe(), audioOnly, 100).decision).toEqual({
      tracks: { audio: true, video: false },
      source: 'mkv-tracks',
      codecs: { audio: 'aac' },
    });
  });
});

describe('rungsFor', () => {
  it('keeps the rungs the input can feed, in ladder order', () => {
    const names = (t: { audio: boolean; video: boolean }) => rungsFor(DEFAULT_LADDER, t).map((r) => r.kind);
    expect(names({ audio: true, video: true })).toEqual(DEFAULT_LADDER.map((r) => r.kind));
    expect(names({ audio: false, video: true })).not.toContain('audio');
    expect(names({ audio: true, video: false })).toEqual(['audio']);
    expect(names({ audio: false, video: false })).toEqual([]);
  });
});
