// One formatter, one linter, run by the tests (STYLE.md): `biome ci` fails on any file Biome would
// format differently (140 columns, single quotes, trailing commas) or any lint finding that
// biome.json keeps on. Fix with `npm run format` and `npm run lint`.
import { spawnSync } from 'node:child_process';
import { describe, expect, it } from 'vitest';

describe('code style', () => {
  it('every source file is formatted and passes the linter (biome ci)', () => {
    const run = spawnSync('node_modules/.bin/biome', ['ci', '--colors=off', '.'], { encoding: 'utf8' });
    const findings = `${run.stdout}\n${run.stderr}`.split('\n').filter((l) => /^\S+\.(ts|mjs|js):\d+/.test(l));
    expect({ status: run.status, findings }).toEqual({ status: 0, findings: [] });
  });
});
