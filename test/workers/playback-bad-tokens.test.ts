// The bad-token corpus: every way a playback token can be wrong, each refused with its exact
// status and JSON error code, on the route named; and a corpus of good tokens, every one accepted.
// 401: no, malformed, forged, expired or not-yet-valid tokens and unknown or revoked keys.
// 403: a genuine token used where it does not apply (another stream, another country).
import { base64url, generateKeyPair, exportJWK, exportSPKI, type JWK } from 'jose';
import { beforeAll, describe, expect, it } from 'vitest';
import { importSigningKey } from '../../core/auth/playback-token.ts';
import { api, createKey, expectRefusal, liveStream, nowSeconds, operator, play, tokenFor, type ApiKey } from './playback-fixtures.ts';

const op = operator('192.0.2.12');

type Route = 'multivariant' | 'media' | 'init' | 'part' | 'segment';

interface World {
  id: string;
  otherId: string;
  epoch: number;
  key: ApiKey;
  second: ApiKey;
  revoked: ApiKey;
  foreign: CryptoKeyPair;
  foreignJwk: JWK;
  publicJwk: JWK;
  publicPem: string;
}

let w: World;

beforeAll(async () => {
  const a = await liveStream(op, { playback: { policy: 'signed' } });
  const b = await liveStream(op, { playback: { policy: 'signed' } });
  const key = await createKey(op, 'main');
  const second = await createKey(op, 'second');
  const revoked = await createKey(op, 'revoked');
  expect((await api(op, 'DELETE', `/signing-keys/${revoked.kid}`)).status).toBe(200);
  const foreign = await generateKeyPair('ES256', { extractable: true });
  const listed = await api<{ publicJwk: JWK }>(op, 'GET', `/signing-keys/${key.kid}`);
  const publicKey = await crypto.subtle.importKey(
    'jwk',
    listed.body.publicJwk as JsonWebKey,
    { name: 'ECDSA', namedCurve: 'P-256' },
    true,
    ['verify'],
  );
  w = {
    id: a.stream.id,
    otherId: b.stream.id,
    epoch: a.epoch,
    key,
    second,
    revoked,
    foreign,
    foreignJwk: await exportJWK(foreign.publicKey),
    publicJwk: listed.body.publicJwk,
    publicPem: await exportSPKI(publicKey),
  };
});

function path(route: Route): string {
  switch (route) {
    case 'multivariant':
      return `/live/${w.id}/index.m3u8`;
    case 'media':
      return `/live/${w.id}/v/index.m3u8`;
    case 'init':
      return `/live/${w.id}/v/${w.epoch}/init.mp4`;
    case 'part':
      return `/live/${w.id}/v/${w.epoch}/2.0.m4s`;
    case 'segment':
      return `/live/${w.id}/v/${w.epoch}/1.m4s`;
  }
}

// ---- raw JWS building, so every field can be wrong -------------------------------------------

const enc = new TextEncoder();
const b64 = (x: string | Uint8Array) => base64url.encode(x);
const part = (o: unknown) => b64(JSON.stringify(o));

/** ES256 over `header.payload` exactly as given (raw r||s, as JWS wants). */
async function es256(header: string, payload: string, key: CryptoKey): Promise<string> {
  const sig = await crypto.subtle.sign({ name: 'ECDSA', hash: 'SHA-256' }, key, enc.encode(`${header}.${payload}`));
  return `${header}.${payload}.${b64(new Uint8Array(sig))}`;
}

async function hs256(header: string, payload: string, secret: Uint8Array): Promise<string> {
  const k = await crypto.subtle.importKey('raw', secret, { name: 'HMAC', hash: 'SHA-256' }, false, ['sign']);
  const sig = await crypto.subtle.sign('HMAC', k, enc.encode(`${header}.${payload}`));
  return `${header}.${payload}.${b64(new Uint8Array(sig))}`;
}

const header = (extra: Record<string, unknown> = {}) => ({ alg: 'ES256', kid: w.key.kid, typ: 'JWT', ...extra });
const claims = (extra: Record<string, unknown> = {}) => ({ sub: w.id, exp: nowSeconds() + 3600, iat: nowSeconds(), ...extra });

/** A token signed with the main key over the given header and claims (JSON objects or raw strings). */
function signed(h: unknown = header(), c: unknown = claims(), key: CryptoKey = w.key.signingKey.key): Promise<string> {
  return es256(typeof h === 'string' ? h : part(h), typeof c === 'string' ? c : part(c), key);
}

function without<T extends Record<string, unknown>>(o: T, name: string): Record<string, unknown> {
  const copy: Record<string, unknown> = { ...o };
  delete copy[name];
  return copy;
}

/** Replaces the character at `i` with a different base64url character. */
function flipAt(s: string, i: number): string {
  return s.slice(0, i) + (s[i] === 'A' ? 'B' : 'A') + s.slice(i + 1);
}

function segments(t: string): [string, string, string] {
  return t.split('.') as [string, string, string];
}

/** The raw r||s signature as ASN.1 DER, the encoding JWS does not use. */
function derSignature(raw: Uint8Array): Uint8Array {
  const int = (b: Uint8Array) => {
    let i = 0;
    while (i < b.length - 1 && b[i] === 0) i++;
    const v = b.slice(i);
    return v[0]! & 0x80 ? [0x02, v.length + 1, 0, ...v] : [0x02, v.length, ...v];
  };
  const body = [...int(raw.slice(0, 32)), ...int(raw.slice(32))];
  return new Uint8Array([0x30, body.length, ...body]);
}

interface BadCase {
  name: string;
  /** The token (or raw query) the viewer sends; undefined = none. */
  token: () => Promise<string | undefined> | string | undefined;
  route?: Route;
  /** Raw extra query instead of `token=…`. */
  query?: () => Promise<string> | string;
  country?: string;
  status: 401 | 403;
  code: string;
}

const corpus: BadCase[] = [
  // -- absent --
  { name: 'no token at all', token: () => undefined, status: 401, code: 'token_required' },
  { name: 'an empty token=', token: () => '', status: 401, code: 'token_required' },
  {
    name: 'the token under another name (?jwt=)',
    token: () => undefined,
    query: async () => `jwt=${await tokenFor(w.id, w.key.signingKey)}`,
    status: 401,
    code: 'token_required',
  },
  // -- time --
  { name: 'expired a minute ago', token: () => signed(header(), claims({ exp: nowSeconds() - 60 })), status: 401, code: 'token_expired' },
  {
    name: 'expired a year ago',
    token: () => signed(header(), claims({ exp: nowSeconds() - 365 * 86400 })),
    status: 401,
    code: 'token_expired',
  },
  {
    name: 'expired just beyond the clock-skew allowance',
    token: () => signed(header(), claims({ exp: nowSeconds() - 10 })),
    status: 401,
    code: 'token_expired',
  },
  {
    name: 'expired, on a part',
    route: 'part',
    token: () => signed(header(), claims({ exp: nowSeconds() - 60 })),
    status: 401,
    code: 'token_expired',
  },
  {
    name: 'not valid for two more minutes (nbf)',
    token: () => signed(header(), claims({ nbf: nowSeconds() + 120 })),
    status: 401,
    code: 'token_not_yet_valid',
  },
  {
    name: 'not valid until tomorrow (nbf), on a segment',
    route: 'segment',
    token: () => signed(header(), claims({ nbf: nowSeconds() + 86400 })),
    status: 401,
    code: 'token_not_yet_valid',
  },
  // -- claims --
  { name: 'no exp', token: () => signed(header(), without(claims(), 'exp')), status: 401, code: 'invalid_token' },
  {
    name: 'exp as a string',
    token: () => signed(header(), claims({ exp: String(nowSeconds() + 3600) })),
    status: 401,
    code: 'invalid_token',
  },
  { name: 'exp null', token: () => signed(header(), claims({ exp: null })), status: 401, code: 'invalid_token' },
  { name: 'no sub', token: () => signed(header(), without(claims(), 'sub')), status: 401, code: 'invalid_token' },
  { name: 'sub as a number', token: () => signed(header(), claims({ sub: 42 })), status: 401, code: 'invalid_token' },
  { name: 'sub that is not a stream id', token: () => signed(header(), claims({ sub: '../other' })), status: 401, code: 'invalid_token' },
  { name: 'nbf as a string', token: () => signed(header(), claims({ nbf: 'yesterday' })), status: 401, code: 'invalid_token' },
  {
    name: 'allowCountries not a list',
    token: () => signed(header(), claims({ allowCountries: 'DE' })),
    status: 401,
    code: 'invalid_token',
  },
  {
    name: 'allowCountries with a country name',
    token: () => signed(header(), claims({ allowCountries: ['Germany'] })),
    status: 401,
    code: 'invalid_token',
  },
  { name: 'a JSON array as the claims', token: () => signed(header(), [claims()]), status: 401, code: 'invalid_token' },
  { name: 'claims that are not JSON', token: () => signed(header(), b64('sub=me')), status: 401, code: 'invalid_token' },
  // -- another stream's genuine token --
  {
    name: 'another stream’s token on the multivariant playlist',
    route: 'multivariant',
    token: () => tokenFor(w.otherId, w.key.signingKey),
    status: 403,
    code: 'token_wrong_stream',
  },
  {
    name: 'another stream’s token on the media playlist',
    route: 'media',
    token: () => tokenFor(w.otherId, w.key.signingKey),
    status: 403,
    code: 'token_wrong_stream',
  },
  {
    name: 'another stream’s token on the init segment',
    route: 'init',
    token: () => tokenFor(w.otherId, w.key.signingKey),
    status: 403,
    code: 'token_wrong_stream',
  },
  {
    name: 'another stream’s token on a part',
    route: 'part',
    token: () => tokenFor(w.otherId, w.key.signingKey),
    status: 403,
    code: 'token_wrong_stream',
  },
  {
    name: 'another stream’s token on a segment',
    route: 'segment',
    token: () => tokenFor(w.otherId, w.key.signingKey),
    status: 403,
    code: 'token_wrong_stream',
  },
  // -- keys --
  {
    name: 'a well-formed kid no one issued',
    token: () => signed(header({ kid: 'key_0000000000000000' })),
    status: 401,
    code: 'unknown_key',
  },
  { name: 'a kid that is a path', token: () => signed(header({ kid: '../../etc/passwd' })), status: 401, code: 'unknown_key' },
  { name: 'no kid', token: () => signed(without(header(), 'kid')), status: 401, code: 'invalid_token' },
  { name: 'kid as a number', token: () => signed(header({ kid: 7 })), status: 401, code: 'invalid_token' },
  { name: 'a revoked key', token: () => tokenFor(w.id, w.revoked.signingKey), status: 401, code: 'key_revoked' },
  { name: 'a revoked key, on a part', route: 'part', token: () => tokenFor(w.id, w.revoked.signingKey), status: 401, code: 'key_revoked' },
  {
    name: 'signed by a stranger’s key under our kid',
    token: () => signed(header(), claims(), w.foreign.privateKey),
    status: 401,
    code: 'invalid_token',
  },
  {
    name: 'signed by one key, kid switched to another registered key',
    token: async () => {
      const [, p, s] = segments(await signed());
      return `${part(header({ kid: w.second.kid }))}.${p}.${s}`;
    },
    status: 401,
    code: 'invalid_token',
  },
  // -- algorithms --
  {
    name: 'alg none, no signature',
    token: () => `${part(header({ alg: 'none' }))}.${part(claims())}.`,
    status: 401,
    code: 'invalid_token',
  },
  {
    name: 'alg none, a real signature kept',
    token: async () => {
      const [, p, s] = segments(await signed());
      return `${part(header({ alg: 'none' }))}.${p}.${s}`;
    },
    status: 401,
    code: 'invalid_token',
  },
  { name: 'alg NONE', token: async () => signed(header({ alg: 'NONE' })), status: 401, code: 'invalid_token' },
  {
    name: 'HS256 keyed with the public JWK',
    token: () => hs256(part(header({ alg: 'HS256' })), part(claims()), enc.encode(JSON.stringify(w.publicJwk))),
    status: 401,
    code: 'invalid_token',
  },
  {
    name: 'HS256 keyed with the public key PEM',
    token: () => hs256(part(header({ alg: 'HS256' })), part(claims()), enc.encode(w.publicPem)),
    status: 401,
    code: 'invalid_token',
  },
  { name: 'RS256 named, ES256 signature', token: () => signed(header({ alg: 'RS256' })), status: 401, code: 'invalid_token' },
  { name: 'ES384 named, ES256 signature', token: () => signed(header({ alg: 'ES384' })), status: 401, code: 'invalid_token' },
  { name: 'alg in lower case (es256)', token: () => signed(header({ alg: 'es256' })), status: 401, code: 'invalid_token' },
  { name: 'no alg', token: () => signed(without(header(), 'alg')), status: 401, code: 'invalid_token' },
  // -- tampering --
  {
    name: 'payload tampered: exp pushed a year out',
    token: async () => {
      const [h, , s] = segments(await signed());
      return `${h}.${part(claims({ exp: nowSeconds() + 365 * 86400 }))}.${s}`;
    },
    status: 401,
    code: 'invalid_token',
  },
  {
    name: 'payload tampered: another stream’s token re-addressed to this one',
    token: async () => {
      const t = await tokenFor(w.otherId, w.key.signingKey);
      const [h, p, s] = segments(t);
      const c = JSON.parse(new TextDecoder().decode(base64url.decode(p))) as Record<string, unknown>;
      return `${h}.${part({ ...c, sub: w.id })}.${s}`;
    },
    status: 401,
    code: 'invalid_token',
  },
  {
    name: 'payload tampered: country rule removed',
    country: 'DE',
    token: async () => {
      const [h, , s] = segments(await signed(header(), claims({ allowCountries: ['FR'] })));
      return `${h}.${part(claims())}.${s}`;
    },
    status: 401,
    code: 'invalid_token',
  },
  {
    name: 'header tampered: typ changed',
    token: async () => {
      const [, p, s] = segments(await signed());
      return `${part(header({ typ: 'at+jwt' }))}.${p}.${s}`;
    },
    status: 401,
    code: 'invalid_token',
  },
  {
    name: 'signature tampered: one character changed',
    token: async () => {
      const [h, p, s] = segments(await signed());
      return `${h}.${p}.${flipAt(s, 20)}`;
    },
    status: 401,
    code: 'invalid_token',
  },
  {
    name: 'signature tampered, on the init segment',
    route: 'init',
    token: async () => {
      const [h, p, s] = segments(await signed());
      return `${h}.${p}.${flipAt(s, 40)}`;
    },
    status: 401,
    code: 'invalid_token',
  },
  { name: 'signature truncated', token: async () => (await signed()).slice(0, -10), status: 401, code: 'invalid_token' },
  {
    name: 'signature missing',
    token: async () => {
      const [h, p] = segments(await signed());
      return `${h}.${p}.`;
    },
    status: 401,
    code: 'invalid_token',
  },
  {
    name: 'signature of 64 zero bytes',
    token: async () => {
      const [h, p] = segments(await signed());
      return `${h}.${p}.${b64(new Uint8Array(64))}`;
    },
    status: 401,
    code: 'invalid_token',
  },
  {
    name: 'signature DER-encoded instead of r||s',
    token: async () => {
      const [h, p, s] = segments(await signed());
      return `${h}.${p}.${b64(derSignature(base64url.decode(s)))}`;
    },
    status: 401,
    code: 'invalid_token',
  },
  {
    name: 'signature spliced from another genuine token',
    token: async () => {
      const [h, p] = segments(await signed(header(), claims({ exp: nowSeconds() + 100 })));
      const [, , s] = segments(await signed(header(), claims({ exp: nowSeconds() + 200 })));
      return `${h}.${p}.${s}`;
    },
    status: 401,
    code: 'invalid_token',
  },
  // -- encoding --
  {
    name: 'header not base64url',
    token: async () => {
      const [, p, s] = segments(await signed());
      return `!!!.${p}.${s}`;
    },
    status: 401,
    code: 'invalid_token',
  },
  {
    name: 'payload not base64url',
    token: async () => {
      const [h, , s] = segments(await signed());
      return `${h}.$$$.${s}`;
    },
    status: 401,
    code: 'invalid_token',
  },
  {
    name: 'standard base64 (+ and /) in the signature',
    token: async () => {
      const [h, p, s] = segments(await signed());
      return `${h}.${p}.+/${s.slice(2)}`;
    },
    status: 401,
    code: 'invalid_token',
  },
  { name: 'base64 padding', token: async () => `${await signed()}==`, status: 401, code: 'invalid_token' },
  {
    name: 'a header that is not JSON',
    token: async () => {
      const [, p, s] = segments(await signed());
      return `${b64('hello')}.${p}.${s}`;
    },
    status: 401,
    code: 'invalid_token',
  },
  {
    name: 'two parts',
    token: async () =>
      segments(await signed())
        .slice(0, 2)
        .join('.'),
    status: 401,
    code: 'invalid_token',
  },
  { name: 'four parts', token: async () => `${await signed()}.${b64('x')}`, status: 401, code: 'invalid_token' },
  {
    name: 'five parts (a JWE)',
    token: () => `${part({ alg: 'dir', enc: 'A256GCM', kid: w.key.kid })}..${b64('iv')}.${b64('ct')}.${b64('tag')}`,
    status: 401,
    code: 'invalid_token',
  },
  {
    name: 'whitespace inside',
    token: async () => {
      const [h, p, s] = segments(await signed());
      return `${h}. ${p}.${s}`;
    },
    status: 401,
    code: 'invalid_token',
  },
  { name: 'not a JWT at all', token: () => 'letmein', status: 401, code: 'invalid_token' },
  // -- headers --
  { name: 'an unknown critical header (crit)', token: () => signed(header({ crit: ['exp'], exp: 1 })), status: 401, code: 'invalid_token' },
  {
    name: 'an unencoded payload (b64: false)',
    token: () => signed(header({ crit: ['b64'], b64: false })),
    status: 401,
    code: 'invalid_token',
  },
  {
    name: 'the attacker’s key embedded in the header (jwk)',
    token: () => signed(header({ jwk: w.foreignJwk }), claims(), w.foreign.privateKey),
    status: 401,
    code: 'invalid_token',
  },
  {
    name: 'a key URL in the header (jku)',
    token: () => signed(header({ jku: 'https://evil.example/jwks.json' }), claims(), w.foreign.privateKey),
    status: 401,
    code: 'invalid_token',
  },
  // -- size and shape of the query --
  {
    name: 'oversized: a genuine signature over 5 KB of claims',
    token: () => signed(header(), claims({ pad: 'x'.repeat(5000) })),
    status: 401,
    code: 'invalid_token',
  },
  { name: 'oversized: 20 KB of junk', token: () => 'a'.repeat(20_000), status: 401, code: 'invalid_token' },
  {
    name: 'two tokens in the query',
    token: () => undefined,
    query: async () => {
      const t = await tokenFor(w.id, w.key.signingKey);
      return `token=${t}&token=${t}`;
    },
    status: 401,
    code: 'invalid_token',
  },
  // -- the token's own country rules --
  {
    name: 'a token for France only, used in Germany',
    country: 'DE',
    token: () => tokenFor(w.id, w.key.signingKey, { allowCountries: ['FR'] }),
    status: 403,
    code: 'geo_blocked',
  },
  {
    name: 'a token blocking Germany, used in Germany, on a part',
    route: 'part',
    country: 'DE',
    token: () => tokenFor(w.id, w.key.signingKey, { blockCountries: ['DE'] }),
    status: 403,
    code: 'geo_blocked',
  },
  {
    name: 'a token for France only, country unknown',
    token: () => tokenFor(w.id, w.key.signingKey, { allowCountries: ['FR'] }),
    status: 403,
    code: 'geo_blocked',
  },
];

describe('the bad-token corpus', () => {
  it('has at least 40 cases', () => {
    expect(corpus.length).toBeGreaterThanOrEqual(40);
  });

  it.each(corpus.map((c) => [c.name, c] as const))('refuses %s', async (_name, c) => {
    const token = await c.token();
    const query = c.query ? await c.query() : undefined;
    const res = await play(path(c.route ?? 'media'), { token, query, country: c.country });
    await expectRefusal(res, c.status, c.code, c.name);
  });
});

interface GoodCase {
  name: string;
  token: () => Promise<string>;
  country?: string;
}

const goodCorpus: GoodCase[] = [
  { name: 'sub and exp only', token: () => signed(header(), { sub: w.id, exp: nowSeconds() + 60 }) },
  { name: 'with iat and a past nbf', token: () => signed(header(), claims({ nbf: nowSeconds() - 60 })) },
  { name: 'nbf a few seconds ahead, within the clock-skew allowance', token: () => signed(header(), claims({ nbf: nowSeconds() + 3 })) },
  { name: 'exp a few seconds ahead', token: () => signed(header(), claims({ exp: nowSeconds() + 3 })) },
  { name: 'a fractional exp', token: () => signed(header(), claims({ exp: nowSeconds() + 60.5 })) },
  {
    name: 'claims edgelive does not read (jti, aud, iss)',
    token: () => signed(header(), claims({ jti: crypto.randomUUID(), aud: 'player', iss: 'my-site' })),
  },
  { name: 'no typ header', token: () => signed(without(header(), 'typ')) },
  {
    name: 'allowed countries including the viewer’s',
    country: 'DE',
    token: () => tokenFor(w.id, w.key.signingKey, { allowCountries: ['FR', 'DE'] }),
  },
  { name: 'allowed countries in lower case', country: 'DE', token: () => signed(header(), claims({ allowCountries: ['de'] })) },
  {
    name: 'blocked countries not including the viewer’s',
    country: 'DE',
    token: () => tokenFor(w.id, w.key.signingKey, { blockCountries: ['FR'] }),
  },
  { name: 'signed with a second key', token: () => tokenFor(w.id, w.second.signingKey) },
  {
    name: 'signed with the PEM form of the key',
    token: async () => tokenFor(w.id, await importSigningKey(w.key.privateKeyPem, w.key.kid)),
  },
  {
    name: 'minted by the API',
    token: async () => (await api<{ token: string }>(op, 'POST', `/streams/${w.id}/playback-tokens`, {})).body.token,
  },
  { name: 'a long token (near 3 KB, verified every time)', token: () => signed(header(), claims({ pad: 'x'.repeat(2000) })) },
];

describe('the good-token corpus', () => {
  it.each(goodCorpus.map((c) => [c.name, c] as const))('accepts %s on playlists and media', async (_name, c) => {
    const token = await c.token();
    for (const route of ['multivariant', 'media', 'part'] as const) {
      const res = await play(path(route), { token, country: c.country });
      expect(res.status, `${c.name} on ${route}: ${res.status === 200 ? '' : await res.clone().text()}`).toBe(200);
      await res.arrayBuffer();
    }
  });
});
