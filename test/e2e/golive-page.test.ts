// The Go-live page on the real stack (wrangler dev, media nodes, ffmpeg, headless Chromium with fake
// camera and microphone): a streamer's browser goes live over WHIP with a publish token minted by
// the CLI, and the stream plays in ffmpeg and in the watch page (hls.js) through LL-HLS; bad,
// expired and other streams' tokens are refused with no media path; the Worker's WHIP entry is a 307
// that an OBS-style client follows with its bearer; a takeover is respected, a killed node is
// failed over with a new epoch and nothing acknowledged lost; Stop ends the stream, which is then
// a recording that plays and can be clipped.
import { execFile, spawnSync, type ChildProcess } from 'node:child_process';
import { readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { promisify } from 'node:util';
import type { Page } from 'playwright-core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ROOT, startTestPublisher, stopChild, type CreatedStream, type Stack, type TranscoderNode } from '../../scripts/local-stack.ts';
import { createLogger } from '../../transcoder-node/log.ts';
import { parsePublishToken, publishTokenKey, signPublishToken } from '../../core/auth/publish-token.ts';
import { hashStreamKey } from '../../workers/catalog.ts';
import { sendonlyOffer, waitInPage, type TestBrowser } from '../support/browser.ts';
import { waitForPlaylist } from '../support/llhls-client.ts';
import { health as nodeHealth } from '../support/media-node.ts';
import { WEBRTC_LADDER, probeStreams, watchPageAdvance, WebrtcStack } from '../support/webrtc-stack.ts';

const exec = promisify(execFile);
const log = createLogger({ service: 'e2e-golive' });
const ADMIN = 'e2e-admin';
/**
 * Longer than a browser publisher's failover takes (the kill is noticed through ICE consent, about
 * 7 s in Chromium), so the failover continues the broadcast rather than starting a new one.
 */
const END_GRACE_SECONDS = 20;

let env: WebrtcStack;
let dir: string;
let stack: Stack;
let browser: TestBrowser;
let streamA: CreatedStream;
let streamB: CreatedStream;
/** The Go-live page of stream A that goes live and stays open across the tests below. */
let studio: Page & { errors: string[] };
let rtmpPublisher: ChildProcess | undefined;

interface Snapshot {
  state: string;
  epoch: number | null;
  nodeId: string | null;
  reconnects: number;
  startedAt: number | null;
  endedAt: number | null;
  error: { code: string; message: string } | null;
  hasVideo: boolean;
  hasAudio: boolean;
  videoSettings: { width?: number; height?: number } | null;
}
type Hooks = {
  __golive: { snapshot(): Snapshot; outbound(): Promise<{ codec: string | null; framesEncoded: number; encodings: number } | null> };
};

const health = (node: TranscoderNode = stack.nodes[0]!) => nodeHealth(node.healthUrl);
/** The node's WHIP counters (/metrics.json): `unauthorized` counts 401s. */
const whipCounters = async (node: TranscoderNode = stack.nodes[0]!) =>
  (
    (await (await fetch(node.healthUrl.replace(/\/health$/, '/metrics.json'))).json()) as {
      whip: { offers: number; refused: number; unauthorized: number };
    }
  ).whip;
/**
 * The ffmpeg processes under a media node's process (its ladders and thumbnails), read from /proc:
 * the media path a refused publisher must not open.
 */
function ffmpegUnder(node: TranscoderNode = stack.nodes[0]!): number[] {
  const procs = new Map<number, { ppid: number; comm: string }>();
  for (const entry of readdirSync('/proc')) {
    if (!/^\d+$/.test(entry)) continue;
    try {
      // pid (comm) state ppid …; comm may hold spaces and parentheses, so split at the last ')'.
      const stat = readFileSync(`/proc/${entry}/stat`, 'utf8');
      const close = stat.lastIndexOf(')');
      procs.set(Number(entry), { comm: stat.slice(stat.indexOf('(') + 1, close), ppid: Number(stat.slice(close + 2).split(' ')[1]) });
    } catch {
      // The process exited while we listed it.
    }
  }
  const under = (pid: number): boolean => {
    for (let p = procs.get(pid)?.ppid; p !== undefined && p > 1; p = procs.get(p)?.ppid) if (p === node.process.pid) return true;
    return false;
  };
  return [...procs].filter(([pid, p]) => p.comm === 'ffmpeg' && under(pid)).map(([pid]) => pid);
}
const snapshot = (page: Page) => page.evaluate(() => (globalThis as unknown as Hooks).__golive.snapshot());
const api = async <T>(method: string, path: string, body?: unknown) => {
  const res = await fetch(`${stack.workerUrl}/api${path}`, {
    method,
    headers: { authorization: `Bearer ${ADMIN}`, 'content-type': 'application/json' },
    body: body === undefined ? undefined : JSON.stringify(body),
  });
  return { status: res.status, body: (await res.json()) as T };
};

/** Polls the page's snapshot until `test` holds. */
async function waitForSnapshot(page: Page, test: (s: Snapshot) => boolean, what: string, timeoutMs = 30_000): Promise<Snapshot> {
  const deadline = Date.now() + timeoutMs;
  let last: Snapshot | null = null;
  for (;;) {
    last = await snapshot(page).catch(() => null);
    if (last && test(last)) return last;
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what} (last: ${JSON.stringify(last)})`);
    await new Promise((r) => setTimeout(r, 200));
  }
}

/** Opens a Go-live page and waits until its camera preview runs (or it shows a problem). */
async function openGoLive(url: string): Promise<Page & { errors: string[] }> {
  const page = await browser.newPage();
  await page.goto(url);
  await page.waitForFunction(
    () => {
      const g = (globalThis as unknown as Partial<Hooks>).__golive;
      const doc = (globalThis as unknown as { document: { querySelector(s: string): unknown } }).document;
      return !!doc.querySelector('[data-testid="golive-problem"]') || (g?.snapshot().hasVideo && g.snapshot().hasAudio);
    },
    undefined,
    { timeout: 30_000 },
  );
  return page;
}

/** The CLI as a process, with the stack's URL and admin token. */
async function cli(args: string[]): Promise<{ code: number; stdout: string; stderr: string }> {
  try {
    const { stdout, stderr } = await exec(join(ROOT, 'node_modules', '.bin', 'node'), [join(ROOT, 'bin', 'edgelive.mjs'), ...args], {
      cwd: dir,
      env: { ...process.env, EDGELIVE_URL: stack.workerUrl, EDGELIVE_ADMIN_TOKEN: ADMIN },
      timeout: 60_000,
    });
    return { code: 0, stdout, stderr };
  } catch (err) {
    const e = err as { code?: number; stdout?: string; stderr?: string };
    return { code: e.code ?? 1, stdout: e.stdout ?? '', stderr: e.stderr ?? '' };
  }
}

const playlistUrl = (s: CreatedStream, rendition = '360p') => `${stack.workerUrl}/live/${s.id}/${rendition}/index.m3u8`;
/** A segment URI's epoch and MSN (`…{epoch}/{msn}.m4s`). */
const epochOf = (uri: string) => Number(/(\d+)\/\d+\.m4s/.exec(uri)?.[1]);
const msnOf = (uri: string) => Number(/(\d+)\.m4s/.exec(uri)?.[1]);

beforeAll(async () => {
  env = new WebrtcStack({
    name: 'golive',
    logger: log,
    adminToken: ADMIN,
    endGraceSeconds: END_GRACE_SECONDS,
    // The subject here is the page, not overload: on a shared 2-core machine a ladder can run below
    // real time for minutes, and the node would then refuse the very publishers these tests are
    // about (503 node_unavailable). Overload handling has its own test (overload-shed.test.ts).
    transcoderEnv: { OVERLOAD_MAX_LAG_SECONDS: '3600', THUMBNAIL_INTERVAL_SECONDS: '0' },
  });
  await env.start();
  ({ dir, stack, browser } = env);
  // Publishers take Studio A over from each other below while one is live: the `allow` takeover policy.
  streamA = await stack.createStream({ title: 'Studio A', ladder: WEBRTC_LADDER, takeover: 'allow' });
  streamB = await stack.createStream({ title: 'Studio B', ladder: WEBRTC_LADDER });
});

afterAll(async () => {
  await stopChild(rtmpPublisher);
  await env?.stop();
});

describe('the Worker routes WHIP', () => {
  it('POST /whip/{id} is a 307 to the nearest node; a client that keeps its bearer on the redirect (OBS, curl --location-trusted) reaches the node with it, a browser loses it', async () => {
    const minted = await api<{ token: string; whip: string }>('POST', `/streams/${streamA.id}/publish-tokens`, { expiresIn: 600 });
    expect(minted.status).toBe(201);
    expect(minted.body.whip).toBe(`${stack.workerUrl}/whip/${streamA.id}`);
    const res = await fetch(minted.body.whip, {
      method: 'POST',
      redirect: 'manual',
      headers: { 'content-type': 'application/sdp', authorization: `Bearer ${minted.body.token}` },
      body: 'v=0\r\n',
    });
    expect(res.status).toBe(307);
    expect(res.headers.get('location')).toBe(`${stack.nodes[0]!.whipUrl}/${streamA.id}`);
    const before = await health();
    // An offer the node cannot answer: refused (400) after the bearer check and before the key
    // check, so this proves the bearer arrived and takes no lease. Without it the node says 401.
    const curl = (...flags: string[]) =>
      spawnSync(
        'curl',
        [
          '-s',
          ...flags,
          '-X',
          'POST',
          '-H',
          'content-type: application/sdp',
          '-H',
          `authorization: Bearer ${minted.body.token}`,
          '--data-binary',
          'v=0',
          '-w',
          '\n%{http_code}',
          minted.body.whip,
        ],
        { encoding: 'utf8' },
      )
        .stdout.trim()
        .split('\n');
    const trusted = curl('--location-trusted');
    expect(trusted.at(-1)).toBe('400');
    expect(JSON.parse(trusted[0]!).error.code).not.toBe('unauthorized');
    // A page of the Worker's origin following the same redirect: fetch drops Authorization on the
    // cross-origin hop, so the node refuses it. (Hence the Go-live page asks for the node first.)
    const page = await browser.newPage();
    await page.goto(`${stack.workerUrl}/health`);
    const inBrowser = await page.evaluate(
      async ([url, token]) => {
        try {
          const r = await fetch(url!, {
            method: 'POST',
            headers: { 'content-type': 'application/sdp', authorization: `Bearer ${token}` },
            body: 'v=0\r\n',
          });
          return { status: r.status, redirected: r.redirected, body: await r.text() };
        } catch (err) {
          return { error: String(err) };
        }
      },
      [minted.body.whip, minted.body.token],
    );
    await page.close();
    expect(inBrowser, JSON.stringify(inBrowser)).toMatchObject({ status: 401, redirected: true });
    const after = await health();
    expect(after.webrtc.peersCreated).toBe(before.webrtc.peersCreated);
    expect((await api<{ status: string }>('GET', `/streams/${streamA.id}`)).body.status).toBe('idle');
  });
});

describe('refused publish tokens open no media path', () => {
  it('an expired and a tampered token: the page says why, the node creates no peer connection, the stream stays idle', async () => {
    const key = await publishTokenKey(ADMIN, await hashStreamKey(streamA.streamKey));
    const expired = await signPublishToken(
      { streamId: streamA.id, expiresAt: Math.floor(Date.now() / 1000) - 5, nonce: 'expiredexpiredex', use: 'reusable' },
      key,
    );
    const good = (await api<{ token: string }>('POST', `/streams/${streamA.id}/publish-tokens`, {})).body.token;
    const tampered = good.slice(0, -1) + (good.endsWith('A') ? 'B' : 'A');
    const before = await health();
    const countedBefore = await whipCounters();
    for (const [token, code] of [
      [expired, 'publish_token_expired'],
      [tampered, 'invalid_publish_token'],
    ] as const) {
      const page = await openGoLive(`${stack.workerUrl}/golive/${streamA.id}#token=${token}`);
      await page.getByTestId('golive-button').click();
      const s = await waitForSnapshot(page, (x) => x.state === 'refused', `the page to be refused (${code})`);
      expect(s.error?.code).toBe(code);
      expect(await page.getByTestId('golive-message').getAttribute('data-code')).toBe(code);
      expect(await page.getByTestId('golive-state').getAttribute('data-publish')).toBe('refused');
      expect(ffmpegUnder(), 'ffmpeg under the node right after the refusal').toEqual([]);
      await page.close();
    }
    // The node was asked and said 401 to each, but nothing was allocated.
    expect((await whipCounters()).unauthorized - countedBefore.unauthorized).toBe(2);
    const after = await health();
    expect(after.webrtc.peersCreated).toBe(before.webrtc.peersCreated);
    expect(after.whip).toEqual([]);
    expect(after.sessions).toEqual([]);
    expect((await api<{ status: string }>('GET', `/streams/${streamA.id}`)).body.status).toBe('idle');
  });

  it("a bad stream key (or none) is refused with 401 by the node, directly and through the Worker's 307, before any peer connection, lease or ffmpeg", async () => {
    const offer = await sendonlyOffer(browser);
    const before = await health();
    const countedBefore = await whipCounters();
    const post = (url: string, bearer: string | null) =>
      fetch(url, {
        method: 'POST',
        headers: { 'content-type': 'application/sdp', ...(bearer === null ? {} : { authorization: `Bearer ${bearer}` }) },
        body: offer,
      });
    const wrongKey = streamA.streamKey.slice(0, -2) + (streamA.streamKey.endsWith('xx') ? 'yy' : 'xx');
    for (const [bearer, code] of [
      [wrongKey, 'unauthorized'],
      ['sk_not-a-key-at-all', 'unauthorized'],
      [null, 'unauthorized'],
    ] as const) {
      const res = await post(`${stack.nodes[0]!.whipUrl}/${streamA.id}`, bearer);
      expect(res.status, String(bearer)).toBe(401);
      expect(res.headers.get('www-authenticate')).toMatch(/^Bearer/);
      expect(res.headers.get('location')).toBeNull();
      expect(((await res.json()) as { error: { code: string } }).error.code).toBe(code);
      expect(ffmpegUnder(), 'ffmpeg under the node right after the refusal').toEqual([]);
    }
    // An OBS-style client through the Worker's entry (curl keeps its bearer across the 307).
    const through = spawnSync(
      'curl',
      [
        '-s',
        '--location-trusted',
        '-o',
        '/dev/null',
        '-w',
        '%{http_code} %{num_redirects}',
        '-X',
        'POST',
        '-H',
        'content-type: application/sdp',
        '-H',
        `authorization: Bearer ${wrongKey}`,
        '--data-binary',
        offer,
        `${stack.workerUrl}/whip/${streamA.id}`,
      ],
      { encoding: 'utf8' },
    );
    expect(through.stdout).toBe('401 1');
    // Three direct refusals and the one through the Worker.
    expect((await whipCounters()).unauthorized - countedBefore.unauthorized).toBe(4);
    const after = await health();
    expect(after.webrtc.peersCreated).toBe(before.webrtc.peersCreated);
    expect(after.whip).toEqual([]);
    expect(after.sessions).toEqual([]);
    expect(ffmpegUnder()).toEqual([]);
    // The stream's key was never taken: no lease, so no epoch was spent and the stream is idle.
    expect((await api<{ status: string }>('GET', `/streams/${streamA.id}`)).body.status).toBe('idle');
  });

  it('a token for stream A cannot publish stream B: the page refuses the link; the node refuses it (401) before any lease', async () => {
    const tokenA = (await api<{ token: string }>('POST', `/streams/${streamA.id}/publish-tokens`, {})).body.token;
    const page = await openGoLive(`${stack.workerUrl}/golive/${streamB.id}#token=${tokenA}`);
    expect(await page.getByTestId('golive-problem').getAttribute('data-code')).toBe('wrong-stream');
    await page.close();
    const offer = await sendonlyOffer(browser);
    const before = await health();
    const res = await fetch(`${stack.nodes[0]!.whipUrl}/${streamB.id}`, {
      method: 'POST',
      headers: { 'content-type': 'application/sdp', authorization: `Bearer ${tokenA}` },
      body: offer,
    });
    expect(res.status).toBe(401);
    expect(((await res.json()) as { error: { code: string } }).error.code).toBe('token_wrong_stream');
    expect((await health()).webrtc.peersCreated).toBe(before.webrtc.peersCreated);
    for (const s of [streamA, streamB]) expect((await api<{ status: string }>('GET', `/streams/${s.id}`)).body.status).toBe('idle');
    expect((await fetch(playlistUrl(streamB))).status).toBe(404);
  });
});

describe('going live from the browser', () => {
  let golive: string;

  it('the Go-live page publishes with a token minted by the CLI; ffmpeg and the watch page (hls.js) play the LL-HLS stream, H.264 and AAC', async () => {
    const testStart = Date.now();
    const step = (what: string) => log.info('step', { what, atMs: Date.now() - testStart });
    const minted = await cli(['streams', 'publish-token', streamA.id, '--use', 'session', '--ttl', '3600', '--json']);
    step('minted with the CLI');
    expect(minted.code, minted.stderr).toBe(0);
    const out = JSON.parse(minted.stdout) as { token: string; golive: string; use: string };
    expect(out.use).toBe('session');
    expect(out.golive).toBe(`${stack.workerUrl}/golive/${streamA.id}#token=${out.token}`);
    expect(out.golive).not.toContain(streamA.streamKey);
    golive = out.golive;

    studio = await openGoLive(golive);
    expect(await studio.getByTestId('golive-state').getAttribute('data-publish')).toBe('idle');
    expect(await studio.getByTestId('viewer-link').inputValue()).toBe(streamA.playback.watch);
    await studio.getByTestId('quality').selectOption('360p');
    await waitForSnapshot(studio, (s) => s.videoSettings?.height === 360, 'the camera at 360p');
    await studio.getByTestId('golive-button').click();
    const live = await waitForSnapshot(studio, (s) => s.state === 'live' && s.epoch !== null, 'the page to go live', 30_000);
    step('live');
    expect(live).toMatchObject({ nodeId: stack.nodes[0]!.nodeId, reconnects: 0, epoch: 1 });
    expect(await studio.getByTestId('golive-button').textContent()).toBe('Stop');
    // H.264 negotiated, one encoding (no simulcast).
    const sent = await waitInPage(
      studio,
      async () => {
        const o = await (globalThis as unknown as Hooks).__golive.outbound();
        return o && o.framesEncoded > 30 ? o : null;
      },
      'frames sent',
      20_000,
    );
    expect(sent).toMatchObject({ codec: 'video/H264', encodings: 1 });

    const pl = await waitForPlaylist(playlistUrl(streamA), (p) => p.segments.length >= 3, '3 video segments');
    expect(pl.partInf?.partTarget).toBe(0.2);
    await waitForPlaylist(playlistUrl(streamA, 'audio'), (p) => p.segments.length >= 3, '3 audio segments');
    step('3 segments of each rendition');
    expect(probeStreams(streamA.playback.hls)).toEqual(
      expect.arrayContaining([
        { codec_type: 'video', codec_name: 'h264' },
        { codec_type: 'audio', codec_name: 'aac' },
      ]),
    );
    // ffmpeg decodes 4 s of both from the first listed segment (at the live edge its HLS demuxer
    // starts each playlist 3 segments from its own end, which can put audio a segment after video).
    // framecrc writes one line per decoded frame: `stream, dts, pts, duration, size, crc`.
    const play = spawnSync(
      'ffmpeg',
      [
        '-hide_banner',
        '-loglevel',
        'error',
        '-live_start_index',
        '0',
        '-i',
        streamA.playback.hls,
        '-t',
        '4',
        '-map',
        '0:v:0',
        '-map',
        '0:a:0',
        '-f',
        'framecrc',
        '-',
      ],
      { encoding: 'utf8', timeout: 60_000 },
    );
    expect(play.stderr.trim()).toBe('');
    expect(play.status).toBe(0);
    const decoded = (stream: number) => {
      const tb = /^#tb (\d+): (\d+)\/(\d+)$/gm;
      let seconds = 0;
      for (const m of play.stdout.matchAll(tb)) if (Number(m[1]) === stream) seconds = Number(m[2]) / Number(m[3]);
      const frames = play.stdout
        .split('\n')
        .filter((l) => l.startsWith(`${stream},`))
        .map((l) => l.split(',').map((x) => Number(x.trim())));
      const span = frames.length === 0 ? 0 : (frames.at(-1)![2]! + frames.at(-1)![3]! - frames[0]![2]!) * seconds;
      return { frames: frames.length, seconds: Math.round(span * 1000) / 1000 };
    };
    const [video, audio] = [decoded(0), decoded(1)];
    log.info('ffmpeg decoded the LL-HLS stream', { video, audio });
    // 4 s of the ladder's 30 fps and of 1024-sample AAC frames at 48 kHz (about 188).
    expect(video.frames).toBeGreaterThanOrEqual(100);
    expect(video.seconds).toBeGreaterThanOrEqual(3.5);
    expect(audio.frames).toBeGreaterThanOrEqual(160);
    expect(audio.seconds).toBeGreaterThanOrEqual(3.5);

    step('ffprobe and ffmpeg done');
    expect(await watchPageAdvance(browser, streamA.playback.watch, 1, 15_000), 'currentTime advances').toBeGreaterThanOrEqual(1);
    step('hls.js played 1 s');

    expect(await studio.getByTestId('golive-elapsed').textContent()).toMatch(/^● \d:\d\d$/);
    expect(await studio.getByTestId('golive-state').textContent()).toBe('Live');
    const h = await health();
    expect(h.sessions).toEqual([expect.objectContaining({ streamId: streamA.id, protocol: 'whip', epoch: 1 })]);
    expect(studio.errors).toEqual([]);
  });

  it('the same session-bound link opened in another tab is refused there; the first tab stays live', async () => {
    const before = await health();
    const other = await openGoLive(golive);
    await other.getByTestId('golive-button').click();
    const s = await waitForSnapshot(other, (x) => x.state === 'refused', 'the second tab to be refused');
    expect(s.error?.code).toBe('publish_token_session');
    await other.close();
    const after = await health();
    expect(after.webrtc.peersCreated).toBe(before.webrtc.peersCreated);
    expect(after.sessions).toEqual([expect.objectContaining({ streamId: streamA.id, protocol: 'whip', epoch: 1 })]);
    expect((await snapshot(studio)).state).toBe('live');
  });

  it('another publisher (RTMP, the stream key) takes the stream over: the page stops without taking it back; Go live again takes it over with a new epoch', async () => {
    rtmpPublisher = startTestPublisher({ rtmpUrl: streamA.ingest.rtmp, width: 640, height: 360, fps: 30, logDir: join(dir, 'logs') });
    const taken = await waitForSnapshot(studio, (s) => s.state === 'taken-over', 'the page to see the takeover', 30_000);
    expect(taken.error?.code).toBe('taken_over');
    // It does not come back: the RTMP publisher keeps the stream.
    await new Promise((r) => setTimeout(r, 4000));
    expect((await snapshot(studio)).state).toBe('taken-over');
    const h = await health();
    expect(h.sessions).toEqual([expect.objectContaining({ streamId: streamA.id, protocol: 'rtmp', epoch: 2 })]);
    expect(h.whip).toEqual([]);
    await stopChild(rtmpPublisher);
    rtmpPublisher = undefined;
    expect(await studio.getByTestId('golive-button').textContent()).toBe('Go live again');
    await studio.getByTestId('golive-button').click();
    const back = await waitForSnapshot(studio, (s) => s.state === 'live' && s.epoch !== null && s.epoch > 2, 'the page live again', 30_000);
    expect(back.reconnects).toBe(0);
    await waitForPlaylist(
      playlistUrl(streamA),
      (p) => p.segments.length >= 2 && p.segments.slice(-2).every((seg) => epochOf(seg.uri) === back.epoch),
      'segments of the new epoch',
    );
  });

  it('failover: the node the page publishes to is killed; the page publishes again to another node under a new epoch, and nothing acknowledged is lost', async () => {
    const second = await stack.startTranscoder({ nodeId: 'golive-b' });
    await stack.waitForRegistry([stack.nodes[0]!.nodeId, 'golive-b']);
    const before = await snapshot(studio);
    const listed = await waitForPlaylist(
      playlistUrl(streamA),
      (p) => p.segments.filter((s) => epochOf(s.uri) === before.epoch).length >= 2,
      'two segments of the current epoch',
    );
    const killedAt = Date.now();
    stack.nodes[0]!.process.kill('SIGKILL');
    const after = await waitForSnapshot(
      studio,
      (s) => s.state === 'live' && s.nodeId === 'golive-b' && s.epoch !== null && s.epoch > before.epoch!,
      'the page live on the other node',
      90_000,
    );
    log.info('failover: the page is live on the other node', { afterKillMs: Date.now() - killedAt, epoch: after.epoch });
    expect(after.reconnects).toBeGreaterThanOrEqual(1);
    expect(after.startedAt).toBe(before.startedAt);
    const pl = await waitForPlaylist(
      playlistUrl(streamA),
      (p) => p.segments.filter((s) => epochOf(s.uri) === after.epoch).length >= 2,
      'two segments from the other node',
      60_000,
    );
    // Every segment listed before the kill is still listed, under the same URI and MSN; the new
    // epoch follows after a discontinuity with higher MSNs.
    const uris = pl.segments.map((s) => s.uri);
    for (const s of listed.segments) expect(uris).toContain(s.uri);
    const firstNew = pl.segments.findIndex((s) => epochOf(s.uri) === after.epoch);
    expect(pl.segments[firstNew]!.discontinuity).toBe(true);
    expect(msnOf(pl.segments[firstNew]!.uri)).toBeGreaterThan(Math.max(...listed.segments.map((s) => msnOf(s.uri))));
    expect((await health(second)).sessions).toEqual([
      expect.objectContaining({ streamId: streamA.id, protocol: 'whip', epoch: after.epoch }),
    ]);
  });

  it('Stop ends the stream (DELETE on the WHIP resource): ENDLIST, then a recording that plays and can be clipped', async () => {
    const second = stack.nodes.find((n) => n.nodeId === 'golive-b')!;
    await studio.getByTestId('golive-button').click();
    const ended = await waitForSnapshot(studio, (s) => s.state === 'ended', 'the page to end');
    expect(ended.endedAt).not.toBeNull();
    const frozen = await studio.getByTestId('golive-elapsed').textContent();
    expect(frozen).toMatch(/^\d+:\d\d$/);
    await waitForPlaylist(playlistUrl(streamA), (p) => p.endList === true, 'ENDLIST', (END_GRACE_SECONDS + 30) * 1000);
    const h = await health(second);
    expect(h.whip).toEqual([]);
    expect(h.sessions).toEqual([]);
    expect(await studio.getByTestId('golive-elapsed').textContent()).toBe(frozen);

    const recording = await (async () => {
      const deadline = Date.now() + 30_000;
      for (;;) {
        const r = await api<{
          recordings: Array<{ id: string; status: string; duration: number; discontinuities: number; playback: { hls: string } | null }>;
        }>('GET', `/streams/${streamA.id}/recordings`);
        const ready = r.body.recordings.find((x) => x.status === 'ready');
        if (ready) return ready;
        if (Date.now() > deadline) throw new Error(`no ready recording: ${JSON.stringify(r.body)}`);
        await new Promise((res) => setTimeout(res, 500));
      }
    })();
    expect(recording.duration).toBeGreaterThan(5);
    const vod = spawnSync('ffmpeg', ['-hide_banner', '-loglevel', 'error', '-i', recording.playback!.hls, '-t', '2', '-f', 'null', '-'], {
      encoding: 'utf8',
      timeout: 60_000,
    });
    expect(vod.status, vod.stderr).toBe(0);

    const clip = await api<{ id: string; status: string; duration: number; playback: { hls: string } }>(
      'POST',
      `/streams/${streamA.id}/clips`,
      { start: 4, end: 1, title: 'from the browser' },
    );
    expect(clip.status).toBe(201);
    expect(clip.body.status).toBe('ready');
    // The clip is cut from what the page managed to send: a loaded machine's encoder gave 1.6 s once.
    expect(clip.body.duration).toBeGreaterThan(1);
    expect(probeStreams(clip.body.playback.hls)).toEqual(
      expect.arrayContaining([
        { codec_type: 'video', codec_name: 'h264' },
        { codec_type: 'audio', codec_name: 'aac' },
      ]),
    );
    // The token still names the stream it was minted for; nothing of it ever held the key.
    expect(parsePublishToken(decodeURIComponent(golive.split('#token=')[1]!))?.streamId).toBe(streamA.id);
  });
});
