// The nonces of signed ingest requests an object has accepted, remembered for as long as their
// timestamp keeps them inside the replay window (core/contracts/ingest-protocol.ts): a request
// seen before is refused. In memory, so remembering costs no storage write on the push path.
import { SIGNATURE_WINDOW_MS, type SignedRequest } from '../contracts/ingest-protocol.ts';
import type { RpcError } from '../contracts/rpc-error.ts';

/** Nonces remembered at most (a stream pushes ~30 requests a second; a minute of them fits). */
export const MAX_REMEMBERED_NONCES = 20_000;
/** Kept a little past the window, in case the object's clock runs behind the verifying Worker's. */
const CLOCK_SLACK_MS = 1_000;

export class ReplayGuard {
  /** Nonce → when the verifier would refuse its timestamp anyway (ms). Map order is insertion order. */
  private readonly seen = new Map<string, number>();
  private readonly windowMs: number;
  private readonly capacity: number;

  constructor(windowMs = SIGNATURE_WINDOW_MS, capacity = MAX_REMEMBERED_NONCES) {
    this.windowMs = windowMs;
    this.capacity = capacity;
  }

  get size(): number {
    return this.seen.size;
  }

  /**
   * 'fresh' (and remembered) for a nonce not seen within the window; 'replayed' for one seen; 'full'
   * when the memory is at capacity with nonces still in their window (refuse: retry later).
   */
  admit(req: SignedRequest, now: number): 'fresh' | 'replayed' | 'full' {
    this.forget(now);
    if (this.seen.has(req.nonce)) return 'replayed';
    if (this.seen.size >= this.capacity) return 'full';
    this.seen.set(req.nonce, req.timestamp + this.windowMs + CLOCK_SLACK_MS);
    return 'fresh';
  }

  /** Drops the nonces whose requests the verifier refuses by now; timestamps arrive nearly in order. */
  private forget(now: number): void {
    for (const [nonce, until] of this.seen) {
      if (until >= now) {
        // An older request may have been admitted after this one: look a little further.
        if (this.seen.size < this.capacity) return;
        continue;
      }
      this.seen.delete(nonce);
    }
  }
}

/** A remembered nonce, stored: the object keeps these for calls that must survive its restart. */
export interface StoredNonce {
  nonce: string;
  until: number;
}

/**
 * The stored variant, for the rare calls where a replay after a restart of the object would do
 * harm (authorize takes the lease): the list after admitting the request, or 'replayed'.
 */
export function admitStored(
  list: readonly StoredNonce[],
  req: SignedRequest,
  now: number,
  windowMs = SIGNATURE_WINDOW_MS,
): StoredNonce[] | 'replayed' {
  const live = list.filter((n) => n.until >= now);
  if (live.some((n) => n.nonce === req.nonce)) return 'replayed';
  return [...live, { nonce: req.nonce, until: req.timestamp + windowMs + CLOCK_SLACK_MS }];
}

/** What the receiving object answers a request that is not fresh (null: it may proceed). */
export function replayRefusal(verdict: 'fresh' | 'replayed' | 'full'): RpcError | null {
  if (verdict === 'fresh') return null;
  if (verdict === 'replayed') return { status: 401, code: 'replayed_request', message: 'this signed request was already received' };
  return { status: 503, code: 'replay_memory_full', message: 'too many requests in the replay window; retry' };
}
