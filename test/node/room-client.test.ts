// The browser client against a scripted socket: state from welcome, batches in order, merged
// frames, gaps answered by a resync, requests settled by ack/error, clock samples, reconnect with
// resume and session, and no reconnect after a final close.
import { afterEach, describe, expect, it, vi } from 'vitest';
import { RoomClient, RoomError, type WebSocketLike } from '../../public/src/rooms-client.ts';
import { emptySnapshot, mergeBatches } from '../../core/rooms/room-state.ts';

class FakeSocket implements WebSocketLike {
  static all: FakeSocket[] = [];
  readyState = 0;
  onopen: ((ev: unknown) => void) | null = null;
  onmessage: ((ev: { data: unknown }) => void) | null = null;
  onclose: ((ev: { code: number; reason: string }) => void) | null = null;
  onerror: ((ev: unknown) => void) | null = null;
  sent: Array<Record<string, unknown>> = [];
  readonly url: string;
  constructor(url: string) {
    this.url = url;
    FakeSocket.all.push(this);
  }
  send(data: string): void {
    this.sent.push(JSON.parse(data) as Record<string, unknown>);
  }
  close(): void {
    this.readyState = 3;
  }
  // --- test side ---
  open(): void {
    this.readyState = 1;
    this.onopen?.({});
  }
  push(msg: unknown): void {
    this.onmessage?.({ data: JSON.stringify(msg) });
  }
  drop(code: number, reason = ''): void {
    this.readyState = 3;
    this.onclose?.({ code, reason });
  }
}

const chat = (id: number, text = `m${id}`) => ({ kind: 'chat', message: { id, uid: 'a:x', name: 'A', role: 'viewer', text, ts: id } });
const welcome = (seq = 5, extra: Record<string, unknown> = {}) => ({
  type: 'welcome',
  v: 1,
  room: 'r',
  you: { uid: 'a:me', name: 'Me', role: 'viewer', conn: 'c1' },
  session: 'sess',
  epoch: 'E1',
  seq,
  resumed: false,
  state: emptySnapshot(),
  serverTime: Date.now(),
  ...extra,
});

const made: RoomClient[] = [];

function makeClient(): { client: RoomClient; ws: () => FakeSocket } {
  FakeSocket.all = [];
  const client = new RoomClient({
    origin: 'https://live.example',
    room: 'r',
    name: 'Me',
    WebSocket: FakeSocket,
    reconnect: { minMs: 10, maxMs: 20 },
    clock: { burst: 0, intervalMs: 0 },
  });
  made.push(client);
  return { client, ws: () => FakeSocket.all.at(-1)! };
}

afterEach(() => {
  for (const c of made.splice(0)) c.close(); // no reconnect timer may outlive its test
  vi.useRealTimers();
});

describe('rooms client', () => {
  it('connects with the protocol version and name, and takes its state from welcome', async () => {
    const { client, ws } = makeClient();
    const p = client.connect();
    expect(ws().url).toBe('wss://live.example/rooms/r/ws?v=1&name=Me');
    ws().open();
    ws().push(welcome());
    await p;
    expect(client.you?.uid).toBe('a:me');
    expect(client.state).toEqual(emptySnapshot());
  });

  it('applies batches in order, including merged ones, and ignores repeats', async () => {
    const { client, ws } = makeClient();
    const p = client.connect();
    ws().open();
    ws().push(welcome(5));
    await p;
    const seen: string[] = [];
    client.on('chat', (m) => seen.push(m.text));
    ws().push({ type: 'batch', epoch: 'E1', seq: 6, t: 1, events: [chat(1)] });
    ws().push(
      JSON.parse(
        mergeBatches([
          { epoch: 'E1', seq: 7, t: 2, events: [chat(2) as never] },
          { epoch: 'E1', seq: 8, t: 3, events: [chat(3) as never] },
        ]),
      ),
    );
    ws().push({ type: 'batch', epoch: 'E1', seq: 8, t: 3, events: [chat(3)] });
    expect(seen).toEqual(['m1', 'm2', 'm3']);
    expect(client.state!.history.map((m) => m.id)).toEqual([1, 2, 3]);
  });

  it('answers a gap with one resync and waits for the state', async () => {
    const { client, ws } = makeClient();
    const p = client.connect();
    ws().open();
    ws().push(welcome(5));
    await p;
    ws().push({ type: 'batch', epoch: 'E1', seq: 7, t: 1, events: [chat(9)] });
    ws().push({ type: 'batch', epoch: 'E1', seq: 8, t: 1, events: [chat(10)] });
    expect(ws().sent.filter((m) => m.type === 'resync')).toHaveLength(1);
    ws().push({ type: 'state', epoch: 'E1', seq: 8, state: { ...emptySnapshot(), history: [chat(9).message, chat(10).message] } });
    ws().push({ type: 'batch', epoch: 'E1', seq: 9, t: 1, events: [chat(11)] });
    expect(client.state!.history.map((m) => m.id)).toEqual([9, 10, 11]);
  });

  it('settles requests by ack or error, and fails them when the connection drops', async () => {
    const { client, ws } = makeClient();
    const p = client.connect();
    ws().open();
    ws().push(welcome());
    await p;
    const sent = client.chat('hi', { pdt: 1_767_225_600_000.4 });
    const req = ws().sent.at(-1)!;
    expect(req).toMatchObject({ type: 'chat', text: 'hi', pdt: 1_767_225_600_000 });
    ws().push({ type: 'ack', rid: req.rid, id: 42 });
    expect(await sent).toBe(42);
    const refused = client.openPoll('q', ['a', 'b']);
    ws().push({ type: 'error', rid: ws().sent.at(-1)!.rid, code: 'forbidden', reason: 'no' });
    await expect(refused).rejects.toMatchObject({ code: 'forbidden' });
    const lost = client.vote(1, 0);
    ws().drop(1006);
    await expect(lost).rejects.toBeInstanceOf(RoomError);
  });

  it('turns pongs into a clock estimate and roomNow()', async () => {
    let local = 1_000_000;
    FakeSocket.all = [];
    const client = new RoomClient({
      origin: 'http://x',
      room: 'r',
      name: 'Me',
      WebSocket: FakeSocket,
      now: () => local,
      clock: { burst: 0, intervalMs: 0 },
    });
    made.push(client);
    const p = client.connect();
    FakeSocket.all[0]!.open();
    FakeSocket.all[0]!.push(welcome());
    await p;
    // Server is 5,000 ms ahead; 20 ms each way.
    for (let i = 0; i < 4; i++) {
      client.ping();
      const t0 = FakeSocket.all[0]!.sent.at(-1)!.t0 as number;
      local += 40;
      FakeSocket.all[0]!.push({ type: 'pong', t0, t1: t0 + 5020, t2: t0 + 5020 });
      local += 100;
    }
    expect(client.clockOffset()).toBeCloseTo(5000, -1);
    expect(client.roomNow() - local).toBeCloseTo(5000, -1);
  });

  it('reconnects after a drop, presenting its session and what it has, and resumes', async () => {
    vi.useFakeTimers();
    const { client, ws } = makeClient();
    const p = client.connect();
    ws().open();
    ws().push(welcome(5));
    await p;
    ws().push({ type: 'batch', epoch: 'E1', seq: 6, t: 1, events: [chat(1)] });
    ws().drop(1006);
    await vi.advanceTimersByTimeAsync(50);
    expect(FakeSocket.all).toHaveLength(2);
    expect(ws().url).toBe('wss://live.example/rooms/r/ws?v=1&name=Me&session=sess&resume=E1.6');
    ws().open();
    ws().push(welcome(6, { resumed: true, state: undefined }));
    ws().push({ type: 'batch', epoch: 'E1', seq: 7, t: 1, events: [chat(2)] });
    expect(client.state!.history.map((m) => m.id)).toEqual([1, 2]);
  });

  it('does not reconnect after a final close (banned, unauthorized)', async () => {
    vi.useFakeTimers();
    const { client, ws } = makeClient();
    const closes: Array<{ code: number; willReconnect: boolean }> = [];
    client.on('close', (e) => closes.push(e));
    const p = client.connect();
    ws().open();
    ws().push(welcome());
    await p;
    ws().drop(4403, 'banned');
    await vi.advanceTimersByTimeAsync(1000);
    expect(FakeSocket.all).toHaveLength(1);
    expect(closes).toEqual([{ code: 4403, reason: 'banned', willReconnect: false }]);
  });
});
