// What one push costs the origin: R2 writes (billed per operation) and the StreamState's SQLite
// rows written (billed per row), counted inside the object for each kind of push. The hot path
// must never get more expensive; the figures printed here go in the commit message of any change
// to it (`npx vitest run test/workers/push-cost.test.ts`).
import { runInDurableObject } from 'cloudflare:test';
import { env } from 'cloudflare:workers';
import { describe, expect, it } from 'vitest';
import { FakeRendition, authorize, createStream, expectOk } from './helpers.ts';

interface Tally {
  r2Puts: number;
  rowsWritten: number;
  /** Rows read (billed too, more cheaply): printed, not bounded. */
  rowsRead: number;
  alarms: number;
}

type Kind = 'init' | 'first part' | 'later part' | 'segment';

/** Counts, inside the stream's object, what each push writes (SQLite cursors, R2 puts, alarms). */
async function instrument(streamId: string): Promise<{ take(): Promise<Tally> }> {
  const streamState = (env as unknown as { STREAM_STATE: DurableObjectNamespace }).STREAM_STATE.getByName(streamId);
  const cursors: SqlStorageCursor<Record<string, SqlStorageValue>>[] = [];
  let r2Puts = 0;
  let alarms = 0;
  await runInDurableObject(streamState, (instance: unknown, state) => {
    const sql = state.storage.sql;
    const exec = sql.exec.bind(sql);
    sql.exec = ((query: string, ...bindings: unknown[]) => {
      const cursor = exec(query, ...bindings);
      cursors.push(cursor);
      return cursor;
    }) as typeof sql.exec;
    const storage = state.storage;
    const setAlarm = storage.setAlarm.bind(storage);
    storage.setAlarm = ((...args: Parameters<typeof storage.setAlarm>) => {
      alarms++;
      return setAlarm(...args);
    }) as typeof storage.setAlarm;
    // The object's own bucket binding (its helpers keep a reference to it, not to env).
    const media = (instance as { env: { MEDIA: R2Bucket } }).env.MEDIA;
    const put = media.put.bind(media);
    media.put = ((...args: Parameters<R2Bucket['put']>) => {
      r2Puts++;
      return put(...args);
    }) as R2Bucket['put'];
  });
  return {
    async take() {
      // Each cursor knows the rows its statement wrote once it has run.
      const done = await runInDurableObject(streamState, () => cursors.splice(0).map((c) => [c.rowsWritten, c.rowsRead] as const));
      const t = { r2Puts, rowsWritten: done.reduce((n, c) => n + c[0], 0), rowsRead: done.reduce((n, c) => n + c[1], 0), alarms };
      r2Puts = 0;
      alarms = 0;
      return t;
    },
  };
}

describe('the cost of a push', () => {
  it('one R2 write per init and part, none per segment (each media byte written once), and a bounded number of SQLite rows per push', {
    timeout: 60_000,
  }, async () => {
    const stream = await createStream({ ladder: [{ name: 'v', kind: 'video', width: 640, height: 360, videoBitrate: 800_000 }] });
    const lease = (await (await authorize(stream.streamKey)).json()) as { epoch: number; startMsn: number };
    const v = new FakeRendition(stream.id, lease.epoch, 'v', lease.startMsn);
    const meter = await instrument(stream.id);
    const totals = new Map<Kind, { pushes: number } & Tally>();
    const count = async (kind: Kind, res: Response) => {
      expectOk(res);
      const t = await meter.take();
      const sum = totals.get(kind) ?? { pushes: 0, r2Puts: 0, rowsWritten: 0, rowsRead: 0, alarms: 0 };
      totals.set(kind, {
        pushes: sum.pushes + 1,
        r2Puts: sum.r2Puts + t.r2Puts,
        rowsWritten: sum.rowsWritten + t.rowsWritten,
        rowsRead: sum.rowsRead + t.rowsRead,
        alarms: sum.alarms + t.alarms,
      });
    };
    await meter.take(); // the lease's own writes
    await count('init', await v.init());
    // 20 segments of 5 parts: past the 7-segment minimum window, so trimming runs too.
    for (let s = 0; s < 20; s++) {
      for (let p = 0; p < 5; p++) await count(p === 0 ? 'first part' : 'later part', await v.nextPart());
      await count('segment', await v.closeSegment());
    }
    const perPush = Object.fromEntries(
      [...totals].map(([kind, t]) => [
        kind,
        {
          r2Puts: t.r2Puts / t.pushes,
          rowsWritten: t.rowsWritten / t.pushes,
          rowsRead: t.rowsRead / t.pushes,
          alarms: t.alarms / t.pushes,
        },
      ]),
    );
    console.log(JSON.stringify({ msg: 'push cost per push', perPush }));
    // Each media byte is written once: init and parts are one write each, and the segment push
    // only closes the segment (the edge serves its parts joined), so R2 writes per stream-hour
    // are parts + inits. (Before: 1 write per segment push too, every media byte written twice.)
    expect(perPush.init!.r2Puts).toBe(1);
    expect(perPush['first part']!.r2Puts).toBe(1);
    expect(perPush['later part']!.r2Puts).toBe(1);
    expect(perPush.segment!.r2Puts).toBe(0);
    // Today's figures (the commit messages of changes to the push path quote them): bounds that
    // a change to the hot path must not raise.
    // (A row written counts each index it touches: a part is its row and its primary key.)
    expect(perPush.init!.rowsWritten).toBeLessThanOrEqual(2);
    expect(perPush['later part']!.rowsWritten).toBeLessThanOrEqual(1);
    expect(perPush['first part']!.rowsWritten).toBeLessThanOrEqual(7);
    expect(perPush.segment!.rowsWritten).toBeLessThanOrEqual(1);
    for (const t of Object.values(perPush)) expect(t.alarms).toBe(0);
  });
});
