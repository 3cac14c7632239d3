// The signing-keys API (/api/signing-keys) and the rate limits on the admin and token routes.
import { env } from 'cloudflare:workers';
import { Hono } from 'hono';
import { describe, expect, it } from 'vitest';
import type { Env } from '../../workers/env.ts';
import { handleError } from '../../workers/http.ts';
import { importSigningKey } from '../../core/auth/playback-token.ts';
import { rateLimit } from '../../workers/middleware/rate-limit.ts';
import { worker } from './helpers.ts';
import { api, createKey, operator } from './playback-fixtures.ts';

const op = operator('192.0.2.15');

interface KeyJson {
  kid: string;
  name: string;
  alg: string;
  managed: boolean;
  publicJwk: Record<string, unknown>;
  createdAt: string;
  revokedAt: string | null;
  privateJwk?: Record<string, unknown>;
  privateKeyPem?: string;
}

describe('POST /api/signing-keys', () => {
  it('creates an ES256 key pair and returns the private key once, as a JWK and as PEM', async () => {
    const res = await api<KeyJson>(op, 'POST', '/signing-keys', { name: 'web player' });
    expect(res.status).toBe(201);
    const k = res.body;
    expect(k).toMatchObject({ name: 'web player', alg: 'ES256', managed: false, revokedAt: null });
    expect(k.kid).toMatch(/^key_[a-z0-9]{16}$/);
    expect(k.publicJwk).toMatchObject({ kty: 'EC', crv: 'P-256', kid: k.kid, alg: 'ES256', use: 'sig' });
    expect(k.publicJwk).not.toHaveProperty('d');
    expect(k.privateJwk).toMatchObject({ kty: 'EC', crv: 'P-256', kid: k.kid, d: expect.any(String) });
    expect(k.privateKeyPem).toMatch(/^-----BEGIN PRIVATE KEY-----\n[\s\S]+\n-----END PRIVATE KEY-----\n?$/);
    // Both forms import as the key the CLI signs with.
    expect((await importSigningKey(JSON.stringify(k.privateJwk))).kid).toBe(k.kid);
    expect((await importSigningKey(k.privateKeyPem!, k.kid)).kid).toBe(k.kid);
  });

  it('keeps no private half of an operator key: not in D1, not in any later answer', async () => {
    const k = await createKey(op);
    const row = await env.DB.prepare('SELECT * FROM signing_keys WHERE kid = ?').bind(k.kid).first<Record<string, unknown>>();
    expect(row?.private_jwk).toBeNull();
    expect(JSON.stringify(row)).not.toContain(String(k.privateJwk.d));
    const shown = await api<KeyJson>(op, 'GET', `/signing-keys/${k.kid}`);
    const listed = await api<{ keys: KeyJson[] }>(op, 'GET', '/signing-keys');
    for (const text of [JSON.stringify(shown.body), JSON.stringify(listed.body)]) {
      expect(text).not.toContain(String(k.privateJwk.d));
      expect(text).not.toContain('privateJwk');
      expect(text).not.toContain('PRIVATE KEY');
    }
  });

  it('refuses unknown fields and over-long names', async () => {
    for (const body of [{ alg: 'HS256' }, { name: 'x'.repeat(101) }, { name: 7 }]) {
      const res = await api<{ error: { code: string } }>(op, 'POST', '/signing-keys', body);
      expect({ status: res.status, code: res.body.error.code }, JSON.stringify(body)).toEqual({ status: 400, code: 'invalid_request' });
    }
  });

  it('needs the admin token', async () => {
    const res = await worker('/api/signing-keys', { method: 'POST', body: '{}', headers: { 'cf-connecting-ip': '192.0.2.15' } });
    expect(res.status).toBe(401);
    expect(((await res.json()) as { error: { code: string } }).error.code).toBe('unauthorized');
  });
});

describe('GET and DELETE /api/signing-keys', () => {
  it('lists keys newest first, and shows one', async () => {
    const a = await createKey(op, 'a');
    const b = await createKey(op, 'b');
    const list = await api<{ keys: KeyJson[] }>(op, 'GET', '/signing-keys');
    const kids = list.body.keys.map((k) => k.kid);
    expect(kids).toContain(a.kid);
    expect(kids).toContain(b.kid);
    const times = list.body.keys.map((k) => Date.parse(k.createdAt));
    expect(times).toEqual([...times].sort((x, y) => y - x));
    expect((await api<KeyJson>(op, 'GET', `/signing-keys/${a.kid}`)).body).toMatchObject({ kid: a.kid, name: 'a', revokedAt: null });
  });

  it('revokes: the key stays listed with revokedAt, and revoking again changes nothing', async () => {
    const k = await createKey(op);
    const first = await api<KeyJson>(op, 'DELETE', `/signing-keys/${k.kid}`);
    expect(first.status).toBe(200);
    expect(Date.parse(first.body.revokedAt!)).toBeGreaterThan(0);
    const again = await api<KeyJson>(op, 'DELETE', `/signing-keys/${k.kid}`);
    expect(again.body.revokedAt).toBe(first.body.revokedAt);
    const listed = await api<{ keys: KeyJson[] }>(op, 'GET', '/signing-keys');
    expect(listed.body.keys.find((x) => x.kid === k.kid)?.revokedAt).toBe(first.body.revokedAt);
  });

  it('answers 404 key_not_found for unknown and malformed key ids', async () => {
    for (const kid of ['key_0000000000000000', 'nope', 'key_%2e%2e']) {
      for (const method of ['GET', 'DELETE']) {
        const res = await api<{ error: { code: string } }>(op, method, `/signing-keys/${kid}`);
        expect({ status: res.status, code: res.body.error.code }, `${method} ${kid}`).toEqual({ status: 404, code: 'key_not_found' });
      }
    }
  });

  it('wipes the private half of a revoked managed key', async () => {
    const created = await api<{ id: string }>(op, 'POST', '/streams', {});
    const minted = await api<{ kid: string }>(op, 'POST', `/streams/${created.body.id}/playback-tokens`, {});
    const before = await env.DB.prepare('SELECT private_jwk FROM signing_keys WHERE kid = ?')
      .bind(minted.body.kid)
      .first<{ private_jwk: string | null }>();
    expect(before?.private_jwk).toEqual(expect.any(String));
    await api(op, 'DELETE', `/signing-keys/${minted.body.kid}`);
    const after = await env.DB.prepare('SELECT private_jwk FROM signing_keys WHERE kid = ?')
      .bind(minted.body.kid)
      .first<{ private_jwk: string | null }>();
    expect(after?.private_jwk).toBeNull();
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

describe('rate limits', { timeout: 60_000 }, () => {
  it('the admin API counts per client address before the token is checked: 429 after 600 a minute', async () => {
    const address = '198.51.100.1';
    await startOfAWindow();
    let first429 = 0;
    for (let i = 1; i <= 601 && !first429; i++) {
      const res = await worker('/api/streams', { headers: { 'cf-connecting-ip': address, authorization: 'Bearer wrong' } });
      if (res.status === 429) first429 = i;
      else expect(res.status).toBe(401);
      await res.arrayBuffer();
    }
    expect(first429).toBe(601);
    const limited = await worker('/api/streams', { headers: { ...op, 'cf-connecting-ip': address } });
    expect(limited.status).toBe(429);
    expect(limited.headers.get('retry-after')).toBe('60');
    expect(await limited.json()).toEqual({ error: { code: 'rate_limited', message: expect.any(String) } });
    // Another address has its own budget.
    expect((await api(op, 'GET', '/signing-keys')).status).toBe(200);
  });

  it('token minting counts per stream: 429 after 600 a minute for one stream, others unaffected', async () => {
    const busy = await api<{ id: string }>(operator('198.51.100.2'), 'POST', '/streams', {});
    const quiet = await api<{ id: string }>(operator('198.51.100.2'), 'POST', '/streams', {});
    const minter = operator('198.51.100.3');
    // The admin budget of one address would run out first; spread the calls over a few.
    await startOfAWindow();
    let first429 = 0;
    for (let i = 1; i <= 601 && !first429; i++) {
      const res = await worker(`/api/streams/${busy.body.id}/playback-tokens`, {
        method: 'POST',
        body: '{}',
        headers: { ...minter, 'cf-connecting-ip': `198.51.100.${10 + (i % 4)}` },
      });
      if (res.status === 429) first429 = i;
      else expect(res.status).toBe(201);
      await res.arrayBuffer();
    }
    expect(first429).toBe(601);
    expect((await api(minter, 'POST', `/streams/${quiet.body.id}/playback-tokens`, {})).status).toBe(201);
  });

  it('the middleware answers 429 rate_limited with Retry-After when the binding says no', async () => {
    const calls: string[] = [];
    const limiter: RateLimit = { limit: async ({ key }) => (calls.push(key), { success: calls.length <= 1 }) };
    const app = new Hono<{ Bindings: Env }>();
    app.onError(handleError);
    app.use('*', rateLimit({ limiter: () => limiter, key: (c) => `k:${c.req.path}`, periodSeconds: 10 }));
    app.get('/x', (c) => c.text('ok'));
    const bindings = {} as Env;
    expect((await app.request('/x', {}, bindings)).status).toBe(200);
    const refused = await app.request('/x', {}, bindings);
    expect(refused.status).toBe(429);
    expect(refused.headers.get('retry-after')).toBe('10');
    expect(calls).toEqual(['k:/x', 'k:/x']);
  });
});
