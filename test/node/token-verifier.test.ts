// The pure playback-token core in Node: signing and checking, the per-isolate key cache and its
// revocation window (a minute at most), the remembered-token cache, and key files.
import { exportJWK, generateKeyPair } from 'jose';
import { afterEach, describe, expect, it, vi } from 'vitest';
import {
  KEY_CACHE_TTL_MS,
  KEY_STALE_IF_ERROR_MS,
  PlaybackTokenVerifier,
  generateSigningKeyPair,
  importSigningKey,
  signPlaybackToken,
  type GeneratedKeyPair,
  type KeyLookup,
  type SigningKey,
} from '../../core/auth/playback-token.ts';

const T0 = Date.UTC(2026, 10, 21, 12, 0, 0);
const sec = (ms: number) => Math.floor(ms / 1000);

/** A catalog of keys the verifier asks, counting its questions. */
class FakeCatalog {
  readonly keys = new Map<string, { pair: GeneratedKeyPair; revoked: boolean }>();
  loads = 0;
  failing = false;
  add(pair: GeneratedKeyPair) {
    this.keys.set(pair.kid, { pair, revoked: false });
  }
  revoke(kid: string) {
    this.keys.get(kid)!.revoked = true;
  }
  loadKey = async (kid: string): Promise<KeyLookup> => {
    this.loads++;
    if (this.failing) throw new Error('D1 is unavailable');
    const k = this.keys.get(kid);
    if (!k) return { status: 'unknown' };
    return k.revoked ? { status: 'revoked' } : { status: 'active', publicJwk: k.pair.publicJwk };
  };
}

async function setup() {
  const pair = await generateSigningKeyPair();
  const catalog = new FakeCatalog();
  catalog.add(pair);
  const signingKey = await importSigningKey(JSON.stringify(pair.privateJwk));
  return { pair, catalog, signingKey, verifier: new PlaybackTokenVerifier() };
}

function token(key: SigningKey, streamId = 'stream1', exp = sec(T0) + 3600, extra: { notBefore?: number; allowCountries?: string[] } = {}) {
  return signPlaybackToken({ streamId, expiresAt: exp, ...extra }, key, T0);
}

afterEach(() => {
  vi.restoreAllMocks();
});

describe('signing and checking', () => {
  it('round-trips the claims: sub, exp, iat, nbf and country rules; the header names the key', async () => {
    const { catalog, signingKey, verifier, pair } = await setup();
    const t = await token(signingKey, 'stream1', sec(T0) + 60, { notBefore: sec(T0) - 5, allowCountries: ['DE'] });
    const header = JSON.parse(Buffer.from(t.split('.')[0]!, 'base64url').toString()) as Record<string, unknown>;
    expect(header).toEqual({ alg: 'ES256', kid: pair.kid, typ: 'JWT' });
    const r = await verifier.verify(t, { loadKey: catalog.loadKey, now: T0 });
    expect(r).toEqual({
      ok: true,
      kid: pair.kid,
      claims: { sub: 'stream1', exp: sec(T0) + 60, nbf: sec(T0) - 5, iat: sec(T0), allowCountries: ['DE'] },
    });
  });

  it('tolerates five seconds of clock skew on exp and nbf, and no more', async () => {
    const { catalog, signingKey } = await setup();
    const exp = sec(T0) + 60;
    const t = await token(signingKey, 's', exp, { notBefore: sec(T0) + 30 });
    const at = async (ms: number) => {
      const r = await new PlaybackTokenVerifier().verify(t, { loadKey: catalog.loadKey, now: ms });
      return r.ok ? 'ok' : r.rejection.code;
    };
    expect(await at(T0 + 24_000)).toBe('token_not_yet_valid');
    expect(await at(T0 + 25_000)).toBe('ok');
    expect(await at((exp + 4) * 1000)).toBe('ok');
    expect(await at((exp + 5) * 1000)).toBe('token_expired');
  });
});

describe('the key cache', () => {
  it('asks the catalog once per key per TTL and imports the key once, however many tokens it sees', async () => {
    const { catalog, signingKey, verifier } = await setup();
    for (let i = 0; i < 50; i++) {
      const r = await verifier.verify(await token(signingKey, `s${i}`), { loadKey: catalog.loadKey, now: T0 + i * 100 });
      expect(r.ok).toBe(true);
    }
    expect(catalog.loads).toBe(1);
  });

  it('coalesces concurrent first lookups of one key into one catalog read', async () => {
    const { catalog, signingKey, verifier } = await setup();
    const tokens = await Promise.all(Array.from({ length: 20 }, (_, i) => token(signingKey, `s${i}`)));
    const results = await Promise.all(tokens.map((t) => verifier.verify(t, { loadKey: catalog.loadKey, now: T0 })));
    expect(results.every((r) => r.ok)).toBe(true);
    expect(catalog.loads).toBe(1);
  });

  it('remembers an unknown key id for the TTL too, so random kids cannot hammer the catalog', async () => {
    const { catalog, verifier } = await setup();
    const stranger = await generateSigningKeyPair();
    const key = await importSigningKey(JSON.stringify(stranger.privateJwk));
    for (let i = 0; i < 20; i++) {
      const r = await verifier.verify(await token(key, `s${i}`), { loadKey: catalog.loadKey, now: T0 + i });
      expect(r.ok ? 'ok' : r.rejection.code).toBe('unknown_key');
    }
    expect(catalog.loads).toBe(1);
  });

  it('sees a revocation made elsewhere within the TTL (30 s), tokens it already verified included', async () => {
    const { catalog, signingKey, verifier, pair } = await setup();
    const remembered = await token(signingKey);
    expect((await verifier.verify(remembered, { loadKey: catalog.loadKey, now: T0 })).ok).toBe(true);
    catalog.revoke(pair.kid); // in D1, by another isolate
    const fresh = await token(signingKey, 'other');
    const at = async (t: string, ms: number) => {
      const r = await verifier.verify(t, { loadKey: catalog.loadKey, now: ms });
      return r.ok ? 'ok' : r.rejection.code;
    };
    expect(await at(remembered, T0 + KEY_CACHE_TTL_MS - 1)).toBe('ok');
    expect(await at(fresh, T0 + KEY_CACHE_TTL_MS - 1)).toBe('ok');
    expect(await at(remembered, T0 + KEY_CACHE_TTL_MS)).toBe('key_revoked');
    expect(await at(fresh, T0 + KEY_CACHE_TTL_MS)).toBe('key_revoked');
    expect(KEY_CACHE_TTL_MS + KEY_STALE_IF_ERROR_MS).toBeLessThanOrEqual(60_000);
  });

  it('forgets a key at once where it is revoked', async () => {
    const { catalog, signingKey, verifier, pair } = await setup();
    const t = await token(signingKey);
    expect((await verifier.verify(t, { loadKey: catalog.loadKey, now: T0 })).ok).toBe(true);
    catalog.revoke(pair.kid);
    verifier.forgetKey(pair.kid);
    const r = await verifier.verify(t, { loadKey: catalog.loadKey, now: T0 + 1 });
    expect(r.ok ? 'ok' : r.rejection.code).toBe('key_revoked');
  });

  it('keeps serving a known key while the catalog is down, up to a minute after it last read it, then answers 503', async () => {
    const { catalog, signingKey, verifier } = await setup();
    const t = await token(signingKey);
    expect((await verifier.verify(t, { loadKey: catalog.loadKey, now: T0 })).ok).toBe(true);
    catalog.failing = true;
    const failures: string[] = [];
    const at = async (ms: number) => {
      const r = await verifier.verify(t, { loadKey: catalog.loadKey, now: ms, onLookupError: (kid) => failures.push(kid) });
      return r.ok ? 'ok' : `${r.rejection.status} ${r.rejection.code}`;
    };
    expect(await at(T0 + KEY_CACHE_TTL_MS + 1000)).toBe('ok');
    expect(failures).toEqual([expect.stringMatching(/^key_/)]); // the failure is reported even though the stale key served
    // While the catalog fails it is asked again once a second, not on every request.
    const loadsAfterFailure = catalog.loads;
    expect(await at(T0 + KEY_CACHE_TTL_MS + 1500)).toBe('ok');
    expect(catalog.loads).toBe(loadsAfterFailure);
    expect(await at(T0 + KEY_CACHE_TTL_MS + 2000)).toBe('ok');
    expect(catalog.loads).toBe(loadsAfterFailure + 1);
    expect(await at(T0 + KEY_CACHE_TTL_MS + KEY_STALE_IF_ERROR_MS - 1)).toBe('ok');
    expect(await at(T0 + KEY_CACHE_TTL_MS + KEY_STALE_IF_ERROR_MS)).toBe('503 key_lookup_failed');
    expect(failures.length).toBeGreaterThan(0);
    // A key it never knew cannot be checked at all while the catalog is down.
    const other = await generateSigningKeyPair();
    catalog.add(other);
    const r = await new PlaybackTokenVerifier().verify(await token(await importSigningKey(JSON.stringify(other.privateJwk))), {
      loadKey: catalog.loadKey,
      now: T0,
    });
    expect(r.ok ? 'ok' : r.rejection.code).toBe('key_lookup_failed');
  });
});

describe('remembered tokens', () => {
  it('skip the signature check on repeat requests, but not the time window', async () => {
    const { catalog, signingKey, verifier } = await setup();
    const exp = sec(T0) + 10;
    const t = await token(signingKey, 's', exp);
    const verify = vi.spyOn(crypto.subtle, 'verify');
    for (let i = 0; i < 10; i++) expect((await verifier.verify(t, { loadKey: catalog.loadKey, now: T0 + i * 100 })).ok).toBe(true);
    expect(verify).toHaveBeenCalledTimes(1);
    const late = await verifier.verify(t, { loadKey: catalog.loadKey, now: (exp + 5) * 1000 });
    expect(late.ok ? 'ok' : late.rejection.code).toBe('token_expired');
  });

  it('are remembered by their exact string: a tampered copy is checked, and refused', async () => {
    const { catalog, signingKey, verifier } = await setup();
    const t = await token(signingKey);
    expect((await verifier.verify(t, { loadKey: catalog.loadKey, now: T0 })).ok).toBe(true);
    const [h, , s] = t.split('.');
    const forged = `${h}.${Buffer.from(JSON.stringify({ sub: 'other', exp: sec(T0) + 99999 })).toString('base64url')}.${s}`;
    const r = await verifier.verify(forged, { loadKey: catalog.loadKey, now: T0 });
    expect(r.ok ? 'ok' : r.rejection.code).toBe('invalid_token');
  });

  it('are bounded in number: the oldest is forgotten and checked again', async () => {
    const { catalog, signingKey } = await setup();
    const verifier = new PlaybackTokenVerifier({ maxVerifiedTokens: 2 });
    const [a, b, c] = await Promise.all(['a', 'b', 'c'].map((s) => token(signingKey, s)));
    const verify = vi.spyOn(crypto.subtle, 'verify');
    for (const t of [a!, b!, c!, b!, c!, a!]) expect((await verifier.verify(t, { loadKey: catalog.loadKey, now: T0 })).ok).toBe(true);
    // a, b, c checked; b and c remembered; a forgotten and checked again.
    expect(verify).toHaveBeenCalledTimes(4);
  });
});

describe('key files', () => {
  it('generates a P-256 pair with a key id; the public half has no private part', async () => {
    const pair = await generateSigningKeyPair();
    expect(pair.kid).toMatch(/^key_[a-z0-9]{16}$/);
    expect(pair.publicJwk).toMatchObject({ kty: 'EC', crv: 'P-256', kid: pair.kid, alg: 'ES256' });
    expect(pair.publicJwk).not.toHaveProperty('d');
    expect(pair.privateJwk.d).toEqual(expect.any(String));
  });

  it('imports a private JWK, the whole API answer, or a PEM with its key id', async () => {
    const pair = await generateSigningKeyPair();
    const answer = JSON.stringify({ kid: pair.kid, privateJwk: pair.privateJwk, privateKeyPem: pair.privateKeyPem });
    for (const [text, kid] of [[JSON.stringify(pair.privateJwk)], [answer], [pair.privateKeyPem, pair.kid]] as const) {
      const k = await importSigningKey(text, kid);
      expect(k.kid).toBe(pair.kid);
      const catalog = new FakeCatalog();
      catalog.add(pair);
      const r = await new PlaybackTokenVerifier().verify(await token(k), { loadKey: catalog.loadKey, now: T0 });
      expect(r.ok).toBe(true);
    }
  });

  it('refuses what is not a private ES256 key with a key id', async () => {
    const pair = await generateSigningKeyPair();
    const rsa = await exportJWK((await generateKeyPair('RS256', { extractable: true })).privateKey);
    const cases: Array<[string, string | undefined]> = [
      [pair.privateKeyPem, undefined],
      [JSON.stringify(pair.publicJwk), undefined],
      [JSON.stringify({ ...pair.privateJwk, kid: undefined }), undefined],
      [JSON.stringify({ ...rsa, kid: pair.kid }), undefined],
      ['not a key', undefined],
    ];
    for (const [text, kid] of cases) await expect(importSigningKey(text, kid)).rejects.toThrow(TypeError);
  });
});
