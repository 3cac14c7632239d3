// The Worker's bindings, as declared in wrangler.toml. One home for the Env type.
import type { StreamState } from '../durable-objects/stream-state.ts';
import type { Room } from '../durable-objects/room.ts';
import type { RoomShard } from '../durable-objects/room-shard.ts';

export interface Env {
  MEDIA: R2Bucket;
  DB: D1Database;
  STREAM_STATE: DurableObjectNamespace<StreamState>;
  ROOM: DurableObjectNamespace<Room>;
  ROOM_SHARD: DurableObjectNamespace<RoomShard>;
  /** Secret that signs room tokens (HMAC). */
  ROOM_TOKEN_SECRET: string;
  ASSETS: Fetcher;
  ADMIN_TOKEN: string;
  INGEST_SECRET: string;
  END_GRACE_SECONDS: string;
  /** Public RTMP publish base URL handed out with new streams, e.g. rtmp://127.0.0.1:1935/live. */
  RTMP_INGEST_URL?: string;
}
