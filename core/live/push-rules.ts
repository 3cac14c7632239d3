// The rules for accepting a pushed object: whether a push is the next thing its rendition
// expects, a duplicate, a little early (pipelined pushes: held until its predecessor is
// announced) or refused; and what announcing it changes in the live model (PART-11: announced
// only once its bytes are durable, which the caller has made sure of).
import type { IngestPush, IngestResult } from '../contracts/stream-rpc.ts';
import type { RpcError } from '../contracts/rpc-error.ts';
import { expectedPart, renditionOf, type LiveModel, type ModelChange, type SegmentRecord } from './stream-model.ts';
import { trimWindow } from './window-trim.ts';

/**
 * How long a push that arrived ahead of its predecessor waits for it before a 503. The
 * predecessor is normally in flight at the same moment; this covers a few of its retries, and
 * stays well under the transcoder's 10 s request timeout.
 */
export const PREDECESSOR_WAIT_MS = 3_000;
/** Pushes of one rendition in progress at once (the transcoder keeps 3 in flight). */
export const MAX_PUSHES_IN_PROGRESS = 8;

/** What the object knows about the push's stream beyond the model. */
export interface PushContext {
  /** The epoch holding the ingest lease, or null. */
  leaseEpoch: number | null;
  /** Why the stream's phase refuses pushes, or null (stream-phase.ts, pushRefusal). */
  refusal: RpcError | null;
  /** The push's rendition is in the stream's ladder. */
  inLadder: boolean;
}

/**
 * 'store' when the push is the next thing its rendition expects; a duplicate is a 200.
 * 'ahead' when it comes a little early (pipelined pushes): its predecessors, in the same epoch,
 * are still to be announced. Anything else is refused with the reason.
 */
export function decidePush(model: LiveModel, ctx: PushContext, push: IngestPush): 'store' | 'ahead' | IngestResult {
  if (ctx.leaseEpoch === null || push.epoch !== ctx.leaseEpoch) return staleEpoch(push.epoch);
  if (ctx.refusal) return ctx.refusal;
  if (!ctx.inLadder) return { status: 404, code: 'rendition_not_found', message: `no rendition ${push.rendition} in the ladder` };
  if (push.kind === 'init') return 'store';
  const rs = model.renditions.get(push.rendition);
  if (!rs || rs.initEpoch !== push.epoch)
    return { status: 409, code: 'init_missing', message: 'push the init segment of this epoch first' };
  const last = rs.window.last;
  const sameEpoch = last !== undefined && last.epoch === push.epoch;
  if (push.kind === 'part') {
    const { msn, part } = push;
    if (sameEpoch && last.msn === msn && part < last.partCount) return { status: 200, duplicate: true };
    if (sameEpoch && msn < last.msn) return { status: 200, duplicate: true };
    const expected = expectedPart(model, rs, push.epoch);
    if (msn === expected.msn && part === expected.part) return 'store';
    // Later parts of the expected segment, or parts of the next one (its parent's segment push
    // is on its way): the pipelining window is a few pushes, never more than one MSN ahead.
    if ((msn === expected.msn && part > expected.part) || msn === expected.msn + 1) return 'ahead';
    return outOfOrder(`expected part ${expected.msn}.${expected.part}, got ${msn}.${part}`);
  }
  const { msn } = push;
  if (sameEpoch && (msn < last.msn || (msn === last.msn && last.duration !== null))) return { status: 200, duplicate: true };
  const { partCount } = push.meta;
  if (sameEpoch && last.msn === msn && last.duration === null) {
    if (partCount === last.partCount) return 'store';
    // Its last parts are on their way.
    if (partCount > last.partCount) return 'ahead';
    return outOfOrder(`segment ${msn} has ${last.partCount} parts, the push says ${partCount}`);
  }
  // None of its parts is announced yet: they are on their way (with one-part segments the
  // previous segment's push may still be in flight too).
  const expected = expectedPart(model, rs, push.epoch);
  if ((expected.msn === msn && expected.part === 0) || msn === expected.msn + 1) return 'ahead';
  return outOfOrder(`segment ${msn} is not the open segment`);
}

/**
 * Announces a push that `decidePush` said to store (its bytes are durable): the rendition's info
 * for an init segment, a part (opening its segment, which may trim the window), or the close of
 * the open segment. Returns the storage writes, in order.
 */
export function announcePush(model: LiveModel, push: IngestPush, size: number, windowSeconds: number): ModelChange[] {
  const rs = renditionOf(model, push.rendition);
  if (push.kind === 'init') {
    const { renditions, ...meta } = push.meta;
    rs.info = { name: push.rendition, ...meta };
    rs.initEpoch = push.epoch;
    const changes: ModelChange[] = [];
    if (renditions && model.epochSet?.epoch !== push.epoch) {
      model.epochSet = { epoch: push.epoch, names: renditions };
      changes.push({ kind: 'epoch-set', set: model.epochSet });
    }
    changes.push({ kind: 'rendition', rendition: push.rendition, epoch: push.epoch, info: rs.info });
    return changes;
  }
  if (push.kind === 'part') {
    const { meta, msn, part } = push;
    const changes: ModelChange[] = [];
    let seg = rs.window.last;
    if (!seg || seg.msn !== msn) {
      const previous = rs.newest;
      const discontinuity = previous !== null && previous.epoch !== push.epoch;
      const opened: SegmentRecord = {
        msn,
        epoch: push.epoch,
        duration: null,
        programDateTime: meta.programDateTime,
        discontinuity,
        partCount: 0,
        parts: [],
        dsn: (previous?.dsn ?? 0) + (discontinuity ? 1 : 0),
        gap: false,
      };
      rs.window.push(opened);
      rs.newest = { msn, epoch: push.epoch, dsn: opened.dsn };
      changes.push({ kind: 'segment', rendition: rs.name, segment: opened });
      changes.push(trimWindow(rs, windowSeconds));
      seg = opened;
    }
    const info = { duration: meta.duration, independent: meta.independent };
    seg.parts?.push(info);
    seg.partCount = part + 1;
    if (meta.final) seg.partsComplete = true;
    changes.push({ kind: 'part', rendition: rs.name, msn, index: part, part: info, size, partCount: seg.partCount });
    return changes;
  }
  rs.window.closeLast(push.meta.duration);
  const closed = rs.window.last!;
  return [{ kind: 'close', rendition: rs.name, msn: closed.msn, duration: push.meta.duration, partCount: closed.partCount }];
}

export function staleEpoch(epoch: number): RpcError {
  return { status: 409, code: 'stale_epoch', message: `epoch ${epoch} no longer holds the ingest lease` };
}

export function streamEnded(): RpcError {
  return { status: 409, code: 'stream_ended', message: 'the stream has ended; take a new lease' };
}

/** A held push whose predecessor did not come in time, or one too many in progress: retryable. */
export function predecessorMissing(message: string): RpcError {
  return { status: 503, code: 'predecessor_missing', message };
}

function outOfOrder(message: string): RpcError {
  return { status: 409, code: 'out_of_order', message };
}
