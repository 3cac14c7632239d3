// QoeStats: one per stream, the recent quality-of-experience figures that `GET
// /api/streams/:id/stats` answers. Every data point also goes to Analytics Engine (the long-term,
// queryable store); this object exists because Analytics Engine is only readable through its
// remote SQL API, and an operator's dashboard wants "now" without a round trip to it.
//
// It keeps per-minute aggregates (mergeable histograms, core/contracts/qoe.ts) for the last hour in
// SQLite and the players seen in the last 30 s in memory: a player beacons at least every 10 s,
// so after an eviction the viewer count is whole again within one beacon period.
import { DurableObject } from 'cloudflare:workers';
import type { Env } from '../workers/env.ts';
import {
  QOE_KEEP_MINUTES,
  QOE_VIEWER_TTL_MS,
  emptyAggregate,
  mergeAggregate,
  summarizeAggregate,
  type QoeAggregate,
  type QoeSummary,
} from '../core/contracts/qoe.ts';

export interface QoeStatsAnswer {
  viewers: number;
  windowMinutes: number;
  qoe: QoeSummary;
  lastBeaconAt: number | null;
}

const MINUTE = 60_000;

export class QoeStats extends DurableObject<Env> {
  private readonly sql: SqlStorage;
  /** session → last beacon (ms). */
  private readonly sessions = new Map<string, number>();
  /** minute (ms, floored) → aggregate; mirrors the table. */
  private readonly minutes = new Map<number, QoeAggregate>();
  private lastBeaconAt: number | null = null;

  constructor(ctx: DurableObjectState, env: Env) {
    super(ctx, env);
    this.sql = ctx.storage.sql;
    this.sql.exec('CREATE TABLE IF NOT EXISTS qoe_minutes (minute INTEGER PRIMARY KEY, agg TEXT NOT NULL)');
    for (const row of this.sql.exec<{ minute: number; agg: string }>('SELECT minute, agg FROM qoe_minutes')) {
      this.minutes.set(row.minute, JSON.parse(row.agg) as QoeAggregate);
    }
  }

  /** Adds one batch's aggregate (already computed at the edge) and marks its player as watching. */
  async record(session: string, agg: QoeAggregate, now = Date.now()): Promise<void> {
    this.sessions.set(session, now);
    this.lastBeaconAt = now;
    const minute = Math.floor(now / MINUTE) * MINUTE;
    const merged = mergeAggregate(this.minutes.get(minute) ?? emptyAggregate(), agg);
    this.minutes.set(minute, merged);
    this.sql.exec('INSERT OR REPLACE INTO qoe_minutes (minute, agg) VALUES (?, ?)', minute, JSON.stringify(merged));
    this.prune(now);
  }

  /** Players seen in the last 30 s and the aggregate of the last `windowMinutes` minutes (this one included). */
  async stats(windowMinutes: number, now = Date.now()): Promise<QoeStatsAnswer> {
    this.prune(now);
    let viewers = 0;
    for (const seen of this.sessions.values()) if (now - seen < QOE_VIEWER_TTL_MS) viewers++;
    const from = Math.floor(now / MINUTE) * MINUTE - (windowMinutes - 1) * MINUTE;
    const total = emptyAggregate();
    for (const [minute, agg] of this.minutes) if (minute >= from) mergeAggregate(total, agg);
    return { viewers, windowMinutes, qoe: summarizeAggregate(total), lastBeaconAt: this.lastBeaconAt };
  }

  private prune(now: number): void {
    for (const [s, seen] of this.sessions) if (now - seen >= QOE_VIEWER_TTL_MS) this.sessions.delete(s);
    const oldest = Math.floor(now / MINUTE) * MINUTE - QOE_KEEP_MINUTES * MINUTE;
    let dropped = false;
    for (const minute of this.minutes.keys()) {
      if (minute < oldest) {
        this.minutes.delete(minute);
        dropped = true;
      }
    }
    if (dropped) this.sql.exec('DELETE FROM qoe_minutes WHERE minute < ?', oldest);
  }
}
