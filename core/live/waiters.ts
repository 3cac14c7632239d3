// What a StreamState object keeps waiting in memory: blocked requests (a playlist or a media
// object that is not there yet) until a condition holds or their timeout passes, pushes held for
// their predecessor's announcement (pipelined ingest), and the R2 writes in flight, which a retry
// of the same push joins. Nothing here is stored: an eviction answers them all (the clients retry).

/** Requests waiting for a rendition to reach a state (a part, a segment closed). */
export class Waiters<T> {
  private readonly waiting = new Set<{ key: string; ready: (subject: T) => boolean; resolve: () => void }>();

  get size(): number {
    return this.waiting.size;
  }

  /** Resolves true when `ready` holds at a wake-up of `key`, false after `timeoutMs`. */
  wait(key: string, ready: (subject: T) => boolean, timeoutMs: number): Promise<boolean> {
    return new Promise<boolean>((resolve) => {
      const waiter = {
        key,
        ready,
        resolve: () => {
          clearTimeout(timer);
          this.waiting.delete(waiter);
          resolve(true);
        },
      };
      const timer = setTimeout(() => {
        this.waiting.delete(waiter);
        resolve(false);
      }, timeoutMs);
      this.waiting.add(waiter);
    });
  }

  /**
   * Re-checks the waiters of `key` (or of every key) against `subjectOf(key)`: those whose
   * condition holds resolve; with `releaseAll` (the stream ended) every one checked does.
   */
  wake(key: string | null, subjectOf: (key: string) => T | undefined, releaseAll = false): void {
    for (const w of this.waiting) {
      if (key !== null && w.key !== key) continue;
      const subject = subjectOf(w.key);
      if (releaseAll || (subject !== undefined && w.ready(subject))) w.resolve();
    }
  }
}

/** Pushes of each rendition in progress (stored or being stored), some held for a predecessor. */
export class HeldPushes {
  private readonly byRendition = new Map<string, { inProgress: number; wakers: Set<() => void> }>();

  private of(rendition: string) {
    let p = this.byRendition.get(rendition);
    if (!p) {
      p = { inProgress: 0, wakers: new Set() };
      this.byRendition.set(rendition, p);
    }
    return p;
  }

  inProgress(rendition: string): number {
    return this.byRendition.get(rendition)?.inProgress ?? 0;
  }

  begin(rendition: string): void {
    this.of(rendition).inProgress++;
  }

  end(rendition: string): void {
    this.of(rendition).inProgress--;
  }

  /** Resolves true at the rendition's next announcement (or a lease change, or the end), false at the deadline. */
  nextAnnouncement(rendition: string, deadline: number): Promise<boolean> {
    const wakers = this.of(rendition).wakers;
    return new Promise<boolean>((resolve) => {
      const wake = () => {
        clearTimeout(timer);
        wakers.delete(wake);
        resolve(true);
      };
      const timer = setTimeout(
        () => {
          wakers.delete(wake);
          resolve(false);
        },
        Math.max(0, deadline - Date.now()),
      );
      wakers.add(wake);
    });
  }

  /** Lets held pushes of a rendition (or all: a lease change, the end) check their turn again. */
  wake(rendition: string | null): void {
    for (const [name, p] of this.byRendition) {
      if (rendition !== null && name !== rendition) continue;
      for (const wake of [...p.wakers]) wake();
    }
  }
}

/** R2 writes in progress by key: a retry of a push joins its write, the end of an epoch waits for it. */
export class InFlightWrites {
  private readonly writes = new Map<string, Promise<void>>();

  /** The write of `key` in progress, or a new one that `start` begins. */
  join(key: string, start: () => Promise<unknown>): Promise<void> {
    let write = this.writes.get(key);
    if (!write) {
      write = start().then(() => undefined);
      this.writes.set(key, write);
    }
    return write;
  }

  /** Begins a write of `key` that later pushes of the key join (the origin's own assembly of a segment). */
  start(key: string, start: () => Promise<unknown>): Promise<void> {
    const write = start().then(() => undefined);
    this.writes.set(key, write);
    return write;
  }

  /** Settles once the write of `key` in progress, if any, has (whether it failed or not). */
  settled(key: string): Promise<void> {
    return (this.writes.get(key) ?? Promise.resolve()).catch(() => undefined);
  }

  /** Forgets a write its caller is done with (unless a newer write of the key replaced it). */
  release(key: string, write: Promise<void>): void {
    if (this.writes.get(key) === write) this.writes.delete(key);
  }
}
