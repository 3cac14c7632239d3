// The front door: `/` (the built page with the listing inlined, so it shows without a second
// request), `GET /api/directory` (the same listing as JSON, for the page's refresh and for other
// sites), the replay page of recordings and clips (`/replay/{id}`), and the docs as plain text.
import { Hono } from 'hono';
import type { Env } from '../env.ts';
import { errorResponse } from '../http.ts';
import { currentDirectory, directoryCacheControl } from '../directory/directory-cache.ts';

/** Mounted at `/api` BEFORE the admin routes: the listing is public. */
export const directoryRoutes = new Hono<{ Bindings: Env }>();
/** Mounted at `/`. */
export const frontDoorRoutes = new Hono<{ Bindings: Env }>();

/** Where the page's HTML leaves room for the listing (public/src/index.html). */
const DIRECTORY_SLOT = '<!--directory-->';
const VOD_ID_RE = /^(?:rc|cl)[a-z0-9]{16}$/;
const DOC_RE = /^[a-z][a-z0-9-]{0,40}\.md$/;

directoryRoutes.get('/directory', async (c) => {
  const copy = await currentDirectory(c.env, new URL(c.req.url).origin, (p) => c.executionCtx.waitUntil(p));
  return c.body(copy.text, 200, {
    'content-type': 'application/json; charset=utf-8',
    'cache-control': directoryCacheControl(copy),
    'access-control-allow-origin': '*',
  });
});

/**
 * A built page's HTML (scripts/build-assets.mjs). Never reused from a cache (`no-cache`): it names
 * the content-hashed files of this deployment, which a deploy replaces, and carries the listing
 * of this moment; its stylesheet and script go out as Link preloads (103 Early Hints at Cloudflare).
 */
async function builtPage(
  assets: Fetcher,
  requestUrl: string,
  file: string,
  fill?: (html: string) => string,
  extraLinks: string[] = [],
): Promise<Response> {
  const page = await assets.fetch(new URL(`/dist/${file}`, requestUrl));
  if (!page.ok) return errorResponse(503, 'not_built', `the page ${file} is not built (npm run build:assets)`);
  const raw = await page.text();
  const html = fill ? fill(raw) : raw;
  const res = new Response(html, { headers: { 'content-type': 'text/html; charset=utf-8', 'cache-control': 'no-cache' } });
  for (const link of extraLinks) res.headers.append('link', link);
  for (const m of raw.matchAll(/<(?:link rel="stylesheet" href|script type="module" src)="(\/dist\/[^"]+)"/g)) {
    res.headers.append('link', m[1]!.endsWith('.css') ? `<${m[1]}>; rel=preload; as=style` : `<${m[1]}>; rel=modulepreload`);
  }
  return res;
}

frontDoorRoutes.get('/', async (c) => {
  const copy = await currentDirectory(c.env, new URL(c.req.url).origin, (p) => c.executionCtx.waitUntil(p));
  // JSON inside <script> must not close it: `<` is written as its escape, which JSON.parse reads back.
  const inline = `<script type="application/json" id="directory">${copy.text.replaceAll('<', '\\u003c')}</script>`;
  return builtPage(c.env.ASSETS, c.req.url, 'index.html', (html) => html.replace(DIRECTORY_SLOT, inline));
});

/** A recording's or a clip's page; its playlist is preloaded like the watch page's. */
frontDoorRoutes.get('/replay/:id', (c) => {
  const id = c.req.param('id');
  const links = VOD_ID_RE.test(id) ? [`</vod/${id}/index.m3u8${tokenQuery(c.req.url)}>; rel=preload; as=fetch; crossorigin=anonymous`] : [];
  return builtPage(c.env.ASSETS, c.req.url, 'replay.html', undefined, links);
});

/** The docs of this deployment, as the build copied them: Markdown, shown by browsers as text. */
frontDoorRoutes.get('/docs/:file', async (c) => {
  const file = c.req.param('file');
  if (!DOC_RE.test(file)) return errorResponse(404, 'not_found', 'no such document');
  const doc = await c.env.ASSETS.fetch(new URL(`/dist/docs/${file}`, c.req.url));
  if (!doc.ok) return errorResponse(404, 'not_found', 'no such document');
  return new Response(doc.body, { headers: { 'content-type': 'text/plain; charset=utf-8', 'cache-control': 'public, max-age=300' } });
});

function tokenQuery(requestUrl: string): string {
  const token = new URL(requestUrl).searchParams.get('token');
  return token ? `?token=${encodeURIComponent(token)}` : '';
}
