// Response headers around playback: CORS for players on any origin (preflights answered before
// the token check, refusals readable), and the secure headers every answer carries.
import { describe, expect, it } from 'vitest';
import { worker } from './helpers.ts';
import { createKey, liveStream, operator, play, tokenFor } from './playback-fixtures.ts';

const op = operator('192.0.2.14');

describe('CORS on playback routes', () => {
  it('answers a preflight for a signed stream without a token: any origin, GET/HEAD, the Range header', async () => {
    const { stream, epoch } = await liveStream(op, { playback: { policy: 'signed' } });
    const res = await worker(`/live/${stream.id}/v/${epoch}/2.0.m4s`, {
      method: 'OPTIONS',
      headers: { origin: 'https://player.example', 'access-control-request-method': 'GET', 'access-control-request-headers': 'range' },
    });
    expect(res.status).toBe(204);
    expect(res.headers.get('access-control-allow-origin')).toBe('*');
    expect(res.headers.get('access-control-allow-methods')).toBe('GET,HEAD,OPTIONS');
    expect(res.headers.get('access-control-allow-headers')).toBe('range');
    expect(res.headers.get('access-control-max-age')).toBe('86400');
  });

  it('lets a player on another origin read playlists, media and refusals', async () => {
    const { stream, epoch } = await liveStream(op, { playback: { policy: 'signed' } });
    const key = await createKey(op);
    const token = await tokenFor(stream.id, key.signingKey);
    const origin = { origin: 'https://player.example' };
    for (const path of [`/live/${stream.id}/index.m3u8`, `/live/${stream.id}/v/index.m3u8`, `/live/${stream.id}/v/${epoch}/2.0.m4s`]) {
      const ok = await play(path, { token, headers: origin });
      expect(ok.status, path).toBe(200);
      expect(ok.headers.get('access-control-allow-origin'), path).toBe('*');
      expect(ok.headers.get('access-control-expose-headers'), path).toContain('Content-Range');
      await ok.arrayBuffer();
      const refused = await play(path, { headers: origin });
      expect(refused.status, path).toBe(401);
      expect(refused.headers.get('access-control-allow-origin'), path).toBe('*');
      await refused.arrayBuffer();
    }
  });
});

describe('secure headers', () => {
  it('marks playlists and media as cross-origin resources, with nosniff and the other defaults', async () => {
    const { stream, epoch } = await liveStream(op);
    for (const path of [`/live/${stream.id}/v/index.m3u8`, `/live/${stream.id}/v/${epoch}/2.0.m4s`]) {
      const res = await play(path);
      expect(res.headers.get('cross-origin-resource-policy'), path).toBe('cross-origin');
      expect(res.headers.get('x-content-type-options'), path).toBe('nosniff');
      expect(res.headers.get('strict-transport-security'), path).toContain('max-age=');
      await res.arrayBuffer();
    }
  });

  it('adds them to cached answers too (Cache API responses have immutable headers)', async () => {
    const { stream, epoch } = await liveStream(op);
    const path = `/live/${stream.id}/v/${epoch}/2.0.m4s`;
    await (await play(path)).arrayBuffer();
    let cached: Response | undefined;
    for (let i = 0; i < 50 && !cached; i++) {
      cached = await caches.default.match(`http://edge.test/live/${stream.id}/${epoch}/v/2.0.m4s`);
      if (!cached) await new Promise((r) => setTimeout(r, 10));
    }
    await cached?.arrayBuffer();
    const hit = await play(path);
    expect(hit.status).toBe(200);
    expect(hit.headers.get('x-content-type-options')).toBe('nosniff');
    expect(hit.headers.get('access-control-allow-origin')).toBe('*');
    await hit.arrayBuffer();
  });

  it('still serves the player page and its script (static assets have immutable headers)', async () => {
    for (const [path, type] of [
      ['/watch/st00000000000000', 'text/html'],
      ['/vendor/hls.min.js', 'text/javascript'],
    ] as const) {
      const res = await worker(path);
      expect(res.status, path).toBe(200);
      expect(res.headers.get('content-type'), path).toContain(type);
      expect(res.headers.get('x-content-type-options'), path).toBe('nosniff');
      await res.arrayBuffer();
    }
  });

  it('a returning viewer starts from cache: the page is revalidated, the scripts and stylesheet it names are immutable', async () => {
    const page = await worker('/watch/st00000000000000');
    expect(page.headers.get('cache-control')).toBe('no-cache');
    const html = await page.text();
    const named = [...html.matchAll(/(?:src|href)="(\/dist\/[^"]+)"/g)].map((m) => m[1]!);
    expect(named).toEqual([
      expect.stringMatching(/^\/dist\/app-[A-Z0-9]{8}\.css$/),
      expect.stringMatching(/^\/dist\/watch-[A-Z0-9]{8}\.js$/),
    ]);
    for (const path of named) {
      const res = await worker(path);
      expect(res.status, path).toBe(200);
      expect(res.headers.get('cache-control'), path).toBe('public, max-age=31536000, immutable');
      expect(res.headers.get('content-type'), path).toContain(path.endsWith('.css') ? 'text/css' : 'javascript');
      await res.arrayBuffer();
    }
    // A name without a content hash is not immutable (it could change with the next deploy).
    const unhashed = await worker('/dist/watch.html');
    expect(unhashed.headers.get('cache-control') ?? '').not.toContain('immutable');
    await unhashed.arrayBuffer();
  });

  it('the Go-live page is served like the watch page: revalidated, naming its own immutable script and stylesheets', async () => {
    const page = await worker('/golive/st00000000000000');
    expect(page.status).toBe(200);
    expect(page.headers.get('content-type')).toContain('text/html');
    expect(page.headers.get('cache-control')).toBe('no-cache');
    expect(page.headers.get('x-content-type-options')).toBe('nosniff');
    const html = await page.text();
    const named = [...html.matchAll(/(?:src|href)="(\/dist\/[^"]+)"/g)].map((m) => m[1]!);
    expect(named).toEqual([
      expect.stringMatching(/^\/dist\/app-[A-Z0-9]{8}\.css$/),
      expect.stringMatching(/^\/dist\/golive-[A-Z0-9]{8}\.css$/),
      expect.stringMatching(/^\/dist\/golive-[A-Z0-9]{8}\.js$/),
    ]);
    for (const path of named) {
      const res = await worker(path);
      expect(res.status, path).toBe(200);
      expect(res.headers.get('cache-control'), path).toBe('public, max-age=31536000, immutable');
      await res.arrayBuffer();
    }
  });

  it("the watch and party pages preload the stream's multivariant playlist at the URL the page asks for", async () => {
    const link = async (path: string) => {
      const res = await worker(path);
      expect(res.status, path).toBe(200);
      await res.arrayBuffer();
      // The page's own stylesheet and script follow (the next test); here, the stream's playlist.
      return (
        (res.headers.get('link') ?? '')
          .split(', ')
          .filter((l) => !l.startsWith('</dist/'))
          .join(', ') || null
      );
    };
    expect(await link('/watch/st00000000000000')).toBe('</live/st00000000000000/index.m3u8>; rel=preload; as=fetch; crossorigin=anonymous');
    // The token rides along exactly as the page's playbackUrl() writes it.
    expect(await link('/watch/st00000000000000?token=eyJh.eyJz-x_y.c2ln&name=Ada')).toBe(
      '</live/st00000000000000/index.m3u8?token=eyJh.eyJz-x_y.c2ln>; rel=preload; as=fetch; crossorigin=anonymous',
    );
    expect(await link('/party/room-1?stream=st00000000000000')).toBe(
      '</live/st00000000000000/index.m3u8>; rel=preload; as=fetch; crossorigin=anonymous',
    );
    // No stream, or a malformed one: the page alone.
    expect(await link('/party/room-1')).toBeNull();
    expect(await link('/watch/bad%20id')).toBeNull();
  });

  it("the page's stylesheet and script are preloads in its header too (Early Hints), the names the HTML uses", async () => {
    const res = await worker('/party/room-1');
    const html = await res.text();
    const css = /href="(\/dist\/app-[A-Z0-9]{8}\.css)"/.exec(html)![1]!;
    const js = /src="(\/dist\/watch-[A-Z0-9]{8}\.js)"/.exec(html)![1]!;
    expect(res.headers.get('link')).toBe(`<${css}>; rel=preload; as=style, <${js}>; rel=modulepreload`);
  });

  it('keeps the admin API and the site same-origin and unframeable', async () => {
    for (const path of ['/api/streams', '/health']) {
      const res = await worker(path, { headers: op });
      expect(res.headers.get('cross-origin-resource-policy'), path).toBe('same-origin');
      expect(res.headers.get('x-frame-options'), path).toBe('SAMEORIGIN');
      expect(res.headers.get('x-content-type-options'), path).toBe('nosniff');
      await res.arrayBuffer();
    }
  });
});
