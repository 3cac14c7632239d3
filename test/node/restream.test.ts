// Restream on the media node with real ffmpeg on both ends: a tap of the publisher's stream that
// never slows it (bounded, drops to the next keyframe), a destination's ffmpeg copying H.264/AAC to
// an RTMP listener (ffmpeg -listen 1) that receives decodable media, a destination that dies and
// comes back (retrying with the last error, key masked, exponential back-off, live again), and
// one that accepts and never answers (the attempt times out, the ladder's input loses nothing).
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { existsSync, mkdtempSync, rmSync } from 'node:fs';
import { createServer, type Server } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { PassThrough, type Readable } from 'node:stream';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { restreamBackoffMs, type RestreamStatus } from '../../core/contracts/restream.ts';
import { InputRelay, type TapConsumer } from '../../transcoder-node/input-relay.ts';
import { buildRestreamArgs, planRestream, redactUrl } from '../../transcoder-node/restream/args.ts';
import { DEFAULT_RESTREAM_LIMITS, RestreamDestination } from '../../transcoder-node/restream/destination.ts';
import { MatroskaWriter } from '../../transcoder-node/webrtc/matroska-writer.ts';
import { freePort } from '../../scripts/local-stack.ts';
import type { Logger } from '../../transcoder-node/log.ts';

const quiet: Logger = { debug() {}, info() {}, warn() {}, error() {}, child: () => quiet };
let dir: string;
const children: ChildProcess[] = [];

beforeAll(() => {
  dir = mkdtempSync(join(tmpdir(), 'edgelive-restream-'));
});
afterAll(() => {
  for (const c of children) c.kill('SIGKILL');
  rmSync(dir, { recursive: true, force: true });
});

/** FLV as an RTMP publisher's session hands it on: H.264 (keyframe every 0.5 s) and AAC. */
function flvFile(seconds: number): Buffer {
  const r = spawnSync(
    'ffmpeg',
    [
      '-hide_banner',
      '-loglevel',
      'error',
      '-f',
      'lavfi',
      '-i',
      'testsrc2=size=320x180:rate=30',
      '-f',
      'lavfi',
      '-i',
      'sine=sample_rate=48000',
      '-t',
      String(seconds),
      '-c:v',
      'libx264',
      '-preset',
      'ultrafast',
      '-g',
      '15',
      '-c:a',
      'aac',
      '-f',
      'flv',
      'pipe:1',
    ],
    { maxBuffer: 64 << 20 },
  );
  expect(r.status).toBe(0);
  return r.stdout;
}

/** The same, produced in real time (-re) on a stream, as a live publisher sends it. */
function livePublisher(seconds: number): Readable {
  const child = spawn(
    'ffmpeg',
    [
      '-hide_banner',
      '-loglevel',
      'error',
      '-re',
      '-f',
      'lavfi',
      '-i',
      'testsrc2=size=320x180:rate=30',
      '-f',
      'lavfi',
      '-i',
      'sine=sample_rate=48000',
      '-t',
      String(seconds),
      '-c:v',
      'libx264',
      '-preset',
      'ultrafast',
      '-g',
      '15',
      '-c:a',
      'aac',
      '-f',
      'flv',
      'pipe:1',
    ],
    { stdio: ['ignore', 'pipe', 'ignore'] },
  );
  children.push(child);
  return child.stdout;
}

/** A tiny RTMP server: ffmpeg listening for one publisher and writing what it gets to a file. */
function rtmpListener(port: number, file: string): ChildProcess {
  const child = spawn(
    'ffmpeg',
    [
      '-hide_banner',
      '-loglevel',
      'error',
      '-listen',
      '1',
      '-f',
      'flv',
      '-i',
      `rtmp://127.0.0.1:${port}/live/dest-secret-key`,
      '-c',
      'copy',
      '-f',
      'flv',
      '-y',
      file,
    ],
    { stdio: 'ignore' },
  );
  children.push(child);
  return child;
}

/** Frames ffmpeg decodes from a file, by media type, and whether it decoded without an error. */
function decoded(file: string): { video: number; audio: number; clean: boolean } {
  const r = spawnSync(
    'ffprobe',
    ['-v', 'error', '-count_frames', '-show_entries', 'stream=codec_type,nb_read_frames', '-of', 'csv=p=0', file],
    { encoding: 'utf8' },
  );
  const count = (type: string) =>
    Number(
      r.stdout
        .split('\n')
        .find((l) => l.startsWith(type))
        ?.split(',')[1] ?? 0,
    );
  return { video: count('video'), audio: count('audio'), clean: r.status === 0 };
}

async function until<T>(what: string, fn: () => T | null | undefined | false, timeoutMs = 20_000): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const v = fn();
    if (v) return v;
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 50));
  }
}

/** Reads a ladder input to the end, as ffmpeg's stdin would. */
function drain(input: Readable): { bytes: () => Buffer; done: Promise<void> } {
  const chunks: Buffer[] = [];
  const done = new Promise<void>((resolve) => {
    input.on('data', (c: Buffer) => chunks.push(c));
    input.on('end', resolve);
  });
  return { bytes: () => Buffer.concat(chunks), done };
}

describe('restream argv', () => {
  it('copies H.264 and AAC/MP3, transcodes HEVC, Opus and anything not known', () => {
    expect(planRestream({ tracks: { video: true, audio: true }, source: 'metadata', codecs: { video: 'h264', audio: 'aac' } })).toEqual({
      video: 'copy',
      audio: 'copy',
    });
    expect(planRestream({ tracks: { video: true, audio: true }, source: 'pmt', codecs: { video: 'h265', audio: 'mp3' } })).toEqual({
      video: 'transcode',
      audio: 'copy',
    });
    expect(planRestream({ tracks: { video: true, audio: true }, source: 'mkv-tracks', codecs: { video: 'h264', audio: 'opus' } })).toEqual({
      video: 'copy',
      audio: 'transcode',
    });
    expect(planRestream({ tracks: { video: true, audio: false }, source: 'fallback' })).toEqual({ video: 'transcode', audio: null });
    const args = buildRestreamArgs({
      container: 'mpegts',
      source: { tracks: { video: true, audio: true }, source: 'pmt', codecs: { video: 'h265', audio: 'aac' } },
      url: 'rtmp://h/app/k',
      videoBitrate: 4_500_000,
      writeTimeoutSeconds: 5,
    });
    expect(args.slice(args.indexOf('-f'), args.indexOf('-i') + 2)).toEqual([
      '-f',
      'mpegts',
      '-analyzeduration',
      '1000000',
      '-probesize',
      '1000000',
      '-i',
      'pipe:0',
    ]);
    expect(args).toEqual(expect.arrayContaining(['-c:v', 'libx264', '-b:v', '4500000', '-c:a', 'copy', '-rw_timeout', '5000000']));
    expect(args.slice(-7)).toEqual(['-f', 'flv', '-flvflags', 'no_duration_filesize', '-rw_timeout', '5000000', 'rtmp://h/app/k']);
  });

  it('masks the destination key wherever ffmpeg names it', () => {
    const url = 'rtmps://a.rtmp.youtube.com/live2/abcd-efgh-ijkl';
    expect(redactUrl(`${url}: Connection refused`, url)).toBe('rtmps://a.rtmp.youtube.com/live2/••••: Connection refused');
    expect(redactUrl('[rtmp] publishing abcd-efgh-ijkl failed', url)).toBe('[rtmp] publishing •••• failed');
  });

  it('backs off exponentially with jitter, up to the cap', () => {
    expect([1, 2, 3, 4, 5, 10].map((n) => restreamBackoffMs(n, 1000, 60_000))).toEqual([1000, 2000, 4000, 8000, 16000, 60000]);
    expect(restreamBackoffMs(1, 1000, 60_000, 0)).toBe(800);
    expect(restreamBackoffMs(2, 1000, 60_000, 0.75)).toBe(2200);
    expect(restreamBackoffMs(40, 1000, 60_000, 0.999)).toBe(60000);
    expect(restreamBackoffMs(7, 1000, 60_000, 0)).toBe(51200);
  });
});

describe('InputRelay taps', () => {
  it('a tap whose consumer stops taking bytes never holds up the ladder input, holds at most its bound, and resumes at a keyframe', async () => {
    const bytes = flvFile(4);
    const source = new PassThrough();
    const relay = new InputRelay(source, 'flv');
    const ladder = drain(relay.attach());
    const MAX = 16 * 1024;
    const delivered: Buffer[] = [];
    let held = 0;
    let maxHeld = 0;
    let stuck = true;
    const consumer: TapConsumer = {
      write: (b) => {
        delivered.push(b);
        if (stuck) held += b.byteLength;
        maxHeld = Math.max(maxHeld, held);
      },
      buffered: () => held,
      end: () => {},
    };
    const tap = relay.tap(consumer, MAX);
    const half = Math.floor(bytes.byteLength / 2);
    for (let off = 0; off < bytes.byteLength; off += 1500) {
      if (off >= half && stuck) {
        // The consumer catches up (its pipe drained): it takes bytes again from the next keyframe.
        stuck = false;
        held = 0;
      }
      source.write(bytes.subarray(off, Math.min(bytes.byteLength, off + 1500)));
      await new Promise((r) => setImmediate(r));
    }
    source.end();
    await ladder.done;
    // The ladder got every byte, in order, although the tap's consumer was stuck for half of it.
    expect(ladder.bytes().equals(bytes)).toBe(true);
    // The bound held (plus one tag at most: the largest keyframe here is well under 16 KiB).
    expect(maxHeld).toBeLessThanOrEqual(MAX + 16 * 1024);
    expect(tap.droppedBytes).toBeGreaterThan(bytes.byteLength / 4);
    // What the tap delivered decodes cleanly: header and configurations, then keyframes first.
    const out = Buffer.concat(delivered);
    const probe = spawnSync('ffmpeg', ['-hide_banner', '-loglevel', 'error', '-f', 'flv', '-i', 'pipe:0', '-f', 'null', '-'], {
      input: out,
    });
    expect(probe.status).toBe(0);
    expect(probe.stderr.toString()).toBe('');
  });

  it('Matroska (WHIP): a tap joining later gets the header, then the stream from the next Cluster', async () => {
    const source = new PassThrough();
    const relay = new InputRelay(source, 'matroska');
    const ladder = drain(relay.attach());
    // The WHIP publisher hands each element the writer makes to its stream as one chunk.
    const writer = new MatroskaWriter({ tracks: ['video', 'audio'], write: (b) => source.write(b) });
    const frame = (kind: 'video' | 'audio', timeMs: number, keyframe = false) =>
      writer.push({ kind, timeMs, keyframe, data: Buffer.from([0, 0, 0, 1, keyframe ? 0x65 : 0x41, 1, 2, 3]) });
    frame('video', 0, true);
    frame('audio', 5);
    frame('video', 33);
    await new Promise((r) => setImmediate(r));
    const delivered: Buffer[] = [];
    const tap = relay.tap({ write: (b) => delivered.push(b), buffered: () => 0, end: () => {} }, 1 << 20);
    const headerBytes = Buffer.concat(delivered);
    frame('video', 66);
    frame('audio', 70);
    await new Promise((r) => setImmediate(r));
    expect(Buffer.concat(delivered).equals(headerBytes)).toBe(true); // still waiting for a Cluster
    expect(tap.droppedBytes).toBeGreaterThan(0);
    frame('video', 1000, true);
    frame('audio', 1005);
    source.end();
    await ladder.done;
    const out = Buffer.concat(delivered);
    expect(out.subarray(0, 4).toString('latin1')).toBe('\x1aE\xdf\xa3'); // EBML header first
    expect(out.subarray(headerBytes.byteLength, headerBytes.byteLength + 4).equals(Buffer.from([0x1f, 0x43, 0xb6, 0x75]))).toBe(true);
    expect(ladder.bytes().byteLength).toBeGreaterThan(out.byteLength);
  });
});

describe('RestreamDestination (real ffmpeg both ends)', () => {
  it('publishes decodable media to an RTMP listener; the listener dies and comes back: retrying with the last error, then live again', async () => {
    const port = await freePort();
    const url = `rtmp://127.0.0.1:${port}/live/dest-secret-key`;
    const first = join(dir, 'first.flv');
    const second = join(dir, 'second.flv');
    const listener = rtmpListener(port, first);
    await new Promise((r) => setTimeout(r, 500));
    const relay = new InputRelay(livePublisher(40), 'flv');
    const ladder = drain(relay.attach());
    const seen: RestreamStatus[] = [];
    const d = new RestreamDestination({
      id: 'rs0000000000000001',
      url,
      tap: (c, max) => relay.tap(c, max),
      container: 'flv',
      logger: quiet,
      limits: { ...DEFAULT_RESTREAM_LIMITS, backoffBaseMs: 300, backoffMaxMs: 1200, stableMs: 60_000 },
      onChange: (s) => seen.push(s),
      random: () => 0.5,
    });
    d.start();
    await until('live', () => d.status.state === 'live');
    await new Promise((r) => setTimeout(r, 3000));
    listener.kill('SIGKILL');
    const retrying = await until('retrying', () => (d.status.state === 'retrying' ? d.status : null));
    expect(retrying.error).toBeTruthy();
    expect(retrying.error).not.toContain('dest-secret-key');
    // Nobody listens now: attempts fail fast and the delay doubles up to its cap.
    await until('three failures', () => d.status.failures >= 3, 15_000);
    const delays = seen.filter((s) => s.state === 'retrying').map((s) => s.nextAttemptAt! - s.since);
    expect(delays.slice(0, 3).map((ms) => Math.round(ms / 100) * 100)).toEqual([300, 600, 1200]);
    expect(d.status.error).toMatch(/Connection refused/);

    rtmpListener(port, second);
    await until('live again', () => d.status.state === 'live', 15_000);
    await new Promise((r) => setTimeout(r, 3000));
    const pid = d.pid!;
    await d.stop('test over');
    expect(d.status).toMatchObject({ state: 'stopped', error: 'test over' });
    expect(() => process.kill(pid, 0)).toThrow();
    await until('files', () => existsSync(first) && existsSync(second));
    await new Promise((r) => setTimeout(r, 500));
    for (const file of [first, second]) {
      const got = decoded(file);
      expect(got.video, file).toBeGreaterThanOrEqual(60);
      expect(got.audio, file).toBeGreaterThanOrEqual(60);
    }
    // The ladder's input went on receiving all along.
    expect(ladder.bytes().byteLength).toBeGreaterThan(0);
  }, 90_000);

  it('a destination that keeps refusing is given up after RESTREAM_MAX_FAILURES in a row: failed with its last error, no attempt after', async () => {
    const port = await freePort();
    const relay = new InputRelay(livePublisher(20), 'flv');
    const ladder = drain(relay.attach());
    const d = new RestreamDestination({
      id: 'rs0000000000000003',
      url: `rtmp://127.0.0.1:${port}/live/refused-key-0003`,
      tap: (c, max) => relay.tap(c, max),
      container: 'flv',
      logger: quiet,
      limits: { ...DEFAULT_RESTREAM_LIMITS, backoffBaseMs: 200, backoffMaxMs: 400, maxFailures: 3 },
      onChange: () => {},
    });
    d.start();
    const failed = await until('failed', () => (d.status.state === 'failed' ? d.status : null), 20_000);
    expect(failed).toMatchObject({ failures: 3, nextAttemptAt: null });
    expect(failed.error).toMatch(/Connection refused/);
    expect(failed.error).not.toContain('refused-key-0003');
    // Given up: no ffmpeg, and none started later.
    await new Promise((r) => setTimeout(r, 1500));
    expect([d.status.state, d.status.failures, d.pid]).toEqual(['failed', 3, undefined]);
    expect(ladder.bytes().byteLength).toBeGreaterThan(0);
    await d.stop('test over');
    expect(d.status.state).toBe('stopped');
  }, 60_000);

  it('no ffmpeg to run: failed at once, not retried', async () => {
    const relay = new InputRelay(livePublisher(5), 'flv');
    drain(relay.attach());
    const d = new RestreamDestination({
      id: 'rs0000000000000004',
      url: 'rtmp://127.0.0.1:1/live/k',
      tap: (c, max) => relay.tap(c, max),
      container: 'flv',
      logger: quiet,
      limits: { ...DEFAULT_RESTREAM_LIMITS, backoffBaseMs: 100 },
      ffmpegPath: join(dir, 'no-such-ffmpeg'),
      onChange: () => {},
    });
    d.start();
    const failed = await until('failed', () => (d.status.state === 'failed' ? d.status : null), 15_000);
    expect(failed).toMatchObject({ failures: 1, nextAttemptAt: null });
    expect(failed.error).toMatch(/^ffmpeg could not run: .*ENOENT/);
    await d.stop('test over');
  }, 30_000);

  it('a destination that accepts and never answers: the attempt times out, the tap drops within its bound, the ladder input loses nothing', async () => {
    const blackhole: Server = createServer((socket) => socket.pause());
    const port = await new Promise<number>((resolve) =>
      blackhole.listen(0, '127.0.0.1', () => resolve((blackhole.address() as { port: number }).port)),
    );
    const bytes = flvFile(8);
    const source = new PassThrough();
    const relay = new InputRelay(source, 'flv');
    const ladder = drain(relay.attach());
    const d = new RestreamDestination({
      id: 'rs0000000000000002',
      url: `rtmp://127.0.0.1:${port}/live/k-never-shown`,
      tap: (c, max) => relay.tap(c, max),
      container: 'flv',
      logger: quiet,
      limits: { ...DEFAULT_RESTREAM_LIMITS, maxBufferedBytes: 64 * 1024, writeTimeoutMs: 1500, backoffBaseMs: 60_000 },
      onChange: () => {},
    });
    d.start();
    // The whole stream at once, far faster than real time: ffmpeg is stuck on the handshake.
    for (let off = 0; off < bytes.byteLength; off += 4096) {
      source.write(bytes.subarray(off, off + 4096));
      await new Promise((r) => setImmediate(r));
    }
    const failed = await until('retrying', () => (d.status.state === 'retrying' ? d.status : null), 15_000);
    expect(failed.error).toMatch(/timed out|handshake/i);
    expect(failed.error).not.toContain('k-never-shown');
    expect(failed.droppedBytes).toBeGreaterThan(bytes.byteLength / 2);
    source.end();
    await ladder.done;
    expect(ladder.bytes().equals(bytes)).toBe(true);
    await d.stop('test over');
    blackhole.close();
  }, 60_000);
});
