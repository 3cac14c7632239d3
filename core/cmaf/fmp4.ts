// Pure fMP4 parsers: what an init segment (ftyp+moov) says about its tracks, what a moof says
// about its chunk (start time, duration, whether it starts with a sync sample; LLHLS.md §3), and
// its samples one by one. Shared by the transcoder (chunker) and the Worker (clip MP4 export).
import { BoxError, childBoxes, findChild, findPath, fourcc, iterateBoxes, viewBox } from './boxes.ts';
import type { BoxView } from './boxes.ts';

/** trex: per-track defaults a fragment falls back to (ISO/IEC 14496-12 §8.8.3). */
export interface TrackDefaults {
  sampleDescriptionIndex: number;
  sampleDuration: number;
  sampleSize: number;
  sampleFlags: number;
}

export interface TrackInfo {
  trackId: number;
  /** hdlr handler_type: `vide`, `soun`, … */
  handler: string;
  kind: 'video' | 'audio' | 'other';
  /** mdhd timescale: ticks per second of tfdt and sample durations. */
  timescale: number;
  /** Sample entry fourcc: `avc1`, `hvc1`, `mp4a`, `Opus`, … */
  sampleEntry: string;
  /** RFC 6381 codec string, e.g. `avc1.64001e`, `hvc1.1.6.L60.90`, `mp4a.40.2`, `opus`. */
  codec: string;
  width?: number;
  height?: number;
  channels?: number;
  sampleRate?: number;
  defaults: TrackDefaults;
}

export interface InitInfo {
  majorBrand: string;
  compatibleBrands: string[];
  tracks: TrackInfo[];
}

/** Parses an init segment. Throws BoxError when it is not a usable fMP4 header. */
export function parseInit(bytes: Uint8Array): InitInfo {
  let majorBrand = '';
  const compatibleBrands: string[] = [];
  let moov: BoxView | undefined;
  for (const box of iterateBoxes(bytes)) {
    if (box.type === 'ftyp') {
      need(box.payload, 8, 'ftyp');
      majorBrand = fourcc(box.payload, 0);
      for (let at = 8; at + 4 <= box.payload.byteLength; at += 4) compatibleBrands.push(fourcc(box.payload, at));
    } else if (box.type === 'moov') {
      moov = box;
    }
  }
  if (!moov) throw new BoxError('init segment has no moov');

  const defaults = new Map<number, TrackDefaults>();
  const mvex = findChild(moov, 'mvex');
  if (mvex) {
    for (const trex of childBoxes(mvex)) {
      if (trex.type !== 'trex') continue;
      const v = dataView(trex.payload, 24, 'trex');
      defaults.set(v.getUint32(4), {
        sampleDescriptionIndex: v.getUint32(8),
        sampleDuration: v.getUint32(12),
        sampleSize: v.getUint32(16),
        sampleFlags: v.getUint32(20),
      });
    }
  }

  const tracks: TrackInfo[] = [];
  for (const trak of childBoxes(moov)) {
    if (trak.type !== 'trak') continue;
    tracks.push(parseTrak(trak, defaults));
  }
  if (tracks.length === 0) throw new BoxError('moov has no tracks');
  return { majorBrand, compatibleBrands, tracks };
}

function parseTrak(trak: BoxView, defaults: Map<number, TrackDefaults>): TrackInfo {
  const tkhd = required(findChild(trak, 'tkhd'), 'tkhd');
  const tkhdVersion = tkhd.payload[0];
  const tk = dataView(tkhd.payload, tkhdVersion === 1 ? 96 : 84, 'tkhd');
  const trackId = tk.getUint32(tkhdVersion === 1 ? 20 : 12);
  // tkhd width/height are 16.16 fixed point: the display size, after pixel aspect ratio.
  const tkWidth = tk.getUint32(tkhdVersion === 1 ? 88 : 76) >>> 16;
  const tkHeight = tk.getUint32(tkhdVersion === 1 ? 92 : 80) >>> 16;

  const mdhd = required(findPath(trak, ['mdia', 'mdhd']), 'mdhd');
  const md = dataView(mdhd.payload, mdhd.payload[0] === 1 ? 24 : 16, 'mdhd');
  const timescale = md.getUint32(mdhd.payload[0] === 1 ? 20 : 12);
  if (timescale === 0) throw new BoxError(`track ${trackId} has timescale 0`);

  const hdlr = required(findPath(trak, ['mdia', 'hdlr']), 'hdlr');
  need(hdlr.payload, 12, 'hdlr');
  const handler = fourcc(hdlr.payload, 8);
  const kind = handler === 'vide' ? 'video' : handler === 'soun' ? 'audio' : 'other';

  const stsd = required(findPath(trak, ['mdia', 'minf', 'stbl', 'stsd']), 'stsd');
  const entry = childBoxes(stsd, 8)[0];
  if (!entry) throw new BoxError(`track ${trackId} has no sample entry`);

  const info: TrackInfo = {
    trackId,
    handler,
    kind,
    timescale,
    sampleEntry: entry.type,
    codec: entry.type.toLowerCase(),
    defaults: defaults.get(trackId) ?? { sampleDescriptionIndex: 1, sampleDuration: 0, sampleSize: 0, sampleFlags: 0 },
  };

  if (kind === 'video') {
    // VisualSampleEntry: 6 reserved + 2 data_reference_index + 16 pre_defined/reserved, then width, height.
    const ve = dataView(entry.payload, 78, entry.type);
    info.width = tkWidth || ve.getUint16(24);
    info.height = tkHeight || ve.getUint16(26);
    info.codec = videoCodecString(entry) ?? info.codec;
  } else if (kind === 'audio') {
    // AudioSampleEntry: 8 reserved/index + 8 reserved, channelcount, samplesize, 4 reserved, samplerate 16.16.
    const ae = dataView(entry.payload, 28, entry.type);
    info.channels = ae.getUint16(16);
    info.sampleRate = ae.getUint32(24) >>> 16;
    // QuickTime sound descriptions v1/v2 carry 16/36 more bytes before their child boxes.
    const qtVersion = ae.getUint16(8);
    const audio = audioCodec(entry, 28 + (qtVersion === 1 ? 16 : qtVersion === 2 ? 36 : 0));
    if (audio) {
      info.codec = audio.codec;
      if (audio.channels) info.channels = audio.channels;
      if (audio.sampleRate) info.sampleRate = audio.sampleRate;
    }
  }
  return info;
}

function videoCodecString(entry: BoxView): string | undefined {
  const t = entry.type;
  if (t === 'avc1' || t === 'avc3') {
    const avcC = findChild(entry, 'avcC', 78);
    if (!avcC) return undefined;
    need(avcC.payload, 4, 'avcC');
    // AVCDecoderConfigurationRecord: version, AVCProfileIndication, profile_compatibility, AVCLevelIndication.
    return `${t}.${hex2(avcC.payload[1]!)}${hex2(avcC.payload[2]!)}${hex2(avcC.payload[3]!)}`;
  }
  if (t === 'hvc1' || t === 'hev1') {
    const hvcC = findChild(entry, 'hvcC', 78);
    return hvcC ? hevcCodecString(t, hvcC.payload) : undefined;
  }
  return undefined;
}

/** ISO/IEC 14496-15 Annex E.3: `hvc1.[A-C]?profile.compat(bit-reversed hex).[LH]level.constraints`. */
function hevcCodecString(prefix: string, c: Uint8Array): string {
  need(c, 13, 'hvcC');
  const v = new DataView(c.buffer, c.byteOffset, c.byteLength);
  const space = ['', 'A', 'B', 'C'][c[1]! >> 6]!;
  const tier = (c[1]! >> 5) & 1 ? 'H' : 'L';
  const profile = c[1]! & 0x1f;
  let compat = v.getUint32(2);
  let reversed = 0;
  for (let i = 0; i < 32; i++) {
    reversed = (reversed << 1) | (compat & 1);
    compat >>>= 1;
  }
  const level = c[12]!;
  const constraints = Array.from(c.subarray(6, 12));
  while (constraints.length > 0 && constraints[constraints.length - 1] === 0) constraints.pop();
  const parts = [`${prefix}`, `${space}${profile}`, (reversed >>> 0).toString(16), `${tier}${level}`];
  for (const b of constraints) parts.push(b.toString(16));
  return parts.join('.');
}

interface AudioCodec {
  codec: string;
  channels?: number;
  sampleRate?: number;
}

const AAC_RATES = [96000, 88200, 64000, 48000, 44100, 32000, 24000, 22050, 16000, 12000, 11025, 8000, 7350];

function audioCodec(entry: BoxView, childrenAt: number): AudioCodec | undefined {
  if (entry.type === 'Opus') return { codec: 'opus' };
  if (entry.type === 'fLaC') return { codec: 'flac' };
  if (entry.type !== 'mp4a') return undefined;
  const esds = findChild(entry, 'esds', childrenAt);
  if (!esds) return { codec: 'mp4a.40.2' };
  return parseEsds(esds.payload.subarray(4)); // skip FullBox version/flags
}

/** Walks ES_Descriptor → DecoderConfigDescriptor → DecoderSpecificInfo (ISO/IEC 14496-1 §7.2.6). */
function parseEsds(d: Uint8Array): AudioCodec {
  let at = 0;
  const readDescriptor = (): { tag: number; start: number; end: number } => {
    need(d, at + 2, 'esds');
    const tag = d[at++]!;
    let size = 0;
    for (let i = 0; i < 4; i++) {
      const b = d[at++];
      if (b === undefined) throw new BoxError('esds descriptor truncated');
      size = (size << 7) | (b & 0x7f);
      if (!(b & 0x80)) break;
    }
    if (at + size > d.byteLength) throw new BoxError('esds descriptor overruns its box');
    return { tag, start: at, end: at + size };
  };
  const es = readDescriptor();
  if (es.tag !== 0x03) throw new BoxError(`esds starts with descriptor tag ${es.tag}, not ES_Descriptor`);
  const esFlags = d[es.start + 2]!;
  at = es.start + 3;
  if (esFlags & 0x80) at += 2; // dependsOn_ES_ID
  if (esFlags & 0x40) at += 1 + d[at]!; // URL
  if (esFlags & 0x20) at += 2; // OCR_ES_Id
  const dc = readDescriptor();
  if (dc.tag !== 0x04) throw new BoxError(`ES_Descriptor holds tag ${dc.tag}, not DecoderConfigDescriptor`);
  const oti = d[dc.start]!;
  if (oti !== 0x40) return { codec: `mp4a.${hex2(oti)}` };
  at = dc.start + 13;
  if (at >= dc.end) return { codec: 'mp4a.40.2' };
  const dsi = readDescriptor();
  if (dsi.tag !== 0x05 || dsi.end - dsi.start < 2) return { codec: 'mp4a.40.2' };
  // AudioSpecificConfig (ISO/IEC 14496-3 §1.6.2.1): 5-bit object type (31 = escape), 4-bit frequency index, 4-bit channels.
  const bits = new BitReader(d.subarray(dsi.start, dsi.end));
  let aot = bits.read(5);
  if (aot === 31) aot = 32 + bits.read(6);
  const freqIndex = bits.read(4);
  const sampleRate = freqIndex === 15 ? bits.read(24) : AAC_RATES[freqIndex];
  const channelConfig = bits.read(4);
  const result: AudioCodec = { codec: `mp4a.40.${aot}` };
  if (sampleRate) result.sampleRate = sampleRate;
  if (channelConfig >= 1 && channelConfig <= 6) result.channels = channelConfig;
  else if (channelConfig === 7) result.channels = 8;
  return result;
}

class BitReader {
  #data: Uint8Array;
  #pos = 0;
  constructor(data: Uint8Array) {
    this.#data = data;
  }
  read(n: number): number {
    let v = 0;
    for (let i = 0; i < n; i++) {
      const byte = this.#data[this.#pos >> 3];
      if (byte === undefined) throw new BoxError('AudioSpecificConfig truncated');
      v = v * 2 + ((byte >> (7 - (this.#pos & 7))) & 1);
      this.#pos++;
    }
    return v;
  }
}

// ---------------------------------------------------------------------------------------------
// Fragments

export interface TrafInfo {
  trackId: number;
  timescale: number;
  /** tfdt baseMediaDecodeTime, in timescale ticks. */
  baseMediaDecodeTime: number;
  sampleCount: number;
  /** Sum of the sample durations, in ticks. */
  duration: number;
  /** Flags of the first sample, resolved with the precedence of LLHLS.md §3.3 step 5. */
  firstSampleFlags: number;
  /** is_non_sync_sample of the first sample is 0. */
  firstSampleSync: boolean;
  /**
   * Where the sample data ends, counted from the first byte of the moof (default-base-is-moof);
   * null when the traf addresses data some other way. Lets the caller check the mdat is long enough.
   */
  dataEnd: number | null;
}

export interface FragmentInfo {
  /** mfhd sequence_number. */
  sequenceNumber: number;
  trafs: TrafInfo[];
  /** The track that times the chunk: video if present, else the first track (spec §3: prefer video). */
  primaryTrackId: number;
  timescale: number;
  /** tfdt of the primary track, ticks and seconds. */
  baseMediaDecodeTime: number;
  startTime: number;
  /** Duration of the primary track, ticks and seconds (EXT-X-PART DURATION). */
  durationTicks: number;
  duration: number;
  /** The primary track's first sample is sync (INDEPENDENT=YES); always true without video. */
  independent: boolean;
}

const TFHD_BASE_DATA_OFFSET = 0x000001;
const TFHD_SAMPLE_DESCRIPTION_INDEX = 0x000002;
const TFHD_DEFAULT_DURATION = 0x000008;
const TFHD_DEFAULT_SIZE = 0x000010;
const TFHD_DEFAULT_FLAGS = 0x000020;
const TFHD_DEFAULT_BASE_IS_MOOF = 0x020000;

const TRUN_DATA_OFFSET = 0x000001;
const TRUN_FIRST_SAMPLE_FLAGS = 0x000004;
const TRUN_DURATION = 0x000100;
const TRUN_SIZE = 0x000200;
const TRUN_FLAGS = 0x000400;
const TRUN_CTS = 0x000800;

/** sample_is_non_sync_sample (ISO/IEC 14496-12 §8.8.3.1). */
export const SAMPLE_IS_NON_SYNC = 0x00010000;

export function isSyncSample(flags: number): boolean {
  return (flags & SAMPLE_IS_NON_SYNC) === 0;
}

/** Parses one moof box (header included). Throws BoxError when it is malformed or names an unknown track. */
export function parseFragment(moofBytes: Uint8Array, init: InitInfo): FragmentInfo {
  const moof = viewBox(moofBytes);
  if (moof.type !== 'moof') throw new BoxError(`expected moof, got '${moof.type}'`);
  let sequenceNumber = 0;
  const trafs: TrafInfo[] = [];
  for (const child of childBoxes(moof)) {
    if (child.type === 'mfhd') sequenceNumber = dataView(child.payload, 8, 'mfhd').getUint32(4);
    else if (child.type === 'traf') trafs.push(parseTraf(child, init));
  }
  if (trafs.length === 0) throw new BoxError('moof has no traf');

  const byId = new Map(init.tracks.map((t) => [t.trackId, t]));
  const primary =
    trafs.find((t) => byId.get(t.trackId)?.kind === 'video') ?? trafs.find((t) => byId.get(t.trackId)?.kind === 'audio') ?? trafs[0]!;
  const hasVideo = byId.get(primary.trackId)?.kind === 'video';
  return {
    sequenceNumber,
    trafs,
    primaryTrackId: primary.trackId,
    timescale: primary.timescale,
    baseMediaDecodeTime: primary.baseMediaDecodeTime,
    startTime: primary.baseMediaDecodeTime / primary.timescale,
    durationTicks: primary.duration,
    duration: primary.duration / primary.timescale,
    independent: hasVideo ? primary.firstSampleSync : true,
  };
}

function parseTraf(traf: BoxView, init: InitInfo): TrafInfo {
  const tfhd = required(findChild(traf, 'tfhd'), 'tfhd');
  const h = dataView(tfhd.payload, 8, 'tfhd');
  const tfhdFlags = h.getUint32(0) & 0xffffff;
  const trackId = h.getUint32(4);
  const track = init.tracks.find((t) => t.trackId === trackId);
  if (!track) throw new BoxError(`traf for track ${trackId}, which the init segment does not declare`);

  let at = 8;
  const optional = (flag: number, bytes: number): number | null => {
    if (!(tfhdFlags & flag)) return null;
    const v = dataView(tfhd.payload, at + bytes, 'tfhd');
    const value = bytes === 8 ? Number(v.getBigUint64(at)) : v.getUint32(at);
    at += bytes;
    return value;
  };
  const baseDataOffset = optional(TFHD_BASE_DATA_OFFSET, 8);
  optional(TFHD_SAMPLE_DESCRIPTION_INDEX, 4);
  const defaultDuration = optional(TFHD_DEFAULT_DURATION, 4) ?? track.defaults.sampleDuration;
  const defaultSize = optional(TFHD_DEFAULT_SIZE, 4) ?? track.defaults.sampleSize;
  const tfhdDefaultFlags = optional(TFHD_DEFAULT_FLAGS, 4);
  const defaultFlags = tfhdDefaultFlags ?? track.defaults.sampleFlags;
  // With default-base-is-moof (HLS requires movie-fragment-relative addressing, §3.1.2), trun
  // data offsets count from the moof's first byte; other addressing is not checked.
  const baseIsMoof = baseDataOffset === null && (tfhdFlags & TFHD_DEFAULT_BASE_IS_MOOF) !== 0;

  const tfdt = findChild(traf, 'tfdt');
  if (!tfdt) throw new BoxError(`traf for track ${trackId} has no tfdt (HLS requires one in every traf)`);
  const tfdtVersion = tfdt.payload[0];
  const td = dataView(tfdt.payload, tfdtVersion === 1 ? 12 : 8, 'tfdt');
  const baseMediaDecodeTime = tfdtVersion === 1 ? Number(td.getBigUint64(4)) : td.getUint32(4);

  let sampleCount = 0;
  let duration = 0;
  let firstSampleFlags: number | null = null;
  let dataEnd: number | null = null;
  for (const trun of childBoxes(traf)) {
    if (trun.type !== 'trun') continue;
    const r = dataView(trun.payload, 8, 'trun');
    const flags = r.getUint32(0) & 0xffffff;
    const count = r.getUint32(4);
    let p = 8;
    let dataOffset: number | null = null;
    if (flags & TRUN_DATA_OFFSET) {
      dataOffset = dataView(trun.payload, p + 4, 'trun').getInt32(p);
      p += 4;
    }
    let firstFlags: number | null = null;
    if (flags & TRUN_FIRST_SAMPLE_FLAGS) {
      firstFlags = dataView(trun.payload, p + 4, 'trun').getUint32(p);
      p += 4;
    }
    const perSample = 4 * (+!!(flags & TRUN_DURATION) + +!!(flags & TRUN_SIZE) + +!!(flags & TRUN_FLAGS) + +!!(flags & TRUN_CTS));
    // Checked before looping so a corrupt sample_count cannot make us spin.
    if (p + count * perSample > trun.payload.byteLength) {
      throw new BoxError(`trun declares ${count} samples but holds ${trun.payload.byteLength - p} bytes of entries`);
    }
    const v = new DataView(trun.payload.buffer, trun.payload.byteOffset, trun.payload.byteLength);
    let bytes = 0;
    for (let i = 0; i < count; i++) {
      duration += flags & TRUN_DURATION ? v.getUint32(p) : defaultDuration;
      if (flags & TRUN_DURATION) p += 4;
      bytes += flags & TRUN_SIZE ? v.getUint32(p) : defaultSize;
      if (flags & TRUN_SIZE) p += 4;
      if (flags & TRUN_FLAGS) {
        if (sampleCount === 0 && i === 0 && firstFlags === null) firstFlags = v.getUint32(p);
        p += 4;
      }
      if (flags & TRUN_CTS) p += 4;
    }
    if (sampleCount === 0 && count > 0) firstSampleFlags = firstFlags ?? defaultFlags;
    sampleCount += count;
    if (baseIsMoof && dataOffset !== null) dataEnd = Math.max(dataEnd ?? 0, dataOffset + bytes);
  }
  if (sampleCount === 0) firstSampleFlags = defaultFlags;
  const resolvedFlags = firstSampleFlags ?? defaultFlags;
  return {
    trackId,
    timescale: track.timescale,
    baseMediaDecodeTime,
    sampleCount,
    duration,
    firstSampleFlags: resolvedFlags,
    firstSampleSync: sampleCount > 0 && isSyncSample(resolvedFlags),
    dataEnd,
  };
}

/** One trun's samples, every field resolved (trun, then tfhd, then trex defaults). */
export interface TrunSamples {
  /**
   * Where the run's first sample is, counted from the first byte of the moof (movie-fragment
   * relative addressing, which HLS requires); a run without a data offset follows the previous
   * one, and a first run without one starts right after the moof and the next box header.
   */
  dataOffset: number;
  durations: number[];
  sizes: number[];
  flags: number[];
  /** Composition time offsets (0 without B-frames). */
  compositionOffsets: number[];
}

export interface TrafSamples {
  trackId: number;
  /** tfdt, in the track's timescale. */
  baseMediaDecodeTime: bigint;
  /** tfhd sample_description_index, or null when the trex default applies. */
  sampleDescriptionIndex: number | null;
  runs: TrunSamples[];
}

/**
 * Every sample of a moof (header included), per traf and trun: what a remuxer needs to rebuild
 * sample tables. Throws BoxError for addressing it cannot resolve (an explicit base data offset
 * points into a file we do not have).
 */
export function parseFragmentSamples(moofBytes: Uint8Array, init: InitInfo): TrafSamples[] {
  const moof = viewBox(moofBytes);
  if (moof.type !== 'moof') throw new BoxError(`expected moof, got '${moof.type}'`);
  const out: TrafSamples[] = [];
  for (const traf of childBoxes(moof)) {
    if (traf.type !== 'traf') continue;
    const tfhd = required(findChild(traf, 'tfhd'), 'tfhd');
    const h = dataView(tfhd.payload, 8, 'tfhd');
    const tfhdFlags = h.getUint32(0) & 0xffffff;
    const trackId = h.getUint32(4);
    const track = init.tracks.find((t) => t.trackId === trackId);
    if (!track) throw new BoxError(`traf for track ${trackId}, which the init segment does not declare`);
    if (tfhdFlags & TFHD_BASE_DATA_OFFSET) throw new BoxError('tfhd with an explicit base data offset');
    let at = 8;
    const optional = (flag: number): number | null => {
      if (!(tfhdFlags & flag)) return null;
      const value = dataView(tfhd.payload, at + 4, 'tfhd').getUint32(at);
      at += 4;
      return value;
    };
    const sampleDescriptionIndex = optional(TFHD_SAMPLE_DESCRIPTION_INDEX);
    const defaultDuration = optional(TFHD_DEFAULT_DURATION) ?? track.defaults.sampleDuration;
    const defaultSize = optional(TFHD_DEFAULT_SIZE) ?? track.defaults.sampleSize;
    const defaultFlags = optional(TFHD_DEFAULT_FLAGS) ?? track.defaults.sampleFlags;

    const tfdt = findChild(traf, 'tfdt');
    if (!tfdt) throw new BoxError(`traf for track ${trackId} has no tfdt (HLS requires one in every traf)`);
    const td = dataView(tfdt.payload, tfdt.payload[0] === 1 ? 12 : 8, 'tfdt');
    const baseMediaDecodeTime = tfdt.payload[0] === 1 ? td.getBigUint64(4) : BigInt(td.getUint32(4));

    const runs: TrunSamples[] = [];
    let next = moofBytes.byteLength + 8;
    for (const trun of childBoxes(traf)) {
      if (trun.type !== 'trun') continue;
      const r = dataView(trun.payload, 8, 'trun');
      const version = trun.payload[0];
      const flags = r.getUint32(0) & 0xffffff;
      const count = r.getUint32(4);
      let p = 8;
      let dataOffset = next;
      if (flags & TRUN_DATA_OFFSET) {
        dataOffset = dataView(trun.payload, p + 4, 'trun').getInt32(p);
        p += 4;
      }
      let firstFlags: number | null = null;
      if (flags & TRUN_FIRST_SAMPLE_FLAGS) {
        firstFlags = dataView(trun.payload, p + 4, 'trun').getUint32(p);
        p += 4;
      }
      const perSample = 4 * (+!!(flags & TRUN_DURATION) + +!!(flags & TRUN_SIZE) + +!!(flags & TRUN_FLAGS) + +!!(flags & TRUN_CTS));
      if (p + count * perSample > trun.payload.byteLength) {
        throw new BoxError(`trun declares ${count} samples but holds ${trun.payload.byteLength - p} bytes of entries`);
      }
      const v = new DataView(trun.payload.buffer, trun.payload.byteOffset, trun.payload.byteLength);
      const run: TrunSamples = { dataOffset, durations: [], sizes: [], flags: [], compositionOffsets: [] };
      let bytes = 0;
      for (let i = 0; i < count; i++) {
        let duration = defaultDuration;
        let size = defaultSize;
        let sampleFlags = i === 0 && firstFlags !== null ? firstFlags : defaultFlags;
        let cto = 0;
        if (flags & TRUN_DURATION) (duration = v.getUint32(p)), (p += 4);
        if (flags & TRUN_SIZE) (size = v.getUint32(p)), (p += 4);
        if (flags & TRUN_FLAGS) {
          // first_sample_flags, when present, overrides the first sample's own flags.
          if (!(i === 0 && firstFlags !== null)) sampleFlags = v.getUint32(p);
          p += 4;
        }
        // Version 1 offsets are signed; version 0 ones unsigned.
        if (flags & TRUN_CTS) (cto = version === 1 ? v.getInt32(p) : v.getUint32(p)), (p += 4);
        run.durations.push(duration);
        run.sizes.push(size);
        run.flags.push(sampleFlags);
        run.compositionOffsets.push(cto);
        bytes += size;
      }
      runs.push(run);
      next = dataOffset + bytes;
    }
    out.push({ trackId, baseMediaDecodeTime, sampleDescriptionIndex, runs });
  }
  return out;
}

// ---------------------------------------------------------------------------------------------

function hex2(n: number): string {
  return n.toString(16).padStart(2, '0');
}

function need(b: Uint8Array, n: number, what: string): void {
  if (b.byteLength < n) throw new BoxError(`'${what}' is too short (${b.byteLength} < ${n} bytes)`);
}

function dataView(b: Uint8Array, minLength: number, what: string): DataView {
  need(b, minLength, what);
  return new DataView(b.buffer, b.byteOffset, b.byteLength);
}

function required(box: BoxView | undefined, what: string): BoxView {
  if (!box) throw new BoxError(`missing '${what}' box`);
  return box;
}
