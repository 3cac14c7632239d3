// Restream on the real stack: wrangler dev, a media node, ffmpeg publishing RTMP, and a tiny RTMP
// server (ffmpeg -listen 1) as the destination, configured with the CLI. The destination receives
// the source (copied: the publisher's own size, not a rung's) as decodable media; killing it
// leaves the main LL-HLS stream undisturbed (every blocking reload valid and in time, the ladder's
// ffmpeg and epoch unchanged) while the status says retrying with the error; it reconnects when
// the destination comes back; disabling it stops it. A destination that refuses is given up
// (failed, with its last error) and forwarded to again once it is back and enabled.
import { execFile, spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { existsSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { freePort, ROOT, startStack, startTestPublisher, stopChild, type CreatedStream, type Stack } from '../../scripts/local-stack.ts';
import { createLogger } from '../../transcoder-node/log.ts';
import { followPlaylist, parsePlaylist } from '../support/llhls-client.ts';
import { health, until } from '../support/media-node.ts';

const exec = promisify(execFile);
const log = createLogger({ service: 'e2e-restream' });
const NODE = join(ROOT, 'node_modules', '.bin', 'node');
const DEST_KEY = 'dest-key-e2e-0001';
const LADDER = [
  { name: '240p', kind: 'video', width: 426, height: 240, videoBitrate: 300_000 },
  { name: 'audio', kind: 'audio', audioBitrate: 64_000 },
];

let dir: string;
let stack: Stack;
let stream: CreatedStream;
let publisher: ChildProcess | undefined;
const listeners: ChildProcess[] = [];
let destPort: number;

interface Restream {
  id: string;
  url: string;
  streamKey: string;
  enabled: boolean;
  status: { state: string; error: string | null; failures: number; nodeId: string | null; droppedBytes: number };
}

async function cli(args: string[]): Promise<{ code: number; stdout: string; stderr: string }> {
  try {
    const { stdout, stderr } = await exec(NODE, [join(ROOT, 'bin', 'edgelive.mjs'), ...args], {
      cwd: dir,
      env: { ...process.env, EDGELIVE_URL: stack.workerUrl, EDGELIVE_ADMIN_TOKEN: stack.adminToken },
      timeout: 60_000,
    });
    return { code: 0, stdout, stderr };
  } catch (err) {
    const e = err as { code?: number; stdout?: string; stderr?: string };
    if (typeof e.code !== 'number') throw err;
    return { code: e.code, stdout: e.stdout ?? '', stderr: e.stderr ?? '' };
  }
}

async function restream(id: string): Promise<Restream> {
  const res = await fetch(`${stack.workerUrl}/api/streams/${stream.id}/restreams/${id}`, {
    headers: { authorization: `Bearer ${stack.adminToken}` },
  });
  return (await res.json()) as Restream;
}

function listen(file: string, port = destPort): ChildProcess {
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
      `rtmp://127.0.0.1:${port}/live/${DEST_KEY}`,
      '-c',
      'copy',
      '-f',
      'flv',
      '-y',
      file,
    ],
    { stdio: 'ignore' },
  );
  listeners.push(child);
  return child;
}

function probe(file: string): { frames: Record<string, number>; width: number } {
  const r = spawnSync(
    'ffprobe',
    ['-v', 'error', '-count_frames', '-show_entries', 'stream=codec_type,width,nb_read_frames', '-of', 'json', file],
    { encoding: 'utf8' },
  );
  const streams = (
    JSON.parse(r.stdout || '{"streams":[]}') as { streams: Array<{ codec_type: string; width?: number; nb_read_frames?: string }> }
  ).streams;
  const frames: Record<string, number> = {};
  for (const s of streams) frames[s.codec_type] = Number(s.nb_read_frames ?? 0);
  return { frames, width: streams.find((s) => s.codec_type === 'video')?.width ?? 0 };
}

beforeAll(async () => {
  dir = mkdtempSync(join(tmpdir(), 'edgelive-e2e-restream-'));
  stack = await startStack({
    persistDir: join(dir, 'state'),
    logDir: join(dir, 'logs'),
    adminToken: 'e2e-admin',
    ingestSecret: 'e2e-ingest-secret',
    endGraceSeconds: 3,
    // Quick syncs and short back-off so the test sees each step within seconds; given up after 6
    // failures in a row (about 8 s of refusals: longer than the first destination is away).
    transcoderEnv: {
      RESTREAM_SYNC_MS: '1000',
      RESTREAM_BACKOFF_BASE_MS: '500',
      RESTREAM_BACKOFF_MAX_MS: '2000',
      RESTREAM_MAX_FAILURES: '6',
    },
    logger: log,
  });
  stream = await stack.createStream({ title: 'simulcast', ladder: LADDER });
  // After the stack has taken its ports (freePort hands out a port another caller may take next).
  destPort = await freePort();
});

afterAll(async () => {
  await stopChild(publisher);
  for (const l of listeners) l.kill('SIGKILL');
  await stack?.stop();
  if (dir && !process.env.KEEP_E2E) rmSync(dir, { recursive: true, force: true });
});

describe('restream to a second RTMP server', () => {
  let id: string;

  it('edgelive restreams add: the key is stored, shown masked, never echoed', async () => {
    const r = await cli([
      'restreams',
      'add',
      stream.id,
      `rtmp://127.0.0.1:${destPort}/live`,
      '--key',
      DEST_KEY,
      '--name',
      'local mirror',
      '--json',
    ]);
    expect(r.code, r.stderr).toBe(0);
    const created = JSON.parse(r.stdout) as Restream;
    expect(created).toMatchObject({
      url: `rtmp://127.0.0.1:${destPort}/live`,
      streamKey: '••••0001',
      enabled: true,
      status: { state: 'stopped' },
    });
    expect(r.stdout).not.toContain(DEST_KEY);
    id = created.id;
    const human = await cli(['restreams', 'list', stream.id]);
    expect(human.stdout).toMatch(new RegExp(`${id}\\s+local mirror\\s+rtmp://127\\.0\\.0\\.1:${destPort}/live\\s+••••0001\\s+stopped`));
  });

  it('the destination receives decodable media; killing it does not disturb the LL-HLS stream; it reconnects when it comes back', async () => {
    const first = join(dir, 'first.flv');
    const second = join(dir, 'second.flv');
    const firstListener = listen(first);
    publisher = startTestPublisher({ rtmpUrl: stream.ingest.rtmp, width: 640, height: 360, logDir: join(dir, 'logs') });
    const media = `${stack.workerUrl}/live/${stream.id}/240p/index.m3u8`;
    await until(
      'the main stream',
      async () => {
        const res = await fetch(media);
        return res.ok && parsePlaylist(await res.text()).segments.length >= 3;
      },
      60_000,
    );
    const live = await until('restream live', async () => ((await restream(id)).status.state === 'live' ? restream(id) : null), 30_000);
    expect(live.status.nodeId).toBe(stack.nodes[0]!.nodeId);
    const before = (await health(stack.transcoderHealthUrl)).sessions[0]!;
    await new Promise((r) => setTimeout(r, 3000));

    // Follow the main stream the way hls.js does while the destination dies and comes back.
    const steps = (async () => {
      await new Promise((r) => setTimeout(r, 1500));
      firstListener.kill('SIGKILL');
      const down = await until(
        'retrying',
        async () => {
          const r = await restream(id);
          return r.status.state === 'retrying' ? r : null;
        },
        20_000,
      );
      const shown = await cli(['restreams', 'show', stream.id, id]);
      await new Promise((r) => setTimeout(r, 2000));
      listen(second);
      return { down, shown };
    })();
    const followed = await followPlaylist({ url: media, updates: 60, otherRenditions: 1 });
    const { down, shown } = await steps;

    // Every update valid LL-HLS and none refused (a blocking reload whose part does not come
    // within 3 × TD is answered 503: a stalled ladder fails here), the media sequence unbroken (no
    // discontinuity: the ladder never restarted). No wall-clock bound: on the shared machine it
    // measures the load more than this; that the tap never waits is proved by construction
    // (test/node/restream.test.ts, a destination that never reads).
    expect(followed.violations).toEqual([]);
    expect(followed.samples).toHaveLength(60);
    expect(followed.samples.some((s) => /#EXT-X-DISCONTINUITY\n/.test(s.text))).toBe(false);
    // The ladder went on untouched: same ffmpeg, same epoch.
    const after = (await health(stack.transcoderHealthUrl)).sessions[0]!;
    expect([after.ffmpegPid, after.epoch]).toEqual([before.ffmpegPid, before.epoch]);

    expect(down.status.error).toBeTruthy();
    expect(down.status.error).not.toContain(DEST_KEY);
    // Retrying, or already trying again (back-off is 0.5 s here): either way with the last error.
    expect(shown.stdout).toMatch(/status\s+(retrying \(\d+ failures?[^)]*\)|connecting): \S/);
    expect(shown.stdout).not.toContain(DEST_KEY);

    await until('live again', async () => (await restream(id)).status.state === 'live', 30_000);
    await new Promise((r) => setTimeout(r, 3000));

    // Disabled: the node stops it and reports it stopped; the listener sees its publisher leave.
    const disabled = await cli(['restreams', 'disable', stream.id, id, '--json']);
    expect(disabled.code, disabled.stderr).toBe(0);
    await until(
      'stopped',
      async () => {
        const r = await restream(id);
        return r.status.state === 'stopped' && r.status.error === 'removed or disabled';
      },
      20_000,
    );
    await until(
      'both files written',
      async () => existsSync(first) && existsSync(second) && listeners.every((l) => l.exitCode !== null || l.signalCode !== null),
      20_000,
    );

    for (const file of [first, second]) {
      const got = probe(file);
      expect(got.frames.video, file).toBeGreaterThanOrEqual(60);
      expect(got.frames.audio, file).toBeGreaterThanOrEqual(60);
      // The source as it was published (copied), not a rung of the ladder.
      expect(got.width, file).toBe(640);
    }
  });

  it('a destination that refuses is given up (failed, last error); once back, enabling it again forwards to it', async () => {
    const port = await freePort();
    const added = await cli([
      'restreams',
      'add',
      stream.id,
      `rtmp://127.0.0.1:${port}/live`,
      '--key',
      DEST_KEY,
      '--name',
      'refuses',
      '--json',
    ]);
    expect(added.code, added.stderr).toBe(0);
    const rid = (JSON.parse(added.stdout) as Restream).id;
    const failed = await until(
      'failed',
      async () => {
        const r = await restream(rid);
        return r.status.state === 'failed' ? r : null;
      },
      60_000,
    );
    expect(failed.status.failures).toBe(6);
    expect(failed.status.error).toMatch(/Connection refused/);
    expect(failed.status.error).not.toContain(DEST_KEY);
    const shown = await cli(['restreams', 'show', stream.id, rid]);
    expect(shown.stdout).toMatch(/status\s+failed \(after 6 failures in a row; enable it to try again\): \S/);
    // It stays given up: the node does not try on its own.
    await new Promise((r) => setTimeout(r, 3000));
    expect((await restream(rid)).status.state).toBe('failed');

    const file = join(dir, 'back.flv');
    const back = listen(file, port);
    await new Promise((r) => setTimeout(r, 500));
    expect((await cli(['restreams', 'enable', stream.id, rid])).code).toBe(0);
    await until('live after enabling', async () => (await restream(rid)).status.state === 'live', 30_000);
    await new Promise((r) => setTimeout(r, 3000));
    expect((await cli(['restreams', 'remove', stream.id, rid])).code).toBe(0);
    await until('the listener saw its publisher leave', async () => back.exitCode !== null || back.signalCode !== null, 20_000);
    const got = probe(file);
    expect(got.frames.video).toBeGreaterThanOrEqual(30);
    expect(got.width).toBe(640);
  });

  it('edgelive restreams update, enable and remove', async () => {
    const keyFile = join(dir, 'new.key');
    writeFileSync(keyFile, 'second-key-from-file-9876\n');
    const updated = await cli([
      'restreams',
      'update',
      stream.id,
      id,
      '--key-file',
      keyFile,
      '--name',
      'renamed',
      '--server',
      'rtmps://backup.example/app',
    ]);
    expect(updated.code, updated.stderr).toBe(0);
    expect(updated.stdout).toMatch(/name\s+renamed/);
    expect(updated.stdout).toMatch(/url\s+rtmps:\/\/backup\.example\/app/);
    expect(updated.stdout).toMatch(/key\s+••••9876/);
    expect(updated.stdout).not.toContain('second-key-from-file');
    const enabled = await cli(['restreams', 'enable', stream.id, id, '--json']);
    expect((JSON.parse(enabled.stdout) as Restream).enabled).toBe(true);
    const removed = await cli(['restreams', 'remove', stream.id, id]);
    expect([removed.code, removed.stdout]).toEqual([0, `deleted ${id}\n`]);
    const gone = await cli(['restreams', 'show', stream.id, id, '--json']);
    expect(gone.code).toBe(1);
    expect(JSON.parse(gone.stderr)).toMatchObject({ error: { code: 'restream_not_found', status: 404 } });
  });
});
