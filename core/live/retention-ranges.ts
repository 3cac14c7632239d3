// Which MSNs the archive's sweep may delete (pure): the ranges still referenced (a live window,
// recordings, clips, segments that left a window recently) are kept, and the sweep deletes the
// runs of existing MSNs between them, oldest first (durable-objects/stream-archive.ts).

/** True when a kept range holds `msn`. */
export function covered(ranges: ReadonlyArray<[number, number]>, msn: number): boolean {
  return ranges.some(([a, b]) => msn >= a && msn <= b);
}

/**
 * The first run of MSNs at or after `from` that no kept range covers, as [a, b] with a = an MSN
 * that exists (`nextExisting`), or null when everything left is kept.
 */
export function firstGap(
  kept: ReadonlyArray<[number, number]>,
  from: number,
  nextExisting: (from: number) => number | null,
): [number, number] | null {
  let at = from;
  for (;;) {
    const next = nextExisting(Number.isFinite(at) ? at : 0);
    if (next === null) return null;
    const holder = kept.find(([a, b]) => next >= a && next <= b);
    if (!holder) {
      // The gap runs until the next kept range starts.
      let end = Number.MAX_SAFE_INTEGER;
      for (const [a] of kept) if (a > next && a - 1 < end) end = a - 1;
      return [next, end];
    }
    if (holder[1] === Infinity) return null;
    at = holder[1] + 1;
  }
}
