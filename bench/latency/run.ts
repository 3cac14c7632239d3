// `npm run bench:latency`: the live path's latency and CPU on this machine, beside baselines
// measured the same way in the same run. Prints figures; asserts nothing.
//  1. publish: part complete at the transcoder → blocked playlist answered (p50/p99)
//  2. glass-to-glass at a client holding back PART-HOLD-BACK like hls.js (p50/p99)
//  3. transcoder CPU (node + its ffmpeg) against bare ffmpeg encoding the same ladder
//  4. baseline: ffmpeg's own HLS muxer (-f hls, 1 s segments) served as static files, a client
//     holding back HOLD-BACK (3 × TD) as a standard player does.
//  5. the real-time factor of each ladder preset (720p, 1080p, 2160p) with this node's encoders:
//     media seconds encoded per wall-clock second from an H.264 source of the preset's size (≥ 1
//     keeps up live). BENCH_PRESET_SECONDS (6) of media each; BENCH_ONLY=presets runs only this.
// Env: BENCH_SECONDS (20); BENCH_DIRECT=1 sends the transcoder's pushes and the client's requests
// to workerd's own socket instead of through wrangler's dev proxy (a local-only hop: see
// docs/benchmarks.md, "Live path"); X_LOCAL_OBSERVABILITY (false here: wrangler's local trace
// collector, a dev tool that records every invocation, is not part of the live path anywhere).
import { execSync, spawn, type ChildProcess } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, statSync, existsSync, createReadStream } from 'node:fs';
import { createServer } from 'node:http';
import { loadavg, tmpdir } from 'node:os';
import { join } from 'node:path';
import { createLogger } from '../../transcoder-node/log.ts';
import { buildLadderArgs } from '../../transcoder-node/ladder.ts';
import { detectVideoEncoders } from '../../transcoder-node/video-encoders.ts';
import { DEFAULT_LADDER, LADDER_PRESETS, type LadderPresetName } from '../../core/contracts/stream-config.ts';
import { freePort, startStack, startTestPublisher, stopChild } from '../../scripts/local-stack.ts';
import { treeCpuSeconds, workerdBehindProxy } from '../support/processes.ts';
import { followPlaylist, parsePlaylist, type ParsedPlaylist } from '../../test/support/llhls-client.ts';

const SECONDS = Number(process.env.BENCH_SECONDS ?? 20);
const DIRECT = process.env.BENCH_DIRECT === '1';
const PRESET_SECONDS = Number(process.env.BENCH_PRESET_SECONDS ?? 6);
const ONLY_PRESETS = process.env.BENCH_ONLY === 'presets';
process.env.X_LOCAL_OBSERVABILITY ??= 'false';
const log = createLogger({ service: 'bench-latency' });
const dir = mkdtempSync(join(tmpdir(), 'edgelive-bench-'));

function quantile(xs: number[], q: number): number {
  if (xs.length === 0) return NaN;
  const s = [...xs].sort((a, b) => a - b);
  return s[Math.min(s.length - 1, Math.floor(q * s.length))]!;
}
const fmt = (x: number, unit = 'ms') => (Number.isFinite(x) ? `${x.toFixed(unit === 's' ? 3 : 1)} ${unit}` : 'n/a');

async function cpuOver(pid: number, seconds: number): Promise<number> {
  const a = treeCpuSeconds(pid);
  await new Promise((r) => setTimeout(r, seconds * 1000));
  return (treeCpuSeconds(pid) - a) / seconds;
}

/** Playlist end in wall-clock ms: PDT of the last segment (or open segment) + its listed duration. */
function edgeWallClock(pl: ParsedPlaylist): number | null {
  const open = pl.preloadSegment;
  if (open?.dateTimeString && open.parts?.length) {
    return Date.parse(open.dateTimeString) + open.parts.reduce((n, p) => n + p.duration, 0) * 1000;
  }
  const last = pl.segments.at(-1);
  if (!last?.dateTimeString) return null;
  return Date.parse(last.dateTimeString) + last.duration * 1000;
}

async function measureEdgelive() {
  const stack = await startStack({
    persistDir: join(dir, 'state'),
    logDir: join(dir, 'logs'),
    adminToken: 'bench-admin',
    ingestSecret: 'bench-ingest',
    transcoderEnv: { LOG_LEVEL: 'debug' },
    logger: log,
  });
  let publisher: ChildProcess | undefined;
  try {
    const stream = await stack.createStream({ title: 'bench', ladder: DEFAULT_LADDER });
    let origin = stack.workerUrl;
    let node = { publishUrl: stream.ingest.rtmp, healthUrl: stack.transcoderHealthUrl, pid: stack.transcoder.pid!, log: 'transcoder.log' };
    if (DIRECT) {
      // A second transcoder that pushes to workerd's own socket; the client reads from it too.
      origin = (await workerdBehindProxy(stack.worker.pid!, stack.workerUrl)).url;
      const direct = await stack.startTranscoder({ nodeId: 'direct', env: { ORIGIN_URL: origin, LOG_LEVEL: 'debug' } });
      node = {
        publishUrl: `${direct.rtmpUrl}/${stream.streamKey}`,
        healthUrl: direct.healthUrl,
        pid: direct.process.pid!,
        log: 'transcoder-direct.log',
      };
      log.info('bypassing the dev proxy', { origin });
    }
    publisher = startTestPublisher({ rtmpUrl: node.publishUrl, logDir: join(dir, 'logs') });
    const url = `${origin}/live/${stream.id}/720p/index.m3u8`;
    for (let i = 0; i < 100; i++) {
      const res = await fetch(url);
      const ok = res.ok && parsePlaylist(await res.text()).segments.length >= 3;
      if (ok) break;
      await new Promise((r) => setTimeout(r, 300));
    }
    log.info('measuring edgelive', { seconds: SECONDS });
    const received = new Map<string, number>();
    const g2g: number[] = [];
    const cpuPromise = cpuOver(node.pid, SECONDS);
    const updates = Math.round(SECONDS / 0.2);
    const { violations } = await followPlaylist({
      url,
      updates,
      otherRenditions: DEFAULT_LADDER.length - 1,
      onSample: (s) => {
        if (!s.directives) return;
        const key = `${s.directives.msn}.${s.directives.part}`;
        if (!received.has(key)) received.set(key, s.receivedAt);
        const edge = edgeWallClock(s.playlist);
        const hold = (s.playlist.serverControl?.partHoldBack ?? 0) * 1000;
        if (edge !== null) g2g.push(s.receivedAt - (edge - hold));
      },
    });
    const cpu = await cpuPromise;
    // Pair each part's "ready" log line at the transcoder with the blocked answer that first carried it.
    const publish: number[] = [];
    const lines = readFileSync(join(dir, 'logs', node.log), 'utf8').split('\n');
    for (const line of lines) {
      if (!line.includes('"part ready"') || !line.includes('"rendition":"720p"')) continue;
      const e = JSON.parse(line) as { msn: number; part: number; at: number };
      let at = received.get(`${e.msn}.${e.part}`);
      // A request that rolled over (BR-06) waited for part 0 of the next segment.
      if (at === undefined && e.part === 0) {
        for (const [k, v] of received)
          if (k.startsWith(`${e.msn - 1}.`) && Number(k.split('.')[1]) > 0 && v >= e.at) at = at === undefined ? v : Math.min(at, v);
      }
      if (at !== undefined && at >= e.at) publish.push(at - e.at);
    }
    const metrics = (await (await fetch(node.healthUrl.replace('/health', '/metrics.json'))).json()) as {
      partPushMs: { p50: number; p99: number };
    };
    return { publish, g2g, cpu, violations: violations.length, pushMs: metrics.partPushMs };
  } finally {
    await stopChild(publisher);
    await stack.stop();
  }
}

/** Bare ffmpeg: the same ladder arguments, RTMP in (ffmpeg listening), outputs to /dev/null. */
async function measureBareFfmpeg() {
  const port = await freePort();
  const args = buildLadderArgs({
    input: { url: `rtmp://127.0.0.1:${port}/live/bench`, format: 'flv', options: ['-listen', '1'] },
    ladder: DEFAULT_LADDER,
  }).map((a) => (/^pipe:[3-9]$/.test(a) ? '/dev/null' : a));
  // -y: every output is /dev/null, which ffmpeg would otherwise refuse to overwrite.
  const ffmpeg = spawn('ffmpeg', ['-y', ...args], { stdio: ['ignore', 'ignore', 'ignore'] });
  await new Promise((r) => setTimeout(r, 1000));
  const publisher = startTestPublisher({ rtmpUrl: `rtmp://127.0.0.1:${port}/live/bench` });
  await new Promise((r) => setTimeout(r, 3000));
  const cpu = await cpuOver(ffmpeg.pid!, SECONDS);
  await stopChild(publisher);
  await stopChild(ffmpeg);
  return { cpu };
}

/** ffmpeg's HLS muxer with 1 s segments behind a static file server; a client polling like a standard player. */
async function measureFfmpegHls() {
  const port = await freePort();
  const httpPort = await freePort();
  const out = join(dir, 'hls');
  rmSync(out, { recursive: true, force: true });
  const { mkdirSync } = await import('node:fs');
  mkdirSync(out, { recursive: true });
  const server = createServer((req, res) => {
    const file = join(out, (req.url ?? '/').split('?')[0]!.replace(/\.\./g, ''));
    if (!existsSync(file) || !statSync(file).isFile()) {
      res.writeHead(404).end();
      return;
    }
    res.writeHead(200, { 'cache-control': 'no-cache' });
    createReadStream(file).pipe(res);
  });
  await new Promise<void>((r) => server.listen(httpPort, '127.0.0.1', r));
  const ffmpeg = spawn(
    'ffmpeg',
    [
      '-hide_banner',
      '-loglevel',
      'error',
      '-listen',
      '1',
      '-f',
      'flv',
      '-i',
      `rtmp://127.0.0.1:${port}/live/bench`,
      '-map',
      '0:v:0',
      '-map',
      '0:a:0',
      '-c:v',
      'libx264',
      '-preset',
      'veryfast',
      '-tune',
      'zerolatency',
      '-b:v',
      '2500k',
      '-g',
      '30',
      '-keyint_min',
      '30',
      '-sc_threshold',
      '0',
      '-c:a',
      'aac',
      '-b:a',
      '128k',
      '-f',
      'hls',
      '-hls_time',
      '1',
      '-hls_list_size',
      '10',
      '-hls_flags',
      'program_date_time+independent_segments+delete_segments',
      '-hls_segment_type',
      'fmp4',
      join(out, 'index.m3u8'),
    ],
    { stdio: ['ignore', 'ignore', 'ignore'] },
  );
  await new Promise((r) => setTimeout(r, 1000));
  const publisher = startTestPublisher({ rtmpUrl: `rtmp://127.0.0.1:${port}/live/bench` });
  const g2g: number[] = [];
  const url = `http://127.0.0.1:${httpPort}/index.m3u8`;
  const deadline = Date.now() + (SECONDS + 5) * 1000;
  let lastUri = '';
  while (Date.now() < deadline) {
    try {
      const res = await fetch(url);
      if (res.ok) {
        const pl = parsePlaylist(await res.text());
        const last = pl.segments.at(-1);
        if (last && last.uri !== lastUri && last.dateTimeString && Date.now() > deadline - SECONDS * 1000) {
          const edge = Date.parse(last.dateTimeString) + last.duration * 1000;
          // A standard player holds back HOLD-BACK = 3 × target duration from the end.
          g2g.push(Date.now() - (edge - 3 * pl.targetDuration * 1000));
        }
        if (last) lastUri = last.uri;
      } else await res.body?.cancel();
    } catch {
      // Not up yet.
    }
    // Poll at half the target duration, as a standard client does after an unchanged reload.
    await new Promise((r) => setTimeout(r, 500));
  }
  await stopChild(publisher);
  await stopChild(ffmpeg);
  server.close();
  return { g2g };
}

/** Each preset's ladder, as the node would run it, on a pre-encoded H.264 + AAC source of its size, as fast as it goes. */
async function measurePresets() {
  const encoders = await detectVideoEncoders({
    want: (process.env.VIDEO_ENCODER ?? 'auto') as 'auto',
    logger: log.child({ component: 'encoders' }),
  });
  const sizes: Record<LadderPresetName, string> = { '720p': '1280x720', '1080p': '1920x1080', '2160p': '3840x2160' };
  const results: Array<{ preset: LadderPresetName; size: string; rtf: number; wall: number; cpu: number }> = [];
  for (const preset of Object.keys(LADDER_PRESETS) as LadderPresetName[]) {
    const source = join(dir, `source-${preset}.mkv`);
    // The publisher's stream: H.264 (as OBS sends it, a keyframe every 2 s) and AAC, made first so its encoding is not measured.
    execSync(
      `ffmpeg -hide_banner -loglevel error -y -f lavfi -i testsrc2=size=${sizes[preset]}:rate=30 -f lavfi -i sine=sample_rate=48000 -t ${PRESET_SECONDS} -c:v libx264 -preset ultrafast -g 60 -b:v 20M -c:a aac ${source}`,
    );
    const args = buildLadderArgs({ input: { url: source }, ladder: LADDER_PRESETS[preset], encoders }).map((a) =>
      /^pipe:[3-9]$/.test(a) ? '/dev/null' : a,
    );
    const started = performance.now();
    const ffmpeg = spawn('ffmpeg', ['-y', ...args], { stdio: ['ignore', 'ignore', 'ignore'] });
    let cpu = 0;
    const sampler = setInterval(() => (cpu = Math.max(cpu, treeCpuSeconds(ffmpeg.pid!))), 200);
    await new Promise((r) => ffmpeg.once('close', r));
    clearInterval(sampler);
    const wall = (performance.now() - started) / 1000;
    results.push({ preset, size: sizes[preset], rtf: PRESET_SECONDS / wall, wall, cpu: cpu / wall });
  }
  return { encoders, results };
}

function presetLines(p: Awaited<ReturnType<typeof measurePresets>>): string[] {
  return [
    `ladder presets, real-time factor (media s per wall s; ≥ 1 keeps up live), ${p.encoders.family} encoders (${p.encoders.h264}), ${PRESET_SECONDS} s of 30 fps media each`,
    // CPU seconds per media second: the cores the preset needs to keep up live, whatever else the machine runs.
    ...p.results.map(
      (r) =>
        `  ${r.preset.padEnd(6)} ${r.size.padEnd(10)} ${LADDER_PRESETS[r.preset]
          .map((x) => x.name)
          .join('/')
          .padEnd(
            30,
          )} ${r.rtf.toFixed(2)}×  (${r.wall.toFixed(1)} s wall; ${((r.cpu * r.wall) / PRESET_SECONDS).toFixed(2)} CPU s per media s)`,
    ),
  ];
}

const loadBefore = loadavg();
if (ONLY_PRESETS) {
  try {
    const presets = await measurePresets();
    process.stdout.write(
      [
        '',
        ...presetLines(presets),
        `load average (1/5/15 min) before ${loadBefore.map((x) => x.toFixed(2)).join(' ')}, after ${loadavg()
          .map((x) => x.toFixed(2))
          .join(' ')}`,
        '',
      ].join('\n') + '\n',
    );
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
  process.exit(0);
}
try {
  const ours = await measureEdgelive();
  const bare = await measureBareFfmpeg();
  const hls = await measureFfmpegHls();
  const presets = await measurePresets();
  const lines = [
    '',
    `edgelive live path, ${SECONDS} s, default ladder (720p/480p/360p + AAC), 200 ms parts, 1 s segments${DIRECT ? ', workerd direct (no dev proxy)' : ''}`,
    `  publish (part ready → blocked playlist answered)  p50 ${fmt(quantile(ours.publish, 0.5))}  p99 ${fmt(quantile(ours.publish, 0.99))}  (n=${ours.publish.length})`,
    `  part push (ready → origin ack, transcoder)       p50 ${fmt(ours.pushMs.p50)}  p99 ${fmt(ours.pushMs.p99)}`,
    `  glass-to-glass, PART-HOLD-BACK client            p50 ${fmt(quantile(ours.g2g, 0.5) / 1000, 's')}  p99 ${fmt(quantile(ours.g2g, 0.99) / 1000, 's')}  (n=${ours.g2g.length})`,
    `  LL-HLS rule violations seen by the client        ${ours.violations}`,
    `  transcoder CPU (node + ffmpeg)                   ${ours.cpu.toFixed(2)} cores`,
    `baseline: bare ffmpeg, same ladder to /dev/null    ${bare.cpu.toFixed(2)} cores   → ratio ${(ours.cpu / bare.cpu).toFixed(2)}×`,
    `baseline: ffmpeg -f hls (1 s segments), static files, HOLD-BACK client`,
    `  glass-to-glass                                   p50 ${fmt(quantile(hls.g2g, 0.5) / 1000, 's')}  p99 ${fmt(quantile(hls.g2g, 0.99) / 1000, 's')}  (n=${hls.g2g.length})`,
    ...presetLines(presets),
    `load average (1/5/15 min) before ${loadBefore.map((x) => x.toFixed(2)).join(' ')}, after ${loadavg()
      .map((x) => x.toFixed(2))
      .join(' ')}; local observability ${process.env.X_LOCAL_OBSERVABILITY}`,
    '',
  ];
  process.stdout.write(lines.join('\n') + '\n');
} finally {
  rmSync(dir, { recursive: true, force: true });
}
