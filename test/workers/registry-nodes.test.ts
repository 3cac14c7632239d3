// The transcoder registry: signed registration and heartbeats, three missed heartbeats drop a
// node (alarm and lazy expiry), the nearest list ordered from request.cf, stream creation taking
// the nearest node's URLs, and the admin node list.
import { runDurableObjectAlarm, runInDurableObject } from 'cloudflare:test';
import { env } from 'cloudflare:workers';
import { describe, expect, it } from 'vitest';
import type { TranscoderRegistry } from '../../durable-objects/transcoder-registry.ts';
import { NODES_PREFIX, type RegisterNodeRequest } from '../../core/contracts/ingest-protocol.ts';
import { ADMIN, createStream, signed, worker } from './helpers.ts';

const ns = (env as unknown as { TRANSCODER_REGISTRY: DurableObjectNamespace<TranscoderRegistry> }).TRANSCODER_REGISTRY;
const registry = () => ns.getByName('global');

const FRANKFURT = { latitude: 50.11, longitude: 8.68 };
const ASHBURN = { latitude: 39.04, longitude: -77.49 };
const SYDNEY = { latitude: -33.87, longitude: 151.21 };
const LONDON_CF = { country: 'GB', latitude: '51.5074', longitude: '-0.1278' };
const NYC_CF = { country: 'US', latitude: '40.7128', longitude: '-74.0060' };

function json(value: unknown): Uint8Array<ArrayBuffer> {
  return new TextEncoder().encode(JSON.stringify(value)) as Uint8Array<ArrayBuffer>;
}

function register(node: Partial<RegisterNodeRequest> & { nodeId: string; latitude: number; longitude: number }) {
  const body: RegisterNodeRequest = {
    region: node.nodeId,
    rtmpUrl: `rtmp://${node.nodeId}.ingest.test:1935/live`,
    srtUrl: `srt://${node.nodeId}.ingest.test:9000`,
    whipUrl: `https://${node.nodeId}.ingest.test/whip`,
    capacity: 10,
    sessions: 0,
    heartbeatIntervalMs: 1000,
    ...node,
  };
  return signed('POST', `${NODES_PREFIX}/register`, json(body), { 'content-type': 'application/json' });
}

function heartbeat(nodeId: string, sessions: number) {
  return signed('POST', `${NODES_PREFIX}/heartbeat`, json({ nodeId, sessions }), { 'content-type': 'application/json' });
}

async function nearest(cf?: Record<string, string>) {
  // request.cf is optional: without it the list is ordered by load.
  const res = await worker(new Request('http://edge.test/api/ingest/nearest', cf ? { cf } : {}));
  expect(res.status).toBe(200);
  return (await res.json()) as {
    caller: unknown;
    nodes: Array<{
      nodeId: string;
      region: string;
      distanceKm: number | null;
      load: number;
      ingest: { rtmp: string; rtmps: string | null; srt: string | null; whip: string | null };
    }>;
  };
}

/** Moves every node's last heartbeat back in time, as if that long had passed without one. */
async function age(ms: number): Promise<void> {
  await runInDurableObject(registry(), async (_i, state) => {
    state.storage.sql.exec('UPDATE nodes SET last_seen = last_seen - ?', ms);
  });
}

async function clear(): Promise<void> {
  await runInDurableObject(registry(), async (_i, state) => {
    state.storage.sql.exec('DELETE FROM nodes');
    await state.storage.deleteAlarm();
  });
}

describe('registration and heartbeats', () => {
  it('refuses unsigned and forged registrations (401) and malformed ones (400)', async () => {
    await clear();
    const unsigned = await worker(`${NODES_PREFIX}/register`, { method: 'POST', body: JSON.stringify({ nodeId: 'x' }) });
    expect(unsigned.status).toBe(401);
    expect(((await unsigned.json()) as { error: { code: string } }).error.code).toBe('bad_signature');
    const forged = await signed('POST', `${NODES_PREFIX}/register`, json({ nodeId: 'x' }), {}, 'wrong-secret');
    expect(forged.status).toBe(401);
    await forged.body?.cancel();
    const bad = await register({ nodeId: 'fra', ...FRANKFURT, rtmpUrl: 'http://not-rtmp' });
    expect(bad.status).toBe(400);
    await bad.body?.cancel();
    expect(await registry().nodes()).toEqual([]);
  });

  it('registers a node with its location hint derived from its position, and answers the heartbeat deadline', async () => {
    await clear();
    const res = await register({ nodeId: 'fra', ...FRANKFURT, region: 'eu-central' });
    expect(res.status).toBe(200);
    const ack = (await res.json()) as { ok: boolean; heartbeatIntervalMs: number; expiresAt: number };
    expect(ack).toMatchObject({ ok: true, heartbeatIntervalMs: 1000 });
    const [node] = await registry().nodes();
    expect(node).toMatchObject({ nodeId: 'fra', region: 'eu-central', locationHint: 'weur', capacity: 10, sessions: 0, load: 0 });
    expect(ack.expiresAt).toBe(node!.lastSeenAt + 3000);
  });

  it('a heartbeat updates the load; an unknown node is told to register again (404 unknown_node)', async () => {
    await clear();
    await (await register({ nodeId: 'fra', ...FRANKFURT })).body?.cancel();
    const ok = await heartbeat('fra', 4);
    expect(ok.status).toBe(200);
    await ok.body?.cancel();
    expect((await registry().nodes())[0]).toMatchObject({ sessions: 4, load: 0.4 });
    const unknown = await heartbeat('ghost', 0);
    expect(unknown.status).toBe(404);
    expect(((await unknown.json()) as { error: { code: string } }).error.code).toBe('unknown_node');
  });

  it('a node that misses two heartbeats stays; at three it drops out (alarm), and its next heartbeat gets 404', async () => {
    await clear();
    await (await register({ nodeId: 'fra', ...FRANKFURT })).body?.cancel();
    await (await register({ nodeId: 'iad', ...ASHBURN, heartbeatIntervalMs: 5000 })).body?.cancel();
    await age(2500);
    expect(await runDurableObjectAlarm(registry())).toBe(true);
    expect((await registry().nodes()).map((n) => n.nodeId)).toEqual(['fra', 'iad']);
    await age(600); // 3.1 s without a heartbeat: three 1 s heartbeats missed
    expect(await runDurableObjectAlarm(registry())).toBe(true);
    expect((await registry().nodes()).map((n) => n.nodeId)).toEqual(['iad']);
    const late = await heartbeat('fra', 0);
    expect(late.status).toBe(404);
    await late.body?.cancel();
    // Registering again brings it back.
    await (await register({ nodeId: 'fra', ...FRANKFURT })).body?.cancel();
    expect((await registry().nodes()).map((n) => n.nodeId)).toEqual(['fra', 'iad']);
  });

  it('expires lazily on reads even before the alarm runs', async () => {
    await clear();
    await (await register({ nodeId: 'fra', ...FRANKFURT })).body?.cancel();
    await age(3000);
    expect(await registry().nodes()).toEqual([]);
  });

  it('a node that deregisters leaves at once', async () => {
    await clear();
    await (await register({ nodeId: 'fra', ...FRANKFURT })).body?.cancel();
    const res = await signed('POST', `${NODES_PREFIX}/deregister`, json({ nodeId: 'fra' }));
    expect(await res.json()).toEqual({ ok: true, removed: true });
    expect(await registry().nodes()).toEqual([]);
  });
});

describe('GET /api/ingest/nearest (public)', () => {
  it('orders the healthy nodes by great-circle distance from request.cf, without an admin token', async () => {
    await clear();
    await (await register({ nodeId: 'syd', ...SYDNEY })).body?.cancel();
    await (await register({ nodeId: 'iad', ...ASHBURN })).body?.cancel();
    await (await register({ nodeId: 'fra', ...FRANKFURT })).body?.cancel();
    const fromLondon = await nearest(LONDON_CF);
    expect(fromLondon.nodes.map((n) => n.nodeId)).toEqual(['fra', 'iad', 'syd']);
    expect(fromLondon.nodes[0]!.distanceKm).toBeGreaterThan(600);
    expect(fromLondon.nodes[0]!.distanceKm).toBeLessThan(700);
    expect(fromLondon.nodes[0]!.ingest).toEqual({
      rtmp: 'rtmp://fra.ingest.test:1935/live',
      rtmps: null,
      srt: 'srt://fra.ingest.test:9000',
      whip: 'https://fra.ingest.test/whip',
    });
    const fromNyc = await nearest(NYC_CF);
    expect(fromNyc.nodes.map((n) => n.nodeId)).toEqual(['iad', 'fra', 'syd']);
  });

  it('breaks near-ties by load and puts full nodes last; without cf, load alone decides', async () => {
    await clear();
    await (await register({ nodeId: 'fra-a', ...FRANKFURT, sessions: 6 })).body?.cancel();
    await (await register({ nodeId: 'fra-b', latitude: 50.2, longitude: 8.6, sessions: 2 })).body?.cancel();
    await (await register({ nodeId: 'iad', ...ASHBURN, sessions: 10 })).body?.cancel();
    await (await register({ nodeId: 'syd', ...SYDNEY, sessions: 1 })).body?.cancel();
    expect((await nearest(LONDON_CF)).nodes.map((n) => n.nodeId)).toEqual(['fra-b', 'fra-a', 'syd', 'iad']);
    const anywhere = await nearest();
    expect(anywhere.caller).toBeNull();
    expect(anywhere.nodes.map((n) => n.nodeId)).toEqual(['syd', 'fra-b', 'fra-a', 'iad']);
    expect(anywhere.nodes.every((n) => n.distanceKm === null)).toBe(true);
  });

  it('does not list a node that missed three heartbeats', async () => {
    await clear();
    await (await register({ nodeId: 'fra', ...FRANKFURT })).body?.cancel();
    await age(3100);
    await (await register({ nodeId: 'iad', ...ASHBURN })).body?.cancel(); // also invalidates this isolate's cache
    expect((await nearest(LONDON_CF)).nodes.map((n) => n.nodeId)).toEqual(['iad']);
  });
});

describe('stream creation and the admin node list', () => {
  it('POST /api/streams returns the nearest healthy node’s RTMP, RTMPS, SRT and WHIP URLs (the key in all but WHIP’s) and the next node’s as backup', async () => {
    await clear();
    await (await register({ nodeId: 'fra', ...FRANKFURT, region: 'eu-central' })).body?.cancel();
    await (await register({ nodeId: 'iad', ...ASHBURN, region: 'us-east', rtmpsUrl: 'rtmps://iad.ingest.test:443/live' })).body?.cancel();
    const res = await worker(
      new Request('http://edge.test/api/streams', {
        method: 'POST',
        headers: { ...ADMIN, 'content-type': 'application/json' },
        body: '{}',
        cf: NYC_CF,
      }),
    );
    expect(res.status).toBe(201);
    const s = (await res.json()) as { streamKey: string; ingest: Record<string, unknown> };
    expect(s.ingest).toMatchObject({
      rtmp: `rtmp://iad.ingest.test:1935/live/${s.streamKey}`,
      rtmps: `rtmps://iad.ingest.test:443/live/${s.streamKey}`,
      srt: `srt://iad.ingest.test:9000?streamid=${s.streamKey}`,
      whip: 'https://iad.ingest.test/whip',
      nodeId: 'iad',
      region: 'us-east',
    });
    // The backup is the next node in the same order, with its own URLs for the same key.
    expect(s.ingest.backup).toEqual({
      rtmp: `rtmp://fra.ingest.test:1935/live/${s.streamKey}`,
      rtmps: null,
      srt: `srt://fra.ingest.test:9000?streamid=${s.streamKey}`,
      whip: 'https://fra.ingest.test/whip',
      nodeId: 'fra',
      region: 'eu-central',
    });
    // A node without TLS: no RTMPS URL. The public list says the same.
    const listed = await nearest(NYC_CF);
    expect(listed.nodes.map((n) => [n.nodeId, n.ingest.rtmps])).toEqual([
      ['iad', 'rtmps://iad.ingest.test:443/live'],
      ['fra', null],
    ]);
  });

  it('backup ingest: another node when two are healthy (a full nearest node is the backup, not the primary), none with one node', async () => {
    const create = async () => {
      const res = await worker(
        new Request('http://edge.test/api/streams', {
          method: 'POST',
          headers: { ...ADMIN, 'content-type': 'application/json' },
          body: '{}',
          cf: NYC_CF,
        }),
      );
      expect(res.status).toBe(201);
      return ((await res.json()) as { ingest: { nodeId: string; backup: { nodeId: string } | null } }).ingest;
    };
    await clear();
    await (await register({ nodeId: 'iad', ...ASHBURN, sessions: 10, capacity: 10 })).body?.cancel();
    await (await register({ nodeId: 'fra', ...FRANKFURT })).body?.cancel();
    expect(await create()).toMatchObject({ nodeId: 'fra', backup: { nodeId: 'iad' } });
    // A key rotation answers the same way (no request.cf here: room, then load, decide).
    const s = await createStream();
    const rotated = await worker(`/api/streams/${s.id}/rotate-key`, { method: 'POST', headers: ADMIN });
    expect(((await rotated.json()) as { ingest: unknown }).ingest).toMatchObject({ nodeId: 'fra', backup: { nodeId: 'iad' } });
    await clear();
    await (await register({ nodeId: 'fra', ...FRANKFURT })).body?.cancel();
    expect(await create()).toMatchObject({ nodeId: 'fra', backup: null });
  });

  it('a node registering an RTMPS URL that is not rtmps:// is refused', async () => {
    const res = await register({ nodeId: 'bad', ...FRANKFURT, rtmpsUrl: 'rtmp://bad.ingest.test/live' });
    expect(res.status).toBe(400);
    await res.body?.cancel();
  });

  it('falls back to RTMP_INGEST_URL when no node is healthy', async () => {
    await clear();
    await (await register({ nodeId: 'fra', ...FRANKFURT })).body?.cancel();
    await age(3100);
    await clear();
    const s = await createStream();
    expect(s.ingest.rtmp).toMatch(new RegExp(`^rtmp://.+/${s.streamKey}$`));
    expect(s.ingest.rtmp).not.toContain('ingest.test');
    // No WHIP_INGEST_URL configured: no WHIP URL rather than a guess.
    expect((s.ingest as { whip?: string | null }).whip).toBeNull();
    expect((s.ingest as { backup?: unknown }).backup).toBeNull();
  });

  it('GET /api/ingest/nodes needs the admin token and lists every healthy node with its load and heartbeat state', async () => {
    await clear();
    await (await register({ nodeId: 'fra', ...FRANKFURT, sessions: 3, capacity: 4 })).body?.cancel();
    const anonymous = await worker('/api/ingest/nodes');
    expect(anonymous.status).toBe(401);
    await anonymous.body?.cancel();
    const res = await worker('/api/ingest/nodes', { headers: ADMIN });
    expect(res.status).toBe(200);
    const { nodes } = (await res.json()) as { nodes: Array<Record<string, unknown>> };
    expect(nodes).toHaveLength(1);
    expect(nodes[0]).toMatchObject({
      nodeId: 'fra',
      sessions: 3,
      capacity: 4,
      load: 0.75,
      locationHint: 'weur',
      missedHeartbeats: 0,
      heartbeatIntervalMs: 1000,
    });
    expect(typeof nodes[0]!.lastSeenAt).toBe('string');
  });
});

describe('the dev-only location claim', () => {
  it('is ignored unless DEV_GEO_OVERRIDE=1 (never in production config): request.cf decides', async () => {
    await clear();
    await (await register({ nodeId: 'fra', ...FRANKFURT })).body?.cancel();
    await (await register({ nodeId: 'iad', ...ASHBURN })).body?.cancel();
    const res = await worker(
      new Request('http://127.0.0.1/api/ingest/nearest', { headers: { 'x-edgelive-dev-location': '50.1,8.7' }, cf: NYC_CF }),
    );
    const body = (await res.json()) as { nodes: Array<{ nodeId: string }> };
    expect(body.nodes.map((n) => n.nodeId)).toEqual(['iad', 'fra']);
  });
});
