// The browser client for a room (no framework): connects, reconnects with backoff and resumes
// where it left off, keeps the room's state with the same reducer the server uses, syncs to the
// room clock, and offers typed events and methods. It runs unchanged in Node 22 (global
// WebSocket) and accepts another WebSocket implementation (e.g. `ws`) for tests and benchmarks.
//
// Everything a room sends is text. Render chat, names and poll options with `textContent`
// (never `innerHTML`): nothing another viewer typed may run in this page.
//
// The client is built in layers, one concern per file under rooms-client/: the connection
// (socket, reconnect, liveness, requests, clock pings), dispatch (what the room sends → state and
// events), calls (chat, reactions, polls, moderation, playback, the room clock), voice calls.
import type {
  ChatMessage,
  Member,
  PlaybackState,
  Poll,
  Presence,
  Reaction,
  ReactionCounts,
  RoomSnapshot,
  You,
} from '../../core/rooms/room-protocol.ts';
import type { VoiceMember, VoiceSignalBody, VoiceState } from '../../core/rooms/voice-protocol.ts';
import type { ClockEstimate } from '../../core/rooms/room-clock.ts';
import { RoomVoiceCalls } from './rooms-client/voice.ts';

export type {
  ChatMessage,
  Member,
  PlaybackState,
  Poll,
  Presence,
  Reaction,
  ReactionCounts,
  RoomSnapshot,
  You,
  ClockEstimate,
  VoiceMember,
  VoiceSignalBody,
  VoiceState,
};
export { RoomError, type RoomClientOptions, type WebSocketFactory, type WebSocketLike } from './rooms-client/connection.ts';
export type { RoomClientEvents } from './rooms-client/events.ts';

/** A member's client for one room: `new RoomClient({ origin, room, name | token })`, then `connect()`. */
export class RoomClient extends RoomVoiceCalls {}
