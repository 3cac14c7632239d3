// Which peer connections a member of a voice mesh should have, from the seats in the room state:
// one per other seat, offered by the member whose connection id sorts first — so for every pair
// exactly one side offers, whoever joined first and whatever order the room's batches arrive in
// (no glare, no "perfect negotiation" needed). Pure: the browser's VoiceMesh applies it.
import type { VoiceState } from './voice-protocol.ts';

export interface MeshPlan {
  /** Seats this member should send an offer to (no connection yet, and it is the offerer). */
  offer: string[];
  /** Seats it should expect an offer from (no connection yet, the other side offers). */
  await: string[];
  /** Connections to close: their seat is gone, or the group left the mesh. */
  close: string[];
}

export function isOfferer(mine: string, theirs: string): boolean {
  return mine < theirs;
}

export function planMesh(mine: string | null, voice: VoiceState, open: Iterable<string>): MeshPlan {
  const have = new Set(open);
  const seated = mine !== null && voice.mode === 'mesh' && voice.members.some((m) => m.conn === mine);
  const others = seated ? voice.members.map((m) => m.conn).filter((c) => c !== mine) : [];
  const want = new Set(others);
  return {
    offer: others.filter((c) => !have.has(c) && isOfferer(mine!, c)),
    await: others.filter((c) => !have.has(c) && !isOfferer(mine!, c)),
    close: [...have].filter((c) => !want.has(c)),
  };
}
