// Who may open another RTMP connection: at most so many at once per address, and attempts paced by
// a token bucket per address, so one host cannot take the slots real publishers need. IPv6
// addresses count per /64 (one subscriber's whole prefix). Pure: the caller passes the clock.

export interface AddressLimits {
  /** Connections one address may hold at once (handshaking, authorizing or publishing). */
  maxConnectionsPerAddress: number;
  /** Connection attempts one address may make back to back. */
  acceptBurstPerAddress: number;
  /** Attempts per second the burst refills at. */
  acceptRatePerAddress: number;
}

export type Admission = { ok: true } | { ok: false; reason: string };

interface AddressEntry {
  open: number;
  tokens: number;
  /** When `tokens` was last brought up to date (ms). */
  at: number;
}

// The table is swept of forgotten addresses when it has doubled since the last sweep, so its size
// follows the addresses seen within one refill time, at an amortized O(1) per attempt.
const FIRST_SWEEP_AT = 1024;

export class AddressLimiter {
  private readonly limits: AddressLimits;
  private readonly entries = new Map<string, AddressEntry>();
  private sweepAt = FIRST_SWEEP_AT;

  constructor(limits: AddressLimits) {
    for (const [name, value] of Object.entries(limits)) {
      if (!(typeof value === 'number' && value > 0 && Number.isFinite(value)))
        throw new RangeError(`${name} must be a positive number, not ${value}`);
    }
    this.limits = limits;
  }

  /** Addresses with state: connections open or a bucket not yet refilled. */
  get size(): number {
    return this.entries.size;
  }

  /**
   * One connection attempt from `address` at `now` (ms). Every attempt takes a token, admitted or
   * not, so an address hammering at its connection limit also runs out of attempts.
   */
  admit(address: string, now: number): Admission {
    const key = addressKey(address);
    let entry = this.entries.get(key);
    if (!entry) {
      if (this.entries.size >= this.sweepAt) this.sweep(now);
      entry = { open: 0, tokens: this.limits.acceptBurstPerAddress, at: now };
      this.entries.set(key, entry);
    }
    this.refill(entry, now);
    if (entry.tokens < 1) return { ok: false, reason: 'connecting too often from this address' };
    entry.tokens -= 1;
    if (entry.open >= this.limits.maxConnectionsPerAddress) return { ok: false, reason: 'too many connections from this address' };
    entry.open++;
    return { ok: true };
  }

  /** An admitted connection from `address` has closed. */
  release(address: string): void {
    const entry = this.entries.get(addressKey(address));
    if (entry && entry.open > 0) entry.open--;
  }

  private refill(entry: AddressEntry, now: number): void {
    const elapsed = Math.max(0, now - entry.at);
    entry.tokens = Math.min(this.limits.acceptBurstPerAddress, entry.tokens + (elapsed / 1000) * this.limits.acceptRatePerAddress);
    entry.at = now;
  }

  // An address with nothing open and a full bucket is the same as one never seen: forget it.
  private sweep(now: number): void {
    for (const [key, entry] of this.entries) {
      this.refill(entry, now);
      if (entry.open === 0 && entry.tokens >= this.limits.acceptBurstPerAddress) this.entries.delete(key);
    }
    this.sweepAt = Math.max(FIRST_SWEEP_AT, 2 * this.entries.size);
  }
}

/**
 * What limits are counted on: an IPv4 address as is (also when IPv4-mapped, `::ffff:a.b.c.d`), an
 * IPv6 address by its first 64 bits, since one subscriber gets a whole /64 to pick from.
 */
export function addressKey(address: string): string {
  const lower = address.toLowerCase();
  if (lower.startsWith('::ffff:') && lower.includes('.')) return lower.slice(7);
  if (!lower.includes(':')) return lower;
  const [head = '', tail = ''] = lower.split('%')[0]!.split('::');
  const headGroups = head === '' ? [] : head.split(':');
  const tailGroups = tail === '' ? [] : tail.split(':');
  const groups = lower.includes('::')
    ? [...headGroups, ...Array<string>(Math.max(0, 8 - headGroups.length - tailGroups.length)).fill('0'), ...tailGroups]
    : headGroups;
  return `${groups
    .slice(0, 4)
    .map((g) => (parseInt(g, 16) || 0).toString(16))
    .join(':')}::/64`;
}
