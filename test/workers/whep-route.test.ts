// `POST /live/{id}/whep` inside workerd: the same access rules as the playlists (token, country),
// then a 307 to the WHEP URL of the node that holds the stream's lease (as the registry knows it)
// with a ticket that node can verify with the shared secret; streams without real time, not live,
// or held by a node that takes no WebRTC viewers are refused with a reason the player acts on.
import { describe, expect, it } from 'vitest';
import { NODES_PREFIX, type RegisterNodeRequest } from '../../core/contracts/ingest-protocol.ts';
import { verifyWhepTicket } from '../../core/contracts/whep.ts';
import { SECRET, authorize, signed, worker } from './helpers.ts';
import { api, createKey, expectRefusal, operator, tokenFor, TWO_RUNG_LADDER, type CreatedStream } from './playback-fixtures.ts';

const op = operator('192.0.2.41');

function register(nodeId: string, extra: Partial<RegisterNodeRequest> = {}) {
  const body: RegisterNodeRequest = {
    nodeId,
    region: 'local',
    latitude: 50,
    longitude: 8,
    rtmpUrl: `rtmp://${nodeId}.test:1935/live`,
    whipUrl: `https://${nodeId}.test/whip`,
    whepUrl: `https://${nodeId}.test/whep`,
    capacity: 4,
    sessions: 0,
    ...extra,
  };
  return signed('POST', `${NODES_PREFIX}/register`, new TextEncoder().encode(JSON.stringify(body)) as Uint8Array<ArrayBuffer>, {
    'content-type': 'application/json',
  });
}

/** A stream created with `settings`, its lease taken by `nodeId` (the publisher is on that node). */
async function liveOn(nodeId: string, settings: Record<string, unknown> = {}): Promise<CreatedStream> {
  const created = await api<CreatedStream>(op, 'POST', '/streams', { ladder: TWO_RUNG_LADDER, realtime: true, ...settings });
  expect(created.status).toBe(201);
  const lease = await authorize(created.body.streamKey, nodeId);
  expect(lease.status).toBe(200);
  await lease.body?.cancel();
  return created.body;
}

function offer(id: string, o: { token?: string; country?: string; type?: string } = {}): Promise<Response> {
  // redirect: manual, or the test's fetch would follow the 307 itself.
  const init: RequestInit = {
    method: 'POST',
    headers: { 'content-type': o.type ?? 'application/sdp' },
    body: 'v=0\r\n',
    redirect: 'manual',
  };
  if (o.country) (init as { cf?: unknown }).cf = { country: o.country };
  return worker(new Request(`http://edge.test/live/${id}/whep${o.token ? `?token=${encodeURIComponent(o.token)}` : ''}`, init));
}

describe('POST /live/{id}/whep', () => {
  it('sends the viewer to the node holding the stream (307) with a ticket for that stream, valid for a minute', async () => {
    await (await register('node-w')).body?.cancel();
    const stream = await liveOn('node-w');
    const res = await offer(stream.id);
    expect(res.status).toBe(307);
    expect(res.headers.get('cache-control')).toBe('no-store');
    const location = new URL(res.headers.get('location')!);
    expect(`${location.origin}${location.pathname}`).toBe(`https://node-w.test/whep/${stream.id}`);
    const ticket = location.searchParams.get('ticket')!;
    const verdict = await verifyWhepTicket(SECRET, ticket, stream.id);
    expect(verdict).toMatchObject({ ok: true, claims: { sub: stream.id } });
    const exp = (verdict as { claims: { exp: number } }).claims.exp;
    expect(exp - Date.now() / 1000).toBeGreaterThan(50);
    expect(exp - Date.now() / 1000).toBeLessThanOrEqual(60);
    expect(await verifyWhepTicket('another-secret', ticket, stream.id)).toMatchObject({ ok: false });
  });

  it('a signed stream needs its playback token, checked as for the playlists; country rules apply', async () => {
    await (await register('node-s')).body?.cancel();
    const stream = await liveOn('node-s', { playback: { policy: 'signed', blockCountries: ['FR'] } });
    await expectRefusal(await offer(stream.id), 401, 'token_required');
    await expectRefusal(await offer(stream.id, { token: 'not.a.token' }), 401, 'invalid_token');
    const key = await createKey(op, 'whep');
    const other = await liveOn('node-s');
    await expectRefusal(await offer(stream.id, { token: await tokenFor(other.id, key.signingKey) }), 403, 'token_wrong_stream');
    const token = await tokenFor(stream.id, key.signingKey);
    await expectRefusal(await offer(stream.id, { token, country: 'FR' }), 403, 'geo_blocked');
    const ok = await offer(stream.id, { token, country: 'DE' });
    expect(ok.status).toBe(307);
    expect(ok.headers.get('location')).toMatch(/^https:\/\/node-s\.test\/whep\/[^?]+\?ticket=[\w-]+\.[\w-]+$/);
  });

  it('refusals the player falls back on: not real time (404), not live (404), a node that takes no viewers (503 + Retry-After), not an offer (415)', async () => {
    await (await register('node-r')).body?.cancel();
    const hlsOnly = await liveOn('node-r', { realtime: false });
    await expectRefusal(await offer(hlsOnly.id), 404, 'realtime_not_enabled');
    const idle = await api<CreatedStream>(op, 'POST', '/streams', { realtime: true });
    await expectRefusal(await offer(idle.body.id), 404, 'stream_not_live');
    // Held by a node without WebRTC (registered without a WHEP URL), or by one the registry no longer lists.
    await (await register('node-nowebrtc', { whepUrl: undefined })).body?.cancel();
    for (const nodeId of ['node-nowebrtc', 'node-gone']) {
      const s = await liveOn(nodeId);
      const res = await offer(s.id);
      expect(res.headers.get('retry-after'), nodeId).toBe('10');
      await expectRefusal(res, 503, 'realtime_unavailable', nodeId);
    }
    await expectRefusal(await offer(hlsOnly.id, { type: 'application/json' }), 415, 'unsupported_media_type');
    await expectRefusal(await offer('no-such-stream'), 404, 'stream_not_found');
  });

  it('answers any page’s preflight for POST with an SDP body', async () => {
    const res = await worker(
      new Request('http://edge.test/live/abc/whep', {
        method: 'OPTIONS',
        headers: {
          origin: 'https://player.example',
          'access-control-request-method': 'POST',
          'access-control-request-headers': 'content-type',
        },
      }),
    );
    expect(res.status).toBe(204);
    expect(res.headers.get('access-control-allow-origin')).toBe('*');
    expect(res.headers.get('access-control-allow-methods')).toContain('POST');
    expect(res.headers.get('access-control-allow-headers')?.toLowerCase()).toContain('content-type');
  });

  it('the realtime setting: off by default, in the lease, info.json and the playback URLs; a PATCH applies at once', async () => {
    await (await register('node-p')).body?.cancel();
    const plain = await api<CreatedStream & { playback: Record<string, string> }>(op, 'POST', '/streams', {});
    expect((plain.body.settings as { realtime?: boolean }).realtime).toBe(false);
    expect(plain.body.playback.whep).toBeUndefined();
    const rt = await api<CreatedStream & { playback: Record<string, string> }>(op, 'POST', '/streams', { realtime: true });
    expect(rt.body.playback.whep).toBe(`http://edge.test/live/${rt.body.id}/whep`);
    const lease = (await (await authorize(rt.body.streamKey, 'node-p')).json()) as { realtime: boolean };
    expect(lease.realtime).toBe(true);
    const info = (await (await worker(`/live/${rt.body.id}/info.json`)).json()) as { realtime: boolean };
    expect(info.realtime).toBe(true);
    expect((await offer(rt.body.id)).status).toBe(307);
    const off = await api<{ settings: { realtime: boolean }; playback: Record<string, string> }>(op, 'PATCH', `/streams/${rt.body.id}`, {
      realtime: false,
    });
    expect([off.status, off.body.settings.realtime, off.body.playback.whep]).toEqual([200, false, undefined]);
    await expectRefusal(await offer(rt.body.id), 404, 'realtime_not_enabled');
  });
});
