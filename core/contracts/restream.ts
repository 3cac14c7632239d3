// Restream (simulcast) destinations, defined once for the admin API, the origin and the media node:
// what an operator configures per stream, how a destination's key is shown (never in full), the
// states a destination goes through on the node, and the signed sync call between node and origin.
import { z } from 'zod';
import { INGEST_PREFIX } from './ingest-protocol.ts';

/** Destinations one stream may forward to: each is one ffmpeg on the publisher's media node. */
export const MAX_RESTREAMS_PER_STREAM = 8;

export const RESTREAM_ID_RE = /^rs[a-z0-9]{16}$/;

/** An RTMP(S) server URL, as YouTube, Twitch or another edgelive give it (the key goes apart). */
const RtmpUrlSchema = z
  .string()
  .max(1000)
  .regex(/^rtmps?:\/\/[^\s/?#]+(\/[^\s#]*)?$/, 'an rtmp:// or rtmps:// URL');

const StreamKeySchema = z.string().min(1).max(500).regex(/^\S+$/, 'a stream key has no spaces');

/** `POST /api/streams/{id}/restreams`. */
export const CreateRestreamSchema = z.strictObject({
  /** The server URL, e.g. `rtmps://a.rtmp.youtube.com/live2`. */
  url: RtmpUrlSchema,
  /** The destination's stream key, appended to the URL as its last path segment. */
  streamKey: StreamKeySchema,
  name: z.string().max(100).default(''),
  enabled: z.boolean().default(true),
});
export type CreateRestream = z.infer<typeof CreateRestreamSchema>;

/** `PATCH /api/streams/{id}/restreams/{rid}`: what is given changes, the rest stays. */
export const PatchRestreamSchema = z.strictObject({
  url: RtmpUrlSchema.optional(),
  streamKey: StreamKeySchema.optional(),
  name: z.string().max(100).optional(),
  enabled: z.boolean().optional(),
});

/** The URL ffmpeg publishes to: the server URL with the key as its last path segment. */
export function publishUrl(url: string, streamKey: string): string {
  return `${url.replace(/\/+$/, '')}/${streamKey}`;
}

/** The server URL as the API shows it: without user info, query or fragment (they may carry credentials). */
export function displayUrl(url: string): string {
  const m = /^(rtmps?:\/\/)(?:[^@/?#]*@)?([^/?#]+)([^?#]*)(\?[^#]*)?/.exec(url);
  if (!m) return 'rtmp://…';
  return `${m[1]}${m[2]}${m[3]}${m[4] ? '?…' : ''}`;
}

/** A stream key as the API shows it: its last 4 characters when it is long enough to keep most of it hidden. */
export function keyHint(streamKey: string): string {
  return streamKey.length >= 12 ? `••••${streamKey.slice(-4)}` : '••••';
}

/**
 * Where a destination is on the media node: `connecting` (its ffmpeg is opening the destination),
 * `live` (media is flowing), `retrying` (it failed: `error` says why, `nextAttemptAt` when it tries
 * again), `failed` (given up: it failed RESTREAM_MAX_FAILURES times in a row, or cannot work as
 * configured; `error` says why; it is tried again when the destination is changed or enabled, or
 * the stream goes live again), `stopped` (the stream is not live here, or the destination is disabled).
 */
export const RestreamStateSchema = z.enum(['connecting', 'live', 'retrying', 'failed', 'stopped']);
export type RestreamState = z.infer<typeof RestreamStateSchema>;

/** One destination's status as the media node reports it. */
export const RestreamStatusSchema = z.object({
  id: z.string().regex(RESTREAM_ID_RE),
  state: RestreamStateSchema,
  /** The last failure (ffmpeg's last error line, or why it stopped). */
  error: z.string().max(500).nullable(),
  /** Since when (ms since the Unix epoch) the destination has been in this state. */
  since: z.number().int().nonnegative(),
  /** Failed attempts in a row (0 once it has stayed live). */
  failures: z.number().int().nonnegative(),
  /** When the next attempt starts (ms), while retrying. */
  nextAttemptAt: z.number().int().nonnegative().nullable(),
  /** Source bytes dropped for this destination because it could not keep up (the publisher never waits for it). */
  droppedBytes: z.number().int().nonnegative(),
});
export type RestreamStatus = z.infer<typeof RestreamStatusSchema>;

/** `POST /ingest/v1/{stream}/{epoch}/restreams` (signed): the node reports, the origin answers what to forward. */
export const RestreamSyncRequestSchema = z.object({
  nodeId: z.string().min(1).max(100),
  statuses: z.array(RestreamStatusSchema).max(4 * MAX_RESTREAMS_PER_STREAM),
});
export type RestreamSyncRequest = z.infer<typeof RestreamSyncRequestSchema>;

export const RestreamDestinationSchema = z.object({
  id: z.string().regex(RESTREAM_ID_RE),
  /** The full publish URL, key included: it travels only in this signed answer. */
  url: z.string().min(1).max(1600),
  /** Moves on every change through the API: a failed destination is tried again when it moves. */
  revision: z.number().int().nonnegative(),
});
export type RestreamDestination = z.infer<typeof RestreamDestinationSchema>;

export const RestreamSyncResponseSchema = z.object({
  /** The stream's enabled destinations now. */
  destinations: z.array(RestreamDestinationSchema).max(MAX_RESTREAMS_PER_STREAM),
});
export type RestreamSyncResponse = z.infer<typeof RestreamSyncResponseSchema>;

/** Path of the sync call. */
export function restreamSyncPath(streamId: string, epoch: number): string {
  return `${INGEST_PREFIX}/${streamId}/${epoch}/restreams`;
}

/** A node syncs at least this often while it has the publisher; older statuses are shown as stopped. */
export const RESTREAM_STATUS_TTL_MS = 30_000;

/**
 * Delay before attempt `failures + 1` after `failures` failed attempts in a row: doubling from
 * `baseMs`, with up to ±20 % jitter (`random` in [0, 1)) so destinations that failed together do
 * not retry together, and never longer than `maxMs`.
 */
export function restreamBackoffMs(failures: number, baseMs: number, maxMs: number, random = 0.5): number {
  const exp = baseMs * 2 ** Math.max(0, Math.min(30, failures - 1));
  return Math.round(Math.min(maxMs, exp * (0.8 + 0.4 * random)));
}
