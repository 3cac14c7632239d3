// Reactions: the bar under the video sends them; the overlay floats what the room reports. The
// room aggregates (one `reactions {counts}` at most every 100 ms, never one frame per click), so
// a thousand viewers clapping shows as a burst whose size follows the count, drawn with a cap.
// A host's reaction carries the moment of the stream it reacts to and floats, marked as the
// host's, when this viewer's video reaches that moment.
import type { Reaction, ReactionCounts, RoomClient } from '../rooms-client.ts';
import { REACTIONS } from '../../../core/rooms/room-wire.ts';
import { h, setText } from './dom.ts';
import { REACTION_LABELS, reactionIcon } from './icons.ts';
import type { InStep } from './in-step.ts';

/** Glyphs drawn per reaction per batch, and on screen at once. */
const PER_BATCH = 6;
const MAX_FLOATING = 48;

export class Reactions {
  readonly bar: HTMLElement;
  readonly layer: HTMLElement;
  /** Reactions seen since the page opened (for the counters and tests). */
  readonly totals: Record<string, number> = {};
  private floating = 0;
  private readonly counters = new Map<Reaction, HTMLElement>();

  constructor(room: RoomClient, inStep: InStep | null = null) {
    this.layer = h('div', { class: 'float-layer', 'aria-hidden': 'true', 'data-testid': 'reaction-layer' });
    this.bar = h('div', { class: 'reactions-bar', role: 'toolbar', 'aria-label': 'Reactions' });
    for (const r of REACTIONS) {
      const count = h('span', { class: 'reaction-count' });
      this.counters.set(r, count);
      const b = h(
        'button',
        { class: 'reaction-btn', type: 'button', title: REACTION_LABELS[r], 'aria-label': REACTION_LABELS[r], 'data-reaction': r },
        reactionIcon(r, 26),
        count,
      );
      b.addEventListener('click', () => {
        // A host's reaction is stamped with the frame on screen; the audience's are counted as they come.
        if (!room.react(r, room.you?.role === 'host' ? inStep?.stamp() : undefined)) return;
        b.classList.remove('pop');
        void b.offsetWidth; // restart the animation
        b.classList.add('pop');
      });
      this.bar.appendChild(b);
    }
    room.on('reactions', (counts) => this.burst(counts));
    room.on('host.reaction', (cue) => {
      const show = () => {
        this.count(cue.reaction, 1);
        this.float(cue.reaction, 0, cue.name);
      };
      if (inStep) inStep.at(cue.pdt, show, room.you?.role === 'host' && room.you.name === cue.name);
      else show();
    });
  }

  private count(r: Reaction, n: number): void {
    this.totals[r] = (this.totals[r] ?? 0) + n;
    const c = this.counters.get(r);
    if (c) setText(c, compact(this.totals[r]!));
  }

  private burst(counts: ReactionCounts): void {
    for (const [r, n] of Object.entries(counts) as Array<[Reaction, number]>) {
      this.count(r, n);
      const show = Math.min(n, PER_BATCH);
      for (let i = 0; i < show; i++) setTimeout(() => this.float(r, i === 0 && n > PER_BATCH ? n : 0), i * 90 + Math.random() * 60);
    }
  }

  /** `host`: the host's name, shown beside the glyph of a host's reaction. */
  private float(r: Reaction, label: number, host?: string): void {
    if (this.floating >= MAX_FLOATING) return;
    this.floating++;
    const tag = host ? h('span', { class: 'floater-n floater-host' }) : label ? h('span', { class: 'floater-n' }, `×${label}`) : null;
    if (host && tag) setText(tag, host);
    const el = h('div', { class: `floater${host ? ' from-host' : ''}`, 'data-reaction': r }, reactionIcon(r, 34), tag);
    el.style.setProperty('--x', `${Math.round(Math.random() * 70)}px`);
    el.style.setProperty('--drift', `${Math.round((Math.random() - 0.5) * 60)}px`);
    el.style.setProperty('--dur', `${2.4 + Math.random() * 1.2}s`);
    el.addEventListener('animationend', () => {
      el.remove();
      this.floating--;
    });
    this.layer.appendChild(el);
  }
}

function compact(n: number): string {
  return n >= 1_000_000 ? `${(n / 1_000_000).toFixed(1)}M` : n >= 1000 ? `${(n / 1000).toFixed(1)}k` : String(n);
}
