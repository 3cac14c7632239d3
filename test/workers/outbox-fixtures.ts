// What the webhook outbox tests share (webhook-outbox.test.ts, webhook-outbox-crash.test.ts): the
// object's outbox rows read from its SQLite, a gate in front of its real queue binding, and a
// poll. The two files stay apart: abortAllDurableObjects resets every object of a file.
import { runInDurableObject } from 'cloudflare:test';
import { afterEach } from 'vitest';
import type { WebhookQueueMessage } from '../../core/contracts/webhooks.ts';
import type { Env } from '../../workers/env.ts';

export type OutboxRow = { id: string; event: string; attempts: number; next_at: number };

/** The object's queue binding as the test found it (the Worker and its objects share one env here). */
export const restores: Array<() => void> = [];
afterEach(() => {
  while (restores.length) restores.pop()!();
});

/**
 * Puts a gate in front of the object's real queue binding: the first `failures` sends throw (as a
 * queue that is down does), every later one goes to the real queue. Returns what went through.
 */
export async function flakyQueue(stub: DurableObjectStub, failures: number) {
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

export async function outbox(stub: DurableObjectStub): Promise<OutboxRow[]> {
  return runInDurableObject(stub, (_, state) =>
    state.storage.sql.exec<OutboxRow>('SELECT id, event, attempts, next_at FROM outbox').toArray(),
  );
}

export async function until<T>(what: string, fn: () => Promise<T | null | undefined | false>, timeoutMs = 10_000): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const v = await fn();
    if (v) return v;
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 100));
  }
}
