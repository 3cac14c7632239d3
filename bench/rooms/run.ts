// Rooms benchmark: N real WebSocket clients in one room on this machine, sending chat and
// reactions at a steady rate, against the local stack (workerd through wrangler's test harness)
// and, in the same run, against a bare `ws` broadcast server as the baseline. Prints delivery
// latency p50/p99, messages lost, and the clock-sync error of clients given an artificial offset
// and 40 ± 10 ms of one-way network jitter. Asserts nothing; bounded in time; loopback only.
//
//   npm run bench:rooms -- [--sizes 1000,5000,10000] [--seconds 15] [--chat 20] [--reactions 100]
//                          [--clock-clients 1000] [--jitter 40,10] [--skip-baseline] [--direct]
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { readdirSync, readFileSync } from 'node:fs';
import { loadavg } from 'node:os';
import { monitorEventLoopDelay } from 'node:perf_hooks';
import { fileURLToPath } from 'node:url';
import { createLogger } from '../../transcoder-node/log.ts';
import { LoadClient, RunMetrics, clockReference, connectAll, type ClockSim } from './load.ts';
import { configureRoom, startRoomStack } from './stack.ts';

const log = createLogger({ service: 'bench-rooms' });

interface Options {
  sizes: number[];
  seconds: number;
  chatPerSec: number;
  reactionsPerSec: number;
  clockClients: number;
  jitter: { mean: number; spread: number };
  baseline: boolean;
  /** Hold every socket on the Room itself (no shards), for comparison. */
  direct: boolean;
  drainSeconds: number;
  pings: number;
  pingGapMs: number;
  /** Where the throwaway storage directory goes (default: the OS temp dir). */
  persistIn?: string;
}

function parseArgs(argv: string[]): Options {
  const get = (name: string) => {
    const i = argv.indexOf(`--${name}`);
    return i >= 0 ? argv[i + 1] : undefined;
  };
  const jitter = (get('jitter') ?? '40,10').split(',').map(Number);
  return {
    sizes: (get('sizes') ?? '1000,5000,10000').split(',').map(Number),
    seconds: Number(get('seconds') ?? 15),
    chatPerSec: Number(get('chat') ?? 20),
    reactionsPerSec: Number(get('reactions') ?? 100),
    clockClients: Number(get('clock-clients') ?? 1000),
    jitter: { mean: jitter[0] ?? 40, spread: jitter[1] ?? 10 },
    baseline: !argv.includes('--skip-baseline'),
    direct: argv.includes('--direct'),
    drainSeconds: Number(get('drain') ?? 15),
    pings: Number(get('pings') ?? 48),
    pingGapMs: Number(get('ping-gap') ?? 400),
    ...(get('persist-in') ? { persistIn: get('persist-in')! } : {}),
  };
}

/**
 * Every client is a file descriptor here (and one more in the server process). `ulimit -n` is
 * a shell setting and Node cannot raise its own limit, so if the soft limit is too low the
 * bench re-runs itself under a shell that raises it to the hard limit.
 */
function fileLimits(): { soft: number; hard: number } {
  const limits = readFileSync('/proc/self/limits', 'utf8');
  const m = /Max open files\s+(\d+|unlimited)\s+(\d+|unlimited)/.exec(limits);
  return {
    soft: m?.[1] === 'unlimited' ? Infinity : Number(m?.[1] ?? 1024),
    hard: m?.[2] === 'unlimited' ? Infinity : Number(m?.[2] ?? 1024),
  };
}

/**
 * The most sockets the local workerd can hold: it uses two descriptors per WebSocket (measured:
 * 408 for 200 sockets) and inherits our limit, which a shell can only raise up to the hard limit.
 */
function localSocketCap(): number {
  return Math.floor((fileLimits().soft - 400) / 2);
}

function ensureFileLimit(needed: number): void {
  const { soft, hard } = fileLimits();
  if (soft >= needed || soft >= hard) return; // enough, or as much as this shell may have
  if (process.env.BENCH_ROOMS_REEXEC) {
    log.warn('file limit still low after raising it', { soft, needed });
    return;
  }
  const target = hard === Infinity ? needed : Math.min(hard, Math.max(needed, soft));
  log.info('raising the open-file limit and re-running', { soft, hard, target });
  const r = spawnSync(
    'sh',
    ['-c', `ulimit -n ${target} && exec "$0" "$@"`, process.execPath, ...process.execArgv, ...process.argv.slice(1)],
    {
      stdio: 'inherit',
      env: { ...process.env, BENCH_ROOMS_REEXEC: '1' },
    },
  );
  process.exit(r.status ?? 1);
}

/** CPU seconds used so far by this process's workerd children (user + system). */
function workerdCpuSeconds(): number {
  let ticks = 0;
  for (const pid of readdirSync('/proc').filter((d) => /^\d+$/.test(d))) {
    try {
      const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
      const close = stat.lastIndexOf(')');
      const comm = stat.slice(stat.indexOf('(') + 1, close);
      const fields = stat.slice(close + 2).split(' ');
      if (comm !== 'workerd' || Number(fields[1]) !== process.pid) continue;
      ticks += Number(fields[11]) + Number(fields[12]);
    } catch {
      /* gone */
    }
  }
  return ticks / 100;
}

function childCpuSeconds(pid: number): number {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
    return (Number(fields[11]) + Number(fields[12])) / 100;
  } catch {
    return 0;
  }
}

interface RunResult {
  system: string;
  n: number;
  connectSeconds: number;
  chatSent: number;
  expected: number;
  delivered: number;
  lost: number;
  duplicates: number;
  gaps: number;
  p50: number;
  p99: number;
  max: number;
  reactionsSent: number;
  reactionsLost: number;
  framesPerClientPerSec: number;
  spreadP50: number;
  spreadP99: number;
  /** Server CPU per frame delivered to a socket (µs). */
  serverUsPerFrame: number;
  serverCpu: number;
  clientCpu: number;
  loopLagP99: number;
  /** The machine's 1-minute load average at the end of the steady phase (2 cores). */
  load: number;
  clock?: {
    clients: number;
    p50: number;
    p99: number;
    p50w48: number;
    p99w48: number;
    minDelayP50: number;
    minDelayP99: number;
    samplesMedian: number;
  };
  /** Where the room's objects spent their time during the steady phase (edgelive only). */
  holders?: string[];
}

function quantile(sorted: number[], q: number): number {
  if (sorted.length === 0) return NaN;
  return sorted[Math.min(sorted.length - 1, Math.ceil(q * sorted.length) - 1)]!;
}

/** One measured run: connect, steady load, drain, tally. */
async function measure(
  system: string,
  n: number,
  url: (i: number) => string,
  opts: Options,
  serverCpu: () => number,
  ready: () => Promise<void>,
  stats?: () => Promise<RoomStats>,
): Promise<RunResult> {
  const maxMessages = Math.ceil(opts.chatPerSec * opts.seconds) + 16;
  const metrics = new RunMetrics(maxMessages);
  const clockEvery = Math.max(1, Math.floor(n / Math.min(n, opts.clockClients)));
  const jitter = () => opts.jitter.mean - opts.jitter.spread + Math.random() * 2 * opts.jitter.spread;
  const t0 = performance.now();
  const clients = await connectAll(
    (i) => {
      const clock: ClockSim | null =
        system === 'edgelive' && i % clockEvery === 0 ? { offsetMs: (Math.random() * 2 - 1) * 3_600_000, delay: jitter } : null;
      return new LoadClient(url(i), metrics, clock);
    },
    n,
    64,
  );
  const connectSeconds = (performance.now() - t0) / 1000;
  log.info('connected', { system, n, seconds: connectSeconds.toFixed(1) });
  await ready();
  await new Promise((r) => setTimeout(r, 1500)); // let the join storm's batches drain
  metrics.frames = 0;

  // Steady phase: chat and reactions from random clients on a fixed schedule.
  const lag = monitorEventLoopDelay({ resolution: 10 });
  lag.enable();
  const stats0 = stats ? await stats() : null;
  const cpu0 = serverCpu();
  const me0 = process.cpuUsage();
  const start = performance.now();
  let chatSent = 0;
  let reactionsSent = 0;
  await new Promise<void>((resolve) => {
    const timer = setInterval(() => {
      const elapsed = (performance.now() - start) / 1000;
      const dueChat = Math.min(maxMessages - 16, Math.floor(elapsed * opts.chatPerSec));
      while (chatSent < dueChat) {
        const c = clients[Math.floor(Math.random() * n)]!;
        c.send(JSON.stringify({ type: 'chat', text: `bench:${chatSent}:${Date.now()}` }));
        chatSent++;
      }
      const dueReactions = Math.floor(elapsed * opts.reactionsPerSec);
      while (reactionsSent < dueReactions) {
        const c = clients[Math.floor(Math.random() * n)]!;
        c.send(JSON.stringify({ type: 'react', reaction: 'like' }));
        reactionsSent++;
      }
      if (elapsed >= opts.seconds) {
        clearInterval(timer);
        resolve();
      }
    }, 5);
  });
  const steadySeconds = (performance.now() - start) / 1000;
  const steadyFrames = metrics.frames;
  const steadyLoad = loadavg()[0]!;
  const serverCpuUsed = serverCpu() - cpu0;
  const me = process.cpuUsage(me0);
  lag.disable();
  const holders = stats && stats0 ? describeStats(stats0, await stats(), steadySeconds) : undefined;

  // Drain: wait until every message reached every client, or give up.
  const expected = chatSent * n;
  const deadline = performance.now() + opts.drainSeconds * 1000;
  const deliveredNow = () => {
    let d = 0;
    for (let i = 0; i < chatSent; i++) d += metrics.deliveries[i]!;
    return d;
  };
  while (performance.now() < deadline) {
    const reactionsDone = clients.every((c) => c.reactions >= reactionsSent);
    if (deliveredNow() >= expected && reactionsDone) break;
    await new Promise((r) => setTimeout(r, 100));
  }
  const delivered = deliveredNow();
  const spread = metrics.spread(chatSent, n);
  let reactionsLost = 0;
  for (const c of clients) reactionsLost += Math.max(0, reactionsSent - c.reactions);

  // Clock phase: the clock clients ping through the simulated network, spread evenly in time.
  let clock: RunResult['clock'];
  const clockClients = clients.filter((c) => c.clock);
  if (clockClients.length) {
    const gap = opts.pingGapMs;
    for (let round = 0; round < opts.pings; round++) {
      clockClients.forEach((c, i) => setTimeout(() => c.ping(), (i / clockClients.length) * gap));
      await new Promise((r) => setTimeout(r, gap));
    }
    await new Promise((r) => setTimeout(r, 4 * (opts.jitter.mean + opts.jitter.spread) + 500));
    const ref = clockReference();
    const errs = clockClients.map((c) => c.clockError(ref)).filter((e) => e !== null);
    const b = errs.map((e) => e.bounds).sort((x, y) => x - y);
    const md = errs.map((e) => e.minDelay).sort((x, y) => x - y);
    const b48 = errs.map((e) => e.bounds48).sort((x, y) => x - y);
    const samples = errs.map((e) => e.samples).sort((x, y) => x - y);
    clock = {
      clients: errs.length,
      p50: quantile(b, 0.5),
      p99: quantile(b, 0.99),
      p50w48: quantile(b48, 0.5),
      p99w48: quantile(b48, 0.99),
      minDelayP50: quantile(md, 0.5),
      minDelayP99: quantile(md, 0.99),
      samplesMedian: quantile(samples, 0.5),
    };
  }
  const closedEarly = clients.filter((c) => c.closedCode !== null);
  if (closedEarly.length) {
    const codes: Record<string, number> = {};
    for (const c of closedEarly) codes[String(c.closedCode)] = (codes[String(c.closedCode)] ?? 0) + 1;
    log.warn('clients were disconnected during the run', { system, n, closedEarly: closedEarly.length, codes });
  }
  for (const c of clients) c.close();
  return {
    system,
    n,
    connectSeconds,
    chatSent,
    expected,
    delivered,
    lost: expected - delivered,
    duplicates: metrics.duplicates,
    gaps: metrics.gaps,
    p50: metrics.latency.quantile(0.5),
    p99: metrics.latency.quantile(0.99),
    max: metrics.latency.max,
    reactionsSent,
    reactionsLost,
    framesPerClientPerSec: steadyFrames / n / steadySeconds,
    spreadP50: spread.p50,
    spreadP99: spread.p99,
    serverUsPerFrame: (serverCpuUsed * 1e6) / Math.max(1, steadyFrames),
    serverCpu: serverCpuUsed / steadySeconds,
    clientCpu: (me.user + me.system) / 1e6 / steadySeconds,
    loopLagP99: lag.percentile(99) / 1e6,
    load: steadyLoad,
    ...(clock ? { clock } : {}),
    ...(holders ? { holders } : {}),
  };
}

type Counts = Record<string, { n: number; ms: number; items: number }>;
interface RoomStats {
  room: Counts;
  shards: Array<{ index: number; counts: Counts }>;
}

/** One line per object: broadcasts, sends, time per send, merged frames, and its other work. */
function describeStats(a: RoomStats, b: RoomStats, seconds: number): string[] {
  const diff = (x: Counts | undefined, y: Counts, k: string) => ({
    n: (y[k]?.n ?? 0) - (x?.[k]?.n ?? 0),
    ms: (y[k]?.ms ?? 0) - (x?.[k]?.ms ?? 0),
    items: (y[k]?.items ?? 0) - (x?.[k]?.items ?? 0),
  });
  const line = (name: string, x: Counts | undefined, y: Counts) => {
    const bc = diff(x, y, 'broadcast');
    const merged = diff(x, y, 'merged');
    const rest = Object.keys(y)
      .filter((k) => !['broadcast', 'merged', 'frame in'].includes(k))
      .map((k) => {
        const d = diff(x, y, k);
        return d.n ? `${k} ${d.n}× ${d.ms.toFixed(0)} ms` : '';
      })
      .filter(Boolean)
      .join(', ');
    const perSend = bc.items ? ((bc.ms * 1000) / bc.items).toFixed(1) : '-';
    return `${name}: ${bc.n} broadcasts, ${bc.items} sends, ${bc.ms.toFixed(0)} ms (${(bc.ms / 10 / seconds) | 0}% of the run), ${perSend} µs/send; ${merged.n} merged frames covering ${merged.items} batches; frames in ${diff(x, y, 'frame in').items}; ${rest}`;
  };
  const out = [line('Room', a.room, b.room)];
  for (const s of b.shards) out.push(line(`shard ${s.index}`, a.shards.find((t) => t.index === s.index)?.counts, s.counts));
  return out;
}

async function startBaseline(): Promise<{ port: number; child: ChildProcess }> {
  const child = spawn(process.execPath, [fileURLToPath(new URL('./baseline-server.ts', import.meta.url))], {
    stdio: ['ignore', 'pipe', 'inherit'],
  });
  const port = await new Promise<number>((resolve, reject) => {
    child.stdout!.once('data', (d: Buffer) => resolve((JSON.parse(d.toString()) as { port: number }).port));
    child.once('exit', (code) => reject(new Error(`baseline exited ${code}`)));
  });
  return { port, child };
}

function table(results: RunResult[]): string {
  const head = [
    'system',
    'N',
    'connect s',
    'chat sent',
    'delivered/expected',
    'undelivered after drain',
    'p50 ms',
    'p99 ms',
    'max ms',
    'reactions undelivered',
    'gaps',
    'frames/client/s',
    'fan-out spread p50/p99 ms',
    'server µs/frame',
    'server CPU',
    'bench CPU',
    'bench loop lag p99 ms',
    'machine load',
  ];
  const rows = results.map((r) => [
    r.system,
    String(r.n),
    r.connectSeconds.toFixed(1),
    String(r.chatSent),
    `${r.delivered}/${r.expected}`,
    String(r.lost),
    String(r.p50),
    String(r.p99),
    r.max.toFixed(0),
    String(r.reactionsLost),
    String(r.gaps),
    r.framesPerClientPerSec.toFixed(1),
    `${r.spreadP50.toFixed(0)}/${r.spreadP99.toFixed(0)}`,
    r.serverUsPerFrame.toFixed(0),
    `${(r.serverCpu * 100).toFixed(0)}%`,
    `${(r.clientCpu * 100).toFixed(0)}%`,
    r.loopLagP99.toFixed(0),
    r.load.toFixed(1),
  ]);
  const lines = [head, ...rows].map((cols) => `| ${cols.join(' | ')} |`);
  lines.splice(1, 0, `|${head.map(() => '---').join('|')}|`);
  return lines.join('\n');
}

async function main(): Promise<void> {
  const opts = parseArgs(process.argv.slice(2));
  ensureFileLimit(2 * Math.max(...opts.sizes) + 400);
  log.info('options', { ...opts });
  const cap = localSocketCap();
  const results: RunResult[] = [];

  const stack = await startRoomStack(opts.persistIn ? { persistIn: opts.persistIn } : {});
  log.info('stack up', { origin: stack.origin, direct: stack.directOrigin });
  try {
    for (const requested of opts.sizes) {
      const n = Math.min(requested, cap);
      if (n < requested) log.warn('capping N at what one local workerd process can hold', { requested, n, fileLimit: fileLimits() });
      const room = `bench-${n}-${Date.now()}`;
      if (opts.direct) await configureRoom(stack, room, { directCapacity: 32_000 });
      const wsOrigin = stack.directOrigin.replace(/^http/, 'ws');
      const r = await measure(
        'edgelive',
        n,
        (i) => `${wsOrigin}/rooms/${room}/ws?v=1&name=viewer${i}`,
        opts,
        workerdCpuSeconds,
        async () => {
          // Wait until the room counts everyone (shards report joins asynchronously).
          for (let i = 0; i < 600; i++) {
            const info = (await (await fetch(`${stack.directOrigin}/rooms/${room}`)).json()) as { viewers: number; shards: unknown[] };
            if (info.viewers >= n) {
              log.info('room ready', { n, shards: info.shards });
              return;
            }
            await new Promise((res) => setTimeout(res, 100));
          }
          log.warn('room did not report every viewer', { n });
        },
        async () =>
          (await (
            await fetch(`${stack.directOrigin}/rooms/${room}/stats`, { headers: { authorization: `Bearer ${stack.adminToken}` } })
          ).json()) as RoomStats,
      );
      results.push(r);
      log.info('result', { ...r });
      await new Promise((res) => setTimeout(res, 2000));

      if (opts.baseline) {
        const b = await startBaseline();
        const br = await measure(
          'bare ws',
          n,
          () => `ws://127.0.0.1:${b.port}/`,
          opts,
          () => childCpuSeconds(b.child.pid!),
          async () => {},
        );
        results.push(br);
        log.info('result', { ...br });
        b.child.kill('SIGTERM');
        await new Promise((res) => setTimeout(res, 1000));
      }
    }
  } finally {
    await stack.close();
  }

  const out: string[] = [];
  out.push(
    `rooms benchmark — ${new Date().toISOString()} — node ${process.version}, ${opts.seconds} s steady, chat ${opts.chatPerSec}/s, reactions ${opts.reactionsPerSec}/s (room totals)`,
  );
  if (opts.sizes.some((n) => n > cap)) {
    out.push(
      `note: N capped at ${cap}: local workerd holds two file descriptors per WebSocket and the hard limit here is ${fileLimits().hard}`,
    );
  }
  out.push('');
  out.push(table(results));
  out.push('');
  out.push(
    `clock sync (edgelive, after the load phase, clients still connected): artificial offsets up to ±1 h, one-way jitter ${opts.jitter.mean} ± ${opts.jitter.spread} ms each way, ${opts.pings} pings per clock client ${opts.pingGapMs} ms apart`,
  );
  out.push(
    '| N | clock clients | error p50 ms (32 samples, client default) | error p99 ms (32) | p50 (48 samples) | p99 (48) | lowest-delay sample only p50 | lowest-delay only p99 |',
  );
  out.push('|---|---|---|---|---|---|---|---|');
  for (const r of results) {
    if (!r.clock) continue;
    const c = r.clock;
    out.push(
      `| ${r.n} | ${c.clients} | ${c.p50.toFixed(2)} | ${c.p99.toFixed(2)} | ${c.p50w48.toFixed(2)} | ${c.p99w48.toFixed(2)} | ${c.minDelayP50.toFixed(2)} | ${c.minDelayP99.toFixed(2)} |`,
    );
  }
  for (const r of results) {
    if (!r.holders) continue;
    out.push('');
    out.push(`where the time went, edgelive N=${r.n} (steady phase, wall time inside each object):`);
    for (const line of r.holders) out.push(`  ${line}`);
  }
  process.stdout.write(out.join('\n') + '\n');
}

main().then(
  () => process.exit(0),
  (err: unknown) => {
    log.error('bench failed', { error: err instanceof Error ? err.stack : String(err) });
    process.exit(1);
  },
);
