// The transcoder service (the media node): RTMP, SRT and WHIP ingest → key check and lease at the origin → ffmpeg ABR ladder →
// CMAF parts → signed pushes to the origin. Health and metrics over HTTP; clean shutdown on
// SIGINT/SIGTERM (publishers dropped, ffmpeg stopped, pending pushes flushed, origin told).
import { readFileSync } from 'node:fs';
import { createServer } from 'node:http';
import { hostname } from 'node:os';
import { AdmissionControl } from './admission.ts';
import { createLogger } from './log.ts';
import { Metrics } from './metrics.ts';
import { OriginClient, OriginError } from './origin-client.ts';
import { OverloadGuard } from './overload.ts';
import { Publishers } from './publishers.ts';
import { RegistryClient } from './registry-client.ts';
import { RtmpIngestServer, type RtmpIngestOptions } from './rtmp/server.ts';
import { Reject } from './srt/packet.ts';
import { SrtIngestServer } from './srt/server.ts';
import { publisherFrom, type IngestProtocol, type Publisher } from './publisher.ts';
import { webrtcConfigFromEnv } from './webrtc/config.ts';
import { SignallingServer } from './webrtc/signalling-server.ts';
import { WebRtcStack } from './webrtc/stack.ts';
import { WhipEndpoint } from './webrtc/whip-endpoint.ts';
import { DEFAULT_HEARTBEAT_INTERVAL_MS, type AuthorizeResponse } from '../core/contracts/ingest-protocol.ts';
import { RESTREAM_STATUS_TTL_MS, type RestreamState } from '../core/contracts/restream.ts';
import { DEFAULT_RESTREAM_LIMITS } from './restream/destination.ts';

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
  /** Where /health and /metrics listen: loopback by default; 0.0.0.0 for a load balancer or Prometheus elsewhere. */
  healthHost: env.HEALTH_HOST ?? '127.0.0.1',
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
  /** Publishers this node takes (every protocol together); more are refused. */
  capacity: Number(env.CAPACITY ?? 16),
  /** When a ladder counts as below real time (docs/operations.md, "Limits an operator can tune"). */
  overload: {
    minSpeed: positiveFromEnv('OVERLOAD_MIN_SPEED'),
    maxLagSeconds: positiveFromEnv('OVERLOAD_MAX_LAG_SECONDS'),
    windowSeconds: positiveFromEnv('OVERLOAD_WINDOW_SECONDS'),
    sustainSeconds: positiveFromEnv('OVERLOAD_SUSTAIN_SECONDS'),
  },
  heartbeatIntervalMs: Number(env.HEARTBEAT_MS ?? DEFAULT_HEARTBEAT_INTERVAL_MS),
  /** Seconds between JPEG thumbnails of the top rendition (0: none). */
  thumbnailIntervalSeconds: Number(env.THUMBNAIL_INTERVAL_SECONDS ?? 4),
  /** Restream destinations (docs/operations.md, "Restreams"). */
  restream: {
    syncIntervalMs: positiveFromEnv('RESTREAM_SYNC_MS') ?? 10_000,
    limits: {
      maxBufferedBytes: positiveFromEnv('RESTREAM_BUFFER_BYTES') ?? DEFAULT_RESTREAM_LIMITS.maxBufferedBytes,
      backoffBaseMs: positiveFromEnv('RESTREAM_BACKOFF_BASE_MS') ?? DEFAULT_RESTREAM_LIMITS.backoffBaseMs,
      backoffMaxMs: positiveFromEnv('RESTREAM_BACKOFF_MAX_MS') ?? DEFAULT_RESTREAM_LIMITS.backoffMaxMs,
      stableMs: positiveFromEnv('RESTREAM_STABLE_MS') ?? DEFAULT_RESTREAM_LIMITS.stableMs,
      // 0: never give up.
      maxFailures: env.RESTREAM_MAX_FAILURES === '0' ? 0 : (positiveFromEnv('RESTREAM_MAX_FAILURES') ?? DEFAULT_RESTREAM_LIMITS.maxFailures),
      videoBitrate: positiveFromEnv('RESTREAM_VIDEO_BITRATE') ?? DEFAULT_RESTREAM_LIMITS.videoBitrate,
      probeTimeoutMs: DEFAULT_RESTREAM_LIMITS.probeTimeoutMs,
      writeTimeoutMs: positiveFromEnv('RESTREAM_WRITE_TIMEOUT_MS') ?? DEFAULT_RESTREAM_LIMITS.writeTimeoutMs,
    },
  },
  webrtc: webrtcConfigFromEnv(env),
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
if (config.restream.syncIntervalMs > RESTREAM_STATUS_TTL_MS / 2) {
  log.error(`RESTREAM_SYNC_MS must be at most ${RESTREAM_STATUS_TTL_MS / 2}: the API shows a status older than ${RESTREAM_STATUS_TTL_MS} ms as stopped`);
  process.exit(1);
}
/** The RTMPS certificate, read again on SIGHUP (a renewal without dropping publishers). */
const readRtmpsCertificate = () => ({ cert: readFileSync(config.rtmpsCertFile!), key: readFileSync(config.rtmpsKeyFile!) });

const metrics: Metrics = new Metrics({
  nodeId: config.nodeId,
  region: config.region,
  capacity: config.capacity,
  sessions: () => publishers.countByProtocol(),
  overloaded: () => overload.overloaded(),
  restreams: () => {
    const byState: Partial<Record<RestreamState, number>> = {};
    for (const p of publishers.values()) for (const r of p.restreams.statuses()) byState[r.state] = (byState[r.state] ?? 0) + 1;
    return byState;
  },
});
const origin = new OriginClient({ baseUrl: config.originUrl, secret: config.ingestSecret, onPushError: (err) => metrics.pushFailed(err.code, err.retryable) });
const overload = new OverloadGuard({ ...config.overload, logger: log.child({ component: 'overload' }), metrics });
const publishers = new Publishers({ origin, logger: log, metrics, overload, nodeId: config.nodeId, region: config.region, thumbnailIntervalSeconds: config.thumbnailIntervalSeconds, restream: config.restream });
const admission = new AdmissionControl({ capacity: config.capacity, liveKeys: () => publishers.liveKeys(), overloaded: () => overload.overloaded() });

/** `byNode`: refused for this node's load (capacity, overload), not for the key: the publisher is told why. */
type Refusal = { ok: false; reason: string; code: string; byNode: boolean };
/** The admission slot of each lease granted, released once its publisher starts (or lapsing). */
const admittedLeases = new WeakMap<AuthorizeResponse, () => void>();
/**
 * The capacity check, then the key check and lease, asked before a publisher (RTMP, SRT; WHIP
 * calls it too) may send media. An accepted publisher is then started with `startPublisher`.
 */
async function authorizeKey(streamKey: string, protocol: IngestProtocol): Promise<{ ok: true; context: AuthorizeResponse } | Refusal> {
  const admitted = admission.admit(streamKey);
  if (!admitted.ok) {
    metrics.publisherRefused(protocol, admitted.code);
    log.warn('publisher refused', { protocol, code: admitted.code, reason: admitted.reason });
    return { ok: false, reason: admitted.reason, code: admitted.code, byNode: true };
  }
  try {
    const lease = await origin.authorize(streamKey, config.nodeId, config.region);
    admittedLeases.set(lease, admitted.release);
    return { ok: true as const, context: lease };
  } catch (err) {
    admitted.release();
    const code = err instanceof OriginError ? err.code : 'error';
    metrics.publisherRefused(protocol, code);
    return { ok: false, reason: err instanceof OriginError ? `${err.code}: ${err.message}` : String(err), code, byNode: false };
  }
}

/** Starts the pipeline of a publisher that `authorizeKey` accepted, whatever its protocol. */
function startPublisher(publisher: Publisher, streamKey: string): void {
  publishers.start({ publisher, streamKey });
  // It counts as live from here: its admission slot is no longer pending.
  admittedLeases.get(publisher.lease)?.();
}

const rtmpOptions: Omit<RtmpIngestOptions<AuthorizeResponse>, 'port' | 'logger'> = {
  host: config.rtmpHost,
  ...config.rtmpLimits,
  // The key is checked (and the stream's lease taken) before the publisher may send media.
  authorize: async ({ streamKey }) => {
    const verdict = await authorizeKey(streamKey, 'rtmp');
    // A full or overloaded node says why in the onStatus description (ffmpeg and OBS show it).
    return !verdict.ok && verdict.byNode ? { ...verdict, description: verdict.reason } : verdict;
  },
  onPublish: (session) => {
    startPublisher(
      publisherFrom({
        protocol: 'rtmp',
        lease: session.context!,
        remoteAddress: session.remoteAddress,
        media: session.flv,
        container: 'flv',
        close: (reason) => session.close(reason),
        onEnd: (fn) => session.once('end', fn),
      }),
      session.streamKey,
    );
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
        authorize: async ({ streamKey }) => {
          const verdict = await authorizeKey(streamKey, 'srt');
          // SRT has no text in a rejection: a full or overloaded node answers SRT_REJX_OVERLOAD.
          return !verdict.ok && verdict.byNode ? { ...verdict, rejection: Reject.X_OVERLOAD } : verdict;
        },
        onPublish: (session) => {
          const counted = metrics.trackSrt(session.stats);
          startPublisher(
            publisherFrom({
              protocol: 'srt',
              lease: session.context,
              remoteAddress: session.remoteAddress,
              media: session.media,
              container: 'mpegts',
              close: (reason) => session.close(reason),
              onEnd: (fn) =>
                session.onEnd((code, message) => {
                  counted();
                  fn({ code, message });
                }),
            }),
            session.streamKey,
          );
        },
      });

// WebRTC: one stack for the node, WHIP ingest on the signalling listener. The key is checked exactly
// like an RTMP key, before any peer connection exists.
const webrtc = new WebRtcStack(config.webrtc.stack, log.child({ component: 'webrtc' }));
const whip = new WhipEndpoint({
  stack: webrtc,
  logger: log.child({ component: 'whip' }),
  limits: { ...config.webrtc.whip, maxSessions: config.webrtc.whip.maxSessions ?? config.capacity },
  authorize: (streamKey) => authorizeKey(streamKey, 'whip'),
  onPublisher: (publisher, streamKey) => startPublisher(publisher, streamKey),
  abandon: (lease) => void origin.end(lease.streamId, lease.epoch).catch((err) => log.warn('could not give back an unused lease', { error: err })),
  iceServers: config.webrtc.stack.iceServers ?? [],
  maxBitrate: config.webrtc.whip.maxBitrate,
  mediaTimeoutMs: config.webrtc.whip.mediaTimeoutMs,
});
const signalling =
  config.webrtc.http === null
    ? null
    : new SignallingServer({ ...config.webrtc.http, logger: log.child({ component: 'signalling' }), routes: [whip] });

const health = createServer((req, res) => {
  const body = (status: number, value: unknown) => {
    res.writeHead(status, { 'content-type': 'application/json' });
    res.end(JSON.stringify(value));
  };
  const path = (req.url ?? '/').split('?')[0];
  if (path === '/health') {
    return body(200, {
      ok: true,
      service: 'edgelive-transcoder',
      nodeId: config.nodeId,
      region: config.region,
      capacity: config.capacity,
      overloaded: overload.overloaded(),
      sessions: [...publishers.values()].map(({ protocol, session: s, restreams }) => ({ streamId: s.streamId, protocol, epoch: s.epoch, startedAt: new Date(s.startedAt).toISOString(), pendingPushes: s.pendingPushes, ffmpegPid: s.ffmpegPid, restreams: restreams.statuses() })),
      whip: whip.sessions(),
      webrtc: { peersCreated: webrtc.counters.created, peersOpen: webrtc.counters.open },
    });
  }
  if (path === '/metrics') {
    void metrics.render().then(
      (text) => {
        res.writeHead(200, { 'content-type': metrics.contentType });
        res.end(text);
      },
      (err: unknown) => body(500, { error: { code: 'internal_error', message: String(err) } }),
    );
    return;
  }
  if (path === '/metrics.json') {
    return body(200, { nodeId: config.nodeId, sessions: publishers.size, ...metrics.snapshot(), webrtc: { ...webrtc.counters }, whip: { ...whip.counters, sessions: whip.sessions().length } });
  }
  body(404, { error: { code: 'not_found', message: 'try /health, /metrics or /metrics.json' } });
});

await rtmp.listen();
await rtmps?.listen();
await srt?.listen();
await signalling?.listen();
await new Promise<void>((resolve, reject) => {
  health.once('error', reject);
  health.listen(config.healthPort, config.healthHost, resolve);
});

// Public URLs default to what was bound (loopback when bound to every interface: local stacks).
const publicHost = (bound: string) => (bound === '0.0.0.0' || bound === '::' ? '127.0.0.1' : bound);
const publicRtmpUrl = config.publicRtmpUrl ?? `rtmp://${publicHost(config.rtmpHost)}:${rtmp.address().port}/live`;
const publicSrtUrl = srt ? (config.publicSrtUrl ?? `srt://${publicHost(config.srtHost)}:${srt.address().port}`) : undefined;
const whipUrl = signalling ? (config.webrtc.publicUrl ?? `http://${publicHost(config.webrtc.http!.host)}:${signalling.address().port}`) + '/whip' : undefined;
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
    whipUrl,
    capacity: config.capacity,
    heartbeatIntervalMs: config.heartbeatIntervalMs,
  },
  sessions: () => publishers.size,
  logger: log.child({ component: 'registry' }),
  onCall: (call, ok) => metrics.registryCall(call, ok),
});
registryClient.start();
log.info('transcoder ready', { rtmp: `${publicRtmpUrl}/{streamKey}`, rtmps: publicRtmpsUrl ? `${publicRtmpsUrl}/{streamKey}` : null, srt: publicSrtUrl ? `${publicSrtUrl}?streamid={streamKey}` : null, whip: whipUrl ?? null, health: `http://${publicHost(config.healthHost)}:${config.healthPort}/health`, capacity: config.capacity, origin: config.originUrl, region: config.region });

let shuttingDown = false;
async function shutdown(signal: string): Promise<void> {
  if (shuttingDown) return;
  shuttingDown = true;
  log.info('shutting down', { signal, sessions: publishers.size });
  const force = setTimeout(() => {
    log.warn('shutdown took too long, exiting');
    process.exit(1);
  }, 15_000);
  force.unref();
  // Leave the registry first, so no new stream is sent here while the sessions wind down.
  await registryClient.stop();
  await Promise.all([...publishers.values()].map(async (p) => {
    await p.stop(`transcoder ${signal}`);
    await p.closed;
    await p.restreamsDone();
  }));
  // Peer connections close with their sessions; any left (still answering) close here.
  whip.closeAll(`transcoder ${signal}`);
  webrtc.closeAll();
  await signalling?.close();
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
