// Baseline pages of the player benchmark: a page with nothing but a stock player (hls.js, Shaka
// Player or Video.js) on the stream, served from a tiny server of its own on loopback (the
// Worker's site assets are same-origin only, and Chromium refuses a page that is not on a local
// address the right to fetch from one). Each page sets `__first` (first frame presented,
// requestVideoFrameCallback), `__video`, and `__pdtAt` where the player exposes program-date-times.
import { readFileSync } from 'node:fs';
import { createServer } from 'node:http';
import { join } from 'node:path';
import { ROOT, freePort } from '../../scripts/local-stack.ts';

export type StockPlayer = 'hls' | 'shaka' | 'videojs';

const SCRIPTS: Record<string, string> = {
  '/hls.min.js': join('hls.js', 'dist', 'hls.min.js'),
  '/shaka-player.compiled.js': join('shaka-player', 'dist', 'shaka-player.compiled.js'),
  '/video.min.js': join('video.js', 'dist', 'video.min.js'),
};

/** The page's player set-up: `url` is the stream's multivariant playlist, `config` the player's options. */
function playerScript(player: StockPlayer, url: string, config: string): string {
  switch (player) {
    case 'hls':
      return `<script src="/hls.min.js"></script>
<script>
const hls = new Hls(${config});
hls.on(Hls.Events.MANIFEST_PARSED, () => v.play());
hls.loadSource('${url}');
hls.attachMedia(v);
window.__player = hls;
window.__pdtAt = (t) => {
  const d = hls.levels[hls.currentLevel >= 0 ? hls.currentLevel : 0]?.details;
  let best = null;
  for (const f of d ? d.fragments : []) { if (f.programDateTime == null) continue; if (f.start <= t + 1e-6) best = f; else break; }
  return best ? best.programDateTime + (t - best.start) * 1000 : null;
};
</script>`;
    case 'shaka':
      return `<script src="/shaka-player.compiled.js"></script>
<script>
shaka.polyfill.installAll();
const player = new shaka.Player();
window.__player = player;
player.configure(${config});
player.attach(v).then(() => player.load('${url}')).then(() => v.play()).catch((e) => console.error('shaka', e && e.code, e));
</script>`;
    case 'videojs':
      return `<script src="/video.min.js"></script>
<script>
const cfg = ${config};
const player = videojs(v, { muted: true, autoplay: 'muted', controls: false, html5: { vhs: cfg.vhs ?? {} }, liveui: false, ...(cfg.player ?? {}) });
window.__player = player;
player.src({ src: '${url}', type: 'application/x-mpegURL' });
player.play()?.catch?.(() => undefined);
if (cfg.catchUp) {
  // docs/player.md's catch-up for Video.js, which has none: more than \`behind\` seconds of media
  // buffered ahead means playback has fallen back (a start on a part without a keyframe, a stall);
  // jump forward inside the buffer to \`target\` seconds before its end.
  const { behind, target } = cfg.catchUp;
  setInterval(() => {
    const b = v.buffered;
    if (v.paused || v.seeking || !b.length) return;
    const end = b.end(b.length - 1);
    if (end - v.currentTime > behind) v.currentTime = end - target;
  }, 250);
}
</script>`;
  }
}

/**
 * Serves `/?player=hls|shaka|videojs&config=<JSON>`: a page with a muted 640-pixel video and that
 * player on `{workerUrl}/live/{streamId}/index.m3u8`.
 */
export async function serveStockPages(
  workerUrl: string,
  streamId: string,
): Promise<{ origin: string; url(player: StockPlayer, config: Record<string, unknown>): string; close(): void }> {
  const scripts = new Map(Object.entries(SCRIPTS).map(([path, file]) => [path, readFileSync(join(ROOT, 'node_modules', file))]));
  const server = createServer((req, res) => {
    const url = new URL(req.url ?? '/', 'http://localhost');
    const script = scripts.get(url.pathname);
    if (script) {
      res.writeHead(200, { 'content-type': 'text/javascript' }).end(script);
      return;
    }
    const player = (url.searchParams.get('player') ?? 'hls') as StockPlayer;
    const config = url.searchParams.get('config') ?? '{}';
    res
      .writeHead(200, { 'content-type': 'text/html' })
      .end(`<!doctype html><body style="margin:0;background:#000"><video id="v" muted playsinline style="width:640px"></video>
<script>
const v = document.getElementById('v');
window.__first = null;
window.__pdtAt = null;
window.__video = v;
v.requestVideoFrameCallback((_n, m) => { window.__first = m.presentationTime; });
</script>
${playerScript(player, `${workerUrl}/live/${streamId}/index.m3u8`, config)}
</body>`);
  });
  const port = await freePort();
  await new Promise<void>((r) => server.listen(port, '127.0.0.1', r));
  const origin = `http://127.0.0.1:${port}`;
  return {
    origin,
    url: (player, config) => `${origin}/?player=${player}&config=${encodeURIComponent(JSON.stringify(config))}`,
    close: () => server.close(),
  };
}

/**
 * The settings docs/player.md recommends for embedding an edgelive stream in a stock player (keep
 * the two in step): what each player needs beyond its defaults to stay near the live edge.
 */
export const RECOMMENDED = {
  /**
   * hls.js: its defaults (start at EXT-X-START, aim at PART-HOLD-BACK), and a way back after a
   * stall: the rate catch-up, which only runs with more than 1 s buffered ahead (never at the start
   * latency), and a stall moving its target back 0.1 s instead of 1 s.
   */
  hls: { lowLatencyMode: true, maxLiveSyncPlaybackRate: 1.5, liveSyncOnStallIncrease: 0.1 },
  /** Shaka Player: low-latency mode (its default since v5) and its live sync (rate catch-up) on. */
  shaka: {
    streaming: {
      lowLatencyMode: true,
      liveSync: { enabled: true, targetLatency: 0, targetLatencyTolerance: 0.2, maxPlaybackRate: 1.1, minPlaybackRate: 1 },
    },
  },
  /**
   * Video.js (VHS): LL-HLS parts on (its default), and the page's own catch-up (VHS has none):
   * more than 1 s of media buffered ahead, jump to 0.5 s before the buffer's end.
   */
  videojs: { vhs: { llhls: true }, catchUp: { behind: 1, target: 0.5 } },
} as const;

/** What the benchmark measures: each stock player at its defaults, and with RECOMMENDED. */
export const STOCK_CASES: Array<{ label: string; player: StockPlayer; config: Record<string, unknown> }> = [
  { label: 'hls.js defaults', player: 'hls', config: {} },
  { label: 'hls.js recommended', player: 'hls', config: RECOMMENDED.hls },
  { label: 'Shaka Player defaults', player: 'shaka', config: {} },
  { label: 'Shaka Player recommended', player: 'shaka', config: RECOMMENDED.shaka },
  { label: 'Video.js defaults', player: 'videojs', config: {} },
  { label: 'Video.js recommended', player: 'videojs', config: RECOMMENDED.videojs },
];
