// What covers the video when it is not simply playing: a spinner over the poster while loading
// or stalled, a card that says why the stream cannot play (ended, not live yet, forbidden,
// network) with a retry where one helps, and the "unmute" pill (pages start muted so that
// browsers let them autoplay).
import type { PlayerNotice } from '../../../core/player/player-status.ts';
import { h, setText } from './dom.ts';
import { icon, type IconName } from './icons.ts';
import type { Player } from './player.ts';

const NOTICE_ICON: Record<PlayerNotice['kind'], IconName> = {
  forbidden: 'lock',
  'not-live': 'clock',
  ended: 'flag',
  'not-found': 'alert',
  network: 'alert',
};

export class Overlay {
  readonly el: HTMLElement;
  private readonly spinner: HTMLElement;
  private readonly card: HTMLElement;
  private readonly unmute: HTMLButtonElement;

  constructor(player: Player) {
    this.spinner = h('div', { class: 'spinner', 'aria-label': 'Loading' });
    this.card = h('div', { class: 'notice', role: 'alert', hidden: true, 'data-testid': 'notice' });
    this.unmute = h('button', { class: 'unmute-pill', type: 'button', hidden: true }, icon('muted', 16), 'Tap to unmute');
    this.unmute.addEventListener('click', () => {
      player.video.muted = false;
      if (player.video.volume === 0) player.video.volume = 0.8;
    });
    this.el = h('div', { class: 'overlay' }, this.spinner, this.card);

    const update = () => {
      const n = player.notice;
      const v = player.video;
      const loading = !n && (player.firstFrameAt === null || player.stalled) && !v.ended;
      this.spinner.hidden = !loading;
      this.el.classList.toggle('dim', !!n);
      this.unmute.hidden = !v.muted || player.firstFrameAt === null || !!n;
    };
    player.on('notice', (n) => {
      this.render(n, player);
      update();
    });
    player.on('tick', update);
    player.on('stall', update);
    player.on('firstFrame', update);
    update();
  }

  get unmuteButton(): HTMLButtonElement {
    return this.unmute;
  }

  private render(n: PlayerNotice | null, player: Player): void {
    this.card.hidden = !n;
    this.card.replaceChildren();
    if (!n) return;
    this.card.dataset.kind = n.kind;
    const title = h('h2', { class: 'notice-title' });
    setText(title, n.title);
    const detail = h('p', { class: 'notice-detail' });
    setText(detail, n.detail);
    this.card.append(h('div', { class: `notice-icon notice-${n.kind}` }, icon(NOTICE_ICON[n.kind], 28)), title, detail);
    if (n.retry) {
      const label = n.kind === 'ended' ? 'Watch from the start' : 'Retry now';
      const b = h(
        'button',
        { class: 'btn btn-primary', type: 'button', 'data-testid': 'retry' },
        icon(n.kind === 'ended' ? 'play' : 'retry', 16),
        label,
      );
      b.addEventListener('click', () => (n.kind === 'ended' ? player.replay() : player.retry()));
      this.card.append(b);
    }
    if (n.kind === 'not-live')
      this.card.append(h('div', { class: 'notice-wait' }, h('span', { class: 'pulse' }), 'Waiting for the broadcast'));
  }
}
