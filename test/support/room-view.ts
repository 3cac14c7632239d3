// A room as the rules see it (RoomView), from plain data: the fixture of the pure rule tests.
import type { PlaybackState, Poll, Role } from '../../core/rooms/room-protocol.ts';
import type { RoomView, SanctionState } from '../../core/rooms/room-effects.ts';
import type { BucketState } from '../../core/rooms/room-token-bucket.ts';
import type { VoiceMember, VoiceMode } from '../../core/rooms/voice-protocol.ts';

export interface Facts {
  slow?: number;
  sanctions?: Record<string, SanctionState>;
  pace?: Record<string, { lastAt?: number; bucket?: BucketState }>;
  polls?: Poll[];
  votes?: Record<string, number>;
  messages?: number[];
  playback?: PlaybackState | null;
  ranks?: Record<string, Role>;
  voice?: VoiceMember[];
  mode?: VoiceMode;
  meshMax?: number;
  sfu?: boolean;
  voicePace?: Record<string, { signals?: BucketState; updates?: BucketState }>;
}

export function view(f: Facts = {}): RoomView {
  return {
    slowModeSec: () => f.slow ?? 0,
    sanction: (uid) => f.sanctions?.[uid],
    chatPace: (uid) => f.pace?.[uid] ?? {},
    openPoll: (id) => f.polls?.find((p) => p.id === id && p.open),
    pollExists: (id) => f.polls?.some((p) => p.id === id) ?? false,
    voteOf: (pollId, uid) => f.votes?.[`${pollId}:${uid}`] ?? null,
    messageLive: (id) => f.messages?.includes(id) ?? false,
    playback: () => f.playback ?? null,
    rankOf: (uid) => f.ranks?.[uid] ?? 'viewer',
    voiceSeat: (conn) => f.voice?.find((m) => m.conn === conn),
    voiceSeatOf: (uid) => f.voice?.find((m) => m.uid === uid),
    voiceCount: () => f.voice?.length ?? 0,
    voiceMode: () => f.mode ?? 'mesh',
    voiceConfig: () => ({ meshMax: f.meshMax ?? 8, sfu: f.sfu ?? false }),
    voicePace: (conn) => f.voicePace?.[conn] ?? {},
  };
}
