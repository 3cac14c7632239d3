// The webhook contract (core/contracts/webhooks.ts): signatures a receiver can check, and the
// retry schedule.
import { createHmac } from 'node:crypto';
import { describe, expect, it } from 'vitest';
import { MAX_DELIVERY_ATTEMPTS, newWebhookEvent, retryDelaySeconds, signWebhook, verifyWebhook } from '../../core/contracts/webhooks.ts';

describe('webhook signatures', () => {
  it('is HMAC-SHA256 over "<timestamp>.<body>", checkable with any HMAC library', async () => {
    const body = JSON.stringify(newWebhookEvent('stream.live', { streamId: 'st1' }, Date.UTC(2026, 0, 1)));
    const header = await signWebhook('whsec_x', 1_767_225_600, body);
    const expected = createHmac('sha256', 'whsec_x').update(`1767225600.${body}`).digest('hex');
    expect(header).toBe(`t=1767225600,v1=${expected}`);
    expect(await verifyWebhook('whsec_x', header, body, 1_767_225_600)).toBe(true);
  });

  it('refuses another secret, a changed body, a stale or future timestamp, and garbage', async () => {
    const header = await signWebhook('whsec_x', 1000, '{"a":1}');
    expect(await verifyWebhook('whsec_y', header, '{"a":1}', 1000)).toBe(false);
    expect(await verifyWebhook('whsec_x', header, '{"a":2}', 1000)).toBe(false);
    expect(await verifyWebhook('whsec_x', header, '{"a":1}', 1000 + 301)).toBe(false);
    expect(await verifyWebhook('whsec_x', header, '{"a":1}', 1000 - 301)).toBe(false);
    expect(await verifyWebhook('whsec_x', null, '{"a":1}', 1000)).toBe(false);
    expect(await verifyWebhook('whsec_x', 'v1=abc', '{"a":1}', 1000)).toBe(false);
  });

  it('events carry a unique id, their type, an ISO time and their data', () => {
    const a = newWebhookEvent('clip.ready', { clipId: 'cl1' }, 0);
    const b = newWebhookEvent('clip.ready', { clipId: 'cl1' }, 0);
    expect(a.id).toMatch(/^ev_[a-z0-9]{20}$/);
    expect(a.id).not.toBe(b.id);
    expect(a).toMatchObject({ type: 'clip.ready', createdAt: '1970-01-01T00:00:00.000Z', data: { clipId: 'cl1' } });
  });
});

describe('webhook retries', () => {
  it('back off exponentially from the base, capped at an hour', () => {
    expect([1, 2, 3, 4].map((a) => retryDelaySeconds(a, 30))).toEqual([30, 60, 120, 240]);
    expect(retryDelaySeconds(20, 30)).toBe(3600);
    expect(retryDelaySeconds(1, 1)).toBe(1);
    // Eight attempts with the default base span about an hour before a delivery is given up.
    let total = 0;
    for (let a = 1; a < MAX_DELIVERY_ATTEMPTS; a++) total += retryDelaySeconds(a, 30);
    expect(total).toBeGreaterThan(3600);
    expect(total).toBeLessThan(2 * 3600);
  });
});
