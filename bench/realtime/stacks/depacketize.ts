// Counts what a receiving stack yields as encoded frames: werift-rtp's depacketizers (H.264 access
// units, Opus frames) over raw RTP, shared by the stacks that hand out RTP (libdatachannel, werift).
// The same depacketizers the media node uses (transcoder-node/webrtc/rtp-frames.ts).
import { RtpPacket } from 'werift-rtp';
import { DepacketizeBase } from 'werift-rtp/extra';
import type { IngestStats } from './types.ts';

export class FrameCounter {
  readonly stats: IngestStats;
  private readonly video = new DepacketizeBase('MPEG4/ISO/AVC', { isFinalPacketInSequence: (h) => h.marker });
  private readonly audio = new DepacketizeBase('OPUS');
  private readonly startedAt = Date.now();
  private readonly pts: { video: number | null; audio: number | null };

  constructor(pts: { video: number | null; audio: number | null }) {
    this.pts = pts;
    this.stats = {
      videoFrames: 0,
      keyframes: 0,
      audioFrames: 0,
      videoBytes: 0,
      audioBytes: 0,
      firstFrameMs: null,
      frameKind: 'h264-au',
      codec: 'H264+opus',
    };
  }

  /** One decrypted RTP packet (raw, or parsed by werift). */
  push(packet: Buffer | RtpPacket): void {
    const rtp = packet instanceof RtpPacket ? packet : RtpPacket.deSerialize(packet);
    const pt = rtp.header.payloadType;
    if (pt === this.pts.video) {
      for (const out of this.video.processInput({ rtp })) {
        if (!out.frame) continue;
        this.stats.videoFrames++;
        this.stats.videoBytes += out.frame.data.length;
        if (out.frame.isKeyframe) this.stats.keyframes++;
        this.stats.firstFrameMs ??= Date.now() - this.startedAt;
      }
    } else if (pt === this.pts.audio) {
      for (const out of this.audio.processInput({ rtp })) {
        if (!out.frame) continue;
        this.stats.audioFrames++;
        this.stats.audioBytes += out.frame.data.length;
      }
    }
  }
}
