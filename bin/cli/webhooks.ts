// `edgelive webhooks …`: endpoints that receive stream, recording and clip events (signed), a
// test delivery to check a receiver, and each endpoint's deliveries with every attempt.
import { WEBHOOK_EVENT_TYPES } from '../../core/contracts/webhooks.ts';
import { CliError, fields, list, pageQuery, table, type Command, type Ctx } from './context.ts';

interface Webhook {
  id: string;
  url: string;
  events: string[];
  description: string;
  createdAt: string;
  secret?: string;
}

interface Attempt {
  attempt: number;
  at: string;
  statusCode: number | null;
  error: string | null;
  durationMs: number;
}

interface Delivery {
  id: string;
  event: string;
  status: 'pending' | 'delivered' | 'failed';
  attempts: Attempt[];
  nextAttemptAt: string | null;
  createdAt: string;
}

function attemptText(a: Attempt | undefined): string {
  if (!a) return 'not tried yet';
  return `${a.error ?? `answered ${a.statusCode}`} in ${a.durationMs} ms`;
}

/** Polls a delivery until its first attempt is made. */
async function firstAttempt(c: Ctx, webhookId: string, deliveryId: string): Promise<Delivery> {
  const deadline = c.waitDeadline();
  for (;;) {
    const d = await c.call<Delivery>('GET', `/api/webhooks/${encodeURIComponent(webhookId)}/deliveries/${deliveryId}`);
    if (d.attempts.length > 0) return d;
    if (c.io.now() >= deadline) throw new CliError('timeout', `delivery ${deliveryId} was not attempted in time`);
    await c.io.sleep(500);
  }
}

export const webhookCommands: Command[] = [
  {
    name: 'webhooks create',
    group: 'Webhooks',
    synopsis: '<https-url> [--events LIST] [--description D]',
    summary: 'register an endpoint for events (all of them unless --events); prints its signing secret once',
    args: ['the endpoint URL'],
    flags: ['events', 'description'],
    async run(c) {
      const events = list(c.v.events);
      const w = await c.call<Webhook>('POST', '/api/webhooks', {
        url: c.args[0],
        ...(events ? { events } : {}),
        ...(c.v.description !== undefined ? { description: c.v.description } : {}),
      });
      c.print(
        w,
        () =>
          `webhook ${w.id}\n${fields([
            ['url', w.url],
            ['events', w.events.join(', ')],
            ['secret', `${w.secret}   (shown once: receivers check signatures with it)`],
          ])}`,
      );
    },
  },
  {
    name: 'webhooks list',
    group: 'Webhooks',
    synopsis: '[--limit N]',
    summary: 'registered endpoints, newest first',
    flags: ['limit'],
    async run(c) {
      const r = await c.call<{ webhooks: Webhook[] }>('GET', `/api/webhooks${pageQuery(c.v)}`);
      c.print(r, () =>
        table(
          ['ID', 'CREATED', 'EVENTS', 'URL'],
          r.webhooks.map((w) => [w.id, w.createdAt, w.events.length === WEBHOOK_EVENT_TYPES.length ? 'all' : w.events.join(','), w.url]),
        ),
      );
    },
  },
  {
    name: 'webhooks show',
    group: 'Webhooks',
    synopsis: '<webhook>',
    summary: 'one endpoint',
    args: ['a webhook id'],
    async run(c) {
      const w = await c.call<Webhook>('GET', `/api/webhooks/${c.arg(0)}`);
      c.print(
        w,
        () =>
          `webhook ${w.id}\n${fields([
            ['url', w.url],
            ['events', w.events.join(', ')],
            ['description', w.description],
            ['created', w.createdAt],
          ])}`,
      );
    },
  },
  {
    name: 'webhooks delete',
    group: 'Webhooks',
    synopsis: '<webhook>',
    summary: 'remove an endpoint and its delivery history',
    args: ['a webhook id'],
    async run(c) {
      await c.call('DELETE', `/api/webhooks/${c.arg(0)}`);
      c.print({ deleted: c.args[0] }, () => `deleted ${c.args[0]}\n`);
    },
  },
  {
    name: 'webhooks test',
    group: 'Webhooks',
    synopsis: '<webhook> [--wait]',
    summary: 'send a signed webhook.test event to this endpoint alone; --wait reports its first attempt (exit 1 if it failed)',
    args: ['a webhook id'],
    flags: ['wait', 'timeout'],
    async run(c) {
      const sent = await c.call<{ deliveryId: string; event: { id: string } }>('POST', `/api/webhooks/${c.arg(0)}/test`);
      if (!c.v.wait)
        return c.print(
          sent,
          () =>
            `test delivery ${sent.deliveryId} queued (event ${sent.event.id}); see it with: edgelive webhooks deliveries ${c.args[0]}\n`,
        );
      const d = await firstAttempt(c, c.args[0]!, sent.deliveryId);
      const first = d.attempts[0]!;
      if (first.error !== null) {
        throw new CliError(
          'delivery_failed',
          `test delivery ${d.id}: ${attemptText(first)}${d.nextAttemptAt ? `; retried at ${d.nextAttemptAt}` : ''}`,
        );
      }
      c.print(d, () => `test delivery ${d.id} delivered: ${attemptText(first)}\n`);
    },
  },
  {
    name: 'webhooks deliveries',
    group: 'Webhooks',
    synopsis: '<webhook> [--limit N]',
    summary: "an endpoint's deliveries, newest first, with their last attempt",
    args: ['a webhook id'],
    flags: ['limit'],
    async run(c) {
      const r = await c.call<{ deliveries: Delivery[] }>('GET', `/api/webhooks/${c.arg(0)}/deliveries${pageQuery(c.v)}`);
      c.print(r, () =>
        table(
          ['ID', 'EVENT', 'STATUS', 'ATTEMPTS', 'CREATED', 'LAST ATTEMPT'],
          r.deliveries.map((d) => [d.id, d.event, d.status, String(d.attempts.length), d.createdAt, attemptText(d.attempts.at(-1))]),
        ),
      );
    },
  },
];
