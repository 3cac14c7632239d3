// What a stream's object tells the world outside it: webhook events and the stream's status in
// the D1 catalog (an informative copy: the live model in the object stays authoritative). Events
// go through an outbox in the object's SQLite: written before the call that caused them answers,
// offered to the queue at once and again with backoff (the object's alarm) until the queue takes
// them, so nothing the object acknowledged is lost when a queue send fails. A repeat after a
// crash between the send and the delete is harmless: the fan-out is idempotent on the event id.
import type { Env } from '../workers/env.ts';
import { newWebhookEvent, outboxRetryMs, type WebhookEventType } from '../core/contracts/webhooks.ts';
import type { StreamStore } from './stream-store.ts';

/** Events offered to the queue at once (its batch limit is 100 messages). */
const OUTBOX_BATCH = 100;
/**
 * A new event is offered at once; it is due again (the alarm's business) only this long after,
 * should that first send never finish (the object evicted meanwhile). So a send under way sets
 * no alarm of its own, and a refused one is due after its backoff (outboxRetryMs).
 */
const FIRST_SEND_MS = 10_000;

export class StreamNotices {
  private readonly env: Env;
  private readonly ctx: DurableObjectState;
  private readonly store: StreamStore;
  /** Called when an event must wait for a retry: the object sets its alarm (nextAttemptAt). */
  private readonly retryLater: () => Promise<void>;
  /** Flushes run one after the other, so no event is offered twice at once. */
  private tail: Promise<void> = Promise.resolve();

  constructor(env: Env, ctx: DurableObjectState, store: StreamStore, retryLater: () => Promise<void>) {
    this.env = env;
    this.ctx = ctx;
    this.store = store;
    this.retryLater = retryLater;
  }

  /** Stores the event in the outbox and offers it to the queue (without holding up the caller). */
  emit(type: WebhookEventType, data: Record<string, unknown>): void {
    // Without a queue binding no webhook is ever delivered: nothing to keep.
    if (!this.env.WEBHOOK_QUEUE) return;
    const dueAgainAt = Date.now() + FIRST_SEND_MS;
    this.store.outboxAdd(newWebhookEvent(type, data), dueAgainAt);
    this.ctx.waitUntil(this.flush(dueAgainAt));
  }

  /** A broadcast started, or a publisher came back (`reconnect`) after stream.idle or an end in progress. */
  live(streamId: string, epoch: number, reconnect: boolean, recordingId: string | null): void {
    this.emit('stream.live', { streamId, epoch, reconnect, recordingId });
  }

  /**
   * No publisher any more (`publisher_stopped`: it said so; `key_rotated`: its key was rotated and
   * its session cut off); the stream ends after `graceSeconds` unless one comes back.
   */
  idle(streamId: string, epoch: number, graceSeconds: number, reason: 'publisher_stopped' | 'key_rotated'): void {
    this.emit('stream.idle', { streamId, epoch, graceSeconds, reason });
  }

  ended(streamId: string, endedAt: number, recordingId: string | null): void {
    this.emit('stream.ended', { streamId, endedAt: new Date(endedAt).toISOString(), recordingId });
  }

  /** When the next refused event is due again (for the object's alarm), or null. */
  nextAttemptAt(): number | null {
    return this.env.WEBHOOK_QUEUE ? this.store.outboxNextAt() : null;
  }

  /** Offers every event due by `dueBy` to the queue; what it refuses stays, due again after a backoff. */
  flush(dueBy = Date.now()): Promise<void> {
    const run = this.tail.then(() => this.offerDue(dueBy));
    this.tail = run.catch(() => undefined);
    return run;
  }

  async catalogStatus(streamId: string, status: 'live' | 'ended'): Promise<void> {
    try {
      await this.env.DB.prepare('UPDATE streams SET status = ?, updated_at = ? WHERE id = ?').bind(status, Date.now(), streamId).run();
    } catch (err) {
      console.error(JSON.stringify({ level: 'error', msg: 'catalog status update failed', error: String(err) }));
    }
  }

  private async offerDue(dueBy: number): Promise<void> {
    const queue = this.env.WEBHOOK_QUEUE;
    if (!queue) return;
    for (;;) {
      const due = this.store.outboxDue(Math.max(dueBy, Date.now()), OUTBOX_BATCH);
      if (due.length === 0) return;
      try {
        await queue.sendBatch(due.map((d) => ({ body: { kind: 'event' as const, event: d.event } })));
      } catch (err) {
        const now = Date.now();
        for (const d of due) this.store.outboxRetry(d.id, d.attempts + 1, now + outboxRetryMs(d.attempts + 1));
        console.error(
          JSON.stringify({
            level: 'error',
            msg: 'webhook events not queued; kept for a retry',
            events: due.map((d) => d.event.type),
            attempts: due[0]!.attempts + 1,
            error: String(err),
          }),
        );
        await this.retryLater();
        return;
      }
      this.store.outboxSent(due.map((d) => d.id));
      if (due.length < OUTBOX_BATCH) return;
    }
  }
}
