// The receiver's window of one SRT connection: packets between the next one to deliver and the
// highest one seen, in a ring of the negotiated flow window. Every operation a packet triggers is
// O(1) or O(window / 1024) (a two-level bitmap finds the next held slot), never O(gap). Pure.
import { seqAdd, seqDiff } from './packet.ts';

/** What became of an offered packet. */
export type Offer =
  | { kind: 'accepted' /** Sequence numbers this packet revealed as lost (first, last), to NAK at once. */; lost: [number, number] | null }
  | { kind: 'duplicate' }
  /** Further ahead than the sender may be (its flow window): a protocol violation, never stored. */
  | { kind: 'beyond-window'; distance: number };

/** A run of sequence numbers found missing when a later packet arrived. */
interface Gap {
  first: number;
  last: number;
  noticedAt: number;
}

/** A received packet with nothing to deliver (it could not be decrypted): acknowledged, never NAKed. */
export const DISCARDED: Buffer = Buffer.alloc(0);

export class ReceiveWindow {
  /** How far beyond `next` a packet may be: the flow window. */
  readonly capacity: number;
  /** Slots of the ring: the capacity rounded up to whole bitmap words. */
  private readonly ringSize: number;
  private readonly slots: Array<Buffer | undefined>;
  /** One bit per slot: occupied. */
  private readonly bits: Uint32Array;
  /** One bit per word of `bits`: that word has an occupied slot. */
  private readonly summary: Uint32Array;
  /** Ring index of `next`. */
  private head = 0;
  private nextSeq: number;
  private highestSeq: number;
  private occupiedCount = 0;
  /** Gaps in ascending order; `gapHead` is the first one still ahead of `next`. */
  private gaps: Gap[] = [];
  private gapHead = 0;
  private readonly deliver: (payload: Buffer) => void;

  constructor(isn: number, capacity: number, deliver: (payload: Buffer) => void) {
    if (!(capacity >= 1)) throw new RangeError('a receive window holds at least one packet');
    this.capacity = capacity;
    this.ringSize = Math.ceil(capacity / 32) * 32;
    this.slots = new Array<Buffer | undefined>(this.ringSize);
    this.bits = new Uint32Array(this.ringSize / 32);
    this.summary = new Uint32Array(Math.ceil(this.bits.length / 32));
    this.nextSeq = isn;
    this.highestSeq = seqAdd(isn, -1);
    this.deliver = deliver;
  }

  /** The first sequence number not yet delivered (what an ACK acknowledges). */
  get next(): number {
    return this.nextSeq;
  }

  /** Packets received and waiting for an earlier one. */
  get held(): number {
    return this.occupiedCount;
  }

  /** Sequence numbers between `next` and the highest received that have not arrived. */
  get missing(): number {
    return Math.max(0, seqDiff(this.highestSeq, this.nextSeq) + 1 - this.occupiedCount);
  }

  /** Loss runs remembered (each was revealed by one packet). */
  get gapCount(): number {
    return this.gaps.length - this.gapHead;
  }

  /** Whether `seq` would be stored: within the window and not received yet (checked before decrypting). */
  wants(seq: number): boolean {
    const d = seqDiff(seq, this.nextSeq);
    return d >= 0 && d < this.capacity && !this.isOccupied(this.slotOf(d));
  }

  /** Takes a packet: delivers it (and what it unblocks) if it is next, holds it otherwise. */
  offer(seq: number, payload: Buffer, now: number): Offer {
    const d = seqDiff(seq, this.nextSeq);
    if (d < 0) return { kind: 'duplicate' };
    if (d >= this.capacity) return { kind: 'beyond-window', distance: d };
    const slot = this.slotOf(d);
    if (this.isOccupied(slot)) return { kind: 'duplicate' };
    let lost: [number, number] | null = null;
    const ahead = seqDiff(seq, this.highestSeq);
    if (ahead > 1) {
      lost = [seqAdd(this.highestSeq, 1), seqAdd(seq, -1)];
      this.gaps.push({ first: lost[0], last: lost[1], noticedAt: now });
    }
    if (ahead > 0) this.highestSeq = seq;
    this.occupy(slot, payload);
    if (d === 0) this.drain();
    return { kind: 'accepted', lost };
  }

  /**
   * Gives up on everything up to and including `last` (the sender dropped it, or it is too late):
   * held packets in that range are delivered in order, missing ones are skipped. Returns how many
   * were skipped. A `last` behind `next` or beyond the window is not a range we wait for: ignored.
   * Each round either ends or delivers a held packet, so the work is paid for by packets received.
   */
  skipThrough(last: number): number {
    let skipped = 0;
    for (;;) {
      const span = seqDiff(last, this.nextSeq) + 1;
      if (span <= 0 || span > this.capacity) return skipped;
      // Nothing beyond the highest received sequence number is held.
      const end = Math.min(span, seqDiff(this.highestSeq, this.nextSeq) + 1) - 1;
      const found = this.findOccupied(0, end);
      const run = found === -1 ? span : found;
      skipped += run;
      this.advance(run);
      this.drain();
      if (found === -1) return skipped;
    }
  }

  /**
   * Too-late drop: when the gap at `next` was noticed more than `maxAgeMs` ago, gives up on it up
   * to the first packet held after it. Returns the range given up, or null.
   */
  dropTooLate(now: number, maxAgeMs: number): [number, number] | null {
    const gap = this.gapAtNext();
    if (!gap || now - gap.noticedAt <= maxAgeMs) return null;
    const end = seqDiff(this.highestSeq, this.nextSeq);
    const found = this.findOccupied(0, end);
    if (found <= 0) return null;
    const range: [number, number] = [this.nextSeq, seqAdd(this.nextSeq, found - 1)];
    this.advance(found);
    this.drain();
    return range;
  }

  /** Missing runs from `next` on, at most `max` of them (a NAK's loss list). */
  lossRanges(max: number): Array<[number, number]> {
    const out: Array<[number, number]> = [];
    const end = seqDiff(this.highestSeq, this.nextSeq);
    let offset = 0;
    while (offset <= end && out.length < max) {
      const missingAt = this.findEmpty(offset, end);
      if (missingAt === -1) break;
      const heldAt = this.findOccupied(missingAt, end);
      const stop = heldAt === -1 ? end + 1 : heldAt;
      out.push([seqAdd(this.nextSeq, missingAt), seqAdd(this.nextSeq, stop - 1)]);
      offset = stop;
    }
    return out;
  }

  /** The gap that holds `next`, if `next` is missing. */
  private gapAtNext(): Gap | null {
    while (this.gapHead < this.gaps.length && seqDiff(this.gaps[this.gapHead]!.last, this.nextSeq) < 0) this.gapHead++;
    if (this.gapHead > 1024 && this.gapHead * 2 > this.gaps.length) {
      this.gaps = this.gaps.slice(this.gapHead);
      this.gapHead = 0;
    }
    const gap = this.gaps[this.gapHead];
    if (!gap || seqDiff(this.nextSeq, gap.first) < 0) return null;
    return this.isOccupied(this.head) ? null : gap;
  }

  /** Delivers from `next` while the slot is occupied. */
  private drain(): void {
    while (this.isOccupied(this.head)) {
      const payload = this.slots[this.head]!;
      this.release(this.head);
      this.advance(1);
      if (payload !== DISCARDED) this.deliver(payload);
    }
  }

  /** Moves `next` by n slots that hold nothing. */
  private advance(n: number): void {
    this.head = (this.head + n) % this.ringSize;
    this.nextSeq = seqAdd(this.nextSeq, n);
    if (seqDiff(this.highestSeq, this.nextSeq) < -1) this.highestSeq = seqAdd(this.nextSeq, -1);
    this.gapAtNext();
  }

  private slotOf(offset: number): number {
    return (this.head + offset) % this.ringSize;
  }

  private isOccupied(slot: number): boolean {
    return (this.bits[slot >>> 5]! & (1 << (slot & 31))) !== 0;
  }

  private occupy(slot: number, payload: Buffer): void {
    this.slots[slot] = payload;
    const w = slot >>> 5;
    this.bits[w]! |= 1 << (slot & 31);
    this.summary[w >>> 5]! |= 1 << (w & 31);
    this.occupiedCount++;
  }

  private release(slot: number): void {
    this.slots[slot] = undefined;
    const w = slot >>> 5;
    this.bits[w]! &= ~(1 << (slot & 31));
    if (this.bits[w] === 0) this.summary[w >>> 5]! &= ~(1 << (w & 31));
    this.occupiedCount--;
  }

  /** The first occupied offset in [from, to] (offsets from `next`), or -1. */
  private findOccupied(from: number, to: number): number {
    if (from > to) return -1;
    const start = this.slotOf(from);
    const span = to - from;
    // The ring wraps at most once within the window.
    const firstEnd = Math.min(this.ringSize - 1, start + span);
    const hit = this.scanOccupied(start, firstEnd);
    if (hit !== -1) return from + (hit - start);
    if (start + span < this.ringSize) return -1;
    const hit2 = this.scanOccupied(0, start + span - this.ringSize);
    return hit2 === -1 ? -1 : from + (this.ringSize - start) + hit2;
  }

  /** The first occupied slot in [a, b] (ring indices, a ≤ b), via the summary: O(words / 32). */
  private scanOccupied(a: number, b: number): number {
    const wa = a >>> 5;
    const wb = b >>> 5;
    const inWord = (w: number, lo: number, hi: number): number => {
      let m = this.bits[w]!;
      if (lo > 0) m &= ~0 << lo;
      if (hi < 31) m &= (1 << (hi + 1)) - 1;
      return m === 0 ? -1 : w * 32 + lowestBit(m);
    };
    const first = inWord(wa, a & 31, wa === wb ? b & 31 : 31);
    if (first !== -1 || wa === wb) return first;
    // Whole words between wa and wb: find one with a bit through the summary.
    for (let w = wa + 1; w < wb; ) {
      const sw = w >>> 5;
      const m = this.summary[sw]! & (~0 << (w & 31));
      if (m === 0) {
        w = (sw + 1) * 32;
        continue;
      }
      const found = sw * 32 + lowestBit(m);
      if (found >= wb) break;
      return found * 32 + lowestBit(this.bits[found]!);
    }
    return inWord(wb, 0, b & 31);
  }

  /** The first empty offset in [from, to], or -1: a word scan (used for NAK lists, per tick). */
  private findEmpty(from: number, to: number): number {
    for (let off = from; off <= to; ) {
      const slot = this.slotOf(off);
      const bit = slot & 31;
      const free = ~this.bits[slot >>> 5]! & (~0 << bit);
      if (free !== 0) {
        const at = off + (lowestBit(free) - bit);
        return at <= to ? at : -1;
      }
      off += 32 - bit;
    }
    return -1;
  }
}

function lowestBit(m: number): number {
  return 31 - Math.clz32(m & -m);
}
