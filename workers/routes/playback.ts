// Playback at the edge: the multivariant and media playlists rendered per request from the
// StreamState snapshot (blocking reloads coalesced per isolate and cached per colo), and media
// objects from R2 through the Cache API, with hinted parts held until they exist.
import { Hono, type Context } from 'hono';
import type { Env } from '../env.ts';
import { Coalescer } from '../coalesce.ts';
import { errorResponse, HttpError } from '../http.ts';
import type { PlaylistTiming } from '../lib/live-model.ts';
import { NAME_RE, mediaObjectKey, parseMediaFileName } from '../lib/object-keys.ts';
import { directiveCacheKey, parseHlsDirectives } from '../lib/playlist/blocking.ts';
import { renderMediaPlaylist, renderMultivariantPlaylist } from '../lib/playlist/render.ts';
import type { PlaylistResult } from '../../durable-objects/stream-state.ts';

export const playbackRoutes = new Hono<{ Bindings: Env }>();

const PLAYLIST_TYPE = 'application/vnd.apple.mpegurl';
const IMMUTABLE = 'public, max-age=31536000, immutable';
const playlistCalls = new Coalescer<PlaylistResult>();

function checkName(value: string, what: string): string {
  if (!NAME_RE.test(value)) throw new HttpError(400, `invalid_${what}`, `malformed ${what}`);
  return value;
}

function playlistResponse(c: Context, text: string, cacheControl: string): Response {
  const headers = new Headers({
    'content-type': PLAYLIST_TYPE,
    'cache-control': cacheControl,
    'access-control-allow-origin': '*',
    'access-control-expose-headers': 'age, date',
  });
  // Playlists are gzipped (HTTP-01): the runtime compresses a body whose Content-Encoding is set.
  if (/\bgzip\b/.test(c.req.header('accept-encoding') ?? '')) headers.set('content-encoding', 'gzip');
  return new Response(text, { status: 200, headers });
}

/** Cache lifetimes from LL-HLS App. B.1 (BR-13). */
function playlistCacheControl(timing: PlaylistTiming, blocking: boolean, ended: boolean): string {
  if (ended) return 'public, max-age=60';
  if (blocking) return `public, max-age=${6 * timing.targetDuration}`;
  const half = Math.floor(0.5 * timing.targetDuration);
  return half > 0 ? `public, max-age=${half}` : 'no-cache';
}

playbackRoutes.get('/:id/index.m3u8', async (c) => {
  const id = checkName(c.req.param('id'), 'stream_id');
  const r = await c.env.STREAM_STATE.getByName(id).presentation();
  if (r.status !== 200) return errorResponse(r.status, r.code, r.message, { 'access-control-allow-origin': '*' });
  return playlistResponse(c, renderMultivariantPlaylist(r.presentation), 'no-cache');
});

playbackRoutes.get('/:id/:rendition/index.m3u8', async (c) => {
  const id = checkName(c.req.param('id'), 'stream_id');
  const rendition = checkName(c.req.param('rendition'), 'rendition');
  const url = new URL(c.req.url);
  const parsed = parseHlsDirectives(url.searchParams);
  if (!parsed.ok) return errorResponse(400, parsed.code, parsed.message, { 'access-control-allow-origin': '*' });
  const d = parsed.directives;
  const blocking = d.msn !== undefined;
  // Identical requests share a cache entry whatever order the client wrote the directives in (DU-06).
  const cacheUrl = `${url.origin}/live/${id}/${rendition}/index.m3u8?${directiveCacheKey(d)}`;
  const cache = typeof caches !== 'undefined' ? caches.default : null;
  if (blocking && cache) {
    const hit = await cache.match(cacheUrl);
    if (hit) return hit;
  }
  const key = `${id}|${rendition}|${directiveCacheKey(d)}`;
  const r = await playlistCalls.run(key, () => c.env.STREAM_STATE.getByName(id).playlist(rendition, d));
  if (r.status !== 200) {
    const retry = r.status === 503 ? { 'retry-after': '1' } : undefined;
    return errorResponse(r.status, r.code, r.message, { 'access-control-allow-origin': '*', ...retry });
  }
  const text = renderMediaPlaylist(r.snapshot);
  const res = playlistResponse(c, text, playlistCacheControl(r.snapshot.timing, blocking, r.snapshot.ended));
  if (blocking && cache) c.executionCtx.waitUntil(cache.put(cacheUrl, new Response(text, { headers: { 'content-type': PLAYLIST_TYPE, 'cache-control': res.headers.get('cache-control')! } })));
  return res;
});

playbackRoutes.get('/:id/:rendition/:epoch/:file', async (c) => {
  const id = checkName(c.req.param('id'), 'stream_id');
  const rendition = checkName(c.req.param('rendition'), 'rendition');
  const epochText = c.req.param('epoch');
  if (!/^\d{1,9}$/.test(epochText)) throw new HttpError(400, 'invalid_epoch', 'malformed epoch');
  const epoch = Number(epochText);
  const object = parseMediaFileName(c.req.param('file'));
  if (!object) throw new HttpError(404, 'not_found', 'no such media object');
  const key = mediaObjectKey(id, epoch, rendition, object);
  const range = c.req.header('range');
  const cache = typeof caches !== 'undefined' && !range ? caches.default : null;
  const cacheKey = new Request(new URL(c.req.url).origin + '/' + key);
  if (cache) {
    const hit = await cache.match(cacheKey);
    if (hit) return hit;
  }
  let obj = await c.env.MEDIA.get(key, range ? { range: c.req.raw.headers } : undefined);
  if (!obj) {
    // Not in R2 yet: a hinted part (or the open segment) is held until it exists (PH-04).
    const waited = await c.env.STREAM_STATE.getByName(id).awaitMedia(rendition, epoch, object);
    if (waited.status !== 200) return errorResponse(404, 'not_found', 'no such media object', { 'access-control-allow-origin': '*', 'cache-control': 'no-cache' });
    obj = await c.env.MEDIA.get(key, range ? { range: c.req.raw.headers } : undefined);
    if (!obj) return errorResponse(404, 'not_found', 'no such media object', { 'access-control-allow-origin': '*' });
  }
  const headers = new Headers();
  obj.writeHttpMetadata(headers);
  headers.set('etag', obj.httpEtag);
  headers.set('cache-control', IMMUTABLE);
  headers.set('access-control-allow-origin', '*');
  headers.set('accept-ranges', 'bytes');
  if (range && obj.range && 'offset' in obj.range) {
    const offset = obj.range.offset ?? 0;
    const length = obj.range.length ?? obj.size - offset;
    headers.set('content-range', `bytes ${offset}-${offset + length - 1}/${obj.size}`);
    headers.set('content-length', String(length));
    return new Response(obj.body, { status: 206, headers });
  }
  headers.set('content-length', String(obj.size));
  if (!cache) return new Response(obj.body, { headers });
  // One read of R2 feeds both the viewer and the colo cache.
  const [forViewer, forCache] = obj.body.tee();
  c.executionCtx.waitUntil(cache.put(cacheKey, new Response(forCache, { headers })));
  return new Response(forViewer, { headers });
});
