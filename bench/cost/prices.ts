// Cloudflare's published list prices (USD) that bench:cost prices its counts at, with the date
// they were taken. List prices as of 2026; they may change: check the pricing pages before
// quoting a figure. Free tiers and included allowances are left out (a figure is the marginal cost).
export const PRICES_AS_OF = '2026-12 (list prices as of 2026; may change)';

export const PRICES = {
  /** R2 Class A operations (PutObject, multipart, List…): $4.50 per million. */
  r2ClassA: 4.5 / 1e6,
  /** R2 Class B operations (GetObject, HeadObject): $0.36 per million. */
  r2ClassB: 0.36 / 1e6,
  /** R2 storage: $0.015 per GB-month (egress is free). */
  r2StorageGbMonth: 0.015,
  /** Durable Objects requests (HTTP, RPC, WebSocket messages, alarms): $0.15 per million. */
  doRequest: 0.15 / 1e6,
  /** Durable Objects duration: $12.50 per million GB-s, billed at 128 MB while the object is active. */
  doGbSecond: 12.5 / 1e6,
  /** Durable Objects SQLite storage: $1.00 per million rows written. */
  doRowWritten: 1 / 1e6,
  /** Workers Standard: $0.30 per million requests. */
  workerRequest: 0.3 / 1e6,
  /** Workers Standard: $0.02 per million CPU milliseconds. */
  workerCpuMs: 0.02 / 1e6,
  /** Cloudflare Stream: $1 per 1,000 minutes delivered. */
  cloudflareStreamPerMinute: 1 / 1000,
  /** Mux video delivery at list: about $0.0008–0.001 per minute delivered. */
  muxPerMinute: [0.0008, 0.001] as const,
};

/** A Durable Object is billed for 128 MB while active. */
export const DO_BILLED_GB = 0.128;
