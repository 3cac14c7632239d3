// AMF0, the value encoding of RTMP commands and FLV script data: a bounds-checked decoder (input is
// untrusted, so every read is checked and nesting is capped) and an encoder for what a server sends.
import { RtmpProtocolError } from './errors.ts';

export type Amf0Value = number | boolean | string | null | undefined | Date | Amf0Value[] | Amf0Object;
export interface Amf0Object {
  [key: string]: Amf0Value;
}

const T = {
  number: 0x00,
  boolean: 0x01,
  string: 0x02,
  object: 0x03,
  null: 0x05,
  undefined: 0x06,
  reference: 0x07,
  ecmaArray: 0x08,
  objectEnd: 0x09,
  strictArray: 0x0a,
  date: 0x0b,
  longString: 0x0c,
  unsupported: 0x0d,
  xmlDocument: 0x0f,
  typedObject: 0x10,
} as const;

// Real command objects and onMetaData are one or two levels deep; the cap stops a crafted
// payload from recursing the stack away.
const MAX_DEPTH = 16;

/** Decodes consecutive AMF0 values until the buffer is used up. Throws RtmpProtocolError on bad input. */
export function decodeAmf0All(buf: Buffer): Amf0Value[] {
  const reader = new Amf0Reader(buf);
  const values: Amf0Value[] = [];
  while (reader.offset < buf.length) values.push(reader.value(0));
  return values;
}

/** Decodes one AMF0 value at `offset` and says how many bytes it took. */
export function decodeAmf0(buf: Buffer, offset = 0): { value: Amf0Value; bytes: number } {
  const reader = new Amf0Reader(buf, offset);
  const value = reader.value(0);
  return { value, bytes: reader.offset - offset };
}

class Amf0Reader {
  readonly buf: Buffer;
  offset: number;

  constructor(buf: Buffer, offset = 0) {
    this.buf = buf;
    this.offset = offset;
  }

  private need(n: number, what: string): void {
    if (this.offset + n > this.buf.length) throw new RtmpProtocolError(`AMF0: truncated ${what}`);
  }

  private u8(): number {
    this.need(1, 'value');
    return this.buf.readUInt8(this.offset++);
  }

  private utf8(length: number): string {
    this.need(length, 'string');
    const s = this.buf.toString('utf8', this.offset, this.offset + length);
    this.offset += length;
    return s;
  }

  private shortString(): string {
    this.need(2, 'string length');
    const length = this.buf.readUInt16BE(this.offset);
    this.offset += 2;
    return this.utf8(length);
  }

  private properties(depth: number): Amf0Object {
    // A null prototype, so a key named __proto__ is just a key.
    const obj = Object.create(null) as Amf0Object;
    for (;;) {
      const key = this.shortString();
      if (key === '') {
        if (this.u8() !== T.objectEnd) throw new RtmpProtocolError('AMF0: object without end marker');
        return obj;
      }
      obj[key] = this.value(depth + 1);
    }
  }

  value(depth: number): Amf0Value {
    if (depth > MAX_DEPTH) throw new RtmpProtocolError('AMF0: nesting too deep');
    const marker = this.u8();
    switch (marker) {
      case T.number: {
        this.need(8, 'number');
        const n = this.buf.readDoubleBE(this.offset);
        this.offset += 8;
        return n;
      }
      case T.boolean:
        return this.u8() !== 0;
      case T.string:
        return this.shortString();
      case T.longString:
      case T.xmlDocument: {
        this.need(4, 'long string length');
        const length = this.buf.readUInt32BE(this.offset);
        this.offset += 4;
        return this.utf8(length);
      }
      case T.object:
        return this.properties(depth);
      case T.typedObject:
        this.shortString(); // the class name carries nothing we use
        return this.properties(depth);
      case T.ecmaArray:
        // The count is a hint that encoders get wrong; the end marker is what terminates it.
        this.need(4, 'ECMA array count');
        this.offset += 4;
        return this.properties(depth);
      case T.strictArray: {
        this.need(4, 'array count');
        const count = this.buf.readUInt32BE(this.offset);
        this.offset += 4;
        // Each element takes at least one byte: a larger count is a lie, refused before looping.
        if (count > this.buf.length - this.offset) throw new RtmpProtocolError('AMF0: array count exceeds payload');
        const out: Amf0Value[] = [];
        for (let i = 0; i < count; i++) out.push(this.value(depth + 1));
        return out;
      }
      case T.date: {
        this.need(10, 'date');
        const ms = this.buf.readDoubleBE(this.offset);
        this.offset += 10; // 8 bytes of milliseconds, 2 of a time zone that is always ignored
        return new Date(ms);
      }
      case T.null:
        return null;
      case T.undefined:
      case T.unsupported:
        return undefined;
      default:
        // References (0x07), movie clips, record sets and the AMF3 switch (0x11) never appear in
        // what publishers send; accepting them would mean trusting offsets into earlier data.
        throw new RtmpProtocolError(`AMF0: unsupported type marker 0x${marker.toString(16)}`);
    }
  }
}

/** Encodes values back to back, the layout of a command message. */
export function encodeAmf0(...values: Amf0Value[]): Buffer {
  const parts: Buffer[] = [];
  for (const v of values) writeValue(parts, v, 0);
  return Buffer.concat(parts);
}

/** Encodes an object as an ECMA array, the type onMetaData uses. */
export function encodeAmf0EcmaArray(obj: Amf0Object): Buffer {
  const head = Buffer.alloc(5);
  head.writeUInt8(T.ecmaArray, 0);
  head.writeUInt32BE(Object.keys(obj).length, 1);
  const parts = [head];
  writeProperties(parts, obj, 0);
  return Buffer.concat(parts);
}

function writeValue(parts: Buffer[], v: Amf0Value, depth: number): void {
  if (depth > MAX_DEPTH) throw new RangeError('AMF0: nesting too deep to encode');
  if (v === null) {
    parts.push(Buffer.of(T.null));
  } else if (v === undefined) {
    parts.push(Buffer.of(T.undefined));
  } else if (typeof v === 'number') {
    const b = Buffer.alloc(9);
    b.writeUInt8(T.number, 0);
    b.writeDoubleBE(v, 1);
    parts.push(b);
  } else if (typeof v === 'boolean') {
    parts.push(Buffer.of(T.boolean, v ? 1 : 0));
  } else if (typeof v === 'string') {
    const s = Buffer.from(v, 'utf8');
    if (s.length <= 0xffff) {
      const h = Buffer.alloc(3);
      h.writeUInt8(T.string, 0);
      h.writeUInt16BE(s.length, 1);
      parts.push(h, s);
    } else {
      const h = Buffer.alloc(5);
      h.writeUInt8(T.longString, 0);
      h.writeUInt32BE(s.length, 1);
      parts.push(h, s);
    }
  } else if (v instanceof Date) {
    const b = Buffer.alloc(11);
    b.writeUInt8(T.date, 0);
    b.writeDoubleBE(v.getTime(), 1);
    parts.push(b);
  } else if (Array.isArray(v)) {
    const h = Buffer.alloc(5);
    h.writeUInt8(T.strictArray, 0);
    h.writeUInt32BE(v.length, 1);
    parts.push(h);
    for (const item of v) writeValue(parts, item, depth + 1);
  } else {
    parts.push(Buffer.of(T.object));
    writeProperties(parts, v, depth);
  }
}

function writeProperties(parts: Buffer[], obj: Amf0Object, depth: number): void {
  for (const [key, value] of Object.entries(obj)) {
    const k = Buffer.from(key, 'utf8');
    if (k.length === 0 || k.length > 0xffff) throw new RangeError('AMF0: property names are 1 to 65535 bytes');
    const h = Buffer.alloc(2);
    h.writeUInt16BE(k.length, 0);
    parts.push(h, k);
    writeValue(parts, value, depth + 1);
  }
  parts.push(Buffer.of(0, 0, T.objectEnd));
}
