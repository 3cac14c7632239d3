#!/usr/bin/env node
// Builds what the Worker's static assets serve beside the HTML: the pages of public/src/*.html
// (the watch page: the player with hls.js; chat, reactions, polls, QoE and the party in a second
// chunk; the WHEP client of real-time mode in a third, loaded only when a viewer chooses real
// time; party voice in a fourth, loaded only when a member joins voice; the Go-live page with its
// own script and stylesheet; the front door; the replay page of recordings and clips) bundled by
// esbuild into public/dist under content-hashed names, each page's HTML that names them, a copy of
// docs/ for the front door's links, and hls.js itself in public/vendor for pages that load it on
// their own. Both folders are build output (gitignored); `npm test`, the local stack and
// `npm run deploy` run this.
import { createHash } from 'node:crypto';
import { copyFileSync, existsSync, mkdirSync, readFileSync, readdirSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { basename, dirname, join } from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';
import { build } from 'esbuild';

const ROOT = join(dirname(fileURLToPath(import.meta.url)), '..');

/** Where the built files are served from (the Worker's asset routes give them immutable caching). */
export const DIST_PATH = '/dist/';

/** The one output file of a single-entry build (its content-hashed name). */
function outputOf(result, ext) {
  const files = Object.keys(result.metafile.outputs).filter((f) => f.endsWith(ext));
  if (files.length !== 1) throw new Error(`expected one ${ext} output, got ${files.join(', ')}`);
  return { file: files[0], url: DIST_PATH + basename(files[0]), inputs: Object.keys(result.metafile.outputs[files[0]].inputs) };
}

/**
 * Builds the watch page into `outdir` and answers what it wrote: each bundle's URL and the source
 * files inside it (the tests check which code is on the path to the first frame).
 * Five builds, no shared chunk:
 *  - `realtime`: the WHEP client, imported by `together` (by its hashed URL) only when the viewer
 *    switches to real time (public/src/watch/realtime.ts);
 *  - `voice`: party voice (the WebRTC mesh and its card), which the party card imports by its
 *    hashed URL only when a member clicks "Join voice": nobody who does not talk downloads it;
 *  - `together`: what loads once the video plays (chat, reactions, polls, QoE, the party, the
 *    real-time toggle);
 *  - `watch`: the critical path to the first frame, one request (the player, hls.js, the page's
 *    skeleton), which imports `together` by its hashed URL (a build-time constant);
 *  - `app`: the stylesheet.
 * The few small helpers both scripts use are simply in both. Names carry a hash of the content,
 * so the Worker serves them as immutable and a returning viewer starts from the browser's cache;
 * only the HTML (which names them) must be fetched again.
 */
export async function buildWatchPage({ root = ROOT, outdir = join(root, 'public', 'dist') } = {}) {
  rmSync(outdir, { recursive: true, force: true });
  const common = {
    bundle: true,
    minify: true,
    sourcemap: 'linked',
    legalComments: 'linked',
    logLevel: 'warning',
    metafile: true,
    outdir,
    entryNames: '[name]-[hash]',
    target: ['chrome109', 'firefox115', 'safari16'],
  };
  const js = { ...common, format: 'esm' };
  const realtime = outputOf(
    await build({ ...js, entryPoints: { realtime: join(root, 'public', 'src', 'watch', 'whep-client.ts') } }),
    '.js',
  );
  const voice = outputOf(await build({ ...js, entryPoints: { voice: join(root, 'public', 'src', 'voice', 'voice.ts') } }), '.js');
  const together = outputOf(
    await build({
      ...js,
      entryPoints: { together: join(root, 'public', 'src', 'watch', 'together.ts') },
      define: { __REALTIME_URL__: JSON.stringify(realtime.url), __VOICE_URL__: JSON.stringify(voice.url) },
    }),
    '.js',
  );
  const watch = outputOf(
    await build({
      ...js,
      entryPoints: { watch: join(root, 'public', 'src', 'watch.ts') },
      define: { __TOGETHER_URL__: JSON.stringify(together.url) },
    }),
    '.js',
  );
  const css = outputOf(await build({ ...common, sourcemap: false, entryPoints: { app: join(root, 'public', 'app.css') } }), '.css');
  const template = readFileSync(join(root, 'public', 'src', 'watch.html'), 'utf8');
  const html = template.replaceAll('{{APP_CSS}}', css.url).replaceAll('{{WATCH_JS}}', watch.url);
  if (html.includes('{{')) throw new Error('public/src/watch.html has a placeholder the build does not fill');
  writeFileSync(join(outdir, 'watch.html'), html);
  return { watch, together, realtime, voice, css, html: join(outdir, 'watch.html') };
}

/**
 * Builds the Go-live page into `outdir` beside the watch page (run after buildWatchPage, which
 * empties it): its own script (nothing of the player in it, nothing of it in the watch page's
 * bundles), app.css and golive.css, hashed like the watch page's, and the HTML that names them.
 */
export async function buildGoLivePage({ root = ROOT, outdir = join(root, 'public', 'dist') } = {}) {
  const common = {
    bundle: true,
    minify: true,
    logLevel: 'warning',
    metafile: true,
    outdir,
    entryNames: '[name]-[hash]',
    target: ['chrome109', 'firefox115', 'safari16'],
  };
  const golive = outputOf(
    await build({
      ...common,
      format: 'esm',
      sourcemap: 'linked',
      legalComments: 'linked',
      entryPoints: { golive: join(root, 'public', 'src', 'golive.ts') },
    }),
    '.js',
  );
  // The same app.css as the watch page's build: the same content, so the same hashed name.
  const appCss = outputOf(await build({ ...common, entryPoints: { app: join(root, 'public', 'app.css') } }), '.css');
  const css = outputOf(await build({ ...common, entryPoints: { golive: join(root, 'public', 'golive.css') } }), '.css');
  const template = readFileSync(join(root, 'public', 'src', 'golive.html'), 'utf8');
  const html = template.replaceAll('{{APP_CSS}}', appCss.url).replaceAll('{{GOLIVE_CSS}}', css.url).replaceAll('{{GOLIVE_JS}}', golive.url);
  if (html.includes('{{')) throw new Error('public/src/golive.html has a placeholder the build does not fill');
  writeFileSync(join(outdir, 'golive.html'), html);
  return { golive, css, html: join(outdir, 'golive.html') };
}

/** Fills a page template's `{{NAME}}` placeholders; a placeholder left unfilled is a build error. */
function fillTemplate(root, name, values) {
  let html = readFileSync(join(root, 'public', 'src', name), 'utf8');
  for (const [k, v] of Object.entries(values)) html = html.replaceAll(`{{${k}}}`, v);
  if (html.includes('{{')) throw new Error(`public/src/${name} has a placeholder the build does not fill`);
  return html;
}

/**
 * The front door (`/`, from public/src/index.html) and the replay page (`/replay/{id}`, from
 * public/src/replay.html), built into `outdir` beside the watch page, whose stylesheet they share
 * (a visitor of the front door then opens a watch page with it cached). The front door's script is
 * small and free of hls.js and zod: it renders the listing the Worker inlines into its HTML (the
 * `<!--directory-->` slot). Its own few rules are inlined as a <style> (no second stylesheet
 * request). Also copies docs/*.md to `outdir/docs/` for the front door's links.
 */
export async function buildSitePages({ root = ROOT, outdir = join(root, 'public', 'dist'), css }) {
  const js = {
    bundle: true,
    minify: true,
    sourcemap: 'linked',
    legalComments: 'linked',
    logLevel: 'warning',
    metafile: true,
    outdir,
    entryNames: '[name]-[hash]',
    target: ['chrome109', 'firefox115', 'safari16'],
    format: 'esm',
  };
  const front = outputOf(await build({ ...js, entryPoints: { front: join(root, 'public', 'src', 'front-door.ts') } }), '.js');
  const replay = outputOf(await build({ ...js, entryPoints: { replay: join(root, 'public', 'src', 'replay.ts') } }), '.js');
  const inlineCss = await build({
    entryPoints: [join(root, 'public', 'src', 'front-door', 'front-door.css')],
    bundle: true,
    minify: true,
    write: false,
    logLevel: 'warning',
  });
  const pages = {
    index: fillTemplate(root, 'index.html', { APP_CSS: css.url, FRONT_JS: front.url, FRONT_CSS: inlineCss.outputFiles[0].text.trim() }),
    replay: fillTemplate(root, 'replay.html', { APP_CSS: css.url, REPLAY_JS: replay.url }),
  };
  for (const [name, html] of Object.entries(pages)) writeFileSync(join(outdir, `${name}.html`), html);
  mkdirSync(join(outdir, 'docs'), { recursive: true });
  for (const f of readdirSync(join(root, 'docs')).filter((f) => f.endsWith('.md')))
    copyFileSync(join(root, 'docs', f), join(outdir, 'docs', f));
  return { front, replay, html: { index: join(outdir, 'index.html'), replay: join(outdir, 'replay.html') } };
}

/** Every page: the watch page first (it clears `outdir` and builds the shared stylesheet). */
export async function buildPages({ root = ROOT, outdir = join(root, 'public', 'dist') } = {}) {
  const watch = await buildWatchPage({ root, outdir });
  const golive = await buildGoLivePage({ root, outdir });
  const site = await buildSitePages({ root, outdir, css: watch.css });
  return { ...watch, golive, site };
}

/**
 * A digest of everything the build reads: the pages' sources (public/), the shared core they
 * bundle, the docs it copies, the locked dependency versions (esbuild, hls.js) and this script.
 */
function inputsDigest(root = ROOT) {
  const hash = createHash('sha256');
  const add = (path) => {
    const st = statSync(path);
    if (st.isDirectory()) {
      for (const name of readdirSync(path).sort()) if (name !== 'dist' && name !== 'vendor') add(join(path, name));
    } else hash.update(path).update(readFileSync(path));
  };
  for (const path of ['public', 'core', 'docs', 'package-lock.json', 'scripts/build-assets.mjs']) add(join(root, path));
  return hash.digest('hex');
}

if (import.meta.url === pathToFileURL(process.argv[1] ?? '').href) {
  // Skipped when nothing it reads has changed since the last build: every local stack (each e2e
  // file, bench and `npm start`) runs this, and a rebuild empties public/dist under a stack that
  // may be serving from it.
  const stamp = join(ROOT, 'public', 'dist', '.inputs');
  const digest = inputsDigest();
  if (existsSync(stamp) && readFileSync(stamp, 'utf8') === digest && existsSync(join(ROOT, 'public', 'vendor', 'hls.min.js')))
    process.exit(0);
  mkdirSync(join(ROOT, 'public', 'vendor'), { recursive: true });
  copyFileSync(join(ROOT, 'node_modules', 'hls.js', 'dist', 'hls.min.js'), join(ROOT, 'public', 'vendor', 'hls.min.js'));
  await buildPages();
  writeFileSync(stamp, digest);
}
