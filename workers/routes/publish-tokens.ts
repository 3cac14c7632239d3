// `POST /api/streams/:id/publish-tokens` (admin): a short-lived token that starts the stream's ingest
// wherever its stream key would (WHIP bearer, RTMP stream name, SRT stream id) and grants nothing
// else: it cannot read, show or rotate the key, nor call the admin API. Mounted under the admin API.
import { Hono } from 'hono';
import { z } from 'zod';
import type { Env } from '../env.ts';
import { HttpError, parseOr400, readJson } from '../http.ts';
import { NAME_RE } from '../../core/contracts/object-keys.ts';
import { rateLimit } from '../middleware/rate-limit.ts';
import { mintPublishToken } from '../publish-tokens.ts';

export const publishTokenRoutes = new Hono<{ Bindings: Env }>();

const MintPublishTokenSchema = z.strictObject({
  /** Seconds the token may start a publish for (checked when a publisher connects, not during its broadcast). */
  expiresIn: z
    .number()
    .int()
    .min(10)
    .max(7 * 24 * 3600)
    .default(3600),
  /** reusable until it expires; single: one accepted publish; session: every use after the first repeats its session. */
  use: z.enum(['reusable', 'single', 'session']).default('reusable'),
});

publishTokenRoutes.post(
  '/:id/publish-tokens',
  // The same budget as playback-token minting, per stream.
  rateLimit({ limiter: (env) => env.TOKEN_RATE_LIMITER, key: (c) => `publish:${c.req.param('id') ?? ''}`, periodSeconds: 60 }),
  async (c) => {
    const id = c.req.param('id');
    if (!NAME_RE.test(id)) throw new HttpError(400, 'invalid_stream_id', 'malformed stream id');
    const body = parseOr400(MintPublishTokenSchema, await readJson(c.req.raw), 'publish token request');
    const minted = await mintPublishToken(c.env, id, body);
    if (!minted) throw new HttpError(404, 'stream_not_found', `no stream ${id}`);
    const origin = new URL(c.req.url).origin;
    return c.json(
      {
        token: minted.token,
        streamId: id,
        use: minted.use,
        expiresAt: new Date(minted.expiresAt * 1000).toISOString(),
        // In the fragment: browsers never send it to a server, so it stays out of logs and Referer.
        golive: `${origin}/golive/${id}#token=${minted.token}`,
        whip: `${origin}/whip/${id}`,
      },
      201,
    );
  },
);
