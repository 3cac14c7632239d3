// The webhook queue's consumer: an event message fans out into one delivery per subscribed
// endpoint (a row in D1, then a delivery message), and a delivery message makes one signed POST,
// records the attempt, and either finishes or goes back on the queue with exponential backoff.
// Queues deliver at least once, so every step is idempotent: one delivery row per (endpoint,
// event), and a delivery that is no longer pending is acknowledged without a second POST.
import type { Env } from '../env.ts';
import {
  DELIVERY_TIMEOUT_MS,
  MAX_DELIVERY_ATTEMPTS,
  WEBHOOK_DELIVERY_HEADER,
  WEBHOOK_EVENT_HEADER,
  WEBHOOK_SIGNATURE_HEADER,
  randomId,
  retryDelaySeconds,
  signWebhook,
  type WebhookEvent,
  type WebhookQueueMessage,
} from '../../core/contracts/webhooks.ts';

/** Seconds before a message whose handling threw (D1 down, …) is tried again. */
const INTERNAL_RETRY_SECONDS = 5;

export interface WebhookRow {
  id: string;
  url: string;
  secret: string;
  events: string;
  description: string;
  created_at: number;
}

export interface DeliveryRow {
  id: string;
  webhook_id: string;
  event_id: string;
  event_type: string;
  payload: string;
  status: 'pending' | 'delivered' | 'failed';
  attempts: number;
  next_attempt_at: number | null;
  created_at: number;
  updated_at: number;
}

export async function handleWebhookBatch(batch: MessageBatch<WebhookQueueMessage>, env: Env): Promise<void> {
  for (const msg of batch.messages) {
    try {
      if (msg.body.kind === 'event') {
        await fanOut(env, msg.body.event);
        msg.ack();
      } else {
        const retryIn = await attemptDelivery(env, msg.body.deliveryId);
        if (retryIn === null) msg.ack();
        else msg.retry({ delaySeconds: retryIn });
      }
    } catch (err) {
      console.error(JSON.stringify({ level: 'error', msg: 'webhook message failed', kind: msg.body.kind, error: String(err) }));
      msg.retry({ delaySeconds: INTERNAL_RETRY_SECONDS });
    }
  }
}

/** One delivery per endpoint subscribed to the event's type. */
export async function fanOut(env: Env, event: WebhookEvent): Promise<number> {
  const hooks = await env.DB.prepare('SELECT id, events FROM webhooks').all<Pick<WebhookRow, 'id' | 'events'>>();
  const now = Date.now();
  const payload = JSON.stringify(event);
  const toSend: WebhookQueueMessage[] = [];
  for (const h of hooks.results) {
    if (!(JSON.parse(h.events) as string[]).includes(event.type)) continue;
    await env.DB.prepare(
      "INSERT OR IGNORE INTO webhook_deliveries (id, webhook_id, event_id, event_type, payload, status, attempts, next_attempt_at, created_at, updated_at) VALUES (?, ?, ?, ?, ?, 'pending', 0, ?, ?, ?)",
    )
      .bind('dl_' + randomId(20), h.id, event.id, event.type, payload, now, now, now)
      .run();
    // Redelivered event messages find the row already there: send only what has not been tried.
    const row = await env.DB.prepare('SELECT id, status, attempts FROM webhook_deliveries WHERE webhook_id = ? AND event_id = ?')
      .bind(h.id, event.id)
      .first<Pick<DeliveryRow, 'id' | 'status' | 'attempts'>>();
    if (row && row.status === 'pending' && row.attempts === 0) toSend.push({ kind: 'delivery', deliveryId: row.id });
  }
  for (let i = 0; i < toSend.length; i += 100) {
    await env.WEBHOOK_QUEUE.sendBatch(toSend.slice(i, i + 100).map((body) => ({ body })));
  }
  return toSend.length;
}

/**
 * One signed POST of a pending delivery. Returns the seconds until the next attempt, or null when
 * the delivery is finished (delivered, given up, or gone with its endpoint).
 */
export async function attemptDelivery(env: Env, deliveryId: string): Promise<number | null> {
  const d = await env.DB.prepare(
    'SELECT d.*, w.url AS url, w.secret AS secret FROM webhook_deliveries d JOIN webhooks w ON w.id = d.webhook_id WHERE d.id = ?',
  )
    .bind(deliveryId)
    .first<DeliveryRow & { url: string; secret: string }>();
  if (d?.status !== 'pending') return null;
  const attempt = d.attempts + 1;
  const started = Date.now();
  let statusCode: number | null = null;
  let error: string | null = null;
  try {
    const signature = await signWebhook(d.secret, Math.floor(started / 1000), d.payload);
    const res = await fetch(d.url, {
      method: 'POST',
      body: d.payload,
      headers: {
        'content-type': 'application/json',
        'user-agent': 'edgelive-webhooks/1',
        [WEBHOOK_SIGNATURE_HEADER]: signature,
        [WEBHOOK_EVENT_HEADER]: d.event_type,
        [WEBHOOK_DELIVERY_HEADER]: d.id,
      },
      redirect: 'manual',
      signal: AbortSignal.timeout(DELIVERY_TIMEOUT_MS),
    });
    statusCode = res.status;
    await res.body?.cancel();
    if (res.status < 200 || res.status >= 300) error = `receiver answered ${res.status}`;
  } catch (err) {
    error = err instanceof Error && err.name === 'TimeoutError' ? `no answer within ${DELIVERY_TIMEOUT_MS} ms` : String(err);
  }
  const durationMs = Date.now() - started;
  const delivered = error === null;
  const giveUp = !delivered && attempt >= MAX_DELIVERY_ATTEMPTS;
  const retryIn = delivered || giveUp ? null : retryDelaySeconds(attempt, Number(env.WEBHOOK_RETRY_BASE_SECONDS ?? '30'));
  const status = delivered ? 'delivered' : giveUp ? 'failed' : 'pending';
  const at = Date.now();
  await env.DB.batch([
    env.DB.prepare(
      'INSERT OR REPLACE INTO webhook_attempts (delivery_id, attempt, at, status_code, error, duration_ms) VALUES (?, ?, ?, ?, ?, ?)',
    ).bind(d.id, attempt, started, statusCode, error, durationMs),
    env.DB.prepare('UPDATE webhook_deliveries SET status = ?, attempts = ?, next_attempt_at = ?, updated_at = ? WHERE id = ?').bind(
      status,
      attempt,
      retryIn === null ? null : at + retryIn * 1000,
      at,
      d.id,
    ),
  ]);
  return retryIn;
}
