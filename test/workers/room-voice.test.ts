// Party voice through the Room inside workerd: seats in the room state, signalling relayed from
// one seat to another (and nowhere else) on the Room's own sockets and across shards, in order,
// moderation in voice, seats given up with the connection and kept through the Room's eviction.
import { env, exports } from 'cloudflare:workers';
import { evictDurableObject } from 'cloudflare:test';
import { describe, expect, it } from 'vitest';
import type { ServerMessageOf } from '../../core/rooms/room-protocol.ts';
import { join, roomName, sleep, token, type Viewer } from './room-harness.ts';

const offer = (to: string, sdp: string) => ({ type: 'voice.signal', to, signal: { type: 'offer', sdp } });
const candidates = (to: string, n: number) => ({
  type: 'voice.signal',
  to,
  signal: {
    type: 'candidates',
    candidates: [{ candidate: `candidate:${n} 1 udp 2122260223 127.0.0.1 ${50000 + n} typ host`, sdpMid: '0', sdpMLineIndex: 0 }],
  },
});

async function joinVoice(v: Viewer, rid = 'vj'): Promise<void> {
  v.send({ type: 'voice.join', rid });
  await v.next('ack', (m) => m.rid === rid);
}

function signals(v: Viewer): Array<ServerMessageOf<'voice.signal'>> {
  return v.frames.filter((f): f is ServerMessageOf<'voice.signal'> => f.type === 'voice.signal');
}

describe('voice in a small room', () => {
  it('shows seats in the room state and relays signalling between two seats only', async () => {
    const room = roomName('voice');
    const [ada, bob, cy] = [await join(room, { name: 'Ada' }), await join(room, { name: 'Bob' }), await join(room, { name: 'Cy' })] as [
      Viewer,
      Viewer,
      Viewer,
    ];
    await joinVoice(ada);
    await joinVoice(bob);
    const seated = await cy.event('voice', (e) => e.member.name === 'Bob');
    expect(seated.member).toEqual({
      conn: bob.welcome.you.conn,
      uid: bob.welcome.you.uid,
      name: 'Bob',
      role: 'viewer',
      muted: false,
      forced: false,
      speaking: false,
      camera: false,
    });
    // A late joiner gets the seats in its snapshot.
    const late = await join(room, { name: 'Late' });
    expect(late.welcome.state!.voice).toEqual({
      mode: 'mesh',
      members: [expect.objectContaining({ name: 'Ada' }), expect.objectContaining({ name: 'Bob' })],
    });

    ada.send(offer(bob.welcome.you.conn, 'v=0 offer from ada'));
    const got = await bob.next('voice.signal');
    expect(got).toEqual({
      type: 'voice.signal',
      from: ada.welcome.you.conn,
      uid: ada.welcome.you.uid,
      signal: { type: 'offer', sdp: 'v=0 offer from ada' },
    });
    bob.send({ type: 'voice.signal', rid: 'ans', to: got.from, signal: { type: 'answer', sdp: 'v=0 answer' } });
    await bob.next('ack', (m) => m.rid === 'ans');
    expect((await ada.next('voice.signal')).signal).toEqual({ type: 'answer', sdp: 'v=0 answer' });

    // Cy holds no seat: Cy reaches nobody, and nobody reaches Cy.
    cy.send({ ...offer(ada.welcome.you.conn, 'v=0 sneaky'), rid: 'c1' });
    expect(await cy.next('error', (m) => m.rid === 'c1')).toMatchObject({ code: 'not_in_voice' });
    ada.send({ ...offer(cy.welcome.you.conn, 'v=0 to cy'), rid: 'a1' });
    expect(await ada.next('error', (m) => m.rid === 'a1')).toMatchObject({ code: 'not_in_voice' });
    ada.send({ ...offer('made-up-conn', 'v=0'), rid: 'a2' });
    expect(await ada.next('error', (m) => m.rid === 'a2')).toMatchObject({ code: 'not_in_voice' });
    await sleep(100);
    expect(signals(cy)).toEqual([]);
    expect(signals(ada).map((s) => s.signal.type)).toEqual(['answer']);
    expect(signals(bob).map((s) => s.signal.type)).toEqual(['offer']);
    for (const v of [ada, bob, cy, late]) v.close();
  });

  it('takes an offer longer than other frames may be, but refuses an oversized one', async () => {
    const room = roomName('voice');
    const [ada, bob] = [await join(room, { name: 'Ada' }), await join(room, { name: 'Bob' })] as [Viewer, Viewer];
    await joinVoice(ada);
    await joinVoice(bob);
    const sdp = 'a=candidate-like line of an offer\r\n'.repeat(200); // ~7 KB, a camera offer's size
    ada.send(offer(bob.welcome.you.conn, sdp));
    expect((await bob.next('voice.signal')).signal).toEqual({ type: 'offer', sdp });
    ada.send({ ...offer(bob.welcome.you.conn, 'x'.repeat(13_000)), rid: 'big' });
    expect(await ada.next('error', (m) => m.rid === 'big')).toMatchObject({ code: 'invalid_message' });
    for (const v of [ada, bob]) v.close();
  });

  it('lets a moderator mute a member in voice and remove them; a closed connection gives its seat up', async () => {
    const room = roomName('voice');
    const mod = await join(room, { token: await token(room, 'Mo', 'moderator') });
    const [ada, bob] = [await join(room, { name: 'Ada' }), await join(room, { name: 'Bob' })] as [Viewer, Viewer];
    await joinVoice(ada);
    await joinVoice(bob);
    mod.send({ type: 'voice.mute', rid: 'm', uid: ada.welcome.you.uid });
    await mod.next('ack', (m) => m.rid === 'm');
    expect((await bob.event('voice', (e) => e.member.name === 'Ada' && e.member.forced)).member).toMatchObject({
      muted: true,
      forced: true,
    });
    ada.send({ type: 'voice.update', rid: 'u', muted: false });
    expect(await ada.next('error', (m) => m.rid === 'u')).toMatchObject({ code: 'muted' });
    // The mute outlives the seat: leaving and joining again keeps Ada muted.
    ada.send({ type: 'voice.leave', rid: 'l' });
    await ada.next('ack', (m) => m.rid === 'l');
    ada.send({ type: 'voice.join', rid: 'j2' });
    await ada.next('ack', (m) => m.rid === 'j2');
    expect(
      (await bob.event('voice', (e) => e.member.name === 'Ada' && e.member.conn === ada.welcome.you.conn && e.member.forced)).member.muted,
    ).toBe(true);

    mod.send({ type: 'voice.remove', rid: 'r', uid: bob.welcome.you.uid });
    await mod.next('ack', (m) => m.rid === 'r');
    expect((await ada.event('voice.left', (e) => e.conn === bob.welcome.you.conn)).conn).toBe(bob.welcome.you.conn);
    bob.send({ ...offer(ada.welcome.you.conn, 'v=0'), rid: 'after' });
    expect(await bob.next('error', (m) => m.rid === 'after')).toMatchObject({ code: 'not_in_voice' });

    const from = mod.frames.length;
    ada.close();
    await mod.next('batch', (b) => b.events.some((e) => e.kind === 'voice.left' && e.conn === ada.welcome.you.conn), 3000, from);
    expect((await join(room, { name: 'Late' })).welcome.state!.voice.members).toEqual([]);
    for (const v of [mod, bob]) v.close();
  });

  it('keeps the seats through the Room’s eviction (hibernation)', async () => {
    const room = roomName('voice');
    const [ada, bob] = [await join(room, { name: 'Ada' }), await join(room, { name: 'Bob' })] as [Viewer, Viewer];
    await joinVoice(ada);
    await joinVoice(bob);
    await evictDurableObject(env.ROOM.getByName(room), { webSockets: 'hibernate' });
    ada.send(offer(bob.welcome.you.conn, 'v=0 after a wake'));
    expect((await bob.next('voice.signal')).signal).toEqual({ type: 'offer', sdp: 'v=0 after a wake' });
    const late = await join(room, { name: 'Late' });
    expect(late.welcome.state!.voice.members.map((m) => m.name)).toEqual(['Ada', 'Bob']);
    for (const v of [ada, bob, late]) v.close();
  });
});

describe('voice across shards', () => {
  it('relays signalling between the Room’s sockets and shards’, in the order it was sent', async () => {
    const room = roomName('vbig');
    await env.ROOM.getByName(room).configure(room, { directCapacity: 1, shardCapacity: 2 });
    const names = ['Ada', 'Bob', 'Cy', 'Dee'];
    const vs: Viewer[] = [];
    for (const name of names) vs.push(await join(room, { name }));
    const [ada, bob, cy, dee] = vs as [Viewer, Viewer, Viewer, Viewer];
    expect(await env.ROOM.getByName(room).info()).toMatchObject({
      direct: 1,
      shards: [
        { index: 0, connections: 2 },
        { index: 1, connections: 1 },
      ],
    });
    for (const v of [ada, bob, dee]) await joinVoice(v);
    // Room → shard 1, shard 0 → Room, shard 1 → shard 0: an offer then its candidates, in order.
    const pairs: Array<[Viewer, Viewer]> = [
      [ada, dee],
      [bob, ada],
      [dee, bob],
    ];
    for (const [from, to] of pairs) {
      from.send(offer(to.welcome.you.conn, `v=0 from ${from.welcome.you.name}`));
      for (let i = 0; i < 5; i++) from.send(candidates(to.welcome.you.conn, i));
    }
    for (const [from, to] of pairs) {
      const deadline = Date.now() + 3000;
      const mine = () => signals(to).filter((s) => s.from === from.welcome.you.conn);
      while (mine().length < 6 && Date.now() < deadline) await sleep(20);
      expect(mine().map((s) => (s.signal.type === 'candidates' ? s.signal.candidates[0]!.candidate.split(' ')[0] : s.signal.type))).toEqual(
        ['offer', 'candidate:0', 'candidate:1', 'candidate:2', 'candidate:3', 'candidate:4'],
      );
    }
    // Cy (shard 0) holds no seat and got nothing.
    expect(signals(cy)).toEqual([]);
    cy.send({ ...offer(ada.welcome.you.conn, 'v=0'), rid: 'c' });
    expect(await cy.next('error', (m) => m.rid === 'c')).toMatchObject({ code: 'not_in_voice' });
    for (const v of vs) v.close();
  });
});

describe('ICE servers', () => {
  const ice = (room: string, init: { headers?: Record<string, string>; query?: string } = {}) =>
    exports.default.fetch(`http://edge.test/rooms/${room}/ice-servers${init.query ?? ''}`, {
      headers: { 'cf-connecting-ip': '192.0.2.50', ...init.headers },
    });

  it('gives members STUN (and TURN when configured), and nobody else anything', async () => {
    const room = roomName('ice');
    const none = await ice(room);
    expect(none.status).toBe(401);
    expect(await none.json()).toEqual({ error: { code: 'unauthorized', message: expect.any(String) } });
    expect((await ice(room, { headers: { authorization: `Bearer ${await token('another', 'Mo', 'host')}` } })).status).toBe(401);
    expect((await ice(room, { headers: { cookie: `edgelive_anon=${'A'.repeat(16)}.${'B'.repeat(22)}` } })).status).toBe(401);

    const byToken = await ice(room, { headers: { authorization: `Bearer ${await token(room, 'Mo', 'moderator')}` } });
    expect(byToken.status).toBe(200);
    expect(byToken.headers.get('cache-control')).toBe('no-store');
    expect(await byToken.json()).toEqual({ iceServers: [{ urls: ['stun:stun.cloudflare.com:3478'] }] });
    const a = await join(room, { name: 'Ada' });
    expect((await ice(room, { headers: { cookie: a.cookie! } })).status).toBe(200);
    expect((await ice(room, { query: `?session=${encodeURIComponent(a.welcome.session!)}` })).status).toBe(200);
    a.close();
  });

  it('counts requests per address: 429 after 60 a minute', { timeout: 30_000 }, async () => {
    const room = roomName('ice');
    const auth = { authorization: `Bearer ${await token(room, 'Mo', 'viewer')}`, 'cf-connecting-ip': '192.0.2.51' };
    const into = Date.now() % 60_000;
    if (into > 50_000) await sleep(60_000 - into + 50);
    const statuses: number[] = [];
    for (let i = 0; i < 61; i++) statuses.push((await ice(room, { headers: auth })).status);
    expect(statuses.slice(0, 60).every((st) => st === 200)).toBe(true);
    expect(statuses[60]).toBe(429);
  });
});
