// WebSocket answers shared by the Worker's room routes and the room objects: the 101 around an
// accepted socket, a close that never throws, and the in-band refusal of an upgrade. Runtime
// helpers only: no binding, no storage (a Durable Object may import this module).
import { errorFrame, type ErrorCode } from '../core/rooms/room-protocol.ts';

/** Closes without throwing; the reason is cut to the 123-byte limit. */
export function closeQuietly(ws: WebSocket, code: number, reason: string): void {
  try {
    ws.close(code, reason.slice(0, 120));
  } catch {
    /* already closed */
  }
}

/** Builds the 101 answer around a freshly accepted socket pair. */
export function upgradeResponse(client: WebSocket): Response {
  return new Response(null, { status: 101, webSocket: client });
}

/**
 * Refuses a WebSocket with an in-band error. Browsers hide the HTTP status of a failed upgrade
 * (the page only sees close code 1006), so the refusal is delivered as a socket that sends one
 * error frame and closes with a 44xx code the client recognises as final.
 */
export function refuseUpgrade(code: ErrorCode, reason: string, closeCode: number): Response {
  const pair = new WebSocketPair();
  const client = pair[0];
  const server = pair[1];
  server.accept();
  server.send(errorFrame(code, reason));
  closeQuietly(server, closeCode, code);
  return upgradeResponse(client);
}
