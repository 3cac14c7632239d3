// A stream's configuration: its ABR ladder (a preset, chosen by the source's resolution unless the
// stream names one, or its own) and LL-HLS timing. Shared by the admin API (which
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

/** Every rung of the presets, one definition per name (so a preset is a list of names). */
const PRESET_RUNGS = {
  '2160p': { name: '2160p', kind: 'video', width: 3840, height: 2160, videoBitrate: 14_000_000, codec: 'h264' },
  '1440p': { name: '1440p', kind: 'video', width: 2560, height: 1440, videoBitrate: 8_000_000, codec: 'h264' },
  '1080p': { name: '1080p', kind: 'video', width: 1920, height: 1080, videoBitrate: 4_500_000, codec: 'h264' },
  '720p': { name: '720p', kind: 'video', width: 1280, height: 720, videoBitrate: 2_500_000, codec: 'h264' },
  '480p': { name: '480p', kind: 'video', width: 854, height: 480, videoBitrate: 1_200_000, codec: 'h264' },
  '360p': { name: '360p', kind: 'video', width: 640, height: 360, videoBitrate: 700_000, codec: 'h264' },
  audio: { name: 'audio', kind: 'audio', audioBitrate: 128_000, channels: 2 },
} as const satisfies Record<string, LadderRung>;

const rungs = (...names: Array<keyof typeof PRESET_RUNGS>): LadderRung[] => names.map((n) => ({ ...PRESET_RUNGS[n] }));

/** The named ladders: for a source of up to 1080p (the 720p one), 1080p, and 2160p (4K UHD). */
export const LADDER_PRESETS = {
  '720p': rungs('720p', '480p', '360p', 'audio'),
  '1080p': rungs('1080p', '720p', '480p', '360p', 'audio'),
  '2160p': rungs('2160p', '1440p', '1080p', '720p', 'audio'),
} as const satisfies Record<string, LadderRung[]>;
export type LadderPresetName = keyof typeof LADDER_PRESETS;

/** The default ladder for a 720p source: three H.264 renditions and one AAC audio rendition. */
export const DEFAULT_LADDER: LadderRung[] = LADDER_PRESETS['720p'];

/**
 * The ladder of a stream on `auto`: every rung of every preset. The media node publishes the
 * preset of the source's resolution (`presetForSource`) out of it, and the origin lists only what
 * an epoch publishes.
 */
export const AUTO_LADDER: LadderRung[] = rungs('2160p', '1440p', '1080p', '720p', '480p', '360p', 'audio');

/**
 * `auto`: the preset of the source's resolution; a preset name: that ladder whatever the source;
 * `custom`: the stream's own `ladder`.
 */
export const LadderPresetSchema = z.enum(['auto', '720p', '1080p', '2160p', 'custom']);
export type LadderPreset = z.infer<typeof LadderPresetSchema>;

/**
 * The preset for a source picture: by its shorter side, so a portrait 1080×1920 phone stream is
 * a 1080p source. 2160 and up: 2160p; 1080 and up: 1080p; anything smaller: 720p.
 */
export function presetForSource(width: number, height: number): LadderPresetName {
  const p = Math.min(width, height);
  return p >= 2160 ? '2160p' : p >= 1080 ? '1080p' : '720p';
}

/** The rungs of `preset` out of a stream's ladder (the definitions the stream has, in its order). */
export function presetRungs(ladder: readonly LadderRung[], preset: LadderPresetName): LadderRung[] {
  const names = new Set(LADDER_PRESETS[preset].map((r) => r.name));
  return ladder.filter((r) => names.has(r.name));
}

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

/**
 * Settings as stored before presets existed had a ladder and no preset: that ladder stays theirs
 * (`custom`). Otherwise the ladder follows the preset: a named preset's rungs, or for `auto` every
 * preset's rungs (AUTO_LADDER), of which the media node publishes the source's preset.
 */
function ladderFromPreset(input: unknown): unknown {
  if (input === null || typeof input !== 'object' || Array.isArray(input)) return input;
  const o = input as Record<string, unknown>;
  const preset = o.ladderPreset ?? (o.ladder !== undefined ? 'custom' : 'auto');
  if (preset === 'custom') return { ...o, ladderPreset: preset };
  const ladder = preset === 'auto' ? AUTO_LADDER : LADDER_PRESETS[preset as LadderPresetName];
  return { ...o, ladderPreset: preset, ladder: ladder ?? o.ladder };
}

const StreamSettingsObject = z.object({
  title: z.string().max(200).default(''),
  /** Which ladder: `auto` (by the source's resolution), a preset, or `custom` (the `ladder` given). */
  ladderPreset: LadderPresetSchema,
  ladder: LadderSchema,
  /** LL-HLS part target, seconds (about 200 ms to 500 ms). */
  partTarget: z.number().min(0.1).max(1).default(0.2),
  /** Segment (and keyframe interval) target, seconds (about 1 s to 2 s). */
  segmentTarget: z.number().min(1).max(6).default(1),
  /** DVR window in seconds kept in the live playlist (0 = live edge only). */
  dvrWindowSeconds: z
    .number()
    .int()
    .min(0)
    .max(24 * 3600)
    .default(7200),
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
export const StreamSettingsSchema = z.preprocess(ladderFromPreset, StreamSettingsObject);
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
