// The restream destinations of one publisher on this node: which to run comes from the origin (a
// signed sync call, at the start, every `syncIntervalMs` and soon after any status change, which
// also reports every destination's status), each one a RestreamDestination. They live as long as
// the publisher, across ladder restarts, and nothing they do reaches the ladder or the publisher.
import type { RestreamStatus, RestreamSyncRequest, RestreamSyncResponse } from '../../core/contracts/restream.ts';
import type { SourceTap, TapConsumer } from '../input-relay.ts';
import type { Logger } from '../log.ts';
import type { MediaContainer } from '../publisher.ts';
import { RestreamDestination, type RestreamLimits } from './destination.ts';

export interface RestreamConfig {
  limits: RestreamLimits;
  /** How often the node reports and asks for the destinations (at most RESTREAM_STATUS_TTL_MS). */
  syncIntervalMs: number;
  ffmpegPath?: string;
}

export interface StreamRestreamsOptions {
  streamId: string;
  nodeId: string;
  /** The epoch of the publisher's current lease (it changes when the ladder restarts). */
  epoch: () => number;
  container: MediaContainer;
  tap: (consumer: TapConsumer, maxBufferedBytes: number) => SourceTap;
  sync: (streamId: string, epoch: number, report: RestreamSyncRequest) => Promise<RestreamSyncResponse>;
  logger: Logger;
  config: RestreamConfig;
  /** Told of each attempt that failed (the node's metrics). */
  onFailure?: () => void;
}

/** A change of status is reported this soon (changes close together go in one call). */
const REPORT_DELAY_MS = 200;

export class StreamRestreams {
  private readonly opts: StreamRestreamsOptions;
  private readonly log: Logger;
  private readonly running = new Map<string, RestreamDestination>();
  /** The revision (API changes) each running destination was started at. */
  private readonly revisions = new Map<string, number>();
  /** Destinations stopped since the last sync: their final status goes in the next report. */
  private leaving: RestreamStatus[] = [];
  private timer: NodeJS.Timeout | null = null;
  private syncing: Promise<void> | null = null;
  private again = false;
  private stopped = false;

  constructor(opts: StreamRestreamsOptions) {
    this.opts = opts;
    this.log = opts.logger.child({ component: 'restream' });
  }

  start(): void {
    this.schedule(0);
  }

  statuses(): RestreamStatus[] {
    return [...this.running.values()].map((d) => d.status);
  }

  /** Stops every destination and reports them stopped (best effort: the origin may be gone). */
  async stop(reason: string): Promise<void> {
    if (this.stopped) return;
    this.stopped = true;
    if (this.timer) clearTimeout(this.timer);
    const all = [...this.running.values()];
    this.running.clear();
    await Promise.all(all.map((d) => d.stop(reason)));
    if (all.length === 0 && this.leaving.length === 0) return;
    this.leaving.push(...all.map((d) => d.status));
    await this.syncing;
    await this.report([]).catch((err) => this.log.warn('could not report the restreams stopped', { error: String(err) }));
  }

  private schedule(delayMs: number): void {
    if (this.stopped) return;
    if (this.syncing) {
      this.again = true;
      return;
    }
    if (this.timer) clearTimeout(this.timer);
    this.timer = setTimeout(() => void this.sync(), delayMs);
  }

  private async sync(): Promise<void> {
    this.timer = null;
    this.again = false;
    this.syncing = (async () => {
      try {
        const { destinations } = await this.report(this.statuses());
        if (!this.stopped) this.reconcile(destinations);
      } catch (err) {
        // The destinations keep running as they are; the next sync tries again.
        this.log.warn('restream sync failed', { error: String(err) });
      }
    })();
    await this.syncing;
    this.syncing = null;
    this.schedule(this.again ? REPORT_DELAY_MS : this.opts.config.syncIntervalMs);
  }

  private async report(statuses: RestreamStatus[]): Promise<RestreamSyncResponse> {
    const leaving = this.leaving;
    this.leaving = [];
    try {
      return await this.opts.sync(this.opts.streamId, this.opts.epoch(), { nodeId: this.opts.nodeId, statuses: [...leaving, ...statuses] });
    } catch (err) {
      this.leaving = [...leaving, ...this.leaving];
      throw err;
    }
  }

  /**
   * Starts the destinations that are new (or whose URL changed), stops those no longer listed, and
   * starts again a failed one that was changed or enabled since (its revision moved). A running
   * one is left alone when only its name changed.
   */
  private reconcile(destinations: RestreamSyncResponse['destinations']): void {
    const wanted = new Map(destinations.map((d) => [d.id, d]));
    for (const [id, d] of this.running) {
      const want = wanted.get(id);
      const retry = want !== undefined && d.status.state === 'failed' && want.revision !== this.revisions.get(id);
      if (want?.url === d.url && !retry) {
        // A change that needed no restart (the name, say) is not a reason to retry a later failure.
        this.revisions.set(id, want.revision);
        continue;
      }
      this.running.delete(id);
      const why = !want ? 'removed or disabled' : retry ? 'changed or enabled again after it failed' : 'its URL or key changed';
      void d.stop(why).then(() => {
        this.leaving.push(d.status);
        this.schedule(REPORT_DELAY_MS);
      });
    }
    for (const [id, { url, revision }] of wanted) {
      if (this.running.has(id)) continue;
      this.revisions.set(id, revision);
      const d = new RestreamDestination({
        id,
        url,
        tap: this.opts.tap,
        container: this.opts.container,
        logger: this.log,
        limits: this.opts.config.limits,
        ffmpegPath: this.opts.config.ffmpegPath,
        onChange: (status) => {
          if (status.state === 'retrying' || status.state === 'failed') this.opts.onFailure?.();
          if (this.running.get(id) === d) this.schedule(REPORT_DELAY_MS);
        },
      });
      this.running.set(id, d);
      this.log.info('restream destination added', { restream: id });
      d.start();
    }
  }
}
