// The clips admin API: cut up to 5 minutes of a stream (live or recorded) into a clip with its own
// VOD playlist over the existing objects, accurate to the part at both ends; optionally ask the
// transcoder for an MP4 export.
import { Hono } from 'hono';
import { z } from 'zod';
import { adminAuth } from '../auth.ts';
import { getStream } from '../catalog.ts';
import type { Env } from '../env.ts';
import { HttpError, parseOr400, readJson } from '../http.ts';
import { NAME_RE } from '../lib/object-keys.ts';
import { CLIP_ID_RE, clipJson, newClipId, vodPlaybackPath, type ClipRow } from '../vod-catalog.ts';
import type { ClipPoint } from '../../durable-objects/stream-state.ts';
import { queueWebhookEvent } from './webhooks.ts';

export const clipRoutes = new Hono<{ Bindings: Env }>();
// Every route checks the admin token itself: mounted under /api beside the admin API, not inside it.

/** A program date time (ISO 8601 with a zone), or seconds back from the live edge. */
const ClipPointSchema = z.union([z.number().min(0).max(86_400), z.iso.datetime({ offset: true })]);

const CreateClipSchema = z.strictObject({
  start: ClipPointSchema,
  /** Defaults to the live edge. */
  end: ClipPointSchema.default(0),
  title: z.string().max(200).default(''),
  /** Also make an MP4 file of the clip (by the transcoder, with ffmpeg). */
  export: z.boolean().default(false),
  /** Days the clip (and the media it lists) is kept; the stream's retention when omitted. */
  retentionDays: z.number().int().min(1).max(3650).optional(),
});

const ListQuerySchema = z.object({
  limit: z.coerce.number().int().min(1).max(100).default(50),
  before: z.coerce.number().int().positive().optional(),
});

function point(p: number | string): ClipPoint {
  return typeof p === 'number' ? { fromEdge: p } : { at: Date.parse(p) };
}

clipRoutes.post('/streams/:id/clips', adminAuth(), async (c) => {
  const streamId = c.req.param('id');
  if (!NAME_RE.test(streamId)) throw new HttpError(400, 'invalid_stream_id', 'malformed stream id');
  const body = parseOr400(CreateClipSchema, await readJson(c.req.raw), 'clip');
  // The transcoder's export job (ffmpeg → exports/{clip}.mp4) does not exist yet: say so rather
  // than keep a request pending forever.
  if (body.export) throw new HttpError(501, 'export_not_available', 'MP4 export of clips is not available yet');
  const stream = await getStream(c.env.DB, streamId);
  if (!stream) throw new HttpError(404, 'stream_not_found', `no stream ${streamId}`);
  const id = newClipId();
  const r = await c.env.STREAM_STATE.getByName(streamId).createClip(id, point(body.start), point(body.end), body.retentionDays);
  if (r.status !== 200) throw new HttpError(r.status, r.code, r.message);
  const now = Date.now();
  const row: ClipRow = {
    id,
    stream_id: streamId,
    status: 'ready',
    title: body.title,
    start_at: r.clip.startMs,
    end_at: r.clip.endMs,
    duration: r.clip.duration,
    first_msn: r.clip.firstMsn,
    last_msn: r.clip.lastMsn,
    export_status: null,
    export_key: null,
    export_error: null,
    expires_at: r.clip.expiresAt,
    created_at: now,
    updated_at: now,
  };
  await c.env.DB.prepare(
    'INSERT INTO clips (id, stream_id, status, title, start_at, end_at, duration, first_msn, last_msn, export_status, expires_at, created_at, updated_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)',
  )
    .bind(id, streamId, 'ready', row.title, row.start_at, row.end_at, row.duration, row.first_msn, row.last_msn, row.export_status, row.expires_at, now, now)
    .run();
  await queueWebhookEvent(c.env, 'clip.ready', {
    clipId: id,
    streamId,
    title: row.title,
    start: new Date(row.start_at).toISOString(),
    end: new Date(row.end_at).toISOString(),
    duration: row.duration,
    playbackPath: vodPlaybackPath(id),
    export: null,
  });
  return c.json(clipJson(new URL(c.req.url).origin, row), 201);
});

clipRoutes.get('/streams/:id/clips', adminAuth(), async (c) => {
  const streamId = c.req.param('id');
  if (!NAME_RE.test(streamId)) throw new HttpError(400, 'invalid_stream_id', 'malformed stream id');
  const q = parseOr400(ListQuerySchema, c.req.query(), 'query');
  const rows = await c.env.DB.prepare('SELECT * FROM clips WHERE stream_id = ? AND created_at < ? ORDER BY created_at DESC LIMIT ?')
    .bind(streamId, q.before ?? Number.MAX_SAFE_INTEGER, q.limit)
    .all<ClipRow>();
  const origin = new URL(c.req.url).origin;
  const last = rows.results.at(-1);
  return c.json({ clips: rows.results.map((r) => clipJson(origin, r)), next: rows.results.length === q.limit && last ? { before: last.created_at } : null });
});

clipRoutes.get('/clips/:id', adminAuth(), async (c) => {
  const id = c.req.param('id');
  const row = CLIP_ID_RE.test(id) ? await c.env.DB.prepare('SELECT * FROM clips WHERE id = ?').bind(id).first<ClipRow>() : null;
  if (!row) throw new HttpError(404, 'clip_not_found', `no clip ${id}`);
  return c.json(clipJson(new URL(c.req.url).origin, row));
});
