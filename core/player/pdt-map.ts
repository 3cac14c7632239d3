// The map between a player's media time and the stream's EXT-X-PROGRAM-DATE-TIME (ms since the
// epoch), from the fragments of a live playlist as hls.js laid them out. Two players place the
// same stream at different media times, but a program-date-time names the same frame in both:
// it is the coordinate a watch party, spoiler-free chat and glass-to-glass figures share.
// Pure: no DOM, no hls.js import (the fragment shape is structural).

export interface TimedFragment {
  /** Media time (s) where the fragment starts, as the player placed it. */
  start: number;
  duration: number;
  /** The fragment's program-date-time (ms), null if the playlist has none. */
  programDateTime: number | null;
}

function dated(frags: readonly TimedFragment[]): Array<TimedFragment & { programDateTime: number }> {
  return frags.filter(
    (f): f is TimedFragment & { programDateTime: number } => typeof f.programDateTime === 'number' && Number.isFinite(f.start),
  );
}

/**
 * The program-date-time (ms) at media time `t`: from the fragment that contains `t` (or the
 * nearest one, extrapolating at 1 s per s), so errors never accumulate across fragments.
 */
export function pdtAtMediaTime(frags: readonly TimedFragment[], t: number): number | null {
  const list = dated(frags);
  if (list.length === 0 || !Number.isFinite(t)) return null;
  let best = list[0]!;
  for (const f of list) {
    if (f.start <= t + 1e-6) best = f;
    else break;
  }
  return best.programDateTime + (t - best.start) * 1000;
}

/** The media time (s) that shows program-date-time `pdt` (ms), or null without dated fragments. */
export function mediaTimeAtPdt(frags: readonly TimedFragment[], pdt: number): number | null {
  const list = dated(frags);
  if (list.length === 0 || !Number.isFinite(pdt)) return null;
  let best = list[0]!;
  for (const f of list) {
    if (f.programDateTime <= pdt + 1e-3) best = f;
    else break;
  }
  return best.start + (pdt - best.programDateTime) / 1000;
}

/** The program-date-time range (ms) the fragments cover. */
export function pdtRange(frags: readonly TimedFragment[]): { first: number; last: number } | null {
  const list = dated(frags);
  if (list.length === 0) return null;
  const lastFrag = list[list.length - 1]!;
  return { first: list[0]!.programDateTime, last: lastFrag.programDateTime + lastFrag.duration * 1000 };
}
