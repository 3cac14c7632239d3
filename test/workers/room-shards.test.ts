// The fan-out tree inside workerd: a room that places viewers on RoomShard objects still behaves
// as one room — chat, reactions, presence, pings, bans and late joiners — and survives the
// eviction of the Room or of a shard.
import { env } from 'cloudflare:workers';
import { evictDurableObject } from 'cloudflare:test';
import { describe, expect, it } from 'vitest';
import { CLOSE } from '../../core/rooms/room-protocol.ts';
import { shardName } from '../../core/contracts/room-admission.ts';
import { join, roomName, sleep, token, type Viewer } from './room-harness.ts';

async function shardedRoom(): Promise<{ room: string; viewers: Viewer[] }> {
  const room = roomName('big');
  // One socket on the Room itself, then shards of two.
  await env.ROOM.getByName(room).configure(room, { directCapacity: 1, shardCapacity: 2 });
  const viewers: Viewer[] = [];
  for (const name of ['Ada', 'Bob', 'Cy', 'Dee', 'Eve']) viewers.push(await join(room, { name }));
  return { room, viewers };
}

describe('a sharded room', () => {
  it('places viewers on the Room first, then fills shards in order', async () => {
    const { room, viewers } = await shardedRoom();
    await viewers[0]!.event('presence', (e) => e.presence.count === 5);
    const info = await env.ROOM.getByName(room).info();
    expect(info).toMatchObject({
      viewers: 5,
      connections: 5,
      direct: 1,
      shards: [
        { index: 0, connections: 2 },
        { index: 1, connections: 2 },
      ],
    });
    for (const v of viewers) v.close();
  });

  it('delivers chat from any shard to every viewer, in one order, with one id sequence', async () => {
    const { viewers } = await shardedRoom();
    const [ada, bob, , dee] = viewers as [Viewer, Viewer, Viewer, Viewer, Viewer];
    bob.send({ type: 'chat', rid: 'b', text: 'from shard 0' });
    expect((await bob.next('ack', (m) => m.rid === 'b')).id).toBe(1);
    dee.send({ type: 'chat', rid: 'd', text: 'from shard 1' });
    expect((await dee.next('ack', (m) => m.rid === 'd')).id).toBe(2);
    ada.send({ type: 'chat', rid: 'a', text: 'from the room' });
    expect((await ada.next('ack', (m) => m.rid === 'a')).id).toBe(3);
    for (const v of viewers) {
      await v.event('chat', (e) => e.message.id === 3);
      const texts = v.frames
        .flatMap((f) => (f.type === 'batch' ? f.events : []))
        .flatMap((e) => (e.kind === 'chat' ? [e.message.text] : []));
      expect(texts).toEqual(['from shard 0', 'from shard 1', 'from the room']);
      // Sequence numbers arrive without gaps on every socket.
      const seqs = v.frames.flatMap((f) => (f.type === 'batch' ? [f.seq] : []));
      expect(seqs).toEqual(seqs.map((_, i) => seqs[0]! + i));
    }
    for (const v of viewers) v.close();
  });

  it('counts reactions at the shards and broadcasts the room-wide totals', async () => {
    const { viewers } = await shardedRoom();
    await viewers[0]!.event('presence', (e) => e.presence.count === 5);
    const from = viewers[4]!.frames.length;
    for (const v of viewers) for (let i = 0; i < 3; i++) v.send({ type: 'react', reaction: 'clap' });
    await sleep(600);
    let clap = 0;
    for (const f of viewers[4]!.frames.slice(from))
      if (f.type === 'batch') for (const e of f.events) if (e.kind === 'reactions') clap += e.counts.clap ?? 0;
    expect(clap).toBe(15);
    for (const v of viewers) v.close();
  });

  it('answers clock pings at the shard and greets late joiners from the shard’s mirror', async () => {
    const { viewers } = await shardedRoom();
    viewers[0]!.send({ type: 'chat', rid: 'h', text: 'history' });
    await viewers[4]!.event('chat');
    const t0 = Date.now();
    viewers[4]!.send({ type: 'ping', t0 });
    expect(await viewers[4]!.next('pong')).toMatchObject({ t0 });
    const late = await join(viewers[0]!.welcome.room, { name: 'Late' });
    expect(late.welcome.state!.history.map((m) => m.text)).toEqual(['history']);
    for (const v of [...viewers, late]) v.close();
  });

  it('bans a viewer held by a shard: the Room tells the shard to close their socket', async () => {
    const { room, viewers } = await shardedRoom();
    const mod = await join(room, { token: await token(room, 'Mo', 'moderator') });
    const dee = viewers[3]!;
    mod.send({ type: 'mod.ban', rid: 'b', uid: dee.welcome.you.uid });
    await mod.next('ack', (m) => m.rid === 'b');
    expect(await dee.next('error')).toMatchObject({ code: 'banned' });
    expect(await dee.closed()).toBe(CLOSE.forbidden);
    await viewers[0]!.event(
      'presence',
      (e) => e.presence.count === 5 && !e.presence.members.some((m: { name: string }) => m.name === 'Dee'),
    );
    for (const v of [...viewers, mod]) v.close();
  });

  it('keeps serving every shard after the Room is evicted, with presence restored from storage', async () => {
    const { room, viewers } = await shardedRoom();
    await viewers[0]!.event('presence', (e) => e.presence.count === 5);
    await evictDurableObject(env.ROOM.getByName(room), { webSockets: 'hibernate' });
    expect((await env.ROOM.getByName(room).info()).viewers).toBe(5);
    viewers[0]!.send({ type: 'chat', rid: 'x', text: 'after eviction' });
    for (const v of viewers) await v.event('chat', (e) => e.message.text === 'after eviction');
    for (const v of viewers) v.close();
  });

  it('rebuilds an evicted shard’s mirror from the Room and carries on without a gap', async () => {
    const { room, viewers } = await shardedRoom();
    await viewers[4]!.event('presence', (e) => e.presence.count === 5);
    await evictDurableObject(env.ROOM_SHARD.getByName(shardName(room, 1)), { webSockets: 'hibernate' });
    viewers[0]!.send({ type: 'chat', rid: 'x', text: 'to a rebuilt shard' });
    const b = await viewers[4]!.next('batch', (m) => m.events.some((e) => e.kind === 'chat'));
    const seqs = viewers[4]!.frames.flatMap((f) => (f.type === 'batch' ? [f.seq] : []));
    expect(seqs.at(-1)).toBe(b.seq);
    expect(seqs).toEqual(seqs.map((_, i) => seqs[0]! + i));
    viewers[4]!.send({ type: 'chat', rid: 'y', text: 'from a rebuilt shard' });
    expect((await viewers[4]!.next('ack', (m) => m.rid === 'y')).id).toBe(2);
    for (const v of viewers) v.close();
  });

  it('refuses viewers once every shard is full', async () => {
    const room = roomName('full');
    await env.ROOM.getByName(room).configure(room, { directCapacity: 1, shardCapacity: 1, maxShards: 1 });
    const a = await join(room, { name: 'A' });
    const b = await join(room, { name: 'B' });
    const c = await join(room, { name: 'C' });
    expect(await c.next('error')).toMatchObject({ code: 'room_full' });
    expect(await c.closed()).toBe(CLOSE.full);
    a.close();
    b.close();
  });
});
