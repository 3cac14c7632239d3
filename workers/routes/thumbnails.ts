// Thumbnails at the edge: `/live/{id}/thumbnail.jpg` is the latest JPEG the transcoder grabbed
// from the top rendition; `?t=` (a program date time, ISO 8601 or ms since the Unix epoch) picks
// the one shown at that moment, anywhere in the DVR window. Same access rules as the playlists.
import { Hono } from 'hono';
import { z } from 'zod';
import { HttpError, parseOr400, rpcErrorResponse } from '../http.ts';
import { playbackAccess, type PlaybackAccessEnv } from '../middleware/playback-access.ts';

export const thumbnailRoutes = new Hono<PlaybackAccessEnv>();

const QuerySchema = z.object({
  t: z.union([z.iso.datetime({ offset: true }), z.string().regex(/^\d{1,15}$/)]).optional(),
});

thumbnailRoutes.get('/:id/thumbnail.jpg', playbackAccess(), async (c) => {
  const id = c.req.param('id');
  const q = parseOr400(QuerySchema, { t: c.req.query('t') }, 'query');
  const at = q.t === undefined ? undefined : /^\d+$/.test(q.t) ? Number(q.t) : Date.parse(q.t);
  const r = await c.env.STREAM_STATE.getByName(id).thumbnail(at);
  if (r.status !== 200) return rpcErrorResponse(r, { 'access-control-allow-origin': '*', 'cache-control': 'no-cache' });
  const obj = await c.env.MEDIA.get(r.key);
  if (!obj) throw new HttpError(404, 'thumbnail_not_found', 'the thumbnail is gone');
  const signed = c.get('playbackToken') !== undefined;
  return new Response(obj.body, {
    headers: {
      'content-type': 'image/jpeg',
      'content-length': String(obj.size),
      etag: obj.httpEtag,
      // The latest changes every few seconds; a past moment's picture does not.
      'cache-control': `${signed ? 'private' : 'public'}, max-age=${at === undefined ? 2 : 300}`,
      'access-control-allow-origin': '*',
      'x-edgelive-program-date-time': new Date(r.programDateTime).toISOString(),
    },
  });
});
