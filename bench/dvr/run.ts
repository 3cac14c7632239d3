// `npm run bench:dvr`: what a 2-hour DVR window costs a viewer's blocking reload, against a
// 1-minute window, on the local stack (wrangler dev: workerd, the StreamState DO, R2, D1).
// Prints figures; asserts nothing. Both streams use the default timing (200 ms parts, 1 s
// segments) and one video rendition; their windows are filled with synthetic pushes through the
// signed ingest API (the bytes do not matter to a playlist; 29,000 pushes for 2 hours take a few
// minutes), then a publisher keeps pushing a part every 200 ms while both are measured in turn.
//  1. held blocking reload (`_HLS_msn/_HLS_part/_HLS_skip=YES`, the hls.js request): part pushed →
//     playlist answered, p50/p99
//  2. already-satisfied blocking reload with `_HLS_skip=YES` (answered at once: the DO's snapshot
//     and the edge's render, nothing else), p50/p99 over distinct directives (no cache hits)
//  3. response bytes: the delta update and the full playlist, plain and gzipped
// BENCH_DVR_SECONDS (default 7200) sets the long window; BENCH_SAMPLES (default 200) the samples.
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { gzipSync } from 'node:zlib';
import { createLogger } from '../../transcoder-node/log.ts';
import { HEADER_META, INGEST_PREFIX, pushPath, signIngestRequest } from '../../core/contracts/ingest-protocol.ts';
import { startStack, type Stack } from '../../scripts/local-stack.ts';

const LONG = Number(process.env.BENCH_DVR_SECONDS ?? 7200);
const SHORT = 60;
const SAMPLES = Number(process.env.BENCH_SAMPLES ?? 200);
const SECRET = 'bench-dvr-ingest';
const PART = 0.2;
const PARTS_PER_SEGMENT = 5;
const log = createLogger({ service: 'bench-dvr' });
const dir = mkdtempSync(join(tmpdir(), 'edgelive-bench-dvr-'));

const quantile = (xs: number[], q: number) => {
  const s = [...xs].sort((a, b) => a - b);
  return s.length ? s[Math.min(s.length - 1, Math.floor(q * s.length))]! : NaN;
};
const ms = (x: number) => `${x.toFixed(2)} ms`;

/** One rendition of a synthetic publisher: signed pushes of parts and segments, in order. */
class Publisher {
  msn: number;
  part = 0;
  pdt: number;
  readonly base: string;
  readonly streamId: string;
  readonly epoch: number;
  readonly rendition: string;
  constructor(base: string, streamId: string, epoch: number, rendition: string, startMsn: number, pdt: number) {
    this.base = base;
    this.streamId = streamId;
    this.epoch = epoch;
    this.rendition = rendition;
    this.msn = startMsn;
    this.pdt = pdt;
  }
  async push(file: string, meta: unknown, body = new Uint8Array(256)): Promise<void> {
    const path = pushPath(this.streamId, this.epoch, this.rendition, file);
    for (let attempt = 1; ; attempt++) {
      const headers = await signIngestRequest(SECRET, 'PUT', path, body, { headers: { [HEADER_META]: JSON.stringify(meta) } });
      const res = await fetch(this.base + path, { method: 'PUT', body, headers });
      // A retried push of something stored is a 200 (duplicate), as for the transcoder.
      if (res.status < 300) return void (await res.body?.cancel());
      const text = await res.text();
      if (res.status < 500 || attempt === 3) throw new Error(`push ${file}: ${res.status} ${text}`);
    }
  }
  init(meta: unknown) {
    return this.push('init.mp4', meta);
  }
  /**
   * A whole segment as one part: the backfill's shortcut (a third of the pushes). Old segments
   * list no parts (PART-12), so the playlists the bench reads look the same; by the time it
   * measures, the segments near the live edge are all live ones of five 200 ms parts.
   */
  async wholeSegment(): Promise<void> {
    if (this.part !== 0) throw new Error('wholeSegment at a segment boundary only');
    const duration = PART * PARTS_PER_SEGMENT;
    await this.push(`${this.msn}.0.m4s`, { duration, independent: true, programDateTime: Math.round(this.pdt) });
    await this.push(`${this.msn}.m4s`, { duration, partCount: 1, programDateTime: Math.round(this.pdt) });
    this.pdt += duration * 1000;
    this.msn++;
  }
  async nextPart(): Promise<void> {
    await this.push(`${this.msn}.${this.part}.m4s`, {
      duration: PART,
      independent: this.part === 0,
      programDateTime: Math.round(this.pdt + this.part * PART * 1000),
    });
    this.part++;
    if (this.part === PARTS_PER_SEGMENT) {
      await this.push(`${this.msn}.m4s`, {
        duration: PART * PARTS_PER_SEGMENT,
        partCount: PARTS_PER_SEGMENT,
        programDateTime: Math.round(this.pdt),
      });
      this.pdt += PART * PARTS_PER_SEGMENT * 1000;
      this.msn++;
      this.part = 0;
    }
  }
}

async function authorize(base: string, streamKey: string): Promise<{ epoch: number; startMsn: number }> {
  const body = new TextEncoder().encode(JSON.stringify({ streamKey, nodeId: 'bench' }));
  const path = `${INGEST_PREFIX}/authorize`;
  const res = await fetch(base + path, {
    method: 'POST',
    body,
    headers: { 'content-type': 'application/json', ...(await signIngestRequest(SECRET, 'POST', path, body)) },
  });
  if (!res.ok) throw new Error(`authorize: ${res.status}`);
  return (await res.json()) as { epoch: number; startMsn: number };
}

async function setup(stack: Stack, windowSeconds: number) {
  const stream = await stack.createStream({
    title: `dvr-${windowSeconds}`,
    dvrWindowSeconds: windowSeconds,
    // One rendition: a second one would double the fill time and add one constant report line.
    ladder: [{ name: 'v', kind: 'video', width: 640, height: 360, videoBitrate: 800_000 }],
  });
  const lease = await authorize(stack.workerUrl, stream.streamKey);
  // The window ends now: its first segment started `windowSeconds` (plus some) ago.
  const segments = Math.ceil(windowSeconds / (PART * PARTS_PER_SEGMENT)) + 30;
  const t0 = Date.now() - segments * PART * PARTS_PER_SEGMENT * 1000;
  const v = new Publisher(stack.workerUrl, stream.id, lease.epoch, 'v', lease.startMsn, t0);
  await v.init({
    kind: 'video',
    codecs: 'avc1.64001e',
    bandwidth: 1_000_000,
    averageBandwidth: 840_000,
    width: 640,
    height: 360,
    frameRate: 30,
  });
  const started = Date.now();
  for (let i = 0; i < segments; i++) await v.wholeSegment();
  log.info('window filled', { windowSeconds, segments, seconds: Math.round((Date.now() - started) / 1000) });
  return { windowSeconds, stream, v };
}

/** The next hls.js blocking directives after a playlist: the next part of the open segment. */
function nextDirectives(text: string): { msn: number; part: number } {
  const seq = Number(/#EXT-X-MEDIA-SEQUENCE:(\d+)/.exec(text)![1]);
  const skipped = Number(/SKIPPED-SEGMENTS=(\d+)/.exec(text)?.[1] ?? 0);
  let complete = 0;
  let openParts = 0; // parts listed after the last EXTINF: those of the open segment
  for (const l of text.split('\n')) {
    if (l.startsWith('#EXTINF')) {
      complete++;
      openParts = 0;
    } else if (l.startsWith('#EXT-X-PART:')) openParts++;
  }
  return { msn: seq + skipped + complete, part: openParts };
}

type Setup = Awaited<ReturnType<typeof setup>>;

/** Publishes a part every 200 ms until stopped; remembers when each was pushed. */
function publish(p: Setup) {
  const pushedAt = new Map<string, number>();
  let running = true;
  let failure: unknown = null;
  const done = (async () => {
    while (running) {
      const t = Date.now();
      pushedAt.set(`${p.v.msn}.${p.v.part}`, performance.now());
      await p.v.nextPart();
      await new Promise((r) => setTimeout(r, Math.max(0, PART * 1000 - (Date.now() - t))));
    }
  })().catch((err: unknown) => {
    // Reported by stop(); an unhandled rejection would kill the run before the stack is stopped.
    failure = err;
    running = false;
  });
  return {
    pushedAt,
    stop: async () => {
      running = false;
      await done;
      if (failure) throw failure;
    },
  };
}

/** Held blocking reloads as hls.js makes them: from each answer, ask for the next part. */
async function follow(url: string, pushedAt: Map<string, number>, n: number): Promise<number[]> {
  const held: number[] = [];
  let d = nextDirectives(await (await fetch(url + '?_HLS_skip=YES')).text());
  while (held.length < n) {
    const res = await fetch(`${url}?_HLS_msn=${d.msn}&_HLS_part=${d.part}&_HLS_skip=YES`);
    const text = await res.text();
    const got = performance.now();
    if (res.status !== 200) throw new Error(`blocking reload: ${res.status} ${text}`);
    const sent = pushedAt.get(`${d.msn}.${d.part}`);
    if (sent !== undefined) held.push(got - sent);
    d = nextDirectives(text);
  }
  return held;
}

interface Figures {
  windowSeconds: number;
  segments: number;
  held: number[];
  immediate: number[];
  fullTimes: number[];
  deltaBytes: number[];
  deltaGzip: number;
  fullBytes: number;
  fullGzip: number;
}

/** Both streams are measured at once, request by request in turn, so load on the machine hits both alike. */
async function measure(stack: Stack, setups: Setup[]): Promise<Figures[]> {
  const urls = setups.map((s) => `${stack.workerUrl}/live/${s.stream.id}/v/index.m3u8`);
  const pubs = setups.map(publish);
  await new Promise((r) => setTimeout(r, 3000)); // a few live segments of five parts each
  const figures: Figures[] = [];
  for (let i = 0; i < setups.length; i++) {
    const full = await (await fetch(urls[i]!)).text();
    const delta = await (await fetch(urls[i] + '?_HLS_skip=YES')).text();
    figures.push({
      windowSeconds: setups[i]!.windowSeconds,
      segments: (full.match(/#EXTINF/g) ?? []).length,
      held: [],
      immediate: [],
      fullTimes: [],
      deltaBytes: [],
      deltaGzip: gzipSync(delta).length,
      fullBytes: full.length,
      fullGzip: gzipSync(full).length,
    });
  }
  // 1. Held blocking reloads, both streams followed side by side.
  const held = await Promise.all(urls.map((u, i) => follow(u, pubs[i]!.pushedAt, Math.min(SAMPLES, 100))));
  held.forEach((h, i) => (figures[i]!.held = h));
  // 2. Already-satisfied blocking reloads with distinct directives (no edge cache hits), in turn.
  const last = await Promise.all(urls.map(async (u) => nextDirectives(await (await fetch(u + '?_HLS_skip=YES')).text()).msn - 1));
  for (let k = 0; k < SAMPLES; k++) {
    for (let i = 0; i < urls.length; i++) {
      const msn = last[i]! - 1 - Math.floor(k / PARTS_PER_SEGMENT);
      const t = performance.now();
      const res = await fetch(`${urls[i]}?_HLS_msn=${msn}&_HLS_part=${k % PARTS_PER_SEGMENT}&_HLS_skip=YES`);
      const text = await res.text();
      figures[i]!.immediate.push(performance.now() - t);
      if (res.status !== 200) throw new Error(`satisfied reload: ${res.status} ${text}`);
      figures[i]!.deltaBytes.push(text.length);
    }
  }
  // 3. Full playlists (what a viewer's first request costs), for reference.
  for (let k = 0; k < 20; k++) {
    for (let i = 0; i < urls.length; i++) {
      const t = performance.now();
      await (await fetch(urls[i]!)).text();
      figures[i]!.fullTimes.push(performance.now() - t);
    }
  }
  await Promise.all(pubs.map((p) => p.stop()));
  return figures;
}

try {
  const stack = await startStack({
    persistDir: join(dir, 'state'),
    logDir: join(dir, 'logs'),
    adminToken: 'bench-admin',
    ingestSecret: SECRET,
    // The short window waits for the long one to fill: it must not end meanwhile.
    endGraceSeconds: 3600,
    logger: log,
  });
  try {
    // Filled side by side: the short window's stream must not sit idle for long (it would end).
    const setups = await Promise.all([setup(stack, SHORT), setup(stack, LONG)]);
    const [short, long] = (await measure(stack, setups)) as [Figures, Figures];
    const row = (r: Figures) =>
      [
        `${String(r.windowSeconds).padStart(5)} s window (${r.segments} segments)`,
        `  held blocking reload, part pushed → answer   p50 ${ms(quantile(r.held, 0.5))}  p99 ${ms(quantile(r.held, 0.99))}  (n=${r.held.length})`,
        `  satisfied blocking reload with _HLS_skip     p50 ${ms(quantile(r.immediate, 0.5))}  p99 ${ms(quantile(r.immediate, 0.99))}  (n=${r.immediate.length})`,
        `  delta update (_HLS_skip=YES)                 ${quantile(r.deltaBytes, 0.5)} B median, ${Math.max(...r.deltaBytes)} B max  (${r.deltaGzip} B gzipped)`,
        `  full playlist                                ${r.fullBytes} B  (${r.fullGzip} B gzipped), p50 ${ms(quantile(r.fullTimes, 0.5))}`,
      ].join('\n');
    const ratio = (f: (r: Figures) => number) => (f(long) / f(short)).toFixed(2);
    process.stdout.write(
      [
        '',
        `edgelive DVR: blocking-reload cost, ${LONG} s window against ${SHORT} s (200 ms parts, 1 s segments, wrangler dev)`,
        row(short),
        row(long),
        `ratio ${LONG} s / ${SHORT} s: held p50 ${ratio((r) => quantile(r.held, 0.5))}×, satisfied p50 ${ratio((r) => quantile(r.immediate, 0.5))}×, satisfied p99 ${ratio((r) => quantile(r.immediate, 0.99))}×, delta bytes ${ratio((r) => quantile(r.deltaBytes, 0.5))}×`,
        '',
      ].join('\n'),
    );
  } finally {
    await stack.stop();
  }
} finally {
  rmSync(dir, { recursive: true, force: true });
}
