// Who may play a stream: its policy (public, or a signed token in `?token=`) and its country
// rules, checked before a playlist or media object is served (and before any cache is asked),
// refused with a JSON 401/403/404. The verified token is handed to the route, which writes it
// into every URI of the playlists it renders.
import type { MiddlewareHandler } from 'hono';
import type { Env } from '../env.ts';
import { HttpError, cookieValue } from '../http.ts';
import { checkCountry, type CountryRules } from '../../core/auth/geo.ts';
import { NAME_RE } from '../../core/contracts/object-keys.ts';
import { PlaybackSettingsSchema, type PlaybackSettings } from '../../core/contracts/stream-config.ts';
import { TtlCache } from '../../core/auth/ttl-cache.ts';
import { lookupSigningKey, playbackVerifier } from '../signing-keys.ts';

export interface PlaybackAccessVariables {
  /** The verified token of a signed stream's request; absent for public streams. */
  playbackToken?: string;
}

export type PlaybackAccessEnv = { Bindings: Env; Variables: PlaybackAccessVariables };

/** A stream's access rules as this isolate knows them: a policy change reaches every isolate within 30 s. */
const ACCESS_TTL_MS = 30_000;
/** "No such stream" is remembered briefly: long enough to shield D1 from random ids, short enough for a new stream. */
const MISSING_TTL_MS = 5_000;

const accessCache = new TtlCache<PlaybackSettings | null>({
  ttlMs: ACCESS_TTL_MS,
  staleIfErrorMs: ACCESS_TTL_MS,
  maxEntries: 10_000,
  ttlMsFor: (v) => (v ? ACCESS_TTL_MS : MISSING_TTL_MS),
});

async function loadAccess(db: D1Database, streamId: string): Promise<PlaybackSettings | null> {
  const row = await db.prepare('SELECT settings FROM streams WHERE id = ?').bind(streamId).first<{ settings: string }>();
  if (!row) return null;
  // Only the playback part is parsed on this path; the admin API validated the whole on the way in.
  const settings = JSON.parse(row.settings) as { playback?: unknown };
  return PlaybackSettingsSchema.parse(settings.playback ?? {});
}

/** Forgets a stream's cached rules in this isolate (the admin API calls it after a change). */
export function forgetPlaybackAccess(streamId: string): void {
  accessCache.delete(streamId);
}

const DEV_COUNTRY_HEADER = 'x-edgelive-dev-country';
const DEV_COUNTRY_COOKIE = 'edgelive_dev_country';
const LOOPBACK = new Set(['localhost', '127.0.0.1', '[::1]']);

/**
 * The viewer's country: `request.cf.country`, which is absent in local tests. For local
 * development only, `DEV_GEO_OVERRIDE=1` (`wrangler dev --var DEV_GEO_OVERRIDE:1`, never deployed) lets a request to a
 * loopback host claim a country with the `x-edgelive-dev-country` header or the
 * `edgelive_dev_country` cookie; a request reaching Cloudflare never has a loopback host.
 */
export function viewerCountry(req: Request, devOverride: boolean): string | undefined {
  if (devOverride && LOOPBACK.has(new URL(req.url).hostname)) {
    const claimed = req.headers.get(DEV_COUNTRY_HEADER) ?? cookieValue(req.headers.get('cookie'), DEV_COUNTRY_COOKIE);
    if (claimed && /^(?:[A-Za-z]{2}|T1)$/.test(claimed)) return claimed.toUpperCase();
  }
  return req.cf?.country as string | undefined;
}

function logLookupError(kid: string, err: unknown): void {
  console.error(JSON.stringify({ level: 'error', msg: 'signing key lookup failed', kid, error: String(err) }));
}

function refuse(status: 401 | 403 | 404 | 503, code: string, message: string): never {
  throw new HttpError(status, code, message);
}

function geo(rules: CountryRules, country: string | undefined): void {
  const d = checkCountry(rules, country);
  if (!d.ok) refuse(403, 'geo_blocked', d.message);
}

/** Guards `/live/:id/*`: the stream must exist, its policy and country rules must let the viewer in. */
export function playbackAccess(): MiddlewareHandler<PlaybackAccessEnv> {
  return async (c, next) => {
    const streamId = c.req.param('id') ?? '';
    if (!NAME_RE.test(streamId)) throw new HttpError(400, 'invalid_stream_id', 'malformed stream_id');
    const now = Date.now();
    const access = accessCache.peek(streamId, now) ?? (await accessCache.get(streamId, now, () => loadAccess(c.env.DB, streamId)));
    if (!access) refuse(404, 'stream_not_found', `no stream ${streamId}`);
    const country = viewerCountry(c.req.raw, c.env.DEV_GEO_OVERRIDE === '1');

    if (access.policy === 'signed') {
      const presented = c.req.queries('token') ?? [];
      const token = presented[0];
      if (!token) refuse(401, 'token_required', 'this stream needs a playback token (?token=)');
      if (presented.length > 1) refuse(401, 'invalid_token', 'more than one token');
      const r = await playbackVerifier.verify(token, {
        now,
        loadKey: (kid) => lookupSigningKey(c.env.DB, kid),
        onLookupError: logLookupError,
      });
      if (!r.ok) refuse(r.rejection.status, r.rejection.code, r.rejection.message);
      // The signature is good but names another stream: a real token in the wrong place.
      if (r.claims.sub !== streamId) refuse(403, 'token_wrong_stream', 'the token is for another stream');
      geo(r.claims, country);
      c.set('playbackToken', token);
    }
    geo(access, country);
    await next();
  };
}
