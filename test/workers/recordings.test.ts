// Live-to-VOD inside workerd: every broadcast becomes a recording (a VOD playlist over the live
// objects, with a discontinuity where the publisher reconnected), clips cut to the part at both
// ends (also while live), thumbnails, and retention: expired recordings and their objects go,
// objects a playlist still references (a clip, the live window) stay.
import { env } from 'cloudflare:workers';
import { runDurableObjectAlarm } from 'cloudflare:test';
import { Parser } from 'm3u8-parser';
import { describe, expect, it } from 'vitest';
import { HEADER_META, INGEST_PREFIX, thumbnailPath } from '../../core/contracts/ingest-protocol.ts';
import { AUDIO_INIT, FakeRendition, TAKEOVER_ALLOWED, authorize, bytes, expectOk, joinedParts, signed, worker } from './helpers.ts';
import { api, operator, TWO_RUNG_LADDER } from './playback-fixtures.ts';

const op = operator('192.0.2.62');
const DAY = 86_400_000;

// eslint-disable-next-line @typescript-eslint/no-explicit-any
type Any = any;

function parse(t: string): Any {
  const p = new Parser();
  p.push(t);
  p.end();
  return p.manifest;
}

async function text(path: string, init?: RequestInit): Promise<string> {
  const res = await worker(path, init);
  const body = await res.text();
  expect(res.status, `${path}: ${body}`).toBe(200);
  return body;
}

async function lease(streamKey: string, nodeId = 'node-a') {
  const res = await authorize(streamKey, nodeId);
  expect(res.status).toBe(200);
  return (await res.json()) as { epoch: number; startMsn: number; timeOffset: number };
}

async function publisher(streamId: string, l: { epoch: number; startMsn: number }, pdt?: number) {
  const v = new FakeRendition(streamId, l.epoch, 'v', l.startMsn);
  const a = new FakeRendition(streamId, l.epoch, 'a', l.startMsn);
  if (pdt !== undefined) v.pdt = a.pdt = pdt;
  expectOk(await v.init());
  expectOk(await a.init(AUDIO_INIT));
  return [v, a] as const;
}

async function segments(rs: readonly FakeRendition[], n: number) {
  for (let i = 0; i < n; i++) for (const r of rs) await r.segment();
}

/** A publisher's goodbye, then the grace period (1 s in tests), then the DO's alarm ends the stream. */
async function end(streamId: string, epoch: number) {
  expectOk(await signed('POST', `${INGEST_PREFIX}/${streamId}/${epoch}/end`, null));
  await new Promise((r) => setTimeout(r, 1100));
  await runDurableObjectAlarm(env.STREAM_STATE.getByName(streamId));
}

async function createStream(settings: Record<string, unknown> = {}) {
  const created = await api<{ id: string; streamKey: string }>(op, 'POST', '/streams', {
    ladder: TWO_RUNG_LADDER,
    ...TAKEOVER_ALLOWED,
    ...settings,
  });
  expect(created.status).toBe(201);
  return created.body;
}

interface RecordingJson {
  id: string;
  status: string;
  duration: number;
  discontinuities: number;
  startedAt: string;
  endedAt: string | null;
  expiresAt: string | null;
  playback: { hls: string } | null;
}

async function recordings(streamId: string): Promise<RecordingJson[]> {
  const r = await api<{ recordings: RecordingJson[] }>(op, 'GET', `/streams/${streamId}/recordings`);
  expect(r.status).toBe(200);
  return r.body.recordings;
}

/** Three segments, a reconnection, two more: the recording of one broadcast with one discontinuity. */
async function recordedBroadcast(settings: Record<string, unknown> = {}) {
  const stream = await createStream(settings);
  const l1 = await lease(stream.streamKey);
  const [v, a] = await publisher(stream.id, l1);
  await segments([v, a], 3);
  const l2 = await lease(stream.streamKey, 'node-b');
  const p2 = await publisher(stream.id, l2, v.pdt + 2000);
  await segments(p2, 2);
  return { stream, l1, l2, p2 };
}

describe('recordings (live-to-VOD)', { timeout: 30_000 }, () => {
  it('a broadcast is recorded while live and becomes a VOD when it ends, listed under its stream', async () => {
    const { stream, l1, l2 } = await recordedBroadcast();
    // One timeline per broadcast: the second epoch's media continue where the first's ended (3 s).
    expect([l1.timeOffset, l2.timeOffset]).toEqual([0, 3]);
    const [live] = await recordings(stream.id);
    expect(live).toMatchObject({ status: 'recording', endedAt: null, playback: null });
    const early = await worker(`/vod/${live!.id}/index.m3u8`);
    expect(early.status).toBe(409);
    expect(((await early.json()) as { error: { code: string } }).error.code).toBe('recording_in_progress');
    await end(stream.id, l2.epoch);
    const [rec] = await recordings(stream.id);
    expect(rec).toMatchObject({ id: live!.id, status: 'ready', duration: 5, discontinuities: 1 });
    expect(rec!.playback!.hls).toBe(`http://edge.test/vod/${rec!.id}/index.m3u8`);
    expect(Date.parse(rec!.expiresAt!) - Date.parse(rec!.endedAt!)).toBe(7 * DAY);
    const one = await api<RecordingJson>(op, 'GET', `/recordings/${rec!.id}`);
    expect(one.body.id).toBe(rec!.id);
    expect((await api(op, 'GET', '/recordings/rcnope')).status).toBe(404);
  });

  it('MP-09: the recording plays as EXT-X-PLAYLIST-TYPE:VOD with ENDLIST, a discontinuity at the reconnection', async () => {
    const { stream, l1, l2 } = await recordedBroadcast();
    await end(stream.id, l2.epoch);
    const [rec] = await recordings(stream.id);
    const mv = await text(`/vod/${rec!.id}/index.m3u8`);
    expect(mv).toContain('#EXT-X-STREAM-INF:');
    expect(mv).toContain('v/index.m3u8');
    expect(mv).toContain('URI="a/index.m3u8"');
    const t = await text(`/vod/${rec!.id}/v/index.m3u8`);
    expect(t).toContain('#EXT-X-PLAYLIST-TYPE:VOD\n');
    expect(t.endsWith('#EXT-X-ENDLIST\n')).toBe(true);
    for (const tag of ['#EXT-X-PART', '#EXT-X-PRELOAD-HINT', '#EXT-X-SKIP', '#EXT-X-SERVER-CONTROL', '#EXT-X-RENDITION-REPORT']) {
      expect(t).not.toContain(tag);
    }
    const m = parse(t);
    expect(m.playlistType).toBe('VOD');
    expect(m.endList).toBe(true);
    expect(m.segments.map((s: Any) => s.uri)).toEqual([
      `${l1.epoch}/1.m4s`,
      `${l1.epoch}/2.m4s`,
      `${l1.epoch}/3.m4s`,
      `${l2.epoch}/4.m4s`,
      `${l2.epoch}/5.m4s`,
    ]);
    expect(m.segments.map((s: Any) => Boolean(s.discontinuity))).toEqual([false, false, false, true, false]);
    expect(m.segments[3].map.uri).toBe(`${l2.epoch}/init.mp4`);
    expect(m.segments.reduce((n: number, s: Any) => n + s.duration, 0)).toBeCloseTo(5, 6);
    // Its media are the live objects, byte for byte.
    const seg = await worker(`/vod/${rec!.id}/v/${l2.epoch}/4.m4s`);
    expect(seg.status).toBe(200);
    const live = await worker(`/live/${stream.id}/v/${l2.epoch}/4.m4s`);
    const vodBytes = new Uint8Array(await seg.arrayBuffer());
    expect(vodBytes).toEqual(new Uint8Array(await live.arrayBuffer()));
    expect(vodBytes).toEqual(joinedParts(l2.epoch, 'v', 4, vodBytes.byteLength / 64));
    // Nothing outside the recording, and no parts (a VOD lists none).
    expect((await worker(`/vod/${rec!.id}/v/${l2.epoch}/6.m4s`)).status).toBe(404);
    expect((await worker(`/vod/${rec!.id}/v/${l2.epoch}/4.0.m4s`)).status).toBe(404);
    expect((await worker(`/vod/${rec!.id}/nope/index.m3u8`)).status).toBe(404);
    expect((await worker('/vod/rc0000000000000000/index.m3u8')).status).toBe(404);
  });

  it('a publisher back after the end starts a second recording', async () => {
    const { stream, l2 } = await recordedBroadcast();
    await end(stream.id, l2.epoch);
    const l3 = await lease(stream.streamKey);
    await segments(await publisher(stream.id, l3), 2);
    await end(stream.id, l3.epoch);
    const list = await recordings(stream.id);
    expect(list.map((r) => [r.status, r.duration, r.discontinuities])).toEqual([
      ['ready', 2, 0],
      ['ready', 5, 1],
    ]);
    const t = await text(`/vod/${list[0]!.id}/v/index.m3u8`);
    expect(parse(t).segments.map((s: Any) => s.uri)).toEqual([`${l3.epoch}/6.m4s`, `${l3.epoch}/7.m4s`]);
    expect(t).not.toContain('#EXT-X-DISCONTINUITY\n');
  });
});

describe('clips', { timeout: 30_000 }, () => {
  it('cuts a clip of a live stream to the part at both ends: EXT-X-START at the start part, a byte range to the end part', async () => {
    const stream = await createStream();
    const l = await lease(stream.streamKey);
    const [v, a] = await publisher(stream.id, l);
    const t0 = v.pdt;
    await segments([v, a], 6);
    for (const r of [v, a]) for (let i = 0; i < 3; i++) expectOk(await r.nextPart());
    // The live edge is 6.6 s in (end of part 7.2). From 4.3 s back (2.3 s: segment 3, part 1)
    // to 1.1 s back (5.5 s: segment 6, part 2); the end is in a complete segment.
    const created = await api<Any>(op, 'POST', `/streams/${stream.id}/clips`, { start: 4.3, end: 1.1, title: 'goal' });
    expect(created.status).toBe(201);
    const clip = created.body;
    expect(clip).toMatchObject({ status: 'ready', title: 'goal', export: null });
    expect(clip.id).toMatch(/^cl[a-z0-9]{16}$/);
    expect(clip.duration).toBeCloseTo(3.4, 6); // 2.2 s → 5.6 s
    expect(Date.parse(clip.start)).toBe(t0 + 2200);
    expect(Date.parse(clip.end)).toBe(t0 + 5600);
    const got = await api<Any>(op, 'GET', `/clips/${clip.id}`);
    expect(got.body).toEqual(clip);
    const t = await text(`/vod/${clip.id}/v/index.m3u8`);
    expect(t).toContain('#EXT-X-PLAYLIST-TYPE:VOD\n');
    expect(t).toContain('#EXT-X-START:TIME-OFFSET=0.2,PRECISE=YES\n');
    const m = parse(t);
    expect(m.segments.map((s: Any) => s.uri)).toEqual([`${l.epoch}/3.m4s`, `${l.epoch}/4.m4s`, `${l.epoch}/5.m4s`, `${l.epoch}/6.m4s`]);
    const last = m.segments.at(-1);
    expect(last.duration).toBeCloseTo(0.6, 6);
    expect(last.byterange).toEqual({ length: 192, offset: 0 });
    // Players fetch that byte range of the segment (its parts joined): its first three parts.
    const ranged = await worker(`/vod/${clip.id}/v/${l.epoch}/6.m4s`, { headers: { range: 'bytes=0-191' } });
    expect(ranged.status).toBe(206);
    expect(ranged.headers.get('content-range')).toBe('bytes 0-191/320');
    expect(new Uint8Array(await ranged.arrayBuffer())).toEqual(joinedParts(l.epoch, 'v', 6, 3));
    const list = await api<{ clips: Array<{ id: string }> }>(op, 'GET', `/streams/${stream.id}/clips`);
    expect(list.body.clips.map((c) => c.id)).toEqual([clip.id]);
  });

  it('a clip ending at the live edge waits for the open segment to close', async () => {
    const stream = await createStream();
    const l = await lease(stream.streamKey);
    const [v, a] = await publisher(stream.id, l);
    await segments([v, a], 3);
    for (const r of [v, a]) for (let i = 0; i < 2; i++) expectOk(await r.nextPart());
    const pending = api<Any>(op, 'POST', `/streams/${stream.id}/clips`, { start: 2, end: 0 });
    await new Promise((r) => setTimeout(r, 100));
    for (const r of [v, a]) {
      for (let i = 0; i < 3; i++) expectOk(await r.nextPart());
      expectOk(await r.closeSegment());
    }
    const created = await pending;
    expect(created.status).toBe(201);
    // 1.4 s → 3.4 s: from segment 2's part 2 to segment 4's part 1 (a byte range).
    expect(created.body.duration).toBeCloseTo(2, 6);
    const m = parse(await text(`/vod/${created.body.id}/v/index.m3u8`));
    expect(m.segments.map((s: Any) => s.uri)).toEqual([`${l.epoch}/2.m4s`, `${l.epoch}/3.m4s`, `${l.epoch}/4.m4s`]);
    expect(m.segments.at(-1).byterange).toEqual({ length: 128, offset: 0 });
  });

  it('a clip starting in the gap of a reconnection (a publisher that took seconds to come back) starts at the next segment', async () => {
    const stream = await createStream();
    const l1 = await lease(stream.streamKey);
    const [v, a] = await publisher(stream.id, l1);
    await segments([v, a], 3);
    const gapStart = v.pdt;
    // The publisher is back 10 s of wall clock later (a failover that ICE took that long to notice).
    const l2 = await lease(stream.streamKey, 'node-b');
    const p2 = await publisher(stream.id, l2, gapStart + 10_000);
    await segments(p2, 3);
    const iso = (ms: number) => new Date(ms).toISOString();
    const clip = await api<Any>(op, 'POST', `/streams/${stream.id}/clips`, { start: iso(gapStart + 5000), end: iso(gapStart + 12_000) });
    expect(clip.status, JSON.stringify(clip.body)).toBe(201);
    expect(clip.body).toMatchObject({ start: iso(gapStart + 10_000), end: iso(gapStart + 12_000), duration: 2 });
    const m = parse(await text(`/vod/${clip.body.id}/v/index.m3u8`));
    expect(m.segments.map((s: Any) => s.uri)).toEqual([`${l2.epoch}/${l2.startMsn}.m4s`, `${l2.epoch}/${l2.startMsn + 1}.m4s`]);
  });

  it('takes program date times, and refuses bad, too long or out-of-range requests', async () => {
    const stream = await createStream();
    const l = await lease(stream.streamKey);
    const [v, a] = await publisher(stream.id, l);
    const t0 = v.pdt;
    await segments([v, a], 4);
    const iso = (ms: number) => new Date(ms).toISOString();
    const ok = await api<Any>(op, 'POST', `/streams/${stream.id}/clips`, { start: iso(t0 + 1000), end: iso(t0 + 3000) });
    expect(ok.status).toBe(201);
    expect(ok.body).toMatchObject({ start: iso(t0 + 1000), end: iso(t0 + 3000), duration: 2 });
    const bad = async (body: unknown, status: number, code: string) => {
      const r = await api<{ error: { code: string } }>(op, 'POST', `/streams/${stream.id}/clips`, body);
      expect(r.status, JSON.stringify(body)).toBe(status);
      expect(r.body.error.code).toBe(code);
    };
    await bad({ start: 'yesterday' }, 400, 'invalid_request');
    await bad({ start: -1 }, 400, 'invalid_request');
    await bad({ start: 1, end: 2 }, 400, 'invalid_clip_range');
    await bad({ start: 301, end: 0 }, 400, 'clip_too_long');
    await bad({ start: 2, export: { renditions: ['nope'] } }, 400, 'invalid_export');
    await bad({ start: iso(t0 - 60_000), end: iso(t0 - 30_000) }, 422, 'clip_out_of_range');
    expect((await api(op, 'POST', '/streams/stnope0000000000/clips', { start: 1 })).status).toBe(404);
    expect((await api(op, 'GET', '/clips/clnope')).status).toBe(404);
  });
});

describe('retention', { timeout: 30_000 }, () => {
  it('expired recordings and their objects go; what a clip references stays', async () => {
    const { stream, l1, l2 } = await recordedBroadcast({ retentionDays: 1 });
    // A clip of segments 2–3 (epoch 1) while live: the edge is at 7 s (a 2 s reconnection gap).
    const clip = await api<Any>(op, 'POST', `/streams/${stream.id}/clips`, { start: 5.5, end: 4.5, retentionDays: 30 });
    expect(clip.status).toBe(201);
    await end(stream.id, l2.epoch);
    const [rec] = await recordings(stream.id);
    const stub = env.STREAM_STATE.getByName(stream.id);
    // A segment is no object of its own (its parts are): what is kept or deleted is parts.
    const keys = async () => (await env.MEDIA.list({ prefix: `live/${stream.id}/` })).objects.map((o) => o.key).sort();
    const before = await keys();
    expect(before).toContain(`live/${stream.id}/${l1.epoch}/v/1.0.m4s`);
    // Day 2: the recording expires (410), its objects stay for the grace period.
    const ended = Date.parse(rec!.endedAt!);
    await stub.sweep(ended + DAY + 1000);
    expect((await recordings(stream.id))[0]!.status).toBe('expired');
    expect(await keys()).toEqual(before);
    // After the grace period: everything of the recording goes but what the clip lists.
    await stub.sweep(ended + DAY + 10 * 60_000);
    const after = await keys();
    expect(after).toContain(`live/${stream.id}/${l1.epoch}/v/2.0.m4s`);
    expect(after).toContain(`live/${stream.id}/${l1.epoch}/v/3.4.m4s`);
    expect(after).toContain(`live/${stream.id}/${l1.epoch}/a/3.0.m4s`);
    expect(after).toContain(`live/${stream.id}/${l1.epoch}/v/init.mp4`);
    expect(after).not.toContain(`live/${stream.id}/${l1.epoch}/v/1.0.m4s`);
    expect(after).not.toContain(`live/${stream.id}/${l1.epoch}/v/1.0.m4s`);
    expect(after.some((k) => k.includes(`/${l2.epoch}/`))).toBe(false);
    // The ended live playlist listed those segments: it is gone rather than dangling.
    expect((await worker(`/live/${stream.id}/v/index.m3u8`)).status).toBe(404);
    // The clip still plays, every object it lists is there.
    const t = await text(`/vod/${clip.body.id}/v/index.m3u8`);
    for (const s of parse(t).segments) expect((await worker(`/vod/${clip.body.id}/v/${s.uri}`)).status).toBe(200);
    // The clip expires 30 days after it was made; then its objects go too.
    await stub.sweep(Date.parse(clip.body.expiresAt) + 10 * 60_000);
    expect(await keys()).toEqual([]);
    expect((await api<Any>(op, 'GET', `/clips/${clip.body.id}`)).body.status).toBe('expired');
  });

  it('never deletes what the live window lists, nor what left it recently (PART-13)', async () => {
    const stream = await createStream({ retentionDays: 0, dvrWindowSeconds: 0 });
    const l = await lease(stream.streamKey);
    const p = await publisher(stream.id, l);
    const t0 = p[0].pdt;
    await segments(p, 10);
    const stub = env.STREAM_STATE.getByName(stream.id);
    // The fake publisher's media are dated 2026-11-21T12:00Z; sweep as of a minute later.
    await stub.sweep(t0 + 60_000);
    const keys = (await env.MEDIA.list({ prefix: `live/${stream.id}/${l.epoch}/v/` })).objects.map((o) => o.key);
    expect(keys).toContain(`live/${stream.id}/${l.epoch}/v/1.0.m4s`);
    // Much later (the window is 7 segments): what slid out of it long ago goes, the window stays.
    await stub.sweep(t0 + 3600_000);
    const later = (await env.MEDIA.list({ prefix: `live/${stream.id}/${l.epoch}/v/` })).objects.map((o) => o.key);
    expect(later).not.toContain(`live/${stream.id}/${l.epoch}/v/1.0.m4s`);
    expect(later).toContain(`live/${stream.id}/${l.epoch}/v/4.0.m4s`);
    expect(later).toContain(`live/${stream.id}/${l.epoch}/v/10.0.m4s`);
    expect(later).toContain(`live/${stream.id}/${l.epoch}/v/init.mp4`);
    const m = parse(await text(`/live/${stream.id}/v/index.m3u8`));
    for (const s of m.segments) expect((await worker(`/live/${stream.id}/v/${s.uri}`)).status).toBe(200);
  });
});

describe('thumbnails', { timeout: 30_000 }, () => {
  async function pushThumbnail(streamId: string, epoch: number, seq: number, pdt: number) {
    const body = bytes(`jpeg ${seq}`);
    return signed('PUT', thumbnailPath(streamId, epoch, seq), body, { [HEADER_META]: JSON.stringify({ programDateTime: pdt }) });
  }

  it('serves the latest thumbnail, and ?t= the one shown at that moment within the DVR window', async () => {
    const stream = await createStream();
    const l = await lease(stream.streamKey);
    const p = await publisher(stream.id, l);
    const t0 = p[0].pdt;
    await segments(p, 6);
    for (let seq = 0; seq < 3; seq++) expect((await pushThumbnail(stream.id, l.epoch, seq, t0 + seq * 2000)).status).toBe(201);
    expect((await pushThumbnail(stream.id, l.epoch, 2, t0 + 4000)).status).toBe(200); // a retry
    const latest = await worker(`/live/${stream.id}/thumbnail.jpg`);
    expect(latest.status).toBe(200);
    expect(latest.headers.get('content-type')).toBe('image/jpeg');
    expect(new Uint8Array(await latest.arrayBuffer())).toEqual(bytes('jpeg 2'));
    const at = await worker(`/live/${stream.id}/thumbnail.jpg?t=${new Date(t0 + 3000).toISOString()}`);
    expect(new Uint8Array(await at.arrayBuffer())).toEqual(bytes('jpeg 1'));
    expect(at.headers.get('x-edgelive-program-date-time')).toBe(new Date(t0 + 2000).toISOString());
    const ms = await worker(`/live/${stream.id}/thumbnail.jpg?t=${t0 + 500}`);
    expect(new Uint8Array(await ms.arrayBuffer())).toEqual(bytes('jpeg 0'));
    expect((await worker(`/live/${stream.id}/thumbnail.jpg?t=${new Date(t0 - 60_000).toISOString()}`)).status).toBe(404);
    expect((await worker(`/live/${stream.id}/thumbnail.jpg?t=soon`)).status).toBe(400);
    // Fencing: an old epoch's thumbnails are refused.
    await lease(stream.streamKey, 'node-b');
    expect((await pushThumbnail(stream.id, l.epoch, 3, t0 + 6000)).status).toBe(409);
  });
});
