// A publisher's media as a series of inputs, one per ladder: when a ladder is restarted (a rung
// shed under overload) the running one gets the end of its input and the next one starts on a
// clean cut of the same stream. FLV gets what a decoder needs first again (the header, the
// metadata, the codec configurations) and starts at the next video keyframe; MPEG-TS starts at the
// next chunk (SRT delivers whole TS packets; ffmpeg syncs on the next PAT/PMT and keyframe).
// Matroska (WHIP) has one header for the whole stream: it feeds one ladder and is never cut.
// Taps (restream destinations) get the same clean cuts of the stream, but never hold it up: what a
// tap's consumer cannot take is dropped, and the tap resumes at the next cut.
import { Readable } from 'node:stream';
import type { MediaContainer } from './publisher.ts';

/** Where a tap's bytes go (a restream's ffmpeg stdin). */
export interface TapConsumer {
  write(bytes: Buffer): void;
  /** Bytes written and not consumed yet (a pipe's writableLength). */
  buffered(): number;
  /** The publisher's stream has ended. */
  end(): void;
}

export interface SourceTap {
  /** Bytes of the stream this tap did not deliver (its consumer was full, or it waited for a cut). */
  readonly droppedBytes: number;
  close(): void;
}

/**
 * How a unit of the stream matters to a tap: `always` (what a decoder needs whatever it missed:
 * headers, metadata, codec configurations), `cut` (a clean place to start: a video keyframe, a TS
 * chunk, a Matroska Cluster), `media` (anything else, delivered only after a cut).
 */
type UnitRole = 'always' | 'cut' | 'media';

interface Tap extends SourceTap {
  consumer: TapConsumer;
  maxBufferedBytes: number;
  awaitingCut: boolean;
  droppedBytes: number;
}

/** The Matroska Cluster element id: the WHIP writer starts one at every video keyframe. */
const MKV_CLUSTER = [0x1f, 0x43, 0xb6, 0x75];
/** A Matroska header longer than this is not kept for taps (ours is a few hundred bytes). */
const MAX_MKV_HEADER = 64 * 1024;

export interface RelayEvents {
  /** Every chunk the publisher sends, by size (the ingest byte counters). */
  onBytes?: (n: number) => void;
  /** The publisher's stream has ended (what the current input holds is still to be read). */
  onSourceEnd?: () => void;
}

const TAG_HEADER = 11;
const FLV_HEADER = 13; // 9-byte header + PreviousTagSize0

export class InputRelay {
  private readonly source: Readable;
  private readonly format: MediaContainer;
  private current: Readable | null = null;
  private sourceEnded = false;
  /** Bytes of the FLV header seen so far, and of a tag split across chunks. */
  private flvHeader: Buffer | null = null;
  private pending: Buffer = Buffer.alloc(0);
  private metadata: Buffer | null = null;
  private videoConfig: Buffer | null = null;
  private audioConfig: Buffer | null = null;
  /** A video tag was seen (the header's flags say what an encoder announced, not what it sends). */
  private hasVideo = false;
  /** The current input waits for a video keyframe before its first media tag. */
  private awaitingKeyframe = false;
  private readonly events: RelayEvents;
  private readonly taps = new Set<Tap>();
  /** Matroska: the bytes before the first Cluster (EBML header, Segment, Tracks), and whether they are complete. */
  private mkvHeader: Buffer[] = [];
  private mkvHeaderDone = false;

  constructor(source: Readable, format: MediaContainer, events: RelayEvents = {}) {
    this.source = source;
    this.format = format;
    this.events = events;
    source.pause();
    source.on('data', (chunk: Buffer) => this.receive(chunk));
    source.once('end', () => this.finishSource());
    source.once('close', () => this.finishSource());
    source.on('error', () => this.finishSource());
  }

  /** Whether a second input can start on a clean cut of the stream (not for Matroska). */
  get canRestart(): boolean {
    return this.format !== 'matroska';
  }

  /** The publisher's stream has ended: every input handed out has ended or will end. */
  get ended(): boolean {
    return this.sourceEnded;
  }

  /** A new input for the next ladder. The previous one, if any, must have been detached. */
  attach(): Readable {
    if (this.current) throw new Error('the relay already feeds an input: detach it first');
    const input = new Readable({ highWaterMark: 1024 * 1024, read: () => this.source.resume() });
    this.current = input;
    if (this.sourceEnded) {
      input.push(null);
      return input;
    }
    if (this.format === 'flv' && this.flvHeader) {
      // What a fresh decoder needs before any frame: header, metadata, codec configurations.
      input.push(this.flvHeader);
      for (const tag of [this.metadata, this.videoConfig, this.audioConfig]) if (tag) input.push(tag);
      this.awaitingKeyframe = this.hasVideo;
    }
    this.source.resume();
    return input;
  }

  /**
   * A consumer of the stream besides the ladder that never slows the publisher: it gets what a
   * decoder needs first, then the stream from its next clean cut; whenever the consumer holds more
   * than `maxBufferedBytes`, units are dropped (counted) until the next cut. So what it can cost in
   * memory is bounded by construction: maxBufferedBytes plus one unit.
   */
  tap(consumer: TapConsumer, maxBufferedBytes: number): SourceTap {
    const tap: Tap = {
      consumer,
      maxBufferedBytes,
      awaitingCut: true,
      droppedBytes: 0,
      close: () => void this.taps.delete(tap),
    };
    if (this.sourceEnded) {
      consumer.end();
      return tap;
    }
    if (this.format === 'flv' && this.flvHeader) {
      consumer.write(this.flvHeader);
      for (const unit of [this.metadata, this.videoConfig, this.audioConfig]) if (unit) consumer.write(unit);
    } else if (this.format === 'matroska') {
      for (const unit of this.mkvHeader) consumer.write(unit);
      // Before the header is complete the tap takes the stream from its very start.
      tap.awaitingCut = this.mkvHeaderDone;
    }
    this.taps.add(tap);
    return tap;
  }

  private offer(unit: Buffer, role: UnitRole): void {
    for (const tap of this.taps) {
      if (role === 'cut') tap.awaitingCut = false;
      else if (role === 'media' && tap.awaitingCut) {
        tap.droppedBytes += unit.byteLength;
        continue;
      }
      // What a decoder needs whatever it missed is small and rare: it always goes.
      if (role !== 'always' && tap.consumer.buffered() + unit.byteLength > tap.maxBufferedBytes) {
        tap.droppedBytes += unit.byteLength;
        tap.awaitingCut = true;
        continue;
      }
      tap.consumer.write(unit);
    }
  }

  /** Ends the current input (its ladder sees the end of its stream) and holds the publisher until the next attach. */
  detach(): void {
    const input = this.current;
    this.current = null;
    this.source.pause();
    input?.push(null);
  }

  private finishSource(): void {
    if (this.sourceEnded) return;
    this.sourceEnded = true;
    this.current?.push(null);
    for (const tap of this.taps) tap.consumer.end();
    this.taps.clear();
    this.events.onSourceEnd?.();
  }

  private receive(chunk: Buffer): void {
    this.events.onBytes?.(chunk.byteLength);
    if (this.format === 'flv') return this.readFlv(chunk);
    if (this.taps.size > 0 || (this.format === 'matroska' && !this.mkvHeaderDone)) this.offer(chunk, this.role(chunk));
    this.forward(chunk);
  }

  /**
   * MPEG-TS: every chunk is a cut (SRT delivers whole TS packets; ffmpeg syncs on the next PAT/PMT
   * and keyframe). Matroska: the WHIP writer hands over each element it writes as one chunk (the
   * stream keeps chunk boundaries), so a chunk that starts a Cluster is a cut, and what comes
   * before the first one is the header.
   */
  private role(chunk: Buffer): UnitRole {
    if (this.format === 'mpegts') return 'cut';
    const cluster = chunk.byteLength >= 4 && MKV_CLUSTER.every((b, i) => chunk[i] === b);
    if (!this.mkvHeaderDone) {
      if (cluster) this.mkvHeaderDone = true;
      else if (this.mkvHeader.reduce((n, b) => n + b.byteLength, 0) + chunk.byteLength <= MAX_MKV_HEADER) {
        this.mkvHeader.push(Buffer.from(chunk));
        return 'always';
      } else this.mkvHeaderDone = true;
    }
    return cluster ? 'cut' : 'media';
  }

  private forward(bytes: Buffer): void {
    const input = this.current;
    if (!input) return; // between two ladders: the publisher is paused, this is what was in flight
    if (!input.push(bytes)) this.source.pause();
  }

  /** Splits the FLV byte stream into the header and whole tags (chunks are usually whole tags already). */
  private readFlv(chunk: Buffer): void {
    let buf = this.pending.byteLength > 0 ? Buffer.concat([this.pending, chunk]) : chunk;
    if (!this.flvHeader) {
      if (buf.byteLength < FLV_HEADER) {
        this.pending = buf;
        return;
      }
      const header = Buffer.from(buf.subarray(0, FLV_HEADER));
      this.flvHeader = header;
      this.offer(header, 'always');
      this.forward(header);
      buf = buf.subarray(FLV_HEADER);
    }
    let off = 0;
    while (buf.byteLength - off >= TAG_HEADER) {
      const size = buf.readUIntBE(off + 1, 3);
      const end = off + TAG_HEADER + size + 4;
      if (buf.byteLength < end) break;
      this.tag(buf.subarray(off, end));
      off = end;
    }
    this.pending = off < buf.byteLength ? Buffer.from(buf.subarray(off)) : Buffer.alloc(0);
  }

  private tag(tag: Buffer): void {
    const type = tag[0]! & 0x1f;
    const body = tag.subarray(TAG_HEADER, tag.byteLength - 4);
    if (type === 18) {
      this.metadata = Buffer.from(tag);
      this.offer(tag, 'always');
    } else if (type === 9 && body.byteLength >= 2) {
      this.hasVideo = true;
      const enhanced = (body[0]! & 0x80) !== 0;
      const frameType = (body[0]! >> 4) & 0x07;
      const isConfig = enhanced ? (body[0]! & 0x0f) === 0 : body[1] === 0 && ((body[0]! & 0x0f) === 7 || (body[0]! & 0x0f) === 12);
      this.offer(tag, isConfig ? 'always' : frameType === 1 ? 'cut' : 'media');
      if (isConfig) this.videoConfig = Buffer.from(tag);
      else if (this.awaitingKeyframe && frameType !== 1) return;
      else this.awaitingKeyframe = false;
    } else if (type === 8 && body.byteLength >= 2) {
      const isConfig = body[0]! >> 4 === 10 && body[1] === 0;
      // Without video, any audio frame is a place to start.
      this.offer(tag, isConfig ? 'always' : this.hasVideo ? 'media' : 'cut');
      if (isConfig) this.audioConfig = Buffer.from(tag);
      else if (this.awaitingKeyframe) return; // audio starts with the picture
    } else this.offer(tag, 'media');
    this.forward(tag);
  }
}
