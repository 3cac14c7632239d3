// N WebRTC viewers in one process (libdatachannel through node-datachannel), for `bench:realtime`:
// each offers to receive one video (H.264 or VP8) and one Opus track, and counts what arrives.
// `node receivers.ts SERVER_URL N CODEC [late]`; prints "ready" when every viewer has media, then one
// JSON line of per-viewer counts each time a line arrives on stdin.
import { createInterface } from 'node:readline';
import { isRtcp, loadCandidate } from './stacks/types.ts';
import type * as Ndc from 'node-datachannel';

const [serverUrl, nArg, codec, candidatesArg] = process.argv.slice(2);
/** 'late': offer without candidates (see connect); werift's answerer needs them in the offer. */
const lateCandidates = candidatesArg === 'late';
const n = Number(nArg);
const ndc = loadCandidate<typeof Ndc>('node-datachannel');
ndc.initLogger('Error', (level, message) => process.stderr.write(`libdatachannel ${level}: ${message}\n`));

interface Viewer {
  bytes: number;
  packets: number;
  videoPackets: number;
  lost: number;
  lastSeq: number | null;
}
const viewers: Viewer[] = [];
/** Every peer connection, held: node-datachannel closes one whose JavaScript object is collected. */
const peers: unknown[] = [];

/** wrtc and libdatachannel fail their DTLS handshake with each other: wrtc's viewers are wrtc. */
async function connectWrtc(i: number): Promise<Viewer> {
  type Pc = {
    addTransceiver(k: string, i: object): void;
    createOffer(): Promise<object>;
    setLocalDescription(d: object): Promise<void>;
    setRemoteDescription(d: object): Promise<void>;
    iceGatheringState: string;
    onicegatheringstatechange: (() => void) | null;
    localDescription: { sdp: string };
    getStats(): Promise<
      Map<string, { type: string; kind?: string; bytesReceived?: number; packetsReceived?: number; packetsLost?: number }>
    >;
  };
  const w = loadCandidate<{ RTCPeerConnection: new () => Pc }>('@roamhq/wrtc');
  const pc = new w.RTCPeerConnection();
  peers.push(pc);
  pc.addTransceiver('video', { direction: 'recvonly' });
  pc.addTransceiver('audio', { direction: 'recvonly' });
  await pc.setLocalDescription(await pc.createOffer());
  await new Promise<void>((r) =>
    pc.iceGatheringState === 'complete' ? r() : (pc.onicegatheringstatechange = () => pc.iceGatheringState === 'complete' && r()),
  );
  const res = await fetch(`${serverUrl}/whep`, {
    method: 'POST',
    headers: { 'content-type': 'application/sdp' },
    body: pc.localDescription.sdp,
  });
  if (res.status !== 201) throw new Error(`viewer ${i}: ${res.status} ${await res.text()}`);
  await pc.setRemoteDescription({ type: 'answer', sdp: await res.text() });
  const stats: Viewer = { bytes: 0, packets: 0, videoPackets: 0, lost: 0, lastSeq: null };
  setInterval(async () => {
    let bytes = 0,
      packets = 0,
      lost = 0,
      videoPackets = 0;
    for (const s of (await pc.getStats()).values()) {
      if (s.type !== 'inbound-rtp') continue;
      bytes += s.bytesReceived ?? 0;
      packets += s.packetsReceived ?? 0;
      if (s.kind === 'video') {
        lost += s.packetsLost ?? 0;
        videoPackets += s.packetsReceived ?? 0;
      }
    }
    Object.assign(stats, { bytes, packets, lost, videoPackets });
  }, 250);
  return stats;
}

async function connect(i: number): Promise<Viewer> {
  if (codec === 'VP8') return connectWrtc(i);
  // The offer is made once, explicitly, after both tracks are added (no automatic negotiation racing it).
  const pc = new ndc.PeerConnection(`rx-${i}`, { iceServers: [], bindAddress: '127.0.0.1', disableAutoNegotiation: true });
  const v = new ndc.Video('0', 'RecvOnly');
  if (codec === 'VP8') v.addVP8Codec(96);
  else v.addH264Codec(96);
  const a = new ndc.Audio('1', 'RecvOnly');
  a.addOpusCodec(111);
  const stats: Viewer = { bytes: 0, packets: 0, videoPackets: 0, lost: 0, lastSeq: null };
  const tracks = [pc.addTrack(v), pc.addTrack(a)];
  peers.push(pc, tracks);
  for (const track of tracks) {
    const video = track.type() === 'video';
    track.onMessage((msg) => {
      if (isRtcp(msg)) return;
      stats.bytes += msg.length;
      stats.packets++;
      if (video) {
        stats.videoPackets++;
        const seq = msg.readUInt16BE(2);
        if (stats.lastSeq !== null) stats.lost += Math.max(0, ((seq - stats.lastSeq + 65536) % 65536) - 1);
        stats.lastSeq = seq;
      }
    });
  }
  pc.setLocalDescription('offer');
  await new Promise<void>((r) => (pc.gatheringState() === 'complete' ? r() : pc.onGatheringStateChange((s) => s === 'complete' && r())));
  // The offer goes without our candidates: the server then cannot reach us, and so cannot start
  // DTLS, before we have its answer and its fingerprint (libdatachannel as an offerer refuses a
  // handshake that arrives before the answer: "unknown CA"). It learns our address from our checks.
  const sdp = pc.localDescription()!.sdp;
  const offer = lateCandidates ? sdp.replace(/^a=candidate:.*\r?\n/gm, '') : sdp;
  const res = await fetch(`${serverUrl}/whep`, { method: 'POST', headers: { 'content-type': 'application/sdp' }, body: offer });
  if (res.status !== 201) throw new Error(`viewer ${i}: ${res.status} ${await res.text()}`);
  const answerSdp = await res.text();
  pc.setRemoteDescription(answerSdp, 'answer');
  return stats;
}

// A few at a time, as viewers arrive in practice, without flooding the server's answer path.
for (let i = 0; i < n; i += 5) viewers.push(...(await Promise.all(Array.from({ length: Math.min(5, n - i) }, (_, k) => connect(i + k)))));
const deadline = Date.now() + 30_000;
while (viewers.some((v) => v.videoPackets === 0) && Date.now() < deadline) await new Promise((r) => setTimeout(r, 100));
process.stdout.write(`ready ${viewers.filter((v) => v.videoPackets > 0).length}\n`);
createInterface({ input: process.stdin }).on('line', () => {
  process.stdout.write(JSON.stringify(viewers.map(({ bytes, packets, lost }) => ({ bytes, packets, lost }))) + '\n');
});
process.on('SIGTERM', () => process.exit(0));
