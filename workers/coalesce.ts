// Coalesces identical in-flight calls within one isolate: a thousand viewers blocked on the same
// part at one edge cost the Durable Object one call, so its load grows with edges, not viewers.

export class Coalescer<T> {
  private readonly inflight = new Map<string, Promise<T>>();

  run(key: string, fn: () => Promise<T>): Promise<T> {
    const existing = this.inflight.get(key);
    if (existing) return existing;
    const p = fn().finally(() => this.inflight.delete(key));
    this.inflight.set(key, p);
    return p;
  }

  get size(): number {
    return this.inflight.size;
  }
}
