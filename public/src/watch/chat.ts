// The chat panel: history, new messages, deletions (a deleted message vanishes for everyone),
// moderator tools, slow mode, and the spoiler-free option — a message sent at a moment of the
// stream the video has not shown yet waits until it has. Text is set with textContent only.
import type { ChatMessage, RoomClient, RoomSnapshot } from '../rooms-client.ts';
import { RoomError } from '../rooms-client.ts';
import { aheadOfPicture, stampOf } from '../../../core/player/in-step.ts';
import { h, hueFor, setText } from './dom.ts';
import { icon } from './icons.ts';

export interface ChatOptions {
  room: RoomClient;
  /** PDT (ms) of the frame on screen, null when unknown. */
  pdtNow: () => number | null;
  /** Initial state of "sync chat to video". */
  sync: boolean;
}

const NEAR_BOTTOM_PX = 48;
const MAX_SHOWN = 200;

const ERROR_TEXT: Record<string, string> = {
  slow_mode: 'Slow mode is on: wait a moment before your next message.',
  muted: 'A moderator has muted you for now.',
  banned: 'You were removed from this chat.',
  rate_limited: 'You are sending messages too fast.',
  invalid_message: 'That message cannot be sent.',
  unavailable: 'Chat is reconnecting…',
  forbidden: 'You are not allowed to do that.',
};

export class ChatPanel {
  readonly el: HTMLElement;
  private readonly o: ChatOptions;
  private readonly list: HTMLElement;
  private readonly input: HTMLTextAreaElement;
  private readonly sendBtn: HTMLButtonElement;
  private readonly status: HTMLElement;
  private readonly who: HTMLElement;
  private readonly heldNote: HTMLElement;
  private readonly slowNote: HTMLElement;
  private readonly newPill: HTMLButtonElement;
  private readonly syncToggle: HTMLInputElement;
  private readonly shown = new Map<number, HTMLElement>();
  private held: ChatMessage[] = [];
  private statusTimer: ReturnType<typeof setTimeout> | null = null;

  constructor(o: ChatOptions) {
    this.o = o;
    this.list = h('ol', { class: 'chat-list', 'data-testid': 'chat-list', 'aria-live': 'polite' });
    this.input = h('textarea', {
      class: 'chat-input',
      rows: 1,
      maxlength: 500,
      placeholder: 'Say something…',
      'aria-label': 'Chat message',
      'data-testid': 'chat-input',
      disabled: true,
    });
    this.sendBtn = h(
      'button',
      { class: 'send-btn', type: 'button', 'aria-label': 'Send', 'data-testid': 'chat-send', disabled: true },
      icon('send', 18),
    );
    this.status = h('div', { class: 'chat-status', hidden: true });
    this.who = h('div', { class: 'chat-who' });
    this.heldNote = h('div', { class: 'chat-held', hidden: true });
    this.slowNote = h('div', { class: 'chat-slow', hidden: true });
    this.newPill = h('button', { class: 'new-pill', type: 'button', hidden: true }, 'New messages');
    this.newPill.addEventListener('click', () => this.scrollToEnd());
    this.syncToggle = h('input', { type: 'checkbox', class: 'switch', 'data-testid': 'chat-sync', checked: o.sync });
    this.syncToggle.addEventListener('change', () => this.flushHeld(true));

    const form = h('form', { class: 'chat-form' }, this.input, this.sendBtn);
    form.addEventListener('submit', (e) => {
      e.preventDefault();
      void this.send();
    });
    this.sendBtn.addEventListener('click', () => void this.send());
    this.input.addEventListener('keydown', (e) => {
      if (e.key === 'Enter' && !e.shiftKey) {
        e.preventDefault();
        void this.send();
      }
    });
    this.list.addEventListener('scroll', () => {
      if (this.nearBottom()) this.newPill.hidden = true;
    });

    this.el = h(
      'section',
      { class: 'panel chat', 'aria-label': 'Live chat' },
      h(
        'header',
        { class: 'panel-head' },
        h('div', { class: 'panel-title' }, icon('chat', 16), 'Live chat'),
        h(
          'label',
          {
            class: 'sync-label',
            title: 'Hold messages until your video reaches the moment they were sent, so chat never spoils what you have not seen',
          },
          this.syncToggle,
          h('span', {}, 'Sync to video'),
        ),
      ),
      this.slowNote,
      h('div', { class: 'chat-body' }, this.list, this.newPill),
      this.heldNote,
      h('div', { class: 'chat-compose' }, this.status, form, this.who),
    );

    const room = o.room;
    room.on('state', (s) => this.replace(s));
    room.on('chat', (m) => this.add(m));
    room.on('chat.delete', ({ id }) => this.remove(id));
    room.on('slow', ({ seconds }) => this.setSlow(seconds));
    room.on('open', ({ you }) => {
      this.input.disabled = false;
      this.sendBtn.disabled = false;
      this.who.replaceChildren('Chatting as ', this.nameEl(you.name, you.role));
      this.el.classList.toggle('can-moderate', you.role !== 'viewer');
      this.setStatus(null);
    });
    room.on('close', ({ willReconnect, reason }) => {
      this.input.disabled = true;
      this.sendBtn.disabled = true;
      this.setStatus(willReconnect ? 'Reconnecting to chat…' : `Chat is unavailable${reason ? `: ${reason}` : ''}`, !willReconnect);
    });
    room.on('error', ({ code }) => this.setStatus(ERROR_TEXT[code] ?? `Chat error: ${code}`));
    setInterval(() => this.flushHeld(false), 200);
  }

  get syncEnabled(): boolean {
    return this.syncToggle.checked;
  }

  private nameEl(name: string, role: ChatMessage['role']): HTMLElement {
    const el = h('span', { class: `chat-name role-${role}` });
    el.style.setProperty('--hue', String(hueFor(name)));
    if (role !== 'viewer') el.append(icon(role === 'host' ? 'crown' : 'shield', 12));
    el.append(document.createTextNode(name));
    return el;
  }

  private replace(s: RoomSnapshot): void {
    // A snapshot carries the last messages: keep what is shown and still present, add the rest.
    const ids = new Set(s.history.map((m) => m.id));
    for (const id of [...this.shown.keys()]) if (!ids.has(id)) this.remove(id);
    this.held = this.held.filter((m) => ids.has(m.id));
    for (const m of s.history) this.add(m, true);
    this.setSlow(s.slowModeSec);
    this.scrollToEnd();
  }

  private isAhead(m: ChatMessage): boolean {
    return aheadOfPicture(m.pdt, this.o.pdtNow(), { enabled: this.syncEnabled, own: m.uid === this.o.room.you?.uid });
  }

  private add(m: ChatMessage, quiet = false): void {
    if (this.shown.has(m.id) || this.held.some((x) => x.id === m.id)) return;
    if (this.isAhead(m)) {
      this.held.push(m);
      this.updateHeld();
      return;
    }
    this.show(m, quiet);
  }

  private show(m: ChatMessage, quiet: boolean): void {
    const stick = this.nearBottom();
    const text = h('span', { class: 'chat-text' });
    setText(text, m.text);
    const time = h('time', { class: 'chat-time', datetime: new Date(m.ts).toISOString() });
    setText(time, new Date(m.ts).toLocaleTimeString([], { hour: '2-digit', minute: '2-digit' }));
    const li = h(
      'li',
      { class: `chat-msg${m.uid === this.o.room.you?.uid ? ' mine' : ''}`, 'data-id': m.id },
      h('div', { class: 'chat-line' }, this.nameEl(m.name, m.role), text),
      time,
      this.modTools(m),
    );
    // Messages arrive in id order except when held ones are released: insert in order.
    let beforeId = Infinity;
    for (const id of this.shown.keys()) if (id > m.id && id < beforeId) beforeId = id;
    this.list.insertBefore(li, this.shown.get(beforeId) ?? null);
    this.shown.set(m.id, li);
    while (this.shown.size > MAX_SHOWN) this.remove(Math.min(...this.shown.keys()));
    if (stick || quiet) this.scrollToEnd();
    else this.newPill.hidden = false;
  }

  private modTools(m: ChatMessage): HTMLElement | null {
    const you = this.o.room.you;
    if (!you || m.uid === you.uid) return h('div', { class: 'mod-tools' });
    const act = (label: string, name: 'trash' | 'timer' | 'ban', fn: () => Promise<void>) => {
      const b = h('button', { class: 'mod-btn', type: 'button', title: label, 'aria-label': label, 'data-action': name }, icon(name, 14));
      b.addEventListener('click', () => {
        fn().catch((err: unknown) => this.setStatus(err instanceof RoomError ? (ERROR_TEXT[err.code] ?? err.message) : String(err)));
      });
      return b;
    };
    return h(
      'div',
      { class: 'mod-tools' },
      act('Delete message', 'trash', () => this.o.room.deleteMessage(m.id)),
      act('Time out for 5 minutes', 'timer', () => this.o.room.mute(m.uid, 300)),
      act('Ban from chat', 'ban', () => this.o.room.ban(m.uid)),
    );
  }

  private remove(id: number): void {
    const el = this.shown.get(id);
    if (el) {
      el.remove();
      this.shown.delete(id);
    }
    const before = this.held.length;
    this.held = this.held.filter((m) => m.id !== id);
    if (this.held.length !== before) this.updateHeld();
  }

  private flushHeld(all: boolean): void {
    if (this.held.length === 0) return;
    const ready = all || !this.syncEnabled ? this.held : this.held.filter((m) => !this.isAhead(m));
    if (ready.length === 0) return;
    this.held = this.held.filter((m) => !ready.includes(m));
    for (const m of ready.sort((a, b) => a.id - b.id)) this.show(m, false);
    this.updateHeld();
  }

  private updateHeld(): void {
    this.heldNote.hidden = this.held.length === 0;
    setText(
      this.heldNote,
      this.held.length === 1
        ? '1 message is waiting for your video to catch up'
        : `${this.held.length} messages are waiting for your video to catch up`,
    );
  }

  private setSlow(seconds: number): void {
    this.slowNote.hidden = seconds <= 0;
    setText(this.slowNote, `Slow mode: one message every ${seconds} s`);
  }

  private setStatus(text: string | null, sticky = false): void {
    if (this.statusTimer) clearTimeout(this.statusTimer);
    this.status.hidden = !text;
    setText(this.status, text ?? '');
    if (text && !sticky) this.statusTimer = setTimeout(() => (this.status.hidden = true), 5000);
  }

  private nearBottom(): boolean {
    return this.list.scrollHeight - this.list.scrollTop - this.list.clientHeight < NEAR_BOTTOM_PX;
  }

  private scrollToEnd(): void {
    this.list.scrollTop = this.list.scrollHeight;
    this.newPill.hidden = true;
  }

  private async send(): Promise<void> {
    const text = this.input.value.trim();
    if (!text || this.input.disabled) return;
    this.input.value = '';
    try {
      const pdt = stampOf(this.o.pdtNow());
      await this.o.room.chat(text, pdt !== undefined ? { pdt } : {});
    } catch (err) {
      if (!this.input.value) this.input.value = text;
      this.setStatus(err instanceof RoomError ? (ERROR_TEXT[err.code] ?? err.message) : 'Could not send');
    }
  }
}
