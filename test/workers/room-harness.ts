// Helpers for room tests inside workerd: open a viewer socket through the Worker and read its
// frames as typed, schema-checked server messages.
import { exports } from 'cloudflare:workers';
import { ServerMessage, type ServerMessageOf } from '../../core/rooms/room-protocol.ts';
import { signRoomToken, type RoomTokenClaims } from '../../core/auth/room-token.ts';

export const SECRET = 'test-room-secret';

export function roomName(prefix = 'r'): string {
  return `${prefix}-${crypto.randomUUID().slice(0, 8)}`;
}

export async function token(room: string, name: string, role: RoomTokenClaims['role'], ttlSec = 3600): Promise<string> {
  return signRoomToken({ room, name, role, exp: Math.floor(Date.now() / 1000) + ttlSec }, SECRET);
}

export class Viewer {
  readonly ws: WebSocket;
  readonly frames: ServerMessage[] = [];
  closeCode: number | null = null;
  /** The `name=value` of the anonymous identity cookie the upgrade answer set, if any. */
  cookie: string | null = null;
  private waiters: Array<() => void> = [];

  constructor(ws: WebSocket) {
    this.ws = ws;
    ws.addEventListener('message', (ev) => {
      const text = typeof ev.data === 'string' ? ev.data : '';
      // Every frame a room sends must match the protocol's schema.
      this.frames.push(ServerMessage.parse(JSON.parse(text)));
      this.wake();
    });
    ws.addEventListener('close', (ev) => {
      this.closeCode = ev.code;
      this.wake();
    });
  }

  private wake(): void {
    for (const w of this.waiters.splice(0)) w();
  }

  send(msg: unknown): void {
    this.ws.send(typeof msg === 'string' ? msg : JSON.stringify(msg));
  }

  /** Waits for the first frame (after index `from`) that matches. */
  async next<T extends ServerMessage['type']>(
    type: T,
    pred: (m: ServerMessageOf<T>) => boolean = () => true,
    timeoutMs = 3000,
    from = 0,
  ): Promise<ServerMessageOf<T>> {
    const deadline = Date.now() + timeoutMs;
    for (;;) {
      const hit = this.frames.slice(from).find((m) => m.type === type && pred(m as ServerMessageOf<T>));
      if (hit) return hit as ServerMessageOf<T>;
      const left = deadline - Date.now();
      if (left <= 0) throw new Error(`timed out waiting for ${type}; got ${JSON.stringify(this.frames.map((f) => f.type))}`);
      await new Promise<void>((r) => {
        const t = setTimeout(r, left);
        this.waiters.push(() => {
          clearTimeout(t);
          r();
        });
      });
    }
  }

  /** Waits for a batch event of `kind` matching `pred`. */
  async event<K extends string>(kind: K, pred: (ev: any) => boolean = () => true, timeoutMs = 3000): Promise<any> {
    const b = await this.next('batch', (m) => m.events.some((e) => e.kind === kind && pred(e)), timeoutMs);
    return b.events.find((e) => e.kind === kind && pred(e));
  }

  async closed(timeoutMs = 3000): Promise<number> {
    const deadline = Date.now() + timeoutMs;
    while (this.closeCode === null) {
      if (Date.now() > deadline) throw new Error('socket did not close');
      await new Promise((r) => setTimeout(r, 20));
    }
    return this.closeCode;
  }

  get welcome(): ServerMessageOf<'welcome'> {
    const w = this.frames.find((f) => f.type === 'welcome');
    if (!w) throw new Error('no welcome');
    return w as ServerMessageOf<'welcome'>;
  }

  close(): void {
    try {
      this.ws.close(1000, 'done');
    } catch {
      /* closed */
    }
  }
}

/**
 * Opens a socket to the room through the Worker; resolves once the first frame arrived. `headers`
 * adds request headers (`cookie`, `cf-connecting-ip`: the client's address, 192.0.2.1 unless given).
 */
export async function join(room: string, q: Record<string, string>, headers: Record<string, string> = {}): Promise<Viewer> {
  const res = await exports.default.fetch(`http://edge.test/rooms/${room}/ws?${new URLSearchParams(q)}`, {
    headers: { Upgrade: 'websocket', 'cf-connecting-ip': '192.0.2.1', ...headers },
  });
  if (res.status !== 101 || !res.webSocket) throw new Error(`upgrade failed: ${res.status} ${await res.text()}`);
  const ws = res.webSocket;
  const v = new Viewer(ws);
  v.cookie = res.headers.get('set-cookie')?.split(';')[0] ?? null;
  ws.accept();
  const deadline = Date.now() + 3000;
  while (v.frames.length === 0 && v.closeCode === null) {
    if (Date.now() > deadline) throw new Error('no first frame');
    await new Promise((r) => setTimeout(r, 5));
  }
  return v;
}

export const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));
