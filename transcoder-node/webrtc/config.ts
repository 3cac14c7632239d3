// The media node's WebRTC settings from its environment (documented in docs/api.md, "Transcoder",
// and docs/operations.md, "WebRTC: WHIP and WHEP" and "Party voice: the SFU"). Pure: an env object in, a config out; throws on a value that cannot be right.
import type { IceServerConfig, WebRtcConfig } from './stack.ts';

export interface WebRtcNodeConfig {
  stack: WebRtcConfig;
  /** The signalling HTTP listener; null when WEBRTC_HTTP_PORT=off. */
  http: { host: string; port: number; corsOrigins: string[] } | null;
  /** How publishers reach the listener (WHIP URL base), when not what was bound. */
  publicUrl?: string;
  whip: { maxOfferBytes: number; maxPendingPerAddress: number; maxSessions?: number; maxBitrate: number; mediaTimeoutMs: number };
  whep: { maxOfferBytes: number; maxPendingPerAddress: number; maxViewers: number; keyframeIntervalMs: number };
  /** The party-voice SFU; null without VOICE_SFU_SECRET (then /voice is not served). */
  sfu: { secret: string; maxOfferBytes: number; maxPendingPerAddress: number; maxSeats: number; maxRoomSeats: number } | null;
}

function int(env: Record<string, string | undefined>, name: string, fallback: number, min = 0): number {
  const raw = env[name];
  if (raw === undefined || raw === '') return fallback;
  const n = Number(raw);
  if (!Number.isInteger(n) || n < min) throw new RangeError(`${name} must be an integer ≥ ${min} (got ${raw})`);
  return n;
}

/** `stun:host:port` or `turn:user:pass@host:port?transport=udp`, comma-separated. */
export function parseIceServers(raw: string | undefined): IceServerConfig[] {
  if (!raw) return [];
  return raw
    .split(',')
    .map((s) => s.trim())
    .filter(Boolean)
    .map((url) => {
      const m = /^(turns?):([^:@]+):([^@]+)@(.+)$/.exec(url);
      if (m) return { urls: `${m[1]}:${m[4]}`, username: decodeURIComponent(m[2]!), credential: decodeURIComponent(m[3]!) };
      if (!/^(stun|turns?):/.test(url)) throw new RangeError(`WEBRTC_ICE_SERVERS: not a stun: or turn: URL: ${url}`);
      return { urls: url };
    });
}

export function webrtcConfigFromEnv(env: Record<string, string | undefined>): WebRtcNodeConfig {
  const portMin = int(env, 'WEBRTC_PORT_MIN', 0);
  const portMax = int(env, 'WEBRTC_PORT_MAX', portMin);
  if (portMax < portMin) throw new RangeError('WEBRTC_PORT_MAX must be ≥ WEBRTC_PORT_MIN');
  const udpMux = env.WEBRTC_UDP_MUX === '1' || env.WEBRTC_UDP_MUX === 'true';
  if (udpMux && portMin === 0) throw new RangeError('WEBRTC_UDP_MUX needs the shared port in WEBRTC_PORT_MIN');
  const origin = env.ORIGIN_URL ? new URL(env.ORIGIN_URL).origin : 'http://127.0.0.1:8787';
  const httpPort = env.WEBRTC_HTTP_PORT === 'off' ? null : int(env, 'WEBRTC_HTTP_PORT', 8088);
  return {
    stack: {
      ...(env.WEBRTC_HOST ? { bindAddress: env.WEBRTC_HOST } : {}),
      ...(portMin > 0 ? { portRange: [portMin, portMax] as [number, number] } : {}),
      udpMux,
      ...(env.WEBRTC_ANNOUNCED_IP ? { announcedAddress: env.WEBRTC_ANNOUNCED_IP } : {}),
      iceServers: parseIceServers(env.WEBRTC_ICE_SERVERS),
    },
    http:
      httpPort === null
        ? null
        : {
            host: env.WEBRTC_HTTP_HOST ?? env.RTMP_HOST ?? '0.0.0.0',
            port: httpPort,
            // The Worker's pages (the Go-live page) call the node from the Worker's origin.
            corsOrigins: env.WEBRTC_CORS_ORIGINS ? env.WEBRTC_CORS_ORIGINS.split(',').map((s) => s.trim()) : [origin],
          },
    ...(env.PUBLIC_WEBRTC_URL ? { publicUrl: env.PUBLIC_WEBRTC_URL.replace(/\/$/, '') } : {}),
    whip: {
      maxOfferBytes: int(env, 'WHIP_MAX_OFFER_BYTES', 32 * 1024, 1024),
      maxPendingPerAddress: int(env, 'WHIP_MAX_PENDING_PER_ADDRESS', 4, 1),
      ...(env.WHIP_MAX_SESSIONS ? { maxSessions: int(env, 'WHIP_MAX_SESSIONS', 16, 0) } : {}),
      maxBitrate: int(env, 'WHIP_MAX_BITRATE', 5_000_000, 100_000),
      mediaTimeoutMs: int(env, 'WHIP_MEDIA_TIMEOUT_MS', 10_000, 1000),
    },
    whep: {
      maxOfferBytes: int(env, 'WHEP_MAX_OFFER_BYTES', 32 * 1024, 1024),
      maxPendingPerAddress: int(env, 'WHEP_MAX_PENDING_PER_ADDRESS', 4, 1),
      maxViewers: int(env, 'WHEP_MAX_VIEWERS', 200, 0),
      keyframeIntervalMs: int(env, 'WHEP_KEYFRAME_INTERVAL_MS', 500, 100),
    },
    sfu: env.VOICE_SFU_SECRET
      ? {
          secret: env.VOICE_SFU_SECRET,
          // A browser's offer is ~1 KB per receive slot: 49 slots (a room of 50) fit in 96 KB.
          maxOfferBytes: int(env, 'VOICE_SFU_MAX_OFFER_BYTES', 96 * 1024, 4096),
          maxPendingPerAddress: int(env, 'VOICE_SFU_MAX_PENDING_PER_ADDRESS', 4, 1),
          maxSeats: int(env, 'VOICE_SFU_MAX_SEATS', 200, 0),
          maxRoomSeats: int(env, 'VOICE_SFU_MAX_ROOM_SEATS', 50, 2),
        }
      : null,
  };
}
