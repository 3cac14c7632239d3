// One candidate stack in its own process, for `bench:realtime`: HTTP signalling (WHIP publish from
// a page it serves, WHEP-style viewers), a forwarding source on loopback UDP, and its own CPU and
// memory on /usage. Started fresh for every measurement: `node stack-server.ts STACK PORT`.
import { createSocket } from 'node:dgram';
import { createServer, type IncomingMessage, type ServerResponse } from 'node:http';
import type { BenchStack, IngestHandle } from './stacks/types.ts';

const [stackName, portArg] = process.argv.slice(2);
const factories: Record<string, () => Promise<BenchStack>> = {
  'node-datachannel': async () => (await import('./stacks/node-datachannel.ts')).createStack(),
  werift: async () => (await import('./stacks/werift.ts')).createStack(),
  wrtc: async () => (await import('./stacks/wrtc.ts')).createStack(),
};
const stack = await factories[stackName!]!();
let ingest: IngestHandle | null = null;

const PUBLISH_PAGE = `<!doctype html><meta charset="utf-8"><title>publish</title><script>
window.publish = async (codec) => {
  const media = await navigator.mediaDevices.getUserMedia({ video: { width: 1280, height: 720, frameRate: 30 }, audio: true });
  const pc = new RTCPeerConnection();
  for (const track of media.getTracks()) {
    const t = pc.addTransceiver(track, { direction: 'sendonly', sendEncodings: track.kind === 'video' ? [{ maxBitrate: 2500000 }] : undefined });
    if (track.kind === 'video' && codec !== 'any') {
      const all = RTCRtpSender.getCapabilities('video').codecs;
      t.setCodecPreferences(all.filter((c) => c.mimeType === 'video/' + codec && (codec !== 'H264' || /packetization-mode=1/.test(c.sdpFmtpLine))).concat(all.filter((c) => c.mimeType === 'video/rtx')));
    }
  }
  await pc.setLocalDescription();
  await new Promise((r) => { if (pc.iceGatheringState === 'complete') r(); pc.onicegatheringstatechange = () => pc.iceGatheringState === 'complete' && r(); });
  const t0 = performance.now();
  const res = await fetch('/whip', { method: 'POST', headers: { 'content-type': 'application/sdp' }, body: pc.localDescription.sdp });
  if (res.status !== 201) throw new Error('whip ' + res.status + ' ' + await res.text());
  await pc.setRemoteDescription({ type: 'answer', sdp: await res.text() });
  await new Promise((r, j) => { pc.onconnectionstatechange = () => { if (pc.connectionState === 'connected') r(); if (pc.connectionState === 'failed') j(new Error('ICE failed')); }; });
  window.pc = pc;
  return { connectMs: performance.now() - t0 };
};
window.sent = async () => { let b = 0; (await window.pc.getStats()).forEach((s) => { if (s.type === 'outbound-rtp') b += s.bytesSent; }); return b; };
</script>`;

async function body(req: IncomingMessage): Promise<string> {
  const chunks: Buffer[] = [];
  for await (const c of req) chunks.push(c as Buffer);
  return Buffer.concat(chunks).toString('utf8');
}

function send(res: ServerResponse, status: number, value: unknown, type = 'application/json'): void {
  res.writeHead(status, { 'content-type': type });
  res.end(typeof value === 'string' ? value : JSON.stringify(value));
}

const server = createServer(async (req, res) => {
  try {
    const url = new URL(req.url ?? '/', 'http://x');
    if (req.method === 'GET' && url.pathname === '/') return send(res, 200, PUBLISH_PAGE, 'text/html');
    if (req.method === 'POST' && url.pathname === '/whip') {
      ingest = await stack.ingest(await body(req));
      return send(res, 201, ingest.answer, 'application/sdp');
    }
    if (req.method === 'GET' && url.pathname === '/ingest-stats') return send(res, 200, ingest?.stats() ?? null);
    if (req.method === 'POST' && url.pathname === '/whep') return send(res, 201, await stack.addViewer(await body(req)), 'application/sdp');
    if (req.method === 'POST' && url.pathname === '/source') {
      const clip = url.searchParams.get('clip')!;
      if (stack.startRawSource) {
        stack.startRawSource(clip);
        return send(res, 200, { raw: true });
      }
      // RTP from ffmpeg on two loopback UDP ports; each packet goes to every viewer as it arrives.
      const ports: Record<string, number> = {};
      for (const kind of ['video', 'audio'] as const) {
        const sock = createSocket('udp4');
        await new Promise<void>((r) => sock.bind(0, '127.0.0.1', r));
        sock.setRecvBufferSize(4 * 1024 * 1024);
        sock.on('message', (msg) => stack.forwardRtp!(kind, msg));
        ports[kind] = sock.address().port;
      }
      return send(res, 200, ports);
    }
    if (req.method === 'GET' && url.pathname === '/usage') {
      const cpu = process.cpuUsage();
      return send(res, 200, {
        cpuMicros: cpu.user + cpu.system,
        rss: process.memoryUsage().rss,
        viewers: stack.viewerCount(),
        at: performance.now(),
      });
    }
    send(res, 404, { error: { code: 'not_found', message: url.pathname } });
  } catch (err) {
    send(res, 500, { error: { code: 'stack_error', message: (err as Error).message } });
  }
});
server.listen(Number(portArg), '127.0.0.1', () => process.stdout.write('ready\n'));
process.on('SIGTERM', () => {
  ingest?.close();
  stack.closeViewers();
  process.exit(0);
});
