// Rooms inside workerd: joining, chat, history that survives eviction, presence, deletion,
// reactions and the watch party's playback state.
import { env } from 'cloudflare:workers';
import { evictDurableObject } from 'cloudflare:test';
import { describe, expect, it } from 'vitest';
import { ROOM_LIMITS, ROOM_PROTOCOL_VERSION } from '../../core/rooms/room-protocol.ts';
import { join, roomName, sleep, token } from './room-harness.ts';

describe('joining a room', () => {
  it('greets an anonymous viewer with who they are, a signed session and the room state', async () => {
    const room = roomName();
    const a = await join(room, { name: '  Ada\u0007 ' });
    const w = a.welcome;
    expect(w.v).toBe(ROOM_PROTOCOL_VERSION);
    expect(w.room).toBe(room);
    expect(w.you).toMatchObject({ name: 'Ada', role: 'viewer' });
    expect(w.you.uid).toMatch(/^a:/);
    expect(w.session).toMatch(/^[A-Za-z0-9_-]{16}\.[A-Za-z0-9_-]{22}$/);
    expect(w.resumed).toBe(false);
    expect(w.state).toEqual({
      history: [],
      polls: [],
      playback: null,
      presence: { count: 0, members: [] },
      slowModeSec: 0,
      anonymous: true,
      voice: { mode: 'mesh', members: [] },
    });
    a.close();
  });

  it('keeps an anonymous viewer’s id across reconnects that present the session', async () => {
    const room = roomName();
    const a = await join(room, { name: 'Ada' });
    const again = await join(room, { name: 'Ada', session: a.welcome.session! });
    expect(again.welcome.you.uid).toBe(a.welcome.you.uid);
    const forged = await join(room, { name: 'Ada', session: a.welcome.session!.slice(0, -2) + 'AA' });
    expect(forged.welcome.you.uid).not.toBe(a.welcome.you.uid);
    for (const v of [a, again, forged]) v.close();
  });

  it('broadcasts presence with names in a small room, counting a viewer with two sockets once', async () => {
    const room = roomName();
    const a = await join(room, { name: 'Ada' });
    const b = await join(room, { name: 'Bob' });
    const ev = await a.event('presence', (e) => e.presence.count === 2);
    expect(ev.presence.members.map((m: { name: string }) => m.name)).toEqual(['Ada', 'Bob']);
    const b2 = await join(room, { name: 'Bob', session: b.welcome.session! });
    b.close();
    await sleep(150);
    const last = a.frames
      .filter((f) => f.type === 'batch')
      .flatMap((f) => (f.type === 'batch' ? f.events : []))
      .filter((e) => e.kind === 'presence')
      .at(-1);
    expect(last).toMatchObject({ presence: { count: 2 } });
    b2.close();
    await a.event('presence', (e) => e.presence.count === 1);
    a.close();
  });
});

describe('chat', () => {
  it('stores a message with id, author, server time and program-date-time, acks it and broadcasts it', async () => {
    const room = roomName();
    const a = await join(room, { name: 'Ada' });
    const b = await join(room, { name: 'Bob' });
    const before = Date.now();
    a.send({ type: 'chat', rid: 'c1', text: 'hello <b>world</b>\n', pdt: 1_767_225_600_000 });
    expect(await a.next('ack', (m) => m.rid === 'c1')).toEqual({ type: 'ack', rid: 'c1', id: 1 });
    const ev = await b.event('chat');
    expect(ev.message).toMatchObject({
      id: 1,
      uid: a.welcome.you.uid,
      name: 'Ada',
      role: 'viewer',
      text: 'hello <b>world</b>',
      pdt: 1_767_225_600_000,
    });
    expect(ev.message.ts).toBeGreaterThanOrEqual(before);
    a.close();
    b.close();
  });

  it('sends the last N messages to a joining viewer, oldest first', async () => {
    const room = roomName();
    // Two sockets: each connection's own rate bucket holds a burst of 30 frames.
    const hosts = [
      await join(room, { token: await token(room, 'Hana', 'host') }),
      await join(room, { token: await token(room, 'Hana', 'host') }),
    ];
    for (let i = 1; i <= ROOM_LIMITS.historySize + 5; i++) {
      const host = hosts[i % 2]!;
      host.send({ type: 'chat', rid: `m${i}`, text: `message ${i}` });
      await host.next('ack', (m) => m.rid === `m${i}`);
    }
    await sleep(120);
    const late = await join(room, { name: 'Late' });
    const history = late.welcome.state!.history;
    expect(history).toHaveLength(ROOM_LIMITS.historySize);
    expect(history[0]!.text).toBe('message 6');
    expect(history.at(-1)!.text).toBe(`message ${ROOM_LIMITS.historySize + 5}`);
    for (const h of hosts) h.close();
    late.close();
  });

  it('keeps history through eviction: a new instance rebuilds it from SQLite', async () => {
    const room = roomName();
    const a = await join(room, { name: 'Ada' });
    for (const t of ['one', 'two', 'three']) {
      a.send({ type: 'chat', rid: t, text: t });
      await a.next('ack', (m) => m.rid === t);
    }
    await a.event('chat', (e) => e.message.text === 'three');
    await evictDurableObject(env.ROOM.getByName(room), { webSockets: 'close' });
    await a.closed();
    const b = await join(room, { name: 'Bob' });
    expect(b.welcome.state!.history.map((m) => m.text)).toEqual(['one', 'two', 'three']);
    // Ids keep growing after the restart, and the batch sequence continues where it was.
    const seqBefore = b.welcome.seq;
    expect(seqBefore).toBeGreaterThan(0);
    b.send({ type: 'chat', rid: 'four', text: 'four' });
    expect((await b.next('ack', (m) => m.rid === 'four')).id).toBe(4);
    const batch = await b.next('batch', (m) => m.events.some((e) => e.kind === 'chat'));
    expect(batch.seq).toBeGreaterThan(seqBefore);
    b.close();
  });

  it('keeps a socket and who it is through hibernation', async () => {
    const room = roomName();
    const a = await join(room, { name: 'Ada' });
    await a.event('presence');
    await evictDurableObject(env.ROOM.getByName(room), { webSockets: 'hibernate' });
    a.send({ type: 'chat', rid: 'after', text: 'still here' });
    expect((await a.next('ack', (m) => m.rid === 'after')).id).toBe(1);
    const ev = await a.event('chat');
    expect(ev.message).toMatchObject({ name: 'Ada', uid: a.welcome.you.uid, text: 'still here' });
    const info = await env.ROOM.getByName(room).info();
    expect(info.viewers).toBe(1);
    a.close();
  });

  it('lets a moderator delete a message: everyone is told and late joiners never see it', async () => {
    const room = roomName();
    const mod = await join(room, { token: await token(room, 'Mo', 'moderator') });
    const a = await join(room, { name: 'Ada' });
    a.send({ type: 'chat', rid: 'x', text: 'regrettable' });
    const id = (await a.next('ack')).id!;
    mod.send({ type: 'mod.delete', rid: 'd', messageId: id });
    await mod.next('ack', (m) => m.rid === 'd');
    expect((await a.event('chat.delete')).id).toBe(id);
    const late = await join(room, { name: 'Late' });
    expect(late.welcome.state!.history).toEqual([]);
    mod.send({ type: 'mod.delete', rid: 'd2', messageId: id });
    expect(await mod.next('error', (m) => m.rid === 'd2')).toMatchObject({ code: 'not_found' });
    for (const v of [mod, a, late]) v.close();
  });

  it('resumes a reconnecting viewer with only the batches it missed', async () => {
    const room = roomName();
    const a = await join(room, { name: 'Ada' });
    const b = await join(room, { name: 'Bob' });
    a.send({ type: 'chat', rid: '1', text: 'first' });
    const seen = await b.next('batch', (m) => m.events.some((e) => e.kind === 'chat'));
    b.close();
    a.send({ type: 'chat', rid: '2', text: 'second' });
    await a.event('chat', (e) => e.message.text === 'second');
    const back = await join(room, { name: 'Bob', session: b.welcome.session!, resume: `${seen.epoch}.${seen.seq}` });
    expect(back.welcome).toMatchObject({ resumed: true, seq: seen.seq });
    expect(back.welcome.state).toBeUndefined();
    const missed = await back.event('chat', (e) => e.message.text === 'second');
    expect(missed.message.id).toBe(2);
    const stale = await join(room, { name: 'Cy', resume: 'nosuchepoch.3' });
    expect(stale.welcome.resumed).toBe(false);
    expect(stale.welcome.state!.history.map((m) => m.text)).toEqual(['first', 'second']);
    for (const v of [a, back, stale]) v.close();
  });
});

describe('reactions', () => {
  it('are counted and broadcast as totals at most every 100 ms, never one frame per reaction', async () => {
    const room = roomName();
    const a = await join(room, { name: 'Ada' });
    const b = await join(room, { name: 'Bob' });
    await a.event('presence', (e) => e.presence.count === 2);
    const from = a.frames.length;
    for (let i = 0; i < 12; i++) (i % 2 ? a : b).send({ type: 'react', reaction: i % 3 ? 'like' : 'fire' });
    await sleep(400);
    const events = a.frames
      .slice(from)
      .flatMap((f) => (f.type === 'batch' ? f.events : []))
      .filter((e) => e.kind === 'reactions');
    const total: Record<string, number> = {};
    for (const e of events)
      if (e.kind === 'reactions') for (const [k, n] of Object.entries(e.counts)) total[k] = (total[k] ?? 0) + (n ?? 0);
    expect(total).toEqual({ like: 8, fire: 4 });
    expect(events.length).toBeLessThanOrEqual(2);
    a.send({ type: 'react', reaction: 'lol' });
    expect(await a.next('error', () => true, 3000, from)).toMatchObject({ code: 'invalid_message' });
    a.close();
    b.close();
  });
});

describe('watch-party playback', () => {
  it('takes play/pause/seek/rate from the host only, stamps it with room time and hands it to late joiners', async () => {
    const room = roomName();
    const host = await join(room, { token: await token(room, 'Hana', 'host') });
    const viewer = await join(room, { name: 'Ada' });
    viewer.send({ type: 'playback.set', rid: 'p', playing: true, position: 10, rate: 1 });
    expect(await viewer.next('error', (m) => m.rid === 'p')).toMatchObject({ code: 'forbidden' });
    const at = Date.now() - 1000;
    host.send({ type: 'playback.set', rid: 'p1', playing: true, position: 42.5, rate: 1.5, at });
    expect(await host.next('ack', (m) => m.rid === 'p1')).toMatchObject({ id: 1 });
    const ev = await viewer.event('playback');
    expect(ev.playback).toEqual({ playing: true, position: 42.5, rate: 1.5, at, by: 'Hana', version: 1 });
    // An implausible `at` (here an hour off) is replaced by the room's own clock.
    host.send({ type: 'playback.set', rid: 'p2', playing: false, position: 50, rate: 1, at: Date.now() - 3_600_000 });
    const paused = await viewer.event('playback', (e) => e.playback.version === 2);
    expect(Math.abs(paused.playback.at - Date.now())).toBeLessThan(2000);
    await sleep(60);
    const late = await join(room, { name: 'Late' });
    expect(late.welcome.state!.playback).toMatchObject({ playing: false, position: 50, version: 2 });
    for (const v of [host, viewer, late]) v.close();
  });

  it('answers clock pings with the server receive and send times', async () => {
    const room = roomName();
    const a = await join(room, { name: 'Ada' });
    const t0 = Date.now();
    a.send({ type: 'ping', t0 });
    const pong = await a.next('pong');
    expect(pong.t0).toBe(t0);
    expect(pong.t1).toBeGreaterThanOrEqual(t0);
    expect(pong.t2).toBeGreaterThanOrEqual(pong.t1);
    a.close();
  });
});
