// Connects the player to the QoE recorder and posts its batches to `POST /api/qoe`: with fetch
// while the page lives, with sendBeacon when it is hidden or closed (the last batch still goes).
import { QoeRecorder } from '../../../core/player/qoe-recorder.ts';
import type { QoeBatchInput } from '../../../core/contracts/qoe.ts';
import type { Player } from './player.ts';

export function startQoe(
  player: Player,
  opts: { origin: string; streamId: string; page: 'watch' | 'party'; clock: () => number },
): QoeRecorder {
  const session = randomId();
  const rec = new QoeRecorder({ streamId: opts.streamId, session, page: opts.page, now: performance.now() });
  const endpoint = new URL('/api/qoe', opts.origin).toString();
  const v = player.video;
  const now = () => performance.now();

  player.on('firstFrame', ({ ttffMs }) => rec.firstFrame(ttffMs, now()));
  player.on('stall', ({ stalled }) => {
    // Seeking (the viewer's, or a watch party's) is not rebuffering.
    if (player.firstFrameAt === null || v.seeking) return;
    if (stalled) rec.stalled(now());
    else if (!v.paused) rec.playing(now());
  });
  v.addEventListener('playing', () => {
    if (player.firstFrameAt !== null) rec.playing(now());
  });
  v.addEventListener('pause', () => rec.idle(now()));
  v.addEventListener('ended', () => rec.idle(now()));
  // This module loads after the first frame: what happened before is read back from the player.
  if (player.firstFrameAt !== null) rec.firstFrame(player.firstFrameAt, now());
  if (player.notice) rec.error('page', player.notice.kind, true);
  let switchesSeen = 0;
  let errorsSeen = 0;
  player.on('notice', (n) => {
    if (n && (n.kind === 'forbidden' || n.kind === 'network' || n.kind === 'not-found')) rec.error('page', n.kind, true);
  });

  const post = (batch: QoeBatchInput, final: boolean) => {
    const body = JSON.stringify(batch);
    if (final && navigator.sendBeacon) {
      // text/plain: no CORS preflight, and sendBeacon survives the page going away.
      navigator.sendBeacon(endpoint, new Blob([body], { type: 'text/plain' }));
      return;
    }
    fetch(endpoint, { method: 'POST', body, headers: { 'content-type': 'application/json' }, keepalive: true })
      .then((res) => {
        // 4xx: the batch itself is wrong (or the stream is gone); resending would not help.
        if (res.status >= 500) rec.requeue(batch);
      })
      .catch(() => rec.requeue(batch));
  };
  const tick = (final = false) => {
    while (errorsSeen < player.errorsSeen.length) {
      const e = player.errorsSeen[errorsSeen++]!;
      rec.error(e.kind, e.detail, e.fatal);
    }
    while (switchesSeen < player.switches.length) {
      const s = player.switches[switchesSeen++]!;
      rec.renditionSwitch(s.from, s.to, s.bitrate, s.auto);
    }
    if (player.firstFrameAt !== null && !v.paused) {
      const l = player.latency(opts.clock());
      if (l !== null) rec.latency(l, now());
    }
    for (const b of rec.tick(now(), final)) post(b, final);
  };
  setInterval(() => tick(), 1000);
  document.addEventListener('visibilitychange', () => {
    if (document.visibilityState === 'hidden') tick(true);
  });
  window.addEventListener('pagehide', () => tick(true));
  return rec;
}

function randomId(): string {
  const bytes = crypto.getRandomValues(new Uint8Array(12));
  return Array.from(bytes, (b) => b.toString(36).padStart(2, '0'))
    .join('')
    .slice(0, 20);
}
