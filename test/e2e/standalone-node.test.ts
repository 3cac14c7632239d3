// A media node installs on its own (issue 14, item 2): the repository's files in a temporary folder,
// `npm ci --omit=dev` (runtime dependencies only, exactly as the lock file says), then the node
// started from there with Node 22 (this repository's node_modules/.bin/node stands in for an
// operator's system Node) against a local origin: it registers and takes a publish.
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { cpSync, existsSync, mkdirSync, mkdtempSync, openSync, readdirSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { afterAll, beforeAll, expect, it } from 'vitest';
import { ROOT, freePort, startStack, startTestPublisher, stopChild, waitForHttp, type Stack } from '../../scripts/local-stack.ts';
import { createLogger } from '../../transcoder-node/log.ts';
import { parsePlaylist } from '../support/llhls-client.ts';
import { health, until } from '../support/media-node.ts';

const log = createLogger({ service: 'e2e-standalone' });
const NODE_22 = join(ROOT, 'node_modules', '.bin', 'node');
const LADDER = [
  { name: '180p', kind: 'video', width: 320, height: 180, videoBitrate: 250_000 },
  { name: 'audio', kind: 'audio', audioBitrate: 64_000 },
];

let dir: string;
let app: string;
let stack: Stack;
let node: ChildProcess | undefined;
let publisher: ChildProcess | undefined;

beforeAll(async () => {
  dir = mkdtempSync(join(tmpdir(), 'edgelive-standalone-'));
  app = join(dir, 'edgelive');
  // The repository's files as a clone has them (tracked and new, not ignored): no node_modules.
  const files = spawnSync('git', ['ls-files', '--cached', '--others', '--exclude-standard', '-z'], { cwd: ROOT, encoding: 'utf8' });
  expect(files.status).toBe(0);
  for (const file of files.stdout.split('\0').filter(Boolean)) {
    if (!existsSync(join(ROOT, file))) continue; // deleted in the work tree
    mkdirSync(dirname(join(app, file)), { recursive: true });
    cpSync(join(ROOT, file), join(app, file));
  }
  stack = await startStack({
    persistDir: join(dir, 'state'),
    logDir: join(dir, 'logs'),
    adminToken: 'e2e-admin',
    ingestSecret: 'e2e-ingest-secret',
    logger: log,
  });
}, 240_000);

afterAll(async () => {
  await stopChild(publisher);
  await stopChild(node);
  await stack?.stop();
  if (dir && !process.env.KEEP_E2E) rmSync(dir, { recursive: true, force: true });
});

it('installs with npm ci --omit=dev, without any development tool, then starts on Node 22, registers and takes a publish', async () => {
  // npm itself runs on Node 22 too (the engines field says which Node the project needs).
  const env = { ...process.env, PATH: `${dirname(NODE_22)}:${process.env.PATH}`, npm_config_update_notifier: 'false' };
  const install = spawnSync('npm', ['ci', '--omit=dev', '--no-audit', '--no-fund', '--prefer-offline'], {
    cwd: app,
    env,
    encoding: 'utf8',
    timeout: 240_000,
  });
  expect(install.status, install.stderr).toBe(0);
  const installed = readdirSync(join(app, 'node_modules')).filter((n) => !n.startsWith('.'));
  for (const runtime of ['hono', 'zod', 'jose', 'prom-client']) expect(installed).toContain(runtime);
  for (const tool of ['wrangler', 'vitest', 'typescript', 'node', 'esbuild', 'playwright-core', '@cloudflare'])
    expect(installed).not.toContain(tool);
  const size = spawnSync('du', ['-sm', join(app, 'node_modules')], { encoding: 'utf8' }).stdout.split('\t')[0];
  log.info('installed the runtime dependencies', { packages: installed.length, megabytes: Number(size) });

  const [rtmpPort, healthPort, srtPort] = [await freePort(), await freePort(), await freePort()];
  const out = openSync(join(dir, 'logs', 'standalone-node.log'), 'a');
  node = spawn(NODE_22, [join(app, 'transcoder-node', 'main.ts')], {
    cwd: app,
    stdio: ['ignore', out, out],
    // Only what an operator's unit file would set (docs/operations.md).
    env: {
      PATH: process.env.PATH,
      ORIGIN_URL: stack.workerUrl,
      INGEST_SECRET: 'e2e-ingest-secret',
      NODE_ID: 'standalone-1',
      RTMP_HOST: '127.0.0.1',
      RTMP_PORT: String(rtmpPort),
      SRT_PORT: String(srtPort),
      HEALTH_PORT: String(healthPort),
    } as unknown as NodeJS.ProcessEnv, // (the Worker's generated Env types process.env)
  });
  const healthUrl = `http://127.0.0.1:${healthPort}/health`;
  await waitForHttp(healthUrl, 30_000, 'the standalone node');
  await stack.waitForRegistry([stack.nodes[0]!.nodeId, 'standalone-1']);

  const stream = await stack.createStream({ title: 'standalone', ladder: LADDER });
  publisher = startTestPublisher({
    rtmpUrl: `rtmp://127.0.0.1:${rtmpPort}/live/${stream.streamKey}`,
    width: 320,
    height: 180,
    clock: false,
  });
  const url = `${stack.workerUrl}/live/${stream.id}/180p/index.m3u8`;
  const playlist = await until(
    'three segments from the standalone node',
    async () => {
      const res = await fetch(url);
      const pl = res.ok ? parsePlaylist(await res.text()) : null;
      return pl && pl.segments.length >= 3 ? pl : null;
    },
    60_000,
  );
  expect(playlist.segments[0]!.map?.uri).toMatch(/init\.mp4$/);
  expect((await health(healthUrl)).sessions.map((s) => s.streamId)).toEqual([stream.id]);
  // It is the standalone node, not the stack's, that holds the stream's ingest session.
  const info = (await (
    await fetch(`${stack.workerUrl}/api/streams/${stream.id}`, { headers: { authorization: `Bearer ${stack.adminToken}` } })
  ).json()) as { ingestSession: { nodeId: string } | null };
  expect(info.ingestSession?.nodeId).toBe('standalone-1');
});
