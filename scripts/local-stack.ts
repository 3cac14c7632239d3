// Brings up the whole local stack as child processes: `wrangler dev` (workerd with R2, Durable
// Objects and D1), the transcoder, and optionally an ffmpeg test-pattern publisher. Used by
// `npm start`, the end-to-end tests and the benchmarks, so all three run the same thing.
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { createServer } from 'node:net';
import { mkdirSync, openSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import type { Logger } from '../transcoder-node/log.ts';

export const ROOT = join(dirname(fileURLToPath(import.meta.url)), '..');
const BIN = join(ROOT, 'node_modules', '.bin');
const NODE = join(BIN, 'node');

export interface StackOptions {
  workerPort?: number;
  rtmpPort?: number;
  healthPort?: number;
  /** Where wrangler persists R2, D1 and Durable Objects. */
  persistDir: string;
  /** Where child process logs go. */
  logDir: string;
  adminToken: string;
  ingestSecret: string;
  roomTokenSecret?: string;
  /** Seconds without pushes before a stream ends. */
  endGraceSeconds?: number;
  /** Extra environment for the transcoder. */
  transcoderEnv?: Record<string, string>;
  /** Extra Worker variables (`--var`), e.g. WEBHOOK_RETRY_BASE_SECONDS. */
  workerVars?: Record<string, string>;
  logger: Logger;
}

export interface Stack {
  workerUrl: string;
  rtmpUrl: string;
  transcoderHealthUrl: string;
  adminToken: string;
  worker: ChildProcess;
  transcoder: ChildProcess;
  createStream(settings?: Record<string, unknown>): Promise<CreatedStream>;
  stop(): Promise<void>;
}

export interface CreatedStream {
  id: string;
  streamKey: string;
  ingest: { rtmp: string };
  playback: { hls: string; watch: string };
}

/** An unused TCP port on loopback. */
export function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const srv = createServer();
    srv.unref();
    srv.on('error', reject);
    srv.listen(0, '127.0.0.1', () => {
      const addr = srv.address();
      srv.close(() => resolve(typeof addr === 'object' && addr ? addr.port : 0));
    });
  });
}

export async function waitForHttp(url: string, timeoutMs: number, what: string): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  let lastError = '';
  while (Date.now() < deadline) {
    try {
      const res = await fetch(url, { signal: AbortSignal.timeout(2000) });
      if (res.ok) {
        await res.body?.cancel();
        return;
      }
      lastError = `status ${res.status}`;
    } catch (err) {
      lastError = (err as Error).message;
    }
    await new Promise((r) => setTimeout(r, 200));
  }
  throw new Error(`${what} did not come up at ${url} within ${timeoutMs} ms (${lastError})`);
}

function logFile(dir: string, name: string): number {
  mkdirSync(dir, { recursive: true });
  return openSync(join(dir, name), 'a');
}

/** Stops a child: SIGTERM, then SIGKILL if it has not exited in time. */
export function stopChild(child: ChildProcess | undefined, timeoutMs = 5000): Promise<void> {
  if (!child || child.exitCode !== null || child.signalCode !== null) return Promise.resolve();
  return new Promise((resolve) => {
    const timer = setTimeout(() => child.kill('SIGKILL'), timeoutMs);
    child.once('exit', () => {
      clearTimeout(timer);
      resolve();
    });
    child.kill('SIGTERM');
  });
}

export async function startStack(opts: StackOptions): Promise<Stack> {
  const log = opts.logger;
  const workerPort = opts.workerPort ?? (await freePort());
  const rtmpPort = opts.rtmpPort ?? (await freePort());
  const healthPort = opts.healthPort ?? (await freePort());
  const workerUrl = `http://127.0.0.1:${workerPort}`;
  mkdirSync(opts.persistDir, { recursive: true });
  spawnSync(NODE, [join(ROOT, 'scripts', 'build-assets.mjs')], { stdio: 'inherit' });

  log.info('applying D1 migrations', { persistDir: opts.persistDir });
  const migrate = spawnSync(
    NODE,
    [join(BIN, 'wrangler'), 'd1', 'migrations', 'apply', 'edgelive-catalog', '--local', '--persist-to', opts.persistDir],
    { cwd: ROOT, encoding: 'utf8', env: { ...process.env, CI: '1', WRANGLER_SEND_METRICS: 'false' } },
  );
  if (migrate.status !== 0) throw new Error(`D1 migrations failed: ${migrate.stderr || migrate.stdout}`);

  const vars: Record<string, string> = {
    ADMIN_TOKEN: opts.adminToken,
    INGEST_SECRET: opts.ingestSecret,
    ROOM_TOKEN_SECRET: opts.roomTokenSecret ?? opts.ingestSecret + '-rooms',
    RTMP_INGEST_URL: `rtmp://127.0.0.1:${rtmpPort}/live`,
    END_GRACE_SECONDS: String(opts.endGraceSeconds ?? 8),
    ...opts.workerVars,
  };
  const varArgs = Object.entries(vars).flatMap(([k, v]) => ['--var', `${k}:${v}`]);
  log.info('starting wrangler dev', { url: workerUrl });
  const workerLog = logFile(opts.logDir, 'wrangler.log');
  const worker = spawn(
    NODE,
    [join(BIN, 'wrangler'), 'dev', '--ip', '127.0.0.1', '--port', String(workerPort), '--persist-to', opts.persistDir, '--inspector-port', String(await freePort()), '--show-interactive-dev-session=false', ...varArgs],
    {
      cwd: ROOT,
      stdio: ['ignore', workerLog, workerLog],
      env: { ...process.env, CI: '1', WRANGLER_SEND_METRICS: 'false', CLOUDFLARE_CF_FETCH_ENABLED: 'false' },
    },
  );

  log.info('starting transcoder', { rtmp: `rtmp://127.0.0.1:${rtmpPort}/live` });
  const transcoderLog = logFile(opts.logDir, 'transcoder.log');
  const transcoder = spawn(NODE, [join(ROOT, 'transcoder-node', 'main.ts')], {
    cwd: ROOT,
    stdio: ['ignore', transcoderLog, transcoderLog],
    env: {
      ...process.env,
      ORIGIN_URL: workerUrl,
      INGEST_SECRET: opts.ingestSecret,
      RTMP_HOST: '127.0.0.1',
      RTMP_PORT: String(rtmpPort),
      HEALTH_PORT: String(healthPort),
      NODE_ID: `local-${rtmpPort}`,
      ...opts.transcoderEnv,
    },
  });

  const stop = async () => {
    await Promise.all([stopChild(transcoder), stopChild(worker)]);
  };
  try {
    await waitForHttp(`${workerUrl}/health`, 60_000, 'wrangler dev');
    await waitForHttp(`http://127.0.0.1:${healthPort}/health`, 30_000, 'transcoder');
  } catch (err) {
    await stop();
    throw err;
  }

  return {
    workerUrl,
    rtmpUrl: `rtmp://127.0.0.1:${rtmpPort}/live`,
    transcoderHealthUrl: `http://127.0.0.1:${healthPort}/health`,
    adminToken: opts.adminToken,
    worker,
    transcoder,
    async createStream(settings = {}) {
      const res = await fetch(`${workerUrl}/api/streams`, {
        method: 'POST',
        headers: { authorization: `Bearer ${opts.adminToken}`, 'content-type': 'application/json' },
        body: JSON.stringify(settings),
      });
      if (res.status !== 201) throw new Error(`creating a stream failed: ${res.status} ${await res.text()}`);
      return (await res.json()) as CreatedStream;
    },
    stop,
  };
}

export interface PublisherOptions {
  rtmpUrl: string;
  width?: number;
  height?: number;
  fps?: number;
  /** Seconds to publish; omitted = until stopped. */
  durationSeconds?: number;
  logDir?: string;
  /** Burn the wall-clock time (ms) into the picture. */
  clock?: boolean;
}

/**
 * The built-in test pattern: ffmpeg testsrc2 with a 1 kHz tone, published over RTMP in real time,
 * the wall-clock time of day burnt in (drawtext `pts:hms` offset by the time of day at start).
 */
export function startTestPublisher(o: PublisherOptions): ChildProcess {
  const w = o.width ?? 1280;
  const h = o.height ?? 720;
  const fps = o.fps ?? 30;
  const now = new Date();
  const secondsToday = (now.getTime() - new Date(now).setUTCHours(0, 0, 0, 0)) / 1000;
  const clock = o.clock === false ? '' : `,drawtext=text='%{pts\\:hms\\:${secondsToday.toFixed(3)}} UTC':x=24:y=24:fontsize=${Math.round(h / 12)}:fontcolor=white:box=1:boxcolor=black@0.6`;
  const args = [
    '-hide_banner', '-loglevel', 'warning', '-nostdin', '-re',
    '-f', 'lavfi', '-i', `testsrc2=size=${w}x${h}:rate=${fps}`,
    '-f', 'lavfi', '-i', 'sine=frequency=1000:sample_rate=48000',
    ...(o.durationSeconds ? ['-t', String(o.durationSeconds)] : []),
    '-vf', `format=yuv420p${clock}`,
    '-c:v', 'libx264', '-preset', 'veryfast', '-tune', 'zerolatency', '-g', String(fps), '-b:v', '3000k',
    '-c:a', 'aac', '-b:a', '128k', '-ar', '48000',
    '-f', 'flv', o.rtmpUrl,
  ];
  const out = o.logDir ? logFile(o.logDir, 'publisher.log') : 'ignore';
  return spawn('ffmpeg', args, { stdio: ['ignore', out, out] });
}
