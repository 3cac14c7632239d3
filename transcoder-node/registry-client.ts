// Keeps this transcoder in the origin's ingest registry: registers (retrying until the origin
// answers), heartbeats with the current load every interval, registers again when the registry
// says it forgot the node (it missed three heartbeats), and deregisters on shutdown.
import {
  DeregisterRequestSchema,
  HeartbeatRequestSchema,
  NODES_PREFIX,
  NodeAckSchema,
  signIngestRequest,
  type RegisterNodeRequest,
} from '../core/contracts/ingest-protocol.ts';
import type { Logger } from './log.ts';

export interface RegistryClientOptions {
  originUrl: string;
  secret: string;
  /** Everything but the load, which `sessions()` reports at each heartbeat. */
  node: Omit<RegisterNodeRequest, 'sessions'> & { heartbeatIntervalMs: number };
  /** Publishers this node has now. */
  sessions: () => number;
  logger: Logger;
  /** Told of each register and heartbeat call and whether the registry took it (the node's metrics). */
  onCall?: (call: 'register' | 'heartbeat', ok: boolean) => void;
}

export class RegistryClient {
  private readonly opts: RegistryClientOptions;
  private readonly log: Logger;
  private timer: ReturnType<typeof setTimeout> | null = null;
  private registered = false;
  private stopped = false;

  constructor(opts: RegistryClientOptions) {
    this.opts = opts;
    this.log = opts.logger;
  }

  /** Starts the loop: the first registration is sent at once, then one call per interval. */
  start(): void {
    void this.tick();
  }

  /** Stops heartbeating and tells the registry this node is gone (best effort, bounded). */
  async stop(): Promise<void> {
    this.stopped = true;
    if (this.timer) clearTimeout(this.timer);
    if (!this.registered) return;
    try {
      await this.call('deregister', DeregisterRequestSchema.parse({ nodeId: this.opts.node.nodeId }), 2000);
      this.log.info('deregistered from the ingest registry');
    } catch (err) {
      this.log.warn('could not deregister', { error: err });
    }
  }

  private async tick(): Promise<void> {
    if (this.stopped) return;
    const sessions = this.opts.sessions();
    const what = this.registered ? 'heartbeat' : 'register';
    try {
      if (!this.registered) {
        await this.call('register', { ...this.opts.node, sessions });
        this.registered = true;
        this.log.info('registered with the ingest registry', {
          region: this.opts.node.region,
          heartbeatIntervalMs: this.opts.node.heartbeatIntervalMs,
        });
      } else {
        await this.call('heartbeat', HeartbeatRequestSchema.parse({ nodeId: this.opts.node.nodeId, sessions }));
      }
      this.opts.onCall?.(what, true);
    } catch (err) {
      this.opts.onCall?.(what, false);
      const status = (err as { status?: number }).status;
      if (status === 404) {
        // The registry dropped us (a long pause, an origin restart): announce ourselves again now.
        this.log.warn('the registry forgot this node; registering again');
        this.registered = false;
        if (!this.stopped) return this.tick();
      } else this.log.warn('registry call failed', { error: err, registered: this.registered });
    }
    if (!this.stopped) {
      // Before the first registration succeeds, retry sooner (the origin may still be starting).
      const wait = this.registered ? this.opts.node.heartbeatIntervalMs : Math.min(1000, this.opts.node.heartbeatIntervalMs);
      this.timer = setTimeout(() => void this.tick(), wait);
      this.timer.unref();
    }
  }

  private async call(what: 'register' | 'heartbeat' | 'deregister', value: unknown, timeoutMs = 5000): Promise<void> {
    const path = `${NODES_PREFIX}/${what}`;
    const body = new TextEncoder().encode(JSON.stringify(value));
    const signed = await signIngestRequest(this.opts.secret, 'POST', path, body);
    const res = await fetch(this.opts.originUrl.replace(/\/$/, '') + path, {
      method: 'POST',
      body,
      headers: { 'content-type': 'application/json', ...signed },
      signal: AbortSignal.timeout(timeoutMs),
    });
    const text = await res.text();
    if (!res.ok) throw Object.assign(new Error(`${what} answered ${res.status}: ${text.slice(0, 200)}`), { status: res.status });
    if (what !== 'deregister') NodeAckSchema.parse(JSON.parse(text));
  }
}
