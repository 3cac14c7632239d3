// Publish tokens: minted by the admin API, accepted by the origin's authorize wherever a stream key
// is (mapped to the stream they name), refused when expired, tampered, revoked by a key rotation,
// spent (single use) or presented from another session (session-bound); useless against the admin
// API. And the Worker's WHIP entry: a 307 to the nearest node, the status a publisher reads.
import { runInDurableObject } from 'cloudflare:test';
import { env } from 'cloudflare:workers';
import { beforeEach, describe, expect, it } from 'vitest';
import type { TranscoderRegistry } from '../../durable-objects/transcoder-registry.ts';
import { NODES_PREFIX } from '../../core/contracts/ingest-protocol.ts';
import { parsePublishToken, publishTokenKey, signPublishToken, withPublishSession } from '../../core/auth/publish-token.ts';
import { hashStreamKey } from '../../workers/catalog.ts';
import { TAKEOVER_ALLOWED, authorize, signed, worker } from './helpers.ts';
import { api, operator, type CreatedStream } from './playback-fixtures.ts';

const op = operator('192.0.2.41');
const ns = (env as unknown as { TRANSCODER_REGISTRY: DurableObjectNamespace<TranscoderRegistry> }).TRANSCODER_REGISTRY;

interface Minted {
  token: string;
  streamId: string;
  use: string;
  expiresAt: string;
  golive: string;
  whip: string;
}

/** A stream whose publishers take it over from each other while live (`allow`: the tokens are the subject here). */
async function newStream(): Promise<CreatedStream> {
  const res = await api<CreatedStream>(op, 'POST', '/streams', { title: 'publish tokens', ...TAKEOVER_ALLOWED });
  expect(res.status).toBe(201);
  return res.body;
}

async function mint(streamId: string, body: Record<string, unknown> = {}): Promise<Minted> {
  const res = await api<Minted>(op, 'POST', `/streams/${streamId}/publish-tokens`, body);
  expect(res.status, JSON.stringify(res.body)).toBe(201);
  return res.body;
}

async function lease(
  credential: string,
): Promise<{ status: number; body: { streamId?: string; epoch?: number; error?: { code: string } } }> {
  const res = await authorize(credential);
  return { status: res.status, body: (await res.json()) as { streamId?: string; epoch?: number; error?: { code: string } } };
}

async function refusedWith(credential: string, code: string): Promise<void> {
  const r = await lease(credential);
  expect({ status: r.status, code: r.body.error?.code }, credential).toEqual({ status: 403, code });
}

describe('POST /api/streams/:id/publish-tokens', () => {
  it('mints a token naming the stream, with its expiry, the Go-live link (token in the fragment) and the WHIP entry', async () => {
    const stream = await newStream();
    const before = Math.floor(Date.now() / 1000);
    const m = await mint(stream.id, { expiresIn: 600 });
    expect(m).toMatchObject({
      streamId: stream.id,
      use: 'reusable',
      golive: `http://edge.test/golive/${stream.id}#token=${m.token}`,
      whip: `http://edge.test/whip/${stream.id}`,
    });
    const parsed = parsePublishToken(m.token)!;
    expect(parsed).toMatchObject({ streamId: stream.id, use: 'reusable', session: null });
    expect(parsed.expiresAt - before).toBeGreaterThanOrEqual(600);
    expect(parsed.expiresAt - before).toBeLessThanOrEqual(601);
    expect(new Date(m.expiresAt).getTime()).toBe(parsed.expiresAt * 1000);
    // Nothing of the key is in it, and it fits where a stream key goes (authorize takes ≤ 200).
    expect(m.token).not.toContain(stream.streamKey);
    expect(m.token.length).toBeLessThan(200 - 44);
    expect((await mint(stream.id, { use: 'single' })).use).toBe('single');
    expect(parsePublishToken((await mint(stream.id, { use: 'session' })).token)!.use).toBe('session');
  });

  it('refuses a bad request, an unknown stream and a caller without the admin token', async () => {
    const stream = await newStream();
    for (const body of [{ expiresIn: 5 }, { expiresIn: 8 * 24 * 3600 }, { use: 'forever' }, { streamKey: 'x' }]) {
      const res = await api<{ error: { code: string } }>(op, 'POST', `/streams/${stream.id}/publish-tokens`, body);
      expect({ status: res.status, code: res.body.error.code }, JSON.stringify(body)).toEqual({ status: 400, code: 'invalid_request' });
    }
    const missing = await api<{ error: { code: string } }>(op, 'POST', '/streams/st0000000000nope/publish-tokens', {});
    expect({ status: missing.status, code: missing.body.error.code }).toEqual({ status: 404, code: 'stream_not_found' });
    const anonymous = await worker(`/api/streams/${stream.id}/publish-tokens`, {
      method: 'POST',
      headers: { 'cf-connecting-ip': '192.0.2.41' },
    });
    expect(anonymous.status).toBe(401);
  });
});

describe('the origin authorize maps a publish token to its stream', () => {
  it('a reusable token takes the lease of the stream it names, again on every use (a new epoch: a takeover)', async () => {
    const stream = await newStream();
    const { token } = await mint(stream.id);
    const first = await lease(token);
    expect(first).toMatchObject({ status: 200, body: { streamId: stream.id, epoch: 1 } });
    const again = await lease(token);
    expect(again).toMatchObject({ status: 200, body: { streamId: stream.id, epoch: 2 } });
    // The stream key still works beside it, and takes the stream over in turn.
    expect(await lease(stream.streamKey)).toMatchObject({ status: 200, body: { streamId: stream.id, epoch: 3 } });
  });

  it('an expired token is refused (publish_token_expired) and takes no lease', async () => {
    const stream = await newStream();
    const key = await publishTokenKey('test-admin-token', await hashStreamKey(stream.streamKey));
    const expired = await signPublishToken(
      { streamId: stream.id, expiresAt: Math.floor(Date.now() / 1000) - 1, nonce: 'AAAAAAAAAAAAAAAA', use: 'reusable' },
      key,
    );
    await refusedWith(expired, 'publish_token_expired');
    // The same grant unexpired is accepted: the refusal was the expiry, not the signature.
    const fresh = await signPublishToken(
      { streamId: stream.id, expiresAt: Math.floor(Date.now() / 1000) + 60, nonce: 'AAAAAAAAAAAAAAAA', use: 'reusable' },
      key,
    );
    expect(await lease(fresh)).toMatchObject({ status: 200, body: { streamId: stream.id, epoch: 1 } });
  });

  it('a tampered token, one pointed at another stream, one signed without ADMIN_TOKEN, and garbage are invalid_publish_token', async () => {
    const a = await newStream();
    const b = await newStream();
    const { token } = await mint(a.id);
    const p = parsePublishToken(token)!;
    const lastChar = token.at(-1) === 'A' ? 'B' : 'A';
    await refusedWith(token.slice(0, -1) + lastChar, 'invalid_publish_token');
    // Token A's MAC on stream B's name: B's key does not verify it, so A's token never starts B.
    await refusedWith(token.replace(`.${a.id}.`, `.${b.id}.`), 'invalid_publish_token');
    await refusedWith(token.replace(`.${p.expiresAt}.`, `.${p.expiresAt + 3600}.`), 'invalid_publish_token');
    // The catalog's key hash alone (a leaked D1 backup) does not mint: the root secret is needed too.
    const fromHashOnly = await signPublishToken(
      { ...p, expiresAt: p.expiresAt },
      await publishTokenKey('not-the-admin-token', await hashStreamKey(a.streamKey)),
    );
    await refusedWith(fromHashOnly, 'invalid_publish_token');
    await refusedWith('pt1.garbage', 'invalid_publish_token');
    await refusedWith(token.replace(`.${a.id}.`, '.st0000000000gone.'), 'invalid_publish_token');
    const status = await api<{ status: string }>(op, 'GET', `/streams/${a.id}`);
    expect(status.body.status).toBe('idle');
  });

  it('rotating the stream key revokes every token of the stream at once; a token minted after works', async () => {
    const stream = await newStream();
    const { token } = await mint(stream.id);
    expect((await lease(token)).status).toBe(200);
    expect((await api(op, 'POST', `/streams/${stream.id}/rotate-key`)).status).toBe(200);
    await refusedWith(token, 'invalid_publish_token');
    expect(await lease((await mint(stream.id)).token)).toMatchObject({ status: 200, body: { streamId: stream.id } });
  });

  it("a deleted stream's token is refused", async () => {
    const stream = await newStream();
    const { token } = await mint(stream.id);
    expect((await api(op, 'DELETE', `/streams/${stream.id}`)).status).toBe(204);
    await refusedWith(token, 'invalid_publish_token');
  });

  it('a single-use token takes one lease; used again it is publish_token_used', async () => {
    const stream = await newStream();
    const { token } = await mint(stream.id, { use: 'single' });
    expect(await lease(token)).toMatchObject({ status: 200, body: { streamId: stream.id, epoch: 1 } });
    await refusedWith(token, 'publish_token_used');
    const row = await env.DB.prepare('SELECT stream_id, session_hash FROM publish_token_uses WHERE nonce = ?')
      .bind(parsePublishToken(token)!.nonce)
      .first();
    expect(row).toEqual({ stream_id: stream.id, session_hash: null });
  });

  it('a session-bound token needs a session; its first use binds it; the same session takes the lease again, another is refused', async () => {
    const stream = await newStream();
    const { token } = await mint(stream.id, { use: 'session' });
    await refusedWith(token, 'publish_token_session');
    const mine = withPublishSession(token, 'session-of-the-page-1');
    expect(await lease(mine)).toMatchObject({ status: 200, body: { epoch: 1 } });
    // A reconnection of the same page (same session) takes the stream over with a new epoch.
    expect(await lease(mine)).toMatchObject({ status: 200, body: { epoch: 2 } });
    await refusedWith(withPublishSession(token, 'someone-else-copied-it'), 'publish_token_session');
    await refusedWith(token, 'publish_token_session');
  });

  it('expired rows are swept by the next use of any token', async () => {
    const stream = await newStream();
    await env.DB.prepare('INSERT INTO publish_token_uses (nonce, stream_id, session_hash, used_at, expires_at) VALUES (?, ?, NULL, ?, ?)')
      .bind('old-nonce-spent0', stream.id, 1, 2)
      .run();
    expect((await lease((await mint(stream.id, { use: 'single' })).token)).status).toBe(200);
    expect(await env.DB.prepare('SELECT nonce FROM publish_token_uses WHERE nonce = ?').bind('old-nonce-spent0').first()).toBeNull();
  });
});

describe('a publish token grants nothing else', () => {
  it('is refused as the admin bearer: it cannot read the stream, rotate or show the key, or mint', async () => {
    const stream = await newStream();
    const { token } = await mint(stream.id);
    const as = { authorization: `Bearer ${token}`, 'cf-connecting-ip': '192.0.2.41', 'content-type': 'application/json' };
    for (const [method, path] of [
      ['GET', `/api/streams/${stream.id}`],
      ['POST', `/api/streams/${stream.id}/rotate-key`],
      ['POST', `/api/streams/${stream.id}/publish-tokens`],
      ['POST', `/api/streams/${stream.id}/playback-tokens`],
      ['DELETE', `/api/streams/${stream.id}`],
    ] as const) {
      const res = await worker(path, { method, headers: as, body: method === 'POST' ? '{}' : undefined });
      expect({ path, method, status: res.status }).toEqual({ path, method, status: 401 });
      await res.body?.cancel();
    }
    expect(await lease(stream.streamKey)).toMatchObject({ status: 200, body: { streamId: stream.id } });
  });
});

describe('the WHIP entry: POST /whip/{id}', () => {
  const register = (nodeId: string, whipUrl: string, latitude = 50.11, longitude = 8.68) =>
    signed(
      'POST',
      `${NODES_PREFIX}/register`,
      new TextEncoder().encode(
        JSON.stringify({
          nodeId,
          region: nodeId,
          latitude,
          longitude,
          rtmpUrl: `rtmp://${nodeId}.test/live`,
          whipUrl,
          capacity: 4,
          sessions: 0,
          heartbeatIntervalMs: 5000,
        }),
      ) as Uint8Array<ArrayBuffer>,
      { 'content-type': 'application/json' },
    );

  beforeEach(async () => {
    await runInDurableObject(ns.getByName('global'), async (_i, state) => {
      state.storage.sql.exec('DELETE FROM nodes');
      await state.storage.deleteAlarm();
    });
    // A deregistration also makes this isolate forget its cached list of healthy nodes.
    await signed(
      'POST',
      `${NODES_PREFIX}/deregister`,
      new TextEncoder().encode(JSON.stringify({ nodeId: 'fra' })) as Uint8Array<ArrayBuffer>,
      { 'content-type': 'application/json' },
    );
  });

  it("answers 307 to the nearest healthy node's WHIP endpoint for the stream, without reading the offer", async () => {
    const stream = await newStream();
    expect((await register('fra', 'https://fra.ingest.test/whip')).status).toBe(200);
    expect((await register('syd', 'https://syd.ingest.test/whip', -33.87, 151.21)).status).toBe(200);
    const { token } = await mint(stream.id);
    const offer = 'v=0\r\n';
    const fromSydney = await worker(
      new Request(`http://edge.test/whip/${stream.id}`, {
        method: 'POST',
        headers: { 'content-type': 'application/sdp', authorization: `Bearer ${token}` },
        body: offer,
        redirect: 'manual',
        cf: { latitude: '-33.9', longitude: '151.2' },
      }),
    );
    expect(fromSydney.status).toBe(307);
    expect(fromSydney.headers.get('location')).toBe(`https://syd.ingest.test/whip/${stream.id}`);
    expect(fromSydney.headers.get('cache-control')).toBe('no-store');
    const fromFrankfurt = await worker(
      new Request(`http://edge.test/whip/${stream.id}`, {
        method: 'POST',
        headers: { 'content-type': 'application/sdp', authorization: `Bearer ${stream.streamKey}` },
        body: offer,
        redirect: 'manual',
        cf: { latitude: '50.1', longitude: '8.7' },
      }),
    );
    expect(fromFrankfurt.headers.get('location')).toBe(`https://fra.ingest.test/whip/${stream.id}`);
    const options = await worker(`/whip/${stream.id}`, { method: 'OPTIONS' });
    expect(options.status).toBe(204);
    expect(options.headers.get('accept-post')).toBe('application/sdp');
  });

  it('refuses a publish token for another stream (401 token_wrong_stream) before any node is involved; 503 without a node', async () => {
    const a = await newStream();
    const b = await newStream();
    const { token } = await mint(a.id);
    const wrong = await worker(
      new Request(`http://edge.test/whip/${b.id}`, {
        method: 'POST',
        headers: { 'content-type': 'application/sdp', authorization: `Bearer ${token}` },
        body: 'v=0\r\n',
        redirect: 'manual',
      }),
    );
    expect(wrong.status).toBe(401);
    expect(wrong.headers.get('www-authenticate')).toMatch(/^Bearer/);
    expect(((await wrong.json()) as { error: { code: string } }).error.code).toBe('token_wrong_stream');
    const none = await worker(
      new Request(`http://edge.test/whip/${a.id}`, {
        method: 'POST',
        headers: { authorization: `Bearer ${token}` },
        body: 'v=0\r\n',
        redirect: 'manual',
      }),
    );
    expect(none.status).toBe(503);
    expect(none.headers.get('retry-after')).toBe('10');
    expect(((await none.json()) as { error: { code: string } }).error.code).toBe('no_ingest_node');
  });
});

describe('GET /whip/{id}/status', () => {
  async function status(id: string, credential?: string) {
    const res = await worker(`/whip/${id}/status`, { headers: credential ? { authorization: `Bearer ${credential}` } : {} });
    return {
      status: res.status,
      body: (await res.json()) as {
        streamId?: string;
        status?: string;
        epoch?: number | null;
        ingest?: { nodeId: string } | null;
        error?: { code: string };
      },
    };
  }

  it('tells the holder of the stream key or a publish token whether the stream is live and under which epoch', async () => {
    const stream = await newStream();
    const { token } = await mint(stream.id, { use: 'single' });
    expect(await status(stream.id, token)).toEqual({
      status: 200,
      body: { streamId: stream.id, status: 'idle', epoch: null, ingest: null },
    });
    expect((await lease(token)).status).toBe(200);
    // Reading the status never spends a single-use token, and a spent one still reads it.
    const live = await status(stream.id, token);
    expect(live).toMatchObject({ status: 200, body: { status: 'live', epoch: 1, ingest: { nodeId: 'node-a' } } });
    expect(await status(stream.id, stream.streamKey)).toMatchObject({ status: 200, body: { epoch: 1 } });
  });

  it('is 401 without a credential, with a wrong one, for another stream, or from another session', async () => {
    const a = await newStream();
    const b = await newStream();
    expect((await status(a.id)).status).toBe(401);
    expect(await status(a.id, 'sk_wrong')).toMatchObject({ status: 401, body: { error: { code: 'unknown_stream_key' } } });
    expect(await status(b.id, a.streamKey)).toMatchObject({ status: 401, body: { error: { code: 'token_wrong_stream' } } });
    const { token } = await mint(a.id, { use: 'session' });
    expect((await lease(withPublishSession(token, 'the-first-session-1'))).status).toBe(200);
    expect((await status(a.id, withPublishSession(token, 'the-first-session-1'))).status).toBe(200);
    expect(await status(a.id, withPublishSession(token, 'another-session-22'))).toMatchObject({
      status: 401,
      body: { error: { code: 'publish_token_session' } },
    });
  });
});
