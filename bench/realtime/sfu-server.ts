// The media node's party-voice SFU alone in a process, for `bench/realtime/voice-sfu.ts`: the
// node's own WebRTC stack, SFU endpoint and signalling listener (the code the node runs), and the
// process's CPU on /usage. `node sfu-server.ts PORT SECRET`; prints "ready".
import { createServer } from 'node:http';
import { createLogger } from '../../transcoder-node/log.ts';
import { SfuEndpoint } from '../../transcoder-node/webrtc/sfu-endpoint.ts';
import { SignallingServer } from '../../transcoder-node/webrtc/signalling-server.ts';
import { WebRtcStack } from '../../transcoder-node/webrtc/stack.ts';

const [portArg, secret] = process.argv.slice(2);
const log = createLogger({ service: 'bench-sfu' });
const stack = new WebRtcStack({ bindAddress: '127.0.0.1' }, log);
const sfu = new SfuEndpoint({
  stack,
  logger: log,
  limits: { maxOfferBytes: 96 * 1024, maxPendingPerAddress: 64, maxSeats: 500, maxRoomSeats: 50 },
  secret: secret!,
  iceServers: [],
});
const signalling = new SignallingServer({ host: '127.0.0.1', port: Number(portArg), corsOrigins: [], logger: log, routes: [sfu] });
await signalling.listen();
// Usage on a port of its own, so the measurement's own requests stay off the signalling path.
const usage = createServer((_req, res) => {
  const cpu = process.cpuUsage();
  res.writeHead(200, { 'content-type': 'application/json' });
  res.end(
    JSON.stringify({
      cpuMicros: cpu.user + cpu.system,
      seats: sfu.seatCount,
      forwarded: sfu.rooms.counters.forwarded,
      at: performance.now(),
    }),
  );
});
await new Promise<void>((r) => usage.listen(Number(portArg) + 1, '127.0.0.1', r));
process.stdout.write('ready\n');
process.on('SIGTERM', () => {
  sfu.closeAll('bench over');
  stack.closeAll();
  process.exit(0);
});
