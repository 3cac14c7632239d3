import { exports } from 'cloudflare:workers';
import { env } from 'cloudflare:workers';
import { describe, expect, it } from 'vitest';

describe('worker health', () => {
  it('answers /health with JSON', async () => {
    const res = await exports.default.fetch('http://edge.test/health');
    expect(res.status).toBe(200);
    expect(await res.json()).toEqual({ ok: true, service: 'edgelive-worker' });
  });
  it('reaches a StreamState over RPC', async () => {
    const stub = env.STREAM_STATE.getByName('health');
    expect(await stub.ping()).toBe('pong');
  });
});
