// A segment read at the edge as the concatenation of its part objects: a segment is never an R2
// object of its own (each media byte is written once), so every reader of segments (live, DVR,
// VOD, clip export) comes here. The last part carries FINAL_PART_METADATA; only when the parts
// end without it (a segment closed by an abrupt end, or still open, or written before the
// marker) is the stream's object asked how many parts the closed segment has.
import { isFinalPart, mediaObjectKey } from '../core/contracts/object-keys.ts';
import type { RpcError } from '../core/contracts/rpc-error.ts';
import type { SegmentPartsResult } from '../core/contracts/stream-rpc.ts';
import { joinParts, joinedEtag } from '../core/live/segment-join.ts';
import type { Env } from './env.ts';
import { rpcErrorResponse } from './http.ts';
import { IMMUTABLE, forViewer, joinedSegmentResponse } from './media-response.ts';
import { PLAYBACK_ANSWER_HEADERS } from './answer-headers.ts';

export interface JoinedSegment {
  bytes: Uint8Array<ArrayBuffer>;
  etag: string;
  /** Part objects read from R2 (Class B operations). */
  partsRead: number;
}

export interface SegmentRef {
  streamId: string;
  epoch: number;
  rendition: string;
  msn: number;
}

/** A segment's parts never exceed this (a 60 s segment of 0.1 s parts); a bound on a bad loop. */
const MAX_PARTS = 600;

/**
 * The segment's bytes, or the refusal of its stream's object (404 when it does not exist).
 * `partCount` asks the object (held while the segment is open, like any media request, PH-04).
 */
export async function readSegment(
  bucket: R2Bucket,
  ref: SegmentRef,
  partCount: () => Promise<SegmentPartsResult>,
): Promise<JoinedSegment | RpcError> {
  const key = (part: number) => mediaObjectKey(ref.streamId, ref.epoch, ref.rendition, { kind: 'part', msn: ref.msn, part });
  const bodies: Uint8Array[] = [];
  const etags: string[] = [];
  let known: number | null = null;
  // The next part's read starts while this one's body streams in (no read past the last part).
  let next: Promise<R2ObjectBody | null> | null = bucket.get(key(0));
  for (let i = 0; i < MAX_PARTS && (known === null || i < known); i++) {
    let obj = await (next ?? bucket.get(key(i)));
    next = null;
    if (!obj && known === null) {
      const r = await partCount();
      if (r.status !== 200) return r;
      known = r.partCount;
      // Parts beyond the announced ones (written, then fenced off) are not the segment's.
      bodies.length = Math.min(bodies.length, known);
      etags.length = bodies.length;
      if (i >= known) break;
      obj = await bucket.get(key(i));
    }
    if (!obj) return { status: 404, code: 'not_found', message: `part ${i} of segment ${ref.msn} is gone` };
    const final = isFinalPart(obj.customMetadata);
    if (!final && (known === null || i + 1 < known)) next = bucket.get(key(i + 1));
    bodies.push(new Uint8Array(await obj.arrayBuffer()));
    etags.push(obj.etag);
    if (final && known === null) break;
  }
  await next?.then((o) => o?.body.cancel());
  if (bodies.length === 0) return { status: 404, code: 'not_found', message: 'no such media object' };
  return { bytes: joinParts(bodies), etag: joinedEtag(etags), partsRead: bodies.length };
}

export interface SegmentServeOptions {
  /** The request carried a playback token: the viewer's copy is private. */
  signed: boolean;
  range: string | undefined;
  /** The request URL's origin: the colo cache key is the segment's object key under it. */
  origin: string;
  waitUntil(p: Promise<unknown>): void;
}

/** A segment for a viewer (live, DVR or VOD): from the colo cache, else joined from R2 and cached. */
export async function segmentResponse(
  env: Pick<Env, 'MEDIA' | 'STREAM_STATE'>,
  ref: SegmentRef,
  o: SegmentServeOptions,
): Promise<Response> {
  const cache = typeof caches !== 'undefined' ? caches.default : null;
  // The key an R2 segment object had: live and VOD routes share one cached copy, whatever the token.
  const cacheKey = new Request(`${o.origin}/${mediaObjectKey(ref.streamId, ref.epoch, ref.rendition, { kind: 'segment', msn: ref.msn })}`);
  if (cache) {
    // match() answers a Range request from the cached whole segment by itself (206).
    const hit = await cache.match(o.range ? new Request(cacheKey, { headers: { range: o.range } }) : cacheKey);
    if (hit) {
      const res = new Response(hit.body, hit);
      res.headers.set('cache-control', forViewer(IMMUTABLE, o.signed));
      for (const [name, value] of PLAYBACK_ANSWER_HEADERS) res.headers.set(name, value);
      return res;
    }
  }
  const seg = await readSegment(env.MEDIA, ref, () =>
    env.STREAM_STATE.getByName(ref.streamId).segmentParts(ref.rendition, ref.epoch, ref.msn),
  );
  if (!('bytes' in seg)) return rpcErrorResponse(seg, { 'access-control-allow-origin': '*', 'cache-control': 'no-cache' });
  return joinedSegmentResponse(seg, {
    signed: o.signed,
    range: o.range,
    cache: cache ? { cache, key: cacheKey, waitUntil: o.waitUntil } : null,
  });
}
