// Who may do what in a room: one table, used by the Room before it acts on a message.
import type { Role, RoomBoundMessage } from './room-protocol.ts';

const RANK: Record<Role, number> = { viewer: 0, moderator: 1, host: 2 };

/** The least role a message type needs. */
const NEEDS: Record<RoomBoundMessage['type'], Role> = {
  chat: 'viewer',
  // Only a host's reaction with a moment reaches the room (isHostReaction); the shards count the rest.
  react: 'host',
  'poll.vote': 'viewer',
  'poll.open': 'moderator',
  'poll.close': 'moderator',
  'mod.delete': 'moderator',
  'mod.mute': 'moderator',
  'mod.unmute': 'moderator',
  'mod.ban': 'moderator',
  'mod.unban': 'moderator',
  'mod.slow': 'moderator',
  // The watch party follows one person: the host.
  'playback.set': 'host',
};

export function mayDo(role: Role, type: RoomBoundMessage['type']): boolean {
  return RANK[role] >= RANK[NEEDS[type]];
}

/** A moderator may act on viewers; a host on moderators and viewers; nobody on an equal or higher role. */
export function outranks(actor: Role, target: Role): boolean {
  return RANK[actor] > RANK[target];
}

/** Slow mode and per-viewer chat limits apply to viewers only: staff must be able to answer. */
export function isStaff(role: Role): boolean {
  return role !== 'viewer';
}
