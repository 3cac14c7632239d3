// SRT wire format and HaiCrypt, checked against bytes libsrt 1.5 (ffmpeg) really sends.
import { describe, expect, it } from 'vitest';
import { createCipheriv } from 'node:crypto';
import { decryptPayload, parseKeyMaterial, unwrapStreamKeys } from '../../transcoder-node/srt/crypto.ts';
import {
  Ext,
  HsType,
  decodeExtString,
  decodeLossList,
  encodeExtString,
  encodeHandshake,
  encodeLossList,
  parseHandshake,
  parseHsReq,
  parsePacket,
  parseStreamId,
  rejectionType,
  seqAdd,
  seqDiff,
} from '../../transcoder-node/srt/packet.ts';

// A conclusion handshake captured from `ffmpeg … srt://127.0.0.1:9999?streamid=sk_abcdefg&passphrase=0123456789abcdef&pbkeylen=16`.
const CONCLUSION = Buffer.from(
  (
    '80000000 00000000 000020d8 00000000 00000005 00020007 59d6c92d 000005dc 00002000 ffffffff 35c57e1c 22222222 0100007f 00000000 00000000 00000000 ' +
    '00010003 00010501 000000bf 00780000 00050003 615f6b73 65646362 00006766 0003000e 12202901 00000000 02000200 00000404 2d6417cf 531f62cd 54ad1ace ' +
    'a12cd46a c712f10a 5ab4509b 2fd688e9 987fb7fd d5a3a0f1 09541d1d'
  ).replace(/ /g, ''),
  'hex',
);

describe('SRT packets', () => {
  it('parses a libsrt HSv5 conclusion: HSREQ, the stream id (bytes reversed per word) and the key material', () => {
    const p = parsePacket(CONCLUSION)!;
    expect(p).toMatchObject({ kind: 'control', type: 0, destSocketId: 0 });
    const hs = parseHandshake(p.kind === 'control' ? p.cif : Buffer.alloc(0))!;
    expect(hs).toMatchObject({
      version: 5,
      encryption: 2,
      extensionField: 7,
      isn: 0x59d6c92d,
      mtu: 1500,
      flowWindow: 8192,
      type: HsType.CONCLUSION,
      socketId: 0x35c57e1c,
    });
    expect(hs.extensions.map((e) => e.type)).toEqual([Ext.HSREQ, Ext.SID, Ext.KMREQ]);
    expect(parseHsReq(hs.extensions[0]!.data)).toEqual({ srtVersion: 0x010501, flags: 0xbf, recvDelay: 120, sendDelay: 0 });
    expect(decodeExtString(hs.extensions[1]!.data)).toBe('sk_abcdefg');
    expect(encodeExtString('sk_abcdefg')).toEqual(hs.extensions[1]!.data);
    // Round trip of the whole handshake.
    expect(encodeHandshake(hs)).toEqual(CONCLUSION.subarray(16));
  });

  it('parses a data packet header', () => {
    const b = Buffer.alloc(20);
    b.writeUInt32BE(0x12345678, 0);
    b.writeUInt32BE(((0b11 << 30) | (1 << 29) | (0b01 << 27) | (1 << 26) | 42) >>> 0, 4);
    b.writeUInt32BE(1000, 8);
    b.writeUInt32BE(7, 12);
    expect(parsePacket(b)).toMatchObject({
      kind: 'data',
      seq: 0x12345678,
      keyFlags: 1,
      retransmitted: true,
      messageNumber: 42,
      timestamp: 1000,
      destSocketId: 7,
    });
    expect(parsePacket(Buffer.alloc(15))).toBeNull();
  });

  it('does sequence arithmetic in 31-bit space across the wrap', () => {
    expect(seqAdd(0x7fffffff, 1)).toBe(0);
    expect(seqAdd(0, -1)).toBe(0x7fffffff);
    expect(seqDiff(0, 0x7fffffff)).toBe(1);
    expect(seqDiff(0x7fffffff, 0)).toBe(-1);
    expect(seqDiff(10, 5)).toBe(5);
  });

  it('encodes NAK loss lists with ranges and single numbers', () => {
    const list = encodeLossList([
      [5, 5],
      [10, 12],
    ]);
    expect(list.toString('hex')).toBe('00000005' + '8000000a' + '0000000c');
    expect(decodeLossList(list)).toEqual([
      [5, 5],
      [10, 12],
    ]);
  });

  it('rejections are 1000 + the reason; a refused key is 2403 (SRT_REJX_FORBIDDEN)', () => {
    expect(rejectionType(1403)).toBe(2403);
    expect(rejectionType(10)).toBe(1010);
  });

  it('reads the stream key from a plain stream id or the #!:: access-control syntax, publishers only', () => {
    expect(parseStreamId('sk_abc')).toEqual({ ok: true, streamKey: 'sk_abc' });
    expect(parseStreamId('#!::r=sk_abc,m=publish')).toEqual({ ok: true, streamKey: 'sk_abc' });
    expect(parseStreamId('#!::m=request,r=sk_abc')).toMatchObject({ ok: false, reason: 1405 });
    expect(parseStreamId('#!::m=publish')).toMatchObject({ ok: false, reason: 1400 });
    expect(parseStreamId('')).toMatchObject({ ok: false, reason: 1400 });
  });
});

describe('SRT encryption (HaiCrypt)', () => {
  const km = () => {
    const hs = parseHandshake(CONCLUSION.subarray(16))!;
    const r = parseKeyMaterial(hs.extensions.find((e) => e.type === Ext.KMREQ)!.data);
    if (!r.ok) throw new Error(r.message);
    return r.km;
  };

  it('parses the key material: AES-128, even key, 16-byte salt', () => {
    expect(km()).toMatchObject({ keyFlags: 1, keyLength: 16 });
    expect(km().salt).toHaveLength(16);
    expect(km().wrapped).toHaveLength(24);
  });

  it('unwraps libsrt’s stream key with the right passphrase, and refuses a wrong one', () => {
    const keys = unwrapStreamKeys(km(), '0123456789abcdef');
    expect(keys?.keys.get(1)).toHaveLength(16);
    expect(unwrapStreamKeys(km(), '0123456789abcdeX')).toBeNull();
  });

  it('decrypts AES-CTR payloads with the IV built from the salt and the sequence number', () => {
    const keys = unwrapStreamKeys(km(), '0123456789abcdef')!;
    const seq = 0x59d6c92d;
    const iv = Buffer.alloc(16);
    iv.writeUInt32BE(seq, 10);
    for (let i = 0; i < 14; i++) iv[i]! ^= keys.salt[i]!;
    const plain = Buffer.alloc(1316, 0x47);
    const c = createCipheriv('aes-128-ctr', keys.keys.get(1)!, iv);
    const encrypted = Buffer.concat([c.update(plain), c.final()]);
    expect(decryptPayload(keys, 1, seq, encrypted)).toEqual(plain);
    expect(decryptPayload(keys, 2, seq, encrypted)).toBeNull(); // the odd key is not known
  });

  it('rejects key material that is not SRT’s', () => {
    expect(parseKeyMaterial(Buffer.alloc(40)).ok).toBe(false);
  });
});
