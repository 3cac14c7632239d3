import { exports } from 'cloudflare:workers';
import { describe, expect, it } from 'vitest';

describe('worker health', () => {
  it('answers /health with JSON', async () => {
    const res = await exports.default.fetch('http://edge.test/health');
    expect(res.status).toBe(200);
    expect(await res.json()).toEqual({ ok: true, service: 'edgelive-worker' });
  });
  it('answers unknown routes with a JSON 404', async () => {
    const res = await exports.default.fetch('http://edge.test/nope/nothing');
    expect(res.status).toBe(404);
    expect(await res.json()).toEqual({ error: { code: 'not_found', message: expect.stringContaining('/nope/nothing') } });
  });
});
