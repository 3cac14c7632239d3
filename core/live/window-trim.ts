// How far back a live playlist reaches: the DVR window, trimmed from the front as segments are
// added (never under 7 segments or 3 × TD, MUT-03), parts released from memory away from the
// live edge, and the mark the object stores so a reload finds the window's start again.
import { PARTS_IN_MEMORY_SEGMENTS, type LiveModel, type ModelChange, type RenditionState, type WindowMark } from './stream-model.ts';

/** A live playlist never lists fewer segments than this (Apple 8.11: ≥ 6, plus the open one). */
export const MIN_WINDOW_SEGMENTS = 7;

/** The live window's length: the DVR window, but never under 3 × TD (MUT-03). */
export function windowSeconds(dvrWindowSeconds: number, targetDuration: number): number {
  return Math.max(dvrWindowSeconds, 3 * targetDuration);
}

/**
 * Keeps the live window to `seconds`, but never under MIN_WINDOW_SEGMENTS. Flat: a running total
 * of the window's duration, and one segment's parts leave memory per call. Returns the mark to store.
 */
export function trimWindow(rs: RenditionState, seconds: number): ModelChange {
  const win = rs.window;
  while (win.length > MIN_WINDOW_SEGMENTS) {
    const first = win.first!;
    if (first.duration === null || win.completeSeconds - first.duration < seconds) break;
    win.shift();
  }
  // Parts far from the live edge leave memory; the playlist lists them only near the edge.
  const stale = win.length - 1 - PARTS_IN_MEMORY_SEGMENTS;
  if (stale >= 0) win.at(stale)!.parts = null;
  return { kind: 'window', rendition: rs.name, mark: windowMark(rs) };
}

/** The window's first MSN and its DISCONTINUITY-SEQUENCE; an empty window starts after the newest segment. */
export function windowMark(rs: RenditionState): WindowMark {
  const first = rs.window.first;
  return first
    ? { first: first.msn, discSeq: first.dsn - (first.discontinuity ? 1 : 0) }
    : { first: (rs.newest?.msn ?? 0) + 1, discSeq: rs.newest?.dsn ?? 0 };
}

/** Empties every live window (a new broadcast, or an ended stream whose last window expired). */
export function clearWindows(model: LiveModel): ModelChange[] {
  const changes: ModelChange[] = [];
  for (const rs of model.renditions.values()) {
    if (rs.window.length === 0) continue;
    rs.window.clear();
    changes.push({ kind: 'window', rendition: rs.name, mark: windowMark(rs) });
  }
  return changes;
}
