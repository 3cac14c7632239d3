// The transcoder service: RTMP ingest → key check and lease at the origin → ffmpeg ABR ladder →
// CMAF parts → signed pushes to the origin. Health and metrics over HTTP; clean shutdown on
// SIGINT/SIGTERM (publishers dropped, ffmpeg stopped, pending pushes flushed, origin told).
import { createServer } from 'node:http';
import { hostname } from 'node:os';
import { createLogger } from './log.ts';
import { Metrics } from './metrics.ts';
import { OriginClient, OriginError } from './origin-client.ts';
import { RtmpIngestServer } from './rtmp/server.ts';
import { IngestSession } from './session.ts';
import type { AuthorizeResponse } from '../workers/lib/ingest-protocol.ts';

const env = process.env;
const config = {
  originUrl: env.ORIGIN_URL ?? 'http://127.0.0.1:8787',
  ingestSecret: env.INGEST_SECRET ?? '',
  rtmpHost: env.RTMP_HOST ?? '0.0.0.0',
  rtmpPort: Number(env.RTMP_PORT ?? 1935),
  healthPort: Number(env.HEALTH_PORT ?? 8790),
  nodeId: env.NODE_ID ?? `${hostname()}-${process.pid}`,
  region: env.REGION ?? 'local',
  /** Seconds between JPEG thumbnails of the top rendition (0: none). */
  thumbnailIntervalSeconds: Number(env.THUMBNAIL_INTERVAL_SECONDS ?? 4),
};

const log = createLogger({ service: 'transcoder', nodeId: config.nodeId });
if (!config.ingestSecret) {
  log.error('INGEST_SECRET is not set: the origin would refuse every push');
  process.exit(1);
}

const metrics = new Metrics();
const origin = new OriginClient({ baseUrl: config.originUrl, secret: config.ingestSecret });
const sessions = new Map<string, IngestSession>();

const rtmp = new RtmpIngestServer<AuthorizeResponse>({
  host: config.rtmpHost,
  port: config.rtmpPort,
  logger: log.child({ component: 'rtmp' }),
  // The key is checked (and the stream's lease taken) before the publisher may send media.
  authorize: async ({ streamKey }) => {
    try {
      const lease = await origin.authorize(streamKey, config.nodeId, config.region);
      return { ok: true as const, context: lease };
    } catch (err) {
      metrics.sessionsRefused++;
      const reason = err instanceof OriginError ? `${err.code}: ${err.message}` : String(err);
      return { ok: false as const, reason };
    }
  },
  onPublish: (session) => {
    const lease = session.context!;
    metrics.sessionsStarted++;
    const previous = sessions.get(lease.streamId);
    if (previous) void previous.stop('the publisher reconnected');
    const ingest = new IngestSession({
      lease,
      flv: session.flv,
      origin,
      logger: log,
      metrics,
      dropPublisher: (reason) => session.close(reason),
      thumbnailIntervalSeconds: config.thumbnailIntervalSeconds,
      onClosed: () => {
        if (sessions.get(lease.streamId) === ingest) sessions.delete(lease.streamId);
      },
    });
    sessions.set(lease.streamId, ingest);
    session.on('end', (end) => {
      log.info('publisher disconnected', { streamId: lease.streamId, code: end.code, reason: end.message });
    });
  },
});

const health = createServer((req, res) => {
  const body = (status: number, value: unknown) => {
    res.writeHead(status, { 'content-type': 'application/json' });
    res.end(JSON.stringify(value));
  };
  if (req.url === '/health') {
    return body(200, {
      ok: true,
      service: 'edgelive-transcoder',
      nodeId: config.nodeId,
      region: config.region,
      sessions: [...sessions.values()].map((s) => ({ streamId: s.streamId, epoch: s.epoch, startedAt: new Date(s.startedAt).toISOString(), pendingPushes: s.pendingPushes })),
    });
  }
  if (req.url === '/metrics') return body(200, { nodeId: config.nodeId, sessions: sessions.size, ...metrics.snapshot() });
  body(404, { error: { code: 'not_found', message: 'try /health or /metrics' } });
});

await rtmp.listen();
await new Promise<void>((resolve) => health.listen(config.healthPort, '127.0.0.1', resolve));
log.info('transcoder ready', { rtmp: `rtmp://${config.rtmpHost}:${config.rtmpPort}/live/{streamKey}`, health: `http://127.0.0.1:${config.healthPort}/health`, origin: config.originUrl });

let shuttingDown = false;
async function shutdown(signal: string): Promise<void> {
  if (shuttingDown) return;
  shuttingDown = true;
  log.info('shutting down', { signal, sessions: sessions.size });
  const force = setTimeout(() => {
    log.warn('shutdown took too long, exiting');
    process.exit(1);
  }, 15_000);
  force.unref();
  await Promise.all([...sessions.values()].map(async (s) => {
    await s.stop(`transcoder ${signal}`);
    await s.closed;
  }));
  await rtmp.close();
  health.close();
  log.info('stopped');
  process.exit(0);
}
process.on('SIGINT', () => void shutdown('SIGINT'));
process.on('SIGTERM', () => void shutdown('SIGTERM'));
