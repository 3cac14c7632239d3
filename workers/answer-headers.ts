// The headers every HTTP answer carries (security headers; for playback, CORS for players on any
// site), made once per isolate. Playback answers — the requests that grow with the audience — are
// built with them included, so their middleware only checks that they are there; every other answer
// gets them added after its route ran. (Hono's secureHeaders and cors set them one at a time on each
// answer and made Hono copy every response: ~38 % of the isolate's CPU at 100 viewers.)
import type { MiddlewareHandler } from 'hono';

/** Hono's secureHeaders defaults, which the Worker used before (a CSP is the page's own business). */
function securityHeaders(crossOriginResourcePolicy: 'same-origin' | 'cross-origin'): Array<[string, string]> {
  return [
    ['cross-origin-resource-policy', crossOriginResourcePolicy],
    ['cross-origin-opener-policy', 'same-origin'],
    ['origin-agent-cluster', '?1'],
    ['referrer-policy', 'no-referrer'],
    ['strict-transport-security', 'max-age=15552000; includeSubDomains'],
    ['x-content-type-options', 'nosniff'],
    ['x-dns-prefetch-control', 'off'],
    ['x-download-options', 'noopen'],
    ['x-frame-options', 'SAMEORIGIN'],
    ['x-permitted-cross-domain-policies', 'none'],
    ['x-xss-protection', '0'],
  ];
}

/** Present on an answer that was built with its headers (checked instead of setting a dozen). */
const BUILT_WITH_HEADERS = 'x-content-type-options';

const SITE_SECURITY = securityHeaders('same-origin');
/** Playlists and media are fetched by players on other sites (hls.js with CORS, Safari without). */
const PLAYBACK_SECURITY = securityHeaders('cross-origin');

/** What a player's script may read of a playback answer (the clock sync reads Age and Date). */
const LIVE_EXPOSED = 'Age,Date,Content-Length,Content-Range,ETag';
/** A page fetching a clip's MP4 download also reads its file name. */
const VOD_EXPOSED = `${LIVE_EXPOSED},Content-Disposition`;

function playbackCors(exposed: string): Array<[string, string]> {
  return [
    ['access-control-allow-origin', '*'],
    ['access-control-expose-headers', exposed],
  ];
}

/** Every header a live playback answer (playlist, init, part, segment) is built with. */
export const PLAYBACK_ANSWER_HEADERS: ReadonlyArray<readonly [string, string]> = [...PLAYBACK_SECURITY, ...playbackCors(LIVE_EXPOSED)];

/**
 * Sets the headers on an answer (replacing the route's, except CORS headers a live route set itself:
 * WHEP exposes Location), copying it first where its headers are immutable (Cache API hits, static
 * assets).
 */
function addHeaders(
  c: { res: Response | undefined },
  security: ReadonlyArray<readonly [string, string]>,
  cors: ReadonlyArray<readonly [string, string]>,
  keepRouteCors = false,
): void {
  const apply = (h: Headers) => {
    for (const [name, value] of security) h.set(name, value);
    for (const [name, value] of cors) if (!keepRouteCors || !h.has(name)) h.set(name, value);
  };
  const res = c.res as Response;
  try {
    apply(res.headers);
  } catch {
    const copy = new Response(res.body, res);
    apply(copy.headers);
    // Cleared first so Hono does not copy the old answer's headers over the new one's.
    c.res = undefined;
    c.res = copy;
  }
}

/** Security headers on every answer outside playback. A WebSocket upgrade (101, socket attached) passes untouched. */
export function siteHeaders(): MiddlewareHandler {
  return async (c, next) => {
    if (c.req.header('upgrade')?.toLowerCase() === 'websocket') return next();
    await next();
    addHeaders(c, SITE_SECURITY, []);
  };
}

/**
 * Playback's CORS and security headers: preflights answered here, before the token check, for any
 * origin (GET/HEAD, the requested headers echoed: Range); answers built with PLAYBACK_ANSWER_HEADERS
 * pass as they are, the rest (refusals, VOD, WHEP) get them added.
 */
export function playbackHeaders(kind: 'live' | 'vod'): MiddlewareHandler {
  const cors = playbackCors(kind === 'live' ? LIVE_EXPOSED : VOD_EXPOSED);
  return async (c, next) => {
    if (c.req.method === 'OPTIONS') {
      const headers = new Headers([
        ['access-control-allow-origin', '*'],
        ['access-control-allow-methods', 'GET,HEAD,OPTIONS'],
        ['access-control-max-age', '86400'],
        ...PLAYBACK_SECURITY,
      ]);
      const requested = c.req.header('access-control-request-headers');
      if (requested) {
        headers.set(
          'access-control-allow-headers',
          requested
            .split(',')
            .map((h) => h.trim())
            .join(','),
        );
        headers.append('vary', 'Access-Control-Request-Headers');
      }
      return new Response(null, { status: 204, headers });
    }
    await next();
    if (kind === 'vod') return addHeaders(c, PLAYBACK_SECURITY, cors);
    if (!c.res.headers.has(BUILT_WITH_HEADERS)) addHeaders(c, PLAYBACK_SECURITY, cors, true);
  };
}
