// The ffmpeg argv of one restream destination: the publisher's own stream on stdin, out as FLV over
// RTMP(S). Codecs an RTMP destination takes (H.264; AAC or MP3) are copied, anything else (HEVC,
// Opus from WHIP, …) is transcoded to H.264 / AAC. Pure.
import type { MediaContainer } from '../publisher.ts';
import type { TrackDecision } from '../input-tracks.ts';

export interface RestreamArgsOptions {
  container: MediaContainer;
  /** What the source has (input-tracks.ts): which tracks, and their codecs where known. */
  source: TrackDecision;
  /** The full publish URL. */
  url: string;
  /** Bits per second of a transcoded video track (default 6 Mb/s). */
  videoBitrate?: number;
  /** Seconds without a successful write before ffmpeg gives the destination up (default 10). */
  writeTimeoutSeconds?: number;
}

/** What the destination gets of each track: copied as it is, or transcoded. */
export interface RestreamPlan {
  video: 'copy' | 'transcode' | null;
  audio: 'copy' | 'transcode' | null;
}

export function planRestream(source: TrackDecision): RestreamPlan {
  const { tracks, codecs } = source;
  return {
    // A codec not known is transcoded: a copy the FLV muxer refuses would fail every attempt.
    video: tracks.video ? (codecs?.video === 'h264' ? 'copy' : 'transcode') : null,
    audio: tracks.audio ? (codecs?.audio === 'aac' || codecs?.audio === 'mp3' ? 'copy' : 'transcode') : null,
  };
}

export function buildRestreamArgs(o: RestreamArgsOptions): string[] {
  const plan = planRestream(o.source);
  const bitrate = o.videoBitrate ?? 6_000_000;
  const args = [
    '-hide_banner',
    '-loglevel',
    'warning',
    '-nostats',
    '-progress',
    'pipe:2',
    '-stats_period',
    '1',
    '-f',
    o.container,
    '-analyzeduration',
    '1000000',
    '-probesize',
    '1000000',
    '-i',
    'pipe:0',
  ];
  if (plan.video) args.push('-map', '0:v:0');
  if (plan.audio) args.push('-map', '0:a:0');
  if (plan.video === 'copy') args.push('-c:v', 'copy');
  else if (plan.video === 'transcode') {
    args.push(
      '-c:v',
      'libx264',
      '-preset',
      'veryfast',
      '-tune',
      'zerolatency',
      '-pix_fmt',
      'yuv420p',
      '-b:v',
      String(bitrate),
      '-maxrate',
      String(bitrate),
      '-bufsize',
      String(2 * bitrate),
      // A keyframe every 2 s: what YouTube and Twitch ask of an ingest.
      '-force_key_frames',
      'expr:gte(t,n_forced*2)',
    );
  }
  if (plan.audio === 'copy') args.push('-c:a', 'copy');
  else if (plan.audio === 'transcode') args.push('-c:a', 'aac', '-b:a', '160000', '-ar', '48000', '-ac', '2');
  args.push(
    '-f',
    'flv',
    // A live destination: no seeking back to write the duration and size at the end.
    '-flvflags',
    'no_duration_filesize',
    // A destination that stops reading fails the attempt instead of blocking it forever.
    '-rw_timeout',
    String(Math.round((o.writeTimeoutSeconds ?? 10) * 1e6)),
    o.url,
  );
  return args;
}

/** `text` with the destination's URL and key masked: ffmpeg names the URL in its errors. */
export function redactUrl(text: string, url: string): string {
  const slash = url.lastIndexOf('/');
  const key = url.slice(slash + 1);
  let out = text.split(url).join(`${url.slice(0, slash)}/••••`);
  if (key.length >= 4) out = out.split(key).join('••••');
  return out;
}
