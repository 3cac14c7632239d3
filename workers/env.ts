// The Worker's bindings, as declared in wrangler.toml. One home for the Env type.
import type { StreamState } from '../durable-objects/stream-state.ts';
import type { Room } from '../durable-objects/room.ts';
import type { RoomShard } from '../durable-objects/room-shard.ts';
import type { TranscoderRegistry } from '../durable-objects/transcoder-registry.ts';
import type { QoeStats } from '../durable-objects/qoe-stats.ts';
import type { ClipExportMessage } from '../core/contracts/clip-export.ts';
import type { WebhookQueueMessage } from '../core/contracts/webhooks.ts';

export interface Env {
  MEDIA: R2Bucket;
  DB: D1Database;
  STREAM_STATE: DurableObjectNamespace<StreamState>;
  ROOM: DurableObjectNamespace<Room>;
  ROOM_SHARD: DurableObjectNamespace<RoomShard>;
  /** Recent QoE aggregates and the live player count, one object per stream (docs/player.md). */
  QOE_STATS: DurableObjectNamespace<QoeStats>;
  /** Every QoE beacon event as a data point (`[[analytics_engine_datasets]]`). */
  QOE_ANALYTICS: AnalyticsEngineDataset;
  /** Secret that signs room tokens (HMAC). */
  ROOM_TOKEN_SECRET: string;
  ASSETS: Fetcher;
  ADMIN_TOKEN: string;
  INGEST_SECRET: string;
  END_GRACE_SECONDS: string;
  /**
   * Seconds without a push after which a live publisher counts as gone quiet, so that a second
   * one may take a `refuse-while-live` stream (default 5).
   */
  TAKEOVER_QUIET_SECONDS?: string;
  /**
   * Local development and tests only: "1" accepts webhook URLs over http and on private,
   * loopback and link-local addresses (a receiver on the developer's machine). Never deployed.
   */
  WEBHOOK_ALLOW_PRIVATE?: string;
  /** Public RTMP publish base URL handed out with new streams, e.g. rtmp://127.0.0.1:1935/live. */
  RTMP_INGEST_URL?: string;
  /** Public SRT base URL (srt://host:port) handed out with new streams when no registered node is healthy. */
  SRT_INGEST_URL?: string;
  /** The ingest node registry (one object, "global"): heartbeats, regions, load. */
  TRANSCODER_REGISTRY: DurableObjectNamespace<TranscoderRegistry>;
  /** Webhook events and delivery attempts (`[[queues.producers]]`; consumed by this Worker). */
  WEBHOOK_QUEUE: Queue<WebhookQueueMessage>;
  /** Clip MP4 export jobs (`[[queues.producers]]`; consumed by this Worker: workers/exports/clip-export.ts). */
  EXPORT_QUEUE: Queue<ClipExportMessage>;
  /** Seconds before the first webhook retry; later ones double (default 30). */
  WEBHOOK_RETRY_BASE_SECONDS?: string;
  /** Rate limit of the admin API, per client address (`[[ratelimits]]`). */
  ADMIN_RATE_LIMITER: RateLimit;
  /** Rate limit of playback-token minting, per stream (`[[ratelimits]]`). */
  TOKEN_RATE_LIMITER: RateLimit;
  /**
   * Local development only (`.dev.vars`): "1" lets requests to a loopback host claim the viewer's
   * country (see workers/middleware/playback-access.ts). Never set it in wrangler.toml.
   */
  DEV_GEO_OVERRIDE?: string;
}
