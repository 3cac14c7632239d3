// StreamState's durable state in the object's SQLite storage: the schema and its migrations,
// the load that rebuilds the live model after an eviction, and every write (small values in
// `kv`, renditions, every segment and part in the DVR index, the webhook outbox). Calls are synchronous and
// consume their cursors at once (a cursor has no snapshot isolation across an await).
import type { StoredNonce } from '../core/auth/replay-guard.ts';
import type { RenditionInfo } from '../core/contracts/live-model.ts';
import type { WebhookEvent } from '../core/contracts/webhooks.ts';
import type { StreamConfig } from '../core/contracts/stream-rpc.ts';
import { phaseFromFlags, type StreamPhase } from '../core/live/stream-phase.ts';
import type { StoredSegment } from '../core/live/gap-plan.ts';
import {
  PARTS_IN_MEMORY_SEGMENTS,
  newLiveModel,
  renditionOf,
  type EpochSet,
  type Lease,
  type LiveModel,
  type ModelChange,
  type WindowMark,
} from '../core/live/stream-model.ts';
import { StreamArchive } from './stream-archive.ts';

/** What the object knows after a load. */
export interface LoadedStream {
  config: StreamConfig | null;
  phase: StreamPhase;
  lease: Lease | null;
  lastPushAt: number | null;
  model: LiveModel;
}

/** Version of this object's SQLite schema (kept in kv; `PRAGMA user_version` is not available). */
const SCHEMA_VERSION = 5;

const SCHEMA = `
  CREATE TABLE IF NOT EXISTS kv (key TEXT PRIMARY KEY, value TEXT NOT NULL);
  CREATE TABLE IF NOT EXISTS renditions (name TEXT PRIMARY KEY, epoch INTEGER NOT NULL, info TEXT NOT NULL);
  CREATE TABLE IF NOT EXISTS segments (
    rendition TEXT NOT NULL, msn INTEGER NOT NULL, epoch INTEGER NOT NULL, duration REAL,
    pdt INTEGER NOT NULL, disc INTEGER NOT NULL, part_count INTEGER NOT NULL,
    PRIMARY KEY (rendition, msn));
  CREATE TABLE IF NOT EXISTS parts (
    rendition TEXT NOT NULL, msn INTEGER NOT NULL, idx INTEGER NOT NULL,
    duration REAL NOT NULL, independent INTEGER NOT NULL,
    PRIMARY KEY (rendition, msn, idx));
  CREATE TABLE IF NOT EXISTS outbox (
    id TEXT PRIMARY KEY, event TEXT NOT NULL, attempts INTEGER NOT NULL, next_at INTEGER NOT NULL);
`;

export class StreamStore {
  readonly sql: SqlStorage;

  constructor(sql: SqlStorage) {
    this.sql = sql;
  }

  migrate(): void {
    this.sql.exec(SCHEMA);
    const version = Number(this.get('schema') ?? 1);
    if (version < 2) {
      // v2: part sizes (a clip ending mid-segment lists a byte range), the archive's tables.
      this.sql.exec('ALTER TABLE parts ADD COLUMN size INTEGER');
      StreamArchive.migrate(this.sql);
    }
    // v3: gap segments (EXT-X-GAP) of a rendition that has no media for an MSN the others have.
    if (version < 3) this.sql.exec('ALTER TABLE segments ADD COLUMN gap INTEGER NOT NULL DEFAULT 0');
    if (version < 4) {
      // v4: one lifecycle phase instead of the `ended`, `idle` and `deleted` flags.
      const flags = {
        leased: this.get('lease') !== null,
        ended: this.get('ended') === true,
        idle: this.get('idle') === true,
        deleted: this.get('deleted') === true,
      };
      this.put('phase', phaseFromFlags(flags));
      this.sql.exec("DELETE FROM kv WHERE key IN ('ended', 'idle', 'deleted')");
    }
    if (version < 5) {
      // v5: parts keyed by their primary key alone (WITHOUT ROWID): a part's insert writes one row,
      // not a row and its key's index (rows written are billed, and parts are most of the pushes).
      this.sql.exec(`
        CREATE TABLE parts_v5 (
          rendition TEXT NOT NULL, msn INTEGER NOT NULL, idx INTEGER NOT NULL,
          duration REAL NOT NULL, independent INTEGER NOT NULL, size INTEGER,
          PRIMARY KEY (rendition, msn, idx)) WITHOUT ROWID;
        INSERT INTO parts_v5 SELECT rendition, msn, idx, duration, independent, size FROM parts;
        DROP TABLE parts;
        ALTER TABLE parts_v5 RENAME TO parts;`);
    }
    if (version < SCHEMA_VERSION) this.put('schema', SCHEMA_VERSION);
  }

  /** Rebuilds the in-memory model from SQLite after eviction or a restart. */
  load(): LoadedStream {
    const model = newLiveModel();
    model.epochSet = (this.get('epochRenditions') as EpochSet | null) ?? null;
    model.epochStartMsn = Number(this.get('epochStartMsn') ?? 1);
    for (const row of this.sql.exec<{ name: string; epoch: number; info: string }>('SELECT name, epoch, info FROM renditions')) {
      const rs = renditionOf(model, row.name);
      rs.info = JSON.parse(row.info) as RenditionInfo;
      rs.initEpoch = row.epoch;
    }
    for (const rs of model.renditions.values()) {
      const mark = (this.get(`window:${rs.name}`) as WindowMark | null) ?? null;
      let dsn = mark?.discSeq ?? 0;
      const rows = this.sql
        .exec<{ msn: number; epoch: number; duration: number | null; pdt: number; disc: number; part_count: number; gap: number }>(
          'SELECT msn, epoch, duration, pdt, disc, part_count, gap FROM segments WHERE rendition = ? AND msn >= ? ORDER BY msn',
          rs.name,
          mark?.first ?? 0,
        )
        .toArray();
      for (const r of rows) {
        if (r.disc === 1) dsn++;
        rs.window.push({
          msn: r.msn,
          epoch: r.epoch,
          duration: r.duration,
          programDateTime: r.pdt,
          discontinuity: r.disc === 1,
          partCount: r.part_count,
          parts: null,
          dsn,
          gap: r.gap === 1,
        });
      }
      const newest = this.sql
        .exec<{ msn: number; epoch: number }>('SELECT msn, epoch FROM segments WHERE rendition = ? ORDER BY msn DESC LIMIT 1', rs.name)
        .toArray()[0];
      const last = rs.window.last;
      rs.newest = last
        ? { msn: last.msn, epoch: last.epoch, dsn: last.dsn }
        : newest
          ? { msn: newest.msn, epoch: newest.epoch, dsn }
          : null;
      const recent = rs.window.slice(Math.max(0, rs.window.length - PARTS_IN_MEMORY_SEGMENTS));
      if (recent.length > 0) {
        const parts = this.sql
          .exec<{ msn: number; idx: number; duration: number; independent: number }>(
            'SELECT msn, idx, duration, independent FROM parts WHERE rendition = ? AND msn >= ? ORDER BY msn, idx',
            rs.name,
            recent[0]!.msn,
          )
          .toArray();
        const byMsn = new Map(recent.map((s) => [s.msn, s]));
        for (const s of recent) s.parts = [];
        for (const p of parts) byMsn.get(p.msn)?.parts?.push({ duration: p.duration, independent: p.independent === 1 });
        // An open segment's count is its parts (segments.part_count is written when it closes).
        for (const s of recent) if (s.duration === null && !s.gap) s.partCount = s.parts!.length;
      }
    }
    return {
      config: (this.get('config') as StreamConfig | null) ?? null,
      phase: (this.get('phase') as StreamPhase | null) ?? 'idle',
      lease: (this.get('lease') as Lease | null) ?? null,
      lastPushAt: (this.get('lastPushAt') as number | null) ?? null,
      model,
    };
  }

  /** Applies the storage writes of a change of the live model, in order. */
  apply(changes: readonly ModelChange[]): void {
    for (const c of changes) {
      switch (c.kind) {
        case 'rendition':
          this.sql.exec(
            'INSERT OR REPLACE INTO renditions (name, epoch, info) VALUES (?, ?, ?)',
            c.rendition,
            c.epoch,
            JSON.stringify(c.info),
          );
          break;
        case 'epoch-set':
          this.put('epochRenditions', c.set);
          break;
        case 'segment': {
          const s = c.segment;
          this.sql.exec(
            'INSERT INTO segments (rendition, msn, epoch, duration, pdt, disc, part_count, gap) VALUES (?, ?, ?, ?, ?, ?, ?, ?)',
            c.rendition,
            s.msn,
            s.epoch,
            s.duration,
            s.programDateTime,
            s.discontinuity ? 1 : 0,
            s.partCount,
            s.gap ? 1 : 0,
          );
          break;
        }
        case 'part':
          this.sql.exec(
            'INSERT INTO parts (rendition, msn, idx, duration, independent, size) VALUES (?, ?, ?, ?, ?, ?)',
            c.rendition,
            c.msn,
            c.index,
            c.part.duration,
            c.part.independent ? 1 : 0,
            c.size,
          );
          // The open segment's part_count is not updated per part (one row written less per
          // part): its parts rows are its count (see load), and its close writes the final one.
          break;
        case 'close':
          this.sql.exec(
            'UPDATE segments SET duration = ?, part_count = ? WHERE rendition = ? AND msn = ?',
            c.duration,
            c.partCount,
            c.rendition,
            c.msn,
          );
          break;
        case 'window':
          this.put(`window:${c.rendition}`, c.mark);
          break;
      }
    }
  }

  putConfig(config: StreamConfig): void {
    this.put('config', config);
  }

  putPhase(phase: StreamPhase): void {
    this.put('phase', phase);
  }

  /** The newest epoch ever leased (0 before the first lease). */
  lastEpoch(): number {
    return Number(this.get('lastEpoch') ?? 0);
  }

  putLease(lease: Lease): void {
    this.put('lease', lease);
    this.put('lastEpoch', lease.epoch);
  }

  putLastPushAt(at: number): void {
    this.put('lastPushAt', at);
  }

  /** The timeline offset of the current epoch (seconds; see stream-model.ts, epochTimeOffset). */
  epochTimeOffset(): number {
    return Number(this.get('epochTimeOffset') ?? 0);
  }

  putEpochStart(startMsn: number, timeOffset: number): void {
    this.put('epochStartMsn', startMsn);
    this.put('epochTimeOffset', timeOffset);
  }

  /** The nonces of the authorize requests accepted within the replay window (core/auth/replay-guard.ts). */
  authorizeNonces(): StoredNonce[] {
    return (this.get('authorizeNonces') as StoredNonce[] | null) ?? [];
  }

  putAuthorizeNonces(nonces: StoredNonce[]): void {
    this.put('authorizeNonces', nonces);
  }

  // ---- the webhook outbox (stream-notices.ts) ------------------------------------------------

  outboxAdd(event: WebhookEvent, now: number): void {
    this.sql.exec('INSERT OR IGNORE INTO outbox (id, event, attempts, next_at) VALUES (?, ?, 0, ?)', event.id, JSON.stringify(event), now);
  }

  /** Events due to be offered to the queue, oldest first. */
  outboxDue(now: number, limit: number): Array<{ id: string; event: WebhookEvent; attempts: number }> {
    return this.sql
      .exec<{ id: string; event: string; attempts: number }>(
        'SELECT id, event, attempts FROM outbox WHERE next_at <= ? ORDER BY next_at, id LIMIT ?',
        now,
        limit,
      )
      .toArray()
      .map((r) => ({ id: r.id, event: JSON.parse(r.event) as WebhookEvent, attempts: r.attempts }));
  }

  outboxSent(ids: readonly string[]): void {
    for (const id of ids) this.sql.exec('DELETE FROM outbox WHERE id = ?', id);
  }

  outboxRetry(id: string, attempts: number, nextAt: number): void {
    this.sql.exec('UPDATE outbox SET attempts = ?, next_at = ? WHERE id = ?', attempts, nextAt, id);
  }

  /** When the oldest event still in the outbox is due, or null when it is empty. */
  outboxNextAt(): number | null {
    return this.sql.exec<{ t: number | null }>('SELECT MIN(next_at) AS t FROM outbox').one().t;
  }

  /** Seconds of complete media an epoch published in a rendition. */
  epochMediaSeconds(rendition: string, epoch: number): number {
    return (
      this.sql
        .exec<{ d: number | null }>('SELECT SUM(duration) AS d FROM segments WHERE rendition = ? AND epoch = ?', rendition, epoch)
        .one().d ?? 0
    );
  }

  /** A complete segment of another rendition with this MSN, non-gap ones first (gap-plan.ts). */
  storedSegment(msn: number, exceptRendition: string): StoredSegment | null {
    const row = this.sql
      .exec<{ duration: number; pdt: number; disc: number }>(
        'SELECT duration, pdt, disc FROM segments WHERE msn = ? AND rendition <> ? AND duration IS NOT NULL ORDER BY gap LIMIT 1',
        msn,
        exceptRendition,
      )
      .toArray()[0];
    return row ? { duration: row.duration, programDateTime: row.pdt, discontinuity: row.disc === 1 } : null;
  }

  /** How many parts a closed segment of `epoch` has (null: no such closed segment). */
  closedSegmentParts(rendition: string, epoch: number, msn: number): number | null {
    const row = this.sql
      .exec<{ n: number }>(
        'SELECT part_count AS n FROM segments WHERE rendition = ? AND msn = ? AND epoch = ? AND duration IS NOT NULL AND gap = 0',
        rendition,
        msn,
        epoch,
      )
      .toArray()[0];
    return row ? row.n : null;
  }

  /** The announced parts of a segment, in order. */
  partsOf(rendition: string, msn: number): Array<{ idx: number; duration: number }> {
    return this.sql
      .exec<{ idx: number; duration: number }>(
        'SELECT idx, duration FROM parts WHERE rendition = ? AND msn = ? ORDER BY idx',
        rendition,
        msn,
      )
      .toArray();
  }

  private get(key: string): unknown {
    const row = this.sql.exec<{ value: string }>('SELECT value FROM kv WHERE key = ?', key).toArray()[0];
    return row ? JSON.parse(row.value) : null;
  }

  private put(key: string, value: unknown): void {
    this.sql.exec('INSERT OR REPLACE INTO kv (key, value) VALUES (?, ?)', key, JSON.stringify(value));
  }
}
