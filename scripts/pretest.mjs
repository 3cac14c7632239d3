#!/usr/bin/env node
// `npm test`'s first step: installs what the suite needs on a fresh machine (npm packages with the
// pinned Node 22, ffmpeg, Chromium and a font for the browser tests), then builds the page assets.
// Plain JavaScript: it runs on whatever Node the machine has.
import { spawnSync } from 'node:child_process';
import { join } from 'node:path';
import { ensureNpmPackages, ensureSystemPackages, fail, root } from './ensure-system.mjs';

ensureNpmPackages();
ensureSystemPackages(
  ['ffmpeg', 'chromium', 'fonts'],
  'by the test suite (ffmpeg publishes and plays streams; Chromium runs the browser tests)',
);
const built = spawnSync(join(root, 'node_modules', '.bin', 'node'), [join(root, 'scripts', 'build-assets.mjs')], {
  stdio: 'inherit',
  cwd: root,
});
if (built.status !== 0) fail('building the page assets failed');
