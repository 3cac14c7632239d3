// N WHEP viewers in one process (libdatachannel through node-datachannel) for the WHEP part of
// `bench:realtime` (whep.ts): each POSTs a receive-only H.264 + Opus offer to the edge's
// `/live/{id}/whep` (following the 307 to the media node like a browser), and counts what arrives.
// `node whep-viewers.ts WHEP_URL N`; prints "ready K" once every viewer has video (K = how many
// have), then one JSON line of per-viewer counts for each line on stdin; DELETEs every session on
// SIGTERM, so the node frees the viewers at once.
import { createInterface } from 'node:readline';
import * as ndc from 'node-datachannel';
import { isRtcp } from './stacks/types.ts';

const [whepUrl, nArg] = process.argv.slice(2);
const n = Number(nArg);
ndc.initLogger('Error', (level, message) => process.stderr.write(`libdatachannel ${level}: ${message}\n`));

interface Viewer {
  /** Video frames: RTP packets with the marker bit (the last packet of an access unit). */
  frames: number;
  videoPackets: number;
  audioPackets: number;
  bytes: number;
  /** Video packets missing from the sequence numbers seen. */
  lost: number;
  lastSeq: number | null;
  resource: string | null;
}
const viewers: Viewer[] = [];
const refused: string[] = [];
/** Every peer connection and track, held: node-datachannel closes one whose object is collected. */
const held: unknown[] = [];

async function connect(i: number): Promise<Viewer | null> {
  const pc = new ndc.PeerConnection(`whep-${i}`, { iceServers: [], bindAddress: '127.0.0.1', disableAutoNegotiation: true });
  const video = new ndc.Video('0', 'RecvOnly');
  video.addH264Codec(96);
  const audio = new ndc.Audio('1', 'RecvOnly');
  audio.addOpusCodec(111);
  const v: Viewer = { frames: 0, videoPackets: 0, audioPackets: 0, bytes: 0, lost: 0, lastSeq: null, resource: null };
  const tracks = [pc.addTrack(video), pc.addTrack(audio)];
  held.push(pc, tracks);
  for (const track of tracks) {
    const isVideo = track.type() === 'video';
    track.onMessage((msg) => {
      if (isRtcp(msg)) return;
      v.bytes += msg.length;
      if (!isVideo) {
        v.audioPackets++;
        return;
      }
      v.videoPackets++;
      if (msg[1]! & 0x80) v.frames++;
      const seq = msg.readUInt16BE(2);
      if (v.lastSeq !== null) v.lost += Math.max(0, ((seq - v.lastSeq + 65536) % 65536) - 1);
      v.lastSeq = seq;
    });
  }
  pc.setLocalDescription('offer');
  await new Promise<void>((r) => (pc.gatheringState() === 'complete' ? r() : pc.onGatheringStateChange((s) => s === 'complete' && r())));
  // Without our candidates: the node (libdatachannel too) learns our address from our checks and so
  // cannot start DTLS before we hold its answer (libdatachannel as offerer refuses that handshake).
  const offer = pc.localDescription()!.sdp.replace(/^a=candidate:.*\r?\n/gm, '');
  const res = await fetch(whepUrl!, { method: 'POST', headers: { 'content-type': 'application/sdp' }, body: offer });
  if (res.status !== 201) {
    refused.push(`${res.status} ${res.headers.get('retry-after') ?? ''} ${(await res.text()).slice(0, 200)}`);
    pc.close();
    return null;
  }
  const location = res.headers.get('location');
  v.resource = location ? new URL(location, res.url).toString() : null;
  pc.setRemoteDescription(await res.text(), 'answer');
  return v;
}

// A few at a time, as viewers arrive in practice, without flooding the node's answer path
// (WHEP_MAX_PENDING_PER_ADDRESS counts this process as one address).
for (let i = 0; i < n; i += 4) {
  const batch = await Promise.all(Array.from({ length: Math.min(4, n - i) }, (_, k) => connect(i + k)));
  for (const v of batch) if (v) viewers.push(v);
}
const deadline = Date.now() + 30_000;
while (viewers.some((v) => v.frames === 0) && Date.now() < deadline) await new Promise((r) => setTimeout(r, 100));
process.stdout.write(`ready ${viewers.filter((v) => v.frames > 0).length} ${JSON.stringify(refused.slice(0, 3))}\n`);
createInterface({ input: process.stdin }).on('line', () => {
  const cpu = process.cpuUsage();
  process.stdout.write(
    JSON.stringify({
      cpuMicros: cpu.user + cpu.system,
      viewers: viewers.map(({ frames, videoPackets, audioPackets, bytes, lost }) => ({ frames, videoPackets, audioPackets, bytes, lost })),
    }) + '\n',
  );
});
process.on('SIGTERM', async () => {
  await Promise.all(viewers.map((v) => (v.resource ? fetch(v.resource, { method: 'DELETE' }).catch(() => undefined) : undefined)));
  process.exit(0);
});
