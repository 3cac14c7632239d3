// The shape every candidate WebRTC stack takes in the realtime benchmark: answer a WHIP publish
// and count the media it yields, answer viewers and forward one source stream to all of them.
import { createRequire } from 'node:module';
import { join } from 'node:path';

export interface IngestStats {
  /** Frames the stack handed out (depacketized H.264 access units, or decoded frames for wrtc). */
  videoFrames: number;
  keyframes: number;
  audioFrames: number;
  videoBytes: number;
  audioBytes: number;
  /** ms from the answer to the first video frame. */
  firstFrameMs: number | null;
  /** What the stack's frames are: 'h264-au' (encoded access units) or 'i420' (decoded pictures). */
  frameKind: string;
  codec: string;
}

export interface IngestHandle {
  answer: string;
  stats(): IngestStats;
  close(): void;
}

/** One RTP packet of the forwarding source (H.264 PT 96 or Opus PT 111, as ffmpeg sends them). */
export type SourceKind = 'video' | 'audio';

export interface BenchStack {
  readonly name: string;
  /** Video codec the viewers must offer (wrtc has no H.264). */
  readonly viewerVideoCodec: 'H264' | 'VP8';
  ingest(offer: string): Promise<IngestHandle>;
  addViewer(offer: string): Promise<string>;
  /** Feeds the source to every viewer: RTP packets (forwarding stacks)… */
  forwardRtp?(kind: SourceKind, packet: Buffer): void;
  /** …or, for a stack that can only send what it encodes itself, the clip to decode and re-encode. */
  startRawSource?(clipPath: string): void;
  viewerCount(): number;
  closeViewers(): void;
}

/**
 * Candidates resolve from the worktree's node_modules first, then from BENCH_RTC_MODULES (a folder
 * where the ones the project does not depend on were installed: `npm install --prefix DIR …`).
 */
export function loadCandidate<T>(name: string): T {
  const roots = [join(import.meta.dirname, '..', '..', '..', 'package.json')];
  if (process.env.BENCH_RTC_MODULES) roots.push(join(process.env.BENCH_RTC_MODULES, '..', 'package.json'));
  let last: unknown;
  for (const root of roots) {
    try {
      return createRequire(root)(name) as T;
    } catch (err) {
      last = err;
    }
  }
  throw new Error(`${name} is not installed (worktree or BENCH_RTC_MODULES): ${(last as Error).message}`);
}

/** RTCP shares the port with RTP; RFC 5761 §4: payload types 64–95 (after the marker bit) are RTCP. */
export function isRtcp(packet: Buffer): boolean {
  const pt = packet[1]! & 0x7f;
  return packet.length >= 8 && pt >= 64 && pt <= 95;
}

/** The m-line mids of an SDP, in order, with their kind. */
export function sdpMids(sdp: string): Array<{ kind: 'audio' | 'video'; mid: string }> {
  const out: Array<{ kind: 'audio' | 'video'; mid: string }> = [];
  let kind: 'audio' | 'video' | null = null;
  for (const line of sdp.split(/\r?\n/)) {
    const m = /^m=(audio|video) /.exec(line);
    if (m) kind = m[1] as 'audio' | 'video';
    else if (line.startsWith('m=')) kind = null;
    const mid = /^a=mid:(.+)$/.exec(line);
    if (mid && kind) out.push({ kind, mid: mid[1]!.trim() });
  }
  return out;
}

/** The payload type an SDP offers for a codec (first match), e.g. H264 with packetization-mode=1. */
export function payloadTypeOf(sdp: string, codec: string, fmtpMatch?: RegExp): number | null {
  const pts = [...sdp.matchAll(new RegExp(`^a=rtpmap:(\\d+) ${codec}/`, 'gim'))].map((m) => Number(m[1]));
  for (const pt of pts) {
    if (!fmtpMatch) return pt;
    const fmtp = new RegExp(`^a=fmtp:${pt} (.*)$`, 'm').exec(sdp)?.[1] ?? '';
    if (fmtpMatch.test(fmtp)) return pt;
  }
  return null;
}
