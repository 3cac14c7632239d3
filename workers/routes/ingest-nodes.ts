// Geo-routed ingest: transcoders register and heartbeat here (signed like every ingest call);
// publishers' tools ask for the nearest healthy nodes; operators list them all. The set lives
// in the TranscoderRegistry object; the ordering is pure (core/live/geo-distance.ts).
import { Hono } from 'hono';
import { REGISTRY_NAME, type IngestNode } from '../../core/contracts/registry-rpc.ts';
import type { Env } from '../env.ts';
import { HttpError, parseOr400, rpcError } from '../http.ts';
import { locationFromCf, rankIngestNodes, type LatLon } from '../../core/live/geo-distance.ts';
import {
  DeregisterRequestSchema,
  HeartbeatRequestSchema,
  RegisterNodeRequestSchema,
  verifyIngestRequest,
  type SignedRequest,
} from '../../core/contracts/ingest-protocol.ts';

function registry(env: Env) {
  return env.TRANSCODER_REGISTRY.getByName(REGISTRY_NAME);
}

// ---- transcoders: POST /ingest/v1/nodes/{register,heartbeat,deregister} ---------------------

export const ingestNodeRoutes = new Hono<{ Bindings: Env }>();

/** A small signed JSON body: the same HMAC, timestamp and nonce as media pushes (the registry refuses a replay). */
async function signedJson(req: Request, secret: string): Promise<{ json: unknown; signed: SignedRequest }> {
  const declared = Number(req.headers.get('content-length') ?? '0');
  if (declared > 16 * 1024) throw new HttpError(413, 'payload_too_large', 'registry calls are at most 16 KiB');
  const body = new Uint8Array(await req.arrayBuffer());
  if (body.byteLength > 16 * 1024) throw new HttpError(413, 'payload_too_large', 'registry calls are at most 16 KiB');
  const url = new URL(req.url);
  const verdict = await verifyIngestRequest(secret, req.method, url.pathname + url.search, req.headers, body);
  if (!verdict.ok) throw new HttpError(401, 'bad_signature', verdict.reason);
  try {
    return { json: JSON.parse(new TextDecoder().decode(body)), signed: { nonce: verdict.nonce, timestamp: verdict.timestamp } };
  } catch {
    throw new HttpError(400, 'invalid_json', 'body is not valid JSON');
  }
}

ingestNodeRoutes.post('/register', async (c) => {
  const { json, signed } = await signedJson(c.req.raw, c.env.INGEST_SECRET);
  const reg = parseOr400(RegisterNodeRequestSchema, json, 'node registration');
  const ack = await registry(c.env).register(reg, signed);
  if ('code' in ack) throw rpcError(ack);
  forgetNodes();
  return c.json(ack);
});

ingestNodeRoutes.post('/heartbeat', async (c) => {
  const { json, signed } = await signedJson(c.req.raw, c.env.INGEST_SECRET);
  const hb = parseOr400(HeartbeatRequestSchema, json, 'heartbeat');
  const r = await registry(c.env).heartbeat(hb.nodeId, hb.sessions, signed);
  if ('code' in r) throw rpcError(r);
  forgetNodes();
  return c.json(r);
});

ingestNodeRoutes.post('/deregister', async (c) => {
  const { json, signed } = await signedJson(c.req.raw, c.env.INGEST_SECRET);
  const { nodeId } = parseOr400(DeregisterRequestSchema, json, 'deregistration');
  const r = await registry(c.env).deregister(nodeId, signed);
  if ('code' in r) throw rpcError(r);
  forgetNodes();
  return c.json({ ok: true, removed: r.removed });
});

// ---- the healthy set, cached briefly per isolate --------------------------------------------

/**
 * `GET /api/ingest/nearest` is public, so it must not send every request to one object: each
 * isolate keeps the list for NODES_CACHE_MS (a node's load is a few seconds old anyway, and a
 * dropped node disappears within 3 heartbeats + this).
 */
const NODES_CACHE_MS = 1000;
let cached: { at: number; nodes: Promise<IngestNode[]> } | null = null;

function forgetNodes(): void {
  cached = null;
}

export function healthyNodes(env: Env): Promise<IngestNode[]> {
  const now = Date.now();
  if (!cached || now - cached.at > NODES_CACHE_MS) {
    const nodes = registry(env).nodes();
    cached = { at: now, nodes };
    nodes.catch(() => {
      if (cached?.nodes === nodes) cached = null;
    });
  }
  return cached.nodes;
}

/** Local development only: the caller's claimed position, `latitude,longitude`. */
export const DEV_LOCATION_HEADER = 'x-edgelive-dev-location';
const LOOPBACK = new Set(['127.0.0.1', 'localhost', '[::1]']);

/**
 * The caller's position from `request.cf` (absent in local tests). As for the viewer's country
 * (middleware/playback-access.ts), `DEV_GEO_OVERRIDE=1` (`wrangler dev --var`, never deployed) lets a
 * request to a loopback host claim a position with the `x-edgelive-dev-location` header, so a
 * local cluster can be tried from "anywhere"; a request reaching Cloudflare never has a loopback host.
 */
export function callerLocation(req: Request, env: Pick<Env, 'DEV_GEO_OVERRIDE'>): LatLon | null {
  if (env.DEV_GEO_OVERRIDE === '1' && LOOPBACK.has(new URL(req.url).hostname)) {
    const [latitude, longitude] = (req.headers.get(DEV_LOCATION_HEADER) ?? '').split(',');
    const claimed = locationFromCf({ latitude: latitude?.trim(), longitude: longitude?.trim() });
    if (claimed) return claimed;
  }
  return locationFromCf((req as Request & { cf?: { latitude?: unknown; longitude?: unknown } }).cf);
}

/**
 * The nodes a new stream is handed for a caller: the primary is the best (nearest with room, then
 * least loaded), the backup the next one in the same order, a different node. An encoder given
 * both (as with Mux's and YouTube's backup ingest) reconnects to the backup when the primary is
 * lost, and the lease epoch makes that a takeover. null where there is no such node.
 */
export async function ingestNodesFor(env: Env, req: Request): Promise<{ primary: IngestNode | null; backup: IngestNode | null }> {
  const ranked = rankIngestNodes(await healthyNodes(env), callerLocation(req, env));
  return { primary: ranked[0] ?? null, backup: ranked[1] ?? null };
}

/** A node's publish URLs for one stream key (RTMPS, SRT and WHIP when the node has them). */
export function nodeIngestUrls(
  node: Pick<IngestNode, 'rtmpUrl' | 'rtmpsUrl' | 'srtUrl' | 'whipUrl'>,
  streamKey: string,
): { rtmp: string; rtmps: string | null; srt: string | null; whip: string | null } {
  return {
    rtmp: `${node.rtmpUrl.replace(/\/$/, '')}/${streamKey}`,
    rtmps: node.rtmpsUrl ? `${node.rtmpsUrl.replace(/\/$/, '')}/${streamKey}` : null,
    srt: node.srtUrl ? srtUrlFor(node.srtUrl, streamKey) : null,
    // The key never goes into a WHIP URL: the publisher presents it as its bearer token.
    whip: node.whipUrl,
  };
}

/** `srt://host:port?streamid={streamKey}` (add `&passphrase=…` when the node requires one). */
export function srtUrlFor(base: string, streamKey: string): string {
  return `${base.replace(/\/$/, '')}?streamid=${encodeURIComponent(streamKey)}`;
}

// ---- public: GET /api/ingest/nearest ---------------------------------------------------------

/**
 * Public on purpose: encoders and broadcaster tools ask it from the streamer's own machine (its
 * `request.cf` is the streamer's location; an operator's backend calling on their behalf would
 * be routed to itself). It reveals nothing secret: base URLs are public by nature (no stream
 * key), and load is given only as a rounded fraction. Capacity, session counts and heartbeat
 * data stay on the admin list.
 */
export const publicIngestRoutes = new Hono<{ Bindings: Env }>();

publicIngestRoutes.get('/nearest', async (c) => {
  const limit = Math.min(20, Math.max(1, Number(c.req.query('limit') ?? '5') || 5));
  const caller = callerLocation(c.req.raw, c.env);
  const ranked = rankIngestNodes(await healthyNodes(c.env), caller).slice(0, limit);
  c.header('cache-control', 'private, no-store');
  return c.json({
    caller: caller ? { latitude: caller.latitude, longitude: caller.longitude } : null,
    nodes: ranked.map((n) => ({
      nodeId: n.nodeId,
      region: n.region,
      distanceKm: n.distanceKm === null ? null : Math.round(n.distanceKm),
      load: Math.round(Math.min(1, n.load) * 100) / 100,
      ingest: { rtmp: n.rtmpUrl, rtmps: n.rtmpsUrl, srt: n.srtUrl, whip: n.whipUrl },
    })),
  });
});

// ---- admin: GET /api/ingest/nodes (mounted under the admin API's bearer check) ---------------

export const adminIngestRoutes = new Hono<{ Bindings: Env }>();

adminIngestRoutes.get('/nodes', async (c) => {
  const nodes = await registry(c.env).nodes();
  const now = Date.now();
  return c.json({
    nodes: nodes.map((n) => ({
      ...n,
      registeredAt: new Date(n.registeredAt).toISOString(),
      lastSeenAt: new Date(n.lastSeenAt).toISOString(),
      expiresAt: new Date(n.expiresAt).toISOString(),
      /** Heartbeats not received since the last one (0–2; at 3 the node is gone). */
      missedHeartbeats: Math.floor((now - n.lastSeenAt) / n.heartbeatIntervalMs),
    })),
  });
});
