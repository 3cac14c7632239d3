// What a stream's object tells the world outside it: webhook events (queued for the Worker,
// which fans them out and delivers them) and the stream's status in the D1 catalog, an
// informative copy (the live model in the object stays authoritative).
import type { Env } from '../workers/env.ts';
import { newWebhookEvent, type WebhookEventType } from '../core/contracts/webhooks.ts';

export class StreamNotices {
  private readonly env: Env;
  private readonly ctx: DurableObjectState;

  constructor(env: Env, ctx: DurableObjectState) {
    this.env = env;
    this.ctx = ctx;
  }

  /** Sends a webhook event to the queue; delivery (signing, retries) happens in the Worker. */
  emit(type: WebhookEventType, data: Record<string, unknown>): void {
    const queue = this.env.WEBHOOK_QUEUE;
    if (!queue) return;
    const event = newWebhookEvent(type, data);
    this.ctx.waitUntil(
      queue.send({ kind: 'event', event }).catch((err: unknown) => {
        console.error(JSON.stringify({ level: 'error', msg: 'webhook event not queued', type, error: String(err) }));
      }),
    );
  }

  /** A broadcast started, or a publisher came back (`reconnect`) after stream.idle or an end in progress. */
  live(streamId: string, epoch: number, reconnect: boolean, recordingId: string | null): void {
    this.emit('stream.live', { streamId, epoch, reconnect, recordingId });
  }

  /** The publisher said it stopped; the stream ends after `graceSeconds` unless it comes back. */
  idle(streamId: string, epoch: number, graceSeconds: number): void {
    this.emit('stream.idle', { streamId, epoch, graceSeconds });
  }

  ended(streamId: string, endedAt: number, recordingId: string | null): void {
    this.emit('stream.ended', { streamId, endedAt: new Date(endedAt).toISOString(), recordingId });
  }

  async catalogStatus(streamId: string, status: 'live' | 'ended'): Promise<void> {
    try {
      await this.env.DB.prepare('UPDATE streams SET status = ?, updated_at = ? WHERE id = ?').bind(status, Date.now(), streamId).run();
    } catch (err) {
      console.error(JSON.stringify({ level: 'error', msg: 'catalog status update failed', error: String(err) }));
    }
  }
}
