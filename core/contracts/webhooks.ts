// The webhook contract, defined once: event types and their envelope, the queue messages that
// carry them, the signature a receiver checks (HMAC-SHA256 over timestamp and body, Web Crypto
// only, so receivers in Node can import it too) and the retry schedule.
import { z } from 'zod';

export const WEBHOOK_EVENT_TYPES = [
  'stream.live',
  'stream.idle',
  'stream.ended',
  'recording.ready',
  'clip.ready',
  'clip.export.ready',
  'clip.export.failed',
] as const;
export type WebhookEventType = (typeof WEBHOOK_EVENT_TYPES)[number];
export const WebhookEventTypeSchema = z.enum(WEBHOOK_EVENT_TYPES);
/**
 * Sent to one endpoint when an operator asks for a test delivery (`POST /api/webhooks/:id/test`);
 * never subscribed to, never fanned out.
 */
export const WEBHOOK_TEST_EVENT = 'webhook.test';

/** What a receiver gets as the JSON body of a delivery. */
export interface WebhookEvent {
  /** Unique per event (a retried delivery repeats it: receivers deduplicate on it). */
  id: string;
  type: WebhookEventType | typeof WEBHOOK_TEST_EVENT;
  /** ISO 8601. */
  createdAt: string;
  data: Record<string, unknown>;
}

/** Messages on the webhook queue: an event to fan out, or one delivery attempt to make. */
export type WebhookQueueMessage = { kind: 'event'; event: WebhookEvent } | { kind: 'delivery'; deliveryId: string };

/** `t=<unix seconds>,v1=<hex HMAC-SHA256(secret, "<t>.<body>")>` */
export const WEBHOOK_SIGNATURE_HEADER = 'x-edgelive-signature';
export const WEBHOOK_EVENT_HEADER = 'x-edgelive-event';
export const WEBHOOK_DELIVERY_HEADER = 'x-edgelive-delivery';
/** A receiver should refuse signatures older than this (replay window). */
export const WEBHOOK_TOLERANCE_SECONDS = 300;
/** Attempts before a delivery is given up as failed. */
export const MAX_DELIVERY_ATTEMPTS = 8;
/** A receiver must answer within this long; a slower answer counts as a failure. */
export const DELIVERY_TIMEOUT_MS = 10_000;

const encoder = new TextEncoder();

export function newEventId(): string {
  return 'ev_' + randomId(20);
}

export function newWebhookEvent(type: WebhookEvent['type'], data: Record<string, unknown>, now = Date.now()): WebhookEvent {
  return { id: newEventId(), type, createdAt: new Date(now).toISOString(), data };
}

/** Lower-case letters and digits from the platform CSPRNG. */
export function randomId(length: number): string {
  const alphabet = 'abcdefghijklmnopqrstuvwxyz0123456789';
  const bytes = crypto.getRandomValues(new Uint8Array(length));
  let out = '';
  for (const b of bytes) out += alphabet[b % alphabet.length];
  return out;
}

async function hmacHex(secret: string, message: string): Promise<string> {
  const key = await crypto.subtle.importKey('raw', encoder.encode(secret), { name: 'HMAC', hash: 'SHA-256' }, false, ['sign']);
  const mac = new Uint8Array(await crypto.subtle.sign('HMAC', key, encoder.encode(message)));
  let hex = '';
  for (const b of mac) hex += b.toString(16).padStart(2, '0');
  return hex;
}

/** The signature header value for a body sent at `timestampSeconds`. */
export async function signWebhook(secret: string, timestampSeconds: number, body: string): Promise<string> {
  return `t=${timestampSeconds},v1=${await hmacHex(secret, `${timestampSeconds}.${body}`)}`;
}

/** A receiver's check: a well-formed header, a recent timestamp, and a matching HMAC. */
export async function verifyWebhook(
  secret: string,
  header: string | null,
  body: string,
  nowSeconds = Math.floor(Date.now() / 1000),
  toleranceSeconds = WEBHOOK_TOLERANCE_SECONDS,
): Promise<boolean> {
  const m = /^t=(\d{1,12}),v1=([0-9a-f]{64})$/.exec(header ?? '');
  if (!m) return false;
  const t = Number(m[1]);
  if (Math.abs(nowSeconds - t) > toleranceSeconds) return false;
  const expected = await hmacHex(secret, `${t}.${body}`);
  // Constant-time comparison of equal-length hex strings.
  let diff = 0;
  for (let i = 0; i < expected.length; i++) diff |= expected.charCodeAt(i) ^ m[2]!.charCodeAt(i);
  return diff === 0;
}

/**
 * Seconds before attempt `attempt + 1` after `attempt` failed: exponential from `baseSeconds`
 * (1, 2, 4, … × base), capped at an hour. With the default base of 30 s the eight attempts span
 * about an hour; a test stack sets the base to 1 s.
 */
export function retryDelaySeconds(attempt: number, baseSeconds: number): number {
  return Math.min(3600, Math.max(0, Math.round(baseSeconds * 2 ** Math.max(0, attempt - 1))));
}

/**
 * Milliseconds before an outbox event that the queue refused is offered again, after `attempt`
 * refusals: 1 s, 2 s, 4 s … capped at 5 minutes. An outbox never gives up: what an object has
 * acknowledged is never lost, only delayed (and the fan-out is idempotent on the event id).
 */
export function outboxRetryMs(attempt: number): number {
  return Math.min(300_000, 1000 * 2 ** Math.max(0, attempt - 1));
}
