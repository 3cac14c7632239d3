// One MP4 file out of a clip's CMAF tracks (a video rendition and the audio rendition, or one of
// them): a regular, non-fragmented MP4 (ftyp, mdat, moov) whose sample tables are rebuilt from the
// fragments' truns, with an edit list per track that starts the presentation at the clip's start
// part and ends it with its end part. A fragmented file would be simpler, but ffmpeg 5.1 and
// Chromium ignore edit lists in one (they showed the lead-in from the segment's keyframe); in a
// regular file both honour them. Written in one pass: the media go out fragment by fragment,
// interleaved by time, and the moov, which only needs the tables, comes last. Pure: the export job
// (workers/exports/clip-export.ts) feeds it R2 objects and stores what it returns.
import {
  BoxError,
  ascii,
  childBoxes,
  concatBytes,
  findChild,
  findPath,
  i32,
  iterateBoxes,
  u32,
  viewBox,
  writeBox,
  writeFullBox,
  type BoxView,
} from './boxes.ts';
import { isSyncSample, parseFragmentSamples, parseInit, type InitInfo, type TrackInfo } from './fmp4.ts';

/** A track of the file, in the order given to the muxer (ids 1, 2, …). */
export interface ClipTrack {
  kind: TrackInfo['kind'];
  codec: string;
  /** The track id the rendition's fragments carry, and the one it has in the file. */
  sourceTrackId: number;
  trackId: number;
  timescale: number;
}

/** One trun's samples and their bytes. */
export interface MuxRun {
  bytes: Uint8Array;
  durations: number[];
  sizes: number[];
  flags: number[];
  compositionOffsets: number[];
}

/** A movie fragment of one track, parsed: what the interleaver orders and the muxer writes. */
export interface MuxFragment {
  /** Index of its track in ClipMp4Muxer.tracks. */
  track: number;
  /** Seconds: decode time on the broadcast's timeline (all renditions share it). */
  time: number;
  decodeTime: bigint;
  runs: MuxRun[];
}

export interface ClipTiming {
  /** Seconds from the first sample of the first track to where the presentation starts. */
  startOffset: number;
  /** Seconds of presentation. */
  duration: number;
}

/** Movie timescale of the file (mvhd, tkhd and edit list durations): milliseconds. */
export const MOVIE_TIMESCALE = 1000;
const MDAT_HEADER_SIZE = 8;

interface TrackState {
  meta: ClipTrack;
  init: InitInfo;
  tkhd: BoxView;
  mdhd: BoxView;
  hdlr: BoxView;
  minfHeaders: BoxView[];
  stsd: BoxView;
  firstTicks: bigint | null;
  /** Decode time of the next sample, in ticks from the first. */
  nextDts: bigint;
  durations: number[];
  sizes: number[];
  /** 1-based numbers of sync samples. */
  syncSamples: number[];
  compositionOffsets: number[];
  chunks: Array<{ offset: number; samples: number }>;
}

/**
 * Assembles the file: `head` first (ftyp and the mdat header), then the bytes `add` returns for
 * each fragment in order, then the moov `finish` returns; `patchHead` writes the mdat's size
 * into the head once it is known.
 */
export class ClipMp4Muxer {
  readonly tracks: ClipTrack[];
  readonly head: Uint8Array;
  readonly #state: TrackState[];
  readonly #mvhd: BoxView;
  readonly #ftypSize: number;
  /** Bytes of media written into the mdat so far. */
  #mdat = 0;

  constructor(inits: readonly Uint8Array[]) {
    if (inits.length === 0) throw new BoxError('a clip file needs at least one track');
    let mvhd: BoxView | undefined;
    this.#state = inits.map((init, i) => {
      const info = parseInit(init);
      if (info.tracks.length !== 1) throw new BoxError(`a rendition's init must hold one track, not ${info.tracks.length}`);
      const track = info.tracks[0]!;
      const moov = required(
        [...iterateBoxes(init)].find((b) => b.type === 'moov'),
        'moov',
      );
      mvhd ??= required(findChild(moov, 'mvhd'), 'mvhd');
      const trak = required(
        childBoxes(moov).find((b) => b.type === 'trak'),
        'trak',
      );
      const minf = required(findPath(trak, ['mdia', 'minf']), 'minf');
      return {
        meta: { kind: track.kind, codec: track.codec, sourceTrackId: track.trackId, trackId: i + 1, timescale: track.timescale },
        init: info,
        tkhd: required(findChild(trak, 'tkhd'), 'tkhd'),
        mdhd: required(findPath(trak, ['mdia', 'mdhd']), 'mdhd'),
        hdlr: required(findPath(trak, ['mdia', 'hdlr']), 'hdlr'),
        minfHeaders: childBoxes(minf).filter((b) => b.type !== 'stbl'),
        stsd: required(findPath(minf, ['stbl', 'stsd']), 'stsd'),
        firstTicks: null,
        nextDts: 0n,
        durations: [],
        sizes: [],
        syncSamples: [],
        compositionOffsets: [],
        chunks: [],
      };
    });
    this.#mvhd = mvhd!;
    this.tracks = this.#state.map((s) => s.meta);
    const brands = ['isom', 'iso2', ...(this.tracks.some((t) => t.codec.startsWith('avc')) ? ['avc1'] : []), 'mp41'];
    const ftyp = writeBox('ftyp', ascii('isom'), u32(0x200), ...brands.map(ascii));
    this.#ftypSize = ftyp.byteLength;
    this.head = concatBytes(ftyp, u32(0), ascii('mdat'));
  }

  /**
   * True when `init` (another epoch's init of the same rendition) describes the samples of track
   * `index` byte for byte, so its fragments can continue the track.
   */
  sameSampleDescription(index: number, init: Uint8Array): boolean {
    const s = this.#state[index]!;
    const info = parseInit(init);
    const t = info.tracks[0];
    if (info.tracks.length !== 1 || !t || t.trackId !== s.meta.sourceTrackId || t.timescale !== s.meta.timescale) return false;
    const moov = [...iterateBoxes(init)].find((b) => b.type === 'moov');
    const trak = moov && childBoxes(moov).find((b) => b.type === 'trak');
    const stsd = trak && findPath(trak, ['mdia', 'minf', 'stbl', 'stsd']);
    return !!stsd && equalBytes(stsd.bytes, s.stsd.bytes);
  }

  /**
   * The fragments of one segment of track `index` (or of its first bytes, cut after a part),
   * parsed against the track's init. Boxes between fragments (styp, prft, emsg) are dropped.
   */
  fragments(index: number, bytes: Uint8Array): MuxFragment[] {
    const s = this.#state[index];
    if (!s) throw new BoxError(`no track ${index}`);
    const out: MuxFragment[] = [];
    let moof: BoxView | null = null;
    for (const box of iterateBoxes(bytes)) {
      if (box.type === 'moof') {
        if (moof) throw new BoxError('moof without its mdat');
        moof = box;
      } else if (box.type === 'mdat') {
        if (!moof) throw new BoxError('mdat without a moof');
        const trafs = parseFragmentSamples(moof.bytes, s.init);
        if (trafs.length !== 1) throw new BoxError(`a rendition's moof must hold one traf, not ${trafs.length}`);
        const traf = trafs[0]!;
        if (traf.sampleDescriptionIndex !== null && traf.sampleDescriptionIndex !== 1)
          throw new BoxError('a fragment names another sample description');
        const moofAt = moof.bytes.byteOffset - bytes.byteOffset;
        const dataStart = box.payload.byteOffset - bytes.byteOffset;
        const dataEnd = dataStart + box.payload.byteLength;
        const runs = traf.runs.map((r) => {
          const from = moofAt + r.dataOffset;
          const length = r.sizes.reduce((n, x) => n + x, 0);
          if (from < dataStart || from + length > dataEnd) throw new BoxError('trun data lies outside its mdat');
          return {
            bytes: bytes.subarray(from, from + length),
            durations: r.durations,
            sizes: r.sizes,
            flags: r.flags,
            compositionOffsets: r.compositionOffsets,
          };
        });
        out.push({ track: index, time: Number(traf.baseMediaDecodeTime) / s.meta.timescale, decodeTime: traf.baseMediaDecodeTime, runs });
        moof = null;
      }
    }
    if (moof) throw new BoxError('segment ends inside a fragment');
    return out;
  }

  /** Records a fragment's samples at the end of the mdat; returns the bytes to write there. */
  add(f: MuxFragment): Uint8Array[] {
    const s = this.#state[f.track]!;
    s.firstTicks ??= f.decodeTime;
    const at = f.decodeTime - s.firstTicks;
    if (at < 0n) throw new BoxError('fragments of a track out of order');
    if (at !== s.nextDts && s.durations.length > 0) {
      // A gap or an overlap in the source timeline: the previous sample absorbs it, so samples
      // keep their decode times (a regular MP4 has only durations).
      const last = s.durations.length - 1;
      const stretched = BigInt(s.durations[last]!) + (at - s.nextDts);
      if (stretched > 0n && stretched <= 0xffffffffn) s.durations[last] = Number(stretched);
    }
    s.nextDts = at;
    const out: Uint8Array[] = [];
    for (const run of f.runs) {
      if (run.sizes.length === 0) continue;
      s.chunks.push({ offset: this.#mdat, samples: run.sizes.length });
      for (let i = 0; i < run.sizes.length; i++) {
        s.durations.push(run.durations[i]!);
        s.sizes.push(run.sizes[i]!);
        s.compositionOffsets.push(run.compositionOffsets[i]!);
        if (isSyncSample(run.flags[i]!)) s.syncSamples.push(s.sizes.length);
        s.nextDts += BigInt(run.durations[i]!);
      }
      this.#mdat += run.bytes.byteLength;
      out.push(run.bytes);
    }
    return out;
  }

  /** Bytes of the whole file so far (head and media). */
  get size(): number {
    return this.head.byteLength + this.#mdat;
  }

  /**
   * The moov, to write after the media: sample tables of everything added, and per track an
   * edit list that shows [start, start + duration) of the clip. A track whose first sample comes
   * after the start (audio cut a little later than video) begins with an empty edit.
   */
  finish(timing: ClipTiming): Uint8Array {
    if (this.head.byteLength + this.#mdat > 0xffffffff) throw new BoxError('a clip file over 4 GiB');
    const first = this.#state[0]!;
    if (first.firstTicks === null) throw new BoxError('the first track has no samples');
    const start = Number(first.firstTicks) / first.meta.timescale + timing.startOffset;
    const duration = Math.round(timing.duration * MOVIE_TIMESCALE);
    if (!(duration > 0)) throw new BoxError('a clip file needs a positive duration');
    const traks = this.#state.map((s) => {
      if (s.firstTicks === null || s.sizes.length === 0) throw new BoxError(`track ${s.meta.trackId} has no samples`);
      const ts = s.meta.timescale;
      const firstTime = Number(s.firstTicks) / ts;
      const edits: Array<{ duration: number; mediaTime: number }> = [];
      if (firstTime > start + 0.5 / ts) {
        const empty = Math.min(duration, Math.round((firstTime - start) * MOVIE_TIMESCALE));
        edits.push({ duration: empty, mediaTime: -1 });
        if (duration > empty) edits.push({ duration: duration - empty, mediaTime: 0 });
      } else {
        edits.push({ duration, mediaTime: Math.round((start - firstTime) * ts) });
      }
      const mediaDuration = s.durations.reduce((n, d) => n + d, 0);
      const stbl = writeBox('stbl', s.stsd.bytes, ...this.#sampleTables(s));
      const minf = writeBox('minf', ...s.minfHeaders.map((b) => b.bytes), stbl);
      const mdia = writeBox('mdia', patchDuration(s.mdhd, mediaDuration, 'mdhd'), s.hdlr.bytes, minf);
      return writeBox('trak', patchTkhd(s.tkhd, s.meta.trackId, duration), writeBox('edts', editList(edits)), mdia);
    });
    return writeBox('moov', patchMvhd(this.#mvhd, duration, this.#state.length + 1), ...traks);
  }

  /** Writes the mdat's size into bytes that begin with `head` (call after the last `add`). */
  patchHead(bytes: Uint8Array): void {
    new DataView(bytes.buffer, bytes.byteOffset).setUint32(this.#ftypSize, MDAT_HEADER_SIZE + this.#mdat);
  }

  #sampleTables(s: TrackState): Uint8Array[] {
    const boxes: Uint8Array[] = [];
    // stts: run-length decode deltas.
    const stts = runs(s.durations);
    boxes.push(writeFullBox('stts', 0, 0, u32(stts.length), ...stts.flatMap(([count, value]) => [u32(count), u32(value)])));
    // ctts only with reordering; version 1 (signed) when an offset is negative.
    if (s.compositionOffsets.some((c) => c !== 0)) {
      const ctts = runs(s.compositionOffsets);
      boxes.push(
        writeFullBox(
          'ctts',
          s.compositionOffsets.some((c) => c < 0) ? 1 : 0,
          0,
          u32(ctts.length),
          ...ctts.flatMap(([count, value]) => [u32(count), i32(value)]),
        ),
      );
    }
    // stss only when some sample is not a sync sample (absent: every sample is, as in audio).
    if (s.syncSamples.length < s.sizes.length) boxes.push(writeFullBox('stss', 0, 0, u32(s.syncSamples.length), ...s.syncSamples.map(u32)));
    // stsc: one chunk per trun, runs of chunks with the same sample count.
    const stsc: Array<[number, number]> = [];
    s.chunks.forEach((c, i) => {
      if (stsc.at(-1)?.[1] !== c.samples) stsc.push([i + 1, c.samples]);
    });
    boxes.push(
      writeFullBox('stsc', 0, 0, u32(stsc.length), ...stsc.flatMap(([firstChunk, samples]) => [u32(firstChunk), u32(samples), u32(1)])),
    );
    const constant = s.sizes.every((x) => x === s.sizes[0]);
    boxes.push(writeFullBox('stsz', 0, 0, u32(constant ? s.sizes[0]! : 0), u32(s.sizes.length), ...(constant ? [] : s.sizes.map(u32))));
    const base = this.head.byteLength;
    boxes.push(writeFullBox('stco', 0, 0, u32(s.chunks.length), ...s.chunks.map((c) => u32(base + c.offset))));
    return boxes;
  }
}

/** A reconnection inside the clip changed how a track's samples are described (its encoder settings). */
export class ClipEncodingChanged extends BoxError {
  override name = 'ClipEncodingChanged';
  readonly track: number;
  constructor(track: number) {
    super(`the encoding of track ${track + 1} changed inside the clip`);
    this.track = track;
  }
}

/** One segment of a track, as the caller read it. */
export interface ClipSegmentSource {
  /** The segment's bytes (just its first bytes, whole parts, when the clip ends inside it). */
  bytes: Uint8Array;
  /** The init segment of its epoch, when that differs from the previous segment's (a reconnection). */
  init?: Uint8Array;
}

export interface MuxClipOptions {
  /** Each track's init segment (of its first segment's epoch), in file order. */
  inits: readonly Uint8Array[];
  /** How many segments each track has. */
  segmentCounts: readonly number[];
  readSegment(track: number, index: number): Promise<ClipSegmentSource>;
  /** Receives the file in order: the head, the media, the moov. */
  write(bytes: Uint8Array): Promise<void>;
  timing: ClipTiming;
}

/**
 * Writes a whole clip file: reads each track's segments one by one (the next one only when the
 * interleaver needs it), writes the media in decode-time order, then the moov. Returns the muxer,
 * whose `patchHead` the caller applies to the first bytes it wrote.
 */
export async function muxClip(o: MuxClipOptions): Promise<ClipMp4Muxer> {
  const muxer = new ClipMp4Muxer(o.inits);
  const interleaver = new FragmentInterleaver<MuxFragment>(o.inits.length);
  const next = o.inits.map(() => 0);
  await o.write(muxer.head);
  while (!interleaver.done) {
    const t = interleaver.next();
    if (t !== null) {
      const index = next[t]!++;
      if (index >= o.segmentCounts[t]!) {
        interleaver.end(t);
      } else {
        const seg = await o.readSegment(t, index);
        if (seg.init && !muxer.sameSampleDescription(t, seg.init)) throw new ClipEncodingChanged(t);
        interleaver.push(muxer.fragments(t, seg.bytes));
      }
    }
    for (const fragment of interleaver.take()) for (const bytes of muxer.add(fragment)) await o.write(bytes);
  }
  await o.write(muxer.finish(o.timing));
  return muxer;
}

/**
 * Interleaves the tracks' fragments by decode time while each track's segments arrive one by
 * one: a fragment is released once every track that has not ended has one queued, so about a
 * segment per track is held at most.
 */
export class FragmentInterleaver<F extends { track: number; time: number }> {
  readonly #queues: F[][];
  readonly #ended: boolean[];

  constructor(trackCount: number) {
    this.#queues = Array.from({ length: trackCount }, () => []);
    this.#ended = Array.from({ length: trackCount }, () => false);
  }

  /** The track whose next segment is needed before more can be released; null when none is. */
  next(): number | null {
    for (let i = 0; i < this.#queues.length; i++) if (!this.#ended[i] && this.#queues[i]!.length === 0) return i;
    return null;
  }

  push(fragments: readonly F[]): void {
    for (const f of fragments) this.#queues[f.track]!.push(f);
  }

  /** The track has no more segments. */
  end(track: number): void {
    this.#ended[track] = true;
  }

  get done(): boolean {
    return this.#ended.every(Boolean) && this.#queues.every((q) => q.length === 0);
  }

  /** Fragments that can be written now, in decode-time order (the lower track first on a tie). */
  take(): F[] {
    const out: F[] = [];
    for (;;) {
      let pick = -1;
      for (let i = 0; i < this.#queues.length; i++) {
        const q = this.#queues[i]!;
        if (q.length === 0) {
          if (!this.#ended[i]) return out;
          continue;
        }
        if (pick < 0 || q[0]!.time < this.#queues[pick]![0]!.time) pick = i;
      }
      if (pick < 0) return out;
      out.push(this.#queues[pick]!.shift()!);
    }
  }
}

// ---------------------------------------------------------------------------------------------

/** [count, value] runs of equal consecutive values. */
function runs(values: readonly number[]): Array<[number, number]> {
  const out: Array<[number, number]> = [];
  for (const v of values) {
    const last = out.at(-1);
    if (last && last[1] === v) last[0]++;
    else out.push([1, v]);
  }
  return out;
}

function patchMvhd(mvhd: BoxView, duration: number, nextTrackId: number): Uint8Array {
  const bytes = mvhd.bytes.slice();
  const box = viewBox(bytes);
  const v1 = box.payload[0] === 1;
  const v = view(box.payload, v1 ? 112 : 100, 'mvhd');
  v.setUint32(v1 ? 20 : 12, MOVIE_TIMESCALE);
  if (v1) v.setBigUint64(24, BigInt(duration));
  else v.setUint32(16, duration);
  v.setUint32(box.payload.byteLength - 4, nextTrackId);
  return bytes;
}

function patchTkhd(tkhd: BoxView, trackId: number, duration: number): Uint8Array {
  const bytes = tkhd.bytes.slice();
  const box = viewBox(bytes);
  const v1 = box.payload[0] === 1;
  const v = view(box.payload, v1 ? 36 : 24, 'tkhd');
  // Enabled and in the movie (flags 1 | 2), whatever the rendition said.
  v.setUint32(0, v.getUint32(0) | 0x3);
  v.setUint32(v1 ? 20 : 12, trackId);
  if (v1) v.setBigUint64(28, BigInt(duration));
  else v.setUint32(20, duration);
  return bytes;
}

/** mdhd with the media's duration (ticks). */
function patchDuration(mdhd: BoxView, duration: number, what: string): Uint8Array {
  const bytes = mdhd.bytes.slice();
  const box = viewBox(bytes);
  const v1 = box.payload[0] === 1;
  const v = view(box.payload, v1 ? 32 : 20, what);
  if (v1) v.setBigUint64(24, BigInt(duration));
  else if (duration > 0xffffffff) throw new BoxError(`${what} duration overflows 32 bits`);
  else v.setUint32(16, duration);
  return bytes;
}

function editList(edits: ReadonlyArray<{ duration: number; mediaTime: number }>): Uint8Array {
  const wide = edits.some((e) => e.duration > 0xffffffff || e.mediaTime > 0x7fffffff);
  const entry = wide ? 20 : 12;
  const body = new Uint8Array(4 + edits.length * entry);
  const v = new DataView(body.buffer);
  v.setUint32(0, edits.length);
  edits.forEach((e, i) => {
    const at = 4 + i * entry;
    if (wide) {
      v.setBigUint64(at, BigInt(e.duration));
      v.setBigInt64(at + 8, BigInt(e.mediaTime));
      v.setInt16(at + 16, 1); // media_rate_integer 1, fraction 0
    } else {
      v.setUint32(at, e.duration);
      v.setInt32(at + 4, e.mediaTime);
      v.setInt16(at + 8, 1);
    }
  });
  return writeFullBox('elst', wide ? 1 : 0, 0, body);
}

function equalBytes(a: Uint8Array, b: Uint8Array): boolean {
  if (a.byteLength !== b.byteLength) return false;
  for (let i = 0; i < a.byteLength; i++) if (a[i] !== b[i]) return false;
  return true;
}

function required<T>(x: T | undefined, what: string): T {
  if (x === undefined) throw new BoxError(`missing '${what}' box`);
  return x;
}

function view(b: Uint8Array, minLength: number, what: string): DataView {
  if (b.byteLength < minLength) throw new BoxError(`'${what}' is too short (${b.byteLength} < ${minLength} bytes)`);
  return new DataView(b.buffer, b.byteOffset, b.byteLength);
}
