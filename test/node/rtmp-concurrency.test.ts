// Several publishers at once: each key gets its own session, and each session's FLV carries that
// publisher's picture (told apart by resolution), complete and unmixed.
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { expect, it } from 'vitest';
import { parseFlv } from '../../transcoder-node/rtmp/flv.ts';
import { RtmpIngestServer } from '../../transcoder-node/rtmp/index.ts';
import type { RtmpPublishSession } from '../../transcoder-node/rtmp/index.ts';
import { collect, ffmpegPublish, recordingLogger, runFfmpeg, waitUntil } from '../support/rtmp-testing.ts';

it('three ffmpeg publishers with different keys at once each get a session carrying their own stream', async () => {
  const publishers = [
    { key: 'multi-key-alpha-01', width: 320, height: 240 },
    { key: 'multi-key-bravo-02', width: 256, height: 144 },
    { key: 'multi-key-charlie-03', width: 160, height: 120 },
  ];
  const sessions = new Map<string, RtmpPublishSession<string>>();
  const captures = new Map<string, Promise<Buffer>>();
  const server = new RtmpIngestServer<string>({
    host: '127.0.0.1',
    port: 0,
    logger: recordingLogger(),
    authorize: async (r) => ({ ok: true, context: `stream-of-${r.streamKey}` }),
    onPublish: (s) => {
      sessions.set(s.streamKey, s);
      captures.set(s.streamKey, collect(s.flv));
    },
  });
  await server.listen();
  const dir = await mkdtemp(join(tmpdir(), 'rtmp-multi-'));
  try {
    const runs = publishers.map((p) =>
      ffmpegPublish(`rtmp://127.0.0.1:${server.address().port}/live/${p.key}`, { seconds: 2, size: `${p.width}x${p.height}` }),
    );
    await waitUntil(() => sessions.size === 3, 10_000, 'three sessions');
    expect(server.sessions()).toHaveLength(3);
    expect(new Set([...sessions.values()].map((s) => s.id)).size).toBe(3);
    for (const run of runs) expect((await run.exited).code).toBe(0);

    for (const p of publishers) {
      const session = sessions.get(p.key)!;
      expect(session.context).toBe(`stream-of-${p.key}`);
      expect(session.ended?.code).toBe('unpublished');
      expect(session.metadata).toMatchObject({ width: p.width, height: p.height });
      const flv = await captures.get(p.key)!;
      const parsed = parseFlv(flv);
      expect(parsed.trailing).toBe(0);
      expect(parsed.tags.filter((t) => t.type === 9).length).toBeGreaterThanOrEqual(58); // 60 frames in 2 s
      expect(parsed.tags.filter((t) => t.type === 8).length).toBeGreaterThan(60); // ~86 AAC frames in 2 s

      // The SPS inside this capture says this publisher's resolution: nothing crossed over.
      const file = join(dir, `${p.key}.flv`);
      await writeFile(file, flv);
      const probe = runFfmpeg('ffprobe', ['-v', 'error', '-of', 'json', '-show_entries', 'stream=codec_name,width,height', file]);
      const { streams } = JSON.parse(await probe.stdout) as { streams: Array<{ codec_name: string; width?: number; height?: number }> };
      expect(streams).toContainEqual({ codec_name: 'h264', width: p.width, height: p.height });
      expect(streams).toContainEqual({ codec_name: 'aac' });
    }
    expect(server.sessions()).toHaveLength(0);
  } finally {
    await server.close();
    await rm(dir, { recursive: true, force: true });
  }
});
