// Backup ingest on the real stack: two media nodes ("eu-1" Frankfurt, "us-1" Ashburn) with RTMP,
// RTMPS and SRT. A new stream gets a primary and a backup ingest on the two nodes; an encoder
// configured with both (as an encoder's "backup server" setting does) publishes to the primary,
// the primary is killed (-9), the encoder moves to the backup by itself, and the stream goes on
// with a discontinuity: new epoch on the backup node, MSNs growing, valid LL-HLS throughout.
import { execFile, spawn, type ChildProcess } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ROOT, startStack, stopChild, type Stack } from '../../scripts/local-stack.ts';
import { ensureSelfSignedCertificate } from '../../scripts/self-signed-cert.ts';
import { createLogger } from '../../transcoder-node/log.ts';
import { followPlaylist, parsePlaylist, type ParsedPlaylist } from '../support/llhls-client.ts';

const exec = promisify(execFile);
const log = createLogger({ service: 'e2e-backup' });
const LADDER = [
  { name: '180p', kind: 'video', width: 320, height: 180, videoBitrate: 250_000 },
  { name: 'audio', kind: 'audio', audioBitrate: 64_000 },
];
const EU = { nodeId: 'eu-1', region: 'eu-central', latitude: 50.11, longitude: 8.68 };
const US = { nodeId: 'us-1', region: 'us-east', latitude: 39.04, longitude: -77.49 };
const LONDON = '51.5074,-0.1278';

interface Ingest {
  rtmp: string;
  rtmps: string | null;
  srt: string | null;
  nodeId: string;
  region: string;
}
interface Created {
  id: string;
  streamKey: string;
  ingest: Ingest & { backup: Ingest | null };
}

let dir: string;
let stack: Stack;
let stream: Created;
let encoder: FailoverEncoder | undefined;

/**
 * An encoder configured with a primary and a backup server, as hardware and software encoders
 * offer: it publishes to the first URL and, whenever its connection fails, to the next one,
 * without anyone touching it. (ffmpeg itself has no such setting; this loop is that setting.)
 */
class FailoverEncoder {
  readonly used: string[] = [];
  private readonly urls: string[];
  private child: ChildProcess | null = null;
  private stopped = false;
  constructor(urls: string[]) {
    this.urls = urls;
    this.start(0);
  }
  private start(i: number): void {
    if (this.stopped) return;
    const url = this.urls[i % this.urls.length]!;
    this.used.push(url);
    const child = spawn(
      'ffmpeg',
      [
        '-hide_banner',
        '-loglevel',
        'error',
        '-re',
        '-f',
        'lavfi',
        '-i',
        'testsrc2=size=320x180:rate=30',
        '-f',
        'lavfi',
        '-i',
        'sine=frequency=1000:sample_rate=48000',
        '-c:v',
        'libx264',
        '-preset',
        'veryfast',
        '-tune',
        'zerolatency',
        '-g',
        '30',
        '-b:v',
        '500k',
        '-c:a',
        'aac',
        '-b:a',
        '64k',
        '-f',
        'flv',
        url,
      ],
      { stdio: 'ignore' },
    );
    this.child = child;
    // Encoders wait a moment before they reconnect; one second here.
    child.once('exit', () => setTimeout(() => this.start(i + 1), 1000));
  }
  async stop(): Promise<void> {
    this.stopped = true;
    await stopChild(this.child ?? undefined);
  }
}

const admin = () => ({ authorization: `Bearer ${stack.adminToken}` });
const node = (id: string) => stack.nodes.find((n) => n.nodeId === id)!;
const playlistUrl = () => `${stack.workerUrl}/live/${stream.id}/180p/index.m3u8`;
const msnOf = (pl: ParsedPlaylist, i: number) => pl.mediaSequence + (pl.skip?.skippedSegments ?? 0) + i;

async function playlist(): Promise<ParsedPlaylist> {
  const res = await fetch(playlistUrl());
  if (!res.ok) throw new Error(`playlist: ${res.status}`);
  return parsePlaylist(await res.text());
}

async function ingestSession(): Promise<{ nodeId: string; epoch: number } | null> {
  const res = await fetch(`${stack.workerUrl}/api/streams/${stream.id}`, { headers: admin() });
  return ((await res.json()) as { ingestSession: { nodeId: string; epoch: number } | null }).ingestSession;
}

async function until<T>(what: string, fn: () => Promise<T | null | undefined | false>, timeoutMs = 30_000): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const v = await fn().catch(() => null);
    if (v) return v;
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 250));
  }
}

beforeAll(async () => {
  dir = mkdtempSync(join(tmpdir(), 'edgelive-backup-'));
  stack = await startStack({
    persistDir: join(dir, 'state'),
    logDir: join(dir, 'logs'),
    adminToken: 'e2e-admin',
    ingestSecret: 'e2e-ingest-secret',
    // Long enough that the stream does not end while the encoder moves to the backup.
    endGraceSeconds: 15,
    workerVars: { DEV_GEO_OVERRIDE: '1' },
    transcoderEnv: { HEARTBEAT_MS: '1000', THUMBNAIL_INTERVAL_SECONDS: '0' },
    transcoders: [EU, US],
    rtmps: ensureSelfSignedCertificate(join(dir, 'tls')),
    logger: log,
  });
  await stack.waitForRegistry([EU.nodeId, US.nodeId]);
});

afterAll(async () => {
  await encoder?.stop();
  await stack?.stop();
  if (dir && !process.env.KEEP_E2E) rmSync(dir, { recursive: true, force: true });
});

describe('backup ingest', () => {
  it('POST /api/streams answers a primary (nearest) and a backup ingest on the other node, each with RTMP, RTMPS and SRT', async () => {
    const res = await fetch(`${stack.workerUrl}/api/streams`, {
      method: 'POST',
      headers: { ...admin(), 'content-type': 'application/json', 'x-edgelive-dev-location': LONDON },
      // The backup takes the stream the moment the encoder reaches it (`allow`), not after the
      // primary has been quiet for TAKEOVER_QUIET_SECONDS (the default policy; docs/api.md).
      body: JSON.stringify({ title: 'backup', ladder: LADDER, takeover: 'allow' }),
    });
    expect(res.status).toBe(201);
    stream = (await res.json()) as Created;
    const urls = (id: string) => ({
      rtmp: `${node(id).rtmpUrl}/${stream.streamKey}`,
      rtmps: `${node(id).rtmpsUrl}/${stream.streamKey}`,
      srt: `${node(id).srtUrl}?streamid=${stream.streamKey}`,
      nodeId: id,
    });
    expect(stream.ingest).toMatchObject({ ...urls('eu-1'), region: 'eu-central', backup: { ...urls('us-1'), region: 'us-east' } });
  });

  it('the CLI prints both', async () => {
    const { stdout } = await exec(
      join(ROOT, 'node_modules', '.bin', 'node'),
      [join(ROOT, 'bin', 'edgelive.mjs'), 'streams', 'create', '--title', 'from the cli'],
      {
        env: { ...process.env, EDGELIVE_URL: stack.workerUrl, EDGELIVE_ADMIN_TOKEN: stack.adminToken },
      },
    );
    const primary = /^ {2}publish\s+(\S+)\/live\/sk_\w+$/m.exec(stdout)?.[1];
    const backup = /^ {2}backup rtmps\s+(\S+)\/live\/sk_\w+$/m.exec(stdout)?.[1];
    const bases = stack.nodes.map((n) => [n.rtmpUrl.replace(/\/live$/, ''), n.rtmpsUrl!.replace(/\/live$/, '')]);
    // Two different nodes: the RTMP base of one, the RTMPS base of the other.
    const p = bases.findIndex(([rtmp]) => rtmp === primary);
    const b = bases.findIndex(([, rtmps]) => rtmps === backup);
    expect({ p: p >= 0, b: b >= 0, different: p !== b }, stdout).toEqual({ p: true, b: true, different: true });
  });

  it('an encoder with both URLs fails over when the primary node dies: the stream goes on from the backup with a discontinuity', async () => {
    encoder = new FailoverEncoder([stream.ingest.rtmps!, stream.ingest.backup!.rtmps!]);
    const before = await until('three segments from the primary', async () => {
      const pl = await playlist();
      return pl.segments.length >= 3 ? pl : null;
    });
    expect(await ingestSession()).toMatchObject({ nodeId: 'eu-1', epoch: 1 });

    const primary = node('eu-1');
    const killedAt = Date.now();
    primary.process.kill('SIGKILL');
    await new Promise((r) => primary.process.once('exit', r));

    // Nobody touches the encoder: it reconnects to the backup, which takes the stream over.
    await until('the lease on the backup node', async () => (await ingestSession())?.nodeId === 'us-1');
    const leasedAfterMs = Date.now() - killedAt;
    expect((await ingestSession())!.epoch).toBe(2);
    expect(encoder.used).toEqual([stream.ingest.rtmps, stream.ingest.backup!.rtmps]);

    const after = await until('two segments from the backup after a discontinuity', async () => {
      const pl = await playlist();
      const disc = pl.segments.findIndex((s) => s.discontinuity);
      return disc >= 0 && pl.segments.length - disc >= 2 ? pl : null;
    });
    const disc = after.segments.findIndex((s) => s.discontinuity);
    log.info('failed over to the backup', { leasedAfterMs, segmentsAfterMs: Date.now() - killedAt });
    expect(after.segments[disc]!.uri.startsWith('2/')).toBe(true);
    expect(after.segments[disc]!.map!.uri).not.toBe(after.segments[disc - 1]!.map!.uri);
    // Media sequence numbers only grow: the backup's epoch continues after the primary's.
    expect(msnOf(after, disc)).toBeGreaterThanOrEqual(msnOf(before, before.segments.length - 1) + 1);
    expect(after.endList).toBeFalsy();

    // A player following with blocking reloads sees valid LL-HLS from the backup.
    const { samples, violations } = await followPlaylist({ url: playlistUrl(), updates: 8, otherRenditions: 1 });
    expect(violations).toEqual([]);
    expect(samples).toHaveLength(8);

    // The dead node leaves the registry: new streams get no backup until a second node is healthy.
    await stack.waitForRegistry(['us-1'], 15_000);
    const lone = await fetch(`${stack.workerUrl}/api/streams`, {
      method: 'POST',
      headers: { ...admin(), 'content-type': 'application/json' },
      body: '{}',
    });
    expect(((await lone.json()) as Created).ingest).toMatchObject({ nodeId: 'us-1', backup: null });
  });
});
