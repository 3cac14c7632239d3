// The Worker's bindings, as declared in wrangler.toml. One home for the Env type.
import type { StreamState } from '../durable-objects/stream-state.ts';
import type { Room } from '../durable-objects/room.ts';

export interface Env {
  MEDIA: R2Bucket;
  DB: D1Database;
  STREAM_STATE: DurableObjectNamespace<StreamState>;
  ROOM: DurableObjectNamespace<Room>;
  ASSETS: Fetcher;
  ADMIN_TOKEN: string;
  INGEST_SECRET: string;
  END_GRACE_SECONDS: string;
}
