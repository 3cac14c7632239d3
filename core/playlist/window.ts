// What a media playlist lists: which segments keep their EXT-X-PART tags (PART-12) and how many of
// the oldest segments a delta update replaces by EXT-X-SKIP (DU-03). Pure functions of durations,
// called by the StreamState DO when it builds a snapshot (or by the edge via `deltaSnapshot`).
import type { MediaPlaylistSnapshot, PlaylistTiming } from '../contracts/live-model.ts';

/** Parts stay listed for segments that end within this many target durations of the playlist end (PART-12). */
export const PART_RETENTION_TARGET_DURATIONS = 3;

/** What the window functions need of a segment: its EXTINF (null while open) and, if known, its parts. */
export interface WindowSegment {
  duration: number | null;
  parts?: ReadonlyArray<{ duration: number }> | null;
}

/**
 * Segments oldest first, read by index. An array is one; so is a view over the DO's DVR window,
 * which lets these functions walk a 2-hour window from its end without copying it.
 */
export interface SegmentSequence<T> {
  readonly length: number;
  at(index: number): T | undefined;
}

// Durations are compared in the units the playlist prints (5 decimals, see formatDecimal), so the
// boundaries below are exactly what a client can recompute from the text, with no float drift.
const UNITS_PER_SECOND = 100_000;
function units(seconds: number): number {
  return Math.round(seconds * UNITS_PER_SECOND);
}

/**
 * How many of the trailing `segments` keep their parts (PART-12): every segment whose end is at
 * most 3 × TD before the end of the playlist, plus the open segment (always). The playlist end is
 * the end of its last part, so the open segment's published parts count towards the distance.
 *
 * Use: `segments[i].parts` is listed iff `i >= segments.length - partsRetained(segments, timing)`.
 * Retention is per parent segment (never half a parent), so parts leave in playlist order.
 */
export function partsRetained(segments: SegmentSequence<WindowSegment>, timing: PlaylistTiming): number {
  const limit = units(PART_RETENTION_TARGET_DURATIONS * timing.targetDuration);
  let i = segments.length - 1;
  let fromEnd = 0; // distance from the playlist end to the end of segments[i], in units
  let kept = 0;
  const last = i >= 0 ? segments.at(i) : undefined;
  if (last && last.duration === null) {
    for (const p of last.parts ?? []) fromEnd += units(p.duration);
    kept = 1;
    i--;
  }
  for (; i >= 0; i--) {
    const d = segments.at(i)!.duration;
    if (d === null || fromEnd > limit) break;
    kept++;
    fromEnd += units(d);
  }
  return kept;
}

/**
 * Number of the oldest segments a delta update replaces (DU-03). Let E be the end of the last
 * complete segment: every skipped segment ends at or before E − CAN-SKIP-UNTIL, and the count is
 * the largest such prefix, so no segment ending (or starting) after that point is skipped.
 * Takes the listed segments oldest first; an open segment at the end is ignored. Returns 0 when
 * nothing is that old (then the response is simply the full playlist).
 */
export function computeSkip(segments: SegmentSequence<{ duration: number | null }>, timing: PlaylistTiming): number {
  const boundary = units(timing.canSkipUntil);
  if (!(boundary > 0)) return 0; // no Skip Boundary: no delta updates
  let i = segments.length - 1;
  while (i >= 0 && segments.at(i)!.duration === null) i--;
  let fromEnd = 0; // distance from E back to the end of segments[i]
  for (; i >= 0; i--) {
    if (fromEnd >= boundary) return i + 1;
    const d = segments.at(i)!.duration;
    if (d === null) return 0; // only the last segment may be open: refuse to guess
    fromEnd += units(d);
  }
  return 0;
}

/**
 * The delta-update form of a full snapshot for a request with `_HLS_skip=YES|v2` (DU-02): the
 * oldest `computeSkip` segments are dropped and counted in `skippedSegments`; MEDIA-SEQUENCE and
 * DISCONTINUITY-SEQUENCE stay those of the full playlist (MP-03, MP-04). An ended playlist, or
 * one that is already a delta, is returned as is (`_HLS_skip` is ignored after ENDLIST).
 * `v2` is answered like `YES`: we advertise no CAN-SKIP-DATERANGES and list no DATERANGEs.
 */
export function deltaSnapshot(full: MediaPlaylistSnapshot): MediaPlaylistSnapshot {
  if (full.ended || full.skippedSegments > 0) return full;
  const n = computeSkip(full.segments, full.timing);
  if (n === 0) return full;
  return { ...full, skippedSegments: n, segments: full.segments.slice(n) };
}
