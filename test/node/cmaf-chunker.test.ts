// CmafChunker on real (small) ffmpeg output and on broken variants of it: the trailing segment and
// mfra at the end of a stream, warnings for tfdt gaps and long segments, and malformed input
// (garbage, truncation, absurd sizes, boxes out of order) ending in one error event, never a throw.
import { execFile } from 'node:child_process';
import { Readable } from 'node:stream';
import { promisify } from 'node:util';
import { beforeAll, describe, expect, it } from 'vitest';
import { iterateBoxes } from '../../core/cmaf/boxes.ts';
import { CmafChunker, cmafEvents } from '../../transcoder-node/cmaf/chunker.ts';
import type { CmafChunkerEvent, CmafChunkerOptions, CmafPartEvent, CmafSegmentEvent } from '../../transcoder-node/cmaf/chunker.ts';
import { buildLadderArgs } from '../../transcoder-node/ladder.ts';
import { recordingLogger } from '../support/recording-logger.ts';

const run = promisify(execFile);

/** A one-rung ladder (160x90 video, 30 fps, 200 ms parts) to stdout; extra args go before the output. */
async function encode(seconds: number, segmentTarget: number, movflagsExtra = ''): Promise<Uint8Array> {
  const args = buildLadderArgs({
    input: { format: 'lavfi', options: ['-t', String(seconds)], url: 'testsrc2=size=160x90:rate=30' },
    ladder: [{ name: 'v', kind: 'video', width: 160, height: 90, videoBitrate: 200_000, codec: 'h264' }],
    segmentTarget,
  });
  // Same argv, but stdout instead of fd 3, and optionally without skip_trailer (to get an mfra).
  const argv = args.map((a) => (a === 'pipe:3' ? 'pipe:1' : a.replace('+skip_trailer', movflagsExtra)));
  const { stdout } = await run('ffmpeg', argv, { encoding: 'buffer', maxBuffer: 16 * 1024 * 1024 });
  return new Uint8Array(stdout);
}

function chunkAll(bytes: Uint8Array | Uint8Array[], opts: Partial<CmafChunkerOptions> = {}) {
  const logger = recordingLogger();
  const chunker = new CmafChunker({ startMsn: 7, segmentTarget: 1, partTarget: 0.2, logger, ...opts });
  const events: CmafChunkerEvent[] = [];
  for (const b of Array.isArray(bytes) ? bytes : [bytes]) events.push(...chunker.push(b));
  events.push(...chunker.end());
  return { events, logger, chunker, ...split(events) };
}

function split(events: CmafChunkerEvent[]) {
  return {
    parts: events.filter((e): e is CmafPartEvent => e.type === 'part'),
    segments: events.filter((e): e is CmafSegmentEvent => e.type === 'segment'),
    errors: events.flatMap((e) => (e.type === 'error' ? [e.error.message] : [])),
  };
}

/** Top-level boxes of a stream with their offsets. */
function topLevel(bytes: Uint8Array) {
  let at = 0;
  return [...iterateBoxes(bytes)].map((b) => {
    const start = at;
    at += b.bytes.byteLength;
    return { type: b.type, start, end: at };
  });
}

let stream: Uint8Array; // 2.5 s, keyframes every 1 s, no trailer
let withMfra: Uint8Array;
let longGop: Uint8Array; // 3 s, keyframes every 2 s
beforeAll(async () => {
  [stream, withMfra, longGop] = await Promise.all([encode(2.5, 1), encode(2.5, 1, ''), encode(3, 2)]);
}, 60_000);

describe('end of stream', () => {
  it('closes the trailing open segment on end(): 1 s, 1 s and a 0.5 s segment whose last part is short', () => {
    const { segments, parts, errors } = chunkAll(stream);
    expect(errors).toEqual([]);
    expect(segments.map((s) => [s.msn, s.duration, s.partCount])).toEqual([
      [7, 1, 5],
      [8, 1, 5],
      [9, 0.5, 3],
    ]);
    expect(parts.at(-1)!.duration).toBe(0.1);
  });

  it('ignores the mfra trailer ffmpeg writes without +skip_trailer', () => {
    expect(topLevel(withMfra).at(-1)!.type).toBe('mfra');
    const a = chunkAll(stream);
    const b = chunkAll(withMfra);
    expect(b.errors).toEqual([]);
    expect(b.events).toEqual(a.events);
  });

  it('a stream with an init segment and no fragment still yields its init on end()', () => {
    const boxes = topLevel(stream);
    const moov = boxes.find((b) => b.type === 'moov')!;
    const { events } = chunkAll(stream.subarray(0, moov.end));
    expect(events.map((e) => e.type)).toEqual(['init']);
  });
});

describe('segments close together with their final part (keyframesOnGrid, PH-01/PH-05)', () => {
  it('a part ending on the segment grid is final: its segment follows it at once, before the next part', () => {
    const { events, parts, segments, errors, chunker } = chunkAll(stream, { keyframesOnGrid: true });
    expect(errors).toEqual([]);
    expect(segments.map((s) => [s.msn, s.duration, s.partCount])).toEqual([
      [7, 1, 5],
      [8, 1, 5],
      [9, 0.5, 3],
    ]);
    const order = events.map((e) =>
      e.type === 'part' ? `${e.msn}.${e.part}${e.final ? '!' : ''}` : e.type === 'segment' ? `S${e.msn}` : e.type,
    );
    expect(order).toEqual([
      'init',
      '7.0',
      '7.1',
      '7.2',
      '7.3',
      '7.4!',
      'S7',
      '8.0',
      '8.1',
      '8.2',
      '8.3',
      '8.4!',
      'S8',
      '9.0',
      '9.1',
      '9.2',
      'S9',
    ]);
    // The part after each final one is part 0 of the next MSN, and independent: what the hint names.
    for (const [i, p] of parts.entries()) if (p.final) expect(parts[i + 1]).toMatchObject({ msn: p.msn + 1, part: 0, independent: true });
    expect(chunker.stats.gridMisses).toBe(0);
  });

  it('changes only when segments are emitted: the same parts and segment bytes as closing on the next keyframe', () => {
    const onGrid = chunkAll(stream, { keyframesOnGrid: true });
    const onKeyframe = chunkAll(stream);
    expect(onGrid.segments).toEqual(onKeyframe.segments);
    expect(onGrid.parts.map(({ final: _, ...p }) => p)).toEqual(onKeyframe.parts.map(({ final: _, ...p }) => p));
    // Without the promise a video segment closes only when the next keyframe arrives.
    expect(onKeyframe.parts.filter((p) => p.final)).toEqual([]);
  });

  it('a broken promise (no keyframe at the grid point) is counted and warned once, then segments close on keyframes', () => {
    // 2 s GOPs with a 1 s target: the part ending at 1 s is taken as final, but 1 s is no keyframe.
    const { segments, parts, errors, logger, chunker } = chunkAll(longGop, { segmentTarget: 1, keyframesOnGrid: true });
    expect(errors).toEqual([]);
    expect(chunker.stats.gridMisses).toBe(1);
    expect(logger.lines.filter((l) => l.msg.startsWith('the part after a segment boundary is not independent'))).toHaveLength(1);
    expect(segments.map((s) => [s.msn, s.duration])).toEqual([
      [7, 1],
      [8, 1],
      [9, 1],
    ]);
    expect(parts.filter((p) => p.final).map((p) => p.msn)).toEqual([7]);
    // After the miss, the next keyframe (at 2 s) closes segment 8 and starts 9.
    expect(parts.find((p) => p.msn === 9 && p.part === 0)?.independent).toBe(true);
  });
});

describe('warnings that do not stop the stream', () => {
  it('a tfdt gap (a part missing) is logged and counted, and parts keep flowing', () => {
    const boxes = topLevel(stream);
    const moofs = boxes.filter((b) => b.type === 'moof');
    // Drop the third chunk (moof + mdat).
    const gapped = Buffer.concat([stream.subarray(0, moofs[2]!.start), stream.subarray(moofs[3]!.start)]);
    const { errors, parts, logger, chunker } = chunkAll(new Uint8Array(gapped));
    expect(errors).toEqual([]);
    expect(parts).toHaveLength(12);
    expect(chunker.stats.tfdtGaps).toBe(1);
    const warning = logger.lines.find((l) => l.msg === 'tfdt is not continuous')!;
    expect(warning).toMatchObject({ expected: 2 * 3072, got: 3 * 3072, gapSeconds: 0.2 });
  });

  it('a keyframe later than the segment target makes a long segment, with a warning (MP-02)', () => {
    const { segments, errors, logger } = chunkAll(longGop, { segmentTarget: 1 });
    expect(errors).toEqual([]);
    expect(segments.map((s) => s.duration)).toEqual([2, 1]);
    expect(logger.lines.filter((l) => l.msg.startsWith('segment exceeds'))).toHaveLength(1);
  });

  it('a part longer than PART-TARGET is logged (PART-08)', () => {
    const { logger } = chunkAll(stream, { partTarget: 0.15 });
    expect(logger.lines.filter((l) => l.msg.includes('PART-08')).length).toBeGreaterThan(0);
  });
});

describe('malformed input: one error event, never a throw, nothing buffered after it', () => {
  it('garbage bytes', () => {
    const garbage = Uint8Array.from({ length: 4096 }, (_, i) => (i * 131 + 7) & 0xff);
    const c = chunkAll([garbage, stream]);
    expect(c.events.map((e) => e.type)).toEqual(['error']);
    expect(c.errors[0]).toMatch(/not an ISO-BMFF box header/);
  });

  it('garbage after good parts: the open segment is closed first, then the error; later input is ignored', () => {
    const boxes = topLevel(stream);
    const cut = boxes.filter((b) => b.type === 'moof')[7]!.start; // 7 parts in: segment 2 is open
    const chunker = new CmafChunker({ startMsn: 1, segmentTarget: 1, logger: recordingLogger() });
    const events = chunker.push(stream.subarray(0, cut));
    const failure = chunker.push(new TextEncoder().encode('\u0000\u0000\u0000\u0010\u00ff\u00ffgarbage'));
    expect(failure.map((e) => e.type)).toEqual(['segment', 'error']);
    expect(failure[0]).toMatchObject({ msn: 2, partCount: 2 });
    expect(split(events).parts).toHaveLength(7);
    expect(chunker.push(stream)).toEqual([]);
    expect(chunker.end()).toEqual([]);
  });

  it('a stream truncated inside an mdat: complete parts are kept, their segment closed, then the error', () => {
    const boxes = topLevel(stream);
    const mdat = boxes.filter((b) => b.type === 'mdat')[2]!;
    const { events, parts, errors } = chunkAll(stream.subarray(0, mdat.start + 100));
    expect(parts).toHaveLength(2);
    expect(events.map((e) => e.type)).toEqual(['init', 'part', 'part', 'segment', 'error']);
    expect(errors[0]).toMatch(/stream ended inside a 'mdat' box/);
  });

  it('an absurd box size is refused at its header, before any of its bytes are buffered', () => {
    const boxes = topLevel(stream);
    const second = boxes.filter((b) => b.type === 'moof')[1]!;
    const broken = stream.slice();
    new DataView(broken.buffer).setUint32(second.start, 0xfffffff0);
    const chunker = new CmafChunker({ startMsn: 1, segmentTarget: 1, logger: recordingLogger() });
    const events = chunker.push(broken.subarray(0, second.start + 8));
    expect(split(events).errors[0]).toMatch(/'moof' box size 4294967280 exceeds 67108864 bytes/);
    expect(chunker.push(new Uint8Array(1 << 20))).toEqual([]);
  });

  it('media before the init segment, a moof without its mdat, an mdat without a moof, a second init', () => {
    const boxes = topLevel(stream);
    const [ftyp, moov] = boxes;
    const moofs = boxes.filter((b) => b.type === 'moof');
    const mdats = boxes.filter((b) => b.type === 'mdat');
    const slice = (b: { start: number; end: number }) => stream.subarray(b.start, b.end);

    expect(chunkAll([slice(ftyp!), slice(mdats[0]!)]).errors[0]).toMatch(/'mdat' box before the init segment/);
    expect(chunkAll([slice(moofs[0]!), slice(mdats[0]!)]).errors[0]).toMatch(/'moof' box before the init segment/);
    const init = stream.subarray(0, moov!.end);
    expect(chunkAll([init, slice(moofs[0]!), slice(moofs[1]!), slice(mdats[1]!)]).errors[0]).toMatch(/moof followed by another moof/);
    expect(chunkAll([init, slice(moofs[0]!)]).errors[0]).toMatch(/moof without its mdat/);
    expect(chunkAll([init, slice(mdats[0]!)]).errors[0]).toMatch(/mdat without a preceding moof/);
    expect(chunkAll([init, slice(moofs[0]!), slice(mdats[0]!), init]).errors[0]).toMatch(/a second 'ftyp'/);
  });

  it('an mdat shorter than its trun says', () => {
    const boxes = topLevel(stream);
    const [moof0, mdat0] = [boxes.find((b) => b.type === 'moof')!, boxes.find((b) => b.type === 'mdat')!];
    const shortMdat = stream.slice(mdat0.start, mdat0.end - 10);
    new DataView(shortMdat.buffer).setUint32(0, shortMdat.byteLength);
    const { errors } = chunkAll([stream.subarray(0, moof0.end), shortMdat]);
    expect(errors[0]).toMatch(/sample data runs past the end of its mdat/);
  });

  it('a video stream with no keyframe for maxSegmentDuration is refused instead of growing forever', () => {
    const { errors, segments } = chunkAll(longGop, { maxSegmentDuration: 1.5 });
    expect(errors[0]).toMatch(/no independent part for 1.5 s/);
    expect(segments).toHaveLength(1); // the parts so far, closed before the error
  });
});

describe('delivery', () => {
  it('on() listeners get the same events in order; a throwing listener is logged, not thrown', () => {
    const logger = recordingLogger();
    const chunker = new CmafChunker({ startMsn: 1, segmentTarget: 1, logger });
    const seen: string[] = [];
    chunker.on('init', () => seen.push('init'));
    chunker.on('part', (e) => seen.push(`part ${e.msn}.${e.part}`));
    chunker.on('segment', (e) => {
      seen.push(`segment ${e.msn}`);
      throw new Error('listener bug');
    });
    const returned = [...chunker.push(stream), ...chunker.end()];
    expect(seen).toEqual(
      returned.map((e) => (e.type === 'part' ? `part ${e.msn}.${e.part}` : e.type === 'segment' ? `segment ${e.msn}` : e.type)),
    );
    expect(logger.lines.filter((l) => l.msg === 'cmaf chunker listener threw')).toHaveLength(3);

    const errors: Error[] = [];
    const broken = new CmafChunker({ startMsn: 1, segmentTarget: 1, logger }).on('error', (err) => errors.push(err));
    broken.push(new Uint8Array(64).fill(0xff));
    expect(errors).toHaveLength(1);
    expect(errors[0]).toBeInstanceOf(Error);
  });

  it('cmafEvents reads a stream through a chunker; a failing source becomes an error event', async () => {
    const collect = async (source: AsyncIterable<Uint8Array>) => {
      const out: CmafChunkerEvent[] = [];
      for await (const e of cmafEvents(
        source,
        new CmafChunker({ startMsn: 7, segmentTarget: 1, partTarget: 0.2, logger: recordingLogger() }),
      ))
        out.push(e);
      return out;
    };
    const pieces = Array.from({ length: Math.ceil(stream.byteLength / 1000) }, (_, i) => stream.subarray(i * 1000, (i + 1) * 1000));
    expect(await collect(Readable.from(pieces))).toEqual(chunkAll(stream).events);

    async function* failing() {
      yield stream.subarray(0, 5000);
      throw new Error('pipe broke');
    }
    const events = await collect(failing());
    expect(events.at(-1)).toEqual({ type: 'error', error: new Error('pipe broke') });
  });
});
