// One WHEP viewer: a peer connection with a sending H.264 and Opus track in the viewer's own
// payload types, fed by the stream's real-time feed (realtime-feed.ts). Video starts at the next
// keyframe (the feed's encode has a short GOP, so that is soon); lost video packets are resent on
// the viewer's NACKs (libdatachannel's RtcpNackResponder). Nothing is encoded per viewer.
import { randomInt } from 'node:crypto';
import nodeDataChannel from 'node-datachannel';
import type { Audio, Track, Video } from 'node-datachannel';
import type { Logger } from '../log.ts';
import type { FeedSink, RealtimeFeed } from './realtime-feed.ts';
import { isRtcp, rewriteForViewer, rtcpFeedback } from './rtp-forward.ts';
import type { AcceptedTrack, MediaKind } from './sdp.ts';
import type { Peer, WebRtcStack } from './stack.ts';
import { ConnectionGrace } from './connection-grace.ts';

export interface WhepViewerOptions {
  /** The session id (the resource URL's last segment). */
  id: string;
  stack: WebRtcStack;
  feed: RealtimeFeed;
  /** The shaped offer (one codec per track) and its tracks. */
  offer: string;
  tracks: AcceptedTrack[];
  remoteAddress: string;
  logger: Logger;
  /** ICE and DTLS must be up within this long after the answer (ms). */
  connectTimeoutMs: number;
  /** A connection that drops is given this long to come back (ms). */
  disconnectGraceMs: number;
  /** Video packets kept per viewer for retransmission on NACK. */
  nackBufferPackets: number;
  /** The node's totals of what its viewers were sent (metrics), added to as packets go out. */
  forwarded?: ForwardedTally;
}

/** Packets and bytes (RTP, as handed to the track) sent to viewers, by kind. */
export type ForwardedTally = Record<MediaKind, { packets: number; bytes: number }>;

export type WhepViewerState = 'new' | 'connecting' | 'connected' | 'disconnected' | 'ended';

export interface WhepViewerEnd {
  code: string;
  message: string;
}

interface SendingTrack {
  track: Track;
  payloadType: number;
  ssrc: number;
  packets: number;
  bytes: number;
}

export class WhepViewer implements FeedSink {
  readonly id: string;
  readonly streamId: string;
  readonly remoteAddress: string;
  readonly createdAt = Date.now();
  readonly ended: Promise<WhepViewerEnd>;
  state: WhepViewerState = 'new';
  readonly #opts: WhepViewerOptions;
  readonly #log: Logger;
  #peer: Peer | null = null;
  /** Held for the session's life: node-datachannel closes a track whose JavaScript object is collected. */
  readonly #tracks: Partial<Record<MediaKind, SendingTrack>> = {};
  #resolveEnded!: (end: WhepViewerEnd) => void;
  readonly #timers: NodeJS.Timeout[] = [];
  readonly #grace: ConnectionGrace;
  /** Video waits for a keyframe: what comes before it could not be decoded. */
  #awaitingKeyframe = true;
  #connectedAt: number | null = null;
  firstKeyframeMs: number | null = null;
  keyframeRequests = 0;
  nacks = 0;

  constructor(opts: WhepViewerOptions) {
    this.#opts = opts;
    this.#grace = new ConnectionGrace(opts.disconnectGraceMs, () => this.#end('disconnected', 'the connection dropped'));
    this.id = opts.id;
    this.streamId = opts.feed.streamId;
    this.remoteAddress = opts.remoteAddress;
    this.#log = opts.logger.child({ whep: opts.id, streamId: this.streamId });
    this.ended = new Promise((resolve) => (this.#resolveEnded = resolve));
  }

  /** Creates the peer connection, answers the offer and joins the feed. Call once, after the ticket was accepted. */
  async answer(): Promise<string> {
    const peer = this.#opts.stack.createPeer(`whep-${this.id}`);
    this.#peer = peer;
    this.state = 'connecting';
    for (const t of this.#opts.tracks) {
      // Our SSRC, named in the answer (a=ssrc), so the viewer can tell the flows apart without header extensions.
      const ssrc = randomInt(1, 0xffffffff);
      let media: Video | Audio;
      if (t.kind === 'video') {
        const video = new nodeDataChannel.Video(t.mid, 'SendOnly');
        video.addH264Codec(t.codec.payloadType, t.codec.fmtp || undefined);
        media = video;
      } else {
        const audio = new nodeDataChannel.Audio(t.mid, 'SendOnly');
        audio.addOpusCodec(t.codec.payloadType, t.codec.fmtp || undefined);
        media = audio;
      }
      media.addSSRC(ssrc, 'edgelive', `edgelive-${this.streamId}`, `${t.kind}-${this.id}`);
      const track = peer.pc.addTrack(media);
      // Video answers NACKs from a short history; audio is not retransmitted (Opus conceals a loss).
      if (t.kind === 'video') track.setMediaHandler(new nodeDataChannel.RtcpNackResponder(this.#opts.nackBufferPackets));
      track.onMessage((msg) => this.#onRtcp(msg));
      this.#tracks[t.kind] = { track, payloadType: t.codec.payloadType, ssrc, packets: 0, bytes: 0 };
    }
    peer.pc.onStateChange((state) => this.#onState(state));
    this.#timers.push(
      setTimeout(() => {
        if (this.state === 'connecting') this.#end('connect-timeout', `ICE/DTLS did not connect within ${this.#opts.connectTimeoutMs} ms`);
      }, this.#opts.connectTimeoutMs),
    );
    let answer: string;
    try {
      answer = await this.#opts.stack.answer(peer.pc, this.#opts.offer);
    } catch (err) {
      this.#end('internal-error', `could not answer: ${(err as Error).message}`);
      throw err;
    }
    // The connect timer (or a failed connection) may have ended it while the answer was made.
    if ((this.state as WhepViewerState) === 'ended') throw new Error('the viewer ended while its answer was made');
    this.#opts.feed.add(this);
    return answer;
  }

  /** The offer as answered (shaped): its ICE credentials identify the viewer's ICE agent. */
  get remoteOffer(): string {
    return this.#opts.offer;
  }

  /** Trickled candidates from PATCH (RFC 8840); the mid defaults to the first track's. */
  addRemoteCandidate(candidate: string, mid: string | null): void {
    this.#peer?.pc.addRemoteCandidate(candidate, mid ?? this.#opts.tracks[0]!.mid);
  }

  deliver(kind: MediaKind, packet: Buffer, keyframeStart: boolean): void {
    const t = this.#tracks[kind];
    if (!t || this.state !== 'connected' || !t.track.isOpen()) return;
    if (kind === 'video' && this.#awaitingKeyframe) {
      if (!keyframeStart) return;
      this.#awaitingKeyframe = false;
      if (this.#connectedAt !== null) this.firstKeyframeMs = Math.round(performance.now() - this.#connectedAt);
    }
    // The packet is the feed's: this viewer's payload type and SSRC are written in, the track copies it out.
    rewriteForViewer(packet, t.payloadType, t.ssrc);
    if (!t.track.sendMessageBinary(packet)) return;
    t.packets++;
    t.bytes += packet.length;
    const tally = this.#opts.forwarded?.[kind];
    if (tally) {
      tally.packets++;
      tally.bytes += packet.length;
    }
  }

  feedClosed(reason: string): void {
    this.#end('stream-ended', reason);
  }

  close(reason: string): void {
    this.#end('closed', reason);
  }

  stats(): Record<string, unknown> {
    return {
      id: this.id,
      streamId: this.streamId,
      state: this.state,
      remote: this.remoteAddress,
      videoPackets: this.#tracks.video?.packets ?? 0,
      audioPackets: this.#tracks.audio?.packets ?? 0,
      videoBytes: this.#tracks.video?.bytes ?? 0,
      audioBytes: this.#tracks.audio?.bytes ?? 0,
      firstKeyframeMs: this.firstKeyframeMs,
      keyframeRequests: this.keyframeRequests,
      nacks: this.nacks,
      startedAt: new Date(this.createdAt).toISOString(),
    };
  }

  #onRtcp(msg: Buffer): void {
    if (!isRtcp(msg)) return;
    const fb = rtcpFeedback(msg);
    // The encode has a short GOP (ffmpeg takes no keyframe requests): a PLI is only counted.
    this.keyframeRequests += fb.keyframeRequests;
    this.nacks += fb.nacks;
  }

  #onState(state: string): void {
    if (this.state === 'ended') return;
    const step = this.#grace.step(state);
    if (step === 'connected') {
      if (this.state === 'connecting') {
        this.#connectedAt = performance.now();
        this.#log.info('whep viewer connected', { remote: this.remoteAddress, ms: Date.now() - this.createdAt });
      }
      this.state = 'connected';
    } else if (step === 'disconnected') this.state = 'disconnected';
    else if (step === 'ended') this.#end('disconnected', `the peer connection ${state}`);
  }

  #end(code: string, message: string): void {
    if (this.state === 'ended') return;
    this.state = 'ended';
    for (const t of this.#timers) clearTimeout(t);
    this.#grace.clear();
    this.#opts.feed.remove(this);
    this.#peer?.close();
    this.#log.info('whep viewer ended', { code, reason: message, ...this.stats() });
    this.#resolveEnded({ code, message });
  }
}
