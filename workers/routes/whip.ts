// The Worker's WHIP entry (RFC 9725 §4.5 allows a redirect): `POST /whip/{id}` answers 307 with the
// WHIP endpoint of the healthy media node nearest the caller, ranked like RTMP and SRT ingest, so an
// encoder configured once keeps reaching a live node. OBS follows it with its bearer; a browser
// does not (fetch drops Authorization on a cross-origin redirect), so the Go-live page asks
// `GET /api/ingest/nearest` and POSTs to the node itself. `GET /whip/{id}/status` tells a
// publisher, by the same credential, whether the stream is live and under which lease epoch.
import { Hono } from 'hono';
import type { Env } from '../env.ts';
import { errorResponse, HttpError } from '../http.ts';
import { NAME_RE } from '../../core/contracts/object-keys.ts';
import { publishTokenStream } from '../../core/auth/publish-token.ts';
import { ingestNodesFor } from './ingest-nodes.ts';
import { streamForCredential } from '../publish-tokens.ts';

export const whipRoutes = new Hono<{ Bindings: Env }>();

const SDP = 'application/sdp';
const CHALLENGE = { 'www-authenticate': 'Bearer error="invalid_token"' };

function streamIdParam(id: string): string {
  if (!NAME_RE.test(id)) throw new HttpError(404, 'not_found', 'a WHIP endpoint is /whip/{stream id}');
  return id;
}

function bearer(req: Request): string | null {
  const m = /^Bearer +(\S{1,512})$/i.exec(req.headers.get('authorization') ?? '');
  return m ? m[1]! : null;
}

/** The WHIP endpoint base of the best node for this caller; the configured one without a registered node. */
async function whipEndpointFor(env: Env, req: Request): Promise<string | null> {
  try {
    const { primary } = await ingestNodesFor(env, req);
    if (primary?.whipUrl) return primary.whipUrl;
  } catch (err) {
    console.error(JSON.stringify({ level: 'error', msg: 'ingest registry unavailable; using WHIP_INGEST_URL', error: String(err) }));
  }
  return env.WHIP_INGEST_URL ?? null;
}

whipRoutes.options('/:id', (c) => {
  streamIdParam(c.req.param('id'));
  return c.body(null, 204, { 'accept-post': SDP, allow: 'OPTIONS, POST' });
});

whipRoutes.post('/:id', async (c) => {
  const id = streamIdParam(c.req.param('id'));
  // A publish token names its stream: one for another stream is refused here, before any node is
  // asked (and so before the origin's lease could fence the stream it does name).
  const credential = bearer(c.req.raw);
  const named = credential ? publishTokenStream(credential) : null;
  if (named !== null && named !== id)
    return errorResponse(401, 'token_wrong_stream', `this publish token is for stream ${named}, not ${id}`, CHALLENGE);
  const endpoint = await whipEndpointFor(c.env, c.req.raw);
  if (!endpoint) return errorResponse(503, 'no_ingest_node', 'no healthy media node takes WHIP publishers now', { 'retry-after': '10' });
  // The offer is not read: the node checks it (and the bearer) when the publisher re-sends both.
  return new Response(null, { status: 307, headers: { location: `${endpoint.replace(/\/$/, '')}/${id}`, 'cache-control': 'no-store' } });
});

whipRoutes.get('/:id/status', async (c) => {
  const id = streamIdParam(c.req.param('id'));
  const credential = bearer(c.req.raw);
  if (!credential)
    return errorResponse(401, 'unauthorized', 'the stream key or a publish token is required as "Authorization: Bearer …"', {
      'www-authenticate': 'Bearer',
    });
  let streamId: string;
  let catalogStatus: string;
  try {
    ({ id: streamId, status: catalogStatus } = await streamForCredential(c.env, credential, { consume: false }));
  } catch (err) {
    if (err instanceof HttpError && err.status === 403) return errorResponse(401, err.code, err.message, CHALLENGE);
    throw err;
  }
  if (streamId !== id) return errorResponse(401, 'token_wrong_stream', `this credential is for another stream, not ${id}`, CHALLENGE);
  const live = await c.env.STREAM_STATE.getByName(id).status();
  const ingest = live?.ingest ?? null;
  return c.json(
    {
      streamId: id,
      status: live?.state ?? catalogStatus,
      epoch: ingest?.epoch ?? null,
      ingest: ingest
        ? { nodeId: ingest.nodeId, region: ingest.region, epoch: ingest.epoch, startedAt: new Date(ingest.startedAt).toISOString() }
        : null,
    },
    200,
    { 'cache-control': 'no-store' },
  );
});
