// A bench-only Worker (bench/auth/wrangler.toml): the real playback routes and access middleware
// run inside workerd, called in a loop with no network in front, against in-memory stand-ins for
// the StreamState DO, D1 and R2 (the Cache API is workerd's own). `GET /run?n=…` answers the
// microseconds per request of each route (median of 15 short rounds), public against signed, as JSON
// for bench/auth/run.ts; and, for public playback, the same routes behind the header middleware the
// Worker had before (Hono's secureHeaders and cors) against the precomputed headers it has now.
import { Hono, type MiddlewareHandler } from 'hono';
import { cors } from 'hono/cors';
import { secureHeaders } from 'hono/secure-headers';
import { playbackHeaders } from '../../workers/answer-headers.ts';
import type { Env } from '../../workers/env.ts';
import { handleError } from '../../workers/http.ts';
import type { MediaPlaylistSnapshot, PresentationSnapshot } from '../../core/contracts/live-model.ts';
import { generateSigningKeyPair, importSigningKey, signPlaybackToken } from '../../core/auth/playback-token.ts';
import { playbackRoutes } from '../../workers/routes/playback.ts';

/** A live window like the one the DO answers: 6 complete 1 s segments, parts for the last 3, one in progress. */
function snapshot(streamId: string): MediaPlaylistSnapshot {
  const t0 = Date.UTC(2026, 10, 21, 12, 0, 0);
  const parts = (n: number) => Array.from({ length: n }, (_, i) => ({ duration: 0.2, independent: i === 0 }));
  return {
    streamId,
    rendition: 'v',
    timing: { targetDuration: 1, partTarget: 0.2, partHoldBack: 0.6, holdBack: 3, liveStartOffset: 0.4, canSkipUntil: 6 },
    mediaSequence: 100,
    discontinuitySequence: 0,
    skippedSegments: 0,
    segments: Array.from({ length: 7 }, (_, i) => ({
      msn: 100 + i,
      epoch: 1,
      duration: i < 6 ? 1 : null,
      programDateTime: t0 + i * 1000,
      discontinuity: false,
      ...(i >= 3 ? { parts: parts(i < 6 ? 5 : 2) } : {}),
    })),
    ended: false,
    reports: [{ rendition: 'a', lastMsn: 106, lastPart: 1 }],
  };
}

function presentation(streamId: string): PresentationSnapshot {
  return {
    streamId,
    ended: false,
    renditions: [
      {
        name: 'v',
        kind: 'video',
        codecs: 'avc1.64001f',
        bandwidth: 1_000_000,
        averageBandwidth: 800_000,
        width: 640,
        height: 360,
        frameRate: 30,
      },
      { name: 'a', kind: 'audio', codecs: 'mp4a.40.2', bandwidth: 140_800, averageBandwidth: 128_000, channels: 2 },
    ],
  };
}

const ROUNDS = 15;

function median(xs: number[]): number {
  const s = [...xs].sort((a, b) => a - b);
  return s[Math.floor(s.length / 2)]!;
}

const ROUTES = [
  { name: 'multivariant playlist', path: (id: string) => `/live/${id}/index.m3u8` },
  { name: 'media playlist (live edge)', path: (id: string) => `/live/${id}/v/index.m3u8` },
  { name: 'blocking playlist (colo cache hit)', path: (id: string) => `/live/${id}/v/index.m3u8?_HLS_msn=106&_HLS_part=1` },
  { name: 'part (colo cache hit)', path: (id: string) => `/live/${id}/v/1/105.2.m4s` },
];

export default {
  async fetch(request: Request, _env: unknown, ctx: ExecutionContext): Promise<Response> {
    const n = Number(new URL(request.url).searchParams.get('n') ?? 1000);
    const pair = await generateSigningKeyPair();
    const key = await importSigningKey(JSON.stringify(pair.privateJwk));
    // Fresh ids per run: the isolate's caches (and the colo cache) start empty for them.
    const run = crypto.randomUUID().slice(0, 8);
    const open = `open${run}`;
    const closed = `closed${run}`;
    const settings: Record<string, string> = {
      [open]: JSON.stringify({ playback: { policy: 'public' } }),
      [closed]: JSON.stringify({ playback: { policy: 'signed' } }),
    };
    const part = new Uint8Array(20_000);
    const env = {
      DB: {
        prepare: (sql: string) => ({
          bind: (id: string) => ({
            first: async () =>
              sql.includes('FROM streams')
                ? settings[id]
                  ? { settings: settings[id] }
                  : null
                : { public_jwk: JSON.stringify(pair.publicJwk), revoked_at: null },
          }),
        }),
      },
      STREAM_STATE: {
        getByName: (id: string) => ({
          presentation: async () => ({ status: 200, presentation: presentation(id) }),
          playlist: async () => ({ status: 200, snapshot: snapshot(id) }),
        }),
      },
      MEDIA: {
        get: async () => ({
          body: new Blob([part]).stream(),
          arrayBuffer: async () => part.buffer.slice(0),
          size: part.byteLength,
          httpEtag: '"e"',
          writeHttpMetadata: (h: Headers) => h.set('content-type', 'video/mp4'),
        }),
      },
    } as unknown as Env;
    const withHeaders = (...middleware: MiddlewareHandler[]) => {
      const a = new Hono<{ Bindings: Env }>();
      a.onError(handleError);
      for (const m of middleware) a.use('/live/*', m);
      a.route('/live', playbackRoutes);
      return a;
    };
    // As workers/index.ts has it.
    const app = withHeaders(playbackHeaders('live'));
    // As workers/index.ts had it before answer-headers.ts (commit b36c513).
    const honoSecure = secureHeaders({ crossOriginResourcePolicy: 'cross-origin' });
    const appBefore = withHeaders(
      (c, next) => {
        void c.res;
        return honoSecure(c, next);
      },
      cors({
        origin: '*',
        allowMethods: ['GET', 'HEAD', 'OPTIONS'],
        exposeHeaders: ['Age', 'Date', 'Content-Length', 'Content-Range', 'ETag'],
        maxAge: 86400,
      }),
    );

    const exp = Math.floor(Date.now() / 1000) + 3600;
    const viewerToken = await signPlaybackToken({ streamId: closed, expiresAt: exp }, key);
    const fresh = await Promise.all(
      Array.from({ length: Math.ceil(n / 4) * ROUTES.length * ROUNDS + 100 }, (_, i) =>
        signPlaybackToken({ streamId: closed, expiresAt: exp + i }, key),
      ),
    );
    let next = 0;

    const perRequest = async (url: () => string, count: number, through = app): Promise<number> => {
      const t0 = performance.now();
      for (let i = 0; i < count; i++) {
        const res = await through.fetch(new Request(url()), env, ctx);
        if (res.status !== 200) throw new Error(`${url()} answered ${res.status}: ${await res.text()}`);
        await res.arrayBuffer();
      }
      return ((performance.now() - t0) * 1000) / count;
    };

    const variants = ROUTES.map((r) => {
      const sep = r.path('x').includes('?') ? '&' : '?';
      return {
        route: r.name,
        pub: () => `http://edge.test${r.path(open)}`,
        sig: () => `http://edge.test${r.path(closed)}${sep}token=${viewerToken}`,
        fresh: () => `http://edge.test${r.path(closed)}${sep}token=${fresh[next++ % fresh.length]}`,
      };
    });
    // Warm the JIT, the isolate caches and the colo cache.
    for (const v of variants) {
      await perRequest(v.pub, 50);
      await perRequest(v.sig, 50);
    }
    await new Promise((resolve) => setTimeout(resolve, 50)); // let the waitUntil cache puts land
    const rows = [];
    for (const v of variants) {
      // Public and signed in alternating order (ABBA…), the median of each: the machine's noise
      // (GC, other processes) lands on single rounds, not on one variant.
      const t = { pub: [] as number[], sig: [] as number[], before: [] as number[] };
      for (let round = 0; round < ROUNDS; round++) {
        if (round % 2 === 0) {
          t.pub.push(await perRequest(v.pub, n));
          t.sig.push(await perRequest(v.sig, n));
          t.before.push(await perRequest(v.pub, n, appBefore));
        } else {
          t.before.push(await perRequest(v.pub, n, appBefore));
          t.sig.push(await perRequest(v.sig, n));
          t.pub.push(await perRequest(v.pub, n));
        }
      }
      const size = async (url: string) => (await (await app.fetch(new Request(url), env, ctx)).arrayBuffer()).byteLength;
      rows.push({
        route: v.route,
        publicUs: median(t.pub),
        signedUs: median(t.sig),
        publicHonoHeadersUs: median(t.before),
        freshUs: 0,
        publicBytes: await size(v.pub()),
        signedBytes: await size(v.sig()),
      });
    }
    // New-token-every-request last of all, so the garbage of its signature checks lands on no other figure.
    for (const [i, v] of variants.entries()) {
      const xs: number[] = [];
      for (let round = 0; round < ROUNDS; round++) xs.push(await perRequest(v.fresh, Math.ceil(n / 4)));
      rows[i]!.freshUs = median(xs);
    }
    return Response.json({ rows });
  },
};
