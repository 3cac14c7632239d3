// The `edgelive` CLI: what each command sends to the admin API and prints, offline signing from
// key files, errors and exit codes, and the launcher run as a real process.
import { spawnSync } from 'node:child_process';
import { mkdtempSync, readFileSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { runCli, type CliIo } from '../../bin/edgelive.ts';
import { PlaybackTokenVerifier, generateSigningKeyPair, type GeneratedKeyPair } from '../../core/auth/playback-token.ts';

interface Sent {
  method: string;
  url: string;
  headers: Record<string, string>;
  body: unknown;
}

type Reply = { status: number; body?: unknown };

/** Runs the CLI against a fake admin API that answers by "METHOD path". */
async function run(argv: string[], replies: Record<string, Reply | ((sent: Sent) => Reply)> = {}, env: Record<string, string> = { EDGELIVE_ADMIN_TOKEN: 'adm1n' }) {
  const sent: Sent[] = [];
  let out = '';
  let err = '';
  const files = new Map<string, { text: string }>();
  const io: CliIo = {
    argv,
    env,
    fetch: (async (input: string | URL | Request, init?: RequestInit) => {
      const url = String(input);
      const s: Sent = {
        method: init?.method ?? 'GET',
        url,
        headers: Object.fromEntries(new Headers(init?.headers).entries()),
        body: init?.body ? JSON.parse(String(init.body)) : undefined,
      };
      sent.push(s);
      const key = `${s.method} ${new URL(url).pathname}`;
      const r = replies[key];
      if (!r) return Response.json({ error: { code: 'not_found', message: `no fake for ${key}` } }, { status: 404 });
      const { status, body } = typeof r === 'function' ? r(s) : r;
      return body === undefined ? new Response(null, { status }) : Response.json(body, { status });
    }) as typeof fetch,
    stdout: (t) => void (out += t),
    stderr: (t) => void (err += t),
    readFile: async (p) => {
      const f = files.get(p);
      if (f) return f.text;
      return readFileSync(p, 'utf8');
    },
    writeSecretFile: async (p, t) => void files.set(p, { text: t }),
    now: () => Date.UTC(2026, 10, 21, 12, 0, 0),
  };
  const code = await runCli(io);
  return { code, out, err, sent, files };
}

const STREAM = { id: 'st1', title: 't', status: 'idle', settings: { playback: { policy: 'signed', blockCountries: ['FR'] } }, createdAt: '2026-11-21T12:00:00.000Z' };

describe('streams', () => {
  it('create sends the title and playback rules with the admin token from the environment', async () => {
    const r = await run(['streams', 'create', '--title', 'launch', '--policy', 'signed', '--allow-countries', 'de, at'], {
      'POST /api/streams': { status: 201, body: { id: 'st1', streamKey: 'sk_1', ingest: { rtmp: 'rtmp://x/live/sk_1' }, playback: { hls: 'http://x/live/st1/index.m3u8', watch: 'http://x/watch/st1' } } },
    });
    expect(r.code).toBe(0);
    expect(r.sent).toEqual([
      {
        method: 'POST',
        url: 'http://127.0.0.1:8787/api/streams',
        headers: { authorization: 'Bearer adm1n', 'content-type': 'application/json' },
        body: { title: 'launch', playback: { policy: 'signed', allowCountries: ['DE', 'AT'] } },
      },
    ]);
    expect(r.out).toContain('sk_1');
    expect(r.out).toContain('http://x/live/st1/index.m3u8');
  });

  it('create takes a settings file, and flags win over it', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'edgelive-cli-'));
    const file = join(dir, 'settings.json');
    writeFileSync(file, JSON.stringify({ title: 'from file', segmentTarget: 2, playback: { policy: 'public', blockCountries: ['FR'] } }));
    const r = await run(['streams', 'create', '--settings', file, '--policy', 'signed', '--json'], { 'POST /api/streams': { status: 201, body: { id: 'st1' } } });
    expect(r.sent[0]!.body).toEqual({ title: 'from file', segmentTarget: 2, playback: { policy: 'signed', blockCountries: ['FR'] } });
    expect(JSON.parse(r.out)).toEqual({ id: 'st1' });
  });

  it('list prints a table; --url and --token override the environment', async () => {
    const r = await run(['streams', 'list', '--limit', '5', '--url', 'https://live.example/', '--token', 'other'], { 'GET /api/streams': { status: 200, body: { streams: [STREAM], next: null } } });
    expect(r.sent[0]).toMatchObject({ method: 'GET', url: 'https://live.example/api/streams?limit=5', headers: { authorization: 'Bearer other' } });
    expect(r.out.split('\n')[0]).toMatch(/^ID\s+STATUS\s+PLAYBACK\s+CREATED\s+TITLE$/);
    expect(r.out).toMatch(/st1\s+idle\s+signed\s+2026-11-21T12:00:00.000Z\s+t/);
  });

  it('show, rotate-key and delete call their routes', async () => {
    const show = await run(['streams', 'show', 'st1'], { 'GET /api/streams/st1': { status: 200, body: STREAM } });
    expect(JSON.parse(show.out)).toEqual(STREAM);
    const rotate = await run(['streams', 'rotate-key', 'st1'], { 'POST /api/streams/st1/rotate-key': { status: 200, body: { id: 'st1', streamKey: 'sk_2', ingest: { rtmp: 'rtmp://x/live/sk_2' } } } });
    expect(rotate.out).toContain('sk_2');
    const del = await run(['streams', 'delete', 'st1'], { 'DELETE /api/streams/st1': { status: 204 } });
    expect(del.code).toBe(0);
    expect(del.sent[0]!.method).toBe('DELETE');
    expect(del.out).toBe('deleted st1\n');
  });

  it('update changes one playback rule and keeps the others (the API replaces playback whole)', async () => {
    const patched = (s: Sent): Reply => {
      const b = s.body as { title?: string; playback?: unknown };
      return { status: 200, body: { ...STREAM, title: b.title ?? STREAM.title, settings: { playback: b.playback ?? STREAM.settings.playback } } };
    };
    const r = await run(['streams', 'update', 'st1', '--allow-countries', 'DE'], {
      'GET /api/streams/st1': { status: 200, body: STREAM },
      'PATCH /api/streams/st1': patched,
    });
    expect(r.code).toBe(0);
    expect(r.out).toContain('"allowCountries":["DE"]');
    expect(r.sent.map((s) => s.method)).toEqual(['GET', 'PATCH']);
    expect(r.sent[1]!.body).toEqual({ playback: { policy: 'signed', blockCountries: ['FR'], allowCountries: ['DE'] } });
    const cleared = await run(['streams', 'update', 'st1', '--block-countries', '', '--title', 'x'], {
      'GET /api/streams/st1': { status: 200, body: STREAM },
      'PATCH /api/streams/st1': patched,
    });
    expect(cleared.sent[1]!.body).toEqual({ title: 'x', playback: { policy: 'signed' } });
    const titleOnly = await run(['streams', 'update', 'st1', '--title', 'y'], { 'PATCH /api/streams/st1': patched });
    expect(titleOnly.sent.map((s) => `${s.method} ${JSON.stringify(s.body)}`)).toEqual(['PATCH {"title":"y"}']);
  });

  it('token mints through the API', async () => {
    const r = await run(['streams', 'token', 'st1', '--ttl', '600', '--block-countries', 'fr'], {
      'POST /api/streams/st1/playback-tokens': { status: 201, body: { token: 'a.b.c', expiresAt: '2026-11-21T12:10:00.000Z', playback: { hls: 'http://x/live/st1/index.m3u8?token=a.b.c' } } },
    });
    expect(r.sent[0]!.body).toEqual({ expiresIn: 600, blockCountries: ['FR'] });
    expect(r.out.split('\n')[0]).toBe('a.b.c');
  });
});

describe('keys', () => {
  const created = { kid: 'key_aaaaaaaaaaaaaaaa', name: 'web', alg: 'ES256', managed: false, publicJwk: { kty: 'EC' }, createdAt: 'now', revokedAt: null, privateJwk: { kty: 'EC', d: 'SECRET' }, privateKeyPem: '-----BEGIN PRIVATE KEY-----\nSECRET\n-----END PRIVATE KEY-----\n' };

  it('create --out writes the private JWK to a file only the owner reads, and prints no secret', async () => {
    const r = await run(['keys', 'create', '--name', 'web', '--out', 'web.key.json'], { 'POST /api/signing-keys': { status: 201, body: created } });
    expect(r.sent[0]!.body).toEqual({ name: 'web' });
    expect(JSON.parse(r.files.get('web.key.json')!.text)).toEqual(created.privateJwk);
    expect(r.out).toContain('key_aaaaaaaaaaaaaaaa');
    expect(r.out + r.err).not.toContain('SECRET');
  });

  it('create without --out shows the private key once, with a warning', async () => {
    const r = await run(['keys', 'create'], { 'POST /api/signing-keys': { status: 201, body: created } });
    expect(r.out).toContain('SECRET');
    expect(r.err).toContain('shown once');
  });

  it('list and revoke', async () => {
    const list = await run(['keys', 'list'], { 'GET /api/signing-keys': { status: 200, body: { keys: [{ ...created, revokedAt: '2026-11-21T13:00:00.000Z' }] } } });
    expect(list.out).toMatch(/key_aaaaaaaaaaaaaaaa\s+web\s+no\s+now\s+2026-11-21T13:00:00.000Z/);
    const revoke = await run(['keys', 'revoke', 'key_aaaaaaaaaaaaaaaa'], { 'DELETE /api/signing-keys/key_aaaaaaaaaaaaaaaa': { status: 200, body: { kid: 'key_aaaaaaaaaaaaaaaa', revokedAt: 'then' } } });
    expect(revoke.out).toContain('within a minute');
  });
});

describe('sign (offline)', () => {
  async function keyFile(pair: GeneratedKeyPair, text = JSON.stringify(pair.privateJwk)) {
    const dir = mkdtempSync(join(tmpdir(), 'edgelive-cli-'));
    const file = join(dir, 'key');
    writeFileSync(file, text);
    return file;
  }

  async function check(token: string, pair: GeneratedKeyPair) {
    return new PlaybackTokenVerifier().verify(token, { loadKey: async () => ({ status: 'active', publicJwk: pair.publicJwk }), now: Date.UTC(2026, 10, 21, 12, 0, 0) });
  }

  it('signs a token from a JWK key file without any network call', async () => {
    const pair = await generateSigningKeyPair();
    const r = await run(['sign', '--key', await keyFile(pair), '--stream', 'st1', '--ttl', '600', '--allow-countries', 'de'], {}, {});
    expect(r.code).toBe(0);
    expect(r.sent).toEqual([]);
    const v = await check(r.out.trim(), pair);
    expect(v).toMatchObject({ ok: true, kid: pair.kid, claims: { sub: 'st1', exp: Date.UTC(2026, 10, 21, 12, 10, 0) / 1000, allowCountries: ['DE'] } });
  });

  it('signs from a PEM key with --kid, and from the saved answer of keys create', async () => {
    const pair = await generateSigningKeyPair();
    const pem = await run(['sign', '--key', await keyFile(pair, pair.privateKeyPem), '--kid', pair.kid, '--stream', 'st1', '--nbf', '1795262500'], {}, {});
    expect(await check(pem.out.trim(), pair)).toMatchObject({ ok: false, rejection: { code: 'token_not_yet_valid' } });
    const saved = await run(['sign', '--key', await keyFile(pair, JSON.stringify({ kid: pair.kid, privateJwk: pair.privateJwk })), '--stream', 'st1', '--json'], {}, {});
    const out = JSON.parse(saved.out) as { token: string; kid: string; expiresAt: string };
    expect(out).toMatchObject({ kid: pair.kid, streamId: 'st1', expiresAt: '2026-11-21T13:00:00.000Z' });
    expect((await check(out.token, pair)).ok).toBe(true);
  });

  it('explains what is missing or wrong', async () => {
    const pair = await generateSigningKeyPair();
    expect((await run(['sign', '--stream', 'st1'], {}, {})).err).toContain('--key');
    expect((await run(['sign', '--key', await keyFile(pair)], {}, {})).err).toContain('--stream');
    const pemNoKid = await run(['sign', '--key', await keyFile(pair, pair.privateKeyPem), '--stream', 'st1'], {}, {});
    expect(pemNoKid).toMatchObject({ code: 1, err: expect.stringContaining('key id') });
    const missing = await run(['sign', '--key', '/nonexistent/key.json', '--stream', 'st1'], {}, {});
    expect(missing).toMatchObject({ code: 1, err: expect.stringContaining('cannot read /nonexistent/key.json') });
    expect((await run(['sign', '--key', await keyFile(pair), '--stream', 'st1', '--ttl', 'soon'], {}, {})).code).toBe(2);
  });
});

describe('nodes, errors and help', () => {
  it('nodes list prints what GET /api/ingest/nodes answers', async () => {
    const nodes = { nodes: [{ nodeId: 'fra-1', region: 'eu' }] };
    const r = await run(['nodes', 'list'], { 'GET /api/ingest/nodes': { status: 200, body: nodes } });
    expect(JSON.parse(r.out)).toEqual(nodes);
  });

  it('reports an API refusal with its status and code, exit 1', async () => {
    const r = await run(['streams', 'show', 'st404'], { 'GET /api/streams/st404': { status: 404, body: { error: { code: 'stream_not_found', message: 'no stream st404' } } } });
    expect(r).toMatchObject({ code: 1, err: 'error: 404 stream_not_found: no stream st404\n' });
  });

  it('refuses to call the API without an admin token, and unknown commands or flags, exit 2', async () => {
    expect(await run(['streams', 'list'], {}, {})).toMatchObject({ code: 2, err: expect.stringContaining('EDGELIVE_ADMIN_TOKEN') });
    expect((await run(['streams', 'explode'])).code).toBe(2);
    expect((await run(['streams', 'list', '--colour'])).code).toBe(2);
    expect((await run(['streams', 'show'])).err).toContain('needs a stream id');
    expect((await run(['streams', 'update', 'st1', '--policy', 'secret'], { 'GET /api/streams/st1': { status: 200, body: STREAM } })).code).toBe(2);
  });

  it('prints help with every command', async () => {
    const r = await run(['--help']);
    expect(r.code).toBe(0);
    for (const c of ['streams create', 'streams list', 'streams show', 'streams rotate-key', 'streams delete', 'keys create', 'keys list', 'keys revoke', 'sign --key', 'nodes list']) expect(r.out).toContain(c);
  });

  it('runs as a process through the launcher (bin/edgelive.mjs)', async () => {
    const pair = await generateSigningKeyPair();
    const dir = mkdtempSync(join(tmpdir(), 'edgelive-cli-'));
    const file = join(dir, 'key.json');
    writeFileSync(file, JSON.stringify(pair.privateJwk), { mode: 0o600 });
    const r = spawnSync(process.execPath, ['bin/edgelive.mjs', 'sign', '--key', file, '--stream', 'st1'], { encoding: 'utf8' });
    expect(r.status, r.stderr).toBe(0);
    expect(r.stdout.trim()).toMatch(/^[\w-]+\.[\w-]+\.[\w-]+$/);
    expect(statSync('bin/edgelive.mjs').mode & 0o111).not.toBe(0);
  });
});
