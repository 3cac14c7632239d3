// The WHEP endpoint on a real signalling listener, the real WebRTC stack and a real-time feed fed
// by ffmpeg with the ladder's real-time encoder arguments; viewers are libdatachannel peers.
// Refusals allocate nothing (no peer connection before the ticket is accepted), the limits answer
// with the statuses WHEP and HTTP name, and an accepted viewer receives the one encode in its own
// payload types and SSRCs, starting at a keyframe, continuous across a new ladder.
import { spawn, type ChildProcess } from 'node:child_process';
import nodeDataChannel from 'node-datachannel';
import { afterEach, describe, expect, it } from 'vitest';
import { mintWhepTicket } from '../../core/contracts/whep.ts';
import { createLogger } from '../../transcoder-node/log.ts';
import { realtimeAudioArgs, realtimeVideoArgs } from '../../transcoder-node/realtime-output.ts';
import { RealtimeFeeds, type RealtimeFeed } from '../../transcoder-node/webrtc/realtime-feed.ts';
import { isRtcp, startsH264Keyframe } from '../../transcoder-node/webrtc/rtp-forward.ts';
import { SignallingServer } from '../../transcoder-node/webrtc/signalling-server.ts';
import { WebRtcStack } from '../../transcoder-node/webrtc/stack.ts';
import { WhepEndpoint } from '../../transcoder-node/webrtc/whep-endpoint.ts';

const SECRET = 'test-ingest-secret';
const STREAM = 'st_live';
const log = createLogger({ service: 'test-whep' });
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

interface Harness {
  base: string;
  stack: WebRtcStack;
  endpoint: WhepEndpoint;
  feeds: RealtimeFeeds;
  feed: RealtimeFeed;
  close(): Promise<void>;
}
const cleanups: Array<() => unknown> = [];
afterEach(async () => {
  for (const c of cleanups.splice(0).reverse()) await c();
});

async function start(opts: { maxViewers?: number; maxPendingPerAddress?: number } = {}): Promise<Harness> {
  const stack = new WebRtcStack({ bindAddress: '127.0.0.1' }, log);
  const feeds = new RealtimeFeeds({ logger: log, graceMs: 200 });
  const feed = await feeds.acquire(STREAM);
  const endpoint = new WhepEndpoint({
    stack,
    logger: log,
    limits: { maxOfferBytes: 32 * 1024, maxPendingPerAddress: opts.maxPendingPerAddress ?? 4, maxViewers: opts.maxViewers ?? 8 },
    secret: SECRET,
    feeds,
    iceServers: [{ urls: 'stun:stun.example.net:3478' }],
  });
  const server = new SignallingServer({ host: '127.0.0.1', port: 0, corsOrigins: ['http://worker.test'], logger: log, routes: [endpoint] });
  await server.listen();
  const h: Harness = {
    base: `http://127.0.0.1:${server.address().port}/whep`,
    stack,
    endpoint,
    feeds,
    feed,
    async close() {
      endpoint.closeAll('test over');
      await feeds.closeAll('test over');
      stack.closeAll();
      await server.close();
    },
  };
  cleanups.push(() => h.close());
  return h;
}

/** The real-time encode as the ladder runs it (realtime-output.ts), from ffmpeg's test sources. */
function encode(feed: RealtimeFeed, seconds: number): ChildProcess {
  const o = { videoPort: feed.ports.video, audioPort: feed.ports.audio, keyframeIntervalSeconds: 0.5 };
  const child = spawn(
    'ffmpeg',
    [
      '-hide_banner',
      '-loglevel',
      'error',
      '-nostdin',
      '-re',
      '-f',
      'lavfi',
      '-i',
      `testsrc2=size=320x180:rate=30:duration=${seconds}`,
      '-re',
      '-f',
      'lavfi',
      '-i',
      `sine=frequency=1000:sample_rate=48000:duration=${seconds}`,
      '-filter_complex',
      '[0:v]format=yuv420p[vrt];[1:a]aformat=channel_layouts=stereo[art]',
      ...realtimeVideoArgs('[vrt]', { name: 'top', kind: 'video', width: 320, height: 180, videoBitrate: 400_000, codec: 'h264' }, 30, o),
      ...realtimeAudioArgs('[art]', { name: 'audio', kind: 'audio', audioBitrate: 64_000, channels: 2 }, o),
    ],
    { stdio: ['ignore', 'ignore', 'inherit'] },
  );
  cleanups.push(() => child.kill('SIGKILL'));
  return child;
}

interface Received {
  pts: Set<number>;
  ssrcs: Set<number>;
  packets: number;
  firstVideo: Buffer | null;
  frames: number;
  gaps: number;
  lastSeq: number | null;
}

/** A receiving peer (libdatachannel) offering H.264 (constrained baseline) and Opus in payload types of its own. */
function viewerPeer(pts = { video: 102, audio: 109 }) {
  const pc = new nodeDataChannel.PeerConnection('viewer', { iceServers: [], bindAddress: '127.0.0.1', disableAutoNegotiation: true });
  const v = new nodeDataChannel.Video('v', 'RecvOnly');
  v.addH264Codec(pts.video, 'level-asymmetry-allowed=1;packetization-mode=1;profile-level-id=42e01f');
  const a = new nodeDataChannel.Audio('a', 'RecvOnly');
  a.addOpusCodec(pts.audio);
  const received = { video: newReceived(), audio: newReceived() };
  const tracks = [pc.addTrack(v), pc.addTrack(a)];
  for (const [kind, track] of [
    ['video', tracks[0]!],
    ['audio', tracks[1]!],
  ] as const) {
    track.onMessage((msg) => {
      if (isRtcp(msg)) return;
      const r = received[kind];
      r.packets++;
      r.pts.add(msg[1]! & 0x7f);
      r.ssrcs.add(msg.readUInt32BE(8));
      if (kind === 'video' && !r.firstVideo) r.firstVideo = Buffer.from(msg);
      if (msg[1]! & 0x80) r.frames++;
      const seq = msg.readUInt16BE(2);
      if (r.lastSeq !== null && seq !== ((r.lastSeq + 1) & 0xffff)) r.gaps++;
      r.lastSeq = seq;
    });
  }
  pc.setLocalDescription('offer');
  // Without our candidates the node reaches us only after we hold its answer (libdatachannel as an
  // offerer refuses a DTLS handshake that arrives before the answer).
  const offer = pc.localDescription()!.sdp.replace(/^a=candidate:.*\r?\n/gm, '');
  cleanups.push(() => pc.close());
  return { pc, tracks, offer, received };
}
function newReceived(): Received {
  return { pts: new Set(), ssrcs: new Set(), packets: 0, firstVideo: null, frames: 0, gaps: 0, lastSeq: null };
}

const ticketFor = (stream: string, expInSeconds = 60) =>
  mintWhepTicket(SECRET, { sub: stream, exp: Math.floor(Date.now() / 1000) + expInSeconds });
const post = (url: string, body: string, headers: Record<string, string> = {}) =>
  fetch(url, { method: 'POST', headers: { 'content-type': 'application/sdp', ...headers }, body });
const errorCode = async (res: Response) => ((await res.json()) as { error: { code: string } }).error.code;
async function until(what: string, fn: () => boolean, ms = 15_000): Promise<void> {
  const deadline = Date.now() + ms;
  while (!fn()) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await sleep(50);
  }
}

describe('refusals allocate nothing', () => {
  it('no ticket, a forged, expired or wrong-stream ticket: 401/403 JSON, and no peer connection is ever created', async () => {
    const h = await start();
    const { offer } = viewerPeer();
    const none = await post(`${h.base}/${STREAM}`, offer);
    expect([none.status, none.headers.get('www-authenticate'), await errorCode(none)]).toEqual([401, 'Bearer', 'ticket_required']);
    const forged = await post(`${h.base}/${STREAM}?ticket=${(await ticketFor(STREAM)).slice(0, -4)}AAAA`, offer);
    expect([forged.status, await errorCode(forged)]).toEqual([401, 'invalid_ticket']);
    const otherSecret = await mintWhepTicket('not-the-secret', { sub: STREAM, exp: Math.floor(Date.now() / 1000) + 60 });
    const other = await post(`${h.base}/${STREAM}?ticket=${otherSecret}`, offer);
    expect([other.status, await errorCode(other)]).toEqual([401, 'invalid_ticket']);
    const expired = await post(`${h.base}/${STREAM}?ticket=${await ticketFor(STREAM, -5)}`, offer);
    expect([expired.status, await errorCode(expired)]).toEqual([401, 'ticket_expired']);
    const wrong = await post(`${h.base}/${STREAM}?ticket=${await ticketFor('st_other')}`, offer);
    expect([wrong.status, await errorCode(wrong)]).toEqual([403, 'ticket_wrong_stream']);
    // A good ticket for a stream this node does not hold in real time.
    const elsewhere = await post(`${h.base}/st_other?ticket=${await ticketFor('st_other')}`, offer);
    expect([elsewhere.status, await errorCode(elsewhere)]).toEqual([404, 'stream_not_here']);
    expect(h.stack.counters).toEqual({ created: 0, open: 0 });
    expect(h.endpoint.counters).toMatchObject({ offers: 6, refused: 6, unauthorized: 5, accepted: 0 });
  });

  it('415 for another type, 413 for an offer over the limit, 400 for an offer that sends or has no H.264: nothing allocated', async () => {
    const h = await start();
    const url = `${h.base}/${STREAM}?ticket=${await ticketFor(STREAM)}`;
    const json = await post(url, '{}', { 'content-type': 'application/json' });
    expect([json.status, await errorCode(json)]).toEqual([415, 'unsupported_media_type']);
    const big = await post(url, 'v=0\r\n' + 'a=x:'.padEnd(40_000, 'x') + '\r\n');
    expect([big.status, await errorCode(big)]).toEqual([413, 'too_large']);
    const { offer } = viewerPeer();
    const sending = await post(url, offer.replace(/a=recvonly/g, 'a=sendonly'));
    expect([sending.status, await errorCode(sending)]).toEqual([400, 'bad_direction']);
    const vp8 = await post(url, offer.replace(/H264\/90000/g, 'VP8/90000'));
    expect([vp8.status, await errorCode(vp8)]).toEqual([400, 'unsupported_codec']);
    expect(h.stack.counters.created).toBe(0);
  });

  it('503 with Retry-After past WHEP_MAX_VIEWERS (offers being answered count), 429 past the pending offers of one address', async () => {
    const h = await start({ maxViewers: 2, maxPendingPerAddress: 1 });
    const url = `${h.base}/${STREAM}?ticket=${await ticketFor(STREAM)}`;
    // An offer whose body never ends holds its address's one pending slot.
    let stall!: ReadableStreamDefaultController<Uint8Array>;
    const stalled = fetch(url, {
      method: 'POST',
      headers: { 'content-type': 'application/sdp' },
      body: new ReadableStream({
        start: (c) => {
          stall = c;
          c.enqueue(new TextEncoder().encode('v=0\r\n'));
        },
      }),
      duplex: 'half',
    } as RequestInit).catch(() => null);
    await until('the stalled offer to be pending', () => h.endpoint.counters.offers === 1);
    await sleep(100);
    const second = await post(url, viewerPeer().offer);
    expect([second.status, second.headers.get('retry-after'), await errorCode(second)]).toEqual([429, '2', 'too_many_pending']);
    stall.close();
    expect((await stalled)?.status).toBe(400);
    const a = await post(url, viewerPeer().offer);
    const b = await post(url, viewerPeer().offer);
    expect([a.status, b.status]).toEqual([201, 201]);
    await Promise.all([a.text(), b.text()]);
    const full = await post(url, viewerPeer().offer);
    expect([full.status, full.headers.get('retry-after'), await errorCode(full)]).toEqual([503, '10', 'at_capacity']);
    expect(h.endpoint.counters.full).toBe(1);
    expect(h.stack.counters.created).toBe(2);
  });

  it('any page may call it (CORS for every origin: the ticket is the authority); unknown paths and sessions are 404', async () => {
    const h = await start();
    const pre = await fetch(`${h.base}/${STREAM}`, {
      method: 'OPTIONS',
      headers: { origin: 'http://player.example', 'access-control-request-method': 'POST' },
    });
    expect([pre.status, pre.headers.get('access-control-allow-origin'), pre.headers.get('accept-post')]).toEqual([
      204,
      'http://player.example',
      'application/sdp',
    ]);
    expect(pre.headers.get('access-control-expose-headers')).toContain('Location');
    for (const path of ['', '/', '/a/b', '/bad.name', '/sessions/nope']) {
      const res = await fetch(`${h.base}${path}`, { method: path.startsWith('/sessions') ? 'DELETE' : 'POST' });
      expect([path, res.status]).toEqual([path, 404]);
      await res.body?.cancel();
    }
  });
});

describe('accepted viewers', () => {
  it('receive the one encode in their own payload types and SSRCs, video from a keyframe on, with no gaps; PATCH trickles, DELETE ends', async () => {
    const h = await start();
    const url = `${h.base}/${STREAM}?ticket=${await ticketFor(STREAM)}`;
    const viewers = [viewerPeer({ video: 102, audio: 109 }), viewerPeer({ video: 125, audio: 111 })];
    const answers: Array<{ res: Response; sdp: string }> = [];
    for (const v of viewers) {
      const res = await post(url, v.offer);
      expect(res.status).toBe(201);
      answers.push({ res, sdp: await res.text() });
    }
    const [first] = answers;
    expect(first!.res.headers.get('content-type')).toBe('application/sdp');
    expect(first!.res.headers.get('location')).toMatch(/^\/whep\/sessions\/[A-Za-z0-9_-]{22}$/);
    expect(first!.res.headers.get('etag')).toMatch(/^"[0-9a-f]{16}"$/);
    expect(first!.res.headers.get('accept-patch')).toBe('application/trickle-ice-sdpfrag');
    expect(first!.res.headers.get('link')).toBe('<stun:stun.example.net:3478>; rel="ice-server"');
    expect(first!.sdp).toMatch(/a=rtpmap:102 H264\/90000/);
    expect(first!.sdp).toMatch(/a=sendonly/);
    expect(answers[1]!.sdp).toMatch(/a=rtpmap:125 H264\/90000/);
    viewers.forEach((v, i) => v.pc.setRemoteDescription(answers[i]!.sdp, 'answer'));
    await until('both viewers connected', () => h.endpoint.viewers().every((s) => s.state === 'connected') && h.endpoint.viewerCount === 2);

    const ffmpeg = encode(h.feed, 3);
    await new Promise((r) => ffmpeg.once('exit', r));
    await sleep(300);
    const ssrcsInAnswer = (sdp: string) => [...sdp.matchAll(/^a=ssrc:(\d+) cname/gm)].map((m) => Number(m[1]));
    viewers.forEach((v, i) => {
      const { video, audio } = v.received;
      expect([...video.pts]).toEqual([i === 0 ? 102 : 125]);
      expect([...audio.pts]).toEqual([i === 0 ? 109 : 111]);
      expect([...video.ssrcs, ...audio.ssrcs].sort()).toEqual(ssrcsInAnswer(answers[i]!.sdp).sort());
      // The first video packet a viewer gets begins a keyframe: ffmpeg sends the SPS and PPS the
      // encoder repeats before each IDR as one STAP-A.
      expect(startsH264Keyframe(video.firstVideo!)).toBe(true);
      expect([video.firstVideo![12]! & 0x1f, video.firstVideo![15]! & 0x1f]).toEqual([24, 7]);
      // 3 s at 30 fps, from the first keyframe (a GOP is 0.5 s): most frames, no gap in the sequence.
      expect(video.frames).toBeGreaterThanOrEqual(70);
      expect(video.gaps).toBe(0);
      // Opus, 20 ms frames: 50 per second.
      expect(audio.packets).toBeGreaterThanOrEqual(120);
      expect(audio.gaps).toBe(0);
    });
    const stats = h.endpoint.viewers();
    expect(stats.map((s) => s.firstKeyframeMs)).toEqual([expect.any(Number), expect.any(Number)]);
    expect(h.feed.stats().keyframes).toBeGreaterThanOrEqual(5);

    // A new ladder (a reconnection, a shed rung) is a new RTP flow: viewers see it continue.
    const gapsBefore = viewers.map((v) => v.received.video.gaps);
    const again = encode(h.feed, 2);
    await new Promise((r) => again.once('exit', r));
    await sleep(300);
    expect(h.feed.stats().videoSources).toBe(2);
    expect(viewers.map((v) => v.received.video.gaps)).toEqual(gapsBefore);
    expect(viewers[0]!.received.video.frames).toBeGreaterThanOrEqual(120);

    // PATCH: a trickled candidate 204, an ICE restart 422, a stale entity-tag 412.
    const location = new URL(first!.res.headers.get('location')!, h.base).href;
    const frag = { 'content-type': 'application/trickle-ice-sdpfrag' };
    const trickle = await fetch(location, {
      method: 'PATCH',
      headers: { ...frag, 'if-match': first!.res.headers.get('etag')! },
      body: 'a=mid:v\r\na=candidate:1 1 udp 2122260223 127.0.0.1 9 typ host\r\n',
    });
    expect(trickle.status).toBe(204);
    const restart = await fetch(location, {
      method: 'PATCH',
      headers: { ...frag, 'if-match': '*' },
      body: 'a=ice-ufrag:zz\r\na=ice-pwd:zzzzzzzzzzzzzzzzzzzzzz\r\n',
    });
    expect([restart.status, await errorCode(restart)]).toEqual([422, 'ice_restart_unsupported']);
    const stale = await fetch(location, { method: 'PATCH', headers: { ...frag, 'if-match': '"0"' }, body: '' });
    expect(stale.status).toBe(412);
    await stale.body?.cancel();

    const del = await fetch(location, { method: 'DELETE' });
    expect(del.status).toBe(200);
    const gone = await fetch(location, { method: 'DELETE' });
    expect(gone.status).toBe(404);
    await gone.body?.cancel();
    expect(h.endpoint.viewerCount).toBe(1);
    expect(h.stack.counters).toEqual({ created: 2, open: 1 });
  }, 40_000);

  it('when the stream leaves the node (its last ladder let go of the feed), its viewers end', async () => {
    const h = await start();
    const v = viewerPeer();
    const res = await post(`${h.base}/${STREAM}?ticket=${await ticketFor(STREAM)}`, v.offer);
    v.pc.setRemoteDescription(await res.text(), 'answer');
    await until('the viewer connected', () => h.endpoint.viewers()[0]?.state === 'connected');
    h.feeds.release(STREAM, 'publisher gone');
    // In the grace period (a publisher may come back) no new viewer is taken.
    const late = await post(`${h.base}/${STREAM}?ticket=${await ticketFor(STREAM)}`, viewerPeer().offer);
    expect([late.status, await errorCode(late)]).toEqual([404, 'stream_not_here']);
    await until('the viewer ended with the feed', () => h.endpoint.viewerCount === 0, 5000);
    expect(h.stack.counters.open).toBe(0);
    expect(h.feed.closed).toBe(true);
  }, 20_000);
});
