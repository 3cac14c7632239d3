// A StreamState stored by an older version comes back as it was: schema 3 kept its lifecycle in
// three flags (`ended`, `idle`, `deleted`) beside the lease; schema 4 keeps one phase
// (core/live/stream-phase.ts); schema 5 keys parts WITHOUT ROWID (one row written per part). The
// migrations run when the object is next constructed.
import { evictDurableObject, runInDurableObject } from 'cloudflare:test';
import { env } from 'cloudflare:workers';
import { describe, expect, it } from 'vitest';
import { ADMIN, FakeRendition, authorize, createStream, expectOk, worker } from './helpers.ts';

async function live() {
  const stream = await createStream({ ladder: [{ name: 'v', kind: 'video', width: 640, height: 360, videoBitrate: 800_000 }] });
  const lease = (await (await authorize(stream.streamKey)).json()) as { epoch: number; startMsn: number };
  const v = new FakeRendition(stream.id, lease.epoch, 'v', lease.startMsn);
  expectOk(await v.init());
  await v.segment();
  return { stream, lease, v };
}

/** Rewrites the object's kv as schema 3 stored it, then evicts it so the next call reloads it. */
async function asSchema3(streamId: string, flags: { ended?: boolean; idle?: boolean; deleted?: boolean }): Promise<void> {
  const stub = env.STREAM_STATE.getByName(streamId);
  await runInDurableObject(stub, (_i, state) => {
    const sql = state.storage.sql;
    sql.exec("DELETE FROM kv WHERE key IN ('phase', 'schema')");
    sql.exec("INSERT INTO kv (key, value) VALUES ('schema', '3')");
    for (const [k, v] of Object.entries(flags)) sql.exec('INSERT INTO kv (key, value) VALUES (?, ?)', k, JSON.stringify(v));
  });
  await evictDurableObject(stub);
}

async function kv(streamId: string): Promise<Record<string, unknown>> {
  return runInDurableObject(env.STREAM_STATE.getByName(streamId), (_i, state) =>
    Object.fromEntries(
      state.storage.sql
        .exec<{ key: string; value: string }>("SELECT key, value FROM kv WHERE key IN ('phase', 'schema', 'ended', 'idle', 'deleted')")
        .toArray()
        .map((r) => [r.key, JSON.parse(r.value)]),
    ),
  );
}

describe('schema 3 → 4: the lifecycle flags become one phase', () => {
  it('an ended stream stays ended (playlists end, a lease starts a new broadcast)', async () => {
    const { stream, v } = await live();
    await asSchema3(stream.id, { ended: true, idle: false, deleted: false });
    const info = (await (await worker(`/api/streams/${stream.id}`, { headers: ADMIN })).json()) as { status: string };
    expect(info.status).toBe('ended');
    expect(await kv(stream.id)).toEqual({ phase: 'ended', schema: 5 });
    // An ended stream takes no pushes of its last epoch.
    expect((await v.nextPart()).status).toBe(409);
    const again = (await (await authorize(stream.streamKey)).json()) as { startMsn: number };
    expect(again.startMsn).toBe(2);
  });

  it('a stream whose publisher said it stopped is still live and still takes its pushes', async () => {
    const { stream, v } = await live();
    await asSchema3(stream.id, { ended: false, idle: true, deleted: false });
    expect(((await (await worker(`/api/streams/${stream.id}`, { headers: ADMIN })).json()) as { status: string }).status).toBe('live');
    expect(await kv(stream.id)).toEqual({ phase: 'stopping', schema: 5 });
    expectOk(await v.nextPart());
  });

  it('a deleted stream stays deleted', async () => {
    const { stream, v } = await live();
    await asSchema3(stream.id, { ended: true, idle: false, deleted: true });
    expect(await kv(stream.id)).toEqual({ phase: 'deleted', schema: 5 });
    const res = await v.nextPart();
    expect(res.status).toBe(404);
    expect(((await res.json()) as { error: { code: string } }).error.code).toBe('stream_not_found');
  });
});

describe('schema 4 → 5: parts keyed by their primary key alone', () => {
  it('keeps every part of the window, the open segment included, and a later part then writes one row', async () => {
    const { stream, v } = await live();
    for (let i = 0; i < 3; i++) expectOk(await v.nextPart());
    const before = await (await worker(`/live/${stream.id}/v/index.m3u8`)).text();
    const stub = env.STREAM_STATE.getByName(stream.id);
    // The parts table as schema 4 had it: a rowid table (its primary key a separate index).
    await runInDurableObject(stub, (_i, state) => {
      const sql = state.storage.sql;
      sql.exec(`
        CREATE TABLE parts_v4 (rendition TEXT NOT NULL, msn INTEGER NOT NULL, idx INTEGER NOT NULL,
          duration REAL NOT NULL, independent INTEGER NOT NULL, size INTEGER, PRIMARY KEY (rendition, msn, idx));
        INSERT INTO parts_v4 SELECT * FROM parts; DROP TABLE parts; ALTER TABLE parts_v4 RENAME TO parts;
        UPDATE kv SET value = '4' WHERE key = 'schema';`);
    });
    await evictDurableObject(stub);
    expect(await (await worker(`/live/${stream.id}/v/index.m3u8`)).text()).toBe(before);
    const table = await runInDurableObject(stub, (_i, state) => ({
      sql: state.storage.sql.exec<{ sql: string }>("SELECT sql FROM sqlite_master WHERE name = 'parts'").one().sql,
      parts: state.storage.sql.exec<{ n: number }>('SELECT COUNT(*) AS n FROM parts').one().n,
    }));
    expect(table.sql).toContain('WITHOUT ROWID');
    expect(table.parts).toBeGreaterThanOrEqual(3);
    expect(await kv(stream.id)).toMatchObject({ schema: 5 });
    expectOk(await v.nextPart());
    const after = await (await worker(`/live/${stream.id}/v/index.m3u8`)).text();
    expect(after.length).toBeGreaterThan(before.length);
  });
});
