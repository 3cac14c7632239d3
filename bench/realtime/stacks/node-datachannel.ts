// libdatachannel through node-datachannel: ICE/DTLS/SRTP in native threads, tracks that hand out
// and take raw RTP. Ingest depacketizes with werift's depacketizers; forwarding sends each source
// packet unchanged to every viewer's track (one SSRC per source kind, signalled in the answer).
import { FrameCounter } from './depacketize.ts';
import { isRtcp, loadCandidate, payloadTypeOf, sdpMids, type BenchStack, type IngestHandle, type SourceKind } from './types.ts';
import type * as Ndc from 'node-datachannel';

type NdcModule = typeof Ndc;
const SSRC = { video: 0x1111, audio: 0x2222 };
const TARGET_BPS = 2_500_000;

function answerOf(pc: Ndc.PeerConnection): Promise<string> {
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error('ICE gathering did not complete')), 10_000);
    const done = () => {
      clearTimeout(timer);
      resolve(pc.localDescription()!.sdp);
    };
    if (pc.gatheringState() === 'complete') return done();
    pc.onGatheringStateChange((s) => s === 'complete' && done());
  });
}

export function createStack(): BenchStack {
  const ndc = loadCandidate<NdcModule>('node-datachannel');
  ndc.initLogger('Error', (level, message) => process.stderr.write(`libdatachannel ${level}: ${message}\n`));
  const config = { iceServers: [], bindAddress: '127.0.0.1', enableIceUdpMux: process.env.BENCH_NDC_UDP_MUX === '1' };
  const viewers: Array<{ pc: Ndc.PeerConnection; video: Ndc.Track; audio: Ndc.Track }> = [];
  let seq = 0;
  return {
    name: 'node-datachannel',
    viewerVideoCodec: 'H264',
    async ingest(offer): Promise<IngestHandle> {
      const pc = new ndc.PeerConnection(`whip-${seq++}`, config);
      const counter = new FrameCounter({
        video: payloadTypeOf(offer, 'H264', /packetization-mode=1/),
        audio: payloadTypeOf(offer, 'opus'),
      });
      const tracks: Ndc.Track[] = [];
      let remb: NodeJS.Timeout | undefined;
      pc.onTrack((track) => {
        tracks.push(track);
        // RtcpReceivingSession answers SRs with RRs and carries requestKeyframe() as a PLI.
        track.setMediaHandler(new ndc.RtcpReceivingSession());
        track.onMessage((msg) => {
          if (!isRtcp(msg)) counter.push(msg);
        });
        // libdatachannel sends no transport-wide feedback (stripped from the offer below): REMB
        // every second is what lets the browser's encoder ramp up to the target.
        track.onOpen(() => {
          track.requestKeyframe();
          if (track.type() === 'video') {
            track.requestBitrate(TARGET_BPS);
            remb = setInterval(() => track.isOpen() && track.requestBitrate(TARGET_BPS), 1000);
          }
        });
      });
      pc.setRemoteDescription(
        offer.replace(/^a=rtcp-fb:\d+ transport-cc\r?\n/gm, '').replace(/^a=extmap:\d+ [^\r\n]*transport-wide-cc[^\r\n]*\r?\n/gm, ''),
        'offer',
      );
      const answer = await answerOf(pc);
      return {
        answer,
        stats: () => (void tracks, counter.stats),
        close: () => {
          clearInterval(remb);
          pc.close();
        },
      };
    },
    async addViewer(offer) {
      // Tracks are added before the offer is applied, so no offer of our own may be made meanwhile.
      const pc = new ndc.PeerConnection(`viewer-${seq++}`, { ...config, disableAutoNegotiation: true });
      const mids = sdpMids(offer);
      const vMid = mids.find((m) => m.kind === 'video')!.mid;
      const aMid = mids.find((m) => m.kind === 'audio')!.mid;
      const v = new ndc.Video(vMid, 'SendOnly');
      v.addH264Codec(96);
      v.addSSRC(SSRC.video, 'sfu', 'sfu', 'video');
      const a = new ndc.Audio(aMid, 'SendOnly');
      a.addOpusCodec(111);
      a.addSSRC(SSRC.audio, 'sfu', 'sfu', 'audio');
      // Held in `viewers`: node-datachannel closes a peer or track whose JavaScript object is collected.
      const video = pc.addTrack(v);
      const audio = pc.addTrack(a);
      pc.setRemoteDescription(offer, 'offer');
      pc.setLocalDescription('answer');
      const answer = await answerOf(pc);
      viewers.push({ pc, video, audio });
      return answer;
    },
    forwardRtp(kind: SourceKind, packet: Buffer) {
      packet.writeUInt32BE(SSRC[kind], 8);
      for (const v of viewers) {
        const track = kind === 'video' ? v.video : v.audio;
        if (track.isOpen()) track.sendMessageBinary(packet);
      }
    },
    viewerCount: () => viewers.length,
    closeViewers() {
      for (const v of viewers.splice(0)) v.pc.close();
    },
  };
}
