// A viewer asked for a media object R2 does not have (yet): is it coming? A hinted or imminent
// part, the open segment, or the hinted init of a new epoch is waited for (PH-04); anything else
// will never exist and is a 404 at once (PH-05).
import type { MediaObject } from '../contracts/object-keys.ts';
import { advancePartLimit } from '../playlist/blocking.ts';
import { expectedPart, inEpochSet, published, type LiveModel, type RenditionState } from './stream-model.ts';

export interface MediaWaitContext {
  /** The epoch holding the lease, or null. */
  leaseEpoch: number | null;
  /** The broadcast is over (stream-phase.ts, hasEnded). */
  ended: boolean;
  partTarget: number;
}

export function mediaWait(
  model: LiveModel,
  ctx: MediaWaitContext,
  rs: RenditionState,
  epoch: number,
  object: MediaObject,
): 'respond' | 'wait' | 'never' {
  if (published(rs, epoch, object)) return 'respond';
  if (ctx.ended || ctx.leaseEpoch === null || ctx.leaseEpoch !== epoch || !inEpochSet(model, ctx.leaseEpoch, rs.name)) return 'never';
  // The new epoch's init, hinted as a MAP (PH-02/PH-04): its transcoder pushes it first.
  if (object.kind === 'init') return 'wait';
  const expected = expectedPart(model, rs, epoch);
  const apl = advancePartLimit(ctx.partTarget);
  if (object.kind === 'segment') return object.msn <= expected.msn ? 'wait' : 'never';
  // The open segment's final part is out: no further part of it will ever exist (PH-05).
  const open = rs.window.last;
  if (open && open.msn === object.msn && open.epoch === epoch && open.partsComplete && object.part >= open.partCount) return 'never';
  // Parts ahead of the next one by more than the advance part limit will not be waited for.
  const ahead = (object.msn - expected.msn) * apl + (object.part - expected.part);
  return object.msn >= expected.msn && ahead <= apl ? 'wait' : 'never';
}
