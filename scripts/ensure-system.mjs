// What `npm start` and `npm test` need from the machine, installed when missing: the npm packages
// (with the pinned Node 22), and Debian packages (ffmpeg; Chromium and a font for the browser
// tests). Plain JavaScript, so it runs on whatever Node the machine has before Node 22 is installed.
import { spawnSync } from 'node:child_process';
import { existsSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

export const root = join(dirname(fileURLToPath(import.meta.url)), '..');

export const log = (msg, fields = {}, level = 'info') =>
  process.stderr.write(JSON.stringify({ time: new Date().toISOString(), level, service: 'setup', msg, ...fields }) + '\n');

export function fail(msg) {
  log(msg, {}, 'error');
  process.exit(1);
}

function run(cmd, args, opts = {}) {
  return spawnSync(cmd, args, { stdio: 'inherit', cwd: root, ...opts }).status === 0;
}

const works = (cmd, args) => spawnSync(cmd, args, { stdio: 'ignore' }).status === 0;

/** Debian packages by what they provide, with how to tell they are there. */
const SYSTEM = {
  ffmpeg: { apt: 'ffmpeg', brew: 'ffmpeg', present: () => works('ffmpeg', ['-version']) },
  chromium: {
    apt: 'chromium',
    brew: '--cask chromium (then set CHROMIUM_PATH)',
    present: () => existsSync(process.env.CHROMIUM_PATH ?? '/usr/bin/chromium'),
  },
  // Text burnt into test patterns and the pages' screenshots.
  fonts: {
    apt: 'fonts-dejavu-core',
    brew: null,
    present: () => process.platform !== 'linux' || spawnSync('fc-list', [], { encoding: 'utf8' }).stdout?.toLowerCase().includes('dejavu'),
  },
};

/** Installs the npm packages (and through them Node 22) when they are missing or older than the lock file. */
export function ensureNpmPackages() {
  const bin = join(root, 'node_modules', '.bin');
  if (existsSync(join(bin, 'node')) && existsSync(join(bin, 'wrangler')) && existsSync(join(bin, 'vitest'))) return;
  log('installing npm packages (first run)');
  // `npm ci`: exactly what the lock file says (the lock lists every platform's optional workerd binary).
  if (!run('npm', ['ci', '--no-audit', '--no-fund'])) fail('npm ci failed');
}

/**
 * Installs the named system packages that are missing: with apt-get as root or through
 * passwordless sudo; otherwise stops and says exactly what to run.
 */
export function ensureSystemPackages(names, why) {
  const missing = names.filter((n) => !SYSTEM[n].present());
  if (missing.length === 0) return;
  const apt = missing.map((n) => SYSTEM[n].apt);
  const hasApt = works('apt-get', ['--version']);
  const asRoot = process.getuid?.() === 0;
  const sudo = !asRoot && hasApt && works('sudo', ['-n', 'true']);
  if (hasApt && (asRoot || sudo)) {
    log(`installing ${apt.join(', ')} with apt-get`, { why });
    const pre = sudo ? ['sudo', '-n'] : [];
    const env = { ...process.env, DEBIAN_FRONTEND: 'noninteractive' };
    const aptGet = (...args) => (pre.length ? run(pre[0], [...pre.slice(1), 'apt-get', ...args], { env }) : run('apt-get', args, { env }));
    if (!aptGet('update', '-qq') || !aptGet('install', '-y', '-qq', ...apt)) fail(`apt-get install ${apt.join(' ')} failed`);
    const still = missing.filter((n) => !SYSTEM[n].present());
    if (still.length) fail(`${still.join(', ')} still missing after apt-get install`);
    return;
  }
  const brew = missing.map((n) => SYSTEM[n].brew).filter(Boolean);
  const how = hasApt
    ? `sudo apt-get install -y ${apt.join(' ')}`
    : brew.length
      ? `brew install ${brew.join(' ')}`
      : `install ${apt.join(', ')}`;
  fail(
    `${missing.join(', ')} ${missing.length > 1 ? 'are' : 'is'} needed ${why} and not installed. Run: ${how} — then run the command again.`,
  );
}
