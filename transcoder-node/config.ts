// The media node's configuration, read once from the environment: ports, limits, identity and the
// origin it pushes to. Invalid numbers are refused here, before anything listens.
import { hostname } from 'node:os';
import { DEFAULT_HEARTBEAT_INTERVAL_MS } from '../core/contracts/ingest-protocol.ts';
import { RESTREAM_STATUS_TTL_MS } from '../core/contracts/restream.ts';
import { DEFAULT_RESTREAM_LIMITS } from './restream/destination.ts';
import type { EncoderFamily } from './video-encoders.ts';
import { webrtcConfigFromEnv } from './webrtc/config.ts';

type Env = Record<string, string | undefined>;

/** A positive number from the environment; undefined when unset, so the component's default applies. */
function positiveFromEnv(env: Env, name: string): number | undefined {
  const raw = env[name];
  if (raw === undefined || raw === '') return undefined;
  const value = Number(raw);
  if (!(value > 0 && Number.isFinite(value))) throw new Error(`${name} must be a positive number, not ${JSON.stringify(raw)}`);
  return value;
}
/** The media node's configuration from its environment (docs/operations.md lists every variable). */
export function mediaNodeConfigFromEnv(env: Env) {
  return {
    originUrl: env.ORIGIN_URL ?? 'http://127.0.0.1:8787',
    ingestSecret: env.INGEST_SECRET ?? '',
    rtmpHost: env.RTMP_HOST ?? '0.0.0.0',
    rtmpPort: Number(env.RTMP_PORT ?? 1935),
    /** What a client without a stream key may cost the RTMP listener (docs/operations.md, "Limits an operator can tune"). */
    rtmpLimits: {
      maxConnections: positiveFromEnv(env, 'RTMP_MAX_CONNECTIONS'),
      maxConnectionsPerAddress: positiveFromEnv(env, 'RTMP_MAX_CONNECTIONS_PER_ADDRESS'),
      acceptBurstPerAddress: positiveFromEnv(env, 'RTMP_ACCEPT_BURST_PER_ADDRESS'),
      acceptRatePerAddress: positiveFromEnv(env, 'RTMP_ACCEPT_RATE_PER_ADDRESS'),
      publishTimeoutMs: positiveFromEnv(env, 'RTMP_PUBLISH_TIMEOUT_MS'),
      maxMessageBytes: positiveFromEnv(env, 'RTMP_MAX_MESSAGE_BYTES'),
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
      minSpeed: positiveFromEnv(env, 'OVERLOAD_MIN_SPEED'),
      maxLagSeconds: positiveFromEnv(env, 'OVERLOAD_MAX_LAG_SECONDS'),
      windowSeconds: positiveFromEnv(env, 'OVERLOAD_WINDOW_SECONDS'),
      sustainSeconds: positiveFromEnv(env, 'OVERLOAD_SUSTAIN_SECONDS'),
    },
    heartbeatIntervalMs: Number(env.HEARTBEAT_MS ?? DEFAULT_HEARTBEAT_INTERVAL_MS),
    /** Seconds between JPEG thumbnails of the top rendition (0: none). */
    thumbnailIntervalSeconds: Number(env.THUMBNAIL_INTERVAL_SECONDS ?? 4),
    /** `auto` (the first hardware family that works, else libx264), `software`, `nvenc`, `qsv` or `vaapi`. */
    videoEncoder: (env.VIDEO_ENCODER ?? 'auto') as 'auto' | EncoderFamily,
    vaapiDevice: env.VAAPI_DEVICE ?? '/dev/dri/renderD128',
    /** Restream destinations (docs/operations.md, "Restreams"). */
    restream: {
      syncIntervalMs: positiveFromEnv(env, 'RESTREAM_SYNC_MS') ?? 10_000,
      limits: {
        maxBufferedBytes: positiveFromEnv(env, 'RESTREAM_BUFFER_BYTES') ?? DEFAULT_RESTREAM_LIMITS.maxBufferedBytes,
        backoffBaseMs: positiveFromEnv(env, 'RESTREAM_BACKOFF_BASE_MS') ?? DEFAULT_RESTREAM_LIMITS.backoffBaseMs,
        backoffMaxMs: positiveFromEnv(env, 'RESTREAM_BACKOFF_MAX_MS') ?? DEFAULT_RESTREAM_LIMITS.backoffMaxMs,
        stableMs: positiveFromEnv(env, 'RESTREAM_STABLE_MS') ?? DEFAULT_RESTREAM_LIMITS.stableMs,
        // 0: never give up.
        maxFailures:
          env.RESTREAM_MAX_FAILURES === '0' ? 0 : (positiveFromEnv(env, 'RESTREAM_MAX_FAILURES') ?? DEFAULT_RESTREAM_LIMITS.maxFailures),
        videoBitrate: positiveFromEnv(env, 'RESTREAM_VIDEO_BITRATE') ?? DEFAULT_RESTREAM_LIMITS.videoBitrate,
        probeTimeoutMs: DEFAULT_RESTREAM_LIMITS.probeTimeoutMs,
        writeTimeoutMs: positiveFromEnv(env, 'RESTREAM_WRITE_TIMEOUT_MS') ?? DEFAULT_RESTREAM_LIMITS.writeTimeoutMs,
      },
    },
    // bench:cost only: the previous design, every segment's bytes pushed (and written) a second time.
    segmentCopy: env.BENCH_SEGMENT_COPY === '1',
    webrtc: webrtcConfigFromEnv(env),
  };
}

export type MediaNodeConfig = ReturnType<typeof mediaNodeConfigFromEnv>;

/** What makes a configuration unusable, said the way an operator fixes it; null when it can start. */
export function configProblem(config: MediaNodeConfig): string | null {
  if (!config.ingestSecret) return 'INGEST_SECRET is not set: the origin would refuse every push';
  if (config.rtmpsPort !== null && (!config.rtmpsCertFile || !config.rtmpsKeyFile)) {
    return 'RTMPS_PORT is set without RTMPS_CERT_FILE and RTMPS_KEY_FILE (PEM files of the certificate and its key)';
  }
  if (!['auto', 'software', 'nvenc', 'qsv', 'vaapi'].includes(config.videoEncoder)) {
    return `VIDEO_ENCODER must be auto, software, nvenc, qsv or vaapi, not ${JSON.stringify(config.videoEncoder)}`;
  }
  if (config.restream.syncIntervalMs > RESTREAM_STATUS_TTL_MS / 2) {
    return `RESTREAM_SYNC_MS must be at most ${RESTREAM_STATUS_TTL_MS / 2}: the API shows a status older than ${RESTREAM_STATUS_TTL_MS} ms as stopped`;
  }
  return null;
}
