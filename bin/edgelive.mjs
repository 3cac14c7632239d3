#!/usr/bin/env node
// Launcher of the `edgelive` CLI (package.json "bin"). The CLI is TypeScript run as is: a Node
// that strips types imports it directly; an older one hands over to the project's pinned Node 22
// (node_modules/.bin/node), the way `npm start` does.
import { spawnSync } from 'node:child_process';
import { existsSync, realpathSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

const here = dirname(realpathSync(fileURLToPath(import.meta.url)));

if (process.features.typescript) {
  const { main } = await import('./edgelive.ts');
  process.exitCode = await main();
} else {
  const pinned = join(here, '..', 'node_modules', '.bin', 'node');
  const node = existsSync(pinned) ? pinned : process.execPath;
  const r = spawnSync(
    node,
    ['--experimental-strip-types', '--disable-warning=ExperimentalWarning', join(here, 'edgelive.mjs'), ...process.argv.slice(2)],
    { stdio: 'inherit' },
  );
  if (r.error) {
    process.stderr.write(`edgelive needs Node 22.12 or later (run npm install for the pinned one): ${r.error.message}\n`);
    process.exitCode = 1;
  } else {
    process.exitCode = r.status ?? 1;
  }
}
