// The SRT ingest server: one UDP port for every publisher (`srt://host:port?streamid={streamKey}`,
// optionally with a passphrase). The caller-listener handshake (HSv5) is answered here; the
// stream id is checked with `authorize` BEFORE the conclusion is answered, so no media is
// accepted from a refused publisher (it gets a rejection code instead). Accepted publishers are
// handed to `onPublish` with their MPEG-TS as a Readable. Live mode, receiving only. Handshakes
// are rate-limited per address and their state is bounded, so a flood costs little.
import { createHmac, randomBytes, randomInt } from 'node:crypto';
import { createSocket, type RemoteInfo, type Socket } from 'node:dgram';
import { isIPv4 } from 'node:net';
import type { Logger } from '../log.ts';
import { SrtConnection, type SrtEndCode, type SrtReceiveState } from './connection.ts';
import { PassphraseKeys, ReceiverKeys, parseKeyMaterial, type StreamKeys } from './crypto.ts';
import {
  Ctrl,
  Ext,
  ExtFlag,
  HsType,
  Reject,
  SRT_MAGIC,
  SrtFlag,
  decodeExtString,
  encodeControl,
  encodeHandshake,
  encodeHsRsp,
  parseHandshake,
  parseHsReq,
  parsePacket,
  parseStreamId,
  rejectionType,
  type Handshake,
} from './packet.ts';
import { AddressRateLimiter, TokenBucket } from './rate-limit.ts';

export interface SrtPublishRequest {
  streamKey: string;
  /** The full stream id the caller sent. */
  streamId: string;
  remoteAddress: string;
  signal: AbortSignal;
}

/** A refusal is answered with `rejection` (an SRT_REJX_* code: Reject in packet.ts), X_FORBIDDEN by default. */
export type SrtAuthorizeResult<C> = { ok: true; context: C } | { ok: false; reason: string; rejection?: number };

export interface SrtPublishSession<C> {
  id: string;
  streamKey: string;
  context: C;
  remoteAddress: string;
  encrypted: boolean;
  /** MPEG-TS from the publisher. */
  media: SrtConnection['media'];
  /** Packet counters of the connection (received, lost, dropped, undecryptable, key refreshes, …). */
  stats: SrtConnection['stats'];
  /** The receive state the connection holds (bounded by its window). */
  receiveState(): SrtReceiveState;
  close(reason?: string): void;
  onEnd(fn: (code: SrtEndCode, message: string) => void): void;
}

export interface SrtIngestOptions<C> {
  host?: string;
  /** 0 picks a free port (tests). */
  port: number;
  /** When set, publishers must encrypt with it (10–79 characters, as libsrt requires); otherwise they must not encrypt. */
  passphrase?: string;
  /** Latency this side asks for (ms); the larger of both sides' wins. Default 120. */
  latencyMs?: number;
  /** Publishers at once (connected or being authorized). Default 256. */
  maxConnections?: number;
  /**
   * The largest flow window accepted (packets): a caller's larger one is lowered to it. It is the
   * receive buffer of a connection, and a packet further ahead than it ends the connection.
   * Default 8192 (about 10 MB, 1.4 s of a 60 Mbit/s stream).
   */
  receiveWindow?: number;
  /** New handshakes (conclusions) per second from one address, and the burst. Default 2/s, burst 10. */
  handshakesPerSecond?: number;
  handshakeBurst?: number;
  /** Handshake answers remembered (for retransmitted conclusions). Default 1024. */
  maxPendingHandshakes?: number;
  /** PBKDF2 runs per second for the whole node (each blocks the event loop ~0.5 ms), and the burst. Default 20. */
  keyDerivationsPerSecond?: number;
  /** libsrt callers give up after 3 s by default: answer before that. Default 2500 ms. */
  authorizeTimeoutMs?: number;
  logger: Logger;
  authorize: (request: SrtPublishRequest) => Promise<SrtAuthorizeResult<C>>;
  onPublish: (session: SrtPublishSession<C>) => void;
}

/** A caller between its conclusion and our answer (or refusal), keyed by address and its socket id. */
interface Pending {
  /** The answer, once decided: resent for every retransmitted conclusion. */
  answer: Buffer | null;
  expiresAt: number;
  connection?: SrtConnection;
}

const OUR_SRT_VERSION = 0x010501;

export class SrtIngestServer<C = unknown> {
  private readonly opts: SrtIngestOptions<C>;
  private readonly log: Logger;
  private readonly socket: Socket;
  private readonly cookieSecret = randomBytes(16);
  private readonly pending = new Map<string, Pending>();
  /** Entries of `pending` still waiting for the origin. */
  private authorizing = 0;
  private readonly limiter: AddressRateLimiter;
  private readonly derivations: TokenBucket;
  private readonly passphraseKeys: PassphraseKeys | null;
  private throttled = 0;
  private throttledLoggedAt = 0;
  /** Connected publishers by our socket id. */
  private readonly connections = new Map<number, SrtConnection>();
  /** The live publisher of each stream key: a newer one replaces it. */
  private readonly byKey = new Map<string, SrtConnection>();
  private readonly sweeper: ReturnType<typeof setInterval>;
  private closed = false;
  private nextConnId = 1;

  constructor(opts: SrtIngestOptions<C>) {
    if (opts.passphrase !== undefined && (opts.passphrase.length < 10 || opts.passphrase.length > 79)) {
      throw new RangeError('an SRT passphrase is 10 to 79 characters');
    }
    for (const name of [
      'latencyMs',
      'maxConnections',
      'receiveWindow',
      'handshakesPerSecond',
      'handshakeBurst',
      'maxPendingHandshakes',
      'keyDerivationsPerSecond',
      'authorizeTimeoutMs',
    ] as const) {
      const value = opts[name];
      if (value !== undefined && !(Number.isFinite(value) && value > 0))
        throw new RangeError(`SRT option ${name} must be a positive number, not ${value}`);
    }
    if (opts.receiveWindow !== undefined && opts.receiveWindow < 32) throw new RangeError('the SRT receive window is at least 32 packets');
    if (opts.handshakeBurst !== undefined && opts.handshakeBurst < 1) throw new RangeError('the SRT handshake burst is at least 1');
    this.opts = opts;
    this.log = opts.logger;
    this.limiter = new AddressRateLimiter({ ratePerSecond: opts.handshakesPerSecond ?? 2, burst: opts.handshakeBurst ?? 10 });
    const derivationRate = opts.keyDerivationsPerSecond ?? 20;
    this.derivations = new TokenBucket({ ratePerSecond: derivationRate, burst: Math.max(1, derivationRate) }, Date.now());
    this.passphraseKeys = opts.passphrase === undefined ? null : new PassphraseKeys(opts.passphrase);
    this.socket = createSocket({ type: 'udp4', recvBufferSize: 4 * 1024 * 1024 });
    this.socket.on('message', (msg, rinfo) => {
      try {
        this.receive(msg, rinfo);
      } catch (err) {
        this.log.error('srt packet handling failed', { error: err, remote: rinfo.address });
      }
    });
    this.socket.on('error', (err) => this.log.error('srt socket error', { error: err }));
    this.sweeper = setInterval(() => {
      const now = Date.now();
      for (const [k, p] of this.pending) if (p.expiresAt < now && p.answer) this.pending.delete(k);
      this.limiter.sweep(now);
    }, 1000);
    this.sweeper.unref();
  }

  listen(): Promise<void> {
    return new Promise((resolve, reject) => {
      this.socket.once('error', reject);
      this.socket.bind(this.opts.port, this.opts.host ?? '0.0.0.0', () => {
        this.socket.off('error', reject);
        const { address, port } = this.address();
        this.log.info('srt ingest listening', { address, port, encrypted: this.opts.passphrase !== undefined });
        resolve();
      });
    });
  }

  address(): { address: string; port: number } {
    const a = this.socket.address();
    return { address: a.address, port: a.port };
  }

  get sessionCount(): number {
    return this.connections.size;
  }

  /** What the handshake path holds and has refused: every figure but the counters is bounded by an option. */
  handshakeState(): { pending: number; authorizing: number; addresses: number; throttled: number; keyDerivations: number } {
    return {
      pending: this.pending.size,
      authorizing: this.authorizing,
      addresses: this.limiter.size,
      throttled: this.throttled,
      keyDerivations: this.passphraseKeys?.derivations ?? 0,
    };
  }

  /** Ends every publisher (they are told: shutdown) and frees the port. */
  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    clearInterval(this.sweeper);
    for (const c of [...this.connections.values()]) c.end('server-closing', 'the ingest server is shutting down');
    // Let the shutdown packets leave before the socket closes.
    await new Promise((r) => setTimeout(r, 20));
    await new Promise<void>((resolve) => this.socket.close(() => resolve()));
    this.log.info('srt ingest closed');
  }

  private receive(msg: Buffer, rinfo: RemoteInfo): void {
    if (this.closed) return;
    const p = parsePacket(msg);
    if (!p) return;
    if (p.destSocketId !== 0) {
      const c = this.connections.get(p.destSocketId);
      // Packets for a socket id must come from the address that connected it.
      if (!c || c.peerAddress !== rinfo.address || c.peerPort !== rinfo.port) return;
      if (p.kind === 'data') c.handleData(p);
      else c.handleControl(p);
      return;
    }
    if (p.kind !== 'control' || p.type !== Ctrl.HANDSHAKE) return;
    const hs = parseHandshake(p.cif);
    if (!hs) return;
    if (hs.type === HsType.INDUCTION) this.induction(hs, rinfo);
    else if (hs.type === HsType.CONCLUSION) this.conclusion(hs, rinfo);
  }

  /** A SYN cookie from the caller's address and the minute: no state is kept before the conclusion. */
  private cookie(rinfo: RemoteInfo, minutesAgo = 0): number {
    const minute = Math.floor(Date.now() / 60_000) - minutesAgo;
    return createHmac('sha256', this.cookieSecret).update(`${rinfo.address}:${rinfo.port}:${minute}`).digest().readUInt32BE(0);
  }

  private induction(hs: Handshake, rinfo: RemoteInfo): void {
    this.sendHandshake(rinfo, hs.socketId, {
      ...hs,
      version: 5,
      encryption: 0,
      extensionField: SRT_MAGIC,
      type: HsType.INDUCTION,
      socketId: 0,
      cookie: this.cookie(rinfo),
      peerIp: ipField(rinfo.address),
      extensions: [],
    });
  }

  private conclusion(hs: Handshake, rinfo: RemoteInfo): void {
    const key = `${rinfo.address}:${rinfo.port}:${hs.socketId}`;
    const known = this.pending.get(key);
    if (known) {
      // A retransmitted conclusion: answer the same again (or stay silent while authorizing).
      if (known.answer) this.socket.send(known.answer, rinfo.port, rinfo.address);
      return;
    }
    if (hs.cookie !== this.cookie(rinfo) && hs.cookie !== this.cookie(rinfo, 1)) return; // not from our induction
    // The cookie proved the address answers: only now does it get a bucket (a spoofed flood of
    // conclusions never gets this far, so it cannot fill the table).
    if (!this.limiter.take(rinfo.address, Date.now())) return this.throttle(rinfo, 'handshakes from this address');
    const refuse = (reason: number, message: string) => {
      this.log.warn('srt publisher refused', { remote: rinfo.address, reason, message });
      const answer = this.handshakeBytes(hs.socketId, {
        ...hs,
        version: 5,
        extensionField: 0,
        type: rejectionType(reason),
        socketId: 0,
        peerIp: ipField(rinfo.address),
        extensions: [],
      });
      this.remember(key, { answer, expiresAt: Date.now() + 10_000 });
      this.socket.send(answer, rinfo.port, rinfo.address);
    };
    if (hs.version !== 5) return refuse(Reject.VERSION, `handshake version ${hs.version}`);
    const ext = (type: number) => hs.extensions.find((e) => e.type === type)?.data;
    const hsreqData = ext(Ext.HSREQ);
    const hsreq = hsreqData ? parseHsReq(hsreqData) : null;
    if (!hsreq || hsreq.srtVersion < 0x010300) return refuse(Reject.VERSION, 'SRT 1.3 or newer (HSv5 with HSREQ) is required');
    if (hsreq.flags & SrtFlag.STREAM) return refuse(Reject.MESSAGEAPI, 'file/stream mode is not accepted: use live mode');
    const congestion = ext(Ext.CONGESTION);
    if (congestion && decodeExtString(congestion) !== 'live') return refuse(Reject.CONGESTION, 'only live congestion control');
    if (ext(Ext.FILTER)) return refuse(Reject.FILTER, 'packet filters are not supported');
    if (ext(Ext.GROUP)) return refuse(Reject.GROUP, 'bonding groups are not supported');
    if (this.connections.size + this.authorizing >= (this.opts.maxConnections ?? 256))
      return refuse(Reject.RESOURCE, 'too many publishers');

    // Encryption is checked before the stream key: a wrong passphrase never reaches the origin.
    const kmData = ext(Ext.KMREQ);
    let keys: StreamKeys | null = null;
    if (this.passphraseKeys) {
      if (!kmData) return refuse(Reject.UNSECURE, 'this node requires an encrypted connection (passphrase)');
      const km = parseKeyMaterial(kmData);
      if (!km.ok) return refuse(Reject.BADSECRET, km.message);
      // PBKDF2 blocks the event loop every connection shares: a node-wide budget bounds it.
      if (this.passphraseKeys.needsDerivation(km.km) && !this.derivations.take(Date.now())) return this.throttle(rinfo, 'key derivations');
      keys = this.passphraseKeys.unwrap(km.km);
      if (!keys) return refuse(Reject.BADSECRET, 'wrong passphrase');
    } else if (kmData) return refuse(Reject.UNSECURE, 'this node takes unencrypted publishers only (no passphrase)');

    const sidData = ext(Ext.SID);
    const streamId = sidData ? decodeExtString(sidData) : '';
    const sid = parseStreamId(streamId);
    if (!sid.ok) return refuse(sid.reason, sid.message);

    const entry: Pending = { answer: null, expiresAt: Date.now() + 30_000 };
    this.pending.set(key, entry);
    this.authorizing++;
    const controller = new AbortController();
    const timeoutMs = this.opts.authorizeTimeoutMs ?? 2500;
    const timer = setTimeout(() => controller.abort(), timeoutMs);
    void Promise.race([
      this.opts.authorize({ streamKey: sid.streamKey, streamId, remoteAddress: rinfo.address, signal: controller.signal }),
      new Promise<SrtAuthorizeResult<C>>((resolve) =>
        controller.signal.addEventListener('abort', () => resolve({ ok: false, reason: `no answer within ${timeoutMs} ms` })),
      ),
    ])
      .catch((err: unknown): SrtAuthorizeResult<C> => ({ ok: false, reason: String(err) }))
      .then((verdict) => {
        clearTimeout(timer);
        this.authorizing--;
        if (this.closed || this.pending.get(key) !== entry) return;
        if (!verdict.ok) {
          this.pending.delete(key);
          return refuse(verdict.rejection ?? Reject.X_FORBIDDEN, verdict.reason);
        }
        this.accept(hs, hsreq, rinfo, entry, keys, kmData ?? null, sid.streamKey, verdict.context);
      });
  }

  private accept(
    hs: Handshake,
    hsreq: NonNullable<ReturnType<typeof parseHsReq>>,
    rinfo: RemoteInfo,
    entry: Pending,
    keys: StreamKeys | null,
    kmData: Buffer | null,
    streamKey: string,
    context: C,
  ): void {
    let socketId: number;
    do socketId = randomInt(1, 0x3fffffff);
    while (this.connections.has(socketId));
    const latencyMs = Math.max(this.opts.latencyMs ?? 120, hsreq.sendDelay, hsreq.recvDelay);
    const flowWindow = Math.max(32, Math.min(hs.flowWindow, this.opts.receiveWindow ?? 8192));
    const extensions = [
      {
        type: Ext.HSRSP,
        data: encodeHsRsp({
          srtVersion: OUR_SRT_VERSION,
          flags: SrtFlag.TSBPDSND | SrtFlag.TSBPDRCV | SrtFlag.CRYPT | SrtFlag.TLPKTDROP | SrtFlag.REXMITFLG,
          recvDelay: latencyMs,
          sendDelay: latencyMs,
        }),
      },
      // The key material is acknowledged by sending it back unchanged.
      ...(kmData ? [{ type: Ext.KMRSP, data: kmData }] : []),
    ];
    const answer = this.handshakeBytes(hs.socketId, {
      ...hs,
      version: 5,
      encryption: 0,
      extensionField: ExtFlag.HSREQ | (kmData ? ExtFlag.KMREQ : 0),
      mtu: Math.min(hs.mtu, 1500),
      flowWindow,
      type: HsType.CONCLUSION,
      socketId,
      peerIp: ipField(rinfo.address),
      extensions,
    });
    const id = `srt-${this.nextConnId++}`;
    const connection = new SrtConnection({
      id,
      socketId,
      peerSocketId: hs.socketId,
      peerAddress: rinfo.address,
      peerPort: rinfo.port,
      isn: hs.isn,
      latencyMs,
      flowWindow,
      encryption: keys && this.passphraseKeys ? { keys: new ReceiverKeys(keys), passphrase: this.passphraseKeys, salt: keys.salt } : null,
      send: (packet) => this.socket.send(packet, rinfo.port, rinfo.address),
      logger: this.log,
    });
    entry.answer = answer;
    entry.connection = connection;
    entry.expiresAt = Date.now() + 10_000;
    this.connections.set(socketId, connection);
    const previous = this.byKey.get(streamKey);
    // The newer publisher wins (an encoder that reconnects must not wait for its old connection
    // to time out). Across nodes, the origin's lease epoch decides.
    if (previous && previous !== connection) previous.end('closed', `a newer publisher (${id}) took over the stream`);
    this.byKey.set(streamKey, connection);
    connection.onEnded(() => {
      this.connections.delete(socketId);
      if (this.byKey.get(streamKey) === connection) this.byKey.delete(streamKey);
    });
    this.socket.send(answer, rinfo.port, rinfo.address);
    this.log.info('srt publisher accepted', { conn: id, remote: rinfo.address, latencyMs, encrypted: keys !== null });
    this.opts.onPublish({
      id,
      streamKey,
      context,
      remoteAddress: rinfo.address,
      encrypted: keys !== null,
      media: connection.media,
      stats: connection.stats,
      receiveState: () => connection.receiveState(),
      close: (reason = 'closed by the transcoder') => connection.end('closed', reason),
      onEnd: (fn) => connection.onEnded(fn),
    });
  }

  /**
   * Keeps an answer for the caller's retransmitted conclusions. The table is bounded: past the
   * limit the oldest answer is forgotten (a caller that retransmits after that just asks again).
   * Entries still waiting for the origin are never evicted; they are bounded by maxConnections.
   */
  private remember(key: string, entry: Pending): void {
    const max = this.opts.maxPendingHandshakes ?? 1024;
    if (this.pending.size >= max) {
      for (const [k, p] of this.pending) {
        if (p.answer) this.pending.delete(k);
        if (this.pending.size < max) break;
      }
    }
    if (this.pending.size < max) this.pending.set(key, entry);
  }

  /** Drops a handshake over a rate limit: no answer (the caller retransmits, and may get through then). */
  private throttle(rinfo: RemoteInfo, what: string): void {
    this.throttled++;
    const now = Date.now();
    if (now - this.throttledLoggedAt < 1000) return; // a flood must not become a log flood
    this.throttledLoggedAt = now;
    this.log.warn('srt handshakes throttled', { remote: rinfo.address, limit: what, throttled: this.throttled });
  }

  private handshakeBytes(destSocketId: number, hs: Handshake): Buffer {
    return encodeControl({ type: Ctrl.HANDSHAKE, subtype: 0, info: 0, timestamp: 0, destSocketId, cif: encodeHandshake(hs) });
  }

  private sendHandshake(rinfo: RemoteInfo, destSocketId: number, hs: Handshake): void {
    this.socket.send(this.handshakeBytes(destSocketId, hs), rinfo.port, rinfo.address);
  }
}

/** The handshake's peer address field: an IPv4 address as its first 32-bit word (little-endian, as libsrt writes it). */
function ipField(address: string): Buffer {
  const out = Buffer.alloc(16);
  if (isIPv4(address)) {
    const parts = address.split('.').map(Number);
    // 127.0.0.1 is sent as 0100007f: the address's bytes in host (little-endian) order.
    out.writeUInt32BE(((parts[3]! << 24) | (parts[2]! << 16) | (parts[1]! << 8) | parts[0]!) >>> 0, 0);
  }
  return out;
}
