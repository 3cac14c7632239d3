// Each media byte is written to R2 once, as a part; a segment is served at the edge as the
// concatenation of its parts. On the real stack (wrangler dev: workerd, R2, the stream's object),
// the real ladder's ffmpeg output is cut by CmafChunker and pushed the way a media node pushes it
// (segment pushes without bytes), and every segment the Worker serves must be byte for byte what
// ffmpeg wrote for it, whole and by Range, from R2 and from the colo cache.
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startStack, type CreatedStream, type Stack } from '../../scripts/local-stack.ts';
import { CmafChunker, type CmafChunkerEvent, type CmafPartEvent, type CmafSegmentEvent } from '../../transcoder-node/cmaf/chunker.ts';
import { LadderProcess, type LadderRung } from '../../transcoder-node/ladder.ts';
import { createLogger } from '../../transcoder-node/log.ts';
import { OriginClient } from '../../transcoder-node/origin-client.ts';

const log = createLogger({ service: 'e2e-segment-from-parts' });
const RUNG: LadderRung = { name: '360p', kind: 'video', width: 640, height: 360, videoBitrate: 600_000, codec: 'h264' };
const SECONDS = 4;
const FPS = 30;
const SECRET = 'e2e-ingest-secret';
let dir: string;
let stack: Stack;
let stream: CreatedStream;
let epoch: number;
/** ffmpeg's output for the rung, byte for byte as it came out of its pipe. */
let ffmpegWrote: Uint8Array;
let parts: CmafPartEvent[];
let segments: CmafSegmentEvent[];
let initLength: number;

beforeAll(async () => {
  dir = mkdtempSync(join(tmpdir(), 'edgelive-e2e-join-'));
  stack = await startStack({
    persistDir: join(dir, 'state'),
    logDir: join(dir, 'logs'),
    adminToken: 'e2e-admin',
    ingestSecret: SECRET,
    logger: log,
  });
  stream = await stack.createStream({ title: 'join', ladder: [RUNG] });
  const origin = new OriginClient({ baseUrl: stack.workerUrl, secret: SECRET });
  const lease = await origin.authorize(stream.streamKey, 'e2e-pusher');
  epoch = lease.epoch;
  const ladder = new LadderProcess({
    args: {
      input: [{ format: 'lavfi', options: ['-t', String(SECONDS)], url: `testsrc2=size=640x360:rate=${FPS}` }],
      ladder: [RUNG],
      partTarget: lease.partTarget,
      segmentTarget: lease.segmentTarget,
      fps: FPS,
    },
    logger: log,
  });
  const chunks: Uint8Array[] = [];
  ladder.outputs[0]!.on('data', (b: Buffer) => chunks.push(new Uint8Array(b)));
  await new Promise((resolve) => ladder.outputs[0]!.on('end', resolve));
  expect(await ladder.exited).toEqual({ code: 0, signal: null });
  ffmpegWrote = new Uint8Array(Buffer.concat(chunks));
  const chunker = new CmafChunker({
    startMsn: lease.startMsn,
    segmentTarget: lease.segmentTarget,
    partTarget: lease.partTarget,
    logger: log,
  });
  const events: CmafChunkerEvent[] = [];
  for (const c of chunks) events.push(...chunker.push(c));
  events.push(...chunker.end());
  const init = events.find((e) => e.type === 'init')!;
  initLength = init.bytes.byteLength;
  parts = events.filter((e): e is CmafPartEvent => e.type === 'part');
  segments = events.filter((e): e is CmafSegmentEvent => e.type === 'segment');
  // Pushed as a media node pushes them (ingest-session.ts): the segment push carries no bytes.
  const t0 = Date.now();
  await origin.push(lease.streamId, epoch, RUNG.name, 'init.mp4', init.bytes, {
    kind: 'video',
    codecs: init.info.codecs,
    bandwidth: 700_000,
    averageBandwidth: 600_000,
    width: 640,
    height: 360,
    frameRate: FPS,
    renditions: [RUNG.name],
  });
  for (const e of events) {
    if (e.type === 'part') {
      await origin.push(lease.streamId, epoch, RUNG.name, `${e.msn}.${e.part}.m4s`, e.bytes, {
        duration: Math.round(e.duration * 1e6) / 1e6,
        independent: e.independent,
        programDateTime: Math.round(t0 + e.startTime * 1000),
        ...(e.final ? { final: true } : {}),
      });
    } else if (e.type === 'segment') {
      await origin.push(lease.streamId, epoch, RUNG.name, `${e.msn}.m4s`, new Uint8Array(0), {
        duration: Math.round(e.duration * 1e6) / 1e6,
        partCount: e.partCount,
        programDateTime: Math.round(t0 + e.startTime * 1000),
      });
    }
  }
  origin.close();
}, 300_000);

afterAll(async () => {
  await stack?.stop();
  if (dir) rmSync(dir, { recursive: true, force: true });
});

/** The bytes ffmpeg wrote for a segment: its fragments, where they are in ffmpeg's output. */
function writtenByFfmpeg(seg: CmafSegmentEvent): Uint8Array {
  let start = initLength;
  for (const p of parts) if (p.msn < seg.msn) start += p.bytes.byteLength;
  const length = parts.filter((p) => p.msn === seg.msn).reduce((n, p) => n + p.bytes.byteLength, 0);
  return ffmpegWrote.subarray(start, start + length);
}

describe('segments served from their parts', () => {
  it('a segment served from its parts is byte-identical to the one ffmpeg wrote', async () => {
    expect(segments.length).toBeGreaterThanOrEqual(3);
    // The whole output is accounted for: init, then every fragment in order.
    expect(initLength + parts.reduce((n, p) => n + p.bytes.byteLength, 0)).toBe(ffmpegWrote.byteLength);
    for (const seg of segments) {
      const url = `${stack.workerUrl}/live/${stream.id}/${RUNG.name}/${epoch}/${seg.msn}.m4s`;
      const expected = writtenByFfmpeg(seg);
      expect(Buffer.from(expected).equals(Buffer.from(seg.bytes))).toBe(true);
      // First from R2 (joined), then from the colo cache: the same bytes, immutable either way.
      for (const from of ['r2', 'cache']) {
        const res = await fetch(url);
        expect(res.status, `${seg.msn} from ${from}`).toBe(200);
        expect(res.headers.get('cache-control')).toBe('public, max-age=31536000, immutable');
        expect(res.headers.get('content-type')).toBe('video/iso.segment');
        expect(res.headers.get('etag')).toMatch(/^"j\d+-[0-9a-f]{16}"$/);
        const body = new Uint8Array(await res.arrayBuffer());
        expect(Buffer.from(body).equals(Buffer.from(expected)), `${seg.msn} from ${from}`).toBe(true);
      }
    }
  });

  it('Range requests on a segment answer the bytes ffmpeg wrote at that range', async () => {
    const seg = segments[1]!;
    const expected = writtenByFfmpeg(seg);
    const res = await fetch(`${stack.workerUrl}/live/${stream.id}/${RUNG.name}/${epoch}/${seg.msn}.m4s`, {
      headers: { range: 'bytes=100-1099' },
    });
    expect(res.status).toBe(206);
    expect(res.headers.get('content-range')).toBe(`bytes 100-1099/${expected.byteLength}`);
    expect(Buffer.from(await res.arrayBuffer()).equals(Buffer.from(expected.subarray(100, 1100)))).toBe(true);
  });
});
