// One member's seat at the party-voice SFU: a peer connection that receives the member's Opus
// microphone (the one upstream) and sends other members' audio on the receive slots the member
// offered, each slot one flow in the member's payload type and an SSRC of ours (named in the
// answer), continuous when the slot passes to another member (RtpContinuity). The roster (which
// member is on which slot) goes out on the member's data channel. Nothing is decoded or mixed.
import { randomInt } from 'node:crypto';
import nodeDataChannel from 'node-datachannel';
import type { DataChannel, Track } from 'node-datachannel';
import type { VoiceSfuClaims } from '../../core/auth/voice-sfu-token.ts';
import { VOICE_SFU_CHANNEL, type VoiceSfuRoster } from '../../core/contracts/voice-sfu.ts';
import type { Logger } from '../log.ts';
import { isRtcp, RtpContinuity, rewriteForViewer } from './rtp-forward.ts';
import type { ShapedSfuOffer } from './sfu-sdp.ts';
import type { Peer, WebRtcStack } from './stack.ts';
import { ConnectionGrace } from './connection-grace.ts';

export interface SfuSeatOptions {
  /** The session id (the resource URL's last segment). */
  id: string;
  claims: VoiceSfuClaims;
  stack: WebRtcStack;
  offer: ShapedSfuOffer;
  remoteAddress: string;
  logger: Logger;
  /** ICE and DTLS must be up within this long after the answer (ms). */
  connectTimeoutMs: number;
  /** A connection that drops is given this long to come back (ms). */
  disconnectGraceMs: number;
  /** Each RTP packet of the member's microphone. */
  onPacket(seat: SfuSeat, packet: Buffer): void;
  /** The data channel opened: the roster can go out. */
  onReady(seat: SfuSeat): void;
}

export type SfuSeatState = 'connecting' | 'connected' | 'disconnected' | 'ended';

/** One receive slot: the member's audio section the SFU sends another member's audio on. */
export interface SfuSlot {
  mid: string;
  payloadType: number;
  ssrc: number;
  track: Track;
  continuity: RtpContinuity;
  /** The seat (`conn`) whose audio this slot carries, or null while free. */
  source: string | null;
  packets: number;
}

export class SfuSeat {
  readonly id: string;
  readonly room: string;
  readonly conn: string;
  readonly uid: string;
  readonly remoteAddress: string;
  readonly createdAt = Date.now();
  readonly ended: Promise<{ code: string; message: string }>;
  state: SfuSeatState = 'connecting';
  /** Muted by the room's moderators: the node forwards none of this member's audio. */
  forced = false;
  readonly slots: SfuSlot[] = [];
  /** Slot by source seat. */
  readonly slotOf = new Map<string, SfuSlot>();
  upstreamPackets = 0;
  readonly #opts: SfuSeatOptions;
  readonly #log: Logger;
  #peer: Peer | null = null;
  /** Held for the seat's life: node-datachannel closes a track or channel whose JavaScript object is collected. */
  readonly #refs: Array<Track | DataChannel> = [];
  #channel: DataChannel | null = null;
  #resolveEnded!: (end: { code: string; message: string }) => void;
  readonly #timers: NodeJS.Timeout[] = [];
  readonly #grace: ConnectionGrace;

  constructor(opts: SfuSeatOptions) {
    this.#opts = opts;
    this.#grace = new ConnectionGrace(opts.disconnectGraceMs, () => this.#end('disconnected', 'the connection dropped'));
    this.id = opts.id;
    this.room = opts.claims.room;
    this.conn = opts.claims.conn;
    this.uid = opts.claims.uid;
    this.remoteAddress = opts.remoteAddress;
    this.#log = opts.logger.child({ sfu: opts.id, room: this.room, conn: this.conn });
    this.ended = new Promise((resolve) => (this.#resolveEnded = resolve));
  }

  /** Creates the peer connection and answers the offer. Call once, after the token was accepted. */
  async answer(): Promise<string> {
    const o = this.#opts;
    const peer = o.stack.createPeer(`sfu-${this.id}`);
    this.#peer = peer;
    // The receive slots are ours to fill: tracks of our own, added before the offer is applied, so
    // the answer names our SSRC on each (the member's browser demultiplexes the bundle by SSRC).
    for (const s of o.offer.slots) {
      const ssrc = randomInt(1, 0xffffffff);
      const audio = new nodeDataChannel.Audio(s.mid, 'SendOnly');
      audio.addOpusCodec(s.codec.payloadType, s.codec.fmtp || undefined);
      audio.addSSRC(ssrc, 'edgelive', `edgelive-voice-${s.mid}`, `slot-${s.mid}`);
      const track = peer.pc.addTrack(audio);
      track.onMessage(() => undefined);
      this.#refs.push(track);
      this.slots.push({
        mid: s.mid,
        payloadType: s.codec.payloadType,
        ssrc,
        track,
        continuity: new RtpContinuity(48_000),
        source: null,
        packets: 0,
      });
    }
    // The microphone's section and the data channel are the member's: the stack creates them.
    peer.pc.onTrack((track) => {
      if (track.mid() !== o.offer.upstream.mid) return;
      this.#refs.push(track);
      // Answers the sender's reports (and so keeps its rate control informed).
      track.setMediaHandler(new nodeDataChannel.RtcpReceivingSession());
      track.onMessage((msg) => {
        if (this.state === 'ended' || isRtcp(msg)) return;
        this.upstreamPackets++;
        o.onPacket(this, msg);
      });
    });
    peer.pc.onDataChannel((dc) => {
      if (dc.getLabel() !== VOICE_SFU_CHANNEL) return dc.close();
      this.#refs.push(dc);
      this.#channel = dc;
      // Nothing the member writes is read: the roster goes one way.
      dc.onMessage(() => undefined);
      if (dc.isOpen()) o.onReady(this);
      else dc.onOpen(() => o.onReady(this));
    });
    peer.pc.onStateChange((state) => this.#onState(state));
    this.#timers.push(
      setTimeout(() => {
        if (this.state === 'connecting') this.#end('connect-timeout', `ICE/DTLS did not connect within ${o.connectTimeoutMs} ms`);
      }, o.connectTimeoutMs),
    );
    try {
      return await o.stack.answer(peer.pc, o.offer.sdp);
    } catch (err) {
      this.#end('internal-error', `could not answer: ${(err as Error).message}`);
      throw err;
    }
  }

  /** Gives a free slot to `source`; false when every slot is taken. */
  assign(source: string): boolean {
    if (this.slotOf.has(source)) return true;
    const free = this.slots.find((s) => s.source === null);
    if (!free) return false;
    free.source = source;
    this.slotOf.set(source, free);
    return true;
  }

  release(source: string): void {
    const slot = this.slotOf.get(source);
    if (slot) slot.source = null;
    this.slotOf.delete(source);
  }

  /**
   * Sends one packet of `source` on its slot: a copy, in this member's payload type and the slot's
   * SSRC, its sequence numbers and timestamps continuing the slot's flow. False when not sent.
   */
  deliver(source: string, packet: Buffer, nowMs: number): boolean {
    const slot = this.slotOf.get(source);
    if (!slot || this.state !== 'connected' || !slot.track.isOpen()) return false;
    const copy = Buffer.from(packet);
    if (!slot.continuity.rewrite(copy, nowMs)) return false;
    rewriteForViewer(copy, slot.payloadType, slot.ssrc);
    try {
      if (!slot.track.sendMessageBinary(copy)) return false;
    } catch {
      // The transport closed under the send (the member is leaving): its seat ends with it.
      return false;
    }
    slot.packets++;
    return true;
  }

  /** `overflow`: seats in the room this member has no slot for (it reconnects with more). */
  sendRoster(forced: string[], overflow: number): void {
    if (!this.#channel?.isOpen()) return;
    const roster: VoiceSfuRoster = {
      type: 'roster',
      slots: Object.fromEntries(this.slots.map((s) => [s.mid, s.source])),
      overflow,
      forced,
    };
    try {
      this.#channel.sendMessage(JSON.stringify(roster));
    } catch (err) {
      // The channel closed between the check and the send (the member is leaving): nothing to tell.
      this.#log.debug('roster not sent', { error: err });
    }
  }

  close(reason: string): void {
    this.#end('closed', reason);
  }

  stats(): Record<string, unknown> {
    return {
      id: this.id,
      room: this.room,
      conn: this.conn,
      state: this.state,
      remote: this.remoteAddress,
      forced: this.forced,
      upstreamPackets: this.upstreamPackets,
      slots: this.slots.map((s) => ({ mid: s.mid, source: s.source, packets: s.packets })),
      startedAt: new Date(this.createdAt).toISOString(),
    };
  }

  #onState(state: string): void {
    if (this.state === 'ended') return;
    const step = this.#grace.step(state);
    if (step === 'connected') {
      if (this.state === 'connecting')
        this.#log.info('sfu seat connected', { remote: this.remoteAddress, ms: Date.now() - this.createdAt });
      this.state = 'connected';
    } else if (step === 'disconnected') this.state = 'disconnected';
    else if (step === 'ended') this.#end('disconnected', `the peer connection ${state}`);
  }

  #end(code: string, message: string): void {
    if (this.state === 'ended') return;
    this.state = 'ended';
    for (const t of this.#timers) clearTimeout(t);
    this.#grace.clear();
    this.#peer?.close();
    this.#log.info('sfu seat ended', { code, reason: message, ...this.stats() });
    this.#resolveEnded({ code, message });
  }
}
