// StreamState: one Durable Object per live stream. It is the single writer of the stream's live
// model: the ingest lease and its epoch (fencing), the DVR window per rendition (every segment in
// SQLite, so it survives eviction; the window in memory, indexed so a request costs the same for a
// 2-hour window as for a minute), and the blocked playlist and media requests waiting for the next
// part. Its archive (recordings, clips, thumbnails, retention) lives in stream-archive.ts.
// It never renders playlist text: it answers compact snapshots that the edge renders.
import { DurableObject } from 'cloudflare:workers';
import type { Env } from '../workers/env.ts';
import type {
  MediaPlaylistSnapshot,
  PartInfo,
  PlaybackLoad,
  PresentationSnapshot,
  RenditionInfo,
  RenditionReport,
  SegmentInfo,
  VodPlaylistSnapshot,
} from '../core/contracts/live-model.ts';
import { mediaObjectKey, thumbnailKey, type MediaObject } from '../core/contracts/object-keys.ts';
import type { InitMeta, PartMeta, SegmentMeta } from '../core/contracts/ingest-protocol.ts';
import { playlistTiming, type StreamSettings } from '../core/contracts/stream-config.ts';
import {
  advancePartLimit,
  blockingTimeoutMs,
  decideBlockingReload,
  type BlockingState,
  type HlsDirectives,
} from '../core/playlist/blocking.ts';
import { computeSkip, partsRetained } from '../core/playlist/window.ts';
import { SegmentWindow } from '../core/live/segment-window.ts';
import { newWebhookEvent, type WebhookEventType } from '../core/contracts/webhooks.ts';
import { StreamArchive, type ArchiveError, type ClipCreated } from './stream-archive.ts';
import { PlaybackLoadCounters } from './playback-load.ts';

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

export type RpcError = { status: 400 | 404 | 409 | 410 | 422 | 503; code: string; message: string };
export type PlaylistResult = { status: 200; snapshot: MediaPlaylistSnapshot } | RpcError;
export type IngestResult = { status: 200 | 201; duplicate?: boolean } | RpcError;
export type VodPlaylistResult = { status: 200; snapshot: VodPlaylistSnapshot } | RpcError;

export type IngestPush =
  | { epoch: number; rendition: string; object: { kind: 'init' }; meta: InitMeta }
  | { epoch: number; rendition: string; object: { kind: 'part'; msn: number; part: number }; meta: PartMeta }
  | { epoch: number; rendition: string; object: { kind: 'segment'; msn: number }; meta: SegmentMeta };

/** Where a start-over playlist (`?start=`) begins: the oldest segment of the window, or a wall-clock time (ms). */
export type StartAt = 'beginning' | number;

/** A clip end point: a wall-clock time (ms since the Unix epoch) or seconds back from the live edge. */
export type ClipPoint = { at: number } | { fromEdge: number };

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
  /**
   * Open segment whose final part is published (the transcoder said so): the hint names part 0
   * of the next MSN. In memory only: the segment push follows at once, and after an eviction the
   * hint is merely the old, tolerated one (PH-05) until it does.
   */
  partsComplete?: boolean;
  /** No media of this rendition for this MSN (EXT-X-GAP): see fillGaps. */
  gap: boolean;
  /**
   * Discontinuity sequence number of this segment (MP-04): discontinuity tags since the stream's
   * first segment, its own included. A playlist starting here has DISCONTINUITY-SEQUENCE
   * `dsn − (discontinuity ? 1 : 0)`, wherever it starts (the live edge, or a start-over point).
   */
  dsn: number;
}

interface RenditionState {
  name: string;
  info: RenditionInfo | null;
  /** Epoch whose init segment has been stored for this rendition. */
  initEpoch: number | null;
  /** The DVR window, oldest first; the last may be in progress (duration null). */
  window: SegmentWindow<SegmentRecord>;
  /** The newest segment ever, also when a new broadcast has emptied the window. */
  newest: { msn: number; epoch: number; dsn: number } | null;
}

interface Waiter {
  rendition: string;
  test: (rs: RenditionState) => 'respond' | 'wait';
  resolve: () => void;
  timer: ReturnType<typeof setTimeout>;
}

/** Pushes of one rendition in progress: stored or being stored, some held for a predecessor. */
interface RenditionPushes {
  inProgress: number;
  /** Held pushes waiting for the next announcement of the rendition (or a lease change). */
  wakers: Set<() => void>;
}

/** Segments whose parts stay in memory: enough for PART-12 (3 × TD from the end) plus slack. */
const PARTS_IN_MEMORY_SEGMENTS = 12;
/** A live playlist never lists fewer segments than this (Apple 8.11: ≥ 6, plus the open one). */
const MIN_WINDOW_SEGMENTS = 7;
/**
 * How long a push that arrived ahead of its predecessor waits for it before a 503. The
 * predecessor is normally in flight at the same moment; this covers a few of its retries, and
 * stays well under the transcoder's 10 s request timeout.
 */
const PREDECESSOR_WAIT_MS = 3_000;
/** Pushes of one rendition in progress at once (the transcoder keeps 3 in flight). */
const MAX_PUSHES_IN_PROGRESS = 8;
/** Version of this object's SQLite schema (kept in kv; `PRAGMA user_version` is not available). */
const SCHEMA_VERSION = 3;

export class StreamState extends DurableObject<Env> {
  private readonly sql: SqlStorage;
  private readonly archive: StreamArchive;
  private config: StreamConfig | null = null;
  private lease: Lease | null = null;
  private ended = false;
  private deleted = false;
  /** The publisher said it stopped (stream.idle was sent); cleared by the next lease. */
  private idle = false;
  private lastPushAt: number | null = null;
  private alarmAt: number | null = null;
  /**
   * The stream is ending: its open segments are being closed from the parts announced so far, so
   * no further part may be announced (it would be acknowledged but left out of its segment).
   */
  private ending = false;
  private readonly renditions = new Map<string, RenditionState>();
  private readonly waiters = new Set<Waiter>();
  /** Pushes being stored or held per rendition (pipelined ingest, see ingest()). */
  private readonly pushes = new Map<string, RenditionPushes>();
  /** R2 writes of pushes in progress, by key: a retry joins its write, closeOpenSegments waits for it. */
  private readonly storing = new Map<string, Promise<void>>();
  /**
   * The renditions an epoch publishes, as its transcoder declared them with its init segments:
   * the ladder minus the rungs its input cannot feed (no audio track, no video track).
   */
  private epochSet: { epoch: number; names: string[] } | null = null;
  /** Playback calls per rendition against parts announced (the stats route's `origin`). */
  private readonly playbackCalls = new PlaybackLoadCounters();

  constructor(ctx: DurableObjectState, env: Env) {
    super(ctx, env);
    this.sql = ctx.storage.sql;
    this.archive = new StreamArchive({
      sql: this.sql,
      media: env.MEDIA,
      db: env.DB,
      streamId: () => this.config!.streamId,
      retentionDays: () => this.config!.settings.retentionDays,
      windowSeconds: () => this.windowSeconds(),
      targetDuration: () => this.timing().targetDuration,
      renditionNames: () => this.renditionNames(),
      liveFloorMsn: () => this.liveFloorMsn(),
      clearLiveWindows: () => this.clearWindows(),
      emit: (type, data) => this.emit(type, data),
    });
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
   * the new epoch continues the media sequence after it (with a discontinuity). A publisher
   * that comes back after the stream ended starts a new broadcast: a new window and recording.
   */
  async acquireLease(nodeId: string, region?: string): Promise<{ epoch: number; startMsn: number; timeOffset: number } | RpcError> {
    if (!this.config || this.deleted) return { status: 404, code: 'stream_not_found', message: 'no such stream' };
    const now = Date.now();
    const wasLive = this.lease !== null && !this.ended && !this.idle;
    const newBroadcast = this.lease === null || this.ended;
    const epoch = (this.lease?.epoch ?? Number(this.getKv('lastEpoch') ?? 0)) + 1;
    this.lease = { epoch, nodeId, region, acquiredAt: now };
    this.ended = false;
    this.idle = false;
    this.lastPushAt = now;
    this.putKv('lease', this.lease);
    this.putKv('lastEpoch', epoch);
    this.putKv('ended', false);
    this.putKv('idle', false);
    // Held pushes of the previous epoch are refused (stale epoch) instead of waiting their turn.
    this.wakeHeld(null);
    await this.closeOpenSegments();
    // The previous broadcast stays in its recording; the live playlist starts afresh, so
    // start-over (`?start=beginning`) means the beginning of this broadcast.
    if (newBroadcast) this.clearWindows();
    const startMsn = this.nextMsn();
    if (!newBroadcast) this.fillGaps(startMsn);
    // The new epoch's timestamps continue where the previous epoch's media ended (its reference
    // rendition): one timeline per broadcast, whatever the reconnections.
    const previousOffset = Number(this.getKv('epochTimeOffset') ?? 0);
    const previousMedia = newBroadcast
      ? 0
      : (this.sql
          .exec<{ d: number | null }>('SELECT SUM(duration) AS d FROM segments WHERE rendition = ? AND epoch = ?', this.renditionNames()[0] ?? '', epoch - 1)
          .one().d ?? 0);
    const timeOffset = newBroadcast ? 0 : Math.ceil((previousOffset + previousMedia) * 1000) / 1000;
    this.putKv('epochStartMsn', startMsn);
    this.putKv('epochTimeOffset', timeOffset);
    const recordingId = newBroadcast ? await this.archive.startRecording(startMsn, now) : this.archive.openRecording()?.id;
    await this.scheduleAlarm();
    await this.setCatalogStatus('live');
    if (!wasLive) this.emit('stream.live', { streamId: this.config.streamId, epoch, reconnect: !newBroadcast, recordingId: recordingId ?? null });
    return { epoch, startMsn, timeOffset };
  }

  /** A publisher said it stopped: the stream ends after the grace period unless it comes back. */
  async publisherStopped(epoch: number): Promise<{ status: 200 } | RpcError> {
    if (!this.lease || this.lease.epoch !== epoch) return stale(epoch);
    this.lastPushAt = Date.now() - this.graceMs() + 1000;
    this.putKv('lastPushAt', this.lastPushAt);
    if (!this.idle && !this.ended) {
      this.idle = true;
      this.putKv('idle', true);
      this.emit('stream.idle', { streamId: this.config!.streamId, epoch, graceSeconds: this.graceMs() / 1000 });
    }
    await this.scheduleAlarm(true);
    return { status: 200 };
  }

  /** The stream was deleted: end it and refuse every further push. */
  async terminate(): Promise<void> {
    this.deleted = true;
    this.putKv('deleted', true);
    if (this.lease && !this.ended) await this.endStream();
  }

  /** One alarm for two timers: the end of an idle stream and the retention sweep. */
  override async alarm(): Promise<void> {
    this.alarmAt = null;
    if (!this.config) return;
    const now = Date.now();
    if (this.lease && !this.ended && now >= (this.lastPushAt ?? 0) + this.graceMs()) await this.endStream();
    const more = await this.archive.sweep(now, this.isLive());
    await this.scheduleAlarm(true, more ? now + 1000 : undefined);
  }

  /** Runs the retention sweep now (or as of `now`): what the alarm does, callable by tests and operators. */
  async sweep(now = Date.now()): Promise<{ more: boolean }> {
    if (!this.config) return { more: false };
    const more = await this.archive.sweep(now, this.isLive());
    await this.scheduleAlarm(true, more ? Date.now() + 1000 : undefined);
    return { more };
  }

  // ---- ingest -----------------------------------------------------------------------------

  /**
   * Stores one pushed object in R2, then announces it (PART-11: a part is listed only once its
   * bytes are durable). Pushes of another epoch are refused before anything is stored.
   *
   * Pushes are pipelined (the transcoder keeps a few per rendition in flight), so one may arrive
   * while its predecessor is still on its way. It is stored at once and held, stored but not
   * announced, until the predecessor has been announced; then it is announced and acknowledged.
   * So announcements keep the rendition's order, an acknowledgement still means "durable and
   * announced", and a held push whose predecessor never comes is answered 503 (retryable, nothing
   * announced) after PREDECESSOR_WAIT_MS. A new lease or the end of the stream releases held
   * pushes with the usual 409.
   */
  async ingest(push: IngestPush, body: ArrayBuffer): Promise<IngestResult> {
    if (!this.config || this.deleted) return { status: 404, code: 'stream_not_found', message: 'no such stream' };
    const check = this.checkPush(push);
    if (check !== 'store' && check !== 'ahead') return check;
    const pushes = this.pushesOf(push.rendition);
    if (check === 'ahead' && pushes.inProgress >= MAX_PUSHES_IN_PROGRESS) return predecessorMissing(`more than ${MAX_PUSHES_IN_PROGRESS} pushes of ${push.rendition} in progress`);
    const key = mediaObjectKey(this.config.streamId, push.epoch, push.rendition, push.object);
    // A retry of a push whose bytes are still being stored (or are stored and held) joins that
    // write rather than writing the same key again.
    let stored = this.storing.get(key);
    if (!stored) {
      stored = this.env.MEDIA.put(key, body, { httpMetadata: { contentType: contentTypeOf(push) } }).then(() => undefined);
      this.storing.set(key, stored);
    }
    pushes.inProgress++;
    try {
      await stored;
      // Other events ran while R2 stored the bytes: check again before announcing, and wait for
      // the predecessor if it has not been announced yet.
      const deadline = Date.now() + PREDECESSOR_WAIT_MS;
      let verdict = this.checkPush(push);
      while (verdict === 'ahead') {
        if (!(await this.nextAnnouncement(pushes, deadline))) return predecessorMissing(`the push before ${key} did not arrive in time`);
        verdict = this.checkPush(push);
      }
      if (verdict !== 'store') return verdict;
      this.announce(push, body.byteLength);
      if (push.object.kind === 'part') this.playbackCalls.partAnnounced(push.rendition);
      this.lastPushAt = Date.now();
      this.wakeHeld(push.rendition);
      this.wake(push.rendition);
      if (this.alarmAt === null || this.alarmAt > this.lastPushAt + this.graceMs()) await this.scheduleAlarm();
      return { status: 201 };
    } finally {
      pushes.inProgress--;
      if (this.storing.get(key) === stored) this.storing.delete(key);
    }
  }

  /** A thumbnail of the top rendition (JPEG), pushed by the transcoder every few seconds. */
  async ingestThumbnail(epoch: number, seq: number, programDateTime: number, body: ArrayBuffer): Promise<IngestResult> {
    if (!this.config || this.deleted) return { status: 404, code: 'stream_not_found', message: 'no such stream' };
    if (!this.lease || epoch !== this.lease.epoch) return stale(epoch);
    if (this.ended) return { status: 409, code: 'stream_ended', message: 'the stream has ended; take a new lease' };
    await this.env.MEDIA.put(thumbnailKey(this.config.streamId, epoch, seq), body, {
      httpMetadata: { contentType: 'image/jpeg' },
    });
    if (!this.lease || epoch !== this.lease.epoch) return stale(epoch);
    const added = this.archive.addThumbnail(epoch, seq, programDateTime);
    return added ? { status: 201 } : { status: 200, duplicate: true };
  }

  /**
   * 'store' when the push is the next thing this rendition expects; a duplicate is a 200.
   * 'ahead' when it comes a little early (pipelined pushes): its predecessors, in the same epoch,
   * are still to be announced.
   */
  private checkPush(push: IngestPush): 'store' | 'ahead' | IngestResult {
    if (!this.lease || push.epoch !== this.lease.epoch) return stale(push.epoch);
    if (this.ended || this.ending) return { status: 409, code: 'stream_ended', message: 'the stream has ended; take a new lease' };
    const rs = this.renditions.get(push.rendition);
    if (!this.ladderHas(push.rendition)) {
      return { status: 404, code: 'rendition_not_found', message: `no rendition ${push.rendition} in the ladder` };
    }
    if (push.object.kind === 'init') return 'store';
    if (!rs || rs.initEpoch !== push.epoch) {
      return { status: 409, code: 'init_missing', message: 'push the init segment of this epoch first' };
    }
    const last = rs.window.last;
    if (push.object.kind === 'part') {
      const { msn, part } = push.object;
      if (last && last.epoch === push.epoch && last.msn === msn && part < last.partCount) return { status: 200, duplicate: true };
      if (last && last.epoch === push.epoch && msn < last.msn) return { status: 200, duplicate: true };
      const expected = this.expectedPart(rs, push.epoch);
      if (msn === expected.msn && part === expected.part) return 'store';
      // Later parts of the expected segment, or parts of the next one (its parent's segment push
      // is on its way): the pipelining window is a few pushes, never more than one MSN ahead.
      if ((msn === expected.msn && part > expected.part) || msn === expected.msn + 1) return 'ahead';
      return outOfOrder(`expected part ${expected.msn}.${expected.part}, got ${msn}.${part}`);
    }
    const { msn } = push.object;
    if (last && last.epoch === push.epoch && (msn < last.msn || (msn === last.msn && last.duration !== null))) {
      return { status: 200, duplicate: true };
    }
    const { partCount } = push.meta as SegmentMeta;
    if (last && last.msn === msn && last.duration === null && last.epoch === push.epoch) {
      if (partCount === last.partCount) return 'store';
      // Its last parts are on their way.
      if (partCount > last.partCount) return 'ahead';
      return outOfOrder(`segment ${msn} has ${last.partCount} parts, the push says ${partCount}`);
    }
    // None of its parts is announced yet: they are on their way (with one-part segments the
    // previous segment's push may still be in flight too).
    const expected = this.expectedPart(rs, push.epoch);
    if ((expected.msn === msn && expected.part === 0) || msn === expected.msn + 1) return 'ahead';
    return outOfOrder(`segment ${msn} is not the open segment`);
  }

  private expectedPart(rs: RenditionState, epoch: number): { msn: number; part: number } {
    const last = rs.window.last;
    if (last && last.epoch === epoch && last.duration === null) return { msn: last.msn, part: last.partCount };
    if (last && last.epoch === epoch) return { msn: last.msn + 1, part: 0 };
    return { msn: Number(this.getKv('epochStartMsn') ?? 1), part: 0 };
  }

  private announce(push: IngestPush, size: number): void {
    const rs = this.rendition(push.rendition);
    if (push.object.kind === 'init') {
      const { renditions, ...meta } = push.meta as InitMeta;
      rs.info = { name: push.rendition, ...meta };
      rs.initEpoch = push.epoch;
      if (renditions && this.epochSet?.epoch !== push.epoch) {
        this.epochSet = { epoch: push.epoch, names: renditions };
        this.putKv('epochRenditions', this.epochSet);
      }
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
      let seg = rs.window.last;
      if (!seg || seg.msn !== msn) {
        const previous = rs.newest;
        const discontinuity = previous !== null && previous.epoch !== push.epoch;
        seg = {
          msn,
          epoch: push.epoch,
          duration: null,
          programDateTime: meta.programDateTime,
          discontinuity,
          partCount: 0,
          parts: [],
          dsn: (previous?.dsn ?? 0) + (discontinuity ? 1 : 0),
          gap: false,
        };
        rs.window.push(seg);
        rs.newest = { msn, epoch: push.epoch, dsn: seg.dsn };
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
      if (meta.final) seg.partsComplete = true;
      this.sql.exec(
        'INSERT INTO parts (rendition, msn, idx, duration, independent, size) VALUES (?, ?, ?, ?, ?, ?)',
        rs.name,
        msn,
        part,
        meta.duration,
        meta.independent ? 1 : 0,
        size,
      );
      this.sql.exec('UPDATE segments SET part_count = ? WHERE rendition = ? AND msn = ?', seg.partCount, rs.name, msn);
      return;
    }
    const meta = push.meta as SegmentMeta;
    rs.window.closeLast(meta.duration);
    this.sql.exec('UPDATE segments SET duration = ? WHERE rendition = ? AND msn = ?', meta.duration, rs.name, rs.window.last!.msn);
  }

  /**
   * Keeps the live window to the DVR window, but never under 7 segments or 3 × TD (MUT-03).
   * Flat: a running total of the window's duration, and one segment's parts leave memory per call.
   */
  private trimWindow(rs: RenditionState): void {
    const windowSeconds = this.windowSeconds();
    const win = rs.window;
    while (win.length > MIN_WINDOW_SEGMENTS) {
      const first = win.first!;
      if (first.duration === null || win.completeSeconds - first.duration < windowSeconds) break;
      win.shift();
    }
    // Parts far from the live edge leave memory; the playlist lists them only near the edge.
    const stale = win.length - 1 - PARTS_IN_MEMORY_SEGMENTS;
    if (stale >= 0) win.at(stale)!.parts = null;
    this.saveWindow(rs);
  }

  private saveWindow(rs: RenditionState): void {
    const first = rs.window.first;
    // The window's first MSN and its DISCONTINUITY-SEQUENCE; an empty window starts after the newest.
    const win = first
      ? { first: first.msn, discSeq: first.dsn - (first.discontinuity ? 1 : 0) }
      : { first: (rs.newest?.msn ?? 0) + 1, discSeq: rs.newest?.dsn ?? 0 };
    this.putKv(`window:${rs.name}`, win);
  }

  /** Empties every live window (a new broadcast, or an ended stream whose last window expired). */
  private clearWindows(): void {
    for (const rs of this.renditions.values()) {
      if (rs.window.length === 0) continue;
      rs.window.clear();
      this.saveWindow(rs);
    }
  }

  // ---- playback ---------------------------------------------------------------------------

  /** Multivariant data: the renditions known for the stream. */
  async presentation(): Promise<{ status: 200; presentation: PresentationSnapshot } | RpcError> {
    this.playbackCalls.presentation();
    if (!this.config || this.deleted) return { status: 404, code: 'stream_not_found', message: 'no such stream' };
    const renditions: RenditionInfo[] = [];
    for (const rung of this.config.settings.ladder) {
      const rs = this.renditions.get(rung.name);
      // An ended stream whose window expired with its recording has nothing left to list.
      if (rs?.info && (rs.window.length > 0 || !this.ended) && this.inEpochSet(rung.name)) renditions.push(rs.info);
    }
    if (renditions.length === 0) return { status: 404, code: 'stream_not_live', message: 'the stream has not started yet' };
    return { status: 200, presentation: { streamId: this.config.streamId, renditions, ended: this.ended } };
  }

  /**
   * A media playlist snapshot, answered when the blocking directives are satisfied (LLHLS.md §1.8),
   * or 503 after 3 × TD (BR-09): never the unchanged playlist. With `start`, the playlist begins
   * at that point of the window (start-over) and says so with EXT-X-START.
   */
  async playlist(rendition: string, d: HlsDirectives, start?: StartAt): Promise<PlaylistResult> {
    this.playbackCalls.playlist(rendition);
    if (!this.config || this.deleted) return { status: 404, code: 'stream_not_found', message: 'no such stream' };
    const rs = this.renditions.get(rendition);
    if (!rs || rs.window.length === 0) {
      if (!this.ladderHas(rendition)) return { status: 404, code: 'rendition_not_found', message: `no rendition ${rendition}` };
      return { status: 404, code: 'stream_not_live', message: 'the stream has not started yet' };
    }
    const decision = decideBlockingReload(this.blockingState(rs), d);
    if (decision.action === 'reject') return { status: 400, code: decision.code, message: decision.message };
    if (decision.action === 'respond') return { status: 200, snapshot: this.snapshot(rs, d, start) };
    const ok = await this.waitFor(rendition, (r) => (decideBlockingReload(this.blockingState(r), d).action === 'respond' ? 'respond' : 'wait'), blockingTimeoutMs(this.timing()));
    if (!ok) return { status: 503, code: 'blocking_timeout', message: 'the requested part did not appear in time' };
    const now = this.renditions.get(rendition)!;
    if (now.window.length === 0) return { status: 404, code: 'stream_not_live', message: 'the stream has not started yet' };
    return { status: 200, snapshot: this.snapshot(now, d, start) };
  }

  /**
   * A viewer asked for a media object that R2 does not have (yet). A hinted or imminent part or
   * the open segment is waited for (PH-04); anything else is a 404 (PH-05).
   */
  async awaitMedia(rendition: string, epoch: number, object: MediaObject): Promise<{ status: 200 } | RpcError> {
    this.playbackCalls.mediaWait(rendition);
    const rs = this.renditions.get(rendition);
    const notFound: RpcError = { status: 404, code: 'not_found', message: 'no such media object' };
    if (!rs) return notFound;
    const state = (r: RenditionState): 'respond' | 'wait' | 'never' => {
      if (this.published(r, epoch, object)) return 'respond';
      if (this.ended || !this.lease || this.lease.epoch !== epoch || !this.inEpochSet(r.name)) return 'never';
      // The new epoch's init, hinted as a MAP (PH-02/PH-04): its transcoder pushes it first.
      if (object.kind === 'init') return 'wait';
      const expected = this.expectedPart(r, epoch);
      const apl = advancePartLimit(this.timing().partTarget);
      if (object.kind === 'segment') return object.msn <= expected.msn ? 'wait' : 'never';
      // The open segment's final part is out: no further part of it will ever exist (PH-05).
      const open = r.window.last;
      if (open && open.msn === object.msn && open.epoch === epoch && open.partsComplete && object.part >= open.partCount) return 'never';
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

  /** Playback calls answered since the object started, per rendition, against parts announced. */
  async playbackLoad(): Promise<PlaybackLoad> {
    return this.playbackCalls.snapshot();
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

  /** The latest thumbnail's R2 key, or the one at wall-clock `at` (ms) within the DVR window. */
  async thumbnail(at?: number): Promise<{ status: 200; key: string; programDateTime: number } | RpcError> {
    if (!this.config || this.deleted) return { status: 404, code: 'stream_not_found', message: 'no such stream' };
    let notBefore: number | null = null;
    if (at !== undefined) {
      // `?t=` reaches back as far as the DVR window does (the reference rendition's).
      const ref = this.renditions.get(this.renditionNames()[0]!);
      const first = ref?.window.first;
      if (!first) return { status: 404, code: 'thumbnail_not_found', message: 'no live window' };
      notBefore = first.programDateTime - 10_000;
      if (at < first.programDateTime) return { status: 404, code: 'thumbnail_not_found', message: 'that time is before the DVR window' };
    }
    const t = this.archive.thumbnail(at, notBefore);
    if (!t) return { status: 404, code: 'thumbnail_not_found', message: 'no thumbnail for that time' };
    return { status: 200, key: t.key, programDateTime: t.pdt };
  }

  // ---- recordings and clips -----------------------------------------------------------------

  /** The renditions (with their init metadata) a recording or clip plays in. */
  async vodPresentation(assetId: string): Promise<{ status: 200; presentation: PresentationSnapshot } | RpcError> {
    if (!this.config) return { status: 404, code: 'not_found', message: 'no such asset' };
    const state = this.archive.assetState(assetId);
    if ('status' in state) return state;
    const renditions: RenditionInfo[] = [];
    for (const name of state.renditions) {
      const info = this.renditions.get(name)?.info;
      if (info) renditions.push(info);
    }
    return { status: 200, presentation: { streamId: this.config.streamId, renditions, ended: true } };
  }

  async vodPlaylist(assetId: string, rendition: string): Promise<VodPlaylistResult> {
    if (!this.config) return { status: 404, code: 'not_found', message: 'no such asset' };
    return this.archive.vodPlaylist(assetId, rendition);
  }

  /**
   * Cuts a clip (at most 5 minutes) out of the stored media, also while the stream is live. An
   * end inside the open segment waits for that segment to close (≤ about 1.5 × TD), so a clip can
   * reach the live edge; `fromEdge` counts back from the end of the last published part.
   */
  async createClip(id: string, start: ClipPoint, end: ClipPoint, retentionDays?: number): Promise<{ status: 200; clip: ClipCreated } | RpcError | ArchiveError> {
    if (!this.config) return { status: 404, code: 'stream_not_found', message: 'no such stream' };
    const ref = this.renditions.get(this.renditionNames()[0]!);
    const edge = ref ? this.liveEdgeMs(ref) : null;
    if (edge === null && ('fromEdge' in start || 'fromEdge' in end)) {
      return { status: 422, code: 'clip_out_of_range', message: 'the stream has no live edge to count back from' };
    }
    const toMs = (p: ClipPoint) => ('at' in p ? p.at : edge! - p.fromEdge * 1000);
    const startMs = toMs(start);
    const endMs = toMs(end);
    if (ref && !this.ended) {
      const open = ref.window.last;
      if (open && open.duration === null && endMs > open.programDateTime) {
        // Every rendition closes that segment (each on its own pushes); wait for each in turn.
        const msn = open.msn;
        const closed = (r: RenditionState) => {
          const s = r.window.byMsn(msn);
          return (s !== undefined && s.duration !== null) || (r.window.last?.msn ?? 0) > msn;
        };
        for (const name of this.renditionNames()) {
          const rs = this.renditions.get(name);
          // A rendition without media in this broadcast or epoch (a rung the input cannot feed) never closes it.
          if (rs && rs.window.length > 0 && this.inEpochSet(name) && !closed(rs)) await this.waitFor(name, (r) => (closed(r) ? 'respond' : 'wait'), blockingTimeoutMs(this.timing()));
        }
      }
    }
    return this.archive.createClip(id, startMs, endMs, Date.now(), retentionDays);
  }

  // ---- snapshots --------------------------------------------------------------------------

  /**
   * What one response lists, read from the window by index: a delta update walks back from the
   * end only as far as the skip boundary, a start-over finds its first segment by binary search,
   * and only the listed segments are copied. So a blocking reload with `_HLS_skip` costs the same
   * for a 2-hour window as for a 1-minute one; only a full playlist is as long as its window.
   */
  private snapshot(rs: RenditionState, d: HlsDirectives, start?: StartAt): MediaPlaylistSnapshot {
    const timing = this.timing();
    const win = rs.window;
    const from = start === undefined || start === 'beginning' ? 0 : win.indexAtTime(start);
    // Delta updates only for a live playlist (DU-02); the DO sends only what the response lists.
    const skipped = d.skip && !this.ended ? computeSkip(win.view(from), timing) : 0;
    const listed = win.slice(from + skipped);
    const withParts = partsRetained(listed, timing);
    const segments: SegmentInfo[] = listed.map((s, i) => ({
      msn: s.msn,
      epoch: s.epoch,
      duration: s.duration,
      programDateTime: s.programDateTime,
      discontinuity: s.discontinuity,
      parts: i >= listed.length - withParts && s.parts ? s.parts : undefined,
      ...(s.partsComplete && s.duration === null ? { partsComplete: true } : {}),
      ...(s.gap ? { gap: true } : {}),
    }));
    const reports: RenditionReport[] = [];
    for (const other of this.renditions.values()) {
      // RR-03: every other playlist of the multivariant playlist, and only those.
      if (other.name !== rs.name && other.window.length > 0 && this.ladderHas(other.name) && this.inEpochSet(other.name)) {
        reports.push(this.report(other));
      }
    }
    const first = win.at(from)!;
    const snap: MediaPlaylistSnapshot = {
      streamId: this.config!.streamId,
      rendition: rs.name,
      timing,
      mediaSequence: first.msn,
      discontinuitySequence: first.dsn - (first.discontinuity ? 1 : 0),
      skippedSegments: skipped,
      segments,
      ended: this.ended,
      reports,
    };
    // The next part comes from a reconnected publisher: under its epoch, not the last segment's.
    const last = listed.at(-1);
    if (this.lease && !this.ended && last && last.duration !== null && last.epoch < this.lease.epoch) snap.nextEpoch = this.lease.epoch;
    // A rung this epoch's input cannot feed gets no media until a later epoch: hint nothing.
    if (!this.inEpochSet(rs.name)) snap.noMedia = true;
    if (start !== undefined) snap.startTimeOffset = 0;
    return snap;
  }

  private report(rs: RenditionState): RenditionReport {
    const last = rs.window.last;
    if (!last) return { rendition: rs.name, lastMsn: 0, lastPart: 0 };
    return { rendition: rs.name, lastMsn: last.msn, lastPart: Math.max(0, last.partCount - 1) };
  }

  private blockingState(rs: RenditionState): BlockingState {
    const last = rs.window.last;
    const lastComplete = last && last.duration !== null ? last : rs.window.at(-2);
    return {
      ended: this.ended,
      lastCompleteMsn: lastComplete?.msn ?? null,
      lastPartMsn: last?.msn ?? null,
      lastPartIndex: last ? last.partCount - 1 : null,
      partCountOf: (msn: number) => {
        const s = rs.window.byMsn(msn);
        return s && s.duration !== null ? s.partCount : null;
      },
      partTarget: this.timing().partTarget,
      targetDuration: this.timing().targetDuration,
    };
  }

  private published(rs: RenditionState, epoch: number, object: MediaObject): boolean {
    if (object.kind === 'init') return rs.initEpoch === epoch;
    const seg = rs.window.byMsn(object.msn);
    if (!seg || seg.epoch !== epoch || seg.gap) return false;
    if (object.kind === 'segment') return seg.duration !== null;
    return object.part < seg.partCount;
  }

  /** Wall-clock end of the last published part (or segment) of a rendition. */
  private liveEdgeMs(rs: RenditionState): number | null {
    const last = rs.window.last;
    if (!last) return null;
    if (last.duration !== null) return last.programDateTime + last.duration * 1000;
    let d = 0;
    for (const p of last.parts ?? []) d += p.duration;
    return last.programDateTime + d * 1000;
  }

  // ---- pipelined pushes ----------------------------------------------------------------

  private pushesOf(rendition: string): RenditionPushes {
    let p = this.pushes.get(rendition);
    if (!p) {
      p = { inProgress: 0, wakers: new Set() };
      this.pushes.set(rendition, p);
    }
    return p;
  }

  /** Resolves true at the rendition's next announcement (or lease change, or end), false at the deadline. */
  private nextAnnouncement(pushes: RenditionPushes, deadline: number): Promise<boolean> {
    return new Promise<boolean>((resolve) => {
      const wake = () => {
        clearTimeout(timer);
        pushes.wakers.delete(wake);
        resolve(true);
      };
      const timer = setTimeout(() => {
        pushes.wakers.delete(wake);
        resolve(false);
      }, Math.max(0, deadline - Date.now()));
      pushes.wakers.add(wake);
    });
  }

  /** Lets held pushes of a rendition (or all: a lease change, the end) check their turn again. */
  private wakeHeld(rendition: string | null): void {
    for (const [name, p] of this.pushes) {
      if (rendition !== null && name !== rendition) continue;
      for (const wake of [...p.wakers]) wake();
    }
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
    // Pushes that pass their checks from here on are refused (409, the publisher takes a new
    // lease); those announced before are all in the parts closeOpenSegments reads.
    this.ending = true;
    try {
      await this.closeOpenSegments();
    } finally {
      this.ending = false;
    }
    this.ended = true;
    this.idle = false;
    this.putKv('ended', true);
    this.putKv('idle', false);
    this.wake(null);
    this.wakeHeld(null);
    await this.setCatalogStatus('ended');
    const now = Date.now();
    const recording = await this.archive.finishRecording(this.nextMsn() - 1, now);
    this.emit('stream.ended', { streamId: this.config!.streamId, endedAt: new Date(now).toISOString(), recordingId: recording?.id ?? null });
  }

  /**
   * Closes every rendition's open segment from the parts it already has: the segment object is
   * the concatenation of its parts (PART-07), so nothing acknowledged is lost or renumbered.
   */
  private async closeOpenSegments(): Promise<void> {
    for (const rs of this.renditions.values()) {
      const seg = rs.window.last;
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
      // The segment's own push may be storing it right now (pipelined pushes): its write lands
      // first, and if that push closed the segment its bytes stay. A push of it arriving during
      // our write joins our write instead of overwriting it (see ingest()).
      const segKey = mediaObjectKey(streamId, seg.epoch, rs.name, { kind: 'segment', msn: seg.msn });
      await this.storing.get(segKey)?.catch(() => undefined);
      if (seg.duration !== null) continue;
      const write = this.env.MEDIA.put(segKey, joined, {
        httpMetadata: { contentType: rs.info?.kind === 'audio' ? 'audio/mp4' : 'video/iso.segment' },
      }).then(() => undefined);
      this.storing.set(segKey, write);
      try {
        await write;
      } finally {
        if (this.storing.get(segKey) === write) this.storing.delete(segKey);
      }
      // Other events ran while R2 worked: the segment may have been closed by its own push.
      if (seg.duration !== null) continue;
      duration = Math.round(duration * 1e6) / 1e6;
      seg.partCount = bodies.length;
      seg.parts = seg.parts?.slice(0, bodies.length) ?? null;
      if (rs.window.last === seg) rs.window.closeLast(duration);
      else seg.duration = duration;
      this.sql.exec(
        'UPDATE segments SET duration = ?, part_count = ? WHERE rendition = ? AND msn = ?',
        duration,
        seg.partCount,
        rs.name,
        seg.msn,
      );
    }
  }

  /**
   * Keeps every rendition on one media sequence: MSN n is the same stretch of media in each
   * (rendition reports and level switches rely on it), and a playlist never skips an MSN (its
   * segments are numbered by position, MUT-04). A rendition that lagged behind the others when a
   * publisher reconnected (its pushes of the old epoch were fenced off) would jump from its last
   * MSN to the new epoch's first; instead it gets EXT-X-GAP segments for the MSNs it lacks, with
   * the time, duration and discontinuity of a rendition that has them (SEG-04), so the
   * discontinuity sequences stay equal too (MV-08). They keep the rendition's own epoch: their
   * URIs are never fetched, and no MAP is written for an init this rendition does not have.
   * Called with the new epoch's first MSN, after every open segment was closed.
   */
  private fillGaps(nextMsn: number): void {
    const names = this.renditionNames();
    for (const rs of this.renditions.values()) {
      const last = rs.window.last;
      // An empty window has nothing to keep contiguous: its playlist starts with the new epoch.
      if (!last || last.duration === null || !this.ladderHas(rs.name)) continue;
      let previous = rs.newest ?? { msn: last.msn, epoch: last.epoch, dsn: last.dsn };
      for (let msn = last.msn + 1; msn < nextMsn; msn++) {
        let ref: SegmentRecord | undefined;
        for (const name of names) {
          const s = name === rs.name ? undefined : this.renditions.get(name)?.window.byMsn(msn);
          if (s && s.duration !== null && (!ref || (ref.gap && !s.gap))) ref = s;
        }
        // Older than every other window (a long epoch without this rung): the DVR index has it.
        const stored = ref
          ? null
          : this.sql
              .exec<{ duration: number; pdt: number; disc: number }>(
                'SELECT duration, pdt, disc FROM segments WHERE msn = ? AND rendition <> ? AND duration IS NOT NULL ORDER BY gap LIMIT 1',
                msn,
                rs.name,
              )
              .toArray()[0];
        if (!ref && !stored) break;
        const discontinuity = ref ? ref.discontinuity : stored!.disc === 1;
        const seg: SegmentRecord = {
          msn,
          epoch: previous.epoch,
          duration: ref ? ref.duration : stored!.duration,
          programDateTime: ref ? ref.programDateTime : stored!.pdt,
          discontinuity,
          partCount: 0,
          parts: [],
          dsn: previous.dsn + (discontinuity ? 1 : 0),
          gap: true,
        };
        rs.window.push(seg);
        previous = rs.newest = { msn, epoch: seg.epoch, dsn: seg.dsn };
        this.sql.exec(
          'INSERT INTO segments (rendition, msn, epoch, duration, pdt, disc, part_count, gap) VALUES (?, ?, ?, ?, ?, ?, 0, 1)',
          rs.name,
          msn,
          seg.epoch,
          seg.duration,
          seg.programDateTime,
          discontinuity ? 1 : 0,
        );
        this.trimWindow(rs);
      }
    }
  }

  /** The next epoch starts after the highest MSN any rendition has reached. */
  private nextMsn(): number {
    let max = Number(this.getKv('epochStartMsn') ?? 1) - 1;
    for (const rs of this.renditions.values()) max = Math.max(max, rs.newest?.msn ?? 0);
    // Media sequence numbers start at 1 (hls.js PR #8013).
    return Math.max(1, max + 1);
  }

  // ---- helpers ----------------------------------------------------------------------------

  private timing() {
    return playlistTiming(this.config!.settings);
  }

  /** The live window's length: the DVR window, but never under 3 × TD (MUT-03). */
  private windowSeconds(): number {
    return Math.max(this.config!.settings.dvrWindowSeconds, 3 * this.timing().targetDuration);
  }

  private graceMs(): number {
    return Number(this.env.END_GRACE_SECONDS ?? '10') * 1000;
  }

  private isLive(): boolean {
    return this.lease !== null && !this.ended;
  }

  private ladderHas(name: string): boolean {
    return this.config?.settings.ladder.some((r) => r.name === name) ?? false;
  }

  /** The ladder's renditions, the first video one first: it is the reference for times and durations. */
  private renditionNames(): string[] {
    const ladder = this.config?.settings.ladder ?? [];
    const names = ladder.map((r) => r.name);
    // A broadcast without video (an audio-only publisher) takes its times from its audio.
    const hasMedia = (name: string) => (this.renditions.get(name)?.window.length ?? 0) > 0;
    const ref =
      ladder.find((r) => r.kind === 'video' && hasMedia(r.name)) ?? ladder.find((r) => hasMedia(r.name)) ?? ladder.find((r) => r.kind === 'video');
    return ref ? [ref.name, ...names.filter((n) => n !== ref.name)] : names;
  }

  /**
   * A rendition belongs to the presentation of the current epoch: it is among the renditions its
   * transcoder declared (a rung the input cannot feed is left out of the multivariant playlist and
   * the rendition reports rather than advertised without media), or nothing was declared.
   */
  private inEpochSet(name: string): boolean {
    const set = this.epochSet;
    return !set || !this.lease || set.epoch !== this.lease.epoch || set.names.includes(name);
  }

  private liveFloorMsn(): number | null {
    let floor: number | null = null;
    for (const rs of this.renditions.values()) {
      const first = rs.window.first;
      if (first && (floor === null || first.msn < floor)) floor = first.msn;
    }
    return floor;
  }

  private rendition(name: string): RenditionState {
    let rs = this.renditions.get(name);
    if (!rs) {
      rs = { name, info: null, initEpoch: null, window: new SegmentWindow<SegmentRecord>(), newest: null };
      this.renditions.set(name, rs);
    }
    return rs;
  }

  /**
   * Sets the one alarm to the earliest of: the end of the grace period of a live stream (from
   * the last push; pushes do not re-arm it, the alarm re-checks) and the next retention sweep.
   */
  private async scheduleAlarm(force = false, soon?: number): Promise<void> {
    const now = Date.now();
    const times: number[] = [];
    if (this.isLive()) times.push((this.lastPushAt ?? now) + this.graceMs());
    const sweepAt = this.config ? this.archive.nextSweepAt(this.isLive(), now) : null;
    if (sweepAt !== null) times.push(sweepAt);
    if (soon !== undefined) times.push(soon);
    if (times.length === 0) {
      if (this.alarmAt !== null) await this.ctx.storage.deleteAlarm();
      this.alarmAt = null;
      return;
    }
    const at = Math.max(now, Math.min(...times));
    if (!force && this.alarmAt === at) return;
    this.alarmAt = at;
    await this.ctx.storage.setAlarm(at);
  }

  /** Sends a webhook event to the queue; delivery (signing, retries) happens in the Worker. */
  private emit(type: WebhookEventType, data: Record<string, unknown>): void {
    const queue = this.env.WEBHOOK_QUEUE;
    if (!queue) return;
    const event = newWebhookEvent(type, data);
    this.ctx.waitUntil(
      queue.send({ kind: 'event', event }).catch((err: unknown) => {
        console.error(JSON.stringify({ level: 'error', msg: 'webhook event not queued', type, error: String(err) }));
      }),
    );
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
    const version = Number(this.getKv('schema') ?? 1);
    if (version < 2) {
      // v2: part sizes (a clip ending mid-segment lists a byte range), the archive's tables.
      this.sql.exec('ALTER TABLE parts ADD COLUMN size INTEGER');
      StreamArchive.migrate(this.sql);
    }
    // v3: gap segments (EXT-X-GAP) of a rendition that has no media for an MSN the others have.
    if (version < 3) this.sql.exec('ALTER TABLE segments ADD COLUMN gap INTEGER NOT NULL DEFAULT 0');
    if (version < SCHEMA_VERSION) this.putKv('schema', SCHEMA_VERSION);
  }

  /** Rebuilds the in-memory model from SQLite after eviction or a restart. */
  private load(): void {
    this.config = (this.getKv('config') as StreamConfig | null) ?? null;
    this.lease = (this.getKv('lease') as Lease | null) ?? null;
    this.ended = this.getKv('ended') === true;
    this.idle = this.getKv('idle') === true;
    this.deleted = this.getKv('deleted') === true;
    this.lastPushAt = (this.getKv('lastPushAt') as number | null) ?? null;
    this.epochSet = (this.getKv('epochRenditions') as { epoch: number; names: string[] } | null) ?? null;
    for (const row of this.sql.exec<{ name: string; epoch: number; info: string }>('SELECT name, epoch, info FROM renditions')) {
      const rs = this.rendition(row.name);
      rs.info = JSON.parse(row.info) as RenditionInfo;
      rs.initEpoch = row.epoch;
    }
    for (const rs of this.renditions.values()) {
      const win = (this.getKv(`window:${rs.name}`) as { first: number | null; discSeq: number } | null) ?? null;
      let dsn = win?.discSeq ?? 0;
      const rows = this.sql
        .exec<{ msn: number; epoch: number; duration: number | null; pdt: number; disc: number; part_count: number; gap: number }>(
          'SELECT msn, epoch, duration, pdt, disc, part_count, gap FROM segments WHERE rendition = ? AND msn >= ? ORDER BY msn',
          rs.name,
          win?.first ?? 0,
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
      rs.newest = last ? { msn: last.msn, epoch: last.epoch, dsn: last.dsn } : newest ? { msn: newest.msn, epoch: newest.epoch, dsn } : null;
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
      }
    }
    // The alarm survives eviction; remember that one is set so pushes do not re-arm it.
    this.alarmAt = this.lease && !this.ended ? (this.lastPushAt ?? Date.now()) + this.graceMs() : null;
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

function predecessorMissing(message: string): RpcError {
  return { status: 503, code: 'predecessor_missing', message };
}

function outOfOrder(message: string): RpcError {
  return { status: 409, code: 'out_of_order', message };
}

function contentTypeOf(push: IngestPush): string {
  if (push.object.kind === 'init') return push.meta && (push.meta as InitMeta).kind === 'audio' ? 'audio/mp4' : 'video/mp4';
  return 'video/iso.segment';
}
