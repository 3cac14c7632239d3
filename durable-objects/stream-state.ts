// StreamState: one Durable Object per live stream, the single writer of its live model (the lease
// and its epoch, the DVR window per rendition) and its lifecycle. A shell: rules in core/live,
// SQLite in stream-store.ts, R2 in stream-media.ts, the viewers' side (snapshots, blocked requests)
// in stream-playback.ts, recordings and clips in stream-archive.ts. It never renders playlist text.
import { DurableObject } from 'cloudflare:workers';
import type { Env } from '../workers/env.ts';
import type { MediaObject } from '../core/contracts/object-keys.ts';
import type { RpcError } from '../core/contracts/rpc-error.ts';
import * as Rpc from '../core/contracts/stream-rpc.ts';
import type { SignedRequest } from '../core/contracts/ingest-protocol.ts';
import { ReplayGuard, admitStored, replayRefusal } from '../core/auth/replay-guard.ts';
import { playlistTiming } from '../core/contracts/stream-config.ts';
import type { HlsDirectives } from '../core/playlist/blocking.ts';
import { announcedSpan, closeAssembled, openSegments } from '../core/live/end-assembly.ts';
import { startEpoch } from '../core/live/epoch-start.ts';
import { clipTimes } from '../core/live/clip-cut.ts';
import { streamStatus, thumbnailFloor } from '../core/live/live-snapshot.ts';
import * as Push from '../core/live/push-rules.ts';
import {
  alarmTime,
  exists,
  hasEnded,
  isOnAir,
  leaseOutcome,
  leaseRefusal,
  nextPhase,
  pushRefusal,
  type PhaseEvent,
  type StreamPhase,
} from '../core/live/stream-phase.ts';
import { ladderHas, liveEdgeMs, liveFloorMsn, newLiveModel, nextMsn, referenceOrder, type Lease } from '../core/live/stream-model.ts';
import { HeldPushes } from '../core/live/waiters.ts';
import { clearWindows, windowSeconds } from '../core/live/window-trim.ts';
import { StreamArchive } from './stream-archive.ts';
import { StreamMedia } from './stream-media.ts';
import { StreamNotices } from './stream-notices.ts';
import { StreamPlayback } from './stream-playback.ts';
import { StreamStore } from './stream-store.ts';
import { PlaybackLoadCounters } from './playback-load.ts';
import type { PlaybackLoad } from '../core/contracts/live-model.ts';

const NOT_FOUND = Rpc.STREAM_NOT_FOUND;

export class StreamState extends DurableObject<Env> {
  private readonly store: StreamStore;
  private readonly media: StreamMedia;
  private readonly notices: StreamNotices;
  private readonly playback: StreamPlayback;
  private readonly archive: StreamArchive;
  private config: Rpc.StreamConfig | null = null;
  private phase: StreamPhase = 'idle';
  private lease: Lease | null = null;
  private lastPushAt: number | null = null;
  private model = newLiveModel();
  /** The end of the broadcast in progress (one at a time: the alarm and a delete may both ask). */
  private ending: Promise<void> | null = null;
  private alarmAt: number | null = null;
  private readonly held = new HeldPushes();
  private readonly replays = new ReplayGuard();
  /** Playback calls per rendition against parts announced (the stats route's `origin`). */
  private readonly playbackCalls = new PlaybackLoadCounters();

  constructor(ctx: DurableObjectState, env: Env) {
    super(ctx, env);
    this.store = new StreamStore(ctx.storage.sql);
    this.media = new StreamMedia(env.MEDIA, () => this.config!.streamId);
    this.notices = new StreamNotices(env, ctx, this.store, () => this.scheduleAlarm(true));
    this.playback = new StreamPlayback(() => ({
      config: this.config,
      phase: this.phase,
      leaseEpoch: this.lease?.epoch ?? null,
      model: this.model,
    }));
    this.archive = new StreamArchive({
      sql: ctx.storage.sql,
      media: env.MEDIA,
      db: env.DB,
      streamId: () => this.config!.streamId,
      retentionDays: () => this.config!.settings.retentionDays,
      windowSeconds: () => this.windowSeconds(),
      targetDuration: () => this.timing().targetDuration,
      renditionNames: () => this.order(),
      liveFloorMsn: () => liveFloorMsn(this.model),
      clearLiveWindows: () => this.store.apply(clearWindows(this.model)),
      emit: (type, data) => this.notices.emit(type, data),
    });
    // Migrations and the load of the live window run before any event is delivered.
    ctx.blockConcurrencyWhile(async () => {
      this.store.migrate();
      ({ config: this.config, phase: this.phase, lease: this.lease, lastPushAt: this.lastPushAt, model: this.model } = this.store.load());
      // The alarm survives eviction; remember that one is set so pushes do not re-arm it.
      this.alarmAt = isOnAir(this.phase) ? (this.lastPushAt ?? Date.now()) + this.graceMs() : null;
    });
  }

  // ---- lifecycle: configure, lease, stop, delete, the alarm ---------------------------------

  /** Called by the admin API when the stream is created or its settings change. */
  async configure(config: Rpc.StreamConfig): Promise<void> {
    this.config = config;
    this.store.putConfig(config);
    this.transition('configure');
  }

  /**
   * Takes the ingest lease (unless leaseRefusal: the takeover policy): a new epoch fences off every push of the previous
   * one, whose open segments are closed so nothing acknowledged is lost; the new epoch continues the media sequence
   * after them. After an end, a lease starts a new broadcast (window and recording).
   */
  async acquireLease({ nodeId, region, continues }: Rpc.LeaseRequest, signed: SignedRequest): Promise<Rpc.LeaseResult> {
    const outcome = leaseOutcome(this.phase);
    if (!this.config || !outcome) return NOT_FOUND;
    const now = Date.now();
    const busy = leaseRefusal({
      policy: this.config.settings.takeover,
      phase: this.phase,
      lastPushAt: this.lastPushAt,
      holder: this.lease,
      nodeId,
      continues,
      quietSeconds: this.env.TAKEOVER_QUIET_SECONDS,
      now,
    });
    if (busy) return busy;
    // A replayed authorize would take the lease: its nonce is stored (leases are rare; it must survive a restart).
    const nonces = admitStored(this.store.authorizeNonces(), signed, now);
    if (nonces === 'replayed') return replayRefusal(nonces)!;
    this.store.putAuthorizeNonces(nonces);
    const epoch = (this.lease?.epoch ?? this.store.lastEpoch()) + 1;
    this.lease = { epoch, nodeId, region, acquiredAt: now };
    this.lastPushAt = now;
    this.store.putLease(this.lease);
    this.transition('lease');
    // Held pushes of the previous epoch are refused (stale epoch) instead of waiting their turn.
    this.held.wake(null);
    await this.closeOpenSegments();
    const { startMsn, timeOffset, changes } = startEpoch(this.model, {
      newBroadcast: outcome.newBroadcast,
      ladder: this.config.settings.ladder,
      windowSeconds: this.windowSeconds(),
      previousOffset: this.store.epochTimeOffset(),
      previousMediaSeconds: (rendition) => this.store.epochMediaSeconds(rendition, epoch - 1),
      storedSegment: (msn, except) => this.store.storedSegment(msn, except),
    });
    this.store.apply(changes);
    this.store.putEpochStart(startMsn, timeOffset);
    const recordingId = outcome.newBroadcast ? await this.archive.startRecording(startMsn, now) : this.archive.openRecording()?.id;
    if (outcome.announceLive) this.notices.live(this.config.streamId, epoch, !outcome.newBroadcast, recordingId ?? null);
    await this.scheduleAlarm();
    await this.notices.catalogStatus(this.config.streamId, 'live');
    return { epoch, startMsn, timeOffset };
  }

  /** A publisher said it stopped: the stream ends after the grace period unless it comes back. */
  async publisherStopped(epoch: number, signed: SignedRequest): Promise<{ status: 200 } | RpcError> {
    const refused = this.admit(signed);
    if (refused) return refused;
    if (!this.lease || this.lease.epoch !== epoch) return Push.staleEpoch(epoch);
    this.lastPushAt = Date.now() - this.graceMs() + 1000;
    this.store.putLastPushAt(this.lastPushAt);
    const from = this.phase;
    // stream.idle goes out once, when a live stream goes quiet.
    if (this.transition('stop') && from === 'live')
      this.notices.idle(this.config!.streamId, epoch, this.graceMs() / 1000, 'publisher_stopped');
    await this.scheduleAlarm(true);
    return { status: 200 };
  }

  /** The key was rotated: its session's pushes are refused (409 `lease_revoked`); the stream ends after the grace period unless a publisher with the new key takes the lease (it may at once). */
  async revokeLease(): Promise<{ revokedEpoch: number | null }> {
    const from = this.phase;
    if (!this.lease || from === 'revoked' || !this.transition('revoke')) return { revokedEpoch: null };
    this.lastPushAt = Date.now();
    this.store.putLastPushAt(this.lastPushAt);
    this.held.wake(null); // its held pushes are refused now, not at their deadline
    if (from === 'live') this.notices.idle(this.config!.streamId, this.lease.epoch, this.graceMs() / 1000, 'key_rotated');
    await this.scheduleAlarm(true);
    return { revokedEpoch: this.lease.epoch };
  }

  /** The stream was deleted: end its broadcast, if one is on, and refuse every further call. */
  async terminate(): Promise<void> {
    const from = this.phase;
    if (this.transition('delete') && isOnAir(from)) await this.endStream();
  }

  /** One alarm for two timers: the end of a broadcast gone quiet and the retention sweep. */
  override async alarm(): Promise<void> {
    this.alarmAt = null;
    if (!this.config) return;
    await this.notices.flush();
    if (nextPhase(this.phase, 'end') !== null && Date.now() >= (this.lastPushAt ?? 0) + this.graceMs()) await this.endStream();
    await this.sweep();
  }

  /** Runs the retention sweep now (or as of `now`): what the alarm does, callable by tests and operators. */
  async sweep(now = Date.now()): Promise<{ more: boolean }> {
    if (!this.config) return { more: false };
    const more = await this.archive.sweep(now, isOnAir(this.phase));
    await this.scheduleAlarm(true, more ? Date.now() + 1000 : undefined);
    return { more };
  }

  // ---- ingest -------------------------------------------------------------------------------

  /**
   * Stores one pushed object in R2, then announces it (PART-11). A pipelined push that arrives
   * before its predecessor is stored and held, unannounced, until the predecessor is announced,
   * so an acknowledgement still means "durable and announced" (core/live/push-rules.ts); 503 if
   * the predecessor never comes, 409 at once on a new lease or the end of the stream.
   */
  async ingest(push: Rpc.IngestPush, body: ArrayBuffer, signed: SignedRequest): Promise<Rpc.IngestResult> {
    const refused = this.admit(signed);
    if (refused) return refused;
    const check = this.decide(push);
    if (check !== 'store' && check !== 'ahead') return check;
    if (check === 'ahead' && this.held.inProgress(push.rendition) >= Push.MAX_PUSHES_IN_PROGRESS) {
      return Push.predecessorMissing(`more than ${Push.MAX_PUSHES_IN_PROGRESS} pushes of ${push.rendition} in progress`);
    }
    // A retry of a push whose bytes are still being stored (or are stored and held) joins that write.
    const { key, write } = this.media.storePush(push, body);
    this.held.begin(push.rendition);
    try {
      await write;
      // Other events ran while R2 stored the bytes: check again, and wait for the predecessor.
      const deadline = Date.now() + Push.PREDECESSOR_WAIT_MS;
      let verdict = this.decide(push);
      while (verdict === 'ahead') {
        if (!(await this.held.nextAnnouncement(push.rendition, deadline)))
          return Push.predecessorMissing(`the push before ${key} did not arrive in time`);
        verdict = this.decide(push);
      }
      if (verdict !== 'store') return verdict;
      this.store.apply(Push.announcePush(this.model, push, body.byteLength, this.windowSeconds()));
      if (push.kind === 'part') this.playbackCalls.partAnnounced(push.rendition);
      this.lastPushAt = Date.now();
      this.held.wake(push.rendition);
      this.playback.wake(push.rendition);
      if (this.alarmAt === null || this.alarmAt > this.lastPushAt + this.graceMs()) await this.scheduleAlarm();
      return { status: 201 };
    } finally {
      this.held.end(push.rendition);
      this.media.release(key, write);
    }
  }

  /** A thumbnail of the top rendition (JPEG), pushed by the transcoder every few seconds. */
  async ingestThumbnail(
    epoch: number,
    seq: number,
    programDateTime: number,
    body: ArrayBuffer,
    signed: SignedRequest,
  ): Promise<Rpc.IngestResult> {
    const refused = this.admit(signed);
    if (refused) return refused;
    if (!this.lease || epoch !== this.lease.epoch) return Push.staleEpoch(epoch);
    if (hasEnded(this.phase)) return Push.streamEnded();
    await this.media.putThumbnail(epoch, seq, body);
    if (!this.lease || epoch !== this.lease.epoch) return Push.staleEpoch(epoch);
    return this.archive.addThumbnail(epoch, seq, programDateTime) ? { status: 201 } : { status: 200, duplicate: true };
  }

  // ---- playback -----------------------------------------------------------------------------

  /** Multivariant data: the renditions of the current epoch. */
  async presentation(): Promise<Rpc.PresentationResult> {
    this.playbackCalls.presentation();
    return this.playback.presentation();
  }

  /**
   * A media playlist snapshot, answered when the blocking directives are satisfied (LLHLS.md §1.8),
   * or 503 after 3 × TD (BR-09): never the unchanged playlist. With `start`, the playlist begins
   * at that point of the window (start-over) and says so with EXT-X-START.
   */
  async playlist(rendition: string, d: HlsDirectives, start?: Rpc.StartAt): Promise<Rpc.PlaylistResult> {
    this.playbackCalls.playlist(rendition);
    return this.playback.playlist(rendition, d, start);
  }

  /** A viewer asked for a media object that R2 does not have (yet): held while it is coming (PH-04). */
  async awaitMedia(rendition: string, epoch: number, object: MediaObject): Promise<{ status: 200 } | RpcError> {
    this.playbackCalls.mediaWait(rendition);
    return this.playback.awaitMedia(rendition, epoch, object);
  }

  /** Playback calls answered since the object started, per rendition, against parts announced. */
  async playbackLoad(): Promise<PlaybackLoad> {
    return this.playbackCalls.snapshot();
  }

  /** How many parts a closed segment has, for the edge joining them (stream-playback.ts); held while it is open. */
  async segmentParts(rendition: string, epoch: number, msn: number): Promise<Rpc.SegmentPartsResult> {
    return this.playback.segmentParts(rendition, epoch, msn, () => this.store.closedSegmentParts(rendition, epoch, msn));
  }

  async status(): Promise<Rpc.StreamStatus | null> {
    return this.config && streamStatus(this.model, this.config.settings.ladder, this.phase, this.lease, this.lastPushAt);
  }

  /** The latest thumbnail's R2 key, or the one at wall-clock `at` (ms) within the DVR window. */
  async thumbnail(at?: number): Promise<Rpc.ThumbnailResult> {
    if (!this.config || !exists(this.phase)) return NOT_FOUND;
    const floor = at === undefined ? { notBefore: null } : thumbnailFloor(this.model, this.order()[0], at);
    if ('code' in floor) return floor;
    const t = this.archive.thumbnail(at, floor.notBefore);
    if (!t) return { status: 404, code: 'thumbnail_not_found', message: 'no thumbnail for that time' };
    return { status: 200, key: t.key, programDateTime: t.pdt };
  }

  // ---- recordings and clips -------------------------------------------------------------------

  /** The renditions (with their init metadata) a recording or clip plays in. */
  async vodPresentation(assetId: string): Promise<Rpc.PresentationResult> {
    if (!this.config) return { status: 404, code: 'not_found', message: 'no such asset' };
    return this.archive.vodPresentation(assetId, (name) => this.model.renditions.get(name)?.info);
  }

  async vodPlaylist(assetId: string, rendition: string): Promise<Rpc.VodPlaylistResult> {
    if (!this.config) return { status: 404, code: 'not_found', message: 'no such asset' };
    return this.archive.vodPlaylist(assetId, rendition);
  }

  /**
   * Cuts a clip (at most 5 minutes) out of the stored media, also while the stream is live. An
   * end inside the open segment waits for that segment to close (≤ about 1.5 × TD), so a clip can
   * reach the live edge; `fromEdge` counts back from the end of the last published part.
   */
  async createClip(id: string, start: Rpc.ClipPoint, end: Rpc.ClipPoint, retentionDays?: number): Promise<Rpc.ClipResult> {
    if (!this.config) return NOT_FOUND;
    const ref = this.model.renditions.get(this.order()[0]!);
    const times = clipTimes(ref ? liveEdgeMs(ref) : null, start, end);
    if ('code' in times) return times;
    const open = ref && !hasEnded(this.phase) ? ref.window.last : undefined;
    if (open && open.duration === null && times.endMs > open.programDateTime) await this.playback.segmentClosed(open.msn);
    return this.archive.createClip(id, times.startMs, times.endMs, Date.now(), retentionDays);
  }

  // ---- the end of a broadcast ---------------------------------------------------------------

  private endStream(): Promise<void> {
    this.ending ??= this.closeBroadcast().finally(() => (this.ending = null));
    return this.ending;
  }

  /** Closes the open segments, then the playlists end, waiting requests are answered, the recording is made. */
  private async closeBroadcast(): Promise<void> {
    const from = this.phase;
    // From here on pushes are refused (409: the publisher takes a new lease); those announced
    // before are all in the parts closeOpenSegments reads.
    if (!this.transition('end')) return;
    try {
      await this.closeOpenSegments();
    } catch (err) {
      if (this.phase === 'ending') this.phase = from;
      throw err;
    }
    // A publisher took the lease meanwhile: the broadcast goes on.
    if (!this.transition('ended')) return;
    this.playback.wake(null);
    this.held.wake(null);
    const now = Date.now();
    const recording = await this.archive.finishRecording(nextMsn(this.model) - 1, now);
    this.notices.ended(this.config!.streamId, now, recording?.id ?? null);
    await this.notices.catalogStatus(this.config!.streamId, 'ended');
  }

  /** Closes every rendition's open segment from the parts it announced (core/live/end-assembly.ts). */
  private async closeOpenSegments(): Promise<void> {
    for (const { rs, segment } of openSegments(this.model)) {
      const assembled = announcedSpan(this.store.partsOf(rs.name, segment.msn));
      const change = assembled && closeAssembled(rs, segment, assembled.partCount, assembled.seconds);
      if (change) this.store.apply([change]);
    }
  }

  // ---- helpers ------------------------------------------------------------------------------

  /** A signed ingest request may proceed: the stream exists and its nonce is fresh (replay-guard.ts: in memory, no write per push). */
  private admit(signed: SignedRequest): RpcError | null {
    return !this.config || !exists(this.phase) ? NOT_FOUND : replayRefusal(this.replays.admit(signed, Date.now()));
  }

  /** Moves to the phase `event` leads to (stored, but for the transient `ending`); false when it does not apply. */
  private transition(event: PhaseEvent): boolean {
    const next = nextPhase(this.phase, event);
    if (next === null) return false;
    if (next !== this.phase && next !== 'ending') this.store.putPhase(next);
    this.phase = next;
    return true;
  }

  private decide(push: Rpc.IngestPush) {
    const ctx = { leaseEpoch: this.lease?.epoch ?? null, refusal: pushRefusal(this.phase), inLadder: this.inLadder(push.rendition) };
    return Push.decidePush(this.model, ctx, push);
  }

  private timing() {
    return playlistTiming(this.config!.settings);
  }

  private windowSeconds(): number {
    return windowSeconds(this.config!.settings.dvrWindowSeconds, this.timing().targetDuration);
  }

  private graceMs(): number {
    return Number(this.env.END_GRACE_SECONDS ?? '10') * 1000;
  }

  private inLadder(name: string): boolean {
    return ladderHas(this.config?.settings.ladder ?? [], name);
  }

  private order(): string[] {
    return referenceOrder(this.model, this.config?.settings.ladder ?? []);
  }

  /** Sets the one alarm (stream-phase.ts, alarmTime); `force` sets it even when unchanged. */
  private async scheduleAlarm(force = false, soon?: number): Promise<void> {
    const now = Date.now();
    const sweepAt = this.config ? this.archive.nextSweepAt(isOnAir(this.phase), now) : null;
    const retryAt = this.notices.nextAttemptAt();
    const at = alarmTime({ phase: this.phase, lastPushAt: this.lastPushAt, graceMs: this.graceMs(), sweepAt, retryAt, soon, now });
    // Remember it before the storage call: pushes meanwhile see it set and do not set it again.
    const previous = this.alarmAt;
    this.alarmAt = at;
    if (at === null) {
      if (previous !== null) await this.ctx.storage.deleteAlarm();
    } else if (force || previous !== at) await this.ctx.storage.setAlarm(at);
  }
}
