// How the Worker hands a viewer to the room object that will hold their socket: who the viewer
// is (settled at the edge from a room token or an anonymous session), which object holds the
// socket, and the internal header that carries it on the forwarded upgrade request.
import type { Role } from '../rooms/room-protocol.ts';

/** Who a connection is. The Worker decides it (token or anonymous session) before the upgrade. */
export interface ConnIdentity {
  conn: string;
  uid: string;
  name: string;
  role: Role;
}

/** The admission the Worker hands to the object that will hold the socket (header below). */
export interface Admission extends ConnIdentity {
  room: string;
  /** -1: the Room holds the socket; otherwise the shard index. */
  shard: number;
  session?: string;
  resume?: { epoch: string; seq: number };
}

/**
 * Internal header carrying the admission from the Worker to a room object. Durable Objects are
 * reachable only through their bindings, so only our Worker can set it; the Worker builds the
 * forwarded request itself and never copies a client's header of this name.
 */
export const ADMISSION_HEADER = 'x-edgelive-room-admission';

/** Reads the Worker's admission from a forwarded upgrade request. */
export function readAdmission(request: { headers: { get(name: string): string | null } }): Admission | null {
  const raw = request.headers.get(ADMISSION_HEADER);
  if (!raw) return null;
  try {
    return JSON.parse(raw) as Admission;
  } catch {
    return null;
  }
}

/** A shard's Durable Object name: the room id and the shard index (room ids never contain ':'). */
export function shardName(room: string, index: number): string {
  return `${room}:${index}`;
}
