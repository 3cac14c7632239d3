// SRT wire format (draft-sharabayko-srt §3), receiver side: data and control packets, the HSv5
// handshake with its extensions (HSREQ/HSRSP, KMREQ/KMRSP, stream id), sequence-number maths.
// Pure: bytes in, plain objects out, and back.

export const HEADER_BYTES = 16;
export const SEQ_MAX = 0x7fffffff;

export const Ctrl = {
  HANDSHAKE: 0,
  KEEPALIVE: 1,
  ACK: 2,
  NAK: 3,
  SHUTDOWN: 5,
  ACKACK: 6,
  DROPREQ: 7,
  PEERERROR: 8,
  EXT: 0x7fff,
} as const;

/** Handshake types (the "Connection Type" field). A rejection is 1000 + reason. */
export const HsType = { INDUCTION: 1, CONCLUSION: -1, AGREEMENT: -2, WAVEAHAND: 0 } as const;
/** SRT magic in the induction response's extension field: "this listener speaks HSv5". */
export const SRT_MAGIC = 0x4a17;

/** Extension block types (SRT_CMD_*). */
export const Ext = { HSREQ: 1, HSRSP: 2, KMREQ: 3, KMRSP: 4, SID: 5, CONGESTION: 6, FILTER: 7, GROUP: 8 } as const;
/** Extension flags of a conclusion handshake. */
export const ExtFlag = { HSREQ: 1, KMREQ: 2, CONFIG: 4 } as const;
/** SRT option flags of HSREQ/HSRSP. */
export const SrtFlag = {
  TSBPDSND: 0x1,
  TSBPDRCV: 0x2,
  CRYPT: 0x4,
  TLPKTDROP: 0x8,
  NAKREPORT: 0x10,
  REXMITFLG: 0x20,
  STREAM: 0x40,
  FILTERCAP: 0x80,
} as const;

/** Key material states (SRT_KM_S_*): a KMRSP that is one word long carries one, as a refusal. */
export const KmState = { UNSECURED: 0, SECURING: 1, SECURED: 2, NOSECRET: 3, BADSECRET: 4 } as const;

/** Rejection reasons (SRT_REJ_*) and the predefined user codes (SRT_REJX_*, 1000 + HTTP-like status). */
export const Reject = {
  PEER: 2,
  RESOURCE: 3,
  ROGUE: 4,
  VERSION: 8,
  BADSECRET: 10,
  UNSECURE: 11,
  MESSAGEAPI: 12,
  CONGESTION: 13,
  FILTER: 14,
  GROUP: 15,
  TIMEOUT: 16,
  X_BAD_REQUEST: 1400,
  X_UNAUTHORIZED: 1401,
  /** SRT_REJX_OVERLOAD: the node is at capacity or overloaded. */
  X_OVERLOAD: 1402,
  X_FORBIDDEN: 1403,
  X_NOT_FOUND: 1404,
  X_BAD_MODE: 1405,
  X_INTERNAL: 1500,
  X_UNAVAILABLE: 1503,
} as const;
const REJECT_BASE = 1000;

export interface DataPacket {
  kind: 'data';
  seq: number;
  /** Encryption key flags: 0 clear, 1 even key, 2 odd key. */
  keyFlags: number;
  retransmitted: boolean;
  messageNumber: number;
  timestamp: number;
  destSocketId: number;
  payload: Buffer;
}

export interface ControlPacket {
  kind: 'control';
  type: number;
  subtype: number;
  /** Type-specific information (ACK number, message number of a drop request, …). */
  info: number;
  timestamp: number;
  destSocketId: number;
  cif: Buffer;
}

export type Packet = DataPacket | ControlPacket;

export function parsePacket(buf: Buffer): Packet | null {
  if (buf.length < HEADER_BYTES) return null;
  const w0 = buf.readUInt32BE(0);
  const w1 = buf.readUInt32BE(4);
  const timestamp = buf.readUInt32BE(8);
  const destSocketId = buf.readUInt32BE(12);
  if ((w0 & 0x80000000) === 0) {
    return {
      kind: 'data',
      seq: w0 & SEQ_MAX,
      keyFlags: (w1 >>> 27) & 0x3,
      retransmitted: ((w1 >>> 26) & 1) === 1,
      messageNumber: w1 & 0x3ffffff,
      timestamp,
      destSocketId,
      payload: buf.subarray(HEADER_BYTES),
    };
  }
  return {
    kind: 'control',
    type: (w0 >>> 16) & 0x7fff,
    subtype: w0 & 0xffff,
    info: w1,
    timestamp,
    destSocketId,
    cif: buf.subarray(HEADER_BYTES),
  };
}

export function encodeControl(p: Omit<ControlPacket, 'kind'>): Buffer {
  const out = Buffer.alloc(HEADER_BYTES + p.cif.length);
  out.writeUInt32BE((0x80000000 | ((p.type & 0x7fff) << 16) | (p.subtype & 0xffff)) >>> 0, 0);
  out.writeUInt32BE(p.info >>> 0, 4);
  out.writeUInt32BE(p.timestamp >>> 0, 8);
  out.writeUInt32BE(p.destSocketId >>> 0, 12);
  p.cif.copy(out, HEADER_BYTES);
  return out;
}

export interface HsExtension {
  type: number;
  data: Buffer;
}

export interface Handshake {
  version: number;
  encryption: number;
  extensionField: number;
  isn: number;
  mtu: number;
  flowWindow: number;
  type: number;
  socketId: number;
  cookie: number;
  peerIp: Buffer;
  extensions: HsExtension[];
}

const HS_FIXED_BYTES = 48;

export function parseHandshake(cif: Buffer): Handshake | null {
  if (cif.length < HS_FIXED_BYTES) return null;
  const extensions: HsExtension[] = [];
  let off = HS_FIXED_BYTES;
  while (off + 4 <= cif.length) {
    const type = cif.readUInt16BE(off);
    const words = cif.readUInt16BE(off + 2);
    const end = off + 4 + words * 4;
    if (end > cif.length) return null;
    extensions.push({ type, data: cif.subarray(off + 4, end) });
    off = end;
  }
  return {
    version: cif.readUInt32BE(0),
    encryption: cif.readUInt16BE(4),
    extensionField: cif.readUInt16BE(6),
    isn: cif.readUInt32BE(8) & SEQ_MAX,
    mtu: cif.readUInt32BE(12),
    flowWindow: cif.readUInt32BE(16),
    type: cif.readInt32BE(20),
    socketId: cif.readUInt32BE(24),
    cookie: cif.readUInt32BE(28),
    peerIp: Buffer.from(cif.subarray(32, 48)),
    extensions,
  };
}

export function encodeHandshake(hs: Handshake): Buffer {
  const extBytes = hs.extensions.reduce((n, e) => n + 4 + pad4(e.data.length), 0);
  const out = Buffer.alloc(HS_FIXED_BYTES + extBytes);
  out.writeUInt32BE(hs.version >>> 0, 0);
  out.writeUInt16BE(hs.encryption, 4);
  out.writeUInt16BE(hs.extensionField, 6);
  out.writeUInt32BE(hs.isn >>> 0, 8);
  out.writeUInt32BE(hs.mtu >>> 0, 12);
  out.writeUInt32BE(hs.flowWindow >>> 0, 16);
  out.writeInt32BE(hs.type, 20);
  out.writeUInt32BE(hs.socketId >>> 0, 24);
  out.writeUInt32BE(hs.cookie >>> 0, 28);
  hs.peerIp.copy(out, 32, 0, 16);
  let off = HS_FIXED_BYTES;
  for (const e of hs.extensions) {
    out.writeUInt16BE(e.type, off);
    out.writeUInt16BE(pad4(e.data.length) / 4, off + 2);
    e.data.copy(out, off + 4);
    off += 4 + pad4(e.data.length);
  }
  return out;
}

/** The handshake type that rejects a connection for `reason`. */
export function rejectionType(reason: number): number {
  return REJECT_BASE + reason;
}

export interface SrtHsReq {
  srtVersion: number;
  flags: number;
  /** Latency the peer wants when it receives (ms). */
  recvDelay: number;
  /** Latency the peer proposes for what it sends (ms). */
  sendDelay: number;
}

export function parseHsReq(data: Buffer): SrtHsReq | null {
  if (data.length < 12) return null;
  return {
    srtVersion: data.readUInt32BE(0),
    flags: data.readUInt32BE(4),
    recvDelay: data.readUInt16BE(8),
    sendDelay: data.readUInt16BE(10),
  };
}

export function encodeHsRsp(r: SrtHsReq): Buffer {
  const out = Buffer.alloc(12);
  out.writeUInt32BE(r.srtVersion >>> 0, 0);
  out.writeUInt32BE(r.flags >>> 0, 4);
  out.writeUInt16BE(r.recvDelay, 8);
  out.writeUInt16BE(r.sendDelay, 10);
  return out;
}

/**
 * String extensions (stream id, congestion controller) travel as 32-bit words whose bytes are
 * reversed (libsrt copies the string into host-order words, then sends them in network order).
 */
export function decodeExtString(data: Buffer): string {
  const bytes = Buffer.from(data);
  for (let i = 0; i + 4 <= bytes.length; i += 4) bytes.subarray(i, i + 4).reverse();
  const end = bytes.indexOf(0);
  return bytes.subarray(0, end === -1 ? bytes.length : end).toString('utf8');
}

export function encodeExtString(s: string): Buffer {
  const raw = Buffer.from(s, 'utf8');
  const bytes = Buffer.alloc(pad4(raw.length));
  raw.copy(bytes);
  for (let i = 0; i + 4 <= bytes.length; i += 4) bytes.subarray(i, i + 4).reverse();
  return bytes;
}

/** a − b in 31-bit sequence space, in (−2^30, 2^30]. */
export function seqDiff(a: number, b: number): number {
  let d = (a - b) & SEQ_MAX;
  if (d > 0x40000000) d -= 0x80000000;
  return d;
}

export function seqAdd(a: number, n: number): number {
  return (((a + n) % 0x80000000) + 0x80000000) % 0x80000000;
}

/** NAK loss list: single sequence numbers, or ranges as (first | 0x80000000, last). */
export function encodeLossList(ranges: ReadonlyArray<readonly [number, number]>): Buffer {
  const words: number[] = [];
  for (const [first, last] of ranges) {
    if (first === last) words.push(first);
    else words.push((first | 0x80000000) >>> 0, last);
  }
  const out = Buffer.alloc(words.length * 4);
  words.forEach((w, i) => out.writeUInt32BE(w >>> 0, i * 4));
  return out;
}

export function decodeLossList(cif: Buffer): Array<[number, number]> {
  const out: Array<[number, number]> = [];
  for (let off = 0; off + 4 <= cif.length; off += 4) {
    const w = cif.readUInt32BE(off);
    if (w & 0x80000000 && off + 8 <= cif.length) {
      out.push([w & SEQ_MAX, cif.readUInt32BE(off + 4) & SEQ_MAX]);
      off += 4;
    } else out.push([w & SEQ_MAX, w & SEQ_MAX]);
  }
  return out;
}

/**
 * A stream id carries the stream key: either the key itself, or the access-control syntax
 * `#!::r=KEY,m=publish` (SRT's recommended form). Anything but publishing is refused.
 */
export function parseStreamId(sid: string): { ok: true; streamKey: string } | { ok: false; reason: number; message: string } {
  if (sid.startsWith('#!::')) {
    const fields = new Map<string, string>();
    for (const kv of sid.slice(4).split(',')) {
      const eq = kv.indexOf('=');
      if (eq > 0) fields.set(kv.slice(0, eq), kv.slice(eq + 1));
    }
    const mode = fields.get('m') ?? 'publish';
    if (mode !== 'publish') return { ok: false, reason: Reject.X_BAD_MODE, message: `mode ${mode}: this node only accepts publishers` };
    const key = fields.get('r') ?? '';
    return key
      ? { ok: true, streamKey: key }
      : { ok: false, reason: Reject.X_BAD_REQUEST, message: 'the stream id has no r= (resource: the stream key)' };
  }
  return sid
    ? { ok: true, streamKey: sid }
    : { ok: false, reason: Reject.X_BAD_REQUEST, message: 'no stream id: use srt://host:port?streamid={streamKey}' };
}

function pad4(n: number): number {
  return (n + 3) & ~3;
}
