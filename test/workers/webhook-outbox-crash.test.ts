// The outbox of a stream's webhook events (issue 11, item 13) across a crash: an event whose
// first send was still under way when the object went away is sent by its alarm after the
// restart. In a file of its own: abortAllDurableObjects resets every object of the file.
import { env } from 'cloudflare:workers';
import { abortAllDurableObjects, runDurableObjectAlarm, runInDurableObject } from 'cloudflare:test';
import { describe, expect, it } from 'vitest';
import type { Env } from '../../workers/env.ts';
import type { WebhookQueueMessage } from '../../core/contracts/webhooks.ts';
import { authorize, createStream } from './helpers.ts';
import { api, operator } from './playback-fixtures.ts';
import { flakyQueue, outbox, restores, until } from './outbox-fixtures.ts';

const op = operator('192.0.2.65');
const e = env as unknown as Env;

describe('webhook outbox across a crash', () => {
  it('an event whose first send never finished (the object crashed meanwhile) is sent by the alarm after the restart', {
    timeout: 40_000,
  }, async () => {
    const hook = (await api<{ id: string }>(op, 'POST', '/webhooks', { url: 'https://hooks.example/evicted', events: ['stream.live'] }))
      .body;
    const s = await createStream();
    const stub = e.STREAM_STATE.getByName(s.id);
    // A queue that never answers: the send is still under way when the object goes away.
    let restoreQueue = () => {};
    await runInDurableObject(stub, (instance) => {
      const objectEnv = (instance as unknown as { env: Env }).env;
      const real = objectEnv.WEBHOOK_QUEUE;
      restoreQueue = () => (objectEnv.WEBHOOK_QUEUE = real);
      const never = () => new Promise<never>(() => {});
      objectEnv.WEBHOOK_QUEUE = { send: never, sendBatch: never, metrics: never } as unknown as Queue<WebhookQueueMessage>;
    });
    restores.push(restoreQueue);
    expect((await authorize(s.streamKey)).status).toBe(200);
    const [pending] = await outbox(stub);
    expect(pending).toMatchObject({ attempts: 0 });
    // The object goes away with the send under way (abortAllDurableObjects: a crash, not a clean eviction).
    await abortAllDurableObjects();
    restoreQueue();
    // The restarted object (a new stub: the old one is broken) has the real queue; its alarm
    // finds the event due and sends it.
    const restarted = e.STREAM_STATE.getByName(s.id);
    expect(await outbox(restarted)).toEqual([pending]);
    const queue = await flakyQueue(restarted, 0);
    await new Promise((r) => setTimeout(r, Math.max(0, pending!.next_at - Date.now()) + 50));
    // The alarm may have fired by itself already (it is due); running it again is harmless.
    await runDurableObjectAlarm(restarted);
    await until('the send after the restart', async () => queue.offered.length > 0);
    // (The env is shared with the Worker, whose consumer sends its deliveries through it too.)
    // It may be offered twice (the alarm fires by itself as well), and stream.ended follows once the
    // grace period is over: the fan-out makes one delivery of each event.
    const offered = queue.offered.filter((m) => m.kind === 'event' && m.event.id === pending!.id);
    expect(offered.length).toBeGreaterThan(0);
    for (const m of offered) expect(m).toEqual({ kind: 'event', event: JSON.parse(pending!.event) });
    await until('an empty outbox', async () => (await outbox(restarted)).length === 0);
    const deliveries = await until('the fan-out by the real consumer', async () => {
      const rows = await e.DB.prepare('SELECT event_id FROM webhook_deliveries WHERE webhook_id = ?')
        .bind(hook.id)
        .all<{ event_id: string }>();
      return rows.results.length > 0 ? rows.results : null;
    });
    expect(deliveries).toEqual([{ event_id: pending!.id }]);
    await api(op, 'DELETE', `/webhooks/${hook.id}`);
  });
});
