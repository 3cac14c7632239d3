// Test support for the RTMP ingest: a scripted RTMP publisher that says exactly what a test needs,
// ffmpeg as a real publisher, and polling helpers.
import { spawn } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { connect } from 'node:net';
import type { Socket } from 'node:net';
import type { Readable } from 'node:stream';
import type { Amf0Object, Amf0Value } from '../../transcoder-node/rtmp/amf0.ts';
import { ChunkStreamReader, encodeChunks } from '../../transcoder-node/rtmp/chunk-stream.ts';
import type { RtmpMessage } from '../../transcoder-node/rtmp/chunk-stream.ts';
import { HANDSHAKE_SIZE, RTMP_VERSION } from '../../transcoder-node/rtmp/handshake.ts';
import { MessageType, commandMessage, decodeCommand, setChunkSizeMessage } from '../../transcoder-node/rtmp/messages.ts';
import type { RtmpCommand } from '../../transcoder-node/rtmp/messages.ts';

export { recordingLogger, type LogLine } from './recording-logger.ts';

/** Reads a stream to its end. */
export async function collect(stream: Readable): Promise<Buffer> {
  const parts: Buffer[] = [];
  for await (const part of stream) parts.push(part as Buffer);
  return Buffer.concat(parts);
}

/** Resolves when `check` holds, polling every 10 ms; rejects after `timeoutMs`. */
export async function waitUntil(check: () => boolean, timeoutMs = 5000, what = 'condition'): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!check()) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 10));
  }
}

export interface FfmpegRun {
  /** Exit code and stderr once ffmpeg exits. */
  exited: Promise<{ code: number | null; stderr: string }>;
  kill(): void;
}

/** ffmpeg publishing a low-resolution test pattern (and a tone) to `url` for `seconds`. */
export function ffmpegPublish(url: string, opts: { seconds: number; size?: string; audio?: boolean }): FfmpegRun {
  const args = ['-hide_banner', '-loglevel', 'error', '-re', '-f', 'lavfi', '-i', `testsrc2=size=${opts.size ?? '320x240'}:rate=30`];
  if (opts.audio !== false) args.push('-f', 'lavfi', '-i', 'sine=frequency=440:sample_rate=44100');
  args.push('-t', String(opts.seconds), '-c:v', 'libx264', '-preset', 'ultrafast', '-tune', 'zerolatency', '-g', '30');
  if (opts.audio !== false) args.push('-c:a', 'aac', '-b:a', '64k');
  args.push('-f', 'flv', url);
  return runFfmpeg('ffmpeg', args);
}

/** Runs an ffmpeg-family tool; stdin, if given, is piped in. */
export function runFfmpeg(tool: 'ffmpeg' | 'ffprobe', args: string[], stdin?: Readable): FfmpegRun & { stdout: Promise<string> } {
  const child = spawn(tool, args, { stdio: [stdin ? 'pipe' : 'ignore', 'pipe', 'pipe'] });
  let stderr = '';
  let stdout = '';
  child.stderr!.setEncoding('utf8').on('data', (d: string) => (stderr += d));
  child.stdout!.setEncoding('utf8').on('data', (d: string) => (stdout += d));
  if (stdin && child.stdin) {
    stdin.pipe(child.stdin);
    child.stdin.on('error', () => {}); // ffmpeg may exit before the input ends
  }
  const exited = new Promise<{ code: number | null; stderr: string }>((resolve) => {
    child.on('close', (code) => resolve({ code, stderr }));
  });
  return { exited, stdout: exited.then(() => stdout), kill: () => child.kill('SIGKILL') };
}

/**
 * A scripted RTMP publisher. It does the plain handshake, sends messages exactly as told
 * (chunked with its current chunk size) and records what the server sends back.
 */
export class RtmpTestClient {
  readonly socket: Socket;
  /** Messages received from the server, in order. */
  readonly received: RtmpMessage[] = [];
  /** Resolves when the socket has closed. */
  readonly closed: Promise<void>;
  chunkSize = 128;
  private readonly reader = new ChunkStreamReader({ maxMessageBytes: 1 << 24, maxChunkStreams: 64, maxBufferedBytes: 1 << 25 });
  private txn = 1;

  // Bytes of S0 S1 S2 until the handshake is complete; null afterwards.
  private handshakeBytes: Buffer | null = Buffer.alloc(0);
  private handshakeDone: (() => void) | null = null;

  private constructor(socket: Socket) {
    this.socket = socket;
    this.closed = new Promise((resolve) => socket.once('close', () => resolve()));
    socket.on('error', () => {});
    socket.on('data', (d: Buffer) => this.onData(d));
  }

  /**
   * Opens a TCP connection without sending anything. `from` binds the client to a local address:
   * on Linux every 127.x.y.z is loopback, so tests can play several hosts.
   */
  static async open(port: number, opts: { host?: string; from?: string } = {}): Promise<RtmpTestClient> {
    const socket = connect({ port, host: opts.host ?? '127.0.0.1', ...(opts.from ? { localAddress: opts.from } : {}) });
    await new Promise<void>((resolve, reject) => {
      socket.once('connect', () => resolve());
      socket.once('error', reject);
    });
    return new RtmpTestClient(socket);
  }

  /** Opens a connection and completes the handshake. */
  static async handshaken(port: number, opts: { host?: string; from?: string } = {}): Promise<RtmpTestClient> {
    const client = await RtmpTestClient.open(port, opts);
    await client.handshake();
    return client;
  }

  write(bytes: Buffer): void {
    this.socket.write(bytes);
  }

  /** C0 C1 with a zero version (the plain handshake), then C2 = S1 once S0 S1 S2 are in. */
  handshake(): Promise<void> {
    const c1 = randomBytes(HANDSHAKE_SIZE);
    c1.writeUInt32BE(0, 0);
    c1.writeUInt32BE(0, 4);
    const done = new Promise<void>((resolve, reject) => {
      this.handshakeDone = resolve;
      void this.closed.then(() => reject(new Error('closed during the handshake')));
    });
    this.write(Buffer.concat([Buffer.of(RTMP_VERSION), c1]));
    return done;
  }

  private onData(d: Buffer): void {
    if (this.handshakeBytes) {
      const bytes = Buffer.concat([this.handshakeBytes, d]);
      this.handshakeBytes = bytes;
      const size = 1 + 2 * HANDSHAKE_SIZE;
      if (!this.handshakeDone || bytes.length < size) return;
      this.write(bytes.subarray(1, 1 + HANDSHAKE_SIZE));
      d = bytes.subarray(size);
      this.handshakeBytes = null;
      this.handshakeDone();
    }
    this.reader.push(d);
    for (let m = this.reader.read(); m; m = this.reader.read()) {
      if (m.type === MessageType.SetChunkSize) this.reader.setChunkSize(m.payload.readUInt32BE(0));
      this.received.push(m);
    }
  }

  send(msg: RtmpMessage): void {
    this.write(encodeChunks(msg, this.chunkSize));
  }

  setChunkSize(size: number): void {
    this.send(setChunkSizeMessage(size));
    this.chunkSize = size;
  }

  command(name: string, object: Amf0Object | null, args: Amf0Value[] = [], streamId = 0): number {
    const txn = this.txn++;
    this.send(commandMessage(streamId, name, txn, object, ...args));
    return txn;
  }

  /** The commands received so far, decoded. */
  commands(): RtmpCommand[] {
    return this.received.filter((m) => m.type === MessageType.CommandAmf0).map((m) => decodeCommand(m));
  }

  /** Waits for a command from the server matching `match`. */
  async waitForCommand(match: (c: RtmpCommand) => boolean, timeoutMs = 3000): Promise<RtmpCommand> {
    let found: RtmpCommand | undefined;
    await waitUntil(() => (found = this.commands().find(match)) !== undefined, timeoutMs, 'a server command');
    return found!;
  }

  /** connect → createStream, returning the stream id. */
  async connectAndCreateStream(app = 'live'): Promise<number> {
    this.command('connect', {
      app,
      type: 'nonprivate',
      flashVer: 'FMLE/3.0 (compatible; edgelive-test)',
      tcUrl: `rtmp://127.0.0.1/${app}`,
    });
    await this.waitForCommand((c) => c.name === '_result' && c.transactionId === 1);
    const txn = this.command('createStream', null);
    const result = await this.waitForCommand((c) => c.name === '_result' && c.transactionId === txn);
    return result.args[0] as number;
  }

  /** Sends publish on `streamId` without waiting for the answer. */
  sendPublish(streamKey: string, streamId = 1): void {
    this.command('publish', null, [streamKey, 'live'], streamId);
  }

  /** The onStatus code answering a publish (NetStream.Publish.Start on success). */
  async publishStatus(timeoutMs = 3000): Promise<{ level: string; code: string }> {
    const status = await this.waitForCommand((c) => c.name === 'onStatus', timeoutMs);
    const info = status.args[0] as Amf0Object;
    return { level: String(info.level), code: String(info.code) };
  }

  /** connect, createStream, publish; resolves with the publish status. */
  async publish(streamKey: string, app = 'live'): Promise<{ level: string; code: string }> {
    const id = await this.connectAndCreateStream(app);
    this.sendPublish(streamKey, id);
    return this.publishStatus();
  }

  /** Sends a media message (8 audio, 9 video, 18 data) on stream 1. */
  media(type: 8 | 9 | 18, timestamp: number, payload: Buffer, csid = type === 8 ? 4 : 6): void {
    this.send({ csid, type, streamId: 1, timestamp, payload });
  }

  destroy(): void {
    this.socket.destroy();
  }
}
