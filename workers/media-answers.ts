// Live media objects (init segments, parts, segments) read once per isolate, however many viewers
// ask at the same moment: at the live edge they all ask for the part a playlist just announced,
// before the colo cache holds it, and each would otherwise miss the cache and read R2. One read
// (colo cache, else R2, else held by StreamState until the part exists) serves every request in
// flight, feeds the colo cache once, and stays in the isolate a little while for the next viewers.
import { Coalescer } from './coalesce.ts';
import { RecentAnswers } from './recent-answers.ts';
import { IMMUTABLE } from './media-response.ts';
import { PLAYBACK_ANSWER_HEADERS } from './answer-headers.ts';

/** One object's bytes and headers as every viewer gets them. */
export interface MediaCopy {
  body: ArrayBuffer;
  headers: Array<[string, string]>;
}

/** Where an answer came from, in `x-edgelive-source` (what `bench:viewers` counts). */
export type MediaSource = 'isolate' | 'cache' | 'r2';

export interface MediaRequest {
  /** The object's R2 key (also the isolate's and, as a URL, the colo cache's key). */
  key: string;
  cache: { cache: Cache; key: Request; waitUntil(p: Promise<unknown>): void } | null;
  /** Reads the object from R2; null when it does not exist (even after being waited for). */
  read(): Promise<R2ObjectBody | null>;
}

/**
 * Bytes kept per isolate: a few seconds of the parts and segments of the renditions being
 * watched (a 2.5 Mbit/s part is ~60 kB). Objects over OBJECT_MAX are read and served the same way
 * but not kept.
 */
const RECENT_BYTES = 24 * 1024 * 1024;
const RECENT_ENTRIES = 2048;
const OBJECT_MAX = 4 * 1024 * 1024;
/** A kept object is served from the isolate this long; later viewers go to the colo cache. */
const KEEP_MS = 30_000;

const inflight = new Coalescer<{ copy: MediaCopy; source: MediaSource } | null>();
const recent = new RecentAnswers<MediaCopy>({ maxEntries: RECENT_ENTRIES, maxBytes: RECENT_BYTES });

function copyOf(obj: R2ObjectBody, body: ArrayBuffer): MediaCopy {
  const headers = new Headers();
  obj.writeHttpMetadata(headers);
  headers.set('etag', obj.httpEtag);
  headers.set('cache-control', IMMUTABLE);
  for (const [name, value] of PLAYBACK_ANSWER_HEADERS) headers.set(name, value);
  headers.set('accept-ranges', 'bytes');
  headers.set('content-length', String(body.byteLength));
  return { body, headers: [...headers] };
}

/** The object for a request (null: it does not exist), read at most once per isolate at a time. */
export async function mediaAnswer(r: MediaRequest): Promise<{ copy: MediaCopy; source: MediaSource } | null> {
  const kept = recent.get(r.key, Date.now());
  if (kept) return { copy: kept, source: 'isolate' };
  let reader = false;
  const answer = await inflight.run(r.key, async () => {
    reader = true;
    let answer: { copy: MediaCopy; source: MediaSource } | null = null;
    const hit = r.cache ? await r.cache.cache.match(r.cache.key) : undefined;
    if (hit) {
      const headers = [...hit.headers].filter(([name]) => name !== 'cf-cache-status');
      answer = { copy: { body: await hit.arrayBuffer(), headers }, source: 'cache' };
    } else {
      const obj = await r.read();
      if (!obj) return null;
      const copy = copyOf(obj, await obj.arrayBuffer());
      r.cache?.waitUntil(r.cache.cache.put(r.cache.key, new Response(copy.body, { headers: copy.headers })));
      answer = { copy, source: 'r2' };
    }
    if (answer.copy.body.byteLength <= OBJECT_MAX) recent.set(r.key, answer.copy, answer.copy.body.byteLength, Date.now() + KEEP_MS);
    return answer;
  });
  // A request that joined another's read got its bytes from this isolate.
  return answer && !reader ? { copy: answer.copy, source: 'isolate' } : answer;
}
