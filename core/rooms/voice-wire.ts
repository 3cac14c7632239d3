// Party voice's plain values, apart from the protocol's schemas so the browser (the rooms client,
// the voice chunk) reads them without the schema library: limits, modes, the empty voice state,
// the signalling frame's prefix. voice-protocol.ts re-exports them beside its schemas.
import type { VoiceSignalBody, VoiceState } from './voice-protocol.ts';

export const VOICE_LIMITS = {
  /**
   * Members a peer-to-peer mesh holds. Every member sends its audio (and camera) once per other
   * member: at 8, seven Opus uplinks (~0.25 Mbit/s) and, with cameras, seven video encodes
   * (~2 Mbit/s of uplink) — about what a home connection and a laptop carry. Past it the group
   * moves to the SFU, where each member sends once. docs/rooms.md § Voice explains the choice.
   */
  meshMax: 8,
  /** With an SFU, back to the mesh only once the group is this far below meshMax (no flapping). */
  meshHysteresis: 2,
  /** Members one room's voice takes at all (through the SFU). */
  maxMembers: 50,
  /** A session description (offer or answer), in characters: Chrome's audio+video offer is ~6 KB. */
  sdpMaxChars: 12_000,
  /** Inbound frames carrying signalling may be this long (others keep ROOM_LIMITS.maxFrameChars). */
  signalFrameMaxChars: 16_384,
  candidateMaxChars: 512,
  candidatesPerMessage: 20,
} as const;

export const VOICE_MODES = ['mesh', 'sfu'] as const;
export type VoiceMode = (typeof VOICE_MODES)[number];

export function emptyVoice(): VoiceState {
  return { mode: 'mesh', members: [] };
}

/** The frame a relayed signal arrives as (built once by the Room, sent as is). */
export function voiceSignalFrame(from: string, uid: string, signal: VoiceSignalBody): string {
  return JSON.stringify({ type: 'voice.signal', from, uid, signal });
}

/** Inbound frames that may exceed ROOM_LIMITS.maxFrameChars: signalling, recognised by its prefix. */
export const SIGNAL_FRAME_PREFIX = '{"type":"voice.signal"';
