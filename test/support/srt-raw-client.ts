// A hand-driven SRT caller for tests: does the HSv5 handshake (optionally with key material it
// made itself), then sends whatever data and control packets a test crafts — what libsrt never
// would (jumps, floods, cleartext on an encrypted connection) — and records what comes back.
import { createCipheriv, pbkdf2Sync, randomBytes } from 'node:crypto';
import { createSocket, type Socket } from 'node:dgram';
import {
  Ctrl,
  Ext,
  ExtFlag,
  HsType,
  encodeControl,
  encodeExtString,
  encodeHandshake,
  parseHandshake,
  parsePacket,
  seqAdd,
  type ControlPacket,
  type Handshake,
} from '../../transcoder-node/srt/packet.ts';

const WRAP_IV = Buffer.from('a6a6a6a6a6a6a6a6', 'hex');

/** Stream keys made by the test, wrapped with a passphrase the way HaiCrypt does (AES-128). */
export class TestKeys {
  readonly salt = randomBytes(16);
  readonly even = randomBytes(16);
  readonly odd = randomBytes(16);

  /** A key material message carrying the even key (1), the odd one (2) or both (3), wrapped with `passphrase`. */
  keyMaterial(passphrase: string, keyFlags: 1 | 2 | 3): Buffer {
    const kek = pbkdf2Sync(passphrase, this.salt.subarray(8), 2048, 16, 'sha1');
    const plain = keyFlags === 3 ? Buffer.concat([this.even, this.odd]) : keyFlags === 1 ? this.even : this.odd;
    const c = createCipheriv('id-aes128-wrap', kek, WRAP_IV);
    const wrapped = Buffer.concat([c.update(plain), c.final()]);
    const head = Buffer.from([0x12, 0x20, 0x29, keyFlags, 0, 0, 0, 0, 2, 0, 2, 0, 0, 0, 16 / 4, 16 / 4]);
    return Buffer.concat([head, this.salt, wrapped]);
  }

  /** Key material with a fresh salt whose wrapped keys are random bytes: no passphrase unwraps it. */
  static bogusKeyMaterial(): Buffer {
    const head = Buffer.from([0x12, 0x20, 0x29, 1, 0, 0, 0, 0, 2, 0, 2, 0, 0, 0, 16 / 4, 16 / 4]);
    return Buffer.concat([head, randomBytes(16), randomBytes(24)]);
  }

  encrypt(keyFlags: 1 | 2, seq: number, payload: Buffer): Buffer {
    const iv = Buffer.alloc(16);
    iv.writeUInt32BE(seq >>> 0, 10);
    for (let i = 0; i < 14; i++) iv[i]! ^= this.salt[i]!;
    const c = createCipheriv('aes-128-ctr', keyFlags === 1 ? this.even : this.odd, iv);
    return Buffer.concat([c.update(payload), c.final()]);
  }
}

export interface RawCallerOptions {
  port: number;
  streamId: string;
  /** Local address to send from (any 127.x.y.z works on Linux loopback). */
  bindAddress?: string;
  isn?: number;
  flowWindow?: number;
  /** Key material to put in the conclusion (an encrypted connection). */
  keyMaterial?: Buffer;
}

export class RawSrtCaller {
  readonly socket: Socket;
  readonly isn: number;
  readonly socketId = 0x1000 + Math.floor(Math.random() * 0xffff);
  /** The listener's socket id for this connection (after an accepted conclusion). */
  serverSocketId = 0;
  /** Control packets the listener sent, in order. */
  readonly controls: ControlPacket[] = [];
  private readonly opts: RawCallerOptions;
  private waiters: Array<() => void> = [];

  private constructor(socket: Socket, opts: RawCallerOptions) {
    this.socket = socket;
    this.opts = opts;
    this.isn = opts.isn ?? 1000;
    socket.on('message', (msg) => {
      const p = parsePacket(msg);
      if (p?.kind === 'control') this.controls.push(p);
      for (const w of this.waiters.splice(0)) w();
    });
  }

  static async open(opts: RawCallerOptions): Promise<RawSrtCaller> {
    const socket = createSocket('udp4');
    await new Promise<void>((r) => socket.bind(0, opts.bindAddress ?? '127.0.0.1', () => r()));
    return new RawSrtCaller(socket, opts);
  }

  /** Induction then conclusion; resolves with the listener's answer to the conclusion. */
  async connect(): Promise<Handshake> {
    const cookie = (await this.handshake(this.induction())).cookie;
    const answer = await this.handshake(this.conclusion(cookie, this.socketId));
    if (answer.type === HsType.CONCLUSION) this.serverSocketId = answer.socketId;
    return answer;
  }

  /** The induction handshake (its answer carries the cookie). */
  induction(): Buffer {
    return this.handshakeBytes({
      version: 4,
      encryption: 0,
      extensionField: 2,
      type: HsType.INDUCTION,
      socketId: this.socketId,
      cookie: 0,
      extensions: [],
    });
  }

  /** A conclusion handshake with the given cookie and caller socket id. */
  conclusion(cookie: number, socketId: number, keyMaterial = this.opts.keyMaterial): Buffer {
    const hsreq = Buffer.alloc(12);
    hsreq.writeUInt32BE(0x010501, 0);
    hsreq.writeUInt32BE(0xbf, 4); // TSBPD both ways, crypt, TLPKTDROP, NAK reports, rexmit flag, filter cap
    hsreq.writeUInt16BE(120, 8);
    const extensions = [
      { type: Ext.HSREQ, data: hsreq },
      { type: Ext.SID, data: encodeExtString(this.opts.streamId) },
      ...(keyMaterial ? [{ type: Ext.KMREQ, data: keyMaterial }] : []),
    ];
    return this.handshakeBytes({
      version: 5,
      encryption: keyMaterial ? 2 : 0,
      extensionField: ExtFlag.HSREQ | ExtFlag.CONFIG | (keyMaterial ? ExtFlag.KMREQ : 0),
      type: HsType.CONCLUSION,
      socketId,
      cookie,
      extensions,
    });
  }

  /** Sends a handshake and waits for the next handshake answer. */
  async handshake(packet: Buffer, timeoutMs = 3000): Promise<Handshake> {
    const from = this.controls.length;
    this.send(packet);
    const p = await this.waitFor((c, i) => i >= from && c.type === Ctrl.HANDSHAKE, timeoutMs);
    return parseHandshake(p.cif)!;
  }

  sendData(seq: number, payload: Buffer, keyFlags = 0): void {
    const b = Buffer.alloc(16 + payload.length);
    b.writeUInt32BE(seq & 0x7fffffff, 0);
    // PP = 11 (a whole message), in order, KK, message number
    b.writeUInt32BE(((0b11 << 30) | (1 << 29) | ((keyFlags & 3) << 27) | 1) >>> 0, 4);
    b.writeUInt32BE(0, 8);
    b.writeUInt32BE(this.serverSocketId, 12);
    payload.copy(b, 16);
    this.send(b);
  }

  sendControl(type: number, subtype: number, cif: Buffer, info = 0): void {
    this.send(encodeControl({ type, subtype, info, timestamp: 0, destSocketId: this.serverSocketId, cif }));
  }

  /** `n` packets from the ISN on, in order. */
  seq(n: number): number {
    return seqAdd(this.isn, n);
  }

  send(packet: Buffer): void {
    this.socket.send(packet, this.opts.port, '127.0.0.1');
  }

  /** The first recorded control packet that matches (waiting for it if need be). */
  async waitFor(match: (c: ControlPacket, index: number) => boolean, timeoutMs = 3000): Promise<ControlPacket> {
    const deadline = Date.now() + timeoutMs;
    for (;;) {
      const found = this.controls.find(match);
      if (found) return found;
      const left = deadline - Date.now();
      if (left <= 0) throw new Error('no matching control packet from the listener');
      await new Promise<void>((resolve) => {
        const t = setTimeout(resolve, left);
        this.waiters.push(() => {
          clearTimeout(t);
          resolve();
        });
      });
    }
  }

  close(): void {
    this.socket.close();
  }

  private handshakeBytes(hs: Omit<Handshake, 'isn' | 'mtu' | 'flowWindow' | 'peerIp'>): Buffer {
    const full: Handshake = { ...hs, isn: this.isn, mtu: 1500, flowWindow: this.opts.flowWindow ?? 8192, peerIp: Buffer.alloc(16) };
    return encodeControl({ type: Ctrl.HANDSHAKE, subtype: 0, info: 0, timestamp: 0, destSocketId: 0, cif: encodeHandshake(full) });
  }
}
