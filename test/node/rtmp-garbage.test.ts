// Garbage and broken input on the RTMP port: each case ends only its own connection, with a log
// line saying why, while a publisher streaming alongside keeps going and new publishers still get in.
import { randomBytes } from 'node:crypto';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { encodeAmf0 } from '../../transcoder-node/rtmp/amf0.ts';
import { encodeChunks } from '../../transcoder-node/rtmp/chunk-stream.ts';
import { parseFlv } from '../../transcoder-node/rtmp/flv.ts';
import { RtmpIngestServer } from '../../transcoder-node/rtmp/index.ts';
import type { RtmpPublishSession, RtmpSessionEnd } from '../../transcoder-node/rtmp/index.ts';
import { RtmpTestClient, collect, ffmpegPublish, recordingLogger, runFfmpeg, waitUntil } from '../support/rtmp-testing.ts';
import type { LogLine } from '../support/rtmp-testing.ts';

const log = recordingLogger();
const sessions: RtmpPublishSession[] = [];
let server: RtmpIngestServer;
let port: number;
// A well-behaved publisher streaming (scripted) through every garbage case.
let steady: RtmpTestClient;
let steadySession: RtmpPublishSession;
let steadyTicker: NodeJS.Timeout;
let steadySent = 0;

beforeAll(async () => {
  server = new RtmpIngestServer({
    host: '127.0.0.1',
    port: 0,
    logger: log,
    handshakeTimeoutMs: 300,
    idleTimeoutMs: 1000,
    // Every client here comes from 127.0.0.1, more of them than one address may open; the
    // per-address limits have their own tests (rtmp-hostile.test.ts).
    maxConnectionsPerAddress: 100,
    acceptBurstPerAddress: 100,
    authorize: async () => ({ ok: true }),
    onPublish: (s) => sessions.push(s),
  });
  await server.listen();
  port = server.address().port;
  steady = await RtmpTestClient.handshaken(port);
  expect(await steady.publish('steady-key-0001')).toMatchObject({ code: 'NetStream.Publish.Start' });
  await waitUntil(() => sessions.length === 1);
  steadySession = sessions[0]!;
  steadySession.flv.resume(); // a consumer that keeps up
  steadyTicker = setInterval(() => {
    steadySent++;
    steady.media(9, steadySent * 100, Buffer.of(0x27, 1, 0, 0, 0, steadySent & 0xff));
  }, 100);
});

afterAll(async () => {
  clearInterval(steadyTicker);
  steady.destroy();
  await server.close();
});

/** Opens a connection, lets `act` misbehave on it, and returns the log line of its closing. */
async function closedLine(act: (client: RtmpTestClient) => Promise<void> | void): Promise<LogLine> {
  const before = log.lines.length;
  const client = await RtmpTestClient.open(port);
  await act(client);
  await client.closed;
  let line: LogLine | undefined;
  await waitUntil(() => (line = log.lines.slice(before).find((l) => l.msg === 'rtmp connection closed')) !== undefined);
  return line!;
}

describe('each broken connection is closed with the reason logged', () => {
  it('random bytes', async () => {
    const garbage = randomBytes(4096);
    garbage[0] = 0xa7;
    const line = await closedLine((c) => c.write(garbage));
    expect(line).toMatchObject({ level: 'warn', code: 'protocol-error', reason: 'unsupported RTMP version byte 0xa7' });
  });

  it('an HTTP GET, which gets no answer bytes', async () => {
    let answered = 0;
    const line = await closedLine((c) => {
      c.socket.on('data', (d: Buffer) => (answered += d.length));
      c.write(Buffer.from('GET /live/stream.flv HTTP/1.1\r\nHost: example\r\n\r\n'));
    });
    expect(line).toMatchObject({ code: 'protocol-error', reason: 'HTTP request on the RTMP port' });
    expect(answered).toBe(0);
  });

  it('a handshake cut short by the client', async () => {
    const line = await closedLine((c) => {
      c.write(Buffer.concat([Buffer.of(3), randomBytes(700)]));
      c.socket.end();
    });
    expect(line).toMatchObject({ code: 'disconnected', reason: 'publisher disconnected during the handshake' });
  });

  it('a handshake that stalls', async () => {
    const line = await closedLine((c) => c.write(Buffer.concat([Buffer.of(3), randomBytes(700)])));
    expect(line).toMatchObject({ code: 'handshake-timeout', reason: 'handshake not done within 300 ms' });
  });

  it('garbage after a good handshake', async () => {
    const line = await closedLine(async (c) => {
      await c.handshake();
      c.write(Buffer.alloc(64, 0xff));
    });
    expect(line).toMatchObject({ code: 'protocol-error', reason: 'chunk stream 63 starts with a fmt 3 header' });
  });

  it.each([
    [0xffffffff, 'invalid chunk size 4294967295'],
    [0, 'invalid chunk size 0'],
  ])('an absurd chunk size (%d)', async (size, reason) => {
    const line = await closedLine(async (c) => {
      await c.handshake();
      const payload = Buffer.alloc(4);
      payload.writeUInt32BE(size);
      c.send({ csid: 2, type: 1, streamId: 0, timestamp: 0, payload });
    });
    expect(line).toMatchObject({ code: 'protocol-error', reason });
  });

  it('an absurd message length (before publish, anything over 64 KiB is)', async () => {
    const line = await closedLine(async (c) => {
      await c.handshake();
      c.write(Buffer.of(0x06, 0, 0, 0, 0xff, 0xff, 0xff, 9, 1, 0, 0, 0));
    });
    expect(line).toMatchObject({ code: 'protocol-error', reason: 'message of 16777215 bytes exceeds the 65536-byte limit' });
  });

  it('a connect command with broken AMF', async () => {
    const line = await closedLine(async (c) => {
      await c.handshake();
      const payload = Buffer.concat([encodeAmf0('connect', 1), Buffer.of(3, 0, 3, 0x61, 0x70, 0x70, 2, 0xff, 0xff, 0x6c)]);
      c.send({ csid: 3, type: 20, streamId: 0, timestamp: 0, payload });
    });
    expect(line).toMatchObject({ code: 'protocol-error', reason: 'AMF0: truncated string' });
  });

  it('a command before connect', async () => {
    const line = await closedLine(async (c) => {
      await c.handshake();
      c.command('publish', null, ['sneaky-key-0001', 'live'], 1);
    });
    expect(line).toMatchObject({ code: 'protocol-error', reason: 'command "publish" before connect' });
  });

  it('a publisher that disconnects in the middle of a message: the FLV ends after the last whole tag', async () => {
    const before = sessions.length;
    const client = await RtmpTestClient.handshaken(port);
    await client.publish('cut-off-key-0001');
    await waitUntil(() => sessions.length === before + 1);
    const session = sessions[before]!;
    const ended = new Promise<RtmpSessionEnd>((resolve) => session.once('end', resolve));
    const flv = collect(session.flv);
    client.media(9, 0, Buffer.of(0x17, 0, 0, 0, 0, 0xaa));
    client.media(8, 10, Buffer.of(0xaf, 1, 0xbb));
    // 10000 bytes announced, 300 sent, then gone.
    client.write(encodeChunks({ csid: 6, type: 9, streamId: 1, timestamp: 33, payload: randomBytes(10_000) }, 128).subarray(0, 300));
    await waitUntil(() => session.stats.audioTags === 1);
    client.destroy();
    expect(await ended).toEqual({ code: 'disconnected', message: 'publisher disconnected in the middle of a message' });
    const parsed = parseFlv(await flv);
    expect(parsed.trailing).toBe(0);
    expect(parsed.tags.map((t) => t.body.toString('hex'))).toEqual(['1700000000aa', 'af01bb']);
  });

  it('twenty connections of handshake plus random bytes', async () => {
    const before = log.lines.filter((l) => l.msg === 'rtmp connection closed').length;
    const clients = await Promise.all(
      Array.from({ length: 20 }, async () => {
        const c = await RtmpTestClient.handshaken(port);
        c.write(randomBytes(2048));
        return c;
      }),
    );
    // Whatever the bytes were (a protocol error, or a message still waiting for its payload),
    // every one is closed by the protocol check or the idle timeout.
    await Promise.all(clients.map((c) => c.closed));
    await waitUntil(() => log.lines.filter((l) => l.msg === 'rtmp connection closed').length >= before + 20);
  });
});

describe('after all that', () => {
  it('the publisher streaming alongside was never disturbed', async () => {
    expect(steadySession.ended).toBeNull();
    expect(steadySent).toBeGreaterThan(5);
    const sent = steadySent;
    await waitUntil(() => steadySession.stats.videoTags >= sent, 1000, 'every frame sent so far');
    expect(log.lines.filter((l) => l.level === 'error')).toEqual([]);
  });

  it('a real ffmpeg publisher still gets in and its stream decodes', async () => {
    const before = sessions.length;
    const publisher = ffmpegPublish(`rtmp://127.0.0.1:${port}/live/after-garbage-01`, { seconds: 1 });
    await waitUntil(() => sessions.length === before + 1, 10_000, 'the session');
    const decoder = runFfmpeg('ffmpeg', ['-v', 'error', '-f', 'flv', '-i', 'pipe:0', '-f', 'null', '-'], sessions[before]!.flv);
    expect((await publisher.exited).code).toBe(0);
    expect(await decoder.exited).toEqual({ code: 0, stderr: '' });
  });
});
