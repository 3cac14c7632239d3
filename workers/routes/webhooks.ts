// The webhooks admin API: operators register endpoints for stream and recording events, and see
// every delivery with its attempts. Deliveries themselves run on the queue (webhooks/deliver.ts).
import { Hono } from 'hono';
import { z } from 'zod';
import { adminAuth } from '../auth.ts';
import type { Env } from '../env.ts';
import { HttpError, parseOr400, readJson } from '../http.ts';
import {
  WEBHOOK_EVENT_TYPES,
  WEBHOOK_TEST_EVENT,
  WebhookEventTypeSchema,
  randomId,
  newWebhookEvent,
  type WebhookEvent,
  type WebhookQueueMessage,
} from '../../core/contracts/webhooks.ts';
import { webhookUrlProblem } from '../../core/contracts/webhook-url.ts';
import type { DeliveryRow, WebhookRow } from '../webhooks/deliver.ts';

export const webhookRoutes = new Hono<{ Bindings: Env }>();
webhookRoutes.use('*', adminAuth());

const WEBHOOK_ID_RE = /^wh[a-z0-9]{16}$/;

const CreateWebhookSchema = z.strictObject({
  /** Checked by `webhookUrlProblem` (https, no address inside a network) after the shape. */
  url: z.string().max(2000),
  /** Event types to deliver; all of them when omitted. */
  events: z.array(WebhookEventTypeSchema).min(1).optional(),
  description: z.string().max(200).default(''),
});

const ListQuerySchema = z.object({
  limit: z.coerce.number().int().min(1).max(100).default(50),
  before: z.coerce.number().int().positive().optional(),
});

function webhookJson(w: WebhookRow) {
  return {
    id: w.id,
    url: w.url,
    events: JSON.parse(w.events) as string[],
    description: w.description,
    createdAt: new Date(w.created_at).toISOString(),
  };
}

function webhookId(id: string): string {
  if (!WEBHOOK_ID_RE.test(id)) throw new HttpError(404, 'webhook_not_found', `no webhook ${id}`);
  return id;
}

async function getWebhook(db: D1Database, id: string): Promise<WebhookRow> {
  const w = await db.prepare('SELECT * FROM webhooks WHERE id = ?').bind(webhookId(id)).first<WebhookRow>();
  if (!w) throw new HttpError(404, 'webhook_not_found', `no webhook ${id}`);
  return w;
}

webhookRoutes.post('/', async (c) => {
  const body = parseOr400(CreateWebhookSchema, await readJson(c.req.raw), 'webhook');
  const problem = webhookUrlProblem(body.url, { allowPrivate: c.env.WEBHOOK_ALLOW_PRIVATE === '1' });
  if (problem) throw new HttpError(400, 'invalid_webhook_url', `webhook url ${problem}`);
  const now = Date.now();
  const row: WebhookRow = {
    id: 'wh' + randomId(16),
    url: body.url,
    // The receiver checks deliveries with it (HMAC); shown once, here.
    secret: 'whsec_' + randomId(32),
    events: JSON.stringify(body.events ? [...new Set(body.events)] : WEBHOOK_EVENT_TYPES),
    description: body.description,
    created_at: now,
  };
  await c.env.DB.prepare('INSERT INTO webhooks (id, url, secret, events, description, created_at) VALUES (?, ?, ?, ?, ?, ?)')
    .bind(row.id, row.url, row.secret, row.events, row.description, row.created_at)
    .run();
  return c.json({ ...webhookJson(row), secret: row.secret }, 201);
});

webhookRoutes.get('/', async (c) => {
  const q = parseOr400(ListQuerySchema, c.req.query(), 'query');
  const rows = await c.env.DB.prepare('SELECT * FROM webhooks WHERE created_at < ? ORDER BY created_at DESC LIMIT ?')
    .bind(q.before ?? Number.MAX_SAFE_INTEGER, q.limit)
    .all<WebhookRow>();
  const last = rows.results.at(-1);
  return c.json({
    webhooks: rows.results.map(webhookJson),
    next: rows.results.length === q.limit && last ? { before: last.created_at } : null,
  });
});

webhookRoutes.get('/:id', async (c) => c.json(webhookJson(await getWebhook(c.env.DB, c.req.param('id')))));

webhookRoutes.delete('/:id', async (c) => {
  const w = await getWebhook(c.env.DB, c.req.param('id'));
  // Pending deliveries find no endpoint and are dropped; their history goes with it.
  await c.env.DB.batch([
    c.env.DB.prepare('DELETE FROM webhook_attempts WHERE delivery_id IN (SELECT id FROM webhook_deliveries WHERE webhook_id = ?)').bind(
      w.id,
    ),
    c.env.DB.prepare('DELETE FROM webhook_deliveries WHERE webhook_id = ?').bind(w.id),
    c.env.DB.prepare('DELETE FROM webhooks WHERE id = ?').bind(w.id),
  ]);
  return c.body(null, 204);
});

type AttemptJson = { attempt: number; at: string; statusCode: number | null; error: string | null; durationMs: number };

/** Deliveries as the API shows them, each with every attempt (status code or error, timing). */
async function deliveriesJson(db: D1Database, rows: DeliveryRow[]) {
  const attempts = new Map<string, AttemptJson[]>();
  if (rows.length > 0) {
    const ids = rows.map((r) => r.id);
    const placeholders = ids.map(() => '?').join(',');
    const all = await db
      .prepare(`SELECT * FROM webhook_attempts WHERE delivery_id IN (${placeholders}) ORDER BY delivery_id, attempt`)
      .bind(...ids)
      .all<{ delivery_id: string; attempt: number; at: number; status_code: number | null; error: string | null; duration_ms: number }>();
    for (const a of all.results) {
      const list = attempts.get(a.delivery_id) ?? [];
      list.push({
        attempt: a.attempt,
        at: new Date(a.at).toISOString(),
        statusCode: a.status_code,
        error: a.error,
        durationMs: a.duration_ms,
      });
      attempts.set(a.delivery_id, list);
    }
  }
  return rows.map((d) => ({
    id: d.id,
    eventId: d.event_id,
    event: d.event_type,
    status: d.status,
    attempts: attempts.get(d.id) ?? [],
    nextAttemptAt: d.status === 'pending' && d.next_attempt_at !== null ? new Date(d.next_attempt_at).toISOString() : null,
    createdAt: new Date(d.created_at).toISOString(),
    payload: JSON.parse(d.payload) as WebhookEvent,
  }));
}

/** An endpoint's deliveries, newest first, each with every attempt. */
webhookRoutes.get('/:id/deliveries', async (c) => {
  const w = await getWebhook(c.env.DB, c.req.param('id'));
  const q = parseOr400(ListQuerySchema, c.req.query(), 'query');
  const rows = await c.env.DB.prepare(
    'SELECT * FROM webhook_deliveries WHERE webhook_id = ? AND created_at < ? ORDER BY created_at DESC, id LIMIT ?',
  )
    .bind(w.id, q.before ?? Number.MAX_SAFE_INTEGER, q.limit)
    .all<DeliveryRow>();
  const last = rows.results.at(-1);
  return c.json({
    deliveries: await deliveriesJson(c.env.DB, rows.results),
    next: rows.results.length === q.limit && last ? { before: last.created_at } : null,
  });
});

webhookRoutes.get('/:id/deliveries/:deliveryId', async (c) => {
  const w = await getWebhook(c.env.DB, c.req.param('id'));
  const id = c.req.param('deliveryId');
  const row = /^dl_[a-z0-9]{20}$/.test(id)
    ? await c.env.DB.prepare('SELECT * FROM webhook_deliveries WHERE id = ? AND webhook_id = ?').bind(id, w.id).first<DeliveryRow>()
    : null;
  if (!row) throw new HttpError(404, 'delivery_not_found', `no delivery ${id} of webhook ${w.id}`);
  return c.json((await deliveriesJson(c.env.DB, [row]))[0]);
});

/**
 * Sends a `webhook.test` event to this endpoint alone, signed and retried like any delivery, so an
 * operator can check a receiver (its URL, its signature check) without waiting for a stream event.
 */
webhookRoutes.post('/:id/test', async (c) => {
  const w = await getWebhook(c.env.DB, c.req.param('id'));
  const event = newWebhookEvent(WEBHOOK_TEST_EVENT, { webhookId: w.id, message: 'a test delivery asked for through the admin API' });
  const now = Date.now();
  const deliveryId = 'dl_' + randomId(20);
  await c.env.DB.prepare(
    "INSERT INTO webhook_deliveries (id, webhook_id, event_id, event_type, payload, status, attempts, next_attempt_at, created_at, updated_at) VALUES (?, ?, ?, ?, ?, 'pending', 0, ?, ?, ?)",
  )
    .bind(deliveryId, w.id, event.id, event.type, JSON.stringify(event), now, now, now)
    .run();
  await c.env.WEBHOOK_QUEUE.send({ kind: 'delivery', deliveryId } satisfies WebhookQueueMessage);
  return c.json({ deliveryId, event }, 202);
});

/** Queues an event for every subscribed endpoint (also used by the Worker's own routes, e.g. clip.ready). */
export async function queueWebhookEvent(env: Env, type: WebhookEvent['type'], data: Record<string, unknown>): Promise<void> {
  try {
    await env.WEBHOOK_QUEUE.send({ kind: 'event', event: newWebhookEvent(type, data) });
  } catch (err) {
    console.error(JSON.stringify({ level: 'error', msg: 'webhook event not queued', type, error: String(err) }));
  }
}
