// Hostile clients that hold no stream key, against the real server on a port: they cannot make the
// node hold memory, queue answers they never read, or take the slots real publishers need. Memory
// is asserted as the bound the limits guarantee by construction, never as a timing.
import { afterEach, describe, expect, it } from 'vitest';
import { encodeChunks } from '../../transcoder-node/rtmp/chunk-stream.ts';
import { RtmpIngestServer } from '../../transcoder-node/rtmp/index.ts';
import type { RtmpIngestOptions, RtmpPublishSession } from '../../transcoder-node/rtmp/index.ts';
import {
  MessageType,
  UserControlEvent,
  setChunkSizeMessage,
  userControlMessage,
  windowAckSizeMessage,
} from '../../transcoder-node/rtmp/messages.ts';
import { RtmpTestClient, recordingLogger, waitUntil } from '../support/rtmp-testing.ts';
import type { LogLine } from '../support/rtmp-testing.ts';
import { MiB, retainedBytes } from '../support/memory.ts';

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

const closings = (lines: LogLine[]) => lines.filter((l) => l.msg === 'rtmp connection closed');
const ping = (value: number, chunkSize: number) => encodeChunks(userControlMessage(UserControlEvent.PingRequest, value), chunkSize);

function answeredPing(client: RtmpTestClient, value: number): boolean {
  return client.received.some(
    (m) =>
      m.type === MessageType.UserControl &&
      m.payload.readUInt16BE(0) === UserControlEvent.PingResponse &&
      m.payload.readUInt32BE(2) === value,
  );
}

/** Once the server closed the connection, or answered ping `value`: then it had read every byte sent before it. */
async function serverDone(client: RtmpTestClient, value: number): Promise<void> {
  let closed = false;
  void client.closed.then(() => (closed = true));
  await waitUntil(() => closed || answeredPing(client, value), 30_000, 'the server to read the attack');
}

/**
 * Two command messages of `declared` bytes started on chunk streams 4 and 5 and fed `each` bytes
 * apiece, one chunk of `chunkSize` bytes of each in turn: both stay partly received.
 */
function twoPartialMessages(declared: number, each: number, chunkSize: number): Buffer {
  const chunks = Math.ceil(each / chunkSize);
  const out = Buffer.alloc(2 * 11 + 2 * chunks * (1 + chunkSize), 0x61);
  let p = 0;
  for (let i = 0; i < chunks; i++) {
    for (const csid of [4, 5]) {
      out[p++] = (i === 0 ? 0x00 : 0xc0) | csid;
      if (i === 0) {
        out.writeUIntBE(0, p, 3); // timestamp
        out.writeUIntBE(declared, p + 3, 3);
        out[p + 6] = MessageType.CommandAmf0;
        out.writeUInt32LE(0, p + 7);
        p += 11;
      }
      p += chunkSize;
    }
  }
  return out;
}

describe('memory before authentication', () => {
  // Just under 8 MiB: two of them and the closing ping fit in twice the 8 MiB media limit, so
  // only the rules for clients that have not published can refuse them.
  const EIGHT_MIB_LESS_1K = 8 * MiB - 1024;

  it('a chunk size below 128 ends the connection: three clients sending two 8 MiB messages one byte per chunk leave nothing held', async () => {
    const { port, log } = await start();
    // The attack of the issue: 33 MB sent this way grew the heap to 1.9 GB. Here 3 × 2 MB.
    const attack = Buffer.concat([
      encodeChunks(setChunkSizeMessage(1), 128),
      twoPartialMessages(EIGHT_MIB_LESS_1K, 512 * 1024, 1),
      ping(7, 1),
    ]);
    const clients = await Promise.all([1, 2, 3].map((i) => RtmpTestClient.handshaken(port, { from: `127.0.1.${i}` })));
    const before = retainedBytes();
    for (const c of clients) c.write(attack);
    await Promise.all(clients.map((c) => serverDone(c, 7)));
    expect(retainedBytes() - before).toBeLessThan(8 * MiB);
    await waitUntil(() => closings(log.lines).length === 3);
    for (const line of closings(log.lines)) {
      expect(line).toMatchObject({ level: 'warn', code: 'protocol-error', reason: 'chunk size 1 is below the 128-byte minimum' });
    }
  });

  it('before publish no message may be longer than 64 KiB: forty clients each starting two 8 MiB messages are closed at the first header', async () => {
    const { port, log } = await start();
    const attack = Buffer.concat([twoPartialMessages(EIGHT_MIB_LESS_1K, 512 * 1024, 128), ping(9, 128)]);
    const clients = await Promise.all(Array.from({ length: 40 }, (_, i) => RtmpTestClient.handshaken(port, { from: `127.0.2.${i + 1}` })));
    const before = retainedBytes();
    for (const c of clients) c.write(attack);
    await Promise.all(clients.map((c) => serverDone(c, 9)));
    // By construction a connection holds at most 128 KiB of partial messages before publish.
    expect(retainedBytes() - before).toBeLessThan(8 * MiB);
    await waitUntil(() => closings(log.lines).length === 40);
    for (const line of closings(log.lines)) {
      expect(line).toMatchObject({ code: 'protocol-error', reason: 'message of 8387584 bytes exceeds the 65536-byte limit' });
    }
  });
});

describe('output without back-pressure', () => {
  it('before connect the server answers nothing but the handshake: pings and a 1-byte acknowledgement window get no reply', async () => {
    const { port } = await start();
    const client = await RtmpTestClient.handshaken(port);
    client.send(windowAckSizeMessage(1));
    for (let i = 0; i < 100; i++) client.write(ping(i, 128));
    await client.connectAndCreateStream();
    const connectAnswer = client.received.findIndex((m) => m.type === MessageType.CommandAmf0);
    expect(client.received.slice(0, connectAnswer).map((m) => m.type)).toEqual([
      MessageType.WindowAckSize,
      MessageType.SetPeerBandwidth,
      MessageType.SetChunkSize,
    ]);
    // Once connected, a ping is answered as encoders expect.
    client.write(ping(1000, 128));
    await waitUntil(() => answeredPing(client, 1000));
    client.destroy();
  });

  it('a client that sends ping requests and never reads the answers is dropped once 64 KiB of them are unsent', async () => {
    const { port, log } = await start();
    const client = await RtmpTestClient.handshaken(port, { from: '127.0.4.1' });
    await client.connectAndCreateStream();
    client.socket.pause(); // never reads again
    // One ping with a full header, then 100,000 that repeat it with a 1-byte header: 700 kB a batch.
    const batch = Buffer.concat([ping(1, 128), Buffer.concat(Array.from({ length: 100_000 }, () => Buffer.of(0xc2, 0, 6, 0, 0, 0, 1)))]);
    let sent = 0;
    let closed = false;
    void client.closed.then(() => (closed = true));
    const before = retainedBytes();
    // 16 MB of pings ask for 41 MB of answers: far more than the kernel's socket buffers hold.
    while (!closed && sent < 16 * MiB) {
      sent += batch.length;
      if (!client.socket.write(batch)) await new Promise((resolve) => client.socket.once('drain', resolve).once('close', resolve));
    }
    // By construction the server holds at most 64 KiB of answers for it, and then lets it go.
    expect(retainedBytes() - before).toBeLessThan(8 * MiB);
    await client.closed;
    await waitUntil(() => closings(log.lines).length === 1);
    expect(closings(log.lines)[0]).toMatchObject({
      level: 'warn',
      code: 'output-backlog',
      reason: 'the client does not read what it is sent: more than 65536 bytes unsent',
    });
  });
});

describe('connection slots', () => {
  it('one address opening sixty connections holds at most eight, and a publisher from another address still gets in', async () => {
    const { port, log, sessions } = await start({ maxConnections: 40 });
    const attempts = await Promise.allSettled(Array.from({ length: 60 }, () => RtmpTestClient.handshaken(port, { from: '127.0.5.1' })));
    const held = attempts.flatMap((a) => (a.status === 'fulfilled' && !a.value.socket.destroyed ? [a.value] : []));
    expect(held.length).toBeLessThanOrEqual(8);
    const publisher = await RtmpTestClient.handshaken(port, { from: '127.0.5.2' });
    expect(await publisher.publish('real-publisher-01')).toMatchObject({ code: 'NetStream.Publish.Start' });
    expect(sessions).toHaveLength(1);
    const drops = log.lines.filter((l) => l.msg === 'rtmp connection dropped').map((l) => l.reason);
    expect(drops).toContain('too many connections from this address');
    expect(drops).toContain('connecting too often from this address');
    for (const c of held) c.destroy();
    publisher.destroy();
  });

  it('an address gets its burst of connections, then one per refill of its token bucket', async () => {
    const { port, log } = await start({ acceptBurstPerAddress: 5, acceptRatePerAddress: 0.001 });
    let admitted = 0;
    for (let i = 0; i < 15; i++) {
      const closedBefore = closings(log.lines).length;
      const client = await RtmpTestClient.open(port, { from: '127.0.6.1' });
      const handshake = await client.handshake().then(
        () => true,
        () => false,
      );
      if (handshake) {
        admitted++;
        client.destroy();
        await waitUntil(() => closings(log.lines).length > closedBefore); // its slot is free again
      }
    }
    expect(admitted).toBe(5);
    expect(log.lines).toContainEqual(
      expect.objectContaining({ msg: 'rtmp connection dropped', reason: 'connecting too often from this address' }),
    );
    const other = await RtmpTestClient.handshaken(port, { from: '127.0.6.2' });
    expect(await other.publish('other-address-01')).toMatchObject({ code: 'NetStream.Publish.Start' });
    other.destroy();
  });

  it('a connection that keeps talking but never publishes is dropped at the publish deadline; a publisher is not', async () => {
    const { port, log, sessions } = await start({ publishTimeoutMs: 2000 });
    // The publisher connects first, so it is past its own deadline when the talker reaches its.
    const publisher = await RtmpTestClient.handshaken(port);
    expect(await publisher.publish('deadline-publisher')).toMatchObject({ code: 'NetStream.Publish.Start' });
    await waitUntil(() => sessions.length === 1);
    const talker = await RtmpTestClient.handshaken(port);
    await talker.connectAndCreateStream();
    sessions[0]!.flv.resume();
    let n = 0;
    const ticker = setInterval(() => {
      n++;
      talker.write(ping(n, 128));
      publisher.media(9, n * 50, Buffer.of(0x27, 1, 0, 0, 0, n & 0xff));
    }, 50);
    try {
      await talker.closed;
    } finally {
      clearInterval(ticker);
    }
    expect(closings(log.lines)).toEqual([
      expect.objectContaining({ level: 'warn', code: 'publish-timeout', reason: 'no publish within 2000 ms of connecting' }),
    ]);
    expect(sessions[0]!.ended).toBeNull();
    publisher.destroy();
  });
});
