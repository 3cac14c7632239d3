// The page's side of interactions in step with the stream (core/player/in-step.ts): what a poll,
// a host's reaction or a chat message is stamped with when this page sends it, and a queue that
// runs what arrived ahead of this viewer's picture once the video gets there. Whether it holds
// at all follows the chat's "Sync to video" switch (on unless the page has `?sync=0`).
import { aheadOfPicture, stampOf } from '../../../core/player/in-step.ts';

export interface InStepOptions {
  /** Program-date-time (ms) of the frame on screen, null when unknown. */
  pdtNow: () => number | null;
  enabled: () => boolean;
}

/** How often the queue looks at the picture: a fifth of a second is within a frame or two of a cue. */
const CHECK_MS = 100;

export class InStep {
  private readonly o: InStepOptions;
  private queue: Array<{ pdt: number; run: () => void }> = [];

  constructor(o: InStepOptions) {
    this.o = o;
    setInterval(() => this.flush(), CHECK_MS);
  }

  /** Whether something stamped `pdt` is still ahead of this viewer's picture. */
  ahead(pdt: number | null | undefined, own = false): boolean {
    return aheadOfPicture(pdt, this.o.pdtNow(), { enabled: this.o.enabled(), own });
  }

  /** The stamp for what this page sends now. */
  stamp(): number | undefined {
    return stampOf(this.o.pdtNow());
  }

  /** Runs `run` now, or once the picture reaches `pdt`. */
  at(pdt: number | undefined, run: () => void, own = false): void {
    if (pdt === undefined || !this.ahead(pdt, own)) run();
    else this.queue.push({ pdt, run });
  }

  /** Things waiting for the picture. */
  get waiting(): number {
    return this.queue.length;
  }

  private flush(): void {
    if (this.queue.length === 0) return;
    const due = this.queue.filter((q) => !this.ahead(q.pdt));
    if (due.length === 0) return;
    this.queue = this.queue.filter((q) => !due.includes(q));
    for (const q of due.sort((a, b) => a.pdt - b.pdt)) q.run();
  }
}
