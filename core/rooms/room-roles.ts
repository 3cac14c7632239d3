// Roles and member ids: the few protocol primitives both the room protocol and the voice
// protocol build on (re-exported by room-protocol.ts, where every other side imports them).
import { z } from 'zod';
import { ROLES } from './room-wire.ts';

export { ROLES, type Role } from './room-wire.ts';
export const RoleName = z.enum(ROLES);

/** A viewer's stable id in a room: `t:<name>` for token holders, `a:<random>` for anonymous. */
export const Uid = z.string().regex(/^[ta]:[^\u0000-\u001F]{1,64}$/, 'viewer id');

/** A connection's id, which the Worker draws at admission (12 base64url characters). */
export const ConnId = z.string().regex(/^[A-Za-z0-9_-]{1,24}$/, 'connection id');
