// One publisher's TCP connection: handshake, then the command dialogue (connect, createStream,
// publish), the async stream-key check before any media is read, and media into the session's
// FLV stream with back-pressure. Until a publish is accepted the client is a stranger: small
// messages only, no answers before connect, a deadline. A thin shell over the pure protocol code.
import { randomBytes } from 'node:crypto';
import type { Socket } from 'node:net';
import { Readable } from 'node:stream';
import type { Logger } from '../log.ts';
import type { Amf0Object } from './amf0.ts';
import { ChunkStreamReader, encodeChunks } from './chunk-stream.ts';
import type { ChunkReaderLimits, RtmpMessage } from './chunk-stream.ts';
import { RtmpProtocolError } from './errors.ts';
import { encodeFlvHeader, encodeFlvTag, flvTagsFromMessage } from './flv.ts';
import { HandshakeReader } from './handshake.ts';
import {
  MessageType,
  UserControlEvent,
  acknowledgementMessage,
  commandMessage,
  decodeCommand,
  onStatusMessage,
  readControlValue,
  readUserControl,
  setChunkSizeMessage,
  setPeerBandwidthMessage,
  userControlMessage,
  windowAckSizeMessage,
} from './messages.ts';
import type { RtmpCommand } from './messages.ts';
import { RtmpPublishSession, streamKeyPrefix } from './session.ts';
import type { AuthorizeResult, PublishRequest, RtmpEndCode } from './session.ts';

export interface ConnectionConfig {
  apps: ReadonlySet<string>;
  handshakeTimeoutMs: number;
  /** From accept to the publish command. */
  publishTimeoutMs: number;
  idleTimeoutMs: number;
  authorizeTimeoutMs: number;
  maxMessageBytes: number;
  flvHighWaterMark: number;
}

export interface ConnectionHooks<C> {
  authorize(request: PublishRequest): Promise<AuthorizeResult<C>>;
  /** The publish was authorized: register the session and hand it on. Throwing refuses it. */
  started(connection: RtmpConnection<C>, session: RtmpPublishSession<C>): void;
  /** Called once when the connection is done, whatever the reason. */
  closed(connection: RtmpConnection<C>): void;
}

type Phase = 'handshake' | 'connect' | 'ready' | 'authorizing' | 'publishing' | 'closed';

// Stream keys travel to the origin (which allows 1–200 characters); printable ASCII only, so
// nothing odd reaches a log prefix, a URL or a header.
const STREAM_KEY = /^[\x21-\x7e]{1,200}$/;
// Window we ask the publisher to acknowledge on, and the chunk size we send with: the values
// nginx-rtmp and SRS use. Our messages are small, so the chunk size only saves headers.
const SERVER_WINDOW = 2_500_000;
const OUT_CHUNK_SIZE = 4096;
// Chunk streams in use at once: encoders use 3 to 8; room for odd ones.
const MAX_CHUNK_STREAMS = 64;
// Until a publish is accepted every message is a command or control message: connect carries the
// largest object, well under 1 KiB. So a client without a stream key holds at most two such
// messages' worth of memory (each message is one buffer of its declared length).
const MAX_MESSAGE_BYTES_BEFORE_PUBLISH = 64 * 1024;
const BEFORE_PUBLISH: ChunkReaderLimits = {
  maxMessageBytes: MAX_MESSAGE_BYTES_BEFORE_PUBLISH,
  maxChunkStreams: MAX_CHUNK_STREAMS,
  maxBufferedBytes: 2 * MAX_MESSAGE_BYTES_BEFORE_PUBLISH,
};
// What we send is a few small answers; a client that lets this much of it pile up in our socket
// (beyond what the kernel buffers hold) is not reading, and is dropped rather than buffered for.
const MAX_UNSENT_BYTES = 64 * 1024;
// NetStreams a connection may create; a publisher needs one.
const MAX_STREAMS = 4;
// After a refusal the socket is ended so the onStatus reaches the client; a client that does not
// close its side is cut off after this long.
const LINGER_MS = 2000;

export class RtmpConnection<C = unknown> {
  readonly id = randomBytes(4).toString('hex');
  /** IP only: what authorize and the session get. */
  readonly remoteAddress: string;
  session: RtmpPublishSession<C> | null = null;
  /** `app/streamKey` once publish was requested. */
  publishKey: string | null = null;

  private readonly socket: Socket;
  private readonly config: ConnectionConfig;
  private readonly hooks: ConnectionHooks<C>;
  private log: Logger;
  private phase: Phase = 'handshake';
  private readonly handshake = new HandshakeReader();
  private readonly reader: ChunkStreamReader;
  private app = '';
  private encoder: string | null = null;
  private readonly streams = new Set<number>();
  private nextStreamId = 1;
  private publishStreamId = 0;
  private outChunkSize = 128;
  private bytesIn = 0;
  private ackWindow = 0;
  private lastAck = 0;
  private flvFull = false;
  private draining = false;
  private timer: NodeJS.Timeout | null = null;
  private readonly acceptedAt = Date.now();
  private lastMediaAt = 0;
  private authorizeAbort: AbortController | null = null;
  private socketError: string | null = null;

  constructor(socket: Socket, config: ConnectionConfig, hooks: ConnectionHooks<C>, log: Logger) {
    this.socket = socket;
    this.config = config;
    this.hooks = hooks;
    this.remoteAddress = cleanAddress(socket.remoteAddress);
    this.log = log.child({ conn: this.id, remote: formatPeer(this.remoteAddress, socket.remotePort) });
    this.reader = new ChunkStreamReader(BEFORE_PUBLISH);
    socket.setNoDelay(true);
    socket.on('data', (data: Buffer) => this.onData(data));
    socket.on('error', (err: NodeJS.ErrnoException) => {
      this.socketError = err.code ?? err.message;
    });
    socket.on('close', () => this.onSocketClose());
    this.armBeforePublish(config.handshakeTimeoutMs, () =>
      this.end('handshake-timeout', `handshake not done within ${config.handshakeTimeoutMs} ms`),
    );
    this.log.debug('rtmp connection opened');
  }

  /** Ends the connection (and session, if any). `graceful` lets queued writes reach the client first. */
  end(code: RtmpEndCode, message: string, graceful = false): void {
    if (this.phase === 'closed') return;
    this.phase = 'closed';
    this.clearTimer();
    this.authorizeAbort?.abort(new Error(message));
    if (graceful && !this.socket.destroyed) {
      this.socket.end();
      // Keep reading (and discarding, see onData) so the client's FIN is seen and the socket
      // closes as soon as the client hangs up.
      this.socket.resume();
      setTimeout(() => this.socket.destroy(), LINGER_MS).unref();
    } else {
      this.socket.destroy();
    }
    const session = this.session;
    if (session) {
      session.stats.bytesIn = this.bytesIn;
      // finish() runs the integrator's 'end' listeners, possibly from inside a socket event:
      // a throw there must not escape into Node's event loop.
      try {
        session.finish({ code, message });
      } catch (err) {
        this.log.error('session end listener threw', { err });
      }
    }
    const fields = {
      code,
      reason: message,
      bytesIn: this.bytesIn,
      ...(session ? { videoTags: session.stats.videoTags, audioTags: session.stats.audioTags } : {}),
    };
    if (WARN_CODES.has(code)) {
      this.log.warn('rtmp connection closed', fields);
    } else {
      this.log.info('rtmp connection closed', fields);
    }
    this.hooks.closed(this);
  }

  private onSocketClose(): void {
    if (this.phase === 'closed') return;
    const where = this.phase === 'handshake' ? ' during the handshake' : this.reader.midMessage ? ' in the middle of a message' : '';
    const why = this.socketError ? ` (${this.socketError})` : '';
    this.end('disconnected', `publisher disconnected${where}${why}`);
  }

  private onData(data: Buffer): void {
    if (this.phase === 'closed') return;
    this.bytesIn += data.length;
    try {
      if (this.phase === 'handshake') {
        const { reply, rest } = this.handshake.push(data);
        if (reply) this.socket.write(reply);
        if (!this.handshake.done) return;
        this.phase = 'connect';
        // From here the publisher has the idle timeout to get to publish (within the deadline).
        this.armBeforePublish(this.config.idleTimeoutMs, () =>
          this.end('idle-timeout', `no publish within ${this.config.idleTimeoutMs} ms`),
        );
        if (!rest) return;
        data = rest;
      }
      this.maybeAcknowledge();
      this.reader.push(data);
    } catch (err) {
      this.fail(err);
      return;
    }
    this.drain();
  }

  /** Handles buffered messages until input runs out or reading must stop. */
  private drain(): void {
    if (this.draining) return;
    this.draining = true;
    try {
      while (this.canRead()) {
        const msg = this.reader.read();
        if (!msg) break;
        this.handleMessage(msg);
      }
    } catch (err) {
      this.fail(err);
    } finally {
      this.draining = false;
    }
    this.updateFlow();
  }

  // Reading stops while authorize runs (no media before the key is checked) and while the FLV
  // consumer is behind (the socket, not memory, absorbs a slow ffmpeg).
  private canRead(): boolean {
    return this.phase !== 'closed' && this.phase !== 'authorizing' && !this.flvFull;
  }

  private updateFlow(): void {
    if (this.phase === 'closed') return;
    if (this.canRead()) this.socket.resume();
    else this.socket.pause();
  }

  /**
   * Arms the timer for the current step before publish: `ms` from now, or the publish deadline
   * counted from accept if that comes first, so no sequence of steps gets a stranger more time.
   */
  private armBeforePublish(ms: number, fire: () => void): void {
    const deadline = this.config.publishTimeoutMs;
    const left = this.acceptedAt + deadline - Date.now();
    if (left <= ms) {
      this.arm(Math.max(left, 0), () => this.end('publish-timeout', `no publish within ${deadline} ms of connecting`));
    } else {
      this.arm(ms, fire);
    }
  }

  private fail(err: unknown): void {
    if (err instanceof RtmpProtocolError) {
      this.end('protocol-error', err.message);
    } else {
      this.log.error('rtmp connection failed', { err });
      this.end('internal-error', err instanceof Error ? err.message : String(err));
    }
  }

  /** Writes a message, or ends the connection if the client has left too much output unread. */
  private send(msg: RtmpMessage): void {
    if (this.phase === 'closed' || !this.socket.writable) return;
    this.socket.write(encodeChunks(msg, this.outChunkSize));
    if (this.socket.writableLength > MAX_UNSENT_BYTES) {
      this.end('output-backlog', `the client does not read what it is sent: more than ${MAX_UNSENT_BYTES} bytes unsent`);
    }
  }

  private maybeAcknowledge(): void {
    // Before connect nothing is answered, acknowledgements included.
    if (this.phase === 'connect') return;
    if (this.ackWindow > 0 && this.bytesIn - this.lastAck >= this.ackWindow) {
      this.lastAck = this.bytesIn;
      this.send(acknowledgementMessage(this.bytesIn));
    }
  }

  private handleMessage(msg: RtmpMessage): void {
    switch (msg.type) {
      case MessageType.SetChunkSize:
        this.reader.setChunkSize(readControlValue(msg));
        return;
      case MessageType.Abort:
        this.reader.abort(readControlValue(msg));
        return;
      case MessageType.WindowAckSize:
        this.ackWindow = readControlValue(msg);
        return;
      case MessageType.Acknowledgement:
      case MessageType.SetPeerBandwidth:
        return;
      case MessageType.UserControl: {
        const { event, value } = readUserControl(msg);
        // A ping before connect is a stranger asking for output: it gets none.
        if (event === UserControlEvent.PingRequest && this.phase !== 'connect')
          this.send(userControlMessage(UserControlEvent.PingResponse, value));
        return;
      }
      case MessageType.CommandAmf0:
      case MessageType.CommandAmf3:
        this.handleCommand(decodeCommand(msg), msg.streamId);
        return;
      case MessageType.Audio:
      case MessageType.Video:
      case MessageType.DataAmf0:
      case MessageType.DataAmf3:
      case MessageType.Aggregate:
        this.handleMedia(msg);
        return;
      default:
        // Shared objects and unknown types mean nothing to an ingest; skipping them is what
        // other servers do.
        this.log.debug('rtmp message ignored', { type: msg.type });
    }
  }

  private handleCommand(cmd: RtmpCommand, streamId: number): void {
    if (this.phase === 'connect' && cmd.name !== 'connect') {
      throw new RtmpProtocolError(`command ${JSON.stringify(cmd.name.slice(0, 32))} before connect`);
    }
    switch (cmd.name) {
      case 'connect':
        if (this.phase !== 'connect') throw new RtmpProtocolError('second connect on one connection');
        this.onConnect(cmd);
        return;
      case 'releaseStream':
      case 'FCPublish':
        // Flash Media Server habits: encoders send them before createStream. ffmpeg and OBS
        // accept a plain _result (or none).
        if (cmd.transactionId > 0) this.send(commandMessage(0, '_result', cmd.transactionId, null));
        return;
      case 'createStream': {
        if (this.streams.size >= MAX_STREAMS) throw new RtmpProtocolError('too many createStream calls');
        const id = this.nextStreamId++;
        this.streams.add(id);
        this.send(commandMessage(0, '_result', cmd.transactionId, null, id));
        return;
      }
      case 'publish':
        this.onPublish(cmd, streamId);
        return;
      case 'play':
      case 'play2':
        this.send(onStatusMessage(streamId, 'error', 'NetStream.Play.Failed', 'This server only accepts publishers.'));
        this.log.warn('play refused', { reason: 'this server only ingests' });
        this.end('refused', 'play is not supported', true);
        return;
      case 'FCUnpublish':
      case 'deleteStream':
      case 'closeStream':
        if (this.phase === 'publishing') this.end('unpublished', `publisher sent ${cmd.name}`, true);
        return;
      default:
        // _checkbw, getStreamLength, onBWDone replies...: nothing an ingest needs to answer.
        this.log.debug('rtmp command ignored', { command: cmd.name.slice(0, 32) });
    }
  }

  private onConnect(cmd: RtmpCommand): void {
    const rawApp = cmd.object?.app;
    if (typeof rawApp !== 'string') throw new RtmpProtocolError('connect without an app');
    // OBS and others may send `live/` or `live?param`; the app is the path between.
    this.app = rawApp.split('?')[0]!.replace(/^\/+|\/+$/g, '');
    const flashVer = cmd.object?.flashVer;
    this.encoder = typeof flashVer === 'string' ? flashVer.slice(0, 100) : null;
    if (!this.config.apps.has(this.app)) {
      this.send(
        commandMessage(0, '_error', cmd.transactionId, null, {
          level: 'error',
          code: 'NetConnection.Connect.Rejected',
          description: 'Unknown application.',
        }),
      );
      this.log.warn('connect refused', { app: this.app.slice(0, 64), reason: 'application not served here' });
      this.end('refused', `application ${JSON.stringify(this.app.slice(0, 64))} not served`, true);
      return;
    }
    // Ready before the answers go out: a send that finds the client not reading ends the
    // connection, and that must not be undone by a phase change after it.
    this.phase = 'ready';
    this.send(windowAckSizeMessage(SERVER_WINDOW));
    this.send(setPeerBandwidthMessage(SERVER_WINDOW, 2));
    this.send(setChunkSizeMessage(OUT_CHUNK_SIZE));
    this.outChunkSize = OUT_CHUNK_SIZE;
    this.send(
      commandMessage(
        0,
        '_result',
        cmd.transactionId,
        { fmsVer: 'FMS/3,0,1,123', capabilities: 31 },
        { level: 'status', code: 'NetConnection.Connect.Success', description: 'Connection succeeded.', objectEncoding: 0 },
      ),
    );
    this.log.debug('rtmp connected', { app: this.app, encoder: this.encoder });
  }

  private onPublish(cmd: RtmpCommand, streamId: number): void {
    if (this.phase !== 'ready') throw new RtmpProtocolError('second publish on one connection');
    if (!this.streams.has(streamId)) throw new RtmpProtocolError(`publish on stream ${streamId}, which was not created`);
    this.publishStreamId = streamId;
    const name = cmd.args[0];
    if (typeof name !== 'string') {
      this.refuse('NetStream.Publish.BadName', 'publish without a stream name', 'Missing stream name.');
      return;
    }
    const cut = name.indexOf('?');
    const streamKey = cut < 0 ? name : name.slice(0, cut);
    const query = new URLSearchParams(cut < 0 ? '' : name.slice(cut + 1));
    if (!STREAM_KEY.test(streamKey)) {
      this.refuse('NetStream.Publish.BadName', 'stream key empty, longer than 200 characters or not printable ASCII', 'Bad stream name.');
      return;
    }
    this.publishKey = `${this.app}/${streamKey}`;
    this.log = this.log.child({ app: this.app, key: streamKeyPrefix(streamKey) });
    this.phase = 'authorizing';
    this.updateFlow();
    const abort = new AbortController();
    this.authorizeAbort = abort;
    this.arm(this.config.authorizeTimeoutMs, () => {
      abort.abort(new Error('authorize timed out'));
      this.refuse('NetStream.Publish.Denied', `authorize did not answer within ${this.config.authorizeTimeoutMs} ms`, 'Publish refused.');
    });
    this.log.info('publish requested', { encoder: this.encoder });
    void this.authorize({ app: this.app, streamKey, query, remoteAddress: this.remoteAddress, signal: abort.signal });
  }

  private async authorize(request: PublishRequest): Promise<void> {
    let result: AuthorizeResult<C>;
    try {
      result = await this.hooks.authorize(request);
    } catch (err) {
      if (this.phase !== 'authorizing') return;
      const message = err instanceof Error ? err.message : String(err);
      this.refuse('NetStream.Publish.Denied', `authorize failed: ${message}`, 'Publish refused.');
      return;
    }
    if (this.phase !== 'authorizing') {
      // Too late: the publisher left or the check timed out. A lease taken for it expires at the origin.
      this.log.info('authorize answered after the connection ended', { ok: result?.ok === true });
      return;
    }
    this.clearTimer();
    this.authorizeAbort = null;
    if (result?.ok === true) {
      this.accept(result.context, request.streamKey);
    } else if (result?.ok === false) {
      this.refuse('NetStream.Publish.Denied', String(result.reason).slice(0, 200), result.description?.slice(0, 200) ?? 'Publish refused.');
    } else {
      this.refuse('NetStream.Publish.Denied', 'authorize returned no decision', 'Publish refused.');
    }
  }

  /** Refuses the publish: an error onStatus the encoder reports, then the connection ends. */
  private refuse(code: string, reason: string, description: string): void {
    this.log.warn('publish refused', { reason });
    this.send(onStatusMessage(this.publishStreamId, 'error', code, description));
    this.end('refused', reason, true);
  }

  private accept(context: C | undefined, streamKey: string): void {
    const flv = new Readable({
      highWaterMark: this.config.flvHighWaterMark,
      read: () => this.onFlvRead(),
    });
    // A consumer that destroys the stream (pipeline() does when ffmpeg's stdin breaks) ends the
    // publish. Its error is handled here: unhandled, it would take the whole process down.
    flv.on('error', (err) => {
      if (this.phase === 'publishing') this.end('consumer-gone', `the FLV stream was destroyed by its consumer (${err.message})`);
    });
    flv.on('close', () => {
      if (this.phase === 'publishing') this.end('consumer-gone', 'the FLV stream was destroyed by its consumer');
    });
    flv.push(encodeFlvHeader());
    const session = new RtmpPublishSession<C>({
      id: this.id,
      app: this.app,
      streamKey,
      context,
      remoteAddress: this.remoteAddress,
      encoder: this.encoder,
      flv,
      close: (reason) => this.end('closed', reason, true),
    });
    this.session = session;
    this.phase = 'publishing';
    // A stream key was shown: from now on messages may be as large as media needs.
    this.reader.setLimits({
      maxMessageBytes: MAX_MESSAGE_BYTES_BEFORE_PUBLISH,
      maxMediaMessageBytes: this.config.maxMessageBytes,
      maxChunkStreams: MAX_CHUNK_STREAMS,
      // A large video message in progress next to a few small ones.
      maxBufferedBytes: 2 * this.config.maxMessageBytes + MAX_MESSAGE_BYTES_BEFORE_PUBLISH,
    });
    try {
      this.hooks.started(this, session);
    } catch (err) {
      this.log.error('onPublish threw', { err });
      this.end('internal-error', 'onPublish threw');
      return;
    }
    if (this.phase !== 'publishing') return; // onPublish closed it already
    this.send(userControlMessage(UserControlEvent.StreamBegin, this.publishStreamId));
    this.send(onStatusMessage(this.publishStreamId, 'status', 'NetStream.Publish.Start', 'Publishing.'));
    if (this.phase !== 'publishing') return; // the client was not reading
    this.log.info('publish accepted');
    this.lastMediaAt = Date.now();
    this.armIdle();
    this.drain();
  }

  private handleMedia(msg: RtmpMessage): void {
    if (this.phase !== 'publishing') {
      // Audio or video before the key was checked is exactly what must not be accepted.
      if (msg.type === MessageType.DataAmf0 || msg.type === MessageType.DataAmf3) return;
      throw new RtmpProtocolError(`media message (type ${msg.type}) before publish was accepted`);
    }
    if (msg.streamId !== this.publishStreamId) return;
    const session = this.session!;
    this.lastMediaAt = Date.now();
    for (const tag of flvTagsFromMessage(msg)) {
      if (tag.script?.name === 'onMetaData' && isObject(tag.script.value)) {
        session.metadata = tag.script.value;
        session.emit('metadata', tag.script.value);
      } else if (tag.type === MessageType.Audio) {
        session.stats.audioTags++;
        session.stats.lastTimestamp = tag.timestamp;
      } else if (tag.type === MessageType.Video) {
        session.stats.videoTags++;
        session.stats.lastTimestamp = tag.timestamp;
      }
      if (session.flv.destroyed) return;
      if (!session.flv.push(encodeFlvTag(tag))) this.flvFull = true;
    }
    session.stats.bytesIn = this.bytesIn;
  }

  private onFlvRead(): void {
    if (!this.flvFull) return;
    this.flvFull = false;
    // Deferred: read() may be called from inside push(), and the loop must not re-enter itself.
    queueMicrotask(() => this.drain());
  }

  // The idle check is lazy (one timer, re-armed for the remainder) so media messages cost a
  // timestamp write, not a timer reset. A consumer that is behind is not the publisher's silence.
  private armIdle(): void {
    const idle = this.config.idleTimeoutMs;
    const remaining = this.lastMediaAt + idle - Date.now();
    this.arm(Math.max(remaining, 0), () => {
      if (this.flvFull) this.lastMediaAt = Date.now();
      if (Date.now() - this.lastMediaAt >= idle) {
        this.end('idle-timeout', `no media for ${idle} ms`);
      } else {
        this.armIdle();
      }
    });
  }

  private arm(ms: number, fire: () => void): void {
    this.clearTimer();
    this.timer = setTimeout(() => {
      this.timer = null;
      fire();
    }, ms);
    // The listening server keeps the process alive; a connection timer should not.
    this.timer.unref();
  }

  private clearTimer(): void {
    if (this.timer) clearTimeout(this.timer);
    this.timer = null;
  }
}

// Ends that say something is wrong with the client (or with us); the rest are ordinary.
const WARN_CODES: ReadonlySet<RtmpEndCode> = new Set([
  'protocol-error',
  'internal-error',
  'idle-timeout',
  'handshake-timeout',
  'publish-timeout',
  'output-backlog',
]);

function isObject(v: unknown): v is Amf0Object {
  return typeof v === 'object' && v !== null && !Array.isArray(v) && !(v instanceof Date);
}

function cleanAddress(address: string | undefined): string {
  if (!address) return 'unknown';
  return address.startsWith('::ffff:') ? address.slice(7) : address;
}

function formatPeer(address: string, port: number | undefined): string {
  return address.includes(':') ? `[${address}]:${port ?? 0}` : `${address}:${port ?? 0}`;
}
