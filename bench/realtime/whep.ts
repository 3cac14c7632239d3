// `npm run bench:realtime`, WHEP part (BENCH_RT_PARTS=whep; alone: `node bench/realtime/whep.ts`):
// sub-second playback on the local stack (wrangler dev, one media node), one realtime stream fed by
// the barcode publisher of bench:player. Prints figures with the load average; asserts nothing.
//  1. glass to glass, p50/p95: the capture time burnt into each frame against the wall clock at
//     which the watch page presents it, for the watch page in real-time mode (WHEP) and the same
//     page on LL-HLS, same stream, one page at a time in interleaved rounds (two pages decoding at
//     once on two cores slowed the LL-HLS one: docs/benchmarks.md), with each window's edge (age of
//     the playlist's newest media), the node's figures and the stack's CPU by part;
//     BENCH_WHEP_TOGETHER=1 plays both over the same seconds and adds LL-HLS minus WHEP for frames
//     shown at the same instants;
//  2. the media node per WHEP viewer: N libdatachannel viewers (whep-viewers.ts, another process)
//     through the edge's 307, N rising; CPU of the node's process (the ladder's ffmpeg apart) and
//     what every viewer received — the largest N at which every viewer still gets every frame is
//     what one node holds on this machine.
// Knobs: BENCH_WHEP_ROUNDS (3), BENCH_WHEP_SECONDS (15, per page and round), BENCH_WHEP_SETTLE (4),
// BENCH_WHEP_VIEWERS (1,10,25,50,100,150,200), BENCH_WHEP_WINDOW (10 s per step), BENCH_WHEP_PARTS
// (g2g,capacity), BENCH_WHEP_PAGES (whep,hls: which pages glass to glass opens; one alone tells
// whether the other's decoding weighs on it), BENCH_WHEP_TOGETHER=1 (both pages side by side),
// BENCH_WHEP_REALTIME=0 (the stream created without real
// time: the same ladder without the extra encode, LL-HLS page only — the baseline of a realtime
// stream's LL-HLS), KEEP_BENCH=1.
import { spawn, type ChildProcess } from 'node:child_process';
import { mkdtempSync, readdirSync, readFileSync, rmSync } from 'node:fs';
import { loadavg, tmpdir } from 'node:os';
import { join } from 'node:path';
import { createInterface } from 'node:readline';
import type { Page } from 'playwright-core';
import { ROOT, startStack, stopChild, type Stack } from '../../scripts/local-stack.ts';
import { createLogger } from '../../transcoder-node/log.ts';
import { launchBrowser, waitInPage, type TestBrowser } from '../../test/support/browser.ts';
import { BARCODE, startClockPublisher } from '../player/clock-publisher.ts';
import { behindEdge, sampleEdgeAge } from '../player/edge-age.ts';
import { nodeDelta, nodeFigures } from '../player/node-figures.ts';
import { processCpuSeconds, treeCpuSeconds } from '../support/processes.ts';

const ROUNDS = Number(process.env.BENCH_WHEP_ROUNDS ?? 3);
const SECONDS = Number(process.env.BENCH_WHEP_SECONDS ?? 15);
const SETTLE = Number(process.env.BENCH_WHEP_SETTLE ?? 4);
const STEPS = (process.env.BENCH_WHEP_VIEWERS ?? '1,10,25,50,100,150,200').split(',').map(Number);
const WINDOW = Number(process.env.BENCH_WHEP_WINDOW ?? 10);
const PARTS = new Set((process.env.BENCH_WHEP_PARTS ?? 'g2g,capacity').split(','));
const REALTIME = process.env.BENCH_WHEP_REALTIME !== '0';
const TOGETHER = process.env.BENCH_WHEP_TOGETHER === '1';
const PAGES = (['whep', 'hls'] as const).filter(
  (m) => (process.env.BENCH_WHEP_PAGES ?? 'whep,hls').split(',').includes(m) && (REALTIME || m === 'hls'),
);
/** The publisher's frame rate. */
const SOURCE_FPS = 30;
const LADDER = [
  { name: '360p', kind: 'video', width: 640, height: 360, videoBitrate: 800_000 },
  { name: '240p', kind: 'video', width: 426, height: 240, videoBitrate: 350_000 },
  { name: 'audio', kind: 'audio', audioBitrate: 96_000 },
];
const PROBE = readFileSync(join(ROOT, 'bench', 'player', 'page-probe.js'), 'utf8');
const log = createLogger({ service: 'bench-whep' });
const sleep = (t: number) => new Promise((r) => setTimeout(r, t));
const load = () =>
  `load average ${loadavg()
    .map((x) => x.toFixed(2))
    .join(' ')}`;
const quantile = (xs: number[], q: number) =>
  xs.length ? [...xs].sort((a, b) => a - b)[Math.min(xs.length - 1, Math.floor(q * xs.length))]! : NaN;
const sec = (x: number) => (Number.isFinite(x) ? `${(x / 1000).toFixed(3)} s` : 'n/a');

type Probe = {
  g2g(video: unknown, pdtAt: null, layout: typeof BARCODE): void;
  stopG2G(): { frames: Array<{ shown: number; glass: number }>; unreadable: number; stalls: number };
};
type RealtimeStatus = { state: string; message: string | null; connectMs: number | null; resource: string | null };
type Win = {
  __probe: Probe;
  __edgelive?: {
    snapshot(): { firstFrameMs: number | null };
    page: { player: { video: unknown; hls: unknown } };
    realtime?: { status(): RealtimeStatus; session: { counts(): Promise<{ framesDecoded: number }> } | null };
  };
};

// --- CPU of a process and its descendants, from /proc (Linux) --------------------------------

const TICKS_PER_SECOND = 100;
function procStat(pid: number): { ppid: number; ticks: number } | null {
  try {
    // The command name may hold spaces: fields are counted from after its closing parenthesis.
    const s = readFileSync(`/proc/${pid}/stat`, 'utf8');
    const f = s.slice(s.lastIndexOf(')') + 2).split(' ');
    return { ppid: Number(f[1]), ticks: Number(f[11]) + Number(f[12]) };
  } catch {
    return null;
  }
}
/** CPU seconds so far of `pid` alone and of everything it started (the ladder's ffmpeg). */
function cpuOf(pid: number): { self: number; children: number; at: number } {
  const all = new Map<number, { ppid: number; ticks: number }>();
  for (const name of readdirSync('/proc')) {
    if (!/^\d+$/.test(name)) continue;
    const st = procStat(Number(name));
    if (st) all.set(Number(name), st);
  }
  let children = 0;
  const walk = (parent: number) => {
    for (const [p, st] of all) {
      if (st.ppid !== parent) continue;
      children += st.ticks;
      walk(p);
    }
  };
  walk(pid);
  return { self: (all.get(pid)?.ticks ?? 0) / TICKS_PER_SECOND, children: children / TICKS_PER_SECOND, at: performance.now() };
}
const percent = (a: { at: number }, b: { at: number }, used: number) => (used / ((b.at - a.at) / 1000)) * 100;

/**
 * CPU seconds so far of each part of the local stack: what it asks of the machine's two cores,
 * whatever else runs there. The browser is what this process started besides the stack and the
 * publisher (Chromium's processes).
 */
let publisherPid = 0;
function stackCpu(stack: Stack): { at: number; parts: Record<'ladder' | 'node' | 'worker' | 'publisher' | 'browser', number> } {
  const node = cpuOf(stack.nodes[0]!.process.pid!);
  const worker = treeCpuSeconds(stack.worker.pid!);
  const publisher = publisherPid ? treeCpuSeconds(publisherPid) : 0;
  const browser = treeCpuSeconds(process.pid) - processCpuSeconds(process.pid) - node.self - node.children - worker - publisher;
  return { at: performance.now(), parts: { ladder: node.children, node: node.self, worker, publisher, browser } };
}
function cpuShares(a: ReturnType<typeof stackCpu>, b: ReturnType<typeof stackCpu>): string {
  const secs = (b.at - a.at) / 1000;
  const parts = Object.keys(a.parts) as Array<keyof typeof a.parts>;
  const each = parts.map((k) => [k, (b.parts[k] - a.parts[k]) / secs] as const);
  const total = each.reduce((n, [, c]) => n + c, 0);
  return `stack CPU ${total.toFixed(2)} cores (${each.map(([k, c]) => `${k} ${c.toFixed(2)}`).join(', ')})`;
}

// --- 1. glass to glass ---------------------------------------------------------------------

interface G2G {
  frames: Array<{ shown: number; glass: number }>;
  unreadable: number;
  stalls: number;
  framesDecoded: number | null;
  connectMs: number | null;
  /** Each frame's glass to glass minus the edge's age when it was shown: the page's own share. */
  behindEdge?: number[];
}
type Mode = 'whep' | 'hls';
/** One round: each page opened, and the age of the newest listed media at the edge, sampled meanwhile. */
type Round = Partial<Record<Mode, G2G>> & { edge: number[]; node: string };

/** Opens the watch page in `mode` and waits until it plays that way. */
async function openPage(browser: TestBrowser, url: string, mode: Mode): Promise<Page> {
  const page: Page = await browser.newPage({ width: 1280, height: 720 });
  await page.goto(url);
  if (mode === 'whep') {
    // A starved machine may miss the page's first-frame deadline: the page falls back and tries
    // again by itself (10 s later), which is what is waited for here.
    await waitInPage(page, () => (globalThis as unknown as Win).__edgelive?.realtime?.status().state === 'on', 'real-time mode', 90_000);
  } else {
    await waitInPage(page, () => (globalThis as unknown as Win).__edgelive?.snapshot().firstFrameMs ?? null, 'first frame', 30_000);
  }
  await page.addScriptTag({ content: PROBE });
  return page;
}

/** Frames the page's WHEP session decoded so far, and which session that is. */
const decoded = (page: Page) =>
  page.evaluate(async () => {
    const rt = (globalThis as unknown as Win).__edgelive!.realtime!;
    if (!rt.session) throw new Error('the page left real-time mode');
    return { framesDecoded: (await rt.session.counts()).framesDecoded, resource: rt.status().resource };
  });

/** The pages measured over the same seconds: on a machine whose pipeline lags, the lag then adds to both alike. */
async function measureTogether(pages: Partial<Record<Mode, Page>>, modes: Mode[], stack: Stack, streamId: string): Promise<Round> {
  const before = pages.whep ? await decoded(pages.whep) : null;
  await Promise.all(
    Object.values(pages).map((page) =>
      page.evaluate((layout) => {
        const g = globalThis as unknown as Win;
        g.__probe.g2g(g.__edgelive!.page.player.video, null, layout);
      }, BARCODE),
    ),
  );
  // The lowest rung: a ladder below real time sheds its top one, whose playlist then only ages.
  const edge = sampleEdgeAge(stack.workerUrl, streamId, '240p');
  const node0 = await nodeFigures(stack.transcoderHealthUrl, streamId);
  const cpu0 = stackCpu(stack);
  await sleep(SECONDS * 1000);
  const cpu = cpuShares(cpu0, stackCpu(stack));
  const node = `${nodeDelta(node0, await nodeFigures(stack.transcoderHealthUrl, streamId), SECONDS)}; ${cpu}`;
  const stopped = await Promise.all(
    modes.map(async (mode) => [mode, await pages[mode]!.evaluate(() => (globalThis as unknown as Win).__probe.stopG2G())] as const),
  );
  const ages = await edge.stop();
  const out: Round = { edge: ages.map((a) => a[1]), node };
  for (const [mode, r] of stopped)
    out[mode] = { frames: r.frames, unreadable: r.unreadable, stalls: r.stalls, framesDecoded: null, connectMs: null };
  for (const mode of modes) {
    const g = out[mode]!;
    g.behindEdge = behindEdge(
      g.frames.map((f) => f.glass),
      g.frames.map((f) => f.shown),
      ages,
    );
  }
  if (pages.whep && before) {
    const after = await decoded(pages.whep);
    // Fell back and came back within the window: a new session, and LL-HLS frames among the measured.
    if (after.resource !== before.resource) throw new Error('the page left real-time mode and came back during the window');
    // Still on WebRTC at the end: a page that fell back to LL-HLS mid-window would mix the two.
    const status = await pages.whep.evaluate(() => (globalThis as unknown as Win).__edgelive!.realtime!.status());
    if (status.state !== 'on') throw new Error(`real-time mode left during the window: ${JSON.stringify(status)}`);
    out.whep!.framesDecoded = after.framesDecoded - before.framesDecoded;
    out.whep!.connectMs = status.connectMs;
  }
  return out;
}

/** For each LL-HLS frame, its glass to glass minus that of the WHEP frame shown nearest in time (≤ 100 ms apart). */
function behindWhep(hls: G2G['frames'], whep: G2G['frames']): number[] {
  const out: number[] = [];
  const w = [...whep].sort((a, b) => a.shown - b.shown);
  let j = 0;
  for (const f of hls) {
    while (j + 1 < w.length && Math.abs(w[j + 1]!.shown - f.shown) <= Math.abs(w[j]!.shown - f.shown)) j++;
    if (w[j] && Math.abs(w[j]!.shown - f.shown) <= 100) out.push(f.glass - w[j]!.glass);
  }
  return out;
}

async function glassToGlass(stack: Stack, streamId: string): Promise<string[]> {
  const browser = await launchBrowser({ args: ['--allow-loopback-in-peer-connection'] });
  const runs: Round[] = [];
  const g = (x: G2G | undefined) => (x ? x.frames.map((f) => f.glass) : []);
  try {
    // A round whose WebRTC page left real time (a starved machine) is reported and run again, twice at most.
    for (let round = 0, attempts = 0; round < ROUNDS && attempts < 2 * ROUNDS; attempts++) {
      // Fresh pages each round; which one starts first alternates. One page at a time unless
      // BENCH_WHEP_TOGETHER: two pages decoding at once on two cores weigh on each other.
      const order: Mode[] = attempts % 2 === 0 ? [...PAGES] : [...PAGES].reverse();
      const groups = TOGETHER ? [order] : order.map((m) => [m]);
      let r: Round = { edge: [], node: '' };
      const pages: Partial<Record<Mode, Page>> = {};
      try {
        for (const group of groups) {
          for (const mode of group)
            pages[mode] = await openPage(browser, `${stack.workerUrl}/watch/${streamId}${mode === 'whep' ? '?realtime=1' : ''}`, mode);
          await sleep(SETTLE * 1000);
          const part = await measureTogether(pages, group, stack, streamId);
          for (const mode of group) {
            await pages[mode]!.close();
            delete pages[mode];
          }
          r = { ...r, ...part, edge: [...r.edge, ...part.edge], node: [r.node, part.node].filter(Boolean).join(' | ') };
        }
        runs.push(r);
        round++;
        const parts = [];
        if (r.whep)
          parts.push(`WHEP p50 ${sec(quantile(g(r.whep), 0.5))} (${r.whep.frames.length} frames shown, ${r.whep.framesDecoded} decoded)`);
        if (r.hls)
          parts.push(
            `LL-HLS p50 ${sec(quantile(g(r.hls), 0.5))} (${r.hls.frames.length} frames, ${r.hls.stalls} stalls, behind the edge p50 ${sec(quantile(r.hls.behindEdge!, 0.5))})`,
          );
        if (TOGETHER && r.whep && r.hls)
          parts.push(`LL-HLS behind WHEP p50 ${sec(quantile(behindWhep(r.hls.frames, r.whep.frames), 0.5))}`);
        console.log(`  round ${round}: ${parts.join(', ')}, edge p50 ${sec(quantile(r.edge, 0.5))}; ${r.node}  ${load()}`);
      } catch (err) {
        console.log(`  attempt ${attempts + 1} not counted: ${(err as Error).message.split('\n')[0]}  ${load()}`);
      } finally {
        for (const page of Object.values(pages)) await page.close();
      }
    }
  } finally {
    await browser.close();
  }
  const lines = [
    `glass to glass (capture time in the barcode → frame presented, requestVideoFrameCallback), the watch page ${PAGES.map((m) => (m === 'whep' ? 'in real-time mode' : 'on LL-HLS')).join(' and ')}${PAGES.length > 1 && TOGETHER ? ' side by side over the same' : PAGES.length > 1 ? ', one page at a time in interleaved rounds,' : ' alone over'} ${SECONDS} s, ${ROUNDS} rounds (edge = age of the newest media in the 240p playlist, capture → listed, every 250 ms; behind = a frame's g2g minus the edge's age when shown):`,
  ];
  for (const mode of PAGES) {
    const all = runs.flatMap((r) => g(r[mode]));
    const label = mode === 'whep' ? 'real time (WHEP)' : 'LL-HLS          ';
    const rounds = runs.map((r) => sec(quantile(g(r[mode]), 0.5))).join(', ');
    const extra =
      mode === 'whep'
        ? `  frames decoded ${runs.map((r) => r.whep!.framesDecoded).join('/')}  switch to the first WebRTC frame ${runs.map((r) => `${r.whep!.connectMs} ms`).join('/')}`
        : `  behind the edge p50 ${sec(
            quantile(
              runs.flatMap((r) => r.hls!.behindEdge!),
              0.5,
            ),
          )}`;
    lines.push(
      `  ${label}  p50 ${sec(quantile(all, 0.5))}  p95 ${sec(quantile(all, 0.95))}  frames ${all.length}  unreadable ${runs.reduce((s, r) => s + r[mode]!.unreadable, 0)}  stalls ${runs.reduce((s, r) => s + r[mode]!.stalls, 0)}  per-round p50 ${rounds}${extra}`,
    );
  }
  const edge = runs.flatMap((r) => r.edge);
  lines.push(
    `  edge (newest listed media)  p50 ${sec(quantile(edge, 0.5))}  p95 ${sec(quantile(edge, 0.95))}  per-round p50 ${runs.map((r) => sec(quantile(r.edge, 0.5))).join(', ')}`,
  );
  if (PAGES.length > 1 && TOGETHER) {
    const diff = runs.flatMap((r) => behindWhep(r.hls!.frames, r.whep!.frames));
    lines.push(
      `  LL-HLS behind WHEP at the same instants  p50 ${sec(quantile(diff, 0.5))}  p95 ${sec(quantile(diff, 0.95))}  pairs ${diff.length}`,
    );
  }
  if (PAGES.includes('whep')) lines.push('  target: WHEP p50 ≤ 0.300 s');
  return lines;
}

// --- 2. the node per viewer ------------------------------------------------------------------

interface ViewerCounts {
  frames: number;
  videoPackets: number;
  audioPackets: number;
  bytes: number;
  lost: number;
}
type ViewersReport = { cpuMicros: number; viewers: ViewerCounts[] };

async function feedPackets(stack: Stack, streamId: string): Promise<number> {
  const res = await fetch(stack.transcoderHealthUrl.replace(/\/health$/, '/health/realtime'));
  const { feeds } = (await res.json()) as { feeds: Array<{ streamId: string; videoPackets: number }> };
  return feeds.find((f) => f.streamId === streamId)?.videoPackets ?? 0;
}

async function capacity(stack: Stack, streamId: string): Promise<string[]> {
  const node = stack.nodes[0]!.process.pid!;
  const whepUrl = `${stack.workerUrl}/live/${streamId}/whep`;
  const lines = [
    `the media node per WHEP viewer (libdatachannel viewers in another process, through the edge's 307; ${WINDOW} s per step; a step holds when every viewer gets every video packet the node's feed took in, none missing, and ≥ 95 % of the median viewer's frames):`,
  ];
  // With no viewer: the node's own work (RTMP in, pushes, the feed's RTP in) and the ladder's.
  const i0 = cpuOf(node);
  await sleep(WINDOW * 1000);
  const i1 = cpuOf(node);
  const idleSelf = percent(i0, i1, i1.self - i0.self);
  lines.push(
    `  0 viewers: node process ${idleSelf.toFixed(1)} % of a core, its ffmpeg ladder (with the real-time encode) ${percent(i0, i1, i1.children - i0.children).toFixed(1)} %  ${load()}`,
  );
  let held = 0;
  for (const n of STEPS) {
    const child: ChildProcess = spawn(process.execPath, [join(import.meta.dirname, 'whep-viewers.ts'), whepUrl, String(n)], {
      stdio: ['pipe', 'pipe', 'inherit'],
    });
    try {
      const out = createInterface({ input: child.stdout! })[Symbol.asyncIterator]();
      const ready = (await Promise.race([out.next(), sleep(120_000).then(() => ({ value: 'timeout' }))])) as { value: string };
      if (!ready.value?.startsWith('ready')) throw new Error(`viewers not ready: ${ready.value}`);
      const connected = Number(ready.value.split(' ')[1]);
      const ask = async () => {
        child.stdin!.write('stats\n');
        return JSON.parse((await out.next()).value as string) as ViewersReport;
      };
      await sleep(3000);
      const [r0, f0, c0] = [await ask(), await feedPackets(stack, streamId), cpuOf(node)];
      await sleep(WINDOW * 1000);
      const [c1, f1, r1] = [cpuOf(node), await feedPackets(stack, streamId), await ask()];
      const secs = (c1.at - c0.at) / 1000;
      const fed = f1 - f0;
      const fps = r1.viewers.map((v, i) => (v.frames - r0.viewers[i]!.frames) / secs).sort((a, b) => a - b);
      const got = r1.viewers.map((v, i) => (v.videoPackets - r0.viewers[i]!.videoPackets) / Math.max(1, fed)).sort((a, b) => a - b);
      const lost = r1.viewers.reduce((s, v, i) => s + v.lost - r0.viewers[i]!.lost, 0);
      const kbps = r1.viewers.map((v, i) => ((v.bytes - r0.viewers[i]!.bytes) * 8) / secs / 1000).sort((a, b) => a - b);
      const self = percent(c0, c1, c1.self - c0.self);
      // Relative to the feed, not to the publisher's 30 fps: a starved machine's ladder may itself
      // run slower, which is not the node dropping frames for its viewers.
      const holds =
        connected === n && fps.length === n && fps[0]! >= 0.95 * fps[Math.floor(fps.length / 2)]! && got[0]! >= 0.99 && lost === 0;
      const viewersCpu = ((r1.cpuMicros - r0.cpuMicros) / 1e6 / secs) * 100;
      lines.push(
        `  ${String(n).padStart(3)} viewers (${connected} connected): node process ${self.toFixed(1)} % (${((self - idleSelf) / n).toFixed(2)} % per viewer above idle), ladder ${percent(c0, c1, c1.children - c0.children).toFixed(1)} %; ` +
          `frames/s per viewer min ${(fps[0] ?? 0).toFixed(1)} median ${(fps[Math.floor(fps.length / 2)] ?? 0).toFixed(1)}; feed packets received min ${((got[0] ?? 0) * 100).toFixed(1)} %; lost ${lost}; kbit/s per viewer median ${Math.round(kbps[Math.floor(kbps.length / 2)] ?? 0)}; ` +
          `viewers' own process ${viewersCpu.toFixed(0)} %; ${holds ? 'holds' : 'DROPS FRAMES'}  ${load()}`,
      );
      console.log(lines.at(-1));
      if (!holds) break;
      held = n;
    } finally {
      await stopChild(child, 5000);
      // The node frees its viewers (DELETE) before the next step starts.
      await sleep(2000);
    }
  }
  lines.push(
    `  one node held ${held} WHEP viewers with every frame on this machine${held === STEPS.at(-1) ? ' (the largest step tried)' : ''}`,
  );
  return lines;
}

async function main(): Promise<void> {
  const dir = mkdtempSync(join(tmpdir(), 'edgelive-bench-whep-'));
  let stack: Stack | undefined;
  let publisher: ChildProcess | undefined;
  try {
    const maxViewers = Math.max(...STEPS) + 5;
    stack = await startStack({
      persistDir: join(dir, 'state'),
      logDir: join(dir, 'logs'),
      adminToken: 'bench-admin',
      ingestSecret: 'bench-ingest-secret',
      transcoderEnv: { WHEP_MAX_VIEWERS: String(maxViewers), WHEP_MAX_PENDING_PER_ADDRESS: '8' },
      logger: log,
    });
    await stack.waitForRegistry([stack.nodes[0]!.nodeId]);
    const stream = await stack.createStream({ title: 'WHEP benchmark', ladder: LADDER, realtime: REALTIME });
    publisher = startClockPublisher({ rtmpUrl: stream.ingest.rtmp, logDir: join(dir, 'logs') });
    publisherPid = publisher.pid ?? 0;
    // A loaded machine starts the ladder slowly.
    const deadline = Date.now() + 180_000;
    for (;;) {
      const res = await fetch(`${stack.workerUrl}/live/${stream.id}/360p/index.m3u8`);
      const text = res.ok ? await res.text() : (await res.body?.cancel(), '');
      if ((text.match(/#EXTINF/g) ?? []).length >= 4) break;
      if (Date.now() > deadline) throw new Error('the stream did not start');
      await sleep(300);
    }
    const lines = [
      '',
      `WHEP benchmark — local stack, 640x360 ladder (360p, 240p, audio)${REALTIME ? ' + the real-time encode of 360p (baseline, 0.5 s GOP) and Opus' : ', realtime off'}; barcode publisher at ${SOURCE_FPS} fps; ${load()} at the start`,
      '',
    ];
    console.log(lines[1]);
    if (PARTS.has('g2g')) lines.push(...(await glassToGlass(stack, stream.id)), '');
    if (PARTS.has('capacity') && REALTIME) lines.push(...(await capacity(stack, stream.id)), '');
    lines.push(`${load()} at the end`);
    console.log(lines.join('\n'));
  } finally {
    await stopChild(publisher);
    await stack?.stop();
    if (!process.env.KEEP_BENCH) rmSync(dir, { recursive: true, force: true });
  }
}

await main();
