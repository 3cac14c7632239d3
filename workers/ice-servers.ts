// The ICE servers a voice member is given (core/auth/ice-servers.ts builds and reads them): STUN
// always; TURN credentials minted per request for the member — locally for coturn, by one call to
// Cloudflare's TURN API for a Cloudflare TURN key. When that call fails, members still get STUN
// (most of them connect without a relay) and the failure is logged.
import {
  coturnCredentials,
  cloudflareTurnRequest,
  mergeIceServers,
  parseCloudflareIceServers,
  readIceConfig,
  type IceServer,
  type IceVars,
} from '../core/auth/ice-servers.ts';

export interface IceAnswer {
  iceServers: IceServer[];
  /** Seconds the TURN credentials stay valid (absent without TURN). */
  ttlSec?: number;
}

/** `user` is an opaque id of the member (never their name): it ends up in TURN servers' logs. */
export async function iceServersFor(vars: IceVars, user: string, nowSec: number, fetcher: typeof fetch = fetch): Promise<IceAnswer> {
  const cfg = readIceConfig(vars);
  const t = cfg.turn;
  if (!t) return { iceServers: mergeIceServers(cfg.stunUrls, []) };
  if (t.kind === 'coturn') {
    const creds = await coturnCredentials(t.secret, user, nowSec + t.ttlSec);
    return { iceServers: mergeIceServers(cfg.stunUrls, [{ urls: t.urls, ...creds }]), ttlSec: t.ttlSec };
  }
  const { url, init } = cloudflareTurnRequest(t);
  try {
    const res = await fetcher(url, init);
    const servers = res.ok ? parseCloudflareIceServers(await res.json()) : null;
    if (!servers) throw new Error(`HTTP ${res.status}`);
    return { iceServers: mergeIceServers(cfg.stunUrls, servers), ttlSec: t.ttlSec };
  } catch (err) {
    console.error(JSON.stringify({ level: 'error', msg: 'ice: Cloudflare TURN credentials failed; STUN only', error: String(err) }));
    return { iceServers: mergeIceServers(cfg.stunUrls, []) };
  }
}
