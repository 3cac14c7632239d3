// Three test worlds: Worker and Durable Object tests inside workerd, pure and transcoder tests
// in Node, and end-to-end tests that run the real stack (wrangler dev, transcoder, ffmpeg).
import { cloudflareTest, readD1Migrations } from '@cloudflare/vitest-plugin';
import { defineConfig } from 'vitest/config';

const migrations = await readD1Migrations('./workers/migrations');

export default defineConfig({
  test: {
    projects: [
      {
        plugins: [
          cloudflareTest({
            wrangler: { configPath: './wrangler.toml' },
            miniflare: {
              bindings: {
                ADMIN_TOKEN: 'test-admin-token',
                INGEST_SECRET: 'test-ingest-secret',
                ROOM_TOKEN_SECRET: 'test-room-secret',
                TEST_MIGRATIONS: migrations,
              },
            },
          }),
        ],
        test: { name: 'workers', include: ['test/workers/**/*.test.ts'], setupFiles: ['test/workers/setup.ts'] },
      },
      {
        test: { name: 'node', include: ['test/node/**/*.test.ts'], environment: 'node', testTimeout: 60_000 },
      },
      {
        test: {
          name: 'e2e',
          include: ['test/e2e/**/*.test.ts'],
          environment: 'node',
          testTimeout: 180_000,
          hookTimeout: 120_000,
          // The machine has two cores: end-to-end files run one at a time, and only after the
          // workers and node projects are done, so timing-sensitive checks (a watch party's
          // alignment, a recording's frame count) do not compete with them for a core.
          fileParallelism: false,
          sequence: { groupOrder: 1 },
        },
      },
    ],
  },
});
