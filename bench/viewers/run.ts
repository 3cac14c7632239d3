// `npm run bench:viewers`: N simulated LL-HLS viewers on one live stream through the Worker (the
// local stack: wrangler dev, a transcoder, ffmpeg publishing), for N = 1, 100, 1,000, ... Prints
// per N what the origin and the viewers saw; asserts nothing. See docs/benchmarks.md, "Viewers".
// Env: BENCH_VIEWERS (1,100,1000), BENCH_SECONDS (20, measured per N), BENCH_WARMUP (4 s),
// BENCH_PUBLISHER (synthetic: signed pushes of a part every 200 ms per rendition, sized to its
// bitrate, no encoder — on a shared machine whose load keeps ffmpeg from real time; ffmpeg: the
// test pattern through RTMP and the transcoder's ladder), BENCH_LADDER (light: a 640x360 publisher and 360p + 240p + audio, as bench:player, so the
// encoder keeps real time on a shared 2-core machine; default: DEFAULT_LADDER from 720p),
// BENCH_RENDITIONS (360p,audio, or 720p,audio with the default ladder: what each viewer follows,
// like hls.js with an alternate audio track), BENCH_THREADS (client threads; default 1 below 250 viewers, else 2), BENCH_DIRECT=1
// (viewers talk to workerd's own socket, not through wrangler's dev proxy), BENCH_GZIP (1),
// BENCH_PROFILE=N (a CPU profile of the Worker's isolate during the round of N viewers, summarised;
// the raw profile goes to BENCH_PROFILE_OUT when set, a .cpuprofile file DevTools opens).
import type { ChildProcess } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { loadavg, tmpdir } from 'node:os';
import { join } from 'node:path';
import { Worker } from 'node:worker_threads';
import { createLogger } from '../../transcoder-node/log.ts';
import { DEFAULT_LADDER } from '../../core/contracts/stream-config.ts';
import type { PlaybackLoad } from '../../core/contracts/live-model.ts';
import { startStack, startTestPublisher, stopChild } from '../../scripts/local-stack.ts';
import { listenerPid, processCpuSeconds, processName, processTree, workerdBehindProxy } from '../support/processes.ts';
import { startSyntheticPublisher, type SyntheticPublisher } from './synthetic-publisher.ts';
import { profileWorker, type ProfileSummary } from '../support/worker-profile.ts';
import type { ThreadConfig, ThreadResult } from './viewer-thread.ts';

const COUNTS = (process.env.BENCH_VIEWERS ?? '1,100,1000').split(',').map(Number);
const SECONDS = Number(process.env.BENCH_SECONDS ?? 20);
const WARMUP = Number(process.env.BENCH_WARMUP ?? 4);
const SYNTHETIC = (process.env.BENCH_PUBLISHER ?? 'synthetic') === 'synthetic';
const LIGHT = (process.env.BENCH_LADDER ?? 'light') === 'light';
const LIGHT_LADDER = [
  { name: '360p', kind: 'video', width: 640, height: 360, videoBitrate: 800_000 },
  { name: '240p', kind: 'video', width: 426, height: 240, videoBitrate: 350_000 },
  { name: 'audio', kind: 'audio', audioBitrate: 96_000 },
];
const RENDITIONS = (process.env.BENCH_RENDITIONS ?? (LIGHT ? '360p,audio' : '720p,audio')).split(',');
const DIRECT = process.env.BENCH_DIRECT === '1';
const GZIP = process.env.BENCH_GZIP !== '0';
const PROFILE_N = process.env.BENCH_PROFILE ? Number(process.env.BENCH_PROFILE) : null;
process.env.X_LOCAL_OBSERVABILITY ??= 'false';
const log = createLogger({ service: 'bench-viewers' });
const dir = mkdtempSync(join(tmpdir(), 'edgelive-bench-viewers-'));

function quantile(xs: number[], q: number): number {
  if (xs.length === 0) return NaN;
  const s = Float64Array.from(xs).sort();
  return s[Math.min(s.length - 1, Math.floor(q * s.length))]!;
}
const ms = (x: number) => (Number.isFinite(x) ? `${Math.round(x)} ms` : 'n/a');
const sleepUntil = (t: number) => new Promise((r) => setTimeout(r, Math.max(0, t - Date.now())));

/** The processes whose CPU the figures split: the Worker's workerd, wrangler's proxy, the rest of wrangler dev. */
interface Probe {
  workerd: number;
  proxy: number | null;
  wrangler: number[];
}
function cpuOf(p: Probe) {
  return {
    workerd: processCpuSeconds(p.workerd),
    proxy: p.proxy === null ? 0 : processCpuSeconds(p.proxy),
    wrangler: p.wrangler.reduce((n, pid) => n + processCpuSeconds(pid), 0),
    client: process.cpuUsage(),
  };
}

/** Each part's "ready" time at the transcoder (its log line), per rendition: key `msn.index`. */
function readyTimes(logFile: string): Map<string, Map<string, number>> {
  const out = new Map<string, Map<string, number>>();
  for (const line of readFileSync(logFile, 'utf8').split('\n')) {
    if (!line.includes('"part ready"')) continue;
    const e = JSON.parse(line) as { rendition: string; msn: number; part: number; at: number };
    if (!out.has(e.rendition)) out.set(e.rendition, new Map());
    out.get(e.rendition)!.set(`${e.msn}.${e.part}`, e.at);
  }
  return out;
}

async function origin(workerUrl: string, streamId: string): Promise<PlaybackLoad> {
  const res = await fetch(`${workerUrl}/api/streams/${streamId}/stats`, {
    headers: { authorization: 'Bearer bench-admin' },
    signal: AbortSignal.timeout(30_000),
  });
  if (!res.ok) throw new Error(`stats answered ${res.status}: ${await res.text()}`);
  return ((await res.json()) as { origin: PlaybackLoad }).origin;
}

function runThreads(n: number, base: Omit<ThreadConfig, 'viewers'>): Promise<ThreadResult[]> {
  const threads = Number(process.env.BENCH_THREADS ?? (n < 250 ? 1 : 2));
  const shares = Array.from({ length: Math.min(threads, n) }, (_, i) => Math.floor(n / threads) + (i < n % threads ? 1 : 0));
  return Promise.all(
    shares.map(
      (viewers) =>
        new Promise<ThreadResult>((resolve, reject) => {
          const w = new Worker(new URL('./viewer-thread.ts', import.meta.url), { workerData: { ...base, viewers } satisfies ThreadConfig });
          w.once('message', resolve);
          w.once('error', reject);
        }),
    ),
  );
}

interface Row {
  n: number;
  doCalls: Record<string, { calls: number; parts: number }>;
  presentationCalls: number;
  p50: number;
  p99: number;
  samples: number;
  partFetchP50: number;
  partFetchP99: number;
  lost: number;
  behind: number;
  expected: number;
  errors: Record<string, number>;
  fromIsolate: number;
  fromCache: number;
  fromOrigin: number;
  requests: number;
  reqPerSec: number;
  cpu: { workerd: number; proxy: number; wrangler: number; client: number };
  load: number[];
  profile: ProfileSummary | null;
}

async function round(
  n: number,
  o: {
    url: string;
    streamId: string;
    statsUrl: string;
    inspectorUrl: string;
    probe: Probe;
    readyTimes: () => Map<string, Map<string, number>>;
    idle: Row['cpu'];
  },
): Promise<Row> {
  const start = Date.now() + 300;
  const windowStart = start + WARMUP * 1000;
  const windowEnd = windowStart + SECONDS * 1000;
  const stopAt = windowEnd + 3000;
  const threads = runThreads(n, {
    origin: o.url,
    streamId: o.streamId,
    renditions: RENDITIONS,
    joinSpreadMs: 1000,
    windowStart,
    windowEnd,
    stopAt,
    gzip: GZIP,
  });
  await sleepUntil(windowStart);
  const [load0, cpu0] = [await origin(o.statsUrl, o.streamId), cpuOf(o.probe)];
  const profiling = n === PROFILE_N ? profileWorker(o.inspectorUrl, Math.min(SECONDS - 1, 10)) : null;
  await sleepUntil(windowEnd);
  const [load1, cpu1] = [await origin(o.statsUrl, o.streamId), cpuOf(o.probe)];
  const loadAfter = loadavg();
  const results = await threads;
  const profile = profiling ? await profiling : null;
  const ready = o.readyTimes();

  const doCalls: Row['doCalls'] = {};
  for (const r of load1.renditions) {
    const before = load0.renditions.find((x) => x.rendition === r.rendition) ?? { playlistCalls: 0, mediaWaits: 0, partsAnnounced: 0 };
    const calls = r.playlistCalls + r.mediaWaits - before.playlistCalls - before.mediaWaits;
    const parts = r.partsAnnounced - before.partsAnnounced;
    if (RENDITIONS.includes(r.rendition)) doCalls[r.rendition] = { calls, parts };
  }
  // Latency and losses over the parts made ready inside the window (each viewer was following by then).
  const latencies: number[] = [];
  let lost = 0;
  let behind = 0;
  let expected = 0;
  for (const rendition of RENDITIONS) {
    const readyAt = ready.get(rendition) ?? new Map<string, number>();
    const inWindow = [...readyAt].filter(([, at]) => at >= windowStart && at < windowEnd);
    for (const res of results) {
      for (const seen of res.seen[rendition]!) {
        const byKey = new Map<string, { receivedAt: number; status: number }>();
        for (let i = 0; i < seen.length; i += 5) byKey.set(`${seen[i]}.${seen[i + 1]}`, { receivedAt: seen[i + 2]!, status: seen[i + 4]! });
        for (const [key, at] of inWindow) {
          expected++;
          const s = byKey.get(key);
          // Lost: never listed to this viewer, or its fetch failed. Behind: listed, not yet fetched
          // when the viewer stopped (its part loader, one part at a time like hls.js, fell behind).
          if (!s || (s.status !== 0 && s.status !== 200)) lost++;
          else if (s.status === 0) behind++;
          if (s) latencies.push(s.receivedAt - at);
        }
      }
    }
  }
  const errors: Record<string, number> = {};
  for (const res of results) for (const [k, v] of Object.entries(res.errors)) errors[k] = (errors[k] ?? 0) + v;
  const sum = (f: (r: ThreadResult) => number) => results.reduce((acc, r) => acc + f(r), 0);
  const requests = sum((r) => r.requests.playlist + r.requests.part + r.requests.multivariant);
  const fetchMs = results.flatMap((r) => r.partFetchMs);
  const clientCpu = (cpu1.client.user + cpu1.client.system - cpu0.client.user - cpu0.client.system) / 1e6;
  return {
    n,
    doCalls,
    presentationCalls: load1.presentationCalls - load0.presentationCalls,
    p50: quantile(latencies, 0.5),
    p99: quantile(latencies, 0.99),
    samples: latencies.length,
    partFetchP50: quantile(fetchMs, 0.5),
    partFetchP99: quantile(fetchMs, 0.99),
    lost,
    behind,
    expected,
    errors,
    fromIsolate: sum((r) => r.partsFromIsolate),
    fromCache: sum((r) => r.partsFromCache),
    fromOrigin: sum((r) => r.partsFromOrigin),
    requests,
    reqPerSec: requests / SECONDS,
    cpu: {
      workerd: (cpu1.workerd - cpu0.workerd) / SECONDS,
      proxy: (cpu1.proxy - cpu0.proxy) / SECONDS,
      wrangler: (cpu1.wrangler - cpu0.wrangler) / SECONDS,
      client: clientCpu / SECONDS,
    },
    load: loadAfter,
    profile,
  };
}

function print(row: Row, idle: Row['cpu']): string {
  const perReq = (cores: number, idleCores: number) =>
    row.requests > 0 ? `${(((cores - idleCores) * SECONDS * 1000) / row.requests).toFixed(2)} ms` : 'n/a';
  const errs =
    Object.entries(row.errors)
      .map(([k, v]) => `${k}: ${v}`)
      .join(', ') || 'none';
  return [
    `N = ${row.n} viewers (${RENDITIONS.join(' + ')} each), ${SECONDS} s`,
    `  parts announced per second           ${Object.entries(row.doCalls)
      .map(([r, x]) => `${r} ${(x.parts / SECONDS).toFixed(1)}`)
      .join(', ')}   (5.0 when the encoder keeps real time)`,
    `  DO calls per part per rendition      ${Object.entries(row.doCalls)
      .map(([r, x]) => `${r} ${(x.calls / x.parts).toFixed(2)} (${x.calls}/${x.parts})`)
      .join(', ')}   (multivariant calls ${row.presentationCalls})`,
    `  part ready → playlist received       p50 ${ms(row.p50)}  p99 ${ms(row.p99)}  (n=${row.samples})`,
    `  part fetch                           p50 ${ms(row.partFetchP50)}  p99 ${ms(row.partFetchP99)}`,
    `  parts from isolate / cache / R2      ${row.fromIsolate} / ${row.fromCache} / ${row.fromOrigin}   (R2 reads per part made: ${(
      row.fromOrigin /
        Math.max(
          1,
          Object.values(row.doCalls).reduce((n, x) => n + x.parts, 0),
        )
    ).toFixed(2)})`,
    `  parts lost / not fetched by the end  ${row.lost} / ${row.behind} of ${row.expected} (lost: never listed, or failed; the rest: the viewer's part loader fell behind)`,
    `  errors                               ${errs}`,
    `  viewer requests                      ${row.requests} (${row.reqPerSec.toFixed(0)}/s)`,
    `  CPU (cores): Worker's workerd ${row.cpu.workerd.toFixed(2)} (idle ${idle.workerd.toFixed(2)}), dev proxy ${row.cpu.proxy.toFixed(2)} (idle ${idle.proxy.toFixed(2)}), wrangler ${row.cpu.wrangler.toFixed(2)}, client ${row.cpu.client.toFixed(2)}`,
    `  CPU per viewer request               workerd ${perReq(row.cpu.workerd, idle.workerd)}, dev proxy ${perReq(row.cpu.proxy, idle.proxy)}`,
    `  load average after                   ${row.load.map((x) => x.toFixed(2)).join(' ')}`,
    ...(row.profile ? printProfile(row.profile) : []),
  ].join('\n');
}

function printProfile(p: ProfileSummary): string[] {
  const share = (us: number) => `${((100 * us) / p.busyUs).toFixed(1).padStart(5)} %`;
  if (process.env.BENCH_PROFILE_OUT) writeFileSync(process.env.BENCH_PROFILE_OUT, JSON.stringify(p.profile));
  return [
    `  Worker isolate profile: busy ${((100 * p.busyUs) / p.wallUs).toFixed(0)} % of ${(p.wallUs / 1e6).toFixed(1)} s; self time by file:`,
    ...p.byFile.slice(0, 14).map((f) => `    ${share(f.selfUs)}  ${f.file}`),
    '  by function:',
    ...p.byFunction.slice(0, 20).map((f) => `    ${share(f.selfUs)}  ${f.fn}`),
  ];
}

const loadBefore = loadavg();
let publisher: ChildProcess | undefined;
let synthetic: SyntheticPublisher | undefined;
const stack = await startStack({
  persistDir: join(dir, 'state'),
  logDir: join(dir, 'logs'),
  adminToken: 'bench-admin',
  ingestSecret: 'bench-ingest',
  transcoderEnv: { LOG_LEVEL: 'debug' },
  logger: log,
});
// Ctrl-C (or a SIGTERM) stops the stack, the publisher and the viewer threads before exiting.
let interrupted = false;
for (const signal of ['SIGINT', 'SIGTERM'] as const)
  process.once(signal, () => {
    interrupted = true;
    log.info('stopping', { signal });
    void (async () => {
      await synthetic?.stop();
      await stopChild(publisher);
      await stack.stop();
      rmSync(dir, { recursive: true, force: true });
      process.exit(130);
    })();
  });
try {
  const stream = await stack.createStream({ title: 'bench-viewers', ladder: LIGHT ? LIGHT_LADDER : DEFAULT_LADDER });
  const ladder = LIGHT ? LIGHT_LADDER : DEFAULT_LADDER;
  if (SYNTHETIC) {
    synthetic = await startSyntheticPublisher({
      origin: stack.workerUrl,
      secret: 'bench-ingest',
      streamId: stream.id,
      streamKey: stream.streamKey,
      renditions: ladder.map((r) => ({
        name: r.name,
        kind: r.kind as 'video' | 'audio',
        bitrate: 'videoBitrate' in r ? r.videoBitrate! : r.audioBitrate!,
      })),
    });
  } else
    publisher = startTestPublisher({
      rtmpUrl: stream.ingest.rtmp,
      logDir: join(dir, 'logs'),
      ...(LIGHT ? { width: 640, height: 360 } : {}),
    });
  const readyAt = () => (synthetic ? synthetic.readyAt : readyTimes(join(dir, 'logs', 'transcoder.log')));
  for (let i = 0; i < 100; i++) {
    const res = await fetch(`${stack.workerUrl}/live/${stream.id}/${RENDITIONS[0]}/index.m3u8`);
    if (res.ok && (await res.text()).split('#EXTINF').length > 3) break;
    await new Promise((r) => setTimeout(r, 300));
  }
  const direct = await workerdBehindProxy(stack.worker.pid!, stack.workerUrl);
  const proxy = listenerPid(Number(new URL(stack.workerUrl).port));
  const probe: Probe = {
    workerd: direct.pid,
    proxy: proxy === direct.pid ? null : proxy,
    wrangler: processTree(stack.worker.pid!).filter((p) => p !== direct.pid && p !== proxy),
  };
  log.info('processes', { workerd: direct.pid, proxy, wrangler: probe.wrangler.map((p) => `${p} ${processName(p)}`) });
  const url = DIRECT ? direct.url : stack.workerUrl;
  // The stack's own CPU with no viewers (the publisher's pushes, the DO, R2): subtracted per request.
  const c0 = cpuOf(probe);
  await new Promise((r) => setTimeout(r, SECONDS * 1000));
  const c1 = cpuOf(probe);
  const idle = {
    workerd: (c1.workerd - c0.workerd) / SECONDS,
    proxy: (c1.proxy - c0.proxy) / SECONDS,
    wrangler: (c1.wrangler - c0.wrangler) / SECONDS,
    client: 0,
  };
  const out: string[] = [
    '',
    `edgelive viewers at scale: one live stream (${LIGHT ? '360p/240p/audio' : '720p/480p/360p/audio'}, 200 ms parts, 1 s segments, ${SYNTHETIC ? 'synthetic publisher' : 'ffmpeg publisher'}), viewers ${DIRECT ? 'on workerd directly (no dev proxy)' : 'through wrangler dev'}; load average before ${loadBefore.map((x) => x.toFixed(2)).join(' ')}`,
  ];
  const rows: Row[] = [];
  for (const n of COUNTS) {
    if (interrupted) break;
    log.info('round', { viewers: n });
    const row = await round(n, {
      url,
      streamId: stream.id,
      statsUrl: stack.workerUrl,
      inspectorUrl: stack.inspectorUrl,
      probe,
      readyTimes: readyAt,
      idle,
    });
    rows.push(row);
    out.push(print(row, idle));
    process.stderr.write(out.at(-1) + '\n');
  }
  const one = rows.find((r) => r.n === 1);
  if (one) out.push(`p99 against N = 1: ${rows.map((r) => `N=${r.n} ${(r.p99 / one.p99).toFixed(1)}×`).join(', ')} (target ≤ 2×)`);
  if (synthetic) out.push(`synthetic publisher: pushes given up after three attempts ${synthetic.failed()}`);
  process.stdout.write(out.join('\n') + '\n');
} finally {
  await synthetic?.stop();
  await stopChild(publisher);
  await stack.stop();
  // BENCH_KEEP=1 keeps the stack's logs (wrangler.log: the Worker's warnings and errors).
  if (process.env.BENCH_KEEP === '1') process.stderr.write(`logs kept in ${join(dir, 'logs')}\n`);
  else rmSync(dir, { recursive: true, force: true });
}
