// `npm start`: the whole local stack plus a demo stream. Starts wrangler dev and the transcoder,
// creates a stream, publishes the built-in test pattern to it over RTMP and prints where to watch.
// Ctrl-C (SIGINT) or SIGTERM stops every child process.
import { join } from 'node:path';
import { createLogger } from '../transcoder-node/log.ts';
import { ensureDevVars } from './dev-vars.ts';
import { ROOT, startStack, startTestPublisher, stopChild } from './local-stack.ts';
import { ensureSelfSignedCertificate, hasOpenssl } from './self-signed-cert.ts';

const log = createLogger({ service: 'dev-stack' });

const vars = ensureDevVars(ROOT, log);
const port = Number(process.env.PORT ?? 8787);
const rtmpPort = Number(process.env.RTMP_PORT ?? 1935);
const srtPort = Number(process.env.SRT_PORT ?? 9000);
const rtmpsPort = Number(process.env.RTMPS_PORT ?? 1936);
// RTMPS with a self-signed certificate (kept in .wrangler/tls/): encoders must be told not to
// verify it (ffmpeg does not by default; OBS needs the certificate trusted by the system).
const rtmps = hasOpenssl() ? ensureSelfSignedCertificate(join(ROOT, '.wrangler', 'tls')) : undefined;
if (!rtmps) log.warn('openssl not found: no RTMPS listener (node:crypto cannot make a certificate)');
const stack = await startStack({
  workerPort: port,
  rtmpPort,
  srtPort,
  rtmps,
  rtmpsPort,
  healthPort: Number(process.env.TRANSCODER_HEALTH_PORT ?? 8790),
  webrtcPort: Number(process.env.WEBRTC_HTTP_PORT ?? 8088),
  persistDir: join(ROOT, '.wrangler', 'state'),
  logDir: join(ROOT, '.wrangler', 'logs'),
  adminToken: vars.ADMIN_TOKEN!,
  ingestSecret: vars.INGEST_SECRET!,
  roomTokenSecret: vars.ROOM_TOKEN_SECRET!,
  logger: log,
});

const stream = await stack.createStream({ title: 'edgelive demo: test pattern' });
const publisher = startTestPublisher({ rtmpUrl: stream.ingest.rtmp, logDir: join(ROOT, '.wrangler', 'logs') });
log.info('demo stream publishing', { streamId: stream.id });

process.stdout.write(
  [
    '',
    'edgelive is running',
    `  watch:        ${stack.workerUrl}/watch/${stream.id}`,
    `  playlist:     ${stream.playback.hls}`,
    `  publish:      ${stream.ingest.rtmp}   (RTMP, the demo publishes here)`,
    `                ${stream.ingest.rtmps ?? '(no RTMPS listener: openssl is missing)'}   (RTMPS, self-signed: ${rtmps?.certFile ?? '-'})`,
    `                ${stream.ingest.srt ?? '(no SRT listener)'}   (SRT, e.g. ffmpeg ... -f mpegts '<this URL>')`,
    `                ${stream.ingest.whip ?? stack.nodes[0]!.whipUrl}   (WHIP: POST an SDP offer, Authorization: Bearer <streamKey>)`,
    `  admin token:  ${vars.ADMIN_TOKEN}   (from .dev.vars; e.g. curl -H "Authorization: Bearer $TOKEN" ${stack.workerUrl}/api/streams)`,
    `  logs:         .wrangler/logs/`,
    '  Ctrl-C stops everything.',
    '',
  ].join('\n') + '\n',
);

let stopping = false;
async function shutdown(signal: string) {
  if (stopping) return;
  stopping = true;
  log.info('shutting down', { signal });
  await stopChild(publisher);
  await stack.stop();
  process.exit(0);
}
process.on('SIGINT', () => void shutdown('SIGINT'));
process.on('SIGTERM', () => void shutdown('SIGTERM'));
publisher.on('exit', (code) => {
  if (!stopping) log.warn('test publisher exited', { code });
});
stack.worker.on('exit', (code) => {
  if (!stopping) {
    log.error('wrangler dev exited', { code });
    void shutdown('worker-exit');
  }
});
stack.transcoder.on('exit', (code) => {
  if (!stopping) {
    log.error('transcoder exited', { code });
    void shutdown('transcoder-exit');
  }
});
