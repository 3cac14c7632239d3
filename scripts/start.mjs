#!/usr/bin/env node
// `npm start` bootstrap. Plain JavaScript that runs on whatever Node the machine has: it installs
// what is missing (npm packages, ffmpeg), then hands over to the dev stack on the pinned Node 22.
import { spawn, spawnSync } from 'node:child_process';
import { existsSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

const root = join(dirname(fileURLToPath(import.meta.url)), '..');
const log = (msg, fields = {}) => process.stderr.write(JSON.stringify({ time: new Date().toISOString(), level: 'info', service: 'start', msg, ...fields }) + '\n');
const fail = (msg) => {
  process.stderr.write(JSON.stringify({ time: new Date().toISOString(), level: 'error', service: 'start', msg }) + '\n');
  process.exit(1);
};

function run(cmd, args, opts = {}) {
  const r = spawnSync(cmd, args, { stdio: 'inherit', cwd: root, ...opts });
  return r.status === 0;
}

const node22 = join(root, 'node_modules', '.bin', 'node');
if (!existsSync(node22) || !existsSync(join(root, 'node_modules', '.bin', 'wrangler'))) {
  log('installing npm packages (first run)');
  // `npm install` (not `npm ci`): the lock file pins versions, and npm ci refuses a lock file that lacks
  // other platforms' optional workerd binaries.
  if (!run('npm', ['install', '--no-audit', '--no-fund'])) fail('npm install failed');
}

if (spawnSync('ffmpeg', ['-version'], { stdio: 'ignore' }).status !== 0) {
  if (process.getuid?.() === 0) {
    log('installing ffmpeg with apt-get');
    if (!run('apt-get', ['update', '-qq']) || !run('apt-get', ['install', '-y', '-qq', 'ffmpeg'], { env: { ...process.env, DEBIAN_FRONTEND: 'noninteractive' } })) {
      fail('apt-get install ffmpeg failed');
    }
  } else {
    fail('ffmpeg is not installed. Install it (Debian/Ubuntu: sudo apt-get install -y ffmpeg; macOS: brew install ffmpeg) and run npm start again.');
  }
}

// The stack itself runs on the pinned Node 22 (wrangler needs it), as TypeScript.
const child = spawn(node22, ['--disable-warning=ExperimentalWarning', join(root, 'scripts', 'dev-stack.ts'), ...process.argv.slice(2)], {
  stdio: 'inherit',
  cwd: root,
});
for (const sig of ['SIGINT', 'SIGTERM']) process.on(sig, () => child.kill(sig));
child.on('exit', (code, signal) => process.exit(code ?? (signal ? 0 : 1)));
