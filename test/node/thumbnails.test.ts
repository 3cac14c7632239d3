// Thumbnails from the ladder's own ffmpeg: one more output (multipart JPEG of the top rung, one
// every interval from time 0) split back into JPEG files by MpjpegSplitter, whatever the chunking.
import { describe, expect, it } from 'vitest';
import { buildLadderArgs, LadderProcess, thumbnailFd, topVideoRung, type LadderRung } from '../../transcoder-node/ladder.ts';
import type { Logger } from '../../transcoder-node/log.ts';
import { MpjpegSplitter } from '../../transcoder-node/thumbnails.ts';

const quiet: Logger = { debug() {}, info() {}, warn() {}, error() {}, child: () => quiet };

const LADDER: LadderRung[] = [
  { name: '180p', kind: 'video', width: 320, height: 180, videoBitrate: 250_000, codec: 'h264' },
  { name: '360p', kind: 'video', width: 640, height: 360, videoBitrate: 700_000, codec: 'h264' },
  { name: 'audio', kind: 'audio', audioBitrate: 64_000, channels: 2 },
];

function part(jpeg: Buffer): Buffer {
  return Buffer.concat([
    Buffer.from(`--ffmpeg\r\nContent-type: image/jpeg\r\nContent-length: ${jpeg.length}\r\n\r\n`),
    jpeg,
    Buffer.from('\r\n'),
  ]);
}

describe('MpjpegSplitter', () => {
  it('gives back every JPEG whole, however the stream is chunked', () => {
    const jpegs = [Buffer.from([0xff, 0xd8, 1, 2, 3, 0xff, 0xd9]), Buffer.alloc(3000, 7), Buffer.from('\r\n\r\n--ffmpeg\r\n')];
    const stream = Buffer.concat(jpegs.map(part));
    for (const size of [1, 2, 7, 64, stream.length]) {
      const splitter = new MpjpegSplitter();
      const got: Buffer[] = [];
      for (let i = 0; i < stream.length; i += size) got.push(...splitter.push(stream.subarray(i, i + size)));
      expect(got, `chunks of ${size}`).toEqual(jpegs);
    }
  });

  it('refuses a stream that is not multipart JPEG', () => {
    expect(() => new MpjpegSplitter().push(Buffer.from('--x\r\nContent-type: image/jpeg\r\n\r\n'))).toThrow(/Content-length/);
    expect(() => new MpjpegSplitter().push(Buffer.alloc(2000, 65))).toThrow(/header/);
  });
});

describe('ladder thumbnails', () => {
  it('adds an mpjpeg output of the tallest rung on the fd after the ladder', () => {
    const args = buildLadderArgs({ input: 'in.flv', ladder: LADDER, thumbnails: { intervalSeconds: 4 } });
    expect(topVideoRung(LADDER)?.name).toBe('360p');
    expect(thumbnailFd(LADDER)).toBe(6);
    const graph = args[args.indexOf('-filter_complex') + 1]!;
    expect(graph).toContain('split=2[v1][vt]');
    expect(graph).toContain('[vt]fps=fps=1/4:round=near,format=yuvj420p[vthumb]');
    expect(args.slice(-4)).toEqual(['-dn', '-f', 'mpjpeg', 'pipe:6']);
    expect(buildLadderArgs({ input: 'in.flv', ladder: LADDER })).not.toContain('mpjpeg');
    expect(buildLadderArgs({ input: 'in.flv', ladder: [LADDER[2]!], thumbnails: { intervalSeconds: 4 } })).not.toContain('mpjpeg');
  });

  it('ffmpeg writes one JPEG of the top rung per interval from time 0, beside the media outputs', async () => {
    const ladder = new LadderProcess({
      args: {
        input: [
          { url: 'testsrc2=size=640x360:rate=30', format: 'lavfi', options: ['-t', '3'] },
          { url: 'sine=sample_rate=48000', format: 'lavfi', options: ['-t', '3'] },
        ],
        videoSource: '0:v:0',
        audioSource: '1:a:0',
        ladder: LADDER,
        thumbnails: { intervalSeconds: 1 },
      },
      logger: quiet,
    });
    // Every pipe must be read, or ffmpeg stalls on the full one.
    for (const o of ladder.outputs) o.resume();
    const splitter = new MpjpegSplitter();
    const jpegs: Buffer[] = [];
    ladder.thumbnails!.on('data', (c: Buffer) => jpegs.push(...splitter.push(c)));
    const exit = await ladder.exited;
    expect(exit.code).toBe(0);
    // 0 s, 1 s, 2 s (and the frame at the 3 s tick when the input ends on it).
    expect(jpegs.length).toBeGreaterThanOrEqual(3);
    expect(jpegs.length).toBeLessThanOrEqual(4);
    for (const j of jpegs) {
      expect([j[0], j[1]]).toEqual([0xff, 0xd8]);
      expect([j.at(-2), j.at(-1)]).toEqual([0xff, 0xd9]);
      // SOF0 carries the picture size: the top rung's 640×360.
      const sof = j.indexOf(Buffer.from([0xff, 0xc0]));
      expect([j.readUInt16BE(sof + 7), j.readUInt16BE(sof + 5)]).toEqual([640, 360]);
    }
  }, 60_000);
});
