// ICE servers for party voice, from the deployment's configuration: STUN always, and TURN with
// short-lived credentials when a TURN service is configured — a coturn (or compatible) server
// with the TURN REST API scheme (`use-auth-secret`: the username is `expiry:user`, the password
// the base64 HMAC-SHA1 of it with the shared secret), or Cloudflare's TURN service, whose API
// turns a TURN key into credentials. Pure: building and reading, no fetch (workers/ice-servers.ts).
import { z } from 'zod';

/** What RTCPeerConnection takes (RTCIceServer). */
export interface IceServer {
  urls: string[];
  username?: string;
  credential?: string;
}

export type TurnConfig =
  | { kind: 'coturn'; urls: string[]; secret: string; ttlSec: number }
  | { kind: 'cloudflare'; keyId: string; apiToken: string; ttlSec: number; apiBase: string };

export interface IceConfig {
  stunUrls: string[];
  turn: TurnConfig | null;
}

/** The variables the Worker reads (wrangler.toml `[vars]` and secrets). */
export interface IceVars {
  STUN_URLS?: string;
  TURN_URLS?: string;
  TURN_SECRET?: string;
  TURN_TTL_SECONDS?: string;
  CLOUDFLARE_TURN_KEY_ID?: string;
  CLOUDFLARE_TURN_KEY_API_TOKEN?: string;
}

export const DEFAULT_STUN_URLS = ['stun:stun.cloudflare.com:3478'];
/** A voice session keeps its relay until the credential it was allocated with expires. */
export const DEFAULT_TURN_TTL_SEC = 4 * 3600;
/** Cloudflare refuses credentials that live longer than 48 hours. */
export const MAX_TURN_TTL_SEC = 48 * 3600;
export const CLOUDFLARE_TURN_API = 'https://rtc.live.cloudflare.com/v1';

const ICE_URL = /^(stun|stuns|turn|turns):[^\s,]+$/;

function urlList(raw: string | undefined, scheme: RegExp): string[] {
  return (raw ?? '')
    .split(',')
    .map((u) => u.trim())
    .filter((u) => u !== '' && ICE_URL.test(u) && scheme.test(u));
}

/** Reads the configuration. Cloudflare's TURN when its key is set, else coturn when its URLs and secret are. */
export function readIceConfig(vars: IceVars): IceConfig {
  const stun = urlList(vars.STUN_URLS, /^stuns?:/);
  const ttlRaw = Number(vars.TURN_TTL_SECONDS);
  const ttlSec = Number.isInteger(ttlRaw) && ttlRaw >= 60 ? Math.min(ttlRaw, MAX_TURN_TTL_SEC) : DEFAULT_TURN_TTL_SEC;
  let turn: TurnConfig | null = null;
  if (vars.CLOUDFLARE_TURN_KEY_ID && vars.CLOUDFLARE_TURN_KEY_API_TOKEN) {
    turn = {
      kind: 'cloudflare',
      keyId: vars.CLOUDFLARE_TURN_KEY_ID,
      apiToken: vars.CLOUDFLARE_TURN_KEY_API_TOKEN,
      ttlSec,
      apiBase: CLOUDFLARE_TURN_API,
    };
  } else if (vars.TURN_SECRET) {
    const urls = urlList(vars.TURN_URLS, /^turns?:/);
    if (urls.length > 0) turn = { kind: 'coturn', urls, secret: vars.TURN_SECRET, ttlSec };
  }
  return { stunUrls: stun.length > 0 ? stun : DEFAULT_STUN_URLS, turn };
}

/**
 * TURN REST API credentials (coturn `use-auth-secret` + `static-auth-secret`): the username
 * carries its own expiry, so the TURN server needs no call to us to check it.
 */
export async function coturnCredentials(
  secret: string,
  user: string,
  expiresAtSec: number,
): Promise<{ username: string; credential: string }> {
  const username = `${expiresAtSec}:${user}`;
  const key = await crypto.subtle.importKey('raw', new TextEncoder().encode(secret), { name: 'HMAC', hash: 'SHA-1' }, false, ['sign']);
  const mac = new Uint8Array(await crypto.subtle.sign('HMAC', key, new TextEncoder().encode(username)));
  // Standard base64 with padding, as coturn computes it (not base64url).
  let bin = '';
  for (const b of mac) bin += String.fromCharCode(b);
  return { username, credential: btoa(bin) };
}

/** The call that turns a Cloudflare TURN key into credentials. */
export function cloudflareTurnRequest(t: Extract<TurnConfig, { kind: 'cloudflare' }>): { url: string; init: RequestInit } {
  return {
    url: `${t.apiBase}/turn/keys/${encodeURIComponent(t.keyId)}/credentials/generate-ice-servers`,
    init: {
      method: 'POST',
      headers: { authorization: `Bearer ${t.apiToken}`, 'content-type': 'application/json' },
      body: JSON.stringify({ ttl: t.ttlSec }),
    },
  };
}

const CloudflareAnswer = z.object({
  iceServers: z.array(
    z.object({
      urls: z.union([z.string(), z.array(z.string())]),
      username: z.string().optional(),
      credential: z.string().optional(),
    }),
  ),
});

/**
 * Reads Cloudflare's answer. URLs on port 53 are dropped: browsers refuse or time out on them,
 * and the same servers are listed on 3478, 80 and 443.
 */
export function parseCloudflareIceServers(body: unknown): IceServer[] | null {
  const r = CloudflareAnswer.safeParse(body);
  if (!r.success) return null;
  const out: IceServer[] = [];
  for (const s of r.data.iceServers) {
    const urls = (Array.isArray(s.urls) ? s.urls : [s.urls]).filter((u) => ICE_URL.test(u) && !/:53(?:\?|$)/.test(u));
    if (urls.length === 0) continue;
    out.push({
      urls,
      ...(s.username !== undefined ? { username: s.username } : {}),
      ...(s.credential !== undefined ? { credential: s.credential } : {}),
    });
  }
  return out;
}

/** STUN first, then TURN; a STUN URL the TURN service also lists is kept once. */
export function mergeIceServers(stunUrls: string[], turn: IceServer[]): IceServer[] {
  const listed = new Set(turn.flatMap((s) => s.urls));
  const stun = stunUrls.filter((u) => !listed.has(u));
  return [...(stun.length > 0 ? [{ urls: stun }] : []), ...turn];
}
