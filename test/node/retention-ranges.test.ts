// The archive sweep's range rule (core/live/retention-ranges.ts): the runs of existing MSNs that
// no kept range covers, found oldest first, never one inside a kept range.
import { describe, expect, it } from 'vitest';
import { covered, firstGap } from '../../core/live/retention-ranges.ts';

/** A segments table holding these MSNs: the smallest at or after `from`. */
const existing = (msns: number[]) => (from: number) => msns.filter((m) => m >= from).sort((a, b) => a - b)[0] ?? null;

describe('retention ranges', () => {
  it('finds the first uncovered run, from the oldest existing MSN to the next kept range', () => {
    const kept: Array<[number, number]> = [
      [10, 20],
      [40, Infinity],
    ];
    expect(firstGap(kept, -Infinity, existing([3, 4, 12, 25, 30, 45]))).toEqual([3, 9]);
    expect(firstGap(kept, 10, existing([3, 4, 12, 25, 30, 45]))).toEqual([25, 39]);
  });

  it('finds nothing once everything left is kept, and runs to the end when no range follows', () => {
    expect(firstGap([[1, Infinity]], -Infinity, existing([1, 5, 9]))).toBeNull();
    expect(firstGap([[1, 4]], -Infinity, existing([2, 7, 9]))).toEqual([7, Number.MAX_SAFE_INTEGER]);
    expect(firstGap([], -Infinity, existing([]))).toBeNull();
  });

  it('says whether a kept range holds an MSN', () => {
    expect(covered([[10, 20]], 15)).toBe(true);
    expect(covered([[10, 20]], 21)).toBe(false);
    expect(covered([[5, Infinity]], 1e9)).toBe(true);
  });
});
