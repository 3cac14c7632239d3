// Clip MP4 export inside workerd: a clip asked for with `export` is made into one MP4 file per
// rendition by the export queue's job (the real consumer, from R2 objects the ingest API stored)
// and downloaded from /vod/{clip}/clip.mp4 as an attachment, with Range; more renditions can be
// asked for later; the file is the same whether stored in one put or many multipart parts; bad
// requests get 4xx JSON errors; lost media fail the export; retention deletes the files.
import { env } from 'cloudflare:workers';
import { describe, expect, it } from 'vitest';
import type { Env } from '../../workers/env.ts';
import { exportClip } from '../../workers/exports/clip-export.ts';
import { AUDIO_INIT, TAKEOVER_ALLOWED, authorize, expectOk, push, VIDEO_INIT, worker } from './helpers.ts';
import { api, operator, TWO_RUNG_LADDER } from './playback-fixtures.ts';
import { fragment, initSegment, readMp4, samplePayload, type SampleSpec } from '../support/fmp4-fixtures.ts';

const op = operator('192.0.2.71');
const VIDEO_TS = 15360;
const AUDIO_TS = 48000;
const V = 0x76;
const A = 0x61;

// eslint-disable-next-line @typescript-eslint/no-explicit-any
type Any = any;

/**
 * A publisher of one rendition that pushes real fMP4: 0.2 s parts (6 video frames of 512 ticks,
 * or 10 audio frames of 960 samples), five to a segment, each sample tagged with its decode time.
 */
class MediaRendition {
  readonly streamId: string;
  readonly epoch: number;
  readonly name: string;
  readonly kind: 'video' | 'audio';
  readonly frameSize: number;
  msn: number;
  part = 0;
  pdt = Date.UTC(2026, 10, 21, 12, 0, 0);
  /** Seconds of media pushed (the tfdt timeline). */
  time = 0;
  constructor(streamId: string, epoch: number, name: string, kind: 'video' | 'audio', startMsn: number, frameSize = 200) {
    this.streamId = streamId;
    this.epoch = epoch;
    this.name = name;
    this.kind = kind;
    this.msn = startMsn;
    this.frameSize = frameSize;
  }
  get timescale() {
    return this.kind === 'video' ? VIDEO_TS : AUDIO_TS;
  }
  init() {
    return push(
      this.streamId,
      this.epoch,
      this.name,
      'init.mp4',
      this.kind === 'video' ? VIDEO_INIT : AUDIO_INIT,
      initSegment({ kind: this.kind, timescale: this.timescale }),
    );
  }
  async nextPart() {
    const samples: SampleSpec[] =
      this.kind === 'video'
        ? Array.from({ length: 6 }, (_, i) => ({ duration: 512, size: this.frameSize + i, sync: this.part === 0 && i === 0 }))
        : Array.from({ length: 10 }, () => ({ duration: 960, size: 30, sync: true }));
    const bytes = fragment({
      sequence: this.msn * 10 + this.part,
      decodeTime: Math.round(this.time * this.timescale),
      samples,
      tag: this.kind === 'video' ? V : A,
    });
    const res = await push(
      this.streamId,
      this.epoch,
      this.name,
      `${this.msn}.${this.part}.m4s`,
      { duration: 0.2, independent: this.part === 0, programDateTime: this.pdt + this.part * 200 },
      bytes,
    );
    this.part++;
    this.time = Math.round((this.time + 0.2) * 1e6) / 1e6;
    return res;
  }
  async closeSegment() {
    const res = await push(
      this.streamId,
      this.epoch,
      this.name,
      `${this.msn}.m4s`,
      { duration: Math.round(this.part * 0.2 * 1e6) / 1e6, partCount: this.part, programDateTime: this.pdt },
      new Uint8Array(0),
    );
    this.pdt += this.part * 200;
    this.msn++;
    this.part = 0;
    return res;
  }
  async segment() {
    for (let i = 0; i < 5; i++) expectOk(await this.nextPart());
    expectOk(await this.closeSegment());
  }
}

async function liveMedia(videoFrameSize?: number) {
  const created = await api<{ id: string; streamKey: string }>(op, 'POST', '/streams', { ladder: TWO_RUNG_LADDER, ...TAKEOVER_ALLOWED });
  expect(created.status).toBe(201);
  const stream = created.body;
  const auth = await authorize(stream.streamKey);
  const lease = (await auth.json()) as { epoch: number; startMsn: number };
  const v = new MediaRendition(stream.id, lease.epoch, 'v', 'video', lease.startMsn, videoFrameSize);
  const a = new MediaRendition(stream.id, lease.epoch, 'a', 'audio', lease.startMsn);
  expectOk(await v.init());
  expectOk(await a.init());
  for (let i = 0; i < 6; i++) for (const r of [v, a]) await r.segment();
  for (const r of [v, a]) for (let i = 0; i < 3; i++) expectOk(await r.nextPart());
  return { stream, epoch: lease.epoch };
}

async function until<T>(what: string, probe: () => Promise<T | null | undefined | false>, timeoutMs = 15_000): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const v = await probe();
    if (v) return v;
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 100));
  }
}

async function exportDone(clipId: string): Promise<Any> {
  return until(`the export of ${clipId}`, async () => {
    const r = await api<Any>(op, 'GET', `/clips/${clipId}`);
    return r.body.export && r.body.export.status !== 'pending' && r.body.export.status !== 'processing' ? r.body : null;
  });
}

async function download(path: string, init?: RequestInit): Promise<{ res: Response; bytes: Uint8Array }> {
  const res = await worker(path, init);
  return { res, bytes: new Uint8Array(await res.arrayBuffer()) };
}

async function expectError(res: Response, status: number, code: string) {
  const body = (await res.json()) as { error: { code: string; message: string } };
  expect({ status: res.status, code: body.error.code }).toEqual({ status, code });
  expect(body.error.message).toEqual(expect.any(String));
}

describe('clip MP4 export', { timeout: 60_000 }, () => {
  it('export: true makes one MP4 of the tallest video rendition with the audio, cut to the clip, downloaded as an attachment', async () => {
    const { stream } = await liveMedia();
    // The live edge is 6.6 s in. From 2.3 s (segment 3, part 1) to 5.5 s (segment 6, part 2).
    const created = await api<Any>(op, 'POST', `/streams/${stream.id}/clips`, { start: 4.3, end: 1.1, title: 'goal', export: true });
    expect(created.status).toBe(201);
    expect(created.body.export).toEqual({
      status: 'pending',
      progress: 0,
      url: null,
      error: null,
      renditions: [{ rendition: 'v', url: null }],
    });
    const clip = await exportDone(created.body.id);
    expect(clip.export).toEqual({
      status: 'ready',
      progress: 1,
      url: `http://edge.test/vod/${clip.id}/clip.mp4`,
      error: null,
      renditions: [{ rendition: 'v', url: `http://edge.test/vod/${clip.id}/v/clip.mp4` }],
    });

    const { res, bytes } = await download(`/vod/${clip.id}/clip.mp4`);
    expect(res.status).toBe(200);
    expect(res.headers.get('content-type')).toBe('video/mp4');
    expect(res.headers.get('content-disposition')).toBe('attachment; filename="goal-v.mp4"');
    expect(res.headers.get('content-length')).toBe(String(bytes.byteLength));
    expect(res.headers.get('accept-ranges')).toBe('bytes');
    expect(res.headers.get('etag')).toMatch(/^"/);
    const mp4 = readMp4(bytes);
    expect(mp4.topLevel).toEqual(['ftyp', 'mdat', 'moov']);
    expect(mp4.movieDuration).toBe(3400);
    const [video, audio] = mp4.tracks;
    expect([video!.handler, audio!.handler]).toEqual(['vide', 'soun']);
    // Media from segment 3's keyframe (2 s) to the end of segment 6's part 2 (5.6 s); shown from 2.2 s.
    expect(video!.samples).toHaveLength(3 * 30 + 18);
    expect(audio!.samples).toHaveLength(3 * 50 + 30);
    expect(video!.edits).toEqual([{ duration: 3400, mediaTime: 0.2 * VIDEO_TS }]);
    expect(audio!.edits).toEqual([{ duration: 3400, mediaTime: 0.2 * AUDIO_TS }]);
    // Every sample is the published one with that decode time.
    for (const [track, tag, ts] of [
      [video!, V, VIDEO_TS],
      [audio!, A, AUDIO_TS],
    ] as const) {
      for (const s of track.samples)
        expect(bytes.subarray(s.offset, s.offset + s.size)).toEqual(samplePayload(tag, BigInt(2 * ts + s.dts), s.size));
    }
    // Range requests (resumed downloads) keep the attachment header.
    const ranged = await download(`/vod/${clip.id}/v/clip.mp4`, { headers: { range: 'bytes=4-11' } });
    expect(ranged.res.status).toBe(206);
    expect(ranged.res.headers.get('content-range')).toBe(`bytes 4-11/${bytes.byteLength}`);
    expect(ranged.res.headers.get('content-disposition')).toBe('attachment; filename="goal-v.mp4"');
    expect(new TextDecoder().decode(ranged.bytes)).toBe('ftypisom');
  });

  it('more renditions later: the audio alone as an .m4a, the default download unchanged; asking again changes nothing', async () => {
    const { stream } = await liveMedia();
    const created = await api<Any>(op, 'POST', `/streams/${stream.id}/clips`, { start: 4, end: 2, export: { renditions: ['v'] } });
    const clip = await exportDone(created.body.id);
    const before = await download(`/vod/${clip.id}/clip.mp4`);
    const more = await api<Any>(op, 'POST', `/clips/${clip.id}/export`, { renditions: ['a'] });
    expect(more.status).toBe(202);
    expect(more.body.export).toMatchObject({ status: 'pending', renditions: [{ rendition: 'v' }, { rendition: 'a' }] });
    // While the audio is made, the video (already there) still downloads.
    expect((await worker(`/vod/${clip.id}/v/clip.mp4`, { method: 'HEAD' })).status).toBe(200);
    const done = await exportDone(clip.id);
    expect(done.export.status).toBe('ready');
    const m4a = await download(`/vod/${clip.id}/a/clip.mp4`);
    expect(m4a.res.headers.get('content-type')).toBe('audio/mp4');
    expect(m4a.res.headers.get('content-disposition')).toBe(`attachment; filename="${clip.id}-a.m4a"`);
    const audioOnly = readMp4(m4a.bytes);
    expect(audioOnly.tracks.map((t) => t.handler)).toEqual(['soun']);
    expect(audioOnly.movieDuration).toBe(2000);
    expect((await download(`/vod/${clip.id}/clip.mp4`)).bytes).toEqual(before.bytes);
    const again = await api<Any>(op, 'POST', `/clips/${clip.id}/export`, { renditions: ['a', 'v'] });
    expect(again.status).toBe(200);
    expect(again.body.export.status).toBe('ready');
  });

  it('the file is byte for byte the same in one put or in a multipart upload', async () => {
    // 40 KB frames: a 4.5 s clip is about 6 MB, more than R2's smallest part (5 MiB).
    const { stream } = await liveMedia(40_000);
    const created = await api<Any>(op, 'POST', `/streams/${stream.id}/clips`, { start: 5, end: 0.5, export: true });
    const clip = await exportDone(created.body.id);
    const key = `exports/${clip.id}/v.mp4`;
    const single = await env.MEDIA.get(key);
    const whole = new Uint8Array(await single!.arrayBuffer());
    expect(whole.byteLength).toBeGreaterThan(5 * 1024 * 1024);
    // Made again by the job with 5 MiB parts instead of 8: a first part (patched last) and the rest.
    await env.MEDIA.delete(key);
    await env.DB.prepare("UPDATE clips SET export_status = 'pending' WHERE id = ?").bind(clip.id).run();
    await exportClip(env as unknown as Env, clip.id, { partSize: 5 * 1024 * 1024 });
    const parts = await env.MEDIA.get(key);
    expect(parts!.etag).toMatch(/-2$/); // a multipart object's ETag counts its parts
    expect(new Uint8Array(await parts!.arrayBuffer())).toEqual(whole);
    expect((await api<Any>(op, 'GET', `/clips/${clip.id}`)).body.export.status).toBe('ready');
  });

  it('progress: the export says how far its job has come, from 0 to 1 across its files, never backwards', async () => {
    const { stream } = await liveMedia();
    const created = await api<Any>(op, 'POST', `/streams/${stream.id}/clips`, { start: 5, end: 0.5 });
    const id = created.body.id as string;
    // Asked for as the API does, but run here (not by the queue) with a progress write per segment.
    await env.DB.prepare(
      "UPDATE clips SET export_status = 'pending', export_key = ?, export_renditions = ?, export_progress = 0 WHERE id = ?",
    )
      .bind(`exports/${id}/`, JSON.stringify(['v', 'a']), id)
      .run();
    const seen: number[] = [];
    let done = false;
    const job = exportClip(env as unknown as Env, id, { progressIntervalMs: 0 }).finally(() => (done = true));
    while (!done) {
      const r = await api<Any>(op, 'GET', `/clips/${id}`);
      if (r.body.export.status === 'processing') seen.push(r.body.export.progress);
    }
    await job;
    const after = await api<Any>(op, 'GET', `/clips/${id}`);
    expect(after.body.export).toMatchObject({ status: 'ready', progress: 1 });
    expect(seen.length).toBeGreaterThan(2);
    for (let i = 1; i < seen.length; i++) expect(seen[i]!).toBeGreaterThanOrEqual(seen[i - 1]!);
    // Some reading inside the first file, some inside the second (the first done: past one half).
    expect(seen.some((p) => p > 0 && p < 0.5)).toBe(true);
    expect(seen.some((p) => p >= 0.5 && p < 1)).toBe(true);
  });

  it('refuses bad export requests with 4xx JSON errors, and says why a download is not there', async () => {
    const { stream } = await liveMedia();
    const bad = async (body: unknown, status: number, code: string) => {
      const r = await api<{ error: { code: string } }>(op, 'POST', `/streams/${stream.id}/clips`, body);
      expect({ status: r.status, code: r.body.error.code }, JSON.stringify(body)).toEqual({ status, code });
    };
    await bad({ start: 2, export: 'yes' }, 400, 'invalid_request');
    await bad({ start: 2, export: { renditions: [] } }, 400, 'invalid_request');
    await bad({ start: 2, export: { renditions: ['../x'] } }, 400, 'invalid_request');
    await bad({ start: 2, export: { format: 'webm' } }, 400, 'invalid_request');
    await bad({ start: 2, export: { renditions: ['1080p'] } }, 400, 'invalid_export');
    // Nothing was cut by the refused requests.
    expect((await api<{ clips: unknown[] }>(op, 'GET', `/streams/${stream.id}/clips`)).body.clips).toEqual([]);

    const plain = await api<Any>(op, 'POST', `/streams/${stream.id}/clips`, { start: 3, end: 1 });
    expect(plain.body.export).toBeNull();
    await expectError(await worker(`/vod/${plain.body.id}/clip.mp4`), 404, 'export_not_requested');
    expect(
      (await api<{ error: { code: string } }>(op, 'POST', `/clips/${plain.body.id}/export`, { renditions: ['nope'] })).body.error.code,
    ).toBe('invalid_export');
    expect((await api<{ error: { code: string } }>(op, 'POST', `/clips/${plain.body.id}/export`, { renditions: 'v' })).status).toBe(400);
    expect((await api(op, 'POST', '/clips/cl0000000000000000/export', {})).status).toBe(404);
    expect((await api(op, 'POST', '/clips/nope/export', {})).status).toBe(404);
    const exported = await api<Any>(op, 'POST', `/clips/${plain.body.id}/export`, {});
    expect(exported.status).toBe(202);
    await exportDone(plain.body.id);
    await expectError(await worker(`/vod/${plain.body.id}/a/clip.mp4`), 404, 'export_not_requested');
    await expectError(await worker(`/vod/${plain.body.id}/bad.name/clip.mp4`), 400, 'invalid_rendition');
    expect((await worker(`/vod/${plain.body.id}/v/clip.mp4`)).status).toBe(200);
    expect((await worker('/vod/cl0000000000000000/clip.mp4')).status).toBe(404);
  });

  it('media lost before the export: the export fails with its reason (and can be asked for again)', async () => {
    const { stream, epoch } = await liveMedia();
    const plain = await api<Any>(op, 'POST', `/streams/${stream.id}/clips`, { start: 4, end: 1 });
    // A part of segment 4 (the segment is its parts joined, never an object of its own).
    await env.MEDIA.delete(`live/${stream.id}/${epoch}/v/4.2.m4s`);
    expect((await api(op, 'POST', `/clips/${plain.body.id}/export`, {})).status).toBe(202);
    const failed = await exportDone(plain.body.id);
    expect(failed.export).toMatchObject({ status: 'failed', url: null, error: expect.stringContaining('media are gone') });
    await expectError(await worker(`/vod/${plain.body.id}/clip.mp4`), 404, 'export_failed');
    const again = await api<Any>(op, 'POST', `/clips/${plain.body.id}/export`, {});
    expect(again.status).toBe(202);
    expect(again.body.export).toMatchObject({ status: 'pending', error: null });
    await exportDone(plain.body.id);
  });

  it('retention: the export files go with the clip', async () => {
    const { stream } = await liveMedia();
    const created = await api<Any>(op, 'POST', `/streams/${stream.id}/clips`, {
      start: 3,
      end: 1,
      export: { renditions: ['v', 'a'] },
      retentionDays: 1,
    });
    const clip = await exportDone(created.body.id);
    const files = async () => (await env.MEDIA.list({ prefix: `exports/${clip.id}/` })).objects.map((o) => o.key).sort();
    expect(await files()).toEqual([`exports/${clip.id}/a.mp4`, `exports/${clip.id}/v.mp4`]);
    const stub = env.STREAM_STATE.getByName(stream.id);
    await stub.sweep(Date.parse(clip.expiresAt) + 1000);
    await expectError(await worker(`/vod/${clip.id}/clip.mp4`), 410, 'expired');
    expect(await files()).toHaveLength(2); // the grace period
    await stub.sweep(Date.parse(clip.expiresAt) + 10 * 60_000);
    expect(await files()).toEqual([]);
  });
  it('a clip that starts in an EXT-X-GAP of the rendition starts at its first media, not shifted by the gap', async () => {
    const created = await api<{ id: string; streamKey: string }>(op, 'POST', '/streams', { ladder: TWO_RUNG_LADDER, ...TAKEOVER_ALLOWED });
    const stream = created.body;
    const l1 = (await (await authorize(stream.streamKey)).json()) as { epoch: number; startMsn: number };
    const v1 = new MediaRendition(stream.id, l1.epoch, 'v', 'video', l1.startMsn);
    const a1 = new MediaRendition(stream.id, l1.epoch, 'a', 'audio', l1.startMsn);
    expectOk(await v1.init());
    expectOk(await a1.init());
    for (let i = 0; i < 3; i++) for (const r of [v1, a1]) await r.segment();
    // The video falls behind: its segment 4 never gets there before the publisher reconnects.
    await a1.segment();
    const l2 = (await (await authorize(stream.streamKey, 'node-b')).json()) as { epoch: number; startMsn: number; timeOffset: number };
    expect(l2.startMsn).toBe(l1.startMsn + 4);
    const v2 = new MediaRendition(stream.id, l2.epoch, 'v', 'video', l2.startMsn);
    const a2 = new MediaRendition(stream.id, l2.epoch, 'a', 'audio', l2.startMsn);
    for (const r of [v2, a2]) {
      r.time = l2.timeOffset;
      r.pdt = a1.pdt;
      expectOk(await r.init());
    }
    for (let i = 0; i < 2; i++) for (const r of [v2, a2]) await r.segment();
    for (const r of [v2, a2]) for (let i = 0; i < 3; i++) expectOk(await r.nextPart());
    const playlist = await (await worker(`/live/${stream.id}/v/index.m3u8`)).text();
    expect(playlist).toContain('#EXT-X-GAP');
    // The live edge is 6.6 s in; from 3.6 s (inside the video's gap, 3–4 s) to 5.5 s.
    const clipRes = await api<Any>(op, 'POST', `/streams/${stream.id}/clips`, { start: 3, end: 1.1, export: true });
    expect(clipRes.status).toBe(201);
    const clip = await exportDone(clipRes.body.id);
    expect(clip.export.status).toBe('ready');
    const mp4 = readMp4((await download(`/vod/${clip.id}/clip.mp4`)).bytes);
    // The video has media from 4 s (segment 5's keyframe): the file shows 4.0–5.6 s, from its first frame.
    const video = mp4.tracks.find((t) => t.handler === 'vide')!;
    expect(video.edits).toEqual([{ duration: mp4.movieDuration, mediaTime: 0 }]);
    expect(mp4.movieDuration).toBe(1600);
  });
});
