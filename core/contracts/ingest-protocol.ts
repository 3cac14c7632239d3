// The ingest push protocol between a transcoder and the origin, defined once for both sides:
// routes, headers, the HMAC request signature (with a timestamp and replay window) and the
// JSON bodies. Web Crypto only, so it runs in the Worker and in Node unchanged.
import { z } from 'zod';
import { LadderPresetSchema, LadderSchema } from './stream-config.ts';

export const INGEST_PREFIX = '/ingest/v1';
export const HEADER_TIMESTAMP = 'x-edgelive-timestamp';
export const HEADER_SIGNATURE = 'x-edgelive-signature';
export const HEADER_META = 'x-edgelive-meta';
/** A signed request older or newer than this is refused (replay window). */
export const SIGNATURE_WINDOW_MS = 60_000;
/** Largest media object a push may carry. */
export const MAX_PUSH_BYTES = 16 * 1024 * 1024;

/** `POST /ingest/v1/authorize`: check a stream key and take the stream's ingest lease. */
export const AuthorizeRequestSchema = z.object({
  streamKey: z.string().min(1).max(200),
  nodeId: z.string().min(1).max(100),
  region: z.string().max(100).optional(),
});
export type AuthorizeRequest = z.infer<typeof AuthorizeRequestSchema>;

export const AuthorizeResponseSchema = z.object({
  streamId: z.string(),
  epoch: z.number().int().positive(),
  /** MSN of the first segment this epoch publishes. */
  startMsn: z.number().int().positive(),
  ladder: LadderSchema,
  /**
   * `auto`: the node publishes the rungs of the source's preset out of `ladder` (presetForSource);
   * anything else (or absent, from an older origin): `ladder` as it is.
   */
  ladderPreset: LadderPresetSchema.optional(),
  partTarget: z.number(),
  segmentTarget: z.number(),
  fps: z.number().int(),
  /**
   * Seconds to add to every media timestamp (tfdt) of this epoch: where the previous epoch of
   * the same broadcast ended, so the timeline never goes back across a reconnection. 0 for the
   * first epoch of a broadcast.
   */
  timeOffset: z.number().nonnegative().default(0),
});
export type AuthorizeResponse = z.infer<typeof AuthorizeResponseSchema>;

/** Metadata of a pushed media object, sent JSON-encoded in the `x-edgelive-meta` header. */
export const InitMetaSchema = z.object({
  kind: z.enum(['video', 'audio']),
  codecs: z.string().min(1).max(100),
  bandwidth: z.number().int().positive(),
  averageBandwidth: z.number().int().positive(),
  width: z.number().int().positive().optional(),
  height: z.number().int().positive().optional(),
  frameRate: z.number().positive().optional(),
  channels: z.number().int().positive().optional(),
  /**
   * Every rendition this epoch publishes: the ladder minus the rungs the publisher's input cannot
   * feed (the audio rung for a publisher without audio, the video rungs for an audio-only one).
   * The origin lists only these in the multivariant playlist. Absent: the whole ladder.
   */
  renditions: z.array(z.string().min(1).max(100)).min(1).max(32).optional(),
});
export type InitMeta = z.infer<typeof InitMetaSchema>;

export const PartMetaSchema = z.object({
  duration: z.number().positive().max(10),
  independent: z.boolean(),
  /** Wall-clock time of the part's first sample, ms since the Unix epoch. */
  programDateTime: z.number().int().positive(),
  /**
   * The last part of its segment (the segment push follows): the origin hints part 0 of the next
   * MSN from now on instead of a part of this segment that will never exist (PH-01, PH-05).
   */
  final: z.boolean().optional(),
});
export type PartMeta = z.infer<typeof PartMetaSchema>;

export const SegmentMetaSchema = z.object({
  duration: z.number().positive().max(60),
  partCount: z.number().int().positive(),
  programDateTime: z.number().int().positive(),
});
export type SegmentMeta = z.infer<typeof SegmentMetaSchema>;

/** Path of a media push: `/ingest/v1/{stream}/{epoch}/{rendition}/{file}`. */
export function pushPath(streamId: string, epoch: number, rendition: string, file: string): string {
  return `${INGEST_PREFIX}/${streamId}/${epoch}/${rendition}/${file}`;
}

/** Largest thumbnail a push may carry. */
export const MAX_THUMBNAIL_BYTES = 1024 * 1024;

/** Metadata of a thumbnail push (`x-edgelive-meta`): when the pictured frame was shown. */
export const ThumbnailMetaSchema = z.object({
  /** Wall-clock time of the frame, ms since the Unix epoch (the same clock as PROGRAM-DATE-TIME). */
  programDateTime: z.number().int().positive(),
});
export type ThumbnailMeta = z.infer<typeof ThumbnailMetaSchema>;

/**
 * Path of a thumbnail push: `/ingest/v1/{stream}/{epoch}/thumbnails/{seq}.jpg`, a JPEG of the top
 * rendition; `seq` counts from 0 in each epoch. (`.jpg` is never a media file name, so a
 * rendition named `thumbnails` is no ambiguity.)
 */
export function thumbnailPath(streamId: string, epoch: number, seq: number): string {
  return `${INGEST_PREFIX}/${streamId}/${epoch}/thumbnails/${seq}.jpg`;
}

/** Path that tells the origin a publisher has stopped: `/ingest/v1/{stream}/{epoch}/end`. */
export function endPath(streamId: string, epoch: number): string {
  return `${INGEST_PREFIX}/${streamId}/${epoch}/end`;
}

const encoder = new TextEncoder();
const keyCache = new Map<string, Promise<CryptoKey>>();

function hmacKey(secret: string): Promise<CryptoKey> {
  let key = keyCache.get(secret);
  if (!key) {
    key = crypto.subtle.importKey('raw', encoder.encode(secret), { name: 'HMAC', hash: 'SHA-256' }, false, [
      'sign',
      'verify',
    ]);
    keyCache.set(secret, key);
  }
  return key;
}

function toHex(buf: ArrayBuffer): string {
  const bytes = new Uint8Array(buf);
  let out = '';
  for (let i = 0; i < bytes.length; i++) out += bytes[i]!.toString(16).padStart(2, '0');
  return out;
}

function fromHex(hex: string): Uint8Array | null {
  if (hex.length % 2 !== 0 || !/^[0-9a-f]*$/.test(hex)) return null;
  const out = new Uint8Array(hex.length / 2);
  for (let i = 0; i < out.length; i++) out[i] = parseInt(hex.slice(i * 2, i * 2 + 2), 16);
  return out;
}

/**
 * The string a request signature covers: method, path (with query), timestamp and the hex
 * SHA-256 of the body. Exported so the transcoder can hash and sign with node:crypto
 * (synchronous, no copy of the body) while both sides keep this one definition.
 */
export function canonicalRequest(method: string, path: string, timestamp: string, bodySha256Hex: string): string {
  return `${method.toUpperCase()}\n${path}\n${timestamp}\n${bodySha256Hex}`;
}

async function canonical(method: string, path: string, timestamp: string, body: Uint8Array | null): Promise<Uint8Array> {
  const bodyHash = toHex(await crypto.subtle.digest('SHA-256', body ?? new Uint8Array(0)));
  return encoder.encode(canonicalRequest(method, path, timestamp, bodyHash));
}

/** Headers that sign a request: the body's SHA-256, method, path and a timestamp under HMAC-SHA256. */
export async function signIngestRequest(
  secret: string,
  method: string,
  path: string,
  body: Uint8Array | null,
  now = Date.now(),
): Promise<Record<string, string>> {
  const timestamp = String(now);
  const mac = await crypto.subtle.sign('HMAC', await hmacKey(secret), await canonical(method, path, timestamp, body));
  return { [HEADER_TIMESTAMP]: timestamp, [HEADER_SIGNATURE]: toHex(mac) };
}

export type VerifyResult = { ok: true } | { ok: false; reason: string };

/** Checks a signed request. `crypto.subtle.verify` compares in constant time. */
export async function verifyIngestRequest(
  secret: string,
  method: string,
  path: string,
  headers: { get(name: string): string | null },
  body: Uint8Array | null,
  now = Date.now(),
): Promise<VerifyResult> {
  const timestamp = headers.get(HEADER_TIMESTAMP);
  const signature = headers.get(HEADER_SIGNATURE);
  if (!timestamp || !signature) return { ok: false, reason: 'missing signature headers' };
  if (!/^\d{1,16}$/.test(timestamp)) return { ok: false, reason: 'malformed timestamp' };
  if (Math.abs(now - Number(timestamp)) > SIGNATURE_WINDOW_MS) return { ok: false, reason: 'timestamp outside the replay window' };
  const mac = fromHex(signature);
  if (!mac || mac.length !== 32) return { ok: false, reason: 'malformed signature' };
  const valid = await crypto.subtle.verify('HMAC', await hmacKey(secret), mac, await canonical(method, path, timestamp, body));
  return valid ? { ok: true } : { ok: false, reason: 'signature mismatch' };
}

// ---- Transcoder registry: registration and heartbeats (POST /ingest/v1/nodes/*) ------------

/** Paths of the registry calls a transcoder makes. */
export const NODES_PREFIX = `${INGEST_PREFIX}/nodes`;
/** Heartbeat period a node announces unless told otherwise; three missed ones drop it. */
export const DEFAULT_HEARTBEAT_INTERVAL_MS = 5_000;
/** A node that misses this many heartbeats in a row drops out of the registry. */
export const MISSED_HEARTBEATS_TO_DROP = 3;

const NodeIdSchema = z.string().regex(/^[A-Za-z0-9_.:-]{1,100}$/, 'node ids are [A-Za-z0-9_.:-]{1,100}');

/** `POST /ingest/v1/nodes/register`: a transcoder announces itself (again after a restart). */
export const RegisterNodeRequestSchema = z.object({
  nodeId: NodeIdSchema,
  region: z.string().min(1).max(100),
  latitude: z.number().min(-90).max(90),
  longitude: z.number().min(-180).max(180),
  /** Public RTMP base URL: publishers append `/{streamKey}`. */
  rtmpUrl: z.string().regex(/^rtmps?:\/\/[^\s]+$/, 'an rtmp:// or rtmps:// URL').max(500),
  /** Public RTMPS base URL when the node terminates TLS (`RTMPS_PORT`): publishers append `/{streamKey}`. */
  rtmpsUrl: z.string().regex(/^rtmps:\/\/[^\s]+$/, 'an rtmps:// URL').max(500).optional(),
  /** Public SRT URL (`srt://host:port`): publishers add `?streamid={streamKey}`. */
  srtUrl: z.string().regex(/^srt:\/\/[^\s?]+$/, 'an srt://host:port URL without a query').max(500).optional(),
  /** Public WHIP endpoint (`https://host/whip`): publishers POST an SDP offer with the stream key as bearer token. */
  whipUrl: z.string().regex(/^https?:\/\/[^\s?#]+$/, 'an http(s):// URL without a query').max(500).optional(),
  /** Publishers the node takes at once. */
  capacity: z.number().int().min(1).max(10_000),
  /** Publishers it has now. */
  sessions: z.number().int().min(0).max(100_000),
  heartbeatIntervalMs: z.number().int().min(500).max(60_000).default(DEFAULT_HEARTBEAT_INTERVAL_MS),
  /** Overrides the Durable Object location hint derived from latitude/longitude. */
  locationHint: z.enum(['wnam', 'enam', 'sam', 'weur', 'eeur', 'apac', 'oc', 'afr', 'me']).optional(),
});
export type RegisterNodeRequest = z.input<typeof RegisterNodeRequestSchema>;

/** `POST /ingest/v1/nodes/heartbeat`: still alive, with the current load. 404 `unknown_node` asks for a new registration. */
export const HeartbeatRequestSchema = z.object({
  nodeId: NodeIdSchema,
  sessions: z.number().int().min(0).max(100_000),
});
export type HeartbeatRequest = z.infer<typeof HeartbeatRequestSchema>;

/** `POST /ingest/v1/nodes/deregister`: a node shutting down leaves at once. */
export const DeregisterRequestSchema = z.object({ nodeId: NodeIdSchema });

export const NodeAckSchema = z.object({
  ok: z.literal(true),
  heartbeatIntervalMs: z.number().int(),
  /** The registry drops the node when no heartbeat has come by then (ms since the Unix epoch). */
  expiresAt: z.number(),
});
export type NodeAck = z.infer<typeof NodeAckSchema>;
