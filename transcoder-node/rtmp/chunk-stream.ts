// The RTMP chunk stream: an incremental demuxer that reassembles messages from chunks (fmt 0–3,
// extended timestamps, chunk size changes, abort) under hard limits, each message into one buffer
// of its declared length, and the encoder a server uses to chunk its own messages. Pure.
import { RtmpProtocolError } from './errors.ts';

export interface RtmpMessage {
  /** Chunk stream id the message arrived on. */
  csid: number;
  /** Message type id (1–6 protocol control, 8 audio, 9 video, 18 data, 20 command, ...). */
  type: number;
  /** Message stream id (0 for the connection, ≥ 1 for a NetStream). */
  streamId: number;
  /** Absolute timestamp in milliseconds, modulo 2^32. */
  timestamp: number;
  payload: Buffer;
}

export const DEFAULT_CHUNK_SIZE = 128;
/**
 * Smallest Set Chunk Size accepted. The spec allows 1, but no encoder goes below the default 128
 * (SRS refuses smaller too), and tiny chunks only serve to make a server parse a header per byte.
 */
export const MIN_CHUNK_SIZE = 128;
/** No message is longer than 2^24 − 1 bytes, so larger chunk sizes all mean "never split". */
const LARGEST_USEFUL_CHUNK = 0xffffff;
const EXTENDED = 0xffffff;

// Audio, video, data (metadata, cue points) and aggregate messages: the ones that carry media and
// may be large. Everything else (protocol control, user control, commands) is small.
const MEDIA_TYPES: ReadonlySet<number> = new Set([8, 9, 15, 18, 22]);

export interface ChunkReaderLimits {
  /** Largest control or command message; a larger declared length ends the connection. */
  maxMessageBytes: number;
  /** Largest audio, video, data or aggregate message. Default: maxMessageBytes. */
  maxMediaMessageBytes?: number;
  /** Chunk streams with state at once. Encoders use a handful (2–8). */
  maxChunkStreams: number;
  /** Bytes held in partly received messages across all chunk streams. */
  maxBufferedBytes: number;
}

interface ChunkStreamState {
  csid: number;
  // Header of the message in progress or of the last one, which later fmt 1–3 headers inherit.
  type: number;
  streamId: number;
  length: number;
  timestamp: number;
  /** The last 24-bit timestamp field read on this chunk stream, or 0xffffff if it was extended. */
  tsField: number;
  /** The value a fmt 1–3 header adds: the last delta, or the absolute value of a fmt 0 header. */
  delta: number;
  /** The extended timestamp read with this message's first chunk, to spot it on continuations. */
  extendedValue: number;
  /** A message has started on this chunk stream and is not complete. */
  inProgress: boolean;
  /** The message in progress, allocated at its declared length when its first chunk header arrives. */
  payload: Buffer | null;
  received: number;
}

/**
 * Pull-based: `push` bytes, then call `read` until it returns null. `read` stops right after each
 * complete message, so a Set Chunk Size or Abort applies before the next chunk is parsed, and the
 * caller can stop reading (back-pressure, an async check) without the reader running ahead.
 */
export class ChunkStreamReader {
  private limits: ChunkReaderLimits;
  private buf: Buffer = Buffer.alloc(0);
  private pos = 0;
  private chunkSize = DEFAULT_CHUNK_SIZE;
  private readonly streams = new Map<number, ChunkStreamState>();
  /** Declared lengths of all messages in progress: what finishing them would hold in memory. */
  private reserved = 0;
  // The chunk whose payload is being read, when its header is done.
  private current: ChunkStreamState | null = null;
  private chunkLeft = 0;

  constructor(limits: ChunkReaderLimits) {
    this.limits = limits;
  }

  /**
   * New limits from the next message on (messages in progress keep the room they have). A server
   * raises them once a publish is accepted: before that nobody has shown a stream key.
   */
  setLimits(limits: ChunkReaderLimits): void {
    this.limits = limits;
  }

  push(data: Buffer): void {
    if (this.pos >= this.buf.length) {
      this.buf = data;
    } else {
      // Only a partial chunk header (< 18 bytes) or unread input of a paused caller is left here.
      this.buf = Buffer.concat([this.buf.subarray(this.pos), data]);
    }
    this.pos = 0;
  }

  /**
   * Incoming Set Chunk Size. The spec (5.4.1) allows 1 to 2^31 − 1 (the top bit is 0); of those,
   * sizes below MIN_CHUNK_SIZE are refused too. A refused size ends the connection.
   */
  setChunkSize(size: number): void {
    if (!Number.isInteger(size) || size < 1 || size > 0x7fffffff) {
      throw new RtmpProtocolError(`invalid chunk size ${size}`);
    }
    if (size < MIN_CHUNK_SIZE) {
      throw new RtmpProtocolError(`chunk size ${size} is below the ${MIN_CHUNK_SIZE}-byte minimum`);
    }
    this.chunkSize = Math.min(size, LARGEST_USEFUL_CHUNK);
  }

  /** Incoming Abort: drop the partial message on a chunk stream. */
  abort(csid: number): void {
    const st = this.streams.get(csid);
    // Aborting the message whose chunk is being read cannot happen: the Abort itself arrived
    // after that chunk ended.
    if (!st?.inProgress || st === this.current) return;
    this.finish(st);
  }

  private finish(st: ChunkStreamState): void {
    this.reserved -= st.length;
    st.inProgress = false;
    st.payload = null;
    st.received = 0;
  }

  /** True while some message is partly received: a disconnect now loses it. */
  get midMessage(): boolean {
    if (this.pos < this.buf.length) return true;
    for (const st of this.streams.values()) if (st.inProgress) return true;
    return false;
  }

  /** The next complete message, or null when more bytes are needed. Throws RtmpProtocolError. */
  read(): RtmpMessage | null {
    for (;;) {
      if (!this.current) {
        if (!this.readChunkHeader()) return null;
      }
      const st = this.current!;
      const available = this.buf.length - this.pos;
      if (available === 0 && this.chunkLeft > 0) return null;
      const take = Math.min(available, this.chunkLeft);
      if (take > 0) {
        // Copied into the message's own buffer: no object per chunk, and a partial message never
        // pins a socket read buffer. Memory is the declared length, however the bytes are cut.
        this.buf.copy(st.payload!, st.received, this.pos, this.pos + take);
        this.pos += take;
        this.chunkLeft -= take;
        st.received += take;
      }
      if (this.chunkLeft > 0) return null;
      this.current = null;
      if (st.received === st.length) {
        const payload = st.payload!;
        this.finish(st);
        return { csid: st.csid, type: st.type, streamId: st.streamId, timestamp: st.timestamp, payload };
      }
    }
  }

  /** Parses one chunk header if all of it is buffered; sets `current` and `chunkLeft`. */
  private readChunkHeader(): boolean {
    const buf = this.buf;
    let p = this.pos;
    const left = buf.length - p;
    if (left < 1) return false;
    const b0 = buf.readUInt8(p);
    const fmt = b0 >> 6;
    let csid = b0 & 0x3f;
    let basic = 1;
    if (csid === 0) basic = 2;
    else if (csid === 1) basic = 3;
    const messageHeader = fmt === 0 ? 11 : fmt === 1 ? 7 : fmt === 2 ? 3 : 0;
    if (left < basic + messageHeader) return false;
    if (basic === 2) csid = 64 + buf.readUInt8(p + 1);
    else if (basic === 3) csid = 64 + buf.readUInt8(p + 1) + buf.readUInt8(p + 2) * 256;
    p += basic;

    let st = this.streams.get(csid);
    if (!st) {
      if (fmt !== 0) throw new RtmpProtocolError(`chunk stream ${csid} starts with a fmt ${fmt} header`);
      if (this.streams.size >= this.limits.maxChunkStreams) {
        throw new RtmpProtocolError(`more than ${this.limits.maxChunkStreams} chunk streams`);
      }
    }
    const continuing = st?.inProgress;
    if (continuing && fmt !== 3) {
      // A new header while a message is unfinished: the spec has no meaning for this.
      throw new RtmpProtocolError(`fmt ${fmt} header on chunk stream ${csid} in the middle of a message`);
    }

    let tsField = st?.tsField ?? 0;
    let length = st?.length ?? 0;
    let type = st?.type ?? 0;
    let streamId = st?.streamId ?? 0;
    if (fmt <= 2) tsField = buf.readUIntBE(p, 3);
    if (fmt <= 1) {
      length = buf.readUIntBE(p + 3, 3);
      type = buf.readUInt8(p + 6);
    }
    if (fmt === 0) streamId = buf.readUInt32LE(p + 7);
    p += messageHeader;

    // Extended timestamp: present after a 0xffffff field, and (per Adobe and ffmpeg) repeated in
    // fmt 3 continuation chunks; some encoders omit that repeat, so on continuations it is taken
    // only if the next 4 bytes equal the value read with the message's first chunk.
    let timestampValue = tsField;
    if (tsField === EXTENDED) {
      if (buf.length - p < 4) return false;
      const ext = buf.readUInt32BE(p);
      if (!continuing) {
        timestampValue = ext;
        p += 4;
      } else if (ext === st!.extendedValue) {
        p += 4;
      }
    }

    if (!continuing) {
      const limit = MEDIA_TYPES.has(type) ? (this.limits.maxMediaMessageBytes ?? this.limits.maxMessageBytes) : this.limits.maxMessageBytes;
      if (length > limit) {
        throw new RtmpProtocolError(`message of ${length} bytes exceeds the ${limit}-byte limit`);
      }
      if (this.reserved + length > this.limits.maxBufferedBytes) {
        throw new RtmpProtocolError('too many bytes held in partly received messages');
      }
    }

    if (!st) {
      st = {
        csid,
        type,
        streamId,
        length,
        timestamp: 0,
        tsField,
        delta: 0,
        extendedValue: 0,
        inProgress: false,
        payload: null,
        received: 0,
      };
      this.streams.set(csid, st);
    }

    if (!continuing) {
      st.inProgress = true;
      this.reserved += length;
      // Within the limits just checked; unsafe (not zeroed) is fine because a payload is handed
      // out only once every byte of it was received.
      st.payload = Buffer.allocUnsafe(length);
      st.type = type;
      st.streamId = streamId;
      st.length = length;
      st.tsField = tsField;
      if (tsField === EXTENDED) st.extendedValue = timestampValue;
      if (fmt === 0) {
        st.timestamp = timestampValue;
        // What a following fmt 3 header adds: ffmpeg's writer and reader (and SRS) treat the
        // fmt 0 field as the delta to repeat, so that is what is kept here.
        st.delta = timestampValue;
      } else if (fmt === 1 || fmt === 2) {
        st.delta = timestampValue;
        st.timestamp = (st.timestamp + timestampValue) >>> 0;
      } else {
        st.timestamp = (st.timestamp + st.delta) >>> 0;
      }
    }

    this.pos = p;
    this.current = st;
    this.chunkLeft = Math.min(this.chunkSize, st.length - st.received);
    return true;
  }
}

/** Splits a message into chunks: one fmt 0 header, then fmt 3 continuations. */
export function encodeChunks(msg: RtmpMessage, chunkSize: number): Buffer {
  const extended = msg.timestamp >= EXTENDED;
  const header0 = Buffer.alloc(11 + (extended ? 4 : 0));
  header0.writeUIntBE(extended ? EXTENDED : msg.timestamp, 0, 3);
  header0.writeUIntBE(msg.payload.length, 3, 3);
  header0.writeUInt8(msg.type, 6);
  header0.writeUInt32LE(msg.streamId, 7);
  if (extended) header0.writeUInt32BE(msg.timestamp >>> 0, 11);
  const cont = extended ? Buffer.alloc(4) : null;
  if (cont) cont.writeUInt32BE(msg.timestamp >>> 0, 0);

  const parts: Buffer[] = [basicHeader(0, msg.csid), header0];
  let off = 0;
  do {
    if (off > 0) {
      parts.push(basicHeader(3, msg.csid));
      if (cont) parts.push(cont);
    }
    const end = Math.min(off + chunkSize, msg.payload.length);
    parts.push(msg.payload.subarray(off, end));
    off = end;
  } while (off < msg.payload.length);
  return Buffer.concat(parts);
}

/** The 1–3 byte basic header of a chunk. */
export function basicHeader(fmt: number, csid: number): Buffer {
  if (csid < 2 || csid > 65599) throw new RangeError(`chunk stream id ${csid} out of range`);
  if (csid < 64) return Buffer.of((fmt << 6) | csid);
  if (csid < 320) return Buffer.of(fmt << 6, csid - 64);
  return Buffer.of((fmt << 6) | 1, (csid - 64) & 0xff, (csid - 64) >> 8);
}
