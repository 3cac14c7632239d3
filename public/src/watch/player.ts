// The low-latency player: hls.js in low-latency mode on one <video>, the stream's info and the
// edge's refusals turned into notices, the media-time ↔ program-date-time map, renditions,
// DVR range and live edge, and the QoE signals. No DOM beyond the video element; the controls,
// overlays and panels listen to it.
import Hls, { type ErrorData, type HlsConfig } from 'hls.js';
import { mediaTimeAtPdt, pdtAtMediaTime, pdtRange, type TimedFragment } from '../../../core/player/pdt-map.ts';
import { ended, network, noticeForResponse, notLive, type PlayerNotice } from '../../../core/player/player-status.ts';
import { playbackUrl } from '../../../core/player/page-params.ts';

export interface StreamInfo {
  id: string;
  title: string;
  status: 'idle' | 'live' | 'ended';
  dvrWindowSeconds: number;
  /** The stream also plays in real time (WebRTC, ./realtime.ts). */
  realtime?: boolean;
}

export interface Rendition {
  /** hls.js level index. */
  index: number;
  name: string;
  height: number;
  bitrate: number;
}

export interface PlayerEvents {
  info: StreamInfo;
  notice: PlayerNotice | null;
  renditions: Rendition[];
  /** The rendition being shown changed (`auto`: chosen by the ABR controller). */
  rendition: { current: Rendition | null; auto: boolean };
  /** Playback started for the first time (first frame shown), with the time since navigation. */
  firstFrame: { ttffMs: number };
  /** Something the controls show changed (time, play state, live window). */
  tick: void;
  error: { kind: string; detail: string; fatal: boolean };
  stall: { stalled: boolean };
}
type Handler<K extends keyof PlayerEvents> = (p: PlayerEvents[K]) => void;

export interface PlayerOptions {
  origin: string;
  streamId: string;
  token: string | null;
  /** Watch-party mode: the party drives position and rate, so hls.js must not adjust the rate. */
  party: boolean;
  video: HTMLVideoElement;
}

/** A start slower than this asks for the stream's info and poster without waiting for the first frame. */
const EXTRAS_AFTER_MS = 1000;

interface ErrorBody {
  error?: { code?: string };
}

export class Player {
  readonly video: HTMLVideoElement;
  readonly opts: PlayerOptions;
  hls: Hls | null = null;
  info: StreamInfo | null = null;
  notice: PlayerNotice | null = null;
  renditions: Rendition[] = [];
  firstFrameAt: number | null = null;
  stalled = false;
  private handlers = new Map<keyof PlayerEvents, Set<(p: never) => void>>();
  private retryTimer: ReturnType<typeof setTimeout> | null = null;
  private mediaRecoveries = 0;
  private lastLevel: number | null = null;

  /** Whether the viewer follows the live edge (false after they scrub back into the DVR window). */
  followLive = true;
  private catchUpUntil = 0;

  constructor(opts: PlayerOptions) {
    this.opts = opts;
    this.video = opts.video;
    this.watchVideo();
    if (!opts.party) setInterval(() => this.catchUp(), 250);
  }

  /**
   * Holds the watch page at hls.js's target latency. hls.js starts on an independent part (one
   * per segment), up to a segment behind its target, and falls back after stalls; then:
   * - in the first seconds after the start or a stall, jump forward inside the buffer (a skip
   *   nobody notices while the picture is just appearing);
   * - otherwise play 8 % faster until back within 50 ms of the target, as long as the buffer
   *   ahead allows it.
   */
  private catchUp(): void {
    const hls = this.hls;
    const v = this.video;
    if (!hls || !this.followLive || !this.live || v.paused || v.seeking || this.stalled || this.firstFrameAt === null) return;
    const target = hls.targetLatency;
    const latency = hls.latency;
    if (target === null || !(latency > 0)) return;
    const excess = latency - target;
    const b = v.buffered;
    const ahead = b.length ? b.end(b.length - 1) - v.currentTime : 0;
    if (excess > 0.25 && performance.now() < this.catchUpUntil && ahead > excess + 0.1) {
      v.currentTime += excess - 0.05;
      return;
    }
    const rate = excess > 0.1 && ahead > 0.3 ? 1.08 : excess < 0.05 || ahead < 0.2 ? 1 : v.playbackRate;
    if (v.playbackRate !== rate) v.playbackRate = rate;
  }

  on<K extends keyof PlayerEvents>(event: K, handler: Handler<K>): () => void {
    let set = this.handlers.get(event);
    if (!set) this.handlers.set(event, (set = new Set()));
    set.add(handler as (p: never) => void);
    return () => set.delete(handler as (p: never) => void);
  }

  private emit<K extends keyof PlayerEvents>(event: K, payload: PlayerEvents[K]): void {
    for (const h of this.handlers.get(event) ?? []) {
      try {
        (h as Handler<K>)(payload);
      } catch (err) {
        console.error('player handler failed', err);
      }
    }
  }

  url(file: string, extra: Record<string, string> = {}): string {
    return playbackUrl(this.opts.origin, this.opts.streamId, file, this.opts.token, extra);
  }

  /**
   * Starts: the playlist first. The stream's info (title, state) and the poster go to the same
   * edge and the same stream's object as the playlists, so they wait until the first frame is
   * shown, the player has something to say (a notice), or a start slower than `EXTRAS_AFTER_MS`,
   * which is also the only case where a poster is worth showing.
   */
  start(): void {
    this.setNotice(null);
    this.extrasAsked = false;
    if (this.extrasTimer) clearTimeout(this.extrasTimer);
    this.extrasTimer = setTimeout(() => this.askExtras(), EXTRAS_AFTER_MS);
    this.load();
  }

  private extrasAsked = false;
  private extrasTimer: ReturnType<typeof setTimeout> | null = null;

  /** Once per start: the stream's info, and the poster while no frame is on screen yet. */
  private askExtras(): void {
    if (this.extrasAsked) return;
    this.extrasAsked = true;
    if (this.extrasTimer) clearTimeout(this.extrasTimer);
    this.extrasTimer = null;
    if (this.firstFrameAt === null) this.video.poster = this.url('thumbnail.jpg');
    void this.refreshInfo();
  }

  /** The viewer's retry button, or the page's own timer. */
  retry(): void {
    if (this.retryTimer) clearTimeout(this.retryTimer);
    this.retryTimer = null;
    this.destroyHls();
    this.start();
  }

  async refreshInfo(): Promise<StreamInfo | null> {
    let res: Response;
    try {
      res = await fetch(this.url('info.json'), { cache: 'no-store' });
    } catch {
      this.fail(network());
      return null;
    }
    if (!res.ok) {
      const body = (await res.json().catch(() => ({}))) as ErrorBody;
      const n = noticeForResponse(res.status, body.error?.code);
      if (n) this.fail(n);
      return null;
    }
    this.info = (await res.json()) as StreamInfo;
    this.emit('info', this.info);
    if (this.info.status === 'idle' && this.firstFrameAt === null) this.fail(notLive());
    return this.info;
  }

  private hlsConfig(): Partial<HlsConfig> {
    return {
      lowLatencyMode: true,
      // hls.js never touches the rate: it only catches up with more than 1 s of buffer ahead,
      // which a low-latency player never has. The watch page catches up itself (catchUp below);
      // a party's controller owns the rate, and two controllers on one rate would fight.
      maxLiveSyncPlaybackRate: 1,
      // Each stall moves the target latency back by this much (hls.js: 1 s), up to one TD.
      liveSyncOnStallIncrease: 0.25,
      // fMP4 parts are passed through, not transmuxed: a worker would only add a hop.
      enableWorker: false,
      backBufferLength: 90,
      // Start on the lowest rendition that fits, switch up as soon as the estimate allows.
      startLevel: -1,
      abrEwmaDefaultEstimate: 1_500_000,
      testBandwidth: false,
      manifestLoadPolicy: {
        default: {
          maxTimeToFirstByteMs: 8000,
          maxLoadTimeMs: 15000,
          timeoutRetry: { maxNumRetry: 1, retryDelayMs: 0, maxRetryDelayMs: 0 },
          // 4xx answers mean something (not live yet, forbidden): no retries, the page decides.
          errorRetry: {
            maxNumRetry: 2,
            retryDelayMs: 500,
            maxRetryDelayMs: 2000,
            shouldRetry: (cfg, count, _timeout, res) =>
              !((res?.code ?? 0) >= 400 && (res?.code ?? 0) < 500) && count < (cfg?.maxNumRetry ?? 0),
          },
        },
      },
    };
  }

  private load(): void {
    if (!Hls.isSupported()) {
      // Safari on iOS: the native player plays LL-HLS itself.
      this.video.src = this.url('index.m3u8');
      return;
    }
    const hls = new Hls(this.hlsConfig());
    this.hls = hls;
    hls.on(Hls.Events.MANIFEST_PARSED, () => {
      this.renditions = hls.levels.map((l, index) => ({
        index,
        name: renditionName(l.uri, l.height),
        height: l.height,
        bitrate: l.bitrate,
      }));
      this.emit('renditions', this.renditions);
    });
    hls.once(Hls.Events.LEVEL_LOADED, (_e, d) => {
      if (d.details.live) {
        this.setNotice(null);
        void this.video.play().catch(() => undefined);
      } else {
        // The broadcast is over; what is left of it plays from the start on request.
        this.setNotice(ended(true));
      }
    });
    hls.on(Hls.Events.LEVEL_SWITCHED, (_e, d) => {
      const current = this.renditions[d.level] ?? null;
      if (this.lastLevel !== d.level && current) {
        const from = this.lastLevel === null ? null : (this.renditions[this.lastLevel]?.name ?? null);
        this.lastLevel = d.level;
        this.emit('rendition', { current, auto: hls.autoLevelEnabled });
        this.switches.push({ from, to: current.name, bitrate: current.bitrate, auto: hls.autoLevelEnabled });
      }
    });
    hls.on(Hls.Events.LEVEL_UPDATED, () => this.emit('tick', undefined));
    hls.on(Hls.Events.ERROR, (_e, d) => this.onHlsError(d));
    hls.loadSource(this.url('index.m3u8'));
    hls.attachMedia(this.video);
  }

  /** Switches and errors the player observed, kept for the QoE recorder (which loads later). */
  readonly switches: Array<{ from: string | null; to: string; bitrate: number; auto: boolean }> = [];
  readonly errorsSeen: Array<{ kind: string; detail: string; fatal: boolean }> = [];

  private async onHlsError(d: ErrorData): Promise<void> {
    const e = { kind: d.type, detail: d.details, fatal: d.fatal };
    if (this.errorsSeen.length < 1000) this.errorsSeen.push(e);
    this.emit('error', e);
    const status = d.response?.code ?? 0;
    if (status === 401 || status === 403 || (status === 404 && d.details === Hls.ErrorDetails.MANIFEST_LOAD_ERROR)) {
      // hls.js keeps the status, not the body: ask the edge again for the reason.
      this.destroyHls();
      const n = await this.explainRefusal();
      this.fail(n ?? network());
      return;
    }
    if (!d.fatal) return;
    if (d.type === Hls.ErrorTypes.MEDIA_ERROR && this.mediaRecoveries < 2) {
      this.mediaRecoveries++;
      this.hls?.recoverMediaError();
      return;
    }
    this.destroyHls();
    this.fail(network());
  }

  private async explainRefusal(): Promise<PlayerNotice | null> {
    try {
      const res = await fetch(this.url('index.m3u8'), { cache: 'no-store' });
      if (res.ok) {
        await res.body?.cancel();
        return null;
      }
      const body = (await res.json().catch(() => ({}))) as ErrorBody;
      return noticeForResponse(res.status, body.error?.code);
    } catch {
      return network();
    }
  }

  private fail(n: PlayerNotice): void {
    // A refusal outranks a network problem; the first notice of a kind stays until retry.
    if (this.notice && this.notice.kind === 'forbidden' && n.kind !== 'forbidden') return;
    if (n.kind === 'forbidden' || n.kind === 'not-found') this.destroyHls();
    this.setNotice(n);
    if (n.retryAfterMs !== null) {
      if (this.retryTimer) clearTimeout(this.retryTimer);
      this.retryTimer = setTimeout(() => {
        this.retryTimer = null;
        if (n.kind === 'not-live') void this.pollUntilLive();
        else this.retry();
      }, n.retryAfterMs);
    }
  }

  private async pollUntilLive(): Promise<void> {
    const info = await this.refreshInfo();
    if (!info) return; // refreshInfo set a notice (and maybe a timer)
    if (info.status === 'idle') return; // refreshInfo re-armed "not live" with its timer
    this.retry();
  }

  private setNotice(n: PlayerNotice | null): void {
    this.notice = n;
    if (n) this.askExtras();
    this.emit('notice', n);
  }

  private destroyHls(): void {
    this.hls?.destroy();
    this.hls = null;
    this.lastLevel = null;
  }

  private watchVideo(): void {
    const v = this.video;
    const firstFrame = (shownAt: number) => {
      if (this.firstFrameAt !== null) return;
      this.firstFrameAt = shownAt;
      this.catchUpUntil = performance.now() + 4000;
      this.askExtras();
      this.emit('firstFrame', { ttffMs: shownAt });
    };
    // requestVideoFrameCallback says when the first frame was actually presented.
    const rvfc = (
      v as HTMLVideoElement & { requestVideoFrameCallback?: (cb: (now: number, m: { presentationTime: number }) => void) => number }
    ).requestVideoFrameCallback;
    if (rvfc) rvfc.call(v, (_now, m) => firstFrame(m.presentationTime));
    else v.addEventListener('playing', () => firstFrame(performance.now()), { once: true });
    v.addEventListener('waiting', () => this.setStalled(true));
    v.addEventListener('playing', () => this.setStalled(false));
    v.addEventListener('pause', () => this.setStalled(false));
    v.addEventListener('ended', () => {
      this.setStalled(false);
      this.setNotice(ended(true));
    });
    for (const e of ['timeupdate', 'play', 'pause', 'seeked', 'ratechange', 'volumechange', 'durationchange'])
      v.addEventListener(e, () => this.emit('tick', undefined));
  }

  private setStalled(stalled: boolean): void {
    if (this.stalled === stalled) return;
    this.stalled = stalled;
    if (!stalled) this.catchUpUntil = performance.now() + 3000;
    this.emit('stall', { stalled });
  }

  // --- time ------------------------------------------------------------------------------------

  private fragments(): TimedFragment[] {
    const hls = this.hls;
    if (!hls) return [];
    const level = hls.levels[hls.currentLevel >= 0 ? hls.currentLevel : hls.loadLevel] ?? hls.levels[0];
    return (level?.details?.fragments ?? []) as TimedFragment[];
  }

  /** The program-date-time (ms) of the frame at the current position. */
  pdtNow(): number | null {
    return this.pdtAt(this.video.currentTime);
  }

  pdtAt(mediaTime: number): number | null {
    return pdtAtMediaTime(this.fragments(), mediaTime);
  }

  mediaTimeAt(pdt: number): number | null {
    return mediaTimeAtPdt(this.fragments(), pdt);
  }

  /** Program-date-time range of the live window (ms). */
  pdtWindow(): { first: number; last: number } | null {
    return pdtRange(this.fragments());
  }

  /**
   * The live edge as the playlist lists it, parts included (where hls.js ends the seekable range):
   * its program-date-time (ms) and the playlist's PART-HOLD-BACK (ms, 0 without one).
   */
  listedEdge(): { pdtMs: number; holdBackMs: number } | null {
    const d = this.hls?.latestLevelDetails;
    const pdtMs = d ? this.pdtAt(d.edge) : null;
    return d && pdtMs !== null ? { pdtMs, holdBackMs: (d.partHoldBack || d.holdBack || 0) * 1000 } : null;
  }

  get live(): boolean {
    return this.hls?.latestLevelDetails?.live ?? this.info?.status === 'live';
  }

  /** Where hls.js would play to be at its target latency. */
  liveEdge(): number | null {
    return this.hls?.liveSyncPosition ?? null;
  }

  /** Seconds behind the live sync position (0 at the edge). */
  behindLive(): number {
    const edge = this.liveEdge();
    return edge === null ? 0 : Math.max(0, edge - this.video.currentTime);
  }

  /** Latency from capture to this frame (s), against the given wall clock (ms). */
  latency(clockNowMs: number): number | null {
    const pdt = this.pdtNow();
    if (pdt === null) return this.hls?.latency ?? null;
    return (clockNowMs - pdt) / 1000;
  }

  /** The seekable range (s) of the DVR window. */
  seekRange(): { start: number; end: number } | null {
    const s = this.video.seekable;
    if (s.length === 0) return null;
    return { start: s.start(0), end: this.liveEdge() ?? s.end(s.length - 1) };
  }

  /** "Watch from the start" after the end. */
  replay(): void {
    this.setNotice(null);
    this.video.currentTime = this.video.seekable.length ? this.video.seekable.start(0) : 0;
    void this.video.play().catch(() => undefined);
  }

  /** The viewer seeks: still following live only if they landed near the edge. */
  seek(t: number): void {
    const edge = this.liveEdge();
    this.followLive = edge === null || edge - t < 3;
    // Catching up stops with following live: a rate left at 1.08 would carry the viewer back.
    if (!this.followLive && !this.opts.party) this.video.playbackRate = 1;
    this.video.currentTime = t;
  }

  goLive(): void {
    this.followLive = true;
    this.catchUpUntil = performance.now() + 3000;
    const edge = this.liveEdge();
    if (edge !== null) this.video.currentTime = edge;
    void this.video.play().catch(() => undefined);
  }

  // --- renditions --------------------------------------------------------------------------------

  get autoLevel(): boolean {
    return this.hls?.autoLevelEnabled ?? true;
  }

  currentRendition(): Rendition | null {
    const i = this.hls?.currentLevel ?? -1;
    return i >= 0 ? (this.renditions[i] ?? null) : null;
  }

  /** -1 for automatic (smooth); a rendition is switched to at once (the buffer is flushed). */
  setRendition(index: number): void {
    if (!this.hls) return;
    if (index === -1) this.hls.nextLevel = -1;
    else this.hls.currentLevel = index;
    this.emit('rendition', { current: this.currentRendition(), auto: index === -1 });
  }
}

/** `360p/index.m3u8?token=…` → `360p`; falls back to the height. */
export function renditionName(uri: string, height: number): string {
  const m = /(?:^|\/)([A-Za-z0-9_-]{1,64})\/index\.m3u8/.exec(uri);
  return m?.[1] ?? (height ? `${height}p` : 'video');
}
