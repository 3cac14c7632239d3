// The edge Worker: playback, ingest origin, admin API, rooms and the player page.
import { Hono } from 'hono';
import type { Env } from './env.ts';
import { handleError, errorResponse } from './http.ts';
import { adminRoutes } from './routes/admin.ts';
import { ingestRoutes } from './routes/ingest.ts';
import { playbackRoutes } from './routes/playback.ts';
import { roomRoutes } from './routes/rooms.ts';
import { INGEST_PREFIX } from './lib/ingest-protocol.ts';

export { StreamState } from '../durable-objects/stream-state.ts';
export { Room } from '../durable-objects/room.ts';
export { RoomShard } from '../durable-objects/room-shard.ts';

const app = new Hono<{ Bindings: Env }>();
app.onError(handleError);
app.get('/health', (c) => c.json({ ok: true, service: 'edgelive-worker' }));
app.route('/api', adminRoutes);
app.route(INGEST_PREFIX, ingestRoutes);
app.route('/live', playbackRoutes);
app.route('/rooms', roomRoutes);
app.get('/watch/:id', (c) => c.env.ASSETS.fetch(new URL('/watch.html', c.req.url)));
app.notFound(async (c) => {
  // Everything else is a static asset (player page, scripts) or a JSON 404.
  const asset = await c.env.ASSETS.fetch(c.req.raw);
  if (asset.status !== 404) return asset;
  return errorResponse(404, 'not_found', `no route for ${c.req.method} ${new URL(c.req.url).pathname}`);
});

export default app;
