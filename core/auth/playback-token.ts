// Playback tokens: ES256 JWTs naming one stream (`sub`), with a required expiry, an optional
// not-before and optional country rules, signed by a key whose id rides in the header (`kid`).
// Pure: jose over Web Crypto, no I/O (keys are looked up through a function the caller passes),
// so the Worker, the CLI, the tests and the benchmark all sign and check tokens with this module.
import {
  SignJWT,
  decodeProtectedHeader,
  errors,
  exportJWK,
  exportPKCS8,
  generateKeyPair,
  importJWK,
  importPKCS8,
  jwtVerify,
  type JWK,
} from 'jose';
import { z } from 'zod';
import { CountryListSchema, type CountryRules } from './geo.ts';
import { NAME_RE } from '../contracts/object-keys.ts';
import { TtlCache } from './ttl-cache.ts';

export const PLAYBACK_TOKEN_ALG = 'ES256';
/** Longer tokens are refused before they are parsed (and would bloat every playlist URI). */
export const MAX_TOKEN_LENGTH = 4096;
/** Clock skew tolerated on `exp` and `nbf`: a token minted "now" on a server a little ahead still works. */
export const CLOCK_SKEW_SECONDS = 5;
/** How long an isolate trusts what it learnt about a key; revocation reaches every isolate within it. */
export const KEY_CACHE_TTL_MS = 30_000;
/** A key may be served this much longer when D1 cannot be read (30 s + 30 s: still within a minute). */
export const KEY_STALE_IF_ERROR_MS = 30_000;

/** Key ids are ours (`key_` + 16 lowercase alphanumerics), so a malformed one never reaches D1. */
export const KID_RE = /^key_[a-z0-9]{16}$/;
/** A compact JWS in base64url only: what passes is safe to write back into playlist URIs. */
const COMPACT_JWS_RE = /^[A-Za-z0-9_-]+\.[A-Za-z0-9_-]+\.[A-Za-z0-9_-]+$/;

const NumericDate = z.number().finite().nonnegative();

/** The claims edgelive reads; other claims (`jti`, `aud`, …) are allowed and ignored. */
export const PlaybackClaimsSchema = z.object({
  sub: z.string().regex(NAME_RE, 'sub must be a stream id'),
  exp: NumericDate,
  nbf: NumericDate.optional(),
  iat: NumericDate.optional(),
  allowCountries: CountryListSchema.optional(),
  blockCountries: CountryListSchema.optional(),
});
export type PlaybackClaims = z.infer<typeof PlaybackClaimsSchema>;

/** What a caller asks to sign: the stream, an expiry and optional not-before and country rules. */
export interface PlaybackGrant extends CountryRules {
  streamId: string;
  /** Unix seconds. */
  expiresAt: number;
  /** Unix seconds. */
  notBefore?: number;
}

export interface SigningKey {
  kid: string;
  /** An ECDSA P-256 private key. */
  key: CryptoKey;
}

/** A refusal, with the HTTP status and error code the edge answers. */
export interface TokenRejection {
  status: 401 | 403 | 503;
  code:
    | 'token_required'
    | 'invalid_token'
    | 'token_expired'
    | 'token_not_yet_valid'
    | 'unknown_key'
    | 'key_revoked'
    | 'key_lookup_failed'
    | 'token_wrong_stream'
    | 'geo_blocked';
  message: string;
}

export type VerifyResult = { ok: true; claims: PlaybackClaims; kid: string } | { ok: false; rejection: TokenRejection };

/** A key as the catalog knows it: its public JWK while active. */
export type KeyLookup = { status: 'active'; publicJwk: JWK } | { status: 'revoked' } | { status: 'unknown' };

const ALPHABET = 'abcdefghijklmnopqrstuvwxyz0123456789';

export function newKeyId(): string {
  const bytes = crypto.getRandomValues(new Uint8Array(16));
  let id = 'key_';
  // 256 % 36 leaves a tiny bias; 16 characters (82 bits) make it irrelevant for an id.
  for (const b of bytes) id += ALPHABET[b % ALPHABET.length];
  return id;
}

export interface GeneratedKeyPair {
  kid: string;
  /** Stored by the Worker; safe to publish. */
  publicJwk: JWK;
  /** Returned once to the operator: the key file the CLI signs with. */
  privateJwk: JWK;
  /** The same private key as PKCS#8 PEM, for other JWT libraries. */
  privateKeyPem: string;
}

/** A fresh ES256 key pair with a new key id. */
export async function generateSigningKeyPair(kid = newKeyId()): Promise<GeneratedKeyPair> {
  const { publicKey, privateKey } = await generateKeyPair(PLAYBACK_TOKEN_ALG, { extractable: true });
  const meta = { kid, alg: PLAYBACK_TOKEN_ALG, use: 'sig' };
  return {
    kid,
    publicJwk: { ...(await exportJWK(publicKey)), ...meta },
    privateJwk: { ...(await exportJWK(privateKey)), ...meta },
    privateKeyPem: await exportPKCS8(privateKey),
  };
}

/**
 * Reads a signing key file: a private JWK (with `kid`), the whole answer of
 * `POST /api/signing-keys` (its `privateJwk`), or a PKCS#8 PEM given with `kid`.
 */
export async function importSigningKey(text: string, kidForPem?: string): Promise<SigningKey> {
  const trimmed = text.trim();
  if (trimmed.startsWith('-----BEGIN')) {
    if (!kidForPem || !KID_RE.test(kidForPem)) throw new TypeError('a PEM key needs its key id (key_…)');
    return { kid: kidForPem, key: await importPKCS8(trimmed, PLAYBACK_TOKEN_ALG) };
  }
  let parsed: unknown;
  try {
    parsed = JSON.parse(trimmed);
  } catch {
    throw new TypeError('a key file is a private JWK (JSON) or a PKCS#8 PEM');
  }
  const jwk = (
    parsed && typeof parsed === 'object' && 'privateJwk' in parsed ? (parsed as { privateJwk: unknown }).privateJwk : parsed
  ) as JWK;
  const kid = kidForPem ?? jwk?.kid;
  if (jwk?.kty !== 'EC' || jwk.crv !== 'P-256' || typeof jwk.d !== 'string')
    throw new TypeError('the key is not a private P-256 (ES256) JWK');
  if (!kid || !KID_RE.test(kid)) throw new TypeError('the key has no key id (key_…)');
  const key = await importJWK({ ...jwk, alg: PLAYBACK_TOKEN_ALG }, PLAYBACK_TOKEN_ALG);
  if (key instanceof Uint8Array) throw new TypeError('the key is not an ES256 private key');
  return { kid, key };
}

/** Signs a playback token. */
export async function signPlaybackToken(grant: PlaybackGrant, signingKey: SigningKey, now = Date.now()): Promise<string> {
  const claims: Record<string, unknown> = {};
  if (grant.allowCountries?.length) claims.allowCountries = [...grant.allowCountries];
  if (grant.blockCountries?.length) claims.blockCountries = [...grant.blockCountries];
  const jwt = new SignJWT(claims)
    .setProtectedHeader({ alg: PLAYBACK_TOKEN_ALG, kid: signingKey.kid, typ: 'JWT' })
    .setSubject(grant.streamId)
    .setIssuedAt(Math.floor(now / 1000))
    .setExpirationTime(grant.expiresAt);
  if (grant.notBefore !== undefined) jwt.setNotBefore(grant.notBefore);
  return jwt.sign(signingKey.key);
}

type ResolvedKey = { status: 'active'; key: CryptoKey } | { status: 'revoked' } | { status: 'unknown' };

export interface VerifierOptions {
  keyTtlMs?: number;
  keyStaleIfErrorMs?: number;
  /** Recently verified token strings remembered (their signature is not checked again). */
  maxVerifiedTokens?: number;
}

export interface VerifyContext {
  /** Looks a key id up in the catalog. */
  loadKey(kid: string): Promise<KeyLookup>;
  /** Milliseconds since the epoch (tests pass a clock). */
  now?: number;
  /** Told when the catalog could not be read (the caller logs it). */
  onLookupError?: (kid: string, err: unknown) => void;
}

/**
 * Tokens longer than this are verified every time rather than remembered: with the default
 * 16,384 remembered tokens that bounds the memory to about 20 MB (typical tokens are ~250 bytes).
 */
const MAX_REMEMBERED_TOKEN_LENGTH = 1024;

function reject(status: TokenRejection['status'], code: TokenRejection['code'], message: string): VerifyResult {
  return { ok: false, rejection: { status, code, message } };
}

/**
 * Checks tokens against keys it imports once per isolate. A key's status is trusted for
 * `keyTtlMs` (30 s): a revoked key stops working in every isolate within that, plus at most
 * `keyStaleIfErrorMs` while the catalog cannot be read. A token that verified once is
 * remembered by its exact string, so a viewer's next requests skip the signature check; its
 * time window and its key's status are still checked on every request.
 */
export class PlaybackTokenVerifier {
  private readonly keys: TtlCache<ResolvedKey>;
  private readonly verified = new Map<string, { claims: PlaybackClaims; kid: string }>();
  private readonly maxVerified: number;

  constructor(opts: VerifierOptions = {}) {
    this.keys = new TtlCache({
      ttlMs: opts.keyTtlMs ?? KEY_CACHE_TTL_MS,
      staleIfErrorMs: opts.keyStaleIfErrorMs ?? KEY_STALE_IF_ERROR_MS,
      maxEntries: 1000,
    });
    // Sized for one isolate's viewers: each repeats its token several times a second, and a
    // forgotten token only costs one more signature check.
    this.maxVerified = opts.maxVerifiedTokens ?? 16_384;
  }

  /** Drops what this isolate knows about a key (called where it is revoked). */
  forgetKey(kid: string): void {
    this.keys.delete(kid);
  }

  async verify(token: string, ctx: VerifyContext): Promise<VerifyResult> {
    const now = ctx.now ?? Date.now();
    if (token.length > MAX_TOKEN_LENGTH) return reject(401, 'invalid_token', `token longer than ${MAX_TOKEN_LENGTH} characters`);
    if (!COMPACT_JWS_RE.test(token)) return reject(401, 'invalid_token', 'token is not a compact JWS (three base64url parts)');

    const remembered = this.verified.get(token);
    if (remembered) {
      const key = await this.resolveKey(remembered.kid, now, ctx);
      if (key.status !== 'active') return keyRejection(key, remembered.kid);
      return timeWindow(remembered.claims, now) ?? { ok: true, claims: remembered.claims, kid: remembered.kid };
    }

    let header: ReturnType<typeof decodeProtectedHeader>;
    try {
      header = decodeProtectedHeader(token);
    } catch {
      return reject(401, 'invalid_token', 'token header is not valid base64url JSON');
    }
    // The algorithm is pinned before any key is looked up: `none`, HS256 keyed with the public
    // key and every other algorithm-confusion trick ends here.
    if (header.alg !== PLAYBACK_TOKEN_ALG) return reject(401, 'invalid_token', `token algorithm must be ${PLAYBACK_TOKEN_ALG}`);
    const kid = header.kid;
    if (typeof kid !== 'string' || kid === '') return reject(401, 'invalid_token', 'token header has no kid');
    if (!KID_RE.test(kid)) return reject(401, 'unknown_key', 'token is signed with an unknown key');

    const key = await this.resolveKey(kid, now, ctx);
    if (key.status !== 'active') return keyRejection(key, kid);

    let payload: unknown;
    try {
      ({ payload } = await jwtVerify(token, key.key, {
        algorithms: [PLAYBACK_TOKEN_ALG],
        requiredClaims: ['exp', 'sub'],
        clockTolerance: CLOCK_SKEW_SECONDS,
        currentDate: new Date(now),
      }));
    } catch (err) {
      if (err instanceof errors.JWTExpired) return reject(401, 'token_expired', 'token has expired');
      if (err instanceof errors.JWTClaimValidationFailed && err.claim === 'nbf' && err.reason === 'check_failed') {
        return reject(401, 'token_not_yet_valid', 'token is not valid yet (nbf)');
      }
      if (err instanceof errors.JWTClaimValidationFailed) return reject(401, 'invalid_token', `token claims: ${err.message}`);
      if (err instanceof errors.JWSSignatureVerificationFailed) return reject(401, 'invalid_token', 'token signature does not verify');
      return reject(401, 'invalid_token', 'token is malformed');
    }
    const parsed = PlaybackClaimsSchema.safeParse(payload);
    if (!parsed.success) {
      const issue = parsed.error.issues[0];
      return reject(401, 'invalid_token', `token claims: ${issue ? `${issue.path.join('.')}: ${issue.message}` : 'malformed'}`);
    }
    if (token.length <= MAX_REMEMBERED_TOKEN_LENGTH) this.remember(token, parsed.data, kid);
    return { ok: true, claims: parsed.data, kid };
  }

  private remember(token: string, claims: PlaybackClaims, kid: string): void {
    this.verified.set(token, { claims, kid });
    if (this.verified.size > this.maxVerified) {
      const oldest = this.verified.keys().next().value;
      if (oldest !== undefined) this.verified.delete(oldest);
    }
  }

  private async resolveKey(kid: string, now: number, ctx: VerifyContext): Promise<ResolvedKey | { status: 'error' }> {
    const fresh = this.keys.peek(kid, now);
    if (fresh) return fresh;
    try {
      return await this.keys.get(kid, now, async () => {
        try {
          const found = await ctx.loadKey(kid);
          if (found.status !== 'active') return found;
          const key = await importJWK({ ...found.publicJwk, alg: PLAYBACK_TOKEN_ALG }, PLAYBACK_TOKEN_ALG);
          if (key instanceof Uint8Array) throw new TypeError(`key ${kid} is not an EC public key`);
          return { status: 'active', key };
        } catch (err) {
          // Reported even when the cache then serves what it knew before (stale-if-error).
          ctx.onLookupError?.(kid, err);
          throw err;
        }
      });
    } catch {
      return { status: 'error' };
    }
  }
}

function keyRejection(key: { status: 'revoked' | 'unknown' | 'error' }, kid: string): VerifyResult {
  if (key.status === 'revoked') return reject(401, 'key_revoked', `signing key ${kid} has been revoked`);
  if (key.status === 'unknown') return reject(401, 'unknown_key', 'token is signed with an unknown key');
  // Not a verdict on the token: the catalog could not be read, and players retry a 503.
  return reject(503, 'key_lookup_failed', 'the signing key could not be checked; retry');
}

/** The `exp`/`nbf` check for a remembered token, with the same tolerance jose applies. */
function timeWindow(claims: PlaybackClaims, now: number): VerifyResult | null {
  const t = Math.floor(now / 1000);
  if (claims.nbf !== undefined && claims.nbf > t + CLOCK_SKEW_SECONDS)
    return reject(401, 'token_not_yet_valid', 'token is not valid yet (nbf)');
  if (claims.exp <= t - CLOCK_SKEW_SECONDS) return reject(401, 'token_expired', 'token has expired');
  return null;
}
