// What the object answers from the live model: the compact snapshot one media playlist response
// renders (only the segments it lists), the renditions of the multivariant playlist, the state
// the blocking-reload decision table reads (core/playlist/blocking.ts), the stream's status.
import type { MediaPlaylistSnapshot, PlaylistTiming, RenditionInfo, RenditionReport, SegmentInfo } from '../contracts/live-model.ts';
import type { LadderRung } from '../contracts/stream-config.ts';
import type { RpcError } from '../contracts/rpc-error.ts';
import type { StartAt, StreamStatus } from '../contracts/stream-rpc.ts';
import type { BlockingState, HlsDirectives } from '../playlist/blocking.ts';
import { computeSkip, partsRetained } from '../playlist/window.ts';
import { hasEnded, publicState, type StreamPhase } from './stream-phase.ts';
import { inEpochSet, ladderHas, report, type Lease, type LiveModel, type RenditionState } from './stream-model.ts';

/** What a snapshot needs of the stream beyond the model. */
export interface SnapshotContext {
  streamId: string;
  ladder: readonly LadderRung[];
  timing: PlaylistTiming;
  /** The epoch holding the lease, or null. */
  leaseEpoch: number | null;
  /** The broadcast is over (stream-phase.ts, hasEnded). */
  ended: boolean;
}

/**
 * What one response lists, read from the window by index: a delta update walks back from the
 * end only as far as the skip boundary, a start-over finds its first segment by binary search,
 * and only the listed segments are copied. So a blocking reload with `_HLS_skip` costs the same
 * for a 2-hour window as for a 1-minute one; only a full playlist is as long as its window.
 * The window must not be empty.
 */
export function mediaSnapshot(
  model: LiveModel,
  rs: RenditionState,
  ctx: SnapshotContext,
  d: HlsDirectives,
  start?: StartAt,
): MediaPlaylistSnapshot {
  const { timing } = ctx;
  const win = rs.window;
  const from = start === undefined || start === 'beginning' ? 0 : win.indexAtTime(start);
  // Delta updates only for a live playlist (DU-02); the object sends only what the response lists.
  const skipped = d.skip && !ctx.ended ? computeSkip(win.view(from), timing) : 0;
  const listed = win.slice(from + skipped);
  const withParts = partsRetained(listed, timing);
  const segments: SegmentInfo[] = listed.map((s, i) => ({
    msn: s.msn,
    epoch: s.epoch,
    duration: s.duration,
    programDateTime: s.programDateTime,
    discontinuity: s.discontinuity,
    parts: i >= listed.length - withParts && s.parts ? s.parts : undefined,
    ...(s.partsComplete && s.duration === null ? { partsComplete: true } : {}),
    ...(s.gap ? { gap: true } : {}),
  }));
  const reports: RenditionReport[] = [];
  for (const other of model.renditions.values()) {
    // RR-03: every other playlist of the multivariant playlist, and only those.
    if (
      other.name !== rs.name &&
      other.window.length > 0 &&
      ladderHas(ctx.ladder, other.name) &&
      inEpochSet(model, ctx.leaseEpoch, other.name)
    ) {
      reports.push(report(other));
    }
  }
  const first = win.at(from)!;
  const snap: MediaPlaylistSnapshot = {
    streamId: ctx.streamId,
    rendition: rs.name,
    timing,
    mediaSequence: first.msn,
    discontinuitySequence: first.dsn - (first.discontinuity ? 1 : 0),
    skippedSegments: skipped,
    segments,
    ended: ctx.ended,
    reports,
  };
  // The next part comes from a reconnected publisher: under its epoch, not the last segment's.
  const last = listed.at(-1);
  if (ctx.leaseEpoch !== null && !ctx.ended && last && last.duration !== null && last.epoch < ctx.leaseEpoch)
    snap.nextEpoch = ctx.leaseEpoch;
  // A rung this epoch's input cannot feed gets no media until a later epoch: hint nothing.
  if (!inEpochSet(model, ctx.leaseEpoch, rs.name)) snap.noMedia = true;
  if (start !== undefined) snap.startTimeOffset = 0;
  return snap;
}

/** The renditions the multivariant playlist lists: the current epoch's, with their init metadata. */
export function presentationRenditions(model: LiveModel, ctx: Pick<SnapshotContext, 'ladder' | 'leaseEpoch' | 'ended'>): RenditionInfo[] {
  const renditions: RenditionInfo[] = [];
  for (const rung of ctx.ladder) {
    const rs = model.renditions.get(rung.name);
    // An ended stream whose window expired with its recording has nothing left to list.
    if (rs?.info && (rs.window.length > 0 || !ctx.ended) && inEpochSet(model, ctx.leaseEpoch, rung.name)) renditions.push(rs.info);
  }
  return renditions;
}

/** What the blocking-reload decision table needs to know about a rendition. */
export function blockingState(rs: RenditionState, ended: boolean, timing: PlaylistTiming): BlockingState {
  const last = rs.window.last;
  const lastComplete = last && last.duration !== null ? last : rs.window.at(-2);
  return {
    ended,
    lastCompleteMsn: lastComplete?.msn ?? null,
    lastPartMsn: last?.msn ?? null,
    lastPartIndex: last ? last.partCount - 1 : null,
    partCountOf: (msn: number) => {
      const s = rs.window.byMsn(msn);
      return s && s.duration !== null ? s.partCount : null;
    },
    partTarget: timing.partTarget,
    targetDuration: timing.targetDuration,
  };
}

/** What the admin API and the watch page show: the phase, the ingest session, each rung's progress. */
export function streamStatus(
  model: LiveModel,
  ladder: readonly LadderRung[],
  phase: StreamPhase,
  lease: Lease | null,
  lastPushAt: number | null,
): StreamStatus {
  const onAir = lease !== null && !hasEnded(phase);
  return {
    state: publicState(phase),
    epoch: lease?.epoch ?? null,
    ingest: onAir ? { nodeId: lease.nodeId, region: lease.region, epoch: lease.epoch, startedAt: lease.acquiredAt, lastPushAt } : null,
    renditions: ladder.map((rung) => {
      const rs = model.renditions.get(rung.name);
      const r = rs ? report(rs) : null;
      return {
        rendition: rung.name,
        kind: rs?.info?.kind ?? null,
        codecs: rs?.info?.codecs ?? null,
        lastMsn: r?.lastMsn ?? 0,
        lastPart: r?.lastPart ?? 0,
      };
    }),
  };
}

/**
 * How far back `?t=` may pick a thumbnail: as far as the DVR window reaches (the reference
 * rendition's), with 10 s of slack for the thumbnail taken just before its first segment.
 */
export function thumbnailFloor(model: LiveModel, referenceRendition: string | undefined, at: number): { notBefore: number } | RpcError {
  const first = referenceRendition === undefined ? undefined : model.renditions.get(referenceRendition)?.window.first;
  if (!first) return { status: 404, code: 'thumbnail_not_found', message: 'no live window' };
  if (at < first.programDateTime) return { status: 404, code: 'thumbnail_not_found', message: 'that time is before the DVR window' };
  return { notBefore: first.programDateTime - 10_000 };
}
