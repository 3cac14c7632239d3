// The recordings admin API: every broadcast of a stream becomes a recording (a VOD playlist over
// the live objects, made by its StreamState when the broadcast ends), listed under the stream.
import { Hono } from 'hono';
import { z } from 'zod';
import { adminAuth } from '../auth.ts';
import type { Env } from '../env.ts';
import { HttpError, parseOr400 } from '../http.ts';
import { NAME_RE } from '../../core/contracts/object-keys.ts';
import { recordingJson, type RecordingRow } from '../vod-catalog.ts';
import { RECORDING_ID_RE } from '../../core/contracts/vod-assets.ts';

export const recordingRoutes = new Hono<{ Bindings: Env }>();
// Every route checks the admin token itself: mounted under /api beside the admin API, not inside it.

const ListQuerySchema = z.object({
  limit: z.coerce.number().int().min(1).max(100).default(50),
  before: z.coerce.number().int().positive().optional(),
});

recordingRoutes.get('/streams/:id/recordings', adminAuth(), async (c) => {
  const id = c.req.param('id');
  if (!NAME_RE.test(id)) throw new HttpError(400, 'invalid_stream_id', 'malformed stream id');
  const q = parseOr400(ListQuerySchema, c.req.query(), 'query');
  // Recordings outlive a deleted stream until they expire, so they are listed by stream id alone.
  const rows = await c.env.DB.prepare('SELECT * FROM recordings WHERE stream_id = ? AND started_at < ? ORDER BY started_at DESC LIMIT ?')
    .bind(id, q.before ?? Number.MAX_SAFE_INTEGER, q.limit)
    .all<RecordingRow>();
  const origin = new URL(c.req.url).origin;
  const last = rows.results.at(-1);
  return c.json({
    recordings: rows.results.map((r) => recordingJson(origin, r)),
    next: rows.results.length === q.limit && last ? { before: last.started_at } : null,
  });
});

recordingRoutes.get('/recordings/:id', adminAuth(), async (c) => {
  const id = c.req.param('id');
  const row = RECORDING_ID_RE.test(id)
    ? await c.env.DB.prepare('SELECT * FROM recordings WHERE id = ?').bind(id).first<RecordingRow>()
    : null;
  if (!row) throw new HttpError(404, 'recording_not_found', `no recording ${id}`);
  return c.json(recordingJson(new URL(c.req.url).origin, row));
});
