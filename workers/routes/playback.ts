// Playback at the edge: the multivariant and media playlists rendered from the StreamState
// snapshot once per version and isolate (playlist-answers.ts; blocking answers also cached per
// colo), and media objects read once per isolate from the colo cache or R2 (media-answers.ts),
// with hinted parts held until they exist. Every route is behind `playbackAccess` (policy, token,
// country) before any cache is consulted; a signed stream's token is written into every URI of
// the playlists it gets.
import { Hono, type Context } from 'hono';
import { errorResponse, HttpError, negotiatedTextResponse, rpcErrorResponse } from '../http.ts';
import { IMMUTABLE, forViewer, objectResponse } from '../media-response.ts';
import { playlistAnswer } from '../playlist-answers.ts';
import { mediaAnswer } from '../media-answers.ts';
import { PLAYBACK_ANSWER_HEADERS } from '../answer-headers.ts';
import { segmentResponse } from '../segment-parts.ts';
import type { PlaylistTiming } from '../../core/contracts/live-model.ts';
import { NAME_RE, mediaObjectKey, parseMediaFileName } from '../../core/contracts/object-keys.ts';
import { directiveCacheKey, parseHlsDirectives } from '../../core/playlist/blocking.ts';
import { renderMediaPlaylist, renderMultivariantPlaylist } from '../../core/playlist/render.ts';
import { parseStartParam } from '../../core/live/start-over.ts';
import { playbackAccess, type PlaybackAccessEnv } from '../middleware/playback-access.ts';

export const playbackRoutes = new Hono<PlaybackAccessEnv>();
playbackRoutes.use('/:id/*', playbackAccess());

const PLAYLIST_TYPE = 'application/vnd.apple.mpegurl';
/** Playback answers, errors included, are readable by players on any site. */
const CORS = { 'access-control-allow-origin': '*' };

/**
 * A signed stream's blocking playlists are cached per colo like a public one's, but rendered
 * with this placeholder where the token goes: one cached text serves every viewer, and each
 * gets their own token written in on the way out (names in URIs are [A-Za-z0-9_-], never braces).
 */
const TOKEN_SLOT = '{playback-token}';

function withToken(text: string, token: string): string {
  return text.replaceAll(TOKEN_SLOT, token);
}

function checkName(value: string, what: string): string {
  if (!NAME_RE.test(value)) throw new HttpError(400, `invalid_${what}`, `malformed ${what}`);
  return value;
}

function playlistResponse(c: Context, text: string, cacheControl: string, gzipped?: ArrayBuffer): Response {
  const headers = new Headers([...PLAYBACK_ANSWER_HEADERS, ['content-type', PLAYLIST_TYPE], ['cache-control', cacheControl]]);
  // Playlists are gzipped (HTTP-01) for every client that takes gzip.
  return negotiatedTextResponse(c.req.raw, text, headers, 200, gzipped);
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
  if (r.status !== 200) return rpcErrorResponse(r, CORS);
  const token = c.get('playbackToken');
  // Start-over: every media playlist URI carries the start point, so all renditions begin there.
  const start = parseStartParam(c.req.queries('start') ?? []);
  if (!start.ok) return errorResponse(400, 'invalid_start', start.message, { 'access-control-allow-origin': '*' });
  const uriQuery = [token ? `token=${token}` : '', start.query ?? ''].filter(Boolean).join('&');
  return playlistResponse(c, renderMultivariantPlaylist(r.presentation, uriQuery ? { uriQuery } : undefined), 'no-cache');
});

playbackRoutes.get('/:id/:rendition/index.m3u8', async (c) => {
  const id = checkName(c.req.param('id'), 'stream_id');
  const rendition = checkName(c.req.param('rendition'), 'rendition');
  const url = new URL(c.req.url);
  const parsed = parseHlsDirectives(url.searchParams);
  if (!parsed.ok) return errorResponse(400, parsed.code, parsed.message, { 'access-control-allow-origin': '*' });
  const d = parsed.directives;
  const blocking = d.msn !== undefined;
  const token = c.get('playbackToken');
  const start = parseStartParam(url.searchParams.getAll('start'));
  if (!start.ok) return errorResponse(400, 'invalid_start', start.message, { 'access-control-allow-origin': '*' });
  const startKey = start.query ? `&${start.query}` : '';
  // Identical requests share one answer whatever order the client wrote the directives in
  // (DU-06) and whatever token they carry; signed and public renderings never share one.
  const cache = typeof caches !== 'undefined' ? caches.default : null;
  const answer = await playlistAnswer({
    key: `${id}|${rendition}|${directiveCacheKey(d)}${startKey}${token ? '|signed' : ''}`,
    blocking,
    signed: !!token,
    cache:
      blocking && cache
        ? {
            cache,
            url: `${url.origin}/live/${id}/${rendition}/index.m3u8?${directiveCacheKey(d)}${startKey}${token ? '&signed' : ''}`,
            waitUntil: (p) => c.executionCtx.waitUntil(p),
          }
        : null,
    make: async () => {
      const r = await c.env.STREAM_STATE.getByName(id).playlist(rendition, d, start.start);
      if (r.status !== 200) return r;
      // A signed stream's text has the token slot, filled in per viewer on the way out.
      const text = renderMediaPlaylist(r.snapshot, token ? { uriQuery: `token=${TOKEN_SLOT}` } : undefined);
      return { status: 200, text, cacheControl: playlistCacheControl(r.snapshot.timing, blocking, r.snapshot.ended) };
    },
  });
  if (!('playlist' in answer)) return rpcErrorResponse(answer, CORS);
  const p = answer.playlist;
  if (token) return playlistResponse(c, withToken(p.text, token), forViewer(p.cacheControl, true));
  return playlistResponse(c, p.text, p.cacheControl, p.gzip ?? undefined);
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
  const signed = c.get('playbackToken') !== undefined;
  const range = c.req.header('range');
  // A segment is its parts joined (each media byte is written to R2 once).
  if (object.kind === 'segment') {
    return segmentResponse(
      c.env,
      { streamId: id, epoch, rendition, msn: object.msn },
      { signed, range, origin: new URL(c.req.url).origin, waitUntil: (p) => c.executionCtx.waitUntil(p) },
    );
  }
  const cache = typeof caches !== 'undefined' ? caches.default : null;
  // The cache key is the object's, never the request URL: viewers with different tokens share
  // one cached copy, and the token was already checked before this line.
  const cacheKey = new Request(new URL(c.req.url).origin + '/' + key);
  const read = async () => {
    const obj = await c.env.MEDIA.get(key, range ? { range: c.req.raw.headers } : undefined);
    if (obj) return obj;
    // Not in R2 yet: a hinted part is held until it exists (PH-04).
    const waited = await c.env.STREAM_STATE.getByName(id).awaitMedia(rendition, epoch, object);
    return waited.status === 200 ? c.env.MEDIA.get(key, range ? { range: c.req.raw.headers } : undefined) : null;
  };
  const notFound = () => errorResponse(404, 'not_found', 'no such media object', { ...CORS, 'cache-control': 'no-cache' });
  if (range) {
    // A byte range is read from R2 as asked (players ask for whole parts and segments).
    const obj = await read();
    return obj ? objectResponse(obj, { signed, range, cache: null }) : notFound();
  }
  const answer = await mediaAnswer({
    key,
    cache: cache ? { cache, key: cacheKey, waitUntil: (p) => c.executionCtx.waitUntil(p) } : null,
    read,
  });
  if (!answer) return notFound();
  const headers = new Headers(answer.copy.headers);
  headers.set('cache-control', forViewer(IMMUTABLE, signed));
  headers.set('x-edgelive-source', answer.source);
  return new Response(answer.copy.body, { headers });
});
