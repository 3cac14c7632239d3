// `GET /live/{id}/info.json`: what the watch page shows before and beside the video — the
// stream's title, whether it is idle, live or ended, its DVR window and whether it plays in real time. Behind the same access
// check as the playlists, so a viewer the playlists would refuse (token, country) gets the same
// 401/403 here, and nothing else about the stream leaks (no key, no ladder, no ingest session).
import { Hono } from 'hono';
import { getStream } from '../catalog.ts';
import { HttpError } from '../http.ts';
import { playbackAccess, type PlaybackAccessEnv } from '../middleware/playback-access.ts';

export const streamInfoRoutes = new Hono<PlaybackAccessEnv>();

streamInfoRoutes.get('/:id/info.json', playbackAccess(), async (c) => {
  const id = c.req.param('id');
  const [stream, live] = await Promise.all([getStream(c.env.DB, id), c.env.STREAM_STATE.getByName(id).status()]);
  if (!stream) throw new HttpError(404, 'stream_not_found', `no stream ${id}`);
  const signed = c.get('playbackToken') !== undefined;
  return c.json(
    {
      id,
      title: stream.title,
      status: live?.state ?? stream.status,
      dvrWindowSeconds: stream.settings.dvrWindowSeconds,
      // The watch page offers real-time (WebRTC) playback when this is on.
      realtime: stream.settings.realtime,
    },
    200,
    { 'cache-control': `${signed ? 'private' : 'public'}, max-age=2`, 'access-control-allow-origin': '*' },
  );
});
