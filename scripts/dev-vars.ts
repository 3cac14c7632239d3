// `.dev.vars`, the local secrets of `wrangler dev`: the names come from `.dev.vars.example`; a
// missing file or a missing or placeholder value gets a random one. Used by `npm start` and `npm run dev`.
import { randomBytes } from 'node:crypto';
import { existsSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import type { Logger } from '../transcoder-node/log.ts';

function parse(file: string): Record<string, string> {
  const vars: Record<string, string> = {};
  if (!existsSync(file)) return vars;
  for (const line of readFileSync(file, 'utf8').split('\n')) {
    const m = /^\s*([A-Z0-9_]+)\s*=\s*"?([^"]*)"?\s*$/.exec(line);
    if (m) vars[m[1]!] = m[2]!;
  }
  return vars;
}

export function ensureDevVars(root: string, log: Logger): Record<string, string> {
  const file = join(root, '.dev.vars');
  const vars = parse(file);
  const names = Object.keys(parse(join(root, '.dev.vars.example')));
  let changed = false;
  for (const name of names) {
    if (!vars[name] || vars[name] === 'change-me') {
      vars[name] = randomBytes(24).toString('base64url');
      changed = true;
    }
  }
  if (changed) {
    writeFileSync(
      file,
      Object.entries(vars)
        .map(([k, v]) => `${k}="${v}"`)
        .join('\n') + '\n',
      { mode: 0o600 },
    );
    log.info('wrote .dev.vars with local secrets', { file });
  }
  return vars;
}
