// One accepted SRT publisher (live mode, receiver side): puts data packets back in order, asks
// for lost ones (NAK), acknowledges what arrived (ACK every 10 ms, RTT from ACKACK), gives up on
// a gap once it is older than the latency (as TSBPD's too-late drop does), and hands the payload
// on as one byte stream (MPEG-TS) with back-pressure expressed as the receive window in ACKs.
import { Readable } from 'node:stream';
import type { Logger } from '../log.ts';
import { decryptPayload, type StreamKeys } from './crypto.ts';
import { Ctrl, encodeControl, encodeLossList, seqAdd, seqDiff, type ControlPacket, type DataPacket } from './packet.ts';

export interface SrtConnectionInit {
  id: string;
  /** Our socket id for this connection (the peer's destination id). */
  socketId: number;
  peerSocketId: number;
  peerAddress: string;
  peerPort: number;
  isn: number;
  /** Negotiated latency, ms. */
  latencyMs: number;
  flowWindow: number;
  keys: StreamKeys | null;
  send: (packet: Buffer) => void;
  logger: Logger;
  /** No packet from the peer for this long ends the connection. Default 5 s (libsrt's peer idle timeout). */
  idleTimeoutMs?: number;
  highWaterMark?: number;
}

export type SrtEndCode = 'shutdown' | 'idle-timeout' | 'closed' | 'consumer-gone' | 'server-closing';

const ACK_INTERVAL_MS = 10;
const KEEPALIVE_MS = 1000;
/** Payloads held for delivery beyond which the window in ACKs closes. */
const MAX_PENDING_PACKETS = 8192;

export class SrtConnection {
  readonly id: string;
  readonly socketId: number;
  readonly peerSocketId: number;
  readonly peerAddress: string;
  readonly peerPort: number;
  /** The publisher's MPEG-TS. Ends cleanly when the connection ends, whatever the reason. */
  readonly media: Readable;
  readonly stats = { packets: 0, bytes: 0, retransmitted: 0, lost: 0, dropped: 0, undecryptable: 0 };
  private readonly init: SrtConnectionInit;
  private readonly log: Logger;
  private readonly startedAt = performance.now();
  /** The next sequence number to deliver. */
  private next: number;
  /** Out-of-order packets waiting for a gap to fill. */
  private readonly held = new Map<number, { payload: Buffer; at: number }>();
  /** When each missing sequence number was first noticed. */
  private readonly missing = new Map<number, number>();
  private lastAckedSeq = -1;
  private ackNumber = 0;
  private readonly ackSentAt = new Map<number, number>();
  private rttUs = 100_000;
  private rttVarUs = 50_000;
  private lastHeard = performance.now();
  private lastSent = 0;
  private lastNakAt = 0;
  private paused = false;
  private readonly timer: ReturnType<typeof setInterval>;
  private endCode: SrtEndCode | null = null;
  private readonly onEnd: Array<(code: SrtEndCode, message: string) => void> = [];

  constructor(init: SrtConnectionInit) {
    this.init = init;
    this.id = init.id;
    this.socketId = init.socketId;
    this.peerSocketId = init.peerSocketId;
    this.peerAddress = init.peerAddress;
    this.peerPort = init.peerPort;
    this.next = init.isn;
    this.log = init.logger.child({ conn: init.id });
    this.media = new Readable({
      highWaterMark: init.highWaterMark ?? 1024 * 1024,
      read: () => {
        this.paused = false;
      },
      destroy: (err, cb) => {
        if (!this.endCode) this.end('consumer-gone', 'the media stream was destroyed');
        cb(err);
      },
    });
    this.timer = setInterval(() => this.tick(), ACK_INTERVAL_MS);
    this.timer.unref();
  }

  get ended(): SrtEndCode | null {
    return this.endCode;
  }

  onEnded(fn: (code: SrtEndCode, message: string) => void): void {
    this.onEnd.push(fn);
  }

  /** Ends the connection: tells the peer (shutdown), ends `media`, stops the timers. */
  end(code: SrtEndCode, message: string, notifyPeer = code !== 'shutdown' && code !== 'idle-timeout'): void {
    if (this.endCode) return;
    this.endCode = code;
    clearInterval(this.timer);
    if (notifyPeer) this.control(Ctrl.SHUTDOWN, 0, Buffer.alloc(4));
    this.log.info('srt connection ended', { code, reason: message, ...this.stats });
    if (!this.media.destroyed) this.media.push(null);
    for (const fn of this.onEnd) fn(code, message);
  }

  handleData(p: DataPacket): void {
    if (this.endCode) return;
    this.lastHeard = performance.now();
    this.stats.packets++;
    if (p.retransmitted) this.stats.retransmitted++;
    const d = seqDiff(p.seq, this.next);
    if (d < 0 || this.held.has(p.seq)) return; // already delivered or held
    let payload = p.payload;
    if (p.keyFlags !== 0) {
      const clear = this.init.keys ? decryptPayload(this.init.keys, p.keyFlags, p.seq, payload) : null;
      if (!clear) {
        this.stats.undecryptable++;
        return;
      }
      payload = clear;
    }
    this.missing.delete(p.seq);
    if (d === 0) {
      this.deliver(payload);
      this.next = seqAdd(this.next, 1);
      this.drain();
      return;
    }
    const now = performance.now();
    this.held.set(p.seq, { payload, at: now });
    // Every number between what we expect and this one that has not arrived is lost: NAK it now.
    const fresh: Array<[number, number]> = [];
    for (let s = this.next, i = 0; i < d && i < 100_000; s = seqAdd(s, 1), i++) {
      if (this.held.has(s) || this.missing.has(s)) continue;
      this.missing.set(s, now);
      this.stats.lost++;
      const last = fresh.at(-1);
      if (last && seqAdd(last[1], 1) === s) last[1] = s;
      else fresh.push([s, s]);
    }
    if (fresh.length > 0) this.control(Ctrl.NAK, 0, encodeLossList(fresh.slice(0, 64)));
  }

  handleControl(p: ControlPacket): void {
    if (this.endCode) return;
    this.lastHeard = performance.now();
    switch (p.type) {
      case Ctrl.ACKACK: {
        const sent = this.ackSentAt.get(p.info);
        if (sent !== undefined) {
          const rtt = (performance.now() - sent) * 1000;
          this.rttVarUs = (3 * this.rttVarUs + Math.abs(rtt - this.rttUs)) / 4;
          this.rttUs = (7 * this.rttUs + rtt) / 8;
          this.ackSentAt.delete(p.info);
        }
        return;
      }
      case Ctrl.SHUTDOWN:
        this.end('shutdown', 'the publisher closed the connection');
        return;
      case Ctrl.DROPREQ: {
        // The sender gave up on these (too late to send): stop waiting for them.
        // CIF: first and last sequence number dropped.
        if (p.cif.length >= 8) this.skipThrough(p.cif.readUInt32BE(4) & 0x7fffffff);
        return;
      }
      default:
        return; // keepalive, handshake retransmits, …: being heard is all that matters
    }
  }

  private deliver(payload: Buffer): void {
    this.stats.bytes += payload.length;
    if (this.media.destroyed) return;
    if (!this.media.push(payload)) this.paused = true;
  }

  /** Delivers held packets that are now in order. */
  private drain(): void {
    for (;;) {
      const h = this.held.get(this.next);
      if (!h) return;
      this.held.delete(this.next);
      this.deliver(h.payload);
      this.next = seqAdd(this.next, 1);
    }
  }

  /** Gives up on everything up to and including `last`. */
  private skipThrough(last: number): void {
    if (seqDiff(last, this.next) > 100_000) return; // not a range this connection could be waiting for
    while (seqDiff(last, this.next) >= 0) {
      const h = this.held.get(this.next);
      if (h) {
        this.held.delete(this.next);
        this.deliver(h.payload);
      } else if (this.missing.delete(this.next)) this.stats.dropped++;
      this.next = seqAdd(this.next, 1);
    }
    this.drain();
  }

  private tick(): void {
    const now = performance.now();
    if (now - this.lastHeard > (this.init.idleTimeoutMs ?? 5000)) {
      this.end('idle-timeout', 'nothing heard from the publisher');
      return;
    }
    // Too-late drop: a gap older than the latency will not be filled in time to matter.
    const oldest = this.missing.get(this.next);
    if (oldest !== undefined && now - oldest > Math.max(this.init.latencyMs, 2 * this.rttUs / 1000)) {
      let firstHeld: number | null = null;
      for (const s of this.held.keys()) if (firstHeld === null || seqDiff(s, firstHeld) < 0) firstHeld = s;
      if (firstHeld !== null) {
        this.log.warn('srt packets lost for good', { from: this.next, to: seqAdd(firstHeld, -1) });
        this.skipThrough(seqAdd(firstHeld, -1));
      }
    }
    if (this.next !== this.lastAckedSeq) this.sendAck(now);
    // Losses still outstanding are asked for again about every RTT.
    if (this.missing.size > 0 && now - this.lastNakAt > Math.max(20, this.rttUs / 1000)) {
      this.lastNakAt = now;
      const ranges: Array<[number, number]> = [];
      for (const s of [...this.missing.keys()].sort((a, b) => seqDiff(a, b))) {
        const last = ranges.at(-1);
        if (last && seqAdd(last[1], 1) === s) last[1] = s;
        else ranges.push([s, s]);
        if (ranges.length >= 64) break;
      }
      this.control(Ctrl.NAK, 0, encodeLossList(ranges));
    }
    if (now - this.lastSent > KEEPALIVE_MS) this.control(Ctrl.KEEPALIVE, 0, Buffer.alloc(4));
  }

  private sendAck(now: number): void {
    this.lastAckedSeq = this.next;
    this.ackNumber = (this.ackNumber + 1) & 0x7fffffff || 1;
    this.ackSentAt.set(this.ackNumber, now);
    if (this.ackSentAt.size > 64) this.ackSentAt.delete(this.ackSentAt.keys().next().value!);
    const buffered = this.held.size + Math.ceil(this.media.readableLength / 1316);
    const window = this.paused ? 2 : Math.max(2, Math.min(this.init.flowWindow, MAX_PENDING_PACKETS) - buffered);
    const cif = Buffer.alloc(28);
    cif.writeUInt32BE(this.next, 0); // the first sequence number not yet received
    cif.writeUInt32BE(Math.round(this.rttUs), 4);
    cif.writeUInt32BE(Math.round(this.rttVarUs), 8);
    cif.writeUInt32BE(window, 12);
    cif.writeUInt32BE(0, 16); // packet receive rate: unknown
    cif.writeUInt32BE(0, 20); // estimated link capacity: unknown
    cif.writeUInt32BE(0, 24); // receiving rate: unknown
    this.control(Ctrl.ACK, 0, cif, this.ackNumber);
  }

  private control(type: number, subtype: number, cif: Buffer, info = 0): void {
    const timestamp = Math.floor((performance.now() - this.startedAt) * 1000) >>> 0;
    this.lastSent = performance.now();
    this.init.send(encodeControl({ type, subtype, info, timestamp, destSocketId: this.peerSocketId, cif }));
  }
}
