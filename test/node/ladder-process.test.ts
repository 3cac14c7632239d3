// LadderProcess as the transcoder uses it: FLV written to ffmpeg's stdin, every rung's pipe read
// concurrently into a CmafChunker; progress reports; stop() and a missing ffmpeg never crash.
import { execFile } from 'node:child_process';
import { promisify } from 'node:util';
import { beforeAll, describe, expect, it } from 'vitest';
import { CmafChunker, cmafEvents } from '../../transcoder-node/cmaf/chunker.ts';
import type { CmafChunkerEvent, CmafInitEvent, CmafSegmentEvent } from '../../transcoder-node/cmaf/chunker.ts';
import { LadderProcess } from '../../transcoder-node/ladder.ts';
import type { LadderRung } from '../../transcoder-node/ladder.ts';
import { recordingLogger } from '../support/recording-logger.ts';

const run = promisify(execFile);

const LADDER: LadderRung[] = [
  { name: '180p', kind: 'video', width: 320, height: 180, videoBitrate: 250_000, codec: 'h264' },
  { name: 'audio', kind: 'audio', audioBitrate: 64_000, channels: 2 },
];

/** What a streamer sends: FLV with H.264 (B-frames, 2 s GOP) and mono 44.1 kHz AAC. */
let flv: Uint8Array;
beforeAll(async () => {
  const { stdout } = await run(
    'ffmpeg',
    [
      '-hide_banner',
      '-v',
      'error',
      '-nostdin',
      '-f',
      'lavfi',
      '-i',
      'testsrc2=size=320x180:rate=30',
      '-f',
      'lavfi',
      '-i',
      'sine=sample_rate=44100',
      '-t',
      '3',
      '-c:v',
      'libx264',
      '-preset',
      'ultrafast',
      '-bf',
      '2',
      '-g',
      '60',
      '-c:a',
      'aac',
      '-ac',
      '1',
      '-f',
      'flv',
      'pipe:1',
    ],
    { encoding: 'buffer', maxBuffer: 16 * 1024 * 1024 },
  );
  flv = new Uint8Array(stdout);
}, 60_000);

describe('LadderProcess', () => {
  it('FLV on stdin → one fMP4 pipe per rung → chunkers: aligned MSNs, 48 kHz stereo audio, exit 0', async () => {
    const logger = recordingLogger();
    const progress: Array<Record<string, string>> = [];
    const ladder = new LadderProcess({
      args: { input: 'pipe:0', inputFormat: 'flv', ladder: LADDER, partTarget: 0.2, segmentTarget: 1, fps: 30 },
      logger,
      onProgress: (p) => progress.push(p),
    });
    const consume = async (i: number) => {
      const events: CmafChunkerEvent[] = [];
      const chunker = new CmafChunker({ startMsn: 1, segmentTarget: 1, partTarget: 0.2, logger });
      for await (const e of cmafEvents(ladder.outputs[i]!, chunker)) events.push(e);
      return events;
    };
    const consumers = LADDER.map((_, i) => consume(i));
    ladder.stdin.end(flv);
    const [exit, ...results] = await Promise.all([ladder.exited, ...consumers]);

    expect(exit).toEqual({ code: 0, signal: null });
    const [videoEvents, audioEvents] = results as [CmafChunkerEvent[], CmafChunkerEvent[]];
    for (const events of results) expect(events.filter((e) => e.type === 'error')).toEqual([]);
    const segs = (events: CmafChunkerEvent[]) => events.filter((e): e is CmafSegmentEvent => e.type === 'segment');
    // The FLV's video runs to 3.03 s and its audio to 3.06 s: the renditions share MSNs 1–3; the
    // video's last frame makes a one-frame segment 4 at the very end of the stream, nothing more.
    expect(segs(videoEvents).map((s) => [s.msn, s.duration])).toEqual([
      [1, 1],
      [2, 1],
      [3, 1],
      [4, 1 / 30],
    ]);
    expect(segs(audioEvents).map((s) => s.msn)).toEqual([1, 2, 3]);
    expect(segs(audioEvents).map((s) => s.startTime)).toEqual([0, 0.96, 1.92]);

    const init = (events: CmafChunkerEvent[]) => events.find((e): e is CmafInitEvent => e.type === 'init')!.info;
    expect(init(videoEvents)).toMatchObject({ kind: 'video', width: 320, height: 180, frameRate: 30 });
    expect(init(audioEvents)).toMatchObject({ kind: 'audio', codecs: 'mp4a.40.2', channels: 2, sampleRate: 48000 });
    expect(progress.at(-1)).toMatchObject({ progress: 'end' });
    expect(logger.lines.filter((l) => l.level === 'warn' && l.msg !== 'ffmpeg')).toEqual([]);
  });

  it('stop(): SIGTERM ends an ffmpeg that is waiting for input, and exited resolves', async () => {
    const ladder = new LadderProcess({
      args: { input: 'pipe:0', inputFormat: 'flv', ladder: LADDER },
      logger: recordingLogger(),
      killTimeoutMs: 3000,
    });
    ladder.stdin.write(flv.subarray(0, 1000)); // a header and a little more: ffmpeg is probing
    const ended = ladder.outputs.map((o) => new Promise<void>((resolve) => o.on('close', () => resolve()).resume()));
    const exit = await ladder.stop();
    expect(exit.code !== 0 || exit.signal !== null).toBe(true);
    expect(await ladder.exited).toBe(exit);
    await Promise.all(ended);
    // stop() after exit is a no-op that gives the same result.
    expect(await ladder.stop()).toBe(exit);
  });

  it('a missing ffmpeg binary resolves exited with the spawn error instead of throwing; writes to stdin are harmless', async () => {
    const logger = recordingLogger();
    const ladder = new LadderProcess({ args: { ladder: LADDER }, ffmpegPath: '/nonexistent/ffmpeg', logger });
    ladder.stdin.write(flv.subarray(0, 100));
    const exit = await ladder.exited;
    expect(exit.code).toBeNull();
    expect(exit.error).toMatchObject({ code: 'ENOENT' });
    expect(logger.lines.some((l) => l.level === 'error' && l.msg === 'ffmpeg could not run')).toBe(true);
  });
});
