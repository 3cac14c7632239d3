#!/usr/bin/env node
// `npm start` bootstrap. Plain JavaScript that runs on whatever Node the machine has: it installs
// what is missing (npm packages, ffmpeg), then hands over to the dev stack on the pinned Node 22.
import { spawn } from 'node:child_process';
import { join } from 'node:path';
import { ensureNpmPackages, ensureSystemPackages, root } from './ensure-system.mjs';

ensureNpmPackages();
ensureSystemPackages(['ffmpeg'], 'to encode the ladder and publish the demo stream');
const node22 = join(root, 'node_modules', '.bin', 'node');

// The stack itself runs on the pinned Node 22 (wrangler needs it), as TypeScript.
const child = spawn(node22, ['--disable-warning=ExperimentalWarning', join(root, 'scripts', 'dev-stack.ts'), ...process.argv.slice(2)], {
  stdio: 'inherit',
  cwd: root,
});
for (const sig of ['SIGINT', 'SIGTERM']) process.on(sig, () => child.kill(sig));
child.on('exit', (code, signal) => process.exit(code ?? (signal ? 0 : 1)));
