// Who may start publishing on this node: at most CAPACITY publishers (every protocol together),
// and none while a ladder runs slower than real time with nothing left to shed. Checked before the
// origin is asked for a lease, so a refused publisher costs the stream nothing. A publisher of a
// stream that already publishes here (an encoder reconnecting) is always let in: it replaces its
// own session and adds no load.

export type { IngestProtocol as PublishProtocol } from './publisher.ts';

export type Admission = { ok: true; release: () => void } | { ok: false; code: 'over_capacity' | 'node_overloaded'; reason: string };

export interface AdmissionOptions {
  capacity: number;
  /** Stream keys publishing on this node now. */
  liveKeys: () => Iterable<string>;
  /** Why the node takes no one new right now, or null. */
  overloaded: () => string | null;
}

export class AdmissionControl {
  readonly capacity: number;
  private readonly opts: AdmissionOptions;
  /** Admitted publishers whose lease is still being asked for: stream key and when the slot lapses. */
  private readonly pending = new Map<number, { streamKey: string; expiresAt: number }>();
  private nextTicket = 1;

  constructor(opts: AdmissionOptions) {
    if (!(Number.isInteger(opts.capacity) && opts.capacity >= 1))
      throw new RangeError(`CAPACITY must be a positive integer, not ${opts.capacity}`);
    this.capacity = opts.capacity;
    this.opts = opts;
  }

  /**
   * Admits a publisher of `streamKey` or says why not. An admission holds a slot until `release()`,
   * called once the lease was refused or the session has started (it then counts as live). A slot
   * whose publisher never got to start (it left while the origin answered) lapses by itself.
   */
  admit(streamKey: string, now = Date.now()): Admission {
    const live = new Set(this.opts.liveKeys());
    const pendingKeys = new Set<string>();
    for (const [ticket, p] of this.pending) {
      if (p.expiresAt <= now) this.pending.delete(ticket);
      else if (!live.has(p.streamKey)) pendingKeys.add(p.streamKey);
    }
    if (!live.has(streamKey) && !pendingKeys.has(streamKey)) {
      if (live.size + pendingKeys.size >= this.capacity) {
        return {
          ok: false,
          code: 'over_capacity',
          reason: `this node is at capacity (${this.capacity} publishers): publish to another ingest node`,
        };
      }
      const overloaded = this.opts.overloaded();
      if (overloaded)
        return { ok: false, code: 'node_overloaded', reason: `this node is overloaded (${overloaded}): publish to another ingest node` };
    }
    const ticket = this.nextTicket++;
    this.pending.set(ticket, { streamKey, expiresAt: now + PENDING_LAPSE_MS });
    return { ok: true, release: () => void this.pending.delete(ticket) };
  }
}

/** Longer than any lease request may take (the RTMP and SRT authorize timeouts are 10 s and 2.5 s). */
const PENDING_LAPSE_MS = 30_000;
