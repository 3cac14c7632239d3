// The watch party in the page: every member — the host included — follows the room's playback
// state (where the party is, by program-date-time, on the room clock). The host's play, pause and
// seek become `playback.set` commands that start a little in the future, so every player can
// seek and be ready, and all start at the same room time. Between commands a small loop
// measures this player's error against the party and applies decideSync (core/party-sync.ts):
// nudge playbackRate for small errors, rendezvous for large ones. The host also holds the party
// back when it runs too close to the live edge for its members to meet it (decideEdgeHold).
import type { PlaybackState, RoomClient } from '../rooms-client.ts';
import {
  SYNC_THRESHOLDS,
  decideEdgeHold,
  decideSync,
  edgeSpeed,
  followRate,
  nextLead,
  partyPdtAt,
  wrapPdt,
  type SyncDecision,
} from '../../../core/player/party-sync.ts';
import type { ControlIntents } from '../watch/controls.ts';
import type { WatchPage } from '../watch/page.ts';
import type { Player } from '../watch/player.ts';

const LOOP_MS = 50;
/** Host commands start this far ahead: a play inside the buffer, a seek that may load media. */
const PLAY_LEAD_MS = 400;
const SEEK_LEAD_MS = 1200;
/**
 * A party starts by holding the host's frame this long: the party then runs this much further
 * from the live edge than the host was, which is the slack every member needs to seek to the
 * party's position and buffer it (a party at the very edge would leave nothing to seek to).
 */
const START_HOLD_MS = 1500;
const HAVE_FUTURE_DATA = 3;
/** Samples of the live edge kept for its speed (one a step: 8 s at 50 ms). */
const EDGE_SAMPLES = 160;

export type PartyMode = 'waiting-host' | 'seeking' | 'waiting-start' | 'syncing' | 'in-sync' | 'paused';

export interface PartyStatus {
  errorMs: number | null;
  state: PartyMode;
  version: number | null;
  leadMs: number;
}

export class PartySync {
  readonly room: RoomClient;
  readonly player: Player;
  private readonly page: WatchPage;
  private mode: PartyMode = 'waiting-host';
  private errorMs: number | null = null;
  /** Rendezvous lead this player has learned (ms). */
  private leadMs: number = SYNC_THRESHOLDS.defaultLeadMs;
  /** How long play() takes to move the clock here (ms), learned from the first error after a start. */
  private playLatencyMs = 0;
  private gen = 0;
  private busy = false;
  private busyVersion: number | null = null;
  private measureStartAt: number | null = null;
  private published = false;
  /** The live edge over the last seconds (room time, PDT), for how fast the ladder delivers. */
  private readonly edgeSamples: Array<{ roomMs: number; pdtMs: number }> = [];
  /** The party version a hold was sent against (one hold per version), and whether one is in flight. */
  private heldVersion: number | null = null;
  private holding = false;
  private readonly listeners = new Set<(s: PartyStatus) => void>();
  /** The last decisions taken, with the room time (for the sync indicator's tooltip and tests). */
  readonly trace: Array<{ at: number; what: string }> = [];

  constructor(page: WatchPage) {
    if (!page.room) throw new Error('a watch party needs a room');
    this.page = page;
    this.room = page.room;
    this.player = page.player;
    this.room.on('playback', () => this.step());
    this.room.on('state', () => this.step());
    this.room.on('open', ({ you }) => this.page.controls.setIntents(you.role === 'host' ? this.hostIntents() : null));
    this.player.on('firstFrame', () => this.maybeStartParty());
    setInterval(() => this.step(), LOOP_MS);
  }

  get isHost(): boolean {
    return this.room.you?.role === 'host';
  }

  onStatus(fn: (s: PartyStatus) => void): void {
    this.listeners.add(fn);
  }

  status(): PartyStatus {
    return { errorMs: this.errorMs, state: this.mode, version: this.room.state?.playback?.version ?? null, leadMs: this.leadMs };
  }

  private note(what: string): void {
    this.trace.push({ at: Math.round(this.room.roomNow()), what });
    if (this.trace.length > 100) this.trace.shift();
  }

  private setMode(m: PartyMode, errorMs: number | null): void {
    this.mode = m;
    this.errorMs = errorMs;
    for (const fn of this.listeners) fn(this.status());
  }

  /** The host's first frame starts the party where the host is, if nobody has yet. */
  private maybeStartParty(): void {
    if (!this.isHost || this.published || this.room.state?.playback) return;
    // Only once the host's own video shows frames: before that its position is not where it will play.
    if (this.player.firstFrameAt === null || this.player.video.paused || this.player.video.seeking) return;
    const pdt = this.player.pdtNow();
    if (pdt === null) return;
    this.published = true;
    void this.room
      .setPlayback({ playing: true, position: wrapPdt(pdt), rate: 1, at: Math.round(this.room.roomNow() + START_HOLD_MS) })
      .catch(() => (this.published = false));
  }

  // --- host ------------------------------------------------------------------------------------

  private partyPdtNow(): number | null {
    const s = this.room.state?.playback;
    return s ? partyPdtAt(s, this.room.roomNow()) : this.player.pdtNow();
  }

  private command(playing: boolean, pdt: number | null, leadMs: number): void {
    if (pdt === null) return;
    const at = Math.round(this.room.roomNow() + (playing ? leadMs : 0));
    void this.room
      .setPlayback({ playing, position: wrapPdt(pdt), rate: 1, at })
      .catch((err: unknown) => console.warn('playback.set refused', err));
  }

  hostIntents(): ControlIntents {
    return {
      play: () => this.command(true, this.partyPdtNow(), PLAY_LEAD_MS),
      pause: () => this.command(false, this.partyPdtNow(), 0),
      seek: (t) => this.command(this.room.state?.playback?.playing ?? true, this.player.pdtAt(t), SEEK_LEAD_MS),
      goLive: () => {
        const edge = this.player.liveEdge();
        this.command(true, edge === null ? null : this.player.pdtAt(edge), SEEK_LEAD_MS);
      },
    };
  }

  // --- everyone --------------------------------------------------------------------------------

  private step(): void {
    const state = this.room.state?.playback ?? null;
    if (!state) {
      this.maybeStartParty();
      if (this.mode !== 'waiting-host') this.setMode('waiting-host', null);
      return;
    }
    const now = this.room.roomNow();
    const edge = this.player.listedEdge();
    if (edge) {
      this.edgeSamples.push({ roomMs: now, pdtMs: edge.pdtMs });
      if (this.edgeSamples.length > EDGE_SAMPLES) this.edgeSamples.shift();
    }
    // Before the busy check: a hold is extended while the host's own page waits for its start.
    if (this.isHost && edge) this.holdAtEdge(state, now, edge);
    if (this.busy) {
      // A newer command replaces a rendezvous in progress.
      if (this.busyVersion === state.version) return;
      this.gen++;
      this.busy = false;
    }
    const v = this.player.video;
    const d = decideSync(
      state,
      now,
      { pdtMs: this.player.pdtNow(), availablePdtMs: edge?.pdtMs ?? null, paused: v.paused, playbackRate: v.playbackRate },
      this.leadMs,
    );
    this.apply(d, state, now);
  }

  /** The host holds the party back from the live edge when the ladder falls behind it. */
  private holdAtEdge(state: PlaybackState, now: number, edge: { pdtMs: number; holdBackMs: number }): void {
    if (this.holding || this.heldVersion === state.version || !this.player.live) return;
    const hold = decideEdgeHold(
      state,
      now,
      { pdtMs: edge.pdtMs, holdBackMs: edge.holdBackMs || SYNC_THRESHOLDS.defaultHoldBackMs, speed: edgeSpeed(this.edgeSamples) },
      this.leadMs,
    );
    if (!hold) return;
    this.holding = true;
    this.heldVersion = state.version;
    this.note(`hold at the live edge until ${Math.round(hold.startAtRoomMs - now)} ms from now`);
    void this.room
      .setPlayback({ playing: true, position: wrapPdt(hold.pdtMs), rate: state.rate, at: hold.startAtRoomMs })
      .catch((err: unknown) => {
        this.heldVersion = null;
        console.warn('playback.set refused', err);
      })
      .finally(() => (this.holding = false));
  }

  private apply(d: SyncDecision, state: PlaybackState, now: number): void {
    const v = this.player.video;
    switch (d.kind) {
      case 'unknown':
        return;
      case 'paused':
        if (!v.paused) v.pause();
        if (d.seek && !v.seeking) {
          const t = this.player.mediaTimeAt(d.pdtMs);
          if (t !== null) v.currentTime = t;
        }
        this.setMode('paused', d.errorMs);
        return;
      case 'rendezvous':
        void this.rendezvous(d.pdtMs, d.startAtRoomMs, state.version, !d.short);
        return;
      case 'edge': {
        // The party is where this player has no media yet: play on as near to it as it can and
        // wait for the host to hold the party back (a seek past the edge would land short).
        const t = this.player.mediaTimeAt(d.reachPdtMs);
        if (t !== null && !v.seeking && t - v.currentTime > SYNC_THRESHOLDS.seekMs / 1000) v.currentTime = t;
        if (v.paused) void v.play().catch(() => undefined);
        const rate = followRate(state.rate, 0);
        if (v.playbackRate !== rate) v.playbackRate = rate;
        if (this.mode !== 'syncing') this.note(`at the live edge, ${Math.round(d.errorMs)} ms from the party`);
        this.setMode('syncing', d.errorMs);
        return;
      }
      case 'rate': {
        if (d.apply) v.playbackRate = d.rate;
        this.learnPlayLatency(d.errorMs, now);
        this.setMode(Math.abs(d.errorMs) <= 10 ? 'in-sync' : 'syncing', d.errorMs);
        return;
      }
    }
  }

  private async sleepUntil(roomMs: number): Promise<void> {
    const ahead = roomMs - this.room.roomNow();
    if (ahead > SPIN_MS) await sleep(ahead - SPIN_MS);
    const giveUp = performance.now() + SPIN_MS + 5;
    while (this.room.roomNow() < roomMs && performance.now() < giveUp) {
      /* spin: at most ~SPIN_MS of the main thread, once per command */
    }
  }

  /** The first error measured a moment after a start says how late play() really starts here. */
  private learnPlayLatency(errorMs: number, now: number): void {
    if (this.measureStartAt === null || now < this.measureStartAt) return;
    this.measureStartAt = null;
    // Behind (negative error) by the time the clock took to start; keep a smoothed estimate.
    this.playLatencyMs = Math.min(250, Math.max(0, this.playLatencyMs + -errorMs * 0.7));
  }

  /** `learn`: the rendezvous had the learned lead, so a late start means it needs a longer one. */
  private async rendezvous(pdtMs: number, startAtRoomMs: number, version: number, learn: boolean): Promise<void> {
    const gen = ++this.gen;
    this.busy = true;
    this.busyVersion = version;
    const v = this.player.video;
    const stale = () => gen !== this.gen;
    const began = this.room.roomNow();
    this.note(`rendezvous v${version} in ${Math.round(startAtRoomMs - began)} ms`);
    try {
      this.setMode('seeking', this.errorMs);
      v.pause();
      // Start on the time-stretching path already (see SYNC_THRESHOLDS): never exactly the base rate.
      v.playbackRate = followRate(this.room.state?.playback?.rate ?? 1, 0);
      // Seek twice if needed: the first seek may load the fragment, whose parsed timestamps refine
      // the media-time ↔ PDT map.
      for (let i = 0; i < 2; i++) {
        const t = this.player.mediaTimeAt(pdtMs);
        if (t === null || stale()) return;
        if (Math.abs(v.currentTime - t) > 0.0005) {
          v.currentTime = t;
          await waitFor(v, () => !v.seeking, Math.max(500, startAtRoomMs - this.room.roomNow()));
        }
        await waitFor(v, () => v.readyState >= HAVE_FUTURE_DATA, Math.max(200, startAtRoomMs - this.room.roomNow() - 20));
        if (stale()) return;
      }
      this.setMode('waiting-start', this.errorMs);
      const ready = this.room.roomNow();
      const wait = startAtRoomMs - ready - this.playLatencyMs;
      if (learn) this.leadMs = nextLead(this.leadMs, -wait, ready - began);
      if (wait < 0) {
        // Not ready in time: next time start further ahead. A little late, play now and let the
        // rate absorb it; much too late, the next step starts a new rendezvous.
        this.note(`late by ${Math.round(-wait)} ms (readyState ${v.readyState}); lead now ${this.leadMs} ms`);
        if (-wait >= SYNC_THRESHOLDS.seekMs) return;
      }
      await this.sleepUntil(startAtRoomMs - this.playLatencyMs);
      if (stale()) return;
      void v.play().catch(() => undefined);
      this.note(`play at ${Math.round(this.room.roomNow() - startAtRoomMs)} ms from the start time`);
      this.measureStartAt = startAtRoomMs + 300;
    } finally {
      if (gen === this.gen) this.busy = false;
    }
  }
}

function sleep(ms: number): Promise<void> {
  return new Promise((r) => setTimeout(r, Math.max(0, ms)));
}

/** Timers fire late by a few ms (more on a busy page): sleep to just before, then spin the rest. */
const SPIN_MS = 12;

/** Resolves when `cond` holds (checked on media events and every 20 ms) or after `timeoutMs`. */
function waitFor(v: HTMLVideoElement, cond: () => boolean, timeoutMs: number): Promise<boolean> {
  if (cond()) return Promise.resolve(true);
  return new Promise((resolve) => {
    const events = ['seeked', 'canplay', 'canplaythrough', 'progress', 'loadeddata'];
    const check = () => {
      if (!cond()) return;
      done(true);
    };
    const timer = setInterval(check, 20);
    const deadline = setTimeout(() => done(false), timeoutMs);
    const done = (ok: boolean) => {
      clearInterval(timer);
      clearTimeout(deadline);
      for (const e of events) v.removeEventListener(e, check);
      resolve(ok);
    };
    for (const e of events) v.addEventListener(e, check);
  });
}
