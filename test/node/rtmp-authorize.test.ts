// The stream-key check: authorize runs before any media is read, gets the app, key, query and
// address, and a refusal (or failure, or silence) ends the connection with the reason in the log.
import { randomBytes } from 'node:crypto';
import { afterEach, expect, it } from 'vitest';
import { parseFlv } from '../../transcoder-node/rtmp/flv.ts';
import { RtmpIngestServer } from '../../transcoder-node/rtmp/index.ts';
import type { AuthorizeResult, PublishRequest, RtmpIngestOptions, RtmpPublishSession } from '../../transcoder-node/rtmp/index.ts';
import { RtmpTestClient, collect, ffmpegPublish, recordingLogger, waitUntil } from '../support/rtmp-testing.ts';

const servers: RtmpIngestServer<unknown>[] = [];
afterEach(async () => {
  await Promise.all(servers.splice(0).map((s) => s.close()));
});

async function start<C>(authorize: (r: PublishRequest) => Promise<AuthorizeResult<C>>, extra: Partial<RtmpIngestOptions<C>> = {}) {
  const log = recordingLogger();
  const sessions: RtmpPublishSession<C>[] = [];
  const server = new RtmpIngestServer<C>({
    host: '127.0.0.1',
    port: 0,
    logger: log,
    authorize,
    onPublish: (s) => sessions.push(s),
    ...extra,
  });
  await server.listen();
  servers.push(server as RtmpIngestServer<unknown>);
  return { server, log, sessions, port: server.address().port };
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

it('asks authorize with the app, the stream key and the address, then calls onPublish with its context before any media', async () => {
  const events: string[] = [];
  const { port, sessions } = await start(
    async (req) => {
      events.push(`authorize ${req.app} ${req.streamKey} ${req.remoteAddress}`);
      await sleep(300);
      events.push('authorize answered');
      return { ok: true, context: { epoch: 7 } };
    },
    {
      onPublish: (s) => {
        events.push(`onPublish epoch=${s.context?.epoch} mediaTags=${s.stats.audioTags + s.stats.videoTags}`);
        sessions.push(s);
      },
    },
  );
  const publisher = ffmpegPublish(`rtmp://127.0.0.1:${port}/live/auth-key-0001`, { seconds: 1, audio: false });
  await waitUntil(() => sessions.length === 1, 10_000, 'the session');
  const flv = collect(sessions[0]!.flv);
  expect((await publisher.exited).code).toBe(0);
  expect(events).toEqual(['authorize live auth-key-0001 127.0.0.1', 'authorize answered', 'onPublish epoch=7 mediaTags=0']);
  expect(parseFlv(await flv).tags.filter((t) => t.type === 9).length).toBeGreaterThan(25);
});

it('a refused key: ffmpeg exits non-zero, onPublish is never called, the log says why and shows only a key prefix', async () => {
  const key = 'deny-me-secret-key-42';
  const { port, sessions, log } = await start(async () => ({ ok: false, reason: 'unknown stream key' }));
  const publisher = ffmpegPublish(`rtmp://127.0.0.1:${port}/live/${key}`, { seconds: 1, audio: false });
  const { code, stderr } = await publisher.exited;
  expect(code).not.toBe(0);
  expect(stderr).toContain('Publish refused');
  expect(sessions).toEqual([]);
  expect(log.lines).toContainEqual(
    expect.objectContaining({ level: 'warn', msg: 'publish refused', reason: 'unknown stream key', key: 'deny…', app: 'live' }),
  );
  expect(log.lines).toContainEqual(
    expect.objectContaining({ msg: 'rtmp connection closed', code: 'refused', reason: 'unknown stream key' }),
  );
  expect(JSON.stringify(log.lines)).not.toContain(key);
});

it('holds media sent right behind publish until authorize says ok, then delivers it in order', async () => {
  let answer: (r: AuthorizeResult) => void = () => {};
  const { port, sessions } = await start(() => new Promise<AuthorizeResult>((resolve) => (answer = resolve)));
  const client = await RtmpTestClient.handshaken(port);
  const id = await client.connectAndCreateStream();
  client.sendPublish('pipelined-key-01', id);
  // An encoder that does not wait for NetStream.Publish.Start.
  client.media(9, 0, Buffer.of(0x17, 0, 0, 0, 0, 1));
  client.media(8, 0, Buffer.of(0xaf, 0, 0x12, 0x10));
  client.media(9, 33, Buffer.of(0x27, 1, 0, 0, 0, 2));
  await sleep(300);
  expect(sessions).toEqual([]);
  answer({ ok: true });
  expect(await client.publishStatus()).toEqual({ level: 'status', code: 'NetStream.Publish.Start' });
  await waitUntil(() => sessions.length === 1);
  client.destroy();
  const tags = parseFlv(await collect(sessions[0]!.flv)).tags;
  expect(tags.map((t) => [t.type, t.timestamp, t.body.toString('hex')])).toEqual([
    [9, 0, '170000000001'],
    [8, 0, 'af001210'],
    [9, 33, '270100000002'],
  ]);
});

it('passes what follows "?" in the publish name as the query, not as part of the key', async () => {
  const requests: PublishRequest[] = [];
  const { port } = await start(async (r) => (requests.push(r), { ok: true }));
  const client = await RtmpTestClient.handshaken(port);
  expect(await client.publish('query-key-0001?token=abc&x=1')).toMatchObject({ code: 'NetStream.Publish.Start' });
  expect(requests[0]!.streamKey).toBe('query-key-0001');
  expect(Object.fromEntries(requests[0]!.query)).toEqual({ token: 'abc', x: '1' });
  client.destroy();
});

it('an authorize that throws refuses the publish with the error in the log', async () => {
  const { port, log, sessions } = await start(async () => {
    throw new Error('origin unreachable');
  });
  const client = await RtmpTestClient.handshaken(port);
  expect(await client.publish('throw-key-0001')).toEqual({ level: 'error', code: 'NetStream.Publish.Denied' });
  await client.closed;
  expect(sessions).toEqual([]);
  expect(log.lines).toContainEqual(expect.objectContaining({ msg: 'publish refused', reason: 'authorize failed: origin unreachable' }));
});

it('an authorize that does not answer in time refuses the publish and aborts its signal', async () => {
  let signal: AbortSignal | null = null;
  const { port, log } = await start(
    (r) => {
      signal = r.signal;
      return new Promise<AuthorizeResult>(() => {});
    },
    { authorizeTimeoutMs: 200 },
  );
  const client = await RtmpTestClient.handshaken(port);
  expect(await client.publish('slow-key-00001')).toEqual({ level: 'error', code: 'NetStream.Publish.Denied' });
  await client.closed;
  expect(signal!.aborted).toBe(true);
  expect(log.lines).toContainEqual(expect.objectContaining({ msg: 'publish refused', reason: 'authorize did not answer within 200 ms' }));
});

it('refuses an app other than live at connect, without asking authorize', async () => {
  let asked = 0;
  const { port, log } = await start(async () => (asked++, { ok: true }));
  const client = await RtmpTestClient.handshaken(port);
  client.command('connect', { app: 'vod', tcUrl: 'rtmp://127.0.0.1/vod' });
  const reply = await client.waitForCommand((c) => c.name === '_error');
  expect(reply.args[0]).toMatchObject({ level: 'error', code: 'NetConnection.Connect.Rejected' });
  await client.closed;
  expect(asked).toBe(0);
  expect(log.lines).toContainEqual(expect.objectContaining({ msg: 'connect refused', app: 'vod' }));
});

it.each([
  ['an empty stream key', ''],
  ['a stream key longer than 200 characters', 'k'.repeat(201)],
  ['a stream key with a space', 'has space'],
])('refuses %s as a bad name, without asking authorize', async (_what, name) => {
  let asked = 0;
  const { port } = await start(async () => (asked++, { ok: true }));
  const client = await RtmpTestClient.handshaken(port);
  expect(await client.publish(name)).toEqual({ level: 'error', code: 'NetStream.Publish.BadName' });
  await client.closed;
  expect(asked).toBe(0);
});

it('does not let a media message in before publish', async () => {
  const { port, log } = await start(async () => ({ ok: true }));
  const client = await RtmpTestClient.handshaken(port);
  await client.connectAndCreateStream();
  client.media(9, 0, randomBytes(10));
  await client.closed;
  expect(log.lines).toContainEqual(
    expect.objectContaining({
      msg: 'rtmp connection closed',
      code: 'protocol-error',
      reason: 'media message (type 9) before publish was accepted',
    }),
  );
});
