// Real-time mode of the watch page: for a live stream whose `realtime` setting is on, a toggle that
// moves the <video> from LL-HLS (about 0.8 s behind) to WebRTC (WHEP, sub-second). LL-HLS keeps
// playing until the WebRTC session has decoded a frame, so the switch never shows a black screen,
// and the page goes back to LL-HLS by itself when WebRTC cannot connect, the node is full (503) or
// the frames stop; it offers real time again when the refusal says it may. The WHEP client is its
// own bundle, imported on demand: viewers who never switch never load it.
import {
  realtimeFallback,
  REALTIME_FIRST_FRAME_MS,
  REALTIME_STALL_MS,
  type RealtimeProblem,
} from '../../../core/player/realtime-fallback.ts';
import { h, setText } from './dom.ts';
import type { WatchPage } from './page.ts';
import type { WhepSession } from './whep-client.ts';

export type RealtimeState = 'unavailable' | 'off' | 'connecting' | 'on' | 'fallback';

/** The viewer's choice, kept on this device: a viewer who chose real time gets it next time too. */
const PREFERENCE = 'edgelive.realtime';

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/** The WHEP client's content-hashed URL (scripts/build-assets.mjs builds it from ./whep-client.ts). */
declare const __REALTIME_URL__: string;
/** Through a variable, so the bundler leaves the import to the browser (as watch.ts does). */
const REALTIME_URL = __REALTIME_URL__;

export class RealtimeMode {
  state: RealtimeState = 'unavailable';
  /** Why the page plays LL-HLS instead, while it does. */
  message: string | null = null;
  /** ms from the switch request to the first WebRTC frame, for the last session. */
  connectMs: number | null = null;
  readonly el: HTMLElement;
  readonly #page: WatchPage;
  readonly #button: HTMLButtonElement;
  readonly #note: HTMLElement;
  #session: WhepSession | null = null;
  #wanted: boolean;
  #retryTimer: ReturnType<typeof setTimeout> | null = null;
  #retryAt = 0;
  #generation = 0;

  constructor(page: WatchPage) {
    this.#page = page;
    this.#wanted = page.params.realtime || localStorage.getItem(PREFERENCE) === '1';
    this.#button = h(
      'button',
      {
        class: 'realtime-btn',
        type: 'button',
        'aria-pressed': 'false',
        'data-testid': 'realtime',
        title: 'Sub-second latency over WebRTC',
        hidden: true,
      },
      h('span', { class: 'realtime-dot' }),
      'Real-time',
    );
    this.#button.addEventListener('click', () => (this.state === 'on' || this.state === 'connecting' ? this.disable() : this.enable()));
    this.#note = h('span', { class: 'realtime-note', hidden: true, role: 'status' });
    this.el = h('div', { class: 'realtime' }, this.#note, this.#button);
    const player = page.player;
    for (const e of ['info', 'notice', 'firstFrame'] as const) player.on(e, () => this.#refresh());
    this.#refresh();
  }

  /** What the tests and the benchmark read. */
  status(): { state: RealtimeState; message: string | null; connectMs: number | null; resource: string | null } {
    return { state: this.state, message: this.message, connectMs: this.connectMs, resource: this.#session?.resource ?? null };
  }

  /** The session while real time plays (tests read its stats). */
  get session(): WhepSession | null {
    return this.state === 'on' ? this.#session : null;
  }

  enable(): void {
    this.#wanted = true;
    localStorage.setItem(PREFERENCE, '1');
    this.#retryAt = 0;
    void this.#connect();
  }

  disable(): void {
    this.#wanted = false;
    localStorage.setItem(PREFERENCE, '0');
    this.#leave('off', null, null);
  }

  /** Whether the stream offers real time now: its setting, live, nothing refusing the viewer. */
  #offered(): boolean {
    const { player, params } = this.#page;
    return params.mode === 'watch' && player.info?.realtime === true && player.info.status === 'live' && !player.notice;
  }

  #refresh(): void {
    const offered = this.#offered();
    if (!offered && (this.state === 'off' || this.state === 'unavailable')) this.state = 'unavailable';
    else if (offered && this.state === 'unavailable') this.state = 'off';
    if (this.state === 'off' && this.#wanted && Date.now() >= this.#retryAt) void this.#connect();
    this.#render();
  }

  #render(): void {
    const b = this.#button;
    b.hidden = this.state === 'unavailable';
    b.setAttribute('aria-pressed', String(this.state === 'on' || this.state === 'connecting'));
    b.dataset.state = this.state;
    this.#note.hidden = !this.message;
    setText(this.#note, this.message ?? '');
    this.#page.slots.stage.classList.toggle('realtime-on', this.state === 'on');
  }

  async #connect(): Promise<void> {
    if (this.state === 'connecting' || this.state === 'on' || !this.#offered()) return;
    const generation = ++this.#generation;
    const started = performance.now();
    this.state = 'connecting';
    this.message = null;
    this.#render();
    let session: WhepSession;
    try {
      const { startWhep, WhepError } = (await import(REALTIME_URL)) as typeof import('./whep-client.ts');
      session = await startWhep(this.#page.player.url('whep')).catch((err: unknown) => {
        throw err instanceof WhepError
          ? { kind: 'refused', status: err.status, code: err.code, retryAfterMs: err.retryAfterMs }
          : { kind: 'unreachable' };
      });
    } catch (problem) {
      if (generation === this.#generation) this.#fallBack(problem as RealtimeProblem);
      return;
    }
    if (generation !== this.#generation) return session.close();
    this.#session = session;
    // LL-HLS plays on until WebRTC has a decoded frame to show.
    const deadline = performance.now() + REALTIME_FIRST_FRAME_MS;
    for (;;) {
      if (generation !== this.#generation) return;
      const s = session.pc.connectionState;
      if (s === 'failed' || s === 'closed') return this.#fallBack({ kind: 'unreachable' });
      if ((await session.counts()).framesDecoded > 0) break;
      if (performance.now() > deadline) return this.#fallBack({ kind: s === 'connected' ? 'no-media' : 'unreachable' });
      await sleep(50);
    }
    const { player } = this.#page;
    // Hand the element over: hls.js lets go of it, the WebRTC stream takes it.
    player.hls?.destroy();
    player.hls = null;
    player.video.srcObject = session.stream;
    // The LL-HLS catch-up may have left the rate above 1; a WebRTC track plays as it arrives.
    player.video.playbackRate = 1;
    void player.video.play().catch(() => undefined);
    this.connectMs = Math.round(performance.now() - started);
    this.state = 'on';
    this.#render();
    void this.#watch(session, generation);
  }

  /** While real time plays: frames must keep coming and the connection must hold. */
  async #watch(session: WhepSession, generation: number): Promise<void> {
    let frames = -1;
    let movedAt = performance.now();
    while (generation === this.#generation && this.state === 'on') {
      await sleep(500);
      const s = session.pc.connectionState;
      if (s === 'failed' || s === 'closed') return this.#fallBack({ kind: 'lost' });
      const now = (await session.counts()).framesDecoded;
      if (now !== frames) {
        frames = now;
        movedAt = performance.now();
      } else if (performance.now() - movedAt > REALTIME_STALL_MS) return this.#fallBack({ kind: 'lost' });
    }
  }

  #fallBack(problem: RealtimeProblem): void {
    const f = realtimeFallback(problem);
    this.#leave(f.retryAfterMs === null ? 'unavailable' : 'fallback', f.message, f.retryAfterMs);
  }

  /** Back to LL-HLS (if WebRTC had the element), then maybe a later try. */
  #leave(state: RealtimeState, message: string | null, retryAfterMs: number | null): void {
    this.#generation++;
    const { player } = this.#page;
    const hadElement = player.video.srcObject !== null;
    this.#session?.close();
    this.#session = null;
    if (hadElement) {
      player.video.srcObject = null;
      player.retry();
    }
    this.state = state;
    this.message = message;
    if (this.#retryTimer) clearTimeout(this.#retryTimer);
    this.#retryTimer = null;
    // Refused for good (no retry): not again on this page unless the viewer asks.
    this.#retryAt = retryAfterMs === null ? Infinity : Date.now() + retryAfterMs;
    if (retryAfterMs !== null) {
      this.#retryTimer = setTimeout(() => {
        this.#retryTimer = null;
        this.message = null;
        if (this.state === 'fallback') this.state = 'off';
        this.#refresh();
      }, retryAfterMs);
    }
    this.#render();
  }
}

/** Mounts the toggle on the watch page (not in a party: its sync needs the HLS timeline). */
export function mountRealtime(page: WatchPage): RealtimeMode | null {
  if (page.params.mode !== 'watch') return null;
  const mode = new RealtimeMode(page);
  page.slots.stageTopRight.append(mode.el);
  const hooks = (window as unknown as { __edgelive?: Record<string, unknown> }).__edgelive;
  if (hooks) hooks.realtime = mode;
  return mode;
}
