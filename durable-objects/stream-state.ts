// StreamState: one Durable Object per live stream. It is the single writer of the stream's live
// model: the ingest lease and its epoch (fencing), the live window per rendition (in SQLite, so it
// survives eviction), and the blocked playlist and media requests waiting for the next part.
// It never renders playlist text: it answers compact snapshots that the edge renders.
import { DurableObject } from 'cloudflare:workers';
import type { Env } from '../workers/env.ts';
import type {
  MediaPlaylistSnapshot,
  PartInfo,
  PresentationSnapshot,
  RenditionInfo,
  RenditionReport,
  SegmentInfo,
} from '../workers/lib/live-model.ts';
import { mediaObjectKey, type MediaObject } from '../workers/lib/object-keys.ts';
import type { InitMeta, PartMeta, SegmentMeta } from '../workers/lib/ingest-protocol.ts';
import { playlistTiming, type StreamSettings } from '../workers/lib/stream-config.ts';
import {
  advancePartLimit,
  blockingTimeoutMs,
  decideBlockingReload,
  type BlockingState,
  type HlsDirectives,
} from '../workers/lib/playlist/blocking.ts';
import { computeSkip, partsRetained } from '../workers/lib/playlist/window.ts';

export interface StreamConfig {
  streamId: string;
  settings: StreamSettings;
}

export interface Lease {
  epoch: number;
  nodeId: string;
  region?: string;
  acquiredAt: number;
}

export type RpcError = { status: 400 | 404 | 409 | 503; code: string; message: string };
export type PlaylistResult = { status: 200; snapshot: MediaPlaylistSnapshot } | RpcError;
export type IngestResult = { status: 200 | 201; duplicate?: boolean } | RpcError;

export type IngestPush =
  | { epoch: number; rendition: string; object: { kind: 'init' }; meta: InitMeta }
  | { epoch: number; rendition: string; object: { kind: 'part'; msn: number; part: number }; meta: PartMeta }
  | { epoch: number; rendition: string; object: { kind: 'segment'; msn: number }; meta: SegmentMeta };

export interface StreamStatus {
  state: 'idle' | 'live' | 'ended';
  epoch: number | null;
  ingest: { nodeId: string; region?: string; epoch: number; startedAt: number; lastPushAt: number | null } | null;
  renditions: Array<RenditionReport & { kind: RenditionInfo['kind'] | null; codecs: string | null }>;
}

/** A segment as the DO holds it: the playlist's SegmentInfo plus the count of its parts. */
interface SegmentRecord {
  msn: number;
  epoch: number;
  duration: number | null;
  programDateTime: number;
  discontinuity: boolean;
  partCount: number;
  /** Kept in memory for segments near the live edge only; older ones have been dropped (PART-12). */
  parts: PartInfo[] | null;
}

interface RenditionState {
  name: string;
  info: RenditionInfo | null;
  /** Epoch whose init segment has been stored for this rendition. */
  initEpoch: number | null;
  /** The live window, oldest first; the last may be in progress (duration null). */
  segments: SegmentRecord[];
  /** Discontinuity tags that slid out of the window (EXT-X-DISCONTINUITY-SEQUENCE, MP-04). */
  discontinuitySequence: number;
}

interface Waiter {
  rendition: string;
  test: (rs: RenditionState) => 'respond' | 'wait';
  resolve: () => void;
  timer: ReturnType<typeof setTimeout>;
}

/** Segments whose parts stay in memory: enough for PART-12 (3 × TD from the end) plus slack. */
const PARTS_IN_MEMORY_SEGMENTS = 12;

export class StreamState extends DurableObject<Env> {
  private readonly sql: SqlStorage;
  private config: StreamConfig | null = null;
  private lease: Lease | null = null;
  private ended = false;
  private deleted = false;
  private lastPushAt: number | null = null;
  private alarmAt: number | null = null;
  private readonly renditions = new Map<string, RenditionState>();
  private readonly waiters = new Set<Waiter>();

  constructor(ctx: DurableObjectState, env: Env) {
    super(ctx, env);
    this.sql = ctx.storage.sql;
    // Migrations and the load of the live window run before any event is delivered.
    ctx.blockConcurrencyWhile(async () => {
      this.migrate();
      this.load();
    });
  }

  // ---- lifecycle: configure, lease, end ---------------------------------------------------

  /** Called by the admin API when the stream is created or its settings change. */
  async configure(config: StreamConfig): Promise<void> {
    this.config = config;
    this.deleted = false;
    this.putKv('config', config);
    this.putKv('deleted', false);
  }

  /**
   * Takes the ingest lease for a publisher: a new epoch fences off every push of the previous
   * one. The open segment of the previous epoch is closed so nothing acknowledged is lost, and
   * the new epoch continues the media sequence after it (with a discontinuity).
   */
  async acquireLease(nodeId: string, region?: string): Promise<{ epoch: number; startMsn: number } | RpcError> {
    if (!this.config || this.deleted) return { status: 404, code: 'stream_not_found', message: 'no such stream' };
    const epoch = (this.lease?.epoch ?? Number(this.getKv('lastEpoch') ?? 0)) + 1;
    this.lease = { epoch, nodeId, region, acquiredAt: Date.now() };
    this.ended = false;
    this.lastPushAt = Date.now();
    this.putKv('lease', this.lease);
    this.putKv('lastEpoch', epoch);
    this.putKv('ended', false);
    await this.closeOpenSegments();
    const startMsn = this.nextMsn();
    this.putKv('epochStartMsn', startMsn);
    await this.armAlarm();
    await this.setCatalogStatus('live');
    return { epoch, startMsn };
  }

  /** A publisher said it stopped: the stream ends after the grace period unless it comes back. */
  async publisherStopped(epoch: number): Promise<{ status: 200 } | RpcError> {
    if (!this.lease || this.lease.epoch !== epoch) return stale(epoch);
    this.lastPushAt = Date.now() - this.graceMs() + 1000;
    this.putKv('lastPushAt', this.lastPushAt);
    await this.armAlarm(this.lastPushAt + this.graceMs());
    return { status: 200 };
  }

  /** The stream was deleted: end it and refuse every further push. */
  async terminate(): Promise<void> {
    this.deleted = true;
    this.putKv('deleted', true);
    if (this.lease && !this.ended) await this.endStream();
  }

  override async alarm(): Promise<void> {
    this.alarmAt = null;
    if (this.ended || !this.lease) return;
    const due = (this.lastPushAt ?? 0) + this.graceMs();
    if (Date.now() >= due) await this.endStream();
    else await this.armAlarm(due);
  }

  // ---- ingest -----------------------------------------------------------------------------

  /**
   * Stores one pushed object in R2, then announces it (PART-11: a part is listed only once its
   * bytes are durable). Pushes of another epoch are refused before anything is stored.
   */
  async ingest(push: IngestPush, body: ArrayBuffer): Promise<IngestResult> {
    if (!this.config || this.deleted) return { status: 404, code: 'stream_not_found', message: 'no such stream' };
    const check = this.checkPush(push);
    if (check !== 'store') return check;
    const key = mediaObjectKey(this.config.streamId, push.epoch, push.rendition, push.object);
    await this.env.MEDIA.put(key, body, { httpMetadata: { contentType: contentTypeOf(push) } });
    // Other events ran while R2 stored the bytes: check again before announcing.
    const again = this.checkPush(push);
    if (again !== 'store') return again;
    this.announce(push);
    this.lastPushAt = Date.now();
    if (this.alarmAt === null) await this.armAlarm();
    this.wake(push.rendition);
    return { status: 201 };
  }

  /** 'store' when the push is the next thing this rendition expects; a duplicate is a 200. */
  private checkPush(push: IngestPush): 'store' | IngestResult {
    if (!this.lease || push.epoch !== this.lease.epoch) return stale(push.epoch);
    if (this.ended) return { status: 409, code: 'stream_ended', message: 'the stream has ended; take a new lease' };
    const rs = this.renditions.get(push.rendition);
    if (!this.ladderHas(push.rendition)) {
      return { status: 404, code: 'rendition_not_found', message: `no rendition ${push.rendition} in the ladder` };
    }
    if (push.object.kind === 'init') return 'store';
    if (!rs || rs.initEpoch !== push.epoch) {
      return { status: 409, code: 'init_missing', message: 'push the init segment of this epoch first' };
    }
    const last = rs.segments.at(-1);
    if (push.object.kind === 'part') {
      const { msn, part } = push.object;
      if (last && last.epoch === push.epoch && last.msn === msn && part < last.partCount) return { status: 200, duplicate: true };
      if (last && last.epoch === push.epoch && msn < last.msn) return { status: 200, duplicate: true };
      const expected = this.expectedPart(rs, push.epoch);
      if (msn !== expected.msn || part !== expected.part) {
        return outOfOrder(`expected part ${expected.msn}.${expected.part}, got ${msn}.${part}`);
      }
      return 'store';
    }
    const { msn } = push.object;
    if (last && last.epoch === push.epoch && (msn < last.msn || (msn === last.msn && last.duration !== null))) {
      return { status: 200, duplicate: true };
    }
    if (!last || last.msn !== msn || last.duration !== null || last.epoch !== push.epoch) {
      return outOfOrder(`segment ${msn} is not the open segment`);
    }
    const { partCount } = push.meta as SegmentMeta;
    if (partCount !== last.partCount) {
      return outOfOrder(`segment ${msn} has ${last.partCount} parts, the push says ${partCount}`);
    }
    return 'store';
  }

  private expectedPart(rs: RenditionState, epoch: number): { msn: number; part: number } {
    const last = rs.segments.at(-1);
    if (last && last.epoch === epoch && last.duration === null) return { msn: last.msn, part: last.partCount };
    if (last && last.epoch === epoch) return { msn: last.msn + 1, part: 0 };
    return { msn: Number(this.getKv('epochStartMsn') ?? 1), part: 0 };
  }

  private announce(push: IngestPush): void {
    const rs = this.rendition(push.rendition);
    if (push.object.kind === 'init') {
      const meta = push.meta as InitMeta;
      rs.info = { name: push.rendition, ...meta };
      rs.initEpoch = push.epoch;
      this.sql.exec(
        'INSERT OR REPLACE INTO renditions (name, epoch, info) VALUES (?, ?, ?)',
        push.rendition,
        push.epoch,
        JSON.stringify(rs.info),
      );
      return;
    }
    if (push.object.kind === 'part') {
      const meta = push.meta as PartMeta;
      const { msn, part } = push.object;
      let seg = rs.segments.at(-1);
      if (!seg || seg.msn !== msn) {
        const previous = seg;
        seg = {
          msn,
          epoch: push.epoch,
          duration: null,
          programDateTime: meta.programDateTime,
          discontinuity: previous !== undefined && previous.epoch !== push.epoch,
          partCount: 0,
          parts: [],
        };
        rs.segments.push(seg);
        this.sql.exec(
          'INSERT INTO segments (rendition, msn, epoch, duration, pdt, disc, part_count) VALUES (?, ?, ?, NULL, ?, ?, 0)',
          rs.name,
          msn,
          push.epoch,
          meta.programDateTime,
          seg.discontinuity ? 1 : 0,
        );
        this.trimWindow(rs);
      }
      seg.parts?.push({ duration: meta.duration, independent: meta.independent });
      seg.partCount = part + 1;
      this.sql.exec(
        'INSERT INTO parts (rendition, msn, idx, duration, independent) VALUES (?, ?, ?, ?, ?)',
        rs.name,
        msn,
        part,
        meta.duration,
        meta.independent ? 1 : 0,
      );
      this.sql.exec('UPDATE segments SET part_count = ? WHERE rendition = ? AND msn = ?', seg.partCount, rs.name, msn);
      return;
    }
    const meta = push.meta as SegmentMeta;
    const seg = rs.segments.at(-1)!;
    seg.duration = meta.duration;
    this.sql.exec('UPDATE segments SET duration = ? WHERE rendition = ? AND msn = ?', meta.duration, rs.name, seg.msn);
  }

  /** Keeps the live window to the DVR window, but never under 6 segments or 3 × TD (MUT-03). */
  private trimWindow(rs: RenditionState): void {
    const timing = this.timing();
    const windowSeconds = Math.max(this.config!.settings.dvrWindowSeconds, 3 * timing.targetDuration);
    let total = 0;
    for (const s of rs.segments) total += s.duration ?? 0;
    while (rs.segments.length > 7) {
      const first = rs.segments[0]!;
      if (first.duration === null || total - first.duration < windowSeconds) break;
      total -= first.duration;
      rs.segments.shift();
      // A discontinuity tag that slides out bumps EXT-X-DISCONTINUITY-SEQUENCE (MP-04).
      if (first.discontinuity) rs.discontinuitySequence += 1;
    }
    // Parts far from the live edge leave memory; the playlist lists them only near the edge.
    for (let i = 0; i < rs.segments.length - PARTS_IN_MEMORY_SEGMENTS; i++) rs.segments[i]!.parts = null;
    this.putKv(`window:${rs.name}`, { first: rs.segments[0]?.msn ?? null, discSeq: rs.discontinuitySequence });
  }

  // ---- playback ---------------------------------------------------------------------------

  /** Multivariant data: the renditions known for the stream. */
  async presentation(): Promise<{ status: 200; presentation: PresentationSnapshot } | RpcError> {
    if (!this.config || this.deleted) return { status: 404, code: 'stream_not_found', message: 'no such stream' };
    const renditions: RenditionInfo[] = [];
    for (const rung of this.config.settings.ladder) {
      const info = this.renditions.get(rung.name)?.info;
      if (info) renditions.push(info);
    }
    if (renditions.length === 0) return { status: 404, code: 'stream_not_live', message: 'the stream has not started yet' };
    return { status: 200, presentation: { streamId: this.config.streamId, renditions, ended: this.ended } };
  }

  /**
   * A media playlist snapshot, answered when the blocking directives are satisfied (LLHLS.md §1.8),
   * or 503 after 3 × TD (BR-09): never the unchanged playlist.
   */
  async playlist(rendition: string, d: HlsDirectives): Promise<PlaylistResult> {
    if (!this.config || this.deleted) return { status: 404, code: 'stream_not_found', message: 'no such stream' };
    const rs = this.renditions.get(rendition);
    if (!rs || rs.segments.length === 0) {
      if (!this.ladderHas(rendition)) return { status: 404, code: 'rendition_not_found', message: `no rendition ${rendition}` };
      return { status: 404, code: 'stream_not_live', message: 'the stream has not started yet' };
    }
    const decision = decideBlockingReload(this.blockingState(rs), d);
    if (decision.action === 'reject') return { status: 400, code: decision.code, message: decision.message };
    if (decision.action === 'respond') return { status: 200, snapshot: this.snapshot(rs, d) };
    const ok = await this.waitFor(rendition, (r) => (decideBlockingReload(this.blockingState(r), d).action === 'respond' ? 'respond' : 'wait'), blockingTimeoutMs(this.timing()));
    if (!ok) return { status: 503, code: 'blocking_timeout', message: 'the requested part did not appear in time' };
    return { status: 200, snapshot: this.snapshot(this.renditions.get(rendition)!, d) };
  }

  /**
   * A viewer asked for a media object that R2 does not have (yet). A hinted or imminent part or
   * the open segment is waited for (PH-04); anything else is a 404 (PH-05).
   */
  async awaitMedia(rendition: string, epoch: number, object: MediaObject): Promise<{ status: 200 } | RpcError> {
    const rs = this.renditions.get(rendition);
    const notFound: RpcError = { status: 404, code: 'not_found', message: 'no such media object' };
    if (!rs || object.kind === 'init') return notFound;
    const state = (r: RenditionState): 'respond' | 'wait' | 'never' => {
      if (this.published(r, epoch, object)) return 'respond';
      if (this.ended || !this.lease || this.lease.epoch !== epoch) return 'never';
      const expected = this.expectedPart(r, epoch);
      const apl = advancePartLimit(this.timing().partTarget);
      if (object.kind === 'segment') return object.msn <= expected.msn ? 'wait' : 'never';
      // Parts ahead of the next one by more than the advance part limit will not be waited for.
      const ahead = (object.msn - expected.msn) * apl + (object.part - expected.part);
      return object.msn >= expected.msn && ahead <= apl ? 'wait' : 'never';
    };
    const now = state(rs);
    if (now === 'respond') return { status: 200 };
    if (now === 'never') return notFound;
    const ok = await this.waitFor(rendition, (r) => (state(r) === 'wait' ? 'wait' : 'respond'), blockingTimeoutMs(this.timing()));
    return ok && state(this.renditions.get(rendition)!) === 'respond' ? { status: 200 } : notFound;
  }

  async status(): Promise<StreamStatus | null> {
    if (!this.config) return null;
    const state = this.ended ? 'ended' : this.lease ? 'live' : 'idle';
    return {
      state,
      epoch: this.lease?.epoch ?? null,
      ingest:
        this.lease && !this.ended
          ? {
              nodeId: this.lease.nodeId,
              region: this.lease.region,
              epoch: this.lease.epoch,
              startedAt: this.lease.acquiredAt,
              lastPushAt: this.lastPushAt,
            }
          : null,
      renditions: this.config.settings.ladder.map((rung) => {
        const rs = this.renditions.get(rung.name);
        const report = rs ? this.report(rs) : null;
        return {
          rendition: rung.name,
          kind: rs?.info?.kind ?? null,
          codecs: rs?.info?.codecs ?? null,
          lastMsn: report?.lastMsn ?? 0,
          lastPart: report?.lastPart ?? 0,
        };
      }),
    };
  }

  // ---- snapshots --------------------------------------------------------------------------

  private snapshot(rs: RenditionState, d: HlsDirectives): MediaPlaylistSnapshot {
    const timing = this.timing();
    const records = rs.segments;
    const complete = records.filter((s) => s.duration !== null) as Array<SegmentRecord & { duration: number }>;
    // Delta updates only for a live playlist (DU-02); the DO sends only what the response lists.
    const skipped = d.skip && !this.ended ? computeSkip(complete, timing) : 0;
    const listed = records.slice(skipped);
    const withParts = partsRetained(listed, timing);
    const segments: SegmentInfo[] = listed.map((s, i) => ({
      msn: s.msn,
      epoch: s.epoch,
      duration: s.duration,
      programDateTime: s.programDateTime,
      discontinuity: s.discontinuity,
      parts: i >= listed.length - withParts && s.parts ? s.parts : undefined,
    }));
    const reports: RenditionReport[] = [];
    for (const other of this.renditions.values()) {
      if (other.name !== rs.name && other.segments.length > 0 && this.ladderHas(other.name)) reports.push(this.report(other));
    }
    return {
      streamId: this.config!.streamId,
      rendition: rs.name,
      timing,
      mediaSequence: records[0]!.msn,
      discontinuitySequence: rs.discontinuitySequence,
      skippedSegments: skipped,
      segments,
      ended: this.ended,
      reports,
    };
  }

  private report(rs: RenditionState): RenditionReport {
    const last = rs.segments.at(-1);
    if (!last) return { rendition: rs.name, lastMsn: 0, lastPart: 0 };
    return { rendition: rs.name, lastMsn: last.msn, lastPart: Math.max(0, last.partCount - 1) };
  }

  private blockingState(rs: RenditionState): BlockingState {
    const last = rs.segments.at(-1);
    const lastComplete = last && last.duration !== null ? last : rs.segments.at(-2);
    return {
      ended: this.ended,
      lastCompleteMsn: lastComplete?.msn ?? null,
      lastPartMsn: last?.msn ?? null,
      lastPartIndex: last ? last.partCount - 1 : null,
      partCountOf: (msn: number) => {
        const s = rs.segments.find((x) => x.msn === msn);
        return s && s.duration !== null ? s.partCount : null;
      },
      partTarget: this.timing().partTarget,
      targetDuration: this.timing().targetDuration,
    };
  }

  private published(rs: RenditionState, epoch: number, object: MediaObject): boolean {
    if (object.kind === 'init') return rs.initEpoch === epoch;
    const seg = rs.segments.find((s) => s.msn === object.msn);
    if (!seg || seg.epoch !== epoch) return false;
    if (object.kind === 'segment') return seg.duration !== null;
    return object.part < seg.partCount;
  }

  // ---- waiting ----------------------------------------------------------------------------

  private waitFor(rendition: string, test: Waiter['test'], timeoutMs: number): Promise<boolean> {
    return new Promise<boolean>((resolve) => {
      const waiter: Waiter = {
        rendition,
        test,
        resolve: () => {
          clearTimeout(waiter.timer);
          this.waiters.delete(waiter);
          resolve(true);
        },
        timer: setTimeout(() => {
          this.waiters.delete(waiter);
          resolve(false);
        }, timeoutMs),
      };
      this.waiters.add(waiter);
    });
  }

  /** Re-checks the waiters of a rendition (or all, when the stream ends). */
  private wake(rendition: string | null): void {
    for (const w of this.waiters) {
      if (rendition !== null && w.rendition !== rendition) continue;
      const rs = this.renditions.get(w.rendition);
      if (this.ended || (rs && w.test(rs) === 'respond')) w.resolve();
    }
  }

  // ---- ending -----------------------------------------------------------------------------

  private async endStream(): Promise<void> {
    await this.closeOpenSegments();
    this.ended = true;
    this.putKv('ended', true);
    this.wake(null);
    await this.setCatalogStatus('ended');
  }

  /**
   * Closes every rendition's open segment from the parts it already has: the segment object is
   * the concatenation of its parts (PART-07), so nothing acknowledged is lost or renumbered.
   */
  private async closeOpenSegments(): Promise<void> {
    for (const rs of this.renditions.values()) {
      const seg = rs.segments.at(-1);
      if (!seg || seg.duration !== null) continue;
      const streamId = this.config!.streamId;
      const bodies: ArrayBuffer[] = [];
      let duration = 0;
      const parts = this.sql
        .exec<{ idx: number; duration: number }>(
          'SELECT idx, duration FROM parts WHERE rendition = ? AND msn = ? ORDER BY idx',
          rs.name,
          seg.msn,
        )
        .toArray();
      for (const p of parts) {
        const obj = await this.env.MEDIA.get(mediaObjectKey(streamId, seg.epoch, rs.name, { kind: 'part', msn: seg.msn, part: p.idx }));
        if (!obj) break;
        bodies.push(await obj.arrayBuffer());
        duration += p.duration;
      }
      if (bodies.length === 0) continue;
      const total = bodies.reduce((n, b) => n + b.byteLength, 0);
      const joined = new Uint8Array(total);
      let off = 0;
      for (const b of bodies) {
        joined.set(new Uint8Array(b), off);
        off += b.byteLength;
      }
      await this.env.MEDIA.put(mediaObjectKey(streamId, seg.epoch, rs.name, { kind: 'segment', msn: seg.msn }), joined, {
        httpMetadata: { contentType: rs.info?.kind === 'audio' ? 'audio/mp4' : 'video/iso.segment' },
      });
      duration = Math.round(duration * 1e6) / 1e6;
      seg.duration = duration;
      seg.partCount = bodies.length;
      seg.parts = seg.parts?.slice(0, bodies.length) ?? null;
      this.sql.exec(
        'UPDATE segments SET duration = ?, part_count = ? WHERE rendition = ? AND msn = ?',
        duration,
        seg.partCount,
        rs.name,
        seg.msn,
      );
    }
  }

  /** The next epoch starts after the highest MSN any rendition has reached. */
  private nextMsn(): number {
    let max = 0;
    for (const rs of this.renditions.values()) max = Math.max(max, rs.segments.at(-1)?.msn ?? 0);
    // Media sequence numbers start at 1 (hls.js PR #8013).
    return max + 1;
  }

  // ---- helpers ----------------------------------------------------------------------------

  private timing() {
    return playlistTiming(this.config!.settings);
  }

  private graceMs(): number {
    return Number(this.env.END_GRACE_SECONDS ?? '10') * 1000;
  }

  private ladderHas(name: string): boolean {
    return this.config?.settings.ladder.some((r) => r.name === name) ?? false;
  }

  private rendition(name: string): RenditionState {
    let rs = this.renditions.get(name);
    if (!rs) {
      rs = { name, info: null, initEpoch: null, segments: [], discontinuitySequence: 0 };
      this.renditions.set(name, rs);
    }
    return rs;
  }

  private async armAlarm(at = (this.lastPushAt ?? Date.now()) + this.graceMs()): Promise<void> {
    this.alarmAt = at;
    await this.ctx.storage.setAlarm(at);
  }

  private async setCatalogStatus(status: 'live' | 'ended'): Promise<void> {
    if (!this.config) return;
    try {
      await this.env.DB.prepare('UPDATE streams SET status = ?, updated_at = ? WHERE id = ?')
        .bind(status, Date.now(), this.config.streamId)
        .run();
    } catch (err) {
      // The catalog status is informative; the live model here stays authoritative.
      console.error(JSON.stringify({ level: 'error', msg: 'catalog status update failed', error: String(err) }));
    }
  }

  private migrate(): void {
    this.sql.exec(`
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
    `);
  }

  /** Rebuilds the in-memory model from SQLite after eviction or a restart. */
  private load(): void {
    this.config = (this.getKv('config') as StreamConfig | null) ?? null;
    this.lease = (this.getKv('lease') as Lease | null) ?? null;
    this.ended = this.getKv('ended') === true;
    this.deleted = this.getKv('deleted') === true;
    this.lastPushAt = (this.getKv('lastPushAt') as number | null) ?? null;
    for (const row of this.sql.exec<{ name: string; epoch: number; info: string }>('SELECT name, epoch, info FROM renditions')) {
      const rs = this.rendition(row.name);
      rs.info = JSON.parse(row.info) as RenditionInfo;
      rs.initEpoch = row.epoch;
    }
    for (const rs of this.renditions.values()) {
      const win = (this.getKv(`window:${rs.name}`) as { first: number | null; discSeq: number } | null) ?? null;
      rs.discontinuitySequence = win?.discSeq ?? 0;
      const rows = this.sql
        .exec<{ msn: number; epoch: number; duration: number | null; pdt: number; disc: number; part_count: number }>(
          'SELECT msn, epoch, duration, pdt, disc, part_count FROM segments WHERE rendition = ? AND msn >= ? ORDER BY msn',
          rs.name,
          win?.first ?? 0,
        )
        .toArray();
      rs.segments = rows.map((r) => ({
        msn: r.msn,
        epoch: r.epoch,
        duration: r.duration,
        programDateTime: r.pdt,
        discontinuity: r.disc === 1,
        partCount: r.part_count,
        parts: null,
      }));
      const recent = rs.segments.slice(-PARTS_IN_MEMORY_SEGMENTS);
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
      }
    }
  }

  private getKv(key: string): unknown {
    const row = this.sql.exec<{ value: string }>('SELECT value FROM kv WHERE key = ?', key).toArray()[0];
    return row ? JSON.parse(row.value) : null;
  }

  private putKv(key: string, value: unknown): void {
    this.sql.exec('INSERT OR REPLACE INTO kv (key, value) VALUES (?, ?)', key, JSON.stringify(value));
  }
}

function stale(epoch: number): RpcError {
  return { status: 409, code: 'stale_epoch', message: `epoch ${epoch} no longer holds the ingest lease` };
}

function outOfOrder(message: string): RpcError {
  return { status: 409, code: 'out_of_order', message };
}

function contentTypeOf(push: IngestPush): string {
  if (push.object.kind === 'init') return push.meta && (push.meta as InitMeta).kind === 'audio' ? 'audio/mp4' : 'video/mp4';
  return 'video/iso.segment';
}
