// The ingest push protocol between a transcoder and the origin, defined once for both sides:
// routes, headers, the HMAC request signature (over the method, the path, every `x-edgelive-*`
// header — the metadata, a timestamp and a nonce — and the body) and the JSON bodies. Web Crypto
// only, so it runs in the Worker and in Node unchanged.
import { z } from 'zod';
import { NAME_RE } from './object-keys.ts';
import { LadderPresetSchema, LadderSchema } from './stream-config.ts';

export const INGEST_PREFIX = '/ingest/v1';
/**
 * Every request header whose name starts with this is covered by the signature, and a request
 * carrying one the signature does not cover is refused: whatever the origin acts on is signed.
 */
export const SIGNED_HEADER_PREFIX = 'x-edgelive-';
export const HEADER_TIMESTAMP = 'x-edgelive-timestamp';
/** 128 random bits per request, in hex: the origin refuses a nonce it has seen in the replay window. */
export const HEADER_NONCE = 'x-edgelive-nonce';
export const HEADER_SIGNATURE = 'x-edgelive-signature';
export const HEADER_META = 'x-edgelive-meta';
/** A signed request older or newer than this is refused (replay window); within it, its nonce is remembered. */
export const SIGNATURE_WINDOW_MS = 60_000;
/** Largest media object a push may carry. */
export const MAX_PUSH_BYTES = 16 * 1024 * 1024;

/** `POST /ingest/v1/authorize`: check a stream key and take the stream's ingest lease. */
export const AuthorizeRequestSchema = z.object({
  streamKey: z.string().min(1).max(200),
  nodeId: z.string().min(1).max(100),
  region: z.string().max(100).optional(),
  /**
   * The epoch of this node's own session that the new lease continues (a ladder restart under
   * overload): taken even while a `refuse-while-live` stream is live, if that epoch still holds
   * the lease on this node. Signed with the body, so no publisher can claim it.
   */
  continues: z.number().int().positive().optional(),
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
  /** The stream plays over WebRTC too (WHEP): the ladder adds the real-time outputs. */
  realtime: z.boolean().default(false),
});
export type AuthorizeResponse = z.infer<typeof AuthorizeResponseSchema>;

/**
 * One codec as RFC 6381 writes it in a `CODECS` attribute: a four-character sample entry type
 * (`avc1`, `hvc1`, `mp4a`, `ac-3`, `Opus`, `fLaC`) and dot-separated elements of letters and
 * digits (`avc1.64001f`, `mp4a.40.2`, `hvc1.1.6.L93.B0`, `av01.0.04M.08`). Nothing else: the
 * string is written into the multivariant playlist inside a quoted attribute.
 */
export const CODEC_RE = /^[A-Za-z0-9][A-Za-z0-9-]{2}[A-Za-z0-9](?:\.[A-Za-z0-9]{1,16}){0,10}$/;

/** A `CODECS` value: up to four codecs separated by commas (RFC 6381 §3.2, without spaces). */
export const CodecsSchema = z
  .string()
  .max(100)
  .refine((v) => {
    const list = v.split(',');
    return list.length <= 4 && list.every((c) => CODEC_RE.test(c));
  }, 'an RFC 6381 codecs list, e.g. avc1.64001f or mp4a.40.2');

/** Metadata of a pushed media object, sent JSON-encoded in the `x-edgelive-meta` header. */
export const InitMetaSchema = z.object({
  kind: z.enum(['video', 'audio']),
  codecs: CodecsSchema,
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
  renditions: z.array(z.string().regex(NAME_RE)).min(1).max(32).optional(),
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
    key = crypto.subtle.importKey('raw', encoder.encode(secret), { name: 'HMAC', hash: 'SHA-256' }, false, ['sign', 'verify']);
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
 * The string a request signature covers: the method, the path (with its query), every
 * `x-edgelive-*` header but the signature (names lowercased, sorted, `name:value`) and the hex
 * SHA-256 of the body. Exported so the transcoder can hash and sign with node:crypto
 * (synchronous, no copy of the body) while both sides keep this one definition.
 */
export function canonicalRequest(method: string, path: string, headers: Iterable<[string, string]>, bodySha256Hex: string): string {
  const lines = signedHeaderLines(headers);
  return `${method.toUpperCase()}\n${path}\n${lines.join('\n')}\n${bodySha256Hex}`;
}

function signedHeaderLines(headers: Iterable<[string, string]>): string[] {
  const lines: string[] = [];
  for (const [name, value] of headers) {
    const n = name.toLowerCase();
    if (n.startsWith(SIGNED_HEADER_PREFIX) && n !== HEADER_SIGNATURE) lines.push(`${n}:${value.trim()}`);
  }
  return lines.sort();
}

/** A fresh nonce: 128 random bits in hex. */
export function newNonce(): string {
  return toHex(crypto.getRandomValues(new Uint8Array(16)).buffer);
}

/**
 * The headers a signed request carries: `headers` (the `x-edgelive-*` ones the origin will act
 * on, such as the metadata; others pass unsigned), a timestamp, a nonce, and the HMAC-SHA256 of
 * the canonical request.
 */
export async function signIngestRequest(
  secret: string,
  method: string,
  path: string,
  body: Uint8Array | null,
  opts: { headers?: Record<string, string>; now?: number; nonce?: string } = {},
): Promise<Record<string, string>> {
  const out: Record<string, string> = {
    ...opts.headers,
    [HEADER_TIMESTAMP]: String(opts.now ?? Date.now()),
    [HEADER_NONCE]: opts.nonce ?? newNonce(),
  };
  const bodyHash = toHex(await crypto.subtle.digest('SHA-256', body ?? new Uint8Array(0)));
  const mac = await crypto.subtle.sign(
    'HMAC',
    await hmacKey(secret),
    encoder.encode(canonicalRequest(method, path, Object.entries(out), bodyHash)),
  );
  out[HEADER_SIGNATURE] = toHex(mac);
  return out;
}

/** A request whose signature holds: its nonce and timestamp, for the replay check of the object it goes to. */
export interface SignedRequest {
  nonce: string;
  /** ms since the Unix epoch, as the signer wrote it. */
  timestamp: number;
}

export type VerifyResult = ({ ok: true } & SignedRequest) | { ok: false; reason: string };

const NONCE_RE = /^[0-9a-f]{32}$/;

/**
 * Checks a signed request: its timestamp within the replay window, its nonce well formed, and
 * its signature over everything the origin acts on (`crypto.subtle.verify` compares in constant
 * time). Whether the nonce was seen before is the receiving object's check (ReplayGuard).
 */
export async function verifyIngestRequest(
  secret: string,
  method: string,
  path: string,
  headers: Iterable<[string, string]> & { get(name: string): string | null },
  body: Uint8Array | null,
  now = Date.now(),
): Promise<VerifyResult> {
  const timestamp = headers.get(HEADER_TIMESTAMP);
  const nonce = headers.get(HEADER_NONCE);
  const signature = headers.get(HEADER_SIGNATURE);
  if (!timestamp || !signature || !nonce) return { ok: false, reason: 'missing signature headers' };
  if (!/^\d{1,16}$/.test(timestamp)) return { ok: false, reason: 'malformed timestamp' };
  if (Math.abs(now - Number(timestamp)) > SIGNATURE_WINDOW_MS) return { ok: false, reason: 'timestamp outside the replay window' };
  if (!NONCE_RE.test(nonce)) return { ok: false, reason: 'malformed nonce' };
  const mac = fromHex(signature);
  if (mac?.length !== 32) return { ok: false, reason: 'malformed signature' };
  const bodyHash = toHex(await crypto.subtle.digest('SHA-256', body ?? new Uint8Array(0)));
  const valid = await crypto.subtle.verify(
    'HMAC',
    await hmacKey(secret),
    mac,
    encoder.encode(canonicalRequest(method, path, headers, bodyHash)),
  );
  return valid ? { ok: true, nonce, timestamp: Number(timestamp) } : { ok: false, reason: 'signature mismatch' };
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
  rtmpUrl: z
    .string()
    .regex(/^rtmps?:\/\/[^\s]+$/, 'an rtmp:// or rtmps:// URL')
    .max(500),
  /** Public RTMPS base URL when the node terminates TLS (`RTMPS_PORT`): publishers append `/{streamKey}`. */
  rtmpsUrl: z
    .string()
    .regex(/^rtmps:\/\/[^\s]+$/, 'an rtmps:// URL')
    .max(500)
    .optional(),
  /** Public SRT URL (`srt://host:port`): publishers add `?streamid={streamKey}`. */
  srtUrl: z
    .string()
    .regex(/^srt:\/\/[^\s?]+$/, 'an srt://host:port URL without a query')
    .max(500)
    .optional(),
  /** Public WHIP endpoint (`https://host/whip`): publishers POST an SDP offer with the stream key as bearer token. */
  whipUrl: z
    .string()
    .regex(/^https?:\/\/[^\s?#]+$/, 'an http(s):// URL without a query')
    .max(500)
    .optional(),
  /** Public WHEP base URL (`https://host/whep`): the origin sends viewers to `{whepUrl}/{streamId}?ticket=…`. */
  whepUrl: z
    .string()
    .regex(/^https?:\/\/[^\s?#]+$/, 'an http(s):// URL without a query')
    .max(500)
    .optional(),
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
