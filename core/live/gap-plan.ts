// Keeps every rendition on one media sequence across a reconnection: MSN n is the same stretch
// of media in each (rendition reports and level switches rely on it), and a playlist never skips
// an MSN (its segments are numbered by position, MUT-04). A rendition that lagged behind the
// others when a publisher reconnected (its pushes of the old epoch were fenced off) would jump
// from its last MSN to the new epoch's first; instead it gets EXT-X-GAP segments for the MSNs it
// lacks, with the time, duration and discontinuity of a rendition that has them (SEG-04), so the
// discontinuity sequences stay equal too (MV-08). They keep the rendition's own epoch: their
// URIs are never fetched, and no MAP is written for an init this rendition does not have.
import type { LiveModel, ModelChange, SegmentRecord } from './stream-model.ts';
import { trimWindow } from './window-trim.ts';

/** A segment of another rendition, read from storage when no live window has it any more. */
export interface StoredSegment {
  duration: number;
  programDateTime: number;
  discontinuity: boolean;
}

export interface GapContext {
  /** The ladder's renditions, the reference first (stream-model.ts, referenceOrder). */
  order: readonly string[];
  inLadder(name: string): boolean;
  windowSeconds: number;
  /**
   * A complete segment of any other rendition with this MSN, non-gap ones first: for MSNs older
   * than every other window (a long epoch without this rung), the DVR index has them.
   */
  storedSegment(msn: number, exceptRendition: string): StoredSegment | null;
}

/**
 * Fills each rendition's window up to `nextMsn` (the new epoch's first MSN) with gap segments.
 * Called after every open segment was closed. Returns the storage writes, in order.
 */
export function fillGaps(model: LiveModel, nextMsn: number, ctx: GapContext): ModelChange[] {
  const changes: ModelChange[] = [];
  for (const rs of model.renditions.values()) {
    const last = rs.window.last;
    // An empty window has nothing to keep contiguous: its playlist starts with the new epoch.
    if (!last || last.duration === null || !ctx.inLadder(rs.name)) continue;
    let previous = rs.newest ?? { msn: last.msn, epoch: last.epoch, dsn: last.dsn };
    for (let msn = last.msn + 1; msn < nextMsn; msn++) {
      let ref: SegmentRecord | undefined;
      for (const name of ctx.order) {
        const s = name === rs.name ? undefined : model.renditions.get(name)?.window.byMsn(msn);
        if (s && s.duration !== null && (!ref || (ref.gap && !s.gap))) ref = s;
      }
      const source: StoredSegment | null = ref
        ? { duration: ref.duration!, programDateTime: ref.programDateTime, discontinuity: ref.discontinuity }
        : ctx.storedSegment(msn, rs.name);
      if (!source) break;
      const seg: SegmentRecord = {
        msn,
        epoch: previous.epoch,
        duration: source.duration,
        programDateTime: source.programDateTime,
        discontinuity: source.discontinuity,
        partCount: 0,
        parts: [],
        dsn: previous.dsn + (source.discontinuity ? 1 : 0),
        gap: true,
      };
      rs.window.push(seg);
      previous = rs.newest = { msn, epoch: seg.epoch, dsn: seg.dsn };
      changes.push({ kind: 'segment', rendition: rs.name, segment: seg });
      changes.push(trimWindow(rs, ctx.windowSeconds));
    }
  }
  return changes;
}
