// A host cuts a clip from the watch page: `POST /api/streams/{id}/clips` with the host's room
// token as the bearer — a token of role `host` for the stream's own room (the room named after
// the stream, where the watch page chats), the credential an operator already hands a host.
// Mounted before the admin API: any other bearer (the admin token, or none) goes on to it as
// before. A host may cut (start, end, title) and nothing more: MP4 exports and retention stay
// the operator's.
import { Hono } from 'hono';
import { z } from 'zod';
import type { Env } from '../env.ts';
import { HttpError, parseOr400, readJson, timingSafeEqualString } from '../http.ts';
import { clientAddress, rateLimit } from '../middleware/rate-limit.ts';
import { verifyRoomToken } from '../../core/auth/room-token.ts';
import { ClipPointSchema, CreateClipSchema, createClip } from './clips.ts';

export const hostClipRoutes = new Hono<{ Bindings: Env }>();

const HostClipSchema = z.strictObject({
  start: ClipPointSchema,
  end: ClipPointSchema.default(0),
  title: z.string().max(200).default(''),
});

/** A host room token of the stream's own room, or null (then the admin API decides). */
async function streamHost(env: Env, header: string | undefined, streamId: string): Promise<string | null> {
  const bearer = /^Bearer\s+(.+)$/i.exec(header ?? '')?.[1]?.trim();
  if (!bearer || !env.ROOM_TOKEN_SECRET) return null;
  if (env.ADMIN_TOKEN && timingSafeEqualString(bearer, env.ADMIN_TOKEN)) return null;
  const check = await verifyRoomToken(bearer, env.ROOM_TOKEN_SECRET, streamId, Math.floor(Date.now() / 1000));
  return check.ok && check.claims.role === 'host' ? check.claims.name : null;
}

const hostLimit = rateLimit({ limiter: (env) => env.ADMIN_RATE_LIMITER, key: (c) => `clip-host:${clientAddress(c)}`, periodSeconds: 60 });

hostClipRoutes.post('/streams/:id/clips', async (c, next) => {
  const streamId = c.req.param('id');
  const host = await streamHost(c.env, c.req.header('authorization'), streamId);
  if (host === null) return next();
  const limited = await hostLimit(c, async () => {
    const raw = await readJson(c.req.raw);
    // Say what a host may not do, rather than "unrecognized key".
    if (raw && typeof raw === 'object' && ('export' in raw || 'retentionDays' in raw)) {
      throw new HttpError(403, 'forbidden', 'a host may cut clips; MP4 exports and retention are the operator’s (admin token)');
    }
    const body = parseOr400(HostClipSchema, raw, 'clip');
    const clip = await createClip(c.env, new URL(c.req.url).origin, streamId, CreateClipSchema.parse(body));
    c.res = c.json(clip, 201);
  });
  return limited ?? c.res;
});
