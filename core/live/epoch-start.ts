// Where a new epoch starts once the previous one's open segments are closed: a new broadcast
// (after idle or an end) empties the live windows and starts its timeline at 0; a reconnection
// continues the media sequence after the highest MSN any rendition reached, with gap segments
// for a rendition that lagged (gap-plan.ts), and the timeline where the previous epoch's media
// ended, so one broadcast keeps one timeline whatever the reconnections.
import type { LadderRung } from '../contracts/stream-config.ts';
import { fillGaps, type StoredSegment } from './gap-plan.ts';
import { epochTimeOffset, ladderHas, nextMsn, referenceOrder, type LiveModel, type ModelChange } from './stream-model.ts';
import { clearWindows } from './window-trim.ts';

export interface EpochStartContext {
  newBroadcast: boolean;
  ladder: readonly LadderRung[];
  windowSeconds: number;
  /** The previous epoch's timeline offset (seconds). */
  previousOffset: number;
  /** Seconds of media the previous epoch published in a rendition. */
  previousMediaSeconds(rendition: string): number;
  storedSegment(msn: number, exceptRendition: string): StoredSegment | null;
}

export interface EpochStart {
  startMsn: number;
  /** Seconds the transcoder adds to every timestamp of the new epoch. */
  timeOffset: number;
  /** The storage writes (windows cleared, or gap segments). */
  changes: ModelChange[];
}

/** Starts the epoch in the model (its start MSN) and says where and at what time it starts. */
export function startEpoch(model: LiveModel, ctx: EpochStartContext): EpochStart {
  let changes: ModelChange[];
  let startMsn: number;
  if (ctx.newBroadcast) {
    // The previous broadcast stays in its recording; the live playlist starts afresh, so
    // start-over (`?start=beginning`) means the beginning of this broadcast.
    changes = clearWindows(model);
    startMsn = nextMsn(model);
  } else {
    startMsn = nextMsn(model);
    const order = referenceOrder(model, ctx.ladder);
    changes = fillGaps(model, startMsn, {
      order,
      inLadder: (n) => ladderHas(ctx.ladder, n),
      windowSeconds: ctx.windowSeconds,
      storedSegment: ctx.storedSegment,
    });
  }
  const reference = referenceOrder(model, ctx.ladder)[0];
  const previousMedia = ctx.newBroadcast || reference === undefined ? 0 : ctx.previousMediaSeconds(reference);
  const timeOffset = epochTimeOffset(ctx.newBroadcast, ctx.previousOffset, previousMedia);
  model.epochStartMsn = startMsn;
  return { startMsn, timeOffset, changes };
}
