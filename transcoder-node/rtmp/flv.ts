// FLV, the byte stream the ingest hands to ffmpeg (`-f flv -i pipe:0`): the file header, tags with
// their PreviousTagSize trailer, the mapping from RTMP media messages to tags, and a strict parser
// for the round trip. RTMP audio/video payloads are FLV tag bodies already, so bodies pass as sent.
import type { Amf0Value } from './amf0.ts';
import type { RtmpMessage } from './chunk-stream.ts';
import { RtmpProtocolError } from './errors.ts';
import { MessageType, scriptDataBody } from './messages.ts';

export const FlvTagType = { Audio: 8, Video: 9, Script: 18 } as const;
export type FlvTagTypeId = (typeof FlvTagType)[keyof typeof FlvTagType];

export interface FlvTag {
  type: FlvTagTypeId;
  /** Milliseconds, 32 bits (24 in the tag's timestamp field, 8 in its extension byte). */
  timestamp: number;
  body: Buffer;
}

/** A tag made from an RTMP message; script tags also carry their decoded name and first value. */
export interface IngestTag extends FlvTag {
  script?: { name: string; value: Amf0Value };
}

const HEADER_SIZE = 9;
const TAG_HEADER_SIZE = 11;

/**
 * "FLV", version 1, the audio/video flags, header size 9, then PreviousTagSize0 = 0. ffmpeg's
 * demuxer creates streams from the tags it meets, so claiming both tracks is harmless when one is
 * missing; it only makes probing wait for a track that does not come.
 */
export function encodeFlvHeader(tracks: { audio: boolean; video: boolean } = { audio: true, video: true }): Buffer {
  const b = Buffer.alloc(HEADER_SIZE + 4);
  b.write('FLV', 0, 'latin1');
  b.writeUInt8(1, 3);
  b.writeUInt8((tracks.audio ? 0x04 : 0) | (tracks.video ? 0x01 : 0), 4);
  b.writeUInt32BE(HEADER_SIZE, 5);
  return b;
}

/** One tag: 11-byte header, body, and the 4-byte size of both (PreviousTagSize of the next). */
export function encodeFlvTag(tag: FlvTag): Buffer {
  if (tag.body.length > 0xffffff) throw new RangeError('FLV tag bodies are at most 2^24 - 1 bytes');
  const b = Buffer.alloc(TAG_HEADER_SIZE + tag.body.length + 4);
  const ts = tag.timestamp >>> 0;
  b.writeUInt8(tag.type, 0);
  b.writeUIntBE(tag.body.length, 1, 3);
  b.writeUIntBE(ts & 0xffffff, 4, 3);
  b.writeUInt8(ts >>> 24, 7);
  b.writeUIntBE(0, 8, 3); // stream id, always 0
  tag.body.copy(b, TAG_HEADER_SIZE);
  b.writeUInt32BE(TAG_HEADER_SIZE + tag.body.length, TAG_HEADER_SIZE + tag.body.length);
  return b;
}

/**
 * The FLV tags an RTMP message becomes: audio, video and script data one each (empty media
 * payloads are dropped: a zero-length tag carries no codec byte), aggregate messages unpacked.
 * Other message types give none. Throws RtmpProtocolError on a malformed aggregate or script body.
 */
export function flvTagsFromMessage(msg: RtmpMessage): IngestTag[] {
  switch (msg.type) {
    case MessageType.Audio:
    case MessageType.Video:
      if (msg.payload.length === 0) return [];
      return [{ type: msg.type, timestamp: msg.timestamp, body: msg.payload }];
    case MessageType.DataAmf0:
    case MessageType.DataAmf3: {
      // Type 15 carries AMF0 values after one format byte, like type 17 commands.
      const payload = msg.type === MessageType.DataAmf3 ? msg.payload.subarray(1) : msg.payload;
      if (payload.length === 0) return [];
      const script = scriptDataBody(payload);
      if (!script) return [];
      return [{ type: FlvTagType.Script, timestamp: msg.timestamp, body: script.body, script: { name: script.name, value: script.value } }];
    }
    case MessageType.Aggregate:
      return unpackAggregate(msg);
    default:
      return [];
  }
}

/**
 * An aggregate message is a run of FLV tags (without the file header). Sub-message timestamps
 * are relative: the first one maps to the aggregate's own timestamp (RTMP spec 7.1.6).
 */
function unpackAggregate(msg: RtmpMessage): IngestTag[] {
  const out: IngestTag[] = [];
  const p = msg.payload;
  let off = 0;
  let base: number | null = null;
  while (off < p.length) {
    if (p.length - off < TAG_HEADER_SIZE) throw new RtmpProtocolError('aggregate message: truncated sub-message header');
    const type = p.readUInt8(off);
    const size = p.readUIntBE(off + 1, 3);
    const ts = (p.readUIntBE(off + 4, 3) | (p.readUInt8(off + 7) << 24)) >>> 0;
    const bodyStart = off + TAG_HEADER_SIZE;
    if (p.length - bodyStart < size) throw new RtmpProtocolError('aggregate message: sub-message overruns the payload');
    base ??= ts;
    const sub: RtmpMessage = {
      csid: msg.csid,
      type,
      streamId: msg.streamId,
      timestamp: (msg.timestamp + ts - base) >>> 0,
      payload: p.subarray(bodyStart, bodyStart + size),
    };
    // Sub-messages of other types (or nested aggregates) have no place in FLV.
    if (type === MessageType.Audio || type === MessageType.Video || type === MessageType.DataAmf0) {
      out.push(...flvTagsFromMessage(sub));
    }
    // The back pointer after each sub-message is optional in practice; skip it when present.
    off = Math.min(p.length, bodyStart + size + 4);
  }
  return out;
}

export interface ParsedFlv {
  audio: boolean;
  video: boolean;
  tags: FlvTag[];
  /** Bytes at the end that do not yet form a whole tag. */
  trailing: number;
}

/** Parses an FLV byte stream strictly (header, tag sizes and every PreviousTagSize). */
export function parseFlv(buf: Buffer): ParsedFlv {
  if (buf.length < HEADER_SIZE + 4 || buf.toString('latin1', 0, 3) !== 'FLV') throw new Error('not an FLV stream');
  const flags = buf.readUInt8(4);
  const dataOffset = buf.readUInt32BE(5);
  if (buf.readUInt32BE(dataOffset) !== 0) throw new Error('PreviousTagSize0 is not 0');
  const tags: FlvTag[] = [];
  let off = dataOffset + 4;
  while (buf.length - off >= TAG_HEADER_SIZE) {
    const type = buf.readUInt8(off);
    const size = buf.readUIntBE(off + 1, 3);
    if (buf.length - off < TAG_HEADER_SIZE + size + 4) break;
    if (type !== FlvTagType.Audio && type !== FlvTagType.Video && type !== FlvTagType.Script) {
      throw new Error(`unknown FLV tag type ${type} at byte ${off}`);
    }
    const timestamp = (buf.readUIntBE(off + 4, 3) | (buf.readUInt8(off + 7) << 24)) >>> 0;
    const body = buf.subarray(off + TAG_HEADER_SIZE, off + TAG_HEADER_SIZE + size);
    const prev = buf.readUInt32BE(off + TAG_HEADER_SIZE + size);
    if (prev !== TAG_HEADER_SIZE + size) throw new Error(`bad PreviousTagSize ${prev} after tag at byte ${off}`);
    tags.push({ type, timestamp, body });
    off += TAG_HEADER_SIZE + size + 4;
  }
  return { audio: (flags & 0x04) !== 0, video: (flags & 0x01) !== 0, tags, trailing: buf.length - off };
}
