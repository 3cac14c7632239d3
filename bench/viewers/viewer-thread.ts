// One client thread of `bench:viewers`: a share of the simulated viewers, each following its
// renditions' live playlists with blocking reloads and fetching every listed part in order, as
// hls.js does, on its own keep-alive connections. Reports what each viewer saw and when.
import { Agent, request } from 'node:http';
import { gunzipSync } from 'node:zlib';
import { parentPort, workerData } from 'node:worker_threads';
import { partAfter, scanMediaPlaylist, type ScannedPart } from './scan.ts';

export interface ThreadConfig {
  origin: string;
  streamId: string;
  renditions: string[];
  viewers: number;
  /** Viewers join spread over this many ms from the start (not all in the same millisecond). */
  joinSpreadMs: number;
  /** Requests that start inside [windowStart, windowEnd) are counted. */
  windowStart: number;
  windowEnd: number;
  /** Every viewer stops at this time (ms since the Unix epoch). */
  stopAt: number;
  gzip: boolean;
}

/** Per rendition, per viewer: [msn, index, receivedAt, fetchedAt (0 = never), status] per part listed. */
export interface ThreadResult {
  seen: Record<string, Float64Array[]>;
  requests: { playlist: number; part: number; multivariant: number };
  /** Parts answered from the isolate's memory (or a read in flight for another viewer), the colo cache, R2. */
  partsFromIsolate: number;
  partsFromCache: number;
  partsFromOrigin: number;
  errors: Record<string, number>;
  /** ms from asking for a part to its last byte, in the window. */
  partFetchMs: number[];
}

const cfg = workerData as ThreadConfig;
const url = new URL(cfg.origin);
const PART_HOLD_BACK_PARTS = 3;
const result: ThreadResult = {
  seen: {},
  requests: { playlist: 0, part: 0, multivariant: 0 },
  partsFromIsolate: 0,
  partsFromCache: 0,
  partsFromOrigin: 0,
  errors: {},
  partFetchMs: [],
};
for (const r of cfg.renditions) result.seen[r] = [];

interface Answer {
  status: number;
  body: Buffer;
  /** x-edgelive-source (isolate, cache, r2), else HIT from cf-cache-status (a Cache API answer). */
  cache: string | undefined;
  error?: string;
}

/** No answer within this long counts as a timeout, whatever state the socket is in. */
const ANSWER_DEADLINE_MS = 15_000;

function get(agent: Agent, path: string): Promise<Answer> {
  return new Promise((done) => {
    // Settled once: by the answer, an error, or the deadline (an answer cut after its headers
    // emits neither 'end' nor always 'error'; a starved server can leave a socket open and silent).
    let settled = false;
    const resolve = (a: Answer) => {
      if (settled) return;
      settled = true;
      clearTimeout(deadline);
      done(a);
    };
    const deadline = setTimeout(() => {
      resolve({ status: 0, body: Buffer.alloc(0), cache: undefined, error: 'TIMEOUT' });
      req.destroy();
    }, ANSWER_DEADLINE_MS);
    const req = request(
      { host: url.hostname, port: url.port, path, agent, headers: cfg.gzip ? { 'accept-encoding': 'gzip' } : {}, timeout: 10_000 },
      (res) => {
        const chunks: Buffer[] = [];
        res.on('data', (c: Buffer) => chunks.push(c));
        res.on('end', () => {
          let body = Buffer.concat(chunks);
          if (res.headers['content-encoding'] === 'gzip') body = gunzipSync(body);
          resolve({
            status: res.statusCode ?? 0,
            body,
            cache: (res.headers['x-edgelive-source'] ?? (res.headers['cf-cache-status'] === 'HIT' ? 'cache' : 'r2')) as string,
          });
        });
        res.on('error', (e) =>
          resolve({ status: 0, body: Buffer.alloc(0), cache: undefined, error: (e as NodeJS.ErrnoException).code ?? e.message }),
        );
        res.on('aborted', () => resolve({ status: 0, body: Buffer.alloc(0), cache: undefined, error: 'ABORTED' }));
      },
    );
    req.on('timeout', () => req.destroy(Object.assign(new Error('timeout'), { code: 'TIMEOUT' })));
    req.on('error', (e) =>
      resolve({ status: 0, body: Buffer.alloc(0), cache: undefined, error: (e as NodeJS.ErrnoException).code ?? e.message }),
    );
    req.end();
  });
}

const inWindow = (t: number) => t >= cfg.windowStart && t < cfg.windowEnd;
function countError(what: string, a: Answer): void {
  const key = `${what} ${a.status || a.error}`;
  result.errors[key] = (result.errors[key] ?? 0) + 1;
}
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

async function followRendition(agent: Agent, rendition: string): Promise<Float64Array> {
  const playlistPath = `/live/${cfg.streamId}/${rendition}/index.m3u8`;
  const dir = playlistPath.slice(0, playlistPath.lastIndexOf('/') + 1);
  const seen: number[] = [];
  /** The parts waiting to be fetched, in playlist order, with their slot in `seen`. */
  const queue: Array<{ part: ScannedPart; slot: number }> = [];
  let fetching: Promise<void> | null = null;
  const fetchParts = async () => {
    while (queue.length > 0 && Date.now() < cfg.stopAt) {
      const { part, slot } = queue.shift()!;
      // A fragment that fails is retried twice, as hls.js's fragLoadPolicy does.
      for (let attempt = 0; attempt < 3; attempt++) {
        const t0 = Date.now();
        const a = await get(agent, part.uri.startsWith('/') ? part.uri : dir + part.uri);
        const t1 = Date.now();
        if (inWindow(t0)) result.requests.part++;
        seen[slot * 5 + 4] = a.status;
        if (a.status === 200) {
          seen[slot * 5 + 3] = t1;
          if (inWindow(t0)) {
            result.partFetchMs.push(t1 - t0);
            if (a.cache === 'isolate') result.partsFromIsolate++;
            else if (a.cache === 'cache') result.partsFromCache++;
            else result.partsFromOrigin++;
          }
          break;
        }
        countError('part', a);
      }
    }
    fetching = null;
  };
  let last: ScannedPart | null = null;
  let directives: { msn: number; part: number } | null = null;
  while (Date.now() < cfg.stopAt) {
    const path = directives ? `${playlistPath}?_HLS_msn=${directives.msn}&_HLS_part=${directives.part}` : playlistPath;
    const t0 = Date.now();
    const a = await get(agent, path);
    const at = Date.now();
    if (inWindow(t0)) result.requests.playlist++;
    if (a.status !== 200) {
      countError('playlist', a);
      // A blocking request that timed out (503) starts over from the live edge, like hls.js.
      if (a.status === 503) directives = null;
      else await sleep(200);
      continue;
    }
    const pl = scanMediaPlaylist(a.body.toString('utf8'));
    const fresh = pl.parts.filter((p) => partAfter(p, last));
    // On joining, playback starts PART-HOLD-BACK (3 parts) from the live edge.
    const toFetch = last === null ? fresh.slice(-PART_HOLD_BACK_PARTS) : fresh;
    for (const p of fresh) {
      const i = seen.length / 5;
      seen.push(p.msn, p.index, at, 0, 0);
      if (toFetch.includes(p)) queue.push({ part: p, slot: i });
    }
    if (pl.parts.length) last = pl.parts.at(-1)!;
    if (pl.ended) break;
    directives = pl.next;
    fetching ??= fetchParts();
  }
  await fetching;
  return Float64Array.from(seen);
}

async function viewer(i: number): Promise<void> {
  await sleep((cfg.joinSpreadMs * i) / Math.max(1, cfg.viewers));
  const agent = new Agent({ keepAlive: true, maxSockets: 6 });
  // The multivariant playlist first, as a player does.
  const t0 = Date.now();
  const mv = await get(agent, `/live/${cfg.streamId}/index.m3u8`);
  if (inWindow(t0)) result.requests.multivariant++;
  if (mv.status !== 200) countError('multivariant', mv);
  const seen = await Promise.all(cfg.renditions.map((r) => followRendition(agent, r)));
  cfg.renditions.forEach((r, k) => result.seen[r]!.push(seen[k]!));
  agent.destroy();
}

await Promise.all(Array.from({ length: cfg.viewers }, (_, i) => viewer(i)));
parentPort!.postMessage(result);
