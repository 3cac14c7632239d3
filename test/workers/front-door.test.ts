// The front door inside workerd: `GET /api/directory` lists the live streams and past broadcasts
// a stranger may see and nothing else (listing rules of core/contracts/stream-config.ts, no
// secrets), is cached per colo and served stale while it is rebuilt; `/` inlines it into the
// built page; `POST /parties` starts a party whose host is the caller; the replay page and the
// VOD info it reads; the docs.
import { env } from 'cloudflare:workers';
import { runDurableObjectAlarm } from 'cloudflare:test';
import { beforeAll, describe, expect, it } from 'vitest';
import { INGEST_PREFIX } from '../../core/contracts/ingest-protocol.ts';
import type { Directory, VodInfo } from '../../core/contracts/directory.ts';
import { verifyRoomToken } from '../../core/auth/room-token.ts';
import { signed, worker } from './helpers.ts';
import { api, liveStream, operator, TWO_RUNG_LADDER, type CreatedStream } from './playback-fixtures.ts';

const op = operator('192.0.2.81');
/** A title that tries to close the script element the page inlines the listing in. */
const YESTERDAY = 'Yesterday </script><script>alert(1)</script>';

async function directory(): Promise<{ res: Response; body: Directory }> {
  const res = await worker('/api/directory');
  expect(res.status).toBe(200);
  return { res, body: (await res.json()) as Directory };
}

/** A publisher's goodbye, then the grace period, then the DO's alarm ends the stream (as recordings.test.ts). */
async function end(streamId: string, epoch: number) {
  // (A stream the grace period already ended answers 409 here: ended either way.)
  await (await signed('POST', `${INGEST_PREFIX}/${streamId}/${epoch}/end`, null)).body?.cancel();
  await new Promise((r) => setTimeout(r, 1100));
  await runDurableObjectAlarm(env.STREAM_STATE.getByName(streamId));
}

const live: Record<string, { id: string; epoch: number }> = {};
const past: Record<string, string> = {};
let idle: CreatedStream;

beforeAll(async () => {
  const make = async (name: string, settings: Record<string, unknown>) => {
    const { stream, epoch } = await liveStream(op, settings);
    live[name] = { id: stream.id, epoch };
  };
  // Past broadcasts first: a live stream without pushes ends after END_GRACE_SECONDS (8 s), so
  // the live ones are made last, just before the listing is first read.
  await make('pastPublic', { title: YESTERDAY });
  await make('pastUnlisted', { title: 'Private rehearsal', playback: { policy: 'public', listed: false } });
  for (const name of ['pastPublic', 'pastUnlisted']) {
    await end(live[name]!.id, live[name]!.epoch);
    const recs = await api<{ recordings: Array<{ id: string; status: string }> }>(op, 'GET', `/streams/${live[name]!.id}/recordings`);
    expect(recs.body.recordings[0]?.status).toBe('ready');
    past[name] = recs.body.recordings[0]!.id;
  }
  await make('public', { title: 'Public live' });
  await make('unlisted', { title: 'Unlisted', playback: { policy: 'public', listed: false } });
  await make('signed', { title: 'Signed', playback: { policy: 'signed' } });
  await make('signedListed', { title: 'Members night', playback: { policy: 'signed', listed: true } });
  await make('regional', { title: 'Regional', playback: { policy: 'public', blockCountries: ['FR'] } });
  idle = (await api<CreatedStream>(op, 'POST', '/streams', { ladder: TWO_RUNG_LADDER, title: 'Not started' })).body;
}, 60_000);

describe('GET /api/directory', { timeout: 30_000 }, () => {
  let first: Directory;

  it('lists live streams anyone may play, and signed ones only when the operator lists them', async () => {
    const { res, body } = await directory();
    first = body;
    expect(body.live.map((s) => s.id).sort()).toEqual([live.public!.id, live.signedListed!.id].sort());
    const pub = body.live.find((s) => s.id === live.public!.id)!;
    expect(pub).toEqual({
      id: live.public!.id,
      title: 'Public live',
      viewers: 0,
      startedAt: expect.stringMatching(/^\d{4}-\d\d-\d\dT/),
      access: 'public',
      watch: `/watch/${live.public!.id}`,
      thumbnail: `/live/${live.public!.id}/thumbnail.jpg`,
    });
    // A signed stream is listed by name, without a picture its viewers would need a token for.
    expect(body.live.find((s) => s.id === live.signedListed!.id)).toMatchObject({
      title: 'Members night',
      access: 'signed',
      thumbnail: null,
    });
    expect(res.headers.get('content-type')).toContain('application/json');
    expect(res.headers.get('access-control-allow-origin')).toBe('*');
  });

  it('lists past broadcasts of listed streams only, newest first, linking to their replay page', async () => {
    const { body } = await directory();
    // (Live fixtures that the grace period has ended by now are past broadcasts too: only listed ones.)
    const listedStreams = [live.pastPublic!.id, live.public!.id, live.signedListed!.id];
    expect(body.recordings.map((r) => r.streamId).filter((id) => !listedStreams.includes(id))).toEqual([]);
    expect(body.recordings.map((r) => r.id)).toContain(past.pastPublic);
    expect(body.recordings.map((r) => r.startedAt)).toEqual(
      body.recordings
        .map((r) => r.startedAt)
        .sort()
        .reverse(),
    );
    expect(body.recordings.map((r) => r.id)).not.toContain(past.pastUnlisted);
    const rec = body.recordings.find((r) => r.id === past.pastPublic)!;
    expect(rec).toMatchObject({
      streamId: live.pastPublic!.id,
      title: YESTERDAY,
      access: 'public',
      watch: `/replay/${past.pastPublic}`,
      duration: 1.4,
    });
    expect(rec.thumbnail).toMatch(new RegExp(`^/live/${live.pastPublic!.id}/thumbnail\\.jpg\\?t=\\d+$`));
    // Idle and ended streams are not live.
    expect(body.live.map((s) => s.id)).not.toContain(idle.id);
    expect(body.live.map((s) => s.id)).not.toContain(live.pastPublic!.id);
  });

  it('carries no secret: no key, no settings, no ingest address', async () => {
    const text = await (await worker('/api/directory')).text();
    for (const secret of [
      'sk_',
      'streamKey',
      'ladder',
      'rtmp',
      'srt:',
      'policy',
      'settings',
      live.unlisted!.id,
      live.signed!.id,
      live.regional!.id,
      past.pastUnlisted!,
    ]) {
      expect(text).not.toContain(secret);
    }
  });

  it('is built once per freshness period and served stale while it is rebuilt', async () => {
    const again = await directory();
    expect(again.body.generatedAt).toBe(first.generatedAt);
    expect(again.res.headers.get('cache-control')).toMatch(/^public, max-age=[0-5], stale-while-revalidate=55$/);
    // The public stream ends; within the freshness period nobody sees it yet.
    await end(live.public!.id, live.public!.epoch);
    const built = Date.parse(first.generatedAt);
    const cached = await directory();
    if (Date.now() - built < 4000) expect(cached.body.live.map((s) => s.id)).toContain(live.public!.id);
    // Once the copy is older than 5 s: one request gets it at once and starts a rebuild …
    await new Promise((r) => setTimeout(r, Math.max(0, built + 5200 - Date.now())));
    const stale = await directory();
    expect(stale.body.generatedAt).toBe(first.generatedAt);
    expect(stale.res.headers.get('cache-control')).toBe('public, max-age=0, stale-while-revalidate=55');
    // … whose result the next requests get.
    await expect
      .poll(async () => (await directory()).body, { timeout: 5000, interval: 100 })
      .toSatisfy((d: Directory) => d.generatedAt !== first.generatedAt && !d.live.some((s) => s.id === live.public!.id));
  });
});

describe('the front door page', { timeout: 30_000 }, () => {
  it('serves the built page with the listing inlined, its script and stylesheet preloaded, and never reused stale', async () => {
    const res = await worker('/');
    expect(res.status, await res.clone().text()).toBe(200);
    expect(res.headers.get('content-type')).toBe('text/html; charset=utf-8');
    expect(res.headers.get('cache-control')).toBe('no-cache');
    const html = await res.text();
    const m = /<script type="application\/json" id="directory">([\s\S]*?)<\/script>/.exec(html);
    expect(m, 'the inlined listing').not.toBeNull();
    const inlined = JSON.parse(m![1]!) as Directory;
    // The copy `/api/directory` answers now (live streams of the fixtures have ended by now: no pushes).
    expect(inlined).toEqual((await directory()).body);
    expect(inlined.recordings.find((r) => r.id === past.pastPublic)!.title).toBe(YESTERDAY);
    // A title cannot close the script element it sits in.
    expect(html).not.toContain('<script>alert(1)</script>');
    const links = res.headers.get('link') ?? '';
    expect(links).toMatch(/<\/dist\/front-[A-Z0-9]{8}\.js>; rel=modulepreload/);
    expect(links).toMatch(/<\/dist\/app-[A-Z0-9]{8}\.css>; rel=preload; as=style/);
    const script = /src="(\/dist\/front-[A-Z0-9]{8}\.js)"/.exec(html)![1]!;
    const js = await worker(script);
    expect(js.status).toBe(200);
    expect(js.headers.get('cache-control')).toBe('public, max-age=31536000, immutable');
  });

  it('serves the docs it links to as text, and nothing outside them', async () => {
    const doc = await worker('/docs/api.md');
    expect(doc.status).toBe(200);
    expect(doc.headers.get('content-type')).toBe('text/plain; charset=utf-8');
    expect(await doc.text()).toContain('# HTTP API');
    for (const path of ['/docs/nope.md', '/docs/..%2Fwrangler.toml', '/docs/API.md']) expect((await worker(path)).status, path).toBe(404);
  });
});

describe('a recording or a clip on its replay page', { timeout: 30_000 }, () => {
  it('GET /vod/{id}/info.json: its title, stream, start and length; the page preloads its playlist', async () => {
    const res = await worker(`/vod/${past.pastPublic}/info.json`);
    expect(res.status).toBe(200);
    const info = (await res.json()) as VodInfo;
    expect(info).toEqual({
      id: past.pastPublic,
      kind: 'recording',
      streamId: live.pastPublic!.id,
      title: YESTERDAY,
      streamTitle: YESTERDAY,
      startedAt: expect.any(String),
      duration: 1.4,
    });
    const page = await worker(`/replay/${past.pastPublic}`);
    expect(page.status).toBe(200);
    expect(await page.text()).toMatch(/<script type="module" src="\/dist\/replay-[A-Z0-9]{8}\.js"><\/script>/);
    expect(page.headers.get('link')).toContain(`</vod/${past.pastPublic}/index.m3u8>; rel=preload; as=fetch; crossorigin=anonymous`);
    expect((await worker('/vod/rcnope0000000000000/info.json')).status).toBe(404);
  });
});

describe('POST /parties', { timeout: 30_000 }, () => {
  const start = (body: unknown, address = '192.0.2.82') =>
    worker('/parties', {
      method: 'POST',
      headers: { 'content-type': 'application/json', 'cf-connecting-ip': address },
      body: JSON.stringify(body),
    });

  it('makes a new room whose host is the caller, and an invite without the host token', async () => {
    const res = await start({ stream: live.signedListed!.id, name: 'Ada' });
    expect(res.status).toBe(201);
    const p = (await res.json()) as { room: string; stream: string; hostToken: string; url: string; invite: string };
    expect(p.room).toMatch(/^p[a-z0-9]{15}$/);
    expect(p.invite).toBe(`/party/${p.room}?stream=${live.signedListed!.id}`);
    expect(p.url).toBe(`${p.invite}&roomToken=${p.hostToken}`);
    const check = await verifyRoomToken(p.hostToken, 'test-room-secret', p.room, Math.floor(Date.now() / 1000));
    expect(check.ok && check.claims).toMatchObject({ room: p.room, name: 'Ada', role: 'host' });
    // Only that room: the token opens no other.
    expect((await verifyRoomToken(p.hostToken, 'test-room-secret', live.signedListed!.id, Math.floor(Date.now() / 1000))).ok).toBe(false);
    const again = (await (await start({ stream: live.signedListed!.id })).json()) as { room: string };
    expect(again.room).not.toBe(p.room);
  });

  it('refuses an unknown stream or a malformed request, and more than 10 a minute from one address', async () => {
    const unknown = await start({ stream: 'stnosuchstream00' }, '192.0.2.83');
    expect(unknown.status).toBe(404);
    expect(((await unknown.json()) as { error: { code: string } }).error.code).toBe('stream_not_found');
    expect((await start({ stream: '../x' }, '192.0.2.83')).status).toBe(400);
    expect((await start({ stream: live.signedListed!.id, role: 'host' }, '192.0.2.83')).status).toBe(400);
    // (The local limiter counts approximately, like Cloudflare's: the first passes, some of 15 do not.)
    const codes: number[] = [];
    for (let i = 0; i < 15; i++) codes.push((await start({ stream: live.signedListed!.id }, '192.0.2.84')).status);
    expect(codes[0]).toBe(201);
    expect(codes).toContain(429);
  });
});
