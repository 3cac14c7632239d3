// Brings up the whole local stack as child processes: `wrangler dev` (workerd with R2, Durable
// Objects and D1), the transcoder, and optionally an ffmpeg test-pattern publisher. Used by
// `npm start`, the end-to-end tests and the benchmarks, so all three run the same thing.
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { createServer } from 'node:net';
import { cpSync, existsSync, mkdirSync, mkdtempSync, openSync, readFileSync, readdirSync, renameSync, rmSync } from 'node:fs';
import { createHash } from 'node:crypto';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import type { Logger } from '../transcoder-node/log.ts';
import type { CertificateFiles } from './self-signed-cert.ts';

export const ROOT = join(dirname(fileURLToPath(import.meta.url)), '..');
const BIN = join(ROOT, 'node_modules', '.bin');
const NODE = join(BIN, 'node');

export interface StackOptions {
  workerPort?: number;
  rtmpPort?: number;
  /** UDP port of the first transcoder's SRT listener (fresh when absent). */
  srtPort?: number;
  /**
   * RTMPS on every transcoder with this certificate (scripts/self-signed-cert.ts makes one);
   * the first one listens on rtmpsPort (fresh when absent). No RTMPS when absent.
   */
  rtmps?: CertificateFiles;
  rtmpsPort?: number;
  healthPort?: number;
  /** TCP port of the first transcoder's WebRTC signalling listener (WHIP; fresh when absent). */
  webrtcPort?: number;
  /** wrangler dev's DevTools inspector port (fresh when absent): CPU profiles of the Worker. */
  inspectorPort?: number;
  /** Where wrangler persists R2, D1 and Durable Objects. */
  persistDir: string;
  /** Where child process logs go. */
  logDir: string;
  adminToken: string;
  ingestSecret: string;
  roomTokenSecret?: string;
  /** Seconds without pushes before a stream ends. */
  endGraceSeconds?: number;
  /** Extra environment for the transcoder(s). */
  transcoderEnv?: Record<string, string>;
  /**
   * The transcoders to run, each with its own ports, node id and region (geo-routed ingest).
   * Default: one node, region `local`, on rtmpPort/healthPort.
   */
  transcoders?: TranscoderSpec[];
  /** Extra Worker variables (`--var`), e.g. WEBHOOK_RETRY_BASE_SECONDS. */
  workerVars?: Record<string, string>;
  logger: Logger;
}

export interface TranscoderSpec {
  nodeId?: string;
  region?: string;
  latitude?: number;
  longitude?: number;
  /** Publishers the node takes (its load is sessions / capacity). */
  capacity?: number;
  env?: Record<string, string>;
}

/** One running transcoder of the stack. */
export interface TranscoderNode {
  nodeId: string;
  region: string;
  /** rtmp://127.0.0.1:PORT/live */
  rtmpUrl: string;
  /** rtmps://127.0.0.1:PORT/live, when the stack runs RTMPS. */
  rtmpsUrl: string | null;
  /** srt://127.0.0.1:PORT */
  srtUrl: string;
  healthUrl: string;
  /** http://127.0.0.1:PORT/whip: the node's WHIP endpoint (WebRTC signalling listener). */
  whipUrl: string;
  process: ChildProcess;
}

export interface Stack {
  workerUrl: string;
  /** http://127.0.0.1:PORT of wrangler dev's inspector (DevTools protocol; `/json` lists targets). */
  inspectorUrl: string;
  /** The first transcoder's RTMP base URL, health URL and process (single-node callers). */
  rtmpUrl: string;
  transcoderHealthUrl: string;
  adminToken: string;
  worker: ChildProcess;
  transcoder: ChildProcess;
  /** Every transcoder started, in order (a restarted node appears again at the end). */
  nodes: TranscoderNode[];
  /** Starts one more transcoder (or the same node id again after it was killed). */
  startTranscoder(spec?: TranscoderSpec): Promise<TranscoderNode>;
  /** Resolves once the origin's registry lists exactly these node ids as healthy. */
  waitForRegistry(nodeIds: string[], timeoutMs?: number): Promise<void>;
  createStream(settings?: Record<string, unknown>): Promise<CreatedStream>;
  stop(): Promise<void>;
}

export interface IngestUrls {
  rtmp: string;
  rtmps?: string | null;
  srt?: string | null;
  whip?: string | null;
  nodeId?: string | null;
  region?: string | null;
}

export interface CreatedStream {
  id: string;
  streamKey: string;
  ingest: IngestUrls & { backup?: IngestUrls | null };
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

/** `wrangler d1 migrations apply` of the catalog into a persist folder. */
function applyMigrations(persistDir: string): void {
  const migrate = spawnSync(
    NODE,
    [join(BIN, 'wrangler'), 'd1', 'migrations', 'apply', 'edgelive-catalog', '--local', '--persist-to', persistDir],
    { cwd: ROOT, encoding: 'utf8', env: { ...process.env, CI: '1', WRANGLER_SEND_METRICS: 'false' } },
  );
  if (migrate.status !== 0) throw new Error(`D1 migrations failed: ${migrate.stderr || migrate.stdout}`);
}

/**
 * Brings the catalog of a persist folder up to date. A folder with no catalog yet gets a copy of
 * one migrated earlier with the same migrations and wrangler (kept in the system's temp folder):
 * applying them starts wrangler, 5–8 s on this machine, which every e2e file and bench paid. A
 * folder that has a catalog (`npm start`'s, kept between runs) gets its pending migrations applied.
 */
function migrateCatalog(persistDir: string, log: Logger): void {
  if (existsSync(join(persistDir, 'v3', 'd1'))) {
    log.info('applying D1 migrations', { persistDir });
    applyMigrations(persistDir);
    return;
  }
  const migrations = join(ROOT, 'workers', 'migrations');
  const hash = createHash('sha256');
  hash.update(JSON.parse(readFileSync(join(ROOT, 'node_modules', 'wrangler', 'package.json'), 'utf8')).version as string);
  for (const name of readdirSync(migrations).sort()) hash.update(name).update(readFileSync(join(migrations, name)));
  const template = join(tmpdir(), `edgelive-catalog-${hash.digest('hex').slice(0, 16)}`);
  if (!existsSync(template)) {
    log.info('applying D1 migrations', { template });
    // Made aside and renamed into place: a stack starting meanwhile never copies half a catalog.
    const staging = mkdtempSync(`${template}-staging-`);
    applyMigrations(staging);
    try {
      renameSync(staging, template);
    } catch {
      rmSync(staging, { recursive: true, force: true }); // another stack made it first
    }
  }
  cpSync(template, persistDir, { recursive: true });
}

export async function startStack(opts: StackOptions): Promise<Stack> {
  const log = opts.logger;
  const workerPort = opts.workerPort ?? (await freePort());
  const rtmpPort = opts.rtmpPort ?? (await freePort());
  const healthPort = opts.healthPort ?? (await freePort());
  // Free on TCP; a UDP port of the same number is as good as free on a dev machine.
  const srtPort = opts.srtPort ?? (await freePort());
  const rtmpsPort = opts.rtmps ? (opts.rtmpsPort ?? (await freePort())) : null;
  const workerUrl = `http://127.0.0.1:${workerPort}`;
  const inspectorPort = opts.inspectorPort ?? (await freePort());
  // Chosen before the Worker starts: its Rooms send voice groups past the mesh to this node's SFU.
  const webrtcPort = opts.webrtcPort ?? (await freePort());
  const voiceSfuSecret = `${opts.ingestSecret}-voice-sfu`;
  mkdirSync(opts.persistDir, { recursive: true });
  spawnSync(NODE, [join(ROOT, 'scripts', 'build-assets.mjs')], { stdio: 'inherit' });

  migrateCatalog(opts.persistDir, log);

  const vars: Record<string, string> = {
    ADMIN_TOKEN: opts.adminToken,
    INGEST_SECRET: opts.ingestSecret,
    ROOM_TOKEN_SECRET: opts.roomTokenSecret ?? opts.ingestSecret + '-rooms',
    RTMP_INGEST_URL: `rtmp://127.0.0.1:${rtmpPort}/live`,
    SRT_INGEST_URL: `srt://127.0.0.1:${srtPort}`,
    ...(rtmpsPort !== null ? { RTMPS_INGEST_URL: `rtmps://127.0.0.1:${rtmpsPort}/live` } : {}),
    END_GRACE_SECONDS: String(opts.endGraceSeconds ?? 8),
    // A local stack's webhook receivers are on this machine (http://127.0.0.1:…): never deployed.
    WEBHOOK_ALLOW_PRIVATE: '1',
    // Party voice past the mesh goes through the first node's SFU (VOICE_MESH_MAX in workerVars
    // lowers the switch, so a test needs 3 pages, not 9).
    VOICE_SFU_URL: `http://127.0.0.1:${webrtcPort}/voice`,
    VOICE_SFU_SECRET: voiceSfuSecret,
    ...opts.workerVars,
  };
  const varArgs = Object.entries(vars).flatMap(([k, v]) => ['--var', `${k}:${v}`]);
  log.info('starting wrangler dev', { url: workerUrl });
  const workerLog = logFile(opts.logDir, 'wrangler.log');
  const worker = spawn(
    NODE,
    [
      join(BIN, 'wrangler'),
      'dev',
      '--ip',
      '127.0.0.1',
      '--port',
      String(workerPort),
      '--persist-to',
      opts.persistDir,
      '--inspector-port',
      String(inspectorPort),
      '--show-interactive-dev-session=false',
      ...varArgs,
    ],
    {
      cwd: ROOT,
      stdio: ['ignore', workerLog, workerLog],
      // A dev registry of its own: every `wrangler dev` on the machine registers its workers in
      // the shared one, and each change there reloads every other session's Worker (restarting
      // its Durable Objects and dropping held requests) — other engineers' stacks, here.
      env: {
        ...process.env,
        CI: '1',
        WRANGLER_SEND_METRICS: 'false',
        CLOUDFLARE_CF_FETCH_ENABLED: 'false',
        WRANGLER_REGISTRY_PATH: join(opts.persistDir, 'dev-registry'),
      },
    },
  );

  const nodes: TranscoderNode[] = [];
  /** Spawns a transcoder; resolves once its health endpoint answers. Ports are fresh unless given. */
  const startTranscoder = async (
    spec: TranscoderSpec = {},
    ports: { rtmp?: number; health?: number; srt?: number; webrtc?: number; rtmps?: number | null } = {},
  ): Promise<TranscoderNode> => {
    const rtmp = ports.rtmp ?? (await freePort());
    const health = ports.health ?? (await freePort());
    const srt = ports.srt ?? (await freePort());
    const signalling = ports.webrtc ?? (await freePort());
    const rtmps = opts.rtmps ? (ports.rtmps ?? (await freePort())) : null;
    const nodeId = spec.nodeId ?? `local-${rtmp}`;
    const region = spec.region ?? 'local';
    log.info('starting transcoder', {
      nodeId,
      region,
      rtmp: `rtmp://127.0.0.1:${rtmp}/live`,
      rtmps: rtmps === null ? null : `rtmps://127.0.0.1:${rtmps}/live`,
      srt: `srt://127.0.0.1:${srt}`,
    });
    const out = logFile(opts.logDir, spec.nodeId ? `transcoder-${nodeId}.log` : 'transcoder.log');
    const child = spawn(NODE, [join(ROOT, 'transcoder-node', 'main.ts')], {
      cwd: ROOT,
      stdio: ['ignore', out, out],
      env: {
        ...process.env,
        ORIGIN_URL: workerUrl,
        INGEST_SECRET: opts.ingestSecret,
        RTMP_HOST: '127.0.0.1',
        RTMP_PORT: String(rtmp),
        SRT_PORT: String(srt),
        ...(opts.rtmps && rtmps !== null
          ? { RTMPS_PORT: String(rtmps), RTMPS_CERT_FILE: opts.rtmps.certFile, RTMPS_KEY_FILE: opts.rtmps.keyFile }
          : {}),
        HEALTH_PORT: String(health),
        // WebRTC signalling and media on loopback: browser pages of the Worker's origin publish here.
        WEBRTC_HTTP_HOST: '127.0.0.1',
        WEBRTC_HTTP_PORT: String(signalling),
        WEBRTC_HOST: '127.0.0.1',
        WEBRTC_CORS_ORIGINS: workerUrl,
        VOICE_SFU_SECRET: voiceSfuSecret,
        NODE_ID: nodeId,
        REGION: region,
        ...(spec.latitude !== undefined ? { LAT: String(spec.latitude) } : {}),
        ...(spec.longitude !== undefined ? { LON: String(spec.longitude) } : {}),
        ...(spec.capacity !== undefined ? { CAPACITY: String(spec.capacity) } : {}),
        ...opts.transcoderEnv,
        ...spec.env,
      },
    });
    // HEALTH_HOST moves the health endpoint off loopback's 127.0.0.1 (0.0.0.0 still answers there).
    const healthHost = spec.env?.HEALTH_HOST ?? opts.transcoderEnv?.HEALTH_HOST ?? '127.0.0.1';
    const healthUrl = `http://${healthHost === '0.0.0.0' ? '127.0.0.1' : healthHost}:${health}/health`;
    const node: TranscoderNode = {
      nodeId,
      region,
      rtmpUrl: `rtmp://127.0.0.1:${rtmp}/live`,
      srtUrl: `srt://127.0.0.1:${srt}`,
      rtmpsUrl: rtmps === null ? null : `rtmps://127.0.0.1:${rtmps}/live`,
      healthUrl,
      whipUrl: `http://127.0.0.1:${signalling}/whip`,
      process: child,
    };
    nodes.push(node);
    await waitForHttp(node.healthUrl, 30_000, `transcoder ${nodeId}`);
    return node;
  };

  const stop = async () => {
    await Promise.all([...nodes.map((n) => stopChild(n.process)), stopChild(worker)]);
  };
  try {
    await waitForHttp(`${workerUrl}/health`, 60_000, 'wrangler dev');
    const specs = opts.transcoders ?? [{}];
    // The first node keeps the ports chosen above (npm start's 1935 / 8790, and the fallback URLs).
    await startTranscoder(specs[0], { rtmp: rtmpPort, health: healthPort, srt: srtPort, webrtc: webrtcPort, rtmps: rtmpsPort });
    for (const spec of specs.slice(1)) await startTranscoder(spec);
  } catch (err) {
    await stop();
    throw err;
  }

  const waitForRegistry = async (nodeIds: string[], timeoutMs = 20_000) => {
    const want = [...nodeIds].sort().join(',');
    const deadline = Date.now() + timeoutMs;
    let seen = '';
    while (Date.now() < deadline) {
      const res = await fetch(`${workerUrl}/api/ingest/nodes`, { headers: { authorization: `Bearer ${opts.adminToken}` } });
      if (res.ok) {
        const { nodes: listed } = (await res.json()) as { nodes: Array<{ nodeId: string }> };
        seen = listed
          .map((n) => n.nodeId)
          .sort()
          .join(',');
        if (seen === want) return;
      } else await res.body?.cancel();
      await new Promise((r) => setTimeout(r, 200));
    }
    throw new Error(`the ingest registry lists [${seen}], expected [${want}]`);
  };

  return {
    workerUrl,
    inspectorUrl: `http://127.0.0.1:${inspectorPort}`,
    rtmpUrl: nodes[0]!.rtmpUrl,
    transcoderHealthUrl: nodes[0]!.healthUrl,
    adminToken: opts.adminToken,
    worker,
    transcoder: nodes[0]!.process,
    nodes,
    startTranscoder: (spec) => startTranscoder(spec),
    waitForRegistry,
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
  /** rtmp://… (or rtmps://…) publishes FLV over RTMP; srt://…?streamid=… publishes MPEG-TS over SRT. */
  rtmpUrl: string;
  width?: number;
  height?: number;
  fps?: number;
  /** Seconds to publish; omitted = until stopped. */
  durationSeconds?: number;
  logDir?: string;
  /** Burn the wall-clock time (ms) into the picture. */
  clock?: boolean;
  /** Send the 1 kHz tone (default true); false publishes video only (`-an`). */
  audio?: boolean;
  /** Send the test pattern (default true); false publishes audio only (`-vn`). */
  video?: boolean;
  /** Output options before the URL, e.g. `['-tls_verify', '1', '-ca_file', cert]` for rtmps://. */
  outputOptions?: string[];
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
  const clock =
    o.clock === false
      ? ''
      : `,drawtext=text='%{pts\\:hms\\:${secondsToday.toFixed(3)}} UTC':x=24:y=24:fontsize=${Math.round(h / 12)}:fontcolor=white:box=1:boxcolor=black@0.6`;
  const video = o.video !== false;
  const audio = o.audio !== false;
  const args = [
    '-hide_banner',
    '-loglevel',
    'warning',
    '-nostdin',
    '-re',
    ...(video ? ['-f', 'lavfi', '-i', `testsrc2=size=${w}x${h}:rate=${fps}`] : []),
    ...(audio ? ['-f', 'lavfi', '-i', 'sine=frequency=1000:sample_rate=48000'] : []),
    ...(o.durationSeconds ? ['-t', String(o.durationSeconds)] : []),
    ...(video
      ? [
          '-vf',
          `format=yuv420p${clock}`,
          '-c:v',
          'libx264',
          '-preset',
          'veryfast',
          '-tune',
          'zerolatency',
          '-g',
          String(fps),
          '-b:v',
          '3000k',
        ]
      : ['-vn']),
    ...(audio ? ['-c:a', 'aac', '-b:a', '128k', '-ar', '48000'] : ['-an']),
    // An srt:// URL publishes MPEG-TS over SRT instead (ffmpeg's libsrt caller).
    ...(o.outputOptions ?? []),
    ...(o.rtmpUrl.startsWith('srt://') ? ['-f', 'mpegts'] : ['-f', 'flv']),
    o.rtmpUrl,
  ];
  const out = o.logDir ? logFile(o.logDir, 'publisher.log') : 'ignore';
  return spawn('ffmpeg', args, { stdio: ['ignore', out, out] });
}
