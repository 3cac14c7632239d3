// Timed frames of a WebRTC publisher → one live Matroska byte stream (H.264 in Annex B, Opus) that
// ffmpeg reads on stdin (`-f matroska`), built with werift-rtp's EBML writer: a Segment and
// Clusters of unknown size, so nothing is ever written twice. Pure: frames in, bytes out.
import { WEBMContainer } from 'werift-rtp/extra';
import type { MediaKind } from './sdp.ts';
import type { TimedFrame } from './rtp-frames.ts';

/** A SimpleBlock's time is a signed 16-bit offset (ms) from its Cluster's. */
const MAX_BLOCK_OFFSET_MS = 32_767;
/** Audio-only streams start a Cluster this often (video ones at every keyframe). */
const AUDIO_CLUSTER_MS = 1_000;

export interface MatroskaWriterOptions {
  /** Which tracks the stream has (as negotiated); track numbers follow this order: video 1, audio 2. */
  tracks: MediaKind[];
  /** Where the bytes go, in order. */
  write: (bytes: Buffer) => void;
}

export class MatroskaWriter {
  readonly #write: (bytes: Buffer) => void;
  readonly #container: WEBMContainer;
  readonly #trackNumber: Partial<Record<MediaKind, number>> = {};
  readonly #hasVideo: boolean;
  #started = false;
  /** ms on the session clock of media time zero in the file. */
  #zeroMs = 0;
  #clusterMs: number | null = null;
  #lastMs: Partial<Record<MediaKind, number>> = {};
  framesWritten = 0;
  framesDropped = 0;

  constructor(opts: MatroskaWriterOptions) {
    this.#write = opts.write;
    const kinds = (['video', 'audio'] as const).filter((k) => opts.tracks.includes(k));
    this.#hasVideo = kinds.includes('video');
    this.#container = new WEBMContainer(
      kinds.map((kind, i) => {
        this.#trackNumber[kind] = i + 1;
        // The picture size is read from the SPS by ffmpeg; these are placeholders the format requires.
        return kind === 'video'
          ? { kind, codec: 'MPEG4/ISO/AVC' as const, trackNumber: i + 1, width: 1280, height: 720 }
          : { kind, codec: 'OPUS' as const, trackNumber: i + 1 };
      }),
    );
  }

  /** Adds one frame. Nothing is written before the first video keyframe (a decoder needs one). */
  push(frame: TimedFrame): void {
    const track = this.#trackNumber[frame.kind];
    if (track === undefined) return;
    if (!this.#started) {
      if (this.#hasVideo && !(frame.kind === 'video' && frame.keyframe)) {
        this.framesDropped++;
        return;
      }
      this.#started = true;
      this.#zeroMs = frame.timeMs;
      this.#write(Buffer.concat([this.#container.ebmlHeader, this.#container.createSegment()]));
    }
    const t = Math.max(0, Math.round(frame.timeMs - this.#zeroMs));
    // Each track's times only grow (a frame that does not is a duplicate or came too late).
    const last = this.#lastMs[frame.kind];
    if (last !== undefined && t < last) {
      this.framesDropped++;
      return;
    }
    this.#lastMs[frame.kind] = t;
    const newCluster =
      this.#clusterMs === null ||
      (frame.kind === 'video' && frame.keyframe) ||
      (!this.#hasVideo && t - this.#clusterMs >= AUDIO_CLUSTER_MS) ||
      t - this.#clusterMs > MAX_BLOCK_OFFSET_MS;
    if (newCluster) {
      this.#clusterMs = t;
      this.#write(Buffer.from(this.#container.createCluster(t)));
    }
    const offset = t - this.#clusterMs!;
    // An audio frame a little older than a Cluster that a video keyframe just opened gets a
    // negative offset (the field is signed); one older than the field can say is dropped.
    if (offset < -MAX_BLOCK_OFFSET_MS - 1) {
      this.framesDropped++;
      return;
    }
    this.#write(this.#container.createSimpleBlock(frame.data, frame.keyframe || frame.kind === 'audio', track, offset));
    this.framesWritten++;
  }
}
