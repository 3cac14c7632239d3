// Who may do what in a room: one table of least roles per message, and the rank rules of
// moderation. A member's rank is their identity's (the role their room token names), whether or
// not they are online.
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
  // Anyone may talk; moderators keep order in voice.
  'voice.join': 'viewer',
  'voice.leave': 'viewer',
  'voice.update': 'viewer',
  'voice.signal': 'viewer',
  'voice.sfu': 'viewer',
  'voice.mute': 'moderator',
  'voice.unmute': 'moderator',
  'voice.remove': 'moderator',
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

/** Ranks in order, for the highest of several. */
export function higherRole(a: Role, b: Role): Role {
  return RANK[a] >= RANK[b] ? a : b;
}

/**
 * Whether a sanction holds a member: only one set by someone who outranks the member's current
 * role does. A moderator's ban of a name that later joins with a host token does not lock the
 * host out. (Sanctions recorded before ranks were stored count as a host's.)
 */
export function sanctionBinds(setBy: Role | undefined, memberRole: Role): boolean {
  return outranks(setBy ?? 'host', memberRole);
}

/** Whether `actor` may change (set again, shorten, lift) a sanction `setBy` imposed. */
export function mayOverride(actor: Role, setBy: Role | undefined): boolean {
  return RANK[actor] >= RANK[setBy ?? 'host'];
}
