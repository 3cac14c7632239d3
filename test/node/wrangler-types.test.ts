// The Worker's Env is generated from wrangler.toml (`npm run types`, worker-configuration.d.ts):
// this fails when someone changes a binding, a variable or a required secret without regenerating it.
import { spawnSync } from 'node:child_process';
import { join } from 'node:path';
import { expect, it } from 'vitest';
import { ROOT } from '../../scripts/local-stack.ts';

it('worker-configuration.d.ts is what `wrangler types` makes of wrangler.toml today', () => {
  const r = spawnSync(
    join(ROOT, 'node_modules', '.bin', 'wrangler'),
    ['types', '--include-runtime=false', '--strict-vars=false', '--check'],
    {
      cwd: ROOT,
      encoding: 'utf8',
      env: { ...process.env, WRANGLER_SEND_METRICS: 'false', CI: '1' },
    },
  );
  expect(r.status, `${r.stdout}\n${r.stderr}\n(run \`npm run types\` and commit worker-configuration.d.ts)`).toBe(0);
});
