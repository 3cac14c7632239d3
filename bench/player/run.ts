// `npm run bench:player`: the viewer's experience in headless Chromium on the local stack, with
// baselines measured the same way in the same run. Prints figures (with the machine's load
// average); asserts nothing.
//  1. time to first frame (navigation → first frame presented, requestVideoFrameCallback), p50,
//     for the watch page and for a bare page running hls.js with its defaults, loads interleaved
//     after one uncounted warm-up load of each, and where the time went (resource timing);
//  2. glass-to-glass latency p50/p99: the capture time the publisher burnt into the frame
//     (bench/player/clock-publisher.ts) against the wall clock at which that frame is presented,
//     and the same against the frame's program-date-time; baseline: hls.js in standard
//     (non-low-latency) mode on the same stream;
//  3. stock players (hls.js, Shaka Player, Video.js; bench/player/stock-pages.ts), each at its
//     defaults and with the settings docs/player.md recommends, against the watch page: glass to
//     glass, stalls and first frame, one page at a time in interleaved rounds (after one
//     uncounted warm-up load of each page);
//  4. watch-party alignment p50/p95 over a minute after the host seeks: the program-date-time on
//     screen in two party pages at the same instants; baseline: two independent watch pages.
// Knobs: BENCH_TTFF_RUNS (8), BENCH_G2G_SECONDS (20), BENCH_ALIGN_SECONDS (60), BENCH_PARTS
// (ttff,g2g,stock,party), BENCH_BARE_CONFIG (hls.js config of the bare baseline page, JSON; {}),
// BENCH_STOCK_ROUNDS (2), BENCH_STOCK_SECONDS (15), BENCH_STOCK_SETTLE (5), BENCH_STOCK (labels to
// run, comma-separated; all), BENCH_STOCK_EXTRA (more cases, JSON [{label, player, config}]),
// BENCH_PLAYER_REALTIME=1 (the stream created with `realtime: true`: its ladder also encodes for
// WebRTC, the watch page offers real time but plays LL-HLS), KEEP_BENCH=1.
import type { ChildProcess } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { loadavg } from 'node:os';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { Page } from 'playwright-core';
import { ROOT, startStack, stopChild, type Stack } from '../../scripts/local-stack.ts';
import { createLogger } from '../../transcoder-node/log.ts';
import type { PageSnapshot } from '../../core/player/page-snapshot.ts';
import { launchBrowser, waitInPage, type TestBrowser } from '../../test/support/browser.ts';
import { BARCODE, startClockPublisher } from './clock-publisher.ts';
import { behindEdge, sampleEdgeAge } from './edge-age.ts';
import { STOCK_CASES, serveStockPages, type StockPlayer } from './stock-pages.ts';

const TTFF_RUNS = Number(process.env.BENCH_TTFF_RUNS ?? 8);
const G2G_SECONDS = Number(process.env.BENCH_G2G_SECONDS ?? 20);
const ALIGN_SECONDS = Number(process.env.BENCH_ALIGN_SECONDS ?? 60);
const PARTS = new Set((process.env.BENCH_PARTS ?? 'ttff,g2g,stock,party').split(','));
const STOCK_ROUNDS = Number(process.env.BENCH_STOCK_ROUNDS ?? 2);
const STOCK_SECONDS = Number(process.env.BENCH_STOCK_SECONDS ?? 15);
const STOCK_SETTLE_SECONDS = Number(process.env.BENCH_STOCK_SETTLE ?? 5);
const STOCK_ONLY = process.env.BENCH_STOCK ? new Set(process.env.BENCH_STOCK.split(',')) : null;
/** More stock cases to try beside STOCK_CASES, e.g. a candidate setting: [{ "label", "player", "config" }]. */
const STOCK_EXTRA = JSON.parse(process.env.BENCH_STOCK_EXTRA ?? '[]') as typeof STOCK_CASES;
const REALTIME = process.env.BENCH_PLAYER_REALTIME === '1';
const BARE_CONFIG = JSON.parse(process.env.BENCH_BARE_CONFIG ?? '{}') as Record<string, unknown>;
const LADDER = [
  { name: '360p', kind: 'video', width: 640, height: 360, videoBitrate: 800_000 },
  { name: '240p', kind: 'video', width: 426, height: 240, videoBitrate: 350_000 },
  { name: 'audio', kind: 'audio', audioBitrate: 96_000 },
];
const PROBE = readFileSync(join(ROOT, 'bench', 'player', 'page-probe.js'), 'utf8');
const log = createLogger({ service: 'bench-player' });

function quantile(xs: number[], q: number): number {
  if (xs.length === 0) return NaN;
  const s = [...xs].sort((a, b) => a - b);
  return s[Math.min(s.length - 1, Math.floor(q * s.length))]!;
}
const ms = (x: number, digits = 0) => (Number.isFinite(x) ? `${x.toFixed(digits)} ms` : 'n/a');
const sec = (x: number) => (Number.isFinite(x) ? `${(x / 1000).toFixed(3)} s` : 'n/a');
const sleep = (t: number) => new Promise((r) => setTimeout(r, t));

type Win = {
  __edgelive: {
    snapshot(): PageSnapshot;
    page: {
      player: { video: unknown; pdtAt(t: number): number | null; pdtNow(): number | null };
      party: unknown;
      controls: { intents(): { seek(t: number): void } | null };
    };
  };
  __probe: Probe;
};
type Probe = {
  g2g(video: unknown, pdtAt: ((t: number) => number | null) | null, layout: typeof BARCODE): void;
  stopG2G(): { frames: Array<{ shown: number; glass: number; pdt: number | null; height: number }>; unreadable: number; stalls: number };
  track(pdtNow: () => number | null): void;
  stopTrack(): Array<[number, number]>;
};

let stock: Awaited<ReturnType<typeof serveStockPages>> | undefined;
function barePage(config: Record<string, unknown>): string {
  return stock!.url('hls', config);
}

async function firstFrameOf(page: Page, bare: boolean): Promise<number> {
  if (bare)
    return (await waitInPage(
      page,
      () => (globalThis as unknown as { __first: number | null }).__first,
      'first frame (bare page)',
      30_000,
    ))!;
  return (await waitInPage(
    page,
    () => (globalThis as unknown as Partial<Win>).__edgelive?.snapshot().firstFrameMs ?? null,
    'first frame',
    30_000,
  ))!;
}

/** Where a page's start went: ms since navigation at which each step ended (resource timing), and the first frame. */
type Milestones = Record<(typeof MILESTONES)[number], number>;
const MILESTONES = [
  'html',
  'script',
  'multivariant asked',
  'multivariant',
  'media playlist asked',
  'media playlist',
  'init',
  'first media asked',
  'first media',
  'last media before the frame',
  'first frame',
] as const;

/** Reads the page's resource timing once its first frame is shown (the same steps on both pages). */
async function milestonesOf(page: Page, firstFrame: number): Promise<Milestones> {
  const m = await page.evaluate((frame) => {
    const nav = performance.getEntriesByType('navigation')[0] as (PerformanceEntry & { responseEnd: number }) | undefined;
    const res = performance.getEntriesByType('resource') as PerformanceResourceTiming[];
    const first = (re: RegExp) => res.find((r) => re.test(new URL(r.name).pathname));
    const multivariant = first(/^\/live\/[^/]+\/index\.m3u8$/);
    return {
      html: nav?.responseEnd ?? NaN,
      script: first(/\/(watch-[^/]+|hls\.min)\.js$/)?.responseEnd ?? NaN,
      'multivariant asked': multivariant?.startTime ?? NaN,
      multivariant: multivariant?.responseEnd ?? NaN,
      'media playlist asked': first(/^\/live\/[^/]+\/[^/]+\/index\.m3u8$/)?.startTime ?? NaN,
      'media playlist': first(/^\/live\/[^/]+\/[^/]+\/index\.m3u8$/)?.responseEnd ?? NaN,
      init: first(/\/init\.mp4$/)?.responseEnd ?? NaN,
      'first media asked': first(/\.m4s$/)?.startTime ?? NaN,
      'first media': first(/\.m4s$/)?.responseEnd ?? NaN,
      'last media before the frame': Math.max(
        ...res.filter((r) => /\.m4s$/.test(new URL(r.name).pathname) && r.responseEnd < frame).map((r) => r.responseEnd),
      ),
    };
  }, firstFrame);
  return { ...m, 'first frame': firstFrame };
}

/**
 * First-frame times of `urls`, loaded in turn (a, b, a, b, …) so both see the same machine load,
 * with their milestones. Round 0 is a warm-up, returned apart: the first page of a fresh browser
 * pays for the browser's start and the local asset server's cold answers, whichever page it is.
 */
async function timeToFirstFrame(
  b: TestBrowser,
  urls: Array<{ url: string; bare: boolean }>,
): Promise<{ cold: Milestones[]; runs: Milestones[][] }> {
  const out: Milestones[][] = urls.map(() => []);
  for (let i = 0; i <= TTFF_RUNS; i++) {
    for (let k = 0; k < urls.length; k++) {
      const page = await b.newPage({ width: 1280, height: 720 });
      await page.goto(urls[k]!.url);
      // A load with no frame in 30 s is counted (NaN: "failed" below) with its steps, not fatal.
      const first = await firstFrameOf(page, urls[k]!.bare).catch(async (err: unknown) => {
        log.warn('no first frame', {
          url: urls[k]!.url,
          err: String(err).slice(0, 200),
          steps: await milestonesOf(page, NaN),
          errors: page.errors.slice(0, 5),
        });
        return NaN;
      });
      out[k]!.push(await milestonesOf(page, first));
      await page.close();
      await sleep(500);
    }
  }
  return { cold: out.map((r) => r.shift()!), runs: out };
}

/** One line per page: the p50 of each milestone. */
function milestoneLine(label: string, runs: Milestones[]): string {
  return `    ${label.padEnd(12)} ${MILESTONES.map((k) => `${k} ${quantile(runs.map((r) => r[k]).filter(Number.isFinite), 0.5).toFixed(0)}`).join(' · ')}`;
}

async function glassToGlass(
  page: Page,
  bare: boolean,
  seconds = G2G_SECONDS,
): Promise<{ glass: number[]; shown: number[]; pdt: number[]; unreadable: number; stalls: number; heights: Set<number> }> {
  await page.addScriptTag({ content: PROBE });
  await page.evaluate(
    ([layout, isBare]) => {
      const g = globalThis as unknown as Win & { __video: unknown; __pdtAt: (t: number) => number | null };
      if (isBare) g.__probe.g2g(g.__video, g.__pdtAt, layout);
      else g.__probe.g2g(g.__edgelive.page.player.video, (t) => g.__edgelive.page.player.pdtAt(t), layout);
    },
    [BARCODE, bare] as const,
  );
  await sleep(seconds * 1000);
  const r = await page.evaluate(() => (globalThis as unknown as Win).__probe.stopG2G());
  return {
    glass: r.frames.map((f) => f.glass),
    shown: r.frames.map((f) => f.shown),
    pdt: r.frames.flatMap((f) => (f.pdt === null ? [] : [f.pdt])),
    unreadable: r.unreadable,
    stalls: r.stalls,
    heights: new Set(r.frames.map((f) => f.height)),
  };
}

/** |PDT on page B − PDT on page A| at B's sampling instants (A interpolated between its samples). */
function alignment(a: Array<[number, number]>, b: Array<[number, number]>): number[] {
  const out: number[] = [];
  let j = 0;
  for (const [t, pdtB] of b) {
    while (j + 1 < a.length && a[j + 1]![0] < t) j++;
    const a0 = a[j];
    const a1 = a[j + 1];
    if (!a0 || !a1 || a0[0] > t || a1[0] < t || a1[0] - a0[0] > 100) continue;
    const pdtA = a0[1] + ((a1[1] - a0[1]) * (t - a0[0])) / (a1[0] - a0[0]);
    out.push(Math.abs(pdtB - pdtA));
  }
  return out;
}

async function track(pages: Page[], seconds: number): Promise<Array<Array<[number, number]>>> {
  for (const p of pages) {
    await p.addScriptTag({ content: PROBE });
    await p.evaluate(() =>
      (globalThis as unknown as Win).__probe.track(() => (globalThis as unknown as Win).__edgelive.page.player.pdtNow()),
    );
  }
  await sleep(seconds * 1000);
  return Promise.all(pages.map((p) => p.evaluate(() => (globalThis as unknown as Win).__probe.stopTrack())));
}

/** The machine's 1/5/15-minute load averages: figures on a shared 2-core machine mean little without them. */
const load = () =>
  `load average ${loadavg()
    .map((x) => x.toFixed(2))
    .join(' / ')}`;

const snapshot = (p: Page) => p.evaluate(() => (globalThis as unknown as Win).__edgelive.snapshot());

interface Ctx {
  stack: Stack;
  browser: TestBrowser;
  streamId: string;
  watchUrl: string;
}

async function measureTtff({ browser, watchUrl }: Ctx): Promise<string[]> {
  log.info('time to first frame', { runs: TTFF_RUNS });
  const { cold, runs } = await timeToFirstFrame(browser, [
    { url: watchUrl, bare: false },
    { url: barePage(BARE_CONFIG), bare: true },
  ]);
  const [watchRuns, bareRuns] = runs as [Milestones[], Milestones[]];
  const failed = (runs: Milestones[]) => runs.filter((r) => !Number.isFinite(r['first frame'])).length;
  const ttff = watchRuns.map((r) => r['first frame']).filter(Number.isFinite);
  const bare = bareRuns.map((r) => r['first frame']).filter(Number.isFinite);
  return [
    `time to first frame (navigation → first frame presented), ${TTFF_RUNS} page loads each, interleaved (${load()} at the end):`,
    `  watch page          p50 ${ms(quantile(ttff, 0.5))}   min ${ms(Math.min(...ttff))}   max ${ms(Math.max(...ttff))}   first load of the browser (cold, not counted) ${ms(cold[0]!['first frame'])}   no frame in 30 s ${failed(watchRuns)}   target ≤ 1000 ms`,
    `  baseline: bare page, hls.js ${Object.keys(BARE_CONFIG).length ? JSON.stringify(BARE_CONFIG) : 'defaults'}   p50 ${ms(quantile(bare, 0.5))}   min ${ms(Math.min(...bare))}   max ${ms(Math.max(...bare))}   no frame in 30 s ${failed(bareRuns)}`,
    '  where the time went, p50 of each step (ms since navigation; a step ends when its response has arrived):',
    milestoneLine('watch page', watchRuns),
    milestoneLine('bare page', bareRuns),
  ];
}

async function measureGlassToGlass({ stack, streamId, browser, watchUrl }: Ctx): Promise<string[]> {
  log.info('glass to glass', { seconds: G2G_SECONDS });
  const watch = await browser.newPage({ width: 1280, height: 720 });
  await watch.goto(watchUrl);
  await firstFrameOf(watch, false);
  await sleep(5000); // past the start-up catch-up
  const s1 = sampleEdgeAge(stack.workerUrl, streamId);
  const g2g = await glassToGlass(watch, false);
  const behind = behindEdge(g2g.glass, g2g.shown, await s1.stop());
  const end = await watch.evaluate(() => {
    const hls = (
      globalThis as unknown as { __edgelive: { page: { player: { hls: { latency: number; targetLatency: number | null } | null } } } }
    ).__edgelive.page.player.hls;
    return { latency: hls?.latency ?? NaN, target: hls?.targetLatency ?? NaN };
  });
  await watch.close();
  const std = await browser.newPage({ width: 1280, height: 720 });
  await std.goto(barePage({ lowLatencyMode: false }));
  await firstFrameOf(std, true);
  await sleep(5000);
  const s2 = sampleEdgeAge(stack.workerUrl, streamId);
  const g2gStd = await glassToGlass(std, true);
  const behindStd = behindEdge(g2gStd.glass, g2gStd.shown, await s2.stop());
  await std.close();
  return [
    `glass to glass (capture-time barcode in the frame vs wall clock at presentation), ${G2G_SECONDS} s of frames (${load()} at the end):`,
    `  watch page (LL-HLS)  p50 ${sec(quantile(g2g.glass, 0.5))}   p99 ${sec(quantile(g2g.glass, 0.99))}   frames ${g2g.glass.length} (unreadable ${g2g.unreadable}, heights ${[...g2g.heights].join('/')})   target p50 ≤ 1.2 s`,
    `    same frames by program-date-time: p50 ${sec(quantile(g2g.pdt, 0.5))}   p99 ${sec(quantile(g2g.pdt, 0.99))}   (hls.js at the end: ${end.latency.toFixed(2)} s behind the playlist edge, target ${end.target.toFixed(2)} s)`,
    `    behind the newest listed media p50 ${sec(quantile(behind, 0.5))}   p90 ${sec(quantile(behind, 0.9))}   stalls ${g2g.stalls}`,
    `  baseline: hls.js standard mode (lowLatencyMode off)  p50 ${sec(quantile(g2gStd.glass, 0.5))}   p99 ${sec(quantile(g2gStd.glass, 0.99))}   frames ${g2gStd.glass.length}   behind p50 ${sec(quantile(behindStd, 0.5))}   stalls ${g2gStd.stalls}`,
  ];
}

/**
 * Stock players on the same stream as the watch page, each at its defaults and with the settings
 * docs/player.md recommends, one page at a time in rounds (watch page, hls.js, …, watch page, …)
 * so every player sees the same machine load.
 */
async function measureStock({ stack, streamId, browser, watchUrl }: Ctx): Promise<string[]> {
  const cases = [{ label: 'watch page', player: 'watch' as const, config: {} }, ...STOCK_CASES, ...STOCK_EXTRA].filter(
    (c) => c.player === 'watch' || STOCK_ONLY === null || STOCK_ONLY.has(c.label),
  );
  log.info('stock players', { rounds: STOCK_ROUNDS, seconds: STOCK_SECONDS, cases: cases.map((c) => c.label) });
  const results = cases.map(() => ({
    glass: [] as number[],
    behind: [] as number[],
    ttff: [] as number[],
    ages: [] as number[],
    stalls: 0,
    unreadable: 0,
    failed: 0,
  }));
  // Every page once to its first frame, uncounted: the first page a fresh browser opens pays for
  // the browser's own start (renderer, media pipeline) and for the local asset server's cold first
  // answers (a 600 kB script took 1–3.5 s), which a page loaded later does not. Without this, the
  // watch page (first in every round) was charged 8.6 s in a part run alone, one of its two loads.
  for (const c of cases) {
    const page = await browser.newPage({ width: 1280, height: 720 });
    const bare = c.player !== 'watch';
    await page.goto(bare ? stock!.url(c.player as StockPlayer, c.config) : watchUrl);
    await firstFrameOf(page, bare).catch(() => undefined);
    await page.close();
  }
  for (let round = 0; round < STOCK_ROUNDS; round++) {
    for (let k = 0; k < cases.length; k++) {
      const c = cases[k]!;
      const r = results[k]!;
      const bare = c.player !== 'watch';
      const page = await browser.newPage({ width: 1280, height: 720 });
      try {
        await page.goto(bare ? stock!.url(c.player as StockPlayer, c.config) : watchUrl);
        const first = await firstFrameOf(page, bare);
        r.ttff.push(first);
        // A slow start says where its time went (resource timing), so an outlier can be told from an artefact.
        if (first > 3000)
          log.warn('slow first frame', { label: c.label, round, ms: Math.round(first), steps: await milestonesOf(page, first) });
        await sleep(STOCK_SETTLE_SECONDS * 1000);
        const sampler = sampleEdgeAge(stack.workerUrl, streamId);
        const g = await glassToGlass(page, bare, STOCK_SECONDS);
        const ages = await sampler.stop();
        r.ages.push(...ages.map((a) => a[1]));
        r.behind.push(...behindEdge(g.glass, g.shown, ages));
        r.glass.push(...g.glass);
        r.stalls += g.stalls;
        r.unreadable += g.unreadable;
      } catch (err) {
        r.failed++;
        log.warn('stock player failed', { label: c.label, err: String(err).slice(0, 300), errors: page.errors.slice(0, 5) });
      }
      await page.close();
    }
  }
  const lines = [
    `stock players vs the watch page, glass to glass after ${STOCK_SETTLE_SECONDS} s of play, ${STOCK_SECONDS} s × ${STOCK_ROUNDS} rounds each, interleaved (${load()} at the end):`,
    `  (edge = age of the newest media in the playlist, capture → listed, sampled every 250 ms; behind = each frame's g2g minus the edge's age when it was shown: the player's own share, which the stream's tags and the player's settings decide)`,
  ];
  for (let k = 0; k < cases.length; k++) {
    const c = cases[k]!;
    const r = results[k]!;
    lines.push(
      `  ${c.label.padEnd(28)} g2g p50 ${sec(quantile(r.glass, 0.5))}   p99 ${sec(quantile(r.glass, 0.99))}   edge p50 ${sec(quantile(r.ages, 0.5))}   behind p50 ${sec(quantile(r.behind, 0.5))} p90 ${sec(quantile(r.behind, 0.9))}   stalls ${r.stalls}   first frame ${r.ttff.map((x) => x.toFixed(0)).join(' / ')} ms   frames ${r.glass.length}${r.unreadable ? ` (unreadable ${r.unreadable})` : ''}${r.failed ? `   FAILED ${r.failed}` : ''}`,
    );
    if (c.player !== 'watch') lines.push(`  ${''.padEnd(28)} ${JSON.stringify(c.config)}`);
  }
  return lines;
}

async function measureParty({ stack, browser, streamId, watchUrl }: Ctx): Promise<string[]> {
  log.info('watch party alignment', { seconds: ALIGN_SECONDS });
  const room = `bench-party-${Date.now()}`;
  const tokenRes = await fetch(`${stack.workerUrl}/rooms/${room}/tokens`, {
    method: 'POST',
    headers: { authorization: `Bearer ${stack.adminToken}`, 'content-type': 'application/json' },
    body: JSON.stringify({ name: 'Host', role: 'host' }),
  });
  const { token } = (await tokenRes.json()) as { token: string };
  const host = await browser.newPage({ width: 1280, height: 720 });
  const guest = await browser.newPage({ width: 1280, height: 720 });
  await host.goto(`${stack.workerUrl}/party/${room}?stream=${streamId}&roomToken=${token}`);
  await guest.goto(`${stack.workerUrl}/party/${room}?stream=${streamId}&name=Guest`);
  const inSync = (p: Page) =>
    waitInPage(p, () => (globalThis as unknown as Partial<Win>).__edgelive?.snapshot().party?.state === 'in-sync', 'in sync', 60_000).catch(
      async (err: unknown) => {
        const why = await p.evaluate(() => {
          const g = globalThis as unknown as { __edgelive: { snapshot(): unknown; page: { party: { trace: unknown[] } | null } } };
          return { snapshot: g.__edgelive.snapshot(), trace: g.__edgelive.page.party?.trace.slice(-12) };
        });
        throw new Error(`${String(err)}\n${JSON.stringify(why)}`);
      },
    );
  await Promise.all([inSync(host), inSync(guest)]);
  await sleep(3000);
  const seekAt = Date.now();
  await host.evaluate(() => {
    const p = (globalThis as unknown as Win).__edgelive.page;
    p.controls.intents()?.seek((p.player.video as { currentTime: number }).currentTime - 5);
  });
  await waitInPage(host, () => ((globalThis as unknown as Win).__edgelive.snapshot().party?.version ?? 0) >= 2, 'the seek command');
  await sleep(300);
  await Promise.all([inSync(host), inSync(guest)]);
  const settledMs = Date.now() - seekAt;
  const [a, b] = await track([host, guest], ALIGN_SECONDS);
  const party = alignment(a!, b!);
  const after = await Promise.all([snapshot(host), snapshot(guest)]);
  await host.close();
  await guest.close();

  const w1 = await browser.newPage({ width: 1280, height: 720 });
  const w2 = await browser.newPage({ width: 1280, height: 720 });
  await Promise.all([w1.goto(watchUrl), w2.goto(watchUrl)]);
  await Promise.all([firstFrameOf(w1, false), firstFrameOf(w2, false)]);
  await sleep(5000);
  const [c, d] = await track([w1, w2], Math.min(20, ALIGN_SECONDS));
  const independent = alignment(c!, d!);
  await w1.close();
  await w2.close();
  return [
    `watch-party alignment (|PDT on screen, page A − page B| at the same instants, every 20 ms), ${ALIGN_SECONDS} s after the host seeked 5 s back (both in sync ${(settledMs / 1000).toFixed(1)} s after the seek):`,
    `  party pages          p50 ${ms(quantile(party, 0.5), 1)}   p95 ${ms(quantile(party, 0.95), 1)}   p99 ${ms(quantile(party, 0.99), 1)}   max ${ms(Math.max(...party), 1)}   samples ${party.length}   target p95 ≤ 10 ms`,
    `    each page's own error at the end: host ${ms(after[0].party?.errorMs ?? NaN, 1)}, guest ${ms(after[1].party?.errorMs ?? NaN, 1)}`,
    `  baseline: two independent watch pages  p50 ${ms(quantile(independent, 0.5), 1)}   p95 ${ms(quantile(independent, 0.95), 1)}   samples ${independent.length}`,
  ];
}

async function main(): Promise<void> {
  const dir = mkdtempSync(join(tmpdir(), 'edgelive-bench-player-'));
  let stack: Stack | undefined;
  let publisher: ChildProcess | undefined;
  let browser: TestBrowser | undefined;
  try {
    stack = await startStack({
      persistDir: join(dir, 'state'),
      logDir: join(dir, 'logs'),
      adminToken: 'bench-admin',
      ingestSecret: 'bench-ingest-secret',
      logger: log,
    });
    const stream = await stack.createStream({ title: 'Player benchmark', ladder: LADDER, ...(REALTIME ? { realtime: true } : {}) });
    publisher = startClockPublisher({ rtmpUrl: stream.ingest.rtmp, logDir: join(dir, 'logs') });
    const deadline = Date.now() + 40_000;
    for (;;) {
      const res = await fetch(`${stack.workerUrl}/live/${stream.id}/360p/index.m3u8`);
      const text = res.ok ? await res.text() : (await res.body?.cancel(), '');
      if ((text.match(/#EXTINF/g) ?? []).length >= 4) break;
      if (Date.now() > deadline) throw new Error('the stream did not start');
      await sleep(300);
    }
    browser = await launchBrowser();
    stock = await serveStockPages(stack.workerUrl, stream.id);
    const ctx: Ctx = { stack, browser, streamId: stream.id, watchUrl: `${stack.workerUrl}/watch/${stream.id}` };
    const lines = [
      '',
      `Player benchmark — headless Chromium ${browser.browser.version()} (software decoding), local stack, 640x360 ladder (360p, 240p, audio)${REALTIME ? ' + the real-time encode (realtime: true)' : ''}, 1 s segments, 200 ms parts; ${load()} at the start`,
      '',
    ];
    if (PARTS.has('ttff')) lines.push(...(await measureTtff(ctx)), '');
    if (PARTS.has('g2g')) lines.push(...(await measureGlassToGlass(ctx)), '');
    if (PARTS.has('stock')) lines.push(...(await measureStock(ctx)), '');
    if (PARTS.has('party')) lines.push(...(await measureParty(ctx)), '');
    console.log(lines.join('\n'));
  } finally {
    stock?.close();
    await browser?.close();
    await stopChild(publisher);
    await stack?.stop();
    if (!process.env.KEEP_BENCH) rmSync(dir, { recursive: true, force: true });
  }
}

await main();
