// The control bar over the video: play/pause, volume, the live badge or "go live", the latency
// readout, DVR scrubbing over the live window, the quality menu (auto + each rendition) and
// fullscreen. In a watch party the host's play, pause and seek go to the room instead of the
// video (`intents`), and a follower's are disabled: the party drives them.
import { formatBehind, formatBitrate } from '../../../core/player/player-status.ts';
import { h, setText, toggle, clear } from './dom.ts';
import { icon } from './icons.ts';
import type { Player, Rendition } from './player.ts';

export interface ControlIntents {
  play(): void;
  pause(): void;
  /** Seek to media time `t` (s). */
  seek(t: number): void;
  goLive(): void;
}

export interface ControlsOptions {
  player: Player;
  /** The clock latency is measured against (ms): the room's, once connected. */
  clock: () => number;
}

/** Behind the live sync point by more than this, the page offers "go live". */
const LIVE_SLACK_SEC = 3;
/** A seekable window shorter than this is only the live window: no scrubber. */
const MIN_DVR_SEC = 20;

export class Controls {
  readonly el: HTMLElement;
  private readonly o: ControlsOptions;
  private readonly playBtn: HTMLButtonElement;
  private readonly muteBtn: HTMLButtonElement;
  private readonly volume: HTMLInputElement;
  private readonly liveBtn: HTMLButtonElement;
  private readonly latency: HTMLElement;
  private readonly qualityBtn: HTMLButtonElement;
  private readonly qualityLabel: HTMLElement;
  private readonly menu: HTMLElement;
  private readonly scrub: HTMLElement;
  private readonly range: HTMLInputElement;
  private readonly scrubFill: HTMLElement;
  private readonly scrubTip: HTMLElement;
  private scrubbing = false;
  /** What play/pause/seek do: undefined = act on the video; an object = e.g. ask the room; null = not allowed. */
  private custom: ControlIntents | null | undefined = undefined;

  constructor(o: ControlsOptions) {
    this.o = o;
    const p = o.player;
    const v = p.video;
    const intents: ControlIntents = {
      play: () => this.intents()?.play(),
      pause: () => this.intents()?.pause(),
      seek: (t) => this.intents()?.seek(t),
      goLive: () => this.intents()?.goLive(),
    };

    this.playBtn = h('button', { class: 'ctl ctl-icon', type: 'button', 'aria-label': 'Play', 'data-testid': 'play' });
    this.playBtn.addEventListener('click', () => (v.paused ? intents.play() : intents.pause()));

    this.muteBtn = h('button', { class: 'ctl ctl-icon', type: 'button', 'aria-label': 'Mute' });
    this.muteBtn.addEventListener('click', () => {
      v.muted = !v.muted;
      if (!v.muted && v.volume === 0) v.volume = 0.8;
    });
    this.volume = h('input', { class: 'volume', type: 'range', min: 0, max: 1, step: 0.05, value: v.volume, 'aria-label': 'Volume' });
    this.volume.addEventListener('input', () => {
      v.volume = Number(this.volume.value);
      v.muted = v.volume === 0;
    });

    this.liveBtn = h(
      'button',
      { class: 'live-btn', type: 'button', 'data-testid': 'go-live' },
      h('span', { class: 'live-dot' }),
      h('span', { class: 'live-label' }, 'LIVE'),
    );
    this.liveBtn.addEventListener('click', () => intents.goLive());
    this.latency = h('span', { class: 'latency', 'data-testid': 'latency', title: 'Time from the camera to your screen' });

    this.qualityLabel = h('span', { class: 'quality-label' }, 'Auto');
    this.qualityBtn = h(
      'button',
      { class: 'ctl quality-btn', type: 'button', 'aria-haspopup': 'menu', 'data-testid': 'quality' },
      icon('signal', 16),
      this.qualityLabel,
      icon('chevron', 14),
    );
    this.menu = h('div', { class: 'menu', role: 'menu', hidden: true, 'data-testid': 'quality-menu' });
    this.qualityBtn.addEventListener('click', (e) => {
      e.stopPropagation();
      this.menu.hidden = !this.menu.hidden;
      if (!this.menu.hidden) this.renderMenu();
    });
    document.addEventListener('click', () => (this.menu.hidden = true));

    const fsBtn = h('button', { class: 'ctl ctl-icon', type: 'button', 'aria-label': 'Fullscreen' }, icon('fullscreen', 20));
    fsBtn.addEventListener('click', () => {
      const stage = this.el.closest('.stage');
      if (document.fullscreenElement) void document.exitFullscreen();
      else void (stage as HTMLElement | null)?.requestFullscreen?.();
    });

    this.range = h('input', {
      class: 'scrub-range',
      type: 'range',
      min: 0,
      max: 1000,
      step: 1,
      value: 1000,
      'aria-label': 'Seek',
      'data-testid': 'scrub',
    });
    this.scrubFill = h('div', { class: 'scrub-fill' });
    this.scrubTip = h('div', { class: 'scrub-tip', hidden: true });
    this.scrub = h('div', { class: 'scrub', hidden: true }, h('div', { class: 'scrub-track' }, this.scrubFill), this.range, this.scrubTip);
    this.range.addEventListener('input', () => {
      this.scrubbing = true;
      this.showTip(Number(this.range.value));
    });
    this.range.addEventListener('change', () => {
      this.scrubbing = false;
      this.scrubTip.hidden = true;
      const r = p.seekRange();
      if (!r) return;
      const value = Number(this.range.value);
      if (value >= 995) intents.goLive();
      else intents.seek(r.start + ((r.end - r.start) * value) / 1000);
    });
    this.range.addEventListener('pointermove', (e) => {
      if (this.scrubbing) return;
      const rect = this.range.getBoundingClientRect();
      this.showTip(Math.round(((e.clientX - rect.left) / rect.width) * 1000));
    });
    this.range.addEventListener('pointerleave', () => {
      if (!this.scrubbing) this.scrubTip.hidden = true;
    });

    this.el = h(
      'div',
      { class: 'controls' },
      this.scrub,
      h(
        'div',
        { class: 'bar' },
        h(
          'div',
          { class: 'bar-left' },
          this.playBtn,
          h('div', { class: 'volume-group' }, this.muteBtn, this.volume),
          this.liveBtn,
          this.latency,
        ),
        h('div', { class: 'bar-right' }, h('div', { class: 'menu-anchor' }, this.qualityBtn, this.menu), fsBtn),
      ),
    );

    p.on('tick', () => this.update());
    p.on('renditions', () => this.update());
    p.on('rendition', () => {
      this.update();
      if (!this.menu.hidden) this.renderMenu();
    });
    setInterval(() => this.update(), 500);
    this.update();
  }

  /** Watch party: the host's play, pause and seek go to the room (an object); a follower's are disabled (null). */
  setIntents(intents: ControlIntents | null | undefined): void {
    this.custom = intents;
    const off = intents === null;
    for (const el of [this.playBtn, this.liveBtn, this.range]) {
      el.disabled = off;
      el.title = off ? 'The host controls playback' : '';
    }
    this.update();
  }

  private intents(): ControlIntents | null {
    if (this.custom !== undefined) return this.custom;
    const p = this.o.player;
    return {
      play: () => void p.video.play().catch(() => undefined),
      pause: () => p.video.pause(),
      seek: (t) => p.seek(t),
      goLive: () => p.goLive(),
    };
  }

  private showTip(value: number): void {
    const r = this.o.player.seekRange();
    if (!r) return;
    const behind = ((r.end - r.start) * (1000 - value)) / 1000;
    setText(this.scrubTip, behind < 1 ? 'Live' : `−${formatBehind(behind)}`);
    this.scrubTip.style.left = `${value / 10}%`;
    this.scrubTip.hidden = false;
  }

  private renderMenu(): void {
    const p = this.o.player;
    clear(this.menu);
    const current = p.currentRendition();
    const item = (label: string, sub: string, selected: boolean, index: number) => {
      const b = h(
        'button',
        {
          class: `menu-item${selected ? ' selected' : ''}`,
          type: 'button',
          role: 'menuitemradio',
          'aria-checked': String(selected),
          'data-level': index,
        },
        h('span', { class: 'menu-check' }, selected ? icon('check', 14) : null),
        h('span', { class: 'menu-label' }, label),
        h('span', { class: 'menu-sub' }, sub),
      );
      b.addEventListener('click', (e) => {
        e.stopPropagation();
        p.setRendition(index);
        this.menu.hidden = true;
      });
      return b;
    };
    this.menu.appendChild(h('div', { class: 'menu-title' }, 'Quality'));
    this.menu.appendChild(item('Auto', p.autoLevel && current ? current.name : '', p.autoLevel, -1));
    const sorted = [...p.renditions].sort((a, b) => b.height - a.height || b.bitrate - a.bitrate);
    for (const r of sorted)
      this.menu.appendChild(item(labelFor(r), formatBitrate(r.bitrate), !p.autoLevel && current?.index === r.index, r.index));
  }

  update(): void {
    const p = this.o.player;
    const v = p.video;
    this.playBtn.replaceChildren(icon(v.paused ? 'play' : 'pause', 20));
    this.playBtn.setAttribute('aria-label', v.paused ? 'Play' : 'Pause');
    this.muteBtn.replaceChildren(icon(v.muted || v.volume === 0 ? 'muted' : 'volume', 20));
    if (document.activeElement !== this.volume) this.volume.value = String(v.muted ? 0 : v.volume);

    const behind = p.behindLive();
    const atLive = p.live && behind < LIVE_SLACK_SEC;
    toggle(this.liveBtn, 'at-live', atLive);
    toggle(this.liveBtn, 'hidden', !p.live);
    this.liveBtn.title = atLive ? 'You are watching live' : 'Jump to live';
    setText(this.liveBtn.querySelector('.live-label')!, atLive ? 'LIVE' : 'GO LIVE');
    const latency = p.live ? p.latency(this.o.clock()) : null;
    setText(
      this.latency,
      latency !== null && latency > 0 && latency < 3600 && p.firstFrameAt !== null
        ? atLive
          ? `${latency.toFixed(1)} s latency`
          : `${formatBehind(behind)} behind live`
        : '',
    );

    const current = p.currentRendition();
    setText(this.qualityLabel, p.autoLevel ? `Auto${current ? ` · ${labelFor(current)}` : ''}` : current ? labelFor(current) : 'Auto');
    this.qualityBtn.hidden = p.renditions.length < 2;

    const r = p.seekRange();
    const dvr = !!r && p.live && r.end - r.start >= MIN_DVR_SEC && (p.info?.dvrWindowSeconds ?? 1) > 0;
    this.scrub.hidden = !dvr;
    if (dvr && r && !this.scrubbing) {
      const frac = Math.min(1, Math.max(0, (v.currentTime - r.start) / (r.end - r.start)));
      this.range.value = String(Math.round(frac * 1000));
      this.scrubFill.style.width = `${frac * 100}%`;
    }
  }
}

function labelFor(r: Rendition): string {
  return r.height ? `${r.height}p` : r.name;
}
