// DVR, live-to-VOD, clips, thumbnails and webhooks on the real stack (wrangler dev, transcoder,
// ffmpeg publishing RTMP), with ffmpeg as the player: start-over plays from the first segment,
// a recording with a reconnection plays to the end with the duration its playlist declares, a
// clip's first frame and duration are the requested ones (in its playlist and in its MP4 export,
// which ffprobe and ffmpeg read end to end), and webhooks arrive signed at a local receiver, the
// first one after a failed attempt.
import { execFile, type ChildProcess } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { createServer, type Server } from 'node:http';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startStack, startTestPublisher, stopChild, type CreatedStream, type Stack } from '../../scripts/local-stack.ts';
import { createLogger } from '../../transcoder-node/log.ts';
import { verifyWebhook, type WebhookEvent } from '../../core/contracts/webhooks.ts';
import { parsePlaylist, type ParsedPlaylist } from '../support/llhls-client.ts';

const run = promisify(execFile);
const log = createLogger({ service: 'e2e-dvr' });
const FPS = 30;
const FRAME = 1 / FPS;
const LADDER = [
  { name: '240p', kind: 'video', width: 426, height: 240, videoBitrate: 300_000 },
  { name: 'audio', kind: 'audio', audioBitrate: 64_000 },
];

let dir: string;
let stack: Stack;
let stream: CreatedStream;
let publisher: ChildProcess | undefined;
let receiver: Server;
let receiverUrl: string;
const received: Array<{ event: WebhookEvent; delivery: string; signature: string | null; body: string; status: number }> = [];
let webhook: { id: string; secret: string };

async function api<T>(method: string, path: string, body?: unknown): Promise<{ status: number; body: T }> {
  const res = await fetch(`${stack.workerUrl}/api${path}`, {
    method,
    headers: { authorization: `Bearer ${stack.adminToken}`, 'content-type': 'application/json' },
    body: body === undefined ? undefined : JSON.stringify(body),
  });
  return { status: res.status, body: (await res.json()) as T };
}

async function text(url: string): Promise<string> {
  const res = await fetch(url);
  if (!res.ok) throw new Error(`${url}: ${res.status} ${await res.text()}`);
  return res.text();
}

async function until<T>(what: string, probe: () => Promise<T | null | undefined | false>, timeoutMs = 30_000): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const v = await probe().catch(() => null);
    if (v) return v;
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 250));
  }
}

/** ffmpeg's MD5 of each decoded video frame of an input (as many as `frames`, or all). */
async function frameHashes(args: string[], frames?: number): Promise<string[]> {
  const { stdout } = await run(
    'ffmpeg',
    // passthrough: every decoded frame once, none duplicated or dropped to keep a constant rate.
    [
      '-hide_banner',
      '-loglevel',
      'error',
      ...args,
      '-map',
      '0:v:0',
      '-fps_mode',
      'passthrough',
      ...(frames ? ['-frames:v', String(frames)] : []),
      '-f',
      'framemd5',
      '-',
    ],
    { maxBuffer: 64 * 1024 * 1024, timeout: 90_000 },
  );
  return stdout
    .split('\n')
    .filter((l) => l && !l.startsWith('#'))
    .map((l) => l.split(',').at(-1)!.trim());
}

/** The decoded frames of one live segment (its init plus the segment), the reference picture. */
async function segmentFrames(base: string, seg: { uri: string; map?: { uri: string } }): Promise<string[]> {
  const init = new Uint8Array(await (await fetch(base + seg.map!.uri)).arrayBuffer());
  const media = new Uint8Array(await (await fetch(base + seg.uri)).arrayBuffer());
  const file = join(dir, `seg-${seg.uri.replace(/\W/g, '_')}.mp4`);
  writeFileSync(file, Buffer.concat([init, media]));
  return frameHashes(['-i', file]);
}

beforeAll(async () => {
  dir = mkdtempSync(join(tmpdir(), 'edgelive-e2e-dvr-'));
  // A receiver that fails its very first request, so the first delivery is retried.
  let requests = 0;
  receiver = createServer((req, res) => {
    let body = '';
    req.on('data', (c: Buffer) => (body += c.toString()));
    req.on('end', () => {
      const status = requests++ === 0 ? 500 : 200;
      received.push({
        event: JSON.parse(body) as WebhookEvent,
        delivery: String(req.headers['x-edgelive-delivery']),
        signature: (req.headers['x-edgelive-signature'] as string | undefined) ?? null,
        body,
        status,
      });
      res.writeHead(status).end();
    });
  });
  await new Promise<void>((r) => receiver.listen(0, '127.0.0.1', r));
  const addr = receiver.address();
  receiverUrl = `http://127.0.0.1:${typeof addr === 'object' && addr ? addr.port : 0}/hooks`;
  stack = await startStack({
    persistDir: join(dir, 'state'),
    logDir: join(dir, 'logs'),
    adminToken: 'e2e-admin',
    ingestSecret: 'e2e-ingest-secret',
    endGraceSeconds: 2,
    transcoderEnv: { THUMBNAIL_INTERVAL_SECONDS: '1' },
    workerVars: { WEBHOOK_RETRY_BASE_SECONDS: '1' },
    logger: log,
  });
  const hook = await api<{ id: string; secret: string }>('POST', '/webhooks', { url: receiverUrl });
  expect(hook.status).toBe(201);
  webhook = hook.body;
  // A second publisher takes the stream over below (a reconnection in the recording) while the
  // first still sends: the `allow` takeover policy.
  stream = await stack.createStream({ title: 'e2e dvr', ladder: LADDER, takeover: 'allow' });
  publisher = startTestPublisher({ rtmpUrl: stream.ingest.rtmp, width: 426, height: 240, fps: FPS, logDir: join(dir, 'logs') });
  await until('four segments', async () => {
    const res = await fetch(`${stack.workerUrl}/live/${stream.id}/240p/index.m3u8`);
    return res.ok && parsePlaylist(await res.text()).segments.length >= 4;
  });
});

afterAll(async () => {
  await stopChild(publisher);
  await stack?.stop();
  await new Promise<void>((r) => (receiver ? receiver.close(() => r()) : r()));
  if (dir && !process.env.KEEP_E2E) rmSync(dir, { recursive: true, force: true });
});

describe('DVR and live-to-VOD end to end', () => {
  it('start-over: ffmpeg honouring EXT-X-START plays ?start=beginning from the first segment', async () => {
    const base = `${stack.workerUrl}/live/${stream.id}/240p/`;
    const pl = parsePlaylist(await text(`${base}index.m3u8?start=beginning`));
    expect(pl.segments[0]!.uri).toMatch(/\/1\.m4s$/);
    const first = await segmentFrames(base, pl.segments[0]!);
    // Through the multivariant playlist, which carries the start point to the media playlists.
    const played = await frameHashes(['-prefer_x_start', '1', '-i', `${stack.workerUrl}/live/${stream.id}/index.m3u8?start=beginning`], 3);
    expect(played).toEqual(first.slice(0, 3));
    // Without start-over ffmpeg joins near the live edge: another picture.
    const joined = await frameHashes(['-i', `${stack.workerUrl}/live/${stream.id}/index.m3u8`], 1);
    expect(joined[0]).not.toBe(first[0]);
  });

  it('thumbnails: the latest JPEG of the top rendition, and one at a moment of the DVR window', async () => {
    const latest = await until('a thumbnail', async () => {
      const res = await fetch(`${stack.workerUrl}/live/${stream.id}/thumbnail.jpg`);
      return res.ok ? res : null;
    });
    expect(latest.headers.get('content-type')).toBe('image/jpeg');
    const jpeg = new Uint8Array(await latest.arrayBuffer());
    expect([jpeg[0], jpeg[1]]).toEqual([0xff, 0xd8]);
    const pl = parsePlaylist(await text(`${stack.workerUrl}/live/${stream.id}/240p/index.m3u8`));
    const t = new Date(Date.parse(pl.segments[1]!.dateTimeString!) + 500).toISOString();
    const at = await fetch(`${stack.workerUrl}/live/${stream.id}/thumbnail.jpg?t=${t}`);
    expect(at.status).toBe(200);
    const shown = Date.parse(at.headers.get('x-edgelive-program-date-time')!);
    expect(shown).toBeLessThanOrEqual(Date.parse(t));
    expect(Date.parse(t) - shown).toBeLessThan(1500);
    await at.arrayBuffer();
  });

  it('a clip of the live stream: its first frame is the requested one (to the part) and its duration the requested one', async () => {
    const created = await api<{ id: string; duration: number; start: string; end: string }>('POST', `/streams/${stream.id}/clips`, {
      start: 3,
      end: 1,
    });
    expect(created.status).toBe(201);
    const clip = created.body;
    expect(Math.abs(clip.duration - 2)).toBeLessThanOrEqual(0.2 + 1e-6);
    const vod = `${stack.workerUrl}/vod/${clip.id}/240p/`;
    const t = await text(vod + 'index.m3u8');
    expect(t).toContain('#EXT-X-PLAYLIST-TYPE:VOD');
    const offset = Number(/#EXT-X-START:TIME-OFFSET=([\d.]+),PRECISE=YES/.exec(t)?.[1] ?? 0);
    const pl = parsePlaylist(t);
    // A player honouring PRECISE=YES shows the frame at the offset first: the live segment's frame there.
    const source = await segmentFrames(`${stack.workerUrl}/live/${stream.id}/240p/`, {
      uri: pl.segments[0]!.uri,
      map: pl.segments[0]!.map,
    });
    const clipFrames = await frameHashes(['-i', vod + 'index.m3u8', '-ss', String(offset)]);
    expect(clipFrames[0]).toBe(source[Math.round(offset * FPS)]);
    // Played from the offset to the end, the clip lasts what was asked, to the part (and one frame).
    expect(Math.abs(clipFrames.length * FRAME - clip.duration)).toBeLessThanOrEqual(FRAME + 1e-6);
    const got = await api<{ id: string; status: string }>('GET', `/clips/${clip.id}`);
    expect(got.body).toMatchObject({ id: clip.id, status: 'ready' });
  });

  it("a clip exported as MP4: one file with both streams, the clip's duration, its first frame the requested one", async () => {
    const created = await api<{ id: string; duration: number; export: { status: string } }>('POST', `/streams/${stream.id}/clips`, {
      start: 4,
      end: 1,
      title: 'e2e export',
      export: true,
    });
    expect(created.status).toBe(201);
    expect(created.body.export.status).toBe('pending');
    const clip = created.body;
    // Made by the export queue's job on the local stack (wrangler dev runs the consumer).
    const ready = await until('the export', async () => {
      const r = await api<{ export: { status: string; url: string | null; error: string | null } }>('GET', `/clips/${clip.id}`);
      if (r.body.export.status === 'failed') throw new Error(`export failed: ${r.body.export.error}`);
      return r.body.export.status === 'ready' ? r.body.export : null;
    });
    expect(ready.url).toBe(`${stack.workerUrl}/vod/${clip.id}/clip.mp4`);
    const res = await fetch(ready.url!);
    expect(res.status).toBe(200);
    expect(res.headers.get('content-type')).toBe('video/mp4');
    expect(res.headers.get('content-disposition')).toBe('attachment; filename="e2e export-240p.mp4"');
    const file = join(dir, 'clip-export.mp4');
    writeFileSync(file, new Uint8Array(await res.arrayBuffer()));

    const { stdout } = await run('ffprobe', [
      '-v',
      'error',
      '-show_entries',
      'format=duration,start_time:stream=codec_type,codec_name,width,height',
      '-of',
      'json',
      file,
    ]);
    const probe = JSON.parse(stdout) as {
      format: { duration: string; start_time: string };
      streams: Array<{ codec_type: string; codec_name: string; width?: number }>;
    };
    expect(probe.streams.map((s) => [s.codec_type, s.codec_name])).toEqual([
      ['video', 'h264'],
      ['audio', 'aac'],
    ]);
    expect(probe.streams[0]!.width).toBe(426);
    expect(Math.abs(Number(probe.format.duration) - clip.duration)).toBeLessThanOrEqual(0.001);
    expect(Number(probe.format.start_time)).toBe(0);

    // Decoded end to end: exactly the clip's frames, the first one the frame at the start part
    // (the same one a player honouring the clip playlist's EXT-X-START shows first).
    const t = await text(`${stack.workerUrl}/vod/${clip.id}/240p/index.m3u8`);
    const offset = Number(/#EXT-X-START:TIME-OFFSET=([\d.]+),PRECISE=YES/.exec(t)?.[1] ?? 0);
    const pl = parsePlaylist(t);
    const source = await segmentFrames(`${stack.workerUrl}/live/${stream.id}/240p/`, {
      uri: pl.segments[0]!.uri,
      map: pl.segments[0]!.map,
    });
    const frames = await frameHashes(['-i', file]);
    expect(frames[0]).toBe(source[Math.round(offset * FPS)]);
    expect(Math.abs(frames.length * FRAME - clip.duration)).toBeLessThanOrEqual(FRAME + 1e-6);
    const { stdout: audio } = await run(
      'ffmpeg',
      ['-hide_banner', '-loglevel', 'error', '-i', file, '-map', '0:a:0', '-f', 'framemd5', '-'],
      { maxBuffer: 16 * 1024 * 1024 },
    );
    const samples = audio
      .split('\n')
      .filter((l) => l && !l.startsWith('#'))
      .reduce((n, l) => n + Number(l.split(',')[3]), 0);
    expect(Math.abs(samples / 48_000 - clip.duration)).toBeLessThanOrEqual(1024 / 48_000 + 1e-6);
    log.info('clip exported', { bytes: res.headers.get('content-length'), duration: clip.duration, frames: frames.length, offset });
  });

  it('a recording with a reconnection plays to the end in ffmpeg with its duration, within a frame per discontinuity', async () => {
    // Another publisher takes the stream over: a new epoch, a discontinuity in the recording.
    const before = parsePlaylist(await text(`${stack.workerUrl}/live/${stream.id}/240p/index.m3u8`));
    const second = startTestPublisher({ rtmpUrl: stream.ingest.rtmp, width: 426, height: 240, fps: FPS });
    const first = publisher;
    publisher = second;
    await until('the new epoch', async () => {
      const pl = parsePlaylist(await text(`${stack.workerUrl}/live/${stream.id}/240p/index.m3u8`));
      const disc = pl.segments.findIndex((s) => s.discontinuity);
      return disc >= 0 && pl.segments.length - disc >= 3;
    });
    await stopChild(first);
    expect(before.endList).toBeFalsy();
    await stopChild(second);
    const [rec] = await until('the recording', async () => {
      const r = await api<{ recordings: Array<{ id: string; status: string; duration: number; discontinuities: number }> }>(
        'GET',
        `/streams/${stream.id}/recordings`,
      );
      return r.body.recordings[0]?.status === 'ready' ? r.body.recordings : null;
    });
    expect(rec!.discontinuities).toBeGreaterThanOrEqual(1);
    const media = parsePlaylist(await text(`${stack.workerUrl}/vod/${rec!.id}/240p/index.m3u8`)) as ParsedPlaylist & {
      playlistType?: string;
    };
    expect(media.endList).toBe(true);
    expect(media.playlistType).toBe('VOD');
    const declared = media.segments.reduce((n, s) => n + s.duration, 0);
    const discontinuities = media.segments.filter((s) => s.discontinuity).length;
    expect(discontinuities).toBe(rec!.discontinuities);
    expect(Math.abs(declared - rec!.duration)).toBeLessThan(1e-3);
    const frames = await frameHashes(['-i', `${stack.workerUrl}/vod/${rec!.id}/index.m3u8`]);
    log.info('recording played', { frames: frames.length, declared, discontinuities });
    expect(Math.abs(frames.length * FRAME - declared)).toBeLessThanOrEqual((discontinuities + 1) * FRAME + 1e-6);
  });

  it('webhooks arrive signed at the receiver, the first after a failed attempt, with every attempt listed', async () => {
    const types = ['stream.live', 'clip.ready', 'stream.ended', 'recording.ready'];
    await until('the events', async () => types.every((t) => received.some((r) => r.event.type === t && r.status === 200)));
    for (const r of received) expect(await verifyWebhook(webhook.secret, r.signature, r.body), r.event.type).toBe(true);
    const failed = received.find((r) => r.status === 500)!;
    expect(received.filter((r) => r.delivery === failed.delivery).map((r) => r.status)).toEqual([500, 200]);
    const ended = received.find((r) => r.event.type === 'recording.ready')!;
    expect(ended.event.data).toMatchObject({
      streamId: stream.id,
      playbackPath: expect.stringMatching(/^\/vod\/rc[a-z0-9]{16}\/index\.m3u8$/),
    });
    const list = await api<{ deliveries: Array<{ id: string; status: string; attempts: Array<{ statusCode: number }> }> }>(
      'GET',
      `/webhooks/${webhook.id}/deliveries`,
    );
    const retried = list.body.deliveries.find((d) => d.id === failed.delivery)!;
    expect(retried.status).toBe('delivered');
    expect(retried.attempts.map((a) => a.statusCode)).toEqual([500, 200]);
  });
});
