// Per-address limits on anonymous members, as pure rules over token buckets. An anonymous member
// is whoever presents no room token; their identity is a random id the Worker signs (a cookie,
// or the `session` a non-browser client keeps). Without limits, dropping that identity and
// joining again would give anyone a fresh member — a fresh vote, a way around a mute or a ban —
// per connection. The address is the only thing such a client cannot shed cheaply.
import { fullBucket, msUntil, takeToken, type BucketSpec, type BucketState } from './room-token-bucket.ts';

export interface AnonymousLimits {
  /** Anonymous joins (reconnects included) per address per minute. */
  joinsPerMinute: number;
  /** New anonymous identities per address per hour. */
  idsPerHour: number;
}

/**
 * Defaults: a reconnecting viewer needs a join every few seconds at worst, and a household or a
 * small office behind one address a handful of identities. A big event behind one NAT (a campus)
 * needs more: raise them per room, or give its viewers room tokens.
 */
export const ANONYMOUS_DEFAULTS: AnonymousLimits = { joinsPerMinute: 30, idsPerHour: 20 };

export function joinsSpec(l: AnonymousLimits): BucketSpec {
  return { capacity: l.joinsPerMinute, refillPerSec: l.joinsPerMinute / 60 };
}

export function idsSpec(l: AnonymousLimits): BucketSpec {
  return { capacity: l.idsPerHour, refillPerSec: l.idsPerHour / 3600 };
}

/** Milliseconds after which an untouched bucket is full again, so forgetting it changes nothing. */
export function refillMs(spec: BucketSpec): number {
  return Math.ceil((spec.capacity / spec.refillPerSec) * 1000);
}

export type AnonymousJoinDecision =
  | { ok: true; joins: BucketState; ids: BucketState | null }
  | { ok: false; reason: string; retryAfterMs: number; joins: BucketState };

/**
 * Whether one more anonymous join from an address is allowed: every join spends from the
 * address's join bucket, a join with a new identity also from its identity bucket. Returns the
 * buckets to keep (copies: the inputs are not changed); `ids` is null when none was spent.
 */
export function decideAnonymousJoin(
  limits: AnonymousLimits,
  state: { joins?: BucketState; ids?: BucketState },
  newIdentity: boolean,
  now: number,
): AnonymousJoinDecision {
  const js = joinsSpec(limits);
  const joins = state.joins ? { ...state.joins } : fullBucket(js, now);
  if (!takeToken(js, joins, now)) {
    return { ok: false, reason: 'too many joins from your address; wait a moment', retryAfterMs: msUntil(js, joins, now), joins };
  }
  if (!newIdentity) return { ok: true, joins, ids: null };
  const is = idsSpec(limits);
  const ids = state.ids ? { ...state.ids } : fullBucket(is, now);
  if (!takeToken(is, ids, now)) {
    return {
      ok: false,
      reason: 'too many new anonymous viewers from your address; come back with your earlier identity or a room token',
      retryAfterMs: msUntil(is, ids, now),
      joins,
    };
  }
  return { ok: true, joins, ids };
}
