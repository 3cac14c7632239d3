// The isolate's memory of recent answers (workers/recent-answers.ts): bounded by entries and by
// bytes whatever is put in, oldest out first, each entry served until its time to live.
import { describe, expect, it } from 'vitest';
import { RecentAnswers } from '../../workers/recent-answers.ts';

describe('RecentAnswers', () => {
  it('serves an entry until it expires, then forgets it', () => {
    const r = new RecentAnswers<string>({ maxEntries: 10, maxBytes: 1000 });
    r.set('a', 'A', 10, 1_000);
    expect(r.get('a', 999)).toBe('A');
    expect(r.get('a', 1_000)).toBeUndefined();
    expect(r.size).toBe(0);
    expect(r.totalBytes).toBe(0);
  });

  it('never holds more than maxEntries entries or maxBytes bytes, dropping the oldest first', () => {
    const r = new RecentAnswers<number>({ maxEntries: 50, maxBytes: 10_000 });
    for (let i = 0; i < 5_000; i++) {
      r.set(`k${i}`, i, 1 + (i % 700), Number.MAX_SAFE_INTEGER);
      expect(r.size).toBeLessThanOrEqual(50);
      expect(r.totalBytes).toBeLessThanOrEqual(10_000);
    }
    expect(r.get('k4999', 0)).toBe(4999);
    expect(r.get('k0', 0)).toBeUndefined();
  });

  it('keeps nothing larger than the whole budget, and replacing a key does not count it twice', () => {
    const r = new RecentAnswers<string>({ maxEntries: 10, maxBytes: 100 });
    r.set('big', 'x', 101, Number.MAX_SAFE_INTEGER);
    expect(r.get('big', 0)).toBeUndefined();
    r.set('a', 'one', 60, Number.MAX_SAFE_INTEGER);
    r.set('a', 'two', 60, Number.MAX_SAFE_INTEGER);
    expect(r.totalBytes).toBe(60);
    expect(r.get('a', 0)).toBe('two');
  });
});
