// Received RTP of one track → timed frames: a reorder buffer puts packets back in sequence order
// (waiting at most `reorderMs` for a gap), werift-rtp's depacketizer makes access units (H.264 in
// Annex B) or Opus packets of them, and RTP time becomes milliseconds on the session's clock. Loss
// is reported so the caller can ask the encoder for a keyframe.
import { RtpPacket } from 'werift-rtp';
import { DepacketizeBase } from 'werift-rtp/extra';
import type { MediaKind } from './sdp.ts';

export interface TimedFrame {
  kind: MediaKind;
  data: Buffer;
  keyframe: boolean;
  /** Milliseconds on the session clock (see FrameClock). */
  timeMs: number;
}

/**
 * One clock for all tracks of a session. A track's RTP time is anchored at the arrival of its
 * first packet: without RTCP sender reports (libdatachannel's receiving session consumes them)
 * the arrival is the best common reference, and it is off by at most the difference of the two
 * tracks' first-packet delays (a few tens of milliseconds from an encoder's pipeline).
 */
export class FrameClock {
  readonly #origin: number;
  constructor(now = performance.now()) {
    this.#origin = now;
  }
  sinceOrigin(now = performance.now()): number {
    return now - this.#origin;
  }
}

export interface RtpFramerOptions {
  kind: MediaKind;
  payloadType: number;
  clockRate: number;
  clock: FrameClock;
  /** How long to wait for a missing packet before giving it up (default 100 ms). */
  reorderMs?: number;
  onFrame: (frame: TimedFrame) => void;
  /** Packets were lost for good: the next frames are broken until a keyframe. */
  onLoss?: () => void;
}

/** Signed distance from sequence number a to b, modulo 2^16. */
function seqDelta(a: number, b: number): number {
  const d = (b - a + 65536) % 65536;
  return d >= 32768 ? d - 65536 : d;
}

/**
 * Puts packets back in sequence order. A packet after a gap is held until the gap fills, or until
 * it has waited `waitMs` or `maxHeld` packets are held; then the gap is given up and everything
 * held goes on in order. (werift-rtp's jitter buffer, tried first, drops the packets it holds past
 * a timed-out gap, turning one lost packet into a lost tenth of a second.)
 */
export class ReorderBuffer<T> {
  readonly #held = new Map<number, T>();
  readonly #waitMs: number;
  readonly #maxHeld: number;
  #next: number | null = null;
  #heldSince = 0;

  constructor(waitMs: number, maxHeld = 256) {
    this.#waitMs = waitMs;
    this.#maxHeld = maxHeld;
  }

  /** Adds a packet; returns the packets now in order, each with the number lost just before it. */
  push(seq: number, packet: T, now: number): Array<{ packet: T; lostBefore: number }> {
    if (this.#next === null) this.#next = seq;
    // Late (its gap was given up) or a duplicate.
    if (seqDelta(this.#next, seq) < 0 || this.#held.has(seq)) return [];
    if (this.#held.size === 0) this.#heldSince = now;
    this.#held.set(seq, packet);
    const out: Array<{ packet: T; lostBefore: number }> = [];
    let lostBefore = 0;
    for (;;) {
      const ready = this.#held.get(this.#next!);
      if (ready !== undefined) {
        this.#held.delete(this.#next!);
        out.push({ packet: ready, lostBefore });
        lostBefore = 0;
        this.#next = (this.#next! + 1) % 65536;
        this.#heldSince = now;
        continue;
      }
      if (this.#held.size === 0 || (now - this.#heldSince < this.#waitMs && this.#held.size < this.#maxHeld)) break;
      // Give the gap up: continue from the oldest packet held.
      let oldest = -1;
      for (const s of this.#held.keys()) if (oldest < 0 || seqDelta(s, oldest) > 0) oldest = s;
      lostBefore += seqDelta(this.#next!, oldest);
      this.#next = oldest;
    }
    return out;
  }
}

export class RtpFramer {
  readonly #opts: RtpFramerOptions;
  readonly #reorder: ReorderBuffer<RtpPacket>;
  readonly #depacketizer: DepacketizeBase;
  #firstTimestamp: number | null = null;
  #anchorMs = 0;
  /** RTP timestamps unwrapped past 2^32 (a 90 kHz clock wraps every 13 hours). */
  #lastTimestamp = 0;
  #wraps = 0;
  packets = 0;
  frames = 0;
  lost = 0;

  get kind(): MediaKind {
    return this.#opts.kind;
  }

  constructor(opts: RtpFramerOptions) {
    this.#opts = opts;
    this.#reorder = new ReorderBuffer(opts.reorderMs ?? 100);
    this.#depacketizer = new DepacketizeBase(
      opts.kind === 'video' ? 'MPEG4/ISO/AVC' : 'OPUS',
      // A video frame ends with the marker bit; every Opus packet is a frame.
      opts.kind === 'video' ? { isFinalPacketInSequence: (h) => h.marker } : {},
    );
  }

  /** One decrypted RTP packet (RTCP never comes here). Packets of other payload types are ignored. */
  push(packet: Buffer): void {
    if (packet.length < 12 || (packet[1]! & 0x7f) !== this.#opts.payloadType) return;
    let rtp: RtpPacket;
    try {
      rtp = RtpPacket.deSerialize(packet);
    } catch {
      return;
    }
    this.packets++;
    for (const { packet, lostBefore } of this.#reorder.push(rtp.header.sequenceNumber, rtp, performance.now())) {
      if (lostBefore > 0) {
        this.lost += lostBefore;
        this.#opts.onLoss?.();
      }
      // The depacketizer sees the gap in sequence numbers too, and drops the frame it broke.
      for (const { frame } of this.#depacketizer.processInput({ rtp: packet })) {
        if (!frame || frame.data.length === 0) continue;
        this.frames++;
        this.#opts.onFrame({
          kind: this.#opts.kind,
          data: frame.data,
          keyframe: frame.isKeyframe,
          timeMs: this.#timeMs(packet.header.timestamp),
        });
      }
    }
  }

  #timeMs(timestamp: number): number {
    if (this.#firstTimestamp === null) {
      this.#firstTimestamp = timestamp;
      this.#lastTimestamp = timestamp;
      this.#anchorMs = this.#opts.clock.sinceOrigin();
    }
    // Packets come in sequence order (jitter buffer): a jump back by more than half the range is a wrap.
    if (timestamp < this.#lastTimestamp && this.#lastTimestamp - timestamp > 0x80000000) this.#wraps++;
    this.#lastTimestamp = timestamp;
    const unwrapped = timestamp + this.#wraps * 0x100000000 - this.#firstTimestamp;
    return this.#anchorMs + (unwrapped * 1000) / this.#opts.clockRate;
  }
}
