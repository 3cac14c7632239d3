// Answers for immutable media objects (init segments, parts, segments, clip files) read from R2,
// shared by the live and the VOD routes: one set of headers, Range answers, and the colo cache
// fed from the same R2 read that answers the viewer. A segment is its parts joined (one R2
// write per media byte): it gets the same headers as an object would.
import { byteRange } from '../core/live/segment-join.ts';
import { mediaContentType } from '../core/contracts/object-keys.ts';
import { PLAYBACK_ANSWER_HEADERS } from './answer-headers.ts';

/** Media objects never change under their key. */
export const IMMUTABLE = 'public, max-age=31536000, immutable';

/** What a viewer's browser may do with a response: one that carries or needs a token stays private. */
export function forViewer(cacheControl: string, signed: boolean): string {
  return signed ? cacheControl.replace(/^public\b/, 'private') : cacheControl;
}

export interface ObjectResponseOptions {
  /** The request carried a playback token: the viewer's copy is private. */
  signed: boolean;
  /** The request's Range header, if any (R2 was asked for that range). */
  range: string | undefined;
  /** Where a full answer is stored for the colo (null: not cached). */
  cache: { cache: Cache; key: Request; waitUntil(p: Promise<unknown>): void } | null;
  contentType?: string;
}

/** The viewer's response for an R2 object (206 for a range), and its copy into the colo cache. */
export function objectResponse(obj: R2ObjectBody, o: ObjectResponseOptions): Response {
  const headers = new Headers();
  obj.writeHttpMetadata(headers);
  if (o.contentType) headers.set('content-type', o.contentType);
  headers.set('etag', obj.httpEtag);
  headers.set('cache-control', IMMUTABLE);
  for (const [name, value] of PLAYBACK_ANSWER_HEADERS) headers.set(name, value);
  headers.set('accept-ranges', 'bytes');
  if (o.range && obj.range && 'offset' in obj.range) {
    const offset = obj.range.offset ?? 0;
    const length = obj.range.length ?? obj.size - offset;
    headers.set('content-range', `bytes ${offset}-${offset + length - 1}/${obj.size}`);
    headers.set('content-length', String(length));
    headers.set('cache-control', forViewer(IMMUTABLE, o.signed));
    return new Response(obj.body, { status: 206, headers });
  }
  headers.set('content-length', String(obj.size));
  const viewerHeaders = new Headers(headers);
  viewerHeaders.set('cache-control', forViewer(IMMUTABLE, o.signed));
  if (!o.cache) return new Response(obj.body, { headers: viewerHeaders });
  // One read of R2 feeds both the viewer and the colo cache (which keeps the public lifetime).
  const [toViewer, toCache] = obj.body.tee();
  o.cache.waitUntil(o.cache.cache.put(o.cache.key, new Response(toCache, { headers })));
  return new Response(toViewer, { headers: viewerHeaders });
}

/**
 * The viewer's response for a segment joined from its parts (workers/segment-parts.ts), with
 * the headers an R2 object would get; a Range is cut from the joined bytes (206, or 416), and
 * the whole segment goes into the colo cache, so later Range requests are answered from there.
 */
export function joinedSegmentResponse(seg: { bytes: Uint8Array<ArrayBuffer>; etag: string }, o: ObjectResponseOptions): Response {
  const size = seg.bytes.byteLength;
  const headers = new Headers([
    ...PLAYBACK_ANSWER_HEADERS,
    ['content-type', o.contentType ?? mediaContentType({ kind: 'segment', msn: 0 }, undefined)],
    ['etag', seg.etag],
    ['cache-control', IMMUTABLE],
    ['accept-ranges', 'bytes'],
  ]);
  if (o.cache) {
    const whole = new Headers(headers);
    whole.set('content-length', String(size));
    o.cache.waitUntil(o.cache.cache.put(o.cache.key, new Response(seg.bytes, { headers: whole })));
  }
  headers.set('cache-control', forViewer(IMMUTABLE, o.signed));
  const range = byteRange(o.range, size);
  if (range === 'unsatisfiable') {
    headers.set('content-range', `bytes */${size}`);
    return new Response(null, { status: 416, headers });
  }
  if (range) {
    headers.set('content-range', `bytes ${range.offset}-${range.offset + range.length - 1}/${size}`);
    headers.set('content-length', String(range.length));
    return new Response(seg.bytes.subarray(range.offset, range.offset + range.length), { status: 206, headers });
  }
  headers.set('content-length', String(size));
  return new Response(seg.bytes, { headers });
}
