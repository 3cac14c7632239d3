// The publishers on this node, whatever their protocol (RTMP, SRT, WHIP: each hands over a
// Publisher, publisher.ts): each one's ingest session, its restream destinations (restream/), and
// the ladder restart that sheds a rung under overload. A restart is what a publisher
// reconnecting would do, without the publisher noticing: the running ladder is stopped and
// flushes its pushes, a new lease is taken (a new epoch: discontinuity, new init
// segments, the timeline continued), and a new ladder starts on the same input (input-relay.ts).
import type { AuthorizeResponse } from '../core/contracts/ingest-protocol.ts';
import type { LadderRung } from '../core/contracts/stream-config.ts';
import { InputRelay } from './input-relay.ts';
import type { Logger } from './log.ts';
import type { Metrics } from './metrics.ts';
import type { OriginClient } from './origin-client.ts';
import type { OverloadGuard } from './overload.ts';
import type { IngestProtocol, Publisher } from './publisher.ts';
import type { RealtimeOutputOptions } from './realtime-output.ts';
import { IngestSession } from './ingest-session.ts';
import type { VideoEncoders } from './video-encoders.ts';
import { StreamRestreams, type RestreamConfig } from './restream/stream-restreams.ts';
import type { RealtimeFeeds } from './webrtc/realtime-feed.ts';

export interface PublishersOptions {
  origin: OriginClient;
  logger: Logger;
  metrics: Metrics;
  overload: OverloadGuard;
  nodeId: string;
  region: string;
  thumbnailIntervalSeconds?: number;
  /** The node's video encoders (video-encoders.ts); default libx264/libx265. */
  encoders?: VideoEncoders;
  /** Restream destinations: their limits and how often the origin is asked for them. */
  restream: RestreamConfig;
  /** The node's real-time feeds (WHEP); absent: no stream gets real-time outputs. */
  realtimeFeeds?: RealtimeFeeds;
  /** Keyframe interval of the real-time encode, seconds (default 0.5). */
  realtimeKeyframeIntervalSeconds?: number;
  /** bench:cost only: segment pushes carry their bytes again (the previous, double-write design). */
  segmentCopy?: boolean;
}

/** An accepted publisher, and the key it published with (a ladder restart takes a new lease with it). */
export interface NewPublisher {
  publisher: Publisher;
  streamKey: string;
}

export class PublisherPipeline {
  readonly protocol: IngestProtocol;
  readonly streamKey: string;
  readonly streamId: string;
  /** The session of the current ladder. */
  session: IngestSession;
  /** Resolves with the reason once the publisher's last session has stopped. */
  readonly closed: Promise<string>;
  private resolveClosed!: (reason: string) => void;
  private readonly publisher: Publisher;
  private readonly node: PublishersOptions;
  private readonly relay: InputRelay;
  /** The publisher's restream destinations: fed by taps of the relay, never by the ladder. */
  readonly restreams: StreamRestreams;
  private restreamsStopped: Promise<void> = Promise.resolve();
  private readonly log: Logger;
  private ladder: LadderRung[];
  /** An automatic ladder (the lease's `auto`) becomes the source's preset once the first session has read it. */
  private ladderResolved = false;
  /** The stream's real-time feed, held while this publisher's ladders run (realtime streams only). */
  private readonly realtime: Promise<RealtimeOutputOptions | null> | null = null;
  private restarting = false;
  /** The publisher's connection has ended (its last session may still be flushing). */
  publisherGone = false;
  private stopping: string | null = null;
  private done = false;

  constructor(spec: NewPublisher, node: PublishersOptions, onEnd: (p: PublisherPipeline) => void) {
    const publisher = spec.publisher;
    this.publisher = publisher;
    this.node = node;
    this.protocol = publisher.protocol;
    this.streamKey = spec.streamKey;
    this.streamId = publisher.lease.streamId;
    this.log = node.logger.child({ streamId: this.streamId, protocol: publisher.protocol });
    this.closed = new Promise((resolve) => (this.resolveClosed = resolve));
    void this.closed.then(() => onEnd(this));
    void publisher.ended.then((end) => {
      this.publisherGone = true;
      this.log.info('publisher disconnected', { code: end.code, reason: end.message });
    });
    this.relay = new InputRelay(publisher.media, publisher.container, {
      onBytes: (n) => node.metrics.ingestReceived(publisher.protocol, n),
      // A ladder behind real time would take long to encode what its publisher left behind, all
      // of it late, while the node refuses others: it stops at once instead.
      onSourceEnd: () => {
        if (!this.restarting && node.overload.isBehind(this.streamId))
          void this.session.stop('the publisher left while its ladder ran below real time');
      },
    });
    this.ladder = publisher.lease.ladder as LadderRung[];
    const feeds = node.realtimeFeeds;
    if (publisher.lease.realtime && feeds) {
      const keyframeIntervalSeconds = node.realtimeKeyframeIntervalSeconds ?? 0.5;
      this.realtime = feeds.acquire(this.streamId).then(
        (feed) => ({ videoPort: feed.ports.video, audioPort: feed.ports.audio, keyframeIntervalSeconds }),
        // The stream still plays as LL-HLS without it.
        () => null,
      );
      void this.closed.then((reason) => feeds.release(this.streamId, reason));
    }
    this.session = this.startSession(publisher.lease);
    this.restreams = new StreamRestreams({
      streamId: this.streamId,
      nodeId: node.nodeId,
      epoch: () => this.session.epoch,
      container: publisher.container,
      tap: (consumer, maxBufferedBytes) => this.relay.tap(consumer, maxBufferedBytes),
      sync: (streamId, epoch, report) => node.origin.syncRestreams(streamId, epoch, report),
      logger: this.log,
      config: node.restream,
      onFailure: () => node.metrics.restreamFailed(),
    });
    this.restreams.start();
  }

  /** Resolves once the restream destinations have stopped and been reported stopped (after `closed`). */
  restreamsDone(): Promise<void> {
    return this.restreamsStopped;
  }

  /** Stops the publisher for good: its ladder, its connection. */
  async stop(reason: string): Promise<void> {
    if (this.stopping) return;
    this.stopping = reason;
    if (!this.restarting) await this.session.stop(reason);
    else this.publisher.close(reason); // the restart sees `stopping` and ends there
  }

  private startSession(lease: AuthorizeResponse): IngestSession {
    const pipeline = this;
    // Each session sees the publisher through its own lease and input; it may drop the publisher
    // only while it is the current session and no restart is under way.
    const view: Publisher = {
      ...this.publisher,
      // A restarted ladder keeps the preset the source was found to need: it is not chosen again.
      lease: { ...lease, ladder: this.ladder, ...(this.ladderResolved ? { ladderPreset: 'custom' as const } : {}) },
      media: this.relay.attach(),
      close: (reason) => {
        if (this.session === session && !this.restarting) this.publisher.close(reason);
      },
    };
    const session: IngestSession = new IngestSession({
      publisher: view,
      origin: this.node.origin,
      logger: this.node.logger,
      metrics: this.node.metrics,
      thumbnailIntervalSeconds: this.node.thumbnailIntervalSeconds,
      encoders: this.node.encoders,
      onLadder: (ladder) => {
        this.ladder = ladder;
        this.ladderResolved = true;
      },
      segmentCopy: this.node.segmentCopy,
      // Read when it sheds: by then an automatic ladder is the source's preset.
      onProgress: this.node.overload.watch({
        streamId: this.streamId,
        get ladder() {
          return pipeline.ladder;
        },
        restart: (ladder) => void this.restart(ladder),
      }),
      ...(this.realtime ? { realtime: this.realtime } : {}),
      onClosed: (reason) => {
        if (this.session === session && !this.restarting) this.end(reason);
      },
    });
    return session;
  }

  /** Replaces the running ladder with one of these rungs (see the file header). */
  private async restart(ladder: LadderRung[]): Promise<void> {
    if (this.restarting || this.stopping || this.done) return;
    if (!this.relay.canRestart) {
      this.log.warn('cannot shed a rung of this publisher: its container has one header for the whole stream', {
        container: this.publisher.container,
      });
      return;
    }
    this.restarting = true;
    const old = this.session;
    old.continued = true;
    // The old ladder is stopped rather than left to drain its input: what it holds is already
    // late, and a slow ladder would take seconds to encode it. It still pushes all it wrote.
    this.relay.detach();
    await old.stop('ladder restart');
    await old.closed;
    if (this.stopping || this.relay.ended) return this.end(this.stopping ?? 'publisher ended');
    let lease: AuthorizeResponse;
    try {
      // `continues`: the lease goes on from the old session's epoch, which the origin lets this
      // node take over even from a stream that refuses a second publisher while one is live.
      lease = await this.node.origin.authorize(this.streamKey, this.node.nodeId, this.node.region, old.epoch);
    } catch (err) {
      this.log.error('could not take a new lease for the restarted ladder: dropping the publisher', { error: err });
      this.publisher.close('the ladder could not be restarted');
      return this.end('ladder restart failed');
    }
    if (this.stopping) return this.end(this.stopping);
    this.ladder = ladder;
    this.session = this.startSession(lease);
    this.restarting = false;
    this.log.info('ladder restarted', { epoch: lease.epoch, renditions: ladder.map((r) => r.name) });
  }

  private end(reason: string): void {
    if (this.done) return;
    this.done = true;
    this.restarting = false;
    // Whatever ended the session (ffmpeg failing, say), the publisher's connection goes with it:
    // nothing reads its media any more. (Closing a connection that has closed does nothing.)
    this.publisher.close(reason);
    this.restreamsStopped = this.restreams.stop(reason);
    this.resolveClosed(reason);
  }
}

export class Publishers {
  private readonly opts: PublishersOptions;
  private readonly byStream = new Map<string, PublisherPipeline>();

  constructor(opts: PublishersOptions) {
    this.opts = opts;
  }

  /** Starts the pipeline of an accepted publisher; one already publishing the stream here is stopped. */
  start(spec: NewPublisher): PublisherPipeline {
    const streamId = spec.publisher.lease.streamId;
    const previous = this.byStream.get(streamId);
    if (previous) void previous.stop('the publisher reconnected');
    this.opts.metrics.sessionStarted(spec.publisher.protocol);
    const pipeline = new PublisherPipeline(spec, this.opts, (p) => {
      if (this.byStream.get(p.streamId) !== p) return;
      this.byStream.delete(p.streamId);
      this.opts.overload.forget(p.streamId);
      this.opts.metrics.streamEnded(p.streamId);
    });
    this.byStream.set(streamId, pipeline);
    return pipeline;
  }

  /**
   * Resolves once no pipeline of `streamKey` whose publisher has disconnected is still closing
   * here, or after `maxWaitMs`: a publisher that reconnects is not refused as a second publisher
   * of its own stream while its previous session is flushing.
   */
  async settled(streamKey: string, maxWaitMs: number): Promise<void> {
    const closing = [...this.byStream.values()].filter((p) => p.streamKey === streamKey && p.publisherGone).map((p) => p.closed);
    if (closing.length === 0) return;
    let timer: NodeJS.Timeout | undefined;
    await Promise.race([Promise.all(closing), new Promise((r) => (timer = setTimeout(r, maxWaitMs)))]);
    clearTimeout(timer);
  }

  get size(): number {
    return this.byStream.size;
  }

  values(): IterableIterator<PublisherPipeline> {
    return this.byStream.values();
  }

  liveKeys(): string[] {
    return [...this.byStream.values()].map((p) => p.streamKey);
  }

  countByProtocol(): Partial<Record<IngestProtocol, number>> {
    const out: Partial<Record<IngestProtocol, number>> = {};
    for (const p of this.byStream.values()) out[p.protocol] = (out[p.protocol] ?? 0) + 1;
    return out;
  }
}
