// Headless Chromium for the browser tests and the player benchmark: playwright-core drives the
// system's Debian chromium (CI installs it with apt; never `playwright install`), one browser per
// test file with a fresh profile directory, pages muted and allowed to autoplay.
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { chromium, type Browser, type BrowserContext, type Page } from 'playwright-core';

export const CHROMIUM = process.env.CHROMIUM_PATH ?? '/usr/bin/chromium';

export const CHROMIUM_FLAGS = [
  '--headless',
  '--no-sandbox',
  '--disable-gpu',
  '--disable-background-networking',
  '--disable-component-update',
  '--no-first-run',
  // Pages start muted, but a policy that needs no gesture keeps play() from ever being refused.
  '--autoplay-policy=no-user-gesture-required',
  // Two pages of one watch party play side by side: neither may be throttled as "hidden".
  '--disable-background-timer-throttling',
  '--disable-renderer-backgrounding',
  '--disable-backgrounding-occluded-windows',
];

/**
 * A page that publishes its camera and microphone over WebRTC: fake devices (a test pattern and
 * a beep) granted without a prompt, and ICE candidates on loopback, so a media node bound to
 * 127.0.0.1 is reachable and nothing is sent to another address.
 */
export const WEBRTC_PUBLISHER_FLAGS = [
  '--use-fake-ui-for-media-stream',
  '--use-fake-device-for-media-stream',
  '--allow-loopback-in-peer-connection',
];

export interface TestBrowser {
  browser: Browser;
  context: BrowserContext;
  /** A new page that records its console errors and uncaught exceptions. */
  newPage(opts?: { width?: number; height?: number }): Promise<Page & { errors: string[] }>;
  close(): Promise<void>;
}

/**
 * Launches Chromium with a throwaway profile (`--user-data-dir` via a persistent context, which is
 * how playwright passes one), so runs never share cookies, storage or caches. `args` adds flags
 * (e.g. a fake microphone: `--use-fake-device-for-media-stream`).
 */
export async function launchBrowser(opts: { width?: number; height?: number; args?: string[] } = {}): Promise<TestBrowser> {
  const profile = mkdtempSync(join(tmpdir(), 'edgelive-chromium-'));
  const context = await chromium.launchPersistentContext(profile, {
    executablePath: CHROMIUM,
    headless: true,
    args: [...CHROMIUM_FLAGS, ...(opts.args ?? [])],
    viewport: { width: opts.width ?? 1440, height: opts.height ?? 900 },
    deviceScaleFactor: 1,
  });
  const browser = context.browser() as Browser;
  return {
    browser,
    context,
    async newPage(o = {}) {
      const page = (await context.newPage()) as Page & { errors: string[] };
      page.errors = [];
      if (o.width || o.height) await page.setViewportSize({ width: o.width ?? 1440, height: o.height ?? 900 });
      page.on('pageerror', (err) => page.errors.push(`pageerror: ${err.message}`));
      page.on('console', (msg) => {
        if (msg.type() === 'error') page.errors.push(`console: ${msg.text()}`);
      });
      return page;
    },
    async close() {
      await context.close().catch(() => undefined);
      rmSync(profile, { recursive: true, force: true });
    },
  };
}

/** Polls `fn` (given `arg`) in the page until it returns a truthy value (returned), or throws with `what`. */
export async function waitInPage<T, A = undefined>(
  page: Page,
  fn: (arg: A) => T | Promise<T>,
  what: string,
  timeoutMs = 20_000,
  arg?: A,
): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  let last: unknown;
  for (;;) {
    try {
      // Arguments are plain JSON here, so what the page receives is what was given.
      last = await page.evaluate(fn as (a: unknown) => T | Promise<T>, arg as unknown);
      if (last) return last as T;
    } catch (err) {
      last = err;
    }
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what} (last: ${JSON.stringify(last)?.slice(0, 400)})`);
    await new Promise((r) => setTimeout(r, 150));
  }
}

/** An SDP offer from Chromium (video and audio, sendonly), for WHIP requests made outside a page. */
export async function sendonlyOffer(browser: TestBrowser): Promise<string> {
  const page = await browser.newPage();
  const sdp = (await page.evaluate(`(async () => {
    const pc = new RTCPeerConnection();
    pc.addTransceiver('video', { direction: 'sendonly' });
    pc.addTransceiver('audio', { direction: 'sendonly' });
    const offer = await pc.createOffer();
    pc.close();
    return offer.sdp;
  })()`)) as string;
  await page.close();
  return sdp;
}
