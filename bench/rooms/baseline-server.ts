// The benchmark's baseline: a bare `ws` broadcast server. Every text frame a client sends is
// relayed at once to every connected client (serialised once, no batching, no validation, no
// storage). Runs as its own process so its sockets do not count against the bench's file limit.
// Prints `{"port":N}` on stdout when listening; answers clock pings like a room would.
import { WebSocketServer, type WebSocket } from 'ws';

const wss = new WebSocketServer({ host: '127.0.0.1', port: 0, perMessageDeflate: false, maxPayload: 4096 });
wss.on('connection', (ws: WebSocket) => {
  ws.on('message', (data, isBinary) => {
    if (isBinary) return;
    const text = data.toString();
    if (text.startsWith('{"type":"ping"')) {
      const t1 = Date.now();
      const t0 = (JSON.parse(text) as { t0: number }).t0;
      ws.send(JSON.stringify({ type: 'pong', t0, t1, t2: Date.now() }));
      return;
    }
    for (const c of wss.clients) if (c.readyState === 1) c.send(text);
  });
});
wss.on('listening', () => {
  const addr = wss.address();
  process.stdout.write(JSON.stringify({ port: addr && typeof addr === 'object' ? addr.port : 0 }) + '\n');
});
process.on('SIGTERM', () => {
  for (const c of wss.clients) c.terminate();
  wss.close(() => process.exit(0));
});
