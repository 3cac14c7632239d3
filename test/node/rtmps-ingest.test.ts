// RTMPS: the RTMP ingest terminating TLS itself. ffmpeg publishes over rtmps:// (checking the
// certificate against its CA file) and the session's FLV decodes; a plain RTMP client on the TLS
// port gets nowhere; a renewed certificate is served to new connections without a restart.
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { connect } from 'node:tls';
import { X509Certificate } from 'node:crypto';
import { PassThrough } from 'node:stream';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { RtmpIngestServer, type RtmpPublishSession } from '../../transcoder-node/rtmp/index.ts';
import { ffmpegPublish, recordingLogger, runFfmpeg, waitUntil } from '../support/rtmp-testing.ts';
import { ensureSelfSignedCertificate, type CertificateFiles } from '../../scripts/self-signed-cert.ts';

let dir: string;
let cert: CertificateFiles;

beforeAll(() => {
  dir = mkdtempSync(join(tmpdir(), 'rtmps-'));
  cert = ensureSelfSignedCertificate(join(dir, 'a'));
});
afterAll(() => rmSync(dir, { recursive: true, force: true }));

function tlsServer(sessions: RtmpPublishSession[], files = cert) {
  const logger = recordingLogger();
  const server = new RtmpIngestServer({
    host: '127.0.0.1',
    port: 0,
    tls: { cert: readFileSync(files.certFile), key: readFileSync(files.keyFile) },
    logger,
    authorize: async ({ streamKey }) => (streamKey === 'good-key-0001' ? { ok: true } : { ok: false, reason: 'unknown key' }),
    onPublish: (s) => sessions.push(s),
  });
  return { server, logger };
}

/** The SHA-256 fingerprint of the certificate a TLS client is shown. */
function servedFingerprint(port: number): Promise<string> {
  return new Promise((resolve, reject) => {
    const socket = connect({ host: '127.0.0.1', port, rejectUnauthorized: false }, () => {
      resolve(socket.getPeerCertificate().fingerprint256);
      socket.destroy();
    });
    socket.on('error', reject);
  });
}

describe('RTMPS ingest', () => {
  it('ffmpeg publishes over rtmps:// verifying the certificate; the FLV decodes (h264 + aac)', async () => {
    const sessions: RtmpPublishSession[] = [];
    const { server, logger } = tlsServer(sessions);
    await server.listen();
    try {
      const url = `rtmps://127.0.0.1:${server.address().port}/live/good-key-0001`;
      // tls_verify with the self-signed certificate as the CA: ffmpeg checks the chain and the host.
      const publisher = runFfmpeg('ffmpeg', [
        '-hide_banner',
        '-loglevel',
        'error',
        '-re',
        '-f',
        'lavfi',
        '-i',
        'testsrc2=size=320x240:rate=30',
        '-f',
        'lavfi',
        '-i',
        'sine=frequency=440:sample_rate=44100',
        '-t',
        '2',
        '-c:v',
        'libx264',
        '-preset',
        'ultrafast',
        '-tune',
        'zerolatency',
        '-g',
        '30',
        '-c:a',
        'aac',
        '-b:a',
        '64k',
        '-tls_verify',
        '1',
        '-ca_file',
        cert.certFile,
        '-f',
        'flv',
        url,
      ]);
      await waitUntil(() => sessions.length === 1, 15_000, 'the session');
      const toDecoder = new PassThrough();
      sessions[0]!.flv.pipe(toDecoder);
      const decoder = runFfmpeg(
        'ffprobe',
        ['-v', 'error', '-count_frames', '-of', 'json', '-show_entries', 'stream=codec_name,nb_read_frames', '-f', 'flv', '-i', 'pipe:0'],
        toDecoder,
      );
      expect((await publisher.exited).code).toBe(0);
      const probed = JSON.parse(await decoder.stdout) as { streams: Array<{ codec_name: string; nb_read_frames: string }> };
      expect(probed.streams.map((s) => s.codec_name).sort()).toEqual(['aac', 'h264']);
      expect(Number(probed.streams.find((s) => s.codec_name === 'h264')!.nb_read_frames)).toBeGreaterThanOrEqual(58);
      expect(logger.lines.find((l) => l.msg === 'rtmp ingest listening')).toMatchObject({ tls: true });
    } finally {
      await server.close();
    }
  });

  it('a wrong key is refused over TLS as over TCP; ffmpeg verifying against another CA refuses the server', async () => {
    const sessions: RtmpPublishSession[] = [];
    const { server } = tlsServer(sessions);
    await server.listen();
    try {
      const port = server.address().port;
      const refused = await ffmpegPublish(`rtmps://127.0.0.1:${port}/live/wrong-key-0001`, { seconds: 1 }).exited;
      expect(refused.code).not.toBe(0);
      const other = ensureSelfSignedCertificate(join(dir, 'other'));
      const untrusted = await runFfmpeg('ffmpeg', [
        '-hide_banner',
        '-loglevel',
        'error',
        '-f',
        'lavfi',
        '-i',
        'testsrc2=size=160x120:rate=30',
        '-t',
        '1',
        '-c:v',
        'libx264',
        '-preset',
        'ultrafast',
        '-tls_verify',
        '1',
        '-ca_file',
        other.certFile,
        '-f',
        'flv',
        `rtmps://127.0.0.1:${port}/live/good-key-0001`,
      ]).exited;
      expect(untrusted.code).not.toBe(0);
      expect(sessions).toEqual([]);
    } finally {
      await server.close();
    }
  });

  it('a plain RTMP publisher on the TLS port is dropped without a session', async () => {
    const sessions: RtmpPublishSession[] = [];
    const { server, logger } = tlsServer(sessions);
    await server.listen();
    try {
      const plain = await ffmpegPublish(`rtmp://127.0.0.1:${server.address().port}/live/good-key-0001`, { seconds: 1 }).exited;
      expect(plain.code).not.toBe(0);
      await waitUntil(() => logger.lines.some((l) => l.msg === 'rtmp connection closed'), 5000, 'the connection to close');
      // Its RTMP handshake bytes are not a TLS ClientHello: the TLS layer refuses them.
      expect(logger.lines.find((l) => l.msg === 'rtmp connection closed')).toMatchObject({
        code: 'disconnected',
        reason: expect.stringMatching(/during the handshake \(ERR_SSL_/),
      });
      expect(sessions).toEqual([]);
    } finally {
      await server.close();
    }
  });

  it('setCertificate: new connections get the renewed certificate; a key that does not match is refused and the old one kept', async () => {
    const { server } = tlsServer([]);
    await server.listen();
    try {
      const port = server.address().port;
      const fingerprint = (f: CertificateFiles) => new X509Certificate(readFileSync(f.certFile)).fingerprint256;
      expect(await servedFingerprint(port)).toBe(fingerprint(cert));
      const renewed = ensureSelfSignedCertificate(join(dir, 'renewed'));
      expect(() => server.setCertificate({ cert: readFileSync(renewed.certFile), key: readFileSync(cert.keyFile) })).toThrow();
      expect(await servedFingerprint(port)).toBe(fingerprint(cert));
      server.setCertificate({ cert: readFileSync(renewed.certFile), key: readFileSync(renewed.keyFile) });
      expect(await servedFingerprint(port)).toBe(fingerprint(renewed));
    } finally {
      await server.close();
    }
  });
});
