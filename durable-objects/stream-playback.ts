// The read side of a stream's object: what it answers viewers from the live model — the
// multivariant data, a media playlist snapshot once its blocking directives are satisfied
// (LLHLS.md §1.8; 503 after 3 × TD, BR-09), a hinted media object held until it exists (PH-04),
// a clip's wait for the open segment. Requests wait here; the writer wakes them after each
// announcement (StreamState). The rules are pure: core/live/live-snapshot.ts, media-wait.ts.
import type { MediaObject } from '../core/contracts/object-keys.ts';
import type { RpcError } from '../core/contracts/rpc-error.ts';
import { playlistTiming } from '../core/contracts/stream-config.ts';
import {
  STREAM_NOT_FOUND,
  STREAM_NOT_LIVE,
  type PlaylistResult,
  type PresentationResult,
  type SegmentPartsResult,
  type StartAt,
  type StreamConfig,
} from '../core/contracts/stream-rpc.ts';
import { blockingTimeoutMs, decideBlockingReload, type HlsDirectives } from '../core/playlist/blocking.ts';
import { renditionsToClose, segmentClosed } from '../core/live/clip-cut.ts';
import { blockingState, mediaSnapshot, presentationRenditions, type SnapshotContext } from '../core/live/live-snapshot.ts';
import { mediaWait } from '../core/live/media-wait.ts';
import { exists, hasEnded, type StreamPhase } from '../core/live/stream-phase.ts';
import { ladderHas, referenceOrder, type LiveModel, type RenditionState } from '../core/live/stream-model.ts';
import { Waiters } from '../core/live/waiters.ts';

/** The object's state as the readers see it, read anew at every check. */
export interface LiveState {
  config: StreamConfig | null;
  phase: StreamPhase;
  leaseEpoch: number | null;
  model: LiveModel;
}

export class StreamPlayback {
  private readonly state: () => LiveState;
  private readonly waiters = new Waiters<RenditionState>();

  constructor(state: () => LiveState) {
    this.state = state;
  }

  /** Multivariant data: the renditions of the current epoch. */
  presentation(): PresentationResult {
    const s = this.state();
    if (!s.config || !exists(s.phase)) return STREAM_NOT_FOUND;
    const renditions = presentationRenditions(s.model, this.context(s));
    if (renditions.length === 0) return STREAM_NOT_LIVE;
    return { status: 200, presentation: { streamId: s.config.streamId, renditions, ended: hasEnded(s.phase) } };
  }

  /** A media playlist snapshot, when its blocking directives are satisfied; with `start`, a start-over playlist. */
  async playlist(rendition: string, d: HlsDirectives, start?: StartAt): Promise<PlaylistResult> {
    const s = this.state();
    if (!s.config || !exists(s.phase)) return STREAM_NOT_FOUND;
    const rs = s.model.renditions.get(rendition);
    if (!rs || rs.window.length === 0) {
      return ladderHas(s.config.settings.ladder, rendition)
        ? STREAM_NOT_LIVE
        : { status: 404, code: 'rendition_not_found', message: `no rendition ${rendition}` };
    }
    const timing = playlistTiming(s.config.settings);
    const decide = (r: RenditionState) => decideBlockingReload(blockingState(r, hasEnded(this.state().phase), timing), d);
    const decision = decide(rs);
    if (decision.action === 'reject') return { status: 400, code: decision.code, message: decision.message };
    if (
      decision.action === 'wait' &&
      !(await this.waiters.wait(rendition, (r) => decide(r).action === 'respond', blockingTimeoutMs(timing)))
    ) {
      return { status: 503, code: 'blocking_timeout', message: 'the requested part did not appear in time' };
    }
    const now = this.state();
    const answered = now.model.renditions.get(rendition)!;
    if (answered.window.length === 0) return STREAM_NOT_LIVE;
    return { status: 200, snapshot: mediaSnapshot(now.model, answered, this.context(now), d, start) };
  }

  /**
   * How many parts a closed segment has (`closedParts`, from the store), for the edge that joins
   * them into the segment when its last part carries no final marker (closed by an abrupt end);
   * held while it is open (PH-04).
   */
  async segmentParts(rendition: string, epoch: number, msn: number, closedParts: () => number | null): Promise<SegmentPartsResult> {
    const closed = closedParts();
    if (closed !== null) return { status: 200, partCount: closed };
    const waited = await this.awaitMedia(rendition, epoch, { kind: 'segment', msn });
    if (waited.status !== 200) return waited;
    const partCount = closedParts();
    return partCount === null ? { status: 404, code: 'not_found', message: 'no such media object' } : { status: 200, partCount };
  }

  /** A viewer asked for a media object R2 does not have (yet): held while it is coming (PH-04), else 404 (PH-05). */
  async awaitMedia(rendition: string, epoch: number, object: MediaObject): Promise<{ status: 200 } | RpcError> {
    const notFound: RpcError = { status: 404, code: 'not_found', message: 'no such media object' };
    const s = this.state();
    const rs = s.model.renditions.get(rendition);
    if (!rs || !s.config) return notFound;
    const timing = playlistTiming(s.config.settings);
    const wait = (r: RenditionState) => {
      const { model, leaseEpoch, phase } = this.state();
      return mediaWait(model, { leaseEpoch, ended: hasEnded(phase), partTarget: timing.partTarget }, r, epoch, object);
    };
    const first = wait(rs);
    if (first !== 'wait') return first === 'respond' ? { status: 200 } : notFound;
    const ok = await this.waiters.wait(rendition, (r) => wait(r) !== 'wait', blockingTimeoutMs(timing));
    return ok && wait(this.state().model.renditions.get(rendition)!) === 'respond' ? { status: 200 } : notFound;
  }

  /** Waits (each at most 3 × TD) until every rendition on air has closed segment `msn`. */
  async segmentClosed(msn: number): Promise<void> {
    const s = this.state();
    if (!s.config) return;
    const timeout = blockingTimeoutMs(playlistTiming(s.config.settings));
    const closed = (r: RenditionState) => segmentClosed(r, msn);
    for (const name of renditionsToClose(s.model, referenceOrder(s.model, s.config.settings.ladder), s.leaseEpoch, msn)) {
      // Each closes it on its own pushes: wait for each in turn.
      if (!closed(this.state().model.renditions.get(name)!)) await this.waiters.wait(name, closed, timeout);
    }
  }

  /** Re-checks the waiters of a rendition (or all); once the stream has ended every one is answered. */
  wake(rendition: string | null): void {
    const { model, phase } = this.state();
    this.waiters.wake(rendition, (name) => model.renditions.get(name), hasEnded(phase));
  }

  private context(s: LiveState): SnapshotContext {
    return {
      streamId: s.config!.streamId,
      ladder: s.config!.settings.ladder,
      timing: playlistTiming(s.config!.settings),
      leaseEpoch: s.leaseEpoch,
      ended: hasEnded(s.phase),
    };
  }
}
