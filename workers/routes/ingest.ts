// The origin's ingest API, spoken by transcoders: authorize a stream key (and take the lease),
// push init segments, parts and segments, and say when a publisher stopped. Every request is
// signed, its metadata header included (HMAC, timestamp, nonce: core/contracts/ingest-protocol.ts);
// the stream's object refuses a nonce it has seen (a replay).
import { Hono } from 'hono';
import type { Env } from '../env.ts';
import { HttpError, parseOr400, rpcError } from '../http.ts';
import {
  AuthorizeRequestSchema,
  HEADER_META,
  InitMetaSchema,
  MAX_PUSH_BYTES,
  MAX_THUMBNAIL_BYTES,
  PartMetaSchema,
  SegmentMetaSchema,
  ThumbnailMetaSchema,
  verifyIngestRequest,
  type AuthorizeResponse,
  type SignedRequest,
} from '../../core/contracts/ingest-protocol.ts';
import { NAME_RE, parseMediaFileName } from '../../core/contracts/object-keys.ts';
import type { IngestPush } from '../../core/contracts/stream-rpc.ts';
import { streamForCredential } from '../publish-tokens.ts';

export const ingestRoutes = new Hono<{ Bindings: Env }>();

/**
 * Reads the body (refusing oversized ones before reading) and checks the request signature. The
 * nonce and timestamp go with the call to the stream's object, which refuses a replay.
 */
export async function signedBody(req: Request, secret: string, maxBytes: number): Promise<{ body: Uint8Array; signed: SignedRequest }> {
  const declared = req.headers.get('content-length');
  if (declared !== null && Number(declared) > maxBytes) {
    throw new HttpError(413, 'payload_too_large', `push larger than ${maxBytes} bytes`);
  }
  const body = await readBounded(req, maxBytes);
  const url = new URL(req.url);
  const verdict = await verifyIngestRequest(secret, req.method, url.pathname + url.search, req.headers, body);
  if (!verdict.ok) throw new HttpError(401, 'bad_signature', verdict.reason);
  return { body, signed: { nonce: verdict.nonce, timestamp: verdict.timestamp } };
}

async function readBounded(req: Request, maxBytes: number): Promise<Uint8Array> {
  if (!req.body) return new Uint8Array(0);
  const reader = req.body.getReader();
  const chunks: Uint8Array[] = [];
  let total = 0;
  for (;;) {
    const { done, value } = await reader.read();
    if (done) break;
    total += value.byteLength;
    if (total > maxBytes) {
      await reader.cancel();
      throw new HttpError(413, 'payload_too_large', `push larger than ${maxBytes} bytes`);
    }
    chunks.push(value);
  }
  if (chunks.length === 1) return chunks[0]!;
  const out = new Uint8Array(total);
  let off = 0;
  for (const c of chunks) {
    out.set(c, off);
    off += c.byteLength;
  }
  return out;
}

function parseMeta(header: string | undefined): unknown {
  if (!header) throw new HttpError(400, 'missing_meta', `the ${HEADER_META} header is required`);
  try {
    return JSON.parse(header);
  } catch {
    throw new HttpError(400, 'invalid_meta', `${HEADER_META} is not valid JSON`);
  }
}

ingestRoutes.post('/authorize', async (c) => {
  const { body, signed } = await signedBody(c.req.raw, c.env.INGEST_SECRET, 16 * 1024);
  let json: unknown;
  try {
    json = JSON.parse(new TextDecoder().decode(body));
  } catch {
    throw new HttpError(400, 'invalid_json', 'body is not valid JSON');
  }
  const req = parseOr400(AuthorizeRequestSchema, json, 'authorize request');
  // A stream key, or a publish token standing in for it (workers/publish-tokens.ts).
  const stream = await streamForCredential(c.env, req.streamKey, { consume: true });
  const lease = await c.env.STREAM_STATE.getByName(stream.id).acquireLease(req, signed);
  if ('code' in lease) throw rpcError(lease);
  const { epoch, startMsn, timeOffset } = lease;
  const s = stream.settings;
  const res: AuthorizeResponse = {
    streamId: stream.id,
    epoch,
    startMsn,
    ladder: s.ladder,
    ladderPreset: s.ladderPreset,
    partTarget: s.partTarget,
    segmentTarget: s.segmentTarget,
    fps: s.fps,
    timeOffset,
    realtime: s.realtime,
  };
  return c.json(res);
});

ingestRoutes.post('/:stream/:epoch/end', async (c) => {
  const { signed } = await signedBody(c.req.raw, c.env.INGEST_SECRET, 1024);
  const { stream, epoch } = pushTarget(c.req.param('stream'), c.req.param('epoch'));
  const r = await c.env.STREAM_STATE.getByName(stream).publisherStopped(epoch, signed);
  if ('code' in r) throw rpcError(r);
  return c.json({ ok: true });
});

ingestRoutes.put('/:stream/:epoch/thumbnails/:file', async (c) => {
  const { body, signed } = await signedBody(c.req.raw, c.env.INGEST_SECRET, MAX_THUMBNAIL_BYTES);
  const { stream, epoch } = pushTarget(c.req.param('stream'), c.req.param('epoch'));
  const m = /^(\d{1,9})\.jpg$/.exec(c.req.param('file'));
  if (!m) throw new HttpError(400, 'invalid_object', 'expected {seq}.jpg');
  if (body.byteLength === 0) throw new HttpError(400, 'empty_body', 'a push carries the JPEG bytes');
  const meta = parseOr400(ThumbnailMetaSchema, parseMeta(c.req.header(HEADER_META)), 'thumbnail meta');
  const bytes = body.byteOffset === 0 && body.byteLength === body.buffer.byteLength ? body.buffer : body.slice().buffer;
  const r = await c.env.STREAM_STATE.getByName(stream).ingestThumbnail(
    epoch,
    Number(m[1]),
    meta.programDateTime,
    bytes as ArrayBuffer,
    signed,
  );
  if ('code' in r) throw rpcError(r);
  return c.json({ ok: true, duplicate: r.duplicate === true }, r.status);
});

ingestRoutes.put('/:stream/:epoch/:rendition/:file', async (c) => {
  const { body, signed } = await signedBody(c.req.raw, c.env.INGEST_SECRET, MAX_PUSH_BYTES);
  const { stream, epoch } = pushTarget(c.req.param('stream'), c.req.param('epoch'));
  const rendition = c.req.param('rendition');
  if (!NAME_RE.test(rendition)) throw new HttpError(400, 'invalid_rendition', 'malformed rendition name');
  const object = parseMediaFileName(c.req.param('file'));
  if (!object) throw new HttpError(400, 'invalid_object', 'expected init.mp4, {msn}.m4s or {msn}.{part}.m4s');
  // A segment push closes the segment and carries no bytes: they are its parts' (each media
  // byte is written to R2 once). Older media nodes still send them; they are then stored too.
  if (body.byteLength === 0 && object.kind !== 'segment') throw new HttpError(400, 'empty_body', 'a push carries the object bytes');
  const meta = parseMeta(c.req.header(HEADER_META));
  let push: IngestPush;
  if (object.kind === 'init') push = { epoch, rendition, ...object, meta: parseOr400(InitMetaSchema, meta, 'init meta') };
  else if (object.kind === 'part') push = { epoch, rendition, ...object, meta: parseOr400(PartMetaSchema, meta, 'part meta') };
  else push = { epoch, rendition, ...object, meta: parseOr400(SegmentMetaSchema, meta, 'segment meta') };
  if (push.kind !== 'init' && push.msn < 1) throw new HttpError(400, 'invalid_object', 'media sequence numbers start at 1');
  const bytes = body.byteOffset === 0 && body.byteLength === body.buffer.byteLength ? body.buffer : body.slice().buffer;
  const r = await c.env.STREAM_STATE.getByName(stream).ingest(push, bytes as ArrayBuffer, signed);
  if ('code' in r) throw rpcError(r);
  return c.json({ ok: true, duplicate: r.duplicate === true }, r.status);
});

export function pushTarget(stream: string, epochText: string): { stream: string; epoch: number } {
  if (!NAME_RE.test(stream)) throw new HttpError(400, 'invalid_stream_id', 'malformed stream id');
  if (!/^\d{1,9}$/.test(epochText) || Number(epochText) < 1) throw new HttpError(400, 'invalid_epoch', 'malformed epoch');
  return { stream, epoch: Number(epochText) };
}
