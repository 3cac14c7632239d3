// Entry of /watch/{streamId} and /party/{roomId}: the low-latency player first; chat, reactions,
// polls, QoE beacons and the watch party follow in a second chunk once the video plays (or
// cannot yet), so nothing competes with the first frame.
import { parsePageUrl } from '../../core/player/page-params.ts';
import { mountWatchPage } from './watch/page.ts';
import { exposeForTests } from './watch/test-hooks.ts';

/** The second bundle (scripts/build-assets.mjs builds it from ./watch/together.ts). */
const TOGETHER_URL = '/dist/together.js';

const page = mountWatchPage(document.getElementById('app')!, parsePageUrl(location.href));
if (page) {
  exposeForTests(page);
  let loaded = false;
  const loadTogether = () => {
    if (loaded) return;
    loaded = true;
    // A viewer the stream refuses gets no room (only the QoE beacon that says so); one waiting
    // for the start can already chat.
    const n = page.player.notice;
    const refused = n?.kind === 'forbidden' || n?.kind === 'not-found';
    (import(TOGETHER_URL) as Promise<typeof import('./watch/together.ts')>).then(
      (m) => m.mountTogether(page, !refused),
      (err: unknown) => console.error('could not load chat and reactions', err),
    );
  };
  page.player.on('firstFrame', loadTogether);
  page.player.on('notice', (n) => n && loadTogether());
  // A slow start must not keep chat away for long.
  setTimeout(loadTogether, 4000);
  page.player.start();
}
