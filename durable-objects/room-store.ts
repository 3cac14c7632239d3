// The Room's durable state in the object's SQLite storage: chat history, polls and votes,
// sanctions (mutes and bans), which viewers the shards hold, and small settings. Everything a
// viewer was told survives eviction. All calls are synchronous and consume their cursors at once
// (a cursor has no snapshot isolation across an await).
import type { ChatMessage, PlaybackState, Poll, Role } from '../core/rooms/room-protocol.ts';
import type { VoiceMember } from '../core/rooms/voice-protocol.ts';
import type { BucketState } from '../core/rooms/room-token-bucket.ts';
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
  opened_at INTEGER NOT NULL, closes_at INTEGER, closed_at INTEGER, pdt INTEGER
);
CREATE TABLE IF NOT EXISTS votes (
  poll_id INTEGER NOT NULL, uid TEXT NOT NULL, option INTEGER NOT NULL,
  PRIMARY KEY (poll_id, uid)
);
CREATE TABLE IF NOT EXISTS sanctions (
  uid TEXT NOT NULL, kind TEXT NOT NULL, until INTEGER, by TEXT NOT NULL,
  by_role TEXT NOT NULL DEFAULT 'host',
  PRIMARY KEY (uid, kind)
);
CREATE TABLE IF NOT EXISTS ranks (uid TEXT PRIMARY KEY, role TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS anon_mints (addr TEXT PRIMARY KEY, tokens REAL NOT NULL, at INTEGER NOT NULL);
CREATE TABLE IF NOT EXISTS voice_seats (conn TEXT PRIMARY KEY, seat TEXT NOT NULL, joined_at INTEGER NOT NULL);
CREATE TABLE IF NOT EXISTS shard_members (
  conn TEXT PRIMARY KEY, shard INTEGER NOT NULL,
  uid TEXT NOT NULL, name TEXT NOT NULL, role TEXT NOT NULL
);
`;
/**
 * 2: sanctions record the rank of who set them (`by_role`; rows of version 1 count as a host's),
 * `ranks` keeps the staff rank of each token identity seen, `anon_mints` the per-address budget
 * of new anonymous identities, `voice_seats` who is in voice (tables created by SCHEMA).
 * 3: polls.pdt (the moment of the stream a poll belongs to).
 */
const SCHEMA_VERSION = '3';

/** Rows beyond this many are pruned, oldest first: history is for late joiners, not an archive. */
const MESSAGES_KEPT = 1000;

export interface RoomSettings {
  anonymous: boolean;
  /** Anonymous joins (reconnects included) one address may make per minute. */
  anonymousJoinsPerMinute?: number;
  /** New anonymous identities one address may take per hour. */
  anonymousIdsPerHour?: number;
  /** Members a peer-to-peer voice mesh holds before the group moves to the SFU (≤ VOICE_LIMITS.meshMax). */
  voiceMeshMax?: number;
  /** Sockets the Room holds itself before it starts placing viewers on shards. */
  directCapacity?: number;
  /** Sockets per shard. */
  shardCapacity?: number;
  maxShards?: number;
}

export interface Sanction {
  uid: string;
  /** `voice`: muted in voice by a moderator. */
  kind: 'mute' | 'ban' | 'voice';
  /** ms; null = until lifted. */
  until: number | null;
  /** The rank of who set it: it holds only members that rank outranks. */
  byRole: Role;
}

export interface ShardMember extends ConnIdentity {
  shard: number;
}

type Row = Record<string, SqlStorageValue>;

export class RoomStore {
  private readonly sql: SqlStorage;
  private inserts = 0;
  private mints = 0;

  constructor(sql: SqlStorage) {
    this.sql = sql;
    sql.exec(SCHEMA);
    const v = this.getMeta<string>('schema');
    if (v === '1') this.sql.exec("ALTER TABLE sanctions ADD COLUMN by_role TEXT NOT NULL DEFAULT 'host'");
    if (v !== SCHEMA_VERSION) {
      // A room made before version 3 has its polls table without the column (CREATE IF NOT EXISTS kept it).
      const cols = sql.exec<{ name: string }>('PRAGMA table_info(polls)').toArray();
      if (!cols.some((c) => c.name === 'pdt')) sql.exec('ALTER TABLE polls ADD COLUMN pdt INTEGER');
      this.setMeta('schema', SCHEMA_VERSION);
    }
  }

  getMeta<T>(key: string): T | undefined {
    const row = this.sql.exec<{ value: string }>('SELECT value FROM meta WHERE key = ?', key).toArray()[0];
    return row ? (JSON.parse(row.value) as T) : undefined;
  }

  setMeta(key: string, value: unknown): void {
    this.sql.exec(
      'INSERT INTO meta (key, value) VALUES (?, ?) ON CONFLICT(key) DO UPDATE SET value = excluded.value',
      key,
      JSON.stringify(value),
    );
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

  /** True for a message that exists and is not deleted. */
  messageLive(id: number): boolean {
    return this.sql.exec('SELECT 1 FROM messages WHERE id = ? AND deleted = 0', id).toArray().length > 0;
  }

  /** Marks a message deleted; false if there is no such (live) message. */
  deleteMessage(id: number): boolean {
    return this.sql.exec('UPDATE messages SET deleted = 1 WHERE id = ? AND deleted = 0', id).rowsWritten > 0;
  }

  // --- polls ----------------------------------------------------------------------------------

  insertPoll(p: { question: string; options: string[]; openedBy: string; openedAt: number; closesAt: number | null; pdt?: number }): Poll {
    const row = this.sql
      .exec<{ id: number }>(
        'INSERT INTO polls (question, options, opened_by, opened_at, closes_at, pdt) VALUES (?, ?, ?, ?, ?, ?) RETURNING id',
        p.question,
        JSON.stringify(p.options),
        p.openedBy,
        p.openedAt,
        p.closesAt,
        p.pdt ?? null,
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

  /** The option a viewer chose in a poll, or null. */
  voteOf(pollId: number, uid: string): number | null {
    return (
      this.sql.exec<{ option: number }>('SELECT option FROM votes WHERE poll_id = ? AND uid = ?', pollId, uid).toArray()[0]?.option ?? null
    );
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
    const row = this.sql
      .exec<{ t: number | null }>('SELECT MIN(closes_at) AS t FROM polls WHERE closed_at IS NULL AND closes_at IS NOT NULL')
      .one();
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
    for (const r of this.sql.exec<{ option: number; n: number }>(
      'SELECT option, COUNT(*) AS n FROM votes WHERE poll_id = ? GROUP BY option',
      row.id,
    )) {
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
      ...(row.pdt === null || row.pdt === undefined ? {} : { pdt: Number(row.pdt) }),
    };
  }

  // --- sanctions ------------------------------------------------------------------------------

  sanctions(): Sanction[] {
    return this.sql
      .exec<{ uid: string; kind: string; until: number | null; by_role: string }>('SELECT uid, kind, until, by_role FROM sanctions')
      .toArray()
      .map((r) => ({ uid: r.uid, kind: r.kind as Sanction['kind'], until: r.until, byRole: r.by_role as Role }));
  }

  setSanction(s: Sanction, by: string): void {
    this.sql.exec(
      'INSERT INTO sanctions (uid, kind, until, by, by_role) VALUES (?, ?, ?, ?, ?) ON CONFLICT(uid, kind) DO UPDATE SET until = excluded.until, by = excluded.by, by_role = excluded.by_role',
      s.uid,
      s.kind,
      s.until,
      by,
      s.byRole,
    );
  }

  // --- ranks of identities ------------------------------------------------------------------------

  /** Staff ranks by identity (viewers have no row). */
  ranks(): Array<{ uid: string; role: Role }> {
    return this.sql
      .exec<{ uid: string; role: string }>('SELECT uid, role FROM ranks')
      .toArray()
      .map((r) => ({ uid: r.uid, role: r.role as Role }));
  }

  /** Records the rank a token last gave an identity (a viewer token removes a staff rank). */
  setRank(uid: string, role: Role): void {
    if (role === 'viewer') this.sql.exec('DELETE FROM ranks WHERE uid = ?', uid);
    else this.sql.exec('INSERT INTO ranks (uid, role) VALUES (?, ?) ON CONFLICT(uid) DO UPDATE SET role = excluded.role', uid, role);
  }

  // --- new anonymous identities per address -------------------------------------------------------

  /** The address's bucket of new anonymous identities, if it has spent any recently. */
  anonMints(addr: string): BucketState | undefined {
    const row = this.sql.exec<{ tokens: number; at: number }>('SELECT tokens, at FROM anon_mints WHERE addr = ?', addr).toArray()[0];
    return row ? { tokens: row.tokens, at: row.at } : undefined;
  }

  /** Stores an address's bucket; rows older than `forgetBefore` (full again by then) are dropped now and then. */
  setAnonMints(addr: string, b: BucketState, forgetBefore: number): void {
    this.sql.exec(
      'INSERT INTO anon_mints (addr, tokens, at) VALUES (?, ?, ?) ON CONFLICT(addr) DO UPDATE SET tokens = excluded.tokens, at = excluded.at',
      addr,
      b.tokens,
      b.at,
    );
    if (++this.mints % 100 === 0) this.sql.exec('DELETE FROM anon_mints WHERE at < ?', forgetBefore);
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
      .exec<{ conn: string; shard: number; uid: string; name: string; role: string }>(
        'SELECT conn, shard, uid, name, role FROM shard_members',
      )
      .toArray()
      .map((r) => ({ conn: r.conn, shard: r.shard, uid: r.uid, name: r.name, role: r.role as Role }));
  }

  // --- voice seats (speaking is not kept: it is stale by the time anyone reads it back) ------------

  voiceSeats(): VoiceMember[] {
    return this.sql
      .exec<{ seat: string }>('SELECT seat FROM voice_seats ORDER BY joined_at, conn')
      .toArray()
      .map((r) => ({ ...(JSON.parse(r.seat) as VoiceMember), speaking: false }));
  }

  setVoiceSeat(m: VoiceMember): void {
    this.sql.exec(
      'INSERT INTO voice_seats (conn, seat, joined_at) VALUES (?, ?, ?) ON CONFLICT(conn) DO UPDATE SET seat = excluded.seat',
      m.conn,
      JSON.stringify({ ...m, speaking: false }),
      Date.now(),
    );
  }

  removeVoiceSeat(conn: string): void {
    this.sql.exec('DELETE FROM voice_seats WHERE conn = ?', conn);
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
