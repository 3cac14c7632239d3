// Start-over (`?start=`): a live playlist that begins at the oldest segment of the DVR window
// (`beginning`) or at a program date time (ISO 8601 with a zone) and tells players to start there.
// One parser for the edge; its canonical form goes into cache keys and into the URIs of the
// multivariant playlist, so every rendition starts at the same point.

export type StartParam = { ok: true; start?: 'beginning' | number; query?: string } | { ok: false; message: string };

const ISO_RE = /^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(?:\.\d{1,9})?(?:Z|[+-]\d{2}:\d{2})$/;

/** Parses the `start` query values of a playlist request (absent → no start-over). */
export function parseStartParam(values: string[]): StartParam {
  if (values.length === 0) return { ok: true };
  if (values.length > 1) return { ok: false, message: 'start appears more than once' };
  const v = values[0]!;
  if (v === 'beginning') return { ok: true, start: 'beginning', query: 'start=beginning' };
  if (!ISO_RE.test(v)) return { ok: false, message: 'start must be "beginning" or an ISO 8601 date-time with a zone' };
  const ms = Date.parse(v);
  if (!Number.isFinite(ms)) return { ok: false, message: 'start is not a valid date-time' };
  const canonical = new Date(ms).toISOString();
  return { ok: true, start: ms, query: 'start=' + canonical };
}
