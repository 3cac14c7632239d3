// Where a clip cuts one rendition, to the part at both ends: the segment holding the start, the
// offset of the part holding the start (players start there with EXT-X-START PRECISE=YES,
// decoding from the segment's keyframe), and the first bytes of the last segment up to the end of
// the part holding the end (a segment object is its parts concatenated, PART-07, and starts with
// its keyframe). Pure: the StreamState DO feeds it rows from SQLite.

import type { RpcError } from '../contracts/rpc-error.ts';
import type { ClipPoint } from '../contracts/stream-rpc.ts';
import { inEpochSet, type LiveModel, type RenditionState } from './stream-model.ts';

export interface ClipPart {
  /** Seconds. */
  duration: number;
  /** Bytes of the part object. */
  size: number;
}

export interface ClipSegment {
  msn: number;
  /** ms since the Unix epoch of the segment's first sample. */
  programDateTime: number;
  /** EXTINF seconds (complete segments only). */
  duration: number;
  /** The segment's parts in order; needed for the first and the last segment only. */
  parts?: ClipPart[];
}

export interface ClipCut {
  firstMsn: number;
  lastMsn: number;
  /** Seconds from the start of the first segment to the start of the part holding the start. */
  startOffset: number;
  /** Parts of the last segment the clip includes (1 … its part count). */
  lastPartCount: number;
  /** EXTINF of the last segment as the clip lists it: its included parts. */
  lastDuration: number;
  /** Bytes of the last segment the clip lists; null when it lists the whole segment. */
  lastByteLength: number | null;
  /** Playable seconds: from the start part to the end of the end part. */
  duration: number;
  /** Wall-clock ms of the first presented sample and of the end of the last one. */
  startMs: number;
  endMs: number;
}

const round6 = (x: number) => Math.round(x * 1e6) / 1e6;

/**
 * Cuts [startMs, endMs) out of `segments`: consecutive complete segments, oldest first, from the
 * one holding `startMs` (or the first after it) to the last one starting before `endMs`. The
 * first and last must carry their parts. Null when the range holds no media.
 */
export function cutClip(segments: readonly ClipSegment[], startMs: number, endMs: number): ClipCut | null {
  if (!(endMs > startMs)) return null;
  // Skip segments that end at or before the start (a reconnection gap may separate them).
  let first = 0;
  while (first < segments.length && end(segments[first]!) <= startMs) first++;
  let last = segments.length - 1;
  while (last >= first && segments[last]!.programDateTime >= endMs) last--;
  if (first > last) return null;
  const s0 = segments[first]!;
  const sl = segments[last]!;
  const p0 = s0.parts;
  const pl = sl.parts;
  if (!p0?.length || !pl?.length) throw new RangeError('the first and last segments of a clip need their parts');

  // The part holding the start: the last one starting at or before it.
  let startOffset = 0;
  let startMsCut = s0.programDateTime;
  if (startMs > s0.programDateTime) {
    let t = 0;
    for (let i = 0; i < p0.length; i++) {
      const partStart = s0.programDateTime + t * 1000;
      if (partStart > startMs) break;
      startOffset = t;
      startMsCut = partStart;
      t += p0[i]!.duration;
    }
  }
  // The part holding the end: the last one starting before it.
  let lastPartCount = 0;
  let lastDuration = 0;
  let lastBytes = 0;
  for (let i = 0; i < pl.length; i++) {
    if (sl.programDateTime + lastDuration * 1000 >= endMs && i > 0) break;
    lastDuration += pl[i]!.duration;
    lastBytes += pl[i]!.size;
    lastPartCount = i + 1;
  }
  let middle = 0;
  for (let i = first; i < last; i++) middle += segments[i]!.duration;
  const wholeLast = lastPartCount === pl.length;
  const lastListed = wholeLast ? sl.duration : round6(lastDuration);
  return {
    firstMsn: s0.msn,
    lastMsn: sl.msn,
    startOffset: round6(startOffset),
    lastPartCount,
    lastDuration: lastListed,
    lastByteLength: wholeLast ? null : lastBytes,
    duration: round6(middle + lastListed - startOffset),
    startMs: Math.round(startMsCut),
    endMs: Math.round(sl.programDateTime + lastListed * 1000),
  };
}

function end(s: ClipSegment): number {
  return s.programDateTime + s.duration * 1000;
}

/**
 * A clip's ends as wall-clock times (ms): a point is a time, or seconds back from the live edge
 * (the end of the last published part), which a stream without media does not have.
 */
export function clipTimes(edgeMs: number | null, start: ClipPoint, end: ClipPoint): { startMs: number; endMs: number } | RpcError {
  if (edgeMs === null && ('fromEdge' in start || 'fromEdge' in end)) {
    return { status: 422, code: 'clip_out_of_range', message: 'the stream has no live edge to count back from' };
  }
  const toMs = (p: ClipPoint) => ('at' in p ? p.at : edgeMs! - p.fromEdge * 1000);
  return { startMs: toMs(start), endMs: toMs(end) };
}

/**
 * The renditions a clip ending inside the open segment `msn` waits for: each closes that segment
 * on its own pushes. A rendition without media in this broadcast or epoch (a rung the input
 * cannot feed) never closes it and is not waited for.
 */
export function renditionsToClose(model: LiveModel, order: readonly string[], leaseEpoch: number | null, msn: number): string[] {
  return order.filter((name) => {
    const rs = model.renditions.get(name);
    return rs !== undefined && rs.window.length > 0 && inEpochSet(model, leaseEpoch, name) && !segmentClosed(rs, msn);
  });
}

/** The rendition closed segment `msn` (or moved past it). */
export function segmentClosed(rs: RenditionState, msn: number): boolean {
  return (rs.window.byMsn(msn)?.duration ?? null) !== null || (rs.window.last?.msn ?? 0) > msn;
}
