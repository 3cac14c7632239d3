// `npm run bench:cost`: what one stream-hour and one viewer-hour cost on Cloudflare, counted on
// the real local stack (wrangler dev, two media nodes, ffmpeg publishing the default ladder) for
// a short run and scaled to one hour (labelled as such), priced at list prices (prices.ts).
//  1. stream-hour, previous design (a node with BENCH_SEGMENT_COPY=1: every segment's bytes
//     pushed and written to R2 a second time) beside this design (each media byte written once),
//     in the same run: R2 Class A writes and bytes (read from the objects the run left in the
//     local R2 store), DO requests and Worker requests (one per push), SQLite rows written (the
//     per-push figures of test/workers/push-cost.test.ts), DO duration (always active while live).
//  2. viewer-hour: one LL-HLS viewer (blocking reloads, every part fetched as hinted, like
//     Safari/AVPlayer; hls.js makes the same number of requests) on the same stack: Worker
//     requests it makes, R2 reads behind them, and the Worker's CPU per request, priced, beside
//     Cloudflare Stream and Mux per viewer-hour.
// Env: BENCH_SECONDS (30, per phase). Prints figures; asserts nothing.
import { DatabaseSync } from 'node:sqlite';
import { mkdtempSync, readFileSync, readdirSync, rmSync } from 'node:fs';
import { loadavg, tmpdir } from 'node:os';
import { join } from 'node:path';
import type { ChildProcess } from 'node:child_process';
import { createLogger } from '../../transcoder-node/log.ts';
import { DEFAULT_LADDER } from '../../core/contracts/stream-config.ts';
import { startStack, startTestPublisher, stopChild, type Stack } from '../../scripts/local-stack.ts';
import { followPlaylist, parsePlaylist } from '../../test/support/llhls-client.ts';
import { DO_BILLED_GB, PRICES, PRICES_AS_OF } from './prices.ts';

const SECONDS = Number(process.env.BENCH_SECONDS ?? 30);
process.env.X_LOCAL_OBSERVABILITY ??= 'false';
const log = createLogger({ service: 'bench-cost' });
const dir = mkdtempSync(join(tmpdir(), 'edgelive-bench-cost-'));
const HOUR = 3600;
/** The default part target (stream-config.ts). */
const PART_SECONDS = 0.2;
const CLK_TCK = 100;
/** SQLite rows one push writes, from test/workers/push-cost.test.ts (rows and index entries). */
const ROWS_PER_PUSH = { init: 2, firstPart: 7, laterPart: 1, segment: 1 };

/** CPU seconds (user + system) used so far by a process and all its descendants. */
function treeCpuSeconds(pid: number): number {
  let total = 0;
  const visit = (p: number) => {
    try {
      const stat = readFileSync(`/proc/${p}/stat`, 'utf8');
      const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
      total += (Number(fields[11]) + Number(fields[12])) / CLK_TCK;
      for (const t of readdirSync(`/proc/${p}/task`)) {
        const children = readFileSync(`/proc/${p}/task/${t}/children`, 'utf8').trim();
        for (const c of children ? children.split(' ') : []) visit(Number(c));
      }
    } catch {
      // The process ended while we looked.
    }
  };
  visit(pid);
  return total;
}

interface StoredObject {
  key: string;
  size: number;
  uploaded: number;
}

/** Every object the local R2 store holds (miniflare's SQLite index of the bucket). */
function storedObjects(): StoredObject[] {
  const root = join(dir, 'state', 'v3', 'r2', 'miniflare-R2BucketObject');
  const out: StoredObject[] = [];
  for (const f of readdirSync(root).filter((n) => n.endsWith('.sqlite') && n !== 'metadata.sqlite')) {
    const db = new DatabaseSync(join(root, f), { readOnly: true });
    out.push(...(db.prepare('SELECT key, size, uploaded FROM _mf_objects').all() as unknown as StoredObject[]));
    db.close();
  }
  return out;
}

interface Window {
  streamId: string;
  from: number;
  to: number;
}

/** One stream-hour from the objects a stream stored in a window: every object key is written once. */
function streamHour(w: Window) {
  // live/{stream}/… and thumbs/{stream}/…: the stream id is the second path element of both.
  const objects = storedObjects().filter((o) => o.key.split('/')[1] === w.streamId && o.uploaded >= w.from && o.uploaded < w.to);
  const seconds = (w.to - w.from) / 1000;
  const kinds = { init: 0, part: 0, firstPart: 0, segmentObject: 0, thumbnail: 0 };
  let bytes = 0;
  const segments = new Set<string>();
  for (const o of objects) {
    bytes += o.size;
    const file = o.key.split('/').at(-1)!;
    if (o.key.startsWith('thumbs/')) kinds.thumbnail++;
    else if (file === 'init.mp4') kinds.init++;
    else if (/^\d+\.\d+\.m4s$/.test(file)) {
      kinds.part++;
      if (file.endsWith('.0.m4s')) kinds.firstPart++;
      segments.add(o.key.replace(/\.\d+\.m4s$/, ''));
    } else kinds.segmentObject++;
  }
  const segmentPushes = segments.size;
  const pushes = kinds.init + kinds.part + segmentPushes + kinds.thumbnail;
  const r2Writes = kinds.init + kinds.part + kinds.segmentObject + kinds.thumbnail;
  const rows =
    kinds.init * ROWS_PER_PUSH.init +
    kinds.firstPart * ROWS_PER_PUSH.firstPart +
    (kinds.part - kinds.firstPart) * ROWS_PER_PUSH.laterPart +
    segmentPushes * ROWS_PER_PUSH.segment;
  // Scaled by the media the run produced, not by wall-clock time: on a loaded machine the ladder
  // runs below real time, and an hour of a stream is an hour of media (parts are 0.2 s each).
  const mediaSeconds = (kinds.part * PART_SECONDS) / DEFAULT_LADDER.length;
  const scale = HOUR / mediaSeconds;
  // Init segments are written once per epoch (one per rendition), not per second of media: an
  // hour of one broadcast has DEFAULT_LADDER.length of them, whatever the run caught.
  const inits = DEFAULT_LADDER.length;
  const perHour = {
    r2ClassA: (r2Writes - kinds.init) * scale + inits,
    bytesWritten: bytes * scale,
    doRequests: (pushes - kinds.init) * scale + inits,
    workerRequests: (pushes - kinds.init) * scale + inits,
    rowsWritten: (rows - kinds.init * ROWS_PER_PUSH.init) * scale + inits * ROWS_PER_PUSH.init,
    parts: kinds.part * scale,
    segmentObjects: kinds.segmentObject * scale,
  };
  const dollars = {
    r2ClassA: perHour.r2ClassA * PRICES.r2ClassA,
    r2StorageMonth: (perHour.bytesWritten / 1e9) * PRICES.r2StorageGbMonth,
    doRequests: perHour.doRequests * PRICES.doRequest,
    doDuration: HOUR * DO_BILLED_GB * PRICES.doGbSecond,
    rowsWritten: perHour.rowsWritten * PRICES.doRowWritten,
    workerRequests: perHour.workerRequests * PRICES.workerRequest,
  };
  const total = Object.values(dollars).reduce((a, b) => a + b, 0);
  return { seconds, mediaSeconds, counted: { ...kinds, segmentPushes, pushes, r2Writes, bytes, rows }, perHour, dollars, total };
}

async function waitForLive(url: string): Promise<void> {
  for (let i = 0; i < 200; i++) {
    const res = await fetch(url).catch(() => null);
    const text = res ? await res.text() : '';
    if (res?.ok && parsePlaylist(text).segments.length >= 3) return;
    await new Promise((r) => setTimeout(r, 300));
  }
  throw new Error(`${url} never went live`);
}

/** Publishes the default ladder to `node` for SECONDS after the stream is live; returns the measured window. */
async function publishPhase(stack: Stack, rtmpBase: string, label: string, during?: (streamId: string) => Promise<void>): Promise<Window> {
  const stream = await stack.createStream({ title: `bench-cost ${label}`, ladder: DEFAULT_LADDER });
  let publisher: ChildProcess | undefined;
  try {
    publisher = startTestPublisher({ rtmpUrl: `${rtmpBase}/${stream.streamKey}`, logDir: join(dir, 'logs') });
    await waitForLive(`${stack.workerUrl}/live/${stream.id}/720p/index.m3u8`);
    log.info('measuring', { label, seconds: SECONDS });
    const from = Date.now();
    await new Promise((r) => setTimeout(r, SECONDS * 1000));
    const to = Date.now();
    if (during) await during(stream.id);
    return { streamId: stream.id, from, to };
  } finally {
    await stopChild(publisher);
  }
}

/** One LL-HLS viewer for SECONDS: its requests, and the Worker's CPU beside the same time without it. */
async function viewerPhase(stack: Stack, streamId: string) {
  const wranglerPid = stack.worker.pid!;
  const idle0 = treeCpuSeconds(wranglerPid);
  await new Promise((r) => setTimeout(r, SECONDS * 1000));
  const ingestOnlyCpu = treeCpuSeconds(wranglerPid) - idle0;
  const url = `${stack.workerUrl}/live/${streamId}/720p/index.m3u8`;
  const started = Date.now();
  const cpu0 = treeCpuSeconds(wranglerPid);
  const { samples, hints, violations } = await followPlaylist({
    url,
    updates: Math.round(SECONDS / 0.2),
    otherRenditions: DEFAULT_LADDER.length - 1,
    fetchHints: true,
  });
  const withViewerCpu = treeCpuSeconds(wranglerPid) - cpu0;
  const seconds = (Date.now() - started) / 1000;
  const requests = samples.length + hints.length;
  const cpuMsPerRequest = (Math.max(0, withViewerCpu - ingestOnlyCpu * (seconds / SECONDS)) * 1000) / requests;
  return {
    seconds,
    playlists: samples.length,
    parts: hints.length,
    requests,
    violations: violations.length,
    cpuMsPerRequest,
    ingestOnlyCpuPerSecond: ingestOnlyCpu / SECONDS,
  };
}

const money = (x: number) => (x >= 0.01 ? `$${x.toFixed(4)}` : `$${x.toPrecision(3)}`);
const n = (x: number) => Math.round(x).toLocaleString('en-US');

async function main() {
  const stack = await startStack({
    persistDir: join(dir, 'state'),
    logDir: join(dir, 'logs'),
    adminToken: 'bench-admin',
    ingestSecret: 'bench-ingest',
    transcoders: [{ nodeId: 'once' }, { nodeId: 'copy', env: { BENCH_SEGMENT_COPY: '1' } }],
    logger: log,
  });
  const load = [loadavg()[0]!];
  try {
    const [once, copy] = stack.nodes;
    const before = await publishPhase(stack, copy!.rtmpUrl, 'previous design (segment copy)');
    load.push(loadavg()[0]!);
    let viewer: Awaited<ReturnType<typeof viewerPhase>> | null = null;
    const after = await publishPhase(stack, once!.rtmpUrl, 'this design (each byte once)', async (id) => {
      viewer = await viewerPhase(stack, id);
    });
    load.push(loadavg()[0]!);
    const b = streamHour(before);
    const a = streamHour(after);
    console.log(
      `\nbench:cost — ${SECONDS} s per phase on the local stack (media encoded: previous ${b.mediaSeconds.toFixed(1)} s, this ${a.mediaSeconds.toFixed(1)} s), SCALED TO ONE HOUR OF MEDIA; default ladder ${DEFAULT_LADDER.map((r) => r.name).join(' + ')}, 0.2 s parts, 1 s segments`,
    );
    console.log(`prices: ${PRICES_AS_OF}; load average during the run: ${load.map((l) => l.toFixed(1)).join(' → ')}\n`);
    const row = (label: string, f: (x: typeof a) => string) => console.log(`${label.padEnd(34)}${f(b).padStart(16)}${f(a).padStart(16)}`);
    console.log(`${'per stream-hour'.padEnd(34)}${'previous'.padStart(16)}${'this design'.padStart(16)}`);
    row('R2 Class A writes', (x) => n(x.perHour.r2ClassA));
    row('  of which parts', (x) => n(x.perHour.parts));
    row('  of which segment copies', (x) => n(x.perHour.segmentObjects));
    row('R2 bytes written (GB)', (x) => (x.perHour.bytesWritten / 1e9).toFixed(3));
    row('DO requests (= pushes)', (x) => n(x.perHour.doRequests));
    row('Worker requests (= pushes)', (x) => n(x.perHour.workerRequests));
    row('DO SQLite rows written', (x) => n(x.perHour.rowsWritten));
    row('$ R2 Class A', (x) => money(x.dollars.r2ClassA));
    row('$ R2 storage (the hour kept 1 month)', (x) => money(x.dollars.r2StorageMonth));
    row('$ DO requests', (x) => money(x.dollars.doRequests));
    row('$ DO duration (128 MB, 3600 s)', (x) => money(x.dollars.doDuration));
    row('$ DO rows written', (x) => money(x.dollars.rowsWritten));
    row('$ Worker requests', (x) => money(x.dollars.workerRequests));
    row('$ total per stream-hour', (x) => money(x.total));
    console.log(
      `(counted: previous ${JSON.stringify(b.counted)} in ${b.seconds.toFixed(1)} s; this ${JSON.stringify(a.counted)} in ${a.seconds.toFixed(1)} s)`,
    );
    const v = viewer as Awaited<ReturnType<typeof viewerPhase>> | null;
    if (v) {
      const scale = HOUR / v.seconds;
      const requests = v.requests * scale;
      const cpuMs = v.cpuMsPerRequest * requests;
      // Every part a viewer fetches is one R2 read per colo (then the colo cache): one viewer alone is the worst case.
      const r2Reads = v.parts * scale;
      const edgelive = requests * PRICES.workerRequest + cpuMs * PRICES.workerCpuMs;
      console.log(
        `\nper viewer-hour (one LL-HLS viewer, ${v.seconds.toFixed(1)} s measured, SCALED TO ONE HOUR; ${v.violations} rule violations)`,
      );
      console.log(
        `  Worker requests          ${n(requests)} (${n(v.playlists * scale)} playlists + ${n(v.parts * scale)} parts; ${(v.requests / v.seconds).toFixed(1)}/s)`,
      );
      console.log(
        `  Worker CPU               ${v.cpuMsPerRequest.toFixed(2)} ms per request (wrangler dev: workerd + its dev proxy, beyond the ingest-only CPU) → ${n(cpuMs)} ms`,
      );
      console.log(
        `  $ Workers                ${money(edgelive)} (requests ${money(requests * PRICES.workerRequest)} + CPU ${money(cpuMs * PRICES.workerCpuMs)})`,
      );
      console.log(
        `  R2 Class B, sole viewer  ${n(r2Reads)} → ${money(r2Reads * PRICES.r2ClassB)} (per colo, shared by every viewer there)`,
      );
      console.log(`  Cloudflare Stream        ${money(60 * PRICES.cloudflareStreamPerMinute)} ($1 per 1,000 minutes delivered)`);
      console.log(`  Mux (list)               ${money(60 * PRICES.muxPerMinute[0])}–${money(60 * PRICES.muxPerMinute[1])}`);
    }
  } finally {
    await stack.stop();
    rmSync(dir, { recursive: true, force: true });
  }
}

await main();
