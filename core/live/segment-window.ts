// The DVR window of one rendition as the StreamState DO holds it: segments oldest first, appended
// at the live edge and dropped from the front, with every per-request question (by MSN, by time,
// the tail a delta update lists) answered in O(log n) or O(listed), never O(window). A 2-hour
// window at 1 s segments is 7,200 entries; a blocking reload must cost the same as with 60.

/** What the window needs of a segment. MSNs strictly increase; PDTs never decrease. */
export interface WindowEntry {
  msn: number;
  /** ms since the Unix epoch (EXT-X-PROGRAM-DATE-TIME). */
  programDateTime: number;
  /** EXTINF seconds, null while the segment is open (only the last one may be). */
  duration: number | null;
}

/** Compaction of the dropped prefix happens past this many dropped entries (amortised O(1) shift). */
const COMPACT_AFTER = 1024;

export class SegmentWindow<T extends WindowEntry> {
  private items: T[] = [];
  private head = 0;
  /** Sum of the complete segments' durations in µs (integers: no drift over hours of additions). */
  private completeMicros = 0;

  get length(): number {
    return this.items.length - this.head;
  }

  /** The entry at `index` (0 = oldest); negative counts from the end like Array#at. */
  at(index: number): T | undefined {
    const i = index < 0 ? this.items.length + index : this.head + index;
    return i >= this.head && i < this.items.length ? this.items[i] : undefined;
  }

  get first(): T | undefined {
    return this.at(0);
  }

  get last(): T | undefined {
    return this.at(-1);
  }

  /** Seconds of complete segments in the window. */
  get completeSeconds(): number {
    return this.completeMicros / 1e6;
  }

  push(entry: T): void {
    this.items.push(entry);
    if (entry.duration !== null) this.completeMicros += micros(entry.duration);
  }

  /** Sets the duration of the open last segment (it just closed). */
  closeLast(duration: number): void {
    const last = this.last;
    if (!last) throw new RangeError('the window is empty');
    if (last.duration !== null) this.completeMicros -= micros(last.duration);
    last.duration = duration;
    this.completeMicros += micros(duration);
  }

  /** Drops the oldest entry. */
  shift(): T | undefined {
    if (this.length === 0) return undefined;
    const entry = this.items[this.head]!;
    this.items[this.head] = undefined as unknown as T; // let it be collected before compaction
    this.head++;
    if (entry.duration !== null) this.completeMicros -= micros(entry.duration);
    if (this.head >= COMPACT_AFTER && this.head * 2 >= this.items.length) {
      this.items = this.items.slice(this.head);
      this.head = 0;
    }
    return entry;
  }

  /** Drops everything (a new broadcast starts a new window). */
  clear(): void {
    this.items = [];
    this.head = 0;
    this.completeMicros = 0;
  }

  /** Index of the segment with this MSN, or −1 (binary search: MSNs may skip but only grow). */
  indexOfMsn(msn: number): number {
    let lo = this.head;
    let hi = this.items.length - 1;
    while (lo <= hi) {
      const mid = (lo + hi) >>> 1;
      const m = this.items[mid]!.msn;
      if (m === msn) return mid - this.head;
      if (m < msn) lo = mid + 1;
      else hi = mid - 1;
    }
    return -1;
  }

  byMsn(msn: number): T | undefined {
    const i = this.indexOfMsn(msn);
    return i < 0 ? undefined : this.at(i);
  }

  /**
   * Index of the segment that contains wall-clock time `ms`: the last one starting at or before
   * it. 0 when `ms` is before the window; the last index when it is at or after the live edge.
   */
  indexAtTime(ms: number): number {
    let lo = this.head;
    let hi = this.items.length - 1;
    let found = this.head;
    while (lo <= hi) {
      const mid = (lo + hi) >>> 1;
      if (this.items[mid]!.programDateTime <= ms) {
        found = mid;
        lo = mid + 1;
      } else hi = mid - 1;
    }
    return found - this.head;
  }

  /** Entries from `start` (inclusive) to `end` (exclusive), copied: O(end − start). */
  slice(start = 0, end = this.length): T[] {
    return this.items.slice(this.head + Math.max(0, start), this.head + Math.min(this.length, end));
  }

  /** A read-only view of the entries from `start` on, without copying (for the window maths). */
  view(start = 0): { readonly length: number; at(index: number): T | undefined } {
    const length = Math.max(0, this.length - start);
    return { length, at: (i: number) => (i >= 0 && i < length ? this.at(start + i) : undefined) };
  }
}

function micros(seconds: number): number {
  return Math.round(seconds * 1e6);
}
