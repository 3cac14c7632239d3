// WHIP ingest on the real stack: wrangler dev + the media node, a headless Chromium page of the
// Worker's origin publishing its fake camera and microphone over WHIP (RFC 9725) to the node, and
// ffmpeg and the watch page (hls.js) playing the stream back through LL-HLS, H.264 and AAC. Refusals (bad key,
// oversize offer) are checked to allocate nothing: the node's peer-connection counter does not move.
import { spawnSync } from 'node:child_process';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { CreatedStream, Stack } from '../../scripts/local-stack.ts';
import { createLogger } from '../../transcoder-node/log.ts';
import { sendonlyOffer, waitInPage, type TestBrowser } from '../support/browser.ts';
import { waitForPlaylist } from '../support/llhls-client.ts';
import { health as nodeHealth } from '../support/media-node.ts';
import { WEBRTC_LADDER, probeStreams, watchPageAdvance, WebrtcStack } from '../support/webrtc-stack.ts';

const log = createLogger({ service: 'e2e-whip' });
/** How long a playlist may take to show what a test waits for. */
const PLAYLIST_WAIT_MS = 45_000;
let env: WebrtcStack;
let stack: Stack;
let stream: CreatedStream;
let browser: TestBrowser;
let whipUrl: string;

/** The page side of a WHIP client, as a browser publisher runs it (no codec preference: the node picks H.264). */
const WHIP_CLIENT = `
window.whipPublish = async (url, key) => {
  const media = await navigator.mediaDevices.getUserMedia({ video: { width: 640, height: 360, frameRate: 30 }, audio: true });
  const pc = new RTCPeerConnection();
  for (const track of media.getTracks()) pc.addTransceiver(track, { direction: 'sendonly' });
  await pc.setLocalDescription();
  await new Promise((r) => { if (pc.iceGatheringState === 'complete') r(); pc.onicegatheringstatechange = () => pc.iceGatheringState === 'complete' && r(); });
  const res = await fetch(url, { method: 'POST', headers: { 'content-type': 'application/sdp', authorization: 'Bearer ' + key }, body: pc.localDescription.sdp });
  const headers = Object.fromEntries(['location', 'etag', 'accept-patch', 'content-type'].map((h) => [h, res.headers.get(h)]));
  if (res.status !== 201) return { status: res.status, headers, body: await res.text() };
  const answer = await res.text();
  await pc.setRemoteDescription({ type: 'answer', sdp: answer });
  window.publisher = { pc, media, location: new URL(headers.location, url).href, etag: headers.etag };
  return { status: 201, headers, answer };
};
window.whipState = () => window.publisher && window.publisher.pc.connectionState;
window.whipSentVideo = async () => { let n = 0; (await window.publisher.pc.getStats()).forEach((s) => { if (s.type === 'outbound-rtp' && s.kind === 'video') n = s.framesEncoded; }); return n; };
`;

const health = () => nodeHealth(stack.transcoderHealthUrl);

async function newPublisherPage() {
  const page = await browser.newPage();
  // A page of the Worker's origin, as the Go-live page will be: the node answers it through CORS.
  await page.goto(`${stack.workerUrl}/health`);
  await page.addScriptTag({ content: WHIP_CLIENT });
  return page;
}

beforeAll(async () => {
  // The node is registered before the stream is created, so the stream is given its WHIP endpoint
  // (not a configured fallback).
  env = new WebrtcStack({ name: 'whip', logger: log, adminToken: 'e2e-admin', endGraceSeconds: 3 });
  await env.start();
  ({ stack, browser } = env);
  // A second WHIP publisher takes the stream over below while the first is live: `allow`.
  stream = await stack.createStream({ title: 'whip', ladder: WEBRTC_LADDER, takeover: 'allow' });
  whipUrl = stream.ingest.whip!;
});

afterAll(async () => {
  await env?.stop();
});

describe('WHIP ingest end to end', () => {
  it('the stream is created with the WHIP endpoint of the node nearest the caller', () => {
    expect(stream.ingest.whip).toBe(stack.nodes[0]!.whipUrl);
    expect(stream.ingest.whip).not.toContain(stream.streamKey);
  });

  it('answers the CORS preflight of a page of the Worker origin', async () => {
    const res = await fetch(`${whipUrl}/${stream.id}`, {
      method: 'OPTIONS',
      headers: {
        origin: stack.workerUrl,
        'access-control-request-method': 'POST',
        'access-control-request-headers': 'authorization, content-type',
      },
    });
    expect(res.status).toBe(204);
    expect(res.headers.get('access-control-allow-origin')).toBe(stack.workerUrl);
    expect(res.headers.get('access-control-allow-methods')).toContain('POST');
    expect(res.headers.get('access-control-allow-headers')?.toLowerCase()).toContain('authorization');
    expect(res.headers.get('accept-post')).toBe('application/sdp');
  });

  it('a bad stream key gets 401 JSON and the node creates no peer connection', async () => {
    const offer = await sendonlyOffer(browser);
    const before = await health();
    const res = await fetch(`${whipUrl}/${stream.id}`, {
      method: 'POST',
      headers: { 'content-type': 'application/sdp', authorization: 'Bearer sk_not_a_key' },
      body: offer,
    });
    expect(res.status).toBe(401);
    expect(res.headers.get('www-authenticate')).toMatch(/^Bearer/);
    expect(((await res.json()) as { error: { code: string } }).error.code).toBe('unauthorized');
    const noKey = await fetch(`${whipUrl}/${stream.id}`, { method: 'POST', headers: { 'content-type': 'application/sdp' }, body: offer });
    expect(noKey.status).toBe(401);
    await noKey.body?.cancel();
    const after = await health();
    expect(after.webrtc.peersCreated).toBe(before.webrtc.peersCreated);
    expect(after.whip).toEqual([]);
    expect(after.sessions).toEqual([]);
  });

  it('an oversize offer gets 413 before its key is checked, and nothing is allocated', async () => {
    const before = await health();
    const res = await fetch(`${whipUrl}/${stream.id}`, {
      method: 'POST',
      headers: { 'content-type': 'application/sdp', authorization: `Bearer ${stream.streamKey}` },
      body: 'v=0\r\n' + 'a=x-padding:'.padEnd(40 * 1024, 'x') + '\r\n',
    });
    expect(res.status).toBe(413);
    expect(((await res.json()) as { error: { code: string } }).error.code).toBe('too_large');
    const after = await health();
    expect(after.webrtc.peersCreated).toBe(before.webrtc.peersCreated);
    expect(after.sessions).toEqual([]);
  });

  it('a browser publishes over WHIP; ffmpeg and the watch page (hls.js) play the LL-HLS stream with H.264 video and AAC audio', async () => {
    const page = await newPublisherPage();
    const result = (await page.evaluate(
      `whipPublish(${JSON.stringify(`${whipUrl}/${stream.id}`)}, ${JSON.stringify(stream.streamKey)})`,
    )) as {
      status: number;
      headers: Record<string, string | null>;
      answer?: string;
      body?: string;
    };
    expect(result.status, result.body).toBe(201);
    expect(result.headers['content-type']).toBe('application/sdp');
    expect(result.headers.location).toMatch(/^\/whip\/sessions\/[A-Za-z0-9_-]+$/);
    expect(result.headers.etag).toMatch(/^"[0-9a-f]+"$/);
    expect(result.headers['accept-patch']).toBe('application/trickle-ice-sdpfrag');
    // The node answered with one codec per track: H.264 and Opus.
    expect(result.answer).toMatch(/a=rtpmap:\d+ H264\/90000/);
    expect(result.answer).toMatch(/a=rtpmap:\d+ opus\/48000/);
    expect(result.answer).not.toMatch(/VP8|VP9|AV1/);
    await waitInPage(
      page,
      () => (globalThis as unknown as { whipState(): string }).whipState() === 'connected',
      'the WHIP peer connection',
      20_000,
    );

    const pl = await waitForPlaylist(
      `${stack.workerUrl}/live/${stream.id}/360p/index.m3u8`,
      (p) => p.segments.length >= 3,
      '3 video segments',
      PLAYLIST_WAIT_MS,
    );
    expect(pl.partInf?.partTarget).toBe(0.2);
    await waitForPlaylist(
      `${stack.workerUrl}/live/${stream.id}/audio/index.m3u8`,
      (p) => p.segments.length >= 3,
      '3 audio segments',
      PLAYLIST_WAIT_MS,
    );
    const mv = await (await fetch(stream.playback.hls)).text();
    expect(mv).toMatch(/CODECS="avc1\.[0-9a-f]{6},mp4a\.40\.2"/);

    expect(probeStreams(stream.playback.hls)).toEqual(
      expect.arrayContaining([
        { codec_type: 'video', codec_name: 'h264' },
        { codec_type: 'audio', codec_name: 'aac' },
      ]),
    );
    const play = spawnSync(
      'ffmpeg',
      ['-hide_banner', '-loglevel', 'error', '-i', stream.playback.hls, '-t', '3', '-map', '0:v:0', '-map', '0:a:0', '-f', 'null', '-'],
      { encoding: 'utf8', timeout: 60_000 },
    );
    expect(play.stderr.trim()).toBe('');
    expect(play.status).toBe(0);

    // And the watch page (hls.js, low-latency mode) plays it: frames shown, its clock advancing.
    // Advancing by a second of media (within 15 s: this Chromium also encodes the publisher's camera).
    expect(await watchPageAdvance(browser, stream.playback.watch, 1, 15_000), 'currentTime advances').toBeGreaterThanOrEqual(1);

    const h = await health();
    expect(h.sessions).toEqual([expect.objectContaining({ streamId: stream.id, protocol: 'whip' })]);
    expect(h.whip).toEqual([expect.objectContaining({ streamId: stream.id, state: 'connected' })]);
    expect(h.whip[0]!.videoFrames).toBeGreaterThan(30);
    expect(h.whip[0]!.audioFrames).toBeGreaterThan(100);
    expect(h.webrtc.peersOpen).toBe(1);
    // The page stays open: closing it would end the publish (its peer connection goes with it).
  });

  it('PATCH: trickled candidates are accepted, an ICE restart gets 422, a stale entity-tag 412, another token 401', async () => {
    const { whip } = await health();
    const id = whip[0]!.id;
    const url = `${whipUrl}/sessions/${id}`;
    const auth = { authorization: `Bearer ${stream.streamKey}`, 'content-type': 'application/trickle-ice-sdpfrag' };
    const frag =
      'a=ice-options:trickle\r\nm=audio 9 UDP/TLS/RTP/SAVPF 0\r\na=mid:0\r\na=candidate:1 1 udp 2122260223 127.0.0.1 61999 typ host\r\na=end-of-candidates\r\n';
    const trickle = await fetch(url, { method: 'PATCH', headers: auth, body: frag });
    expect(trickle.status).toBe(204);
    const restart = await fetch(url, {
      method: 'PATCH',
      headers: { ...auth, 'if-match': '*' },
      body: 'a=ice-ufrag:new1\r\na=ice-pwd:newpasswordnewpassword12\r\n',
    });
    expect(restart.status).toBe(422);
    expect(((await restart.json()) as { error: { code: string } }).error.code).toBe('ice_restart_unsupported');
    const stale = await fetch(url, { method: 'PATCH', headers: { ...auth, 'if-match': '"0000"' }, body: frag });
    expect(stale.status).toBe(412);
    await stale.body?.cancel();
    const other = await fetch(url, { method: 'PATCH', headers: { ...auth, authorization: 'Bearer someone-else' }, body: frag });
    expect(other.status).toBe(401);
    await other.body?.cancel();
    const get = await fetch(url, { headers: auth });
    expect(get.status).toBe(405);
    await get.body?.cancel();
    expect((await health()).whip[0]!.state).toBe('connected');
  });

  it('a WHIP publisher that reconnects takes the stream over with a new lease epoch; the old peer connection closes', async () => {
    const before = await health();
    const oldEpoch = before.whip[0]!.epoch;
    const page = await newPublisherPage();
    const result = (await page.evaluate(
      `whipPublish(${JSON.stringify(`${whipUrl}/${stream.id}`)}, ${JSON.stringify(stream.streamKey)})`,
    )) as { status: number };
    expect(result.status).toBe(201);
    await waitInPage(
      page,
      () => (globalThis as unknown as { whipState(): string }).whipState() === 'connected',
      'the second WHIP peer connection',
      20_000,
    );
    const deadline = Date.now() + 20_000;
    let h = await health();
    while ((h.whip.length !== 1 || h.sessions.length !== 1) && Date.now() < deadline) {
      await new Promise((r) => setTimeout(r, 250));
      h = await health();
    }
    expect(h.whip).toEqual([expect.objectContaining({ streamId: stream.id, epoch: oldEpoch + 1 })]);
    expect(h.sessions).toEqual([expect.objectContaining({ streamId: stream.id, epoch: oldEpoch + 1, protocol: 'whip' })]);
    expect(h.webrtc.peersOpen).toBe(1);
    // The new epoch plays on after a discontinuity.
    await waitForPlaylist(
      `${stack.workerUrl}/live/${stream.id}/360p/index.m3u8`,
      (p) => {
        const d = p.segments.findIndex((s) => s.discontinuity);
        return d >= 0 && p.segments.length - d >= 2;
      },
      'two segments of the new epoch',
      PLAYLIST_WAIT_MS,
    );
  });

  it('DELETE ends the session: the peer connection closes and the stream ends (ENDLIST)', async () => {
    const { whip } = await health();
    const res = await fetch(`${whipUrl}/sessions/${whip[0]!.id}`, {
      method: 'DELETE',
      headers: { authorization: `Bearer ${stream.streamKey}` },
    });
    expect(res.status).toBe(200);
    await res.body?.cancel();
    const gone = await fetch(`${whipUrl}/sessions/${whip[0]!.id}`, {
      method: 'DELETE',
      headers: { authorization: `Bearer ${stream.streamKey}` },
    });
    expect(gone.status).toBe(404);
    await gone.body?.cancel();
    const ended = await waitForPlaylist(
      `${stack.workerUrl}/live/${stream.id}/360p/index.m3u8`,
      (p) => p.endList === true,
      'ENDLIST',
      30_000,
    );
    expect(ended.endList).toBe(true);
    const h = await health();
    expect(h.whip).toEqual([]);
    expect(h.sessions).toEqual([]);
    expect(h.webrtc.peersOpen).toBe(0);
  });

  it('SIGTERM: the node closes the publisher peer connection, finishes the stream and exits 0', async () => {
    const page = await newPublisherPage();
    const result = (await page.evaluate(
      `whipPublish(${JSON.stringify(`${whipUrl}/${stream.id}`)}, ${JSON.stringify(stream.streamKey)})`,
    )) as { status: number };
    expect(result.status).toBe(201);
    await waitInPage(
      page,
      () => (globalThis as unknown as { whipState(): string }).whipState() === 'connected',
      'the WHIP peer connection',
      20_000,
    );
    // Generous: on a loaded 2-core machine the new epoch's first segment can take a while.
    await waitForPlaylist(
      `${stack.workerUrl}/live/${stream.id}/360p/index.m3u8`,
      (p) => !p.endList && p.segments.length > 0,
      'the stream live again',
      90_000,
    );
    const node = stack.transcoder;
    const exit = new Promise<number | null>((resolve) => node.once('exit', (code) => resolve(code)));
    node.kill('SIGTERM');
    expect(await exit).toBe(0);
    // The browser learns it from the DTLS close, not from a timeout.
    const state = await waitInPage(
      page,
      () => {
        const s = (globalThis as unknown as { whipState(): string }).whipState();
        return s !== 'connected' ? s : null;
      },
      'the browser to see the connection closed',
      10_000,
    );
    expect(['closed', 'disconnected', 'failed']).toContain(state);
    const ended = await waitForPlaylist(
      `${stack.workerUrl}/live/${stream.id}/360p/index.m3u8`,
      (p) => p.endList === true,
      'ENDLIST',
      30_000,
    );
    expect(ended.endList).toBe(true);
    await page.close();
  });
});
