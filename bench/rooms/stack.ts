// Starts the edgelive Worker locally for the room e2e tests and the rooms benchmark: wrangler's
// dev environment (the engine behind `wrangler dev` and `unstable_startWorker`), workerd with
// every binding simulated, on a random port, with a throwaway persist directory.
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { unstable_DevEnv } from 'wrangler';

export interface RoomStack {
  /** The dev server's URL (through wrangler's dev proxy, as `wrangler dev` serves it). */
  origin: string;
  /**
   * workerd's own socket, without wrangler's dev proxy. The proxy (a second workerd process
   * that exists for hot reload) relays every WebSocket frame once more and holds four file
   * descriptors per socket; under this machine's 20,000-descriptor hard limit that caps a proxied
   * room near 4,900 sockets, so the benchmark connects here.
   */
  directOrigin: string;
  adminToken: string;
  roomSecret: string;
  close(): Promise<void>;
}

const CONFIG = fileURLToPath(new URL('../../wrangler.toml', import.meta.url));

export async function startRoomStack(opts: { vars?: Record<string, string>; persistIn?: string } = {}): Promise<RoomStack> {
  // No network: never fetch the real `request.cf` object (miniflare falls back to a placeholder).
  process.env.CLOUDFLARE_CF_FETCH_ENABLED ??= 'false';
  // Local "Workers Observability" streams a trace of every invocation — every WebSocket frame a
  // room receives — into a collector object that writes it to SQLite. Useful when debugging one
  // request; under thousands of sockets it costs more than the rooms themselves.
  process.env.X_LOCAL_OBSERVABILITY ??= 'false';
  const adminToken = 'rooms-admin-token';
  const roomSecret = 'rooms-secret';
  const persist = mkdtempSync(join(opts.persistIn ?? tmpdir(), 'edgelive-rooms-'));
  const devEnv = new unstable_DevEnv();
  let direct: string | null = null;
  devEnv.on('reloadComplete', (ev: { proxyData: { userWorkerUrl: { protocol: string; hostname: string; port: string } } }) => {
    const u = ev.proxyData.userWorkerUrl;
    direct = `${u.protocol}//${u.hostname}:${u.port}`;
  });
  const secret = (value: string) => ({ type: 'secret_text' as const, value });
  const vars = Object.fromEntries(Object.entries(opts.vars ?? {}).map(([k, v]) => [k, { type: 'plain_text' as const, value: v }]));
  const worker = await devEnv.startWorker({
    config: CONFIG,
    bindings: {
      ROOM_TOKEN_SECRET: secret(roomSecret),
      ADMIN_TOKEN: secret(adminToken),
      INGEST_SECRET: secret('rooms-ingest-secret'),
      ...vars,
    },
    dev: { server: { hostname: '127.0.0.1', port: 0 }, inspector: false, logLevel: 'warn', watch: false, persist: persist },
  } as Parameters<typeof devEnv.startWorker>[0]);
  await worker.ready;
  const url = await worker.url;
  for (let i = 0; direct === null && i < 100; i++) await new Promise((r) => setTimeout(r, 50));
  if (direct === null) throw new Error('the dev environment did not report the worker URL');
  return {
    origin: url.origin,
    directOrigin: direct,
    adminToken,
    roomSecret,
    close: async () => {
      await worker.dispose();
      rmSync(persist, { recursive: true, force: true });
    },
  };
}

/** PUT /rooms/{room}/settings as the operator. */
export async function configureRoom(stack: RoomStack, room: string, settings: Record<string, unknown>): Promise<void> {
  const res = await fetch(`${stack.origin}/rooms/${room}/settings`, {
    method: 'PUT',
    headers: { authorization: `Bearer ${stack.adminToken}`, 'content-type': 'application/json' },
    body: JSON.stringify(settings),
  });
  if (!res.ok) throw new Error(`settings: ${res.status} ${await res.text()}`);
}

/** POST /rooms/{room}/tokens as the operator. */
export async function mintToken(stack: RoomStack, room: string, name: string, role: 'viewer' | 'moderator' | 'host'): Promise<string> {
  const res = await fetch(`${stack.origin}/rooms/${room}/tokens`, {
    method: 'POST',
    headers: { authorization: `Bearer ${stack.adminToken}`, 'content-type': 'application/json' },
    body: JSON.stringify({ name, role }),
  });
  if (!res.ok) throw new Error(`token: ${res.status} ${await res.text()}`);
  return ((await res.json()) as { token: string }).token;
}
