// Room routes: WebSocket upgrade into the room's Durable Objects. Placeholder until the rooms work lands.
import { Hono } from 'hono';
import type { Env } from '../env.ts';

export const roomRoutes = new Hono<{ Bindings: Env }>();
