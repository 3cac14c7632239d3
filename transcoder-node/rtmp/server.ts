// The RTMP ingest server: accepts publishers at rtmp://host:port/{app}/{streamKey} within global and
// per-address limits, checks each key with `authorize` before reading any media, and hands each
// accepted stream to `onPublish` as an RtmpPublishSession whose `flv` is ready to pipe into ffmpeg.
// With `tls` it is an RTMPS listener: the same connection handling over TLS it terminates itself.
import { createServer } from 'node:net';
import type { AddressInfo, Server, Socket } from 'node:net';
import { createSecureContext, TLSSocket, type SecureContext } from 'node:tls';
import type { Logger } from '../log.ts';
import { AddressLimiter } from './address-limits.ts';
import { RtmpConnection } from './connection.ts';
import type { ConnectionConfig, ConnectionHooks } from './connection.ts';
import type { AuthorizeResult, PublishRequest, RtmpPublishSession } from './session.ts';

/** A certificate (chain) and its private key, PEM. */
export interface TlsCertificate {
  cert: string | Buffer;
  key: string | Buffer;
}

export interface RtmpIngestOptions<C = unknown> {
  /** Interface to listen on; default all (`0.0.0.0`). */
  host?: string;
  /** 1935 in production; 0 picks a free port (tests). */
  port: number;
  /** RTMP applications accepted; default `['live']`. */
  apps?: readonly string[];
  /** Sockets open at once (handshaking, authorizing or publishing); more are dropped on accept. Default 256. */
  maxConnections?: number;
  /** Sockets one address (an IPv6 /64) may hold at once; more are dropped on accept. Default 8. */
  maxConnectionsPerAddress?: number;
  /** Connection attempts one address may make back to back before it is paced. Default 10. */
  acceptBurstPerAddress?: number;
  /** Attempts per second an address's burst refills at; attempts beyond it are dropped. Default 1. */
  acceptRatePerAddress?: number;
  /** From accept to the end of the handshake. Default 5 s. */
  handshakeTimeoutMs?: number;
  /** From accept to the publish command, whatever the client sends meanwhile. Default 10 s. */
  publishTimeoutMs?: number;
  /** From handshake to publish, and the longest gap between media messages while publishing. Default 15 s. */
  idleTimeoutMs?: number;
  /** How long authorize may take before the publish is refused. Default 10 s. */
  authorizeTimeoutMs?: number;
  /**
   * Largest audio, video or data message accepted once a publish is accepted (a keyframe must
   * fit). Before that, every message is capped at 64 KiB. Default 8 MiB.
   */
  maxMessageBytes?: number;
  /** Bytes the session's FLV stream buffers before the publisher's socket is paused. Default 1 MiB. */
  flvHighWaterMark?: number;
  /** RTMPS: terminate TLS with this certificate (rtmps://host:port/{app}/{streamKey}). */
  tls?: TlsCertificate;
  logger: Logger;
  /**
   * Asked once per publish, before any media is read. Refusing (or throwing, or not answering
   * within authorizeTimeoutMs) sends the encoder an error onStatus and closes the connection.
   */
  authorize: (request: PublishRequest) => Promise<AuthorizeResult<C>>;
  /**
   * Called for each accepted publish, after authorize said ok. A second publish with the same app
   * and key takes over: the older session ends with code `replaced` just before this is called.
   */
  onPublish: (session: RtmpPublishSession<C>) => void;
}

export class RtmpIngestServer<C = unknown> {
  private readonly options: RtmpIngestOptions<C>;
  private readonly config: ConnectionConfig;
  private readonly log: Logger;
  private readonly server: Server;
  private readonly connections = new Set<RtmpConnection<C>>();
  /** The live publisher of each `app/streamKey`. */
  private readonly publishers = new Map<string, RtmpConnection<C>>();
  private readonly hooks: ConnectionHooks<C>;
  private readonly maxConnections: number;
  private readonly limiter: AddressLimiter;
  /** Per drop reason: when it was last logged, and drops since then not logged. */
  private readonly dropLog = new Map<string, { at: number; suppressed: number }>();
  private closing: Promise<void> | null = null;
  /** Set for an RTMPS listener; replaced by setCertificate (renewals without a restart). */
  private secureContext: SecureContext | null;

  constructor(options: RtmpIngestOptions<C>) {
    this.options = options;
    this.log = options.logger;
    const maxMessageBytes = positive('maxMessageBytes', options.maxMessageBytes ?? 8 * 1024 * 1024);
    if (maxMessageBytes > 0xffffff) throw new RangeError('maxMessageBytes: RTMP messages are at most 16 MiB - 1');
    this.config = {
      apps: new Set(options.apps ?? ['live']),
      handshakeTimeoutMs: positive('handshakeTimeoutMs', options.handshakeTimeoutMs ?? 5_000),
      publishTimeoutMs: positive('publishTimeoutMs', options.publishTimeoutMs ?? 10_000),
      idleTimeoutMs: positive('idleTimeoutMs', options.idleTimeoutMs ?? 15_000),
      authorizeTimeoutMs: positive('authorizeTimeoutMs', options.authorizeTimeoutMs ?? 10_000),
      maxMessageBytes,
      flvHighWaterMark: options.flvHighWaterMark ?? 1024 * 1024,
    };
    this.maxConnections = positive('maxConnections', options.maxConnections ?? 256);
    this.limiter = new AddressLimiter({
      maxConnectionsPerAddress: options.maxConnectionsPerAddress ?? 8,
      acceptBurstPerAddress: options.acceptBurstPerAddress ?? 10,
      acceptRatePerAddress: options.acceptRatePerAddress ?? 1,
    });
    this.hooks = {
      authorize: (request) => this.options.authorize(request),
      started: (connection, session) => this.started(connection, session),
      closed: (connection) => this.closed(connection),
    };
    this.secureContext = options.tls ? createSecureContext(options.tls) : null;
    this.server = createServer((socket) => this.accept(socket));
    // After listen(), errors on the listening socket (EMFILE on accept...) are logged, not thrown.
    this.server.on('error', (err) => this.log.error('rtmp server error', { err }));
  }

  /** Starts listening; rejects if the port cannot be bound. */
  listen(): Promise<void> {
    return new Promise((resolve, reject) => {
      const onError = (err: Error) => reject(err);
      this.server.once('error', onError);
      this.server.listen(this.options.port, this.options.host ?? '0.0.0.0', () => {
        this.server.off('error', onError);
        const { address, port } = this.address();
        this.log.info('rtmp ingest listening', { address, port, apps: [...this.config.apps], tls: this.secureContext !== null });
        resolve();
      });
    });
  }

  /** The bound address and port (the real port when listening on 0). */
  address(): { address: string; port: number } {
    const info = this.server.address() as AddressInfo | null;
    if (!info || typeof info !== 'object') throw new Error('rtmp ingest server is not listening');
    return { address: info.address, port: info.port };
  }

  /**
   * A new certificate for the connections accepted from now on (an RTMPS listener's renewal);
   * throws, keeping the current one, when the certificate and key do not make a valid pair.
   */
  setCertificate(tls: TlsCertificate): void {
    if (!this.secureContext) throw new Error('this listener does not speak TLS');
    this.secureContext = createSecureContext(tls);
  }

  /** The sessions publishing now. */
  sessions(): RtmpPublishSession<C>[] {
    const out: RtmpPublishSession<C>[] = [];
    for (const c of this.publishers.values()) if (c.session) out.push(c.session);
    return out;
  }

  /** Stops accepting, ends every connection and session (code `server-closing`), frees the port. */
  close(): Promise<void> {
    this.closing ??= new Promise<void>((resolve) => {
      this.server.close(() => resolve());
      for (const c of [...this.connections]) c.end('server-closing', 'the ingest server is shutting down');
    }).then(() => this.log.info('rtmp ingest closed'));
    return this.closing;
  }

  private accept(socket: Socket): void {
    if (this.closing || socket.remoteAddress === undefined) {
      // Closing, or the peer is already gone (reset before we got to it): nothing to serve.
      socket.destroy();
      return;
    }
    if (this.connections.size >= this.maxConnections) {
      this.drop(socket, 'too many connections');
      return;
    }
    // The per-address checks come after the global one, so a full node does not spend the
    // tokens of addresses it could not have served anyway.
    const admission = this.limiter.admit(socket.remoteAddress, Date.now());
    if (!admission.ok) {
      this.drop(socket, admission.reason);
      return;
    }
    // TLS is set up only for an admitted socket, so the limits above also bound the handshakes a
    // stranger can make us compute; the connection's handshake deadline covers the TLS one too.
    const stream = this.secureContext ? new TLSSocket(socket, { isServer: true, secureContext: this.secureContext }) : socket;
    this.connections.add(new RtmpConnection<C>(stream, this.config, this.hooks, this.log));
  }

  // A flood of attempts must not become a flood of log lines: one line per reason per second,
  // with the count of drops it stands for.
  private drop(socket: Socket, reason: string): void {
    socket.on('error', () => {});
    socket.destroy();
    const now = Date.now();
    const last = this.dropLog.get(reason);
    if (last && now - last.at < 1000) {
      last.suppressed++;
      return;
    }
    const suppressed = last?.suppressed ?? 0;
    this.dropLog.set(reason, { at: now, suppressed: 0 });
    this.log.warn('rtmp connection dropped', {
      remote: socket.remoteAddress,
      reason,
      ...(suppressed > 0 ? { droppedSinceLastLine: suppressed } : {}),
    });
  }

  private started(connection: RtmpConnection<C>, session: RtmpPublishSession<C>): void {
    const key = connection.publishKey!;
    const previous = this.publishers.get(key);
    // The newer publisher wins: an encoder that reconnects after a network drop must not wait
    // for its old, half-dead TCP connection to time out. Across nodes, the origin's lease epoch
    // decides (the older node's pushes are fenced).
    if (previous && previous !== connection) {
      this.log.info('rtmp publisher replaced', { conn: previous.id, by: connection.id });
      previous.end('replaced', `a newer publisher (${connection.id}) took over the stream`, true);
    }
    this.publishers.set(key, connection);
    this.options.onPublish(session);
  }

  private closed(connection: RtmpConnection<C>): void {
    this.connections.delete(connection);
    this.limiter.release(connection.remoteAddress);
    const key = connection.publishKey;
    if (key !== null && this.publishers.get(key) === connection) this.publishers.delete(key);
  }
}

function positive(name: string, value: number): number {
  if (!(value > 0 && Number.isFinite(value))) throw new RangeError(`${name} must be a positive number, not ${value}`);
  return value;
}
