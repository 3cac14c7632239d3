// Self-checks for the inputs of the renderer: the per-stream timing constants and a media snapshot,
// against the checklist rules the renderer cannot enforce by itself. For tests and DO assertions,
// not for the request path (the renderer trusts its snapshot).
import type { MediaPlaylistSnapshot, PlaylistTiming } from '../contracts/live-model.ts';
import { formatDecimal } from './render.ts';

/** Problems with the stream's constants (MP-02, MP-05, MP-06, MP-11, DU-01); empty when valid. */
export function timingProblems(t: PlaylistTiming): string[] {
  const out: string[] = [];
  if (!Number.isInteger(t.targetDuration) || t.targetDuration < 1) out.push('MP-02: TARGETDURATION must be an integer ≥ 1');
  if (!(t.partTarget > 0)) out.push('MP-06: PART-TARGET must be > 0');
  if (t.partTarget > t.targetDuration) out.push('MP-06: PART-TARGET must not exceed TARGETDURATION');
  // Compared as printed, since that is what clients check.
  if (Number(formatDecimal(t.partHoldBack)) < Number(formatDecimal(3 * t.partTarget))) {
    out.push('MP-05: PART-HOLD-BACK must be ≥ 3 × PART-TARGET');
  }
  if (t.holdBack < 3 * t.targetDuration) out.push('MP-05: HOLD-BACK must be ≥ 3 × TARGETDURATION');
  // A live start closer than 2 × PART-TARGET would leave a player less than the least hold-back
  // the spec allows at all (MP-05's MUST); 0 means no EXT-X-START.
  if (t.liveStartOffset !== 0 && (t.liveStartOffset < 2 * t.partTarget - 1e-9 || t.liveStartOffset > t.partHoldBack)) {
    out.push('MP-11: the live start offset must be within [2 × PART-TARGET, PART-HOLD-BACK]');
  }
  if (t.canSkipUntil < 6 * t.targetDuration) out.push('DU-01: CAN-SKIP-UNTIL must be ≥ 6 × TARGETDURATION');
  return out;
}

/**
 * Problems with a media snapshot: numbering (MP-03), durations against the targets (MP-02,
 * PART-08, PART-09), epochs against discontinuities (SEG-03), open segments (only the last, never
 * after ENDLIST), gap segments (SEG-04), reports (RR-03). Empty when the snapshot renders to a conforming playlist.
 */
export function snapshotProblems(snap: MediaPlaylistSnapshot): string[] {
  const out = timingProblems(snap.timing);
  const t = snap.timing;
  const pt = Number(formatDecimal(t.partTarget));
  const segs = snap.segments;
  if (segs.length > 0 && segs[0]!.msn !== snap.mediaSequence + snap.skippedSegments) {
    out.push('MP-03: the first listed MSN must be MEDIA-SEQUENCE + SKIPPED-SEGMENTS');
  }
  for (let i = 0; i < segs.length; i++) {
    const s = segs[i]!;
    const where = `segment ${s.msn}`;
    if (i > 0) {
      const prev = segs[i - 1]!;
      if (s.msn !== prev.msn + 1) out.push(`MP-03: ${where} does not follow ${prev.msn}`);
      if (s.epoch !== prev.epoch && !s.discontinuity) out.push(`SEG-03: ${where} changes epoch without a discontinuity`);
      if (s.epoch < prev.epoch) out.push(`SEG-03: ${where} goes back to an older epoch`);
    }
    if (s.duration === null) {
      if (i !== segs.length - 1) out.push(`${where} is open but not last`);
      if (snap.ended) out.push(`MP-10: ${where} is open in an ended playlist`);
    } else if (Math.round(Number(formatDecimal(s.duration))) > t.targetDuration) {
      out.push(`MP-02: ${where} EXTINF rounds above TARGETDURATION`);
    }
    const parts = s.parts ?? [];
    if (s.gap && (s.duration === null || parts.length > 0)) out.push(`SEG-04: ${where} is a gap, so complete and without parts`);
    if (s.partsComplete && (s.duration !== null || parts.length === 0 || i !== segs.length - 1)) {
      out.push(`PH-01: ${where} has its final part but is not the open last segment with parts`);
    }
    for (let j = 0; j < parts.length; j++) {
      const p = parts[j]!;
      const d = Number(formatDecimal(p.duration));
      if (!(d > 0)) out.push(`PART-01: part ${s.msn}.${j} has no duration`);
      if (d > pt) out.push(`PART-08: part ${s.msn}.${j} is longer than PART-TARGET`);
      // The final part of a parent is exempt (the open segment's last part may turn out final).
      if (d < 0.85 * pt && !p.independent && j !== parts.length - 1) {
        out.push(`PART-09: part ${s.msn}.${j} is shorter than 85% of PART-TARGET`);
      }
    }
  }
  const seen = new Set<string>();
  for (const r of snap.reports) {
    if (r.rendition === snap.rendition) out.push('RR-03: a playlist does not report itself');
    if (seen.has(r.rendition)) out.push(`RR-03: ${r.rendition} reported twice`);
    seen.add(r.rendition);
    if (!Number.isSafeInteger(r.lastMsn) || !Number.isSafeInteger(r.lastPart) || r.lastPart < 0) {
      out.push(`RR-02: report of ${r.rendition} needs LAST-MSN and LAST-PART`);
    }
  }
  return out;
}
