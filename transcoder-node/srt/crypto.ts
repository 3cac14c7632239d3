// SRT encryption, receiver side (HaiCrypt): the key material message (KMREQ), the key-encrypting
// key from the passphrase (PBKDF2-HMAC-SHA1 over the last 8 salt bytes, 2048 rounds, cached per
// salt), AES key unwrap (RFC 3394) of the even/odd stream keys, and AES-CTR decryption of payloads.
import { createDecipheriv, pbkdf2Sync } from 'node:crypto';

const KM_SIGN = 0x2029;
const CIPHER_AES_CTR = 2;
const PBKDF2_SALT_BYTES = 8;
const PBKDF2_ROUNDS = 2048;
const WRAP_IV = Buffer.from('a6a6a6a6a6a6a6a6', 'hex');

export interface KeyMaterial {
  /** 1: even key present, 2: odd, 3: both. */
  keyFlags: number;
  salt: Buffer;
  keyLength: 16 | 24 | 32;
  wrapped: Buffer;
}

export type KmParse = { ok: true; km: KeyMaterial } | { ok: false; message: string };

export function parseKeyMaterial(data: Buffer): KmParse {
  if (data.length < 16) return { ok: false, message: 'key material too short' };
  const version = data[0]! >> 4;
  const packetType = data[0]! & 0xf;
  if (version !== 1 || packetType !== 2 || data.readUInt16BE(1) !== KM_SIGN)
    return { ok: false, message: 'not an SRT key material message' };
  const keyFlags = data[3]! & 0x3;
  if (keyFlags === 0) return { ok: false, message: 'key material carries no key' };
  if (data[8] !== CIPHER_AES_CTR) return { ok: false, message: `cipher ${data[8]} is not supported (AES-CTR only)` };
  const saltLength = data[14]! * 4;
  const keyLength = data[15]! * 4;
  if (keyLength !== 16 && keyLength !== 24 && keyLength !== 32) return { ok: false, message: `key length ${keyLength}` };
  const keys = keyFlags === 3 ? 2 : 1;
  const wrappedLength = keys * keyLength + 8;
  if (data.length < 16 + saltLength + wrappedLength || saltLength < 14) return { ok: false, message: 'key material truncated' };
  return {
    ok: true,
    km: {
      keyFlags,
      salt: Buffer.from(data.subarray(16, 16 + saltLength)),
      keyLength,
      wrapped: Buffer.from(data.subarray(16 + saltLength, 16 + saltLength + wrappedLength)),
    },
  };
}

export interface StreamKeys {
  salt: Buffer;
  keyLength: number;
  /** Index 1: even key, 2: odd key (the data packet's KK field). */
  keys: Map<number, Buffer>;
}

/** Unwraps the stream keys with the passphrase; null when the passphrase is wrong. */
export function unwrapStreamKeys(km: KeyMaterial, passphrase: string): StreamKeys | null {
  return unwrapWithKek(km, deriveKek(passphrase, km));
}

function deriveKek(passphrase: string, km: KeyMaterial): Buffer {
  return pbkdf2Sync(passphrase, km.salt.subarray(km.salt.length - PBKDF2_SALT_BYTES), PBKDF2_ROUNDS, km.keyLength, 'sha1');
}

function unwrapWithKek(km: KeyMaterial, kek: Buffer): StreamKeys | null {
  let plain: Buffer;
  try {
    const d = createDecipheriv(`id-aes${km.keyLength * 8}-wrap`, kek, WRAP_IV);
    plain = Buffer.concat([d.update(km.wrapped), d.final()]);
  } catch {
    return null; // RFC 3394's integrity check failed: another passphrase wrapped these keys
  }
  const keys = new Map<number, Buffer>();
  if (km.keyFlags === 3) {
    keys.set(1, plain.subarray(0, km.keyLength));
    keys.set(2, plain.subarray(km.keyLength, 2 * km.keyLength));
  } else keys.set(km.keyFlags, plain.subarray(0, km.keyLength));
  return { salt: km.salt, keyLength: km.keyLength, keys };
}

/**
 * The stream keys of one passphrase. PBKDF2 is the expensive step (about half a millisecond of
 * blocked event loop), and its result depends only on the salt and key length: a caller keeps its
 * salt for the whole connection (HaiCrypt's key refresh reuses it), so each KMREQ after the first
 * costs one AES unwrap. The cache is bounded (oldest salt out first).
 */
export class PassphraseKeys {
  /** PBKDF2 runs so far (a flood shows here). */
  derivations = 0;
  private readonly passphrase: string;
  private readonly maxCached: number;
  private readonly keks = new Map<string, Buffer>();

  constructor(passphrase: string, maxCached = 256) {
    this.passphrase = passphrase;
    this.maxCached = maxCached;
  }

  /** Whether unwrapping this key material would run PBKDF2. */
  needsDerivation(km: KeyMaterial): boolean {
    return !this.keks.has(kekCacheKey(km));
  }

  /** The stream keys, or null when they were not wrapped with this passphrase. */
  unwrap(km: KeyMaterial): StreamKeys | null {
    const id = kekCacheKey(km);
    let kek = this.keks.get(id);
    if (!kek) {
      this.derivations++;
      kek = deriveKek(this.passphrase, km);
      if (this.keks.size >= this.maxCached) this.keks.delete(this.keks.keys().next().value!);
      this.keks.set(id, kek);
    }
    return unwrapWithKek(km, kek);
  }
}

function kekCacheKey(km: KeyMaterial): string {
  return `${km.keyLength}:${km.salt.subarray(km.salt.length - PBKDF2_SALT_BYTES).toString('hex')}`;
}

/**
 * A receiver's stream keys: the even and the odd one, each with its salt. A key refresh announces
 * the next key before the sender switches to it, and the old key stays for packets in flight and
 * retransmissions, so both are kept and the packet's KK flags pick one.
 */
export class ReceiverKeys {
  private readonly byIndex = new Map<number, StreamKeys>();

  constructor(initial: StreamKeys) {
    this.install(initial);
  }

  /** Installs the keys a key material message carried (one or both); the other one stays. */
  install(sk: StreamKeys): void {
    for (const [index, key] of sk.keys) this.byIndex.set(index, { salt: sk.salt, keyLength: sk.keyLength, keys: new Map([[index, key]]) });
  }

  /** Decrypts one payload with the key its KK flags name; null when that key is unknown. */
  decrypt(keyFlags: number, seq: number, payload: Buffer): Buffer | null {
    const sk = this.byIndex.get(keyFlags);
    return sk ? decryptPayload(sk, keyFlags, seq, payload) : null;
  }
}

/** Decrypts one data packet's payload; null if its key is unknown. */
export function decryptPayload(sk: StreamKeys, keyFlags: number, seq: number, payload: Buffer): Buffer | null {
  const key = sk.keys.get(keyFlags);
  if (!key) return null;
  // IV: the packet index (sequence number) at bytes 10..13, XOR the first 112 bits of the salt;
  // the last two bytes are the block counter.
  const iv = Buffer.alloc(16);
  iv.writeUInt32BE(seq >>> 0, 10);
  for (let i = 0; i < 14; i++) iv[i]! ^= sk.salt[i]!;
  const d = createDecipheriv(`aes-${sk.keyLength * 8}-ctr`, key, iv);
  return Buffer.concat([d.update(payload), d.final()]);
}
