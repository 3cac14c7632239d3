// How sessions and the server end: close(), takeover by a newer publisher with the same key,
// session.close(), timeouts, a consumer that goes away, back-pressure, and connection limits.
import { createServer } from 'node:net';
import { afterEach, expect, it } from 'vitest';
import { parseFlv } from '../../transcoder-node/rtmp/flv.ts';
import { RtmpIngestServer } from '../../transcoder-node/rtmp/index.ts';
import type { RtmpIngestOptions, RtmpPublishSession, RtmpSessionEnd } from '../../transcoder-node/rtmp/index.ts';
import { RtmpTestClient, collect, recordingLogger, waitUntil } from '../support/rtmp-testing.ts';

const servers: RtmpIngestServer[] = [];
afterEach(async () => {
  await Promise.all(servers.splice(0).map((s) => s.close()));
});

async function start(extra: Partial<RtmpIngestOptions> = {}) {
  const log = recordingLogger();
  const sessions: RtmpPublishSession[] = [];
  const server = new RtmpIngestServer({
    host: '127.0.0.1',
    port: 0,
    logger: log,
    authorize: async () => ({ ok: true }),
    onPublish: (s) => sessions.push(s),
    ...extra,
  });
  await server.listen();
  servers.push(server);
  return { server, log, sessions, port: server.address().port };
}

async function publisher(port: number, key: string): Promise<RtmpTestClient> {
  const client = await RtmpTestClient.handshaken(port);
  expect(await client.publish(key)).toMatchObject({ code: 'NetStream.Publish.Start' });
  return client;
}

const ended = (s: RtmpPublishSession) => new Promise<RtmpSessionEnd>((resolve) => s.once('end', resolve));
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

it('close() ends every session (their FLV streams end), drops every connection and frees the port', async () => {
  const { server, sessions, port } = await start();
  const a = await publisher(port, 'close-key-alpha');
  const b = await publisher(port, 'close-key-bravo');
  const idle = await RtmpTestClient.handshaken(port); // connected, never publishing
  await waitUntil(() => sessions.length === 2);
  const flvs = sessions.map((s) => collect(s.flv));
  const ends = sessions.map(ended);
  await server.close();
  expect(await Promise.all(ends)).toEqual([
    { code: 'server-closing', message: 'the ingest server is shutting down' },
    { code: 'server-closing', message: 'the ingest server is shutting down' },
  ]);
  for (const flv of await Promise.all(flvs)) expect(flv.subarray(0, 3).toString()).toBe('FLV');
  await Promise.all([a.closed, b.closed, idle.closed]);
  const reuse = createServer();
  await new Promise<void>((resolve, reject) => reuse.once('error', reject).listen(port, '127.0.0.1', resolve));
  await new Promise((resolve) => reuse.close(resolve));
});

it('a newer publisher with the same key takes over: the older session ends as replaced', async () => {
  const { server, sessions, port, log } = await start();
  const first = await publisher(port, 'takeover-key-01');
  await waitUntil(() => sessions.length === 1);
  const firstEnd = ended(sessions[0]!);
  const second = await publisher(port, 'takeover-key-01');
  await waitUntil(() => sessions.length === 2);
  expect(await firstEnd).toMatchObject({ code: 'replaced' });
  await first.closed;
  expect(server.sessions()).toEqual([sessions[1]]);
  expect(sessions[1]!.ended).toBeNull();
  expect(log.lines).toContainEqual(expect.objectContaining({ msg: 'rtmp publisher replaced', conn: sessions[0]!.id, by: sessions[1]!.id }));
  second.destroy();
});

it('session.close(reason) ends the session and drops the publisher', async () => {
  const { sessions, port } = await start();
  const client = await publisher(port, 'closing-key-001');
  await waitUntil(() => sessions.length === 1);
  const end = ended(sessions[0]!);
  sessions[0]!.close('ingest lease lost');
  expect(await end).toEqual({ code: 'closed', message: 'ingest lease lost' });
  await client.closed;
});

it('a publisher that stops sending media is dropped after the idle timeout', async () => {
  const { sessions, port } = await start({ idleTimeoutMs: 300 });
  const client = await publisher(port, 'silent-key-0001');
  await waitUntil(() => sessions.length === 1);
  sessions[0]!.flv.resume();
  client.media(9, 0, Buffer.of(0x17, 0, 0, 0, 0));
  expect(await ended(sessions[0]!)).toEqual({ code: 'idle-timeout', message: 'no media for 300 ms' });
  await client.closed;
});

it('a connection that never publishes is dropped after the idle timeout', async () => {
  const { port, log } = await start({ idleTimeoutMs: 300 });
  const client = await RtmpTestClient.handshaken(port);
  await client.connectAndCreateStream();
  await client.closed;
  expect(log.lines).toContainEqual(
    expect.objectContaining({ msg: 'rtmp connection closed', code: 'idle-timeout', reason: 'no publish within 300 ms' }),
  );
});

it.each([
  ['with an error', new Error('write EPIPE'), 'the FLV stream was destroyed by its consumer (write EPIPE)'],
  ['without an error', undefined, 'the FLV stream was destroyed by its consumer'],
])('a consumer that destroys the FLV stream %s ends the session and the publisher connection', async (_how, error, message) => {
  const { sessions, port } = await start();
  const client = await publisher(port, 'broken-pipe-key1');
  await waitUntil(() => sessions.length === 1);
  const end = ended(sessions[0]!);
  sessions[0]!.flv.destroy(error);
  expect(await end).toEqual({ code: 'consumer-gone', message });
  await client.closed;
});

it('a slow consumer pauses the publisher socket instead of buffering, without tripping the idle timeout', async () => {
  const highWaterMark = 64 * 1024;
  const { sessions, port } = await start({ flvHighWaterMark: highWaterMark, idleTimeoutMs: 300 });
  const client = await publisher(port, 'backpressure-key');
  await waitUntil(() => sessions.length === 1);
  const session = sessions[0]!;
  client.setChunkSize(65536);
  const frame = Buffer.alloc(32 * 1024, 0x11);
  const count = 400; // 12.8 MB, far more than the socket buffers hold
  for (let i = 0; i < count; i++) {
    frame.writeUInt32BE(i, 4);
    client.media(9, i * 33, frame);
  }
  await sleep(700); // nobody reads session.flv meanwhile, for longer than the idle timeout
  expect(session.ended).toBeNull();
  // Buffered: at most the high-water mark plus the tags of the socket read that crossed it.
  expect(session.flv.readableLength).toBeLessThanOrEqual(highWaterMark + 128 * 1024);
  expect(session.stats.videoTags).toBeLessThan(count);
  expect(client.socket.writableLength).toBeGreaterThan(0);

  const flv = collect(session.flv);
  await waitUntil(() => session.stats.videoTags === count, 10_000, 'all frames');
  client.destroy();
  const tags = parseFlv(await flv).tags;
  expect(tags).toHaveLength(count);
  expect(tags.map((t) => t.body.readUInt32BE(4))).toEqual(Array.from({ length: count }, (_, i) => i));
});

it('connections beyond maxConnections are dropped on accept', async () => {
  const { port, log } = await start({ maxConnections: 2 });
  const a = await RtmpTestClient.handshaken(port);
  const b = await RtmpTestClient.handshaken(port);
  const c = await RtmpTestClient.open(port);
  await c.closed;
  expect(log.lines).toContainEqual(expect.objectContaining({ msg: 'rtmp connection dropped', reason: 'too many connections' }));
  expect(a.socket.destroyed || b.socket.destroyed).toBe(false);
  a.destroy();
  b.destroy();
});

it('listen() rejects when the port is taken, instead of exiting the process', async () => {
  const { port } = await start();
  const second = new RtmpIngestServer({
    host: '127.0.0.1',
    port,
    logger: recordingLogger(),
    authorize: async () => ({ ok: true }),
    onPublish: () => {},
  });
  await expect(second.listen()).rejects.toMatchObject({ code: 'EADDRINUSE' });
});
