// An ffmpeg publisher through the RTMP ingest into a second ffmpeg: the FLV the session hands on
// is what ffmpeg's flv demuxer expects (strict framing, h264 + aac, the published duration).
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { PassThrough } from 'node:stream';
import { afterAll, beforeAll, expect, it } from 'vitest';
import { parseFlv } from '../../transcoder-node/rtmp/flv.ts';
import { RtmpIngestServer } from '../../transcoder-node/rtmp/index.ts';
import type { RtmpPublishSession, RtmpSessionEnd } from '../../transcoder-node/rtmp/index.ts';
import { collect, ffmpegPublish, recordingLogger, runFfmpeg, waitUntil } from '../support/rtmp-testing.ts';

let dir: string;
beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), 'rtmp-ingest-'));
});
afterAll(async () => {
  await rm(dir, { recursive: true, force: true });
});

it('a 2.5 s ffmpeg publish comes out as FLV that ffmpeg decodes without errors: h264 + aac, 75 frames over 2.5 s', async () => {
  const sessions: RtmpPublishSession[] = [];
  const server = new RtmpIngestServer({
    host: '127.0.0.1',
    port: 0,
    logger: recordingLogger(),
    authorize: async () => ({ ok: true }),
    onPublish: (s) => sessions.push(s),
  });
  await server.listen();
  try {
    const publisher = ffmpegPublish(`rtmp://127.0.0.1:${server.address().port}/live/ingest-key-0001`, { seconds: 2.5 });
    await waitUntil(() => sessions.length === 1, 10_000, 'the session');
    const session = sessions[0]!;
    const ended = new Promise<RtmpSessionEnd>((resolve) => session.once('end', resolve));

    // The session's FLV goes to a decoding ffmpeg, exactly as the transcoder will pipe it, and to a capture.
    const toDecoder = new PassThrough();
    const toCapture = new PassThrough();
    session.flv.pipe(toDecoder);
    session.flv.pipe(toCapture);
    const decoder = runFfmpeg('ffmpeg', ['-hide_banner', '-v', 'error', '-f', 'flv', '-i', 'pipe:0', '-f', 'null', '-'], toDecoder);
    const captured = collect(toCapture);

    expect((await publisher.exited).code).toBe(0);
    expect(await ended).toEqual({ code: 'unpublished', message: 'publisher sent FCUnpublish' });
    const decoded = await decoder.exited;
    expect(decoded.stderr).toBe('');
    expect(decoded.code).toBe(0);

    const flv = await captured;
    // Strict framing: every PreviousTagSize right, nothing left over.
    const parsed = parseFlv(flv);
    expect(parsed.trailing).toBe(0);
    expect(parsed.tags[0]!.type).toBe(18); // onMetaData first, as ffmpeg wrote it
    const firstVideo = parsed.tags.find((t) => t.type === 9)!;
    const firstAudio = parsed.tags.find((t) => t.type === 8)!;
    expect(firstVideo.body.subarray(0, 2).toString('hex')).toBe('1700'); // keyframe, AVC sequence header
    expect(firstAudio.body.subarray(0, 2).toString('hex')).toBe('af00'); // AAC, AudioSpecificConfig
    expect(session.metadata).toMatchObject({ width: 320, height: 240, videocodecid: 7, audiocodecid: 10 });
    expect(session.stats.videoTags).toBe(parsed.tags.filter((t) => t.type === 9).length);

    const file = join(dir, 'capture.flv');
    await writeFile(file, flv);
    const probe = runFfmpeg('ffprobe', [
      '-v',
      'error',
      '-count_frames',
      '-of',
      'json',
      '-show_entries',
      'stream=codec_type,codec_name,width,height,nb_read_frames',
      file,
    ]);
    const info = JSON.parse(await probe.stdout) as {
      streams: Array<{ codec_type: string; codec_name: string; width?: number; height?: number; nb_read_frames: string }>;
    };
    const video = info.streams.find((s) => s.codec_type === 'video')!;
    const audio = info.streams.find((s) => s.codec_type === 'audio')!;
    expect(video).toMatchObject({ codec_name: 'h264', width: 320, height: 240 });
    expect(audio.codec_name).toBe('aac');
    expect(Number(video.nb_read_frames)).toBeGreaterThanOrEqual(73);
    expect(Number(video.nb_read_frames)).toBeLessThanOrEqual(76);
    // The media's own clock (format.duration would echo the publisher's onMetaData instead):
    // 75 frames at 30 fps span 0 to 2467 ms.
    const videoTimes = parsed.tags.filter((t) => t.type === 9).map((t) => t.timestamp);
    const span = Math.max(...videoTimes) - Math.min(...videoTimes);
    expect(span).toBeGreaterThan(2400);
    expect(span).toBeLessThan(2550);
  } finally {
    await server.close();
  }
});
