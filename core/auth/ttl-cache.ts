// A small per-isolate cache with a time to live, coalesced loads and a size bound. It keeps the
// playback hot path off D1: signing keys and stream access rules are read at most once per TTL.

export interface TtlCacheOptions<V> {
  /** Milliseconds an entry is served without asking the loader again. */
  ttlMs: number;
  /**
   * Extra milliseconds an expired entry may still be served when reloading it fails (a D1
   * hiccup should not take playback down). ttlMs + staleIfErrorMs bounds how long a change can
   * go unseen, so keep the sum within what the change's promise says (a minute for revocation).
   */
  staleIfErrorMs?: number;
  /** Entries kept; the oldest is dropped beyond it. */
  maxEntries: number;
  /** A shorter (or longer) life for some values, e.g. "not found" answers. */
  ttlMsFor?: (value: V) => number;
}

interface Entry<V> {
  value: V;
  at: number;
  ttl: number;
  /** After a failed reload the stale value is served without asking again until then. */
  retryAt?: number;
}

/** Time between reload attempts while the loader fails (one D1 query a second, not one per request). */
const RETRY_AFTER_ERROR_MS = 1000;

export class TtlCache<V> {
  private readonly entries = new Map<string, Entry<V>>();
  private readonly loading = new Map<string, Promise<V>>();
  private readonly opts: TtlCacheOptions<V>;

  constructor(opts: TtlCacheOptions<V>) {
    this.opts = opts;
  }

  /** The value if it is fresh, without loading. */
  peek(key: string, now: number): V | undefined {
    const e = this.entries.get(key);
    return e && now - e.at < e.ttl ? e.value : undefined;
  }

  /** The fresh value, or the loader's (one load per key at a time, however many callers wait). */
  get(key: string, now: number, load: () => Promise<V>): Promise<V> {
    const e = this.entries.get(key);
    if (e && now - e.at < e.ttl) return Promise.resolve(e.value);
    if (e?.retryAt !== undefined && now < e.retryAt && this.servesStale(e, now)) return Promise.resolve(e.value);
    const pending = this.loading.get(key);
    if (pending) return pending;
    const p = load()
      .then((value) => {
        this.set(key, value, now);
        return value;
      })
      .catch((err: unknown) => {
        const stale = this.entries.get(key);
        if (stale && this.servesStale(stale, now)) {
          stale.retryAt = now + RETRY_AFTER_ERROR_MS;
          return stale.value;
        }
        throw err;
      })
      .finally(() => this.loading.delete(key));
    this.loading.set(key, p);
    return p;
  }

  private servesStale(e: Entry<V>, now: number): boolean {
    return now - e.at < e.ttl + (this.opts.staleIfErrorMs ?? 0);
  }

  set(key: string, value: V, now: number): void {
    this.entries.delete(key); // re-insert at the end: Map order is the eviction order
    this.entries.set(key, { value, at: now, ttl: this.opts.ttlMsFor?.(value) ?? this.opts.ttlMs });
    if (this.entries.size > this.opts.maxEntries) {
      const oldest = this.entries.keys().next().value;
      if (oldest !== undefined) this.entries.delete(oldest);
    }
  }

  delete(key: string): void {
    this.entries.delete(key);
  }

  clear(): void {
    this.entries.clear();
  }

  get size(): number {
    return this.entries.size;
  }
}
