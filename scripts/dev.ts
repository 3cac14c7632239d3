// `npm run dev`: the Worker alone under `wrangler dev` (no media node, no demo stream), for work on
// routes, playlists and pages. Writes .dev.vars when missing, applies the D1 migrations to the local
// database and builds the page assets first; arguments after `--` go to wrangler dev.
import { spawn, spawnSync } from 'node:child_process';
import { join } from 'node:path';
import { createLogger } from '../transcoder-node/log.ts';
import { ensureDevVars } from './dev-vars.ts';
import { ROOT } from './local-stack.ts';

const log = createLogger({ service: 'dev' });
const bin = (name: string) => join(ROOT, 'node_modules', '.bin', name);
const step = (what: string, cmd: string, args: string[]) => {
  log.info(what);
  if (spawnSync(cmd, args, { stdio: 'inherit', cwd: ROOT }).status !== 0) {
    log.error(`${what} failed`);
    process.exit(1);
  }
};

ensureDevVars(ROOT, log);
step('applying D1 migrations to the local database', bin('wrangler'), ['d1', 'migrations', 'apply', 'edgelive-catalog', '--local']);
step('building page assets', bin('node'), [join(ROOT, 'scripts', 'build-assets.mjs')]);
const wrangler = spawn(bin('wrangler'), ['dev', ...process.argv.slice(2)], { stdio: 'inherit', cwd: ROOT });
for (const sig of ['SIGINT', 'SIGTERM'] as const) process.on(sig, () => wrangler.kill(sig));
wrangler.on('exit', (code, signal) => process.exit(code ?? (signal ? 0 : 1)));
