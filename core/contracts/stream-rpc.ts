// What the Worker and a stream's StreamState object say to each other over RPC, defined once:
// the push the ingest route hands over and the answers of every call (refusals: rpc-error.ts).
import type { RpcError } from './rpc-error.ts';
import type { InitMeta, PartMeta, SegmentMeta } from './ingest-protocol.ts';
import type { MediaPlaylistSnapshot, PresentationSnapshot, RenditionInfo, RenditionReport, VodPlaylistSnapshot } from './live-model.ts';
import type { StreamSettings } from './stream-config.ts';

/** What the admin API tells a stream's object when the stream is created or changed. */
export interface StreamConfig {
  streamId: string;
  settings: StreamSettings;
}

/** Who asks for the ingest lease (the authorize request, ingest-protocol.ts). */
export type LeaseRequest = { nodeId: string; region?: string | undefined; continues?: number | undefined };

/** The ingest lease a publisher takes: its epoch, where its media sequence starts, its timeline offset. */
export type LeaseResult = { epoch: number; startMsn: number; timeOffset: number } | RpcError;

/**
 * One pushed media object with its metadata, discriminated by `kind` at the top level so each
 * branch has its own metadata type. It is itself the `MediaObject` its key is made from.
 */
export type IngestPush = { epoch: number; rendition: string } & (
  | { kind: 'init'; meta: InitMeta }
  | { kind: 'part'; msn: number; part: number; meta: PartMeta }
  | { kind: 'segment'; msn: number; meta: SegmentMeta }
);

export type IngestResult = { status: 200 | 201; duplicate?: boolean } | RpcError;
export type PlaylistResult = { status: 200; snapshot: MediaPlaylistSnapshot } | RpcError;
export type PresentationResult = { status: 200; presentation: PresentationSnapshot } | RpcError;
export type VodPlaylistResult = { status: 200; snapshot: VodPlaylistSnapshot } | RpcError;
/** How many parts a closed segment has: the edge serves it as their concatenation (workers/segment-parts.ts). */
export type SegmentPartsResult = { status: 200; partCount: number } | RpcError;
export type ThumbnailResult = { status: 200; key: string; programDateTime: number } | RpcError;

/** Where a start-over playlist (`?start=`) begins: the oldest segment of the window, or a wall-clock time (ms). */
export type StartAt = 'beginning' | number;

/** A clip end point: a wall-clock time (ms since the Unix epoch) or seconds back from the live edge. */
export type ClipPoint = { at: number } | { fromEdge: number };

/** A clip the object cut: its MSN range and its exact times (the catalog row is made from it). */
export interface ClipCreated {
  firstMsn: number;
  lastMsn: number;
  startMs: number;
  endMs: number;
  duration: number;
  expiresAt: number;
}

export type ClipResult = { status: 200; clip: ClipCreated } | RpcError;

/** What the admin API and the watch page show about a stream's live state. */
export interface StreamStatus {
  state: 'idle' | 'live' | 'ended';
  epoch: number | null;
  ingest: { nodeId: string; region?: string; epoch: number; startedAt: number; lastPushAt: number | null } | null;
  renditions: Array<RenditionReport & { kind: RenditionInfo['kind'] | null; codecs: string | null }>;
}

/** The refusals several calls answer alike. */
export const STREAM_NOT_FOUND: RpcError = { status: 404, code: 'stream_not_found', message: 'no such stream' };
export const STREAM_NOT_LIVE: RpcError = { status: 404, code: 'stream_not_live', message: 'the stream has not started yet' };
