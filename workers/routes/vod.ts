// Recordings and clips at the edge: `/vod/{id}/…` (a recording `rc…` or a clip `cl…`). The
// playlists are EXT-X-PLAYLIST-TYPE:VOD, rendered from the stream's StreamState and cached per
// colo (they never change); the media are the live objects in R2, under the same cache keys as
// the live routes. A VOD asset is played under its stream's rules: a signed stream's token (for
// that stream) and its country rules apply to its recordings and clips as well.
import { Hono, type Context, type MiddlewareHandler } from 'hono';
import type { Env } from '../env.ts';
import { errorResponse, HttpError, negotiatedTextResponse, rpcErrorResponse } from '../http.ts';
import { IMMUTABLE, forViewer, objectResponse } from '../media-response.ts';
import { segmentResponse } from '../segment-parts.ts';
import { checkCountry } from '../../core/auth/geo.ts';
import { NAME_RE, clipExportKey, mediaObjectKey, parseMediaFileName } from '../../core/contracts/object-keys.ts';
import { renderMultivariantPlaylist, renderVodPlaylist } from '../../core/playlist/render.ts';
import { PlaybackSettingsSchema, type PlaybackSettings } from '../../core/contracts/stream-config.ts';
import { viewerCountry } from '../middleware/playback-access.ts';
import { lookupSigningKey, playbackVerifier } from '../signing-keys.ts';
import { findVodAsset, type ClipRow, type VodAsset } from '../vod-catalog.ts';
import type { VodInfo } from '../../core/contracts/directory.ts';

type VodEnv = { Bindings: Env; Variables: { asset: VodAsset; token?: string } };

export const vodRoutes = new Hono<VodEnv>();

const PLAYLIST_TYPE = 'application/vnd.apple.mpegurl';
/** VOD playlists never change, but an asset can expire: an hour bounds how long a copy outlives it. */
const VOD_PLAYLIST_CACHE = 'public, max-age=3600';
/** Where a viewer's token goes in a cached rendering (see playback.ts). */
const TOKEN_SLOT = '{playback-token}';
/** Asset rows and stream rules per isolate: an expiry or a policy change shows within this. */
const ASSET_TTL_MS = 30_000;

interface AssetEntry {
  asset: VodAsset | null;
  access: PlaybackSettings | null;
  at: number;
}
const assets = new Map<string, AssetEntry>();

async function loadAsset(env: Env, id: string, now: number): Promise<AssetEntry> {
  const hit = assets.get(id);
  if (hit && now - hit.at < ASSET_TTL_MS) return hit;
  const asset = await findVodAsset(env.DB, id);
  let access: PlaybackSettings | null = null;
  if (asset) {
    const row = await env.DB.prepare('SELECT settings FROM streams WHERE id = ?').bind(asset.streamId).first<{ settings: string }>();
    if (row) access = PlaybackSettingsSchema.parse((JSON.parse(row.settings) as { playback?: unknown }).playback ?? {});
  }
  const entry = { asset, access, at: now };
  if (assets.size > 10_000) assets.delete(assets.keys().next().value!);
  assets.set(id, entry);
  return entry;
}

/**
 * The asset must exist and be playable, and the viewer must be let in by its stream's rules. A
 * deleted stream takes its recordings and clips offline with it (their objects go with retention).
 */
function vodAccess(): MiddlewareHandler<VodEnv> {
  return async (c, next) => {
    const id = c.req.param('id') ?? '';
    const now = Date.now();
    const { asset, access } = await loadAsset(c.env, id, now);
    if (!asset || !access) throw new HttpError(404, 'not_found', `no recording or clip ${id}`);
    if (asset.status === 'expired') throw new HttpError(410, 'expired', `${asset.kind} ${id} has expired`);
    if (asset.status === 'recording') throw new HttpError(409, 'recording_in_progress', 'the broadcast has not ended yet; watch it live');
    const country = viewerCountry(c.req.raw, c.env.DEV_GEO_OVERRIDE === '1');
    if (access.policy === 'signed') {
      const presented = c.req.queries('token') ?? [];
      const token = presented[0];
      if (!token) throw new HttpError(401, 'token_required', 'this stream needs a playback token (?token=)');
      if (presented.length > 1) throw new HttpError(401, 'invalid_token', 'more than one token');
      const r = await playbackVerifier.verify(token, { now, loadKey: (kid) => lookupSigningKey(c.env.DB, kid) });
      if (!r.ok) throw new HttpError(r.rejection.status, r.rejection.code, r.rejection.message);
      if (r.claims.sub !== asset.streamId) throw new HttpError(403, 'token_wrong_stream', 'the token is for another stream');
      const d = checkCountry(r.claims, country);
      if (!d.ok) throw new HttpError(403, 'geo_blocked', d.message);
      c.set('token', token);
    }
    const d = checkCountry(access, country);
    if (!d.ok) throw new HttpError(403, 'geo_blocked', d.message);
    c.set('asset', asset);
    await next();
  };
}

vodRoutes.use('/:id/*', vodAccess());

function playlistResponse(c: Context, text: string, cacheControl: string): Response {
  const headers = new Headers({ 'content-type': PLAYLIST_TYPE, 'cache-control': cacheControl, 'access-control-allow-origin': '*' });
  return negotiatedTextResponse(c.req.raw, text, headers);
}

/**
 * What the replay page shows beside the video (`/replay/{id}`): the title (a clip's own, else its
 * stream's), the stream, when it was and how long. Same access check as the playlists.
 */
vodRoutes.get('/:id/info.json', async (c) => {
  const asset = c.get('asset');
  const stream = await c.env.DB.prepare('SELECT title FROM streams WHERE id = ?').bind(asset.streamId).first<{ title: string }>();
  const row =
    asset.kind === 'clip'
      ? await c.env.DB.prepare('SELECT title, start_at AS startedAt, duration FROM clips WHERE id = ?')
          .bind(asset.id)
          .first<{ title: string; startedAt: number; duration: number }>()
      : await c.env.DB.prepare("SELECT '' AS title, started_at AS startedAt, duration FROM recordings WHERE id = ?")
          .bind(asset.id)
          .first<{ title: string; startedAt: number; duration: number | null }>();
  if (!row) throw new HttpError(404, 'not_found', `no ${asset.kind} ${asset.id}`);
  const info: VodInfo = {
    id: asset.id,
    kind: asset.kind,
    streamId: asset.streamId,
    title: row.title || stream?.title || '',
    streamTitle: stream?.title ?? '',
    startedAt: new Date(row.startedAt).toISOString(),
    duration: row.duration,
  };
  return c.json(info, 200, { 'cache-control': forViewer('public, max-age=60', !!c.get('token')), 'access-control-allow-origin': '*' });
});

vodRoutes.get('/:id/index.m3u8', async (c) => {
  const asset = c.get('asset');
  const r = await c.env.STREAM_STATE.getByName(asset.streamId).vodPresentation(asset.id);
  if (r.status !== 200) return rpcErrorResponse(r, { 'access-control-allow-origin': '*' });
  const token = c.get('token');
  const text = renderMultivariantPlaylist(r.presentation, token ? { uriQuery: `token=${token}` } : undefined);
  return playlistResponse(c, text, forViewer(VOD_PLAYLIST_CACHE, !!token));
});

vodRoutes.get('/:id/:rendition/index.m3u8', async (c) => {
  const asset = c.get('asset');
  const rendition = c.req.param('rendition');
  if (!NAME_RE.test(rendition)) throw new HttpError(400, 'invalid_rendition', 'malformed rendition');
  const token = c.get('token');
  const cache = typeof caches !== 'undefined' ? caches.default : null;
  const cacheUrl = `${new URL(c.req.url).origin}/vod/${asset.id}/${rendition}/index.m3u8${token ? '?signed' : ''}`;
  let text: string | null = null;
  const hit = cache ? await cache.match(cacheUrl) : undefined;
  if (hit) text = await hit.text();
  else {
    const r = await c.env.STREAM_STATE.getByName(asset.streamId).vodPlaylist(asset.id, rendition);
    if (r.status !== 200) return rpcErrorResponse(r, { 'access-control-allow-origin': '*' });
    text = renderVodPlaylist(r.snapshot, token ? { uriQuery: `token=${TOKEN_SLOT}` } : undefined);
    if (cache)
      c.executionCtx.waitUntil(
        cache.put(cacheUrl, new Response(text, { headers: { 'content-type': PLAYLIST_TYPE, 'cache-control': VOD_PLAYLIST_CACHE } })),
      );
  }
  return playlistResponse(c, token ? text.replaceAll(TOKEN_SLOT, token) : text, forViewer(VOD_PLAYLIST_CACHE, !!token));
});

/**
 * A clip's MP4 download: `/vod/{clip}/clip.mp4` is the export's first (default) rendition,
 * `/vod/{clip}/{rendition}/clip.mp4` any exported one. The files are made once by the export job
 * and served like the other immutable objects (Range, ETag, colo cache), as an attachment.
 */
vodRoutes.get('/:id/clip.mp4', (c) => serveClipExport(c, null));
vodRoutes.get('/:id/:rendition/clip.mp4', (c) => {
  const rendition = c.req.param('rendition');
  if (!NAME_RE.test(rendition)) throw new HttpError(400, 'invalid_rendition', 'malformed rendition');
  return serveClipExport(c, rendition);
});

async function serveClipExport(c: Context<VodEnv>, rendition: string | null): Promise<Response> {
  const asset = c.get('asset');
  if (asset.kind !== 'clip') throw new HttpError(404, 'not_found', 'only clips have an MP4 export');
  const loadRow = () =>
    c.env.DB.prepare('SELECT export_status, export_error, export_renditions FROM clips WHERE id = ?')
      .bind(asset.id)
      .first<Pick<ClipRow, 'export_status' | 'export_error' | 'export_renditions'>>();
  const exportedOf = (r: Pick<ClipRow, 'export_renditions'> | null) =>
    r?.export_renditions ? (JSON.parse(r.export_renditions) as string[]) : [];
  // The default download is the export's first rendition (the catalog knows which).
  let row = rendition === null ? await loadRow() : null;
  const name = rendition ?? exportedOf(row)[0];
  if (name !== undefined) {
    // Written whole or not at all (a put, or a completed multipart upload): there means ready,
    // also while the export makes more renditions. Its Content-Type and Content-Disposition
    // (an attachment) were stored with it.
    const res = await serveObject(c, clipExportKey(asset.id, name));
    if (res.status !== 404) return res;
    await res.body?.cancel();
  }
  row ??= await loadRow();
  if (!row || row.export_status === null || name === undefined || !exportedOf(row).includes(name)) {
    throw new HttpError(404, 'export_not_requested', `no MP4 export of ${name ?? 'this clip'} was requested (POST /api/clips/{id}/export)`);
  }
  if (row.export_status === 'failed')
    throw new HttpError(404, 'export_failed', `the export failed: ${row.export_error ?? 'unknown error'}`);
  return errorResponse(404, 'export_not_ready', `the export is ${row.export_status}; try again shortly`, {
    'access-control-allow-origin': '*',
    'retry-after': '5',
  });
}

vodRoutes.get('/:id/:rendition/:epoch/:file', async (c) => {
  const asset = c.get('asset');
  const rendition = c.req.param('rendition');
  if (!NAME_RE.test(rendition)) throw new HttpError(400, 'invalid_rendition', 'malformed rendition');
  const epochText = c.req.param('epoch');
  if (!/^\d{1,9}$/.test(epochText)) throw new HttpError(400, 'invalid_epoch', 'malformed epoch');
  const object = parseMediaFileName(c.req.param('file'));
  // A VOD playlist lists segments and their init segments only, and only those of the asset.
  if (!object || object.kind === 'part') throw new HttpError(404, 'not_found', 'no such media object');
  if (object.kind === 'segment' && (object.msn < asset.firstMsn || (asset.lastMsn !== null && object.msn > asset.lastMsn))) {
    throw new HttpError(404, 'not_found', 'no such media object in this asset');
  }
  if (object.kind === 'segment') {
    // A segment is its parts joined (each media byte is written to R2 once).
    const ref = { streamId: asset.streamId, epoch: Number(epochText), rendition, msn: object.msn };
    return segmentResponse(c.env, ref, {
      signed: c.get('token') !== undefined,
      range: c.req.header('range'),
      origin: new URL(c.req.url).origin,
      waitUntil: (p) => c.executionCtx.waitUntil(p),
    });
  }
  return serveObject(c, mediaObjectKey(asset.streamId, Number(epochText), rendition, object));
});

/** An immutable R2 object through the colo cache, with Range requests (VOD clips use byte ranges). */
async function serveObject(c: Context<VodEnv>, key: string, contentType?: string): Promise<Response> {
  const signed = c.get('token') !== undefined;
  const range = c.req.header('range');
  const cache = typeof caches !== 'undefined' ? caches.default : null;
  // The cache key is the object's, shared with the live routes: a segment is cached once.
  const cacheKey = new Request(new URL(c.req.url).origin + '/' + key);
  if (cache) {
    // match() answers a Range request from a cached full object by itself (206).
    const hit = await cache.match(range ? new Request(cacheKey, { headers: { range } }) : cacheKey);
    if (hit) {
      const res = new Response(hit.body, hit);
      res.headers.set('cache-control', forViewer(IMMUTABLE, signed));
      res.headers.set('access-control-allow-origin', '*');
      return res;
    }
  }
  const obj = await c.env.MEDIA.get(key, range ? { range: c.req.raw.headers } : undefined);
  if (!obj) return errorResponse(404, 'not_found', 'no such media object', { 'access-control-allow-origin': '*' });
  return objectResponse(obj, {
    signed,
    range,
    contentType,
    cache: cache ? { cache, key: cacheKey, waitUntil: (p) => c.executionCtx.waitUntil(p) } : null,
  });
}
