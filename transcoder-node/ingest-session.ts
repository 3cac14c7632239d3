// One publisher's pipeline: the media of a Publisher (RTMP, SRT or WHIP; publisher.ts) into
// ffmpeg's ABR ladder, each rendition's fMP4 output through a CmafChunker into an ordered uploader
// that pushes to the origin. Ends the stream cleanly (the origin adds ENDLIST after its grace
// period) whatever stops first. The ladder starts once the input's tracks are known (from the
// protocol's signalling, or read from the first bytes): rungs it cannot feed (audio for a
// publisher without audio, video for an audio-only one) are left out of the session. A stream on
// the automatic ladder also waits for the source's picture size (metadata or SPS), which picks its
// preset (core/contracts/stream-config.ts).
import { pipeline, type Readable } from 'node:stream';
import type { AuthorizeResponse } from '../core/contracts/ingest-protocol.ts';
import { mediaFileName } from '../core/contracts/object-keys.ts';
import { presetForSource, presetRungs, rungBandwidth, type LadderPresetName, type LadderRung } from '../core/contracts/stream-config.ts';
import type { Publisher } from './publisher.ts';
import { CmafChunker } from './cmaf/chunker.ts';
import { parseInit, type InitInfo } from '../core/cmaf/fmp4.ts';
import { shiftFragmentTimes } from './cmaf/timeline.ts';
import { patchFlvHeaderFlags, rungsFor, trackProbe, type TrackDecision } from './input-tracks.ts';
import { LadderProcess } from './ladder.ts';
import { sizeProbe, type SourceSize } from './source-resolution.ts';
import type { VideoEncoders } from './video-encoders.ts';
import type { RealtimeOutputOptions } from './realtime-output.ts';
import type { Logger } from './log.ts';
import type { Metrics } from './metrics.ts';
import type { OriginClient, OriginError } from './origin-client.ts';
import { MpjpegSplitter } from './thumbnails.ts';
import { RenditionUploader } from './uploader.ts';

export interface SessionOptions {
  /** Who publishes: its lease, its media and container, how to drop it. */
  publisher: Publisher;
  origin: OriginClient;
  logger: Logger;
  metrics: Metrics;
  /** Called once the session has fully stopped. */
  onClosed: (reason: string) => void;
  /** Seconds between thumbnails of the top rendition; 0 or absent: none. */
  thumbnailIntervalSeconds?: number;
  /** The previous design, kept for `bench:cost` only: segment pushes carry the segment's bytes again (a second R2 write of every media byte). */
  segmentCopy?: boolean;
  /** Each `-progress` block of the ladder's ffmpeg (the encoder watch of overload.ts). */
  onProgress?: (progress: Record<string, string>) => void;
  /** The node's video encoders (video-encoders.ts); default libx264/libx265. */
  encoders?: VideoEncoders;
  /** Told the rungs a stream on the automatic ladder resolved to (before its tracks filter them). */
  onLadder?: (ladder: LadderRung[]) => void;
  /** The stream's real-time feed (WHEP), when it has one: the ladder adds its outputs (null: none could open). */
  realtime?: Promise<RealtimeOutputOptions | null>;
}

export class IngestSession {
  readonly streamId: string;
  readonly epoch: number;
  private readonly opts: SessionOptions & { lease: AuthorizeResponse };
  private readonly log: Logger;
  /** Null while the input's tracks are being read (and when no rung could be fed). */
  private ladder: LadderProcess | null = null;
  private readonly uploaders = new Map<string, RenditionUploader>();
  private stopping: string | null = null;
  /**
   * Set when the publisher goes on in a new session (its ladder restarted with other rungs): the
   * origin is not told that the publisher stopped, as the next lease follows at once.
   */
  continued = false;
  /** Wall-clock time at media time zero: PROGRAM-DATE-TIME = this + media time. */
  private readonly wallClockAtZero: number;
  readonly startedAt = Date.now();
  /** Resolves with the reason once the session has stopped and flushed its pushes. */
  readonly closed: Promise<string>;
  private resolveClosed!: (reason: string) => void;

  constructor(opts: SessionOptions) {
    this.opts = { ...opts, lease: opts.publisher.lease };
    this.closed = new Promise((resolve) => (this.resolveClosed = resolve));
    this.streamId = opts.publisher.lease.streamId;
    this.epoch = opts.publisher.lease.epoch;
    this.log = opts.logger.child({ streamId: this.streamId, epoch: this.epoch, protocol: opts.publisher.protocol });
    this.wallClockAtZero = Date.now();
    opts.publisher.media.on('end', () => this.log.info('publisher stream ended'));
    void Promise.all([this.readTracks(), opts.realtime ?? null]).then(([{ decision, size, head, ended }, realtime]) =>
      this.start(decision, this.resolveLadder(size), head, ended, realtime),
    );
  }

  /**
   * Reads the input until its tracks are known (usually its first tag or table: metadata or a
   * PMT; at most about a second of media). Resolves with the bytes read, which ffmpeg gets first.
   */
  private readTracks(): Promise<{ decision: TrackDecision; size: SourceSize | null; head: Buffer; ended: boolean }> {
    const { media: input, container, tracks } = this.opts.publisher;
    const sizes = this.opts.lease.ladderPreset === 'auto' ? sizeProbe(container) : null;
    // The protocol's signalling already said (WHIP's SDP): nothing to read first.
    if (tracks && !sizes)
      return Promise.resolve({ decision: { tracks, source: 'signalling' }, size: null, head: Buffer.alloc(0), ended: false });
    const probe = trackProbe(container);
    const head: Buffer[] = [];
    return new Promise((resolve) => {
      let ended = false;
      let decision: TrackDecision | null = tracks ? { tracks, source: 'signalling' } : null;
      let size: SourceSize | null = null;
      const done = (d: TrackDecision) => {
        clearTimeout(timer);
        input.off('data', onData);
        input.off('end', onEnd);
        input.off('close', onEnd);
        if (!ended) input.pause();
        resolve({ decision: d, size, head: Buffer.concat(head), ended });
      };
      // The size matters only with video; its SPS comes with the first keyframe, before which
      // the ladder's ffmpeg could not encode anything anyway.
      const sized = () => !sizes || sizes.done || (decision !== null && !decision.tracks.video);
      const onData = (chunk: Buffer) => {
        head.push(chunk);
        decision ??= probe.push(chunk);
        if (sizes && !sizes.done) size = sizes.push(chunk);
        if (decision && sized()) done(decision);
      };
      const onEnd = () => {
        ended = true;
        done(decision ?? probe.end());
      };
      // A publisher that sends almost nothing is not waited for forever: decide from what came.
      const timer = setTimeout(() => done(decision ?? probe.end()), TRACK_PROBE_TIMEOUT_MS);
      input.on('data', onData);
      input.once('end', onEnd);
      input.once('close', onEnd);
    });
  }

  /** The lease's ladder, or on `auto` the rungs of the source's preset (720p when its size is not known). */
  private resolveLadder(size: SourceSize | null): LadderRung[] {
    const ladder = this.opts.lease.ladder as LadderRung[];
    if (this.opts.lease.ladderPreset !== 'auto') return ladder;
    const preset: LadderPresetName = size ? presetForSource(size.width, size.height) : '720p';
    const rungs = presetRungs(ladder, preset);
    if (size)
      this.log.info('ladder preset', {
        preset,
        source: `${size.width}x${size.height}`,
        from: size.from,
        renditions: rungs.map((r) => r.name),
      });
    else
      this.log.info('ladder preset: the source size is not known; using the 720p preset', {
        preset,
        container: this.opts.publisher.container,
      });
    const chosen = rungs.length > 0 ? rungs : ladder;
    this.opts.onLadder?.(chosen);
    return chosen;
  }

  private start(
    decision: TrackDecision,
    resolved: LadderRung[],
    head: Buffer,
    inputEnded: boolean,
    realtime: RealtimeOutputOptions | null,
  ): void {
    const opts = this.opts;
    const input = opts.publisher.media;
    const { partTarget, segmentTarget, fps } = opts.lease;
    const ladder = rungsFor(resolved, decision.tracks);
    const skipped = resolved.filter((r) => !ladder.includes(r)).map((r) => r.name);
    this.log.info('input tracks', { ...decision.tracks, source: decision.source, renditions: ladder.map((r) => r.name), skipped });
    if (this.stopping) {
      input.resume();
      return;
    }
    if (ladder.length === 0) {
      input.resume();
      void this.stop('the input has no track the ladder can use');
      return;
    }
    const interval = opts.thumbnailIntervalSeconds ?? 0;
    this.ladder = new LadderProcess({
      args: {
        input: 'pipe:0',
        inputFormat: opts.publisher.container,
        ladder,
        partTarget,
        segmentTarget,
        fps,
        ...(interval > 0 ? { thumbnails: { intervalSeconds: interval } } : {}),
        ...(opts.encoders ? { encoders: opts.encoders } : {}),
        ...(realtime ? { realtime } : {}),
      },
      logger: this.log,
      onProgress: opts.onProgress,
    });
    const names = ladder.map((r) => r.name);
    for (const [i, rung] of ladder.entries()) this.wireRendition(rung, this.ladder.outputs[i]!, names);
    if (this.ladder.thumbnails) this.wireThumbnails(this.ladder.thumbnails, interval);
    // The bytes read to learn the tracks go first. The FLV header says which tracks there are, so
    // ffmpeg's probe does not wait a second for a track that never comes.
    if (opts.publisher.container === 'flv') patchFlvHeaderFlags(head, decision.tracks);
    const stdin = this.ladder.stdin;
    if (head.byteLength > 0) stdin.write(head);
    if (inputEnded) stdin.end();
    // pipeline() carries back-pressure from ffmpeg's stdin to the publisher's socket, and a broken
    // stdin ends the publisher's session instead of throwing.
    else {
      pipeline(input, stdin, (err) => {
        if (err && !this.stopping) this.log.warn('ffmpeg stdin closed', { error: err });
      });
    }
    void this.ladder.exited.then(({ code, signal }) => {
      if (!this.stopping) this.log.warn('ffmpeg exited', { code, signal });
      void this.finish(this.stopping ?? (code === 0 ? 'publisher ended' : `ffmpeg exited (${code ?? signal})`));
    });
    this.log.info('ingest session started', {
      renditions: names,
      startMsn: opts.lease.startMsn,
      container: opts.publisher.container,
      remote: opts.publisher.remoteAddress,
      realtime: realtime !== null,
    });
    // A WebRTC encoder sends a keyframe when asked: the ladder's first segment need not wait for
    // the encoder's next one (browsers send them rarely).
    opts.publisher.requestKeyframe?.();
  }

  private wireRendition(rung: LadderRung, output: Readable, renditions: string[]): void {
    const { origin, metrics } = this.opts;
    const log = this.log.child({ rendition: rung.name });
    const uploader = new RenditionUploader({
      logger: log,
      send: (job) => origin.push(this.streamId, this.epoch, rung.name, job.file, job.bytes, job.meta),
      onFatal: (err: OriginError) => {
        if (err.code === 'stale_epoch') void this.stop('another ingest took the stream over');
        else if (err.code === 'lease_revoked') void this.stop('the stream key was rotated: this session is over');
        else void this.stop(`origin refused a push: ${err.code}`);
      },
      onAck: (job, ms) =>
        metrics.pushAcked(
          job.file.includes('.') && job.file.split('.').length === 3 ? 'part' : 'other',
          ms,
          job.bytes.byteLength,
          job.file,
        ),
    });
    this.uploaders.set(rung.name, uploader);
    // ffmpeg starts every output's tfdt at 0: one time origin keeps all renditions on one segment grid.
    // The ladder forces a keyframe every segment target in every rung, so a segment closes with
    // its final part and the origin never hints a part that will not exist.
    const chunker = new CmafChunker({
      startMsn: this.opts.lease.startMsn,
      segmentTarget: this.opts.lease.segmentTarget,
      partTarget: this.opts.lease.partTarget,
      timeOrigin: 0,
      keyframesOnGrid: true,
      logger: log,
    });
    const bw = rungBandwidth(rung);
    const pdt = (startTime: number) => Math.round(this.wallClockAtZero + startTime * 1000);
    // A reconnection continues the broadcast's timeline: fragments move by the lease's offset.
    const offset = this.opts.lease.timeOffset ?? 0;
    let init: InitInfo | null = null;
    const media = (bytes: Uint8Array) => (offset > 0 && init ? shiftFragmentTimes(bytes, init, offset) : bytes);
    chunker.on('init', (e) => {
      if (offset > 0) init = parseInit(e.bytes);
      uploader.enqueue({
        file: 'init.mp4',
        bytes: e.bytes,
        readyAt: Date.now(),
        meta: {
          kind: e.info.kind,
          codecs: e.info.codecs,
          bandwidth: bw.bandwidth,
          averageBandwidth: bw.averageBandwidth,
          ...(e.info.kind === 'video'
            ? { width: e.info.width, height: e.info.height, frameRate: this.opts.lease.fps }
            : { channels: e.info.channels ?? (rung.kind === 'audio' ? rung.channels : 2) }),
          renditions,
        },
      });
    });
    chunker.on('part', (e) => {
      // The publish-latency benchmark pairs this line with the blocked playlist answer.
      log.debug('part ready', { msn: e.msn, part: e.part, at: Date.now() });
      uploader.enqueue({
        file: mediaFileName({ kind: 'part', msn: e.msn, part: e.part }),
        bytes: media(e.bytes),
        readyAt: Date.now(),
        meta: {
          duration: round6(e.duration),
          independent: e.independent,
          programDateTime: pdt(e.startTime),
          ...(e.final ? { final: true } : {}),
        },
      });
    });
    chunker.on('segment', (e) => {
      uploader.enqueue({
        file: mediaFileName({ kind: 'segment', msn: e.msn }),
        // The segment push only closes the segment: its bytes are its parts', already pushed
        // (the edge serves their concatenation). `segmentCopy` (bench:cost only) sends them again.
        bytes: this.opts.segmentCopy ? media(e.bytes) : new Uint8Array(0),
        readyAt: Date.now(),
        meta: { duration: round6(e.duration), partCount: e.partCount, programDateTime: pdt(e.startTime) },
      });
    });
    chunker.on('error', (err) => {
      log.error('broken fMP4 from ffmpeg', { error: err });
      void this.stop('broken media');
    });
    // Back-pressure: stop reading ffmpeg's output while the upload queue is full; ffmpeg then
    // blocks on its pipe, stops reading stdin, and the publisher's socket is paused in turn.
    output.on('data', (chunk: Buffer) => {
      chunker.push(new Uint8Array(chunk.buffer, chunk.byteOffset, chunk.byteLength));
      if (uploader.pending >= 32) {
        output.pause();
        void uploader.whenWritable().then(() => output.resume());
      }
    });
    output.on('end', () => chunker.end());
  }

  /**
   * Thumbnail k shows media time k × interval (ffmpeg's fps filter from output time 0). They go
   * through their own small queue: a slow or refused thumbnail never holds up or stops the media.
   */
  private wireThumbnails(output: Readable, interval: number): void {
    const log = this.log.child({ output: 'thumbnails' });
    const uploader = new RenditionUploader({
      logger: log,
      highWaterMark: 4,
      maxAttempts: 3,
      send: (job) =>
        this.opts.origin.pushThumbnail(
          this.streamId,
          this.epoch,
          Number(job.file),
          job.bytes,
          (job.meta as { programDateTime: number }).programDateTime,
        ),
      onFatal: (err: OriginError) => log.warn('thumbnails refused; no more for this session', { code: err.code }),
    });
    this.uploaders.set('#thumbnails', uploader);
    const splitter = new MpjpegSplitter();
    let seq = 0;
    output.on('data', (chunk: Buffer) => {
      let jpegs: Buffer[];
      try {
        jpegs = splitter.push(chunk);
      } catch (err) {
        log.warn('unreadable thumbnail stream', { error: err });
        output.removeAllListeners('data');
        output.resume();
        return;
      }
      for (const jpeg of jpegs) {
        const programDateTime = Math.round(this.wallClockAtZero + seq * interval * 1000);
        // A thumbnail that cannot keep up is dropped rather than queued (the next one is newer).
        if (uploader.pending < 4)
          uploader.enqueue({ file: String(seq), bytes: new Uint8Array(jpeg), readyAt: Date.now(), meta: { programDateTime } });
        seq++;
      }
    });
  }

  /** Stops ffmpeg and the publisher; pending pushes are flushed, then the origin is told. */
  async stop(reason: string): Promise<void> {
    if (this.stopping) return;
    this.stopping = reason;
    this.log.info('stopping ingest session', { reason });
    this.opts.publisher.close(reason);
    // Still reading the input's tracks (or nothing could be encoded): there is no ffmpeg to wait for.
    if (this.ladder) await this.ladder.stop();
    else await this.finish(reason);
  }

  private finished = false;
  private async finish(reason: string): Promise<void> {
    if (this.finished) return;
    this.finished = true;
    // Everything ffmpeg produced is pushed before the origin hears that the publisher stopped.
    await Promise.all([...this.uploaders.values()].map((u) => u.whenIdle()));
    // Fenced off (another ingest took over, or the key was rotated): the origin knows already.
    const fenced = reason.includes('took the stream over') || reason.includes('key was rotated');
    const superseded = this.continued || ([...this.uploaders.values()].some((u) => u.dead) && fenced);
    if (!superseded) {
      try {
        await this.opts.origin.end(this.streamId, this.epoch);
      } catch (err) {
        this.log.warn('could not tell the origin the publisher stopped', { error: err });
      }
    }
    this.log.info('ingest session closed', { reason, seconds: Math.round((Date.now() - this.startedAt) / 1000) });
    this.opts.onClosed(reason);
    this.resolveClosed(reason);
  }

  get protocol(): string {
    return this.opts.publisher.protocol;
  }

  /** The ladder's ffmpeg process id (the failover tests check that a superseded one is gone). */
  get ffmpegPid(): number | undefined {
    return this.ladder?.pid;
  }

  get pendingPushes(): number {
    let n = 0;
    for (const u of this.uploaders.values()) n += u.pending;
    return n;
  }
}

/** The longest the ladder waits for the input to show its tracks (normally the first tag or table does). */
const TRACK_PROBE_TIMEOUT_MS = 3000;

function round6(x: number): number {
  return Math.round(x * 1e6) / 1e6;
}
