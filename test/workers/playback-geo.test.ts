// Country rules at the edge: a stream's allow or block list checked against request.cf.country
// (optional: absent in local tests), a token's own rules on top, 403 geo_blocked as JSON; and
// the dev-only way to claim a country in local development.
import { describe, expect, it } from 'vitest';
import { viewerCountry } from '../../workers/middleware/playback-access.ts';
import { api, createKey, expectRefusal, liveStream, operator, play, tokenFor } from './playback-fixtures.ts';

const op = operator('192.0.2.13');

describe('a stream’s country rules', () => {
  it('an allow list lets in only the countries it names, on playlists and media alike', async () => {
    const { stream, epoch } = await liveStream(op, { playback: { policy: 'public', allowCountries: ['DE', 'AT'] } });
    for (const path of [`/live/${stream.id}/index.m3u8`, `/live/${stream.id}/v/index.m3u8`, `/live/${stream.id}/v/${epoch}/2.0.m4s`]) {
      for (const country of ['DE', 'AT']) {
        const res = await play(path, { country });
        expect(res.status, `${country} ${path}`).toBe(200);
        await res.arrayBuffer();
      }
      await expectRefusal(await play(path, { country: 'FR' }), 403, 'geo_blocked', path);
    }
  });

  it('an allow list fails closed: a viewer whose country is unknown (no cf, or XX) is refused', async () => {
    const { stream } = await liveStream(op, { playback: { policy: 'public', allowCountries: ['DE'] } });
    await expectRefusal(await play(`/live/${stream.id}/index.m3u8`), 403, 'geo_blocked');
    await expectRefusal(await play(`/live/${stream.id}/index.m3u8`, { country: 'XX' }), 403, 'geo_blocked');
  });

  it('a block list refuses the countries it names and lets everyone else in, unknown countries too', async () => {
    const { stream } = await liveStream(op, { playback: { policy: 'public', blockCountries: ['FR', 'T1'] } });
    await expectRefusal(await play(`/live/${stream.id}/v/index.m3u8`, { country: 'FR' }), 403, 'geo_blocked');
    await expectRefusal(await play(`/live/${stream.id}/v/index.m3u8`, { country: 'T1' }), 403, 'geo_blocked');
    expect((await play(`/live/${stream.id}/v/index.m3u8`, { country: 'DE' })).status).toBe(200);
    expect((await play(`/live/${stream.id}/v/index.m3u8`)).status).toBe(200);
  });

  it('applies the stream’s rules to signed streams too, whatever the token allows', async () => {
    const { stream } = await liveStream(op, { playback: { policy: 'signed', blockCountries: ['FR'] } });
    const key = await createKey(op);
    const token = await tokenFor(stream.id, key.signingKey, { allowCountries: ['FR', 'DE'] });
    await expectRefusal(await play(`/live/${stream.id}/index.m3u8`, { token, country: 'FR' }), 403, 'geo_blocked');
    expect((await play(`/live/${stream.id}/index.m3u8`, { token, country: 'DE' })).status).toBe(200);
    await expectRefusal(await play(`/live/${stream.id}/index.m3u8`, { token, country: 'IT' }), 403, 'geo_blocked');
  });

  it('normalises country codes to upper case and refuses what is not a country code', async () => {
    const created = await api<{ settings: { playback: unknown } }>(op, 'POST', '/streams', {
      playback: { allowCountries: ['de', 'DE', 'at'] },
    });
    expect(created.body.settings.playback).toEqual({ policy: 'public', allowCountries: ['DE', 'AT'] });
    for (const list of [['Germany'], ['D'], ['DEU'], [42], []]) {
      const res = await api<{ error: { code: string; message: string } }>(op, 'POST', '/streams', { playback: { allowCountries: list } });
      expect({ status: res.status, code: res.body.error.code }, JSON.stringify(list)).toEqual({ status: 400, code: 'invalid_request' });
      expect(res.body.error.message).toContain('playback.allowCountries');
    }
  });

  it('takes new rules at once after a PATCH in the same isolate', async () => {
    const { stream } = await liveStream(op);
    expect((await play(`/live/${stream.id}/index.m3u8`, { country: 'FR' })).status).toBe(200);
    expect((await api(op, 'PATCH', `/streams/${stream.id}`, { playback: { policy: 'public', blockCountries: ['FR'] } })).status).toBe(200);
    await expectRefusal(await play(`/live/${stream.id}/index.m3u8`, { country: 'FR' }), 403, 'geo_blocked');
    expect((await api(op, 'PATCH', `/streams/${stream.id}`, { playback: { policy: 'public' } })).status).toBe(200);
    expect((await play(`/live/${stream.id}/index.m3u8`, { country: 'FR' })).status).toBe(200);
  });
});

describe('the viewer’s country', () => {
  const request = (url: string, init: RequestInit & { cf?: unknown } = {}) => new Request(url, init as RequestInit);

  it('is request.cf.country, and undefined when there is no cf object', () => {
    expect(viewerCountry(request('https://live.example/x', { cf: { country: 'JP' } }), false)).toBe('JP');
    expect(viewerCountry(request('https://live.example/x'), false)).toBeUndefined();
  });

  it('can be claimed in local development by header or cookie, only with DEV_GEO_OVERRIDE and on a loopback host', () => {
    const header = { 'x-edgelive-dev-country': 'br' };
    const cookie = { cookie: 'theme=dark; edgelive_dev_country=NZ' };
    expect(viewerCountry(request('http://127.0.0.1:8787/live/x', { headers: header }), true)).toBe('BR');
    expect(viewerCountry(request('http://localhost:8787/live/x', { headers: cookie }), true)).toBe('NZ');
    expect(viewerCountry(request('http://[::1]:8787/live/x', { headers: header }), true)).toBe('BR');
    // Off by default, and never for a request that reached a real hostname.
    expect(viewerCountry(request('http://127.0.0.1:8787/live/x', { headers: header, cf: { country: 'US' } }), false)).toBe('US');
    expect(viewerCountry(request('https://live.example/live/x', { headers: header, cf: { country: 'US' } }), true)).toBe('US');
    // Not a country code: ignored.
    expect(
      viewerCountry(request('http://127.0.0.1:8787/live/x', { headers: { 'x-edgelive-dev-country': 'Brazil' } }), true),
    ).toBeUndefined();
  });
});
