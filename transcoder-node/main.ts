// The transcoder service: RTMP and SRT ingest → key check and lease at the origin → ffmpeg ABR ladder →
// CMAF parts → signed pushes to the origin. Health and metrics over HTTP; clean shutdown on
// SIGINT/SIGTERM (publishers dropped, ffmpeg stopped, pending pushes flushed, origin told).
import { createServer } from 'node:http';
import { hostname } from 'node:os';
import { createLogger } from './log.ts';
import { Metrics } from './metrics.ts';
import { OriginClient, OriginError } from './origin-client.ts';
import { RegistryClient } from './registry-client.ts';
import { RtmpIngestServer } from './rtmp/server.ts';
import { SrtIngestServer } from './srt/server.ts';
import { IngestSession } from './session.ts';
import { DEFAULT_HEARTBEAT_INTERVAL_MS, type AuthorizeResponse } from '../core/contracts/ingest-protocol.ts';
import type { Readable } from 'node:stream';

const env = process.env;
const config = {
  originUrl: env.ORIGIN_URL ?? 'http://127.0.0.1:8787',
  ingestSecret: env.INGEST_SECRET ?? '',
  rtmpHost: env.RTMP_HOST ?? '0.0.0.0',
  rtmpPort: Number(env.RTMP_PORT ?? 1935),
  healthPort: Number(env.HEALTH_PORT ?? 8790),
  nodeId: env.NODE_ID ?? `${hostname()}-${process.pid}`,
  region: env.REGION ?? 'local',
  // Geo-routed ingest: where this node is, how publishers reach it, how many it takes.
  latitude: Number(env.LAT ?? 0),
  longitude: Number(env.LON ?? 0),
  srtHost: env.SRT_HOST ?? env.RTMP_HOST ?? '0.0.0.0',
  /** UDP port of the SRT listener; "off" disables SRT. */
  srtPort: env.SRT_PORT === 'off' ? null : Number(env.SRT_PORT ?? 9000),
  /** When set, SRT publishers must encrypt with it (10–79 characters). */
  srtPassphrase: env.SRT_PASSPHRASE || undefined,
  publicRtmpUrl: env.PUBLIC_RTMP_URL,
  publicSrtUrl: env.PUBLIC_SRT_URL,
  capacity: Number(env.CAPACITY ?? 16),
  heartbeatIntervalMs: Number(env.HEARTBEAT_MS ?? DEFAULT_HEARTBEAT_INTERVAL_MS),
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
/**
 * Sessions whose publisher has gone, by stream key, until they close (their last pushes sent and
 * the origin told the publisher stopped). A publisher that comes back to this node waits for that
 * (at most RECONNECT_WAIT_MS) before its key check: the origin refuses a second publisher while the
 * first is live (the stream's takeover policy), and the first is this one, a moment ago.
 */
const closingByKey = new Map<string, Promise<unknown>>();
const RECONNECT_WAIT_MS = 3_000;

function publisherGone(streamKey: string, session: IngestSession): void {
  const closed = session.closed;
  closingByKey.set(streamKey, closed);
  void closed.then(() => {
    if (closingByKey.get(streamKey) === closed) closingByKey.delete(streamKey);
  });
}

/** The key check and lease, asked before a publisher (RTMP or SRT) may send media. */
async function authorizeKey(streamKey: string): Promise<{ ok: true; context: AuthorizeResponse } | { ok: false; reason: string }> {
  const closing = closingByKey.get(streamKey);
  if (closing) await Promise.race([closing, new Promise((r) => setTimeout(r, RECONNECT_WAIT_MS))]);
  try {
    const lease = await origin.authorize(streamKey, config.nodeId, config.region);
    return { ok: true as const, context: lease };
  } catch (err) {
    metrics.sessionsRefused++;
    const reason = err instanceof OriginError ? `${err.code}: ${err.message}` : String(err);
    return { ok: false as const, reason };
  }
}

/** Starts the pipeline of an accepted SRT publisher (MPEG-TS into the ladder). */
function startSrtSession(lease: AuthorizeResponse, media: Readable, close: (reason: string) => void): IngestSession {
  metrics.sessionsStarted++;
  const previous = sessions.get(lease.streamId);
  if (previous) void previous.stop('the publisher reconnected');
  const ingest = new IngestSession({
    lease,
    flv: media,
    inputFormat: 'mpegts',
    origin,
    logger: log,
    metrics,
    dropPublisher: close,
    thumbnailIntervalSeconds: config.thumbnailIntervalSeconds,
    onClosed: () => {
      if (sessions.get(lease.streamId) === ingest) sessions.delete(lease.streamId);
    },
  });
  sessions.set(lease.streamId, ingest);
  return ingest;
}

const rtmp = new RtmpIngestServer<AuthorizeResponse>({
  host: config.rtmpHost,
  port: config.rtmpPort,
  logger: log.child({ component: 'rtmp' }),
  // The key is checked (and the stream's lease taken) before the publisher may send media.
  authorize: ({ streamKey }) => authorizeKey(streamKey),
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
      publisherGone(session.streamKey, ingest);
    });
  },
});

// SRT publishers on one UDP port; the stream id is checked exactly like an RTMP key, before the
// handshake is answered (so a refused publisher never gets to send media).
const srt =
  config.srtPort === null
    ? null
    : new SrtIngestServer<AuthorizeResponse>({
        host: config.srtHost,
        port: config.srtPort,
        passphrase: config.srtPassphrase,
        logger: log.child({ component: 'srt' }),
        authorize: ({ streamKey }) => authorizeKey(streamKey),
        onPublish: (session) => {
          const lease = session.context;
          const ingest = startSrtSession(lease, session.media, (reason) => session.close(reason));
          session.onEnd((code, message) => {
            log.info('srt publisher disconnected', { streamId: lease.streamId, code, reason: message });
            publisherGone(session.streamKey, ingest);
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
      sessions: [...sessions.values()].map((s) => ({ streamId: s.streamId, epoch: s.epoch, startedAt: new Date(s.startedAt).toISOString(), pendingPushes: s.pendingPushes, ffmpegPid: s.ffmpegPid })),
    });
  }
  if (req.url === '/metrics') return body(200, { nodeId: config.nodeId, sessions: sessions.size, ...metrics.snapshot() });
  body(404, { error: { code: 'not_found', message: 'try /health or /metrics' } });
});

await rtmp.listen();
await srt?.listen();
await new Promise<void>((resolve) => health.listen(config.healthPort, '127.0.0.1', resolve));

// Public URLs default to what was bound (loopback when bound to every interface: local stacks).
const publicHost = (bound: string) => (bound === '0.0.0.0' || bound === '::' ? '127.0.0.1' : bound);
const publicRtmpUrl = config.publicRtmpUrl ?? `rtmp://${publicHost(config.rtmpHost)}:${rtmp.address().port}/live`;
const publicSrtUrl = srt ? (config.publicSrtUrl ?? `srt://${publicHost(config.srtHost)}:${srt.address().port}`) : undefined;
const registryClient = new RegistryClient({
  originUrl: config.originUrl,
  secret: config.ingestSecret,
  node: {
    nodeId: config.nodeId,
    region: config.region,
    latitude: config.latitude,
    longitude: config.longitude,
    rtmpUrl: publicRtmpUrl,
    srtUrl: publicSrtUrl,
    capacity: config.capacity,
    heartbeatIntervalMs: config.heartbeatIntervalMs,
  },
  sessions: () => sessions.size,
  logger: log.child({ component: 'registry' }),
});
registryClient.start();
log.info('transcoder ready', { rtmp: `${publicRtmpUrl}/{streamKey}`, srt: publicSrtUrl ? `${publicSrtUrl}?streamid={streamKey}` : null, health: `http://127.0.0.1:${config.healthPort}/health`, origin: config.originUrl, region: config.region });

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
  // Leave the registry first, so no new stream is sent here while the sessions wind down.
  await registryClient.stop();
  await Promise.all([...sessions.values()].map(async (s) => {
    await s.stop(`transcoder ${signal}`);
    await s.closed;
  }));
  await rtmp.close();
  await srt?.close();
  health.close();
  log.info('stopped');
  process.exit(0);
}
process.on('SIGINT', () => void shutdown('SIGINT'));
process.on('SIGTERM', () => void shutdown('SIGTERM'));
