// The Room's durable state in the object's SQLite storage: chat history, polls and votes,
// sanctions (mutes and bans), which viewers the shards hold, and small settings. Everything a
// viewer was told survives eviction. All calls are synchronous and consume their cursors at once
// (a cursor has no snapshot isolation across an await).
import type { ChatMessage, PlaybackState, Poll, Role } from '../core/rooms/room-protocol.ts';
import type { ConnIdentity } from '../core/contracts/room-admission.ts';

/** Schema, created idempotently on every construction (cheap) and versioned in `meta`. */
const SCHEMA = `
CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS messages (
  id INTEGER PRIMARY KEY AUTOINCREMENT,
  uid TEXT NOT NULL, name TEXT NOT NULL, role TEXT NOT NULL,
  text TEXT NOT NULL, ts INTEGER NOT NULL, pdt INTEGER,
  deleted INTEGER NOT NULL DEFAULT 0
);
CREATE TABLE IF NOT EXISTS polls (
  id INTEGER PRIMARY KEY AUTOINCREMENT,
  question TEXT NOT NULL, options TEXT NOT NULL, opened_by TEXT NOT NULL,
  opened_at INTEGER NOT NULL, closes_at INTEGER, closed_at INTEGER
);
CREATE TABLE IF NOT EXISTS votes (
  poll_id INTEGER NOT NULL, uid TEXT NOT NULL, option INTEGER NOT NULL,
  PRIMARY KEY (poll_id, uid)
);
CREATE TABLE IF NOT EXISTS sanctions (
  uid TEXT NOT NULL, kind TEXT NOT NULL, until INTEGER, by TEXT NOT NULL,
  PRIMARY KEY (uid, kind)
);
CREATE TABLE IF NOT EXISTS shard_members (
  conn TEXT PRIMARY KEY, shard INTEGER NOT NULL,
  uid TEXT NOT NULL, name TEXT NOT NULL, role TEXT NOT NULL
);
`;
const SCHEMA_VERSION = '1';

/** Rows beyond this many are pruned, oldest first: history is for late joiners, not an archive. */
const MESSAGES_KEPT = 1000;

export interface RoomSettings {
  anonymous: boolean;
  /** Sockets the Room holds itself before it starts placing viewers on shards. */
  directCapacity?: number;
  /** Sockets per shard. */
  shardCapacity?: number;
  maxShards?: number;
}

export interface Sanction {
  uid: string;
  kind: 'mute' | 'ban';
  /** ms; null = until lifted. */
  until: number | null;
}

export interface ShardMember extends ConnIdentity {
  shard: number;
}

type Row = Record<string, SqlStorageValue>;

export class RoomStore {
  private readonly sql: SqlStorage;
  private inserts = 0;

  constructor(sql: SqlStorage) {
    this.sql = sql;
    sql.exec(SCHEMA);
    const v = this.getMeta<string>('schema');
    if (v !== SCHEMA_VERSION) this.setMeta('schema', SCHEMA_VERSION);
  }

  getMeta<T>(key: string): T | undefined {
    const row = this.sql.exec<{ value: string }>('SELECT value FROM meta WHERE key = ?', key).toArray()[0];
    return row ? (JSON.parse(row.value) as T) : undefined;
  }

  setMeta(key: string, value: unknown): void {
    this.sql.exec('INSERT INTO meta (key, value) VALUES (?, ?) ON CONFLICT(key) DO UPDATE SET value = excluded.value', key, JSON.stringify(value));
  }

  // --- chat -----------------------------------------------------------------------------------

  insertMessage(m: Omit<ChatMessage, 'id'>): ChatMessage {
    const row = this.sql
      .exec<{ id: number }>(
        'INSERT INTO messages (uid, name, role, text, ts, pdt) VALUES (?, ?, ?, ?, ?, ?) RETURNING id',
        m.uid,
        m.name,
        m.role,
        m.text,
        m.ts,
        m.pdt ?? null,
      )
      .one();
    if (++this.inserts % 100 === 0) {
      this.sql.exec('DELETE FROM messages WHERE id <= ?', row.id - MESSAGES_KEPT);
    }
    return { ...m, id: row.id };
  }

  /** The last `n` messages not deleted, oldest first. */
  recentMessages(n: number): ChatMessage[] {
    const rows = this.sql.exec('SELECT * FROM messages WHERE deleted = 0 ORDER BY id DESC LIMIT ?', n).toArray();
    return rows.reverse().map(toMessage);
  }

  /** Marks a message deleted; false if there is no such (live) message. */
  deleteMessage(id: number): boolean {
    return this.sql.exec('UPDATE messages SET deleted = 1 WHERE id = ? AND deleted = 0', id).rowsWritten > 0;
  }

  // --- polls ----------------------------------------------------------------------------------

  insertPoll(p: { question: string; options: string[]; openedBy: string; openedAt: number; closesAt: number | null }): Poll {
    const row = this.sql
      .exec<{ id: number }>(
        'INSERT INTO polls (question, options, opened_by, opened_at, closes_at) VALUES (?, ?, ?, ?, ?) RETURNING id',
        p.question,
        JSON.stringify(p.options),
        p.openedBy,
        p.openedAt,
        p.closesAt,
      )
      .one();
    return { id: row.id, ...p, counts: p.options.map(() => 0), open: true, closedAt: null };
  }

  getPoll(id: number): Poll | null {
    const row = this.sql.exec('SELECT * FROM polls WHERE id = ?', id).toArray()[0];
    return row ? this.toPoll(row) : null;
  }

  /** Open polls, and the most recent closed ones up to `keep` in total, oldest first. */
  recentPolls(keep: number): Poll[] {
    const rows = this.sql
      .exec('SELECT * FROM polls WHERE closed_at IS NULL OR id IN (SELECT id FROM polls ORDER BY id DESC LIMIT ?) ORDER BY id', keep)
      .toArray();
    return rows.map((r) => this.toPoll(r));
  }

  closePoll(id: number, at: number): boolean {
    return this.sql.exec('UPDATE polls SET closed_at = ? WHERE id = ? AND closed_at IS NULL', at, id).rowsWritten > 0;
  }

  /** Records a vote; returns the option the viewer had chosen before, if any. */
  vote(pollId: number, uid: string, option: number): number | null {
    const prev = this.sql.exec<{ option: number }>('SELECT option FROM votes WHERE poll_id = ? AND uid = ?', pollId, uid).toArray()[0];
    if (prev?.option === option) return option;
    this.sql.exec(
      'INSERT INTO votes (poll_id, uid, option) VALUES (?, ?, ?) ON CONFLICT(poll_id, uid) DO UPDATE SET option = excluded.option',
      pollId,
      uid,
      option,
    );
    return prev ? prev.option : null;
  }

  /** Earliest deadline of an open poll, for the alarm. */
  nextPollDeadline(): number | null {
    const row = this.sql.exec<{ t: number | null }>('SELECT MIN(closes_at) AS t FROM polls WHERE closed_at IS NULL AND closes_at IS NOT NULL').one();
    return row.t ?? null;
  }

  duePolls(now: number): number[] {
    return this.sql
      .exec<{ id: number }>('SELECT id FROM polls WHERE closed_at IS NULL AND closes_at IS NOT NULL AND closes_at <= ?', now)
      .toArray()
      .map((r) => r.id);
  }

  private toPoll(row: Row): Poll {
    const options = JSON.parse(String(row.options)) as string[];
    const counts = options.map(() => 0);
    for (const r of this.sql.exec<{ option: number; n: number }>('SELECT option, COUNT(*) AS n FROM votes WHERE poll_id = ? GROUP BY option', row.id)) {
      if (r.option >= 0 && r.option < counts.length) counts[r.option] = r.n;
    }
    return {
      id: Number(row.id),
      question: String(row.question),
      options,
      counts,
      open: row.closed_at === null,
      openedBy: String(row.opened_by),
      openedAt: Number(row.opened_at),
      closesAt: row.closes_at === null ? null : Number(row.closes_at),
      closedAt: row.closed_at === null ? null : Number(row.closed_at),
    };
  }

  // --- sanctions ------------------------------------------------------------------------------

  sanctions(): Sanction[] {
    return this.sql
      .exec<{ uid: string; kind: string; until: number | null }>('SELECT uid, kind, until FROM sanctions')
      .toArray()
      .map((r) => ({ uid: r.uid, kind: r.kind as Sanction['kind'], until: r.until }));
  }

  setSanction(s: Sanction, by: string): void {
    this.sql.exec(
      'INSERT INTO sanctions (uid, kind, until, by) VALUES (?, ?, ?, ?) ON CONFLICT(uid, kind) DO UPDATE SET until = excluded.until, by = excluded.by',
      s.uid,
      s.kind,
      s.until,
      by,
    );
  }

  removeSanction(uid: string, kind: Sanction['kind']): boolean {
    return this.sql.exec('DELETE FROM sanctions WHERE uid = ? AND kind = ?', uid, kind).rowsWritten > 0;
  }

  // --- viewers held by shards ------------------------------------------------------------------

  addShardMembers(rows: ShardMember[]): void {
    for (const r of rows) {
      this.sql.exec(
        'INSERT INTO shard_members (conn, shard, uid, name, role) VALUES (?, ?, ?, ?, ?) ON CONFLICT(conn) DO NOTHING',
        r.conn,
        r.shard,
        r.uid,
        r.name,
        r.role,
      );
    }
  }

  removeShardMembers(conns: string[]): void {
    for (const c of conns) this.sql.exec('DELETE FROM shard_members WHERE conn = ?', c);
  }

  replaceShardMembers(shard: number, rows: ConnIdentity[]): void {
    this.sql.exec('DELETE FROM shard_members WHERE shard = ?', shard);
    this.addShardMembers(rows.map((r) => ({ ...r, shard })));
  }

  shardMembers(): ShardMember[] {
    return this.sql
      .exec<{ conn: string; shard: number; uid: string; name: string; role: string }>('SELECT conn, shard, uid, name, role FROM shard_members')
      .toArray()
      .map((r) => ({ conn: r.conn, shard: r.shard, uid: r.uid, name: r.name, role: r.role as Role }));
  }

  // --- playback ---------------------------------------------------------------------------------

  playback(): PlaybackState | null {
    return this.getMeta<PlaybackState>('playback') ?? null;
  }

  setPlayback(p: PlaybackState): void {
    this.setMeta('playback', p);
  }
}

function toMessage(r: Row): ChatMessage {
  const m: ChatMessage = {
    id: Number(r.id),
    uid: String(r.uid),
    name: String(r.name),
    role: String(r.role) as Role,
    text: String(r.text),
    ts: Number(r.ts),
  };
  if (r.pdt !== null && r.pdt !== undefined) m.pdt = Number(r.pdt);
  return m;
}
