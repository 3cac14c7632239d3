// Quality of experience: players post beacon batches to `POST /api/qoe` (public, no token: a
// beacon carries nothing secret and is checked against the schema); every event is written to
// Analytics Engine and the batch's aggregate to the stream's QoeStats object, which answers
// `GET /api/streams/:id/stats` (admin) with the live viewer count and the recent figures, beside
// the playback load on the stream's StreamState (`origin`).
import { Hono } from 'hono';
import { z } from 'zod';
import { getStream } from '../catalog.ts';
import type { Env } from '../env.ts';
import { HttpError, parseOr400, readJson } from '../http.ts';
import { NAME_RE } from '../../core/contracts/object-keys.ts';
import {
  QOE_DEFAULT_WINDOW_MINUTES,
  QOE_KEEP_MINUTES,
  QOE_MAX_BODY,
  QoeBatch,
  aggregateBatch,
  qoeDataPoints,
} from '../../core/contracts/qoe.ts';
import { TtlCache } from '../../core/auth/ttl-cache.ts';

/** Mounted at `/api` BEFORE the admin routes: beacons come from viewers, without the admin token. */
export const qoeBeaconRoutes = new Hono<{ Bindings: Env }>();
/** Mounted at `/api` AFTER the admin routes, so their rate limit and bearer check apply. */
export const streamStatsRoutes = new Hono<{ Bindings: Env }>();

/**
 * Whether a stream exists, remembered per isolate: beacons arrive every few seconds from every
 * viewer, and a beacon for an unknown id must not create a QoeStats object.
 */
const known = new TtlCache<boolean>({ ttlMs: 60_000, staleIfErrorMs: 60_000, maxEntries: 10_000, ttlMsFor: (v) => (v ? 60_000 : 5_000) });

async function streamExists(db: D1Database, id: string): Promise<boolean> {
  const now = Date.now();
  return (
    known.peek(id, now) ??
    known.get(id, now, async () => (await db.prepare('SELECT 1 AS one FROM streams WHERE id = ?').bind(id).first()) !== null)
  );
}

qoeBeaconRoutes.post('/qoe', async (c) => {
  // navigator.sendBeacon posts text/plain (no CORS preflight); the body is JSON either way.
  const batch = parseOr400(QoeBatch, await readJson(c.req.raw, QOE_MAX_BODY), 'QoE batch');
  if (!(await streamExists(c.env.DB, batch.streamId))) throw new HttpError(404, 'stream_not_found', `no stream ${batch.streamId}`);
  const country = typeof c.req.raw.cf?.country === 'string' ? c.req.raw.cf.country : 'XX';
  // writeDataPoint is fire-and-forget by design; a batch is at most 20 points (the limit is 25).
  for (const point of qoeDataPoints(batch, country)) c.env.QOE_ANALYTICS.writeDataPoint(point);
  await c.env.QOE_STATS.getByName(batch.streamId).record(batch.session, aggregateBatch(batch));
  return c.body(null, 204, { 'cache-control': 'no-store' });
});

const StatsQuery = z.object({ minutes: z.coerce.number().int().min(1).max(QOE_KEEP_MINUTES).default(QOE_DEFAULT_WINDOW_MINUTES) });

streamStatsRoutes.get('/streams/:id/stats', async (c) => {
  const id = c.req.param('id');
  if (!NAME_RE.test(id)) throw new HttpError(400, 'invalid_stream_id', 'malformed stream id');
  const q = parseOr400(StatsQuery, { minutes: c.req.query('minutes') }, 'query');
  const stream = await getStream(c.env.DB, id);
  if (!stream) throw new HttpError(404, 'stream_not_found', `no stream ${id}`);
  const [qoe, live, origin, room] = await Promise.all([
    c.env.QOE_STATS.getByName(id).stats(q.minutes),
    c.env.STREAM_STATE.getByName(id).status(),
    c.env.STREAM_STATE.getByName(id).playbackLoad(),
    // The watch page's chat room is named after the stream (docs/player.md).
    c.env.ROOM.getByName(id)
      .info()
      .catch(() => null),
  ]);
  return c.json(
    {
      streamId: id,
      status: live?.state ?? stream.status,
      viewers: { players: qoe.viewers, room: room?.viewers ?? 0 },
      windowMinutes: qoe.windowMinutes,
      lastBeaconAt: qoe.lastBeaconAt === null ? null : new Date(qoe.lastBeaconAt).toISOString(),
      qoe: qoe.qoe,
      origin,
    },
    200,
    { 'cache-control': 'no-store' },
  );
});
