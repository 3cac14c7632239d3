// The watch page's first paint and the player: the top bar, the stage (video, overlays,
// controls), the stream's title and state. This is the critical path to the first frame, so it
// carries nothing else: chat, reactions, polls, the viewer count, QoE beacons and the watch party
// arrive in a second chunk (./together.ts) once the video plays (or cannot yet), so their code
// never competes with hls.js for the main thread while it starts.
import type { PageParams } from '../../../core/player/page-params.ts';
import type { RoomClient } from '../rooms-client.ts';
import type { PartySync } from '../party/party-sync-driver.ts';
import type { Reactions } from './reactions.ts';
import { Controls } from './controls.ts';
import { h, setText } from './dom.ts';
import { icon } from './icons.ts';
import { Overlay } from './overlay.ts';
import { Player } from './player.ts';

export interface WatchPage {
  params: PageParams;
  player: Player;
  controls: Controls;
  /** What made the page load the together chunk (null: not yet). */
  togetherLoadedBy: 'first-frame' | 'notice' | 'timeout' | null;
  /** Set by the together chunk. */
  room: RoomClient | null;
  reactions: Reactions | null;
  party: PartySync | null;
  /** The wall clock the page trusts (ms): the room's once synced, else the local one. */
  clock: () => number;
  /** Elements the together chunk fills. */
  slots: {
    stage: HTMLElement;
    overlay: HTMLElement;
    stageTopRight: HTMLElement;
    belowHead: HTMLElement;
    below: HTMLElement;
    side: HTMLElement;
    viewers: HTMLElement;
  };
}

export function mountWatchPage(root: HTMLElement, params: PageParams): WatchPage | null {
  const origin = location.origin;
  const streamId = params.streamId;
  // --- skeleton ----------------------------------------------------------------------------------
  const titleTop = h('div', { class: 'topbar-title', 'data-testid': 'title-top' });
  const viewers = h(
    'span',
    { class: 'viewers', 'data-testid': 'viewers', title: 'Watching now', hidden: true },
    icon('eye', 16),
    h('span', { class: 'viewers-n' }, '–'),
  );
  const topbar = h(
    'header',
    { class: 'topbar' },
    h(
      'a',
      { class: 'brand', href: '/' },
      h('span', { class: 'brand-mark' }, h('span', {})),
      h('span', { class: 'brand-name' }, 'edgelive'),
    ),
    titleTop,
    h('div', { class: 'topbar-right' }, viewers),
  );
  if (!streamId) {
    root.replaceChildren(
      topbar,
      h(
        'div',
        { class: 'fatal card' },
        h('div', { class: 'notice-icon notice-not-found' }, icon('alert', 28)),
        h('h1', {}, 'Nothing to watch here'),
        h(
          'p',
          {},
          params.mode === 'party' ? 'This party link names no stream. Ask the host for the full link.' : 'This address names no stream.',
        ),
      ),
    );
    return null;
  }

  const video = h('video', { class: 'video', playsinline: true, preload: 'auto', 'data-testid': 'video' });
  // Muted so that browsers let the page start playing by itself; the overlay offers "unmute".
  video.muted = true;
  const player = new Player({ origin, streamId, token: params.token, party: params.mode === 'party', video });
  const page: WatchPage = {
    params,
    player,
    controls: null as unknown as Controls,
    togetherLoadedBy: null,
    room: null,
    reactions: null,
    party: null,
    clock: () => (page.room?.clockEstimate() ? page.room.roomNow() : Date.now()),
    slots: null as unknown as WatchPage['slots'],
  };
  const overlay = new Overlay(player);
  const controls = new Controls({ player, clock: () => page.clock() });
  page.controls = controls;
  const stageTopRight = h('div', { class: 'stage-top-right' });
  const stage = h(
    'div',
    { class: 'stage' },
    video,
    overlay.el,
    stageTopRight,
    h('div', { class: 'stage-top-left' }, overlay.unmuteButton),
    controls.el,
  );

  const title = h('h1', { class: 'stream-title', 'data-testid': 'title' });
  const state = h('span', { class: 'state-pill', 'data-testid': 'state' });
  const meta = h('span', { class: 'meta-text' });
  const belowHead = h('div', { class: 'below-head-extra' });
  const below = h(
    'div',
    { class: 'below' },
    h('div', { class: 'below-head' }, h('div', { class: 'title-block' }, title, h('div', { class: 'title-meta' }, state, meta)), belowHead),
  );
  const side = h('aside', { class: 'side' });
  const layout = h('main', { class: `layout mode-${params.mode}` }, h('section', { class: 'main-col' }, stage, below), side);
  root.replaceChildren(topbar, layout);
  page.slots = { stage, overlay: overlay.el, stageTopRight, belowHead, below, side, viewers };

  // --- stream info and state -----------------------------------------------------------------------
  const showTitle = () => {
    const n = player.notice;
    const blocked = n?.kind === 'forbidden' || n?.kind === 'not-found';
    const text = blocked ? 'Stream unavailable' : player.info?.title || (player.info ? 'Untitled stream' : '');
    setText(title, text);
    setText(titleTop, text);
    document.title = text ? `${text} · edgelive` : 'edgelive';
  };
  const showState = () => {
    const n = player.notice;
    const s =
      n?.kind === 'forbidden'
        ? 'restricted'
        : n?.kind === 'not-found'
          ? 'unavailable'
          : n?.kind === 'ended' || player.video.ended || player.info?.status === 'ended'
            ? 'ended'
            : n?.kind === 'not-live' || player.info?.status === 'idle'
              ? 'upcoming'
              : player.live && player.firstFrameAt !== null
                ? 'live'
                : 'loading';
    state.dataset.state = s;
    const label: Record<string, string> = {
      live: 'Live',
      ended: 'Ended',
      upcoming: 'Starting soon',
      loading: 'Connecting…',
      restricted: 'Access required',
      unavailable: 'Not found',
    };
    stage.classList.toggle('has-notice', !!n);
    setText(state, label[s] ?? s);
    const r = player.currentRendition();
    setText(
      meta,
      s === 'live' && r
        ? `${r.height ? `${r.height}p` : r.name} · low-latency HLS`
        : s === 'upcoming'
          ? 'The player starts by itself when the broadcast begins'
          : '',
    );
    showTitle();
  };
  for (const e of ['info', 'notice', 'firstFrame', 'rendition', 'tick'] as const) player.on(e, showState);
  showState();
  return page;
}
