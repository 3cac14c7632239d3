// The outbox of a stream's webhook events (issue 11, item 13): an event is kept in the object's
// SQLite until the queue takes it. Here the real queue binding is made to refuse sends twice,
// then lets them through: the event is kept, retried from the object's alarm with backoff, and
// reaches the real consumer, which fans it out into a delivery, exactly once.
import { env } from 'cloudflare:workers';
import { runDurableObjectAlarm, runInDurableObject } from 'cloudflare:test';
import { describe, expect, it } from 'vitest';
import type { Env } from '../../workers/env.ts';
import { outboxRetryMs } from '../../core/contracts/webhooks.ts';
import { authorize, createStream } from './helpers.ts';
import { api, operator } from './playback-fixtures.ts';
import { flakyQueue, outbox, until } from './outbox-fixtures.ts';

const op = operator('192.0.2.64');
const e = env as unknown as Env;

describe('webhook outbox', () => {
  it('an event the queue refuses is kept, retried with backoff from the alarm, and delivered once the queue takes it', {
    timeout: 30_000,
  }, async () => {
    const hook = (await api<{ id: string }>(op, 'POST', '/webhooks', { url: 'https://hooks.example/outbox', events: ['stream.live'] }))
      .body;
    const s = await createStream();
    const stub = e.STREAM_STATE.getByName(s.id);
    const queue = await flakyQueue(stub, 2);

    // The lease is granted (the object acknowledged it) while the queue refuses its stream.live.
    expect((await authorize(s.streamKey)).status).toBe(200);
    const kept = await until('the first refusal', async () => (await outbox(stub)).find((r) => r.attempts === 1));
    expect(JSON.parse(kept.event)).toMatchObject({ type: 'stream.live', data: { streamId: s.id, epoch: 1, reconnect: false } });
    // The object's alarm is due no later than the retry.
    const alarm = await runInDurableObject(stub, (_, state) => state.storage.getAlarm());
    expect(alarm).not.toBeNull();
    expect(alarm!).toBeLessThanOrEqual(kept.next_at);

    // The retry at the alarm is refused again: the backoff doubles, the event is still kept.
    await new Promise((r) => setTimeout(r, Math.max(0, kept.next_at - Date.now()) + 50));
    expect(await runDurableObjectAlarm(stub)).toBe(true);
    const again = (await outbox(stub))[0]!;
    expect(again).toMatchObject({ id: kept.id, attempts: 2 });
    expect(outboxRetryMs(2)).toBe(2 * outboxRetryMs(1));
    expect(queue.refused).toBe(2);
    expect(queue.sent).toEqual([]);

    // The queue is back: the next alarm sends it, the outbox empties, the consumer fans it out.
    await new Promise((r) => setTimeout(r, Math.max(0, again.next_at - Date.now()) + 50));
    expect(await runDurableObjectAlarm(stub)).toBe(true);
    expect(await outbox(stub)).toEqual([]);
    expect(queue.sent).toEqual([{ kind: 'event', event: JSON.parse(kept.event) }]);
    const deliveries = await until('the fan-out by the real consumer', async () => {
      const rows = await e.DB.prepare("SELECT event_id FROM webhook_deliveries WHERE webhook_id = ? AND event_type = 'stream.live'")
        .bind(hook.id)
        .all<{ event_id: string }>();
      return rows.results.length > 0 ? rows.results : null;
    });
    expect(deliveries).toEqual([{ event_id: kept.id }]);
    await api(op, 'DELETE', `/webhooks/${hook.id}`);
  });

  it('an event the queue takes at once leaves nothing behind', { timeout: 20_000 }, async () => {
    const s = await createStream();
    const stub = e.STREAM_STATE.getByName(s.id);
    const queue = await flakyQueue(stub, 0);
    expect((await authorize(s.streamKey)).status).toBe(200);
    await until('the stream.live send', async () => queue.sent.length === 1);
    expect(queue.sent[0]).toMatchObject({ kind: 'event', event: { type: 'stream.live', data: { streamId: s.id } } });
    expect(await until('an empty outbox', async () => (await outbox(stub)).length === 0)).toBe(true);
  });
});
