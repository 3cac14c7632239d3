// When an epoch ends abruptly (a reconnection, the end of the stream), each rendition's open
// segment is closed from the parts it already announced: the segment is their concatenation
// (PART-07, served by the edge from the parts), so nothing acknowledged is lost or renumbered
// and no byte is read or written to close it.
import type { ModelChange, LiveModel, RenditionState, SegmentRecord } from './stream-model.ts';

/**
 * Every rendition's open segment (one whose segment push has not come), found as the caller
 * gets to each rendition: it reads and writes between them, and a segment may close meanwhile.
 */
export function* openSegments(model: LiveModel): Generator<{ rs: RenditionState; segment: SegmentRecord }> {
  for (const rs of model.renditions.values()) {
    const segment = rs.window.last;
    if (segment && segment.duration === null) yield { rs, segment };
  }
}

/** The parts a segment closes with (every announced one: announced means durable in R2) and their seconds; null when none. */
export function announcedSpan(parts: ReadonlyArray<{ duration: number }>): { partCount: number; seconds: number } | null {
  if (parts.length === 0) return null;
  return { partCount: parts.length, seconds: parts.reduce((s, p) => s + p.duration, 0) };
}

/**
 * Closes the segment with its first `partCount` parts lasting `seconds` in all. Null when its
 * own push closed it already: then that push's duration stands.
 */
export function closeAssembled(rs: RenditionState, segment: SegmentRecord, partCount: number, seconds: number): ModelChange | null {
  if (segment.duration !== null) return null;
  const duration = Math.round(seconds * 1e6) / 1e6;
  segment.partCount = partCount;
  segment.parts = segment.parts?.slice(0, partCount) ?? null;
  if (rs.window.last === segment) rs.window.closeLast(duration);
  else segment.duration = duration;
  return { kind: 'close', rendition: rs.name, msn: segment.msn, duration, partCount };
}
