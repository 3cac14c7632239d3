// The ladder's real-time outputs (streams with `realtime: true`): the top video rung's scaled
// frames encoded once more for WebRTC and the ladder's audio encoded as Opus, each written as RTP
// by ffmpeg to a loopback port of the node's real-time feed (webrtc/realtime-feed.ts), which copies
// the packets to every WHEP viewer. Its own encode rather than the HLS rung's (tee) because:
// ffmpeg cannot make a keyframe when a viewer asks for one, so a new viewer's first frame waits for
// the next one, and this GOP can be short without touching the HLS segments; and constrained
// baseline is what every browser's WebRTC decoder takes (the HLS rungs are High profile).
import type { AudioRung, VideoRung } from '../core/contracts/stream-config.ts';

export interface RealtimeOutputOptions {
  /** Loopback UDP ports of the feed: H.264 RTP and Opus RTP. */
  videoPort: number;
  audioPort: number;
  /** Seconds between keyframes of the WebRTC encode: the longest a new viewer waits for a picture. */
  keyframeIntervalSeconds: number;
  /** Host the ports are on (default 127.0.0.1). */
  host?: string;
}

/** The payload types ffmpeg writes; the node rewrites them to each viewer's. */
export const REALTIME_VIDEO_PT = 96;
export const REALTIME_AUDIO_PT = 111;
/** Opus at most this rate (bits/s): more than a WebRTC listener needs, whatever the AAC rung carries. */
const MAX_OPUS_BITRATE = 128_000;

function rtpUrl(host: string, port: number): string {
  // 1200-byte packets leave room for SRTP and TURN overheads under a 1280-byte path MTU.
  return `rtp://${host}:${port}?pkt_size=1200`;
}

/** Encoder and RTP output of the real-time video, from the filter graph's `label`. */
export function realtimeVideoArgs(label: string, rung: VideoRung, fps: number, o: RealtimeOutputOptions): string[] {
  const gop = String(Math.max(1, Math.round(o.keyframeIntervalSeconds * fps)));
  const maxrate = rung.maxrate ?? Math.round(rung.videoBitrate * 1.2);
  return [
    '-map',
    label,
    // zerolatency: no lookahead, no B-frames, sliced threads: a frame leaves as soon as it enters.
    '-c:v',
    'libx264',
    '-preset',
    'veryfast',
    '-tune',
    'zerolatency',
    '-profile:v',
    'baseline',
    '-b:v',
    String(rung.videoBitrate),
    '-maxrate',
    String(maxrate),
    '-bufsize',
    String(maxrate),
    '-g',
    gop,
    '-keyint_min',
    gop,
    '-sc_threshold',
    '0',
    '-bf',
    '0',
    '-an',
    '-sn',
    '-dn',
    // No RTCP from ffmpeg: the node speaks RTCP with each viewer itself.
    '-f',
    'rtp',
    '-rtpflags',
    'skip_rtcp',
    '-payload_type',
    String(REALTIME_VIDEO_PT),
    rtpUrl(o.host ?? '127.0.0.1', o.videoPort),
  ];
}

/** Encoder and RTP output of the real-time audio (Opus, 20 ms frames, low-delay mode), from `label`. */
export function realtimeAudioArgs(label: string, rung: AudioRung, o: RealtimeOutputOptions): string[] {
  return [
    '-map',
    label,
    '-c:a',
    'libopus',
    '-b:a',
    String(Math.min(rung.audioBitrate, MAX_OPUS_BITRATE)),
    '-application',
    'lowdelay',
    '-frame_duration',
    '20',
    '-ar',
    '48000',
    '-ac',
    String(rung.channels ?? 2),
    '-vn',
    '-sn',
    '-dn',
    '-f',
    'rtp',
    '-rtpflags',
    'skip_rtcp',
    '-payload_type',
    String(REALTIME_AUDIO_PT),
    rtpUrl(o.host ?? '127.0.0.1', o.audioPort),
  ];
}
