// The WHIP endpoint on a real signalling listener and the real WebRTC stack, with a libdatachannel
// peer as the publisher: refusals allocate nothing (no peer connection is created before the key
// is accepted), the limits answer with the statuses RFC 9725 and HTTP name, and an accepted
// publisher's RTP comes out of the Publisher as a Matroska stream ffmpeg reads as H.264 and Opus.
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { createSocket } from 'node:dgram';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import nodeDataChannel from 'node-datachannel';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { publishTokenKey, signPublishToken } from '../../core/auth/publish-token.ts';
import type { AuthorizeResponse } from '../../core/contracts/ingest-protocol.ts';
import { createLogger } from '../../transcoder-node/log.ts';
import type { Publisher } from '../../transcoder-node/publisher.ts';
import { SignallingServer } from '../../transcoder-node/webrtc/signalling-server.ts';
import { WebRtcStack } from '../../transcoder-node/webrtc/stack.ts';
import { WhipEndpoint, type WhipAuthorizeResult } from '../../transcoder-node/webrtc/whip-endpoint.ts';

const KEY = 'sk_good_key_for_tests';
const log = createLogger({ service: 'test-whip' });
const lease = { streamId: 'st_1', epoch: 3 } as AuthorizeResponse;
let dir: string;

interface Harness {
  url: string;
  stack: WebRtcStack;
  endpoint: WhipEndpoint;
  publishers: Publisher[];
  authorized: string[];
  close(): Promise<void>;
}
const harnesses: Harness[] = [];

async function start(
  opts: {
    maxSessions?: number;
    maxPendingPerAddress?: number;
    mediaTimeoutMs?: number;
    authorize?: (key: string) => Promise<WhipAuthorizeResult>;
    stack?: ConstructorParameters<typeof WebRtcStack>[0];
  } = {},
): Promise<Harness> {
  const stack = new WebRtcStack(opts.stack ?? { bindAddress: '127.0.0.1' }, log);
  const publishers: Publisher[] = [];
  const authorized: string[] = [];
  const endpoint = new WhipEndpoint({
    stack,
    logger: log,
    limits: { maxOfferBytes: 32 * 1024, maxPendingPerAddress: opts.maxPendingPerAddress ?? 4, maxSessions: opts.maxSessions ?? 4 },
    authorize: async (key) => {
      authorized.push(key);
      if (opts.authorize) return opts.authorize(key);
      return key === KEY ? { ok: true, context: lease } : { ok: false, reason: 'unknown stream key' };
    },
    onPublisher: (p) => publishers.push(p),
    abandon: () => undefined,
    iceServers: [{ urls: 'stun:stun.example.net:3478' }],
    maxBitrate: 2_000_000,
    ...(opts.mediaTimeoutMs ? { mediaTimeoutMs: opts.mediaTimeoutMs } : {}),
  });
  const server = new SignallingServer({ host: '127.0.0.1', port: 0, corsOrigins: ['http://worker.test'], logger: log, routes: [endpoint] });
  await server.listen();
  const h: Harness = {
    url: `http://127.0.0.1:${server.address().port}/whip`,
    stack,
    endpoint,
    publishers,
    authorized,
    async close() {
      endpoint.closeAll('test over');
      stack.closeAll();
      await server.close();
    },
  };
  harnesses.push(h);
  return h;
}

/** A publishing peer (libdatachannel): H.264 and Opus tracks, sendonly. */
function clientPeer() {
  const pc = new nodeDataChannel.PeerConnection('client', { iceServers: [], bindAddress: '127.0.0.1', disableAutoNegotiation: true });
  const v = new nodeDataChannel.Video('0', 'SendOnly');
  v.addH264Codec(96);
  v.addSSRC(0x1234, 'client', 'client', 'video');
  const a = new nodeDataChannel.Audio('1', 'SendOnly');
  a.addOpusCodec(111);
  a.addSSRC(0x5678, 'client', 'client', 'audio');
  const video = pc.addTrack(v);
  const audio = pc.addTrack(a);
  pc.setLocalDescription('offer');
  // Without our candidates the node reaches us only after we hold its answer and fingerprint
  // (libdatachannel as an offerer refuses a DTLS handshake that arrives before the answer).
  const offer = pc.localDescription()!.sdp.replace(/^a=candidate:.*\r?\n/gm, '');
  return { pc, video, audio, offer };
}

const post = (url: string, body: string, headers: Record<string, string> = {}) =>
  fetch(url, { method: 'POST', headers: { 'content-type': 'application/sdp', authorization: `Bearer ${KEY}`, ...headers }, body });
const errorCode = async (res: Response) => ((await res.json()) as { error: { code: string } }).error.code;

beforeAll(() => {
  dir = mkdtempSync(join(tmpdir(), 'edgelive-whip-'));
});
afterEach(async () => {
  await Promise.all(harnesses.splice(0).map((h) => h.close()));
});
afterAll(() => rmSync(dir, { recursive: true, force: true }));

describe('refusals allocate nothing', () => {
  it('no key or a refused key: 401 JSON, and no peer connection was ever created', async () => {
    const h = await start();
    const { offer, pc } = clientPeer();
    const none = await post(h.url, offer, { authorization: '' });
    expect([none.status, none.headers.get('www-authenticate'), await errorCode(none)]).toEqual([401, 'Bearer', 'unauthorized']);
    const bad = await post(h.url, offer, { authorization: 'Bearer sk_wrong' });
    expect([bad.status, await errorCode(bad)]).toEqual([401, 'unauthorized']);
    expect(h.authorized).toEqual(['sk_wrong']);
    expect(h.stack.counters).toEqual({ created: 0, open: 0 });
    expect(h.endpoint.counters).toEqual({ offers: 2, refused: 2, unauthorized: 2 });
    pc.close();
  });

  it('a publish token pointed at an endpoint named for another stream: 401 token_wrong_stream before the origin is asked', async () => {
    const tokens: string[] = [];
    const h = await start({ authorize: async (key) => (tokens.push(key), { ok: true, context: lease }) });
    const key = await publishTokenKey('root', 'hash');
    const token = await signPublishToken({ streamId: 'stA', expiresAt: 4_000_000_000, nonce: 'nnnnnnnnnnnnnnnn', use: 'reusable' }, key);
    const { offer, pc } = clientPeer();
    const wrong = await post(`${h.url}/stB`, offer, { authorization: `Bearer ${token}` });
    expect([wrong.status, wrong.headers.get('www-authenticate'), await errorCode(wrong)]).toEqual([
      401,
      'Bearer error="invalid_token"',
      'token_wrong_stream',
    ]);
    expect(tokens).toEqual([]);
    expect(h.stack.counters.created).toBe(0);
    // Its own stream's endpoint (or the bare /whip) asks the origin, which decides.
    const right = await post(`${h.url}/stA`, offer, { authorization: `Bearer ${token}` });
    expect(right.status).toBe(201);
    await right.text();
    expect(tokens).toEqual([token]);
    pc.close();
  });

  it('413 for an offer over the limit (declared or streamed), 415 for another type, 400 for codecs the ladder cannot take: the key is never asked', async () => {
    const h = await start();
    const big = 'v=0\r\n' + 'a=x:'.padEnd(40_000, 'x') + '\r\n';
    const declared = await post(h.url, big);
    expect([declared.status, await errorCode(declared)]).toEqual([413, 'too_large']);
    // Streamed without a length: cut off at the limit, not read to the end.
    const streamed = await fetch(h.url, {
      method: 'POST',
      headers: { 'content-type': 'application/sdp', authorization: `Bearer ${KEY}` },
      body: new ReadableStream({
        start: (c) => {
          for (let i = 0; i < 100; i++) c.enqueue(new TextEncoder().encode('a'.repeat(1000)));
          c.close();
        },
      }),
      duplex: 'half',
    } as RequestInit);
    expect(streamed.status).toBe(413);
    await streamed.body?.cancel();
    const json = await post(h.url, '{}', { 'content-type': 'application/json' });
    expect([json.status, await errorCode(json)]).toEqual([415, 'unsupported_media_type']);
    const { offer, pc } = clientPeer();
    const vp8 = await post(h.url, offer.replace(/H264\/90000/g, 'VP8/90000'));
    expect([vp8.status, await errorCode(vp8)]).toEqual([400, 'unsupported_codec']);
    expect(h.authorized).toEqual([]);
    expect(h.stack.counters.created).toBe(0);
    pc.close();
  });

  it('429 past the pending offers of one address, 503 with Retry-After past the node capacity (offers being answered count)', async () => {
    let release!: () => void;
    const gate = new Promise<void>((r) => (release = r));
    const h = await start({
      maxPendingPerAddress: 2,
      maxSessions: 2,
      authorize: async (key) => {
        await gate;
        return key === KEY ? { ok: true, context: lease } : { ok: false, reason: 'no' };
      },
    });
    const clients = [clientPeer(), clientPeer(), clientPeer(), clientPeer()];
    const slow = [post(h.url, clients[0]!.offer), post(h.url, clients[1]!.offer, { authorization: 'Bearer sk_other' })];
    await new Promise((r) => setTimeout(r, 200));
    const third = await post(h.url, clients[2]!.offer);
    expect([third.status, third.headers.get('retry-after'), await errorCode(third)]).toEqual([429, '2', 'too_many_pending']);
    release();
    const [first, second] = await Promise.all(slow);
    expect(first!.status).toBe(201);
    expect(second!.status).toBe(401);
    await first!.text();
    await second!.body?.cancel();
    const another = await post(h.url, clients[2]!.offer);
    expect(another.status).toBe(201);
    await another.text();
    const full = await post(h.url, clients[3]!.offer);
    expect([full.status, full.headers.get('retry-after'), await errorCode(full)]).toEqual([503, '10', 'at_capacity']);
    expect(h.stack.counters.created).toBe(2);
    for (const c of clients) c.pc.close();
  });

  it('OPTIONS answers the CORS preflight of the Worker origin only; unknown sessions are 404', async () => {
    const h = await start();
    const ok = await fetch(h.url, {
      method: 'OPTIONS',
      headers: { origin: 'http://worker.test', 'access-control-request-method': 'POST' },
    });
    expect([ok.status, ok.headers.get('access-control-allow-origin'), ok.headers.get('accept-post')]).toEqual([
      204,
      'http://worker.test',
      'application/sdp',
    ]);
    expect(ok.headers.get('access-control-expose-headers')).toContain('Location');
    const other = await fetch(h.url, {
      method: 'OPTIONS',
      headers: { origin: 'http://evil.test', 'access-control-request-method': 'POST' },
    });
    expect(other.headers.get('access-control-allow-origin')).toBeNull();
    const missing = await fetch(`${h.url}/sessions/nope`, { method: 'DELETE', headers: { authorization: `Bearer ${KEY}` } });
    expect([missing.status, await errorCode(missing)]).toEqual([404, 'not_found']);
    const get = await fetch(h.url);
    expect(get.status).toBe(405);
    await get.body?.cancel();
  });
});

describe('an accepted publisher', () => {
  let source: ChildProcess | null = null;
  afterEach(() => source?.kill('SIGKILL'));

  it('gets 201 with the answer, Location, ETag, Accept-Patch and ICE servers; its RTP comes out as Matroska; DELETE ends it', async () => {
    const h = await start();
    const client = clientPeer();
    const res = await post(h.url, client.offer);
    expect(res.status).toBe(201);
    expect(res.headers.get('content-type')).toBe('application/sdp');
    expect(res.headers.get('location')).toMatch(/^\/whip\/sessions\/[A-Za-z0-9_-]+$/);
    expect(res.headers.get('etag')).toMatch(/^"[0-9a-f]{16}"$/);
    expect(res.headers.get('accept-patch')).toBe('application/trickle-ice-sdpfrag');
    expect(res.headers.get('link')).toBe('<stun:stun.example.net:3478>; rel="ice-server"');
    const answer = await res.text();
    expect(answer).toMatch(/a=rtpmap:96 H264\/90000/);
    expect(answer).toMatch(/a=rtpmap:111 opus\/48000/);
    client.pc.setRemoteDescription(answer, 'answer');
    expect(h.publishers).toHaveLength(1);
    const publisher = h.publishers[0]!;
    expect([publisher.protocol, publisher.container, publisher.tracks, publisher.lease.epoch]).toEqual([
      'whip',
      'matroska',
      { audio: true, video: true },
      3,
    ]);

    // Collect what the ladder would read while the client sends 3 s of ffmpeg's RTP over the tracks.
    const chunks: Buffer[] = [];
    publisher.media.on('data', (c: Buffer) => chunks.push(c));
    await new Promise<void>((resolve, reject) => {
      const t = setTimeout(() => reject(new Error('tracks did not open')), 10_000);
      const check = () => (client.video.isOpen() && client.audio.isOpen() ? (clearTimeout(t), resolve()) : setTimeout(check, 50));
      check();
    });
    const sockets = await Promise.all(
      (['video', 'audio'] as const).map(async (kind) => {
        const sock = createSocket('udp4');
        await new Promise<void>((r) => sock.bind(0, '127.0.0.1', r));
        const track = kind === 'video' ? client.video : client.audio;
        const ssrc = kind === 'video' ? 0x1234 : 0x5678;
        sock.on('message', (msg) => {
          msg.writeUInt32BE(ssrc, 8);
          track.sendMessageBinary(msg);
        });
        return { sock, port: sock.address().port };
      }),
    );
    source = spawn(
      'ffmpeg',
      [
        '-hide_banner',
        '-loglevel',
        'error',
        '-re',
        '-t',
        '3',
        '-f',
        'lavfi',
        '-i',
        'testsrc2=size=320x240:rate=30',
        '-re',
        '-t',
        '3',
        '-f',
        'lavfi',
        '-i',
        'sine=frequency=440:sample_rate=48000',
        '-map',
        '0:v',
        '-c:v',
        'libx264',
        '-preset',
        'ultrafast',
        '-tune',
        'zerolatency',
        '-profile:v',
        'baseline',
        '-g',
        '30',
        '-bsf:v',
        'dump_extra=freq=keyframe',
        '-f',
        'rtp',
        '-payload_type',
        '96',
        `rtp://127.0.0.1:${sockets[0]!.port}?pkt_size=1100`,
        '-map',
        '1:a',
        '-c:a',
        'libopus',
        '-f',
        'rtp',
        '-payload_type',
        '111',
        `rtp://127.0.0.1:${sockets[1]!.port}?pkt_size=1100`,
      ],
      { stdio: 'ignore' },
    );
    await new Promise((r) => source!.once('exit', r));
    await new Promise((r) => setTimeout(r, 300));
    for (const s of sockets) s.sock.close();

    const stats = h.endpoint.sessions()[0]!;
    expect(stats).toMatchObject({ state: 'connected', streamId: 'st_1', epoch: 3 });
    expect(stats.videoFrames).toBeGreaterThanOrEqual(85);
    expect(stats.audioFrames).toBeGreaterThanOrEqual(140);
    const file = join(dir, 'whip.mkv');
    writeFileSync(file, Buffer.concat(chunks));
    const probe = spawnSync(
      'ffprobe',
      ['-v', 'fatal', '-count_frames', '-show_entries', 'stream=codec_name,nb_read_frames', '-of', 'json', '-f', 'matroska', file],
      { encoding: 'utf8' },
    );
    const streams = (JSON.parse(probe.stdout) as { streams: Array<{ codec_name: string; nb_read_frames: string }> }).streams;
    expect(streams.map((s) => s.codec_name)).toEqual(['h264', 'opus']);
    expect(Number(streams[0]!.nb_read_frames)).toBe(stats.videoFrames);

    // PATCH: an ICE restart is refused with 422, a trickled candidate taken with 204.
    const location = new URL(res.headers.get('location')!, h.url).href;
    const restart = await fetch(location, {
      method: 'PATCH',
      headers: { authorization: `Bearer ${KEY}`, 'content-type': 'application/trickle-ice-sdpfrag', 'if-match': '*' },
      body: 'a=ice-ufrag:zz\r\na=ice-pwd:zzzzzzzzzzzzzzzzzzzzzz\r\n',
    });
    expect(restart.status).toBe(422);
    await restart.body?.cancel();
    const trickle = await fetch(location, {
      method: 'PATCH',
      headers: { authorization: `Bearer ${KEY}`, 'content-type': 'application/trickle-ice-sdpfrag', 'if-match': res.headers.get('etag')! },
      body: 'a=mid:0\r\na=candidate:1 1 udp 2122260223 127.0.0.1 9 typ host\r\n',
    });
    expect(trickle.status).toBe(204);

    const del = await fetch(location, { method: 'DELETE', headers: { authorization: `Bearer ${KEY}` } });
    expect(del.status).toBe(200);
    expect(await publisher.ended).toEqual({ code: 'closed', message: 'the publisher ended the WHIP session' });
    expect(h.stack.counters).toEqual({ created: 1, open: 0 });
    expect(h.endpoint.sessions()).toEqual([]);
    client.pc.close();
  }, 30_000);
});

describe('media ports', () => {
  it('WEBRTC_UDP_MUX: every session answers with the one shared UDP port, and each connects', async () => {
    const port = 40_000 + Math.floor(Math.random() * 20_000);
    const h = await start({ stack: { bindAddress: '127.0.0.1', portRange: [port, port], udpMux: true } });
    const clients = [clientPeer(), clientPeer()];
    const answers = await Promise.all(
      clients.map(async (c) => {
        const res = await post(h.url, c.offer);
        expect(res.status).toBe(201);
        return res.text();
      }),
    );
    for (const answer of answers) {
      const ports = [...answer.matchAll(/^a=candidate:\S+ \d+ UDP \d+ 127\.0\.0\.1 (\d+) typ host/gim)].map((m) => Number(m[1]));
      expect(ports).toEqual([port]);
    }
    clients.forEach((c, i) => c.pc.setRemoteDescription(answers[i]!, 'answer'));
    const deadline = Date.now() + 10_000;
    while (h.endpoint.sessions().some((s) => s.state !== 'connected') && Date.now() < deadline)
      await new Promise((r) => setTimeout(r, 100));
    expect(h.endpoint.sessions().map((s) => s.state)).toEqual(['connected', 'connected']);
    for (const c of clients) c.pc.close();
  }, 20_000);
});

describe('a publisher that goes silent', () => {
  it('is dropped after the media timeout although its connection stays up (code idle-timeout)', async () => {
    const h = await start({ mediaTimeoutMs: 1500 });
    const client = clientPeer();
    const res = await post(h.url, client.offer);
    expect(res.status).toBe(201);
    client.pc.setRemoteDescription(await res.text(), 'answer');
    const publisher = h.publishers[0]!;
    const end = await publisher.ended;
    expect(end.code).toBe('idle-timeout');
    expect(end.message).toMatch(/^no media for \d+ ms$/);
    expect(h.stack.counters.open).toBe(0);
    client.pc.close();
  }, 20_000);
});
