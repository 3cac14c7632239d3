// Polls: the open poll(s) with live tallies (the room sends the whole poll with its counts at
// most once per batch), a vote that can be changed until the poll closes, final results, and for
// moderators and hosts a form to start one and a button to close it. A poll is stamped with the
// moment of the stream its opener was watching and appears when this viewer's video reaches it.
import type { Poll, RoomClient } from '../rooms-client.ts';
import { RoomError } from '../rooms-client.ts';
import { clear, h, setText } from './dom.ts';
import { icon } from './icons.ts';
import type { InStep } from './in-step.ts';

/** Cards shown: the open polls and the latest closed one. */
const SHOWN = 2;

export class Polls {
  readonly el: HTMLElement;
  private readonly room: RoomClient;
  private readonly cards: HTMLElement;
  private readonly composer: HTMLElement;
  private readonly startBtn: HTMLButtonElement;
  private readonly myVotes = new Map<number, number>();
  private staff = false;
  private readonly inStep: InStep | null;
  /** Ids of the cards on screen, to notice a held poll whose moment has come. */
  private shownIds = '';

  constructor(room: RoomClient, inStep: InStep | null = null) {
    this.room = room;
    this.inStep = inStep;
    this.cards = h('div', { class: 'poll-cards', 'data-testid': 'polls' });
    this.composer = h('form', { class: 'poll-form card', hidden: true });
    this.startBtn = h(
      'button',
      { class: 'btn btn-ghost', type: 'button', hidden: true, 'data-testid': 'poll-start' },
      icon('chart', 16),
      'Start a poll',
    );
    this.startBtn.addEventListener('click', () => this.openComposer());
    this.el = h('section', { class: 'polls', 'aria-label': 'Polls' }, this.cards, this.composer, this.startBtn);
    room.on('open', ({ you }) => {
      this.staff = you.role !== 'viewer';
      this.startBtn.hidden = !this.staff || !this.composer.hidden;
      this.render();
    });
    room.on('state', () => this.render());
    room.on('poll', () => this.render());
    setInterval(() => this.tickCountdowns(), 1000);
    if (inStep)
      setInterval(
        () =>
          this.polls()
            .map((p) => p.id)
            .join() !== this.shownIds && this.render(),
        100,
      );
  }

  /** A poll this viewer opened is never held back from them. */
  private isOwn(p: Poll): boolean {
    const you = this.room.you;
    return !!you && you.role !== 'viewer' && p.openedBy === you.name;
  }

  private polls(): Poll[] {
    const all = [...(this.room.state?.polls ?? [])].filter((p) => !this.inStep?.ahead(p.pdt, this.isOwn(p))).sort((a, b) => b.id - a.id);
    const open = all.filter((p) => p.open);
    const closed = all.filter((p) => !p.open).slice(0, Math.max(0, SHOWN - open.length));
    return [...open, ...closed].slice(0, SHOWN);
  }

  render(): void {
    clear(this.cards);
    const shown = this.polls();
    this.shownIds = shown.map((p) => p.id).join();
    for (const p of shown) this.cards.appendChild(this.card(p));
  }

  private card(p: Poll): HTMLElement {
    const total = p.counts.reduce((a, b) => a + b, 0);
    const max = Math.max(...p.counts);
    const mine = this.myVotes.get(p.id);
    const question = h('h3', { class: 'poll-q' });
    setText(question, p.question);
    const status = h('span', {
      class: `poll-status ${p.open ? 'open' : 'closed'}`,
      'data-closes': p.open && p.closesAt ? p.closesAt : null,
    });
    setText(status, p.open ? (p.closesAt ? countdown(p.closesAt) : 'Live poll') : 'Final results');
    const options = h('div', { class: 'poll-options' });
    p.options.forEach((label, i) => {
      const n = p.counts[i] ?? 0;
      const pct = total ? Math.round((n / total) * 100) : 0;
      const text = h('span', { class: 'poll-opt-label' });
      setText(text, label);
      const b = h(
        'button',
        {
          class: `poll-opt${mine === i ? ' chosen' : ''}${!p.open && n === max && total > 0 ? ' winner' : ''}`,
          type: 'button',
          disabled: !p.open,
          'data-option': i,
          'aria-pressed': String(mine === i),
        },
        h('span', { class: 'poll-bar', style: `width:${pct}%` }),
        h('span', { class: 'poll-opt-main' }, mine === i ? icon('check', 14) : null, text),
        h('span', { class: 'poll-opt-num', 'data-testid': 'poll-count' }, `${pct}% · ${n}`),
      );
      b.addEventListener('click', () => {
        this.myVotes.set(p.id, i);
        this.render();
        this.room.vote(p.id, i).catch((err: unknown) => {
          this.myVotes.delete(p.id);
          this.render();
          console.warn('vote failed', err instanceof RoomError ? err.code : err);
        });
      });
      options.appendChild(b);
    });
    const foot = h(
      'div',
      { class: 'poll-foot' },
      h('span', { class: 'poll-total', 'data-testid': 'poll-total' }, `${total} ${total === 1 ? 'vote' : 'votes'}`),
    );
    if (this.staff && p.open) {
      const close = h('button', { class: 'btn btn-small', type: 'button' }, 'End poll');
      close.addEventListener('click', () => void this.room.closePoll(p.id).catch(() => undefined));
      foot.appendChild(close);
    }
    return h(
      'article',
      { class: `card poll${p.open ? '' : ' is-closed'}`, 'data-poll': p.id },
      h('header', { class: 'poll-head' }, h('span', { class: 'poll-kicker' }, icon('chart', 14), 'Poll'), status),
      question,
      options,
      foot,
    );
  }

  private tickCountdowns(): void {
    for (const el of this.cards.querySelectorAll<HTMLElement>('.poll-status[data-closes]'))
      setText(el, countdown(Number(el.dataset.closes)));
  }

  private openComposer(): void {
    const q = h('input', { class: 'field', placeholder: 'Ask the audience…', maxlength: 200, required: true, 'aria-label': 'Question' });
    const opts = h('div', { class: 'poll-form-opts' });
    const addOpt = (value = '') => {
      if (opts.childElementCount >= 10) return;
      opts.appendChild(
        h('input', { class: 'field', placeholder: `Option ${opts.childElementCount + 1}`, maxlength: 80, value, 'aria-label': 'Option' }),
      );
    };
    addOpt();
    addOpt();
    const more = h('button', { class: 'btn btn-small', type: 'button' }, icon('plus', 14), 'Option');
    more.addEventListener('click', () => addOpt());
    const duration = h(
      'select',
      { class: 'field field-select', 'aria-label': 'Duration' },
      h('option', { value: '0' }, 'Until I end it'),
      h('option', { value: '60' }, '1 minute'),
      h('option', { value: '300' }, '5 minutes'),
    );
    const cancel = h('button', { class: 'btn btn-small', type: 'button' }, 'Cancel');
    const submit = h('button', { class: 'btn btn-primary btn-small', type: 'submit' }, 'Start poll');
    const close = () => {
      this.composer.hidden = true;
      this.startBtn.hidden = !this.staff;
    };
    cancel.addEventListener('click', close);
    this.composer.replaceChildren(
      h('div', { class: 'poll-form-title' }, icon('chart', 16), 'New poll'),
      q,
      opts,
      h('div', { class: 'poll-form-row' }, more, duration, h('span', { class: 'spacer' }), cancel, submit),
    );
    this.composer.onsubmit = (e) => {
      e.preventDefault();
      const options = [...opts.querySelectorAll('input')].map((i) => i.value.trim()).filter(Boolean);
      if (!q.value.trim() || options.length < 2) return;
      const secs = Number(duration.value);
      this.room
        .openPoll(q.value.trim(), options, secs || undefined, this.inStep?.stamp())
        .then(close, (err: unknown) => console.warn('poll failed', err));
    };
    this.composer.hidden = false;
    this.startBtn.hidden = true;
    q.focus();
  }
}

function countdown(closesAt: number): string {
  const s = Math.max(0, Math.round((closesAt - Date.now()) / 1000));
  return `Ends in ${Math.floor(s / 60)}:${String(s % 60).padStart(2, '0')}`;
}
