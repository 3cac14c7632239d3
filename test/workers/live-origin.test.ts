// The origin inside workerd: catalog, signed ingest, the StreamState live model, blocking reloads
// and hinted parts, as a transcoder and an LL-HLS client use them.
import { env } from 'cloudflare:workers';
import { evictDurableObject, runDurableObjectAlarm } from 'cloudflare:test';
import { Parser } from 'm3u8-parser';
import { describe, expect, it } from 'vitest';
import { INGEST_PREFIX, MAX_PUSH_BYTES, pushPath, signIngestRequest } from '../../core/contracts/ingest-protocol.ts';
import {
  ADMIN,
  AUDIO_INIT,
  FakeRendition,
  authorize,
  bytes,
  createStream,
  expectOk,
  joinedParts,
  push,
  signed,
  worker,
} from './helpers.ts';

async function liveStream(settings: Record<string, unknown> = {}) {
  const stream = await createStream({
    ladder: [
      { name: 'v', kind: 'video', width: 640, height: 360, videoBitrate: 800_000 },
      { name: 'a', kind: 'audio', audioBitrate: 128_000 },
    ],
    ...settings,
  });
  const auth = await authorize(stream.streamKey);
  expect(auth.status).toBe(200);
  const lease = (await auth.json()) as { streamId: string; epoch: number; startMsn: number };
  const v = new FakeRendition(stream.id, lease.epoch, 'v', lease.startMsn);
  const a = new FakeRendition(stream.id, lease.epoch, 'a', lease.startMsn);
  expectOk(await v.init());
  expectOk(await a.init(AUDIO_INIT));
  return { stream, lease, v, a };
}

function parse(text: string) {
  const p = new Parser();
  p.push(text);
  p.end();
  return p.manifest as {
    mediaSequence: number;
    discontinuitySequence: number;
    endList?: boolean;
    segments: Array<{ uri: string; duration: number; discontinuity?: boolean; map?: { uri: string }; parts?: Array<{ uri: string }> }>;
    preloadSegment?: { preloadHints?: Array<{ type: string; uri: string }> };
    renditionReports?: Array<{ uri: string; lastMsn: number; lastPart: number }>;
    partInf?: { partTarget: number };
  };
}

describe('admin API', () => {
  it('refuses requests without the admin bearer token with a JSON 401', async () => {
    const res = await worker('/api/streams', { method: 'POST', body: '{}' });
    expect(res.status).toBe(401);
    expect(await res.json()).toEqual({ error: { code: 'unauthorized', message: expect.any(String) } });
    const forged = await worker('/api/streams', { headers: { authorization: 'Bearer test-admin-tokeX' } });
    expect(forged.status).toBe(401);
  });

  it('creates a stream with a key, RTMP ingest URL and HLS playback URL, and stores only the key hash', async () => {
    const s = await createStream({ title: 'launch' });
    expect(s.id).toMatch(/^st[a-z0-9]{14}$/);
    expect(s.streamKey).toMatch(/^sk_[A-Za-z0-9]{40}$/);
    expect(s.ingest.rtmp).toBe(`rtmp://127.0.0.1:1935/live/${s.streamKey}`);
    expect(s.playback.hls).toBe(`http://edge.test/live/${s.id}/index.m3u8`);
    const row = await env.DB.prepare('SELECT * FROM streams WHERE id = ?').bind(s.id).first<Record<string, string>>();
    expect(JSON.stringify(row)).not.toContain(s.streamKey);
    const got = await worker(`/api/streams/${s.id}`, { headers: ADMIN });
    expect(got.status).toBe(200);
    const body = (await got.json()) as { status: string; title: string; renditions: unknown[]; ingestSession: unknown };
    expect(body).toMatchObject({ status: 'idle', title: 'launch', ingestSession: null });
    // On the automatic ladder nothing is known to be published before the source is seen
    // (test/workers/ladder-presets.test.ts).
    expect(body.renditions).toEqual([]);
  });

  it('lists, rotates keys and deletes streams', async () => {
    const s = await createStream();
    const list = (await (await worker('/api/streams', { headers: ADMIN })).json()) as { streams: Array<{ id: string }> };
    expect(list.streams.map((x) => x.id)).toContain(s.id);
    const rotated = (await (await worker(`/api/streams/${s.id}/rotate-key`, { method: 'POST', headers: ADMIN })).json()) as {
      streamKey: string;
    };
    expect(rotated.streamKey).not.toBe(s.streamKey);
    expect((await authorize(s.streamKey)).status).toBe(403);
    expect((await authorize(rotated.streamKey)).status).toBe(200);
    expect((await worker(`/api/streams/${s.id}`, { method: 'DELETE', headers: ADMIN })).status).toBe(204);
    expect((await worker(`/api/streams/${s.id}`, { headers: ADMIN })).status).toBe(404);
    expect((await authorize(rotated.streamKey)).status).toBe(403);
  });

  it('refuses invalid settings with a 400 naming the field and creates nothing', async () => {
    const before = await env.DB.prepare('SELECT COUNT(*) AS n FROM streams').first<{ n: number }>();
    const res = await worker('/api/streams', { method: 'POST', headers: ADMIN, body: JSON.stringify({ partTarget: 5 }) });
    expect(res.status).toBe(400);
    expect(((await res.json()) as { error: { message: string } }).error.message).toContain('partTarget');
    const bad = await worker('/api/streams', { method: 'POST', headers: ADMIN, body: '{not json' });
    expect(bad.status).toBe(400);
    const after = await env.DB.prepare('SELECT COUNT(*) AS n FROM streams').first<{ n: number }>();
    expect(after!.n).toBe(before!.n);
  });
});

describe('signed ingest', () => {
  it('refuses unsigned, forged and replayed pushes with 401 and stores nothing', async () => {
    const { stream, lease } = await liveStream();
    const path = pushPath(stream.id, lease.epoch, 'v', `${lease.startMsn}.0.m4s`);
    const meta = JSON.stringify({ duration: 0.2, independent: true, programDateTime: Date.now() });
    const unsigned = await worker(path, { method: 'PUT', body: bytes('x'), headers: { 'x-edgelive-meta': meta } });
    expect(unsigned.status).toBe(401);
    const forged = await signed('PUT', path, bytes('x'), { 'x-edgelive-meta': meta }, 'not-the-secret');
    expect(forged.status).toBe(401);
    const old = await signIngestRequest('test-ingest-secret', 'PUT', path, bytes('x'), {
      headers: { 'x-edgelive-meta': meta },
      now: Date.now() - 5 * 60_000,
    });
    const replayed = await worker(path, { method: 'PUT', body: bytes('x'), headers: old });
    expect(replayed.status).toBe(401);
    // A signature over other bytes does not cover these.
    const sig = await signIngestRequest('test-ingest-secret', 'PUT', path, bytes('y'), { headers: { 'x-edgelive-meta': meta } });
    const swapped = await worker(path, { method: 'PUT', body: bytes('x'), headers: sig });
    expect(swapped.status).toBe(401);
    expect((await swapped.json()) as object).toEqual({ error: { code: 'bad_signature', message: 'signature mismatch' } });
    const listed = await env.MEDIA.list({ prefix: `live/${stream.id}/${lease.epoch}/v/` });
    expect(listed.objects.map((o) => o.key)).toEqual([`live/${stream.id}/${lease.epoch}/v/init.mp4`]);
  });

  it('refuses an oversized push with 413 before reading it', async () => {
    const { stream, lease } = await liveStream();
    const path = pushPath(stream.id, lease.epoch, 'v', `${lease.startMsn}.0.m4s`);
    const big = new Uint8Array(MAX_PUSH_BYTES + 1);
    const res = await signed('PUT', path, big, { 'x-edgelive-meta': '{}' });
    expect(res.status).toBe(413);
    expect(((await res.json()) as { error: { code: string } }).error.code).toBe('payload_too_large');
  });

  it('refuses a wrong stream key before anything is stored', async () => {
    const res = await authorize('sk_wrong');
    expect(res.status).toBe(403);
    expect(((await res.json()) as { error: { code: string } }).error.code).toBe('unknown_stream_key');
  });

  it('fences a stale epoch: 409 and nothing stored once another publisher takes the lease', async () => {
    const { stream, lease, v } = await liveStream();
    await v.segment();
    const again = (await (await authorize(stream.streamKey, 'node-b')).json()) as { epoch: number; startMsn: number };
    expect(again.epoch).toBe(lease.epoch + 1);
    expect(again.startMsn).toBe(lease.startMsn + 1);
    const stale = await v.nextPart();
    expect(stale.status).toBe(409);
    expect(((await stale.json()) as { error: { code: string } }).error.code).toBe('stale_epoch');
    expect(await env.MEDIA.head(`live/${stream.id}/${lease.epoch}/v/${v.msn}.0.m4s`)).toBeNull();
  });

  it('refuses out-of-order parts and accepts a retried part as a duplicate', async () => {
    const { v } = await liveStream();
    expectOk(await v.nextPart());
    v.part = 0;
    const dup = await v.nextPart();
    expect(dup.status).toBe(200);
    expect(await dup.json()).toEqual({ ok: true, duplicate: true });
    // Beyond the pipelining window (a little ahead is held: ingest-pipelining.test.ts).
    v.msn += 2;
    const ahead = await v.nextPart();
    expect(ahead.status).toBe(409);
    expect(((await ahead.json()) as { error: { code: string } }).error.code).toBe('out_of_order');
  });

  it('refuses malformed object names, metadata and epochs with 400', async () => {
    const { stream, lease } = await liveStream();
    expect((await push(stream.id, lease.epoch, 'v', 'evil.txt', {})).status).toBe(400);
    expect((await push(stream.id, lease.epoch, 'v', '1.0.m4s', { duration: -1 })).status).toBe(400);
    expect((await signed('PUT', `${INGEST_PREFIX}/${stream.id}/x/v/1.0.m4s`, bytes('x'), { 'x-edgelive-meta': '{}' })).status).toBe(400);
    expect((await push(stream.id, lease.epoch, 'nope', 'init.mp4', AUDIO_INIT)).status).toBe(404);
  });
});

describe('live playlists from StreamState', () => {
  it('serves the multivariant playlist with both renditions', async () => {
    const { stream, v, a } = await liveStream();
    await v.segment();
    await a.segment();
    const res = await worker(`/live/${stream.id}/index.m3u8`);
    expect(res.status).toBe(200);
    expect(res.headers.get('content-type')).toBe('application/vnd.apple.mpegurl');
    const text = await res.text();
    expect(text).toContain('CODECS="avc1.64001f,mp4a.40.2"');
    expect(text).toContain('RESOLUTION=1280x720');
    expect(text).toContain('URI="a/index.m3u8"');
    expect(text).toContain('v/index.m3u8');
  });

  it('lists parts, hint and rendition reports; MSNs start at 1', async () => {
    const { stream, v, a } = await liveStream();
    await v.segment();
    await a.segment();
    expectOk(await v.nextPart());
    expectOk(await v.nextPart());
    const m = parse(await (await worker(`/live/${stream.id}/v/index.m3u8`)).text());
    expect(m.mediaSequence).toBe(1);
    expect(m.segments).toHaveLength(1);
    expect(m.segments[0]!.uri).toBe('1/1.m4s');
    expect(m.segments[0]!.map?.uri).toBe('1/init.mp4');
    expect(m.preloadSegment?.preloadHints?.[0]).toMatchObject({ type: 'PART', uri: '1/2.2.m4s' });
    expect(m.renditionReports).toEqual([expect.objectContaining({ uri: '../a/index.m3u8', lastMsn: 1, lastPart: 4 })]);
  });

  it('BR: answers a blocking request as soon as the part is published, coalescing identical ones', async () => {
    const { stream, v } = await liveStream();
    await v.segment();
    const url = `/live/${stream.id}/v/index.m3u8?_HLS_msn=2&_HLS_part=0`;
    const held = [worker(url), worker(url)];
    await new Promise((r) => setTimeout(r, 50));
    expectOk(await v.nextPart());
    const [r1, r2] = await Promise.all(held);
    expect(r1!.status).toBe(200);
    expect(r2!.status).toBe(200);
    const text = await r1!.text();
    expect(text).toContain('URI="1/2.0.m4s"');
    expect(await r2!.text()).toBe(text);
  });

  it('BR-02/03/08: malformed or far-ahead directives get a JSON 400', async () => {
    const { stream, v } = await liveStream();
    await v.segment();
    for (const q of ['_HLS_part=1', '_HLS_msn=abc', '_HLS_msn=-1', '_HLS_msn=9', '_HLS_msn=2&_HLS_part=40', '_HLS_skip=maybe']) {
      const res = await worker(`/live/${stream.id}/v/index.m3u8?${q}`);
      expect(res.status, q).toBe(400);
      expect(((await res.json()) as { error: { code: string } }).error.code, q).toEqual(expect.any(String));
    }
  });

  it('BR-09: a held request is answered 503 after 3 × TD, never with the unchanged playlist', async () => {
    const { stream, v } = await liveStream();
    await v.segment();
    const t0 = Date.now();
    const res = await worker(`/live/${stream.id}/v/index.m3u8?_HLS_msn=2&_HLS_part=0`);
    expect(res.status).toBe(503);
    expect(Date.now() - t0).toBeGreaterThanOrEqual(2900);
  });

  it('PH-04: a request for the hinted part is held until the part exists', async () => {
    const { stream, lease, v } = await liveStream();
    await v.segment();
    const pending = worker(`/live/${stream.id}/v/${lease.epoch}/2.0.m4s`);
    await new Promise((r) => setTimeout(r, 50));
    expectOk(await v.nextPart());
    const res = await pending;
    expect(res.status).toBe(200);
    expect(res.headers.get('cache-control')).toContain('immutable');
    expect(new Uint8Array(await res.arrayBuffer())).toEqual(bytes(`${lease.epoch}/v/2.0.m4s`));
    const never = await worker(`/live/${stream.id}/v/${lease.epoch}/40.0.m4s`);
    expect(never.status).toBe(404);
  });

  it('a reconnecting publisher continues the sequence with a discontinuity and a new map', async () => {
    const { stream, v } = await liveStream();
    await v.segment();
    expectOk(await v.nextPart());
    expectOk(await v.nextPart());
    const again = (await (await authorize(stream.streamKey, 'node-b')).json()) as { epoch: number; startMsn: number };
    // The open segment of epoch 1 was closed from its two acknowledged parts.
    expect(again.startMsn).toBe(3);
    const v2 = new FakeRendition(stream.id, again.epoch, 'v', again.startMsn);
    expectOk(await v2.init());
    await v2.segment();
    const m = parse(await (await worker(`/live/${stream.id}/v/index.m3u8`)).text());
    expect(m.segments.map((s) => s.uri)).toEqual(['1/1.m4s', '1/2.m4s', '2/3.m4s']);
    expect(m.segments[1]!.duration).toBeCloseTo(0.4, 6);
    expect(m.segments[2]!.discontinuity).toBe(true);
    expect(m.segments[2]!.map?.uri).toBe('2/init.mp4');
    // The closed segment is served as its two acknowledged parts joined.
    const closed = await worker(`/live/${stream.id}/v/1/2.m4s`);
    expect(closed.status).toBe(200);
    expect(new Uint8Array(await closed.arrayBuffer())).toEqual(joinedParts(1, 'v', 2, 2));
  });

  it('keeps the live window across eviction of the Durable Object', async () => {
    const { stream, v } = await liveStream();
    await v.segment();
    await v.segment();
    // An open segment of three parts: its count comes back from its parts rows (segments.part_count
    // is written when it closes).
    for (let i = 0; i < 3; i++) expectOk(await v.nextPart());
    const before = await (await worker(`/live/${stream.id}/v/index.m3u8`)).text();
    await evictDurableObject(env.STREAM_STATE.getByName(stream.id));
    const after = await (await worker(`/live/${stream.id}/v/index.m3u8`)).text();
    expect(after).toBe(before);
    expectOk(await v.nextPart());
  });

  it('MP-10: after the grace period the playlist ends and held requests are answered', async () => {
    const { stream, v } = await liveStream();
    await v.segment();
    expectOk(await v.nextPart());
    const stub = env.STREAM_STATE.getByName(stream.id);
    expectOk(await signed('POST', `${INGEST_PREFIX}/${stream.id}/1/end`, null));
    const held = worker(`/live/${stream.id}/v/index.m3u8?_HLS_msn=2&_HLS_part=1`);
    await new Promise((r) => setTimeout(r, 50));
    // The grace period is measured from the last push; run the alarm once it is due.
    await new Promise((r) => setTimeout(r, 1100));
    await runDurableObjectAlarm(stub);
    const res = await held;
    expect(res.status).toBe(200);
    const m = parse(await res.text());
    expect(m.endList).toBe(true);
    expect(m.preloadSegment?.preloadHints ?? []).toHaveLength(0);
    expect(m.segments.at(-1)!.uri).toBe('1/2.m4s');
    const status = (await (await worker(`/api/streams/${stream.id}`, { headers: ADMIN })).json()) as { status: string };
    expect(status.status).toBe('ended');
  });
});
