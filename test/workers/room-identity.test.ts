// Who a member is, and what follows from it, inside workerd: an anonymous viewer keeps one
// identity across reconnects (a signed cookie), new anonymous identities and joins are limited
// per address, moderation ranks come from identities whether or not they are online, and the
// room's operator routes go through the admin rate limit.
import { env, exports } from 'cloudflare:workers';
import { describe, expect, it } from 'vitest';
import { CLOSE } from '../../core/rooms/room-protocol.ts';
import { join, roomName, sleep, token, type Viewer } from './room-harness.ts';

async function openPoll(host: Viewer): Promise<number> {
  host.send({ type: 'poll.open', rid: 'p', question: 'Which?', options: ['a', 'b'] });
  return (await host.next('ack', (m) => m.rid === 'p')).id!;
}

async function vote(v: Viewer, pollId: number, option: number, rid = `v${option}`): Promise<void> {
  v.send({ type: 'poll.vote', rid, pollId, option });
  await v.next('ack', (m) => m.rid === rid);
}

describe('anonymous identity', () => {
  it('keeps one member across reconnects through the cookie the upgrade sets: a vote counts once', async () => {
    const room = roomName();
    const host = await join(room, { token: await token(room, 'Hana', 'host') });
    expect(host.cookie).toBeNull(); // token holders are named by their token
    const pollId = await openPoll(host);
    const first = await join(room, { name: 'Ada' });
    expect(first.cookie).toMatch(/^edgelive_anon=[A-Za-z0-9_-]{16}\.[A-Za-z0-9_-]{22}$/);
    await vote(first, pollId, 0);
    first.close();
    // A reload: no session in the URL, only what the browser keeps.
    const again = await join(room, { name: 'Ada' }, { cookie: first.cookie! });
    expect(again.welcome.you.uid).toBe(first.welcome.you.uid);
    await vote(again, pollId, 1);
    const tally = await host.event('poll', (e) => e.poll.counts[1] === 1);
    expect(tally.poll.counts).toEqual([0, 1]);
    // The same identity in another room (the cookie is the deployment's, not one room's).
    const elsewhere = await join(roomName(), { name: 'Ada' }, { cookie: first.cookie! });
    expect(elsewhere.welcome.you.uid).toBe(first.welcome.you.uid);
    // A forged cookie is a new identity, not an error.
    const forged = await join(room, { name: 'Ada' }, { cookie: `edgelive_anon=${'A'.repeat(16)}.${'B'.repeat(22)}` });
    expect(forged.welcome.you.uid).not.toBe(first.welcome.you.uid);
    for (const v of [host, again, elsewhere, forged]) v.close();
  });

  it('limits new anonymous identities per address: shedding the identity stops buying votes', async () => {
    const room = roomName();
    await env.ROOM.getByName(room).configure(room, { anonymousIdsPerHour: 3 });
    const host = await join(room, { token: await token(room, 'Hana', 'host') });
    const pollId = await openPoll(host);
    const fresh: Viewer[] = [];
    for (let i = 0; i < 3; i++) {
      const v = await join(room, { name: `Sock ${i}` }, { 'cf-connecting-ip': '203.0.113.7' });
      await vote(v, pollId, 0);
      fresh.push(v);
    }
    const fourth = await join(room, { name: 'Sock 3' }, { 'cf-connecting-ip': '203.0.113.7' });
    expect(await fourth.next('error')).toMatchObject({ code: 'rate_limited', reason: expect.stringContaining('new anonymous viewers') });
    expect(await fourth.closed()).toBe(CLOSE.tooMany);
    await sleep(120);
    expect((await host.event('poll', (e) => e.poll.counts[0] === 3)).poll.counts).toEqual([3, 0]);
    // A known identity still gets in from that address, and another address has its own budget.
    const back = await join(room, { name: 'Sock 0' }, { 'cf-connecting-ip': '203.0.113.7', cookie: fresh[0]!.cookie! });
    expect(back.welcome.you.uid).toBe(fresh[0]!.welcome.you.uid);
    const neighbour = await join(room, { name: 'Neighbour' }, { 'cf-connecting-ip': '203.0.113.8' });
    expect(neighbour.welcome.you.uid).toMatch(/^a:/);
    // Room tokens are not counted against the address.
    const vip = await join(room, { token: await token(room, 'Vip', 'viewer') }, { 'cf-connecting-ip': '203.0.113.7' });
    expect(vip.welcome.you.uid).toBe('t:Vip');
    for (const v of [host, ...fresh, back, neighbour, vip]) v.close();
  });

  it('limits anonymous joins per address, reconnects included', async () => {
    const room = roomName();
    await env.ROOM.getByName(room).configure(room, { anonymousJoinsPerMinute: 4 });
    const a = await join(room, { name: 'Ada' }, { 'cf-connecting-ip': '203.0.113.9' });
    const seen: Array<number | string> = [];
    for (let i = 0; i < 4; i++) {
      const v = await join(room, { name: 'Ada', session: a.welcome.session! }, { 'cf-connecting-ip': '203.0.113.9' });
      seen.push(v.frames[0]!.type === 'welcome' ? 'ok' : await v.closed());
      v.close();
    }
    expect(seen).toEqual(['ok', 'ok', 'ok', CLOSE.tooMany]);
    a.close();
  });
});

describe('moderation ranks come from identities', () => {
  it('a moderator cannot ban or mute a host who is offline', async () => {
    const room = roomName();
    const host = await join(room, { token: await token(room, 'Hana', 'host') });
    host.close();
    await sleep(80);
    const mod = await join(room, { token: await token(room, 'Mo', 'moderator') });
    expect((await env.ROOM.getByName(room).info()).viewers).toBe(1);
    mod.send({ type: 'mod.ban', rid: 'b', uid: 't:Hana' });
    expect(await mod.next('error', (m) => m.rid === 'b')).toMatchObject({
      code: 'forbidden',
      reason: 'a moderator may not sanction a host',
    });
    mod.send({ type: 'mod.mute', rid: 'm', uid: 't:Hana', seconds: 60 });
    expect(await mod.next('error', (m) => m.rid === 'm')).toMatchObject({ code: 'forbidden' });
    const back = await join(room, { token: await token(room, 'Hana', 'host') });
    back.send({ type: 'chat', rid: 'c', text: 'still here' });
    await back.next('ack', (m) => m.rid === 'c');
    for (const v of [mod, back]) v.close();
  });

  it('a ban set before a host ever joined does not hold the host', async () => {
    const room = roomName();
    const mod = await join(room, { token: await token(room, 'Mo', 'moderator') });
    mod.send({ type: 'mod.ban', rid: 'b', uid: 't:Hana' }); // nobody of that name is known yet
    await mod.next('ack', (m) => m.rid === 'b');
    const host = await join(room, { token: await token(room, 'Hana', 'host') });
    expect(host.welcome.you).toMatchObject({ uid: 't:Hana', role: 'host' });
    // The same ban does hold that name with a viewer token.
    host.close();
    const asViewer = await join(room, { token: await token(room, 'Hana', 'viewer') });
    expect(await asViewer.next('error')).toMatchObject({ code: 'banned' });
    expect(await asViewer.closed()).toBe(CLOSE.forbidden);
    mod.close();
  });

  it('unmute and unban are checked like mute and ban: outrank the member and whoever set it', async () => {
    const room = roomName();
    const host = await join(room, { token: await token(room, 'Hana', 'host') });
    const mod = await join(room, { token: await token(room, 'Mo', 'moderator') });
    const mod2 = await join(room, { token: await token(room, 'Max', 'moderator') });
    const a = await join(room, { name: 'Ada' });
    const ada = a.welcome.you.uid;
    // A host's mute and ban of a viewer: a moderator may neither lift nor shorten them.
    host.send({ type: 'mod.mute', rid: 'hm', uid: ada, seconds: 3600 });
    await host.next('ack', (m) => m.rid === 'hm');
    mod.send({ type: 'mod.unmute', rid: 'u1', uid: ada });
    expect(await mod.next('error', (m) => m.rid === 'u1')).toMatchObject({
      code: 'forbidden',
      reason: 'a host imposed this mute; a moderator may not change it',
    });
    mod.send({ type: 'mod.mute', rid: 'u2', uid: ada, seconds: 1 });
    expect(await mod.next('error', (m) => m.rid === 'u2')).toMatchObject({ code: 'forbidden' });
    a.send({ type: 'chat', rid: 'c', text: 'hello?' });
    expect(await a.next('error', (m) => m.rid === 'c')).toMatchObject({ code: 'muted' });
    // A host's mute of a moderator: another moderator cannot lift it.
    host.send({ type: 'mod.mute', rid: 'hm2', uid: 't:Mo', seconds: 3600 });
    await host.next('ack', (m) => m.rid === 'hm2');
    mod2.send({ type: 'mod.unmute', rid: 'u3', uid: 't:Mo' });
    expect(await mod2.next('error', (m) => m.rid === 'u3')).toMatchObject({
      code: 'forbidden',
      reason: 'a moderator may not sanction a moderator',
    });
    mod.send({ type: 'chat', rid: 'mc', text: 'muted staff' });
    expect(await mod.next('error', (m) => m.rid === 'mc')).toMatchObject({ code: 'muted' });
    // A moderator's ban of a viewer: another moderator may lift it.
    const b = await join(room, { name: 'Bob' });
    const bob = b.welcome.you.uid;
    mod2.send({ type: 'mod.ban', rid: 'b', uid: bob });
    await mod2.next('ack', (m) => m.rid === 'b');
    mod.send({ type: 'mod.unban', rid: 'ub', uid: bob });
    await mod.next('ack', (m) => m.rid === 'ub');
    const bobBack = await join(room, { name: 'Bob', session: b.welcome.session! });
    expect(bobBack.welcome.you.uid).toBe(bob);
    bobBack.close();
    // The host lifts its own mute.
    host.send({ type: 'mod.unmute', rid: 'hu', uid: ada });
    await host.next('ack', (m) => m.rid === 'hu');
    a.send({ type: 'chat', rid: 'c2', text: 'back' });
    await a.next('ack', (m) => m.rid === 'c2');
    for (const v of [host, mod, mod2, a]) v.close();
  });
});

/**
 * The local limiter counts in windows aligned to the wall-clock minute, like the real one: a
 * test that counts to 601 starts early in a window so the count is not split across two.
 */
async function startOfAWindow(): Promise<void> {
  const into = Date.now() % 60_000;
  if (into > 40_000) await new Promise((r) => setTimeout(r, 60_000 - into + 50));
}

describe('operator routes', { timeout: 60_000 }, () => {
  it('stats, tokens and settings share the admin API’s budget per address: 429 after 600 a minute', async () => {
    const room = roomName();
    const address = '198.51.100.77';
    const wrong = { authorization: 'Bearer wrong', 'cf-connecting-ip': address, 'content-type': 'application/json' };
    const routes: Array<[string, string, string?]> = [
      ['GET', `/rooms/${room}/stats`],
      ['PUT', `/rooms/${room}/settings`, '{"anonymous":false}'],
      ['POST', `/rooms/${room}/tokens`, '{"name":"Eve","role":"host"}'],
    ];
    await startOfAWindow();
    // 200 tries at each operator route of the room, with a wrong token: each is a 401.
    for (let i = 0; i < 600; i++) {
      const [method, path, body] = routes[i % 3]!;
      const res = await exports.default.fetch(`http://edge.test${path}`, { method, headers: wrong, ...(body ? { body } : {}) });
      expect(res.status).toBe(401);
      await res.arrayBuffer();
    }
    for (const [method, path, body] of routes) {
      const res = await exports.default.fetch(`http://edge.test${path}`, {
        method,
        headers: { ...wrong, authorization: 'Bearer test-admin-token' },
        ...(body ? { body } : {}),
      });
      expect(res.status, `${method} ${path}`).toBe(429);
      expect(await res.json()).toEqual({ error: { code: 'rate_limited', message: expect.any(String) } });
    }
    // One budget with the admin API.
    const api = await exports.default.fetch('http://edge.test/api/streams', {
      headers: { authorization: 'Bearer test-admin-token', 'cf-connecting-ip': address },
    });
    expect(api.status).toBe(429);
  });
});
