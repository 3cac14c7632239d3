// Overload handling for the node: every ladder's `-progress` goes through an EncoderWatch; a ladder
// that falls below real time is logged, exported, and shed: restarted without its top video rung,
// so the stream's latency stops growing. A ladder that has no rung left to shed marks the node
// overloaded, and new publishers are refused (admission.ts) until it keeps up again.
import type { LadderRung, VideoRung } from '../core/contracts/stream-config.ts';
import { EncoderWatch, parseProgress, type EncoderWatchOptions } from './encoder-watch.ts';
import type { Logger } from './log.ts';
import type { Metrics } from './metrics.ts';

/** The ladder without its top video rung (tallest, then highest bitrate), or null when it has one video rung or none. */
export function shedTopRung(ladder: readonly LadderRung[]): { shed: VideoRung; rest: LadderRung[] } | null {
  const video = ladder.filter((r): r is VideoRung => r.kind === 'video');
  if (video.length < 2) return null;
  const top = video.reduce((a, b) => (b.height > a.height || (b.height === a.height && b.videoBitrate > a.videoBitrate) ? b : a));
  return { shed: top, rest: ladder.filter((r) => r !== top) };
}

export interface WatchedLadder {
  streamId: string;
  /** The rungs this ladder was started with. */
  ladder: readonly LadderRung[];
  /** Restart the stream's ladder with these rungs instead. */
  restart: (ladder: LadderRung[]) => void;
}

export interface OverloadGuardOptions extends EncoderWatchOptions {
  logger: Logger;
  metrics: Metrics;
  /** Clock (tests of the pure parts drive it; the node uses Date.now). */
  now?: () => number;
}

export class OverloadGuard {
  private readonly opts: OverloadGuardOptions;
  private readonly now: () => number;
  /** Streams whose ladder is behind real time with nothing left to shed: the node takes no one new. */
  private readonly stuck = new Map<string, string>();
  /** The watch of each stream's current ladder (a restarted ladder gets a new one). */
  private readonly watches = new Map<string, EncoderWatch>();

  constructor(opts: OverloadGuardOptions) {
    this.opts = opts;
    this.now = opts.now ?? Date.now;
    new EncoderWatch(opts); // validates the options once, at start-up
  }

  /** Why the node should refuse new publishers, or null. */
  overloaded(): string | null {
    const first = this.stuck.entries().next();
    return first.done ? null : `the ladder of ${first.value[0]} runs below real time (${first.value[1]})`;
  }

  /** Starts watching a new ladder of a stream; returns what its `-progress` blocks go to. */
  watch(target: WatchedLadder): (block: Record<string, string>) => void {
    const { streamId } = target;
    const watch = new EncoderWatch(this.opts);
    this.watches.set(streamId, watch);
    // A new ladder (restarted, or a publisher that came back) is not known to be behind yet.
    this.stuck.delete(streamId);
    const log = this.opts.logger.child({ streamId });
    let first = true;
    let shed = false;
    return (block) => {
      if (this.watches.get(streamId) !== watch || shed) return; // a ladder being replaced
      const s = watch.push(parseProgress(block, this.now()));
      this.opts.metrics.encoder(streamId, s, first);
      first = false;
      if (!s.changed) return;
      const figures = {
        speed: s.speed === null ? null : round(s.speed),
        lagSeconds: round(s.lagSeconds),
        fps: s.fps,
        droppedFrames: s.droppedFrames,
        duplicatedFrames: s.duplicatedFrames,
      };
      if (!s.behind) {
        this.stuck.delete(streamId);
        log.info('encoder back to real time', figures);
        return;
      }
      log.warn('encoder below real time', { ...figures, renditions: target.ladder.map((r) => r.name) });
      const plan = shedTopRung(target.ladder);
      if (!plan) {
        this.stuck.set(streamId, `${figures.speed}× real time`);
        log.error('encoder below real time with no rung left to shed: refusing new publishers until it keeps up', figures);
        return;
      }
      shed = true;
      this.opts.metrics.ladderShed(plan.shed.name);
      log.warn('ladder shed: restarting without its top rung', { rendition: plan.shed.name, renditions: plan.rest.map((r) => r.name) });
      target.restart(plan.rest);
    };
  }

  /** Whether the stream's current ladder is below real time now. */
  isBehind(streamId: string): boolean {
    return this.watches.get(streamId)?.status.behind === true;
  }

  /** The stream's publisher left. */
  forget(streamId: string): void {
    this.watches.delete(streamId);
    this.stuck.delete(streamId);
  }
}

function round(x: number): number {
  return Math.round(x * 100) / 100;
}
