// Interactions in step with the stream: a chat message, a poll or a host's reaction carries the
// program-date-time of the frame its author was watching, and each viewer's page shows it when
// its own video reaches that frame, so a viewer further behind live is never told what their
// picture has not shown yet. One rule for chat, polls and reactions (docs/player.md).

/** Epoch ms before this are not program-date-times (the room refuses them too: room-protocol.ts). */
export const MIN_PDT_MS = 946_684_800_000;

export interface InStepOptions {
  /** The viewer's choice (on unless the page was opened with `?sync=0`, or the switch turned off). */
  enabled: boolean;
  /** The viewer's own message, poll or reaction: never held back from its author. */
  own: boolean;
}

/**
 * Whether something stamped with the stream's program-date-time `itemPdt` (ms) is still ahead of
 * the picture, whose program-date-time is `picturePdt` (null until the player knows it: then
 * nothing is held, as a page without a map cannot tell, and an item without a stamp is shown).
 */
export function aheadOfPicture(itemPdt: number | null | undefined, picturePdt: number | null, o: InStepOptions): boolean {
  if (!o.enabled || o.own || itemPdt === null || itemPdt === undefined || picturePdt === null) return false;
  return itemPdt > picturePdt;
}

/** The stamp a page puts on what it sends: the frame on screen, if the player knows a real one. */
export function stampOf(picturePdt: number | null): number | undefined {
  return picturePdt !== null && picturePdt >= MIN_PDT_MS ? Math.round(picturePdt) : undefined;
}
