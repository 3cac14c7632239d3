// The clips admin API: cut up to 5 minutes of a stream (live or recorded) into a clip with its own
// VOD playlist over the existing objects, accurate to the part at both ends; optionally export it
// as MP4 files (made once by the export job on a queue, then served from R2 by /vod/{clip}/…).
import { Hono } from 'hono';
import { z } from 'zod';
import { adminAuth } from '../auth.ts';
import { getStream } from '../catalog.ts';
import type { Env } from '../env.ts';
import { HttpError, parseOr400, readJson, rpcError } from '../http.ts';
import { exportRenditions, type ClipExportMessage } from '../../core/contracts/clip-export.ts';
import { NAME_RE, clipExportPrefix } from '../../core/contracts/object-keys.ts';
import type { LadderRung, StreamSettings } from '../../core/contracts/stream-config.ts';
import { clipJson, type ClipRow } from '../vod-catalog.ts';
import { CLIP_ID_RE, newClipId, vodPlaybackPath } from '../../core/contracts/vod-assets.ts';
import type { ClipPoint } from '../../core/contracts/stream-rpc.ts';
import { queueWebhookEvent } from './webhooks.ts';

export const clipRoutes = new Hono<{ Bindings: Env }>();
// Every route checks the admin token itself: mounted under /api beside the admin API, not inside it.

/** A program date time (ISO 8601 with a zone), or seconds back from the live edge. */
export const ClipPointSchema = z.union([z.number().min(0).max(86_400), z.iso.datetime({ offset: true })]);

/** Which MP4 files to make: `true` is the tallest video rendition (with the audio). */
const ExportRequestSchema = z.strictObject({
  /** Video renditions (each muxed with the audio) or the audio rendition (audio only); the first is the default download. */
  renditions: z.array(z.string().regex(NAME_RE)).min(1).max(8).optional(),
});

export const CreateClipSchema = z.strictObject({
  start: ClipPointSchema,
  /** Defaults to the live edge. */
  end: ClipPointSchema.default(0),
  title: z.string().max(200).default(''),
  /** Also make MP4 files of the clip: `true`, or `{ renditions: [...] }`. */
  export: z.union([z.boolean(), ExportRequestSchema]).default(false),
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
  const body = parseOr400(CreateClipSchema, await readJson(c.req.raw), 'clip');
  return c.json(await createClip(c.env, new URL(c.req.url).origin, c.req.param('id'), body), 201);
});

/**
 * Cuts a clip of a stream and records it (and queues its export and the `clip.ready` event):
 * the admin API's, and a host's from the watch page (routes/host-clips.ts, which allows less).
 */
export async function createClip(env: Env, origin: string, streamId: string, body: z.infer<typeof CreateClipSchema>) {
  if (!NAME_RE.test(streamId)) throw new HttpError(400, 'invalid_stream_id', 'malformed stream id');
  const stream = await getStream(env.DB, streamId);
  if (!stream) throw new HttpError(404, 'stream_not_found', `no stream ${streamId}`);
  // Checked before anything is cut: a bad export request makes no clip.
  const renditions =
    body.export === false
      ? null
      : requestedRenditions(await publishedLadder(env, stream), body.export === true ? undefined : body.export.renditions);
  const id = newClipId();
  const r = await env.STREAM_STATE.getByName(streamId).createClip(id, point(body.start), point(body.end), body.retentionDays);
  if (r.status !== 200) throw rpcError(r);
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
    export_status: renditions ? 'pending' : null,
    export_key: renditions ? clipExportPrefix(id) : null,
    export_error: null,
    export_renditions: renditions ? JSON.stringify(renditions) : null,
    expires_at: r.clip.expiresAt,
    created_at: now,
    updated_at: now,
  };
  await env.DB.prepare(
    'INSERT INTO clips (id, stream_id, status, title, start_at, end_at, duration, first_msn, last_msn, export_status, export_key, export_renditions, expires_at, created_at, updated_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)',
  )
    .bind(
      id,
      streamId,
      'ready',
      row.title,
      row.start_at,
      row.end_at,
      row.duration,
      row.first_msn,
      row.last_msn,
      row.export_status,
      row.export_key,
      row.export_renditions,
      row.expires_at,
      now,
      now,
    )
    .run();
  if (renditions) await queueExport(env, row);
  await queueWebhookEvent(env, 'clip.ready', {
    clipId: id,
    streamId,
    title: row.title,
    start: new Date(row.start_at).toISOString(),
    end: new Date(row.end_at).toISOString(),
    duration: row.duration,
    playbackPath: vodPlaybackPath(id),
    export: renditions ? { status: row.export_status, renditions } : null,
  });
  return clipJson(origin, row);
}

/**
 * Export an existing clip, or more renditions of it: 202 while the files are made, 200 when
 * every rendition asked for is already exported. A failed export is tried again.
 */
clipRoutes.post('/clips/:id/export', adminAuth(), async (c) => {
  const id = c.req.param('id');
  const body = parseOr400(ExportRequestSchema, await readJson(c.req.raw), 'export request');
  const row = CLIP_ID_RE.test(id) ? await c.env.DB.prepare('SELECT * FROM clips WHERE id = ?').bind(id).first<ClipRow>() : null;
  if (!row) throw new HttpError(404, 'clip_not_found', `no clip ${id}`);
  if (row.status !== 'ready') throw new HttpError(410, 'expired', `clip ${id} has expired`);
  const stream = await getStream(c.env.DB, row.stream_id);
  if (!stream) throw new HttpError(404, 'stream_not_found', `the clip's stream ${row.stream_id} was deleted`);
  const asked = requestedRenditions(await publishedLadder(c.env, stream), body.renditions);
  const had = row.export_renditions ? (JSON.parse(row.export_renditions) as string[]) : [];
  const origin = new URL(c.req.url).origin;
  const now = Date.now();
  if (asked.every((r) => had.includes(r))) {
    if (row.export_status === 'ready') return c.json(clipJson(origin, row), 200);
    // Already being made; unless its job went quiet for longer than a queue consumer may run.
    if (row.export_status !== 'failed' && now - row.updated_at < STALE_EXPORT_MS) return c.json(clipJson(origin, row), 202);
  }
  const renditions = [...had, ...asked.filter((r) => !had.includes(r))];
  const next: ClipRow = {
    ...row,
    export_status: 'pending',
    export_key: clipExportPrefix(id),
    export_error: null,
    export_renditions: JSON.stringify(renditions),
    export_progress: 0,
    updated_at: now,
  };
  await c.env.DB.prepare(
    "UPDATE clips SET export_status = 'pending', export_key = ?, export_error = NULL, export_renditions = ?, export_progress = 0, updated_at = ? WHERE id = ?",
  )
    .bind(next.export_key, next.export_renditions, now, id)
    .run();
  await queueExport(c.env, next);
  return c.json(clipJson(origin, next), 202);
});

/** An export still pending after this long lost its job (a queue consumer runs 15 minutes at most). */
const STALE_EXPORT_MS = 20 * 60_000;

/**
 * The rungs a stream has published: on the automatic ladder, only its source's preset out of every
 * preset's rungs (those the stream's object has an init segment of); otherwise its ladder.
 */
async function publishedLadder(env: Env, stream: { id: string; settings: StreamSettings }): Promise<LadderRung[]> {
  if (stream.settings.ladderPreset !== 'auto') return stream.settings.ladder;
  const status = await env.STREAM_STATE.getByName(stream.id).status();
  const published = new Set((status?.renditions ?? []).filter((r) => r.codecs !== null).map((r) => r.rendition));
  const ladder = stream.settings.ladder.filter((r) => published.has(r.name));
  return ladder.length > 0 ? ladder : stream.settings.ladder;
}

function requestedRenditions(ladder: readonly LadderRung[], requested: string[] | undefined): string[] {
  const r = exportRenditions(ladder, requested);
  if ('error' in r) throw new HttpError(400, 'invalid_export', r.error);
  return r;
}

/** Hands the export to its job; if the queue refuses, the export says so (and can be asked for again). */
async function queueExport(env: Env, row: ClipRow): Promise<void> {
  try {
    await env.EXPORT_QUEUE.send({ kind: 'clip-export', clipId: row.id } satisfies ClipExportMessage);
  } catch (err) {
    console.error(JSON.stringify({ level: 'error', msg: 'clip export not queued', clipId: row.id, error: String(err) }));
    row.export_status = 'failed';
    row.export_error = 'the export could not be queued; request it again (POST /api/clips/{id}/export)';
    await env.DB.prepare("UPDATE clips SET export_status = 'failed', export_error = ? WHERE id = ?").bind(row.export_error, row.id).run();
  }
}

clipRoutes.get('/streams/:id/clips', adminAuth(), async (c) => {
  const streamId = c.req.param('id');
  if (!NAME_RE.test(streamId)) throw new HttpError(400, 'invalid_stream_id', 'malformed stream id');
  const q = parseOr400(ListQuerySchema, c.req.query(), 'query');
  const rows = await c.env.DB.prepare('SELECT * FROM clips WHERE stream_id = ? AND created_at < ? ORDER BY created_at DESC LIMIT ?')
    .bind(streamId, q.before ?? Number.MAX_SAFE_INTEGER, q.limit)
    .all<ClipRow>();
  const origin = new URL(c.req.url).origin;
  const last = rows.results.at(-1);
  return c.json({
    clips: rows.results.map((r) => clipJson(origin, r)),
    next: rows.results.length === q.limit && last ? { before: last.created_at } : null,
  });
});

clipRoutes.get('/clips/:id', adminAuth(), async (c) => {
  const id = c.req.param('id');
  const row = CLIP_ID_RE.test(id) ? await c.env.DB.prepare('SELECT * FROM clips WHERE id = ?').bind(id).first<ClipRow>() : null;
  if (!row) throw new HttpError(404, 'clip_not_found', `no clip ${id}`);
  return c.json(clipJson(new URL(c.req.url).origin, row));
});
