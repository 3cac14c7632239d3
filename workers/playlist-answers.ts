// Media playlists made once per version at an edge isolate, however many viewers ask: identical
// requests share one answer (the colo cache or one StreamState call, one render, one gzip, one
// cache write), and blocking answers stay in the isolate for the next viewers, who then cost no
// cache lookup either. The DO's load grows with renditions and edges, not viewers (DESIGN.md).
import { Coalescer } from './coalesce.ts';
import { gzipText } from './http.ts';
import { RecentAnswers } from './recent-answers.ts';
import type { RpcError } from '../core/contracts/rpc-error.ts';

/** A playlist text as every viewer of the version gets it (a signed stream's with a token slot). */
export interface RenderedPlaylist {
  text: string;
  /** The text gzipped once (null for texts with a token slot: each viewer's differs). */
  gzip: ArrayBuffer | null;
  cacheControl: string;
}

export type PlaylistAnswer = { status: 200; playlist: RenderedPlaylist } | RpcError;

/** What makes a fresh answer: the StreamState call and the render (or its failure). */
export type MakePlaylist = () => Promise<{ status: 200; text: string; cacheControl: string } | RpcError>;

export interface PlaylistRequest {
  /** Identifies the version: stream, rendition, directives, start point, signed or not. */
  key: string;
  /** Only blocking answers are kept (in the isolate and the colo cache): they never change. */
  blocking: boolean;
  /** Whether the text carries a token slot (no shared gzip then). */
  signed: boolean;
  /** The colo cache and its key for blocking answers, or null. */
  cache: { cache: Cache; url: string; waitUntil(p: Promise<unknown>): void } | null;
  make: MakePlaylist;
}

const PLAYLIST_TYPE = 'application/vnd.apple.mpegurl';
/**
 * Blocking answers kept per isolate. A live rendition makes ~5 versions a second, viewers ask
 * for the newest few, so a few hundred entries of a few kB cover every stream an isolate serves
 * at once; the byte bound holds whatever the playlists' sizes.
 */
const RECENT_ENTRIES = 512;
const RECENT_BYTES = 8 * 1024 * 1024;

const inflight = new Coalescer<PlaylistAnswer>();
const recent = new RecentAnswers<RenderedPlaylist>({ maxEntries: RECENT_ENTRIES, maxBytes: RECENT_BYTES });

async function rendered(text: string, cacheControl: string, signed: boolean): Promise<RenderedPlaylist> {
  return { text, gzip: signed ? null : await gzipText(text), cacheControl };
}

/** A blocking answer stays in the isolate as long as caches may keep it (its max-age). */
function keep(r: PlaylistRequest, playlist: RenderedPlaylist): void {
  const maxAgeSeconds = Number(/max-age=(\d+)/.exec(playlist.cacheControl)?.[1] ?? 0);
  if (!r.blocking || maxAgeSeconds <= 0) return;
  recent.set(r.key, playlist, playlist.text.length * 2 + (playlist.gzip?.byteLength ?? 0), Date.now() + maxAgeSeconds * 1000);
}

/** The playlist for a request: from this isolate, a request in flight, the colo cache, or made once. */
export function playlistAnswer(r: PlaylistRequest): Promise<PlaylistAnswer> {
  if (r.blocking) {
    const hit = recent.get(r.key, Date.now());
    if (hit) return Promise.resolve({ status: 200, playlist: hit });
  }
  return inflight.run(r.key, async () => {
    if (r.blocking && r.cache) {
      const hit = await r.cache.cache.match(r.cache.url);
      if (hit) {
        const cacheControl = hit.headers.get('cache-control') ?? 'no-cache';
        const playlist = await rendered(await hit.text(), cacheControl, r.signed);
        keep(r, playlist);
        return { status: 200, playlist };
      }
    }
    const made = await r.make();
    if (!('text' in made)) return made;
    const playlist = await rendered(made.text, made.cacheControl, r.signed);
    if (r.blocking && r.cache) {
      r.cache.waitUntil(
        r.cache.cache.put(
          r.cache.url,
          new Response(made.text, { headers: { 'content-type': PLAYLIST_TYPE, 'cache-control': made.cacheControl } }),
        ),
      );
    }
    keep(r, playlist);
    return { status: 200, playlist };
  });
}
