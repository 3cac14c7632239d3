// The lifecycle of one stream as its StreamState object sees it: one phase, and a table of the
// transitions each event may make. The object asks the table before it acts, so a question
// such as "may this push be announced?" or "is there anything to end?" has one answer, here.
//
//   idle ─lease→ live ─stop→ stopping ─end→ ending ─ended→ ended ─lease→ live (a new broadcast)
//                live ─end→ ending;  live, stopping, revoked, ending ─lease→ live (a reconnection)
//                live, stopping ─revoke→ revoked ─end→ ending (the key was rotated)
//   idle, ended ─delete→ deleted;  live, stopping, revoked, ending ─delete→ deleting ─ended→ deleted

import type { RpcError } from '../contracts/rpc-error.ts';
import type { TakeoverPolicy } from '../contracts/stream-config.ts';

/**
 * - `idle`: configured, never leased: nothing to play yet.
 * - `live`: a publisher holds the lease and pushes.
 * - `stopping`: the publisher said it stopped (stream.idle went out); the stream ends after the
 *   grace period unless a publisher takes the lease again. Pushes of its epoch are still taken.
 * - `revoked`: the stream key the lease was taken with was rotated: its publisher's pushes are
 *   refused (409 `lease_revoked`, the node drops it); the stream ends after the grace period
 *   unless a publisher with the new key takes the lease.
 * - `ending`: the open segments are being closed from the parts announced so far, so no further
 *   part may be announced (it would be acknowledged but left out of its segment). Transient:
 *   never stored, so an eviction in the middle resumes from `live`/`stopping` and ends again.
 * - `ended`: the broadcast is over (EXT-X-ENDLIST); a new lease starts a new broadcast.
 * - `deleting`: the stream was deleted while a broadcast was on; it is being ended.
 * - `deleted`: every call but `configure` is refused as if the stream did not exist.
 */
export type StreamPhase = 'idle' | 'live' | 'stopping' | 'revoked' | 'ending' | 'ended' | 'deleting' | 'deleted';

/**
 * - `lease`: a publisher takes the ingest lease (a new epoch).
 * - `stop`: the lease holder says its publisher stopped.
 * - `end`: the grace period ran out (the alarm), or a delete ends the broadcast: closing starts.
 * - `ended`: the closing is done.
 * - `revoke`: the stream's key was rotated: the lease taken with the old one is withdrawn.
 * - `delete`: the stream was deleted.
 * - `configure`: the admin API (re)configured the stream.
 */
export type PhaseEvent = 'lease' | 'stop' | 'revoke' | 'end' | 'ended' | 'delete' | 'configure';

/** Where each event leads from each phase; an event missing from a phase does not apply there. */
export const PHASE_TRANSITIONS: Readonly<Record<StreamPhase, Readonly<Partial<Record<PhaseEvent, StreamPhase>>>>> = {
  idle: { lease: 'live', delete: 'deleted', configure: 'idle' },
  live: { lease: 'live', stop: 'stopping', revoke: 'revoked', end: 'ending', delete: 'deleting', configure: 'live' },
  stopping: { lease: 'live', stop: 'stopping', revoke: 'revoked', end: 'ending', delete: 'deleting', configure: 'stopping' },
  revoked: { lease: 'live', stop: 'revoked', revoke: 'revoked', end: 'ending', delete: 'deleting', configure: 'revoked' },
  // A lease while the broadcast is being closed calls the end off: the new epoch continues it
  // (its open segments are closed by the lease itself), and the closing finds nothing to end.
  ending: { lease: 'live', stop: 'ending', ended: 'ended', delete: 'deleting', configure: 'ending' },
  ended: { lease: 'live', stop: 'ended', delete: 'deleted', configure: 'ended' },
  // `end` again: an eviction interrupted the closing; the alarm resumes it.
  deleting: { stop: 'deleting', end: 'deleting', ended: 'deleted', delete: 'deleting', configure: 'deleting' },
  // Only a new configuration brings a deleted stream back, as an ended one (its media stays).
  deleted: { delete: 'deleted', configure: 'ended' },
};

/** The phase an event leads to, or null when the event does not apply in this phase. */
export function nextPhase(phase: StreamPhase, event: PhaseEvent): StreamPhase | null {
  return PHASE_TRANSITIONS[phase][event] ?? null;
}

/** What taking the lease means from a phase: a new broadcast (new window, new recording) or a reconnection. */
export function leaseOutcome(from: StreamPhase): { newBroadcast: boolean; announceLive: boolean } | null {
  if (nextPhase(from, 'lease') === null) return null;
  return {
    newBroadcast: from === 'idle' || from === 'ended',
    // Webhook consumers heard stream.idle (or nothing yet, or the stream ended): tell them it is live.
    announceLive: from !== 'live',
  };
}

/** The stream exists for its callers (a deleted one, or one being deleted, is a 404). */
export function exists(phase: StreamPhase): boolean {
  return phase !== 'deleting' && phase !== 'deleted';
}

/** Why pushes of the lease's epoch are refused in this phase, or null when they may be announced. */
export function pushRefusal(phase: StreamPhase): RpcError | null {
  if (phase === 'live' || phase === 'stopping') return null;
  if (phase === 'revoked')
    return { status: 409, code: 'lease_revoked', message: 'the stream key this session was authorized with was rotated' };
  return { status: 409, code: 'stream_ended', message: 'the stream has ended; take a new lease' };
}

/** Pushes of the lease's epoch may be announced. */
export function acceptsPushes(phase: StreamPhase): boolean {
  return pushRefusal(phase) === null;
}

/** How long a live publisher must have been quiet before another may take its stream (refuse-while-live). */
export const TAKEOVER_QUIET_MS = 5_000;

/** The answer to a publisher that `takeoverAllowed` refuses. */
export const STREAM_BUSY: RpcError = {
  status: 409,
  code: 'stream_busy',
  message: 'another publisher is live on this stream (its takeover policy is refuse-while-live)',
};

/**
 * Whether a new publisher may take the lease: always under `allow`; under `refuse-while-live`
 * unless a publisher is live (it has not said it stopped, its key was not rotated) and pushed
 * within `quietMs` (it has not gone quiet: a crashed node or a dropped encoder does not block).
 */
export function takeoverAllowed(
  policy: TakeoverPolicy,
  phase: StreamPhase,
  lastPushAt: number | null,
  now: number,
  quietMs = TAKEOVER_QUIET_MS,
): boolean {
  if (policy === 'allow' || phase !== 'live') return true;
  return lastPushAt === null || now - lastPushAt >= quietMs;
}

/**
 * Why a new publisher may not take the lease now (STREAM_BUSY), or null (`takeoverAllowed`, the
 * quiet period from TAKEOVER_QUIET_SECONDS). The lease holder continuing its own epoch
 * (`continues`: a ladder restart on its node) is never refused.
 */
export function leaseRefusal(a: {
  policy: TakeoverPolicy;
  phase: StreamPhase;
  lastPushAt: number | null;
  holder: { epoch: number; nodeId: string } | null;
  nodeId: string;
  continues?: number | undefined;
  quietSeconds?: string | undefined;
  now: number;
}): RpcError | null {
  if (a.continues !== undefined && a.holder?.epoch === a.continues && a.holder.nodeId === a.nodeId) return null;
  const quietMs = a.quietSeconds === undefined ? TAKEOVER_QUIET_MS : Number(a.quietSeconds) * 1000;
  return takeoverAllowed(a.policy, a.phase, a.lastPushAt, a.now, quietMs) ? null : STREAM_BUSY;
}

/** A broadcast is on: the lease holds, the live window moves, the alarm watches the grace period. */
export function isOnAir(phase: StreamPhase): boolean {
  return phase === 'live' || phase === 'stopping' || phase === 'revoked' || phase === 'ending' || phase === 'deleting';
}

/** The broadcast is over: playlists end with EXT-X-ENDLIST, waiting requests are answered. */
export function hasEnded(phase: StreamPhase): boolean {
  return phase === 'ended' || phase === 'deleted';
}

/** What the admin API and the watch page call the phase. */
export function publicState(phase: StreamPhase): 'idle' | 'live' | 'ended' {
  if (phase === 'idle') return 'idle';
  return hasEnded(phase) ? 'ended' : 'live';
}

/**
 * The phase of an object stored before phases existed (schema 3: `ended`, `idle`, `deleted`
 * flags and the lease). An end in progress was not stored, so it never comes back as `ending`.
 */
export function phaseFromFlags(f: { leased: boolean; ended: boolean; idle: boolean; deleted: boolean }): StreamPhase {
  if (f.deleted) return f.leased && !f.ended ? 'deleting' : 'deleted';
  if (f.ended) return 'ended';
  if (!f.leased) return 'idle';
  return f.idle ? 'stopping' : 'live';
}

/**
 * When the object's one alarm should next fire (ms), or null for never: the earliest of the end
 * of the grace period of a broadcast on air (counted from the last push; pushes do not re-arm
 * it, the alarm re-checks), the next retention sweep, the next retry of a webhook event the
 * queue refused, and an earlier wake-up asked for.
 */
export function alarmTime(a: {
  phase: StreamPhase;
  lastPushAt: number | null;
  graceMs: number;
  sweepAt: number | null;
  retryAt?: number | null;
  soon?: number;
  now: number;
}): number | null {
  const times: number[] = [];
  if (isOnAir(a.phase)) times.push((a.lastPushAt ?? a.now) + a.graceMs);
  if (a.sweepAt !== null) times.push(a.sweepAt);
  if (a.retryAt !== undefined && a.retryAt !== null) times.push(a.retryAt);
  if (a.soon !== undefined) times.push(a.soon);
  return times.length === 0 ? null : Math.max(a.now, Math.min(...times));
}
