// The server side of the RTMP handshake (C0 C1 C2 → S0 S1 S2), fed incrementally. Clients that
// sign C1 with the Flash Player digest (ffmpeg, Flash-era encoders) get a digest-signed S1/S2;
// the rest (librtmp/OBS) get the plain echo handshake.
import { createHmac, randomBytes } from 'node:crypto';
import { RtmpProtocolError } from './errors.ts';

export const RTMP_VERSION = 3;
export const HANDSHAKE_SIZE = 1536;
const DIGEST_SIZE = 32;

// The public constants of the Adobe handshake: not secrets, every RTMP implementation ships them.
const PLAYER_KEY = Buffer.from('Genuine Adobe Flash Player 001', 'latin1');
const SERVER_KEY_TEXT = Buffer.from('Genuine Adobe Flash Media Server 001', 'latin1');
const KEY_TAIL = Buffer.from('f0eec24a8068bee82e00d0d1029e7e576eec5d2d29806fab93b8e636cfeb31ae', 'hex');
const SERVER_KEY_FULL = Buffer.concat([SERVER_KEY_TEXT, KEY_TAIL]);
// Version bytes in S1; any non-zero value tells a digest-checking client to look for the digest.
const SERVER_VERSION = Buffer.of(0x04, 0x05, 0x00, 0x01);

const HTTP_METHOD = /^(GET|POST|HEAD|PUT|DELETE|OPTIONS|PATCH|CONNECT|PRI) /;

/** Where the 32-byte digest sits in a 1536-byte C1/S1 under scheme 0 (base 8) or scheme 1 (base 772). */
export function handshakeDigestOffset(packet: Buffer, scheme: 0 | 1): number {
  const base = scheme === 0 ? 8 : 772;
  const sum = packet.readUInt8(base) + packet.readUInt8(base + 1) + packet.readUInt8(base + 2) + packet.readUInt8(base + 3);
  return (sum % 728) + base + 4;
}

/** HMAC-SHA256 of a handshake packet with the 32 digest bytes at `offset` left out. */
export function handshakeDigest(packet: Buffer, offset: number, key: Buffer): Buffer {
  return createHmac('sha256', key)
    .update(packet.subarray(0, offset))
    .update(packet.subarray(offset + DIGEST_SIZE))
    .digest();
}

/** The client's digest if C1 carries a valid Flash Player signature under either scheme. */
function clientDigest(c1: Buffer): { scheme: 0 | 1; digest: Buffer } | null {
  for (const scheme of [0, 1] as const) {
    const offset = handshakeDigestOffset(c1, scheme);
    const expected = handshakeDigest(c1, offset, PLAYER_KEY);
    const actual = c1.subarray(offset, offset + DIGEST_SIZE);
    if (expected.equals(actual)) return { scheme, digest: Buffer.from(actual) };
  }
  return null;
}

/** S0 + S1 + S2 answering C1. */
export function createHandshakeReply(c1: Buffer): Buffer {
  if (c1.length !== HANDSHAKE_SIZE) throw new RangeError('C1 is 1536 bytes');
  const s1 = randomBytes(HANDSHAKE_SIZE);
  s1.writeUInt32BE(0, 0); // our epoch: zero, as the spec allows
  const signed = clientDigest(c1);
  let s2: Buffer;
  if (signed) {
    SERVER_VERSION.copy(s1, 4);
    const offset = handshakeDigestOffset(s1, signed.scheme);
    handshakeDigest(s1, offset, SERVER_KEY_TEXT).copy(s1, offset);
    s2 = randomBytes(HANDSHAKE_SIZE);
    const key = createHmac('sha256', SERVER_KEY_FULL).update(signed.digest).digest();
    const signature = createHmac('sha256', key)
      .update(s2.subarray(0, HANDSHAKE_SIZE - DIGEST_SIZE))
      .digest();
    signature.copy(s2, HANDSHAKE_SIZE - DIGEST_SIZE);
  } else {
    s1.writeUInt32BE(0, 4); // zero version: tells the client not to look for a digest
    s2 = Buffer.from(c1); // the simple handshake: S2 echoes C1
  }
  return Buffer.concat([Buffer.of(RTMP_VERSION), s1, s2]);
}

/**
 * Consumes the handshake from the start of a connection. `push` returns the reply to send (once,
 * after C1), and once C2 is in, `done` is true and `rest` holds bytes already past the handshake.
 */
export class HandshakeReader {
  private pending: Buffer = Buffer.alloc(0);
  private stage: 'c0c1' | 'c2' | 'done' = 'c0c1';

  get done(): boolean {
    return this.stage === 'done';
  }

  push(data: Buffer): { reply: Buffer | null; rest: Buffer | null } {
    if (this.stage === 'done') throw new Error('handshake already complete');
    this.pending = this.pending.length === 0 ? data : Buffer.concat([this.pending, data]);
    let reply: Buffer | null = null;
    if (this.stage === 'c0c1' && this.pending.length >= 1) {
      const version = this.pending.readUInt8(0);
      if (version !== RTMP_VERSION) {
        // Say what the bytes most likely were, so a log reader knows who knocked on the port.
        if (HTTP_METHOD.test(this.pending.subarray(0, 8).toString('latin1'))) {
          throw new RtmpProtocolError('HTTP request on the RTMP port');
        }
        const what = version === 6 || version === 8 ? ' (RTMPE is not supported)' : '';
        throw new RtmpProtocolError(`unsupported RTMP version byte 0x${version.toString(16).padStart(2, '0')}${what}`);
      }
      if (this.pending.length >= 1 + HANDSHAKE_SIZE) {
        reply = createHandshakeReply(this.pending.subarray(1, 1 + HANDSHAKE_SIZE));
        this.pending = this.pending.subarray(1 + HANDSHAKE_SIZE);
        this.stage = 'c2';
      }
    }
    if (this.stage === 'c2' && this.pending.length >= HANDSHAKE_SIZE) {
      // C2 is not checked: librtmp and others send values that do not match S1, and nothing
      // is protected by checking it.
      const rest = this.pending.subarray(HANDSHAKE_SIZE);
      this.pending = Buffer.alloc(0);
      this.stage = 'done';
      return { reply, rest: rest.length > 0 ? rest : null };
    }
    return { reply, rest: null };
  }
}
