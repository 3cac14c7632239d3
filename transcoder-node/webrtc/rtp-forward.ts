// RTP as the node forwards it to WHEP viewers (pure: bytes in, bytes or facts out). The real-time
// encode (ffmpeg's RTP muxer) is one flow per kind; `RtpContinuity` makes it one continuous
// outgoing flow whatever happens upstream (a new ladder after a reconnection or a shed rung starts
// a flow with new random sequence numbers and timestamps: a viewer's jitter buffer must see a
// pause, not a jump). `rewriteForViewer` gives each viewer's copy its payload type and SSRC.
// `startsH264Keyframe` finds where a new viewer can start; `rtcpFeedback` reads what viewers say.

/** RTCP shares the port with RTP; RFC 5761 §4: payload types 64–95 (after the marker bit) are RTCP. */
export function isRtcp(packet: Uint8Array): boolean {
  const pt = packet[1]! & 0x7f;
  return packet.length >= 8 && pt >= 64 && pt <= 95;
}

/** Where an RTP packet's payload starts (after CSRCs and a header extension), or -1 if it is malformed. */
export function rtpPayloadOffset(packet: Uint8Array): number {
  if (packet.length < 12 || packet[0]! >> 6 !== 2) return -1;
  let offset = 12 + 4 * (packet[0]! & 0x0f);
  if (packet[0]! & 0x10) {
    if (packet.length < offset + 4) return -1;
    offset += 4 + 4 * ((packet[offset + 2]! << 8) | packet[offset + 3]!);
  }
  return offset < packet.length ? offset : -1;
}

/**
 * Whether this packet begins an H.264 access unit a decoder can start from (RFC 6184): a
 * sequence parameter set (the encoder repeats SPS and PPS before every IDR), alone or first in a
 * STAP-A, or the first fragment of an IDR slice. A viewer that joins mid-GOP is sent video from
 * here on: everything before it would only be thrown away by its decoder.
 */
export function startsH264Keyframe(packet: Uint8Array): boolean {
  const at = rtpPayloadOffset(packet);
  if (at < 0) return false;
  const nal = packet[at]! & 0x1f;
  if (nal === 7 || nal === 5) return true;
  if (nal === 24) {
    // STAP-A: 16-bit sizes, each followed by a NAL unit.
    for (let i = at + 1; i + 2 < packet.length; ) {
      const size = (packet[i]! << 8) | packet[i + 1]!;
      const type = packet[i + 2]! & 0x1f;
      if (type === 7 || type === 5) return true;
      i += 2 + size;
    }
    return false;
  }
  // FU-A: the start bit and the fragmented NAL's type are in the second byte.
  if (nal === 28 && at + 1 < packet.length) return (packet[at + 1]! & 0x80) !== 0 && (packet[at + 1]! & 0x1f) === 5;
  return false;
}

/**
 * One outgoing flow from a source that may restart. A packet of a new source SSRC rebases the
 * flow: its sequence numbers continue one after the last sent, and its timestamps after the last
 * sent plus the wall-clock time between the two (so the pause is a pause at the right rate).
 */
export class RtpContinuity {
  readonly clockRate: number;
  #source: number | null = null;
  #seqOffset = 0;
  #tsOffset = 0;
  #lastSeq = 0;
  #lastTs = 0;
  #lastAtMs = 0;
  #started = false;
  /** Source flows seen (1 + restarts). */
  sources = 0;

  constructor(clockRate: number) {
    this.clockRate = clockRate;
  }

  /** Rewrites sequence number and timestamp in place; false for what is not an RTP packet. */
  rewrite(packet: Uint8Array, nowMs: number): boolean {
    if (packet.length < 12 || packet[0]! >> 6 !== 2 || isRtcp(packet)) return false;
    const view = new DataView(packet.buffer, packet.byteOffset, packet.byteLength);
    const ssrc = view.getUint32(8);
    const seq = view.getUint16(2);
    const ts = view.getUint32(4);
    if (ssrc !== this.#source) {
      if (!this.#started) {
        // The first flow goes out as it is.
        this.#seqOffset = 0;
        this.#tsOffset = 0;
      } else {
        const gap = Math.max(1, Math.round(((nowMs - this.#lastAtMs) * this.clockRate) / 1000));
        this.#seqOffset = (this.#lastSeq + 1 - seq + 0x10000) & 0xffff;
        this.#tsOffset = (this.#lastTs + gap - ts + 0x100000000) >>> 0;
      }
      this.#source = ssrc;
      this.sources++;
    }
    const outSeq = (seq + this.#seqOffset) & 0xffff;
    const outTs = (ts + this.#tsOffset) >>> 0;
    view.setUint16(2, outSeq);
    view.setUint32(4, outTs);
    // A late (reordered) packet of the current flow must not move the reference back.
    const ahead = (outSeq - this.#lastSeq + 0x10000) & 0xffff;
    if (!this.#started || (ahead > 0 && ahead < 0x8000)) {
      this.#lastSeq = outSeq;
      this.#lastTs = outTs;
      this.#lastAtMs = nowMs;
    }
    this.#started = true;
    return true;
  }
}

/** Sets a viewer's payload type (keeping the marker bit) and SSRC, in place. */
export function rewriteForViewer(packet: Uint8Array, payloadType: number, ssrc: number): void {
  packet[1] = (packet[1]! & 0x80) | (payloadType & 0x7f);
  packet[8] = ssrc >>> 24;
  packet[9] = (ssrc >>> 16) & 0xff;
  packet[10] = (ssrc >>> 8) & 0xff;
  packet[11] = ssrc & 0xff;
}

export interface RtcpFeedback {
  /** Picture loss indications (PT 206, FMT 1) and full intra requests (FMT 4). */
  keyframeRequests: number;
  /** Generic NACKs (PT 205, FMT 1). */
  nacks: number;
  receiverReports: number;
}

/** Counts the feedback in a compound RTCP packet (malformed tails are ignored). */
export function rtcpFeedback(packet: Uint8Array): RtcpFeedback {
  const out: RtcpFeedback = { keyframeRequests: 0, nacks: 0, receiverReports: 0 };
  for (let i = 0; i + 4 <= packet.length; ) {
    if (packet[i]! >> 6 !== 2) break;
    const fmt = packet[i]! & 0x1f;
    const pt = packet[i + 1]!;
    const length = ((packet[i + 2]! << 8) | packet[i + 3]!) * 4 + 4;
    if (pt === 206 && (fmt === 1 || fmt === 4)) out.keyframeRequests++;
    else if (pt === 205 && fmt === 1) out.nacks++;
    else if (pt === 201) out.receiverReports++;
    i += length;
  }
  return out;
}

/**
 * The packet without its header extension (RFC 8285), a new buffer; the packet itself when it has
 * none. A forwarded packet's extensions were negotiated with its sender, not its receiver (a `mid`
 * in them would steer it to the wrong transceiver): the SFU sends none.
 */
export function withoutHeaderExtension(packet: Buffer): Buffer {
  if (packet.length < 12 || !(packet[0]! & 0x10)) return packet;
  const csrcEnd = 12 + 4 * (packet[0]! & 0x0f);
  if (packet.length < csrcEnd + 4) return packet;
  const extEnd = csrcEnd + 4 + 4 * ((packet[csrcEnd + 2]! << 8) | packet[csrcEnd + 3]!);
  if (extEnd > packet.length) return packet;
  const out = Buffer.allocUnsafe(packet.length - (extEnd - csrcEnd));
  packet.copy(out, 0, 0, csrcEnd);
  packet.copy(out, csrcEnd, extEnd);
  out[0] = out[0]! & ~0x10;
  return out;
}
