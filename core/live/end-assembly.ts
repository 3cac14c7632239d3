// When an epoch ends abruptly (a reconnection, the end of the stream), each rendition's open
// segment is closed from the parts it already announced: the segment object is their
// concatenation (PART-07), so nothing acknowledged is lost or renumbered. The object reads and
// writes the bytes; these are the decisions.
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

/** The parts' bytes, in order, as one segment. */
export function joinParts(bodies: readonly ArrayBuffer[]): Uint8Array<ArrayBuffer> {
  const total = bodies.reduce((n, b) => n + b.byteLength, 0);
  const joined = new Uint8Array(total);
  let off = 0;
  for (const b of bodies) {
    joined.set(new Uint8Array(b), off);
    off += b.byteLength;
  }
  return joined;
}

/**
 * Closes the segment with the first `partCount` parts (those R2 had, in order) lasting `seconds`
 * in all. Null when its own push closed it meanwhile (the object wrote while other events ran):
 * then that push's bytes and duration stand.
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
