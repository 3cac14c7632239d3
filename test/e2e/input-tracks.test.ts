// Publishers that do not send every kind of track the ladder has, on the real stack (wrangler dev,
// transcoder, ffmpeg): a video-only RTMP publisher (`-an`) and an audio-only SRT publisher on a
// ladder with video and audio rungs. The transcoder reads the input's tracks before it starts the
// ladder and leaves out the rungs it cannot feed; the multivariant playlist lists only what plays,
// and ffmpeg and hls.js (in Chromium, through the watch page) play it.
import { spawnSync, type ChildProcess } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { Page } from 'playwright-core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startStack, startTestPublisher, stopChild, type CreatedStream, type Stack } from '../../scripts/local-stack.ts';
import { createLogger } from '../../transcoder-node/log.ts';
import { launchBrowser, waitInPage, type TestBrowser } from '../support/browser.ts';
import { followPlaylist, parsePlaylist } from '../support/llhls-client.ts';

const log = createLogger({ service: 'e2e-input-tracks' });
const LADDER = [
  { name: '360p', kind: 'video', width: 640, height: 360, videoBitrate: 700_000 },
  { name: '240p', kind: 'video', width: 426, height: 240, videoBitrate: 300_000 },
  { name: 'audio', kind: 'audio', audioBitrate: 96_000 },
];

let dir: string;
let stack: Stack;
let publisher: ChildProcess | undefined;
let browser: TestBrowser | undefined;

async function text(url: string): Promise<string> {
  const res = await fetch(url);
  if (!res.ok) throw new Error(`${url}: ${res.status} ${await res.text()}`);
  return res.text();
}

async function waitForSegments(url: string, n: number, timeoutMs = 40_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const res = await fetch(url);
    const body = res.ok ? await res.text() : (await res.body?.cancel(), '');
    if (res.ok && parsePlaylist(body).segments.length >= n) return;
    if (Date.now() > deadline) throw new Error(`${url} did not reach ${n} segments`);
    await new Promise((r) => setTimeout(r, 300));
  }
}

/** ffmpeg as an independent player: decodes `seconds` of the multivariant URL, stderr must stay empty. */
function ffmpegPlays(url: string, map: string[], seconds = 4): void {
  const r = spawnSync(
    'ffmpeg',
    ['-hide_banner', '-loglevel', 'error', '-i', url, '-t', String(seconds), ...map.flatMap((m) => ['-map', m]), '-f', 'null', '-'],
    {
      encoding: 'utf8',
      timeout: 60_000,
    },
  );
  expect(r.stderr.trim()).toBe('');
  expect(r.status).toBe(0);
}

type Snap = { currentTime: number; readyState: number; errors: Array<{ fatal: boolean }>; renditions: string[] };
const snapshot = (p: Page): Promise<Snap> =>
  p.evaluate(() => (globalThis as unknown as { __edgelive: { snapshot(): Snap } }).__edgelive.snapshot());

/** hls.js on the watch page: playback time advances, no fatal player error, nothing thrown. */
async function watchPagePlays(streamId: string): Promise<Snap> {
  browser ??= await launchBrowser();
  const page = await browser.newPage();
  try {
    await page.goto(`${stack.workerUrl}/watch/${streamId}`);
    await waitInPage(
      page,
      () =>
        ((globalThis as unknown as { __edgelive?: { snapshot(): { currentTime: number } } }).__edgelive?.snapshot().currentTime ?? 0) > 0.5,
      'playback to start',
      30_000,
    );
    const a = await snapshot(page);
    await page.waitForTimeout(1500);
    const b = await snapshot(page);
    expect(b.currentTime - a.currentTime, 'currentTime advances').toBeGreaterThan(0.5);
    expect(b.errors.filter((e) => e.fatal)).toEqual([]);
    expect(page.errors.filter((e) => !/Failed to load resource/.test(e))).toEqual([]);
    return b;
  } finally {
    await page.close();
  }
}

beforeAll(async () => {
  dir = mkdtempSync(join(tmpdir(), 'edgelive-e2e-tracks-'));
  stack = await startStack({
    persistDir: join(dir, 'state'),
    logDir: join(dir, 'logs'),
    adminToken: 'e2e-admin',
    ingestSecret: 'e2e-ingest-secret',
    endGraceSeconds: 3,
    logger: log,
  });
});

afterAll(async () => {
  await browser?.close();
  await stopChild(publisher);
  await stack?.stop();
  if (dir && !process.env.KEEP_E2E) rmSync(dir, { recursive: true, force: true });
});

describe('a publisher without audio (ffmpeg -an over RTMP) on a ladder with an audio rung', () => {
  let stream: CreatedStream;
  beforeAll(async () => {
    stream = await stack.createStream({ title: 'no audio', ladder: LADDER });
    publisher = startTestPublisher({ rtmpUrl: stream.ingest.rtmp, width: 640, height: 360, audio: false, logDir: join(dir, 'logs') });
    await waitForSegments(`${stack.workerUrl}/live/${stream.id}/360p/index.m3u8`, 3);
  });
  afterAll(async () => {
    await stopChild(publisher);
    publisher = undefined;
  });

  it('plays video-only: the multivariant playlist has the video variants and no audio group', async () => {
    const mv = await text(stream.playback.hls);
    expect(mv).not.toContain('#EXT-X-MEDIA');
    expect(mv).not.toContain('AUDIO=');
    expect(mv).not.toContain('mp4a');
    expect(mv.match(/#EXT-X-STREAM-INF:.*CODECS="avc1\.[0-9a-f]{6}"/g)).toHaveLength(2);
    // The audio rung was left out of this session: it never had an init or a part.
    const audio = await fetch(`${stack.workerUrl}/live/${stream.id}/audio/index.m3u8`);
    expect(audio.status).toBe(404);
    await audio.body?.cancel();
  });

  it('its media playlists are valid LL-HLS, reporting only the other video rendition, every hinted part served', async () => {
    const { violations, hints } = await followPlaylist({
      url: `${stack.workerUrl}/live/${stream.id}/360p/index.m3u8`,
      updates: 12,
      otherRenditions: 1,
      fetchHints: true,
    });
    expect(violations).toEqual([]);
    expect(hints.filter((h) => h.status !== 200)).toEqual([]);
  });

  it('ffmpeg and hls.js play it', async () => {
    ffmpegPlays(stream.playback.hls, ['0:v:0']);
    const s = await watchPagePlays(stream.id);
    expect(s.renditions.sort()).toEqual(['240p', '360p']);
  });
});

describe('an audio-only publisher (SRT, MPEG-TS) on the same ladder', () => {
  let stream: CreatedStream;
  beforeAll(async () => {
    stream = await stack.createStream({ title: 'radio', ladder: LADDER });
    expect(stream.ingest.srt).toMatch(/^srt:\/\//);
    publisher = startTestPublisher({ rtmpUrl: stream.ingest.srt!, video: false, logDir: join(dir, 'logs') });
    await waitForSegments(`${stack.workerUrl}/live/${stream.id}/audio/index.m3u8`, 3);
  });
  afterAll(async () => {
    await stopChild(publisher);
    publisher = undefined;
  });

  it('plays audio-only: one audio variant, no video rendition', async () => {
    const mv = await text(stream.playback.hls);
    expect(mv.match(/#EXT-X-STREAM-INF:/g)).toHaveLength(1);
    expect(mv).toMatch(/#EXT-X-STREAM-INF:BANDWIDTH=\d+,AVERAGE-BANDWIDTH=\d+,CODECS="mp4a\.40\.2"\naudio\/index\.m3u8\n/);
    const video = await fetch(`${stack.workerUrl}/live/${stream.id}/360p/index.m3u8`);
    expect(video.status).toBe(404);
    await video.body?.cancel();
    const { violations } = await followPlaylist({
      url: `${stack.workerUrl}/live/${stream.id}/audio/index.m3u8`,
      updates: 8,
      otherRenditions: 0,
      fetchHints: true,
    });
    expect(violations).toEqual([]);
  });

  it('ffmpeg and hls.js play it', async () => {
    ffmpegPlays(stream.playback.hls, ['0:a:0']);
    await watchPagePlays(stream.id);
  });
});
