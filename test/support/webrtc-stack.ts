// What the tests of browser publishers share (WHIP ingest, the Go-live page): the local stack in a
// throwaway directory with its media node registered, a Chromium with a fake camera and microphone,
// and the checks that what the browser sent plays back through LL-HLS (ffprobe's codecs, the watch
// page's clock). The assertions stay in the tests; these only gather what they assert on.
import { spawnSync } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { startStack, type Stack } from '../../scripts/local-stack.ts';
import type { Logger } from '../../transcoder-node/log.ts';
import { WEBRTC_PUBLISHER_FLAGS, launchBrowser, waitInPage, type TestBrowser } from './browser.ts';

/** A browser publisher's ladder: one video rung and audio, light enough for a shared machine. */
export const WEBRTC_LADDER = [
  { name: '360p', kind: 'video', width: 640, height: 360, videoBitrate: 700_000 },
  { name: 'audio', kind: 'audio', audioBitrate: 96_000 },
];

export interface WebrtcStackOptions {
  /** Names the temporary directory (`edgelive-e2e-{name}-`). */
  name: string;
  logger: Logger;
  adminToken: string;
  endGraceSeconds: number;
  transcoderEnv?: Record<string, string>;
}

/**
 * The stack (wrangler dev and one media node) in a throwaway directory, and Chromium with
 * WEBRTC_PUBLISHER_FLAGS (fake devices granted without a prompt, loopback ICE). Made before
 * `start()` so that `stop()` in an afterAll stops whatever came up, even when a start that timed
 * out is still under way.
 */
export class WebrtcStack {
  private readonly o: WebrtcStackOptions;
  private dirPath: string | undefined;
  private stackRef: Stack | undefined;
  private browserRef: TestBrowser | undefined;
  private stopped = false;

  constructor(o: WebrtcStackOptions) {
    this.o = o;
  }

  get dir(): string {
    return started(this.dirPath, 'directory');
  }

  get stack(): Stack {
    return started(this.stackRef, 'stack');
  }

  get browser(): TestBrowser {
    return started(this.browserRef, 'browser');
  }

  /**
   * Starts the stack and waits until the origin's registry lists the node, so streams created
   * next are given its WHIP endpoint; then launches the browser.
   */
  async start(): Promise<void> {
    const dir = (this.dirPath = mkdtempSync(join(tmpdir(), `edgelive-e2e-${this.o.name}-`)));
    this.stackRef = await startStack({
      persistDir: join(dir, 'state'),
      logDir: join(dir, 'logs'),
      adminToken: this.o.adminToken,
      ingestSecret: 'e2e-ingest-secret',
      endGraceSeconds: this.o.endGraceSeconds,
      logger: this.o.logger,
      ...(this.o.transcoderEnv ? { transcoderEnv: this.o.transcoderEnv } : {}),
    });
    if (this.stopped) return this.stop(); // stopped while starting: what came up late goes too
    await this.stackRef.waitForRegistry([this.stackRef.nodes[0]!.nodeId]);
    this.browserRef = await launchBrowser({ args: WEBRTC_PUBLISHER_FLAGS });
    if (this.stopped) return this.stop();
  }

  /** Closes the browser and the stack, and removes the directory (kept with KEEP_E2E=1). */
  async stop(): Promise<void> {
    this.stopped = true;
    const { browserRef: browser, stackRef: stack, dirPath: dir } = this;
    this.browserRef = undefined;
    this.stackRef = undefined;
    await browser?.close();
    await stack?.stop();
    if (dir && !process.env.KEEP_E2E) rmSync(dir, { recursive: true, force: true });
  }
}

function started<T>(v: T | undefined, what: string): T {
  if (v === undefined) throw new Error(`the WebRTC stack's ${what} is not started`);
  return v;
}

/** The streams ffprobe reads from a playlist, by type and codec name. */
export function probeStreams(url: string): Array<{ codec_type: string; codec_name: string }> {
  const probe = spawnSync('ffprobe', ['-v', 'error', '-show_entries', 'stream=codec_type,codec_name', '-of', 'json', url], {
    encoding: 'utf8',
    timeout: 60_000,
  });
  return (JSON.parse(probe.stdout) as { streams: Array<{ codec_type: string; codec_name: string }> }).streams;
}

/**
 * Opens the watch page (hls.js, low-latency mode), waits for its first frame, then watches its
 * clock for up to `withinMs` until it has advanced `seconds`; returns how far it advanced. The
 * allowance is generous: the same Chromium may be encoding a publisher's camera meanwhile.
 */
export async function watchPageAdvance(browser: TestBrowser, watchUrl: string, seconds = 1, withinMs = 15_000): Promise<number> {
  const viewer = await browser.newPage();
  try {
    await viewer.goto(watchUrl);
    type Snap = { firstFrameMs: number | null; currentTime: number };
    const snap = () => viewer.evaluate(() => (globalThis as unknown as { __edgelive: { snapshot(): Snap } }).__edgelive.snapshot());
    await waitInPage(
      viewer,
      () => (globalThis as unknown as { __edgelive?: { snapshot(): Snap } }).__edgelive?.snapshot().firstFrameMs != null,
      'the watch page to show a frame',
      30_000,
    );
    const t0 = (await snap()).currentTime;
    const deadline = Date.now() + withinMs;
    let t = t0;
    while (t - t0 < seconds && Date.now() < deadline) {
      await viewer.waitForTimeout(250);
      t = (await snap()).currentTime;
    }
    return t - t0;
  } finally {
    await viewer.close();
  }
}
