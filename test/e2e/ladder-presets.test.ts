// Ladders on the real stack (wrangler dev, a media node, ffmpeg publishing):
// - an H.265 rung end to end: the multivariant playlist lists it as `hvc1` beside its H.264
//   fallback, ffmpeg decodes the HEVC rendition's init segment and segments as listed in its
//   LL-HLS playlist, and the watch page
//   in Chromium (whose MSE cannot decode HEVC here) plays H.264 and never offers the HEVC rung;
// - the automatic ladder: a 1920x1080 SRT publisher (its size read from the SPS in MPEG-TS) gets
//   the 1080p preset, and only its rungs are listed.
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startStack, startTestPublisher, stopChild, type CreatedStream, type Stack } from '../../scripts/local-stack.ts';
import { createLogger } from '../../transcoder-node/log.ts';
import { launchBrowser, waitInPage, type TestBrowser } from '../support/browser.ts';
import { until } from '../support/media-node.ts';

const log = createLogger({ service: 'e2e-presets' });
const HEVC_LADDER = [
  { name: '360p', kind: 'video', width: 640, height: 360, videoBitrate: 600_000, codec: 'h264' },
  { name: 'hevc360', kind: 'video', width: 640, height: 360, videoBitrate: 450_000, codec: 'h265' },
  { name: 'audio', kind: 'audio', audioBitrate: 64_000 },
];

let dir: string;
let stack: Stack;
let browser: TestBrowser | undefined;
const publishers: ChildProcess[] = [];

/** The multivariant playlist's variants: URI, CODECS, RESOLUTION. */
async function variants(streamId: string): Promise<Array<{ uri: string; codecs: string; resolution: string }>> {
  const res = await fetch(`${stack.workerUrl}/live/${streamId}/index.m3u8`);
  if (!res.ok) return [];
  const lines = (await res.text()).split('\n');
  const out: Array<{ uri: string; codecs: string; resolution: string }> = [];
  lines.forEach((line, i) => {
    if (!line.startsWith('#EXT-X-STREAM-INF:')) return;
    out.push({
      uri: lines[i + 1]!,
      codecs: /CODECS="([^"]+)"/.exec(line)?.[1] ?? '',
      resolution: /RESOLUTION=(\d+x\d+)/.exec(line)?.[1] ?? '',
    });
  });
  return out;
}

beforeAll(async () => {
  dir = mkdtempSync(join(tmpdir(), 'edgelive-e2e-presets-'));
  // A long grace: the HEVC ladder's first init segment (libx265 starting) can take 10 s on the
  // shared machine, and a lease without a push for the grace period ends the stream.
  stack = await startStack({
    persistDir: join(dir, 'state'),
    logDir: join(dir, 'logs'),
    adminToken: 'e2e-admin',
    ingestSecret: 'e2e-ingest-secret',
    endGraceSeconds: 20,
    logger: log,
  });
}, 300_000);

afterAll(async () => {
  await browser?.close();
  for (const p of publishers) await stopChild(p);
  await stack?.stop();
  if (dir && !process.env.KEEP_E2E) rmSync(dir, { recursive: true, force: true });
});

describe('an H.265 rung with an H.264 fallback', () => {
  let stream: CreatedStream;
  let publisher: ChildProcess;
  // The next stream gets the machine to itself.
  afterAll(() => stopChild(publisher));

  beforeAll(async () => {
    stream = await stack.createStream({ title: 'hevc', ladder: HEVC_LADDER });
    publisher = startTestPublisher({ rtmpUrl: stream.ingest.rtmp, width: 640, height: 360, logDir: join(dir, 'logs') });
    publishers.push(publisher);
    await until('both video variants', async () => ((await variants(stream.id)).length >= 2 ? true : null), 90_000);
  }, 180_000);

  it('the multivariant playlist lists hvc1 beside avc1, each with the AAC audio', async () => {
    const v = await variants(stream.id);
    const hevc = v.find((x) => x.uri.startsWith('hevc360/'));
    const avc = v.find((x) => x.uri.startsWith('360p/'));
    expect(hevc?.codecs).toMatch(/^hvc1\.1\.6\.L\d+\.[0-9A-F]+,mp4a\.40\.2$/);
    expect(avc?.codecs).toMatch(/^avc1\.[0-9a-f]{6},mp4a\.40\.2$/);
    expect([hevc?.resolution, avc?.resolution]).toEqual(['640x360', '640x360']);
  });

  it('ffmpeg decodes the HEVC rendition as a player fetches it: its init segment and segments from the live playlist', async () => {
    const base = `${stack.workerUrl}/live/${stream.id}/hevc360/`;
    // The lines that are not tags are whole segments (parts are listed in EXT-X-PART tags).
    const segmentsOf = (text: string) => text.split('\n').filter((l) => l.trim() !== '' && !l.startsWith('#'));
    const playlist = await until(
      'three segments',
      async () => {
        const text = await (await fetch(`${base}index.m3u8`)).text();
        return segmentsOf(text).length >= 3 ? text : null;
      },
      60_000,
    );
    const map = /#EXT-X-MAP:URI="([^"]+)"/.exec(playlist)![1]!;
    const segments = segmentsOf(playlist).slice(-3);
    const bytes = Buffer.concat(
      await Promise.all([map, ...segments].map(async (u) => Buffer.from(await (await fetch(new URL(u, base))).arrayBuffer()))),
    );
    // framecrc decodes every frame (a checksum of each picture).
    const child = spawn('ffmpeg', ['-hide_banner', '-loglevel', 'error', '-i', 'pipe:0', '-map', '0:v:0', '-f', 'framecrc', '-'], {
      stdio: ['pipe', 'pipe', 'pipe'],
    });
    let out = '';
    let err = '';
    child.stdout.on('data', (b: Buffer) => (out += b));
    child.stderr.on('data', (b: Buffer) => (err += b));
    child.stdin.end(bytes);
    const code = await new Promise<number | null>((resolve) => child.once('close', resolve));
    expect(code, err).toBe(0);
    expect(err).toBe('');
    expect(out).toMatch(/#dimensions 0: 640x360/);
    // Three 1 s segments at 30 fps, every frame decoded.
    expect(out.split('\n').filter((l) => /^0,/.test(l)).length).toBeGreaterThanOrEqual(85);
    const probe = spawnSync('ffprobe', ['-v', 'error', '-show_entries', 'stream=codec_name,codec_tag_string', '-of', 'csv=p=0', '-'], {
      input: bytes,
      encoding: 'utf8',
    });
    expect(probe.stdout.trim()).toBe('hevc,hvc1');
  }, 120_000);

  it('a player that cannot decode HEVC (Chromium here) plays H.264 and never offers the HEVC rung', async () => {
    browser = await launchBrowser();
    const page = await browser.newPage();
    expect(
      await page.evaluate(
        (t) => (globalThis as unknown as { MediaSource: { isTypeSupported(t: string): boolean } }).MediaSource.isTypeSupported(t),
        'video/mp4; codecs="hvc1.1.6.L93.90"',
      ),
    ).toBe(false);
    await page.goto(`${stack.workerUrl}/watch/${stream.id}`);
    type Snap = { firstFrameMs: number | null; rendition: string | null; renditions: string[]; videoHeight: number; currentTime: number };
    const snap = () => page.evaluate(() => (globalThis as unknown as { __edgelive: { snapshot(): Snap } }).__edgelive.snapshot());
    await waitInPage(
      page,
      () =>
        (globalThis as unknown as { __edgelive?: { snapshot(): { firstFrameMs: number | null } } }).__edgelive?.snapshot().firstFrameMs !=
        null,
      'the first frame',
      90_000,
    );
    const a = await snap();
    // Playing: its clock moves on (polled: on the shared machine a second of media can take longer).
    await page.waitForFunction(
      (t0) =>
        (globalThis as unknown as { __edgelive: { snapshot(): { currentTime: number } } }).__edgelive.snapshot().currentTime > t0 + 0.5,
      a.currentTime,
      { timeout: 60_000, polling: 250 },
    );
    const b = await snap();
    expect(b.renditions).toEqual(['360p']);
    expect([b.rendition, b.videoHeight]).toEqual(['360p', 360]);
    expect(await page.getByTestId('video').evaluate((v) => (v as unknown as { error: unknown }).error)).toBeNull();
  }, 150_000);
});

describe('the automatic ladder', () => {
  it('a 1920x1080 SRT publisher gets the 1080p preset: 1080p/720p/480p/360p listed, nothing of 2160p', async () => {
    // 10 fps keeps a 1080p ladder within this shared machine's means.
    const stream = await stack.createStream({ title: 'auto', fps: 10 });
    publishers.push(startTestPublisher({ rtmpUrl: stream.ingest.srt!, width: 1920, height: 1080, fps: 10, logDir: join(dir, 'logs') }));
    const listed = await until(
      'the 1080p preset listed',
      async () => {
        const v = await variants(stream.id);
        return v.length >= 4 ? v : null;
      },
      120_000,
    );
    expect(listed.map((x) => x.uri.split('/')[0]).sort()).toEqual(['1080p', '360p', '480p', '720p']);
    expect(listed.find((x) => x.uri.startsWith('1080p/'))?.resolution).toBe('1920x1080');
    const status = (await (
      await fetch(`${stack.workerUrl}/api/streams/${stream.id}`, { headers: { authorization: `Bearer ${stack.adminToken}` } })
    ).json()) as {
      settings: { ladderPreset: string };
      renditions: Array<{ rendition: string }>;
    };
    expect(status.settings.ladderPreset).toBe('auto');
    expect(status.renditions.map((r) => r.rendition)).toEqual(['1080p', '720p', '480p', '360p', 'audio']);
  }, 180_000);
});
