// `npm run bench:realtime`, part 1: which WebRTC stack the media node uses, measured on this
// machine in one run, interleaved, with the load average printed. For every candidate
// (node-datachannel = libdatachannel, werift = TypeScript, @roamhq/wrtc = libwebrtc), each in a
// fresh process of its own (stack-server.ts):
//  (a) WHIP ingest: headless Chromium publishes its fake camera and microphone (H.264 + Opus;
//      wrtc has no H.264, so VP8 there), and the stack hands the media out as frames: frames/s,
//      time to the first frame, CPU and memory of the stack's process while it receives;
//  (b) forwarding: one 2.5 Mbit/s H.264 + Opus stream (RTP from ffmpeg on loopback) to N viewers
//      (libdatachannel peers in another process, receivers.ts): CPU and memory of the stack's
//      process and what each viewer received. wrtc cannot forward encoded media: it decodes the
//      clip once and encodes it again per viewer, which is what it would have to do.
// Part 2, sub-second playback (WHEP) on the whole stack, runs after it in a process of its own
// (whep.ts, its knobs there).
// Knobs: BENCH_RT_STACKS (node-datachannel,werift,wrtc), BENCH_RT_VIEWERS (1,10,50),
// BENCH_RT_SECONDS (10), BENCH_RT_ROUNDS (1), BENCH_RT_PARTS (ingest,forward,whep),
// BENCH_RTC_MODULES (where candidates the project does not depend on are installed).
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { loadavg, tmpdir } from 'node:os';
import { join } from 'node:path';
import { createInterface } from 'node:readline';
import { freePort, stopChild } from '../../scripts/local-stack.ts';
import { WEBRTC_PUBLISHER_FLAGS, launchBrowser } from '../../test/support/browser.ts';
import { loadCandidate } from './stacks/types.ts';

const NODE = process.execPath;
const HERE = import.meta.dirname;
const MODULES: Record<string, string> = { 'node-datachannel': 'node-datachannel', werift: 'werift', wrtc: '@roamhq/wrtc' };
/** The candidates asked for that are installed (the project depends on node-datachannel only). */
const STACKS = (process.env.BENCH_RT_STACKS ?? 'node-datachannel,werift,wrtc').split(',').filter((stack) => {
  try {
    loadCandidate(MODULES[stack] ?? stack);
    return true;
  } catch {
    console.log(
      `skipping ${stack}: not installed here; install it with npm install --prefix DIR and set BENCH_RTC_MODULES=DIR/node_modules`,
    );
    return false;
  }
});
const VIEWERS = (process.env.BENCH_RT_VIEWERS ?? '1,10,50').split(',').map(Number);
const SECONDS = Number(process.env.BENCH_RT_SECONDS ?? 10);
const ROUNDS = Number(process.env.BENCH_RT_ROUNDS ?? 1);
const PARTS = new Set((process.env.BENCH_RT_PARTS ?? 'ingest,forward,whep').split(','));
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));
const load = () =>
  loadavg()
    .map((x) => x.toFixed(2))
    .join(' ');
/** Every child still running, killed if the run is interrupted. */
const children = new Set<ChildProcess>();
function track(child: ChildProcess): ChildProcess {
  children.add(child);
  child.once('exit', () => children.delete(child));
  return child;
}
/** A stack that used this much CPU (of the machine's 2 cores) at some N is not run at a larger N. */
const SATURATED_PERCENT = 150;

interface Usage {
  cpuMicros: number;
  rss: number;
  viewers: number;
  at: number;
}

async function startServer(stack: string): Promise<{ url: string; child: ChildProcess }> {
  const port = await freePort();
  const child = track(
    spawn(NODE, [join(HERE, 'stack-server.ts'), stack, String(port)], { stdio: ['ignore', 'pipe', 'inherit'], env: process.env }),
  );
  await new Promise<void>((resolve, reject) => {
    child.once('exit', (code) => reject(new Error(`${stack} server exited (${code})`)));
    createInterface({ input: child.stdout! }).once('line', () => resolve());
  });
  return { url: `http://127.0.0.1:${port}`, child };
}

const usage = async (url: string) => (await (await fetch(`${url}/usage`)).json()) as Usage;
const cpuPercent = (a: Usage, b: Usage) => ((b.cpuMicros - a.cpuMicros) / 1000 / (b.at - a.at)) * 100;
const mib = (bytes: number) => bytes / 1024 / 1024;

/** A 20 s 1280×720 30 fps clip: H.264 constrained baseline at 2.5 Mbit/s, Opus 64 kbit/s, in Matroska. */
function makeClip(dir: string): string {
  const clip = join(dir, 'source.mkv');
  const r = spawnSync('ffmpeg', [
    '-hide_banner',
    '-loglevel',
    'error',
    '-y',
    '-f',
    'lavfi',
    '-i',
    'testsrc2=size=1280x720:rate=30',
    '-f',
    'lavfi',
    '-i',
    'sine=frequency=440:sample_rate=48000',
    '-t',
    '20',
    '-c:v',
    'libx264',
    '-preset',
    'veryfast',
    '-profile:v',
    'baseline',
    '-b:v',
    '2500k',
    '-maxrate',
    '2500k',
    '-bufsize',
    '2500k',
    '-g',
    '60',
    '-bf',
    '0',
    '-pix_fmt',
    'yuv420p',
    '-c:a',
    'libopus',
    '-b:a',
    '64k',
    '-ac',
    '2',
    clip,
  ]);
  if (r.status !== 0) throw new Error(`clip: ${r.stderr}`);
  return clip;
}

async function measureIngest(stack: string, browser: Awaited<ReturnType<typeof launchBrowser>>): Promise<Record<string, unknown>> {
  const { url, child } = await startServer(stack);
  const page = await browser.newPage();
  try {
    await page.goto(url);
    const codec = stack === 'wrtc' ? 'VP8' : 'H264';
    const { connectMs } = await page.evaluate(
      (c) => (globalThis as unknown as { publish(c: string): Promise<{ connectMs: number }> }).publish(c),
      codec,
    );
    await sleep(3000);
    const sentBefore = await page.evaluate(() => (globalThis as unknown as { sent(): Promise<number> }).sent());
    const u0 = await usage(url);
    const s0 = (await (await fetch(`${url}/ingest-stats`)).json()) as { videoFrames: number; audioFrames: number };
    await sleep(SECONDS * 1000);
    const u1 = await usage(url);
    const s1 = (await (await fetch(`${url}/ingest-stats`)).json()) as {
      videoFrames: number;
      audioFrames: number;
      keyframes: number;
      firstFrameMs: number | null;
      frameKind: string;
      codec: string;
    };
    const sentAfter = await page.evaluate(() => (globalThis as unknown as { sent(): Promise<number> }).sent());
    const secs = (u1.at - u0.at) / 1000;
    return {
      stack,
      codec: s1.codec,
      frames: s1.frameKind,
      connectMs: Math.round(connectMs),
      firstFrameMs: s1.firstFrameMs,
      videoFps: +((s1.videoFrames - s0.videoFrames) / secs).toFixed(1),
      audioFps: +((s1.audioFrames - s0.audioFrames) / secs).toFixed(1),
      publishedKbps: Math.round(((sentAfter - sentBefore) * 8) / secs / 1000),
      cpuPercent: +cpuPercent(u0, u1).toFixed(1),
      rssMiB: +mib(u1.rss).toFixed(0),
      load: load(),
    };
  } catch (err) {
    return { stack, error: (err as Error).message.split('\n')[0], load: load() };
  } finally {
    await page.close();
    await stopChild(child);
  }
}

async function measureForward(stack: string, n: number, clip: string): Promise<Record<string, unknown>> {
  const { url, child } = await startServer(stack);
  let source: ChildProcess | null = null;
  let receivers: ChildProcess | null = null;
  try {
    const idle = await usage(url);
    const ports = (await (await fetch(`${url}/source?clip=${encodeURIComponent(clip)}`, { method: 'POST' })).json()) as {
      raw?: boolean;
      video?: number;
      audio?: number;
    };
    if (!ports.raw) {
      source = track(
        spawn(
          'ffmpeg',
          [
            '-hide_banner',
            '-loglevel',
            'error',
            '-nostdin',
            '-re',
            '-stream_loop',
            '-1',
            '-i',
            clip,
            '-map',
            '0:v',
            '-c',
            'copy',
            '-bsf:v',
            'dump_extra=freq=keyframe',
            '-f',
            'rtp',
            '-payload_type',
            '96',
            `rtp://127.0.0.1:${ports.video}?pkt_size=1200`,
            '-map',
            '0:a',
            '-c',
            'copy',
            '-f',
            'rtp',
            '-payload_type',
            '111',
            `rtp://127.0.0.1:${ports.audio}?pkt_size=1200`,
          ],
          { stdio: 'ignore' },
        ),
      );
    }
    const codec = stack === 'wrtc' ? 'VP8' : 'H264';
    receivers = track(
      spawn(NODE, [join(HERE, 'receivers.ts'), url, String(n), codec, stack === 'node-datachannel' ? 'late' : 'early'], {
        stdio: ['pipe', 'pipe', 'inherit'],
      }),
    );
    const lines = createInterface({ input: receivers.stdout! })[Symbol.asyncIterator]();
    const ready = (await Promise.race([lines.next(), sleep(90_000).then(() => ({ value: 'timeout' }))])) as { value: string };
    if (!ready.value?.startsWith('ready')) throw new Error(`viewers not ready: ${ready.value}`);
    const connected = Number(ready.value.split(' ')[1]);
    await sleep(3000);
    const ask = async () => {
      receivers!.stdin!.write('stats\n');
      return JSON.parse((await lines.next()).value as string) as Array<{ bytes: number; packets: number; lost: number }>;
    };
    const r0 = await ask();
    const u0 = await usage(url);
    await sleep(SECONDS * 1000);
    const u1 = await usage(url);
    const r1 = await ask();
    const secs = (u1.at - u0.at) / 1000;
    const kbps = r1.map((v, i) => ((v.bytes - r0[i]!.bytes) * 8) / secs / 1000).sort((a, b) => a - b);
    const lost = r1.reduce((s, v, i) => s + v.lost - r0[i]!.lost, 0);
    const packets = r1.reduce((s, v, i) => s + v.packets - r0[i]!.packets, 0);
    return {
      stack,
      viewers: n,
      connected,
      cpuPercent: +cpuPercent(u0, u1).toFixed(1),
      rssMiB: +mib(u1.rss).toFixed(0),
      rssPerViewerMiB: +(mib(u1.rss - idle.rss) / n).toFixed(2),
      viewerKbpsMin: Math.round(kbps[0] ?? 0),
      viewerKbpsMedian: Math.round(kbps[Math.floor(kbps.length / 2)] ?? 0),
      videoLossPercent: +((lost / Math.max(1, packets + lost)) * 100).toFixed(2),
      load: load(),
    };
  } catch (err) {
    return { stack, viewers: n, error: (err as Error).message.split('\n')[0], load: load() };
  } finally {
    await stopChild(receivers ?? undefined, 3000);
    source?.kill('SIGKILL');
    await stopChild(child, 3000);
  }
}

const dir = mkdtempSync(join(tmpdir(), 'edgelive-bench-rt-'));
// Children are stopped in each measurement's finally; an interrupted run takes them down too.
for (const signal of ['SIGINT', 'SIGTERM'] as const) {
  process.on(signal, () => {
    for (const child of children) child.kill('SIGKILL');
    process.exit(130);
  });
}
console.log(
  `bench:realtime — ${new Date().toISOString()}, load average ${load()}, stacks ${STACKS.join(', ')}, ${SECONDS} s windows, ${ROUNDS} round(s)`,
);
const clip = PARTS.has('forward') ? makeClip(dir) : '';
const results: { ingest: Record<string, unknown>[]; forward: Record<string, unknown>[] } = { ingest: [], forward: [] };
// Each round rotates the order of the stacks, so none always runs first (or after the heaviest).
const order = (round: number) => STACKS.map((_, i) => STACKS[(i + round) % STACKS.length]!);
if (PARTS.has('ingest')) {
  const browser = await launchBrowser({ args: WEBRTC_PUBLISHER_FLAGS });
  for (let round = 0; round < ROUNDS; round++) {
    for (const stack of order(round)) {
      const r = await measureIngest(stack, browser);
      results.ingest.push(r);
      console.log('ingest', JSON.stringify(r));
    }
  }
  await browser.close();
}
if (PARTS.has('forward')) {
  for (let round = 0; round < ROUNDS; round++) {
    const saturated = new Set<string>();
    for (const n of VIEWERS) {
      for (const stack of order(round + n)) {
        if (saturated.has(stack)) {
          const r = { stack, viewers: n, error: `not run: over ${SATURATED_PERCENT} % CPU at fewer viewers`, load: load() };
          results.forward.push(r);
          console.log('forward', JSON.stringify(r));
          continue;
        }
        const r = await measureForward(stack, n, clip);
        if (typeof r.cpuPercent === 'number' && r.cpuPercent > SATURATED_PERCENT) saturated.add(stack);
        results.forward.push(r);
        console.log('forward', JSON.stringify(r));
      }
    }
  }
}
console.log(`\nload average at the end: ${load()}`);
if (results.ingest.length) console.table(results.ingest);
if (results.forward.length) console.table(results.forward);
if (!process.env.KEEP_BENCH) rmSync(dir, { recursive: true, force: true });
if (PARTS.has('whep')) {
  const whep = track(spawn(NODE, [join(HERE, 'whep.ts')], { stdio: 'inherit', env: process.env }));
  await new Promise((resolve) => whep.once('exit', resolve));
}
