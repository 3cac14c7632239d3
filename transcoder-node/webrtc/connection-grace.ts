// What a peer connection's state change means for a session on the node (a WHIP publisher, a WHEP
// viewer, an SFU seat): `connected` cancels a pending drop; `disconnected` ends the session after a
// grace period unless ICE recovers by itself; `failed` and `closed` end it at once.

export type ConnectionStep = 'connected' | 'disconnected' | 'ended';

export class ConnectionGrace {
  readonly #graceMs: number;
  readonly #onDropped: () => void;
  #timer: NodeJS.Timeout | null = null;

  constructor(graceMs: number, onDropped: () => void) {
    this.#graceMs = graceMs;
    this.#onDropped = onDropped;
  }

  /** The step a state change is (null: one that changes nothing); arms or cancels the drop. */
  step(state: string): ConnectionStep | null {
    if (state === 'connected') {
      this.clear();
      return 'connected';
    }
    if (state === 'disconnected') {
      this.#timer ??= setTimeout(this.#onDropped, this.#graceMs);
      return 'disconnected';
    }
    return state === 'failed' || state === 'closed' ? 'ended' : null;
  }

  clear(): void {
    if (this.#timer) clearTimeout(this.#timer);
    this.#timer = null;
  }
}
