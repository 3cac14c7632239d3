// A lean reading of a live LL-HLS media playlist for thousands of simulated viewers: the parts it
// lists (MSN, index, URI) and the next blocking directives as hls.js computes them. Only what a
// viewer needs, so the client costs far less than the origin it measures.

export interface ScannedPart {
  msn: number;
  index: number;
  uri: string;
}

export interface ScannedPlaylist {
  parts: ScannedPart[];
  /** `_HLS_msn` / `_HLS_part` of the next blocking reload (hls.js: after the last listed part). */
  next: { msn: number; part: number } | null;
  ended: boolean;
}

export function scanMediaPlaylist(text: string): ScannedPlaylist {
  const parts: ScannedPart[] = [];
  let mediaSequence = 0;
  let segments = 0;
  let index = 0;
  let ended = false;
  let afterInf = false;
  for (const line of text.split('\n')) {
    if (afterInf && line !== '' && !line.startsWith('#')) {
      // The URI line closes the segment the parts above belong to.
      segments++;
      index = 0;
      afterInf = false;
    } else if (line.startsWith('#EXT-X-PART:')) {
      const m = /URI="([^"]+)"/.exec(line);
      if (m) parts.push({ msn: mediaSequence + segments, index: index++, uri: m[1]! });
    } else if (line.startsWith('#EXTINF:')) afterInf = true;
    else if (line.startsWith('#EXT-X-MEDIA-SEQUENCE:')) mediaSequence = Number(line.slice(22));
    else if (line.startsWith('#EXT-X-SKIP:')) segments += Number(/SKIPPED-SEGMENTS=(\d+)/.exec(line)?.[1] ?? 0);
    else if (line === '#EXT-X-ENDLIST') ended = true;
  }
  const last = parts.at(-1);
  let next: ScannedPlaylist['next'] = null;
  if (last && !ended) next = last.msn < mediaSequence + segments ? { msn: last.msn + 1, part: 0 } : { msn: last.msn, part: last.index + 1 };
  return { parts, next, ended };
}

/** Whether part a comes after part b. */
export function partAfter(a: { msn: number; index: number }, b: { msn: number; index: number } | null): boolean {
  return !b || a.msn > b.msn || (a.msn === b.msn && a.index > b.index);
}
