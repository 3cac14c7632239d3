// Applies the D1 catalog migrations before the Worker tests (storage is isolated per test file).
import { applyD1Migrations } from 'cloudflare:test';
import { env } from 'cloudflare:workers';

const e = env as unknown as { DB: D1Database; TEST_MIGRATIONS: Parameters<typeof applyD1Migrations>[1] };
await applyD1Migrations(e.DB, e.TEST_MIGRATIONS);
