// Country rules for playback: per-stream (and per-token) allow or block lists of the viewer's
// country, as Cloudflare reports it in `request.cf.country`. Pure: no request, no Worker globals.
import { z } from 'zod';

/**
 * An ISO 3166-1 alpha-2 code, plus the two codes Cloudflare adds: `XX` (location unknown) and
 * `T1` (a Tor exit node), so an operator can block either. Lower case is accepted and upper-cased.
 */
export const CountryCodeSchema = z
  .string()
  .transform((s) => s.toUpperCase())
  .pipe(z.string().regex(/^(?:[A-Z]{2}|T1)$/, 'a country is a two-letter ISO 3166-1 code (or XX, T1)'));

/** A non-empty, de-duplicated list of countries (an empty allow list would lock everyone out). */
export const CountryListSchema = z
  .array(CountryCodeSchema)
  .min(1)
  .max(250)
  .transform((list) => [...new Set(list)]);

export interface CountryRules {
  /** When present, only these countries may watch. */
  allowCountries?: readonly string[];
  /** These countries may not watch. */
  blockCountries?: readonly string[];
}

export type CountryDecision = { ok: true } | { ok: false; message: string };

const OK: CountryDecision = { ok: true };

/**
 * Whether a viewer in `country` may watch under `rules`. An unknown country (no `cf` object in
 * local development, or Cloudflare's own `XX`) counts as `XX`: an allow list refuses it unless
 * it names `XX` (allow lists fail closed), a block list lets it through unless it names `XX`.
 */
export function checkCountry(rules: CountryRules | undefined, country: string | undefined): CountryDecision {
  if (!rules) return OK;
  const c = country ? country.toUpperCase() : 'XX';
  const refused = (rules.allowCountries && !rules.allowCountries.includes(c)) || rules.blockCountries?.includes(c);
  if (!refused) return OK;
  return {
    ok: false,
    message: c === 'XX' ? 'playback is limited by country and the viewer’s country is unknown' : `playback is not available in ${c}`,
  };
}
