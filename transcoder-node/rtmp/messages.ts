// RTMP message types and the messages a publishing server exchanges: protocol control, user
// control, and AMF0 commands (decoded from the client, built for the replies). Pure.
import { decodeAmf0, decodeAmf0All, encodeAmf0 } from './amf0.ts';
import type { Amf0Object, Amf0Value } from './amf0.ts';
import type { RtmpMessage } from './chunk-stream.ts';
import { RtmpProtocolError } from './errors.ts';

export const MessageType = {
  SetChunkSize: 1,
  Abort: 2,
  Acknowledgement: 3,
  UserControl: 4,
  WindowAckSize: 5,
  SetPeerBandwidth: 6,
  Audio: 8,
  Video: 9,
  DataAmf3: 15,
  SharedObjectAmf3: 16,
  CommandAmf3: 17,
  DataAmf0: 18,
  SharedObjectAmf0: 19,
  CommandAmf0: 20,
  Aggregate: 22,
} as const;

export const UserControlEvent = {
  StreamBegin: 0,
  StreamEof: 1,
  PingRequest: 6,
  PingResponse: 7,
} as const;

// Chunk stream ids the server sends on: 2 is reserved for protocol control; 3 for commands as
// every server does.
const CSID_CONTROL = 2;
const CSID_COMMAND = 3;

function control(type: number, body: Buffer): RtmpMessage {
  return { csid: CSID_CONTROL, type, streamId: 0, timestamp: 0, payload: body };
}

function u32(n: number): Buffer {
  const b = Buffer.alloc(4);
  b.writeUInt32BE(n >>> 0, 0);
  return b;
}

export function setChunkSizeMessage(size: number): RtmpMessage {
  return control(MessageType.SetChunkSize, u32(size));
}

export function windowAckSizeMessage(size: number): RtmpMessage {
  return control(MessageType.WindowAckSize, u32(size));
}

/** limitType 2 = dynamic, what servers send. */
export function setPeerBandwidthMessage(size: number, limitType: 0 | 1 | 2): RtmpMessage {
  return control(MessageType.SetPeerBandwidth, Buffer.concat([u32(size), Buffer.of(limitType)]));
}

export function acknowledgementMessage(sequence: number): RtmpMessage {
  return control(MessageType.Acknowledgement, u32(sequence));
}

export function userControlMessage(event: number, value: number): RtmpMessage {
  const b = Buffer.alloc(6);
  b.writeUInt16BE(event, 0);
  b.writeUInt32BE(value >>> 0, 2);
  return control(MessageType.UserControl, b);
}

/** The first 4-byte big-endian field of a protocol control message. */
export function readControlValue(msg: RtmpMessage): number {
  if (msg.payload.length < 4) throw new RtmpProtocolError(`control message type ${msg.type} shorter than 4 bytes`);
  return msg.payload.readUInt32BE(0);
}

/** Event type and 4-byte value of a user control message. */
export function readUserControl(msg: RtmpMessage): { event: number; value: number } {
  if (msg.payload.length < 6) throw new RtmpProtocolError('user control message shorter than 6 bytes');
  return { event: msg.payload.readUInt16BE(0), value: msg.payload.readUInt32BE(2) };
}

export interface RtmpCommand {
  name: string;
  transactionId: number;
  /** The command object; null for most commands after connect. */
  object: Amf0Object | null;
  /** Everything after the command object (publish: name, type). */
  args: Amf0Value[];
}

/** Decodes an AMF0 (type 20) or AMF3-wrapped (type 17) command message. */
export function decodeCommand(msg: RtmpMessage): RtmpCommand {
  // Type 17 puts one format byte (0) in front of AMF0 values; nobody sends real AMF3 here.
  const body = msg.type === MessageType.CommandAmf3 ? msg.payload.subarray(1) : msg.payload;
  const values = decodeAmf0All(body);
  const [name, transactionId, object, ...args] = values;
  if (typeof name !== 'string') throw new RtmpProtocolError('command without a name');
  if (typeof transactionId !== 'number' || !Number.isFinite(transactionId)) {
    throw new RtmpProtocolError(`command ${JSON.stringify(name.slice(0, 40))} without a transaction id`);
  }
  const obj = object !== null && typeof object === 'object' && !Array.isArray(object) && !(object instanceof Date) ? object : null;
  return { name, transactionId, object: obj, args };
}

export function commandMessage(
  streamId: number,
  name: string,
  transactionId: number,
  object: Amf0Object | null,
  ...args: Amf0Value[]
): RtmpMessage {
  return {
    csid: CSID_COMMAND,
    type: MessageType.CommandAmf0,
    streamId,
    timestamp: 0,
    payload: encodeAmf0(name, transactionId, object, ...args),
  };
}

/** onStatus on a NetStream; level 'error' makes ffmpeg and OBS give up the publish. */
export function onStatusMessage(streamId: number, level: 'status' | 'error', code: string, description: string): RtmpMessage {
  return commandMessage(streamId, 'onStatus', 0, null, { level, code, description });
}

/**
 * For a data message (type 18), the payload as an FLV script tag body: publishers send
 * `@setDataFrame, onMetaData, {...}` and FLV carries `onMetaData, {...}`. Returns the body
 * (a view, the original bytes kept as sent), its name and its first value, or null when the
 * message is not something an FLV reader expects (`@clearDataFrame`, no name).
 */
export function scriptDataBody(payload: Buffer): { body: Buffer; name: string; value: Amf0Value } | null {
  let body = payload;
  let first = decodeAmf0(body);
  if (first.value === '@setDataFrame') {
    body = body.subarray(first.bytes);
    if (body.length === 0) return null;
    first = decodeAmf0(body);
  }
  if (typeof first.value !== 'string' || first.value === '@clearDataFrame') return null;
  const rest = body.length > first.bytes ? decodeAmf0(body, first.bytes).value : undefined;
  return { body, name: first.value, value: rest };
}
