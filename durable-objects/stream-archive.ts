// What a stream keeps after its live edge has moved on, inside its StreamState: recordings (one
// per broadcast, a VOD playlist over the live objects), clips (a VOD playlist over a few minutes
// of them), thumbnails, and the retention sweep that deletes what no playlist references any
// more. Shares the DO's SQLite (segments, parts) and runs inside its single thread.
import type { RenditionInfo, VodSegment } from '../core/contracts/live-model.ts';
import { cutClip, type ClipCut, type ClipSegment } from '../core/live/clip-cut.ts';
import { clipExportPrefix, mediaObjectKey, thumbnailKey } from '../core/contracts/object-keys.ts';
import { newRecordingId, vodPlaybackPath } from '../core/contracts/vod-assets.ts';
import type { WebhookEventType } from '../core/contracts/webhooks.ts';
import type { RpcError } from '../core/contracts/rpc-error.ts';
import type { ClipResult, PresentationResult, VodPlaylistResult } from '../core/contracts/stream-rpc.ts';
import { covered, firstGap } from '../core/live/retention-ranges.ts';

/** What the archive needs from the DO that owns it. */
export interface ArchiveHost {
  readonly sql: SqlStorage;
  readonly media: R2Bucket;
  readonly db: D1Database;
  streamId(): string;
  retentionDays(): number;
  /** Seconds of the live window (for how long removed segments stay downloadable, PART-13). */
  windowSeconds(): number;
  targetDuration(): number;
  /** Renditions of the ladder, the reference (first video) rendition first. */
  renditionNames(): string[];
  /** The lowest MSN any live window still lists; null when no live playlist references anything. */
  liveFloorMsn(): number | null;
  /** The live windows list segments that are about to be deleted: drop them (an ended stream only). */
  clearLiveWindows(): void;
  emit(type: WebhookEventType, data: Record<string, unknown>): void;
}

/** Objects of an expired recording or clip stay this long, so no cached playlist outlives them. */
export const DELETE_GRACE_MS = 5 * 60_000;
/** While a stream is live, the sweep also runs this often (a 24/7 stream's recording is trimmed). */
export const LIVE_SWEEP_INTERVAL_MS = 3600_000;
/** Longest clip. */
export const MAX_CLIP_SECONDS = 300;
/** MSNs handled per deletion batch, and batches per sweep before it yields to a later alarm. */
const SWEEP_MSNS_PER_BATCH = 100;
const SWEEP_BATCHES = 20;

// Type aliases, not interfaces: SqlStorage rows must be assignable to a string-keyed record.
type RecordingRecord = {
  id: string;
  first_msn: number;
  last_msn: number | null;
  started_at: number;
  ended_at: number | null;
  state: 'recording' | 'ready' | 'expired';
  expires_at: number | null;
};

type ClipRecord = {
  id: string;
  first_msn: number;
  last_msn: number;
  expires_at: number;
  cuts: string;
  expired: number;
};

/** One rendition's cut of a clip, as stored. */
interface StoredCut {
  firstMsn: number;
  lastMsn: number;
  startOffset: number;
  lastDuration: number;
  lastByteLength: number | null;
}

export class StreamArchive {
  private readonly host: ArchiveHost;

  constructor(host: ArchiveHost) {
    this.host = host;
  }

  static migrate(sql: SqlStorage): void {
    sql.exec(`
      CREATE TABLE IF NOT EXISTS recordings (
        id TEXT PRIMARY KEY, first_msn INTEGER NOT NULL, last_msn INTEGER, started_at INTEGER NOT NULL,
        ended_at INTEGER, state TEXT NOT NULL, expires_at INTEGER);
      CREATE TABLE IF NOT EXISTS clips (
        id TEXT PRIMARY KEY, first_msn INTEGER NOT NULL, last_msn INTEGER NOT NULL, expires_at INTEGER NOT NULL,
        cuts TEXT NOT NULL, expired INTEGER NOT NULL DEFAULT 0);
      CREATE TABLE IF NOT EXISTS thumbnails (
        epoch INTEGER NOT NULL, seq INTEGER NOT NULL, pdt INTEGER NOT NULL, PRIMARY KEY (epoch, seq));
      CREATE INDEX IF NOT EXISTS thumbnails_pdt ON thumbnails (pdt);
      CREATE INDEX IF NOT EXISTS segments_pdt ON segments (rendition, pdt);
      CREATE INDEX IF NOT EXISTS segments_epoch ON segments (epoch, msn);
    `);
  }

  // ---- recordings -------------------------------------------------------------------------

  openRecording(): RecordingRecord | null {
    return this.host.sql.exec<RecordingRecord>("SELECT * FROM recordings WHERE state = 'recording' LIMIT 1").toArray()[0] ?? null;
  }

  /** A broadcast starts: its recording covers every segment from `firstMsn` until it ends. */
  async startRecording(firstMsn: number, now: number): Promise<string> {
    const open = this.openRecording();
    if (open) return open.id;
    const id = newRecordingId();
    this.host.sql.exec(
      "INSERT INTO recordings (id, first_msn, last_msn, started_at, ended_at, state, expires_at) VALUES (?, ?, NULL, ?, NULL, 'recording', NULL)",
      id,
      firstMsn,
      now,
    );
    await this.d1(
      "INSERT INTO recordings (id, stream_id, status, started_at, first_msn, created_at, updated_at) VALUES (?, ?, 'recording', ?, ?, ?, ?)",
      id,
      this.host.streamId(),
      now,
      firstMsn,
      now,
      now,
    );
    return id;
  }

  /**
   * The broadcast ended: its recording becomes a VOD over segments first…last and expires after
   * the stream's retention. A broadcast that never published a segment leaves no recording.
   */
  async finishRecording(lastMsn: number, now: number): Promise<{ id: string; duration: number } | null> {
    const open = this.openRecording();
    if (!open) return null;
    const ref = this.host.renditionNames()[0]!;
    const stats = this.host.sql
      .exec<{ n: number; total: number | null; disc: number | null }>(
        'SELECT COUNT(*) AS n, SUM(duration) AS total, SUM(CASE WHEN disc = 1 AND msn > ? THEN 1 ELSE 0 END) AS disc FROM segments WHERE rendition = ? AND msn BETWEEN ? AND ? AND duration IS NOT NULL',
        open.first_msn,
        ref,
        open.first_msn,
        lastMsn,
      )
      .one();
    if (stats.n === 0) {
      this.host.sql.exec('DELETE FROM recordings WHERE id = ?', open.id);
      await this.d1('DELETE FROM recordings WHERE id = ?', open.id);
      return null;
    }
    const duration = Math.round((stats.total ?? 0) * 1e6) / 1e6;
    const retention = this.host.retentionDays();
    // Retention 0 keeps no recording: it is expired at once (its objects go after the grace period).
    const state = retention > 0 ? 'ready' : 'expired';
    const expiresAt = now + retention * 86_400_000;
    this.host.sql.exec(
      'UPDATE recordings SET last_msn = ?, ended_at = ?, state = ?, expires_at = ? WHERE id = ?',
      lastMsn,
      now,
      state,
      expiresAt,
      open.id,
    );
    await this.d1(
      'UPDATE recordings SET status = ?, last_msn = ?, ended_at = ?, duration = ?, discontinuities = ?, expires_at = ?, updated_at = ? WHERE id = ?',
      state,
      lastMsn,
      now,
      duration,
      stats.disc ?? 0,
      expiresAt,
      now,
      open.id,
    );
    if (state === 'ready') {
      this.host.emit('recording.ready', {
        recordingId: open.id,
        streamId: this.host.streamId(),
        startedAt: new Date(open.started_at).toISOString(),
        endedAt: new Date(now).toISOString(),
        duration,
        discontinuities: stats.disc ?? 0,
        expiresAt: new Date(expiresAt).toISOString(),
        playbackPath: vodPlaybackPath(open.id),
      });
    }
    return { id: open.id, duration };
  }

  // ---- clips ------------------------------------------------------------------------------

  /**
   * Cuts a clip of [startMs, endMs) out of the stored segments of every rendition (to the part
   * at both ends) and keeps its objects referenced until it expires.
   */
  async createClip(id: string, startMs: number, endMs: number, now: number, retentionDays?: number): Promise<ClipResult> {
    if (!(endMs > startMs)) return { status: 400, code: 'invalid_clip_range', message: 'the clip must end after it starts' };
    if (endMs - startMs > MAX_CLIP_SECONDS * 1000 + 1) {
      return { status: 400, code: 'clip_too_long', message: `a clip lasts at most ${MAX_CLIP_SECONDS} s` };
    }
    const names = this.host.renditionNames();
    const cuts: Record<string, StoredCut> = {};
    let ref: ClipCut | null = null;
    for (const name of names) {
      const segments = await this.clipSegments(name, startMs, endMs);
      const cut = segments.length > 0 ? cutClip(segments, startMs, endMs) : null;
      if (!cut) {
        if (name === names[0]) return { status: 422, code: 'clip_out_of_range', message: 'no stored media in that range' };
        continue;
      }
      ref ??= cut;
      cuts[name] = {
        firstMsn: cut.firstMsn,
        lastMsn: cut.lastMsn,
        startOffset: cut.startOffset,
        lastDuration: cut.lastDuration,
        lastByteLength: cut.lastByteLength,
      };
    }
    if (!ref) return { status: 422, code: 'clip_out_of_range', message: 'no stored media in that range' };
    const values = Object.values(cuts);
    const firstMsn = Math.min(...values.map((c) => c.firstMsn));
    const lastMsn = Math.max(...values.map((c) => c.lastMsn));
    // A clip is kept at least a day, even from a stream that keeps no recordings.
    const expiresAt = now + (retentionDays ?? Math.max(1, this.host.retentionDays())) * 86_400_000;
    this.host.sql.exec(
      'INSERT INTO clips (id, first_msn, last_msn, expires_at, cuts, expired) VALUES (?, ?, ?, ?, ?, 0)',
      id,
      firstMsn,
      lastMsn,
      expiresAt,
      JSON.stringify(cuts),
    );
    return {
      status: 200,
      clip: { firstMsn, lastMsn, startMs: ref.startMs, endMs: ref.endMs, duration: ref.duration, expiresAt },
    };
  }

  /** Complete segments of a rendition covering [startMs, endMs), with parts on the first and last. */
  private async clipSegments(rendition: string, startMs: number, endMs: number): Promise<ClipSegment[]> {
    const sql = this.host.sql;
    const from =
      sql
        .exec<{ msn: number }>(
          'SELECT msn FROM segments WHERE rendition = ? AND pdt <= ? ORDER BY pdt DESC, msn DESC LIMIT 1',
          rendition,
          startMs,
        )
        .toArray()[0]?.msn ??
      sql
        .exec<{ msn: number }>('SELECT msn FROM segments WHERE rendition = ? AND pdt > ? ORDER BY pdt, msn LIMIT 1', rendition, startMs)
        .toArray()[0]?.msn;
    if (from === undefined) return [];
    const rows = sql
      .exec<{ msn: number; pdt: number; duration: number | null }>(
        // Gap segments (EXT-X-GAP) have no parts to cut at; the VOD playlist still lists them.
        'SELECT msn, pdt, duration FROM segments WHERE rendition = ? AND msn >= ? AND pdt < ? AND gap = 0 ORDER BY msn',
        rendition,
        from,
        endMs,
      )
      .toArray();
    // Only complete segments: an open one has no segment object to list yet.
    const segments: ClipSegment[] = [];
    for (const r of rows) {
      if (r.duration === null) break;
      segments.push({ msn: r.msn, programDateTime: r.pdt, duration: r.duration });
    }
    // A start in a reconnection's wall-clock gap finds the segment before the gap, which ends before
    // it: the clip starts at the next one (as cutClip skips it), and that one needs its parts.
    while (segments.length > 1 && segments[0]!.programDateTime + segments[0]!.duration * 1000 <= startMs) segments.shift();
    for (const s of [segments[0], segments.at(-1)]) {
      if (s && !s.parts) s.parts = await this.partsOf(rendition, s.msn);
    }
    return segments;
  }

  /** A segment's parts with their byte sizes (from SQLite; older rows without a size ask R2). */
  private async partsOf(rendition: string, msn: number): Promise<Array<{ duration: number; size: number }>> {
    const rows = this.host.sql
      .exec<{ idx: number; duration: number; size: number | null; epoch: number }>(
        'SELECT p.idx AS idx, p.duration AS duration, p.size AS size, s.epoch AS epoch FROM parts p JOIN segments s ON s.rendition = p.rendition AND s.msn = p.msn WHERE p.rendition = ? AND p.msn = ? ORDER BY p.idx',
        rendition,
        msn,
      )
      .toArray();
    const out: Array<{ duration: number; size: number }> = [];
    for (const r of rows) {
      let size = r.size;
      if (size === null) {
        const head = await this.host.media.head(
          mediaObjectKey(this.host.streamId(), r.epoch, rendition, { kind: 'part', msn, part: r.idx }),
        );
        size = head?.size ?? 0;
      }
      out.push({ duration: r.duration, size });
    }
    return out;
  }

  // ---- VOD playlists ----------------------------------------------------------------------

  /** The renditions an asset can be played in, or why it cannot be played. */
  assetState(assetId: string): { kind: 'recording' | 'clip'; renditions: string[] } | RpcError {
    if (assetId.startsWith('rc')) {
      const r = this.host.sql.exec<RecordingRecord>('SELECT * FROM recordings WHERE id = ?', assetId).toArray()[0];
      if (!r) return { status: 404, code: 'not_found', message: 'no such recording' };
      if (r.state === 'recording') return { status: 409, code: 'recording_in_progress', message: 'the broadcast has not ended yet' };
      if (r.state === 'expired') return { status: 410, code: 'expired', message: 'the recording has expired' };
      // Only the renditions with media in it: a rung the publisher could not feed is left out.
      const renditions = this.host
        .renditionNames()
        .filter(
          (name) =>
            this.host.sql
              .exec('SELECT 1 FROM segments WHERE rendition = ? AND msn BETWEEN ? AND ? AND gap = 0 LIMIT 1', name, r.first_msn, r.last_msn)
              .toArray().length > 0,
        );
      return { kind: 'recording', renditions };
    }
    const c = this.host.sql.exec<ClipRecord>('SELECT * FROM clips WHERE id = ?', assetId).toArray()[0];
    if (!c) return { status: 404, code: 'not_found', message: 'no such clip' };
    if (c.expired) return { status: 410, code: 'expired', message: 'the clip has expired' };
    return { kind: 'clip', renditions: Object.keys(JSON.parse(c.cuts) as Record<string, StoredCut>) };
  }

  /** The renditions (with their init metadata, `infoOf`) a recording or clip plays in. */
  vodPresentation(assetId: string, infoOf: (rendition: string) => RenditionInfo | null | undefined): PresentationResult {
    const state = this.assetState(assetId);
    if ('status' in state) return state;
    const renditions = state.renditions.flatMap((name) => infoOf(name) ?? []);
    return { status: 200, presentation: { streamId: this.host.streamId(), renditions, ended: true } };
  }

  vodPlaylist(assetId: string, rendition: string): VodPlaylistResult {
    const state = this.assetState(assetId);
    if ('status' in state) return state;
    if (!state.renditions.includes(rendition)) return { status: 404, code: 'rendition_not_found', message: `no rendition ${rendition}` };
    const targetDuration = this.host.targetDuration();
    if (state.kind === 'recording') {
      const r = this.host.sql.exec<RecordingRecord>('SELECT * FROM recordings WHERE id = ?', assetId).one();
      const segments = this.vodSegments(rendition, r.first_msn, r.last_msn!);
      if (segments.length === 0) return { status: 404, code: 'rendition_not_found', message: `no media of ${rendition} in the recording` };
      return { status: 200, snapshot: { rendition, targetDuration, segments } };
    }
    const c = this.host.sql.exec<ClipRecord>('SELECT * FROM clips WHERE id = ?', assetId).one();
    const cut = (JSON.parse(c.cuts) as Record<string, StoredCut>)[rendition]!;
    const segments = this.vodSegments(rendition, cut.firstMsn, cut.lastMsn);
    const last = segments.at(-1);
    if (!last || last.msn !== cut.lastMsn) return { status: 404, code: 'not_found', message: 'the clip media is gone' };
    last.duration = cut.lastDuration;
    if (cut.lastByteLength !== null) last.byteLength = cut.lastByteLength;
    return { status: 200, snapshot: { rendition, targetDuration, segments, startTimeOffset: cut.startOffset } };
  }

  private vodSegments(rendition: string, firstMsn: number, lastMsn: number): VodSegment[] {
    const out: VodSegment[] = [];
    for (const r of this.host.sql.exec<{ msn: number; epoch: number; duration: number | null; pdt: number; disc: number; gap: number }>(
      'SELECT msn, epoch, duration, pdt, disc, gap FROM segments WHERE rendition = ? AND msn BETWEEN ? AND ? ORDER BY msn',
      rendition,
      firstMsn,
      lastMsn,
    )) {
      if (r.duration === null) continue;
      out.push({
        msn: r.msn,
        epoch: r.epoch,
        duration: r.duration,
        programDateTime: r.pdt,
        discontinuity: r.disc === 1,
        ...(r.gap === 1 ? { gap: true } : {}),
      });
    }
    return out;
  }

  // ---- thumbnails -------------------------------------------------------------------------

  addThumbnail(epoch: number, seq: number, pdt: number): boolean {
    const existing = this.host.sql.exec('SELECT 1 FROM thumbnails WHERE epoch = ? AND seq = ?', epoch, seq).toArray();
    if (existing.length > 0) return false;
    this.host.sql.exec('INSERT INTO thumbnails (epoch, seq, pdt) VALUES (?, ?, ?)', epoch, seq, pdt);
    return true;
  }

  /** The latest thumbnail, or the one shown at wall-clock `at` (the last taken at or before it). */
  thumbnail(at: number | undefined, notBefore: number | null): { key: string; pdt: number } | null {
    const row =
      at === undefined
        ? this.host.sql
            .exec<{ epoch: number; seq: number; pdt: number }>('SELECT epoch, seq, pdt FROM thumbnails ORDER BY pdt DESC LIMIT 1')
            .toArray()[0]
        : this.host.sql
            .exec<{ epoch: number; seq: number; pdt: number }>(
              'SELECT epoch, seq, pdt FROM thumbnails WHERE pdt <= ? ORDER BY pdt DESC LIMIT 1',
              at,
            )
            .toArray()[0];
    if (!row || (notBefore !== null && row.pdt < notBefore)) return null;
    return { key: thumbnailKey(this.host.streamId(), row.epoch, row.seq), pdt: row.pdt };
  }

  // ---- retention --------------------------------------------------------------------------

  /** When the sweep next has something to do (ms), or null. */
  nextSweepAt(live: boolean, now: number): number | null {
    const sql = this.host.sql;
    const times: number[] = [];
    const rec = sql
      .exec<{ t: number | null }>(
        "SELECT MIN(CASE WHEN state = 'ready' THEN expires_at ELSE expires_at + ? END) AS t FROM recordings WHERE state != 'recording'",
        DELETE_GRACE_MS,
      )
      .one().t;
    if (rec !== null) times.push(rec);
    const clip = sql
      .exec<{ t: number | null }>(
        'SELECT MIN(CASE WHEN expired = 0 THEN expires_at ELSE expires_at + ? END) AS t FROM clips',
        DELETE_GRACE_MS,
      )
      .one().t;
    if (clip !== null) times.push(clip);
    if (live) times.push(now + LIVE_SWEEP_INTERVAL_MS);
    return times.length ? Math.min(...times) : null;
  }

  /**
   * Expires what is due and deletes the objects nothing references any more: not a live window
   * (nor a segment that left one recently, PART-13), not a recording or clip that is still
   * playable or expired less than DELETE_GRACE_MS ago. Returns true when work remains.
   */
  async sweep(now: number, live: boolean): Promise<boolean> {
    const sql = this.host.sql;
    const streamId = this.host.streamId();
    // 1. Expire what is due (the playlists go first, then, after the grace period, the objects).
    for (const r of sql.exec<RecordingRecord>("SELECT * FROM recordings WHERE state = 'ready' AND expires_at <= ?", now).toArray()) {
      sql.exec("UPDATE recordings SET state = 'expired' WHERE id = ?", r.id);
      await this.d1("UPDATE recordings SET status = 'expired', updated_at = ? WHERE id = ?", now, r.id);
    }
    for (const c of sql.exec<ClipRecord>('SELECT * FROM clips WHERE expired = 0 AND expires_at <= ?', now).toArray()) {
      sql.exec('UPDATE clips SET expired = 1 WHERE id = ?', c.id);
      await this.d1("UPDATE clips SET status = 'expired', updated_at = ? WHERE id = ?", now, c.id);
    }
    // 2. A broadcast still going keeps only `retentionDays` of media in its recording.
    const open = this.openRecording();
    if (open && live) {
      const cutoff = now - this.host.retentionDays() * 86_400_000;
      const ref = this.host.renditionNames()[0]!;
      const first =
        sql.exec<{ m: number | null }>('SELECT MIN(msn) AS m FROM segments WHERE rendition = ? AND pdt >= ?', ref, cutoff).one().m ??
        // Nothing that recent: the recording keeps nothing of what exists so far.
        (sql.exec<{ m: number | null }>('SELECT MAX(msn) AS m FROM segments').one().m ?? open.first_msn - 1) + 1;
      if (first > open.first_msn) {
        sql.exec('UPDATE recordings SET first_msn = ? WHERE id = ?', first, open.id);
        await this.d1('UPDATE recordings SET first_msn = ?, updated_at = ? WHERE id = ?', first, now, open.id);
      }
    }
    // 3. What is still referenced.
    const kept: Array<[number, number]> = [];
    for (const r of sql.exec<RecordingRecord>('SELECT * FROM recordings').toArray()) {
      if (r.state === 'recording') kept.push([r.first_msn, Infinity]);
      else if (r.state === 'ready' || now < (r.expires_at ?? 0) + DELETE_GRACE_MS) kept.push([r.first_msn, r.last_msn ?? Infinity]);
    }
    for (const c of sql.exec<ClipRecord>('SELECT * FROM clips').toArray()) {
      if (now < c.expires_at + DELETE_GRACE_MS) kept.push([c.first_msn, c.last_msn]);
    }
    const floor = this.host.liveFloorMsn();
    if (floor !== null) {
      if (live) kept.push([floor, Infinity]);
      else if (!covered(kept, floor)) this.host.clearLiveWindows(); // an ended stream's last window expired with its recording
    }
    if (live) {
      // Segments that left the live window stay downloadable for about another window (PART-13).
      const since = now - (2 * this.host.windowSeconds() + 3 * this.host.targetDuration() + 60) * 1000;
      const recent = sql.exec<{ m: number | null }>('SELECT MIN(msn) AS m FROM segments WHERE pdt >= ?', since).one().m;
      if (recent !== null) kept.push([recent, Infinity]);
    }
    // 4. Delete the rest, oldest first, in bounded batches.
    const touchedEpochs = new Set<number>();
    let batches = 0;
    let more = false;
    let cursor = -Infinity;
    for (;;) {
      const gap = firstGap(
        kept,
        cursor,
        (from) => sql.exec<{ m: number | null }>('SELECT MIN(msn) AS m FROM segments WHERE msn >= ?', from).one().m,
      );
      if (!gap) break;
      if (batches++ >= SWEEP_BATCHES) {
        more = true;
        break;
      }
      const msns = sql
        .exec<{ msn: number }>(
          'SELECT DISTINCT msn FROM segments WHERE msn >= ? AND msn <= ? ORDER BY msn LIMIT ?',
          gap[0],
          gap[1],
          SWEEP_MSNS_PER_BATCH,
        )
        .toArray()
        .map((r) => r.msn);
      if (msns.length === 0) {
        cursor = gap[1] + 1;
        continue;
      }
      const lo = msns[0]!;
      const hi = msns.at(-1)!;
      const rows = sql
        .exec<{ rendition: string; msn: number; epoch: number }>(
          'SELECT rendition, msn, epoch FROM segments WHERE msn BETWEEN ? AND ?',
          lo,
          hi,
        )
        .toArray();
      const keys: string[] = [];
      for (const r of rows) {
        touchedEpochs.add(r.epoch);
        keys.push(mediaObjectKey(streamId, r.epoch, r.rendition, { kind: 'segment', msn: r.msn }));
      }
      // The part objects are the parts rows (a segment left open has no final part_count).
      const partRows = sql
        .exec<{ rendition: string; msn: number; idx: number; epoch: number }>(
          'SELECT p.rendition AS rendition, p.msn AS msn, p.idx AS idx, s.epoch AS epoch FROM parts p JOIN segments s ON s.rendition = p.rendition AND s.msn = p.msn WHERE p.msn BETWEEN ? AND ?',
          lo,
          hi,
        )
        .toArray();
      for (const p of partRows) keys.push(mediaObjectKey(streamId, p.epoch, p.rendition, { kind: 'part', msn: p.msn, part: p.idx }));
      await this.deleteObjects(keys);
      // Rows go after their objects: a crash in between repeats the (idempotent) deletes.
      sql.exec('DELETE FROM parts WHERE msn BETWEEN ? AND ?', lo, hi);
      sql.exec('DELETE FROM segments WHERE msn BETWEEN ? AND ?', lo, hi);
      cursor = hi + 1;
    }
    // 5. Init segments and thumbnails of epochs with nothing (or less) left.
    for (const epoch of touchedEpochs) {
      const left = sql.exec<{ p: number | null }>('SELECT MIN(pdt) AS p FROM segments WHERE epoch = ?', epoch).one().p;
      const thumbs = sql
        .exec<{ seq: number }>('SELECT seq FROM thumbnails WHERE epoch = ? AND pdt < ?', epoch, left ?? Number.MAX_SAFE_INTEGER)
        .toArray();
      const keys = thumbs.map((t) => thumbnailKey(streamId, epoch, t.seq));
      if (left === null) for (const name of this.host.renditionNames()) keys.push(mediaObjectKey(streamId, epoch, name, { kind: 'init' }));
      await this.deleteObjects(keys);
      sql.exec('DELETE FROM thumbnails WHERE epoch = ? AND pdt < ?', epoch, left ?? Number.MAX_SAFE_INTEGER);
    }
    // 6. Forget what is gone: expired recordings and clips past the grace period (and clip exports).
    if (!more) {
      for (const c of sql.exec<ClipRecord>('SELECT * FROM clips WHERE expires_at + ? <= ?', DELETE_GRACE_MS, now).toArray()) {
        // The export's files (one per rendition): listed, since only D1 knows which were made.
        const exported = await this.host.media.list({ prefix: clipExportPrefix(c.id) });
        await this.deleteObjects(exported.objects.map((o) => o.key));
        sql.exec('DELETE FROM clips WHERE id = ?', c.id);
      }
      sql.exec("DELETE FROM recordings WHERE state = 'expired' AND expires_at + ? <= ?", DELETE_GRACE_MS, now);
    }
    return more;
  }

  private async deleteObjects(keys: string[]): Promise<void> {
    for (let i = 0; i < keys.length; i += 1000) {
      const batch = keys.slice(i, i + 1000);
      if (batch.length) await this.host.media.delete(batch);
    }
  }

  /** Catalog writes: informative copies of the DO's own state, so a failure is logged, not thrown. */
  private async d1(query: string, ...binds: unknown[]): Promise<void> {
    try {
      await this.host.db
        .prepare(query)
        .bind(...binds)
        .run();
    } catch (err) {
      console.error(JSON.stringify({ level: 'error', msg: 'catalog write failed', query: query.slice(0, 60), error: String(err) }));
    }
  }
}
