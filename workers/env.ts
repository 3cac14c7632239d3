// The Worker's bindings. Everything wrangler.toml declares (bindings, [vars], required secrets) is
// generated into worker-configuration.d.ts by `npm run types` (`wrangler types`; a test fails when
// it is stale); this adds the message types of the queues and the optional variables that
// wrangler.toml leaves unset (`--var` or `.dev.vars` set them where they are needed).
import type { ClipExportMessage } from '../core/contracts/clip-export.ts';
import type { WebhookQueueMessage } from '../core/contracts/webhooks.ts';

export interface Env extends Cloudflare.Env {
  /** Webhook events and delivery attempts (`[[queues.producers]]`; consumed by this Worker). */
  WEBHOOK_QUEUE: Queue<WebhookQueueMessage>;
  /** Clip MP4 export jobs (`[[queues.producers]]`; consumed by this Worker: workers/exports/clip-export.ts). */
  EXPORT_QUEUE: Queue<ClipExportMessage>;
  /** Public RTMP publish base URL handed out with new streams, e.g. rtmp://127.0.0.1:1935/live. */
  RTMP_INGEST_URL?: string;
  /** Public RTMPS publish base URL (rtmps://host:port/live) handed out with new streams when no registered node is healthy. */
  RTMPS_INGEST_URL?: string;
  /** Public SRT base URL (srt://host:port) handed out with new streams when no registered node is healthy. */
  SRT_INGEST_URL?: string;
  /** WHIP endpoint (`https://host/whip`) returned with new streams when no ingest node is registered (optional). */
  WHIP_INGEST_URL?: string;
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
  /** Seconds before the first webhook retry; later ones double (default 30). */
  WEBHOOK_RETRY_BASE_SECONDS?: string;
  /** STUN URLs handed to voice members, comma-separated (default stun:stun.cloudflare.com:3478). */
  STUN_URLS?: string;
  /** coturn (TURN REST API, `use-auth-secret`): TURN URLs, comma-separated, and the shared secret. */
  TURN_URLS?: string;
  TURN_SECRET?: string;
  /** Lifetime of TURN credentials in seconds (default 14400, at most 172800). */
  TURN_TTL_SECONDS?: string;
  /** Cloudflare's TURN service: the TURN key's id and API token (preferred over coturn when set). */
  CLOUDFLARE_TURN_KEY_ID?: string;
  CLOUDFLARE_TURN_KEY_API_TOKEN?: string;
  /** The media node's SFU for voice groups past the mesh, and the secret its tokens are signed with. */
  VOICE_SFU_URL?: string;
  VOICE_SFU_SECRET?: string;
  /** Members a voice mesh holds before the group moves to the SFU (default 8). */
  VOICE_MESH_MAX?: string;
  /**
   * Local development only (`wrangler dev --var DEV_GEO_OVERRIDE:1`): "1" lets requests to a loopback host claim the viewer's
   * country (see workers/middleware/playback-access.ts). Never set it in wrangler.toml.
   */
  DEV_GEO_OVERRIDE?: string;
}
