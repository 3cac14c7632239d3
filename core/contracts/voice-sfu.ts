// Party voice through the media node's SFU, defined once for the node and the browser: the route
// (`POST {VOICE_SFU_URL}/{room}` with the Room's token, an SDP offer of one sending and N receiving
// audio sections and a data channel), and the roster the node sends on that data channel — which
// seat's audio is on which receive slot. No schema library: the browser's voice chunk reads it.

/** The node's route prefix: sessions under `{prefix}/sessions/{id}` (DELETE ends one). */
export const VOICE_SFU_PREFIX = '/voice';
/** The data channel the client opens for the roster (the node only writes on it). */
export const VOICE_SFU_CHANNEL = 'edgelive-voice';
/** Receive slots a client asks for beyond the others in voice now, so joins need no reconnection. */
export const VOICE_SFU_SLOT_HEADROOM = 4;
/** Longest token the node reads (anything longer is refused unparsed). */
export const MAX_VOICE_SFU_TOKEN_LENGTH = 2048;

/**
 * The node → client message on the data channel, sent whenever it changes: `slots` maps each
 * receive slot's mid to the seat (`conn`) whose audio it carries, or null while free; `overflow`
 * counts seats the client has no slot for (it reconnects with more); `forced` lists the seats the
 * room's moderators muted, whose audio the node does not forward.
 */
export interface VoiceSfuRoster {
  type: 'roster';
  slots: Record<string, string | null>;
  overflow: number;
  forced: string[];
}

/** The session URL for a room, from the endpoint the Room hands out (`voice.sfu {endpoint}`). */
export function voiceSfuRoomUrl(endpoint: string, room: string): string {
  return `${endpoint.replace(/\/$/, '')}/${encodeURIComponent(room)}`;
}

/** Receive slots to offer with `others` seats in voice now, within the node's room cap. */
export function voiceSfuSlots(others: number, maxRoomSeats: number): number {
  return Math.max(1, Math.min(maxRoomSeats - 1, others + VOICE_SFU_SLOT_HEADROOM));
}

export function parseVoiceSfuRoster(text: string): VoiceSfuRoster | null {
  try {
    const m = JSON.parse(text) as Partial<VoiceSfuRoster>;
    if (m?.type !== 'roster' || typeof m.slots !== 'object' || m.slots === null) return null;
    return { type: 'roster', slots: m.slots, overflow: Number(m.overflow) || 0, forced: Array.isArray(m.forced) ? m.forced : [] };
  } catch {
    return null;
  }
}
