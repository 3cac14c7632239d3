// A publisher's media as a series of inputs, one per ladder: when a ladder is restarted (a rung
// shed under overload) the running one gets the end of its input and the next one starts on a
// clean cut of the same stream. FLV gets what a decoder needs first again (the header, the
// metadata, the codec configurations) and starts at the next video keyframe; MPEG-TS starts at the
// next chunk (SRT delivers whole TS packets; ffmpeg syncs on the next PAT/PMT and keyframe).
// Matroska (WHIP) has one header for the whole stream: it feeds one ladder and is never cut.
import { Readable } from 'node:stream';
import type { MediaContainer } from './publisher.ts';

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
    this.events.onSourceEnd?.();
  }

  private receive(chunk: Buffer): void {
    this.events.onBytes?.(chunk.byteLength);
    if (this.format !== 'flv') return this.forward(chunk);
    this.readFlv(chunk);
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
    } else if (type === 9 && body.byteLength >= 2) {
      this.hasVideo = true;
      const enhanced = (body[0]! & 0x80) !== 0;
      const frameType = (body[0]! >> 4) & 0x07;
      const isConfig = enhanced ? (body[0]! & 0x0f) === 0 : body[1] === 0 && ((body[0]! & 0x0f) === 7 || (body[0]! & 0x0f) === 12);
      if (isConfig) this.videoConfig = Buffer.from(tag);
      else if (this.awaitingKeyframe && frameType !== 1) return;
      else this.awaitingKeyframe = false;
    } else if (type === 8 && body.byteLength >= 2) {
      if (body[0]! >> 4 === 10 && body[1] === 0) this.audioConfig = Buffer.from(tag);
      else if (this.awaitingKeyframe) return; // audio starts with the picture
    }
    this.forward(tag);
  }
}
