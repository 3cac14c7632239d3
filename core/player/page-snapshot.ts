// What `window.__edgelive.snapshot()` answers (public/src/watch/test-hooks.ts): plain data the
// browser tests and the player benchmark read across the DevTools protocol. Types only, no DOM,
// so Node code can import it.

export interface PageSnapshot {
  currentTime: number;
  paused: boolean;
  playbackRate: number;
  readyState: number;
  videoHeight: number;
  firstFrameMs: number | null;
  /** What made the page load chat and the rest (its second bundle): the first frame, a notice, or the fallback timer. */
  togetherLoadedBy: 'first-frame' | 'notice' | 'timeout' | null;
  notice: { kind: string; title: string } | null;
  rendition: string | null;
  autoLevel: boolean;
  renditions: string[];
  pdt: number | null;
  /** Wall-clock ms (performance.timeOrigin + now) at which `pdt` was read. */
  wallMs: number;
  roomNowMs: number | null;
  latencySec: number | null;
  /** Seconds behind hls.js's live sync position (0 at the live edge). */
  behindLiveSec: number;
  errors: Array<{ kind: string; detail: string; fatal: boolean }>;
  role: string | null;
  viewers: number | null;
  reactionsSeen: Record<string, number>;
  party: { errorMs: number | null; state: string; version: number | null; leadMs: number } | null;
}
