// Auth benchmark (`npm run bench:auth`): what playback tokens cost. Prints figures; asserts nothing.
//  1. Token verification per request in Node (jose over Web Crypto): a fresh token (signature
//     checked, key already imported), a remembered token, key import, and jose alone as baseline.
//  2. The playback routes' own cost, signed against public: the real routes and middleware run
//     inside workerd (bench/auth/routes-worker.ts) in a loop, with in-memory stand-ins for the
//     DO, D1 and R2, so the figure is the Worker's time per request with no network in front.
//  3. Playlist and media throughput of a signed stream against a public one in the same run, on
//     the real Worker in workerd (wrangler's test harness), over loopback HTTP, rounds interleaved.
//
//   npm run bench:auth -- [--only verify|routes|http] [--seconds 3] [--rounds 5] [--concurrency 16]
//                         [--requests 1000] [--root DIR]
//
// `--root DIR` runs part 2 against another checkout (e.g. a `git worktree` of an older commit);
// a Worker without signing keys is measured for public playback only (the "before" figure).
import { resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { importJWK, jwtVerify } from 'jose';
import { createTestHarness } from 'wrangler';
import { HEADER_META, INGEST_PREFIX, pushPath, signIngestRequest } from '../../core/contracts/ingest-protocol.ts';
import {
  PlaybackTokenVerifier,
  generateSigningKeyPair,
  importSigningKey,
  signPlaybackToken,
  type KeyLookup,
  type SigningKey,
} from '../../core/auth/playback-token.ts';

function arg(name: string): string | undefined {
  const i = process.argv.indexOf(`--${name}`);
  return i >= 0 ? process.argv[i + 1] : undefined;
}

const SECONDS = Number(arg('seconds') ?? process.env.BENCH_SECONDS ?? 3);
const ROUNDS = Number(arg('rounds') ?? 5);
const CONCURRENCY = Number(arg('concurrency') ?? 16);
const ROUTE_REQUESTS = Number(arg('requests') ?? 1000);
const ROOT = resolve(arg('root') ?? fileURLToPath(new URL('../../', import.meta.url)));
const ADMIN = 'bench-admin-token';
const INGEST = 'bench-ingest-secret';

const fmt = (n: number, digits = 1) => n.toLocaleString('en-US', { maximumFractionDigits: digits, minimumFractionDigits: digits });

// ---- 1. verification in Node ------------------------------------------------------------------

async function timePerOp(n: number, fn: (i: number) => Promise<unknown>): Promise<number> {
  for (let i = 0; i < Math.min(200, n); i++) await fn(i); // warm up
  const t0 = performance.now();
  for (let i = 0; i < n; i++) await fn(i);
  return ((performance.now() - t0) * 1000) / n; // µs per op
}

async function benchVerification(): Promise<void> {
  const pair = await generateSigningKeyPair();
  const key = await importSigningKey(JSON.stringify(pair.privateJwk));
  const N = 5000;
  const exp = Math.floor(Date.now() / 1000) + 3600;
  const tokens = await Promise.all(
    Array.from({ length: N + 200 }, (_, i) => signPlaybackToken({ streamId: `s${i}`, expiresAt: exp }, key)),
  );
  const lookup = async (): Promise<KeyLookup> => ({ status: 'active', publicJwk: pair.publicJwk });
  const publicKey = await importJWK(pair.publicJwk, 'ES256');

  const importUs = await timePerOp(500, () => importJWK(pair.publicJwk, 'ES256'));
  const joseUs = await timePerOp(N, (i) => jwtVerify(tokens[i]!, publicKey, { algorithms: ['ES256'] }));
  const fresh = new PlaybackTokenVerifier();
  const freshUs = await timePerOp(N, (i) => fresh.verify(tokens[i]!, { loadKey: lookup }));
  const remembered = new PlaybackTokenVerifier();
  const rememberedUs = await timePerOp(N * 20, (i) => remembered.verify(tokens[i % 64]!, { loadKey: lookup }));
  const signUs = await timePerOp(2000, (i) => signPlaybackToken({ streamId: `s${i}`, expiresAt: exp }, key));

  console.log('\n## Token verification (Node ' + process.version + ', one core)\n');
  console.log('| operation | µs per request | per second |');
  console.log('|---|---:|---:|');
  const row = (name: string, us: number) => console.log(`| ${name} | ${fmt(us, 2)} | ${fmt(1e6 / us, 0)} |`);
  row('verify, new token (ES256 signature checked; key cached per isolate)', freshUs);
  row('verify, remembered token (repeat request of a viewer)', rememberedUs);
  row('baseline: jose jwtVerify alone with an imported key', joseUs);
  row('key import (once per key per isolate per 30 s)', importUs);
  row('sign a token (CLI / minting route)', signUs);
}

// ---- 2. the routes inside workerd, no network ---------------------------------------------------

async function benchRoutesInWorkerd(): Promise<void> {
  process.env.CLOUDFLARE_CF_FETCH_ENABLED ??= 'false';
  const harness = createTestHarness({ root: ROOT, workers: [{ configPath: './bench/auth/wrangler.toml' }] });
  try {
    await harness.listen();
    const res = await harness.fetch(`/run?n=${ROUTE_REQUESTS}`);
    if (res.status !== 200) throw new Error(`bench worker answered ${res.status}: ${await res.text()}`);
    const { rows } = (await res.json()) as {
      rows: Array<{
        route: string;
        publicUs: number;
        signedUs: number;
        publicHonoHeadersUs: number;
        freshUs: number;
        publicBytes: number;
        signedBytes: number;
      }>;
    };
    console.log(
      `\n## The playback routes inside workerd (the real routes and middleware called in a loop, no network; DO, D1 and R2 in memory, workerd's Cache API; ${ROUTE_REQUESTS} requests per round, median of 15 rounds, public and signed alternating)\n`,
    );
    console.log(
      '| route | public µs/req | signed µs/req | signed ÷ public throughput | body bytes public → signed | signed, new token every request µs/req | ÷ public |',
    );
    console.log('|---|---:|---:|---:|---:|---:|---:|');
    for (const r of rows) {
      console.log(
        `| ${r.route} | ${fmt(r.publicUs)} | ${fmt(r.signedUs)} | ${fmt(r.publicUs / r.signedUs, 2)}× | ${r.publicBytes} → ${r.signedBytes} | ${fmt(r.freshUs)} | ${fmt(r.publicUs / r.freshUs, 2)}× |`,
      );
    }
    console.log(
      "\n### Answer headers: Hono's secureHeaders + cors middleware (before) against headers built into the answer (workers/answer-headers.ts), public playback, same rounds\n",
    );
    console.log('| route | before µs/req | now µs/req | saved |');
    console.log('|---|---:|---:|---:|');
    for (const r of rows) {
      const saved = r.publicHonoHeadersUs - r.publicUs;
      console.log(
        `| ${r.route} | ${fmt(r.publicHonoHeadersUs)} | ${fmt(r.publicUs)} | ${fmt(saved)} µs (${fmt((100 * saved) / r.publicHonoHeadersUs)} %) |`,
      );
    }
  } finally {
    await harness.close();
  }
}

// ---- 3. throughput on the Worker ----------------------------------------------------------------

interface Stack {
  origin: string;
  close(): Promise<void>;
}

async function startStack(): Promise<Stack> {
  process.env.CLOUDFLARE_CF_FETCH_ENABLED ??= 'false';
  const harness = createTestHarness({
    root: ROOT,
    workers: [
      { configPath: './wrangler.toml', secrets: { ADMIN_TOKEN: ADMIN, INGEST_SECRET: INGEST, ROOM_TOKEN_SECRET: 'bench-room-secret' } },
    ],
  });
  const { url } = await harness.listen();
  await harness.getWorker().applyD1Migrations('DB');
  return { origin: url.origin, close: () => harness.close() };
}

async function admin(stack: Stack, method: string, path: string, body?: unknown): Promise<{ status: number; json: any }> {
  const res = await fetch(`${stack.origin}/api${path}`, {
    method,
    headers: { authorization: `Bearer ${ADMIN}`, 'content-type': 'application/json' },
    body: body === undefined ? undefined : JSON.stringify(body),
  });
  const text = await res.text();
  return { status: res.status, json: text ? JSON.parse(text) : null };
}

async function push(
  stack: Stack,
  streamId: string,
  epoch: number,
  rendition: string,
  file: string,
  meta: unknown,
  size = 20_000,
): Promise<void> {
  const path = pushPath(streamId, epoch, rendition, file);
  const body = new Uint8Array(size) as Uint8Array<ArrayBuffer>;
  const headers = await signIngestRequest(INGEST, 'PUT', path, body, { headers: { [HEADER_META]: JSON.stringify(meta) } });
  const res = await fetch(stack.origin + path, { method: 'PUT', body, headers });
  await res.arrayBuffer();
  if (res.status >= 300) throw new Error(`push ${path}: ${res.status}`);
}

const LADDER = [
  { name: 'v', kind: 'video', width: 640, height: 360, videoBitrate: 800_000 },
  { name: 'a', kind: 'audio', audioBitrate: 128_000 },
];

/** A stream with `segments` complete segments (5 parts each) and two parts of the next, in both renditions. */
async function liveStream(stack: Stack, playback: Record<string, unknown> | undefined, segments = 6) {
  const created = await admin(stack, 'POST', '/streams', { ladder: LADDER, ...(playback ? { playback } : {}) });
  if (created.status !== 201) throw new Error(`create: ${created.status} ${JSON.stringify(created.json)}`);
  const { id, streamKey } = created.json as { id: string; streamKey: string };
  const authBody = new TextEncoder().encode(JSON.stringify({ streamKey, nodeId: 'bench' })) as Uint8Array<ArrayBuffer>;
  const authRes = await fetch(`${stack.origin}${INGEST_PREFIX}/authorize`, {
    method: 'POST',
    body: authBody,
    headers: { 'content-type': 'application/json', ...(await signIngestRequest(INGEST, 'POST', `${INGEST_PREFIX}/authorize`, authBody)) },
  });
  const lease = (await authRes.json()) as { epoch: number; startMsn: number };
  const inits = {
    v: { kind: 'video', codecs: 'avc1.64001f', bandwidth: 1_000_000, averageBandwidth: 800_000, width: 640, height: 360, frameRate: 30 },
    a: { kind: 'audio', codecs: 'mp4a.40.2', bandwidth: 140_800, averageBandwidth: 128_000, channels: 2 },
  };
  let pdt = Date.now() - segments * 1000;
  for (const [name, meta] of Object.entries(inits)) await push(stack, id, lease.epoch, name, 'init.mp4', meta, 800);
  let msn = lease.startMsn;
  for (let s = 0; s <= segments; s++, msn++) {
    const parts = s === segments ? 2 : 5;
    for (const r of ['v', 'a']) {
      for (let p = 0; p < parts; p++)
        await push(stack, id, lease.epoch, r, `${msn}.${p}.m4s`, { duration: 0.2, independent: p === 0, programDateTime: pdt + p * 200 });
      if (s < segments) await push(stack, id, lease.epoch, r, `${msn}.m4s`, { duration: 1, partCount: 5, programDateTime: pdt }, 100_000);
    }
    pdt += 1000;
  }
  return { id, epoch: lease.epoch, lastMsn: msn - 1 };
}

/** Requests per second over `seconds`, `CONCURRENCY` viewers each in a loop; `url(viewer, i)` names the request. */
async function throughput(seconds: number, url: (viewer: number, i: number) => string): Promise<{ rps: number; errors: number }> {
  const deadline = performance.now() + seconds * 1000;
  let done = 0;
  let errors = 0;
  await Promise.all(
    Array.from({ length: CONCURRENCY }, async (_, viewer) => {
      for (let i = 0; performance.now() < deadline; i++) {
        const res = await fetch(url(viewer, i));
        await res.arrayBuffer();
        if (res.status === 200) done++;
        else errors++;
      }
    }),
  );
  return { rps: done / seconds, errors };
}

interface Variant {
  name: string;
  url: (viewer: number, i: number) => string;
}

async function benchThroughput(): Promise<void> {
  const stack = await startStack();
  try {
    const hasKeys = (await admin(stack, 'GET', '/signing-keys')).status === 200;
    const open = await liveStream(stack, undefined);
    const signed = hasKeys ? await liveStream(stack, { policy: 'signed' }) : null;
    const routes: Array<{ name: string; path: (s: { id: string; epoch: number; lastMsn: number }) => string }> = [
      { name: 'media playlist (live edge, asks the DO)', path: (s) => `/live/${s.id}/v/index.m3u8` },
      {
        name: 'blocking playlist, part already out (colo cache hit)',
        path: (s) => `/live/${s.id}/v/index.m3u8?_HLS_msn=${s.lastMsn}&_HLS_part=1`,
      },
      { name: 'part (Cache API / R2)', path: (s) => `/live/${s.id}/v/${s.epoch}/${s.lastMsn - 1}.2.m4s` },
    ];
    let viewerTokens: string[] = [];
    let freshTokens: string[] = [];
    if (signed) {
      const created = await admin(stack, 'POST', '/signing-keys', { name: 'bench' });
      const key: SigningKey = await importSigningKey(JSON.stringify(created.json.privateJwk));
      const exp = Math.floor(Date.now() / 1000) + 3600;
      viewerTokens = await Promise.all(
        Array.from({ length: CONCURRENCY }, () => signPlaybackToken({ streamId: signed.id, expiresAt: exp }, key)),
      );
      // Enough single-use tokens for the "every request a new token" variant.
      freshTokens = await Promise.all(
        Array.from({ length: 40_000 }, (_, i) => signPlaybackToken({ streamId: signed.id, expiresAt: exp + i }, key)),
      );
    }
    console.log(
      `\n## Throughput on the Worker (workerd via wrangler's test harness, loopback HTTP, ${CONCURRENCY} concurrent viewers, median of ${ROUNDS} interleaved rounds of ${SECONDS} s)\n`,
    );
    console.log(`Worker: ${ROOT}${signed ? '' : ' (no signing keys: public playback only)'}\n`);
    console.log('| route | public req/s | signed req/s | signed ÷ public | signed, new token every request | ÷ public |');
    console.log('|---|---:|---:|---:|---:|---:|');
    for (const route of routes) {
      const o = route.path(open);
      const variants: Variant[] = [{ name: 'public', url: () => `${stack.origin}${o}` }];
      if (signed) {
        const p = route.path(signed);
        const sep = p.includes('?') ? '&' : '?';
        variants.push({ name: 'signed', url: (viewer) => `${stack.origin}${p}${sep}token=${viewerTokens[viewer]}` });
        let next = 0;
        variants.push({ name: 'fresh', url: () => `${stack.origin}${p}${sep}token=${freshTokens[next++ % freshTokens.length]}` });
      }
      const samples = new Map<string, number[]>(variants.map((v) => [v.name, []]));
      let errs = 0;
      for (const v of variants) await throughput(0.5, v.url); // warm up caches and the JIT
      for (let r = 0; r < ROUNDS; r++) {
        for (const v of r % 2 === 0 ? variants : [...variants].reverse()) {
          const m = await throughput(SECONDS, v.url);
          samples.get(v.name)!.push(m.rps);
          errs += m.errors;
        }
      }
      // The median round of each: a burst of load from elsewhere on the machine lands on one round.
      const median = (name: string) => {
        const xs = samples.get(name);
        return xs?.length ? { rps: [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)]! } : undefined;
      };
      const pub = median('public')!;
      const sig = median('signed');
      const fresh = median('fresh');
      console.log(
        `| ${route.name} | ${fmt(pub.rps, 0)} | ${sig ? fmt(sig.rps, 0) : '–'} | ${sig ? fmt(sig.rps / pub.rps, 2) + '×' : '–'} | ${fresh ? fmt(fresh.rps, 0) : '–'} | ${fresh ? fmt(fresh.rps / pub.rps, 2) + '×' : '–'} |` +
          (errs ? ` (${errs} non-200 answers)` : ''),
      );
    }
  } finally {
    await stack.close();
  }
}

const only = arg('only'); // verify | routes | http
if (!only || only === 'verify') await benchVerification();
if ((!only || only === 'routes') && !arg('root')) await benchRoutesInWorkerd();
if (!only || only === 'http') await benchThroughput();
