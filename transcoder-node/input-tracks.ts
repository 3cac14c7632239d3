// Which media tracks a publisher sends (audio, video), and their codecs when the same bytes say,
// read from the first bytes of its stream before the ladder starts: a rung the input cannot feed
// (the audio rung for `ffmpeg … -an`) is left out of the session instead of making ffmpeg fail on a
// stream specifier that matches nothing; a restream copies what a destination can take.
// Pure: bytes in, a decision out; the ingest session (ingest-session.ts) and restreams feed it and wait.
import { decodeAmf0All, type Amf0Value } from './rtmp/amf0.ts';
import type { LadderRung } from '../core/contracts/stream-config.ts';

export interface InputTracks {
  audio: boolean;
  video: boolean;
}

/** How the tracks were learnt (for the log). */
export type TrackSource = 'flv-header' | 'metadata' | 'tags' | 'pmt' | 'mkv-tracks' | 'signalling' | 'fallback';

/** The codecs that matter downstream (an RTMP destination takes H.264 and AAC as they are). */
export type VideoCodec = 'h264' | 'h265' | 'other';
export type AudioCodec = 'aac' | 'mp3' | 'opus' | 'other';

export interface TrackDecision {
  tracks: InputTracks;
  source: TrackSource;
  /** The codec of each track, where what was read names it (absent: not known). */
  codecs?: { video?: VideoCodec; audio?: AudioCodec };
}

function withCodecs(d: TrackDecision, codecs: { video?: VideoCodec; audio?: AudioCodec }): TrackDecision {
  const known = {
    ...(codecs.video && d.tracks.video ? { video: codecs.video } : {}),
    ...(codecs.audio && d.tracks.audio ? { audio: codecs.audio } : {}),
  };
  return Object.keys(known).length ? { ...d, codecs: known } : d;
}

/** An FLV or metadata codec id (a number, or a FourCC as enhanced RTMP writes it) as a video codec. */
function flvVideoCodec(id: unknown): VideoCodec {
  const fourcc = typeof id === 'string' ? id : typeof id === 'number' && id > 255 ? fourccOf(id) : null;
  if (fourcc !== null) return fourcc === 'avc1' ? 'h264' : fourcc === 'hvc1' || fourcc === 'hev1' ? 'h265' : 'other';
  return id === 7 ? 'h264' : id === 12 ? 'h265' : 'other';
}

function flvAudioCodec(id: unknown): AudioCodec {
  const fourcc = typeof id === 'string' ? id : typeof id === 'number' && id > 255 ? fourccOf(id) : null;
  if (fourcc !== null) return fourcc === 'mp4a' ? 'aac' : fourcc === 'Opus' ? 'opus' : fourcc === '.mp3' ? 'mp3' : 'other';
  return id === 10 ? 'aac' : id === 2 ? 'mp3' : 'other';
}

function fourccOf(n: number): string {
  return String.fromCharCode((n >>> 24) & 0xff, (n >>> 16) & 0xff, (n >>> 8) & 0xff, n & 0xff);
}

/** The codec of an FLV video tag: legacy codec id, or the FourCC of an enhanced-RTMP tag. */
function videoTagCodec(body: Buffer): VideoCodec {
  if (body.byteLength >= 5 && (body[0]! & 0x80) !== 0) return flvVideoCodec(body.toString('latin1', 1, 5));
  return flvVideoCodec(body[0]! & 0x0f);
}

function audioTagCodec(body: Buffer): AudioCodec {
  const format = body[0]! >> 4;
  // 9: an enhanced-RTMP audio tag, its FourCC after the first byte.
  if (format === 9 && body.byteLength >= 5) return flvAudioCodec(body.toString('latin1', 1, 5));
  return flvAudioCodec(format);
}

/**
 * Without metadata, an FLV stream whose tags have covered this much media time with one kind only
 * has only that kind. The same second ffmpeg would otherwise spend probing (`-analyzeduration 1 s`).
 */
export const TAG_WINDOW_MS = 1000;
/** Bytes read without a decision before giving up and assuming both tracks (the old behaviour). */
export const MAX_PROBE_BYTES = 4 * 1024 * 1024;

const FLV_AUDIO = 8;
const FLV_VIDEO = 9;
const FLV_SCRIPT = 18;

/**
 * Reads the tracks of an FLV stream (what the RTMP ingest produces) from, in order:
 * - the header's flags, when they claim one track only (the RTMP layer, which writes the header
 *   before any media, claims both; a file or relay may know better);
 * - `onMetaData` (sent before the media by ffmpeg, OBS and most encoders): `videocodecid` and
 *   `audiocodecid` are present for the tracks the encoder has (`hasAudio`/`hasVideo` win if present);
 * - the tags themselves: both kinds seen, or TAG_WINDOW_MS of media of one kind only.
 */
export class FlvTrackProbe {
  #buf: Buffer = Buffer.alloc(0);
  #offset = 0;
  #headerDone = false;
  #seen: InputTracks = { audio: false, video: false };
  #codecs: { video?: VideoCodec; audio?: AudioCodec } = {};
  #firstTs: number | null = null;
  #total = 0;

  /** Feeds more bytes; returns the decision once there is one (and keeps returning it). */
  push(chunk: Uint8Array): TrackDecision | null {
    this.#total += chunk.byteLength;
    this.#buf = this.#buf.length === this.#offset ? Buffer.from(chunk) : Buffer.concat([this.#buf.subarray(this.#offset), chunk]);
    this.#offset = 0;
    const d = this.#scan();
    if (d) return d;
    if (this.#total >= MAX_PROBE_BYTES) return this.end();
    return null;
  }

  /** The stream ended (or the wait is over): decide from what was seen. */
  end(): TrackDecision {
    if (this.#seen.audio || this.#seen.video) return withCodecs({ tracks: { ...this.#seen }, source: 'tags' }, this.#codecs);
    return { tracks: { audio: true, video: true }, source: 'fallback' };
  }

  #scan(): TrackDecision | null {
    const b = this.#buf;
    if (!this.#headerDone) {
      if (b.length < 13) return null;
      if (b.toString('latin1', 0, 3) !== 'FLV') return { tracks: { audio: true, video: true }, source: 'fallback' };
      const flags = b.readUInt8(4);
      const audio = (flags & 0x04) !== 0;
      const video = (flags & 0x01) !== 0;
      if (audio !== video) return { tracks: { audio, video }, source: 'flv-header' };
      this.#headerDone = true;
      this.#offset = b.readUInt32BE(5) + 4;
    }
    while (b.length - this.#offset >= 11) {
      const at = this.#offset;
      const type = b.readUInt8(at) & 0x1f;
      const size = b.readUIntBE(at + 1, 3);
      if (b.length - at < 11 + size + 4) return null;
      const ts = (b.readUIntBE(at + 4, 3) | (b.readUInt8(at + 7) << 24)) >>> 0;
      const body = b.subarray(at + 11, at + 11 + size);
      this.#offset = at + 11 + size + 4;
      if (type === FLV_SCRIPT) {
        const fromMeta = tracksFromMetadata(body);
        // Metadata only counts before the media: later it cannot tell what the start was.
        if (fromMeta && !this.#seen.audio && !this.#seen.video)
          return withCodecs({ tracks: fromMeta.tracks, source: 'metadata' }, fromMeta.codecs);
        continue;
      }
      if (type !== FLV_AUDIO && type !== FLV_VIDEO) continue;
      if (body.byteLength === 0) continue;
      if (type === FLV_AUDIO) {
        this.#seen.audio = true;
        this.#codecs.audio ??= audioTagCodec(body);
      } else {
        this.#seen.video = true;
        this.#codecs.video ??= videoTagCodec(body);
      }
      if (this.#seen.audio && this.#seen.video) return withCodecs({ tracks: { audio: true, video: true }, source: 'tags' }, this.#codecs);
      this.#firstTs ??= ts;
      if (ts - this.#firstTs >= TAG_WINDOW_MS) return withCodecs({ tracks: { ...this.#seen }, source: 'tags' }, this.#codecs);
    }
    return null;
  }
}

function tracksFromMetadata(body: Buffer): { tracks: InputTracks; codecs: { video?: VideoCodec; audio?: AudioCodec } } | null {
  let values: Amf0Value[];
  try {
    values = decodeAmf0All(body);
  } catch {
    return null;
  }
  if (values[0] !== 'onMetaData') return null;
  const meta = values[1];
  if (typeof meta !== 'object' || meta === null || Array.isArray(meta) || meta instanceof Date) return null;
  const has = (flag: string, codec: string): boolean | null => {
    if (typeof meta[flag] === 'boolean') return meta[flag] as boolean;
    return meta[codec] !== undefined && meta[codec] !== null ? true : null;
  };
  const audio = has('hasAudio', 'audiocodecid');
  const video = has('hasVideo', 'videocodecid');
  // Metadata that names neither codec says nothing (some encoders send only a title).
  if (audio === null && video === null) return null;
  const codecs = {
    ...(meta.videocodecid !== undefined && meta.videocodecid !== null ? { video: flvVideoCodec(meta.videocodecid) } : {}),
    ...(meta.audiocodecid !== undefined && meta.audiocodecid !== null ? { audio: flvAudioCodec(meta.audiocodecid) } : {}),
  };
  return { tracks: { audio: audio ?? false, video: video ?? false }, codecs };
}

/** FLV header with its flags set to the tracks the stream really has, so ffmpeg does not wait for a missing one. */
export function patchFlvHeaderFlags(head: Uint8Array, tracks: InputTracks): void {
  if (head.byteLength < 5 || head[0] !== 0x46 || head[1] !== 0x4c || head[2] !== 0x56) return;
  head[4] = (head[4]! & ~0x05) | (tracks.audio ? 0x04 : 0) | (tracks.video ? 0x01 : 0);
}

// ---- MPEG-TS (SRT publishers) ---------------------------------------------------------------

const TS_PACKET = 188;
/** ISO/IEC 13818-1 stream_type values (and the usual registered ones) by media kind. */
const TS_VIDEO_TYPES = new Set([0x01, 0x02, 0x10, 0x1b, 0x20, 0x24, 0x42, 0xd1, 0xea]);
const TS_AUDIO_TYPES = new Set([0x03, 0x04, 0x0f, 0x11, 0x1c, 0x81, 0x82, 0x83, 0x84, 0x85, 0x86, 0x87]);
/** Descriptors that make a PES private data stream (type 0x06) audio: AC-3, E-AC-3, DTS, AAC. */
const TS_AUDIO_DESCRIPTORS = new Set([0x6a, 0x7a, 0x7b, 0x7c]);

/**
 * Reads the tracks of an MPEG-TS stream (what the SRT ingest produces) from its first program map
 * table: the elementary streams and their stream_type. Sections are assumed to fit one packet
 * (what every encoder writes for a handful of streams); a longer one is skipped.
 */
export class TsTrackProbe {
  #rest: Buffer = Buffer.alloc(0);
  #pmtPid: number | null = null;
  #total = 0;

  push(chunk: Uint8Array): TrackDecision | null {
    this.#total += chunk.byteLength;
    const b = this.#rest.length > 0 ? Buffer.concat([this.#rest, chunk]) : Buffer.from(chunk);
    let at = 0;
    // Packets start with the sync byte; skip anything else until one does.
    while (at + TS_PACKET <= b.length) {
      if (b[at] !== 0x47) {
        at++;
        continue;
      }
      const d = this.#packet(b.subarray(at, at + TS_PACKET));
      if (d) return d;
      at += TS_PACKET;
    }
    this.#rest = b.subarray(at);
    if (this.#total >= MAX_PROBE_BYTES) return this.end();
    return null;
  }

  end(): TrackDecision {
    return { tracks: { audio: true, video: true }, source: 'fallback' };
  }

  #packet(p: Buffer): TrackDecision | null {
    const pusi = (p[1]! & 0x40) !== 0;
    const pid = ((p[1]! & 0x1f) << 8) | p[2]!;
    if (!pusi || (pid !== 0 && pid !== this.#pmtPid)) return null;
    const afc = (p[3]! >> 4) & 0x3;
    if (!(afc & 0x1)) return null;
    let off = 4 + (afc & 0x2 ? 1 + p[4]! : 0);
    if (off >= TS_PACKET) return null;
    off += 1 + p[off]!; // pointer_field
    if (off + 3 > TS_PACKET) return null;
    const tableId = p[off]!;
    const sectionLength = ((p[off + 1]! & 0x0f) << 8) | p[off + 2]!;
    const end = off + 3 + sectionLength - 4; // without the CRC
    if (end > TS_PACKET) return null;
    if (pid === 0 && tableId === 0x00) {
      // PAT: the first program's PMT PID (program 0 is the network PID).
      for (let i = off + 8; i + 4 <= end; i += 4) {
        const program = p.readUInt16BE(i);
        if (program !== 0) {
          this.#pmtPid = p.readUInt16BE(i + 2) & 0x1fff;
          break;
        }
      }
      return null;
    }
    if (tableId !== 0x02) return null;
    const programInfoLength = p.readUInt16BE(off + 10) & 0x0fff;
    const tracks: InputTracks = { audio: false, video: false };
    const codecs: { video?: VideoCodec; audio?: AudioCodec } = {};
    for (let i = off + 12 + programInfoLength; i + 5 <= end; ) {
      const type = p[i]!;
      const esInfoLength = p.readUInt16BE(i + 3) & 0x0fff;
      const descriptors = p.subarray(i + 5, Math.min(end, i + 5 + esInfoLength));
      if (TS_VIDEO_TYPES.has(type)) {
        tracks.video = true;
        codecs.video ??= type === 0x1b ? 'h264' : type === 0x24 ? 'h265' : 'other';
      } else if (TS_AUDIO_TYPES.has(type)) {
        tracks.audio = true;
        // 0x0f is AAC in ADTS; LATM (0x11) and MPEG audio (layer II or III) are told apart by nothing here.
        codecs.audio ??= type === 0x0f ? 'aac' : 'other';
      } else if (type === 0x06 && hasAudioDescriptor(descriptors)) {
        tracks.audio = true;
        codecs.audio ??= hasOpusRegistration(descriptors) ? 'opus' : 'other';
      }
      i += 5 + esInfoLength;
    }
    return withCodecs({ tracks, source: 'pmt' }, codecs);
  }
}

function hasAudioDescriptor(d: Buffer): boolean {
  for (let i = 0; i + 2 <= d.length; i += 2 + d[i + 1]!) {
    const tag = d[i]!;
    if (TS_AUDIO_DESCRIPTORS.has(tag)) return true;
    // registration_descriptor with format_identifier 'Opus', 'AC-3', 'EAC3', 'DTS1'…
    if (tag === 0x05 && i + 6 <= d.length && /^(Opus|AC-3|EAC3|DTS[123])$/.test(d.toString('latin1', i + 2, i + 6))) return true;
  }
  return false;
}

function hasOpusRegistration(d: Buffer): boolean {
  for (let i = 0; i + 2 <= d.length; i += 2 + d[i + 1]!)
    if (d[i] === 0x05 && i + 6 <= d.length && d.toString('latin1', i + 2, i + 6) === 'Opus') return true;
  return false;
}

// ---- Matroska (WHIP publishers) -------------------------------------------------------------

const MKV_CLUSTER_ID = Buffer.from([0x1f, 0x43, 0xb6, 0x75]);
const MKV_CODECS: Array<[string, keyof InputTracks, VideoCodec | AudioCodec]> = [
  ['V_MPEG4/ISO/AVC', 'video', 'h264'],
  ['V_MPEGH/ISO/HEVC', 'video', 'h265'],
  ['A_OPUS', 'audio', 'opus'],
  ['A_AAC', 'audio', 'aac'],
];

/**
 * Reads the tracks of a Matroska stream (what the WHIP ingest writes, whose tracks its signalling
 * usually names already) from the CodecIDs of its header, decided at the first Cluster.
 */
export class MatroskaTrackProbe {
  #head: Buffer = Buffer.alloc(0);

  push(chunk: Uint8Array): TrackDecision | null {
    this.#head = Buffer.concat([this.#head, chunk]);
    const cluster = this.#head.indexOf(MKV_CLUSTER_ID);
    if (cluster >= 0) return this.#decide(this.#head.subarray(0, cluster));
    if (this.#head.byteLength >= MAX_PROBE_BYTES) return this.end();
    return null;
  }

  end(): TrackDecision {
    return this.#decide(this.#head) ?? { tracks: { audio: true, video: true }, source: 'fallback' };
  }

  #decide(header: Buffer): TrackDecision {
    const tracks: InputTracks = { audio: false, video: false };
    const codecs: { video?: VideoCodec; audio?: AudioCodec } = {};
    for (const [id, kind, codec] of MKV_CODECS) {
      if (header.indexOf(id, 0, 'latin1') < 0) continue;
      tracks[kind] = true;
      if (kind === 'video') codecs.video ??= codec as VideoCodec;
      else codecs.audio ??= codec as AudioCodec;
    }
    // Other codecs: the generic prefixes still say which kinds there are.
    if (!tracks.video && header.indexOf('V_', 0, 'latin1') >= 0) tracks.video = true;
    if (!tracks.audio && header.indexOf('A_', 0, 'latin1') >= 0) tracks.audio = true;
    if (!tracks.audio && !tracks.video) return { tracks: { audio: true, video: true }, source: 'fallback' };
    return withCodecs({ tracks, source: 'mkv-tracks' }, codecs);
  }
}

/** A probe for the ingest's container. */
export function trackProbe(format: 'flv' | 'mpegts' | 'matroska'): FlvTrackProbe | TsTrackProbe | MatroskaTrackProbe {
  if (format === 'matroska') return new MatroskaTrackProbe();
  return format === 'mpegts' ? new TsTrackProbe() : new FlvTrackProbe();
}

/** The rungs an input with these tracks can feed, in ladder order. */
export function rungsFor(ladder: readonly LadderRung[], tracks: InputTracks): LadderRung[] {
  return ladder.filter((r) => (r.kind === 'audio' ? tracks.audio : tracks.video));
}
