// The RTMP ingest's pure core: AMF0, the handshake, the chunk stream demuxer and the FLV writer,
// each checked against the bytes the specs (and ffmpeg) define, including hostile input.
import { createHmac, randomBytes } from 'node:crypto';
import { describe, expect, it } from 'vitest';
import { decodeAmf0, decodeAmf0All, encodeAmf0, encodeAmf0EcmaArray } from '../../transcoder-node/rtmp/amf0.ts';
import { ChunkStreamReader, basicHeader, encodeChunks } from '../../transcoder-node/rtmp/chunk-stream.ts';
import type { RtmpMessage } from '../../transcoder-node/rtmp/chunk-stream.ts';
import { RtmpProtocolError } from '../../transcoder-node/rtmp/errors.ts';
import { encodeFlvHeader, encodeFlvTag, flvTagsFromMessage, parseFlv } from '../../transcoder-node/rtmp/flv.ts';
import {
  HANDSHAKE_SIZE,
  HandshakeReader,
  createHandshakeReply,
  handshakeDigest,
  handshakeDigestOffset,
} from '../../transcoder-node/rtmp/handshake.ts';
import { decodeCommand, scriptDataBody } from '../../transcoder-node/rtmp/messages.ts';
import { MiB, retainedMemory } from '../support/memory.ts';

const limits = { maxMessageBytes: 1 << 20, maxChunkStreams: 8, maxBufferedBytes: 2 << 20 };

function readAll(reader: ChunkStreamReader): RtmpMessage[] {
  const out: RtmpMessage[] = [];
  for (let m = reader.read(); m; m = reader.read()) out.push(m);
  return out;
}

function u24(n: number): number[] {
  return [(n >> 16) & 0xff, (n >> 8) & 0xff, n & 0xff];
}

describe('AMF0', () => {
  it('round-trips the values of a connect command', () => {
    const values = [
      'connect',
      1,
      { app: 'live', tcUrl: 'rtmp://h/live', fpad: false, capabilities: 239, nested: { a: null, b: [1, 'x'] } },
      null,
      undefined,
    ];
    expect(decodeAmf0All(encodeAmf0(...values))).toEqual(values);
  });

  it('encodes a number as marker 0 and 8 big-endian bytes, a string as marker 2 and a 16-bit length', () => {
    expect(encodeAmf0(1).toString('hex')).toBe('003ff0000000000000');
    expect(encodeAmf0('ab').toString('hex')).toBe('0200026162');
    expect(encodeAmf0({ a: true }).toString('hex')).toBe('03' + '000161' + '0101' + '000009');
  });

  it('decodes an ECMA array (onMetaData) by its end marker, whatever its count says', () => {
    const buf = encodeAmf0EcmaArray({ width: 320, height: 240 });
    buf.writeUInt32BE(99, 1); // a wrong count, as some encoders write
    expect(decodeAmf0(buf)).toEqual({ value: { width: 320, height: 240 }, bytes: buf.length });
  });

  it('keeps a key named __proto__ as a plain key', () => {
    const buf = Buffer.concat([Buffer.of(3, 0, 9), Buffer.from('__proto__'), encodeAmf0('x'), Buffer.of(0, 0, 9)]);
    const { value } = decodeAmf0(buf);
    expect(Object.keys(value as object)).toEqual(['__proto__']);
    expect(({} as Record<string, unknown>).x).toBeUndefined();
  });

  it.each([
    ['a truncated number', Buffer.of(0, 1, 2)],
    ['a string longer than the payload', Buffer.of(2, 0xff, 0xff, 0x61)],
    ['an object without its end marker', Buffer.of(3, 0, 1, 0x61, 5)],
    ['a strict array whose count exceeds the payload', Buffer.of(0x0a, 0xff, 0xff, 0xff, 0xff, 5)],
    ['a reference', Buffer.of(7, 0, 1)],
    ['the AMF3 switch', Buffer.of(0x11, 1)],
    ['nesting 40 levels deep', Buffer.concat([...Array.from({ length: 40 }, () => Buffer.of(0x0a, 0, 0, 0, 1)), Buffer.of(5)])],
  ])('refuses %s with an RtmpProtocolError', (_what, buf) => {
    expect(() => decodeAmf0All(buf)).toThrow(RtmpProtocolError);
  });
});

describe('handshake', () => {
  it('answers a plain C1 with S0 = 3, a zero-version S1 and S2 echoing C1', () => {
    const c1 = randomBytes(HANDSHAKE_SIZE);
    c1.writeUInt32BE(0, 4);
    const reply = createHandshakeReply(c1);
    expect(reply.length).toBe(1 + 2 * HANDSHAKE_SIZE);
    expect(reply[0]).toBe(3);
    expect(reply.readUInt32BE(5)).toBe(0);
    expect(reply.subarray(1 + HANDSHAKE_SIZE).equals(c1)).toBe(true);
  });

  it('answers a digest-signed C1 with S1 and S2 that validate the way ffmpeg checks a server', () => {
    // C1 signed like ffmpeg's rtmp_handshake_imprint_with_digest (scheme 0).
    const playerKey = Buffer.from('Genuine Adobe Flash Player 001');
    const c1 = randomBytes(HANDSHAKE_SIZE);
    c1.writeUInt32BE(0x0900_7c02, 4);
    const clientPos = handshakeDigestOffset(c1, 0);
    handshakeDigest(c1, clientPos, playerKey).copy(c1, clientPos);

    const reply = createHandshakeReply(c1);
    const s1 = reply.subarray(1, 1 + HANDSHAKE_SIZE);
    const s2 = reply.subarray(1 + HANDSHAKE_SIZE);
    const serverKeyText = Buffer.from('Genuine Adobe Flash Media Server 001');
    const serverKeyFull = Buffer.concat([
      serverKeyText,
      Buffer.from('f0eec24a8068bee82e00d0d1029e7e576eec5d2d29806fab93b8e636cfeb31ae', 'hex'),
    ]);
    const serverPos = handshakeDigestOffset(s1, 0);
    expect(handshakeDigest(s1, serverPos, serverKeyText).equals(s1.subarray(serverPos, serverPos + 32))).toBe(true);
    const key = createHmac('sha256', serverKeyFull)
      .update(c1.subarray(clientPos, clientPos + 32))
      .digest();
    const signature = createHmac('sha256', key)
      .update(s2.subarray(0, HANDSHAKE_SIZE - 32))
      .digest();
    expect(signature.equals(s2.subarray(HANDSHAKE_SIZE - 32))).toBe(true);
  });

  it('replies once C0 C1 are in, however they are split, and hands on bytes after C2', () => {
    const hs = new HandshakeReader();
    const c0c1 = Buffer.concat([Buffer.of(3), randomBytes(HANDSHAKE_SIZE)]);
    const replies: Buffer[] = [];
    for (let i = 0; i < c0c1.length; i += 500) {
      const { reply } = hs.push(c0c1.subarray(i, i + 500));
      if (reply) replies.push(reply);
    }
    expect(replies).toHaveLength(1);
    expect(hs.done).toBe(false);
    const { rest } = hs.push(Buffer.concat([randomBytes(HANDSHAKE_SIZE), Buffer.from('after')]));
    expect(hs.done).toBe(true);
    expect(rest?.toString()).toBe('after');
  });

  it('refuses an HTTP request and other versions on the first bytes', () => {
    expect(() => new HandshakeReader().push(Buffer.from('GET / HTTP/1.1\r\n'))).toThrow('HTTP request on the RTMP port');
    expect(() => new HandshakeReader().push(Buffer.of(6))).toThrow('RTMPE is not supported');
    expect(() => new HandshakeReader().push(Buffer.of(0xa7, 1, 2))).toThrow('unsupported RTMP version byte 0xa7');
  });
});

describe('chunk stream', () => {
  it('reassembles a message split into 128-byte chunks (fmt 0 then fmt 3 continuations)', () => {
    const payload = randomBytes(300);
    const reader = new ChunkStreamReader(limits);
    reader.push(encodeChunks({ csid: 6, type: 9, streamId: 1, timestamp: 40, payload }, 128));
    const [msg, ...more] = readAll(reader);
    expect(more).toEqual([]);
    expect(msg).toEqual({ csid: 6, type: 9, streamId: 1, timestamp: 40, payload });
  });

  it('gives the same messages when fed one byte at a time', () => {
    const msgs: RtmpMessage[] = [
      { csid: 3, type: 20, streamId: 0, timestamp: 0, payload: randomBytes(200) },
      { csid: 4, type: 8, streamId: 1, timestamp: 23, payload: randomBytes(129) },
      { csid: 6, type: 9, streamId: 1, timestamp: 33, payload: randomBytes(1000) },
    ];
    const bytes = Buffer.concat(msgs.map((m) => encodeChunks(m, 128)));
    const reader = new ChunkStreamReader(limits);
    const out: RtmpMessage[] = [];
    for (const b of bytes) {
      reader.push(Buffer.of(b));
      out.push(...readAll(reader));
    }
    expect(out).toEqual(msgs);
    expect(reader.midMessage).toBe(false);
  });

  it('applies fmt 1 and fmt 2 deltas, and repeats the last delta for a new message with a fmt 3 header', () => {
    const reader = new ChunkStreamReader(limits);
    reader.push(
      Buffer.from([
        ...[0x04, ...u24(1000), ...u24(2), 8, 1, 0, 0, 0, 0xaa, 0xbb], // fmt 0: t=1000, len 2, audio, stream 1
        ...[0x44, ...u24(23), ...u24(1), 8, 0xcc], // fmt 1: +23, len 1
        ...[0x84, ...u24(24), 0xdd], // fmt 2: +24
        ...[0xc4, 0xee], // fmt 3, new message: +24 again
      ]),
    );
    const out = readAll(reader);
    expect(out.map((m) => [m.timestamp, m.payload.toString('hex'), m.streamId])).toEqual([
      [1000, 'aabb', 1],
      [1023, 'cc', 1],
      [1047, 'dd', 1],
      [1071, 'ee', 1],
    ]);
  });

  it('after a fmt 0 header, a fmt 3 new message adds the fmt 0 field (as ffmpeg writes and reads it)', () => {
    const reader = new ChunkStreamReader(limits);
    reader.push(Buffer.from([...[0x04, ...u24(33), ...u24(1), 8, 1, 0, 0, 0, 1], ...[0xc4, 2]]));
    expect(readAll(reader).map((m) => m.timestamp)).toEqual([33, 66]);
  });

  it('reads extended timestamps, on continuation chunks whether or not the encoder repeats them', () => {
    const ts = 0x01234567;
    const payload = randomBytes(200);
    // encodeChunks repeats the extended timestamp on continuations (Adobe, ffmpeg).
    const withRepeat = new ChunkStreamReader(limits);
    withRepeat.push(encodeChunks({ csid: 6, type: 9, streamId: 1, timestamp: ts, payload }, 128));
    expect(readAll(withRepeat)[0]).toMatchObject({ timestamp: ts, payload });

    const head = Buffer.from([0x06, 0xff, 0xff, 0xff, ...u24(200), 9, 1, 0, 0, 0, 0x01, 0x23, 0x45, 0x67]);
    const withoutRepeat = new ChunkStreamReader(limits);
    withoutRepeat.push(Buffer.concat([head, payload.subarray(0, 128), Buffer.of(0xc6), payload.subarray(128)]));
    expect(readAll(withoutRepeat)[0]).toMatchObject({ timestamp: ts, payload });
  });

  it('uses a new chunk size from the next chunk on, and drops a partial message on Abort', () => {
    const reader = new ChunkStreamReader(limits);
    reader.push(encodeChunks({ csid: 2, type: 1, streamId: 0, timestamp: 0, payload: Buffer.of(0, 0, 0x10, 0) }, 128));
    const [setChunkSize] = readAll(reader);
    reader.setChunkSize(setChunkSize!.payload.readUInt32BE(0));
    const big = randomBytes(4096);
    reader.push(encodeChunks({ csid: 6, type: 9, streamId: 1, timestamp: 0, payload: big }, 4096));
    expect(readAll(reader)[0]!.payload.equals(big)).toBe(true);

    // The first 4096-byte chunk of a two-chunk message, then Abort for its chunk stream.
    reader.push(encodeChunks({ csid: 6, type: 9, streamId: 1, timestamp: 0, payload: randomBytes(5000) }, 4096).subarray(0, 12 + 4096));
    expect(readAll(reader)).toEqual([]);
    expect(reader.midMessage).toBe(true);
    reader.abort(6);
    expect(reader.midMessage).toBe(false);
    reader.push(encodeChunks({ csid: 6, type: 9, streamId: 1, timestamp: 5, payload: Buffer.of(7) }, 4096));
    expect(readAll(reader).map((m) => m.payload.toString('hex'))).toEqual(['07']);
  });

  it('assembles each message into one buffer of its declared length: 16 MiB in 128-byte chunks adds no object per chunk', () => {
    const reader = new ChunkStreamReader({ maxMessageBytes: 0xffffff, maxChunkStreams: 8, maxBufferedBytes: 0xffffff });
    const payload = randomBytes(0xffffff);
    // All but the last byte, in socket-read-sized pieces: the message stays in progress.
    const wire = encodeChunks({ csid: 6, type: 9, streamId: 1, timestamp: 0, payload }, 128).subarray(0, -1);
    const before = retainedMemory();
    for (let i = 0; i < wire.length; i += 65536) {
      reader.push(wire.subarray(i, i + 65536));
      expect(reader.read()).toBeNull();
    }
    const after = retainedMemory();
    // One 16 MiB buffer; 131,072 chunks as objects would hold about 10 MB of heap besides.
    expect(after.heap - before.heap).toBeLessThan(1 * MiB);
    expect(after.buffers - before.buffers).toBeLessThan(0xffffff + 1 * MiB);
    reader.push(payload.subarray(-1));
    expect(reader.read()!.payload.equals(payload)).toBe(true);
  });

  it('caps audio, video, data and aggregate messages apart from the others, with limits a server can raise', () => {
    const reader = new ChunkStreamReader({
      maxMessageBytes: 1000,
      maxMediaMessageBytes: 1000,
      maxChunkStreams: 8,
      maxBufferedBytes: 1 << 20,
    });
    expect(() => {
      reader.push(Buffer.from([0x06, 0, 0, 0, ...u24(5000), 9, 1, 0, 0, 0]));
      reader.read();
    }).toThrow('message of 5000 bytes exceeds the 1000-byte limit');
    const raised = new ChunkStreamReader({ maxMessageBytes: 1000, maxChunkStreams: 8, maxBufferedBytes: 1 << 20 });
    raised.setLimits({ maxMessageBytes: 1000, maxMediaMessageBytes: 10_000, maxChunkStreams: 8, maxBufferedBytes: 1 << 20 });
    const video = { csid: 6, type: 9, streamId: 1, timestamp: 0, payload: randomBytes(5000) };
    const data = { csid: 5, type: 18, streamId: 1, timestamp: 0, payload: randomBytes(5000) };
    raised.push(Buffer.concat([encodeChunks(video, 128), encodeChunks(data, 128)]));
    expect(readAll(raised)).toEqual([video, data]);
    raised.push(encodeChunks({ csid: 3, type: 20, streamId: 0, timestamp: 0, payload: randomBytes(5000) }, 128));
    expect(() => raised.read()).toThrow('message of 5000 bytes exceeds the 1000-byte limit');
  });

  it('reads 2- and 3-byte basic headers (chunk stream ids 64 to 65599)', () => {
    expect(basicHeader(0, 64)).toEqual(Buffer.of(0, 0));
    expect(basicHeader(3, 65599)).toEqual(Buffer.of(0xc1, 0xff, 0xff));
    const reader = new ChunkStreamReader(limits);
    const a = { csid: 100, type: 8, streamId: 1, timestamp: 1, payload: randomBytes(300) };
    const b = { csid: 65599, type: 9, streamId: 1, timestamp: 2, payload: randomBytes(10) };
    reader.push(Buffer.concat([encodeChunks(a, 128), encodeChunks(b, 128)]));
    expect(readAll(reader)).toEqual([a, b]);
  });

  it.each([
    ['chunk size 0', (r: ChunkStreamReader) => r.setChunkSize(0), 'invalid chunk size 0'],
    ['chunk size with the top bit set', (r: ChunkStreamReader) => r.setChunkSize(0x80000000), 'invalid chunk size 2147483648'],
    ['chunk size 1, which the spec allows', (r: ChunkStreamReader) => r.setChunkSize(1), 'chunk size 1 is below the 128-byte minimum'],
    ['chunk size 127', (r: ChunkStreamReader) => r.setChunkSize(127), 'chunk size 127 is below the 128-byte minimum'],
    [
      'a message longer than the limit',
      (r: ChunkStreamReader) => {
        r.push(Buffer.from([0x06, 0, 0, 0, ...u24(0xfffff0), 9, 1, 0, 0, 0]));
        r.read();
      },
      'exceeds the 1048576-byte limit',
    ],
    [
      'a chunk stream that starts with a fmt 1 header',
      (r: ChunkStreamReader) => {
        r.push(Buffer.from([0x46, 0, 0, 0, 0, 0, 1, 9, 0]));
        r.read();
      },
      'starts with a fmt 1 header',
    ],
    [
      'more chunk streams than allowed',
      (r: ChunkStreamReader) => {
        for (let csid = 3; csid < 20; csid++) r.push(Buffer.from([csid, 0, 0, 0, 0, 0, 1, 9, 1, 0, 0, 0, 0]));
        readAll(r);
      },
      'more than 8 chunk streams',
    ],
    [
      'partial messages holding too many bytes',
      (r: ChunkStreamReader) => {
        // Three 900 kB messages each started with one full 128-byte chunk: 2.7 MB declared > 2 MB.
        for (const csid of [3, 4, 5])
          r.push(Buffer.concat([Buffer.from([csid, 0, 0, 0, ...u24(900_000), 9, 1, 0, 0, 0]), randomBytes(128)]));
        readAll(r);
      },
      'too many bytes held',
    ],
    [
      'a new header in the middle of a message',
      (r: ChunkStreamReader) => {
        r.push(Buffer.concat([Buffer.from([0x06, 0, 0, 0, ...u24(200), 9, 1, 0, 0, 0]), randomBytes(128), Buffer.of(0x86, 0, 0, 1)]));
        readAll(r);
      },
      'in the middle of a message',
    ],
  ])('refuses %s', (_what, act, message) => {
    const reader = new ChunkStreamReader(limits);
    expect(() => act(reader)).toThrow(RtmpProtocolError);
    expect(() => act(new ChunkStreamReader(limits))).toThrow(message);
  });
});

describe('commands', () => {
  it('decodes a publish command: name, transaction id, null object, stream name and type', () => {
    const payload = encodeAmf0('publish', 5, null, 'key-123?x=1', 'live');
    expect(decodeCommand({ csid: 8, type: 20, streamId: 1, timestamp: 0, payload })).toEqual({
      name: 'publish',
      transactionId: 5,
      object: null,
      args: ['key-123?x=1', 'live'],
    });
  });

  it('decodes an AMF3-wrapped command (type 17) by skipping its format byte', () => {
    const payload = Buffer.concat([Buffer.of(0), encodeAmf0('createStream', 2, null)]);
    expect(decodeCommand({ csid: 3, type: 17, streamId: 0, timestamp: 0, payload }).name).toBe('createStream');
  });

  it('refuses a command without a name or transaction id', () => {
    expect(() => decodeCommand({ csid: 3, type: 20, streamId: 0, timestamp: 0, payload: encodeAmf0(1, 2) })).toThrow(RtmpProtocolError);
    expect(() => decodeCommand({ csid: 3, type: 20, streamId: 0, timestamp: 0, payload: encodeAmf0('connect') })).toThrow(
      RtmpProtocolError,
    );
  });
});

describe('FLV', () => {
  it('writes the 9-byte header with audio and video flags, then PreviousTagSize0 = 0', () => {
    expect(encodeFlvHeader().toString('hex')).toBe('464c5601' + '05' + '00000009' + '00000000');
    expect(encodeFlvHeader({ audio: true, video: false })[4]).toBe(0x04);
  });

  it('writes a tag as type, 24-bit size, 24-bit timestamp, extension byte, stream id 0, body, PreviousTagSize', () => {
    const tag = encodeFlvTag({ type: 9, timestamp: 0x01020304, body: Buffer.of(0x17, 0x01) });
    expect(tag.toString('hex')).toBe('09' + '000002' + '020304' + '01' + '000000' + '1701' + '0000000d');
  });

  it('round-trips tags through the parser', () => {
    const tags = [
      { type: 18 as const, timestamp: 0, body: encodeAmf0('onMetaData', { width: 320 }) },
      { type: 9 as const, timestamp: 0, body: randomBytes(50) },
      { type: 8 as const, timestamp: 0xfffffff0, body: randomBytes(7) },
    ];
    const flv = Buffer.concat([encodeFlvHeader(), ...tags.map(encodeFlvTag)]);
    expect(parseFlv(flv)).toEqual({ audio: true, video: true, tags, trailing: 0 });
  });

  it('turns @setDataFrame onMetaData into an onMetaData script tag, keeping the bytes after the prefix', () => {
    const meta = Buffer.concat([encodeAmf0('onMetaData'), encodeAmf0EcmaArray({ width: 320, height: 240 })]);
    const payload = Buffer.concat([encodeAmf0('@setDataFrame'), meta]);
    const [tag, ...more] = flvTagsFromMessage({ csid: 4, type: 18, streamId: 1, timestamp: 0, payload });
    expect(more).toEqual([]);
    expect(tag!.type).toBe(18);
    expect(tag!.body.equals(meta)).toBe(true);
    expect(tag!.script).toEqual({ name: 'onMetaData', value: { width: 320, height: 240 } });
    expect(scriptDataBody(Buffer.concat([encodeAmf0('@clearDataFrame')]))).toBeNull();
  });

  it('passes audio and video payloads through as tag bodies and drops empty ones', () => {
    const video = { csid: 6, type: 9, streamId: 1, timestamp: 66, payload: Buffer.of(0x27, 1, 0, 0, 0, 9) };
    expect(flvTagsFromMessage(video)).toEqual([{ type: 9, timestamp: 66, body: video.payload }]);
    expect(flvTagsFromMessage({ ...video, payload: Buffer.alloc(0) })).toEqual([]);
    expect(flvTagsFromMessage({ ...video, type: 20 })).toEqual([]);
  });

  it('unpacks an aggregate message, rebasing sub-message timestamps on the aggregate timestamp', () => {
    const sub = (type: 8 | 9, ts: number, body: Buffer) => encodeFlvTag({ type, timestamp: ts, body });
    const payload = Buffer.concat([sub(9, 5000, Buffer.of(0x17, 1)), sub(8, 5010, Buffer.of(0xaf, 1)), sub(9, 5033, Buffer.of(0x27, 1))]);
    const tags = flvTagsFromMessage({ csid: 6, type: 22, streamId: 1, timestamp: 200, payload });
    expect(tags.map((t) => [t.type, t.timestamp, t.body.toString('hex')])).toEqual([
      [9, 200, '1701'],
      [8, 210, 'af01'],
      [9, 233, '2701'],
    ]);
    expect(() => flvTagsFromMessage({ csid: 6, type: 22, streamId: 1, timestamp: 0, payload: payload.subarray(0, 20) })).toThrow(
      RtmpProtocolError,
    );
  });
});
