// The ffmpeg ABR ladder: one input decoded once, one fragmented-MP4 output per rung on its own
// pipe (fd 3, 4, …), cut so that CMAF chunks are valid LL-HLS parts (LLHLS.md §3.2, §3.3 step 7).
import { spawn } from 'node:child_process';
import type { ChildProcess } from 'node:child_process';
import { createInterface } from 'node:readline';
import type { Readable, Writable } from 'node:stream';
import { createLogger } from './log.ts';
import type { Logger } from './log.ts';
import type { AudioRung, LadderRung, VideoRung } from '../core/contracts/stream-config.ts';
import { SOFTWARE_ENCODERS, type VideoEncoders } from './video-encoders.ts';
import { realtimeAudioArgs, realtimeVideoArgs, type RealtimeOutputOptions } from './realtime-output.ts';

// The rung types and the default ladder have one home, the stream configuration contract.
export type { AudioRung, LadderRung, VideoRung };
export { DEFAULT_LADDER } from '../core/contracts/stream-config.ts';

/** Every audio rendition is AAC-LC at this rate: 1024-sample frames of 21.33 ms. */
export const AUDIO_SAMPLE_RATE = 48_000;
const AAC_FRAME_SAMPLES = 1024;

/** Rung i of the ladder is written to this file descriptor of the ffmpeg child. */
export function rungFd(index: number): number {
  return 3 + index;
}

/** How parts of one rendition are cut: whole frames per part and the muxer's -frag_duration. */
export interface PartPlan {
  /** Frames (video) or AAC frames (audio) per regular part. */
  frames: number;
  /** Seconds of a regular part: frames × frame duration, ≤ partTarget. */
  partDuration: number;
  /** -frag_duration in microseconds. */
  fragDurationUs: number;
}

/**
 * The mp4 muxer flushes a fragment when an incoming packet's dts − the fragment's first dts
 * ≥ frag_duration (or at a video keyframe, with frag_keyframe). So N frames per part needs
 * frag_duration in ((N−1)·frame, N·frame]; we take the middle, (N − ½)·frame, which no timestamp
 * rounding can push across either end. N is the most whole frames that fit in partTarget (PART-08).
 */
function partPlan(partTarget: number, frameSeconds: number): PartPlan {
  const frames = Math.floor(partTarget / frameSeconds + 1e-9);
  if (frames < 1) throw new RangeError(`partTarget ${partTarget} s is shorter than one frame (${frameSeconds} s)`);
  return {
    frames,
    partDuration: frames * frameSeconds,
    fragDurationUs: Math.round((frames - 0.5) * frameSeconds * 1e6),
  };
}

/** Video parts: the most whole frames that fit in partTarget, which must reach 85 % of it (PART-09). */
export function videoPartPlan(partTarget: number, fps: number): PartPlan {
  const plan = partPlan(partTarget, 1 / fps);
  if (plan.partDuration < 0.85 * partTarget - 1e-9) {
    throw new RangeError(
      `at ${fps} fps, ${plan.frames} frame(s) = ${plan.partDuration.toFixed(4)} s is under 85 % of partTarget ${partTarget} s (PART-09)`,
    );
  }
  return plan;
}

/** Audio parts: whole AAC frames up to partTarget. Every audio part is independent, so PART-09 does not apply. */
export function audioPartPlan(partTarget: number, sampleRate = AUDIO_SAMPLE_RATE): PartPlan {
  return partPlan(partTarget, AAC_FRAME_SAMPLES / sampleRate);
}

/** One ffmpeg input: `-f format [options] -i url`. */
export interface LadderInput {
  /** 'pipe:0' (FLV from the ingest server), a file, or a lavfi graph in tests. */
  url: string;
  format?: string;
  /** Input options placed before `-i`, e.g. `['-t', '4']` or `['-re']`. */
  options?: string[];
}

export interface LadderArgsOptions {
  /** A URL (default 'pipe:0'), or explicit inputs (e.g. two lavfi sources in tests). */
  input?: string | LadderInput | LadderInput[];
  /** Demuxer for a URL input: 'flv' for the RTMP/SRT ingest pipe. */
  inputFormat?: string;
  ladder: readonly LadderRung[];
  /** PART-TARGET, seconds (default 0.2). */
  partTarget?: number;
  /** Segment target and keyframe interval, seconds (default 1). */
  segmentTarget?: number;
  /** Output frame rate of every video rung (default 30). */
  fps?: number;
  /** Stream specifiers of the source streams (default '0:v:0' and '0:a:0'). */
  videoSource?: string;
  audioSource?: string;
  /** Add `-progress pipe:2` key=value blocks to stderr once a second. */
  progress?: boolean;
  /**
   * Also write a JPEG of the top video rung every `intervalSeconds` (from output time 0), as
   * multipart JPEG on the fd after the last rung's (`thumbnailFd`). Needs a video rung.
   */
  thumbnails?: { intervalSeconds: number };
  /** The node's video encoders (video-encoders.ts); default libx264/libx265. */
  encoders?: VideoEncoders;
  /** Also encode the top video rung and the audio for WebRTC, as RTP to these ports (realtime-output.ts). */
  realtime?: RealtimeOutputOptions;
}

/** The fd of the thumbnail output: the one after the ladder's. */
export function thumbnailFd(ladder: readonly LadderRung[]): number {
  return rungFd(ladder.length);
}

/** The rung thumbnails are taken from: the tallest video rung (the first of equals). */
export function topVideoRung(ladder: readonly LadderRung[]): VideoRung | null {
  let top: VideoRung | null = null;
  for (const r of ladder) if (r.kind === 'video' && (!top || r.height > top.height)) top = r;
  return top;
}

/** The resolved plan of a ladder: what each output gets, for logs and tests. */
export interface LadderPlan {
  partTarget: number;
  segmentTarget: number;
  fps: number;
  /** Frames between keyframes: the GOP is exactly one segment. */
  gop: number;
  video: PartPlan | null;
  audio: PartPlan | null;
}

export function planLadder(opts: LadderArgsOptions): LadderPlan {
  const partTarget = opts.partTarget ?? 0.2;
  const segmentTarget = opts.segmentTarget ?? 1;
  const fps = opts.fps ?? 30;
  if (!(partTarget > 0) || !(segmentTarget >= partTarget)) throw new RangeError('need 0 < partTarget ≤ segmentTarget');
  if (!Number.isInteger(fps) || fps < 1) throw new RangeError('fps must be a positive integer');
  if (opts.ladder.length === 0) throw new RangeError('the ladder has no rungs');
  const hasVideo = opts.ladder.some((r) => r.kind === 'video');
  const audioRungs = opts.ladder.filter((r) => r.kind === 'audio').length;
  // One audio encode feeds one output; the stream configuration allows one audio rendition.
  if (audioRungs > 1) throw new RangeError('at most one audio rung');
  const hasAudio = audioRungs === 1;
  return {
    partTarget,
    segmentTarget,
    fps,
    gop: Math.ceil(segmentTarget * fps - 1e-9),
    video: hasVideo ? videoPartPlan(partTarget, fps) : null,
    audio: hasAudio ? audioPartPlan(partTarget) : null,
  };
}

/** Muxer flags shared by every output (LLHLS.md §3.2). */
function fmp4OutputArgs(fragDurationUs: number, fd: number): string[] {
  return [
    '-f',
    'mp4',
    // empty_moov: the first bytes are a complete init segment (a pipe cannot be seeked back).
    // frag_keyframe: every keyframe starts a chunk, so segments can start with an IDR (SEG-06).
    // default_base_moof: movie-fragment-relative addressing, which HLS requires (§3.1.2).
    // skip_trailer: no mfra on exit; it is not media.
    '-movflags',
    '+frag_keyframe+empty_moov+default_base_moof+skip_trailer',
    '-frag_duration',
    String(fragDurationUs),
    // Hand each chunk to the pipe as soon as the muxer writes it.
    '-flush_packets',
    '1',
    `pipe:${fd}`,
  ];
}

function inputArgs(opts: LadderArgsOptions): { args: string[]; readsStdin: boolean } {
  const raw = opts.input ?? 'pipe:0';
  const inputs: LadderInput[] =
    typeof raw === 'string'
      ? [
          {
            url: raw,
            format: opts.inputFormat,
            // Bound the initial stream analysis (default 5 s) so the first part leaves sooner. Not
            // `-fflags nobuffer`: on ffmpeg 5.1 it drops the packets read while probing (we lost
            // 1.5 s of audio from an FLV whose video started late).
            options: ['-analyzeduration', '1000000', '-probesize', '1000000'],
          },
        ]
      : Array.isArray(raw)
        ? raw
        : [raw];
  const args: string[] = [];
  let readsStdin = false;
  for (const input of inputs) {
    if (input.url === 'pipe:0' || input.url === 'pipe:' || input.url === '-') readsStdin = true;
    if (input.format) args.push('-f', input.format);
    args.push(...(input.options ?? []), '-i', input.url);
  }
  return { args, readsStdin };
}

/** The ffmpeg encoder of a rung on this node. */
function rungEncoder(r: VideoRung, e: VideoEncoders): string {
  return r.codec === 'h265' ? e.h265 : e.h264;
}

function scaleFilter(r: VideoRung, e: VideoEncoders): string {
  // Quick Sync and VAAPI take NV12 (VAAPI then uploaded to the GPU); libx264, libx265 and NVENC yuv420p.
  const format = /_(qsv|vaapi)$/.test(rungEncoder(r, e)) ? 'nv12' : 'yuv420p';
  // Fit inside the rung's box keeping the source aspect ratio; the init segment reports the result.
  return `scale=w=${r.width}:h=${r.height}:force_original_aspect_ratio=decrease:force_divisible_by=2,setsar=1,format=${format}`;
}

/**
 * A hardware encoder's argv for a rung: the same bitrate, GOP and forced keyframes as the software
 * one (segments align across rungs whatever encodes them), no B-frames, its low-latency settings.
 */
function hardwareEncoderArgs(r: VideoRung, e: VideoEncoders, common: string[]): string[] {
  const hevc = r.codec === 'h265';
  const encoder = rungEncoder(r, e);
  const profile = ['-profile:v', hevc ? 'main' : 'high'];
  const tag = hevc ? ['-tag:v', 'hvc1'] : [];
  if (encoder.endsWith('_nvenc')) {
    return [
      '-c:v',
      encoder,
      '-preset',
      'p1',
      '-tune',
      'll',
      ...profile,
      '-rc',
      'cbr',
      ...common,
      '-bf',
      '0',
      '-forced-idr',
      '1',
      '-zerolatency',
      '1',
      ...tag,
    ];
  }
  if (encoder.endsWith('_qsv')) {
    return [
      '-c:v',
      encoder,
      '-preset',
      'veryfast',
      ...profile,
      ...common,
      '-bf',
      '0',
      '-forced_idr',
      '1',
      ...(hevc ? [] : ['-look_ahead', '0']),
      ...tag,
    ];
  }
  return ['-c:v', encoder, ...profile, '-rc_mode', 'CBR', ...common, '-bf', '0', ...tag];
}

function videoEncoderArgs(r: VideoRung, plan: LadderPlan, e: VideoEncoders = SOFTWARE_ENCODERS): string[] {
  const maxrate = r.maxrate ?? Math.round(r.videoBitrate * 1.2);
  const gop = String(plan.gop);
  const common = [
    '-b:v',
    String(r.videoBitrate),
    '-maxrate',
    String(maxrate),
    // A one-second VBV: rate control reacts within a segment, no long bursts on the wire.
    '-bufsize',
    String(maxrate),
    // Keyframes exactly every segmentTarget, the same frames in every rung, so segments align.
    '-g',
    gop,
    '-keyint_min',
    gop,
    '-force_key_frames',
    `expr:gte(t,n_forced*${plan.segmentTarget})`,
  ];
  // A family without a HEVC encoder keeps libx265 for H.265 rungs (familyEncoders).
  if (!rungEncoder(r, e).startsWith('lib')) return hardwareEncoderArgs(r, e, common);
  if (r.codec === 'h265') {
    return [
      '-c:v',
      'libx265',
      '-preset',
      'veryfast',
      '-tune',
      'zerolatency',
      '-profile:v',
      'main',
      ...common,
      // libx265 turns forced keyframes into IDRs only when asked; scene cuts and B-frames off.
      // log-level=error: x265 reports its setup choices as warnings, which would flood the log.
      '-forced-idr',
      '1',
      '-x265-params',
      'scenecut=0:bframes=0:open-gop=0:log-level=error',
      // hvc1 (parameter sets in the init segment only) is what Apple devices accept in HLS.
      '-tag:v',
      'hvc1',
    ];
  }
  return [
    // zerolatency: no B-frames, no lookahead, so a frame leaves the encoder as soon as it enters.
    '-c:v',
    'libx264',
    '-preset',
    'veryfast',
    '-tune',
    'zerolatency',
    '-profile:v',
    'high',
    ...common,
    '-sc_threshold',
    '0',
    '-bf',
    '0',
  ];
}

/** The ffmpeg argv (without the program name) for a ladder. Pure; throws RangeError on impossible timing. */
export function buildLadderArgs(opts: LadderArgsOptions): string[] {
  const plan = planLadder(opts);
  const { args: inArgs, readsStdin } = inputArgs(opts);
  const videoSource = opts.videoSource ?? '0:v:0';
  const audioSource = opts.audioSource ?? '0:a:0';
  const videoRungs = opts.ladder.filter((r): r is VideoRung => r.kind === 'video');

  const encoders = opts.encoders ?? SOFTWARE_ENCODERS;
  const args = ['-hide_banner', '-loglevel', 'warning', '-nostats'];
  // VAAPI: the device frames are uploaded to (hwupload in the graph), before any input.
  if (encoders.family === 'vaapi' && encoders.vaapiDevice) args.push('-vaapi_device', encoders.vaapiDevice);
  // stdin carries the FLV in production; otherwise keep ffmpeg from reading keys from it.
  if (!readsStdin) args.push('-nostdin');
  if (opts.progress) args.push('-progress', 'pipe:2', '-stats_period', '1');
  args.push(...inArgs);

  // One decode, one frame-rate conversion, then a split into every video size. ffmpeg 5.1 starts
  // every output's tfdt at 0 whatever its first timestamp, so an FLV whose audio begins 0.4 s after
  // its video would put the renditions 0.4 s apart; start_time=0 and first_pts=0 pad both media
  // to begin at output time 0, which keeps all renditions on one timeline.
  const graph: string[] = [];
  if (videoRungs.length > 0) {
    const splits = videoRungs.map((_, i) => `[vs${i}]`).join('');
    graph.push(`[${videoSource}]fps=${plan.fps}:start_time=0,split=${videoRungs.length}${splits}`);
    const top = opts.thumbnails || opts.realtime ? topVideoRung(opts.ladder) : null;
    // VAAPI encoders take GPU frames: each rung's branch ends with an upload (after the split that
    // shares the top rung's frames with the thumbnail and real-time branches, which stay on the CPU).
    const upload = (rung: VideoRung) => (rungEncoder(rung, encoders).endsWith('_vaapi') ? ',hwupload' : '');
    videoRungs.forEach((r, i) => {
      if (r !== top) return graph.push(`[vs${i}]${scaleFilter(r, encoders)}${upload(r)}[v${i}]`);
      // The thumbnail and real-time branches share the top rung's scaled frames.
      const branches = [upload(r) ? `[vu${i}]` : `[v${i}]`, ...(opts.thumbnails ? ['[vt]'] : []), ...(opts.realtime ? ['[vrt]'] : [])];
      graph.push(`[vs${i}]${scaleFilter(r, encoders)},split=${branches.length}${branches.join('')}`);
      if (upload(r)) graph.push(`[vu${i}]hwupload[v${i}]`);
      // fps keeps one thumbnail per interval, from output time 0, so thumbnail k shows media time k × interval.
      if (opts.thumbnails) graph.push(`[vt]fps=fps=1/${opts.thumbnails.intervalSeconds}:round=near,format=yuvj420p[vthumb]`);
    });
  }
  const audioRung = opts.ladder.find((r): r is AudioRung => r.kind === 'audio');
  if (audioRung) {
    const layout = (audioRung.channels ?? 2) === 1 ? 'mono' : 'stereo';
    // async=1 stretches or pads audio to its timestamps, absorbing ingest jitter and gaps.
    graph.push(
      `[${audioSource}]aresample=async=1:first_pts=0,aformat=sample_fmts=fltp:sample_rates=${AUDIO_SAMPLE_RATE}:channel_layouts=${layout}${opts.realtime ? ',asplit=2[a0][art]' : '[a0]'}`,
    );
  }
  args.push('-filter_complex', graph.join(';'));

  let videoIndex = 0;
  opts.ladder.forEach((r, i) => {
    if (r.kind === 'video') {
      args.push('-map', `[v${videoIndex++}]`, ...videoEncoderArgs(r, plan, encoders), '-an', '-sn', '-dn');
      args.push(...fmp4OutputArgs(plan.video!.fragDurationUs, rungFd(i)));
    } else {
      args.push(
        '-map',
        '[a0]',
        '-c:a',
        'aac',
        '-b:a',
        String(r.audioBitrate),
        '-ar',
        String(AUDIO_SAMPLE_RATE),
        '-ac',
        String(r.channels ?? 2),
        '-vn',
        '-sn',
        '-dn',
      );
      args.push(...fmp4OutputArgs(plan.audio!.fragDurationUs, rungFd(i)));
    }
  });
  if (opts.thumbnails && topVideoRung(opts.ladder)) {
    // mpjpeg: each JPEG with a Content-length, so the reader can split the pipe (thumbnails.ts).
    args.push('-map', '[vthumb]', '-c:v', 'mjpeg', '-q:v', '5', '-an', '-sn', '-dn', '-f', 'mpjpeg', `pipe:${thumbnailFd(opts.ladder)}`);
  }
  if (opts.realtime) {
    const top = topVideoRung(opts.ladder);
    if (top) args.push(...realtimeVideoArgs('[vrt]', top, plan.fps, opts.realtime));
    if (audioRung) args.push(...realtimeAudioArgs('[art]', audioRung, opts.realtime));
  }
  return args;
}

// ---------------------------------------------------------------------------------------------
// The process shell

export interface LadderExit {
  code: number | null;
  signal: NodeJS.Signals | null;
  /** Set when ffmpeg could not be started at all (e.g. ENOENT). */
  error?: Error;
}

export interface LadderProcessOptions {
  /** What to encode: the options of buildLadderArgs. */
  args: LadderArgsOptions;
  ffmpegPath?: string;
  logger?: Logger;
  /** After stop()'s SIGTERM, SIGKILL if ffmpeg has not exited within this many ms (default 5000). */
  killTimeoutMs?: number;
  /** Called with each `-progress` block (frame, fps, out_time_us, speed, …). Implies `progress`. */
  onProgress?: (progress: Record<string, string>) => void;
}

/**
 * ffmpeg running one ladder. The caller writes FLV into `stdin` and reads `outputs[i]`, the fMP4
 * bytes of rung i of the ladder (typically into a CmafChunker). Read every output concurrently:
 * one full pipe stalls all of ffmpeg. `exited` never rejects.
 */
export class LadderProcess {
  readonly argv: string[];
  /** ffmpeg's stdin; when the input is not pipe:0 it is ended at once and ffmpeg runs with -nostdin. */
  readonly stdin: Writable;
  readonly outputs: Readable[];
  /** Multipart JPEG thumbnails of the top rung, when asked for (`args.thumbnails`). */
  readonly thumbnails: Readable | null;
  readonly exited: Promise<LadderExit>;
  readonly #child: ChildProcess;
  readonly #log: Logger;
  readonly #killTimeoutMs: number;
  #exit: LadderExit | null = null;

  constructor(opts: LadderProcessOptions) {
    this.#log = opts.logger ?? createLogger({ component: 'ladder' });
    this.#killTimeoutMs = opts.killTimeoutMs ?? 5000;
    const progress = opts.args.progress === true || opts.onProgress !== undefined;
    this.argv = buildLadderArgs({ ...opts.args, progress });
    const ladder = opts.args.ladder;
    const wantsThumbnails = opts.args.thumbnails !== undefined && topVideoRung(ladder) !== null;

    this.#child = spawn(opts.ffmpegPath ?? 'ffmpeg', this.argv, {
      stdio: ['pipe', 'ignore', 'pipe', ...ladder.map(() => 'pipe' as const), ...(wantsThumbnails ? ['pipe' as const] : [])],
    });
    const child = this.#child;
    this.#log.info('ffmpeg started', { pid: child.pid, rungs: ladder.map((r) => r.name) });

    this.exited = new Promise<LadderExit>((resolve) => {
      child.once('error', (error) => {
        this.#exit ??= { code: null, signal: null, error };
        this.#log.error('ffmpeg could not run', { error });
        resolve(this.#exit);
      });
      child.once('exit', (code, signal) => {
        this.#exit ??= { code, signal };
        const level = code === 0 || signal === 'SIGTERM' ? 'info' : 'warn';
        this.#log[level]('ffmpeg exited', { pid: child.pid, code, signal });
        resolve(this.#exit);
      });
    });

    this.stdin = child.stdin!;
    // Writing after ffmpeg died raises EPIPE on stdin; that is reported through `exited`, not a crash.
    this.stdin.on('error', (error) => this.#log.debug('ffmpeg stdin closed', { error }));
    if (!inputArgs(opts.args).readsStdin) this.stdin.end();

    this.outputs = ladder.map((rung, i) => {
      const stream = child.stdio[rungFd(i)] as Readable;
      stream.on('error', (error) => this.#log.warn('rung output failed', { rung: rung.name, error }));
      return stream;
    });

    this.thumbnails = wantsThumbnails ? (child.stdio[thumbnailFd(ladder)] as Readable) : null;
    this.thumbnails?.on('error', (error) => this.#log.warn('thumbnail output failed', { error }));

    if (child.stderr) this.#readStderr(child.stderr, progress, opts.onProgress);
  }

  get pid(): number | undefined {
    return this.#child.pid;
  }

  /** SIGTERM (ffmpeg finishes its outputs), then SIGKILL after killTimeoutMs. Resolves on exit. */
  stop(): Promise<LadderExit> {
    if (this.#exit) return this.exited;
    this.#child.kill('SIGTERM');
    const timer = setTimeout(() => {
      if (!this.#exit) {
        this.#log.warn('ffmpeg ignored SIGTERM; killing it', { pid: this.#child.pid });
        this.#child.kill('SIGKILL');
      }
    }, this.#killTimeoutMs);
    return this.exited.finally(() => clearTimeout(timer));
  }

  #readStderr(stderr: Readable, progress: boolean, onProgress: LadderProcessOptions['onProgress']): void {
    let block: Record<string, string> = {};
    const lines = createInterface({ input: stderr, crlfDelay: Infinity });
    lines.on('line', (line) => {
      const m = /^([a-z_0-9]+)=(.*)$/.exec(line);
      if (m && progress) {
        block[m[1]!] = m[2]!.trim();
        if (m[1] === 'progress') {
          const done = block;
          block = {};
          if (onProgress) onProgress(done);
          else this.#log.debug('ffmpeg progress', done);
        }
        return;
      }
      if (line.trim() !== '') this.#log.warn('ffmpeg', { line });
    });
  }
}
