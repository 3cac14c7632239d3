// One accepted SRT publisher (live mode, receiver side): puts data packets back in order within
// the flow window, asks for lost ones (NAK), acknowledges what arrived (ACK every 10 ms, RTT from
// ACKACK), gives up on a gap once it is older than the latency (as TSBPD's too-late drop does),
// follows the sender's key refreshes (KMREQ), and hands the payload on as one byte stream
// (MPEG-TS) with back-pressure expressed as the receive window in ACKs.
import { Readable } from 'node:stream';
import type { Logger } from '../log.ts';
import { parseKeyMaterial, type PassphraseKeys, type ReceiverKeys } from './crypto.ts';
import { Ctrl, Ext, KmState, encodeControl, encodeLossList, seqDiff, type ControlPacket, type DataPacket } from './packet.ts';
import { DISCARDED, ReceiveWindow } from './receive-window.ts';

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
  /** Negotiated flow window (packets): the sender never runs further ahead of our ACK than this. */
  flowWindow: number;
  /** Present when the connection is encrypted: its keys, the passphrase and the handshake's salt (for key refreshes). */
  encryption: { keys: ReceiverKeys; passphrase: PassphraseKeys; salt: Buffer } | null;
  send: (packet: Buffer) => void;
  logger: Logger;
  /** No packet from the peer for this long ends the connection. Default 5 s (libsrt's peer idle timeout). */
  idleTimeoutMs?: number;
  highWaterMark?: number;
}

export type SrtEndCode = 'shutdown' | 'idle-timeout' | 'closed' | 'consumer-gone' | 'server-closing' | 'protocol-error';

/** How much receive state a connection holds: every figure is bounded by `window`. */
export interface SrtReceiveState {
  window: number;
  held: number;
  missing: number;
  lossRuns: number;
}

const ACK_INTERVAL_MS = 10;
const KEEPALIVE_MS = 1000;
/** Ranges in one NAK (a NAK must fit one datagram). */
const MAX_NAK_RANGES = 64;

export class SrtConnection {
  readonly id: string;
  readonly socketId: number;
  readonly peerSocketId: number;
  readonly peerAddress: string;
  readonly peerPort: number;
  /** The publisher's MPEG-TS. Ends cleanly when the connection ends, whatever the reason. */
  readonly media: Readable;
  readonly stats = {
    packets: 0,
    bytes: 0,
    retransmitted: 0,
    lost: 0,
    dropped: 0,
    undecryptable: 0,
    cleartextRefused: 0,
    keyRefreshes: 0,
    keyRefreshesRefused: 0,
  };
  private readonly init: SrtConnectionInit;
  private readonly log: Logger;
  private readonly startedAt = performance.now();
  private readonly window: ReceiveWindow;
  /** The last key material installed: a retransmitted KMREQ is answered without unwrapping again. */
  private lastKm: Buffer | null = null;
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
    this.window = new ReceiveWindow(init.isn, init.flowWindow, (payload) => this.deliver(payload));
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

  receiveState(): SrtReceiveState {
    return { window: this.window.capacity, held: this.window.held, missing: this.window.missing, lossRuns: this.window.gapCount };
  }

  /** Ends the connection: tells the peer (shutdown), ends `media`, stops the timers. */
  end(code: SrtEndCode, message: string, notifyPeer = code !== 'shutdown' && code !== 'idle-timeout'): void {
    if (this.endCode) return;
    this.endCode = code;
    clearInterval(this.timer);
    if (notifyPeer) this.control(Ctrl.SHUTDOWN, 0, Buffer.alloc(4));
    const level = code === 'protocol-error' ? 'warn' : 'info';
    this.log[level]('srt connection ended', { code, reason: message, ...this.stats });
    if (!this.media.destroyed) this.media.push(null);
    for (const fn of this.onEnd) fn(code, message);
  }

  handleData(p: DataPacket): void {
    if (this.endCode) return;
    this.lastHeard = performance.now();
    this.stats.packets++;
    if (p.retransmitted) this.stats.retransmitted++;
    const distance = seqDiff(p.seq, this.window.next);
    if (distance >= this.window.capacity) {
      // The sender may not run further ahead of our ACK than the flow window: whatever this is,
      // holding it would mean unbounded state. Not a stream we can follow.
      this.end(
        'protocol-error',
        `data packet ${p.seq} is ${distance} ahead of ${this.window.next}, beyond the flow window of ${this.window.capacity}`,
      );
      return;
    }
    if (!this.window.wants(p.seq)) return; // delivered, given up on, or held already
    const payload = this.open(p);
    if (!payload) return;
    const offer = this.window.offer(p.seq, payload, this.lastHeard);
    if (offer.kind === 'accepted' && offer.lost) {
      // Everything between the highest received and this one is lost: NAK it now.
      this.stats.lost += seqDiff(offer.lost[1], offer.lost[0]) + 1;
      this.control(Ctrl.NAK, 0, encodeLossList([offer.lost]));
    }
  }

  /**
   * The clear payload of a data packet; DISCARDED for one that cannot be decrypted (it is
   * acknowledged as received, so the sender does not send it again and again); null for a
   * cleartext packet on an encrypted connection, which is refused (not even counted as received).
   */
  private open(p: DataPacket): Buffer | null {
    const enc = this.init.encryption;
    if (!enc) {
      if (p.keyFlags === 0) return p.payload;
      this.stats.undecryptable++;
      return DISCARDED;
    }
    if (p.keyFlags === 0) {
      if (this.stats.cleartextRefused++ === 0) this.log.warn('srt cleartext packet refused on an encrypted connection', { seq: p.seq });
      return null;
    }
    const clear = enc.keys.decrypt(p.keyFlags, p.seq, p.payload);
    if (clear) return clear;
    if (this.stats.undecryptable++ === 0) this.log.warn('srt packet with an unknown key dropped', { seq: p.seq, keyFlags: p.keyFlags });
    return DISCARDED;
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
        if (p.cif.length >= 8) this.stats.dropped += this.window.skipThrough(p.cif.readUInt32BE(4) & 0x7fffffff);
        return;
      }
      case Ctrl.EXT:
        if (p.subtype === Ext.KMREQ) this.refreshKeys(p.cif);
        return;
      default:
        return; // keepalive, handshake retransmits, …: being heard is all that matters
    }
  }

  private deliver(payload: Buffer): void {
    this.stats.bytes += payload.length;
    if (this.media.destroyed) return;
    if (!this.media.push(payload)) this.paused = true;
  }

  /**
   * A key refresh (KMREQ in an extended control packet): the sender announces its next stream key
   * before switching to it. Installed, then confirmed by sending the key material back (KMRSP);
   * a key we cannot unwrap is answered with a one-word KMRSP carrying the state.
   */
  private refreshKeys(kmData: Buffer): void {
    const enc = this.init.encryption;
    if (!enc) return this.control(Ctrl.EXT, Ext.KMRSP, word(KmState.NOSECRET));
    if (this.lastKm?.equals(kmData)) return this.control(Ctrl.EXT, Ext.KMRSP, kmData); // a retransmission
    const km = parseKeyMaterial(kmData);
    // libsrt keeps the handshake's salt for the life of a connection; a new one would cost a
    // PBKDF2 run per KMREQ, which a peer could repeat at will.
    const refusal = !km.ok ? km.message : !km.km.salt.equals(enc.salt) ? 'the salt changed' : null;
    const keys = km.ok && !refusal ? enc.passphrase.unwrap(km.km) : null;
    if (!keys) {
      // Logged once: the count is in the end-of-connection line (a peer could send these at will).
      if (this.stats.keyRefreshesRefused++ === 0)
        this.log.warn('srt key refresh refused', { reason: refusal ?? 'not wrapped with our passphrase' });
      return this.control(Ctrl.EXT, Ext.KMRSP, word(KmState.BADSECRET));
    }
    enc.keys.install(keys);
    this.lastKm = Buffer.from(kmData);
    this.stats.keyRefreshes++;
    this.log.debug('srt stream key refreshed', { keyFlags: km.ok ? km.km.keyFlags : 0 });
    this.control(Ctrl.EXT, Ext.KMRSP, kmData);
  }

  private tick(): void {
    const now = performance.now();
    if (now - this.lastHeard > (this.init.idleTimeoutMs ?? 5000)) {
      this.end('idle-timeout', 'nothing heard from the publisher');
      return;
    }
    // Too-late drop: a gap older than the latency will not be filled in time to matter.
    const given = this.window.dropTooLate(now, Math.max(this.init.latencyMs, (2 * this.rttUs) / 1000));
    if (given) {
      this.stats.dropped += seqDiff(given[1], given[0]) + 1;
      this.log.warn('srt packets lost for good', { from: given[0], to: given[1] });
    }
    if (this.window.next !== this.lastAckedSeq) this.sendAck(now);
    // Losses still outstanding are asked for again about every RTT.
    if (this.window.missing > 0 && now - this.lastNakAt > Math.max(20, this.rttUs / 1000)) {
      this.lastNakAt = now;
      this.control(Ctrl.NAK, 0, encodeLossList(this.window.lossRanges(MAX_NAK_RANGES)));
    }
    if (now - this.lastSent > KEEPALIVE_MS) this.control(Ctrl.KEEPALIVE, 0, Buffer.alloc(4));
  }

  private sendAck(now: number): void {
    this.lastAckedSeq = this.window.next;
    this.ackNumber = (this.ackNumber + 1) & 0x7fffffff || 1;
    this.ackSentAt.set(this.ackNumber, now);
    if (this.ackSentAt.size > 64) this.ackSentAt.delete(this.ackSentAt.keys().next().value!);
    const buffered = this.window.held + Math.ceil(this.media.readableLength / 1316);
    const window = this.paused ? 2 : Math.max(2, this.window.capacity - buffered);
    const cif = Buffer.alloc(28);
    cif.writeUInt32BE(this.window.next, 0); // the first sequence number not yet received
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

function word(value: number): Buffer {
  const out = Buffer.alloc(4);
  out.writeUInt32BE(value, 0);
  return out;
}
