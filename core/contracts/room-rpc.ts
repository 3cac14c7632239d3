// What the Worker and a room's shards say to the Room object over RPC, defined once: admission
// (the Worker asks where a viewer's socket goes), a shard's ingest batch and its replies, and the
// room's counts for the stats route.
import type { ErrorCode, ReactionCounts, Role, RoomBoundMessage } from '../rooms/room-protocol.ts';
import type { ConnIdentity } from './room-admission.ts';

export interface AdmitRequest {
  room: string;
  conn: string;
  uid: string;
  role: Role;
  /** True when a room token vouches for the viewer; false for anonymous viewers. */
  viaToken: boolean;
  /** Anonymous viewers: a keyed hash of their address (never the address itself). */
  address?: string;
  /** Anonymous viewers: true when the Worker minted their identity for this join. */
  newIdentity?: boolean;
}
export type AdmitResult = { ok: true; shard: number } | { ok: false; code: ErrorCode; reason: string; close: number };

/** What a shard sends the room: everything its viewers did since its last call. */
export interface IngestBatch {
  shard: number;
  joins: ConnIdentity[];
  leaves: string[];
  reactions: ReactionCounts;
  messages: Array<{ from: ConnIdentity; msg: RoomBoundMessage }>;
  /** Sockets the shard holds after this batch (the room reconciles if it disagrees). */
  total: number;
}
export interface IngestResult {
  replies: Array<{ conn: string; text: string }>;
}

export interface RoomInfo {
  room: string | null;
  viewers: number;
  connections: number;
  direct: number;
  shards: Array<{ index: number; connections: number }>;
  anonymous: boolean;
  seq: number;
}
