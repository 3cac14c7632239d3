// Restream destinations inside workerd: the admin CRUD never shows a key in full and stores it
// only encrypted; the signed sync call hands the media node the enabled destinations with their
// keys and records its status reports, a stale lease's report never overwriting a newer one; a
// status nobody refreshes shows as stopped, a failed one stays failed; every change moves the revision.
import { env } from 'cloudflare:workers';
import { describe, expect, it } from 'vitest';
import { MAX_RESTREAMS_PER_STREAM, RESTREAM_STATUS_TTL_MS, restreamSyncPath, type RestreamStatus } from '../../core/contracts/restream.ts';
import { signed } from './helpers.ts';
import { api, operator } from './playback-fixtures.ts';

const op = operator('192.0.2.81');
const db = (env as unknown as { DB: D1Database }).DB;
const YT_KEY = 'abcd-efgh-ijkl-mnop-qrst';

interface Restream {
  id: string;
  name: string;
  url: string;
  streamKey: string;
  enabled: boolean;
  status: {
    state: string;
    error: string | null;
    failures: number;
    droppedBytes: number;
    nodeId: string | null;
    nextAttemptAt: string | null;
  };
}

async function stream(): Promise<string> {
  const r = await api<{ id: string }>(op, 'POST', '/streams', { title: 'simulcast' });
  expect(r.status).toBe(201);
  return r.body.id;
}

async function sync(streamId: string, epoch: number, statuses: RestreamStatus[], nodeId = 'node-a') {
  const body = new TextEncoder().encode(JSON.stringify({ nodeId, statuses })) as Uint8Array<ArrayBuffer>;
  const res = await signed('POST', restreamSyncPath(streamId, epoch), body, { 'content-type': 'application/json' });
  return {
    status: res.status,
    body: (await res.json()) as { destinations: Array<{ id: string; url: string; revision: number }>; error?: { code: string } },
  };
}

function status(id: string, state: RestreamStatus['state'], extra: Partial<RestreamStatus> = {}): RestreamStatus {
  return { id, state, error: null, since: Date.now(), failures: 0, nextAttemptAt: null, droppedBytes: 0, ...extra };
}

describe('restream admin API', () => {
  it('creates a destination whose key is shown as a hint only, and stored only encrypted', async () => {
    const id = await stream();
    const created = await api<Restream>(op, 'POST', `/streams/${id}/restreams`, {
      name: 'YouTube',
      url: 'rtmps://user:pw@a.rtmp.youtube.com/live2?x=1',
      streamKey: YT_KEY,
    });
    expect(created.status).toBe(201);
    expect(created.body).toMatchObject({
      name: 'YouTube',
      url: 'rtmps://a.rtmp.youtube.com/live2?…',
      streamKey: '••••qrst',
      enabled: true,
    });
    expect(created.body.status).toMatchObject({ state: 'stopped', error: null, failures: 0, nodeId: null });
    expect(created.body.id).toMatch(/^rs[a-z0-9]{16}$/);
    const everything = [
      JSON.stringify(created.body),
      JSON.stringify((await api(op, 'GET', `/streams/${id}/restreams`)).body),
      JSON.stringify((await api(op, 'GET', `/streams/${id}/restreams/${created.body.id}`)).body),
    ];
    for (const text of everything) {
      expect(text).not.toContain(YT_KEY);
      expect(text).not.toContain('pw@');
    }
    // At rest: neither the key nor the credentials in the URL are in the row.
    const row = await db.prepare('SELECT * FROM restreams WHERE id = ?').bind(created.body.id).first<Record<string, unknown>>();
    expect(JSON.stringify(row)).not.toContain(YT_KEY);
    expect(JSON.stringify(row)).not.toContain('user:pw');
    expect(row!.secret).toMatch(/^v1\.[\w-]+\.[\w-]+$/);
  });

  it('refuses what is not an RTMP(S) destination, an unknown stream, and more than the limit', async () => {
    const id = await stream();
    for (const bad of [
      { url: 'http://x/live', streamKey: 'k' },
      { url: 'rtmp://x/live', streamKey: 'has space' },
      { url: 'rtmp://x/live' },
      { url: 'rtmp://x/live', streamKey: 'k', extra: 1 },
    ]) {
      const r = await api<{ error: { code: string } }>(op, 'POST', `/streams/${id}/restreams`, bad);
      expect(r.status, JSON.stringify(bad)).toBe(400);
      expect(r.body.error.code).toBe('invalid_request');
    }
    expect((await api(op, 'POST', '/streams/stnosuchstream00/restreams', { url: 'rtmp://x/live', streamKey: 'k' })).status).toBe(404);
    for (let i = 0; i < MAX_RESTREAMS_PER_STREAM; i++)
      expect((await api(op, 'POST', `/streams/${id}/restreams`, { url: `rtmp://x${i}/live`, streamKey: `key-${i}` })).status).toBe(201);
    const over = await api<{ error: { code: string } }>(op, 'POST', `/streams/${id}/restreams`, { url: 'rtmp://y/live', streamKey: 'k' });
    expect([over.status, over.body.error.code]).toEqual([409, 'too_many_restreams']);
  });

  it('changes, disables and deletes; a stream deleted takes its destinations with it', async () => {
    const id = await stream();
    const a = (await api<Restream>(op, 'POST', `/streams/${id}/restreams`, { url: 'rtmp://one.example/live', streamKey: 'first-key-0001' }))
      .body;
    const changed = await api<Restream>(op, 'PATCH', `/streams/${id}/restreams/${a.id}`, { streamKey: 'second-key-0002', name: 'Twitch' });
    expect(changed.body).toMatchObject({ url: 'rtmp://one.example/live', streamKey: '••••0002', name: 'Twitch', enabled: true });
    // The node is handed the new key with the kept URL.
    expect((await sync(id, 1, [])).body.destinations).toEqual([
      { id: a.id, url: 'rtmp://one.example/live/second-key-0002', revision: expect.any(Number) },
    ]);
    const disabled = await api<Restream>(op, 'PATCH', `/streams/${id}/restreams/${a.id}`, { enabled: false });
    expect(disabled.body.enabled).toBe(false);
    expect((await sync(id, 1, [])).body.destinations).toEqual([]);
    expect((await api(op, 'DELETE', `/streams/${id}/restreams/${a.id}`)).status).toBe(204);
    expect((await api(op, 'GET', `/streams/${id}/restreams/${a.id}`)).status).toBe(404);

    const b = (await api<Restream>(op, 'POST', `/streams/${id}/restreams`, { url: 'rtmp://two.example/live', streamKey: 'k2' })).body;
    expect((await api(op, 'DELETE', `/streams/${id}`)).status).toBe(204);
    expect(await db.prepare('SELECT COUNT(*) AS n FROM restreams WHERE id = ?').bind(b.id).first('n')).toBe(0);
  });
});

describe('restream sync (media node ↔ origin)', () => {
  it('answers the enabled destinations with their full publish URL, only to a signed request', async () => {
    const id = await stream();
    const a = (await api<Restream>(op, 'POST', `/streams/${id}/restreams`, { url: 'rtmps://a.rtmp.youtube.com/live2/', streamKey: YT_KEY }))
      .body;
    await api(op, 'POST', `/streams/${id}/restreams`, { url: 'rtmp://off.example/app', streamKey: 'off', enabled: false });
    const r = await sync(id, 3, []);
    expect(r.status).toBe(200);
    expect(r.body.destinations).toEqual([{ id: a.id, url: `rtmps://a.rtmp.youtube.com/live2/${YT_KEY}`, revision: expect.any(Number) }]);
    const forged = await signed(
      'POST',
      restreamSyncPath(id, 3),
      new TextEncoder().encode('{"nodeId":"x","statuses":[]}') as Uint8Array<ArrayBuffer>,
      {},
      'not-the-secret',
    );
    expect(forged.status).toBe(401);
  });

  it("records the node's status reports; a report of an older epoch is ignored", async () => {
    const id = await stream();
    const a = (
      await api<Restream>(op, 'POST', `/streams/${id}/restreams`, { url: 'rtmp://dest.example/live', streamKey: 'dest-key-123456' })
    ).body;
    await sync(
      id,
      5,
      [status(a.id, 'retrying', { error: 'Connection refused', failures: 3, nextAttemptAt: Date.now() + 4000, droppedBytes: 1234 })],
      'node-b',
    );
    const shown = (await api<Restream>(op, 'GET', `/streams/${id}/restreams/${a.id}`)).body.status;
    expect(shown).toMatchObject({ state: 'retrying', error: 'Connection refused', failures: 3, droppedBytes: 1234, nodeId: 'node-b' });
    expect(shown.nextAttemptAt).toMatch(/^\d{4}-/);
    // A node that lost the publisher (epoch 4) reports late: the newer report stands.
    await sync(id, 4, [status(a.id, 'stopped', { error: 'publisher left' })], 'node-a');
    expect((await api<Restream>(op, 'GET', `/streams/${id}/restreams/${a.id}`)).body.status).toMatchObject({
      state: 'retrying',
      nodeId: 'node-b',
    });
    await sync(id, 5, [status(a.id, 'live')], 'node-b');
    expect((await api<Restream>(op, 'GET', `/streams/${id}/restreams/${a.id}`)).body.status).toMatchObject({
      state: 'live',
      error: null,
      failures: 0,
    });
    // Another stream's destination cannot be written through this stream's path.
    const other = await stream();
    await sync(other, 9, [status(a.id, 'stopped', { error: 'hijack' })]);
    expect((await api<Restream>(op, 'GET', `/streams/${id}/restreams/${a.id}`)).body.status.state).toBe('live');
  });

  it('a live status nobody has refreshed for the TTL shows as stopped, naming the silent node', async () => {
    const id = await stream();
    const a = (
      await api<Restream>(op, 'POST', `/streams/${id}/restreams`, { url: 'rtmp://dest.example/live', streamKey: 'dest-key-123456' })
    ).body;
    await sync(id, 1, [status(a.id, 'live')], 'node-gone');
    await db
      .prepare('UPDATE restreams SET status_at = ? WHERE id = ?')
      .bind(Date.now() - RESTREAM_STATUS_TTL_MS - 1000, a.id)
      .run();
    const shown = (await api<Restream>(op, 'GET', `/streams/${id}/restreams/${a.id}`)).body.status;
    expect(shown.state).toBe('stopped');
    expect(shown.error).toMatch(/^no report from media node node-gone since \d{4}-/);
    // Failed is an outcome, not a claim about now: it stays shown with its error.
    await sync(id, 2, [status(a.id, 'failed', { error: 'gave up', failures: 10 })], 'node-gone');
    await db
      .prepare('UPDATE restreams SET status_at = ? WHERE id = ?')
      .bind(Date.now() - RESTREAM_STATUS_TTL_MS - 1000, a.id)
      .run();
    expect((await api<Restream>(op, 'GET', `/streams/${id}/restreams/${a.id}`)).body.status).toMatchObject({
      state: 'failed',
      error: 'gave up',
      failures: 10,
    });
  });

  it('every change moves the revision the node compares (enabling an enabled destination tries a failed one again)', async () => {
    const id = await stream();
    const a = (
      await api<Restream>(op, 'POST', `/streams/${id}/restreams`, { url: 'rtmp://dest.example/live', streamKey: 'dest-key-123456' })
    ).body;
    const revision = async () => (await sync(id, 1, [])).body.destinations[0]!.revision;
    const seen = [await revision()];
    for (const change of [{ enabled: true }, { enabled: true }, { name: 'again' }]) {
      expect((await api(op, 'PATCH', `/streams/${id}/restreams/${a.id}`, change)).status).toBe(200);
      seen.push(await revision());
    }
    expect(
      seen.every((r, i) => i === 0 || r > seen[i - 1]!),
      JSON.stringify(seen),
    ).toBe(true);
  });

  it('a destination sealed under another INGEST_SECRET is not handed out and says why', async () => {
    const id = await stream();
    const a = (
      await api<Restream>(op, 'POST', `/streams/${id}/restreams`, { url: 'rtmp://dest.example/live', streamKey: 'dest-key-123456' })
    ).body;
    // Swap in a sealed value of another row: the row binding (additional data) refuses it.
    const b = (await api<Restream>(op, 'POST', `/streams/${id}/restreams`, { url: 'rtmp://other.example/live', streamKey: 'other-key-99' }))
      .body;
    const sealedB = await db.prepare('SELECT secret FROM restreams WHERE id = ?').bind(b.id).first<string>('secret');
    await db.prepare('UPDATE restreams SET secret = ? WHERE id = ?').bind(sealedB, a.id).run();
    const r = await sync(id, 1, []);
    expect(r.body.destinations.map((d) => d.id)).toEqual([b.id]);
    const shown = (await api<Restream>(op, 'GET', `/streams/${id}/restreams/${a.id}`)).body.status;
    expect(shown.state).toBe('failed');
    expect(shown.error).toMatch(/cannot be decrypted/);
    // Changing only the key needs the stored URL, which cannot be read: both must be given.
    const patch = await api<{ error: { code: string } }>(op, 'PATCH', `/streams/${id}/restreams/${a.id}`, { streamKey: 'new-key-0000' });
    expect([patch.status, patch.body.error.code]).toEqual([409, 'secret_unreadable']);
    expect(
      (await api(op, 'PATCH', `/streams/${id}/restreams/${a.id}`, { url: 'rtmp://dest.example/live', streamKey: 'new-key-0000' })).status,
    ).toBe(200);
    expect((await sync(id, 1, [])).body.destinations.map((d) => d.id)).toEqual([a.id, b.id]);
  });
});
