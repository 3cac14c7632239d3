// Token buckets for the SRT handshake: one per source address (new conclusions) and one for the
// whole node (PBKDF2 runs), so a flood costs the node a bounded amount of work per second whatever
// its rate. Pure: the time comes in as an argument.

export interface BucketLimits {
  /** Tokens added per second. */
  ratePerSecond: number;
  /** Tokens a full bucket holds (the burst allowed after a quiet period). */
  burst: number;
}

export class TokenBucket {
  private tokens: number;
  private at: number;
  private readonly limits: BucketLimits;

  constructor(limits: BucketLimits, now: number) {
    this.limits = limits;
    this.tokens = limits.burst;
    this.at = now;
  }

  /** Takes one token if there is one. */
  take(now: number): boolean {
    this.refill(now);
    if (this.tokens < 1) return false;
    this.tokens -= 1;
    return true;
  }

  /** Whether the bucket would be full at `now` (then it is the same as a new one). */
  isFull(now: number): boolean {
    this.refill(now);
    return this.tokens >= this.limits.burst;
  }

  private refill(now: number): void {
    this.tokens = Math.min(this.limits.burst, this.tokens + ((now - this.at) / 1000) * this.limits.ratePerSecond);
    this.at = now;
  }
}

/**
 * A bucket per address. The table is bounded: a full bucket is the same as none, so `sweep`
 * forgets quiet addresses; past `maxAddresses` the least recently seen one goes.
 */
export class AddressRateLimiter {
  private readonly limits: BucketLimits;
  private readonly maxAddresses: number;
  private readonly buckets = new Map<string, TokenBucket>();

  constructor(limits: BucketLimits & { maxAddresses?: number }) {
    this.limits = { ratePerSecond: limits.ratePerSecond, burst: limits.burst };
    this.maxAddresses = limits.maxAddresses ?? 10_000;
  }

  get size(): number {
    return this.buckets.size;
  }

  take(address: string, now: number): boolean {
    let bucket = this.buckets.get(address);
    if (bucket)
      this.buckets.delete(address); // re-inserted below: the map stays in order of last use
    else {
      this.evict();
      bucket = new TokenBucket(this.limits, now);
    }
    this.buckets.set(address, bucket);
    return bucket.take(now);
  }

  /** Forgets the addresses whose buckets have filled up again. */
  sweep(now: number): void {
    for (const [address, bucket] of this.buckets) if (bucket.isFull(now)) this.buckets.delete(address);
  }

  private evict(): void {
    // The least recently seen address goes first (the sweep has already dropped the full ones).
    while (this.buckets.size >= this.maxAddresses) this.buckets.delete(this.buckets.keys().next().value!);
  }
}
