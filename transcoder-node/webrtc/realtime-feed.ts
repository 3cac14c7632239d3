// The real-time feed of one stream on this node: the ladder's extra outputs (one H.264 encode of the
// top rung with a short GOP, one Opus encode: ladder.ts `realtime`) arrive as RTP on two loopback
// UDP ports, are made one continuous flow per kind (rtp-forward.ts) and handed to every WHEP viewer
// of the stream. One encode, fanned out: a viewer costs a copy of each packet, never an encode.
// `RealtimeFeeds` keeps one feed per stream across its ladders (a reconnection, a shed rung), so
// viewers stay connected while the publisher comes back.
import { createSocket, type Socket } from 'node:dgram';
import type { Logger } from '../log.ts';
import { isRtcp, RtpContinuity, startsH264Keyframe } from './rtp-forward.ts';
import type { MediaKind } from './sdp.ts';

/** What a feed hands its viewers: one packet of `kind`, already continuous (only read it or copy it). */
export interface FeedSink {
  deliver(kind: MediaKind, packet: Buffer, keyframeStart: boolean): void;
  /** The feed is gone (the stream ended or left this node). */
  feedClosed(reason: string): void;
}

export interface FeedPorts {
  video: number;
  audio: number;
}

export interface FeedStats {
  videoPackets: number;
  audioPackets: number;
  keyframes: number;
  /** Source flows seen per kind: 1 + the ladders that started after the first. */
  videoSources: number;
  /** ms since the last video packet (null before the first). */
  videoIdleMs: number | null;
}

const CLOCK = { video: 90_000, audio: 48_000 } as const;
/** Receive buffer of each port: a few hundred ms of a 5 Mbit/s stream, for an event loop that stalls. */
const RECEIVE_BUFFER_BYTES = 4 * 1024 * 1024;

export class RealtimeFeed {
  readonly streamId: string;
  readonly ports: FeedPorts;
  readonly #sockets: Record<MediaKind, Socket>;
  readonly #continuity = { video: new RtpContinuity(CLOCK.video), audio: new RtpContinuity(CLOCK.audio) };
  readonly #sinks = new Set<FeedSink>();
  #closed = false;
  #stats = { videoPackets: 0, audioPackets: 0, keyframes: 0, lastVideoAt: 0 };

  private constructor(streamId: string, sockets: Record<MediaKind, Socket>) {
    this.streamId = streamId;
    this.#sockets = sockets;
    this.ports = { video: sockets.video.address().port, audio: sockets.audio.address().port };
    for (const kind of ['video', 'audio'] as const) {
      sockets[kind].on('message', (packet, from) => {
        // Only the ladder on this machine sends here.
        if (from.address !== '127.0.0.1') return;
        this.#receive(kind, packet);
      });
    }
  }

  /** Binds the two loopback ports. */
  static async open(streamId: string, logger: Logger): Promise<RealtimeFeed> {
    const bind = () =>
      new Promise<Socket>((resolve, reject) => {
        const socket = createSocket('udp4');
        socket.once('error', reject);
        socket.bind(0, '127.0.0.1', () => {
          socket.off('error', reject);
          socket.on('error', (err) => logger.warn('realtime feed socket error', { streamId, error: err }));
          try {
            socket.setRecvBufferSize(RECEIVE_BUFFER_BYTES);
          } catch {
            // The kernel's limit (net.core.rmem_max) applies: a smaller buffer still works.
          }
          resolve(socket);
        });
      });
    const [video, audio] = await Promise.all([bind(), bind()]);
    return new RealtimeFeed(streamId, { video, audio });
  }

  get closed(): boolean {
    return this.#closed;
  }

  get viewers(): number {
    return this.#sinks.size;
  }

  add(sink: FeedSink): void {
    if (this.#closed) throw new Error('the feed is closed');
    this.#sinks.add(sink);
  }

  remove(sink: FeedSink): void {
    this.#sinks.delete(sink);
  }

  stats(now = performance.now()): FeedStats {
    return {
      videoPackets: this.#stats.videoPackets,
      audioPackets: this.#stats.audioPackets,
      keyframes: this.#stats.keyframes,
      videoSources: this.#continuity.video.sources,
      videoIdleMs: this.#stats.lastVideoAt ? Math.round(now - this.#stats.lastVideoAt) : null,
    };
  }

  /** Closes the ports and tells every viewer. */
  close(reason: string): void {
    if (this.#closed) return;
    this.#closed = true;
    for (const s of Object.values(this.#sockets)) s.close();
    for (const sink of [...this.#sinks]) sink.feedClosed(reason);
    this.#sinks.clear();
  }

  #receive(kind: MediaKind, packet: Buffer): void {
    // ffmpeg runs with skip_rtcp; anything else that is not RTP is not ours to forward.
    if (isRtcp(packet)) return;
    const now = performance.now();
    if (!this.#continuity[kind].rewrite(packet, now)) return;
    let keyframe = false;
    if (kind === 'video') {
      this.#stats.videoPackets++;
      this.#stats.lastVideoAt = now;
      keyframe = startsH264Keyframe(packet);
      if (keyframe) this.#stats.keyframes++;
    } else this.#stats.audioPackets++;
    for (const sink of this.#sinks) sink.deliver(kind, packet, keyframe);
  }
}

/** The feeds of this node, one per stream, held by the stream's publisher pipelines. */
export class RealtimeFeeds {
  readonly #log: Logger;
  /** A feed whose last holder let go stays this long (ms), so a publisher reconnecting keeps its viewers. */
  readonly #graceMs: number;
  readonly #entries = new Map<string, { feed: Promise<RealtimeFeed>; holders: number; closeTimer: NodeJS.Timeout | null }>();

  constructor(opts: { logger: Logger; graceMs?: number }) {
    this.#log = opts.logger;
    this.#graceMs = opts.graceMs ?? 10_000;
  }

  /** The stream's feed, opened on first use; every acquire is paired with a release. */
  acquire(streamId: string): Promise<RealtimeFeed> {
    let entry = this.#entries.get(streamId);
    if (!entry) {
      const feed = RealtimeFeed.open(streamId, this.#log);
      entry = { feed, holders: 0, closeTimer: null };
      this.#entries.set(streamId, entry);
      const opened = entry;
      feed.then(
        (f) => this.#log.info('realtime feed opened', { streamId, ports: f.ports }),
        (err: unknown) => {
          this.#log.error('realtime feed could not open', { streamId, error: err });
          if (this.#entries.get(streamId) === opened) this.#entries.delete(streamId);
        },
      );
    }
    if (entry.closeTimer) clearTimeout(entry.closeTimer);
    entry.closeTimer = null;
    entry.holders++;
    return entry.feed;
  }

  release(streamId: string, reason: string): void {
    const entry = this.#entries.get(streamId);
    if (!entry || --entry.holders > 0) return;
    entry.closeTimer = setTimeout(() => {
      if (this.#entries.get(streamId) !== entry || entry.holders > 0) return;
      this.#entries.delete(streamId);
      void entry.feed.then(
        (f) => {
          this.#log.info('realtime feed closed', { streamId, reason, viewers: f.viewers });
          f.close(reason);
        },
        () => undefined,
      );
    }, this.#graceMs);
  }

  /** The stream's feed while a ladder holds it (none in the grace after the last one let go). */
  async held(streamId: string): Promise<RealtimeFeed | null> {
    const entry = this.#entries.get(streamId);
    if (!entry || entry.holders === 0) return null;
    return entry.feed.catch(() => null);
  }

  /** Open feeds (health). */
  async list(): Promise<Array<{ streamId: string; holders: number; viewers: number; ports: FeedPorts } & FeedStats>> {
    const out = [];
    for (const [streamId, e] of this.#entries) {
      const f = await e.feed.catch(() => null);
      if (f) out.push({ streamId, holders: e.holders, viewers: f.viewers, ports: f.ports, ...f.stats() });
    }
    return out;
  }

  /** Shutdown: every feed closes now, with its viewers. */
  async closeAll(reason: string): Promise<void> {
    const entries = [...this.#entries.values()];
    this.#entries.clear();
    for (const e of entries) {
      if (e.closeTimer) clearTimeout(e.closeTimer);
      const f = await e.feed.catch(() => null);
      f?.close(reason);
    }
  }
}
