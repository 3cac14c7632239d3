// The outbox of a stream's webhook events (issue 11, item 13): an event is kept in the object's
// SQLite until the queue takes it. Here the real queue binding is made to refuse sends twice,
// then lets them through: the event is kept, retried from the object's alarm with backoff, and
// reaches the real consumer, which fans it out into a delivery, exactly once.
import { env } from 'cloudflare:workers';
import { runDurableObjectAlarm, runInDurableObject } from 'cloudflare:test';
import { afterEach, describe, expect, it } from 'vitest';
import type { Env } from '../../workers/env.ts';
import type { WebhookQueueMessage } from '../../core/contracts/webhooks.ts';
import { outboxRetryMs } from '../../core/contracts/webhooks.ts';
import { authorize, createStream } from './helpers.ts';
import { api, operator } from './playback-fixtures.ts';

const op = operator('192.0.2.64');
const e = env as unknown as Env;

type OutboxRow = { id: string; event: string; attempts: number; next_at: number };

/** The object's queue binding as the test found it (the Worker and its objects share one env here). */
const restores: Array<() => void> = [];
afterEach(() => {
  while (restores.length) restores.pop()!();
});

/**
 * Puts a gate in front of the object's real queue binding: the first `failures` sends throw (as a
 * queue that is down does), every later one goes to the real queue. Returns what went through.
 */
async function flakyQueue(stub: DurableObjectStub, failures: number) {
  const state = { failures, refused: 0, offered: [] as WebhookQueueMessage[], sent: [] as WebhookQueueMessage[] };
  await runInDurableObject(stub, (instance) => {
    const objectEnv = (instance as unknown as { env: Env }).env;
    const real = objectEnv.WEBHOOK_QUEUE;
    restores.push(() => (objectEnv.WEBHOOK_QUEUE = real));
    const gate = () => {
      if (state.failures === 0) return;
      state.failures--;
      state.refused++;
      throw new Error('queue unavailable (test)');
    };
    objectEnv.WEBHOOK_QUEUE = {
      async send(body, options) {
        gate();
        const res = await real.send(body, options);
        state.sent.push(body);
        return res;
      },
      async sendBatch(messages, options) {
        const list = [...messages];
        state.offered.push(...list.map((m) => m.body));
        gate();
        const res = await real.sendBatch(list, options);
        state.sent.push(...list.map((m) => m.body));
        return res;
      },
      metrics: () => real.metrics(),
    } as Queue<WebhookQueueMessage>;
  });
  return state;
}

async function outbox(stub: DurableObjectStub): Promise<OutboxRow[]> {
  return runInDurableObject(stub, (_, state) =>
    state.storage.sql.exec<OutboxRow>('SELECT id, event, attempts, next_at FROM outbox').toArray(),
  );
}

async function until<T>(what: string, fn: () => Promise<T | null | undefined | false>, timeoutMs = 10_000): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const v = await fn();
    if (v) return v;
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 100));
  }
}

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
