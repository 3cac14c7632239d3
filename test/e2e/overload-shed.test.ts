// Overload on the real stack (issue 11, item 15): a ladder this 2-core machine cannot encode in real
// time (a 2160p rung) is seen falling behind (log line, metrics), and shed: restarted without its
// top rung under a new epoch, the stream going on with the rest. A ladder with nothing left to
// shed marks the node overloaded: new publishers are refused, over RTMP with the reason and over
// SRT with SRT_REJX_OVERLOAD, until it has gone.
import type { ChildProcess } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startStack, startTestPublisher, stopChild, type CreatedStream, type Stack } from '../../scripts/local-stack.ts';
import { createLogger } from '../../transcoder-node/log.ts';
import { Reject, rejectionType } from '../../transcoder-node/srt/packet.ts';
import { parsePlaylist } from '../support/llhls-client.ts';
import { health, logLines, publishOnce, scrape, until, type LogLine } from '../support/media-node.ts';
import { sampleValue } from '../support/prom-text.ts';
import { RawSrtCaller } from '../support/srt-raw-client.ts';

const log = createLogger({ service: 'e2e-overload' });
// Upscaling to 2160p at 30 fps is several times slower than real time here; 240p is not.
const HUGE = { name: '2160p', kind: 'video', width: 3840, height: 2160, videoBitrate: 8_000_000 };
const SMALL = { name: '240p', kind: 'video', width: 426, height: 240, videoBitrate: 300_000 };
const AUDIO = { name: 'audio', kind: 'audio', audioBitrate: 64_000 };

let dir: string;
let stack: Stack;
const running: ChildProcess[] = [];
const nodeLog = () => logLines(join(dir, 'logs', 'transcoder.log'));
const linesOf = (streamId: string, msg: string) => nodeLog().filter((l) => l.streamId === streamId && l.msg === msg);

beforeAll(async () => {
  dir = mkdtempSync(join(tmpdir(), 'edgelive-overload-'));
  stack = await startStack({
    persistDir: join(dir, 'state'),
    logDir: join(dir, 'logs'),
    adminToken: 'e2e-admin',
    ingestSecret: 'e2e-ingest-secret',
    // The 2160p ladder takes seconds to write its first fragment: a short grace would end the stream first.
    endGraceSeconds: 15,
    // No thumbnails: the 2160p rung is the only thing that should be slow.
    transcoderEnv: { THUMBNAIL_INTERVAL_SECONDS: '0' },
    logger: log,
  });
});

afterAll(async () => {
  await Promise.all(running.map((p) => stopChild(p)));
  await stack?.stop();
  if (dir && !process.env.KEEP_E2E) rmSync(dir, { recursive: true, force: true });
});

function publish(stream: CreatedStream): ChildProcess {
  const p = startTestPublisher({ rtmpUrl: stream.ingest.rtmp, width: 640, height: 360, clock: false, logDir: join(dir, 'logs') });
  running.push(p);
  return p;
}

describe('a ladder below real time', () => {
  it('is logged and exported, and restarted without its top rung: the stream goes on with the rest under a new epoch', async () => {
    const stream = await stack.createStream({ title: 'too big', ladder: [HUGE, SMALL, AUDIO] });
    const publisher = publish(stream);
    try {
      const shed = await until(
        'the ladder to be shed',
        () => linesOf(stream.id, 'ladder shed: restarting without its top rung')[0],
        120_000,
      );
      expect(shed).toMatchObject({ level: 'warn', rendition: '2160p', renditions: ['240p', 'audio'] });
      const behind = linesOf(stream.id, 'encoder below real time')[0] as LogLine & { speed: number; lagSeconds: number };
      expect(behind.level).toBe('warn');
      expect(behind.renditions).toEqual(['2160p', '240p', 'audio']);
      expect(behind.speed).toBeLessThan(0.95);
      expect(behind.lagSeconds).toBeGreaterThan(2);

      const restarted = await until('the restarted ladder', () => linesOf(stream.id, 'ladder restarted')[0], 30_000);
      expect(restarted.renditions).toEqual(['240p', 'audio']);
      let metrics = await scrape(stack.transcoderHealthUrl);
      expect(sampleValue(metrics, 'edgelive_ladder_sheds_total', { rendition: '2160p' })).toBe(1);
      expect(sampleValue(metrics, 'edgelive_encoder_speed', { stream: stream.id })).toBeLessThan(0.95);

      // The new epoch declares 240p and audio only; the 240p playlist goes on after a discontinuity.
      const epoch = await until('the second epoch', async () => {
        const now = (await health(stack.transcoderHealthUrl)).sessions.find((s) => s.streamId === stream.id)?.epoch;
        return now !== undefined && now > 1 ? now : null;
      });
      expect(epoch).toBe(2);
      const mv = await until('the multivariant playlist of the new epoch', async () => {
        const text = await (await fetch(stream.playback.hls)).text();
        return text.includes('240p/index.m3u8') && !text.includes('2160p/index.m3u8') ? text : null;
      });
      expect(mv).toMatch(/RESOLUTION=426x240/);
      const playlistUrl = `${stack.workerUrl}/live/${stream.id}/240p/index.m3u8`;
      const afterShed = await until(
        '240p segments of the new epoch',
        async () => {
          const pl = parsePlaylist(await (await fetch(playlistUrl)).text());
          const cut = pl.segments.findIndex((s) => s.discontinuity);
          return cut >= 0 && pl.segments.length - cut >= 4 ? pl : null;
        },
        60_000,
      );
      expect(afterShed.segments.at(-1)!.map?.uri).toMatch(/(^|\/)2\/init\.mp4$/);

      // The restarted ladder keeps up: a full measuring window later it is not behind, and it was
      // not shed again (there would be nothing left to shed but 240p).
      metrics = await until(
        'a reading of the restarted ladder',
        async () => {
          const m = await scrape(stack.transcoderHealthUrl);
          const speed = sampleValue(m, 'edgelive_encoder_speed', { stream: stream.id });
          return speed !== undefined && speed >= 0.95 ? m : null;
        },
        60_000,
      );
      expect(sampleValue(metrics, 'edgelive_encoder_behind_realtime', { stream: stream.id })).toBe(0);
      expect(sampleValue(metrics, 'edgelive_ladder_sheds_total', { rendition: '240p' })).toBeUndefined();
      expect(sampleValue(metrics, 'edgelive_overloaded')).toBe(0);
      // The publisher never noticed: still one RTMP session, never dropped.
      expect(publisher.exitCode).toBeNull();
      expect((await health(stack.transcoderHealthUrl)).sessions.map((s) => s.protocol)).toEqual(['rtmp']);
    } finally {
      await stopChild(publisher);
    }
    await until('the session to end', async () => (await health(stack.transcoderHealthUrl)).sessions.length === 0);
    // The stream's series go with it.
    expect(sampleValue(await scrape(stack.transcoderHealthUrl), 'edgelive_encoder_speed', { stream: stream.id })).toBeUndefined();
  });

  it('with no rung left to shed, marks the node overloaded: new publishers are refused with a reason until it has gone', async () => {
    const stuck = await stack.createStream({ title: 'one huge rung', ladder: [HUGE, AUDIO] });
    const waiting = await stack.createStream({ title: 'waiting' });
    const publisher = publish(stuck);
    try {
      const line = await until(
        'the node to say it is overloaded',
        () => linesOf(stuck.id, 'encoder below real time with no rung left to shed: refusing new publishers until it keeps up')[0],
        120_000,
      );
      expect(line.level).toBe('error');
      const state = await health(stack.transcoderHealthUrl);
      expect(state.overloaded).toContain(stuck.id);
      expect(sampleValue(await scrape(stack.transcoderHealthUrl), 'edgelive_overloaded')).toBe(1);

      // RTMP: the encoder is told why (ffmpeg prints the onStatus description).
      const refusedRtmp = await publishOnce(waiting.ingest.rtmp);
      expect(refusedRtmp.code).not.toBe(0);
      expect(refusedRtmp.stderr).toMatch(/this node is overloaded .* publish to another ingest node/);
      // SRT: SRT_REJX_OVERLOAD in the handshake answer.
      const caller = await RawSrtCaller.open({ port: Number(new URL(waiting.ingest.srt!).port), streamId: waiting.streamKey });
      try {
        expect((await caller.connect()).type).toBe(rejectionType(Reject.X_OVERLOAD));
      } finally {
        caller.close();
      }
      const metrics = await scrape(stack.transcoderHealthUrl);
      expect(sampleValue(metrics, 'edgelive_publishers_refused_total', { protocol: 'rtmp', reason: 'node_overloaded' })).toBe(1);
      expect(sampleValue(metrics, 'edgelive_publishers_refused_total', { protocol: 'srt', reason: 'node_overloaded' })).toBe(1);
      const refusals = nodeLog().filter((l) => l.msg === 'publisher refused');
      expect(refusals.map((l) => [l.protocol, l.code])).toEqual([
        ['rtmp', 'node_overloaded'],
        ['srt', 'node_overloaded'],
      ]);
      // The stuck stream itself was not cut off.
      expect(publisher.exitCode).toBeNull();
    } finally {
      await stopChild(publisher);
    }
    // The node reads the publisher's end only after what it had sent: the stuck ladder then stops at once.
    await until('the node to take publishers again', async () => (await health(stack.transcoderHealthUrl)).overloaded === null, 120_000);
    const accepted = publishOnce(waiting.ingest.rtmp, 6);
    await until('the waiting stream to publish', async () =>
      (await health(stack.transcoderHealthUrl)).sessions.some((s) => s.streamId === waiting.id),
    );
    expect((await accepted).code).toBe(0);
  });
});
