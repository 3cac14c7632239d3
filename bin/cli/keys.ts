// `edgelive keys …` and `sign`: the deployment's playback-token signing keys, and tokens signed
// offline from a key file (no network: a site signs its own tokens this way).
import { importSigningKey, signPlaybackToken } from '../../core/auth/playback-token.ts';
import { CliError, integer, table, UsageError, type Command } from './context.ts';
import { grantFlags } from './streams.ts';

export const keyCommands: Command[] = [
  {
    name: 'keys create',
    group: 'Signing keys',
    synopsis: '[--name N] [--out key.json]',
    summary: 'new ES256 key pair; the private key is shown (or written, mode 600) once',
    flags: ['name', 'out'],
    async run(c) {
      const r = await c.call<{ kid: string; privateJwk: unknown; privateKeyPem: string; [k: string]: unknown }>(
        'POST',
        '/api/signing-keys',
        c.v.name !== undefined ? { name: c.v.name } : {},
      );
      const out = c.v.out;
      if (out) {
        try {
          await c.io.writeSecretFile(out, JSON.stringify(r.privateJwk, null, 2) + '\n');
        } catch (err) {
          // The key exists on the server now and this is the only time its private half is seen.
          c.io.stdout(JSON.stringify(r.privateJwk, null, 2) + '\n');
          throw new CliError(
            'file_error',
            `key ${r.kid} was created but ${out} could not be written (${(err as Error).message}); its private key is printed above`,
          );
        }
        const { privateJwk: _j, privateKeyPem: _p, ...pub } = r;
        return c.print(
          { ...pub, keyFile: out },
          () =>
            `key ${r.kid}\n  private key written to ${out} (mode 600); it is not kept by the server\n  sign with: edgelive sign --key ${out} --stream <id>\n`,
        );
      }
      c.io.stderr('The private key below is shown once; the server keeps only the public half.\n');
      c.print(r, () => `key ${r.kid}\n${JSON.stringify(r.privateJwk, null, 2)}\n${r.privateKeyPem}`);
    },
  },
  {
    name: 'keys list',
    group: 'Signing keys',
    synopsis: '',
    summary: 'signing keys, with revocation times',
    async run(c) {
      const r = await c.call<{ keys: Array<{ kid: string; name: string; managed: boolean; createdAt: string; revokedAt: string | null }> }>(
        'GET',
        '/api/signing-keys',
      );
      c.print(r, () =>
        table(
          ['KID', 'NAME', 'MANAGED', 'CREATED', 'REVOKED'],
          r.keys.map((k) => [k.kid, k.name, k.managed ? 'yes' : 'no', k.createdAt, k.revokedAt ?? '-']),
        ),
      );
    },
  },
  {
    name: 'keys revoke',
    group: 'Signing keys',
    synopsis: '<kid>',
    summary: 'tokens signed with the key stop working within a minute',
    args: ['a key id'],
    async run(c) {
      const r = await c.call<{ kid: string; revokedAt: string }>('DELETE', `/api/signing-keys/${c.arg(0)}`);
      c.print(r, () => `revoked ${r.kid} at ${r.revokedAt}; tokens signed with it stop working within a minute\n`);
    },
  },
  {
    name: 'sign',
    group: 'Offline',
    synopsis:
      '--key key.json --stream <id> [--ttl SECONDS] [--nbf UNIX] [--kid KID (for a PEM key)] [--allow-countries LIST] [--block-countries LIST]',
    summary: 'sign a playback token locally from a key file; prints the token (no network)',
    flags: ['key', 'stream', 'ttl', 'nbf', 'kid', 'allow-countries', 'block-countries'],
    async run(c) {
      if (!c.v.key) throw new UsageError('sign needs --key <file>');
      if (!c.v.stream) throw new UsageError('sign needs --stream <id>');
      let text: string;
      try {
        text = await c.io.readFile(c.v.key);
      } catch (err) {
        throw new CliError('file_error', `cannot read ${c.v.key}: ${(err as Error).message}`);
      }
      let key: Awaited<ReturnType<typeof importSigningKey>>;
      try {
        key = await importSigningKey(text, c.v.kid);
      } catch (err) {
        throw new CliError('invalid_key', (err as Error).message);
      }
      const now = c.io.now();
      const ttl = c.v.ttl ? integer(c.v.ttl, '--ttl') : 3600;
      const expiresAt = Math.floor(now / 1000) + ttl;
      const token = await signPlaybackToken({ streamId: c.v.stream, expiresAt, ...grantFlags(c.v) }, key, now);
      c.print({ token, kid: key.kid, streamId: c.v.stream, expiresAt: new Date(expiresAt * 1000).toISOString() }, () => token + '\n');
    },
  },
];
