// The edge Worker: playback, ingest origin, admin API, rooms and the player page.
import { Hono } from 'hono';
import { cors } from 'hono/cors';
import type { Env } from './env.ts';
import { handleError, errorResponse } from './http.ts';
import { playbackHeaders, siteHeaders } from './answer-headers.ts';
import { adminRoutes } from './routes/admin.ts';
import { ingestRoutes } from './routes/ingest.ts';
import { ingestRestreamRoutes } from './routes/restreams.ts';
import { ingestNodeRoutes, publicIngestRoutes } from './routes/ingest-nodes.ts';
import { playbackRoutes } from './routes/playback.ts';
import { roomRoutes } from './routes/rooms.ts';
import { clipRoutes } from './routes/clips.ts';
import { recordingRoutes } from './routes/recordings.ts';
import { thumbnailRoutes } from './routes/thumbnails.ts';
import { vodRoutes } from './routes/vod.ts';
import { webhookRoutes } from './routes/webhooks.ts';
import { qoeBeaconRoutes, streamStatsRoutes } from './routes/qoe.ts';
import { streamInfoRoutes } from './routes/stream-info.ts';
import { whepRoutes } from './routes/whep.ts';
import { whipRoutes } from './routes/whip.ts';
import { directoryRoutes, frontDoorRoutes } from './routes/front-door.ts';
import { partyRoutes } from './routes/parties.ts';
import { hostClipRoutes } from './routes/host-clips.ts';
import { handleWebhookBatch } from './webhooks/deliver.ts';
import { handleExportBatch } from './exports/clip-export.ts';
import { INGEST_PREFIX } from '../core/contracts/ingest-protocol.ts';
import { NAME_RE } from '../core/contracts/object-keys.ts';
import type { WebhookQueueMessage } from '../core/contracts/webhooks.ts';
import type { ClipExportMessage } from '../core/contracts/clip-export.ts';

export { StreamState } from '../durable-objects/stream-state.ts';
export { Room } from '../durable-objects/room.ts';
export { RoomShard } from '../durable-objects/room-shard.ts';
export { TranscoderRegistry } from '../durable-objects/transcoder-registry.ts';
export { QoeStats } from '../durable-objects/qoe-stats.ts';

/** The watch page's HTML as the build writes it (with the hashed names of its scripts). */
const WATCH_HTML = '/dist/watch.html';
/** The Go-live page's HTML, likewise. */
const GOLIVE_HTML = '/dist/golive.html';
/** `/dist/{name}-{HASH}.{ext}`: esbuild's `[name]-[hash]` output names (8 characters A-Z 0-9). */
const HASHED_ASSET_RE = /^\/dist\/[A-Za-z0-9_-]+-[A-Z0-9]{8}\.(?:js|css|js\.map|js\.LEGAL\.txt)$/;

const app = new Hono<{ Bindings: Env }>();
app.onError(handleError);

// Security headers on every HTTP answer (answer-headers.ts); playback's, with its CORS, below.
const isPlayback = (path: string) => path.startsWith('/live/') || path.startsWith('/vod/');
const site = siteHeaders();
app.use('*', (c, next) => (isPlayback(c.req.path) ? next() : site(c, next)));
// WHEP (real-time playback) is POSTed from any player's page: its preflight allows POST with the
// SDP content type. Registered first, so it answers the preflight before the general one below.
app.use(
  '/live/:id/whep',
  cors({
    origin: '*',
    allowMethods: ['POST', 'OPTIONS'],
    allowHeaders: ['Content-Type', 'Authorization'],
    exposeHeaders: ['Location', 'Retry-After'],
    maxAge: 86400,
  }),
);
// Playback is public to every origin (no cookies: the token rides in the URL). Preflights are
// answered there, before the token check.
app.use('/live/*', playbackHeaders('live'));
app.use('/vod/*', playbackHeaders('vod'));
app.get('/health', (c) => c.json({ ok: true, service: 'edgelive-worker' }));
// Before adminRoutes: viewers' QoE beacons carry no admin token (the admin middleware covers /api/*).
app.route('/api', qoeBeaconRoutes);
// Also before adminRoutes: the nearest-ingest list is public (see routes/ingest-nodes.ts); the
// full node list is under the admin API.
app.route('/api/ingest', publicIngestRoutes);
// And the front door's listing: public facts only (core/contracts/directory.ts).
app.route('/api', directoryRoutes);
// A host's clip from the watch page (their room token); every other caller goes on to the clips API.
app.route('/api', hostClipRoutes);
app.route('/api', adminRoutes);
app.route('/api', streamStatsRoutes);
app.route('/api', recordingRoutes);
app.route('/api', clipRoutes);
app.route('/api/webhooks', webhookRoutes);
app.route(`${INGEST_PREFIX}/nodes`, ingestNodeRoutes);
app.route(INGEST_PREFIX, ingestRestreamRoutes);
app.route(INGEST_PREFIX, ingestRoutes);
// Before playbackRoutes: the thumbnail route runs its own access check and answers first.
app.route('/live', thumbnailRoutes);
app.route('/live', streamInfoRoutes);
app.route('/live', whepRoutes);
app.route('/live', playbackRoutes);
app.route('/vod', vodRoutes);
app.route('/rooms', roomRoutes);
app.route('/whip', whipRoutes);
app.route('/parties', partyRoutes);
// `/`, `/replay/{recording or clip}`, `/docs/{file}.md`.
app.route('/', frontDoorRoutes);
/**
 * The watch page, with a preload of the stream's multivariant playlist: the browser fetches it
 * while it loads the page's script, and hls.js's request for the same URL (same token, same CORS
 * mode) is answered from that preload, instead of starting after the script has run. The HTML is
 * never reused from a cache (`no-cache`): it names the content-hashed scripts of this deployment,
 * which a deploy replaces, while the scripts themselves are immutable (see `staticAsset`).
 */
async function watchPage(requestUrl: string, assets: Fetcher, streamId: string | undefined): Promise<Response> {
  const page = await assets.fetch(new URL(WATCH_HTML, requestUrl));
  if (!page.ok) return page;
  const html = await page.text();
  const res = new Response(html, page);
  res.headers.set('cache-control', 'no-cache');
  if (streamId && NAME_RE.test(streamId)) {
    // The same URL the page builds (core/player/page-params.ts, playbackUrl).
    const playlist = new URL(`/live/${streamId}/index.m3u8`, requestUrl);
    const token = new URL(requestUrl).searchParams.get('token');
    if (token) playlist.searchParams.set('token', token);
    res.headers.append('link', `<${playlist.pathname}${playlist.search}>; rel=preload; as=fetch; crossorigin=anonymous`);
  }
  // The stylesheet and the script the HTML names, as preloads in the header too: Cloudflare turns
  // Link preloads into a 103 Early Hints answer, so a browser can start on them before the page.
  for (const m of html.matchAll(/<(?:link rel="stylesheet" href|script type="module" src)="(\/dist\/[^"]+)"/g)) {
    res.headers.append('link', m[1]!.endsWith('.css') ? `<${m[1]}>; rel=preload; as=style` : `<${m[1]}>; rel=modulepreload`);
  }
  return res;
}
app.get('/watch/:id', (c) => watchPage(c.req.url, c.env.ASSETS, c.req.param('id')));
// A watch party is the watch page in party mode (public/src/watch.ts reads the path).
app.get('/party/:roomId', (c) => watchPage(c.req.url, c.env.ASSETS, c.req.query('stream')));
// The Go-live page (public/src/golive.ts): its publish token rides in the fragment, never sent here.
// Its HTML names this deployment's hashed files, so, like the watch page's, it is never reused from a cache.
app.get('/golive/:id', async (c) => {
  const page = await c.env.ASSETS.fetch(new URL(GOLIVE_HTML, c.req.url));
  if (!page.ok) return page;
  const res = new Response(page.body, page);
  res.headers.set('cache-control', 'no-cache');
  return res;
});
app.notFound(async (c) => {
  // Everything else is a static asset (player page, scripts) or a JSON 404.
  const asset = await c.env.ASSETS.fetch(c.req.raw);
  if (asset.status !== 404) return staticAsset(c.req.path, asset);
  return errorResponse(404, 'not_found', `no route for ${c.req.method} ${new URL(c.req.url).pathname}`);
});

/**
 * The built page's files carry a hash of their content in their name (scripts/build-assets.mjs):
 * a name never changes meaning, so browsers and caches keep them for a year without asking again,
 * and a returning viewer's page starts without fetching its script. Everything else keeps the
 * asset server's own validation headers.
 */
function staticAsset(path: string, asset: Response): Response {
  if (asset.status !== 200 || !HASHED_ASSET_RE.test(path)) return asset;
  const res = new Response(asset.body, asset);
  res.headers.set('cache-control', 'public, max-age=31536000, immutable');
  return res;
}

/** The clip export queue (wrangler.toml); every other batch is the webhook queue's. */
const EXPORT_QUEUE_NAME = 'edgelive-clip-exports';

// HTTP, plus the consumers of the webhook queue (event fan-out and signed deliveries with
// retries) and of the clip export queue (MP4 files of clips).
export default {
  fetch: app.fetch,
  queue: (batch: MessageBatch<WebhookQueueMessage | ClipExportMessage>, env: Env) =>
    batch.queue === EXPORT_QUEUE_NAME
      ? handleExportBatch(batch as MessageBatch<ClipExportMessage>, env)
      : handleWebhookBatch(batch as MessageBatch<WebhookQueueMessage>, env),
} satisfies ExportedHandler<Env, WebhookQueueMessage | ClipExportMessage>;
