// A stream's configuration: its ABR ladder and LL-HLS timing. Shared by the admin API (which
// validates it), the StreamState DO (which derives playlist timing) and the transcoder (which encodes it).
import { z } from 'zod';
import { CountryListSchema } from '../auth/geo.ts';
import type { PlaylistTiming } from './live-model.ts';
import { NAME_RE } from './object-keys.ts';

export const VideoRungSchema = z.object({
  name: z.string().regex(NAME_RE),
  kind: z.literal('video'),
  width: z.number().int().min(64).max(3840),
  height: z.number().int().min(64).max(2160),
  /** Target bits per second. */
  videoBitrate: z.number().int().min(100_000).max(50_000_000),
  /** Peak bits per second the encoder may reach (VBV maxrate); defaults to 1.2 × videoBitrate. */
  maxrate: z.number().int().min(100_000).max(60_000_000).optional(),
  codec: z.enum(['h264', 'h265']).default('h264'),
});

export const AudioRungSchema = z.object({
  name: z.string().regex(NAME_RE),
  kind: z.literal('audio'),
  audioBitrate: z.number().int().min(32_000).max(512_000),
  channels: z.number().int().min(1).max(2).default(2),
});

export const LadderRungSchema = z.discriminatedUnion('kind', [VideoRungSchema, AudioRungSchema]);
export type VideoRung = z.infer<typeof VideoRungSchema>;
export type AudioRung = z.infer<typeof AudioRungSchema>;
export type LadderRung = z.infer<typeof LadderRungSchema>;

export const LadderSchema = z
  .array(LadderRungSchema)
  .min(1)
  .max(8)
  .refine((l) => new Set(l.map((r) => r.name)).size === l.length, 'rendition names must be unique')
  .refine((l) => l.filter((r) => r.kind === 'audio').length <= 1, 'at most one audio rendition')
  .refine((l) => l.some((r) => r.kind === 'video') || l.length === 1, 'an audio-only ladder has one rung');

/** The default ladder for a 720p source: three H.264 renditions and one AAC audio rendition. */
export const DEFAULT_LADDER: LadderRung[] = [
  { name: '720p', kind: 'video', width: 1280, height: 720, videoBitrate: 2_500_000, codec: 'h264' },
  { name: '480p', kind: 'video', width: 854, height: 480, videoBitrate: 1_200_000, codec: 'h264' },
  { name: '360p', kind: 'video', width: 640, height: 360, videoBitrate: 700_000, codec: 'h264' },
  { name: 'audio', kind: 'audio', audioBitrate: 128_000, channels: 2 },
];

/**
 * Who may play a stream: everyone (`public`) or holders of a signed playback token (`signed`),
 * and from which countries (checked at the edge against `request.cf.country`, for both policies).
 */
export const PlaybackSettingsSchema = z.strictObject({
  policy: z.enum(['public', 'signed']).default('public'),
  allowCountries: CountryListSchema.optional(),
  blockCountries: CountryListSchema.optional(),
  /**
   * Whether the front door (`/`, `GET /api/directory`) lists the stream and its recordings.
   * Unset: listed only when anyone anywhere may play it (policy `public`, no country rules);
   * `false` keeps a public stream off it (watchable by its link); `true` lists a signed or
   * region-restricted stream too (title and viewers; its watch page still asks for access).
   */
  listed: z.boolean().optional(),
});
export type PlaybackSettings = z.infer<typeof PlaybackSettingsSchema>;

/**
 * A second publisher while one is live: `refuse-while-live` refuses it (409 `stream_busy`)
 * unless the live one has gone quiet (no push for TAKEOVER_QUIET_SECONDS, 5 by default);
 * `allow` lets the newest publisher take the stream (an encoder failing over to another node).
 */
export const TakeoverPolicySchema = z.enum(['refuse-while-live', 'allow']);
export type TakeoverPolicy = z.infer<typeof TakeoverPolicySchema>;

export const StreamSettingsSchema = z.object({
  title: z.string().max(200).default(''),
  ladder: LadderSchema.default(DEFAULT_LADDER),
  /** LL-HLS part target, seconds (about 200 ms to 500 ms). */
  partTarget: z.number().min(0.1).max(1).default(0.2),
  /** Segment (and keyframe interval) target, seconds (about 1 s to 2 s). */
  segmentTarget: z.number().min(1).max(6).default(1),
  /** DVR window in seconds kept in the live playlist (0 = live edge only). */
  dvrWindowSeconds: z.number().int().min(0).max(24 * 3600).default(7200),
  /** Days a recording (and its clips' media) is kept after the broadcast ends; 0 keeps none. */
  retentionDays: z.number().int().min(0).max(3650).default(7),
  /** Output frame rate of every video rendition. */
  fps: z.number().int().min(10).max(60).default(30),
  /** Playback policy and country rules; streams stored before it existed are public. */
  playback: PlaybackSettingsSchema.prefault({}),
  /** Whether a second publisher may take the stream while one is live (TakeoverPolicySchema). */
  takeover: TakeoverPolicySchema.default('refuse-while-live'),
  /**
   * Sub-second playback over WebRTC (WHEP) beside LL-HLS: the media node encodes the top video
   * rung once more for it (constrained baseline, short GOP) and Opus audio. Off: LL-HLS only.
   */
  realtime: z.boolean().default(false),
});
export type StreamSettings = z.infer<typeof StreamSettingsSchema>;

/** Segments and parts are cut by the transcoder within these bounds, so the constants below hold. */
export function playlistTiming(s: Pick<StreamSettings, 'partTarget' | 'segmentTarget'>): PlaylistTiming {
  // A segment ends at the first independent part at or after its nominal end, so it can run up to
  // about one part long; EXTINF rounded to the nearest integer must stay ≤ TARGETDURATION (MP-02).
  const targetDuration = Math.max(1, Math.round(s.segmentTarget + s.partTarget));
  return {
    targetDuration,
    partTarget: s.partTarget,
    // hls.js, Shaka and Video.js aim PART-HOLD-BACK behind the live edge: the minimum Apple
    // allows is 3 × PART-TARGET (MP-05).
    partHoldBack: round3(3 * s.partTarget),
    // Players out of low-latency mode: the spec's default, written out (MP-05).
    holdBack: 3 * targetDuration,
    // Where a live playlist tells players to start: 2 × PART-TARGET before its end, so that a
    // stock player, which plays on from where it started and takes about a part to show its first
    // frame, settles near PART-HOLD-BACK instead of a start-up's worth behind it (docs/player.md).
    liveStartOffset: round3(2 * s.partTarget),
    // Chrome rejects a skip boundary below 6 × TD (DU-01).
    canSkipUntil: 6 * targetDuration,
  };
}

/** Peak and average bandwidth the multivariant playlist declares for a rung (MV-01, MV-02). */
export function rungBandwidth(r: LadderRung): { bandwidth: number; averageBandwidth: number } {
  if (r.kind === 'audio') return { bandwidth: Math.round(r.audioBitrate * 1.1), averageBandwidth: r.audioBitrate };
  const peak = r.maxrate ?? Math.round(r.videoBitrate * 1.2);
  // fMP4 framing adds a few percent over the elementary stream.
  return { bandwidth: Math.round(peak * 1.05), averageBandwidth: Math.round(r.videoBitrate * 1.05) };
}

function round3(x: number): number {
  return Math.round(x * 1000) / 1000;
}
