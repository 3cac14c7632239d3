// `edgelive`, the operator CLI: streams and signing keys through the admin API, playback tokens
// signed offline from a key file, transcoder nodes. `runCli` takes its I/O as arguments so the
// tests drive it without a network or a terminal; `main` wires it to the process.
import { readFile, writeFile } from 'node:fs/promises';
import { parseArgs } from 'node:util';
import { importSigningKey, signPlaybackToken } from '../core/auth/playback-token.ts';

export interface CliIo {
  argv: string[];
  env: Record<string, string | undefined>;
  fetch: typeof fetch;
  stdout: (text: string) => void;
  stderr: (text: string) => void;
  readFile: (path: string) => Promise<string>;
  /** Writes a file only its owner can read (key files). */
  writeSecretFile: (path: string, text: string) => Promise<void>;
  now: () => number;
}

const DEFAULT_URL = 'http://127.0.0.1:8787';

export const USAGE = `edgelive — operate an edgelive deployment

Usage: edgelive <command> [options]

Streams
  streams create [--title T] [--policy public|signed] [--allow-countries DE,AT] [--block-countries FR]
                 [--settings file.json]     create a stream (prints its stream key once)
  streams list [--limit N]                 list streams, newest first
  streams show <id>                        a stream with its live state
  streams update <id> [--title T] [--policy public|signed] [--allow-countries LIST] [--block-countries LIST]
                                           change the title or playback rules ('' clears a list)
  streams rotate-key <id>                  new stream key; the old one is refused from now on
  streams delete <id>                      delete a stream
  streams token <id> [--ttl SECONDS] [--nbf UNIX] [--allow-countries LIST] [--block-countries LIST]
                                           mint a playback token with the deployment's managed key

Signing keys
  keys create [--name N] [--out key.json]  new ES256 key pair; the private key is shown (or written) once
  keys list                                keys, with revocation times
  keys revoke <kid>                        tokens signed with the key stop working within a minute

Offline
  sign --key key.json --stream <id> [--ttl SECONDS] [--nbf UNIX] [--kid KID (for a PEM key)]
       [--allow-countries LIST] [--block-countries LIST]
                                           sign a playback token locally; prints the token

Transcoders
  nodes list                               registered transcoder nodes

Options
  --url URL        the Worker (default $EDGELIVE_URL or ${DEFAULT_URL})
  --token TOKEN    admin token (default $EDGELIVE_ADMIN_TOKEN)
  --json           print the API's JSON as it is
  -h, --help       this help
`;

class UsageError extends Error {}

const OPTIONS = {
  url: { type: 'string' },
  token: { type: 'string' },
  json: { type: 'boolean' },
  help: { type: 'boolean', short: 'h' },
  title: { type: 'string' },
  policy: { type: 'string' },
  'allow-countries': { type: 'string' },
  'block-countries': { type: 'string' },
  settings: { type: 'string' },
  limit: { type: 'string' },
  ttl: { type: 'string' },
  nbf: { type: 'string' },
  name: { type: 'string' },
  out: { type: 'string' },
  key: { type: 'string' },
  kid: { type: 'string' },
  stream: { type: 'string' },
} as const;

type Values = ReturnType<typeof parse>['values'];

function parse(argv: string[]) {
  return parseArgs({ args: argv, options: OPTIONS, allowPositionals: true, strict: true });
}

/** Runs one command; the exit code is 0 on success, 1 when the API or a file says no, 2 on bad usage. */
export async function runCli(io: CliIo): Promise<number> {
  let parsed: ReturnType<typeof parse>;
  try {
    parsed = parse(io.argv);
  } catch (err) {
    io.stderr(`error: ${(err as Error).message}\n\n${USAGE}`);
    return 2;
  }
  const { values, positionals } = parsed;
  if (values.help || positionals.length === 0) {
    io.stdout(USAGE);
    return values.help ? 0 : 2;
  }
  try {
    await dispatch(io, values, positionals);
    return 0;
  } catch (err) {
    if (err instanceof UsageError) {
      io.stderr(`error: ${err.message}\n(edgelive --help lists the commands)\n`);
      return 2;
    }
    io.stderr(`error: ${(err as Error).message}\n`);
    return 1;
  }
}

async function dispatch(io: CliIo, v: Values, pos: string[]): Promise<void> {
  const [group, action, arg] = pos;
  const command = group === 'sign' ? 'sign' : `${group} ${action ?? ''}`.trim();
  const need = (what: string) => {
    if (!arg) throw new UsageError(`${command} needs ${what}`);
    return encodeURIComponent(arg);
  };
  switch (command) {
    case 'streams create': {
      const base = v.settings ? (JSON.parse(await io.readFile(v.settings)) as Record<string, unknown>) : {};
      const playback = playbackFlags(v, (base.playback as Record<string, unknown> | undefined) ?? undefined);
      const body = { ...base, ...(v.title !== undefined ? { title: v.title } : {}), ...(playback ? { playback } : {}) };
      const created = await call(io, v, 'POST', '/api/streams', body);
      return print(io, v, created, () => {
        const s = created as { id: string; streamKey: string; ingest: { rtmp: string }; playback: { hls: string; watch: string } };
        return `stream ${s.id}\n  stream key  ${s.streamKey}   (shown once: keep it)\n  publish     ${s.ingest.rtmp}\n  play        ${s.playback.hls}\n  watch       ${s.playback.watch}\n`;
      });
    }
    case 'streams list': {
      const limit = v.limit ? `?limit=${encodeURIComponent(v.limit)}` : '';
      const r = (await call(io, v, 'GET', `/api/streams${limit}`)) as { streams: Array<{ id: string; title: string; status: string; settings: { playback?: { policy?: string } }; createdAt: string }> };
      return print(io, v, r, () => table(['ID', 'STATUS', 'PLAYBACK', 'CREATED', 'TITLE'], r.streams.map((s) => [s.id, s.status, s.settings.playback?.policy ?? 'public', s.createdAt, s.title])));
    }
    case 'streams show':
      return print(io, v, await call(io, v, 'GET', `/api/streams/${need('a stream id')}`));
    case 'streams update': {
      const id = need('a stream id');
      let playback: Record<string, unknown> | undefined;
      if (v.policy !== undefined || v['allow-countries'] !== undefined || v['block-countries'] !== undefined) {
        // The API replaces `playback` whole; start from what the stream has so one flag changes one thing.
        const current = (await call(io, v, 'GET', `/api/streams/${id}`)) as { settings: { playback?: Record<string, unknown> } };
        playback = playbackFlags(v, current.settings.playback);
      }
      const body = { ...(v.title !== undefined ? { title: v.title } : {}), ...(playback ? { playback } : {}) };
      if (Object.keys(body).length === 0) throw new UsageError('streams update needs --title, --policy, --allow-countries or --block-countries');
      const r = (await call(io, v, 'PATCH', `/api/streams/${id}`, body)) as { id: string; title: string; settings: { playback: unknown } };
      return print(io, v, r, () => `updated ${r.id}\n  title     ${r.title}\n  playback  ${JSON.stringify(r.settings.playback)}\n  (every edge applies it within 30 s)\n`);
    }
    case 'streams rotate-key': {
      const r = (await call(io, v, 'POST', `/api/streams/${need('a stream id')}/rotate-key`)) as { id: string; streamKey: string; ingest: { rtmp: string } };
      return print(io, v, r, () => `stream ${r.id}\n  stream key  ${r.streamKey}   (shown once: keep it)\n  publish     ${r.ingest.rtmp}\n`);
    }
    case 'streams delete':
      await call(io, v, 'DELETE', `/api/streams/${need('a stream id')}`);
      return print(io, v, { deleted: arg }, () => `deleted ${arg}\n`);
    case 'streams token': {
      const body = { ...grantFlags(v), ...(v.ttl ? { expiresIn: integer(v.ttl, '--ttl') } : {}) };
      const r = (await call(io, v, 'POST', `/api/streams/${need('a stream id')}/playback-tokens`, body)) as { token: string; expiresAt: string; playback: { hls: string } };
      return print(io, v, r, () => `${r.token}\n  expires  ${r.expiresAt}\n  play     ${r.playback.hls}\n`);
    }
    case 'keys create': {
      const r = (await call(io, v, 'POST', '/api/signing-keys', v.name !== undefined ? { name: v.name } : {})) as {
        kid: string;
        privateJwk: unknown;
        privateKeyPem: string;
        [k: string]: unknown;
      };
      if (v.out) {
        try {
          await io.writeSecretFile(v.out, JSON.stringify(r.privateJwk, null, 2) + '\n');
        } catch (err) {
          // The key exists on the server now and this is the only time its private half is seen.
          io.stdout(JSON.stringify(r.privateJwk, null, 2) + '\n');
          throw new Error(`key ${r.kid} was created but ${v.out} could not be written (${(err as Error).message}); its private key is printed above`);
        }
        const { privateJwk: _j, privateKeyPem: _p, ...pub } = r;
        return print(io, v, { ...pub, keyFile: v.out }, () => `key ${r.kid}\n  private key written to ${v.out} (mode 600); it is not kept by the server\n  sign with: edgelive sign --key ${v.out} --stream <id>\n`);
      }
      io.stderr('The private key below is shown once; the server keeps only the public half.\n');
      return print(io, v, r, () => `key ${r.kid}\n${JSON.stringify(r.privateJwk, null, 2)}\n${r.privateKeyPem}`);
    }
    case 'keys list': {
      const r = (await call(io, v, 'GET', '/api/signing-keys')) as { keys: Array<{ kid: string; name: string; managed: boolean; createdAt: string; revokedAt: string | null }> };
      return print(io, v, r, () => table(['KID', 'NAME', 'MANAGED', 'CREATED', 'REVOKED'], r.keys.map((k) => [k.kid, k.name, k.managed ? 'yes' : 'no', k.createdAt, k.revokedAt ?? '-'])));
    }
    case 'keys revoke': {
      const r = (await call(io, v, 'DELETE', `/api/signing-keys/${need('a key id')}`)) as { kid: string; revokedAt: string };
      return print(io, v, r, () => `revoked ${r.kid} at ${r.revokedAt}; tokens signed with it stop working within a minute\n`);
    }
    case 'sign':
      return sign(io, v);
    case 'nodes list':
      return print(io, v, await call(io, v, 'GET', '/api/ingest/nodes'));
    default:
      throw new UsageError(`unknown command: ${pos.join(' ')}`);
  }
}

/** Signs a token from a key file without talking to anyone. */
async function sign(io: CliIo, v: Values): Promise<void> {
  if (!v.key) throw new UsageError('sign needs --key <file>');
  if (!v.stream) throw new UsageError('sign needs --stream <id>');
  let text: string;
  try {
    text = await io.readFile(v.key);
  } catch (err) {
    throw new Error(`cannot read ${v.key}: ${(err as Error).message}`);
  }
  const key = await importSigningKey(text, v.kid);
  const now = io.now();
  const ttl = v.ttl ? integer(v.ttl, '--ttl') : 3600;
  const grant = grantFlags(v);
  const token = await signPlaybackToken({ streamId: v.stream, expiresAt: Math.floor(now / 1000) + ttl, ...grant }, key, now);
  io.stdout(v.json ? JSON.stringify({ token, kid: key.kid, streamId: v.stream, expiresAt: new Date((Math.floor(now / 1000) + ttl) * 1000).toISOString() }) + '\n' : token + '\n');
}

function grantFlags(v: Values): { notBefore?: number; allowCountries?: string[]; blockCountries?: string[] } {
  const allow = countries(v['allow-countries']);
  const block = countries(v['block-countries']);
  return {
    ...(v.nbf !== undefined ? { notBefore: integer(v.nbf, '--nbf') } : {}),
    ...(allow ? { allowCountries: allow } : {}),
    ...(block ? { blockCountries: block } : {}),
  };
}

/** The playback settings the flags ask for, on top of `current`; undefined when no flag is given. */
function playbackFlags(v: Values, current: Record<string, unknown> | undefined): Record<string, unknown> | undefined {
  if (v.policy === undefined && v['allow-countries'] === undefined && v['block-countries'] === undefined) return current;
  if (v.policy !== undefined && v.policy !== 'public' && v.policy !== 'signed') throw new UsageError('--policy is public or signed');
  const next: Record<string, unknown> = { ...current };
  if (v.policy !== undefined) next.policy = v.policy;
  for (const [flag, field] of [['allow-countries', 'allowCountries'], ['block-countries', 'blockCountries']] as const) {
    const value = v[flag];
    if (value === undefined) continue;
    const list = countries(value);
    if (list) next[field] = list;
    else delete next[field];
  }
  return next;
}

/** `DE,at, FR` → ['DE', 'AT', 'FR']; '' → undefined (clears). The server validates the codes. */
function countries(value: string | undefined): string[] | undefined {
  if (value === undefined) return undefined;
  const list = value.split(',').map((s) => s.trim().toUpperCase()).filter(Boolean);
  return list.length ? list : undefined;
}

function integer(value: string, flag: string): number {
  if (!/^\d+$/.test(value)) throw new UsageError(`${flag} takes a whole number`);
  return Number(value);
}

/** One admin API call; a non-2xx answer becomes an error naming the API's code and message. */
async function call(io: CliIo, v: Values, method: string, path: string, body?: unknown): Promise<unknown> {
  const base = (v.url ?? io.env.EDGELIVE_URL ?? DEFAULT_URL).replace(/\/+$/, '');
  const token = v.token ?? io.env.EDGELIVE_ADMIN_TOKEN;
  if (!token) throw new UsageError('no admin token: set EDGELIVE_ADMIN_TOKEN or pass --token');
  let res: Response;
  try {
    res = await io.fetch(base + path, {
      method,
      headers: { authorization: `Bearer ${token}`, ...(body !== undefined ? { 'content-type': 'application/json' } : {}) },
      body: body !== undefined ? JSON.stringify(body) : undefined,
    });
  } catch (err) {
    throw new Error(`cannot reach ${base}: ${(err as Error).message}`);
  }
  const text = await res.text();
  let json: unknown = null;
  try {
    json = text ? JSON.parse(text) : null;
  } catch {
    // Not JSON (a proxy's error page): reported below with the status.
  }
  if (!res.ok) {
    const e = (json as { error?: { code?: string; message?: string } } | null)?.error;
    throw new Error(e ? `${res.status} ${e.code}: ${e.message}` : `${method} ${path} answered ${res.status}`);
  }
  return json;
}

function print(io: CliIo, v: Values, value: unknown, human?: () => string): void {
  io.stdout(v.json || !human ? JSON.stringify(value, null, 2) + '\n' : human());
}

function table(head: string[], rows: string[][]): string {
  if (rows.length === 0) return '(none)\n';
  const widths = head.map((h, i) => Math.max(h.length, ...rows.map((r) => (r[i] ?? '').length)));
  const line = (cells: string[]) => cells.map((c, i) => (i === cells.length - 1 ? c : c.padEnd(widths[i]!))).join('  ') + '\n';
  return line(head) + rows.map(line).join('');
}

/** The process entry point (bin/edgelive.mjs calls it). */
export async function main(argv = process.argv.slice(2)): Promise<number> {
  return runCli({
    argv,
    env: process.env,
    fetch: globalThis.fetch,
    stdout: (t) => process.stdout.write(t),
    stderr: (t) => process.stderr.write(t),
    readFile: (p) => readFile(p, 'utf8'),
    writeSecretFile: (p, t) => writeFile(p, t, { mode: 0o600, flag: 'wx' }),
    now: () => Date.now(),
  });
}
