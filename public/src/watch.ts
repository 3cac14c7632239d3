// Entry of /watch/{streamId} and /party/{roomId}: the low-latency player first; chat, reactions,
// polls, QoE beacons and the watch party follow in a second chunk once the video plays (or
// cannot yet), so nothing competes with the first frame.
import { parsePageUrl } from '../../core/player/page-params.ts';
import { mountWatchPage, type WatchPage } from './watch/page.ts';
import { exposeForTests } from './watch/test-hooks.ts';

/** The second bundle's content-hashed URL (scripts/build-assets.mjs builds it from ./watch/together.ts). */
declare const __TOGETHER_URL__: string;
const TOGETHER_URL = __TOGETHER_URL__;
/** Chat and the rest load by then even if no frame is shown and the player has nothing to say. */
const TOGETHER_FALLBACK_MS = 5000;

const page = mountWatchPage(document.getElementById('app')!, parsePageUrl(location.href));
if (page) {
  exposeForTests(page);
  const loadTogether = (why: NonNullable<WatchPage['togetherLoadedBy']>) => {
    if (page.togetherLoadedBy) return;
    page.togetherLoadedBy = why;
    // A viewer the stream refuses gets no room (only the QoE beacon that says so); one waiting
    // for the start can already chat.
    const n = page.player.notice;
    const refused = n?.kind === 'forbidden' || n?.kind === 'not-found';
    (import(TOGETHER_URL) as Promise<typeof import('./watch/together.ts')>).then(
      (m) => m.mountTogether(page, !refused),
      (err: unknown) => console.error('could not load chat and reactions', err),
    );
  };
  page.player.on('firstFrame', () => loadTogether('first-frame'));
  page.player.on('notice', (n) => n && loadTogether('notice'));
  // A slow start must not keep chat away for long.
  setTimeout(() => loadTogether('timeout'), TOGETHER_FALLBACK_MS);
  page.player.start();
}
