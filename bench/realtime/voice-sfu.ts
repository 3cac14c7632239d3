// CPU of the media node's party-voice SFU per voice participant (issue 10, "How it is checked"):
// the SFU in a process of its own (bench/realtime/sfu-server.ts: the node's code), and N members
// in this one — libdatachannel peers, each sending 50 Opus-sized RTP packets a second (80 bytes of
// payload: ~32 kbit/s, a voice at Opus's usual rate) and receiving the others on its slots. For
// each N, the SFU process's CPU over a window against the same with no member, and what each
// member received against what the others sent (loss).
//   node bench/realtime/voice-sfu.ts     (BENCH_SFU_SEATS=3,9,18  BENCH_SFU_WINDOW=10  BENCH_SFU_SETTLE=3)
import { spawn } from 'node:child_process';
import { loadavg } from 'node:os';
import { join } from 'node:path';
import { createInterface } from 'node:readline';
import nodeDataChannel from 'node-datachannel';
import { signVoiceSfuToken } from '../../core/auth/voice-sfu-token.ts';
import { VOICE_SFU_CHANNEL } from '../../core/contracts/voice-sfu.ts';
import { freePort, ROOT } from '../../scripts/local-stack.ts';

const SEATS = (process.env.BENCH_SFU_SEATS ?? '3,9,18').split(',').map(Number);
const WINDOW_S = Number(process.env.BENCH_SFU_WINDOW ?? 10);
const SETTLE_S = Number(process.env.BENCH_SFU_SETTLE ?? 3);
const SECRET = 'bench-voice-sfu';
const PACKETS_PER_SECOND = 50;
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));
nodeDataChannel.initLogger('Error', (level, message) => process.stderr.write(`libdatachannel ${level}: ${message}\n`));

interface Usage {
  cpuMicros: number;
  seats: number;
  forwarded: number;
  at: number;
}

interface Member {
  received: number;
  sent: number;
  close(): void;
}

async function connectMember(base: string, room: string, i: number, slots: number): Promise<Member> {
  const pc = new nodeDataChannel.PeerConnection(`m${i}`, { iceServers: [], bindAddress: '127.0.0.1', disableAutoNegotiation: true });
  const ssrc = 0x10000 + i;
  const mic = new nodeDataChannel.Audio('mic', 'SendOnly');
  mic.addOpusCodec(111);
  mic.addSSRC(ssrc, `m${i}`, `m${i}`, `m${i}`);
  const micTrack = pc.addTrack(mic);
  const m: Member & { refs: unknown[] } = { received: 0, sent: 0, refs: [micTrack], close: () => undefined };
  for (let s = 0; s < slots; s++) {
    const a = new nodeDataChannel.Audio(`s${s}`, 'RecvOnly');
    a.addOpusCodec(111);
    const track = pc.addTrack(a);
    track.onMessage((msg) => {
      if (msg.length >= 12 && ((msg[1]! & 0x7f) < 64 || (msg[1]! & 0x7f) > 95)) m.received++;
    });
    m.refs.push(track);
  }
  m.refs.push(pc.createDataChannel(VOICE_SFU_CHANNEL));
  pc.setLocalDescription('offer');
  const offer = pc.localDescription()!.sdp.replace(/^a=candidate:.*\r?\n/gm, '');
  const token = await signVoiceSfuToken(
    { room, conn: `c${i}`, uid: `u${i}`, name: `m${i}`, exp: Math.floor(Date.now() / 1000) + 300 },
    SECRET,
  );
  const res = await fetch(`${base}/voice/${room}`, {
    method: 'POST',
    headers: { authorization: `Bearer ${token}`, 'content-type': 'application/sdp' },
    body: offer,
  });
  if (res.status !== 201) throw new Error(`member ${i}: ${res.status} ${await res.text()}`);
  pc.setRemoteDescription(await res.text(), 'answer');
  let seq = 0;
  const payload = Buffer.alloc(80, 0x55);
  const timer = setInterval(() => {
    if (!micTrack.isOpen()) return;
    const header = Buffer.alloc(12);
    header[0] = 0x80;
    header[1] = 111;
    header.writeUInt16BE(seq++ & 0xffff, 2);
    header.writeUInt32BE((seq * 960) >>> 0, 4);
    header.writeUInt32BE(ssrc, 8);
    if (micTrack.sendMessageBinary(Buffer.concat([header, payload]))) m.sent++;
  }, 1000 / PACKETS_PER_SECOND);
  m.close = () => {
    clearInterval(timer);
    pc.close();
  };
  return m;
}

async function usage(url: string): Promise<Usage> {
  return (await (await fetch(url)).json()) as Usage;
}

async function measure(
  url: string,
  members: Member[],
): Promise<{ cpu: number; forwardedPerSecond: number; received: number; sent: number }> {
  const sentBefore = members.map((m) => m.sent);
  const receivedBefore = members.map((m) => m.received);
  const a = await usage(url);
  await sleep(WINDOW_S * 1000);
  const b = await usage(url);
  const seconds = (b.at - a.at) / 1000;
  const sent = members.reduce((n, m, i) => n + m.sent - sentBefore[i]!, 0);
  const received = members.reduce((n, m, i) => n + m.received - receivedBefore[i]!, 0);
  return { cpu: (b.cpuMicros - a.cpuMicros) / 1e6 / seconds, forwardedPerSecond: (b.forwarded - a.forwarded) / seconds, received, sent };
}

const port = await freePort();
const server = spawn(join(ROOT, 'node_modules', '.bin', 'node'), [join(ROOT, 'bench', 'realtime', 'sfu-server.ts'), String(port), SECRET], {
  stdio: ['ignore', 'pipe', 'inherit'],
  env: { ...process.env, LOG_LEVEL: 'warn' },
});
await new Promise<void>((resolve, reject) => {
  createInterface({ input: server.stdout! }).on('line', (l) => l === 'ready' && resolve());
  server.once('exit', (code) => reject(new Error(`the SFU process exited (${code})`)));
});
const base = `http://127.0.0.1:${port}`;
const usageUrl = `http://127.0.0.1:${port + 1}/`;
console.log(
  `load average before: ${loadavg()
    .map((x) => x.toFixed(1))
    .join(' ')} (${new Date().toISOString()})`,
);
await sleep(SETTLE_S * 1000);
const idle = await measure(usageUrl, []);
console.log(`idle SFU process: ${(idle.cpu * 100).toFixed(2)} % of a core`);
console.log('| seats | SFU process CPU | per seat above idle | packets forwarded/s | received of (N−1)×sent | load avg |');
console.log('| ----: | --------------: | ------------------: | ------------------: | ---------------------: | -------: |');
for (const [k, n] of SEATS.entries()) {
  const room = `bench-${k}`;
  const members: Member[] = [];
  for (let i = 0; i < n; i++) members.push(await connectMember(base, room, i, Math.max(1, n - 1)));
  await sleep(SETTLE_S * 1000);
  const w = await measure(usageUrl, members);
  // Every packet a member sent should reach the n − 1 others.
  const expected = w.sent * (n - 1);
  console.log(
    `| ${n} | ${(w.cpu * 100).toFixed(2)} % | ${(((w.cpu - idle.cpu) / n) * 100).toFixed(3)} % | ${Math.round(w.forwardedPerSecond)} | ${expected ? ((w.received / expected) * 100).toFixed(1) : '-'} % | ${loadavg()[0]!.toFixed(1)} |`,
  );
  for (const m of members) m.close();
  await sleep(2000);
}
server.kill('SIGTERM');
process.exit(0);
