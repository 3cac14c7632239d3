// TranscoderRegistry: the set of live ingest nodes (one object for the cluster, named "global").
// Transcoders register with their region, position, public URLs and capacity, then heartbeat
// with their load; a node that misses three heartbeats drops out (lazily on every read, and by
// the alarm so that the table does not keep dead nodes). Ordering for a caller is pure
// (core/live/geo-distance.ts); this object only keeps the set.
import { DurableObject } from 'cloudflare:workers';
import type { Env } from '../workers/env.ts';
import { nearestLocationHint } from '../core/live/geo-distance.ts';
import { MISSED_HEARTBEATS_TO_DROP, type NodeAck, type SignedRequest } from '../core/contracts/ingest-protocol.ts';
import { ReplayGuard, replayRefusal } from '../core/auth/replay-guard.ts';
import type { IngestNode, NodeRegistration } from '../core/contracts/registry-rpc.ts';
import type { RpcError } from '../core/contracts/rpc-error.ts';

type Row = {
  node_id: string;
  info: string;
  sessions: number;
  interval_ms: number;
  registered_at: number;
  last_seen: number;
};

export class TranscoderRegistry extends DurableObject<Env> {
  private readonly sql: SqlStorage;
  /** Nonces of the signed calls seen within the replay window (a replayed deregister would drop a live node). */
  private readonly replays = new ReplayGuard();

  constructor(ctx: DurableObjectState, env: Env) {
    super(ctx, env);
    this.sql = ctx.storage.sql;
    this.sql.exec(`CREATE TABLE IF NOT EXISTS nodes (
      node_id TEXT PRIMARY KEY, info TEXT NOT NULL, sessions INTEGER NOT NULL,
      interval_ms INTEGER NOT NULL, registered_at INTEGER NOT NULL, last_seen INTEGER NOT NULL)`);
  }

  /** A node (re)announces itself. Registering again replaces what was known about it. */
  async register(reg: NodeRegistration, signed: SignedRequest): Promise<NodeAck | RpcError> {
    const now = Date.now();
    const refused = replayRefusal(this.replays.admit(signed, now));
    if (refused) return refused;
    const info = {
      region: reg.region,
      latitude: reg.latitude,
      longitude: reg.longitude,
      rtmpUrl: reg.rtmpUrl,
      rtmpsUrl: reg.rtmpsUrl ?? null,
      srtUrl: reg.srtUrl ?? null,
      whipUrl: reg.whipUrl ?? null,
      whepUrl: reg.whepUrl ?? null,
      capacity: reg.capacity,
      locationHint: reg.locationHint ?? nearestLocationHint(reg),
    };
    this.sql.exec(
      `INSERT INTO nodes (node_id, info, sessions, interval_ms, registered_at, last_seen) VALUES (?, ?, ?, ?, ?, ?)
       ON CONFLICT(node_id) DO UPDATE SET info = excluded.info, sessions = excluded.sessions,
         interval_ms = excluded.interval_ms, last_seen = excluded.last_seen`,
      reg.nodeId,
      JSON.stringify(info),
      reg.sessions,
      reg.heartbeatIntervalMs,
      now,
      now,
    );
    await this.armAlarm();
    return ack(reg.heartbeatIntervalMs, now);
  }

  /** A heartbeat with the node's load. An unknown (or already dropped) node must register again. */
  async heartbeat(nodeId: string, sessions: number, signed: SignedRequest): Promise<NodeAck | RpcError> {
    const now = Date.now();
    const refused = replayRefusal(this.replays.admit(signed, now));
    if (refused) return refused;
    this.expire(now);
    const row = this.sql.exec<{ interval_ms: number }>('SELECT interval_ms FROM nodes WHERE node_id = ?', nodeId).toArray()[0];
    if (!row)
      return {
        status: 404,
        code: 'unknown_node',
        message: `node ${nodeId} is not registered (or missed ${MISSED_HEARTBEATS_TO_DROP} heartbeats): register again`,
      };
    this.sql.exec('UPDATE nodes SET sessions = ?, last_seen = ? WHERE node_id = ?', sessions, now, nodeId);
    await this.armAlarm();
    return ack(row.interval_ms, now);
  }

  /** A node shutting down leaves at once. */
  async deregister(nodeId: string, signed: SignedRequest): Promise<{ removed: boolean } | RpcError> {
    const refused = replayRefusal(this.replays.admit(signed, Date.now()));
    if (refused) return refused;
    const removed = this.sql.exec('DELETE FROM nodes WHERE node_id = ?', nodeId).rowsWritten > 0;
    return { removed };
  }

  /** The healthy nodes (those that have not missed three heartbeats). */
  async nodes(): Promise<IngestNode[]> {
    const now = Date.now();
    this.expire(now);
    return this.sql.exec<Row>('SELECT * FROM nodes ORDER BY node_id').toArray().map(toNode);
  }

  override async alarm(): Promise<void> {
    this.expire(Date.now());
    await this.armAlarm();
  }

  /** Drops every node whose last heartbeat is MISSED_HEARTBEATS_TO_DROP intervals old. */
  private expire(now: number): void {
    const gone = this.sql
      .exec<{ node_id: string }>(
        `DELETE FROM nodes WHERE last_seen + ${MISSED_HEARTBEATS_TO_DROP} * interval_ms <= ? RETURNING node_id`,
        now,
      )
      .toArray();
    if (gone.length > 0) {
      console.log(JSON.stringify({ level: 'warn', msg: 'ingest nodes dropped: heartbeats missed', nodes: gone.map((g) => g.node_id) }));
    }
  }

  /** One alarm at the earliest expiry (or none when the registry is empty). */
  private async armAlarm(): Promise<void> {
    const next = this.sql
      .exec<{ at: number | null }>(`SELECT MIN(last_seen + ${MISSED_HEARTBEATS_TO_DROP} * interval_ms) AS at FROM nodes`)
      .one().at;
    if (next === null) await this.ctx.storage.deleteAlarm();
    else await this.ctx.storage.setAlarm(next);
  }
}

function ack(heartbeatIntervalMs: number, now: number): NodeAck {
  return { ok: true, heartbeatIntervalMs, expiresAt: now + MISSED_HEARTBEATS_TO_DROP * heartbeatIntervalMs };
}

function toNode(r: Row): IngestNode {
  const info = JSON.parse(r.info) as Pick<
    IngestNode,
    'region' | 'latitude' | 'longitude' | 'rtmpUrl' | 'rtmpsUrl' | 'srtUrl' | 'capacity' | 'locationHint'
  > & { whipUrl?: string | null; whepUrl?: string | null };
  return {
    nodeId: r.node_id,
    ...info,
    // Registered before nodes reported RTMPS, WHIP or WHEP.
    rtmpsUrl: info.rtmpsUrl ?? null,
    whipUrl: info.whipUrl ?? null,
    whepUrl: info.whepUrl ?? null,
    sessions: r.sessions,
    load: r.sessions / info.capacity,
    heartbeatIntervalMs: r.interval_ms,
    registeredAt: r.registered_at,
    lastSeenAt: r.last_seen,
    expiresAt: r.last_seen + MISSED_HEARTBEATS_TO_DROP * r.interval_ms,
  };
}
