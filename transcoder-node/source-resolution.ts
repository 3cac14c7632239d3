// The picture size of a publisher's video, read from the first bytes of its stream, so a stream on
// the automatic ladder gets the preset of its source (core/contracts/stream-config.ts): FLV
// onMetaData (what OBS and ffmpeg send first), else the H.264 SPS of the AVC configuration; the
// H.264 SPS in the first video PES of MPEG-TS. Pure: bytes in, a size (or nothing) out.
import { decodeAmf0All } from './rtmp/amf0.ts';

export interface SourceSize {
  width: number;
  height: number;
  /** Where it was read. */
  from: 'metadata' | 'sps';
}

/** A size no real picture has is a misread (or a hostile stream), not a source to size a ladder by. */
function plausible(width: number, height: number): boolean {
  return Number.isInteger(width) && Number.isInteger(height) && width >= 16 && height >= 16 && width <= 16384 && height <= 16384;
}

// ---- H.264 sequence parameter set (ITU-T H.264 §7.3.2.1.1) -----------------------------------

class BitReader {
  #bytes: Uint8Array;
  #bit = 0;
  constructor(bytes: Uint8Array) {
    this.#bytes = bytes;
  }
  u(n: number): number {
    let v = 0;
    for (let i = 0; i < n; i++) {
      const byte = this.#bytes[this.#bit >> 3];
      if (byte === undefined) throw new RangeError('SPS truncated');
      v = v * 2 + ((byte >> (7 - (this.#bit & 7))) & 1);
      this.#bit++;
    }
    return v;
  }
  ue(): number {
    let zeros = 0;
    while (this.u(1) === 0) if (++zeros > 31) throw new RangeError('bad exp-Golomb code');
    return 2 ** zeros - 1 + this.u(zeros);
  }
  se(): number {
    const k = this.ue();
    return k % 2 === 1 ? (k + 1) / 2 : -k / 2;
  }
}

/** The RBSP of a NAL unit: emulation prevention bytes (00 00 03) taken out. */
function rbsp(nal: Uint8Array): Uint8Array {
  const out: number[] = [];
  for (let i = 0; i < nal.length; i++) {
    if (
      i >= 2 &&
      nal[i] === 3 &&
      nal[i - 1] === 0 &&
      nal[i - 2] === 0 &&
      out.length >= 2 &&
      out[out.length - 1] === 0 &&
      out[out.length - 2] === 0
    )
      continue;
    out.push(nal[i]!);
  }
  return Uint8Array.from(out);
}

const HIGH_PROFILES = new Set([100, 110, 122, 244, 44, 83, 86, 118, 128, 138, 139, 134, 135]);

/** Width and height of the decoded picture (cropping applied) from an H.264 SPS NAL unit (header byte included). */
export function parseH264SpsSize(nal: Uint8Array): { width: number; height: number } | null {
  if (nal.length < 4 || (nal[0]! & 0x1f) !== 7) return null;
  try {
    const r = new BitReader(rbsp(nal.subarray(1)));
    const profile = r.u(8);
    r.u(16); // constraint flags, level
    r.ue(); // seq_parameter_set_id
    let chroma = 1;
    if (HIGH_PROFILES.has(profile)) {
      chroma = r.ue();
      if (chroma === 3) r.u(1);
      r.ue(); // bit depths
      r.ue();
      r.u(1);
      if (r.u(1)) {
        for (let i = 0; i < (chroma !== 3 ? 8 : 12); i++) {
          if (!r.u(1)) continue;
          let last = 8;
          let next = 8;
          for (let j = 0; j < (i < 6 ? 16 : 64); j++) {
            if (next !== 0) next = (last + r.se() + 256) % 256;
            last = next === 0 ? last : next;
          }
        }
      }
    }
    r.ue(); // log2_max_frame_num_minus4
    const pocType = r.ue();
    if (pocType === 0) r.ue();
    else if (pocType === 1) {
      r.u(1);
      r.se();
      r.se();
      const n = r.ue();
      for (let i = 0; i < n; i++) r.se();
    }
    r.ue(); // max_num_ref_frames
    r.u(1);
    const widthMbs = r.ue() + 1;
    const heightMapUnits = r.ue() + 1;
    const frameMbsOnly = r.u(1);
    if (!frameMbsOnly) r.u(1);
    r.u(1); // direct_8x8_inference
    let [left, right, top, bottom] = [0, 0, 0, 0];
    if (r.u(1)) [left, right, top, bottom] = [r.ue(), r.ue(), r.ue(), r.ue()];
    const cropX = chroma === 0 || chroma === 3 ? 1 : 2;
    const cropY = (chroma === 1 ? 2 : 1) * (2 - frameMbsOnly);
    const width = widthMbs * 16 - (left + right) * cropX;
    const height = (2 - frameMbsOnly) * heightMapUnits * 16 - (top + bottom) * cropY;
    return plausible(width, height) ? { width, height } : null;
  } catch {
    return null;
  }
}

/** The first SPS of an AVCDecoderConfigurationRecord (ISO/IEC 14496-15 §5.3.3.1). */
function spsOfAvcConfig(record: Uint8Array): Uint8Array | null {
  if (record.length < 8 || record[0] !== 1 || (record[5]! & 0x1f) === 0) return null;
  const len = (record[6]! << 8) | record[7]!;
  return record.length >= 8 + len ? record.subarray(8, 8 + len) : null;
}

/** An Annex B SPS (start code, NAL type 7) complete enough to parse, within `bytes`. */
function spsInAnnexB(bytes: Uint8Array): Uint8Array | null {
  for (let i = 0; i + 3 < bytes.length; i++) {
    if (bytes[i] !== 0 || bytes[i + 1] !== 0 || bytes[i + 2] !== 1 || (bytes[i + 3]! & 0x1f) !== 7) continue;
    // The SPS runs to the next start code; without one yet, what is there may already suffice.
    let end = i + 4;
    while (end + 2 < bytes.length && !(bytes[end] === 0 && bytes[end + 1] === 0 && bytes[end + 2]! <= 1)) end++;
    return bytes.subarray(i + 3, end + 2 < bytes.length ? end : bytes.length);
  }
  return null;
}

// ---- Containers --------------------------------------------------------------------------------

/** Stops looking after this much of the stream (a few seconds of a high-bitrate source). */
const MAX_BYTES = 4 * 1024 * 1024;

/** FLV: onMetaData `width`/`height` first, else the SPS of the AVC sequence header. */
export class FlvSizeProbe {
  #buf: Buffer = Buffer.alloc(0);
  #offset = 13;
  #total = 0;
  done = false;

  push(chunk: Uint8Array): SourceSize | null {
    if (this.done) return null;
    this.#total += chunk.byteLength;
    this.#buf = Buffer.concat([this.#buf, chunk]);
    const b = this.#buf;
    if (b.length >= 9 && b.toString('latin1', 0, 3) === 'FLV') this.#offset = Math.max(this.#offset, b.readUInt32BE(5) + 4);
    while (b.length - this.#offset >= 11) {
      const at = this.#offset;
      const type = b[at]! & 0x1f;
      const size = b.readUIntBE(at + 1, 3);
      if (b.length - at < 11 + size + 4) break;
      this.#offset = at + 11 + size + 4;
      const body = b.subarray(at + 11, at + 11 + size);
      const found = type === 18 ? sizeOfMetadata(body) : type === 9 ? sizeOfVideoConfig(body) : null;
      if (found) return this.#finish(found);
    }
    if (this.#total >= MAX_BYTES) this.done = true;
    return null;
  }

  #finish(size: SourceSize): SourceSize {
    this.done = true;
    this.#buf = Buffer.alloc(0);
    return size;
  }
}

function sizeOfMetadata(body: Buffer): SourceSize | null {
  try {
    const values = decodeAmf0All(body);
    const meta = values.find((v) => v !== null && typeof v === 'object' && !Array.isArray(v)) as Record<string, unknown> | undefined;
    const width = Number(meta?.width);
    const height = Number(meta?.height);
    return plausible(width, height) ? { width, height, from: 'metadata' } : null;
  } catch {
    return null;
  }
}

/** A legacy AVC sequence header tag (codec 7, AVCPacketType 0). Enhanced-RTMP HEVC sources stay unsized. */
function sizeOfVideoConfig(body: Buffer): SourceSize | null {
  if (body.length < 6 || (body[0]! & 0x80) !== 0 || (body[0]! & 0x0f) !== 7 || body[1] !== 0) return null;
  const sps = spsOfAvcConfig(body.subarray(5));
  const size = sps ? parseH264SpsSize(sps) : null;
  return size ? { ...size, from: 'sps' } : null;
}

/** MPEG-TS: the H.264 SPS in the payload of the program's video PID (the PMT says which). */
export class TsSizeProbe {
  #rest: Buffer = Buffer.alloc(0);
  #pmtPid: number | null = null;
  #videoPid: number | null = null;
  #payload: Buffer = Buffer.alloc(0);
  #total = 0;
  done = false;

  push(chunk: Uint8Array): SourceSize | null {
    if (this.done) return null;
    this.#total += chunk.byteLength;
    const b = this.#rest.length > 0 ? Buffer.concat([this.#rest, chunk]) : Buffer.from(chunk);
    let at = 0;
    while (at + 188 <= b.length) {
      if (b[at] !== 0x47) {
        at++;
        continue;
      }
      const found = this.#packet(b.subarray(at, at + 188));
      at += 188;
      if (found) {
        this.done = true;
        return found;
      }
    }
    this.#rest = b.subarray(at);
    if (this.#total >= MAX_BYTES) this.done = true;
    return null;
  }

  #packet(p: Buffer): SourceSize | null {
    const pusi = (p[1]! & 0x40) !== 0;
    const pid = ((p[1]! & 0x1f) << 8) | p[2]!;
    const afc = (p[3]! >> 4) & 0x3;
    if (!(afc & 0x1)) return null;
    const start = 4 + (afc & 0x2 ? 1 + p[4]! : 0);
    if (start >= 188) return null;
    const payload = p.subarray(start);
    if (pid === this.#videoPid) {
      // A PES header first when a unit starts: 9 bytes and its optional fields.
      const data =
        pusi && payload.length >= 9 && payload[0] === 0 && payload[1] === 0 && payload[2] === 1
          ? payload.subarray(9 + payload[8]!)
          : payload;
      this.#payload = Buffer.concat([this.#payload, data]).subarray(-64 * 1024);
      const sps = spsInAnnexB(this.#payload);
      const size = sps ? parseH264SpsSize(sps) : null;
      return size ? { ...size, from: 'sps' } : null;
    }
    if (!pusi || (pid !== 0 && pid !== this.#pmtPid)) return null;
    const off = 1 + payload[0]!; // pointer_field
    if (off + 3 > payload.length) return null;
    const tableId = payload[off]!;
    const end = Math.min(payload.length, off + 3 + (((payload[off + 1]! & 0x0f) << 8) | payload[off + 2]!) - 4);
    if (pid === 0 && tableId === 0x00) {
      for (let i = off + 8; i + 4 <= end; i += 4) {
        if (payload.readUInt16BE(i) !== 0) {
          this.#pmtPid = payload.readUInt16BE(i + 2) & 0x1fff;
          break;
        }
      }
    } else if (tableId === 0x02 && off + 12 <= end) {
      const programInfo = payload.readUInt16BE(off + 10) & 0x0fff;
      for (let i = off + 12 + programInfo; i + 5 <= end; i += 5 + (payload.readUInt16BE(i + 3) & 0x0fff)) {
        // Only H.264 (0x1b) is sized; another video codec leaves the source unsized.
        if (payload[i] === 0x1b) {
          this.#videoPid = payload.readUInt16BE(i + 1) & 0x1fff;
          break;
        }
      }
      if (this.#videoPid === null) this.done = true;
    }
    return null;
  }
}

/** A size probe for the ingest's container; Matroska (WHIP) is not sized (its encoders adapt the size anyway). */
export function sizeProbe(format: 'flv' | 'mpegts' | 'matroska'): FlvSizeProbe | TsSizeProbe | null {
  if (format === 'flv') return new FlvSizeProbe();
  return format === 'mpegts' ? new TsSizeProbe() : null;
}
