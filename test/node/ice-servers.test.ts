// ICE servers for party voice, in Node: the configuration read from the Worker's variables, TURN
// REST API credentials exactly as coturn checks them (`use-auth-secret`), and Cloudflare's TURN
// API — the request built from a TURN key and the documented answer read back (port 53 dropped).
import { createHmac } from 'node:crypto';
import { describe, expect, it } from 'vitest';
import {
  DEFAULT_STUN_URLS,
  DEFAULT_TURN_TTL_SEC,
  cloudflareTurnRequest,
  coturnCredentials,
  mergeIceServers,
  parseCloudflareIceServers,
  readIceConfig,
} from '../../core/auth/ice-servers.ts';
import { iceServersFor } from '../../workers/ice-servers.ts';

describe('ICE configuration', () => {
  it('always has STUN, and TURN only when a service is configured', () => {
    expect(readIceConfig({})).toEqual({ stunUrls: DEFAULT_STUN_URLS, turn: null });
    expect(readIceConfig({ STUN_URLS: 'stun:a.example:3478, stun:b.example:19302' }).stunUrls).toEqual([
      'stun:a.example:3478',
      'stun:b.example:19302',
    ]);
    // Not STUN URLs, or not URLs at all: ignored, and the default stays.
    expect(readIceConfig({ STUN_URLS: 'turn:x.example, http://nope, ' }).stunUrls).toEqual(DEFAULT_STUN_URLS);
    expect(readIceConfig({ TURN_URLS: 'turn:t.example:3478' }).turn).toBeNull(); // no secret
    expect(
      readIceConfig({
        TURN_URLS: 'turn:t.example:3478?transport=udp,turns:t.example:5349,stun:s',
        TURN_SECRET: 's3cret',
        TURN_TTL_SECONDS: '600',
      }).turn,
    ).toEqual({
      kind: 'coturn',
      urls: ['turn:t.example:3478?transport=udp', 'turns:t.example:5349'],
      secret: 's3cret',
      ttlSec: 600,
    });
    const cf = readIceConfig({
      TURN_URLS: 'turn:t.example',
      TURN_SECRET: 's',
      CLOUDFLARE_TURN_KEY_ID: 'kid',
      CLOUDFLARE_TURN_KEY_API_TOKEN: 'tok',
      TURN_TTL_SECONDS: '999999',
    });
    expect(cf.turn).toEqual({
      kind: 'cloudflare',
      keyId: 'kid',
      apiToken: 'tok',
      ttlSec: 172_800,
      apiBase: 'https://rtc.live.cloudflare.com/v1',
    });
    expect(readIceConfig({ TURN_URLS: 'turn:t', TURN_SECRET: 's', TURN_TTL_SECONDS: 'soon' }).turn?.ttlSec).toBe(DEFAULT_TURN_TTL_SEC);
  });
});

describe('coturn credentials (TURN REST API, use-auth-secret)', () => {
  it('are `expiry:user` and the base64 HMAC-SHA1 of it with the shared secret', async () => {
    const c = await coturnCredentials('north-secret', 'u1', 1_800_000_000);
    expect(c.username).toBe('1800000000:u1');
    expect(c.credential).toBe(createHmac('sha1', 'north-secret').update('1800000000:u1').digest('base64'));
    expect(c.credential).toMatch(/^[A-Za-z0-9+/]{27}=$/);
  });

  it('are minted for the member and expire after the configured lifetime', async () => {
    const a = await iceServersFor(
      { TURN_URLS: 'turn:t.example:3478', TURN_SECRET: 'k', TURN_TTL_SECONDS: '3600' },
      'member-a',
      1_700_000_000,
    );
    expect(a).toEqual({
      iceServers: [
        { urls: DEFAULT_STUN_URLS },
        {
          urls: ['turn:t.example:3478'],
          username: '1700003600:member-a',
          credential: createHmac('sha1', 'k').update('1700003600:member-a').digest('base64'),
        },
      ],
      ttlSec: 3600,
    });
    expect(await iceServersFor({}, 'member-a', 1_700_000_000)).toEqual({ iceServers: [{ urls: DEFAULT_STUN_URLS }] });
  });
});

describe('Cloudflare TURN', () => {
  const key = {
    kind: 'cloudflare' as const,
    keyId: 'abc123',
    apiToken: 'tok',
    ttlSec: 86_400,
    apiBase: 'https://rtc.live.cloudflare.com/v1',
  };
  // The answer as Cloudflare documents it (developers.cloudflare.com/realtime/turn/generate-credentials).
  const documented = {
    iceServers: [
      { urls: ['stun:stun.cloudflare.com:3478', 'stun:stun.cloudflare.com:53'] },
      {
        urls: [
          'turn:turn.cloudflare.com:3478?transport=udp',
          'turn:turn.cloudflare.com:53?transport=udp',
          'turn:turn.cloudflare.com:3478?transport=tcp',
          'turn:turn.cloudflare.com:80?transport=tcp',
          'turns:turn.cloudflare.com:5349?transport=tcp',
          'turns:turn.cloudflare.com:443?transport=tcp',
        ],
        username: 'bc91b63e2b5d759f8eb9f3b58062439e0a0e15893d76317d833265ad08d6631099ce7c7087caabb31ad3e1c386424e3e',
        credential: 'ebd71f1d3edbc2b0edae3cd5a6d82284aeb5c3b8fdaa9b8e3bf9cec683e0d45fe9f5b44e5145db3300f06c250a15b4a0',
      },
    ],
  };

  it('asks for credentials with the TURN key as bearer and the lifetime in the body', () => {
    const { url, init } = cloudflareTurnRequest(key);
    expect(url).toBe('https://rtc.live.cloudflare.com/v1/turn/keys/abc123/credentials/generate-ice-servers');
    expect(init).toEqual({
      method: 'POST',
      headers: { authorization: 'Bearer tok', 'content-type': 'application/json' },
      body: '{"ttl":86400}',
    });
  });

  it('reads the documented answer and drops port 53, which browsers refuse', () => {
    const servers = parseCloudflareIceServers(documented)!;
    expect(servers).toEqual([
      { urls: ['stun:stun.cloudflare.com:3478'] },
      {
        urls: [
          'turn:turn.cloudflare.com:3478?transport=udp',
          'turn:turn.cloudflare.com:3478?transport=tcp',
          'turn:turn.cloudflare.com:80?transport=tcp',
          'turns:turn.cloudflare.com:5349?transport=tcp',
          'turns:turn.cloudflare.com:443?transport=tcp',
        ],
        username: documented.iceServers[1]!.username,
        credential: documented.iceServers[1]!.credential,
      },
    ]);
    // Our STUN is not listed twice when Cloudflare's answer already has it.
    expect(mergeIceServers(DEFAULT_STUN_URLS, servers)).toEqual(servers);
    expect(parseCloudflareIceServers({ iceServers: 'nope' })).toBeNull();
  });

  it('falls back to STUN only when the TURN API cannot be reached', async () => {
    const vars = { CLOUDFLARE_TURN_KEY_ID: 'abc123', CLOUDFLARE_TURN_KEY_API_TOKEN: 'tok' };
    // Nothing listens on this port: the call fails as it would without a network.
    const down: typeof fetch = (_url, init) => fetch('http://127.0.0.1:9/', init);
    const errors: string[] = [];
    const orig = console.error;
    console.error = (m: string) => errors.push(m);
    try {
      expect(await iceServersFor(vars, 'm', 1_700_000_000, down)).toEqual({ iceServers: [{ urls: DEFAULT_STUN_URLS }] });
    } finally {
      console.error = orig;
    }
    expect(JSON.parse(errors[0]!)).toMatchObject({ level: 'error', msg: 'ice: Cloudflare TURN credentials failed; STUN only' });
  });
});
