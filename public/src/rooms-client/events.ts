// The events a room client emits, and their payloads: the one list a page subscribes from
// (`client.on(event, handler)`). Dispatch (dispatch.ts) raises them from the room's frames.
import type {
  ChatMessage,
  ErrorCode,
  Member,
  PlaybackState,
  Poll,
  Presence,
  Reaction,
  ReactionCounts,
  RoomEvent,
  RoomSnapshot,
  You,
} from '../../../core/rooms/room-protocol.ts';
import type { VoiceSignalBody, VoiceState } from '../../../core/rooms/voice-protocol.ts';
import type { ClockEstimate } from '../../../core/rooms/room-clock.ts';

/** Events and their payloads. */
export interface RoomClientEvents {
  /** Connected and greeted; `resumed` when only missed batches were replayed. */
  open: { you: You; resumed: boolean };
  /** The whole state was (re)placed: first join, resync or a resume that needed a snapshot. */
  state: RoomSnapshot;
  chat: ChatMessage;
  'chat.delete': { id: number };
  reactions: ReactionCounts;
  /** A host's reaction at a moment of the stream (`pdt`, ms), to be shown when the video reaches it. */
  'host.reaction': { reaction: Reaction; pdt: number; name: string };
  poll: Poll;
  presence: Presence & { joined: Member[]; left: Member[] };
  playback: PlaybackState;
  slow: { seconds: number };
  settings: { anonymous: boolean };
  /** Voice seats or mode changed (or the whole state was replaced): the room's voice now. */
  voice: VoiceState;
  /** A signal another voice seat addressed to this connection. */
  'voice.signal': { from: string; uid: string; signal: VoiceSignalBody };
  /** Where the SFU is and the token it takes (the answer to `requestSfu`). */
  'voice.sfu': { endpoint: string; token: string; expiresAt: number };
  /** Every batch as received, after it was applied (for tools and tests). */
  batch: { seq: number; t: number; events: RoomEvent[] };
  /** An error the room answered that no pending request was waiting for. */
  error: { code: ErrorCode; reason: string };
  close: { code: number; reason: string; willReconnect: boolean };
  clock: ClockEstimate;
}
export type Handler<K extends keyof RoomClientEvents> = (payload: RoomClientEvents[K]) => void;
