// The edge Worker: playback, ingest origin, admin API, rooms and the player page.
import { Hono } from 'hono';
import type { Env } from './env.ts';

export { StreamState } from '../durable-objects/stream-state.ts';
export { Room } from '../durable-objects/room.ts';

const app = new Hono<{ Bindings: Env }>();
app.get('/health', (c) => c.json({ ok: true, service: 'edgelive-worker' }));

export default app;
