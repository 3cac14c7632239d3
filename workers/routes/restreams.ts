// Restream destinations: the admin API (`/api/streams/{id}/restreams`, mounted behind the admin
// token) and the signed sync call a media node makes while it has the stream's publisher: it
// reports each destination's status and gets back the enabled destinations, keys included.
import { Hono } from 'hono';
import type { Env } from '../env.ts';
import { HttpError, parseOr400, readJson } from '../http.ts';
import { openDestination, sealDestination } from '../restream-secrets.ts';
import { pushTarget, signedBody } from './ingest.ts';
import { NAME_RE } from '../../core/contracts/object-keys.ts';
import {
  CreateRestreamSchema,
  MAX_RESTREAMS_PER_STREAM,
  PatchRestreamSchema,
  RESTREAM_ID_RE,
  RESTREAM_STATUS_TTL_MS,
  RestreamSyncRequestSchema,
  displayUrl,
  keyHint,
  publishUrl,
  type RestreamStatus,
  type RestreamSyncResponse,
} from '../../core/contracts/restream.ts';
import { randomId } from '../../core/contracts/webhooks.ts';

interface RestreamRow {
  id: string;
  stream_id: string;
  name: string;
  url_display: string;
  key_hint: string;
  secret: string;
  enabled: number;
  status: string | null;
  status_epoch: number;
  status_node: string | null;
  status_at: number | null;
  created_at: number;
  updated_at: number;
}

const iso = (ms: number | null | undefined) => (ms === null || ms === undefined ? null : new Date(ms).toISOString());

/** The status the API shows: the node's last report while it is fresh; `stopped` otherwise. */
function statusJson(row: RestreamRow, now: number) {
  const reported = row.status ? (JSON.parse(row.status) as Omit<RestreamStatus, 'id'>) : null;
  const base = { nodeId: row.status_node, reportedAt: iso(row.status_at) };
  if (!reported) return { state: 'stopped' as const, error: null, since: null, failures: 0, nextAttemptAt: null, droppedBytes: 0, ...base };
  // Only a state that claims something is going on now goes stale; stopped and failed are outcomes.
  const ongoing = reported.state === 'connecting' || reported.state === 'live' || reported.state === 'retrying';
  const stale = ongoing && (row.status_at ?? 0) < now - RESTREAM_STATUS_TTL_MS;
  return {
    state: stale ? ('stopped' as const) : reported.state,
    error: stale ? `no report from media node ${row.status_node ?? '?'} since ${iso(row.status_at)}` : reported.error,
    since: iso(stale ? row.status_at : reported.since),
    failures: reported.failures,
    nextAttemptAt: stale ? null : iso(reported.nextAttemptAt),
    droppedBytes: reported.droppedBytes,
    ...base,
  };
}

function restreamJson(row: RestreamRow, now = Date.now()) {
  return {
    id: row.id,
    streamId: row.stream_id,
    name: row.name,
    url: row.url_display,
    // Never the key itself: it was shown to the operator by the destination, not by us.
    streamKey: row.key_hint,
    enabled: row.enabled === 1,
    status: statusJson(row, now),
    createdAt: iso(row.created_at),
    updatedAt: iso(row.updated_at),
  };
}

function streamIdParam(id: string | undefined): string {
  if (!id || !NAME_RE.test(id)) throw new HttpError(400, 'invalid_stream_id', 'malformed stream id');
  return id;
}

async function getRestream(db: D1Database, streamId: string, id: string | undefined): Promise<RestreamRow> {
  const row =
    id && RESTREAM_ID_RE.test(id)
      ? await db.prepare('SELECT * FROM restreams WHERE id = ? AND stream_id = ?').bind(id, streamId).first<RestreamRow>()
      : null;
  if (!row) throw new HttpError(404, 'restream_not_found', `stream ${streamId} has no restream ${id}`);
  return row;
}

/** Mounted at `/streams` of the admin API. */
export const restreamRoutes = new Hono<{ Bindings: Env }>();

restreamRoutes.post('/:id/restreams', async (c) => {
  const streamId = streamIdParam(c.req.param('id'));
  const body = parseOr400(CreateRestreamSchema, await readJson(c.req.raw), 'restream');
  const db = c.env.DB;
  const counts = await db
    .prepare(
      'SELECT (SELECT COUNT(*) FROM streams WHERE id = ?1) AS stream, (SELECT COUNT(*) FROM restreams WHERE stream_id = ?1) AS restreams',
    )
    .bind(streamId)
    .first<{ stream: number; restreams: number }>();
  if (!counts?.stream) throw new HttpError(404, 'stream_not_found', `no stream ${streamId}`);
  if (counts.restreams >= MAX_RESTREAMS_PER_STREAM)
    throw new HttpError(409, 'too_many_restreams', `a stream forwards to at most ${MAX_RESTREAMS_PER_STREAM} destinations`);
  const now = Date.now();
  const row: RestreamRow = {
    id: 'rs' + randomId(16),
    stream_id: streamId,
    name: body.name,
    url_display: displayUrl(body.url),
    key_hint: keyHint(body.streamKey),
    secret: '',
    enabled: body.enabled ? 1 : 0,
    status: null,
    status_epoch: 0,
    status_node: null,
    status_at: null,
    created_at: now,
    updated_at: now,
  };
  row.secret = await sealDestination(c.env.INGEST_SECRET, row.id, streamId, { url: body.url, streamKey: body.streamKey });
  await db
    .prepare(
      'INSERT INTO restreams (id, stream_id, name, url_display, key_hint, secret, enabled, created_at, updated_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)',
    )
    .bind(row.id, streamId, row.name, row.url_display, row.key_hint, row.secret, row.enabled, now, now)
    .run();
  return c.json(restreamJson(row, now), 201);
});

restreamRoutes.get('/:id/restreams', async (c) => {
  const streamId = streamIdParam(c.req.param('id'));
  const db = c.env.DB;
  const [exists, rows] = await db.batch([
    db.prepare('SELECT 1 AS one FROM streams WHERE id = ?').bind(streamId),
    db.prepare('SELECT * FROM restreams WHERE stream_id = ? ORDER BY created_at').bind(streamId),
  ]);
  if (!exists!.results.length) throw new HttpError(404, 'stream_not_found', `no stream ${streamId}`);
  const now = Date.now();
  return c.json({ restreams: (rows!.results as unknown as RestreamRow[]).map((r) => restreamJson(r, now)) });
});

restreamRoutes.get('/:id/restreams/:rid', async (c) => {
  const streamId = streamIdParam(c.req.param('id'));
  return c.json(restreamJson(await getRestream(c.env.DB, streamId, c.req.param('rid'))));
});

restreamRoutes.patch('/:id/restreams/:rid', async (c) => {
  const streamId = streamIdParam(c.req.param('id'));
  const patch = parseOr400(PatchRestreamSchema, await readJson(c.req.raw), 'restream changes');
  const row = await getRestream(c.env.DB, streamId, c.req.param('rid'));
  // updated_at is the revision the node compares: it moves on every change, even within a millisecond.
  const next: RestreamRow = { ...row, updated_at: Math.max(Date.now(), row.updated_at + 1) };
  if (patch.name !== undefined) next.name = patch.name;
  if (patch.enabled !== undefined) next.enabled = patch.enabled ? 1 : 0;
  if (patch.url !== undefined || patch.streamKey !== undefined) {
    // One of the two changes: the other comes from what is stored.
    const current =
      patch.url !== undefined && patch.streamKey !== undefined
        ? null
        : await openDestination(c.env.INGEST_SECRET, row.id, streamId, row.secret);
    const url = patch.url ?? current?.url;
    const streamKey = patch.streamKey ?? current?.streamKey;
    if (url === undefined || streamKey === undefined) {
      throw new HttpError(
        409,
        'secret_unreadable',
        'the stored URL and key cannot be decrypted (INGEST_SECRET changed?): give both url and streamKey',
      );
    }
    next.secret = await sealDestination(c.env.INGEST_SECRET, row.id, streamId, { url, streamKey });
    next.url_display = displayUrl(url);
    next.key_hint = keyHint(streamKey);
  }
  await c.env.DB.prepare(
    'UPDATE restreams SET name = ?, enabled = ?, secret = ?, url_display = ?, key_hint = ?, updated_at = ? WHERE id = ?',
  )
    .bind(next.name, next.enabled, next.secret, next.url_display, next.key_hint, next.updated_at, row.id)
    .run();
  return c.json(restreamJson(next));
});

restreamRoutes.delete('/:id/restreams/:rid', async (c) => {
  const streamId = streamIdParam(c.req.param('id'));
  const row = await getRestream(c.env.DB, streamId, c.req.param('rid'));
  await c.env.DB.prepare('DELETE FROM restreams WHERE id = ?').bind(row.id).run();
  return c.body(null, 204);
});

/** Mounted at the ingest prefix, beside the push routes. */
export const ingestRestreamRoutes = new Hono<{ Bindings: Env }>();

ingestRestreamRoutes.post('/:stream/:epoch/restreams', async (c) => {
  const { body } = await signedBody(c.req.raw, c.env.INGEST_SECRET, 64 * 1024);
  const { stream, epoch } = pushTarget(c.req.param('stream'), c.req.param('epoch'));
  let json: unknown;
  try {
    json = JSON.parse(new TextDecoder().decode(body));
  } catch {
    throw new HttpError(400, 'invalid_json', 'body is not valid JSON');
  }
  const req = parseOr400(RestreamSyncRequestSchema, json, 'restream sync');
  const db = c.env.DB;
  const now = Date.now();
  // A report from an older lease (a node that lost the publisher) never overwrites a newer one.
  const report = (id: string, status: Omit<RestreamStatus, 'id'>) =>
    db
      .prepare(
        'UPDATE restreams SET status = ?, status_epoch = ?, status_node = ?, status_at = ? WHERE id = ? AND stream_id = ? AND status_epoch <= ?',
      )
      .bind(JSON.stringify(status), epoch, req.nodeId, now, id, stream, epoch);
  const updates = req.statuses.map(({ id, ...status }) => report(id, status));
  const [rows] = await db.batch([
    db.prepare('SELECT id, secret, updated_at FROM restreams WHERE stream_id = ? AND enabled = 1 ORDER BY created_at').bind(stream),
    ...updates,
  ]);
  const destinations: RestreamSyncResponse['destinations'] = [];
  const unreadable: D1PreparedStatement[] = [];
  for (const r of rows!.results as Array<{ id: string; secret: string; updated_at: number }>) {
    const d = await openDestination(c.env.INGEST_SECRET, r.id, stream, r.secret);
    if (d) destinations.push({ id: r.id, url: publishUrl(d.url, d.streamKey), revision: r.updated_at });
    else {
      const error = 'the destination URL and key cannot be decrypted (INGEST_SECRET changed?): set them again';
      unreadable.push(report(r.id, { state: 'failed', error, since: now, failures: 0, nextAttemptAt: null, droppedBytes: 0 }));
    }
  }
  if (unreadable.length) await db.batch(unreadable);
  return c.json({ destinations } satisfies RestreamSyncResponse);
});
