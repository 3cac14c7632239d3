// Hand-built CMAF media for tests that need real box structure without an encoder: a one-track
// init segment (ftyp + moov with mvex/trex, as ffmpeg's fragmented output has it) and movie
// fragments (moof + mdat, movie-fragment-relative addressing) whose samples carry a tag of their
// track and decode time, so a remuxed file can be checked sample by sample. And a reader of
// regular MP4 files: each track's samples (decode time, file offset, size, sync) from its tables.
import {
  ascii,
  childBoxes,
  concatBytes,
  findChild,
  findPath,
  i32,
  iterateBoxes,
  u32,
  u64,
  writeBox,
  writeFullBox,
  type BoxView,
} from '../../core/cmaf/boxes.ts';

const u8 = (...n: number[]) => Uint8Array.from(n);
const zeros = (n: number) => new Uint8Array(n);

export interface InitOptions {
  kind: 'video' | 'audio';
  timescale: number;
  trackId?: number;
  width?: number;
  height?: number;
  /** Bytes that make this init's sample description differ (a changed encoder configuration). */
  codecPrivate?: Uint8Array;
}

/** ftyp + moov of one track, laid out like ffmpeg's `empty_moov` output. */
export function initSegment(o: InitOptions): Uint8Array<ArrayBuffer> {
  const trackId = o.trackId ?? 1;
  const ftyp = writeBox('ftyp', ascii('iso5'), u32(0x200), ascii('iso5'), ascii('iso6'), ascii('mp41'));
  const mvhd = writeFullBox(
    'mvhd',
    0,
    0,
    u32(0),
    u32(0),
    u32(1000),
    u32(0),
    u32(0x00010000),
    u8(1, 0),
    zeros(10),
    matrix(),
    zeros(24),
    u32(trackId + 1),
  );
  const video = o.kind === 'video';
  const width = o.width ?? 640;
  const height = o.height ?? 360;
  const tkhd = writeFullBox(
    'tkhd',
    0,
    3,
    u32(0),
    u32(0),
    u32(trackId),
    u32(0),
    u32(0),
    zeros(8),
    u8(0, 0, 0, 0),
    video ? u8(0, 0) : u8(1, 0),
    u8(0, 0),
    matrix(),
    u32(video ? width << 16 : 0),
    u32(video ? height << 16 : 0),
  );
  const mdhd = writeFullBox('mdhd', 0, 0, u32(0), u32(0), u32(o.timescale), u32(0), u8(0x55, 0xc4, 0, 0));
  const hdlr = writeFullBox(
    'hdlr',
    0,
    0,
    u32(0),
    ascii(video ? 'vide' : 'soun'),
    zeros(12),
    ascii(video ? 'VideoHandler\0' : 'SoundHandler\0'),
  );
  const mediaHeader = video ? writeFullBox('vmhd', 0, 1, zeros(8)) : writeFullBox('smhd', 0, 0, zeros(4));
  const dinf = writeBox('dinf', writeFullBox('dref', 0, 0, u32(1), writeFullBox('url ', 0, 1)));
  const entry = video
    ? writeBox(
        'avc1',
        zeros(6),
        u8(0, 1),
        zeros(16),
        u8(width >> 8, width & 0xff, height >> 8, height & 0xff),
        u32(0x00480000),
        u32(0x00480000),
        u32(0),
        u8(0, 1),
        zeros(32),
        u8(0, 0x18, 0xff, 0xff),
        writeBox('avcC', u8(1, 0x64, 0, 0x1e, 0xff, 0xe0, 0), o.codecPrivate ?? new Uint8Array()),
      )
    : writeBox(
        'mp4a',
        zeros(6),
        u8(0, 1),
        zeros(8),
        u8(0, 2, 0, 16),
        zeros(4),
        u32(o.timescale << 16),
        ...(o.codecPrivate ? [writeBox('free', o.codecPrivate)] : []),
      );
  const stsd = writeFullBox('stsd', 0, 0, u32(1), entry);
  const empty = (type: string, n: number) => writeFullBox(type, 0, 0, zeros(n));
  const stbl = writeBox('stbl', stsd, empty('stts', 4), empty('stsc', 4), empty('stsz', 8), empty('stco', 4));
  const trak = writeBox('trak', tkhd, writeBox('mdia', mdhd, hdlr, writeBox('minf', mediaHeader, dinf, stbl)));
  const trex = writeFullBox('trex', 0, 0, u32(trackId), u32(1), u32(0), u32(0), u32(video ? 0x01010000 : 0x02000000));
  return concatBytes(ftyp, writeBox('moov', mvhd, trak, writeBox('mvex', trex)));
}

function matrix(): Uint8Array {
  return concatBytes(u32(0x00010000), u32(0), u32(0), u32(0), u32(0x00010000), u32(0), u32(0), u32(0), u32(0x40000000));
}

export interface SampleSpec {
  duration: number;
  size: number;
  sync: boolean;
  /** Composition time offset (signed; a version-1 trun). */
  cto?: number;
}

export interface FragmentOptions {
  trackId?: number;
  sequence: number;
  decodeTime: bigint | number;
  samples: SampleSpec[];
  /** Split the samples into this many truns (one traf). */
  runs?: number;
  /** Sample payloads; by default `sampleTag(tag, decodeTime)` repeated to the sample's size. */
  tag?: number;
  /** Boxes before the moof (a CMAF chunk's styp). */
  styp?: boolean;
  /** An explicit base data offset in the tfhd (which the remuxer must refuse). */
  baseDataOffset?: boolean;
  /** Shift the data offset of the first trun (a corrupt fragment). */
  corruptDataOffset?: number;
}

/** [styp] moof mdat: one traf, default-base-is-moof, per-sample duration/size/flags (and cto). */
export function fragment(o: FragmentOptions): Uint8Array<ArrayBuffer> {
  const trackId = o.trackId ?? 1;
  const runCount = Math.max(1, Math.min(o.runs ?? 1, o.samples.length));
  const per = Math.ceil(o.samples.length / runCount);
  const groups: SampleSpec[][] = [];
  for (let i = 0; i < o.samples.length; i += per) groups.push(o.samples.slice(i, i + per));
  const withCto = o.samples.some((s) => s.cto);
  const trunFlags = 0x001 | 0x100 | 0x200 | 0x400 | (withCto ? 0x800 : 0);
  const build = (offsets: number[]) => {
    const truns = groups.map((g, r) =>
      writeFullBox(
        'trun',
        withCto ? 1 : 0,
        trunFlags,
        u32(g.length),
        i32(offsets[r]!),
        ...g.flatMap((s) => [u32(s.duration), u32(s.size), u32(s.sync ? 0x02000000 : 0x01010000), ...(withCto ? [i32(s.cto ?? 0)] : [])]),
      ),
    );
    const tfhd = o.baseDataOffset
      ? writeFullBox('tfhd', 0, 0x000001, u32(trackId), u64(0n))
      : writeFullBox('tfhd', 0, 0x020000, u32(trackId));
    const traf = writeBox('traf', tfhd, writeFullBox('tfdt', 1, 0, u64(BigInt(o.decodeTime))), ...truns);
    return writeBox('moof', writeFullBox('mfhd', 0, 0, u32(o.sequence)), traf);
  };
  const size = build(groups.map(() => 0)).byteLength;
  const offsets: number[] = [];
  let at = size + 8;
  for (const g of groups) {
    offsets.push(at);
    at += g.reduce((n, s) => n + s.size, 0);
  }
  if (o.corruptDataOffset) offsets[0]! += o.corruptDataOffset;
  const moof = build(offsets);
  let dts = BigInt(o.decodeTime);
  const payloads = o.samples.map((s) => {
    const p = samplePayload(o.tag ?? trackId, dts, s.size);
    dts += BigInt(s.duration);
    return p;
  });
  const parts = [moof, writeBox('mdat', ...payloads)];
  if (o.styp) parts.unshift(writeBox('styp', ascii('msdh'), u32(0), ascii('msdh'), ascii('msix')));
  return concatBytes(...parts);
}

/** A sample's bytes: tag byte, then its decode time (u32), repeated to its size. */
export function samplePayload(tag: number, decodeTime: bigint, size: number): Uint8Array {
  const unit = concatBytes(u8(tag & 0xff), u32(Number(decodeTime & 0xffffffffn)));
  const out = new Uint8Array(size);
  for (let i = 0; i < size; i++) out[i] = unit[i % unit.byteLength]!;
  return out;
}

// ---------------------------------------------------------------------------------------------
// Reading a regular MP4 back.

export interface Mp4Sample {
  dts: number;
  cto: number;
  offset: number;
  size: number;
  sync: boolean;
}

export interface Mp4Track {
  trackId: number;
  handler: string;
  timescale: number;
  /** tkhd duration (movie timescale). */
  duration: number;
  edits: Array<{ duration: number; mediaTime: number }>;
  samples: Mp4Sample[];
  boxes: string[];
}

export interface Mp4File {
  topLevel: string[];
  brands: string[];
  movieTimescale: number;
  movieDuration: number;
  nextTrackId: number;
  tracks: Mp4Track[];
}

export function readMp4(file: Uint8Array): Mp4File {
  const top = [...iterateBoxes(file)];
  const ftyp = top.find((b) => b.type === 'ftyp')!;
  const brands: string[] = [];
  for (let at = 0; at + 4 <= ftyp.payload.byteLength; at += 4)
    if (at !== 4) brands.push(String.fromCharCode(...ftyp.payload.subarray(at, at + 4)));
  const moov = top.find((b) => b.type === 'moov')!;
  const mvhd = dv(findChild(moov, 'mvhd')!);
  const mvhdPayload = findChild(moov, 'mvhd')!.payload;
  const tracks = childBoxes(moov)
    .filter((b) => b.type === 'trak')
    .map((trak) => {
      const tkhd = dv(findChild(trak, 'tkhd')!);
      const mdhd = dv(findPath(trak, ['mdia', 'mdhd'])!);
      const hdlr = findPath(trak, ['mdia', 'hdlr'])!;
      const elst = findPath(trak, ['edts', 'elst']);
      const edits: Mp4Track['edits'] = [];
      if (elst) {
        const v = dv(elst);
        for (let i = 0; i < v.getUint32(4); i++) edits.push({ duration: v.getUint32(8 + i * 12), mediaTime: v.getInt32(12 + i * 12) });
      }
      const stbl = findPath(trak, ['mdia', 'minf', 'stbl'])!;
      const table = (type: string) => findChild(stbl, type);
      const stts = dv(table('stts')!);
      const dts: number[] = [];
      let t = 0;
      for (let i = 0; i < stts.getUint32(4); i++) {
        for (let k = 0; k < stts.getUint32(8 + i * 8); k++) {
          dts.push(t);
          t += stts.getUint32(12 + i * 8);
        }
      }
      const stsz = dv(table('stsz')!);
      const count = stsz.getUint32(8);
      const sizes = Array.from({ length: count }, (_, i) => stsz.getUint32(4) || stsz.getUint32(12 + i * 4));
      const ctts = table('ctts');
      const ctos: number[] = [];
      if (ctts) {
        const v = dv(ctts);
        for (let i = 0; i < v.getUint32(4); i++) for (let k = 0; k < v.getUint32(8 + i * 8); k++) ctos.push(v.getInt32(12 + i * 8));
      }
      const stss = table('stss');
      const syncs = stss ? new Set(Array.from({ length: dv(stss).getUint32(4) }, (_, i) => dv(stss).getUint32(8 + i * 4))) : null;
      const stco = dv(table('stco')!);
      const chunkOffsets = Array.from({ length: stco.getUint32(4) }, (_, i) => stco.getUint32(8 + i * 4));
      const stsc = dv(table('stsc')!);
      const stscEntries = Array.from({ length: stsc.getUint32(4) }, (_, i) => ({
        first: stsc.getUint32(8 + i * 12),
        per: stsc.getUint32(12 + i * 12),
      }));
      const samples: Mp4Sample[] = [];
      let n = 0;
      chunkOffsets.forEach((offset, c) => {
        const per = [...stscEntries].reverse().find((e) => e.first <= c + 1)!.per;
        let at = offset;
        for (let k = 0; k < per; k++, n++) {
          samples.push({ dts: dts[n]!, cto: ctos[n] ?? 0, offset: at, size: sizes[n]!, sync: syncs ? syncs.has(n + 1) : true });
          at += sizes[n]!;
        }
      });
      const tkhdV1 = findChild(trak, 'tkhd')!.payload[0] === 1;
      return {
        trackId: tkhd.getUint32(tkhdV1 ? 20 : 12),
        handler: String.fromCharCode(...hdlr.payload.subarray(8, 12)),
        timescale: mdhd.getUint32(12),
        duration: tkhd.getUint32(20),
        edits,
        samples,
        boxes: childBoxes(stbl).map((b) => b.type),
      };
    });
  return {
    topLevel: top.map((b) => b.type),
    brands: [String.fromCharCode(...ftyp.payload.subarray(0, 4)), ...brands.slice(1)],
    movieTimescale: mvhd.getUint32(12),
    movieDuration: mvhd.getUint32(16),
    nextTrackId: mvhd.getUint32(mvhdPayload.byteLength - 4),
    tracks,
  };
}

function dv(b: BoxView): DataView {
  return new DataView(b.payload.buffer, b.payload.byteOffset, b.payload.byteLength);
}
