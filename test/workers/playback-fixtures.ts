// Fixtures for the playback-security tests: an operator calling the admin API, live streams
// fed by a fake publisher, signing keys from the API, tokens and viewer requests with a country.
import { expect } from 'vitest';
import { importSigningKey, signPlaybackToken, type PlaybackGrant, type SigningKey } from '../../core/auth/playback-token.ts';
import { AUDIO_INIT, FakeRendition, TAKEOVER_ALLOWED, authorize, expectOk, worker } from './helpers.ts';

/**
 * The admin bearer token, from a client address of the calling file's own: the admin API is
 * rate limited per address, and test files share the local limiter's counters.
 */
export function operator(address: string) {
  return { authorization: 'Bearer test-admin-token', 'cf-connecting-ip': address, 'content-type': 'application/json' };
}

export type Operator = ReturnType<typeof operator>;

export async function api<T = Record<string, unknown>>(
  op: Operator,
  method: string,
  path: string,
  body?: unknown,
): Promise<{ status: number; body: T }> {
  const res = await worker(`/api${path}`, { method, headers: op, body: body === undefined ? undefined : JSON.stringify(body) });
  const text = await res.text();
  return { status: res.status, body: (text ? JSON.parse(text) : null) as T };
}

export interface CreatedStream {
  id: string;
  streamKey: string;
  settings: { playback: { policy: string; allowCountries?: string[]; blockCountries?: string[] } };
}

export const TWO_RUNG_LADDER = [
  { name: 'v', kind: 'video', width: 640, height: 360, videoBitrate: 800_000 },
  { name: 'a', kind: 'audio', audioBitrate: 128_000 },
];

/** A stream created with `settings` and leased by a publisher whose renditions sent their init segments. */
export async function leasedStream(op: Operator, settings: Record<string, unknown> = {}) {
  const created = await api<CreatedStream>(op, 'POST', '/streams', { ladder: TWO_RUNG_LADDER, ...TAKEOVER_ALLOWED, ...settings });
  expect(created.status).toBe(201);
  const stream = created.body;
  const auth = await authorize(stream.streamKey);
  expect(auth.status).toBe(200);
  const lease = (await auth.json()) as { epoch: number; startMsn: number };
  const v = new FakeRendition(stream.id, lease.epoch, 'v', lease.startMsn);
  const a = new FakeRendition(stream.id, lease.epoch, 'a', lease.startMsn);
  expectOk(await v.init());
  const ladder = (settings.ladder as Array<{ name: string }> | undefined) ?? TWO_RUNG_LADDER;
  if (ladder.some((r) => r.name === 'a')) expectOk(await a.init(AUDIO_INIT));
  return { stream, lease, v, a };
}

/** A stream with one complete segment and two parts of the next in both renditions. */
export async function liveStream(op: Operator, settings: Record<string, unknown> = {}) {
  const { stream, lease, v, a } = await leasedStream(op, settings);
  await v.segment();
  await a.segment();
  for (const r of [v, a]) {
    expectOk(await r.nextPart());
    expectOk(await r.nextPart());
  }
  return { stream, epoch: lease.epoch, v, a };
}

export interface ApiKey {
  kid: string;
  privateJwk: Record<string, unknown>;
  privateKeyPem: string;
  signingKey: SigningKey;
}

/** A signing key created through the API, its private half imported as the CLI does. */
export async function createKey(op: Operator, name = 'test'): Promise<ApiKey> {
  const res = await api<{ kid: string; privateJwk: Record<string, unknown>; privateKeyPem: string }>(op, 'POST', '/signing-keys', { name });
  expect(res.status).toBe(201);
  return { ...res.body, signingKey: await importSigningKey(JSON.stringify(res.body.privateJwk)) };
}

export const nowSeconds = () => Math.floor(Date.now() / 1000);

/** A token for `streamId` valid for an hour unless the grant says otherwise. */
export function tokenFor(streamId: string, key: SigningKey, grant: Partial<PlaybackGrant> = {}): Promise<string> {
  return signPlaybackToken({ streamId, expiresAt: nowSeconds() + 3600, ...grant }, key);
}

export interface ViewerOptions {
  token?: string;
  /** `request.cf.country`; omitted = no `cf` object, as in local tests. */
  country?: string;
  headers?: Record<string, string>;
  /** Extra query (delivery directives). */
  query?: string;
}

/** A viewer's GET of a playback path (`/live/...`), the token in `?token=` as players carry it. */
export function play(path: string, o: ViewerOptions = {}): Promise<Response> {
  const q = [o.token !== undefined ? `token=${encodeURIComponent(o.token)}` : '', o.query ?? ''].filter(Boolean).join('&');
  const url = `http://edge.test${path}${q ? (path.includes('?') ? '&' : '?') + q : ''}`;
  const init: RequestInit = { headers: o.headers };
  if (o.country !== undefined) (init as { cf?: unknown }).cf = { country: o.country };
  return worker(new Request(url, init));
}

/** Asserts a JSON refusal: exact status and code, CORS-readable, never cached. */
export async function expectRefusal(res: Response, status: number, code: string, label = ''): Promise<void> {
  const body = (await res.json()) as { error?: { code?: string; message?: string } };
  expect({ status: res.status, code: body.error?.code }, label).toEqual({ status, code });
  expect(body.error?.message, label).toEqual(expect.any(String));
  expect(res.headers.get('content-type'), label).toContain('application/json');
  expect(res.headers.get('access-control-allow-origin'), label).toBe('*');
  expect(res.headers.get('cache-control'), label).toBe('no-store');
}

/** Every URI in a playlist: plain lines and `URI="..."` attributes. */
export function playlistUris(text: string): string[] {
  const uris: string[] = [];
  for (const line of text.split('\n')) {
    if (!line) continue;
    if (!line.startsWith('#')) uris.push(line);
    for (const m of line.matchAll(/URI="([^"]*)"/g)) uris.push(m[1]!);
  }
  return uris;
}
