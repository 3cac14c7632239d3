// Signed playback end to end inside workerd: the stream's policy, tokens on every playback
// route, the token written into every URI, per-colo caches that never leak or bypass a token,
// policy changes, minted tokens and revocation.
import { decodeJwt } from 'jose';
import { describe, expect, it } from 'vitest';
import { parseMediaFileName } from '../../core/contracts/object-keys.ts';
import { api, createKey, expectRefusal, liveStream, nowSeconds, operator, play, playlistUris, tokenFor } from './playback-fixtures.ts';

const op = operator('192.0.2.11');

/** The five kinds of playback path of a live stream. */
function routes(id: string, epoch: number) {
  return {
    multivariant: `/live/${id}/index.m3u8`,
    media: `/live/${id}/v/index.m3u8`,
    init: `/live/${id}/v/${epoch}/init.mp4`,
    segment: `/live/${id}/v/${epoch}/1.m4s`,
    part: `/live/${id}/v/${epoch}/2.0.m4s`,
  };
}

describe('playback policy', () => {
  it('a stream is public unless created signed, and its settings say which', async () => {
    const open = await api<{ settings: { playback: unknown } }>(op, 'POST', '/streams', {});
    expect(open.body.settings.playback).toEqual({ policy: 'public' });
    const closed = await api<{ settings: { playback: unknown } }>(op, 'POST', '/streams', { playback: { policy: 'signed' } });
    expect(closed.body.settings.playback).toEqual({ policy: 'signed' });
    const bad = await api(op, 'POST', '/streams', { playback: { policy: 'private' } });
    expect(bad.status).toBe(400);
  });

  it('a public stream plays without a token, and a token it is given is neither checked nor echoed', async () => {
    const { stream, epoch } = await liveStream(op);
    for (const path of Object.values(routes(stream.id, epoch))) {
      const res = await play(path);
      expect(res.status, path).toBe(200);
      expect(res.headers.get('cache-control'), path).not.toContain('private');
      await res.arrayBuffer();
    }
    const res = await play(`/live/${stream.id}/v/index.m3u8`, { token: 'not-a-token' });
    expect(res.status).toBe(200);
    expect(await res.text()).not.toContain('token=');
  });

  it('a signed stream refuses a viewer without a token on every playback route: 401 token_required', async () => {
    const { stream, epoch } = await liveStream(op, { playback: { policy: 'signed' } });
    for (const [name, path] of Object.entries(routes(stream.id, epoch))) {
      await expectRefusal(await play(path), 401, 'token_required', name);
    }
  });

  it('a good token opens every playback route of its stream, blocking reloads included', async () => {
    const { stream, epoch } = await liveStream(op, { playback: { policy: 'signed' } });
    const key = await createKey(op);
    const token = await tokenFor(stream.id, key.signingKey);
    for (const [name, path] of Object.entries(routes(stream.id, epoch))) {
      const res = await play(path, { token });
      expect(res.status, name).toBe(200);
      await res.arrayBuffer();
    }
    const blocking = await play(`/live/${stream.id}/v/index.m3u8`, { token, query: '_HLS_msn=2&_HLS_part=1' });
    expect(blocking.status).toBe(200);
    expect(await blocking.text()).toContain(`2.1.m4s?token=${token}`);
  });

  it('writes the token into every URI of the multivariant and media playlists', async () => {
    const { stream } = await liveStream(op, { playback: { policy: 'signed' } });
    const key = await createKey(op);
    const token = await tokenFor(stream.id, key.signingKey);
    const multivariant = await (await play(`/live/${stream.id}/index.m3u8`, { token })).text();
    const media = await (await play(`/live/${stream.id}/v/index.m3u8`, { token })).text();
    // Variants and audio media; segments, the map, parts, the preload hint, rendition reports.
    expect(media).toContain('#EXT-X-MAP:URI=');
    expect(media).toContain('#EXT-X-PART:');
    expect(media).toContain('#EXT-X-PRELOAD-HINT:');
    expect(media).toContain('#EXT-X-RENDITION-REPORT:');
    for (const text of [multivariant, media]) {
      const uris = playlistUris(text);
      expect(uris.length).toBeGreaterThan(1);
      for (const uri of uris) expect(uri).toMatch(new RegExp(`\\?token=${token.replaceAll('.', '\\.')}$`));
    }
  });

  it('a player that only follows the URIs it is given plays a signed stream', async () => {
    const { stream } = await liveStream(op, { playback: { policy: 'signed' } });
    const key = await createKey(op);
    const token = await tokenFor(stream.id, key.signingKey);
    const base = `http://edge.test/live/${stream.id}/index.m3u8?token=${token}`;
    const multivariant = await (await play(`/live/${stream.id}/index.m3u8`, { token })).text();
    const variant = new URL(playlistUris(multivariant).find((u) => u.startsWith('v/'))!, base);
    const mediaRes = await play(variant.pathname + variant.search);
    expect(mediaRes.status).toBe(200);
    const media = await mediaRes.text();
    const fetched: string[] = [];
    for (const uri of playlistUris(media)) {
      const u = new URL(uri, variant);
      const file = u.pathname.split('/').at(-1)!;
      // Fetch every media object listed (not the hinted part, which would be held until it exists).
      if (uri.includes('index.m3u8') || !parseMediaFileName(file) || media.includes(`#EXT-X-PRELOAD-HINT:TYPE=PART,URI="${uri}"`)) continue;
      const res = await play(u.pathname + u.search);
      expect(res.status, uri).toBe(200);
      await res.arrayBuffer();
      fetched.push(file);
    }
    expect(fetched).toEqual(expect.arrayContaining(['init.mp4', '1.m4s', '2.0.m4s', '2.1.m4s']));
    const report = new URL(playlistUris(media).find((u) => u.startsWith('../a/'))!, variant);
    expect((await play(report.pathname + report.search)).status).toBe(200);
  });

  it('marks what a signed stream serves private to the viewer, and what a public one serves public', async () => {
    const signed = await liveStream(op, { playback: { policy: 'signed' } });
    const open = await liveStream(op);
    const key = await createKey(op);
    const token = await tokenFor(signed.stream.id, key.signingKey);
    const part = await play(`/live/${signed.stream.id}/v/${signed.epoch}/2.0.m4s`, { token });
    expect(part.headers.get('cache-control')).toBe('private, max-age=31536000, immutable');
    const blocking = await play(`/live/${signed.stream.id}/v/index.m3u8`, { token, query: '_HLS_msn=2&_HLS_part=1' });
    expect(blocking.headers.get('cache-control')).toMatch(/^private, max-age=\d+$/);
    const openPart = await play(`/live/${open.stream.id}/v/${open.epoch}/2.0.m4s`);
    expect(openPart.headers.get('cache-control')).toBe('public, max-age=31536000, immutable');
    await Promise.all([part.arrayBuffer(), blocking.arrayBuffer(), openPart.arrayBuffer()]);
  });
});

describe('per-colo caches and tokens', () => {
  it('caches a blocking playlist once for all viewers, each of whom gets their own token in it', async () => {
    const { stream } = await liveStream(op, { playback: { policy: 'signed' } });
    const key = await createKey(op);
    const alice = await tokenFor(stream.id, key.signingKey, { expiresAt: nowSeconds() + 600 });
    const bob = await tokenFor(stream.id, key.signingKey, { expiresAt: nowSeconds() + 700 });
    const query = '_HLS_msn=2&_HLS_part=1';
    const first = await (await play(`/live/${stream.id}/v/index.m3u8`, { token: alice, query })).text();
    expect(first).toContain(`?token=${alice}`);

    // The colo's copy holds a placeholder, no viewer's token.
    const cacheUrl = `http://edge.test/live/${stream.id}/v/index.m3u8?${query}&signed`;
    let cached: Response | undefined;
    for (let i = 0; i < 50 && !cached; i++) {
      cached = await caches.default.match(cacheUrl);
      if (!cached) await new Promise((r) => setTimeout(r, 10));
    }
    const cachedText = await cached!.text();
    expect(cachedText).not.toContain(alice);
    expect(cachedText).toContain('?token={playback-token}');

    const second = await (await play(`/live/${stream.id}/v/index.m3u8`, { token: bob, query })).text();
    expect(second).not.toContain(alice);
    expect(second).toBe(first.replaceAll(alice, bob));
    // The cached answer is still behind the token check.
    await expectRefusal(await play(`/live/${stream.id}/v/index.m3u8`, { query }), 401, 'token_required');
    await expectRefusal(await play(`/live/${stream.id}/v/index.m3u8`, { token: bob.slice(0, -2), query }), 401, 'invalid_token');
  });

  it('caches media under the object key, not the token; a cached copy is still behind the token check', async () => {
    const { stream, epoch } = await liveStream(op, { playback: { policy: 'signed' } });
    const other = await liveStream(op, { playback: { policy: 'signed' } });
    const key = await createKey(op);
    const path = `/live/${stream.id}/v/${epoch}/2.0.m4s`;
    const alice = await tokenFor(stream.id, key.signingKey, { expiresAt: nowSeconds() + 600 });
    const bob = await tokenFor(stream.id, key.signingKey, { expiresAt: nowSeconds() + 700 });
    const a = new Uint8Array(await (await play(path, { token: alice })).arrayBuffer());
    let cached: Response | undefined;
    for (let i = 0; i < 50 && !cached; i++) {
      cached = await caches.default.match(`http://edge.test/live/${stream.id}/${epoch}/v/2.0.m4s`);
      if (!cached) await new Promise((r) => setTimeout(r, 10));
    }
    expect(cached?.status).toBe(200);
    await cached!.arrayBuffer();
    const b = await play(path, { token: bob });
    expect(b.status).toBe(200);
    expect(new Uint8Array(await b.arrayBuffer())).toEqual(a);
    await expectRefusal(await play(path), 401, 'token_required');
    await expectRefusal(await play(path, { token: await tokenFor(other.stream.id, key.signingKey) }), 403, 'token_wrong_stream');
  });
});

describe('changing the policy (PATCH /api/streams/:id)', () => {
  it('switches a live stream between public and signed, effective at once in the isolate that made the change', async () => {
    const { stream } = await liveStream(op);
    const key = await createKey(op);
    expect((await play(`/live/${stream.id}/v/index.m3u8`)).status).toBe(200);

    const toSigned = await api<{ settings: { playback: unknown; ladder: unknown[] } }>(op, 'PATCH', `/streams/${stream.id}`, {
      playback: { policy: 'signed' },
    });
    expect(toSigned.status).toBe(200);
    expect(toSigned.body.settings.playback).toEqual({ policy: 'signed' });
    expect(toSigned.body.settings.ladder).toHaveLength(2);
    await expectRefusal(await play(`/live/${stream.id}/v/index.m3u8`), 401, 'token_required');
    expect((await play(`/live/${stream.id}/v/index.m3u8`, { token: await tokenFor(stream.id, key.signingKey) })).status).toBe(200);

    const shown = await api<{ settings: { playback: unknown }; status: string }>(op, 'GET', `/streams/${stream.id}`);
    expect(shown.body.settings.playback).toEqual({ policy: 'signed' });
    expect(shown.body.status).toBe('live');

    expect((await api(op, 'PATCH', `/streams/${stream.id}`, { playback: { policy: 'public' } })).status).toBe(200);
    expect((await play(`/live/${stream.id}/v/index.m3u8`)).status).toBe(200);
  });

  it('changes the title alone, and refuses unknown fields, bad rules and unknown streams', async () => {
    const { stream } = await liveStream(op, { playback: { policy: 'signed', blockCountries: ['FR'] } });
    const titled = await api<{ title: string; settings: { playback: unknown } }>(op, 'PATCH', `/streams/${stream.id}`, {
      title: 'renamed',
    });
    expect(titled.body.title).toBe('renamed');
    expect(titled.body.settings.playback).toEqual({ policy: 'signed', blockCountries: ['FR'] });
    for (const body of [
      { ladder: [] },
      { segmentTarget: 2 },
      { playback: { policy: 'secret' } },
      { playback: { allowCountries: ['France'] } },
      { playback: { allowCountries: [] } },
    ]) {
      const res = await api<{ error: { code: string } }>(op, 'PATCH', `/streams/${stream.id}`, body);
      expect({ status: res.status, code: res.body.error.code }, JSON.stringify(body)).toEqual({ status: 400, code: 'invalid_request' });
    }
    const missing = await api<{ error: { code: string } }>(op, 'PATCH', '/streams/st00000000000000', { title: 'x' });
    expect({ status: missing.status, code: missing.body.error.code }).toEqual({ status: 404, code: 'stream_not_found' });
  });

  it('answers 404 stream_not_found for a stream that does not exist or was deleted', async () => {
    await expectRefusal(await play('/live/st00000000000000/index.m3u8'), 404, 'stream_not_found');
    const { stream, epoch } = await liveStream(op);
    expect((await api(op, 'DELETE', `/streams/${stream.id}`)).status).toBe(204);
    await expectRefusal(await play(`/live/${stream.id}/v/${epoch}/2.0.m4s`), 404, 'stream_not_found');
  });
});

describe('minted tokens (POST /api/streams/:id/playback-tokens)', () => {
  it('mints a token with the managed key that plays the stream, and its playback URLs carry it', async () => {
    const { stream } = await liveStream(op, { playback: { policy: 'signed' } });
    const before = nowSeconds();
    const minted = await api<{ token: string; kid: string; streamId: string; expiresAt: string; playback: { hls: string; watch: string } }>(
      op,
      'POST',
      `/streams/${stream.id}/playback-tokens`,
      { expiresIn: 600 },
    );
    expect(minted.status).toBe(201);
    const { token, kid } = minted.body;
    expect(minted.body.playback.hls).toBe(`http://edge.test/live/${stream.id}/index.m3u8?token=${token}`);
    expect(minted.body.playback.watch).toBe(`http://edge.test/watch/${stream.id}?token=${token}`);
    const claims = decodeJwt(token);
    expect(claims.sub).toBe(stream.id);
    expect(claims.exp).toBeGreaterThanOrEqual(before + 600);
    expect(claims.exp).toBeLessThanOrEqual(nowSeconds() + 600);
    expect(Date.parse(minted.body.expiresAt) / 1000).toBe(claims.exp);
    expect((await play(`/live/${stream.id}/v/index.m3u8`, { token })).status).toBe(200);

    const keys = await api<{ keys: Array<{ kid: string; managed: boolean }> }>(op, 'GET', '/signing-keys');
    expect(keys.body.keys.find((k) => k.kid === kid)).toMatchObject({ managed: true });
    // The next mint signs with the same managed key.
    const again = await api<{ kid: string }>(op, 'POST', `/streams/${stream.id}/playback-tokens`, {});
    expect(again.body.kid).toBe(kid);
  });

  it('puts the requested not-before and country rules in the token, and the edge enforces them', async () => {
    const { stream } = await liveStream(op, { playback: { policy: 'signed' } });
    const later = await api<{ token: string }>(op, 'POST', `/streams/${stream.id}/playback-tokens`, { notBefore: nowSeconds() + 3600 });
    await expectRefusal(await play(`/live/${stream.id}/index.m3u8`, { token: later.body.token }), 401, 'token_not_yet_valid');
    const germany = await api<{ token: string }>(op, 'POST', `/streams/${stream.id}/playback-tokens`, { allowCountries: ['de'] });
    expect(decodeJwt(germany.body.token).allowCountries).toEqual(['DE']);
    expect((await play(`/live/${stream.id}/index.m3u8`, { token: germany.body.token, country: 'DE' })).status).toBe(200);
    await expectRefusal(await play(`/live/${stream.id}/index.m3u8`, { token: germany.body.token, country: 'FR' }), 403, 'geo_blocked');
  });

  it('refuses bad requests and unknown streams', async () => {
    const { stream } = await liveStream(op, { playback: { policy: 'signed' } });
    for (const body of [
      { expiresIn: 5 },
      { expiresIn: 30 * 24 * 3600 },
      { expiresIn: 'soon' },
      { sub: 'other' },
      { allowCountries: ['Germany'] },
    ]) {
      const res = await api<{ error: { code: string } }>(op, 'POST', `/streams/${stream.id}/playback-tokens`, body);
      expect({ status: res.status, code: res.body.error.code }, JSON.stringify(body)).toEqual({ status: 400, code: 'invalid_request' });
    }
    const missing = await api<{ error: { code: string } }>(op, 'POST', '/streams/st00000000000000/playback-tokens', {});
    expect({ status: missing.status, code: missing.body.error.code }).toEqual({ status: 404, code: 'stream_not_found' });
  });
});

describe('revocation', () => {
  it('refuses the tokens of a revoked key at once in this isolate, even ones it already verified; other keys keep working', async () => {
    const { stream } = await liveStream(op, { playback: { policy: 'signed' } });
    const doomed = await createKey(op, 'doomed');
    const kept = await createKey(op, 'kept');
    const doomedToken = await tokenFor(stream.id, doomed.signingKey);
    const keptToken = await tokenFor(stream.id, kept.signingKey);
    expect((await play(`/live/${stream.id}/v/index.m3u8`, { token: doomedToken })).status).toBe(200);

    const revoked = await api<{ revokedAt: string | null }>(op, 'DELETE', `/signing-keys/${doomed.kid}`);
    expect(revoked.status).toBe(200);
    expect(revoked.body.revokedAt).toEqual(expect.any(String));
    await expectRefusal(await play(`/live/${stream.id}/v/index.m3u8`, { token: doomedToken }), 401, 'key_revoked');
    await expectRefusal(
      await play(`/live/${stream.id}/v/index.m3u8`, { token: await tokenFor(stream.id, doomed.signingKey) }),
      401,
      'key_revoked',
    );
    expect((await play(`/live/${stream.id}/v/index.m3u8`, { token: keptToken })).status).toBe(200);
  });

  it('revoking the managed key ends its minted tokens, and the next mint uses a new managed key', async () => {
    const { stream } = await liveStream(op, { playback: { policy: 'signed' } });
    const first = await api<{ token: string; kid: string }>(op, 'POST', `/streams/${stream.id}/playback-tokens`, {});
    expect((await api(op, 'DELETE', `/signing-keys/${first.body.kid}`)).status).toBe(200);
    await expectRefusal(await play(`/live/${stream.id}/index.m3u8`, { token: first.body.token }), 401, 'key_revoked');
    const second = await api<{ token: string; kid: string }>(op, 'POST', `/streams/${stream.id}/playback-tokens`, {});
    expect(second.body.kid).not.toBe(first.body.kid);
    expect((await play(`/live/${stream.id}/index.m3u8`, { token: second.body.token })).status).toBe(200);
  });
});
