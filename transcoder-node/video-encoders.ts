// Which video encoders the ladder uses on this node: a hardware family (NVENC, Quick Sync, VAAPI)
// when ffmpeg lists its encoders (`ffmpeg -encoders`) and a one-frame test encode on it succeeds
// (ffmpeg builds list NVENC and VAAPI on machines with no GPU at all), else libx264/libx265 with a
// log line saying why. Detected once when the node starts; VIDEO_ENCODER forces a choice.
import { execFile } from 'node:child_process';
import { existsSync } from 'node:fs';
import { promisify } from 'node:util';
import type { Logger } from './log.ts';

const run = promisify(execFile);

export type EncoderFamily = 'software' | 'nvenc' | 'qsv' | 'vaapi';

/** What the ladder's argv needs to know (ladder.ts). */
export interface VideoEncoders {
  family: EncoderFamily;
  /** The ffmpeg encoder of each rung codec, e.g. `h264_nvenc`, `libx265`. */
  h264: string;
  h265: string;
  /** VAAPI: the render node frames are uploaded to. */
  vaapiDevice?: string;
}

export const SOFTWARE_ENCODERS: VideoEncoders = { family: 'software', h264: 'libx264', h265: 'libx265' };

/** The order hardware families are tried in: the fastest and most common first. */
export const HARDWARE_FAMILIES: readonly Exclude<EncoderFamily, 'software'>[] = ['nvenc', 'qsv', 'vaapi'];

/** Encoder names in `ffmpeg -encoders` output (lines such as ` V....D h264_nvenc  NVIDIA NVENC H.264 encoder`). */
export function parseEncoderList(text: string): Set<string> {
  const names = new Set<string>();
  for (const m of text.matchAll(/^\s*[VAS][.A-Z]{5}\s+(\S+)/gm)) names.add(m[1]!);
  return names;
}

/** A family's encoders, when ffmpeg lists both its H.264 and its HEVC encoder (HEVC falls back to libx265 otherwise). */
export function familyEncoders(family: Exclude<EncoderFamily, 'software'>, listed: Set<string>, vaapiDevice: string): VideoEncoders | null {
  const h264 = `h264_${family}`;
  if (!listed.has(h264)) return null;
  const hevc = `hevc_${family}`;
  return { family, h264, h265: listed.has(hevc) ? hevc : 'libx265', ...(family === 'vaapi' ? { vaapiDevice } : {}) };
}

/** The argv of a one-frame test encode with a family's H.264 encoder (exits non-zero without the hardware). */
export function testEncodeArgs(e: VideoEncoders): string[] {
  const upload = e.family === 'vaapi' ? ['-vaapi_device', e.vaapiDevice!] : [];
  const filter = e.family === 'vaapi' ? ['-vf', 'format=nv12,hwupload'] : e.family === 'qsv' ? ['-vf', 'format=nv12'] : [];
  return [
    '-hide_banner',
    '-loglevel',
    'error',
    '-nostdin',
    ...upload,
    '-f',
    'lavfi',
    '-i',
    'color=size=256x144:rate=30',
    '-frames:v',
    '1',
    ...filter,
    '-c:v',
    e.h264,
    '-f',
    'null',
    '-',
  ];
}

export interface DetectOptions {
  /** `auto` (default): the first hardware family that works, else software. A family name: that one or software. */
  want?: 'auto' | EncoderFamily;
  ffmpegPath?: string;
  /** VAAPI render node (default /dev/dri/renderD128). */
  vaapiDevice?: string;
  logger: Logger;
}

/** Detects the encoders to use; never throws (software is always there: the ladder's tests use it). */
export async function detectVideoEncoders(o: DetectOptions): Promise<VideoEncoders> {
  const want = o.want ?? 'auto';
  const ffmpeg = o.ffmpegPath ?? 'ffmpeg';
  if (want === 'software') {
    o.logger.info('video encoders: libx264/libx265 (VIDEO_ENCODER=software)');
    return SOFTWARE_ENCODERS;
  }
  let listed: Set<string>;
  try {
    listed = parseEncoderList((await run(ffmpeg, ['-hide_banner', '-encoders'], { maxBuffer: 8 << 20 })).stdout);
  } catch (err) {
    o.logger.warn('video encoders: `ffmpeg -encoders` failed; falling back to libx264', { error: String(err) });
    return SOFTWARE_ENCODERS;
  }
  // The families are tried at once (each test encode takes a second or more on a busy machine);
  // the first that works, in HARDWARE_FAMILIES order, is used.
  const families = want === 'auto' ? HARDWARE_FAMILIES : [want];
  const vaapiDevice = o.vaapiDevice ?? '/dev/dri/renderD128';
  const trials = await Promise.all(
    families.map(async (family): Promise<{ family: string; encoders?: VideoEncoders; encoder?: string; error?: string }> => {
      const e = familyEncoders(family, listed, vaapiDevice);
      if (!e) return { family, error: `ffmpeg lists no h264_${family}` };
      if (family === 'vaapi' && !existsSync(vaapiDevice)) return { family, encoder: e.h264, error: `no VAAPI device ${vaapiDevice}` };
      try {
        await run(ffmpeg, testEncodeArgs(e), { timeout: 15_000 });
        return { family, encoders: e };
      } catch (err) {
        // ffmpeg's first lines say why (no driver, no device); its last one only that opening failed.
        const stderr = (err as { stderr?: string }).stderr?.trim().split('\n').slice(0, 2).join(' ').slice(0, 300);
        return { family, encoder: e.h264, error: stderr || String(err) };
      }
    }),
  );
  const working = trials.find((t) => t.encoders);
  if (working?.encoders) {
    o.logger.info('video encoders: hardware', { family: working.family, h264: working.encoders.h264, h265: working.encoders.h265 });
    return working.encoders;
  }
  const tried = trials.map(({ family, encoder, error }) => ({ family, ...(encoder ? { encoder } : {}), error: error! }));
  o.logger.warn('video encoders: no hardware encoder works on this node; falling back to libx264 (and libx265 for H.265 rungs)', { tried });
  return SOFTWARE_ENCODERS;
}
