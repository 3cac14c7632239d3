// What a StreamState object keeps waiting (core/live/waiters.ts): blocked requests answered when
// their condition holds or at their timeout, pushes held until the next announcement, and R2
// writes in flight that a retry joins instead of writing the same key again.
import { describe, expect, it } from 'vitest';
import { HeldPushes, InFlightWrites, Waiters } from '../../core/live/waiters.ts';

describe('waiters', () => {
  it('resolve true when their condition holds at a wake-up of their key, false at the timeout', async () => {
    const w = new Waiters<{ n: number }>();
    const subjects: Record<string, { n: number }> = { v: { n: 0 }, a: { n: 0 } };
    const v = w.wait('v', (s) => s.n >= 2, 5_000);
    const a = w.wait('a', (s) => s.n >= 1, 30);
    subjects.v!.n = 1;
    w.wake('v', (k) => subjects[k]);
    expect(w.size).toBe(2);
    subjects.a!.n = 1; // not woken: times out
    subjects.v!.n = 2;
    w.wake('v', (k) => subjects[k]);
    expect(await v).toBe(true);
    expect(await a).toBe(false);
    expect(w.size).toBe(0);
  });

  it('are all answered when the stream ends', async () => {
    const w = new Waiters<number>();
    const both = [w.wait('v', () => false, 5_000), w.wait('a', () => false, 5_000)];
    w.wake(null, () => undefined, true);
    expect(await Promise.all(both)).toEqual([true, true]);
  });
});

describe('held pushes', () => {
  it('count what is in progress per rendition and wake at the next announcement, or give up at the deadline', async () => {
    const held = new HeldPushes();
    held.begin('v');
    held.begin('v');
    held.end('v');
    expect([held.inProgress('v'), held.inProgress('a')]).toEqual([1, 0]);
    const next = held.nextAnnouncement('v', Date.now() + 5_000);
    const other = held.nextAnnouncement('a', Date.now() + 20);
    held.wake('v');
    expect(await next).toBe(true);
    expect(await other).toBe(false);
    const all = [held.nextAnnouncement('v', Date.now() + 5_000), held.nextAnnouncement('a', Date.now() + 5_000)];
    held.wake(null);
    expect(await Promise.all(all)).toEqual([true, true]);
  });
});

describe('writes in flight', () => {
  it('a retry joins the write of its key; the assembly of a segment is joined too; settled() never rejects', async () => {
    const writes = new InFlightWrites();
    let started = 0;
    let finish!: () => void;
    const start = () => {
      started++;
      return new Promise<void>((r) => (finish = r));
    };
    const first = writes.join('k', start);
    const retry = writes.join('k', start);
    expect(retry).toBe(first);
    expect(started).toBe(1);
    finish();
    await first;
    writes.release('k', first);
    const failed = writes.start('k', () => Promise.reject(new Error('R2 down')));
    expect(writes.join('k', start)).toBe(failed);
    await expect(failed).rejects.toThrow('R2 down');
    await expect(writes.settled('k')).resolves.toBeUndefined();
    writes.release('k', failed);
    writes.join('k', start);
    expect(started).toBe(2);
  });
});
