// A token bucket over plain data, so it can live in memory, in a socket attachment or in a test
// without a clock of its own: every call is given the time.

export interface BucketSpec {
  /** Most tokens the bucket holds (the burst). */
  capacity: number;
  /** Tokens added per second. */
  refillPerSec: number;
}

export interface BucketState {
  tokens: number;
  /** Time (ms) the tokens were last computed. */
  at: number;
}

export function fullBucket(spec: BucketSpec, now: number): BucketState {
  return { tokens: spec.capacity, at: now };
}

/** Refills for the time elapsed, then takes `cost` if it can. Mutates `state`; returns success. */
export function takeToken(spec: BucketSpec, state: BucketState, now: number, cost = 1): boolean {
  const elapsed = Math.max(0, now - state.at);
  state.tokens = Math.min(spec.capacity, state.tokens + (elapsed * spec.refillPerSec) / 1000);
  state.at = now;
  if (state.tokens < cost) return false;
  state.tokens -= cost;
  return true;
}

/** Milliseconds until `cost` tokens will be available (0 if they are now). */
export function msUntil(spec: BucketSpec, state: BucketState, now: number, cost = 1): number {
  const tokens = Math.min(spec.capacity, state.tokens + (Math.max(0, now - state.at) * spec.refillPerSec) / 1000);
  return tokens >= cost ? 0 : Math.ceil(((cost - tokens) * 1000) / spec.refillPerSec);
}

/**
 * The limits a room applies. Per connection: every frame costs one token (pings too), checked
 * before the frame is parsed. Per viewer (uid) at the Room: chat and poll actions, so opening
 * several tabs does not multiply a viewer's chat rate.
 */
export const ROOM_RATE_LIMITS = {
  connection: { capacity: 30, refillPerSec: 10 } satisfies BucketSpec,
  viewerChat: { capacity: 5, refillPerSec: 1 } satisfies BucketSpec,
  /**
   * Per voice seat (connection): signalling relayed to other seats — joining a mesh of eight
   * takes about 7 offers or answers and a few candidate batches each — and voice updates
   * (speaking flips, which the client already spaces by 250 ms).
   */
  voiceSignals: { capacity: 50, refillPerSec: 5 } satisfies BucketSpec,
  voiceUpdates: { capacity: 10, refillPerSec: 4 } satisfies BucketSpec,
  /** A connection that keeps flooding after this many refusals in a row is closed (1008). */
  strikesBeforeClose: 50,
} as const;
