// The edge Worker: playback, ingest origin, admin API, rooms and the player page.
import { Hono } from 'hono';
import type { Env } from './env.ts';
import { roomRoutes } from './routes/rooms.ts';

export { StreamState } from '../durable-objects/stream-state.ts';
export { Room } from '../durable-objects/room.ts';
export { RoomShard } from '../durable-objects/room-shard.ts';

const app = new Hono<{ Bindings: Env }>();
app.get('/health', (c) => c.json({ ok: true, service: 'edgelive-worker' }));
app.route('/rooms', roomRoutes);

export default app;
