// Rooms inside workerd: polls and their alarm, roles, tokens, closed rooms, mutes, bans, slow
// mode, and every kind of bad input refused in-band without changing anything.
import { env } from 'cloudflare:workers';
import { runDurableObjectAlarm } from 'cloudflare:test';
import { describe, expect, it } from 'vitest';
import { CLOSE, ROOM_LIMITS } from '../../core/rooms/room-protocol.ts';
import { signRoomToken } from '../../core/auth/room-token.ts';
import { join, roomName, sleep, token } from './room-harness.ts';

describe('polls', () => {
  it('are opened by staff only, take one changeable vote per viewer and tally live', async () => {
    const room = roomName();
    const host = await join(room, { token: await token(room, 'Hana', 'host') });
    const a = await join(room, { name: 'Ada' });
    a.send({ type: 'poll.open', rid: 'no', question: 'Mine?', options: ['a', 'b'] });
    expect(await a.next('error', (m) => m.rid === 'no')).toMatchObject({ code: 'forbidden' });
    host.send({ type: 'poll.open', rid: 'p', question: 'Best part?', options: ['intro', 'finale', 'credits'] });
    const pollId = (await host.next('ack', (m) => m.rid === 'p')).id!;
    expect((await a.event('poll')).poll).toMatchObject({ id: pollId, open: true, counts: [0, 0, 0], closesAt: null, openedBy: 'Hana' });
    a.send({ type: 'poll.vote', rid: 'v1', pollId, option: 0 });
    await a.next('ack', (m) => m.rid === 'v1');
    host.send({ type: 'poll.vote', rid: 'v2', pollId, option: 1 });
    await host.next('ack', (m) => m.rid === 'v2');
    await a.event('poll', (e) => e.poll.counts.join() === '1,1,0');
    // Changing a vote moves it; voting the same again changes nothing.
    a.send({ type: 'poll.vote', rid: 'v3', pollId, option: 1 });
    await a.next('ack', (m) => m.rid === 'v3');
    a.send({ type: 'poll.vote', rid: 'v4', pollId, option: 1 });
    await a.next('ack', (m) => m.rid === 'v4');
    await a.event('poll', (e) => e.poll.counts.join() === '0,2,0');
    a.send({ type: 'poll.vote', rid: 'bad', pollId, option: 7 });
    expect(await a.next('error', (m) => m.rid === 'bad')).toMatchObject({ code: 'invalid_message' });
    host.send({ type: 'poll.close', rid: 'c', pollId });
    await host.next('ack', (m) => m.rid === 'c');
    const closed = await a.event('poll', (e) => !e.poll.open);
    expect(closed.poll).toMatchObject({ counts: [0, 2, 0], open: false });
    a.send({ type: 'poll.vote', rid: 'late', pollId, option: 0 });
    expect(await a.next('error', (m) => m.rid === 'late')).toMatchObject({ code: 'poll_closed' });
    // Results are kept: a late joiner sees the closed poll with its final counts.
    const late = await join(room, { name: 'Late' });
    expect(late.welcome.state!.polls).toEqual([expect.objectContaining({ id: pollId, open: false, counts: [0, 2, 0] })]);
    for (const v of [host, a, late]) v.close();
  });

  it('close at their deadline by the object’s alarm, and the results survive', async () => {
    const room = roomName();
    const stub = env.ROOM.getByName(room);
    const mod = await join(room, { token: await token(room, 'Mo', 'moderator') });
    const a = await join(room, { name: 'Ada' });
    mod.send({ type: 'poll.open', rid: 'p', question: 'Quick?', options: ['yes', 'no'], durationSec: 1 });
    const pollId = (await mod.next('ack', (m) => m.rid === 'p')).id!;
    const opened = await a.event('poll');
    expect(opened.poll.closesAt).toBeGreaterThan(Date.now());
    a.send({ type: 'poll.vote', rid: 'v', pollId, option: 0 });
    await a.next('ack', (m) => m.rid === 'v');
    await sleep(1100);
    await runDurableObjectAlarm(stub); // runs it now if the runtime has not already
    const closed = await a.event('poll', (e) => e.poll.id === pollId && !e.poll.open, 3000);
    expect(closed.poll.counts).toEqual([1, 0]);
    expect(closed.poll.closedAt).toBeGreaterThanOrEqual(closed.poll.closesAt);
    // No alarm is left behind once no poll has a deadline.
    expect(await runDurableObjectAlarm(stub)).toBe(false);
    mod.close();
    a.close();
  });

  it('validates poll shape: 2 to 10 options, bounded text', async () => {
    const room = roomName();
    const host = await join(room, { token: await token(room, 'Hana', 'host') });
    host.send({ type: 'poll.open', rid: '1', question: 'One?', options: ['only'] });
    expect(await host.next('error', (m) => m.rid === '1')).toMatchObject({ code: 'invalid_message' });
    host.send({
      type: 'poll.open',
      rid: '2',
      question: 'Many?',
      options: Array.from({ length: ROOM_LIMITS.pollOptionsMax + 1 }, (_, i) => `o${i}`),
    });
    expect(await host.next('error', (m) => m.rid === '2')).toMatchObject({ code: 'invalid_message' });
    host.send({ type: 'poll.open', rid: '3', question: 'x'.repeat(ROOM_LIMITS.pollQuestionMaxChars + 1), options: ['a', 'b'] });
    expect(await host.next('error', (m) => m.rid === '3')).toMatchObject({ code: 'invalid_message' });
    host.close();
  });
});

describe('tokens and closed rooms', () => {
  it('grants the role a valid token names, under the token’s name', async () => {
    const room = roomName();
    const m = await join(room, { token: await token(room, 'Mo', 'moderator'), name: 'ignored' });
    expect(m.welcome.you).toMatchObject({ uid: 't:Mo', name: 'Mo', role: 'moderator' });
    expect(m.welcome.session).toBeUndefined();
    m.close();
  });

  it('refuses forged, expired and other-room tokens in-band with a final close code', async () => {
    const room = roomName();
    const cases: Array<[string, string]> = [
      [await signRoomToken({ room, name: 'Eve', role: 'host', exp: Math.floor(Date.now() / 1000) + 60 }, 'wrong-secret'), 'token_invalid'],
      [await token(room, 'Old', 'host', -10), 'token_expired'],
      [await token('another-room', 'Mo', 'host'), 'token_invalid'],
      ['not.a.token', 'token_invalid'],
    ];
    for (const [t, code] of cases) {
      const v = await join(room, { token: t });
      expect(await v.next('error')).toMatchObject({ code });
      expect(await v.closed()).toBe(CLOSE.unauthorized);
    }
    // A token for every room ('*') is accepted.
    const ops = await join(room, {
      token: await signRoomToken({ room: '*', name: 'Ops', role: 'host', exp: Math.floor(Date.now() / 1000) + 60 }, 'test-room-secret'),
    });
    expect(ops.welcome.you.role).toBe('host');
    ops.close();
  });

  it('keeps anonymous viewers out of a room that is not open to them', async () => {
    const room = roomName();
    await env.ROOM.getByName(room).configure(room, { anonymous: false });
    const anon = await join(room, { name: 'Ada' });
    expect(await anon.next('error')).toMatchObject({ code: 'anonymous_not_allowed' });
    expect(await anon.closed()).toBe(CLOSE.unauthorized);
    const viewer = await join(room, { token: await token(room, 'Vi', 'viewer') });
    expect(viewer.welcome.state!.anonymous).toBe(false);
    viewer.close();
  });

  it('refuses a missing or unusable display name', async () => {
    const room = roomName();
    for (const name of ['', '   ', '\u0000\u0001', 'x'.repeat(ROOM_LIMITS.nameMaxChars + 1)]) {
      const v = await join(room, { name });
      expect(await v.next('error')).toMatchObject({ code: 'invalid_message' });
      expect(await v.closed()).toBe(CLOSE.badRequest);
    }
  });
});

describe('moderation', () => {
  it('mutes a viewer for a while: their chat is refused, others are unaffected, unmute lifts it', async () => {
    const room = roomName();
    const mod = await join(room, { token: await token(room, 'Mo', 'moderator') });
    const a = await join(room, { name: 'Ada' });
    mod.send({ type: 'mod.mute', rid: 'm', uid: a.welcome.you.uid, seconds: 60 });
    await mod.next('ack', (m) => m.rid === 'm');
    a.send({ type: 'chat', rid: 'c', text: 'hello?' });
    expect(await a.next('error', (m) => m.rid === 'c')).toMatchObject({ code: 'muted' });
    mod.send({ type: 'chat', rid: 'mc', text: 'staff still talk' });
    await mod.next('ack', (m) => m.rid === 'mc');
    mod.send({ type: 'mod.unmute', rid: 'u', uid: a.welcome.you.uid });
    await mod.next('ack', (m) => m.rid === 'u');
    a.send({ type: 'chat', rid: 'c2', text: 'back' });
    await a.next('ack', (m) => m.rid === 'c2');
    mod.close();
    a.close();
  });

  it('bans a viewer: their sockets close with 4403, they cannot rejoin, and the ban survives eviction', async () => {
    const room = roomName();
    const mod = await join(room, { token: await token(room, 'Mo', 'moderator') });
    const a = await join(room, { name: 'Ada' });
    const session = a.welcome.session!;
    mod.send({ type: 'mod.ban', rid: 'b', uid: a.welcome.you.uid });
    await mod.next('ack', (m) => m.rid === 'b');
    expect(await a.next('error')).toMatchObject({ code: 'banned' });
    expect(await a.closed()).toBe(CLOSE.forbidden);
    const again = await join(room, { name: 'Ada', session });
    expect(await again.next('error')).toMatchObject({ code: 'banned' });
    expect(await again.closed()).toBe(CLOSE.forbidden);
    mod.send({ type: 'mod.unban', rid: 'ub', uid: a.welcome.you.uid });
    await mod.next('ack', (m) => m.rid === 'ub');
    const back = await join(room, { name: 'Ada', session });
    expect(back.welcome.you.uid).toBe(a.welcome.you.uid);
    mod.close();
    back.close();
  });

  it('lets no one sanction an equal or higher role, and viewers none at all', async () => {
    const room = roomName();
    const host = await join(room, { token: await token(room, 'Hana', 'host') });
    const mod = await join(room, { token: await token(room, 'Mo', 'moderator') });
    const a = await join(room, { name: 'Ada' });
    await sleep(80);
    mod.send({ type: 'mod.ban', rid: '1', uid: 't:Hana' });
    expect(await mod.next('error', (m) => m.rid === '1')).toMatchObject({ code: 'forbidden' });
    a.send({ type: 'mod.mute', rid: '2', uid: 't:Mo', seconds: 10 });
    expect(await a.next('error', (m) => m.rid === '2')).toMatchObject({ code: 'forbidden' });
    a.send({ type: 'mod.slow', rid: '3', seconds: 5 });
    expect(await a.next('error', (m) => m.rid === '3')).toMatchObject({ code: 'forbidden' });
    host.send({ type: 'mod.mute', rid: '4', uid: 't:Mo', seconds: 10 });
    await host.next('ack', (m) => m.rid === '4');
    for (const v of [host, mod, a]) v.close();
  });

  it('slow mode spaces a viewer’s messages but not staff’s', async () => {
    const room = roomName();
    const mod = await join(room, { token: await token(room, 'Mo', 'moderator') });
    const a = await join(room, { name: 'Ada' });
    mod.send({ type: 'mod.slow', rid: 's', seconds: 30 });
    await mod.next('ack', (m) => m.rid === 's');
    expect((await a.event('slow')).seconds).toBe(30);
    a.send({ type: 'chat', rid: '1', text: 'one' });
    await a.next('ack', (m) => m.rid === '1');
    a.send({ type: 'chat', rid: '2', text: 'two' });
    expect(await a.next('error', (m) => m.rid === '2')).toMatchObject({ code: 'slow_mode' });
    for (const r of ['m1', 'm2']) {
      mod.send({ type: 'chat', rid: r, text: r });
      await mod.next('ack', (m) => m.rid === r);
    }
    mod.close();
    a.close();
  });
});

describe('abuse', () => {
  it('refuses malformed, binary, oversized and unknown frames in-band and changes nothing', async () => {
    const room = roomName();
    const a = await join(room, { name: 'Ada' });
    const cases: Array<[unknown, string]> = [
      ['{not json', 'bad_frame'],
      ['[1,2]', 'bad_frame'],
      ['"chat"', 'bad_frame'],
      [{ type: 'nope' }, 'invalid_message'],
      [{ type: 'chat' }, 'invalid_message'],
      [{ type: 'chat', text: '' }, 'invalid_message'],
      [{ type: 'chat', text: '\u200B\u0000 \u202E' }, 'invalid_message'],
      [{ type: 'chat', text: 'x'.repeat(ROOM_LIMITS.chatMaxChars + 1) }, 'invalid_message'],
      [{ type: 'chat', text: 'hi', extra: true }, 'invalid_message'],
      [{ type: 'chat', text: 'hi', pdt: 'yesterday' }, 'invalid_message'],
      [JSON.stringify({ type: 'chat', text: 'y'.repeat(5000) }), 'frame_too_large'],
    ];
    for (const [frame, code] of cases) {
      const from = a.frames.length;
      a.send(frame);
      expect(await a.next('error', () => true, 3000, from)).toMatchObject({ code });
    }
    const from = a.frames.length;
    a.ws.send(new Uint8Array([1, 2, 3]));
    expect(await a.next('error', () => true, 3000, from)).toMatchObject({ code: 'bad_frame' });
    // 500 emoji are 500 characters (1,000 UTF-16 units): allowed.
    a.send({ type: 'chat', rid: 'ok', text: '🔥'.repeat(ROOM_LIMITS.chatMaxChars) });
    expect((await a.next('ack', (m) => m.rid === 'ok')).id).toBe(1);
    const info = await env.ROOM.getByName(room).info();
    expect(info.viewers).toBe(1);
    a.close();
  });

  it('rate-limits a flooding connection and then disconnects it, while others carry on', async () => {
    const room = roomName();
    const flooder = await join(room, { name: 'Flood' });
    const calm = await join(room, { name: 'Calm' });
    for (let i = 0; i < 120; i++) flooder.send({ type: 'react', reaction: 'like' });
    expect(await flooder.next('error', (m) => m.code === 'rate_limited')).toBeTruthy();
    expect(await flooder.closed()).toBe(CLOSE.policy);
    calm.send({ type: 'chat', rid: 'c', text: 'unaffected' });
    await calm.next('ack', (m) => m.rid === 'c');
    calm.close();
  });

  it('limits chat per viewer (not per socket): five in a burst, then about one a second', async () => {
    const room = roomName();
    const a = await join(room, { name: 'Ada' });
    const a2 = await join(room, { name: 'Ada', session: a.welcome.session! });
    const results: string[] = [];
    for (let i = 0; i < 7; i++) {
      const v = i % 2 ? a2 : a;
      v.send({ type: 'chat', rid: `c${i}`, text: `n${i}` });
      const r = await Promise.race([v.next('ack', (m) => m.rid === `c${i}`), v.next('error', (m) => m.rid === `c${i}`)]);
      results.push(r.type === 'error' ? r.code : 'ok');
    }
    expect(results).toEqual(['ok', 'ok', 'ok', 'ok', 'ok', 'rate_limited', 'rate_limited']);
    a.close();
    a2.close();
  });
});
