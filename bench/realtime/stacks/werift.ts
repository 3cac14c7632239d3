// werift: WebRTC in TypeScript (ICE, DTLS, SRTP, RTP in JavaScript on the event loop). Ingest
// depacketizes the received RTP with its own depacketizers; forwarding writes each source packet
// to every viewer's sending track.
import { FrameCounter } from './depacketize.ts';
import { loadCandidate, payloadTypeOf, type BenchStack, type IngestHandle, type SourceKind } from './types.ts';

/* The few werift types the benchmark touches (werift is not a dependency of the project). */
interface RtpPacketLike {
  header: { payloadType: number; ssrc: number };
  serialize(): Buffer;
}
interface Track {
  kind: string;
  onReceiveRtp: { subscribe(cb: (rtp: RtpPacketLike) => void): void };
  writeRtp(rtp: Buffer | RtpPacketLike): void;
}
interface Transceiver {
  kind: string;
  receiver: { sendRtcpPLI(ssrc: number): Promise<void> };
  sender: { sendRtp(rtp: Buffer): Promise<void> };
  setDirection(d: string): void;
}
interface PeerConnection {
  iceGatheringState: string;
  connectionState: string;
  iceGatheringStateChange: { subscribe(cb: (s: string) => void): void };
  onTrack: { subscribe(cb: (track: Track, transceiver?: Transceiver) => void): void };
  ontrack: ((e: { track: Track; transceiver: Transceiver }) => void) | null;
  addTransceiver(trackOrKind: Track | string, init?: { direction: string }): Transceiver;
  setRemoteDescription(d: { type: string; sdp: string }): Promise<void>;
  createAnswer(): Promise<{ type: string; sdp: string }>;
  setLocalDescription(d: { type: string; sdp: string }): Promise<void>;
  localDescription: { sdp: string } | null;
  getTransceivers(): Transceiver[];
  close(): Promise<void>;
}
interface Werift {
  RTCPeerConnection: new (config: unknown) => PeerConnection;
  RTCRtpCodecParameters: new (p: Record<string, unknown>) => unknown;
}

export function createStack(): BenchStack {
  const w = loadCandidate<Werift>('werift');
  const codecs = {
    video: [
      new w.RTCRtpCodecParameters({
        mimeType: 'video/H264',
        clockRate: 90000,
        payloadType: 96,
        parameters: 'profile-level-id=42e01f;packetization-mode=1;level-asymmetry-allowed=1',
        rtcpFeedback: [{ type: 'nack' }, { type: 'nack', parameter: 'pli' }, { type: 'goog-remb' }],
      }),
    ],
    audio: [new w.RTCRtpCodecParameters({ mimeType: 'audio/opus', clockRate: 48000, channels: 2, payloadType: 111 })],
  };
  // Loopback only: the benchmark never sends to another address.
  const config = { codecs, iceUseIpv6: false, iceInterfaceAddresses: { udp4: '127.0.0.1' }, iceAdditionalHostAddresses: ['127.0.0.1'] };
  const viewers: Array<{ pc: PeerConnection; video: Transceiver; audio: Transceiver }> = [];

  async function answer(pc: PeerConnection, offer: string, beforeAnswer?: () => void): Promise<string> {
    await pc.setRemoteDescription({ type: 'offer', sdp: offer });
    beforeAnswer?.();
    await pc.setLocalDescription(await pc.createAnswer());
    if (pc.iceGatheringState !== 'complete') {
      await new Promise<void>((resolve) => pc.iceGatheringStateChange.subscribe((s) => s === 'complete' && resolve()));
    }
    return pc.localDescription!.sdp;
  }

  return {
    name: 'werift',
    viewerVideoCodec: 'H264',
    async ingest(offer): Promise<IngestHandle> {
      const pc = new w.RTCPeerConnection(config);
      const counter = new FrameCounter({
        video: payloadTypeOf(offer, 'H264', /packetization-mode=1/),
        audio: payloadTypeOf(offer, 'opus'),
      });
      pc.ontrack = ({ track, transceiver }) => {
        let asked = false;
        track.onReceiveRtp.subscribe((rtp) => {
          if (!asked && track.kind === 'video') {
            asked = true;
            void transceiver.receiver.sendRtcpPLI(rtp.header.ssrc);
          }
          // werift's packet classes are its own copy of werift-rtp's: hand the counter the bytes.
          counter.push(rtp.serialize());
        });
      };
      // werift answers with its own payload types: the counter must know what it will receive.
      const sdp = await answer(pc, offer);
      return { answer: sdp, stats: () => counter.stats, close: () => void pc.close() };
    },
    async addViewer(offer) {
      const pc = new w.RTCPeerConnection(config);
      // The offer's transceivers (recvonly at the viewer) become our senders.
      const sdp = await answer(pc, offer, () => {
        for (const t of pc.getTransceivers()) t.setDirection('sendonly');
      });
      const ts = pc.getTransceivers();
      viewers.push({ pc, video: ts.find((t) => t.kind === 'video')!, audio: ts.find((t) => t.kind === 'audio')! });
      return sdp;
    },
    forwardRtp(kind: SourceKind, packet: Buffer) {
      // Only to connected viewers: werift queues RTP written before DTLS is up, and a sender whose
      // queue overflowed (250 video packets/s while connecting) stops sending for good.
      for (const v of viewers) {
        if (v.pc.connectionState === 'connected') void (kind === 'video' ? v.video : v.audio).sender.sendRtp(packet).catch(() => undefined);
      }
    },
    viewerCount: () => viewers.length,
    closeViewers() {
      for (const v of viewers.splice(0)) void v.pc.close();
    },
  };
}
