// The transcoder service: RTMP and SRT ingest → key check and lease at the origin → ffmpeg ABR ladder →
// CMAF parts → signed pushes to the origin. Health and metrics over HTTP; clean shutdown on
// SIGINT/SIGTERM (publishers dropped, ffmpeg stopped, pending pushes flushed, origin told).
import { readFileSync } from 'node:fs';
import { createServer } from 'node:http';
import { hostname } from 'node:os';
import { createLogger } from './log.ts';
import { Metrics } from './metrics.ts';
import { OriginClient, OriginError } from './origin-client.ts';
import { RegistryClient } from './registry-client.ts';
import { RtmpIngestServer, type RtmpIngestOptions } from './rtmp/server.ts';
import { SrtIngestServer } from './srt/server.ts';
import { IngestSession } from './session.ts';
import { DEFAULT_HEARTBEAT_INTERVAL_MS, type AuthorizeResponse } from '../core/contracts/ingest-protocol.ts';
import type { Readable } from 'node:stream';

const env = process.env;
/** A positive number from the environment; undefined when unset, so the component's default applies. */
function positiveFromEnv(name: string): number | undefined {
  const raw = env[name];
  if (raw === undefined || raw === '') return undefined;
  const value = Number(raw);
  if (!(value > 0 && Number.isFinite(value))) throw new Error(`${name} must be a positive number, not ${JSON.stringify(raw)}`);
  return value;
}
const config = {
  originUrl: env.ORIGIN_URL ?? 'http://127.0.0.1:8787',
  ingestSecret: env.INGEST_SECRET ?? '',
  rtmpHost: env.RTMP_HOST ?? '0.0.0.0',
  rtmpPort: Number(env.RTMP_PORT ?? 1935),
  /** What a client without a stream key may cost the RTMP listener (docs/operations.md, "Limits an operator can tune"). */
  rtmpLimits: {
    maxConnections: positiveFromEnv('RTMP_MAX_CONNECTIONS'),
    maxConnectionsPerAddress: positiveFromEnv('RTMP_MAX_CONNECTIONS_PER_ADDRESS'),
    acceptBurstPerAddress: positiveFromEnv('RTMP_ACCEPT_BURST_PER_ADDRESS'),
    acceptRatePerAddress: positiveFromEnv('RTMP_ACCEPT_RATE_PER_ADDRESS'),
    publishTimeoutMs: positiveFromEnv('RTMP_PUBLISH_TIMEOUT_MS'),
    maxMessageBytes: positiveFromEnv('RTMP_MAX_MESSAGE_BYTES'),
  },
  /** RTMPS (TLS terminated here): its port, unset or "off" for none, and the PEM certificate and key files. */
  rtmpsPort: env.RTMPS_PORT === undefined || env.RTMPS_PORT === '' || env.RTMPS_PORT === 'off' ? null : Number(env.RTMPS_PORT),
  rtmpsCertFile: env.RTMPS_CERT_FILE,
  rtmpsKeyFile: env.RTMPS_KEY_FILE,
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
  // SRT limits against hostile callers (docs/operations.md, "Limits an operator can tune").
  srtLimits: {
    maxConnections: Number(env.SRT_MAX_PUBLISHERS ?? 256),
    receiveWindow: Number(env.SRT_RECEIVE_WINDOW ?? 8192),
    handshakesPerSecond: Number(env.SRT_HANDSHAKES_PER_SECOND ?? 2),
    handshakeBurst: Number(env.SRT_HANDSHAKE_BURST ?? 10),
    maxPendingHandshakes: Number(env.SRT_MAX_PENDING_HANDSHAKES ?? 1024),
    keyDerivationsPerSecond: Number(env.SRT_KEY_DERIVATIONS_PER_SECOND ?? 20),
  },
  publicRtmpUrl: env.PUBLIC_RTMP_URL,
  publicRtmpsUrl: env.PUBLIC_RTMPS_URL,
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
if (config.rtmpsPort !== null && (!config.rtmpsCertFile || !config.rtmpsKeyFile)) {
  log.error('RTMPS_PORT is set without RTMPS_CERT_FILE and RTMPS_KEY_FILE (PEM files of the certificate and its key)');
  process.exit(1);
}
/** The RTMPS certificate, read again on SIGHUP (a renewal without dropping publishers). */
const readRtmpsCertificate = () => ({ cert: readFileSync(config.rtmpsCertFile!), key: readFileSync(config.rtmpsKeyFile!) });

const metrics = new Metrics();
const origin = new OriginClient({ baseUrl: config.originUrl, secret: config.ingestSecret });
const sessions = new Map<string, IngestSession>();

/** The key check and lease, asked before a publisher (RTMP or SRT) may send media. */
async function authorizeKey(streamKey: string): Promise<{ ok: true; context: AuthorizeResponse } | { ok: false; reason: string }> {
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

const rtmpOptions: Omit<RtmpIngestOptions<AuthorizeResponse>, 'port' | 'logger'> = {
  host: config.rtmpHost,
  ...config.rtmpLimits,
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
    });
  },
};
const rtmp = new RtmpIngestServer<AuthorizeResponse>({ ...rtmpOptions, port: config.rtmpPort, logger: log.child({ component: 'rtmp' }) });
// RTMPS: the same publishers over TLS on their own port (OBS's rtmps:// URLs).
const rtmps =
  config.rtmpsPort === null
    ? null
    : new RtmpIngestServer<AuthorizeResponse>({ ...rtmpOptions, port: config.rtmpsPort, tls: readRtmpsCertificate(), logger: log.child({ component: 'rtmps' }) });

// SRT publishers on one UDP port; the stream id is checked exactly like an RTMP key, before the
// handshake is answered (so a refused publisher never gets to send media).
const srt =
  config.srtPort === null
    ? null
    : new SrtIngestServer<AuthorizeResponse>({
        host: config.srtHost,
        port: config.srtPort,
        passphrase: config.srtPassphrase,
        ...config.srtLimits,
        logger: log.child({ component: 'srt' }),
        authorize: ({ streamKey }) => authorizeKey(streamKey),
        onPublish: (session) => {
          const lease = session.context;
          startSrtSession(lease, session.media, (reason) => session.close(reason));
          session.onEnd((code, message) => log.info('srt publisher disconnected', { streamId: lease.streamId, code, reason: message }));
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
await rtmps?.listen();
await srt?.listen();
await new Promise<void>((resolve) => health.listen(config.healthPort, '127.0.0.1', resolve));

// Public URLs default to what was bound (loopback when bound to every interface: local stacks).
const publicHost = (bound: string) => (bound === '0.0.0.0' || bound === '::' ? '127.0.0.1' : bound);
const publicRtmpUrl = config.publicRtmpUrl ?? `rtmp://${publicHost(config.rtmpHost)}:${rtmp.address().port}/live`;
const publicSrtUrl = srt ? (config.publicSrtUrl ?? `srt://${publicHost(config.srtHost)}:${srt.address().port}`) : undefined;
const publicRtmpsUrl = rtmps ? (config.publicRtmpsUrl ?? `rtmps://${publicHost(config.rtmpHost)}:${rtmps.address().port}/live`) : undefined;
const registryClient = new RegistryClient({
  originUrl: config.originUrl,
  secret: config.ingestSecret,
  node: {
    nodeId: config.nodeId,
    region: config.region,
    latitude: config.latitude,
    longitude: config.longitude,
    rtmpUrl: publicRtmpUrl,
    rtmpsUrl: publicRtmpsUrl,
    srtUrl: publicSrtUrl,
    capacity: config.capacity,
    heartbeatIntervalMs: config.heartbeatIntervalMs,
  },
  sessions: () => sessions.size,
  logger: log.child({ component: 'registry' }),
});
registryClient.start();
log.info('transcoder ready', { rtmp: `${publicRtmpUrl}/{streamKey}`, rtmps: publicRtmpsUrl ? `${publicRtmpsUrl}/{streamKey}` : null, srt: publicSrtUrl ? `${publicSrtUrl}?streamid={streamKey}` : null, health: `http://127.0.0.1:${config.healthPort}/health`, origin: config.originUrl, region: config.region });

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
  await rtmps?.close();
  await srt?.close();
  health.close();
  log.info('stopped');
  process.exit(0);
}
process.on('SIGHUP', () => {
  if (!rtmps) return;
  try {
    rtmps.setCertificate(readRtmpsCertificate());
    log.info('rtmps certificate reloaded', { certFile: config.rtmpsCertFile });
  } catch (err) {
    log.error('rtmps certificate not reloaded; the previous one stays', { certFile: config.rtmpsCertFile, error: String(err) });
  }
});
process.on('SIGINT', () => void shutdown('SIGINT'));
process.on('SIGTERM', () => void shutdown('SIGTERM'));
