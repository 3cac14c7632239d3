// The live model of one stream as its StreamState object holds it in memory: per rendition the
// DVR window (segments with their parts near the live edge), the epoch whose renditions are on
// air, and where the current epoch's media sequence starts. Plain data and small queries over
// it; the rules that change it (push-rules.ts, gap-plan.ts, end-assembly.ts) return the storage
// writes their change needs as `ModelChange`s, which the object's store applies.
import type { PartInfo, RenditionInfo, RenditionReport } from '../contracts/live-model.ts';
import type { MediaObject } from '../contracts/object-keys.ts';
import type { LadderRung } from '../contracts/stream-config.ts';
import { SegmentWindow } from './segment-window.ts';

/** A segment as the object holds it: the playlist's SegmentInfo plus the count of its parts. */
export interface SegmentRecord {
  msn: number;
  epoch: number;
  duration: number | null;
  programDateTime: number;
  discontinuity: boolean;
  partCount: number;
  /** Kept in memory for segments near the live edge only; older ones have been dropped (PART-12). */
  parts: PartInfo[] | null;
  /**
   * Open segment whose final part is published (the transcoder said so): the hint names part 0
   * of the next MSN. In memory only: the segment push follows at once, and after an eviction the
   * hint is merely the old, tolerated one (PH-05) until it does.
   */
  partsComplete?: boolean;
  /** No media of this rendition for this MSN (EXT-X-GAP): see gap-plan.ts. */
  gap: boolean;
  /**
   * Discontinuity sequence number of this segment (MP-04): discontinuity tags since the stream's
   * first segment, its own included. A playlist starting here has DISCONTINUITY-SEQUENCE
   * `dsn − (discontinuity ? 1 : 0)`, wherever it starts (the live edge, or a start-over point).
   */
  dsn: number;
}

export interface RenditionState {
  name: string;
  info: RenditionInfo | null;
  /** Epoch whose init segment has been stored for this rendition. */
  initEpoch: number | null;
  /** The DVR window, oldest first; the last may be in progress (duration null). */
  window: SegmentWindow<SegmentRecord>;
  /** The newest segment ever, also when a new broadcast has emptied the window. */
  newest: { msn: number; epoch: number; dsn: number } | null;
}

/** The ingest lease: the epoch that may push, and who holds it. */
export interface Lease {
  epoch: number;
  nodeId: string;
  region?: string;
  acquiredAt: number;
}

/** The renditions an epoch publishes, as its transcoder declared them with its init segments. */
export interface EpochSet {
  epoch: number;
  names: string[];
}

export interface LiveModel {
  readonly renditions: Map<string, RenditionState>;
  /**
   * The renditions the current epoch publishes: the ladder minus the rungs its input cannot feed
   * (no audio track, no video track). Null: nothing declared (the whole ladder).
   */
  epochSet: EpochSet | null;
  /** MSN of the first segment the current epoch publishes (1 before any lease). */
  epochStartMsn: number;
}

/** Where a rendition's live window starts, as stored: its first MSN and DISCONTINUITY-SEQUENCE. */
export interface WindowMark {
  first: number;
  discSeq: number;
}

/** A storage write a change of the model needs, in the order the change made it. */
export type ModelChange =
  | { kind: 'rendition'; rendition: string; epoch: number; info: RenditionInfo }
  | { kind: 'epoch-set'; set: EpochSet }
  /** A new segment: open (duration null), or a gap segment. */
  | { kind: 'segment'; rendition: string; segment: SegmentRecord }
  | { kind: 'part'; rendition: string; msn: number; index: number; part: PartInfo; size: number; partCount: number }
  /** A segment closed: by its push, or assembled from its parts (then with the parts it has). */
  | { kind: 'close'; rendition: string; msn: number; duration: number; partCount: number }
  | { kind: 'window'; rendition: string; mark: WindowMark };

/** Segments whose parts stay in memory: enough for PART-12 (3 × TD from the end) plus slack. */
export const PARTS_IN_MEMORY_SEGMENTS = 12;

export function newLiveModel(): LiveModel {
  return { renditions: new Map(), epochSet: null, epochStartMsn: 1 };
}

/** The rendition's state, created empty on first use. */
export function renditionOf(model: LiveModel, name: string): RenditionState {
  let rs = model.renditions.get(name);
  if (!rs) {
    rs = { name, info: null, initEpoch: null, window: new SegmentWindow<SegmentRecord>(), newest: null };
    model.renditions.set(name, rs);
  }
  return rs;
}

export function ladderHas(ladder: readonly LadderRung[], name: string): boolean {
  return ladder.some((r) => r.name === name);
}

/** The ladder's renditions, the first video one first: it is the reference for times and durations. */
export function referenceOrder(model: LiveModel, ladder: readonly LadderRung[]): string[] {
  const names = ladder.map((r) => r.name);
  // A broadcast without video (an audio-only publisher) takes its times from its audio.
  const hasMedia = (name: string) => (model.renditions.get(name)?.window.length ?? 0) > 0;
  const ref =
    ladder.find((r) => r.kind === 'video' && hasMedia(r.name)) ??
    ladder.find((r) => hasMedia(r.name)) ??
    ladder.find((r) => r.kind === 'video');
  return ref ? [ref.name, ...names.filter((n) => n !== ref.name)] : names;
}

/**
 * A rendition belongs to the presentation of the current epoch: it is among the renditions its
 * transcoder declared (a rung the input cannot feed is left out of the multivariant playlist and
 * the rendition reports rather than advertised without media), or nothing was declared.
 */
export function inEpochSet(model: LiveModel, leaseEpoch: number | null, name: string): boolean {
  const set = model.epochSet;
  return !set || leaseEpoch === null || set.epoch !== leaseEpoch || set.names.includes(name);
}

/** The lowest MSN any live window still lists; null when no live playlist references anything. */
export function liveFloorMsn(model: LiveModel): number | null {
  let floor: number | null = null;
  for (const rs of model.renditions.values()) {
    const first = rs.window.first;
    if (first && (floor === null || first.msn < floor)) floor = first.msn;
  }
  return floor;
}

/** The next epoch starts after the highest MSN any rendition has reached. */
export function nextMsn(model: LiveModel): number {
  let max = model.epochStartMsn - 1;
  for (const rs of model.renditions.values()) max = Math.max(max, rs.newest?.msn ?? 0);
  // Media sequence numbers start at 1 (hls.js PR #8013).
  return Math.max(1, max + 1);
}

/** The part a rendition expects next from an epoch. */
export function expectedPart(model: LiveModel, rs: RenditionState, epoch: number): { msn: number; part: number } {
  const last = rs.window.last;
  if (last && last.epoch === epoch && last.duration === null) return { msn: last.msn, part: last.partCount };
  if (last && last.epoch === epoch) return { msn: last.msn + 1, part: 0 };
  return { msn: model.epochStartMsn, part: 0 };
}

/**
 * The timeline offset of a new epoch (seconds): where the previous epoch's media ended, so one
 * broadcast keeps one timeline whatever the reconnections; 0 for a new broadcast. Rounded up to
 * the millisecond so no timestamp goes back.
 */
export function epochTimeOffset(newBroadcast: boolean, previousOffset: number, previousMediaSeconds: number): number {
  return newBroadcast ? 0 : Math.ceil((previousOffset + previousMediaSeconds) * 1000) / 1000;
}

export function report(rs: RenditionState): RenditionReport {
  const last = rs.window.last;
  if (!last) return { rendition: rs.name, lastMsn: 0, lastPart: 0 };
  return { rendition: rs.name, lastMsn: last.msn, lastPart: Math.max(0, last.partCount - 1) };
}

/** The object is announced (R2 has it and playlists may list it). */
export function published(rs: RenditionState, epoch: number, object: MediaObject): boolean {
  if (object.kind === 'init') return rs.initEpoch === epoch;
  const seg = rs.window.byMsn(object.msn);
  if (!seg || seg.epoch !== epoch || seg.gap) return false;
  if (object.kind === 'segment') return seg.duration !== null;
  return object.part < seg.partCount;
}

/** Wall-clock end of the last published part (or segment) of a rendition. */
export function liveEdgeMs(rs: RenditionState): number | null {
  const last = rs.window.last;
  if (!last) return null;
  if (last.duration !== null) return last.programDateTime + last.duration * 1000;
  let d = 0;
  for (const p of last.parts ?? []) d += p.duration;
  return last.programDateTime + d * 1000;
}
