// A host cuts a clip from the watch page with their room token (issue 14 item 10): a host token
// of the stream's own room may cut one (and nothing more); any other token is refused as before,
// and the operator's admin token keeps the whole clips API.
import { describe, expect, it } from 'vitest';
import { signRoomToken } from '../../core/auth/room-token.ts';
import { worker } from './helpers.ts';
import { api, liveStream, operator } from './playback-fixtures.ts';

const op = operator('192.0.2.85');
const roomToken = (room: string, role: 'viewer' | 'moderator' | 'host', name = 'Hana') =>
  signRoomToken({ room, name, role, exp: Math.floor(Date.now() / 1000) + 600 }, 'test-room-secret');

function cut(streamId: string, bearer: string | null, body: unknown) {
  const headers: Record<string, string> = { 'content-type': 'application/json', 'cf-connecting-ip': '192.0.2.86' };
  if (bearer) headers.authorization = `Bearer ${bearer}`;
  return worker(`/api/streams/${streamId}/clips`, { method: 'POST', headers, body: JSON.stringify(body) });
}

describe('POST /api/streams/{id}/clips with a host room token', { timeout: 30_000 }, () => {
  it('cuts the last seconds of the stream for the host of its own room, with a link to share', async () => {
    const { stream, v, a } = await liveStream(op);
    for (let i = 0; i < 3; i++) for (const r of [v, a]) await r.segment();
    const res = await cut(stream.id, await roomToken(stream.id, 'host'), { start: 3, title: 'That goal' });
    expect(res.status, await res.clone().text()).toBe(201);
    const clip = (await res.json()) as {
      id: string;
      streamId: string;
      title: string;
      duration: number;
      playback: { hls: string };
      export: unknown;
    };
    expect(clip).toMatchObject({ streamId: stream.id, title: 'That goal', export: null });
    expect(clip.duration).toBeGreaterThan(2);
    expect(clip.duration).toBeLessThanOrEqual(3.4);
    expect(clip.playback.hls).toBe(`http://edge.test/vod/${clip.id}/index.m3u8`);
    // The clip plays, and the operator sees it in the clips API.
    expect((await worker(`/vod/${clip.id}/index.m3u8`)).status).toBe(200);
    expect((await api(op, 'GET', `/clips/${clip.id}`)).status).toBe(200);
  });

  it('refuses other rooms’ hosts, moderators, viewers and no token as the admin API does (401)', async () => {
    const { stream } = await liveStream(op);
    for (const bearer of [
      await roomToken('another-room', 'host'),
      await roomToken(stream.id, 'moderator'),
      await roomToken(stream.id, 'viewer'),
      'not-a-token',
      null,
    ]) {
      const res = await cut(stream.id, bearer, { start: 1 });
      expect(res.status, String(bearer)).toBe(401);
      expect(((await res.json()) as { error: { code: string } }).error.code).toBe('unauthorized');
    }
  });

  it('lets a host cut, not export or keep longer: those stay the operator’s', async () => {
    const { stream } = await liveStream(op);
    const host = await roomToken(stream.id, 'host');
    for (const body of [
      { start: 1, export: true },
      { start: 1, retentionDays: 30 },
    ]) {
      const res = await cut(stream.id, host, body);
      expect(res.status).toBe(403);
      expect(((await res.json()) as { error: { code: string } }).error.code).toBe('forbidden');
    }
    expect((await cut(stream.id, host, { start: 1, note: 'x' })).status).toBe(400);
    // The admin token still reaches the whole API.
    const admin = await api(op, 'POST', `/streams/${stream.id}/clips`, { start: 1, retentionDays: 30 });
    expect(admin.status).toBe(201);
  });
});
