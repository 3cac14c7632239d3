// One WHIP publisher as the ladder sees it (a Publisher, publisher.ts): a peer connection that
// receives the browser's or encoder's H.264 and Opus, RTP made into frames (rtp-frames.ts) and the
// frames into a live Matroska stream (matroska-writer.ts) for ffmpeg's stdin. It asks for keyframes
// (PLI) when the ladder starts and after loss, and tells the sender its bitrate budget (REMB).
import { Readable } from 'node:stream';
import nodeDataChannel from 'node-datachannel';
import type { Track } from 'node-datachannel';
import type { AuthorizeResponse } from '../../core/contracts/ingest-protocol.ts';
import type { Logger } from '../log.ts';
import type { Publisher, PublisherEnd } from '../publisher.ts';
import { MatroskaWriter } from './matroska-writer.ts';
import { FrameClock, RtpFramer } from './rtp-frames.ts';
import type { AcceptedTrack } from './sdp.ts';
import type { Peer, WebRtcStack } from './stack.ts';
import { ConnectionGrace } from './connection-grace.ts';

export interface WhipPublisherOptions {
  /** The session id (the resource URL's last segment). */
  id: string;
  stack: WebRtcStack;
  lease: AuthorizeResponse;
  /** The shaped offer (one codec per track) and its tracks. */
  offer: string;
  tracks: AcceptedTrack[];
  remoteAddress: string;
  logger: Logger;
  /** The bitrate the sender is told it may use (REMB), bits/s. */
  maxBitrate: number;
  /** ICE and DTLS must be up within this long after the answer (ms). */
  connectTimeoutMs: number;
  /** A connection that drops is given this long to come back (ms). */
  disconnectGraceMs: number;
  /** Matroska bytes the ladder may leave unread before the publisher is dropped (ffmpeg stalled). */
  maxBufferedBytes: number;
  /**
   * A connected publisher that sends no RTP for this long is dropped (ms). ICE consent keeps a
   * frozen tab's connection up; browsers send media even when muted (black frames, Opus DTX).
   */
  mediaTimeoutMs: number;
}

export type WhipState = 'new' | 'connecting' | 'connected' | 'disconnected' | 'ended';

/** Keyframe requests closer together than this are merged (a burst of loss is one request). */
const KEYFRAME_REQUEST_GAP_MS = 500;

export class WhipPublisher implements Publisher {
  readonly protocol = 'whip' as const;
  readonly id: string;
  readonly lease: AuthorizeResponse;
  readonly remoteAddress: string;
  readonly container = 'matroska' as const;
  readonly tracks: { audio: boolean; video: boolean };
  readonly media: Readable;
  readonly ended: Promise<PublisherEnd>;
  readonly createdAt = Date.now();
  state: WhipState = 'new';
  readonly #opts: WhipPublisherOptions;
  readonly #log: Logger;
  readonly #writer: MatroskaWriter;
  readonly #framers: RtpFramer[] = [];
  readonly #clock = new FrameClock();
  #peer: Peer | null = null;
  #videoTrack: Track | null = null;
  /** Held for the session's life: node-datachannel closes a track whose JavaScript object is collected. */
  readonly #trackRefs: Track[] = [];
  #resolveEnded!: (end: PublisherEnd) => void;
  #timers: NodeJS.Timeout[] = [];
  readonly #grace: ConnectionGrace;
  #lastKeyframeRequest = 0;
  #lastPacketAt = performance.now();
  keyframeRequests = 0;

  constructor(opts: WhipPublisherOptions) {
    this.#opts = opts;
    this.#grace = new ConnectionGrace(opts.disconnectGraceMs, () => this.#end('disconnected', 'the connection dropped'));
    this.id = opts.id;
    this.lease = opts.lease;
    this.remoteAddress = opts.remoteAddress;
    this.#log = opts.logger.child({ whip: opts.id, streamId: opts.lease.streamId, epoch: opts.lease.epoch });
    this.tracks = { audio: opts.tracks.some((t) => t.kind === 'audio'), video: opts.tracks.some((t) => t.kind === 'video') };
    this.media = new Readable({ read() {} });
    this.ended = new Promise((resolve) => (this.#resolveEnded = resolve));
    this.#writer = new MatroskaWriter({
      tracks: opts.tracks.map((t) => t.kind),
      write: (bytes) => {
        if (this.state === 'ended') return;
        this.media.push(bytes);
        // Media arrives in real time whatever ffmpeg does: past the bound, the ladder is stuck.
        if (this.media.readableLength > opts.maxBufferedBytes) this.#end('consumer-gone', 'the ladder stopped reading the media');
      },
    });
  }

  /** Creates the peer connection and answers the offer. Call once, after the key was accepted. */
  async answer(): Promise<string> {
    const peer = this.#opts.stack.createPeer(`whip-${this.id}`);
    this.#peer = peer;
    this.state = 'connecting';
    peer.pc.onTrack((track) => this.#wireTrack(track));
    peer.pc.onStateChange((state) => this.#onState(state));
    this.#timers.push(
      setTimeout(() => {
        if (this.state === 'connecting') this.#end('connect-timeout', `ICE/DTLS did not connect within ${this.#opts.connectTimeoutMs} ms`);
      }, this.#opts.connectTimeoutMs),
    );
    try {
      return await this.#opts.stack.answer(peer.pc, this.#opts.offer);
    } catch (err) {
      this.#end('internal-error', `could not answer: ${(err as Error).message}`);
      throw err;
    }
  }

  /** The offer as answered (shaped): its ICE credentials identify the publisher's ICE agent. */
  get remoteOffer(): string {
    return this.#opts.offer;
  }

  /** Trickled candidates from PATCH (RFC 8840); the mid defaults to the first track's. */
  addRemoteCandidate(candidate: string, mid: string | null): void {
    this.#peer?.pc.addRemoteCandidate(candidate, mid ?? this.#opts.tracks[0]!.mid);
  }

  requestKeyframe(): void {
    const now = Date.now();
    if (!this.#videoTrack?.isOpen() || now - this.#lastKeyframeRequest < KEYFRAME_REQUEST_GAP_MS) return;
    this.#lastKeyframeRequest = now;
    if (this.#videoTrack.requestKeyframe()) this.keyframeRequests++;
  }

  close(reason: string): void {
    this.#end('closed', reason);
  }

  stats(): Record<string, unknown> {
    const [video, audio] = ['video', 'audio'].map((kind) => this.#framers.find((f) => f.kind === kind));
    return {
      id: this.id,
      state: this.state,
      remote: this.remoteAddress,
      bytesIn: this.#peer && this.state !== 'ended' ? this.#peer.pc.bytesReceived() : undefined,
      videoFrames: video?.frames ?? 0,
      audioFrames: audio?.frames ?? 0,
      packetsLost: (video?.lost ?? 0) + (audio?.lost ?? 0),
      keyframeRequests: this.keyframeRequests,
      framesDropped: this.#writer.framesDropped,
    };
  }

  #wireTrack(track: Track): void {
    const accepted = this.#opts.tracks.find((t) => t.mid === track.mid());
    if (!accepted) return;
    this.#trackRefs.push(track);
    // The receiving session answers sender reports, and carries PLI (requestKeyframe) and REMB (requestBitrate).
    track.setMediaHandler(new nodeDataChannel.RtcpReceivingSession());
    const framer = new RtpFramer({
      kind: accepted.kind,
      payloadType: accepted.codec.payloadType,
      clockRate: accepted.codec.clockRate,
      clock: this.#clock,
      onFrame: (frame) => this.#writer.push(frame),
      onLoss: () => this.requestKeyframe(),
    });
    this.#framers.push(framer);
    track.onMessage((msg) => {
      if (this.state === 'ended') return;
      this.#lastPacketAt = performance.now();
      framer.push(msg);
    });
    if (accepted.kind === 'video') {
      this.#videoTrack = track;
      track.onOpen(() => {
        this.requestKeyframe();
        const remb = () => track.isOpen() && track.requestBitrate(this.#opts.maxBitrate);
        remb();
        this.#timers.push(setInterval(remb, 1000));
      });
    }
  }

  #onState(state: string): void {
    if (this.state === 'ended') return;
    const step = this.#grace.step(state);
    if (step === 'connected') {
      if (this.state !== 'connected') this.#log.info('whip publisher connected', { remote: this.remoteAddress });
      if (this.state === 'connecting') this.#watchMedia();
      this.state = 'connected';
    } else if (step === 'disconnected') this.state = 'disconnected';
    else if (step === 'ended') this.#end('disconnected', `the peer connection ${state}`);
  }

  #watchMedia(): void {
    this.#lastPacketAt = performance.now();
    const every = Math.min(1000, this.#opts.mediaTimeoutMs / 2);
    this.#timers.push(
      setInterval(() => {
        const silent = performance.now() - this.#lastPacketAt;
        if (this.state === 'connected' && silent > this.#opts.mediaTimeoutMs)
          this.#end('idle-timeout', `no media for ${Math.round(silent)} ms`);
      }, every),
    );
  }

  #end(code: string, message: string): void {
    if (this.state === 'ended') return;
    this.state = 'ended';
    for (const t of this.#timers) clearTimeout(t);
    this.#grace.clear();
    this.#peer?.close();
    this.media.push(null);
    this.#log.info('whip publisher ended', { code, reason: message, ...this.stats() });
    this.#resolveEnded({ code, message });
  }
}
