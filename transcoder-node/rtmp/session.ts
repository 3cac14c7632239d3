// A publisher's accepted stream as the rest of the transcoder sees it: who it is, what authorize
// said about it, and its media as one FLV byte stream (header + tags) to pipe into ffmpeg's stdin.
import { EventEmitter } from 'node:events';
import type { Readable } from 'node:stream';
import type { Amf0Object } from './amf0.ts';

/** What the origin check is asked. Aborted when the publisher leaves or the check times out. */
export interface PublishRequest {
  /** The RTMP application, e.g. `live`. */
  app: string;
  /** The publish name up to any `?`: the secret stream key. */
  streamKey: string;
  /** Anything after `?` in the publish name, for encoders that add parameters there. */
  query: URLSearchParams;
  /** The publisher's IP address. */
  remoteAddress: string;
  signal: AbortSignal;
}

/**
 * A refusal's `reason` is logged; `description` is what the encoder is told in the error onStatus
 * (default "Publish refused.", which says nothing about why a key was refused).
 */
export type AuthorizeResult<C = unknown> = { ok: true; context?: C } | { ok: false; reason: string; description?: string };

/** Why a connection or session ended. */
export type RtmpEndCode =
  /** The publisher said it was done (FCUnpublish, deleteStream, closeStream). */
  | 'unpublished'
  /** The socket closed or reset without an unpublish. */
  | 'disconnected'
  | 'handshake-timeout'
  /** No publish command within the publish timeout of accepting the connection. */
  | 'publish-timeout'
  /** No publish within the idle timeout after the handshake, or no media for that long while publishing. */
  | 'idle-timeout'
  /** The client left more of what it was sent unread than the server buffers for it. */
  | 'output-backlog'
  /** The bytes broke the protocol; the message says how. */
  | 'protocol-error'
  /** authorize refused, timed out or failed; or the app or stream name was not acceptable. */
  | 'refused'
  /** A newer publisher with the same app and key took over. */
  | 'replaced'
  /** `session.close()` was called. */
  | 'closed'
  /** The FLV stream was destroyed by its consumer (for example the ffmpeg pipe broke). */
  | 'consumer-gone'
  | 'server-closing'
  /** A bug in this layer, caught so that only this connection ends. */
  | 'internal-error';

export interface RtmpSessionEnd {
  code: RtmpEndCode;
  message: string;
}

export interface RtmpSessionStats {
  /** Bytes read from the publisher's socket, handshake included. */
  bytesIn: number;
  audioTags: number;
  videoTags: number;
  /** Timestamp (ms) of the newest audio or video tag. */
  lastTimestamp: number;
}

interface RtmpSessionEvents {
  /** Once, after `flv` has been ended (it always ends cleanly, never with an error). */
  end: [RtmpSessionEnd];
  /** Each onMetaData the publisher sends (usually once, before the first media). */
  metadata: [Amf0Object];
}

export interface RtmpSessionInit<C> {
  id: string;
  app: string;
  streamKey: string;
  context: C | undefined;
  remoteAddress: string;
  encoder: string | null;
  flv: Readable;
  close: (reason: string) => void;
}

export class RtmpPublishSession<C = unknown> extends EventEmitter<RtmpSessionEvents> {
  /** The connection id, also in every log line about it. */
  readonly id: string;
  readonly app: string;
  /** The full stream key. Log `streamKeyPrefix(streamKey)`, never this. */
  readonly streamKey: string;
  /** What authorize returned with `ok: true`. */
  readonly context: C | undefined;
  readonly remoteAddress: string;
  /** The flashVer the encoder announced at connect (e.g. `FMLE/3.0 (compatible; obs-studio/30.0)`). */
  readonly encoder: string | null;
  readonly startedAt = new Date();
  /**
   * FLV header then one tag per audio, video and script message. Back-pressure reaches the
   * publisher: while this stream's buffer is full, its socket is not read.
   */
  readonly flv: Readable;
  /** The latest onMetaData, if the publisher sent one. */
  metadata: Amf0Object | null = null;
  readonly stats: RtmpSessionStats = { bytesIn: 0, audioTags: 0, videoTags: 0, lastTimestamp: 0 };
  private endState: RtmpSessionEnd | null = null;
  private readonly closer: (reason: string) => void;

  constructor(init: RtmpSessionInit<C>) {
    super();
    this.id = init.id;
    this.app = init.app;
    this.streamKey = init.streamKey;
    this.context = init.context;
    this.remoteAddress = init.remoteAddress;
    this.encoder = init.encoder;
    this.flv = init.flv;
    this.closer = init.close;
  }

  /** Null while live; afterwards why it ended. */
  get ended(): RtmpSessionEnd | null {
    return this.endState;
  }

  /** Ends the session and drops the publisher's connection (for example when the origin lease is lost). */
  close(reason = 'closed by the transcoder'): void {
    this.closer(reason);
  }

  /** Called by the connection, once: ends `flv` and emits `end`. */
  finish(end: RtmpSessionEnd): void {
    if (this.endState) return;
    this.endState = end;
    if (!this.flv.destroyed) this.flv.push(null);
    this.emit('end', end);
  }
}

/**
 * The part of a stream key that is safe in a log: at most 4 characters and never more than a
 * quarter of the key, so short test keys show nothing.
 */
export function streamKeyPrefix(key: string): string {
  return key.slice(0, Math.min(4, Math.floor(key.length / 4))) + '…';
}
