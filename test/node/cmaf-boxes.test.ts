// The streaming top-level box reader: boxes come out whole whatever the split, 64-bit sizes work,
// and broken framing (garbage, absurd or impossible sizes, truncation) is refused without buffering.
import { describe, expect, it } from 'vitest';
import { BoxError, BoxReader, MAX_BOX_SIZE, childBoxes, findPath, iterateBoxes, viewBox } from '../../core/cmaf/boxes.ts';
import type { Box } from '../../core/cmaf/boxes.ts';

function box(type: string, payload: Uint8Array | number[] = []): Uint8Array {
  const body = payload instanceof Uint8Array ? payload : new Uint8Array(payload);
  const out = new Uint8Array(8 + body.byteLength);
  new DataView(out.buffer).setUint32(0, out.byteLength);
  out.set(new TextEncoder().encode(type), 4);
  out.set(body, 8);
  return out;
}

function largeBox(type: string, payload: Uint8Array): Uint8Array {
  const out = new Uint8Array(16 + payload.byteLength);
  const v = new DataView(out.buffer);
  v.setUint32(0, 1);
  out.set(new TextEncoder().encode(type), 4);
  v.setBigUint64(8, BigInt(out.byteLength));
  out.set(payload, 16);
  return out;
}

function concat(...parts: Uint8Array[]): Uint8Array {
  return new Uint8Array(Buffer.concat(parts));
}

function readAll(reader: BoxReader, pieces: Uint8Array[]): Box[] {
  const out: Box[] = [];
  for (const p of pieces) out.push(...reader.push(p));
  out.push(...reader.end());
  return out;
}

const payload = (n: number, seed = 1) => Uint8Array.from({ length: n }, (_, i) => (i * 31 + seed) & 0xff);

describe('BoxReader', () => {
  const stream = concat(box('ftyp', payload(20)), box('moov', payload(300)), largeBox('mdat', payload(1000, 7)), box('free'));

  it('yields the same complete boxes for every split of the stream, with their exact bytes', () => {
    const whole = readAll(new BoxReader(), [stream]);
    expect(whole.map((b) => [b.type, b.bytes.byteLength, b.headerSize])).toEqual([
      ['ftyp', 28, 8],
      ['moov', 308, 8],
      ['mdat', 1016, 16],
      ['free', 8, 8],
    ]);
    expect(Buffer.concat(whole.map((b) => b.bytes)).equals(Buffer.from(stream))).toBe(true);
    const bytewise = readAll(
      new BoxReader(),
      Array.from(stream, (_, i) => stream.subarray(i, i + 1)),
    );
    expect(bytewise).toEqual(whole);
    for (const cut of [1, 7, 8, 9, 15, 16, 17, 28, 335, 336, 337, 351]) {
      expect(readAll(new BoxReader(), [stream.subarray(0, cut), stream.subarray(cut)])).toEqual(whole);
    }
  });

  it('hands out fresh copies: reusing the source buffer does not change an emitted box', () => {
    const source = box('styp', payload(12));
    const [b] = new BoxReader().push(source);
    source.fill(0);
    expect(b!.bytes).toEqual(box('styp', payload(12)));
  });

  it('holds only the incomplete box', () => {
    const r = new BoxReader();
    r.push(stream.subarray(0, 30));
    expect(r.buffered).toBe(2);
  });

  it('a size-0 box extends to the end of the stream and gets its real size', () => {
    const open = box('mdat', payload(40));
    new DataView(open.buffer).setUint32(0, 0);
    const boxes = readAll(new BoxReader(), [box('moof', payload(8)), open.subarray(0, 20), open.subarray(20)]);
    expect(boxes.map((b) => b.type)).toEqual(['moof', 'mdat']);
    expect(boxes[1]!.bytes).toEqual(box('mdat', payload(40)));
  });

  it('refuses a box larger than 64 MiB as soon as its header arrives, without buffering it', () => {
    const header = new Uint8Array(8);
    new DataView(header.buffer).setUint32(0, MAX_BOX_SIZE + 1);
    header.set(new TextEncoder().encode('mdat'), 4);
    const r = new BoxReader();
    expect(() => r.push(header)).toThrow(/exceeds/);
    expect(r.buffered).toBe(0);
    // Once failed, it stays failed and holds nothing.
    expect(() => r.push(new Uint8Array(1000))).toThrow(BoxError);
    expect(r.buffered).toBe(0);
  });

  it('refuses an absurd 64-bit largesize', () => {
    const b = largeBox('mdat', payload(4));
    new DataView(b.buffer).setBigUint64(8, 2n ** 62n);
    expect(() => new BoxReader().push(b)).toThrow(/exceeds/);
  });

  it('refuses sizes smaller than the header and garbage that is not a box header', () => {
    const tiny = box('moof');
    new DataView(tiny.buffer).setUint32(0, 4);
    expect(() => new BoxReader().push(tiny)).toThrow(/smaller than its header/);
    const garbage = Uint8Array.from({ length: 64 }, (_, i) => (i * 97 + 13) & 0xff);
    expect(() => new BoxReader().push(garbage)).toThrow(/not an ISO-BMFF box header/);
    expect(() => new BoxReader().push(new TextEncoder().encode('GET / HTTP/1.1\r\nHost: x\r\n\r\n'))).toThrow(BoxError);
  });

  it('refuses a stream that ends inside a box or a header', () => {
    const r = new BoxReader();
    r.push(stream.subarray(0, 100));
    expect(() => r.end()).toThrow(/stream ended inside a 'moov' box of 308 bytes/);
    const h = new BoxReader();
    h.push(new Uint8Array([0, 0]));
    expect(() => h.end()).toThrow(/box header/);
    expect(new BoxReader().end()).toEqual([]);
  });
});

describe('walking child boxes', () => {
  const tree = box(
    'moov',
    concat(box('mvhd', payload(100)), box('trak', concat(box('tkhd', payload(84)), box('mdia', box('mdhd', payload(24)))))),
  );

  it('finds children and paths', () => {
    const moov = viewBox(tree);
    expect(childBoxes(moov).map((b) => b.type)).toEqual(['mvhd', 'trak']);
    const mdhd = findPath(moov, ['trak', 'mdia', 'mdhd'])!;
    expect(mdhd.payload).toEqual(payload(24));
    expect(findPath(moov, ['trak', 'edts'])).toBeUndefined();
  });

  it('refuses a child that overruns its parent', () => {
    const broken = tree.slice();
    new DataView(broken.buffer).setUint32(8, 5000); // mvhd claims more than moov holds
    expect(() => childBoxes(viewBox(broken))).toThrow(/overruns/);
    expect(() => [...iterateBoxes(new Uint8Array(5))]).toThrow(/cannot hold a box header/);
  });
});
