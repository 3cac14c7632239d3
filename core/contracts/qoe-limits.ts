// The limits of the QoE beacon contract (./qoe.ts), in a module of their own with no schema
// library, so the browser's QoE recorder can import them without pulling zod into its bundle.

/** Events per batch: Analytics Engine takes at most 25 data points per invocation (PLATFORM.md §3.5). */
export const QOE_MAX_EVENTS = 20;
/** Largest accepted beacon body (bytes). */
export const QOE_MAX_BODY = 16 * 1024;
/** A player counts as watching while its last beacon is younger than this. */
export const QOE_VIEWER_TTL_MS = 30_000;
/** Minutes of aggregates kept, and the default window `stats` answers over. */
export const QOE_KEEP_MINUTES = 60;
export const QOE_DEFAULT_WINDOW_MINUTES = 5;
