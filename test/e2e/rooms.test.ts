// Rooms over real WebSockets against the local stack (wrangler's test harness running workerd):
// several browser clients (rooms-client.ts on Node's global WebSocket) in a small room and in a
// sharded one, reconnect and resume, the shared clock, and a flood that must not slow others.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import WsWebSocket from 'ws';
import { RoomClient, RoomError, type ChatMessage, type WebSocketFactory } from '../../public/src/rooms-client.ts';
import { configureRoom, mintToken, startRoomStack, type RoomStack } from '../../bench/rooms/stack.ts';
import { CLOSE } from '../../core/rooms/room-protocol.ts';

let stack: RoomStack;
const clients: RoomClient[] = [];

beforeAll(async () => {
  stack = await startRoomStack();
});

afterAll(async () => {
  for (const c of clients) c.close();
  await stack?.close();
});

function client(room: string, opts: { name?: string; token?: string; WebSocket?: WebSocketFactory } = {}): RoomClient {
  const c = new RoomClient({ origin: stack.origin, room, reconnect: { minMs: 50, maxMs: 500 }, ...opts });
  clients.push(c);
  return c;
}

async function until(cond: () => boolean, timeoutMs = 5000, what = 'condition'): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!cond()) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 10));
  }
}

function chatLog(c: RoomClient): ChatMessage[] {
  const log: ChatMessage[] = [];
  c.on('chat', (m) => log.push(m));
  return log;
}

describe('a small room over real WebSockets', () => {
  it('gives every client the same chat in the same order, with presence names', async () => {
    const room = `e2e-small-${Date.now()}`;
    const cs = ['Ada', 'Bob', 'Cy'].map((name) => client(room, { name }));
    const logs = cs.map(chatLog);
    await Promise.all(cs.map((c) => c.connect()));
    await until(() => cs.every((c) => c.state?.presence.count === 3), 5000, 'presence 3');
    expect(cs[0]!.state!.presence.members!.map((m) => m.name)).toEqual(['Ada', 'Bob', 'Cy']);
    const ids = await Promise.all(cs.map((c, i) => c.chat(`hello from ${i}`)));
    expect(new Set(ids).size).toBe(3);
    await until(() => logs.every((l) => l.length === 3), 5000, 'three messages each');
    const order = logs[0]!.map((m) => m.id);
    for (const l of logs) expect(l.map((m) => m.id)).toEqual(order);
    expect(cs[2]!.state!.history.map((m) => m.id)).toEqual(order);
  });

  it('runs a poll and a watch party that followers can compute from roomNow()', async () => {
    const room = `e2e-party-${Date.now()}`;
    const host = client(room, { token: await mintToken(stack, room, 'Hana', 'host') });
    const viewer = client(room, { name: 'Ada' });
    await Promise.all([host.connect(), viewer.connect()]);
    const pollId = await host.openPoll('Pizza?', ['yes', 'no']);
    await until(() => viewer.state?.polls.some((p) => p.id === pollId) ?? false);
    await viewer.vote(pollId, 0);
    await host.vote(pollId, 0);
    await until(() => viewer.state!.polls.find((p) => p.id === pollId)!.counts[0] === 2);
    await expect(viewer.openPoll('mine', ['a', 'b'])).rejects.toMatchObject({ code: 'forbidden' });

    await until(() => (host.clockEstimate()?.samples ?? 0) >= 4 && (viewer.clockEstimate()?.samples ?? 0) >= 4, 5000, 'clock samples');
    await host.setPlayback({ playing: true, position: 30, rate: 1 });
    await until(() => viewer.state?.playback?.playing === true);
    // Both machines share a clock here, so both estimates of the room clock agree closely, and
    // the follower's computed position matches the host's.
    expect(Math.abs(viewer.clockOffset())).toBeLessThan(5);
    expect(Math.abs(viewer.playbackPosition()! - host.playbackPosition()!)).toBeLessThan(0.01);
    await new Promise((r) => setTimeout(r, 300));
    expect(viewer.playbackPosition()!).toBeGreaterThan(30.25);
  });

  it('reconnects after a dropped connection and resumes with only the missed batches', async () => {
    const room = `e2e-resume-${Date.now()}`;
    // The `ws` package stands in for a browser socket we can cut from outside the client.
    const sockets: WsWebSocket[] = [];
    class Tracked extends WsWebSocket {
      constructor(url: string) {
        super(url);
        sockets.push(this);
      }
    }
    const a = client(room, { name: 'Ada' });
    const b = client(room, { name: 'Bob', WebSocket: Tracked as unknown as WebSocketFactory });
    const bLog = chatLog(b);
    const opens: boolean[] = [];
    b.on('open', (e) => opens.push(e.resumed));
    await Promise.all([a.connect(), b.connect()]);
    await a.chat('before');
    await until(() => bLog.length === 1);
    const uid = b.you!.uid;
    sockets[0]!.close(4000, 'network drop'); // not final: the client reconnects
    await until(() => !b.connected, 2000, 'drop');
    await a.chat('while away');
    await until(() => b.connected, 5000, 'reconnect');
    await until(() => bLog.length === 2, 5000, 'missed message');
    expect(bLog.map((m) => m.text)).toEqual(['before', 'while away']);
    expect(opens).toEqual([false, true]);
    expect(b.you!.uid).toBe(uid); // the signed session kept the anonymous id
  });

  it('does not reconnect after a final refusal (a closed room)', async () => {
    const room = `e2e-closed-${Date.now()}`;
    await configureRoom(stack, room, { anonymous: false });
    const c = client(room, { name: 'Ada' });
    const closes: Array<{ code: number; willReconnect: boolean }> = [];
    c.on('close', (e) => closes.push(e));
    await expect(c.connect()).rejects.toThrow(/4401/);
    expect(closes).toEqual([expect.objectContaining({ code: CLOSE.unauthorized, willReconnect: false })]);
  });

  it('keeps others’ delivery fast while one client floods, then disconnects the flooder', async () => {
    const room = `e2e-flood-${Date.now()}`;
    const calm = client(room, { name: 'Calm' });
    const watcher = client(room, { name: 'Watch' });
    const wLog = chatLog(watcher);
    await Promise.all([calm.connect(), watcher.connect()]);
    const flood = new WsWebSocket(`${stack.origin.replace('http', 'ws')}/rooms/${room}/ws?name=Flood`);
    await new Promise((r) => flood.once('open', r));
    const closed = new Promise<number>((r) => flood.once('close', (code) => r(code)));
    const junk = JSON.stringify({ type: 'chat', text: 'x'.repeat(3000) });
    for (let i = 0; i < 2000; i++) flood.send(junk);
    const t0 = Date.now();
    await calm.chat('still fine');
    await until(() => wLog.some((m) => m.text === 'still fine'), 5000, 'calm message');
    expect(Date.now() - t0).toBeLessThan(1000);
    expect(await closed).toBe(CLOSE.policy);
  });
});

describe('a sharded room over real WebSockets', () => {
  it('behaves as one room across the Room and three shards', async () => {
    const room = `e2e-sharded-${Date.now()}`;
    await configureRoom(stack, room, { directCapacity: 2, shardCapacity: 3 });
    const cs = Array.from({ length: 11 }, (_, i) => client(room, { name: `V${String(i).padStart(2, '0')}` }));
    const logs = cs.map(chatLog);
    const reactions = cs.map(() => 0);
    cs.forEach((c, i) => c.on('reactions', (r) => (reactions[i]! += r.like ?? 0)));
    for (const c of cs) await c.connect();
    const info = (await (await fetch(`${stack.origin}/rooms/${room}`)).json()) as {
      direct: number;
      shards: Array<{ connections: number }>;
    };
    expect(info.direct).toBe(2);
    expect(info.shards.map((s) => s.connections)).toEqual([3, 3, 3]);
    await until(() => cs.every((c) => c.state?.presence.count === 11), 5000, 'presence 11');

    await Promise.all(cs.map((c, i) => c.chat(`m${i}`)));
    for (const c of cs) c.react('like');
    await until(() => logs.every((l) => l.length === 11), 5000, 'all chat everywhere');
    const order = logs[0]!.map((m) => m.id);
    for (const l of logs) expect(l.map((m) => m.id)).toEqual(order);
    await until(() => reactions.every((n) => n === 11), 5000, 'reaction totals');

    // A ban reaches a viewer on a shard; the banned client does not come back.
    const mod = client(room, { token: await mintToken(stack, room, 'Mo', 'moderator') });
    await mod.connect();
    const target = cs[9]!;
    const closes: number[] = [];
    target.on('close', (e) => closes.push(e.code));
    await mod.ban(target.you!.uid);
    await until(() => closes.length === 1, 5000, 'ban');
    expect(closes).toEqual([CLOSE.forbidden]);
    await until(() => cs[0]!.state!.presence.count === 11, 5000, 'presence after ban'); // 10 + the moderator
    await expect(target.chat('am I here?')).rejects.toBeInstanceOf(RoomError);
  });
});
