// ISO-BMFF boxes: a streaming reader that turns pipe chunks (split anywhere) into complete
// top-level boxes, helpers that walk the children of a box already in memory, and writers that
// build new ones. Pure: shared by the transcoder (CMAF chunker) and the Worker (clip MP4 export).

/** Largest box we accept. A corrupt size field must not make us buffer without bound. */
export const MAX_BOX_SIZE = 64 * 1024 * 1024;

/** Broken or hostile media: the reader refuses it rather than guessing. */
export class BoxError extends Error {
  override name = 'BoxError';
}

/** One complete box: `bytes` is the whole box, header included. */
export interface Box {
  type: string;
  bytes: Uint8Array;
  /** 8, or 16 with a 64-bit largesize. */
  headerSize: number;
}

interface BoxHeader {
  type: string;
  /** Whole box size in bytes; null for size 0 ("extends to the end of the stream"). */
  size: number | null;
  headerSize: number;
}

export interface BoxReaderOptions {
  maxBoxSize?: number;
}

/**
 * Reassembles top-level boxes from a byte stream. Incoming chunks are kept as a list and each box
 * is copied once when complete, so feeding one byte at a time costs O(n), not O(n²). Emitted box
 * bytes are fresh copies: callers may keep them after the source buffers are reused.
 */
export class BoxReader {
  readonly #maxBoxSize: number;
  #chunks: Uint8Array[] = [];
  #buffered = 0;
  #header: BoxHeader | null = null;
  #failed: BoxError | null = null;

  constructor(options: BoxReaderOptions = {}) {
    this.#maxBoxSize = options.maxBoxSize ?? MAX_BOX_SIZE;
  }

  /** Bytes held that do not yet form a complete box. */
  get buffered(): number {
    return this.#buffered;
  }

  /** Adds bytes; returns the boxes they complete. Throws BoxError on malformed framing (and keeps throwing). */
  push(chunk: Uint8Array): Box[] {
    if (this.#failed) throw this.#failed;
    if (chunk.byteLength === 0) return [];
    this.#chunks.push(chunk);
    this.#buffered += chunk.byteLength;
    const out: Box[] = [];
    try {
      for (;;) {
        if (!this.#header) {
          if (this.#buffered < 8) break;
          const first = this.#peek(Math.min(16, this.#buffered));
          const header = parseTopLevelHeader(first, this.#maxBoxSize);
          if (!header) break; // largesize header not complete yet
          this.#header = header;
        }
        const { size } = this.#header;
        if (size === null || this.#buffered < size) {
          // Cap what an unterminated size-0 box may hold.
          if (size === null && this.#buffered > this.#maxBoxSize) {
            throw new BoxError(`size-0 '${this.#header.type}' box exceeds ${this.#maxBoxSize} bytes`);
          }
          break;
        }
        out.push({ type: this.#header.type, bytes: this.#take(size), headerSize: this.#header.headerSize });
        this.#header = null;
      }
    } catch (err) {
      this.#fail(err);
    }
    return out;
  }

  /**
   * The stream ended. Returns a trailing size-0 box if one was open; throws BoxError when a box
   * was cut short.
   */
  end(): Box[] {
    if (this.#failed) throw this.#failed;
    if (this.#buffered === 0) return [];
    const header = this.#header;
    if (header && header.size === null) {
      const box = { type: header.type, bytes: this.#take(this.#buffered), headerSize: header.headerSize };
      patchSize(box.bytes, header.headerSize);
      this.#header = null;
      return [box];
    }
    const what = header ? `'${header.type}' box of ${header.size} bytes` : 'box header';
    this.#fail(new BoxError(`stream ended inside a ${what} (${this.#buffered} bytes buffered)`));
  }

  #fail(err: unknown): never {
    this.#failed = err instanceof BoxError ? err : new BoxError(String(err));
    this.#chunks = [];
    this.#buffered = 0;
    throw this.#failed;
  }

  /** Copies the first n buffered bytes without consuming them (n is small: a header). */
  #peek(n: number): Uint8Array {
    const out = new Uint8Array(n);
    let filled = 0;
    for (const c of this.#chunks) {
      const k = Math.min(c.byteLength, n - filled);
      out.set(c.subarray(0, k), filled);
      filled += k;
      if (filled === n) break;
    }
    return out;
  }

  /** Removes and returns the first n buffered bytes as one fresh array. */
  #take(n: number): Uint8Array {
    const out = new Uint8Array(n);
    let filled = 0;
    let used = 0; // whole chunks consumed; removed with one splice (shift per chunk is O(n²))
    while (filled < n) {
      const c = this.#chunks[used]!;
      const k = Math.min(c.byteLength, n - filled);
      out.set(k === c.byteLength ? c : c.subarray(0, k), filled);
      filled += k;
      if (k === c.byteLength) used++;
      else this.#chunks[used] = c.subarray(k);
    }
    this.#chunks.splice(0, used);
    this.#buffered -= n;
    return out;
  }
}

/** A size-0 box, once its end is known, gets its real size written so the bytes stand alone. */
function patchSize(bytes: Uint8Array, headerSize: number): void {
  if (headerSize === 8 && bytes.byteLength <= 0xffffffff) {
    new DataView(bytes.buffer, bytes.byteOffset, 4).setUint32(0, bytes.byteLength);
  }
}

/** Top-level types are plain ASCII fourccs; anything else means we are reading garbage. */
function isPrintableType(b: Uint8Array, at: number): boolean {
  for (let i = at; i < at + 4; i++) {
    const c = b[i]!;
    if (c < 0x20 || c > 0x7e) return false;
  }
  return true;
}

function parseTopLevelHeader(b: Uint8Array, maxBoxSize: number): BoxHeader | null {
  if (!isPrintableType(b, 4)) {
    throw new BoxError(`not an ISO-BMFF box header (type bytes ${hex(b.subarray(4, 8))})`);
  }
  const type = fourcc(b, 4);
  const view = new DataView(b.buffer, b.byteOffset, b.byteLength);
  const size32 = view.getUint32(0);
  if (size32 === 0) return { type, size: null, headerSize: 8 };
  let size = size32;
  let headerSize = 8;
  if (size32 === 1) {
    if (b.byteLength < 16) return null;
    const large = view.getBigUint64(8);
    if (large > BigInt(maxBoxSize)) throw new BoxError(`'${type}' box size ${large} exceeds ${maxBoxSize} bytes`);
    size = Number(large);
    headerSize = 16;
  }
  if (size < headerSize) throw new BoxError(`'${type}' box size ${size} is smaller than its header`);
  if (size > maxBoxSize) throw new BoxError(`'${type}' box size ${size} exceeds ${maxBoxSize} bytes`);
  return { type, size, headerSize };
}

// ---------------------------------------------------------------------------------------------
// Walking boxes already in memory (init segments, moof).

export function fourcc(b: Uint8Array, at: number): string {
  return String.fromCharCode(b[at]!, b[at + 1]!, b[at + 2]!, b[at + 3]!);
}

function hex(b: Uint8Array): string {
  return Array.from(b, (x) => x.toString(16).padStart(2, '0')).join('');
}

/** A box inside a buffer; `payload` is what follows the header. Views, not copies. */
export interface BoxView {
  type: string;
  bytes: Uint8Array;
  payload: Uint8Array;
}

/** Views a whole box (header included) as a BoxView. */
export function viewBox(box: Uint8Array): BoxView {
  const boxes = [...iterateBoxes(box)];
  if (boxes.length !== 1) throw new BoxError('expected exactly one box');
  return boxes[0]!;
}

/**
 * Iterates the boxes laid end to end in `data` (a payload, or a sequence of top-level boxes).
 * Throws BoxError if a box overruns `data` or trailing bytes cannot hold a header.
 */
export function* iterateBoxes(data: Uint8Array): Generator<BoxView> {
  const view = new DataView(data.buffer, data.byteOffset, data.byteLength);
  let at = 0;
  while (at < data.byteLength) {
    if (data.byteLength - at < 8) throw new BoxError(`${data.byteLength - at} trailing bytes cannot hold a box header`);
    let size = view.getUint32(at);
    const type = fourcc(data, at + 4);
    let headerSize = 8;
    if (size === 1) {
      if (data.byteLength - at < 16) throw new BoxError(`'${type}' largesize header truncated`);
      const large = view.getBigUint64(at + 8);
      if (large > BigInt(data.byteLength - at)) throw new BoxError(`'${type}' box overruns its parent`);
      size = Number(large);
      headerSize = 16;
    } else if (size === 0) {
      size = data.byteLength - at;
    }
    if (size < headerSize) throw new BoxError(`'${type}' box size ${size} is smaller than its header`);
    if (at + size > data.byteLength) throw new BoxError(`'${type}' box overruns its parent`);
    const bytes = data.subarray(at, at + size);
    yield { type, bytes, payload: bytes.subarray(headerSize) };
    at += size;
  }
}

/**
 * Children of a container box. `skip` is how many payload bytes precede the first child: 0 for
 * plain containers, 8 for `stsd` (version/flags + entry_count), 78 for a visual sample entry,
 * 28 for an audio sample entry.
 */
export function childBoxes(box: BoxView, skip = 0): BoxView[] {
  if (skip > box.payload.byteLength) throw new BoxError(`'${box.type}' is too short for its children`);
  return [...iterateBoxes(box.payload.subarray(skip))];
}

/** The first child of the given type, or undefined. */
export function findChild(box: BoxView, type: string, skip = 0): BoxView | undefined {
  return childBoxes(box, skip).find((b) => b.type === type);
}

/** Follows a path of plain containers, e.g. `['mdia', 'minf', 'stbl']`. */
export function findPath(box: BoxView, path: readonly string[]): BoxView | undefined {
  let cur: BoxView | undefined = box;
  for (const type of path) {
    if (!cur) return undefined;
    cur = findChild(cur, type);
  }
  return cur;
}

// ---------------------------------------------------------------------------------------------
// Writing boxes (the clip export builds a new moov out of the renditions' ones).

/** A box of `type` around `payload` (concatenated); a largesize header when it needs one. */
export function writeBox(type: string, ...payload: Uint8Array[]): Uint8Array {
  if (type.length !== 4) throw new BoxError(`box type '${type}' is not a fourcc`);
  const length = payload.reduce((n, p) => n + p.byteLength, 0);
  const large = length + 8 > 0xffffffff;
  const headerSize = large ? 16 : 8;
  const out = new Uint8Array(headerSize + length);
  const view = new DataView(out.buffer);
  if (large) {
    view.setUint32(0, 1);
    view.setBigUint64(8, BigInt(out.byteLength));
  } else {
    view.setUint32(0, out.byteLength);
  }
  for (let i = 0; i < 4; i++) out[4 + i] = type.charCodeAt(i);
  let at = headerSize;
  for (const p of payload) {
    out.set(p, at);
    at += p.byteLength;
  }
  return out;
}

/** Big-endian field writers and byte helpers for building boxes. */
export function u32(n: number): Uint8Array<ArrayBuffer> {
  const b = new Uint8Array(4);
  new DataView(b.buffer).setUint32(0, n);
  return b;
}

export function i32(n: number): Uint8Array<ArrayBuffer> {
  const b = new Uint8Array(4);
  new DataView(b.buffer).setInt32(0, n);
  return b;
}

export function u64(n: bigint): Uint8Array<ArrayBuffer> {
  const b = new Uint8Array(8);
  new DataView(b.buffer).setBigUint64(0, n);
  return b;
}

export function ascii(s: string): Uint8Array<ArrayBuffer> {
  return Uint8Array.from(s, (c) => c.charCodeAt(0));
}

export function concatBytes(...parts: readonly Uint8Array[]): Uint8Array<ArrayBuffer> {
  const out = new Uint8Array(parts.reduce((n, p) => n + p.byteLength, 0));
  let at = 0;
  for (const p of parts) {
    out.set(p, at);
    at += p.byteLength;
  }
  return out;
}

/** A FullBox: version and 24-bit flags, then `payload`. */
export function writeFullBox(type: string, version: number, flags: number, ...payload: Uint8Array[]): Uint8Array {
  const head = new Uint8Array(4);
  new DataView(head.buffer).setUint32(0, ((version & 0xff) << 24) | (flags & 0xffffff));
  return writeBox(type, head, ...payload);
}
