// `POST /parties`: anyone may start a watch party of a stream. The party is a new room with a
// random id, and the caller gets its host token (so the front door's "Start a party" works for a
// visitor without an operator); nobody else is in that room until the host shares its invite.
// A brake per address (PARTY_RATE_LIMITER) keeps this from minting rooms in bulk.
import { Hono } from 'hono';
import { z } from 'zod';
import type { Env } from '../env.ts';
import { getStream } from '../catalog.ts';
import { HttpError, parseOr400, readJson } from '../http.ts';
import { clientAddress, rateLimit } from '../middleware/rate-limit.ts';
import { signRoomToken } from '../../core/auth/room-token.ts';
import { NAME_RE } from '../../core/contracts/object-keys.ts';
import { randomId } from '../../core/contracts/webhooks.ts';
import { DisplayName } from '../../core/rooms/room-protocol.ts';

export const partyRoutes = new Hono<{ Bindings: Env }>();

/** How long the host's token lasts: an evening. */
export const PARTY_HOST_TTL_SEC = 6 * 3600;

const StartPartySchema = z.strictObject({
  stream: z.string().regex(NAME_RE),
  /** The host's display name in the party (default `Host`). */
  name: DisplayName.optional(),
});

partyRoutes.post(
  '/',
  rateLimit({ limiter: (env) => env.PARTY_RATE_LIMITER, key: (c) => `party:${clientAddress(c)}`, periodSeconds: 60 }),
  async (c) => {
    const body = parseOr400(StartPartySchema, await readJson(c.req.raw), 'party');
    if (!c.env.ROOM_TOKEN_SECRET) throw new HttpError(500, 'misconfigured', 'ROOM_TOKEN_SECRET is not set');
    if (!(await getStream(c.env.DB, body.stream))) throw new HttpError(404, 'stream_not_found', `no stream ${body.stream}`);
    const room = `p${randomId(15)}`;
    const iat = Math.floor(Date.now() / 1000);
    const exp = iat + PARTY_HOST_TTL_SEC;
    const hostToken = await signRoomToken({ room, name: body.name ?? 'Host', role: 'host', exp, iat }, c.env.ROOM_TOKEN_SECRET);
    const invite = `/party/${room}?stream=${body.stream}`;
    return c.json(
      {
        room,
        stream: body.stream,
        hostToken,
        expiresAt: new Date(exp * 1000).toISOString(),
        url: `${invite}&roomToken=${hostToken}`,
        invite,
      },
      201,
      { 'cache-control': 'no-store' },
    );
  },
);
