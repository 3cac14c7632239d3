// The front door's listing, cached so that its cost does not grow with visitors: one copy per
// isolate and one per colo (Cache API), rebuilt at most once per `freshSeconds` per colo; a copy
// up to `staleSeconds` old is answered at once while the rebuild runs in the background
// (stale-while-revalidate done here, because the Cache API serves only fresh entries).
import type { Env } from '../env.ts';
import { DIRECTORY_LIMITS } from '../../core/contracts/directory.ts';
import { buildDirectory } from './build-directory.ts';

export interface DirectoryCopy {
  /** The listing as JSON text (what `/api/directory` answers and `/` inlines). */
  text: string;
  /** When it was built (ms). */
  builtAt: number;
}

const BUILT_AT_HEADER = 'x-edgelive-built-at';
const FRESH_MS = DIRECTORY_LIMITS.freshSeconds * 1000;
const STALE_MS = DIRECTORY_LIMITS.staleSeconds * 1000;

let memo: DirectoryCopy | null = null;
let rebuilding: Promise<DirectoryCopy> | null = null;

/** The colo cache's key: a path no route answers, on the site's own origin (a key on another host would not be cached). */
const cacheKey = (origin: string) => `${origin}/__colo-cache/directory`;

async function fromColo(origin: string): Promise<DirectoryCopy | null> {
  if (typeof caches === 'undefined') return null;
  const hit = await caches.default.match(cacheKey(origin)).catch(() => undefined);
  const builtAt = Number(hit?.headers.get(BUILT_AT_HEADER));
  if (!hit || !Number.isFinite(builtAt)) return null;
  return { text: await hit.text(), builtAt };
}

/** One rebuild per isolate at a time, however many requests find the copy old. */
function rebuild(env: Env, origin: string, waitUntil: (p: Promise<unknown>) => void): Promise<DirectoryCopy> {
  rebuilding ??= (async () => {
    const builtAt = Date.now();
    const copy = { text: JSON.stringify(await buildDirectory(env, builtAt)), builtAt };
    memo = copy;
    if (typeof caches !== 'undefined') {
      const res = new Response(copy.text, {
        headers: {
          'content-type': 'application/json',
          'cache-control': `max-age=${DIRECTORY_LIMITS.staleSeconds}`,
          [BUILT_AT_HEADER]: String(builtAt),
        },
      });
      waitUntil(caches.default.put(cacheKey(origin), res).catch(() => undefined));
    }
    return copy;
  })().finally(() => (rebuilding = null));
  return rebuilding;
}

/**
 * The newest copy this isolate or colo has, if fresh; a stale one (rebuild started in the
 * background); otherwise a new one.
 */
export async function currentDirectory(
  env: Env,
  origin: string,
  waitUntil: (p: Promise<unknown>) => void,
  now = Date.now(),
): Promise<DirectoryCopy> {
  let best = memo;
  if (!best || now - best.builtAt >= FRESH_MS) {
    const colo = await fromColo(origin);
    if (colo && (!best || colo.builtAt > best.builtAt)) best = memo = colo;
  }
  if (best && now - best.builtAt < FRESH_MS) return best;
  if (best && now - best.builtAt < STALE_MS) {
    waitUntil(
      rebuild(env, origin, waitUntil).catch((err: unknown) =>
        console.error(JSON.stringify({ level: 'error', msg: 'directory rebuild failed', error: String(err) })),
      ),
    );
    return best;
  }
  return rebuild(env, origin, waitUntil);
}

/** `Cache-Control` for a copy: fresh for what is left of its freshness, then served stale while revalidated. */
export function directoryCacheControl(copy: DirectoryCopy, now = Date.now()): string {
  const left = Math.max(0, Math.floor((copy.builtAt + FRESH_MS - now) / 1000));
  return `public, max-age=${left}, stale-while-revalidate=${DIRECTORY_LIMITS.staleSeconds - DIRECTORY_LIMITS.freshSeconds}`;
}
