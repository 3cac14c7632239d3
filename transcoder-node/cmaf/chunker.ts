// CmafChunker: turns one rendition's fMP4 byte stream (as ffmpeg writes it to a pipe) into the
// init segment, LL-HLS parts and parent segments, numbered so every rendition's MSNs line up.
import { createLogger } from '../log.ts';
import type { Logger } from '../log.ts';
import type { PartInfo, RenditionKind } from '../../core/contracts/live-model.ts';
import { BoxError, BoxReader, MAX_BOX_SIZE } from '../../core/cmaf/boxes.ts';
import type { Box } from '../../core/cmaf/boxes.ts';
import { parseFragment, parseInit } from '../../core/cmaf/fmp4.ts';
import type { FragmentInfo, InitInfo, TrackInfo } from '../../core/cmaf/fmp4.ts';

/** What the multivariant playlist needs from an init segment (RenditionInfo minus name and bandwidth). */
export interface CmafInitInfo {
  kind: RenditionKind;
  /** RFC 6381 codecs of every track, comma-separated (one track per rendition in our ladder). */
  codecs: string;
  /** Timescale and track of the primary track, which times parts and segments. */
  timescale: number;
  trackId: number;
  width?: number;
  height?: number;
  /** Frames per second, measured from the first fragment's sample durations. */
  frameRate?: number;
  channels?: number;
  sampleRate?: number;
  tracks: TrackInfo[];
}

export interface CmafInitEvent {
  type: 'init';
  /** ftyp + moov exactly as written: the EXT-X-MAP object. */
  bytes: Uint8Array;
  info: CmafInitInfo;
}

export interface CmafPartEvent extends PartInfo {
  type: 'part';
  msn: number;
  /** Index within its parent segment, from 0. */
  part: number;
  /** [styp][prft][emsg] moof mdat exactly as written. */
  bytes: Uint8Array;
  /** Seconds: tfdt / timescale of the primary track. */
  startTime: number;
  /**
   * The last part of its segment: the segment event follows it at once, and the next part is
   * part 0 of the next MSN. Known when the part ends on the segment grid (see `keyframesOnGrid`);
   * a segment closed only because the next part turned out to start a new one has no final part.
   */
  final: boolean;
}

export interface CmafSegmentEvent {
  type: 'segment';
  msn: number;
  /** The exact concatenation of its parts' bytes (PART-07 by construction). */
  bytes: Uint8Array;
  /** EXTINF seconds: the sum of its parts' durations (computed in ticks, so no float drift). */
  duration: number;
  startTime: number;
  partCount: number;
}

export interface CmafErrorEvent {
  type: 'error';
  error: Error;
}

export type CmafChunkerEvent = CmafInitEvent | CmafPartEvent | CmafSegmentEvent | CmafErrorEvent;

/** Listeners for `on()`. Like EventEmitter, `error` receives the Error itself. */
export interface CmafChunkerListeners {
  init: (event: CmafInitEvent) => void;
  part: (event: CmafPartEvent) => void;
  segment: (event: CmafSegmentEvent) => void;
  error: (error: Error) => void;
}

export interface CmafChunkerOptions {
  /** MSN of the first segment (≥ 1: LLHLS.md §2.2 pitfall 5). */
  startMsn: number;
  /** Segment target, seconds: segments end on a grid of this step. */
  segmentTarget: number;
  /** PART-TARGET, seconds; only used to warn about parts that exceed it (PART-08). */
  partTarget?: number;
  /**
   * Origin of the segment grid in media seconds. Defaults to the first part's start time. Give the
   * same value to every rendition of a ladder (ffmpeg starts each output's tfdt at 0) so their
   * segment boundaries fall on the same grid.
   */
  timeOrigin?: number;
  /** A segment with no independent part for this long is a broken stream (default max(10, 10 × target) s). */
  maxSegmentDuration?: number;
  /**
   * The encoder forces a keyframe at every point of the segment grid (our ladder does:
   * `-force_key_frames` every segment target, see ladder.ts). Then a video part that ends on the
   * grid is the last of its segment, and the segment closes together with it instead of when the
   * next part arrives: the origin can hint part 0 of the next MSN right away, never a part that
   * will not exist (LLHLS.md PH-01/PH-05). If the promise is broken once (the part after the grid
   * is not independent), the chunker warns and falls back to closing on the next keyframe.
   * Audio needs no promise: every audio part is independent, so its segments always close on the grid.
   */
  keyframesOnGrid?: boolean;
  logger?: Logger;
}

export interface CmafChunkerStats {
  parts: number;
  segments: number;
  /** Parts whose tfdt did not continue the previous part (Apple 7.3). */
  tfdtGaps: number;
  /** Segments closed on the grid whose next part was not independent (`keyframesOnGrid` broken). */
  gridMisses: number;
}

/** Boxes that may precede a moof as part of the same chunk (LLHLS.md §3.1). */
const CHUNK_PREFIX_BOXES = new Set(['styp', 'prft', 'emsg', 'sidx', 'free', 'skip', 'uuid']);
/** Boxes that may precede the moov in an init segment. */
const INIT_BOXES = new Set(['ftyp', 'free', 'skip', 'uuid', 'pdin']);

interface OpenSegment {
  msn: number;
  parts: Uint8Array[];
  bytes: number;
  startTime: number;
  durationTicks: number;
  /** Media time at which this segment should end (a point of the segment grid). */
  nominalEnd: number;
}

/**
 * A synchronous state machine with no I/O. Events come out two ways, use either: `push` and `end`
 * return the events the bytes complete, in order (handy to await each one, see cmafEvents), and
 * the same events go to listeners registered with `on`. Nothing throws: malformed input yields one
 * `error` event, after which further input is ignored; the open segment is closed first, so every
 * part already emitted belongs to a segment.
 */
export class CmafChunker {
  readonly #segmentTarget: number;
  readonly #partTarget: number | undefined;
  readonly #maxSegmentDuration: number;
  readonly #log: Logger;
  readonly #reader = new BoxReader();
  #state: 'running' | 'failed' | 'ended' = 'running';

  #initPrefix: Uint8Array[] = [];
  #initBytes: Uint8Array | null = null;
  #init: InitInfo | null = null;
  #initInfo: CmafInitInfo | null = null;
  #initEmitted = false;

  #chunkPrefix: Uint8Array[] = [];
  /** Bytes of boxes held while waiting for the moov or the next moof: bounded like one box. */
  #chunkPrefixBytes = 0;
  #moof: { bytes: Uint8Array; fragment: FragmentInfo } | null = null;

  #timescale = 1;
  #timeOrigin: number | null = null;
  #nextTfdt: number | null = null;
  #segment: OpenSegment | null = null;
  #nextMsn: number;
  #keyframesOnGrid: boolean;
  /** The last segment closed on the grid: the next part should be independent. */
  #closedOnGrid = false;
  #stats: CmafChunkerStats = { parts: 0, segments: 0, tfdtGaps: 0, gridMisses: 0 };
  #listeners: { [K in keyof CmafChunkerListeners]: CmafChunkerListeners[K][] } = { init: [], part: [], segment: [], error: [] };

  constructor(options: CmafChunkerOptions) {
    if (!Number.isInteger(options.startMsn) || options.startMsn < 0) throw new RangeError('startMsn must be a non-negative integer');
    if (!(options.segmentTarget > 0)) throw new RangeError('segmentTarget must be positive');
    this.#segmentTarget = options.segmentTarget;
    this.#partTarget = options.partTarget;
    this.#maxSegmentDuration = options.maxSegmentDuration ?? Math.max(10, 10 * options.segmentTarget);
    this.#log = options.logger ?? createLogger({ component: 'cmaf-chunker' });
    this.#nextMsn = options.startMsn;
    this.#keyframesOnGrid = options.keyframesOnGrid ?? false;
    if (options.timeOrigin !== undefined) this.#timeOrigin = options.timeOrigin;
  }

  /** Registers a listener; an unhandled `error` does not throw (unlike EventEmitter). */
  on<K extends keyof CmafChunkerListeners>(type: K, listener: CmafChunkerListeners[K]): this {
    this.#listeners[type].push(listener);
    return this;
  }

  get stats(): Readonly<CmafChunkerStats> {
    return { ...this.#stats };
  }

  /** Feeds bytes as they arrive (any split). Returns the events they complete. Never throws. */
  push(chunk: Uint8Array): CmafChunkerEvent[] {
    if (this.#state !== 'running') {
      if (this.#state === 'ended') this.#log.warn('bytes pushed after end() are ignored', { bytes: chunk.byteLength });
      return [];
    }
    const events: CmafChunkerEvent[] = [];
    try {
      for (const box of this.#reader.push(chunk)) this.#onBox(box, events);
    } catch (err) {
      this.#fail(err, events);
    }
    return this.#dispatch(events);
  }

  /** The stream ended: emits the init (if no part came), then closes the open segment. Never throws. */
  end(): CmafChunkerEvent[] {
    if (this.#state !== 'running') return [];
    const events: CmafChunkerEvent[] = [];
    try {
      for (const box of this.#reader.end()) this.#onBox(box, events);
      if (this.#moof) throw new BoxError('stream ended after a moof without its mdat');
      if (this.#chunkPrefix.length > 0) throw new BoxError('stream ended inside a chunk (boxes without a moof)');
      if (!this.#init) throw new BoxError(this.#initPrefix.length > 0 ? 'stream ended before the moov' : 'stream ended without any media');
      this.#emitInit(events, undefined);
      this.#closeSegment(events);
      this.#state = 'ended';
    } catch (err) {
      this.#fail(err, events);
    }
    return this.#dispatch(events);
  }

  #dispatch(events: CmafChunkerEvent[]): CmafChunkerEvent[] {
    for (const ev of events) {
      const listeners = this.#listeners[ev.type] as Array<(arg: unknown) => void>;
      for (const listener of listeners) {
        // A listener's bug must not unwind into the stream's 'data' handler and crash the process.
        try {
          listener(ev.type === 'error' ? ev.error : ev);
        } catch (error) {
          this.#log.error('cmaf chunker listener threw', { event: ev.type, error });
        }
      }
    }
    return events;
  }

  #fail(err: unknown, events: CmafChunkerEvent[]): void {
    const error = err instanceof Error ? err : new Error(String(err));
    this.#state = 'failed';
    this.#log.error('cmaf stream rejected', { error, parts: this.#stats.parts });
    try {
      this.#closeSegment(events);
    } catch {
      // Closing only concatenates bytes we already hold; nothing useful to add if it fails.
    }
    events.push({ type: 'error', error });
    this.#chunkPrefix = [];
    this.#moof = null;
  }

  #onBox(box: Box, events: CmafChunkerEvent[]): void {
    if (!this.#init) {
      if (box.type === 'moov') {
        const bytes = concat([...this.#initPrefix, box.bytes]);
        this.#initPrefix = [];
        this.#chunkPrefixBytes = 0;
        this.#init = parseInit(bytes);
        this.#initBytes = bytes;
        this.#initInfo = describeInit(this.#init);
        this.#timescale = this.#initInfo.timescale;
        return;
      }
      if (INIT_BOXES.has(box.type)) {
        this.#chunkPrefixBytes += box.bytes.byteLength;
        if (this.#chunkPrefixBytes > MAX_BOX_SIZE) throw new BoxError('too many bytes of boxes without a moov');
        this.#initPrefix.push(box.bytes);
        return;
      }
      throw new BoxError(`'${box.type}' box before the init segment (ftyp+moov)`);
    }

    switch (box.type) {
      case 'moof': {
        if (this.#moof) throw new BoxError('moof followed by another moof instead of its mdat');
        this.#moof = { bytes: box.bytes, fragment: parseFragment(box.bytes, this.#init) };
        return;
      }
      case 'mdat': {
        const moof = this.#moof;
        if (!moof) throw new BoxError('mdat without a preceding moof');
        for (const traf of moof.fragment.trafs) {
          if (traf.dataEnd !== null && traf.dataEnd > moof.bytes.byteLength + box.bytes.byteLength) {
            throw new BoxError(`track ${traf.trackId} sample data runs past the end of its mdat`);
          }
        }
        const bytes = concat([...this.#chunkPrefix, moof.bytes, box.bytes]);
        this.#chunkPrefix = [];
        this.#chunkPrefixBytes = 0;
        this.#moof = null;
        this.#onChunk(bytes, moof.fragment, events);
        return;
      }
      case 'mfra': {
        // The random-access trailer ffmpeg writes on close without +skip_trailer: not media.
        if (this.#moof) throw new BoxError('mfra after a moof without its mdat');
        return;
      }
      case 'ftyp':
      case 'moov':
        throw new BoxError(`a second '${box.type}' in one stream: a new init segment needs a new chunker (and epoch)`);
      default: {
        if (!CHUNK_PREFIX_BOXES.has(box.type)) throw new BoxError(`unexpected top-level '${box.type}' box`);
        if (this.#moof) throw new BoxError(`'${box.type}' between a moof and its mdat`);
        this.#chunkPrefixBytes += box.bytes.byteLength;
        if (this.#chunkPrefixBytes > MAX_BOX_SIZE) throw new BoxError('too many bytes of boxes without a moof');
        this.#chunkPrefix.push(box.bytes);
      }
    }
  }

  #onChunk(bytes: Uint8Array, fragment: FragmentInfo, events: CmafChunkerEvent[]): void {
    // With one track per rendition this always holds; a muxed stream cut with separate_moof would not.
    if (fragment.primaryTrackId !== this.#initInfo!.trackId) {
      throw new BoxError(`chunk carries no traf for track ${this.#initInfo!.trackId}`);
    }
    const primary = fragment.trafs.find((t) => t.trackId === fragment.primaryTrackId)!;
    const duration = fragment.duration;
    const startTime = fragment.startTime;

    if (this.#nextTfdt !== null && fragment.baseMediaDecodeTime !== this.#nextTfdt) {
      this.#stats.tfdtGaps++;
      this.#log.warn('tfdt is not continuous', {
        expected: this.#nextTfdt,
        got: fragment.baseMediaDecodeTime,
        gapSeconds: (fragment.baseMediaDecodeTime - this.#nextTfdt) / this.#timescale,
      });
    }
    this.#nextTfdt = fragment.baseMediaDecodeTime + fragment.durationTicks;

    if (!this.#initEmitted) {
      const frameRate =
        this.#initInfo!.kind === 'video' && primary.duration > 0
          ? round3((this.#timescale * primary.sampleCount) / primary.duration)
          : undefined;
      this.#emitInit(events, frameRate);
    }

    const pt = this.#partTarget;
    if (pt !== undefined && duration > pt + 1e-9) {
      this.#log.warn('part longer than PART-TARGET (PART-08)', { duration, partTarget: pt });
    }

    const seg = this.#segment;
    if (seg && fragment.independent && startTime >= seg.nominalEnd - duration / 2) {
      // The segment did not end on the grid (a late keyframe, or no keyframesOnGrid promise):
      // it closes now that a part can start the next one.
      this.#closeSegment(events);
    } else if (seg && (seg.durationTicks + fragment.durationTicks) / this.#timescale > this.#maxSegmentDuration) {
      throw new BoxError(`no independent part for ${this.#maxSegmentDuration} s: cannot start a segment`);
    }
    if (!seg && this.#closedOnGrid && !fragment.independent) {
      // Too late to reopen the segment that closed (it is announced): this one starts without a
      // keyframe (SEG-06). Stop trusting the grid for video; the next keyframe closes segments.
      this.#stats.gridMisses++;
      this.#keyframesOnGrid = false;
      this.#log.warn('the part after a segment boundary is not independent; closing segments on keyframes from now on', {
        msn: this.#nextMsn,
        startTime,
      });
    }
    this.#closedOnGrid = false;
    const open = this.#segment ?? this.#openSegment(startTime);
    const part: CmafPartEvent = {
      type: 'part',
      msn: open.msn,
      part: open.parts.length,
      bytes,
      duration,
      independent: fragment.independent,
      startTime,
      final: false,
    };
    open.parts.push(bytes);
    open.bytes += bytes.byteLength;
    open.durationTicks += fragment.durationTicks;
    this.#stats.parts++;
    events.push(part);

    // Does this part end the segment? Audio: when the next part would start within half a part of
    // the grid point (the same rule as closing on an independent part above, a part earlier).
    // Video with keyframes forced on the grid: when it ends on the grid point, give or take half
    // a frame of timestamp rounding, because the next frame is the forced keyframe.
    const end = startTime + duration;
    const audio = this.#initInfo!.kind === 'audio';
    const tolerance = audio ? duration / 2 : primary.sampleCount > 0 ? duration / primary.sampleCount / 2 : 0;
    if ((audio || this.#keyframesOnGrid) && end >= open.nominalEnd - tolerance) {
      part.final = true;
      this.#closeSegment(events);
      this.#closedOnGrid = true;
    }
  }

  #openSegment(startTime: number): OpenSegment {
    const t = this.#segmentTarget;
    if (this.#timeOrigin === null) this.#timeOrigin = startTime;
    // Index on the grid t0 + k·target nearest this start, so one long segment (a late keyframe)
    // does not shift every later boundary: renditions keep cutting at the same media times.
    const k = Math.round((startTime - this.#timeOrigin) / t);
    const seg: OpenSegment = {
      msn: this.#nextMsn++,
      parts: [],
      bytes: 0,
      startTime,
      durationTicks: 0,
      nominalEnd: this.#timeOrigin + (k + 1) * t,
    };
    this.#segment = seg;
    return seg;
  }

  #closeSegment(events: CmafChunkerEvent[]): void {
    const seg = this.#segment;
    if (!seg || seg.parts.length === 0) return;
    this.#segment = null;
    const duration = seg.durationTicks / this.#timescale;
    if (duration > this.#segmentTarget + 0.5) {
      this.#log.warn('segment exceeds the segment target by more than 0.5 s (MP-02)', {
        msn: seg.msn,
        duration,
        segmentTarget: this.#segmentTarget,
      });
    }
    this.#stats.segments++;
    events.push({
      type: 'segment',
      msn: seg.msn,
      bytes: concat(seg.parts, seg.bytes),
      duration,
      startTime: seg.startTime,
      partCount: seg.parts.length,
    });
  }

  #emitInit(events: CmafChunkerEvent[], frameRate: number | undefined): void {
    if (this.#initEmitted) return;
    this.#initEmitted = true;
    const info = { ...this.#initInfo! };
    if (frameRate !== undefined) info.frameRate = frameRate;
    events.push({ type: 'init', bytes: this.#initBytes!, info });
  }
}

/**
 * Reads a rendition's byte stream through a chunker and yields its events, so a caller can write
 * `for await (const ev of cmafEvents(stream, chunker))` and await each upload (back-pressure).
 * A failing source becomes an `error` event instead of a rejection.
 */
export async function* cmafEvents(
  source: AsyncIterable<Uint8Array>,
  chunker: CmafChunker,
): AsyncGenerator<CmafChunkerEvent, void, undefined> {
  try {
    for await (const chunk of source) {
      const events = chunker.push(chunk);
      yield* events;
      if (events.some((e) => e.type === 'error')) return;
    }
  } catch (err) {
    yield { type: 'error', error: err instanceof Error ? err : new Error(String(err)) };
    return;
  }
  yield* chunker.end();
}

function describeInit(init: InitInfo): CmafInitInfo {
  const primary = init.tracks.find((t) => t.kind === 'video') ?? init.tracks.find((t) => t.kind === 'audio');
  if (!primary) throw new BoxError('init segment has neither a video nor an audio track');
  const info: CmafInitInfo = {
    kind: primary.kind as RenditionKind,
    codecs: init.tracks
      .filter((t) => t.kind !== 'other')
      .map((t) => t.codec)
      .join(','),
    timescale: primary.timescale,
    trackId: primary.trackId,
    tracks: init.tracks,
  };
  const video = init.tracks.find((t) => t.kind === 'video');
  const audio = init.tracks.find((t) => t.kind === 'audio');
  if (video?.width) info.width = video.width;
  if (video?.height) info.height = video.height;
  if (audio?.channels) info.channels = audio.channels;
  if (audio?.sampleRate) info.sampleRate = audio.sampleRate;
  return info;
}

function concat(parts: Uint8Array[], total = parts.reduce((n, p) => n + p.byteLength, 0)): Uint8Array {
  const out = new Uint8Array(total);
  let at = 0;
  for (const p of parts) {
    out.set(p, at);
    at += p.byteLength;
  }
  return out;
}

function round3(x: number): number {
  return Math.round(x * 1000) / 1000;
}
