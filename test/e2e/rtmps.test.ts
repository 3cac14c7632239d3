// RTMPS end to end: the media node terminates TLS on its own port with a certificate from its
// configuration (self-signed here, as `npm start` makes one), streams are handed rtmps:// URLs,
// ffmpeg publishes over rtmps:// verifying that certificate, and the stream plays as LL-HLS.
import { spawnSync, type ChildProcess } from 'node:child_process';
import { X509Certificate } from 'node:crypto';
import { copyFileSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { connect } from 'node:tls';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startStack, startTestPublisher, stopChild, type CreatedStream, type Stack } from '../../scripts/local-stack.ts';
import { ensureSelfSignedCertificate, type CertificateFiles } from '../../scripts/self-signed-cert.ts';
import { createLogger } from '../../transcoder-node/log.ts';
import { followPlaylist } from '../support/llhls-client.ts';

const log = createLogger({ service: 'e2e-rtmps' });
const LADDER = [
  { name: '240p', kind: 'video', width: 426, height: 240, videoBitrate: 300_000 },
  { name: 'audio', kind: 'audio', audioBitrate: 64_000 },
];

let dir: string;
let cert: CertificateFiles;
let stack: Stack;
let stream: CreatedStream;
let publisher: ChildProcess | undefined;

beforeAll(async () => {
  dir = mkdtempSync(join(tmpdir(), 'edgelive-e2e-rtmps-'));
  cert = ensureSelfSignedCertificate(join(dir, 'tls'));
  stack = await startStack({
    persistDir: join(dir, 'state'),
    logDir: join(dir, 'logs'),
    adminToken: 'e2e-admin',
    ingestSecret: 'e2e-ingest-secret',
    rtmps: cert,
    logger: log,
  });
  await stack.waitForRegistry([stack.nodes[0]!.nodeId]);
  stream = await stack.createStream({ title: 'rtmps', ladder: LADDER });
});

afterAll(async () => {
  await stopChild(publisher);
  await stack?.stop();
  if (dir && !process.env.KEEP_E2E) rmSync(dir, { recursive: true, force: true });
});

describe('RTMPS ingest end to end', () => {
  it("a new stream is handed the node's rtmps:// URL beside its rtmp:// one", () => {
    const node = stack.nodes[0]!;
    expect(node.rtmpsUrl).toMatch(/^rtmps:\/\/127\.0\.0\.1:\d+\/live$/);
    expect(stream.ingest).toMatchObject({
      rtmp: `${node.rtmpUrl}/${stream.streamKey}`,
      rtmps: `${node.rtmpsUrl}/${stream.streamKey}`,
      nodeId: node.nodeId,
    });
  });

  it('ffmpeg publishes over rtmps:// (certificate verified) and the stream plays as LL-HLS', async () => {
    publisher = startTestPublisher({
      rtmpUrl: stream.ingest.rtmps!,
      width: 426,
      height: 240,
      logDir: join(dir, 'logs'),
      // As a careful encoder does: check the node's certificate (its CA is the self-signed one).
      outputOptions: ['-tls_verify', '1', '-ca_file', cert.certFile],
    });
    const url = `${stack.workerUrl}/live/${stream.id}/240p/index.m3u8`;
    const deadline = Date.now() + 60_000;
    while (
      !(await fetch(url).then(
        (r) => r.ok,
        () => false,
      ))
    ) {
      if (Date.now() > deadline) throw new Error('no playlist within 60 s of publishing over RTMPS');
      await new Promise((r) => setTimeout(r, 250));
    }
    const { samples, violations } = await followPlaylist({ url, updates: 15, otherRenditions: 1 });
    expect(violations).toEqual([]);
    expect(samples).toHaveLength(15);
    expect(samples.at(-1)!.playlist.segments.length).toBeGreaterThanOrEqual(2);
    // An independent player decodes it.
    const played = spawnSync(
      'ffmpeg',
      ['-hide_banner', '-loglevel', 'error', '-i', stream.playback.hls, '-t', '3', '-map', '0:v:0', '-map', '0:a:0', '-f', 'null', '-'],
      { encoding: 'utf8', timeout: 60_000 },
    );
    expect(played.stderr.trim()).toBe('');
    expect(played.status).toBe(0);
    expect(publisher.exitCode).toBeNull();
  });

  it('SIGHUP reloads a renewed certificate for new connections; the publisher already connected goes on', async () => {
    const port = Number(new URL(stack.nodes[0]!.rtmpsUrl!).port);
    const served = () =>
      new Promise<string>((resolve, reject) => {
        const socket = connect({ host: '127.0.0.1', port, rejectUnauthorized: false }, () => {
          resolve(socket.getPeerCertificate().fingerprint256);
          socket.destroy();
        });
        socket.on('error', reject);
      });
    const fingerprint = (file: string) => new X509Certificate(readFileSync(file)).fingerprint256;
    expect(await served()).toBe(fingerprint(cert.certFile));
    const renewed = ensureSelfSignedCertificate(join(dir, 'renewed'));
    copyFileSync(renewed.keyFile, cert.keyFile);
    copyFileSync(renewed.certFile, cert.certFile);
    stack.nodes[0]!.process.kill('SIGHUP');
    const deadline = Date.now() + 10_000;
    while ((await served()) !== fingerprint(renewed.certFile)) {
      if (Date.now() > deadline) throw new Error('the renewed certificate was not served');
      await new Promise((r) => setTimeout(r, 100));
    }
    const before = (await (
      await fetch(`${stack.workerUrl}/api/streams/${stream.id}`, { headers: { authorization: `Bearer ${stack.adminToken}` } })
    ).json()) as { ingestSession: { epoch: number } };
    await new Promise((r) => setTimeout(r, 1500));
    const after = (await (
      await fetch(`${stack.workerUrl}/api/streams/${stream.id}`, { headers: { authorization: `Bearer ${stack.adminToken}` } })
    ).json()) as { status: string; ingestSession: { epoch: number; lastPushAt: string } };
    expect(after.status).toBe('live');
    expect(after.ingestSession.epoch).toBe(before.ingestSession.epoch);
    expect(Date.now() - Date.parse(after.ingestSession.lastPushAt)).toBeLessThan(1500);
    expect(publisher!.exitCode).toBeNull();
  });
});
