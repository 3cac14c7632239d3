// Sub-second playback (WHEP) on the real stack: wrangler dev, the media node with WHEP_MAX_VIEWERS=1,
// ffmpeg publishing a test pattern and a 1 kHz tone over RTMP to a signed stream with real time on,
// and headless Chromium watch pages in real-time mode. The edge checks the playback token and
// sends the page to the node (307 + ticket); the page plays WebRTC (frames decoded, its clock
// advancing, the tone's energy in the received audio). A missing or bad token, or a forged ticket
// at the node, is refused before any peer connection exists (the node's counters); a second page
// finds the node full (503, Retry-After) and plays LL-HLS by itself.
import type { ChildProcess } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { Page } from 'playwright-core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { mintWhepTicket } from '../../core/contracts/whep.ts';
import { startStack, startTestPublisher, stopChild, type CreatedStream, type Stack } from '../../scripts/local-stack.ts';
import { createLogger } from '../../transcoder-node/log.ts';
import { launchBrowser, waitInPage, type TestBrowser } from '../support/browser.ts';
import { scrape } from '../support/media-node.ts';
import { sampleValue } from '../support/prom-text.ts';

const log = createLogger({ service: 'e2e-whep' });
const SECRET = 'e2e-ingest-secret';
const LADDER = [
  { name: '360p', kind: 'video', width: 640, height: 360, videoBitrate: 700_000 },
  { name: 'audio', kind: 'audio', audioBitrate: 96_000 },
];

let dir: string;
let stack: Stack;
let stream: CreatedStream;
let token: string;
let publisher: ChildProcess;
let browser: TestBrowser;
let whepBase: string;

interface Health {
  whep: {
    viewers: Array<{ id: string; state: string; videoPackets: number; audioPackets: number; firstKeyframeMs: number | null }>;
    maxViewers: number;
    counters: { offers: number; unauthorized: number; full: number; accepted: number };
  };
  webrtc: { peersCreated: number; peersOpen: number };
}
const health = async () => (await (await fetch(stack.transcoderHealthUrl)).json()) as Health;
/** The node's WHEP series on /metrics (Prometheus text, parsed strictly). */
async function whepMetrics() {
  const m = await scrape(stack.transcoderHealthUrl);
  const v = (name: string, labels: Record<string, string> = {}) => sampleValue(m, `edgelive_whep_${name}`, labels) ?? Number.NaN;
  return {
    viewers: v('viewers'),
    capacity: v('capacity'),
    started: v('sessions_started_total'),
    refused: (reason: string) => v('refused_total', { reason }),
    packets: (kind: string) => v('forwarded_packets_total', { kind }),
    bytes: (kind: string) => v('forwarded_bytes_total', { kind }),
  };
}

type Status = { state: string; message: string | null; connectMs: number | null; resource: string | null };
type Hooks = { __edgelive?: { realtime?: { status(): Status }; snapshot(): { firstFrameMs: number | null; currentTime: number } } };

/** In the page: what the WebRTC session received (getStats) and the received audio's level (Web Audio). */
async function received(
  p: Page,
): Promise<{ framesDecoded: number; framesPresented: number; audioSamples: number; audioRms: number; currentTime: number; width: number }> {
  return p.evaluate(async () => {
    // The browser's types, as far as this probe uses them (the repository's tsconfig has no DOM).
    type Video = { currentTime: number; videoWidth: number; requestVideoFrameCallback(cb: () => void): number };
    type Stats = { forEach(cb: (s: { type: string; kind?: string; framesDecoded?: number; totalSamplesReceived?: number }) => void): void };
    type Session = { pc: { getStats(): Promise<Stats> }; stream: { getAudioTracks(): unknown[] } };
    type Node = { connect(n: Node): void };
    type Analyser = Node & { fftSize: number; getFloatTimeDomainData(b: Float32Array): void };
    type Ctx = { createAnalyser(): Analyser; createMediaStreamSource(s: unknown): Node; resume(): Promise<void>; close(): Promise<void> };
    const w = globalThis as unknown as {
      __edgelive: { page: { player: { video: Video } }; realtime: { session: Session | null } };
      __presented?: number;
      AudioContext: new () => Ctx;
      MediaStream: new (tracks: unknown[]) => unknown;
    };
    const video = w.__edgelive.page.player.video;
    const session = w.__edgelive.realtime.session!;
    if (w.__presented === undefined) {
      w.__presented = 0;
      const count = () => video.requestVideoFrameCallback(() => ((w.__presented! += 1), count()));
      count();
    }
    let framesDecoded = 0;
    let audioSamples = 0;
    (await session.pc.getStats()).forEach((s) => {
      if (s.type !== 'inbound-rtp') return;
      if (s.kind === 'video') framesDecoded = s.framesDecoded ?? 0;
      else audioSamples = s.totalSamplesReceived ?? 0;
    });
    // The received audio track through Web Audio: the publisher's tone has energy; silence has none.
    const ctx = new w.AudioContext();
    const analyser = ctx.createAnalyser();
    analyser.fftSize = 2048;
    ctx.createMediaStreamSource(new w.MediaStream(session.stream.getAudioTracks())).connect(analyser);
    await ctx.resume();
    // The loudest of ten 43 ms windows over a second: a loaded machine's audio thread may underrun
    // for a window or two, which is not silence from the sender.
    const buf = new Float32Array(analyser.fftSize);
    let audioRms = 0;
    for (let i = 0; i < 10; i++) {
      await new Promise((r) => setTimeout(r, 100));
      analyser.getFloatTimeDomainData(buf);
      let sum = 0;
      for (const x of buf) sum += x * x;
      audioRms = Math.max(audioRms, Math.sqrt(sum / buf.length));
    }
    await ctx.close();
    return {
      framesDecoded,
      framesPresented: w.__presented!,
      audioSamples,
      audioRms,
      currentTime: video.currentTime,
      width: video.videoWidth,
    };
  });
}

/** Waits until the page's <video> has played `seconds` more (a loaded machine may take a while to resume). */
async function playsOn(p: Page, seconds: number, what: string, timeoutMs = 30_000): Promise<void> {
  const now = () => p.evaluate(() => (globalThis as unknown as Required<Hooks>).__edgelive.snapshot().currentTime);
  const t0 = await now();
  const deadline = Date.now() + timeoutMs;
  let t = t0;
  while (t < t0 + seconds) {
    if (Date.now() > deadline) throw new Error(`${what}: currentTime went from ${t0} to ${t} in ${timeoutMs} ms`);
    await new Promise((r) => setTimeout(r, 250));
    t = await now();
  }
}

async function watchPage(query: string): Promise<Page & { errors: string[] }> {
  const page = await browser.newPage({ width: 1280, height: 720 });
  await page.goto(`${stack.workerUrl}/watch/${stream.id}?${query}`);
  return page;
}

beforeAll(async () => {
  dir = mkdtempSync(join(tmpdir(), 'edgelive-e2e-whep-'));
  stack = await startStack({
    persistDir: join(dir, 'state'),
    logDir: join(dir, 'logs'),
    adminToken: 'e2e-admin',
    ingestSecret: SECRET,
    transcoderEnv: { WHEP_MAX_VIEWERS: '1' },
    logger: log,
  });
  await stack.waitForRegistry([stack.nodes[0]!.nodeId]);
  whepBase = stack.nodes[0]!.whipUrl.replace(/\/whip$/, '/whep');
  stream = await stack.createStream({ title: 'Real time', ladder: LADDER, realtime: true, playback: { policy: 'signed' } });
  const minted = await fetch(`${stack.workerUrl}/api/streams/${stream.id}/playback-tokens`, {
    method: 'POST',
    headers: { authorization: `Bearer ${stack.adminToken}`, 'content-type': 'application/json' },
    body: '{}',
  });
  expect(minted.status).toBe(201);
  token = ((await minted.json()) as { token: string }).token;
  publisher = startTestPublisher({ rtmpUrl: stream.ingest.rtmp, width: 640, height: 360, logDir: join(dir, 'logs') });
  // Live with a few segments, so the watch page starts on a live window.
  const deadline = Date.now() + 60_000;
  for (;;) {
    const res = await fetch(`${stack.workerUrl}/live/${stream.id}/360p/index.m3u8?token=${token}`);
    const text = res.ok ? await res.text() : (await res.body?.cancel(), '');
    if ((text.match(/#EXTINF/g) ?? []).length >= 3) break;
    if (Date.now() > deadline) throw new Error('the stream did not start');
    await new Promise((r) => setTimeout(r, 300));
  }
  browser = await launchBrowser({ args: ['--allow-loopback-in-peer-connection'] });
});

afterAll(async () => {
  await browser?.close();
  await stopChild(publisher);
  await stack?.stop();
  if (dir && !process.env.KEEP_E2E) rmSync(dir, { recursive: true, force: true });
});

describe('WHEP playback end to end', () => {
  let first: Page & { errors: string[] };

  it('refuses a missing or bad playback token at the edge, and a forged ticket at the node, before any media path exists', async () => {
    const before = await health();
    const metricsBefore = await whepMetrics();
    const offer = 'v=0\r\n';
    const none = await fetch(`${stack.workerUrl}/live/${stream.id}/whep`, {
      method: 'POST',
      headers: { 'content-type': 'application/sdp' },
      body: offer,
      redirect: 'manual',
    });
    expect([none.status, ((await none.json()) as { error: { code: string } }).error.code]).toEqual([401, 'token_required']);
    const bad = await fetch(`${stack.workerUrl}/live/${stream.id}/whep?token=${token.slice(0, -6)}AAAAAA`, {
      method: 'POST',
      headers: { 'content-type': 'application/sdp' },
      body: offer,
      redirect: 'manual',
    });
    expect([bad.status, ((await bad.json()) as { error: { code: string } }).error.code]).toEqual([401, 'invalid_token']);
    // Straight to the node: a ticket not signed with the cluster secret, and none at all.
    const forged = await mintWhepTicket('not-the-cluster-secret', { sub: stream.id, exp: Math.floor(Date.now() / 1000) + 60 });
    const atNode = await fetch(`${whepBase}/${stream.id}?ticket=${forged}`, {
      method: 'POST',
      headers: { 'content-type': 'application/sdp' },
      body: offer,
    });
    expect([atNode.status, ((await atNode.json()) as { error: { code: string } }).error.code]).toEqual([401, 'invalid_ticket']);
    const bare = await fetch(`${whepBase}/${stream.id}`, { method: 'POST', headers: { 'content-type': 'application/sdp' }, body: offer });
    expect(bare.status).toBe(401);
    await bare.body?.cancel();
    const after = await health();
    expect(after.webrtc.peersCreated).toBe(before.webrtc.peersCreated);
    expect(after.whep.counters.unauthorized - before.whep.counters.unauthorized).toBe(2);
    expect(after.whep.viewers).toEqual([]);
    const m = await whepMetrics();
    expect(m.refused('ticket') - metricsBefore.refused('ticket')).toBe(2);
    expect([m.viewers, m.capacity, m.started, m.refused('capacity')]).toEqual([0, 1, 0, 0]);
  });

  it('a watch page in real-time mode plays the stream over WebRTC: frames decoded and presented, its clock advancing, the tone heard', async () => {
    first = await watchPage(`token=${token}&realtime=1`);
    const on = (await waitInPage(
      first,
      () => {
        const s = (globalThis as unknown as Hooks).__edgelive?.realtime?.status();
        // 'unavailable' is also the state before the stream's info arrives: wait for a verdict.
        return s && (s.state === 'on' || s.state === 'fallback' || s.message) ? s : null;
      },
      'real-time mode to switch on',
      60_000,
    )) as Status;
    expect(on, JSON.stringify(on)).toMatchObject({ state: 'on', message: null });
    // Sent there by the edge: the session resource is on the node.
    expect(on.resource).toMatch(new RegExp(`^${whepBase}/sessions/[A-Za-z0-9_-]{22}$`));
    const a = await received(first);
    await first.waitForTimeout(2000);
    const b = await received(first);
    expect(b.framesDecoded - a.framesDecoded, 'frames decoded in 2 s').toBeGreaterThan(20);
    expect(b.framesPresented - a.framesPresented, 'frames presented in 2 s').toBeGreaterThan(15);
    expect(b.currentTime - a.currentTime, 'currentTime advances').toBeGreaterThan(1.2);
    expect(b.audioSamples - a.audioSamples, 'audio samples in 2 s').toBeGreaterThan(48_000);
    expect(b.audioRms, 'the 1 kHz tone has energy').toBeGreaterThan(0.01);
    expect(b.width).toBe(640);
    // hls.js let go of the element; the page plays the WebRTC stream.
    expect(
      await first.evaluate(
        () => (globalThis as unknown as { __edgelive: { page: { player: { hls: unknown } } } }).__edgelive.page.player.hls === null,
      ),
    ).toBe(true);
    const h = await health();
    expect(h.whep.viewers).toEqual([expect.objectContaining({ state: 'connected' })]);
    expect(h.whep.viewers[0]!.videoPackets).toBeGreaterThan(50);
    expect(h.whep.viewers[0]!.firstKeyframeMs).toEqual(expect.any(Number));
    expect(h.webrtc.peersOpen).toBe(1);
    // The same on /metrics: one viewer now, the RTP it was sent counted by kind.
    const m = await whepMetrics();
    expect(m.viewers).toBe(1);
    expect(m.started).toBeGreaterThanOrEqual(1);
    expect(m.packets('video')).toBeGreaterThanOrEqual(h.whep.viewers[0]!.videoPackets);
    expect(m.packets('audio')).toBeGreaterThan(50);
    // An RTP packet is at least its 12-byte header and some payload; video ones are mostly near the MTU.
    expect(m.bytes('video')).toBeGreaterThan(m.packets('video') * 100);
    expect(m.bytes('audio')).toBeGreaterThan(m.packets('audio') * 12);
    expect(first.errors).toEqual([]);
  });

  it('past WHEP_MAX_VIEWERS the node answers 503 with Retry-After, and a second page plays LL-HLS by itself', async () => {
    const edge = await fetch(`${stack.workerUrl}/live/${stream.id}/whep?token=${token}`, {
      method: 'POST',
      headers: { 'content-type': 'application/sdp' },
      body: 'v=0\r\n',
    });
    // fetch followed the 307 to the node (the offer resent), which is full.
    expect(edge.url.startsWith(`${whepBase}/${stream.id}?ticket=`)).toBe(true);
    expect([edge.status, edge.headers.get('retry-after'), ((await edge.json()) as { error: { code: string } }).error.code]).toEqual([
      503,
      '10',
      'at_capacity',
    ]);
    const second = await watchPage(`token=${token}&realtime=1`);
    const fell = (await waitInPage(
      second,
      () => {
        const s = (globalThis as unknown as Hooks).__edgelive?.realtime?.status();
        return s && (s.state === 'on' || s.state === 'fallback' || s.message) ? s : null;
      },
      'the second page to give up real time',
      60_000,
    )) as Status;
    expect(fell.state).toBe('fallback');
    expect(fell.message).toMatch(/full/);
    expect(await second.locator('[data-testid="realtime"]').getAttribute('aria-pressed')).toBe('false');
    await waitInPage(
      second,
      () => (globalThis as unknown as Required<Hooks>).__edgelive.snapshot().firstFrameMs !== null,
      'LL-HLS to show a frame',
      30_000,
    );
    await playsOn(second, 1, 'LL-HLS plays on the second page');
    expect(
      await second.evaluate(
        () =>
          (globalThis as unknown as { __edgelive: { page: { player: { hls: unknown; video: { srcObject: unknown } } } } }).__edgelive.page
            .player.video.srcObject,
      ),
    ).toBeNull();
    expect((await health()).whep.counters.full).toBeGreaterThanOrEqual(2);
    expect((await whepMetrics()).refused('capacity')).toBeGreaterThanOrEqual(2);
    await second.close();
  });

  it('switching real time off hands the element back to LL-HLS and frees the viewer on the node', async () => {
    await first.locator('[data-testid="realtime"]').click();
    await waitInPage(first, () => (globalThis as unknown as Hooks).__edgelive?.realtime?.status().state === 'off', 'real time off');
    await waitInPage(
      first,
      () => (globalThis as unknown as { __edgelive: { page: { player: { hls: unknown } } } }).__edgelive.page.player.hls !== null,
      'hls.js back',
    );
    await playsOn(first, 1, 'LL-HLS plays again');
    const deadline = Date.now() + 10_000;
    let h = await health();
    while (h.whep.viewers.length > 0 && Date.now() < deadline) {
      await new Promise((r) => setTimeout(r, 200));
      h = await health();
    }
    expect(h.whep.viewers).toEqual([]);
    expect(h.webrtc.peersOpen).toBe(0);
    const m = await whepMetrics();
    expect(m.viewers).toBe(0);
    expect(m.started).toBeGreaterThanOrEqual(1);
    // What the ended viewer was sent stays counted.
    expect(m.packets('video')).toBeGreaterThan(50);
    await first.close();
  });
});
