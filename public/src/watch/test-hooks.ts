// A read-only window onto the page for the browser tests and the player benchmark
// (`window.__edgelive`): plain numbers and strings, so they can be read across the DevTools
// protocol. The page does not depend on it.
import type { PageSnapshot } from '../../../core/player/page-snapshot.ts';
import type { WatchPage } from './page.ts';

export function exposeForTests(page: WatchPage): void {
  const snapshot = (): PageSnapshot => {
    const p = page.player;
    const v = p.video;
    const r = p.currentRendition();
    return {
      currentTime: v.currentTime,
      paused: v.paused,
      playbackRate: v.playbackRate,
      readyState: v.readyState,
      videoHeight: v.videoHeight,
      firstFrameMs: p.firstFrameAt,
      togetherLoadedBy: page.togetherLoadedBy,
      notice: p.notice ? { kind: p.notice.kind, title: p.notice.title } : null,
      rendition: r?.name ?? null,
      autoLevel: p.autoLevel,
      renditions: p.renditions.map((x) => x.name),
      pdt: p.pdtNow(),
      wallMs: performance.timeOrigin + performance.now(),
      roomNowMs: page.room?.clockEstimate() ? page.room.roomNow() : null,
      latencySec: p.latency(page.clock()),
      behindLiveSec: p.behindLive(),
      errors: page.player.errorsSeen.slice(-20),
      role: page.room?.you?.role ?? null,
      viewers: page.room?.state?.presence.count ?? null,
      reactionsSeen: { ...(page.reactions?.totals ?? {}) },
      party: page.party ? page.party.status() : null,
    };
  };
  (window as unknown as { __edgelive: unknown }).__edgelive = { page, snapshot };
}
