// What the Worker and the TranscoderRegistry object say to each other over RPC: the registry's
// name, a registration as the object receives it, and a node as the object answers it. (The
// transcoder's side of registration is in ingest-protocol.ts.)
import type { z } from 'zod';
import type { LocationHint } from '../live/geo-distance.ts';
import type { RegisterNodeRequestSchema } from './ingest-protocol.ts';

/** The single registry object's name. Heartbeats are a few per node per interval: one object is plenty. */
export const REGISTRY_NAME = 'global';

/** A registration after validation (defaults applied). */
export type NodeRegistration = z.output<typeof RegisterNodeRequestSchema>;

export interface IngestNode {
  nodeId: string;
  region: string;
  latitude: number;
  longitude: number;
  rtmpUrl: string;
  /** RTMPS base URL, when the node terminates TLS. */
  rtmpsUrl: string | null;
  srtUrl: string | null;
  /** WHIP endpoint; null for a node without WebRTC (or registered before it had it). */
  whipUrl: string | null;
  /** WHEP base URL (viewers are sent to `{whepUrl}/{streamId}`); null for a node without WebRTC. */
  whepUrl: string | null;
  capacity: number;
  sessions: number;
  /** sessions / capacity. */
  load: number;
  locationHint: LocationHint;
  heartbeatIntervalMs: number;
  registeredAt: number;
  lastSeenAt: number;
  /** When the node drops out unless a heartbeat comes first. */
  expiresAt: number;
}
