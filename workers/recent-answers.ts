// Answers this isolate made a moment ago, kept to serve the next viewers who ask the same thing:
// at the live edge every viewer asks for the same playlist version and the same part within a
// few hundred milliseconds, sooner than the colo cache's write of the first answer lands. Bounded
// by entries and by bytes (the oldest entries go first), with a time to live per entry.

export interface RecentAnswersOptions {
  maxEntries: number;
  maxBytes: number;
}

interface Entry<V> {
  value: V;
  bytes: number;
  expiresAt: number;
}

export class RecentAnswers<V> {
  /** Insertion order is age order: the first key is the oldest. */
  private readonly entries = new Map<string, Entry<V>>();
  private bytes = 0;
  private readonly opts: RecentAnswersOptions;

  constructor(opts: RecentAnswersOptions) {
    this.opts = opts;
  }

  get(key: string, now: number): V | undefined {
    const e = this.entries.get(key);
    if (!e) return undefined;
    if (e.expiresAt > now) return e.value;
    this.remove(key, e);
    return undefined;
  }

  /** Keeps a value until `expiresAt`; one larger than the whole byte budget is not kept. */
  set(key: string, value: V, bytes: number, expiresAt: number): void {
    const old = this.entries.get(key);
    if (old) this.remove(key, old);
    if (bytes > this.opts.maxBytes) return;
    this.entries.set(key, { value, bytes, expiresAt });
    this.bytes += bytes;
    for (const [k, e] of this.entries) {
      if (this.entries.size <= this.opts.maxEntries && this.bytes <= this.opts.maxBytes) break;
      this.remove(k, e);
    }
  }

  get size(): number {
    return this.entries.size;
  }

  get totalBytes(): number {
    return this.bytes;
  }

  private remove(key: string, e: Entry<V>): void {
    this.entries.delete(key);
    this.bytes -= e.bytes;
  }
}
