// The WHIP media path without the transport: real RTP (ffmpeg's H.264 and Opus packetizers, as a
// WebRTC sender would packetize) → RtpFramer (jitter buffer, depacketizer, clock) → MatroskaWriter
// → a Matroska stream that ffmpeg itself reads back, frame for frame, with both tracks in time.
import { spawn, spawnSync } from 'node:child_process';
import { createSocket } from 'node:dgram';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { MatroskaWriter } from '../../transcoder-node/webrtc/matroska-writer.ts';
import { FrameClock, RtpFramer, type TimedFrame } from '../../transcoder-node/webrtc/rtp-frames.ts';

const SECONDS = 3;
let dir: string;
/** Every RTP packet ffmpeg sent, in arrival order. */
const packets: Array<{ kind: 'video' | 'audio'; bytes: Buffer; at: number }> = [];

beforeAll(async () => {
  dir = mkdtempSync(join(tmpdir(), 'edgelive-webrtc-media-'));
  const sockets = await Promise.all(
    (['video', 'audio'] as const).map(async (kind) => {
      const sock = createSocket('udp4');
      await new Promise<void>((r) => sock.bind(0, '127.0.0.1', r));
      sock.setRecvBufferSize(4 * 1024 * 1024);
      sock.on('message', (bytes) => packets.push({ kind, bytes, at: performance.now() }));
      return { kind, sock, port: sock.address().port };
    }),
  );
  // 30 fps H.264 (constrained baseline, SPS/PPS before every IDR as browsers send them), keyframe
  // every second, and 20 ms Opus frames, in real time.
  const ffmpeg = spawn(
    'ffmpeg',
    [
      '-hide_banner',
      '-loglevel',
      'error',
      '-re',
      '-t',
      String(SECONDS),
      '-f',
      'lavfi',
      '-i',
      'testsrc2=size=320x240:rate=30',
      '-re',
      '-t',
      String(SECONDS),
      '-f',
      'lavfi',
      '-i',
      'sine=frequency=440:sample_rate=48000',
      '-map',
      '0:v',
      '-c:v',
      'libx264',
      '-preset',
      'ultrafast',
      '-tune',
      'zerolatency',
      '-profile:v',
      'baseline',
      '-g',
      '30',
      '-bsf:v',
      'dump_extra=freq=keyframe',
      '-f',
      'rtp',
      '-payload_type',
      '96',
      `rtp://127.0.0.1:${sockets[0]!.port}?pkt_size=1200`,
      '-map',
      '1:a',
      '-c:a',
      'libopus',
      '-b:a',
      '64k',
      '-f',
      'rtp',
      '-payload_type',
      '111',
      `rtp://127.0.0.1:${sockets[1]!.port}?pkt_size=1200`,
    ],
    { stdio: ['ignore', 'ignore', 'pipe'] },
  );
  await new Promise((r) => ffmpeg.once('exit', r));
  await new Promise((r) => setTimeout(r, 200));
  for (const { sock } of sockets) sock.close();
}, 30_000);

afterAll(() => {
  if (dir) rmSync(dir, { recursive: true, force: true });
});

/** Replays the captured packets (optionally reordered or thinned) through the path; returns the file and counters. */
function runPath(name: string, transform: (ps: typeof packets) => typeof packets = (ps) => ps) {
  const clock = new FrameClock(packets[0]!.at);
  const chunks: Buffer[] = [];
  const writer = new MatroskaWriter({ tracks: ['video', 'audio'], write: (b) => chunks.push(b) });
  let losses = 0;
  const frames: TimedFrame[] = [];
  const framers = {
    video: new RtpFramer({
      kind: 'video',
      payloadType: 96,
      clockRate: 90_000,
      clock,
      onFrame: (f) => (frames.push(f), writer.push(f)),
      onLoss: () => losses++,
    }),
    audio: new RtpFramer({
      kind: 'audio',
      payloadType: 111,
      clockRate: 48_000,
      clock,
      onFrame: (f) => (frames.push(f), writer.push(f)),
      onLoss: () => losses++,
    }),
  };
  // The framers read the clock when a track's first packet arrives: replay with the real arrival times.
  const realNow = performance.now;
  try {
    for (const p of transform(packets)) {
      performance.now = () => p.at;
      framers[p.kind].push(p.bytes);
    }
  } finally {
    performance.now = realNow;
  }
  const file = join(dir, `${name}.mkv`);
  writeFileSync(file, Buffer.concat(chunks));
  return { file, losses, frames, framers, writer };
}

function probe(file: string) {
  const r = spawnSync(
    'ffprobe',
    [
      '-v',
      'fatal',
      '-count_frames',
      '-show_entries',
      'stream=codec_name,codec_type,nb_read_frames,width,height,start_time',
      '-of',
      'json',
      '-f',
      'matroska',
      file,
    ],
    { encoding: 'utf8' },
  );
  expect(r.status).toBe(0);
  return (
    JSON.parse(r.stdout) as {
      streams: Array<{ codec_type: string; codec_name: string; nb_read_frames: string; width?: number; start_time: string }>;
    }
  ).streams;
}

describe('RTP → frames → Matroska', () => {
  it('every frame ffmpeg packetized comes out, and ffmpeg reads the stream back as H.264 and Opus', () => {
    const { file, losses, framers, writer } = runPath('clean');
    expect(losses).toBe(0);
    // One video frame per RTP timestamp, one Opus frame per packet (ffmpeg adds one of priming).
    const sent = {
      video: new Set(packets.filter((p) => p.kind === 'video').map((p) => p.bytes.readUInt32BE(4))).size,
      audio: packets.filter((p) => p.kind === 'audio').length,
    };
    expect(sent.video).toBe(SECONDS * 30);
    expect(framers.video.frames).toBe(sent.video);
    expect(framers.audio.frames).toBe(sent.audio);
    expect(writer.framesDropped).toBe(0);
    const streams = probe(file);
    const video = streams.find((s) => s.codec_type === 'video')!;
    const audio = streams.find((s) => s.codec_type === 'audio')!;
    expect([video.codec_name, video.width, Number(video.nb_read_frames)]).toEqual(['h264', 320, sent.video]);
    expect([audio.codec_name, Number(audio.nb_read_frames)]).toEqual(['opus', sent.audio]);
    // Both tracks start together (their first packets left ffmpeg at the same moment).
    expect(Math.abs(Number(video.start_time) - Number(audio.start_time))).toBeLessThan(0.06);
  });

  it('reordered packets are put back in order by the reorder buffer: no loss, no frame lost', () => {
    const swap = (ps: typeof packets) => {
      const out = [...ps];
      // Swap neighbours of the video stream every 20 packets (what multipath or a NIC queue does).
      const video = out.map((p, i) => (p.kind === 'video' ? i : -1)).filter((i) => i >= 0);
      for (let k = 10; k + 1 < video.length; k += 20) [out[video[k]!], out[video[k + 1]!]] = [out[video[k + 1]!]!, out[video[k]!]!];
      return out;
    };
    const { losses, framers } = runPath('reordered', swap);
    expect(losses).toBe(0);
    expect(framers.video.lost).toBe(0);
    expect(framers.video.frames).toBe(SECONDS * 30);
  });

  it('lost packets are reported (the publisher then asks for a keyframe) and the stream stays readable', () => {
    let dropped = 0;
    const thin = (ps: typeof packets) =>
      ps.filter((p, i) => {
        // Inside the stream: a packet lost before the first or after the last is not a gap anyone sees.
        const drop = p.kind === 'video' && i % 97 === 0 && i > 0 && i < ps.length - 100;
        if (drop) dropped++;
        return !drop;
      });
    const { file, losses, framers } = runPath('lossy', thin);
    expect(dropped).toBeGreaterThan(3);
    expect(losses).toBeGreaterThanOrEqual(1);
    expect(framers.video.lost).toBe(dropped);
    // A frame that lost a packet is not handed on (it would not decode); the others are. (Losing a
    // frame's last packet, the one with the marker bit, takes the next frame with it.)
    expect(framers.video.frames).toBeLessThan(SECONDS * 30);
    expect(framers.video.frames).toBeGreaterThanOrEqual(SECONDS * 30 - 2 * dropped);
    const streams = probe(file);
    expect(Number(streams.find((s) => s.codec_type === 'video')!.nb_read_frames)).toBe(framers.video.frames);
  });

  it('nothing is written before the first video keyframe; audio before it is dropped', () => {
    const chunks: Buffer[] = [];
    const writer = new MatroskaWriter({ tracks: ['video', 'audio'], write: (b) => chunks.push(b) });
    writer.push({ kind: 'audio', data: Buffer.from([1, 2, 3]), keyframe: false, timeMs: 0 });
    writer.push({ kind: 'video', data: Buffer.from([0, 0, 0, 1, 0x41]), keyframe: false, timeMs: 10 });
    expect(chunks).toEqual([]);
    expect(writer.framesDropped).toBe(2);
    writer.push({ kind: 'video', data: Buffer.from([0, 0, 0, 1, 0x65]), keyframe: true, timeMs: 40 });
    expect(chunks.length).toBe(3); // header + segment, cluster, block
    writer.push({ kind: 'audio', data: Buffer.from([1]), keyframe: false, timeMs: 30 });
    // An audio frame 10 ms older than the keyframe's cluster is kept (negative block offset).
    expect(writer.framesWritten).toBe(2);
  });
});
