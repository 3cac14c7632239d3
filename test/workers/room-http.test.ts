// The HTTP side of rooms: upgrade-only WebSocket route, room info, settings and token minting,
// with errors in the one JSON shape.
import { exports } from 'cloudflare:workers';
import { describe, expect, it } from 'vitest';
import { verifyRoomToken } from '../../core/auth/room-token.ts';
import { join, roomName, token } from './room-harness.ts';

const ADMIN = { authorization: 'Bearer test-admin-token' };

describe('room HTTP routes', () => {
  it('answers a plain GET on the socket route with 426 and the JSON error shape', async () => {
    const res = await exports.default.fetch('http://edge.test/rooms/abc/ws?name=x');
    expect(res.status).toBe(426);
    expect(await res.json()).toEqual({ error: { code: 'upgrade_required', message: expect.any(String) } });
  });

  it('rejects an invalid room id with 400', async () => {
    const res = await exports.default.fetch('http://edge.test/rooms/bad%20id!/ws', { headers: { Upgrade: 'websocket' } });
    expect(res.status).toBe(400);
    expect(((await res.json()) as { error: { code: string } }).error.code).toBe('invalid_room');
  });

  it('refuses another protocol version in-band', async () => {
    const v = await join(roomName(), { name: 'Ada', v: '99' });
    expect(await v.next('error')).toMatchObject({ code: 'unsupported_version' });
  });

  it('reports a room’s viewers', async () => {
    const room = roomName();
    const a = await join(room, { name: 'Ada' });
    const res = await exports.default.fetch(`http://edge.test/rooms/${room}`);
    expect(res.status).toBe(200);
    expect(await res.json()).toMatchObject({ room, viewers: 1, direct: 1, shards: [], anonymous: true });
    a.close();
  });

  it('changes settings for operators and hosts only; capacities for operators only', async () => {
    const room = roomName();
    const put = (body: unknown, headers: Record<string, string> = {}) =>
      exports.default.fetch(`http://edge.test/rooms/${room}/settings`, {
        method: 'PUT',
        headers: { 'content-type': 'application/json', ...headers },
        body: JSON.stringify(body),
      });
    expect((await put({ anonymous: false })).status).toBe(401);
    expect((await put({ anonymous: false }, { authorization: `Bearer ${await token(room, 'Vi', 'viewer')}` })).status).toBe(403);
    const hostAuth = { authorization: `Bearer ${await token(room, 'Hana', 'host')}` };
    expect((await put({ shardCapacity: 5 }, hostAuth)).status).toBe(403);
    const ok = await put({ anonymous: false }, hostAuth);
    expect(ok.status).toBe(200);
    expect(await ok.json()).toEqual({ room, settings: { anonymous: false } });
    const bad = await put({ anonymous: 'yes' }, ADMIN);
    expect(bad.status).toBe(400);
    expect(((await bad.json()) as { error: { code: string } }).error.code).toBe('invalid_request');
    expect((await put({ shardCapacity: 500, directCapacity: 100 }, ADMIN)).status).toBe(200);
  });

  it('mints room tokens for operators', async () => {
    const room = roomName();
    const mint = (headers: Record<string, string>) =>
      exports.default.fetch(`http://edge.test/rooms/${room}/tokens`, {
        method: 'POST',
        headers,
        body: JSON.stringify({ name: 'Mo', role: 'moderator', ttlSec: 600 }),
      });
    expect((await mint({})).status).toBe(401);
    const res = await mint(ADMIN);
    expect(res.status).toBe(201);
    const { token: t } = (await res.json()) as { token: string };
    const check = await verifyRoomToken(t, 'test-room-secret', room, Math.floor(Date.now() / 1000));
    expect(check).toMatchObject({ ok: true, claims: { room, name: 'Mo', role: 'moderator' } });
  });
});
