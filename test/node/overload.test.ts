// Overload rules of the media node: when a ladder counts as below real time (EncoderWatch), which
// rung is shed, who is admitted (CAPACITY, an overloaded node), and the input relay that lets a
// restarted ladder pick up the same publisher (real ffmpeg decodes the second input).
import { spawn, spawnSync } from 'node:child_process';
import { PassThrough } from 'node:stream';
import { describe, expect, it } from 'vitest';
import type { LadderRung } from '../../core/contracts/stream-config.ts';
import { AdmissionControl } from '../../transcoder-node/admission.ts';
import { EncoderWatch, parseProgress } from '../../transcoder-node/encoder-watch.ts';
import { InputRelay } from '../../transcoder-node/input-relay.ts';
import { shedTopRung } from '../../transcoder-node/overload.ts';

/** A progress block as ffmpeg writes it, `media` seconds encoded. */
function block(media: number, extra: Record<string, string> = {}): Record<string, string> {
  return {
    frame: String(Math.round(media * 30)),
    fps: '30.0',
    out_time_us: String(Math.round(media * 1e6)),
    drop_frames: '0',
    dup_frames: '0',
    speed: '1x',
    progress: 'continue',
    ...extra,
  };
}

describe('EncoderWatch', () => {
  it('reads ffmpeg -progress blocks, N/A included', () => {
    expect(
      parseProgress({ frame: '31', fps: '30.92', out_time_us: '400000', drop_frames: '2', dup_frames: '5', speed: '0.399x' }, 7),
    ).toEqual({ atMs: 7, outTime: 0.4, frame: 31, fps: 30.92, droppedFrames: 2, duplicatedFrames: 5 });
    expect(parseProgress({ frame: '0', fps: '0.00', out_time_us: 'N/A', speed: 'N/A' }, 0).outTime).toBeNull();
    // ffmpeg's first block, before a frame has left the encoders, says 0.
    expect(parseProgress({ frame: '1', fps: '0.00', out_time_us: '0', speed: 'N/A' }, 0).outTime).toBeNull();
  });

  it('a ladder at real time is never behind, whatever its start-up delay', () => {
    const w = new EncoderWatch({ minSpeed: 0.95, maxLagSeconds: 2, windowSeconds: 5 });
    // The first frame leaves after 1.5 s of probing, then one media second per second.
    for (let t = 0; t <= 30; t++) {
      const s = w.push(parseProgress(block(Math.max(0, t - 1.5)), t * 1000));
      expect(s.behind).toBe(false);
      expect(s.lagSeconds).toBeLessThan(0.01);
    }
    expect(w.status.speed).toBeCloseTo(1, 6);
  });

  it('a ladder at half speed is behind once the window is full and it has drifted past the lag bound, and recovers when it keeps up', () => {
    const w = new EncoderWatch({ minSpeed: 0.95, maxLagSeconds: 2, windowSeconds: 5, sustainSeconds: 0 });
    const seen: Array<{ t: number; behind: boolean; changed: boolean }> = [];
    let media = 1; // the first frames are out
    for (let t = 0; t <= 20; t++) {
      if (t > 0) media += t <= 10 ? 0.5 : 1.2; // half speed, then catching up from a backlog
      const s = w.push(parseProgress(block(media), t * 1000));
      seen.push({ t, behind: s.behind, changed: s.changed });
    }
    // At t = 5 the window is full (speed 0.5) and the drift is 2.5 s > 2.
    expect(seen.filter((s) => s.changed)).toEqual([
      { t: 5, behind: true, changed: true },
      { t: 14, behind: false, changed: true },
    ]);
    expect(seen.slice(5, 14).every((s) => s.behind)).toBe(true);
  });

  it('a ladder starved for a few seconds (a start on a busy machine) is not behind; one slow for the sustain time is', () => {
    // As seen on a loaded 2-core machine: 0.36× for the first seconds, then real time again.
    const starved = new EncoderWatch({ minSpeed: 0.95, maxLagSeconds: 2, windowSeconds: 5 });
    let media = 0;
    for (let t = 1; t <= 40; t++) {
      media += t <= 8 ? 0.36 : 1.05;
      expect(starved.push(parseProgress(block(media), t * 1000)).behind, `t=${t}`).toBe(false);
    }
    // The same start, slow for good: behind 10 s (the default sustain) after both bounds were first passed.
    const slow = new EncoderWatch({ minSpeed: 0.95, maxLagSeconds: 2, windowSeconds: 5 });
    media = 0;
    const firstBehind = [];
    for (let t = 1; t <= 40; t++) {
      media += 0.36;
      if (slow.push(parseProgress(block(media), t * 1000)).changed) firstBehind.push(t);
    }
    // The window is full at t = 6 (speed 0.36, drift 3.84 s > 2): behind at t = 16.
    expect(firstBehind).toEqual([16]);
  });

  it('a short dip below real time that has not drifted past the bound is not behind', () => {
    const w = new EncoderWatch({ minSpeed: 0.95, maxLagSeconds: 2, windowSeconds: 5 });
    let media = 0;
    for (let t = 1; t <= 20; t++) {
      media += t >= 8 && t <= 10 ? 0.6 : 1;
      expect(w.push(parseProgress(block(media), t * 1000)).behind).toBe(false);
    }
  });

  it('refuses settings that would never or always fire', () => {
    expect(() => new EncoderWatch({ minSpeed: 0 })).toThrow(RangeError);
    expect(() => new EncoderWatch({ minSpeed: 1.5 })).toThrow(RangeError);
    expect(() => new EncoderWatch({ windowSeconds: 0 })).toThrow(RangeError);
  });
});

describe('shedTopRung', () => {
  const v = (name: string, height: number, videoBitrate = 1_000_000): LadderRung => ({
    name,
    kind: 'video',
    width: Math.round((height * 16) / 9),
    height,
    videoBitrate,
    codec: 'h264',
  });
  const audio: LadderRung = { name: 'audio', kind: 'audio', audioBitrate: 128_000, channels: 2 };

  it('drops the tallest video rung (then the highest bitrate) and keeps the order of the rest', () => {
    const ladder = [v('480p', 480), v('1080p', 1080), audio, v('720p', 720)];
    const plan = shedTopRung(ladder)!;
    expect(plan.shed.name).toBe('1080p');
    expect(plan.rest.map((r) => r.name)).toEqual(['480p', 'audio', '720p']);
    expect(shedTopRung([v('720a', 720, 2_000_000), v('720b', 720, 3_000_000)])!.shed.name).toBe('720b');
  });

  it('never sheds the last video rung or audio', () => {
    expect(shedTopRung([v('360p', 360), audio])).toBeNull();
    expect(shedTopRung([audio])).toBeNull();
  });
});

describe('AdmissionControl', () => {
  it('admits up to CAPACITY publishers, counting those still being authorized, and lets a live stream reconnect', () => {
    const live: string[] = [];
    const control = new AdmissionControl({ capacity: 2, liveKeys: () => live, overloaded: () => null });
    const a = control.admit('key-a');
    const b = control.admit('key-b');
    expect(a.ok && b.ok).toBe(true);
    // Both still asking the origin: the node is full.
    expect(control.admit('key-c')).toMatchObject({ ok: false, code: 'over_capacity' });
    live.push('key-a');
    if (a.ok) a.release();
    expect(control.admit('key-c')).toMatchObject({ ok: false, code: 'over_capacity' });
    // b's lease was refused: its slot is free again.
    if (b.ok) b.release();
    const c = control.admit('key-c');
    expect(c.ok).toBe(true);
    // At capacity (a live, c pending), the encoder of a reconnects: it replaces its own session.
    expect(control.admit('key-a').ok).toBe(true);
    expect(control.admit('key-d').ok).toBe(false);
  });

  it('a slot whose publisher never started lapses', () => {
    const control = new AdmissionControl({ capacity: 1, liveKeys: () => [], overloaded: () => null });
    expect(control.admit('key-a', 0).ok).toBe(true);
    expect(control.admit('key-b', 1000).ok).toBe(false);
    expect(control.admit('key-b', 31_000).ok).toBe(true);
  });

  it('refuses new streams while the node is overloaded, not the streams it has', () => {
    let overloaded: string | null = 'the ladder of st1 runs below real time (0.5× real time)';
    const control = new AdmissionControl({ capacity: 10, liveKeys: () => ['key-a'], overloaded: () => overloaded });
    expect(control.admit('key-b')).toMatchObject({ ok: false, code: 'node_overloaded', reason: expect.stringContaining('0.5× real time') });
    expect(control.admit('key-a').ok).toBe(true);
    overloaded = null;
    expect(control.admit('key-b').ok).toBe(true);
  });
});

describe('InputRelay', () => {
  it('a second input cut from a live FLV stream starts with its header, metadata and codec configurations and a keyframe: ffmpeg decodes it without an error', async () => {
    // 4 s of FLV with a keyframe every 0.5 s, as an RTMP publisher's session would hand it on.
    const flv = spawnSync(
      'ffmpeg',
      [
        '-hide_banner',
        '-loglevel',
        'error',
        '-f',
        'lavfi',
        '-i',
        'testsrc2=size=320x240:rate=30',
        '-f',
        'lavfi',
        '-i',
        'sine=frequency=440:sample_rate=48000',
        '-t',
        '4',
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
    expect(flv.status).toBe(0);
    const bytes = flv.stdout;
    const source = new PassThrough();
    let counted = 0;
    let sourceEnded = 0;
    const relay = new InputRelay(source, 'flv', { onBytes: (n) => (counted += n), onSourceEnd: () => sourceEnded++ });
    const first = collect(relay.attach());
    // Feed the first 40 % in odd-sized chunks (tags split across chunks), then cut over.
    const cut = Math.floor(bytes.byteLength * 0.4);
    for (let off = 0; off < cut; off += 977) source.write(bytes.subarray(off, Math.min(cut, off + 977)));
    await new Promise((r) => setImmediate(r));
    relay.detach();
    const firstBytes = await first;
    const second = collect(relay.attach());
    for (let off = cut; off < bytes.byteLength; off += 4096) source.write(bytes.subarray(off, Math.min(bytes.byteLength, off + 4096)));
    source.end();
    const secondBytes = await second;
    expect(counted).toBe(bytes.byteLength);
    expect(relay.ended).toBe(true);
    expect(sourceEnded).toBe(1);

    for (const part of [firstBytes, secondBytes]) {
      const probe = spawnSync(
        'ffprobe',
        ['-v', 'error', '-show_entries', 'stream=codec_type', '-of', 'csv=p=0', '-f', 'flv', '-i', 'pipe:0'],
        { input: part },
      );
      expect(probe.stdout.toString().trim().split('\n').sort()).toEqual(['audio', 'video']);
    }
    // The second input decodes with no error at all: no frame before the first keyframe, no missing configuration.
    const decode = await run('ffmpeg', ['-hide_banner', '-loglevel', 'error', '-f', 'flv', '-i', 'pipe:0', '-f', 'null', '-'], secondBytes);
    expect(decode.code).toBe(0);
    expect(decode.stderr).toBe('');
    const keyFlags = (part: Buffer) =>
      spawnSync(
        'ffprobe',
        ['-v', 'error', '-select_streams', 'v', '-show_entries', 'frame=key_frame', '-of', 'csv=p=0', '-f', 'flv', '-i', 'pipe:0'],
        { input: part, maxBuffer: 16 << 20 },
      )
        .stdout.toString()
        .trim()
        .split('\n');
    const [before, after] = [keyFlags(firstBytes), keyFlags(secondBytes)];
    expect(after[0]).toBe('1');
    // Of the 120 frames, nothing was lost but those between the cut and the next keyframe (a GOP is 15).
    expect(before.length + after.length).toBeGreaterThan(120 - 15);
    expect(before.length + after.length).toBeLessThanOrEqual(120);
  });
});

function collect(stream: NodeJS.ReadableStream): Promise<Buffer> {
  const chunks: Buffer[] = [];
  return new Promise((resolve, reject) => {
    stream.on('data', (c: Buffer) => chunks.push(c));
    stream.on('end', () => resolve(Buffer.concat(chunks)));
    stream.on('error', reject);
  });
}

function run(cmd: string, args: string[], input: Buffer): Promise<{ code: number | null; stderr: string }> {
  return new Promise((resolve) => {
    const child = spawn(cmd, args, { stdio: ['pipe', 'ignore', 'pipe'] });
    let stderr = '';
    child.stderr.on('data', (d: Buffer) => (stderr += d.toString()));
    child.on('exit', (code) => resolve({ code, stderr }));
    child.stdin.end(input);
  });
}
