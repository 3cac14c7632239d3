// `POST /live/{id}/whep`: sub-second playback over WebRTC (WHEP). The edge checks the viewer exactly
// as for the playlists (playback-access: signed token, country rules), finds the media node that
// holds the stream (the StreamState lease names it, the registry knows its WHEP URL) and answers
// 307 to that node with a short-lived ticket (core/contracts/whep.ts) that the node checks with
// the secret it already shares with the origin. Why a redirect and not a proxy: the node's
// signalling listener is public already (WHIP), so the viewer talks to it directly — its trickle
// PATCHes and its DELETE too — while the Worker spends one access check and two cached lookups
// per viewer, holds no request open while the node gathers candidates, and never needs to reach
// a node (nodes stay push-only towards the origin). RFC 9725 §4.5 names the 307 for this.
import { Hono } from 'hono';
import type { IngestNode } from '../../core/contracts/registry-rpc.ts';
import { getStream } from '../catalog.ts';
import { errorResponse, HttpError } from '../http.ts';
import { playbackAccess, type PlaybackAccessEnv } from '../middleware/playback-access.ts';
import { TtlCache } from '../../core/auth/ttl-cache.ts';
import { mintWhepTicket, whepNodeUrl, WHEP_TICKET_TTL_SECONDS } from '../../core/contracts/whep.ts';
import { healthyNodes } from './ingest-nodes.ts';

export const whepRoutes = new Hono<PlaybackAccessEnv>();

/** Whether a stream plays in real time: a setting, so cached like its access rules (30 s; "no such stream" 5 s). */
const realtimeSetting = new TtlCache<boolean | null>({
  ttlMs: 30_000,
  staleIfErrorMs: 30_000,
  maxEntries: 10_000,
  ttlMsFor: (v) => (v === null ? 5000 : 30_000),
});

/** Forgets a stream's cached realtime setting in this isolate (the admin API calls it after a change). */
export function forgetRealtimeSetting(streamId: string): void {
  realtimeSetting.delete(streamId);
}
/**
 * The node holding a stream, cached for 2 s per isolate: a crowd arriving at once costs the
 * stream's object one call, and a failover (a new lease on another node) is seen within 2 s.
 */
const holder = new TtlCache<string | null>({ ttlMs: 2000, maxEntries: 10_000 });

/** 503 with Retry-After: the player plays LL-HLS meanwhile and may try again later. */
function unavailable(code: string, message: string, retryAfterSeconds: number): Response {
  return errorResponse(503, code, message, { 'retry-after': String(retryAfterSeconds) });
}

whepRoutes.post('/:id/whep', playbackAccess(), async (c) => {
  const id = c.req.param('id');
  // The offer is the node's to read: the edge only checks it is one (and never buffers it).
  if ((c.req.header('content-type') ?? '').split(';')[0]!.trim().toLowerCase() !== 'application/sdp') {
    throw new HttpError(415, 'unsupported_media_type', 'a WHEP offer is application/sdp');
  }
  const now = Date.now();
  const realtime = await realtimeSetting.get(id, now, async () => (await getStream(c.env.DB, id))?.settings.realtime ?? null);
  if (!realtime) throw new HttpError(404, 'realtime_not_enabled', 'this stream plays over LL-HLS only (its realtime setting is off)');
  const nodeId = await holder.get(id, now, async () => (await c.env.STREAM_STATE.getByName(id).status())?.ingest?.nodeId ?? null);
  if (!nodeId) throw new HttpError(404, 'stream_not_live', 'the stream is not live');
  let node: IngestNode | undefined;
  try {
    node = (await healthyNodes(c.env)).find((n) => n.nodeId === nodeId);
  } catch (err) {
    console.error(JSON.stringify({ level: 'error', msg: 'whep: registry unavailable', error: String(err) }));
    return unavailable('registry_unavailable', 'the media node registry cannot be read: play LL-HLS', 5);
  }
  // A node that left the registry (or runs without WebRTC) cannot take viewers: LL-HLS still plays.
  if (!node?.whepUrl)
    return unavailable('realtime_unavailable', 'the media node holding this stream takes no WebRTC viewers now: play LL-HLS', 10);
  const ticket = await mintWhepTicket(c.env.INGEST_SECRET, { sub: id, exp: Math.floor(now / 1000) + WHEP_TICKET_TTL_SECONDS });
  return c.body(null, 307, { location: whepNodeUrl(node.whepUrl, id, ticket), 'cache-control': 'no-store' });
});
