// Rooms carry the moment of the stream an interaction belongs to (issue 14 item 9): a poll keeps
// the program-date-time its opener was watching, for late joiners too, and a host's reaction with
// one is relayed on its own — through the Room and through its shards — while everyone else's
// reactions are still counted together.
import { env } from 'cloudflare:workers';
import { evictDurableObject } from 'cloudflare:test';
import { describe, expect, it } from 'vitest';
import { join, roomName, sleep, token, type Viewer } from './room-harness.ts';

const PDT = Date.UTC(2026, 11, 3, 12, 0, 0);

describe('interactions stamped with the moment of the stream', () => {
  it('a poll keeps its opener’s program-date-time, in the batch, in a late joiner’s state and after eviction', async () => {
    const room = roomName('step');
    const host = await join(room, { token: await token(room, 'Hana', 'host') });
    const viewer = await join(room, { name: 'Ada' });
    host.send({ type: 'poll.open', rid: 'p', question: 'Next?', options: ['A', 'B'], pdt: PDT });
    const id = (await host.next('ack', (m) => m.rid === 'p')).id;
    const ev = await viewer.event('poll', (e) => e.poll.id === id);
    expect(ev.poll).toMatchObject({ question: 'Next?', open: true, pdt: PDT });
    const late = await join(room, { name: 'Bob' });
    expect(late.welcome.state!.polls.find((p) => p.id === id)?.pdt).toBe(PDT);
    for (const v of [host, viewer, late]) v.close();
    await evictDurableObject(env.ROOM.getByName(room));
    const after = await join(room, { name: 'Cy' });
    expect(after.welcome.state!.polls.find((p) => p.id === id)?.pdt).toBe(PDT);
    // A poll opened without a moment has none (older clients, tools).
    const host2 = await join(room, { token: await token(room, 'Hana', 'host') });
    host2.send({ type: 'poll.open', rid: 'q', question: 'Plain?', options: ['A', 'B'] });
    const id2 = (await host2.next('ack', (m) => m.rid === 'q')).id;
    expect((await after.event('poll', (e) => e.poll.id === id2)).poll.pdt).toBeUndefined();
    for (const v of [after, host2]) v.close();
  });

  it('relays a host’s reaction with its moment, one by one; counts a viewer’s or a moderator’s with the rest', async () => {
    const room = roomName('step');
    const host = await join(room, { token: await token(room, 'Hana', 'host') });
    const mod = await join(room, { token: await token(room, 'Mo', 'moderator') });
    const viewer = await join(room, { name: 'Ada' });
    await viewer.event('presence', (e) => e.presence.count === 3);
    const from = viewer.frames.length;
    host.send({ type: 'react', reaction: 'fire', pdt: PDT });
    host.send({ type: 'react', reaction: 'fire', pdt: PDT + 500 });
    viewer.send({ type: 'react', reaction: 'clap', pdt: PDT });
    mod.send({ type: 'react', reaction: 'clap', pdt: PDT });
    // Without a moment, a host's reaction is the audience's kind.
    host.send({ type: 'react', reaction: 'love' });
    await viewer.event('host.reaction', (e) => e.pdt === PDT + 500);
    await sleep(400);
    const events = viewer.frames.slice(from).flatMap((f) => (f.type === 'batch' ? f.events : []));
    expect(events.filter((e) => e.kind === 'host.reaction')).toEqual([
      { kind: 'host.reaction', reaction: 'fire', pdt: PDT, name: 'Hana' },
      { kind: 'host.reaction', reaction: 'fire', pdt: PDT + 500, name: 'Hana' },
    ]);
    const counted: Record<string, number> = {};
    for (const e of events)
      if (e.kind === 'reactions') for (const [r, n] of Object.entries(e.counts)) counted[r] = (counted[r] ?? 0) + (n ?? 0);
    expect(counted).toEqual({ clap: 2, love: 1 });
    for (const v of [host, mod, viewer]) v.close();
  });

  it('relays a host’s reaction the same way when the host’s socket is on a shard', async () => {
    const room = roomName('step');
    await env.ROOM.getByName(room).configure(room, { directCapacity: 1, shardCapacity: 2 });
    const viewers: Viewer[] = [await join(room, { name: 'Ada' })];
    const host = await join(room, { token: await token(room, 'Hana', 'host') });
    viewers.push(await join(room, { name: 'Bob' }), await join(room, { name: 'Cy' }));
    expect((await env.ROOM.getByName(room).info()).shards.length).toBeGreaterThan(0);
    host.send({ type: 'react', reaction: 'wow', pdt: PDT });
    for (const v of viewers)
      expect(await v.event('host.reaction')).toEqual({ kind: 'host.reaction', reaction: 'wow', pdt: PDT, name: 'Hana' });
    for (const v of [host, ...viewers]) v.close();
  });
});
