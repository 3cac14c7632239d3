#!/usr/bin/env node
// Builds what the Worker's static assets serve beside the HTML: the watch page's TypeScript (the
// player with hls.js; chat, reactions, polls and the party in a second chunk) bundled by esbuild
// into public/dist, and hls.js itself in public/vendor for pages that load it on their own. Both
// folders are build output (gitignored); `npm test`, the local stack and `npm run deploy` run this.
import { copyFileSync, mkdirSync, rmSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { build } from 'esbuild';

const root = join(dirname(fileURLToPath(import.meta.url)), '..');
mkdirSync(join(root, 'public', 'vendor'), { recursive: true });
copyFileSync(join(root, 'node_modules', 'hls.js', 'dist', 'hls.min.js'), join(root, 'public', 'vendor', 'hls.min.js'));

const outdir = join(root, 'public', 'dist');
rmSync(outdir, { recursive: true, force: true });
const common = {
  bundle: true,
  format: 'esm',
  target: ['chrome109', 'firefox115', 'safari16'],
  minify: true,
  sourcemap: 'linked',
  legalComments: 'linked',
  logLevel: 'warning',
};
// Bundles with no shared chunk: the player (the critical path to the first frame, one request)
// and what loads beside it once the video plays (chat, reactions, polls, QoE, the party), which
// watch.ts imports by URL. The few small helpers both use are simply in both.
await build({ ...common, entryPoints: { watch: join(root, 'public', 'src', 'watch.ts') }, outdir });
await build({ ...common, entryPoints: { together: join(root, 'public', 'src', 'watch', 'together.ts') }, outdir });
// Party voice (WebRTC mesh, its card) is a third bundle, imported by the party card only when a
// member clicks "Join voice": nobody who does not talk downloads it.
await build({ ...common, entryPoints: { voice: join(root, 'public', 'src', 'voice', 'voice.ts') }, outdir });
