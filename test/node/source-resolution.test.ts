// The source's picture size as the automatic ladder reads it (transcoder-node/source-resolution.ts),
// on real ffmpeg output: FLV metadata, the H.264 SPS of an FLV without metadata (cropping, odd
// macroblock counts, High and Baseline profiles, portrait), MPEG-TS as SRT publishers send it.
import { spawnSync } from 'node:child_process';
import { describe, expect, it } from 'vitest';
import { FlvSizeProbe, TsSizeProbe, parseH264SpsSize } from '../../transcoder-node/source-resolution.ts';
import { encodeFlvHeader, encodeFlvTag, parseFlv } from '../../transcoder-node/rtmp/flv.ts';

function encode(size: string, format: 'flv' | 'mpegts', extra: string[] = []): Buffer {
  const r = spawnSync(
    'ffmpeg',
    [
      '-hide_banner',
      '-loglevel',
      'error',
      '-f',
      'lavfi',
      '-i',
      `testsrc2=size=${size}:rate=30`,
      '-frames:v',
      '3',
      '-c:v',
      'libx264',
      '-preset',
      'ultrafast',
      ...extra,
      '-f',
      format,
      'pipe:1',
    ],
    { maxBuffer: 64 << 20 },
  );
  expect(r.status, r.stderr.toString()).toBe(0);
  return r.stdout;
}

function feed<T>(probe: { push(c: Uint8Array): T | null }, bytes: Buffer, piece = 1000): T | null {
  for (let at = 0; at < bytes.length; at += piece) {
    const found = probe.push(bytes.subarray(at, at + piece));
    if (found) return found;
  }
  return null;
}

const SIZES = ['1920x1080', '3840x2160', '854x480', '1080x1920', '2560x1440'];

describe('source size', () => {
  it.each(SIZES)('FLV %s: from onMetaData', (size) => {
    const [width, height] = size.split('x').map(Number);
    expect(feed(new FlvSizeProbe(), encode(size, 'flv'), 7)).toEqual({ width, height, from: 'metadata' });
  });

  it.each(SIZES)('FLV %s without metadata: from the SPS of the AVC sequence header', (size) => {
    const [width, height] = size.split('x').map(Number);
    const parsed = parseFlv(encode(size, 'flv'));
    const bare = Buffer.concat([encodeFlvHeader(), ...parsed.tags.filter((t) => t.type !== 18).map((t) => encodeFlvTag(t))]);
    expect(feed(new FlvSizeProbe(), bare, 5)).toEqual({ width, height, from: 'sps' });
  });

  it.each(SIZES)('MPEG-TS %s: from the SPS in the video PES', (size) => {
    const [width, height] = size.split('x').map(Number);
    expect(feed(new TsSizeProbe(), encode(size, 'mpegts'), 188 * 7)).toEqual({ width, height, from: 'sps' });
  });

  it('Baseline profile, and an interlaced High profile stream (field macroblocks)', () => {
    expect(feed(new TsSizeProbe(), encode('1920x1080', 'mpegts', ['-profile:v', 'baseline']))).toEqual({
      width: 1920,
      height: 1080,
      from: 'sps',
    });
    expect(feed(new TsSizeProbe(), encode('1920x1080', 'mpegts', ['-flags', '+ildct+ilme', '-x264-params', 'interlaced=1']))).toEqual({
      width: 1920,
      height: 1080,
      from: 'sps',
    });
  });

  it('not an SPS, or a truncated one: no size', () => {
    expect(parseH264SpsSize(Uint8Array.from([0x68, 0xee, 0x3c, 0x80]))).toBeNull();
    expect(parseH264SpsSize(Uint8Array.from([0x67, 0x64, 0x00, 0x28, 0xac]))).toBeNull();
  });
});
