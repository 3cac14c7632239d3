// The publisher contract: what every ingest protocol (RTMP, SRT, WHIP) hands the ladder once the
// origin has checked its key and given it a lease. IngestSession (ingest-session.ts) consumes only this,
// so a new protocol is a new producer of a Publisher, never a change to the pipeline.
import type { Readable } from 'node:stream';
import type { AuthorizeResponse } from '../core/contracts/ingest-protocol.ts';
import type { InputTracks } from './input-tracks.ts';

export type IngestProtocol = 'rtmp' | 'srt' | 'whip';

/** The container of a publisher's byte stream, as ffmpeg's demuxer names it (`-f …`). */
export type MediaContainer = 'flv' | 'mpegts' | 'matroska';

export interface PublisherEnd {
  /** Protocol-specific code (`disconnected`, `closed`, …). */
  code: string;
  message: string;
}

export interface Publisher {
  readonly protocol: IngestProtocol;
  /** The lease the origin gave this publisher (stream, epoch, ladder, timing). */
  readonly lease: AuthorizeResponse;
  /** The publisher's IP address (logs, health). */
  readonly remoteAddress: string;
  /** The media as one byte stream in `container`; it ends when the publisher stops. */
  readonly media: Readable;
  readonly container: MediaContainer;
  /**
   * The tracks, when the protocol's signalling already says which there are (WHIP: the SDP).
   * Absent: the session reads them from the first bytes of `media` (input-tracks.ts).
   */
  readonly tracks?: InputTracks;
  /** Drops the publisher (another node took the stream over, the ladder failed, shutdown). */
  close(reason: string): void;
  /** Resolves once, when the publisher has gone (whoever ended it). */
  readonly ended: Promise<PublisherEnd>;
  /** Asks the encoder for a keyframe now (WebRTC: a PLI); protocols without feedback lack it. */
  requestKeyframe?(): void;
}

/** A Publisher over what a protocol layer already exposes: its stream, its close and its end event. */
export function publisherFrom(init: {
  protocol: IngestProtocol;
  lease: AuthorizeResponse;
  remoteAddress: string;
  media: Readable;
  container: MediaContainer;
  tracks?: InputTracks;
  close: (reason: string) => void;
  onEnd: (fn: (end: PublisherEnd) => void) => void;
  requestKeyframe?: () => void;
}): Publisher {
  const ended = new Promise<PublisherEnd>((resolve) => init.onEnd(resolve));
  return {
    protocol: init.protocol,
    lease: init.lease,
    remoteAddress: init.remoteAddress,
    media: init.media,
    container: init.container,
    ...(init.tracks ? { tracks: init.tracks } : {}),
    close: init.close,
    ended,
    ...(init.requestKeyframe ? { requestKeyframe: init.requestKeyframe } : {}),
  };
}
