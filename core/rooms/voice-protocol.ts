// The voice part of the room protocol, defined once: who is in a party's voice (and muted,
// speaking, on camera), the signalling a member addresses to one other member (WebRTC offers,
// answers, ICE candidates), moderation of voice, and the switch from a peer-to-peer mesh to the
// media node's SFU. room-protocol.ts puts these schemas in its unions; docs/rooms.md § Voice.
import { z } from 'zod';
import { ConnId, RoleName, Uid } from './room-roles.ts';
import { VOICE_LIMITS, VOICE_MODES } from './voice-wire.ts';

export { VOICE_LIMITS, VOICE_MODES, SIGNAL_FRAME_PREFIX, emptyVoice, voiceSignalFrame, type VoiceMode } from './voice-wire.ts';

/** One seat in voice. A member has at most one (joining from another tab moves it). */
export const VoiceMember = z.object({
  conn: z.string(),
  uid: z.string(),
  name: z.string(),
  role: RoleName,
  /** Not sending audio: by choice, or because `forced`. */
  muted: z.boolean(),
  /** Muted by a moderator: only a moderator (of at least that rank) lifts it. */
  forced: z.boolean(),
  /** Sending audio above the speaking threshold (the member's own client measures it). */
  speaking: z.boolean(),
  camera: z.boolean(),
});
export type VoiceMember = z.infer<typeof VoiceMember>;

export const VoiceState = z.object({
  mode: z.enum(VOICE_MODES),
  /** In the order they joined. */
  members: z.array(VoiceMember),
});
export type VoiceState = z.infer<typeof VoiceState>;

/** Batch events about voice (RoomEvent includes them). */
export const VoiceEvents = [
  /** A seat was taken or changed: the whole seat, replacing the one with its `conn`. */
  z.object({ kind: z.literal('voice'), member: VoiceMember }),
  z.object({ kind: z.literal('voice.left'), conn: z.string() }),
  /** `sfu`: tear the mesh down and connect to the SFU (ask for `voice.sfu`); `mesh`: the reverse. */
  z.object({ kind: z.literal('voice.mode'), mode: z.enum(VOICE_MODES) }),
] as const;

// ---------------------------------------------------------------------------------------------
// Member → room.

const rid = z.string().min(1).max(40).optional();

const Sdp = z.string().min(1).max(VOICE_LIMITS.sdpMaxChars);
const Candidate = z.strictObject({
  candidate: z.string().max(VOICE_LIMITS.candidateMaxChars),
  sdpMid: z.string().max(32).nullable().optional(),
  sdpMLineIndex: z.number().int().min(0).max(63).nullable().optional(),
});
export type VoiceCandidate = z.infer<typeof Candidate>;

/** What one peer tells another to set up their connection (RFC 8829 offer/answer, trickle ICE). */
export const VoiceSignalBody = z.discriminatedUnion('type', [
  z.strictObject({ type: z.literal('offer'), sdp: Sdp }),
  z.strictObject({ type: z.literal('answer'), sdp: Sdp }),
  /** Candidates gathered since the last message, batched (an empty candidate ends gathering). */
  z.strictObject({ type: z.literal('candidates'), candidates: z.array(Candidate).min(1).max(VOICE_LIMITS.candidatesPerMessage) }),
]);
export type VoiceSignalBody = z.infer<typeof VoiceSignalBody>;

export const VoiceJoin = z.strictObject({
  type: z.literal('voice.join'),
  rid,
  muted: z.boolean().default(false),
  camera: z.boolean().default(false),
});
export const VoiceLeave = z.strictObject({ type: z.literal('voice.leave'), rid });
export const VoiceUpdate = z
  .strictObject({
    type: z.literal('voice.update'),
    rid,
    muted: z.boolean().optional(),
    speaking: z.boolean().optional(),
    camera: z.boolean().optional(),
  })
  .refine((m) => m.muted !== undefined || m.speaking !== undefined || m.camera !== undefined, 'nothing to update');
/** Addressed to one member's connection (`to`): relayed only between two seats in the mesh. */
export const VoiceSignal = z.strictObject({ type: z.literal('voice.signal'), rid, to: ConnId, signal: VoiceSignalBody });
export const VoiceMute = z.strictObject({ type: z.literal('voice.mute'), rid, uid: Uid });
export const VoiceUnmute = z.strictObject({ type: z.literal('voice.unmute'), rid, uid: Uid });
export const VoiceRemove = z.strictObject({ type: z.literal('voice.remove'), rid, uid: Uid });
/** While voice is in `sfu` mode: asks for the SFU's endpoint and a short-lived token for it. */
export const VoiceSfu = z.strictObject({ type: z.literal('voice.sfu'), rid });

export const VoiceClientMessages = [
  VoiceJoin,
  VoiceLeave,
  VoiceUpdate,
  VoiceSignal,
  VoiceMute,
  VoiceUnmute,
  VoiceRemove,
  VoiceSfu,
] as const;

// ---------------------------------------------------------------------------------------------
// Room → member.

export const VoiceServerMessages = [
  /** A signal from another seat; `from` is their connection, to answer to. */
  z.object({ type: z.literal('voice.signal'), from: z.string(), uid: z.string(), signal: VoiceSignalBody }),
  /** The answer to `voice.sfu`: where the SFU is and the token it accepts (docs/rooms.md). */
  z.object({ type: z.literal('voice.sfu'), rid: z.string().optional(), endpoint: z.string(), token: z.string(), expiresAt: z.number() }),
] as const;
