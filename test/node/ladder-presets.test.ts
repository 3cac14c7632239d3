// The ladder presets run by the real ffmpeg of this machine: each preset's argv on a short source of
// its resolution, every rung written and probed (size, codec); the preset a source gets; the
// hardware encoders: found in `ffmpeg -encoders`, tried with a one-frame encode, libx264 with a log
// line when none works (this machine lists NVENC, QSV and VAAPI and has no GPU), and each family's
// argv made only of options its ffmpeg encoder has.
import { execFile, spawnSync } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { afterAll, describe, expect, it } from 'vitest';
import {
  LADDER_PRESETS,
  presetForSource,
  presetRungs,
  AUTO_LADDER,
  type LadderRung,
  type VideoRung,
} from '../../core/contracts/stream-config.ts';
import { buildLadderArgs } from '../../transcoder-node/ladder.ts';
import {
  SOFTWARE_ENCODERS,
  detectVideoEncoders,
  familyEncoders,
  parseEncoderList,
  testEncodeArgs,
  type VideoEncoders,
} from '../../transcoder-node/video-encoders.ts';
import { recordingLogger } from '../support/recording-logger.ts';

const run = promisify(execFile);
const dir = mkdtempSync(join(tmpdir(), 'edgelive-presets-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

const SOURCE = { '720p': '1280x720', '1080p': '1920x1080', '2160p': '3840x2160' } as const;

function probe(file: string): { codec: string; width: number; height: number; frames: number } {
  const r = spawnSync(
    'ffprobe',
    [
      '-v',
      'error',
      '-count_frames',
      '-select_streams',
      '0',
      '-show_entries',
      'stream=codec_name,width,height,nb_read_frames',
      '-of',
      'json',
      file,
    ],
    { encoding: 'utf8' },
  );
  const s = (JSON.parse(r.stdout) as { streams: Array<{ codec_name: string; width?: number; height?: number; nb_read_frames?: string }> })
    .streams[0]!;
  return { codec: s.codec_name, width: s.width ?? 0, height: s.height ?? 0, frames: Number(s.nb_read_frames ?? 0) };
}

describe('presets on real ffmpeg', () => {
  for (const preset of ['720p', '1080p', '2160p'] as const) {
    it(`${preset}: the argv runs on a short ${SOURCE[preset]} source and every rung comes out at its size`, async () => {
      const ladder = LADDER_PRESETS[preset];
      const args = buildLadderArgs({
        input: [
          { format: 'lavfi', options: ['-t', '0.3'], url: `testsrc2=size=${SOURCE[preset]}:rate=30` },
          { format: 'lavfi', options: ['-t', '0.3'], url: 'sine=sample_rate=48000' },
        ],
        audioSource: '1:a:0',
        ladder,
      });
      const files = ladder.map((r) => join(dir, `${preset}-${r.name}.mp4`));
      const argv = args.map((a) => (/^pipe:([3-9])$/.test(a) ? files[Number(a.slice(5)) - 3]! : a));
      const { stderr } = await run('ffmpeg', ['-y', ...argv], { maxBuffer: 16 << 20 });
      expect(stderr).toBe('');
      ladder.forEach((r, i) => {
        const got = probe(files[i]!);
        if (r.kind === 'audio') return expect(got.codec).toBe('aac');
        // Fitted in the rung's box, keeping 16:9 with even sides: 480p is 852×480.
        expect([got.codec, got.height]).toEqual(['h264', r.height]);
        expect(r.width - got.width).toBeGreaterThanOrEqual(0);
        expect(r.width - got.width).toBeLessThanOrEqual(2);
        expect(got.frames).toBeGreaterThanOrEqual(8);
      });
    }, 120_000);
  }

  it('the preset of a source: by its shorter side', () => {
    expect([
      presetForSource(3840, 2160),
      presetForSource(2560, 1440),
      presetForSource(1920, 1080),
      presetForSource(1080, 1920),
      presetForSource(1280, 720),
      presetForSource(640, 360),
    ]).toEqual(['2160p', '1080p', '1080p', '1080p', '720p', '720p']);
    expect(presetRungs(AUTO_LADDER, '1080p').map((r) => r.name)).toEqual(['1080p', '720p', '480p', '360p', 'audio']);
  });
});

describe('hardware encoders', () => {
  it('this ffmpeg lists NVENC, QSV and VAAPI encoders; with no GPU each test encode fails and the ladder falls back to libx264 with a log line', async () => {
    const { stdout } = await run('ffmpeg', ['-hide_banner', '-encoders']);
    const listed = parseEncoderList(stdout);
    for (const name of ['libx264', 'libx265', 'h264_nvenc', 'hevc_nvenc', 'h264_qsv', 'h264_vaapi'])
      expect(listed.has(name), name).toBe(true);
    const log = recordingLogger();
    const chosen = await detectVideoEncoders({ logger: log });
    expect(chosen).toEqual(SOFTWARE_ENCODERS);
    const line = log.lines.find((l) => l.level === 'warn' && /falling back to libx264/.test(l.msg));
    expect(line, JSON.stringify(log.lines)).toBeDefined();
    expect((line!.tried as Array<{ family: string; error: string }>).map((t) => t.family)).toEqual(['nvenc', 'qsv', 'vaapi']);
    for (const t of line!.tried as Array<{ error: string }>) expect(t.error).not.toBe('');
  }, 60_000);

  it('VIDEO_ENCODER=software skips detection; an unknown ffmpeg falls back too', async () => {
    const log = recordingLogger();
    expect(await detectVideoEncoders({ want: 'software', logger: log })).toEqual(SOFTWARE_ENCODERS);
    expect(await detectVideoEncoders({ want: 'nvenc', ffmpegPath: join(dir, 'no-ffmpeg'), logger: log })).toEqual(SOFTWARE_ENCODERS);
    expect(log.lines.some((l) => l.level === 'warn' && /falling back to libx264/.test(l.msg))).toBe(true);
  });

  /** The options after `-c:v` of a rung's output, up to its muxer options. */
  function encoderOptions(args: string[], encoder: string): string[] {
    const at = args.indexOf(encoder);
    const out: string[] = [];
    for (let i = at + 1; i < args.length && args[i] !== '-an'; i += 2) out.push(args[i]!.slice(1).split(':')[0]!);
    return out;
  }

  const hevcRung: VideoRung = { name: 'hevc', kind: 'video', width: 640, height: 360, videoBitrate: 600_000, codec: 'h265' };
  for (const family of ['nvenc', 'qsv', 'vaapi'] as const) {
    it(`${family}: the argv of an H.264 and an H.265 rung uses only options its ffmpeg encoder (or ffmpeg) has; keyframes forced as in software`, async () => {
      const listed = parseEncoderList((await run('ffmpeg', ['-hide_banner', '-encoders'])).stdout);
      const encoders = familyEncoders(family, listed, '/dev/dri/renderD128') as VideoEncoders;
      const ladder: LadderRung[] = [LADDER_PRESETS['720p'][0]!, hevcRung, LADDER_PRESETS['720p'][3]!];
      const args = buildLadderArgs({ ladder, encoders, thumbnails: { intervalSeconds: 4 } });
      const { stdout: generic } = await run('ffmpeg', ['-hide_banner', '-h', 'full'], { maxBuffer: 64 << 20 });
      for (const encoder of [encoders.h264, encoders.h265]) {
        const { stdout: own } = await run('ffmpeg', ['-hide_banner', '-h', `encoder=${encoder}`]);
        for (const name of encoderOptions(args, encoder)) {
          const known = new RegExp(`^\\s*-${name.replace(/[-]/g, '\\-')}\\s`, 'm');
          expect(known.test(own) || known.test(generic), `${encoder} -${name}`).toBe(true);
        }
      }
      expect(args.filter((a) => a === '-force_key_frames')).toHaveLength(2);
      expect(args[args.indexOf(encoders.h265) - 1]).toBe('-c:v');
      expect(args).toContain('hvc1');
      const graph = args[args.indexOf('-filter_complex') + 1]!;
      if (family === 'vaapi') {
        expect(args.slice(0, args.indexOf('-i'))).toEqual(expect.arrayContaining(['-vaapi_device', '/dev/dri/renderD128']));
        // Every rung uploads its frames; the thumbnail branch stays on the CPU.
        expect(graph.match(/hwupload/g)).toHaveLength(2);
        expect(graph).toMatch(/format=nv12,split=2\[vu0\]\[vt\];\[vu0\]hwupload\[v0\]/);
      } else expect(graph).not.toContain('hwupload');
      expect(graph).toContain(family === 'nvenc' ? 'format=yuv420p' : 'format=nv12');
    });
  }

  it('the one-frame test encode is what the detection runs (and fails here for want of the device)', async () => {
    const listed = parseEncoderList((await run('ffmpeg', ['-hide_banner', '-encoders'])).stdout);
    const r = spawnSync('ffmpeg', testEncodeArgs(familyEncoders('nvenc', listed, '')!), { encoding: 'utf8' });
    expect(r.status).not.toBe(0);
  });
});
