// The admin API: create, list, show, change, delete streams, rotate their keys, mint playback and
// publish tokens, their restream destinations (routes/restreams.ts), and the signing keys (bearer
// ADMIN_TOKEN, rate limited per client address).
import { Hono } from 'hono';
import { z } from 'zod';
import { adminAuth } from '../auth.ts';
import { getStream, hashStreamKey, newStreamId, newStreamKey, toRecord, type StreamRecord, type StreamRow } from '../catalog.ts';
import type { Env } from '../env.ts';
import { HttpError, parseOr400, readJson } from '../http.ts';
import { CountryListSchema } from '../../core/auth/geo.ts';
import { NAME_RE } from '../../core/contracts/object-keys.ts';
import { signPlaybackToken } from '../../core/auth/playback-token.ts';
import { PlaybackSettingsSchema, StreamSettingsSchema, TakeoverPolicySchema } from '../../core/contracts/stream-config.ts';
import { forgetPlaybackAccess } from '../middleware/playback-access.ts';
import { forgetRealtimeSetting } from './whep.ts';
import { clientAddress, rateLimit } from '../middleware/rate-limit.ts';
import { managedSigningKey } from '../signing-keys.ts';
import { keyRoutes } from './keys.ts';
import { adminIngestRoutes, ingestNodesFor, nodeIngestUrls, srtUrlFor } from './ingest-nodes.ts';
import { restreamRoutes } from './restreams.ts';
import { publishTokenRoutes } from './publish-tokens.ts';
import type { IngestNode } from '../../core/contracts/registry-rpc.ts';

export const adminRoutes = new Hono<{ Bindings: Env }>();
// Counted before the token is checked, so guessing it is throttled too.
adminRoutes.use('*', rateLimit({ limiter: (env) => env.ADMIN_RATE_LIMITER, key: (c) => `admin:${clientAddress(c)}`, periodSeconds: 60 }));
adminRoutes.use('*', adminAuth());
adminRoutes.route('/signing-keys', keyRoutes);
adminRoutes.route('/ingest', adminIngestRoutes);
adminRoutes.route('/streams', restreamRoutes);
adminRoutes.route('/streams', publishTokenRoutes);

const ListQuerySchema = z.object({
  limit: z.coerce.number().int().min(1).max(100).default(50),
  before: z.coerce.number().int().positive().optional(),
});

interface IngestUrls {
  rtmp: string;
  rtmps: string | null;
  srt: string | null;
  /** The WHIP endpoint (the stream key is the bearer token, never in the URL). */
  whip: string | null;
  nodeId: string | null;
  region: string | null;
}

function urlsOf(node: IngestNode, streamKey: string): IngestUrls {
  return { ...nodeIngestUrls(node, streamKey), nodeId: node.nodeId, region: node.region };
}

/**
 * Publish URLs: those of the healthy ingest node nearest the caller (geo-routed ingest) and, as
 * `backup`, those of the next-ranked node when a second one is healthy; without a registered node,
 * the RTMP_INGEST_URL / RTMPS_INGEST_URL / SRT_INGEST_URL / WHIP_INGEST_URL variables (and no backup).
 */
async function ingestFor(
  env: Env,
  req: Request,
  streamKey: string,
): Promise<{ urls: IngestUrls & { backup: IngestUrls | null }; node: IngestNode | null }> {
  let nodes: { primary: IngestNode | null; backup: IngestNode | null } = { primary: null, backup: null };
  try {
    nodes = await ingestNodesFor(env, req);
  } catch (err) {
    console.error(
      JSON.stringify({ level: 'error', msg: 'ingest registry unavailable; using the configured ingest URLs', error: String(err) }),
    );
  }
  const { primary, backup } = nodes;
  if (primary) return { urls: { ...urlsOf(primary, streamKey), backup: backup ? urlsOf(backup, streamKey) : null }, node: primary };
  const base = (env.RTMP_INGEST_URL ?? 'rtmp://127.0.0.1:1935/live').replace(/\/$/, '');
  const rtmps = env.RTMPS_INGEST_URL ? `${env.RTMPS_INGEST_URL.replace(/\/$/, '')}/${streamKey}` : null;
  return {
    urls: {
      rtmp: `${base}/${streamKey}`,
      rtmps,
      srt: env.SRT_INGEST_URL ? srtUrlFor(env.SRT_INGEST_URL, streamKey) : null,
      whip: env.WHIP_INGEST_URL ?? null,
      nodeId: null,
      region: null,
      backup: null,
    },
    node: null,
  };
}

function playbackUrls(origin: string, id: string, realtime = false) {
  // WHEP (sub-second, WebRTC) only for streams that have it: POST an SDP offer there.
  return {
    hls: `${origin}/live/${id}/index.m3u8`,
    watch: `${origin}/watch/${id}`,
    ...(realtime ? { whep: `${origin}/live/${id}/whep` } : {}),
  };
}

function streamJson(origin: string, s: StreamRecord) {
  return {
    id: s.id,
    title: s.title,
    status: s.status,
    settings: s.settings,
    playback: playbackUrls(origin, s.id, s.settings.realtime),
    createdAt: new Date(s.createdAt).toISOString(),
    updatedAt: new Date(s.updatedAt).toISOString(),
  };
}

function streamIdParam(id: string): string {
  if (!NAME_RE.test(id)) throw new HttpError(400, 'invalid_stream_id', 'malformed stream id');
  return id;
}

adminRoutes.post('/streams', async (c) => {
  const body = await readJson(c.req.raw);
  // A named preset is its own ladder: a ladder beside it would be silently replaced.
  const named = body as { ladder?: unknown; ladderPreset?: unknown } | null;
  if (
    named &&
    typeof named === 'object' &&
    named.ladder !== undefined &&
    named.ladderPreset !== undefined &&
    named.ladderPreset !== 'custom'
  ) {
    throw new HttpError(
      400,
      'invalid_request',
      'stream settings: give a ladder with ladderPreset "custom" (or no ladderPreset), not with a preset',
    );
  }
  const settings = parseOr400(StreamSettingsSchema, body, 'stream settings');
  const id = newStreamId();
  const streamKey = newStreamKey();
  const now = Date.now();
  const ingest = await ingestFor(c.env, c.req.raw, streamKey);
  // The Durable Object learns its settings before the catalog lists the stream, so a publisher
  // that races the response never meets an unconfigured StreamState. This is the first get() of
  // the stream's object, the one that places it: near its ingest node's region (PLATFORM.md §1.7).
  const ns = c.env.STREAM_STATE;
  const stub = ingest.node ? ns.get(ns.idFromName(id), { locationHint: ingest.node.locationHint }) : ns.getByName(id);
  await stub.configure({ streamId: id, settings });
  await c.env.DB.prepare('INSERT INTO streams (id, title, key_hash, settings, status, created_at, updated_at) VALUES (?, ?, ?, ?, ?, ?, ?)')
    .bind(id, settings.title, await hashStreamKey(streamKey), JSON.stringify(settings), 'idle', now, now)
    .run();
  forgetPlaybackAccess(id); // a viewer may have asked for it before it existed
  forgetRealtimeSetting(id);
  const origin = new URL(c.req.url).origin;
  return c.json({ id, streamKey, ingest: ingest.urls, playback: playbackUrls(origin, id, settings.realtime), settings }, 201);
});

adminRoutes.get('/streams', async (c) => {
  const q = parseOr400(ListQuerySchema, c.req.query(), 'query');
  const rows = await c.env.DB.prepare('SELECT * FROM streams WHERE created_at < ? ORDER BY created_at DESC LIMIT ?')
    .bind(q.before ?? Number.MAX_SAFE_INTEGER, q.limit)
    .all<StreamRow>();
  const origin = new URL(c.req.url).origin;
  const streams = rows.results.map((r) => streamJson(origin, toRecord(r)));
  const last = rows.results.at(-1);
  return c.json({ streams, next: rows.results.length === q.limit && last ? { before: last.created_at } : null });
});

adminRoutes.get('/streams/:id', async (c) => {
  const id = streamIdParam(c.req.param('id'));
  const stream = await getStream(c.env.DB, id);
  if (!stream) throw new HttpError(404, 'stream_not_found', `no stream ${id}`);
  const live = await c.env.STREAM_STATE.getByName(id).status();
  const origin = new URL(c.req.url).origin;
  return c.json({
    ...streamJson(origin, stream),
    status: live?.state ?? stream.status,
    // On the automatic ladder, the rungs of the presets its source did not need are not shown.
    renditions: (live?.renditions ?? []).filter((r) => stream.settings.ladderPreset !== 'auto' || r.codecs !== null),
    ingestSession: live?.ingest
      ? {
          ...live.ingest,
          startedAt: new Date(live.ingest.startedAt).toISOString(),
          lastPushAt: live.ingest.lastPushAt ? new Date(live.ingest.lastPushAt).toISOString() : null,
        }
      : null,
  });
});

/**
 * Changes the title, the playback rules, the takeover policy or real-time playback; `playback` is
 * replaced whole, the ladder and timing are fixed. `realtime` applies from the stream's next
 * publish (its ladder's outputs), `takeover` from the next publisher that arrives.
 */
const PatchStreamSchema = z.strictObject({
  title: z.string().max(200).optional(),
  playback: PlaybackSettingsSchema.optional(),
  takeover: TakeoverPolicySchema.optional(),
  realtime: z.boolean().optional(),
});

adminRoutes.patch('/streams/:id', async (c) => {
  const id = streamIdParam(c.req.param('id'));
  const patch = parseOr400(PatchStreamSchema, await readJson(c.req.raw), 'stream changes');
  const stream = await getStream(c.env.DB, id);
  if (!stream) throw new HttpError(404, 'stream_not_found', `no stream ${id}`);
  const settings = StreamSettingsSchema.parse({
    ...stream.settings,
    ...(patch.title !== undefined ? { title: patch.title } : {}),
    ...(patch.playback ? { playback: patch.playback } : {}),
    ...(patch.takeover ? { takeover: patch.takeover } : {}),
    ...(patch.realtime !== undefined ? { realtime: patch.realtime } : {}),
  });
  const now = Date.now();
  const res = await c.env.DB.prepare('UPDATE streams SET title = ?, settings = ?, updated_at = ? WHERE id = ?')
    .bind(settings.title, JSON.stringify(settings), now, id)
    .run();
  if (res.meta.changes === 0) throw new HttpError(404, 'stream_not_found', `no stream ${id}`);
  // This isolate applies the new rules at once; every other one within 30 s (its cache TTL).
  forgetPlaybackAccess(id);
  forgetRealtimeSetting(id);
  await c.env.STREAM_STATE.getByName(id).configure({ streamId: id, settings });
  return c.json(streamJson(new URL(c.req.url).origin, { ...stream, title: settings.title, settings, updatedAt: now }));
});

const MintTokenSchema = z.strictObject({
  /** Seconds the token is valid for. */
  expiresIn: z
    .number()
    .int()
    .min(10)
    .max(7 * 24 * 3600)
    .default(3600),
  /** Unix seconds before which the token is refused. */
  notBefore: z.number().int().nonnegative().optional(),
  allowCountries: CountryListSchema.optional(),
  blockCountries: CountryListSchema.optional(),
});

/** Mints a playback token with the managed key, for operators who do not sign their own. */
adminRoutes.post(
  '/streams/:id/playback-tokens',
  rateLimit({ limiter: (env) => env.TOKEN_RATE_LIMITER, key: (c) => `mint:${c.req.param('id') ?? ''}`, periodSeconds: 60 }),
  async (c) => {
    const id = streamIdParam(c.req.param('id'));
    const body = parseOr400(MintTokenSchema, await readJson(c.req.raw), 'token request');
    const exists = await c.env.DB.prepare('SELECT 1 AS one FROM streams WHERE id = ?').bind(id).first();
    if (!exists) throw new HttpError(404, 'stream_not_found', `no stream ${id}`);
    const now = Date.now();
    const expiresAt = Math.floor(now / 1000) + body.expiresIn;
    const key = await managedSigningKey(c.env.DB, now);
    const grant = {
      streamId: id,
      expiresAt,
      notBefore: body.notBefore,
      allowCountries: body.allowCountries,
      blockCountries: body.blockCountries,
    };
    const token = await signPlaybackToken(grant, key, now);
    const urls = playbackUrls(new URL(c.req.url).origin, id);
    return c.json(
      {
        token,
        kid: key.kid,
        streamId: id,
        expiresAt: new Date(expiresAt * 1000).toISOString(),
        playback: { hls: `${urls.hls}?token=${token}`, watch: `${urls.watch}?token=${token}` },
      },
      201,
    );
  },
);

adminRoutes.delete('/streams/:id', async (c) => {
  const id = streamIdParam(c.req.param('id'));
  const [res] = await c.env.DB.batch([
    c.env.DB.prepare('DELETE FROM streams WHERE id = ?').bind(id),
    // Its restream destinations (and their sealed keys) go with it.
    c.env.DB.prepare('DELETE FROM restreams WHERE stream_id = ?').bind(id),
  ]);
  if (res!.meta.changes === 0) throw new HttpError(404, 'stream_not_found', `no stream ${id}`);
  forgetPlaybackAccess(id);
  await c.env.STREAM_STATE.getByName(id).terminate();
  return c.body(null, 204);
});

/**
 * A new stream key; the old one stops working at once, and the session it authorized is cut off:
 * its next push is refused and its node drops the publisher (`endedSession` names its epoch).
 */
adminRoutes.post('/streams/:id/rotate-key', async (c) => {
  const id = streamIdParam(c.req.param('id'));
  const streamKey = newStreamKey();
  const res = await c.env.DB.prepare('UPDATE streams SET key_hash = ?, updated_at = ? WHERE id = ?')
    .bind(await hashStreamKey(streamKey), Date.now(), id)
    .run();
  if (res.meta.changes === 0) throw new HttpError(404, 'stream_not_found', `no stream ${id}`);
  const { revokedEpoch } = await c.env.STREAM_STATE.getByName(id).revokeLease();
  return c.json({
    id,
    streamKey,
    ingest: (await ingestFor(c.env, c.req.raw, streamKey)).urls,
    endedSession: revokedEpoch === null ? null : { epoch: revokedEpoch },
  });
});
