// The `edgelive` CLI where no Worker is involved: offline signing from key files, usage errors
// (exit 2, as JSON with --json), help that lists every command the same way, --version, and the
// launcher run as a real process. Every command that calls the API is run against a real Worker
// in test/e2e/cli-edgelive.test.ts.
import { spawnSync } from 'node:child_process';
import { mkdtempSync, readFileSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { COMMANDS, runCli, usage, type CliIo } from '../../bin/edgelive.ts';
import { PlaybackTokenVerifier, generateSigningKeyPair, type GeneratedKeyPair } from '../../core/auth/playback-token.ts';

/** Runs the CLI in-process; any network call is recorded (and refused): these commands make none. */
async function run(argv: string[], env: Record<string, string> = { EDGELIVE_ADMIN_TOKEN: 'adm1n' }) {
  const calls: string[] = [];
  let out = '';
  let err = '';
  const io: CliIo = {
    argv,
    env,
    fetch: (async (input: string | URL | Request) => {
      calls.push(String(input));
      throw new TypeError('no network in this test');
    }) as typeof fetch,
    WebSocket: globalThis.WebSocket,
    stdout: (t) => void (out += t),
    stderr: (t) => void (err += t),
    stderrIsTTY: false,
    readFile: async (p) => readFileSync(p, 'utf8'),
    writeSecretFile: async () => {
      throw new Error('not in this test');
    },
    writeFile: async () => {
      throw new Error('not in this test');
    },
    now: () => Date.UTC(2026, 10, 21, 12, 0, 0),
    sleep: async () => {},
  };
  const code = await runCli(io);
  return { code, out, err, calls };
}

describe('sign (offline)', () => {
  async function keyFile(pair: GeneratedKeyPair, text = JSON.stringify(pair.privateJwk)) {
    const dir = mkdtempSync(join(tmpdir(), 'edgelive-cli-'));
    const file = join(dir, 'key');
    writeFileSync(file, text);
    return file;
  }

  async function check(token: string, pair: GeneratedKeyPair) {
    return new PlaybackTokenVerifier().verify(token, {
      loadKey: async () => ({ status: 'active', publicJwk: pair.publicJwk }),
      now: Date.UTC(2026, 10, 21, 12, 0, 0),
    });
  }

  it('signs a token from a JWK key file without any network call', async () => {
    const pair = await generateSigningKeyPair();
    const r = await run(['sign', '--key', await keyFile(pair), '--stream', 'st1', '--ttl', '600', '--allow-countries', 'de'], {});
    expect(r.code).toBe(0);
    expect(r.calls).toEqual([]);
    const v = await check(r.out.trim(), pair);
    expect(v).toMatchObject({
      ok: true,
      kid: pair.kid,
      claims: { sub: 'st1', exp: Date.UTC(2026, 10, 21, 12, 10, 0) / 1000, allowCountries: ['DE'] },
    });
  });

  it('signs from a PEM key with --kid, and from the saved answer of keys create', async () => {
    const pair = await generateSigningKeyPair();
    const pem = await run(
      ['sign', '--key', await keyFile(pair, pair.privateKeyPem), '--kid', pair.kid, '--stream', 'st1', '--nbf', '1795262500'],
      {},
    );
    expect(await check(pem.out.trim(), pair)).toMatchObject({ ok: false, rejection: { code: 'token_not_yet_valid' } });
    const saved = await run(
      ['sign', '--key', await keyFile(pair, JSON.stringify({ kid: pair.kid, privateJwk: pair.privateJwk })), '--stream', 'st1', '--json'],
      {},
    );
    const out = JSON.parse(saved.out) as { token: string; kid: string; expiresAt: string };
    expect(out).toMatchObject({ kid: pair.kid, streamId: 'st1', expiresAt: '2026-11-21T13:00:00.000Z' });
    expect((await check(out.token, pair)).ok).toBe(true);
  });

  it('explains what is missing or wrong', async () => {
    const pair = await generateSigningKeyPair();
    expect((await run(['sign', '--stream', 'st1'], {})).err).toContain('--key');
    expect((await run(['sign', '--key', await keyFile(pair)], {})).err).toContain('--stream');
    const pemNoKid = await run(['sign', '--key', await keyFile(pair, pair.privateKeyPem), '--stream', 'st1'], {});
    expect(pemNoKid).toMatchObject({ code: 1, err: expect.stringContaining('key id') });
    const missing = await run(['sign', '--key', '/nonexistent/key.json', '--stream', 'st1'], {});
    expect(missing).toMatchObject({ code: 1, err: expect.stringContaining('cannot read /nonexistent/key.json') });
    const asJson = await run(['sign', '--key', '/nonexistent/key.json', '--stream', 'st1', '--json'], {});
    expect(JSON.parse(asJson.err)).toEqual({ error: { code: 'file_error', message: expect.stringContaining('/nonexistent/key.json') } });
    expect((await run(['sign', '--key', await keyFile(pair), '--stream', 'st1', '--ttl', 'soon'], {})).code).toBe(2);
  });
});

describe('usage errors, exit 2, before any request', () => {
  it('refuses unknown commands, unknown flags, flags a command does not take, missing and extra arguments', async () => {
    const cases: Array<[string[], string]> = [
      [['streams', 'explode'], 'unknown command: streams explode'],
      [['streams', 'list', '--colour'], "Unknown option '--colour'"],
      [['streams', 'list', '--wait'], 'streams list does not take --wait'],
      [['streams', 'show'], 'streams show needs a stream id'],
      [['rooms', 'mute', 'r1'], 'rooms mute needs a viewer (uid or display name)'],
      [['clips', 'show', 'a', 'b'], 'clips show takes 1 argument; unexpected: b'],
      [['clips', 'create', 'st1'], 'clips create needs --start'],
      [['clips', 'create', 'st1', '--start', 'yesterday'], '--start is seconds back from the live edge'],
      [['clips', 'create', 'st1', '--start', '30', '--wait'], '--wait waits for an export'],
      [['rooms', 'token', 'r1', '--name', 'a', '--role', 'admin'], '--role is one of viewer, moderator, host'],
      [['rooms', 'settings', 'r1', '--anonymous', 'maybe'], '--anonymous is on or off'],
      [['streams', 'update', 's1', '--takeover', 'sometimes'], '--takeover is refuse-while-live or allow'],
      [['streams', 'create', '--takeover', 'never'], '--takeover is refuse-while-live or allow'],
      [['webhooks', 'list', '--limit', 'ten'], '--limit takes a whole number'],
      [['streams', 'publish-token', 'st1', '--use', 'forever'], '--use is reusable, single or session'],
      [['streams', 'publish-token', 'st1', '--ttl', 'soon'], '--ttl takes a whole number'],
    ];
    for (const [argv, message] of cases) {
      const r = await run(argv);
      expect({ argv, code: r.code, calls: r.calls }).toEqual({ argv, code: 2, calls: [] });
      expect(r.err, argv.join(' ')).toContain(message);
      const json = await run([...argv, '--json']);
      expect(JSON.parse(json.err), argv.join(' ')).toEqual({ error: { code: 'usage', message: expect.stringContaining(message) } });
    }
  });

  it('needs an admin token for API commands', async () => {
    const r = await run(['streams', 'list', '--json'], {});
    expect(r).toMatchObject({ code: 2, calls: [] });
    expect(JSON.parse(r.err).error.message).toContain('EDGELIVE_ADMIN_TOKEN');
  });

  it('reports an unreachable Worker as code unreachable, exit 1', async () => {
    const r = await run(['clips', 'show', 'cl1', '--json', '--url', 'http://127.0.0.1:9/']);
    expect(r.code).toBe(1);
    expect(r.calls).toEqual(['http://127.0.0.1:9/api/clips/cl1']);
    expect(JSON.parse(r.err)).toEqual({
      error: { code: 'unreachable', message: 'cannot reach http://127.0.0.1:9: no network in this test' },
    });
  });
});

describe('help and version', () => {
  it('lists every command, each as its name, its arguments and flags, and an indented summary, within 100 columns', async () => {
    const r = await run(['--help']);
    expect(r.code).toBe(0);
    const flat = r.out.replace(/\s+/g, ' ');
    for (const c of COMMANDS) {
      expect(r.out).toContain(`\n  ${c.name}`);
      expect(flat).toContain(` ${[c.name, c.synopsis].filter(Boolean).join(' ')} ${c.summary} `);
    }
    for (const line of r.out.split('\n')) expect(line.length, line).toBeLessThanOrEqual(100);
    for (const group of ['Streams', 'Clips', 'Recordings', 'Webhooks', 'Rooms', 'Signing keys', 'Transcoders', 'Offline'])
      expect(r.out).toContain(`\n${group}\n`);
    expect((await run([])).code).toBe(2);
    // The list: clips and exports, recordings, webhooks, rooms.
    const names = COMMANDS.map((c) => c.name);
    for (const n of [
      'clips create',
      'clips export',
      'clips download',
      'recordings list',
      'recordings show',
      'webhooks create',
      'webhooks list',
      'webhooks test',
      'webhooks deliveries',
      'rooms token',
      'rooms mute',
      'rooms ban',
      'rooms settings',
      'rooms stats',
    ]) {
      expect(names).toContain(n);
    }
  });

  it('a flag a command lists in its synopsis is one it accepts', () => {
    for (const c of COMMANDS) {
      const shown = [...c.synopsis.matchAll(/--([a-z-]+)/g)].map((m) => m[1]);
      for (const f of shown) expect(c.flags ?? [], `${c.name} --${f}`).toContain(f);
    }
  });

  it('group help and command help', async () => {
    const group = await run(['webhooks', '--help']);
    expect(group.code).toBe(0);
    expect(group.out).toBe(usage('Webhooks'));
    expect(group.out).not.toContain('clips create');
    expect((await run(['help', 'rooms'])).out).toBe(usage('Rooms'));
    const one = await run(['clips', 'export', '--help']);
    expect(one.out).toMatch(/^Usage: edgelive clips export <clip> \[--renditions LIST\] \[--wait \[--timeout SECONDS\]\]\n/);
    expect((await run(['clips'])).code).toBe(2);
  });

  it('--version prints the package version', async () => {
    const pkg = JSON.parse(readFileSync('package.json', 'utf8')) as { version: string };
    expect(await run(['--version'])).toMatchObject({ code: 0, out: `edgelive ${pkg.version}\n` });
    expect(JSON.parse((await run(['--version', '--json'])).out)).toEqual({ version: pkg.version });
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
    const bad = spawnSync(process.execPath, ['bin/edgelive.mjs', 'streams', 'show', '--json'], { encoding: 'utf8' });
    expect(bad.status).toBe(2);
    expect(JSON.parse(bad.stderr)).toEqual({ error: { code: 'usage', message: 'streams show needs a stream id' } });
  });
});
