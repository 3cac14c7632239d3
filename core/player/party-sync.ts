// Watch-party synchronisation, as pure decisions over numbers: where the party is on the stream
// (program-date-time) at a given room time, and what one player should do to be there —
// nothing, nudge its playback rate, or pause-seek-and-start-together ("rendezvous"). The DOM
// side (public/src/party/party-sync-driver.ts) measures and applies; these functions decide.
//
// Coordinates. A live stream's media time differs between players; its program-date-time does
// not. The room protocol's `position` is seconds ≤ 10⁷, so a party position is the PDT in seconds
// modulo 10⁶ (11.6 days), unwrapped against the room clock: every DVR window is far shorter.
//
// Thresholds (docs/player.md § Watch party):
// - |error| ≥ 400 ms, or the player is paused while the party plays → rendezvous: pause, seek to
//   where the party will be `lead` ms from now, start at exactly that room time. The lead is
//   learned (a rendezvous that missed its time doubles it).
// - 1 ms < |error| < 400 ms → playbackRate = rate × (1 − error / 0.8 s), within ±10 %: a
//   proportional controller that halves the error every ~0.55 s, too gently to be seen or heard;
//   a change under 0.15 % is not applied, so the rate does not flicker.
// - |error| ≤ 1 ms → leave the rate as it is (dead band).
// - The rate never rests at exactly the party's rate: Chromium's audio renderer switches from its
//   time-stretching path to a plain copy at exactly 1.0, and each switch costs the media clock
//   about 50 ms (measured; it showed as a 50 ms jump every time the controller settled). A
//   follower plays at 1.0002 or 0.9998 instead, which nobody can see or hear.
// - Paused party → pause, and seek if off by more than 15 ms (half a frame at 30 fps).
// hls.js must not correct the rate itself meanwhile: the party page sets maxLiveSyncPlaybackRate = 1.
import type { PlaybackState } from '../rooms/room-protocol.ts';

export const PDT_WRAP_SEC = 1_000_000;

export const SYNC_THRESHOLDS = {
  seekMs: 400,
  deadbandMs: 1,
  /** Time constant of the rate controller (s): rate offset = −error / tau. */
  tauSec: 0.8,
  maxRateOffset: 0.1,
  /** Rate changes smaller than this are not applied (each one costs the media pipeline work). */
  minRateStep: 0.0015,
  /** Smallest rate offset used: never exactly the party's rate (see above). */
  minRateOffset: 0.0002,
  pausedToleranceMs: 15,
  /** First guesses for a rendezvous lead: a seek inside the buffer, and one that loads media. */
  defaultLeadMs: 600,
  maxLeadMs: 8000,
  /** A rendezvous never aims closer than this to the newest media the player can load. */
  edgeSafetyMs: 250,
  /** Shortest rendezvous: time to seek inside the buffer and start. */
  minLeadMs: 250,
} as const;

/** Party `position` (s) for a program-date-time (ms). */
export function wrapPdt(pdtMs: number): number {
  const s = pdtMs / 1000;
  return ((s % PDT_WRAP_SEC) + PDT_WRAP_SEC) % PDT_WRAP_SEC;
}

/** The program-date-time (ms) with party position `position` that lies nearest to `nearMs`. */
export function unwrapPdt(position: number, nearMs: number): number {
  const near = nearMs / 1000;
  const base = near - (((near % PDT_WRAP_SEC) + PDT_WRAP_SEC) % PDT_WRAP_SEC);
  let best = base + position;
  for (const k of [-1, 1]) {
    const c = base + position + k * PDT_WRAP_SEC;
    if (Math.abs(c - near) < Math.abs(best - near)) best = c;
  }
  return best * 1000;
}

/**
 * Where the party is (PDT, ms) at room time `roomNowMs`. A command may start in the future
 * (`at` ahead of now, so everyone can be ready): until then the party holds its position.
 */
export function partyPdtAt(state: Pick<PlaybackState, 'playing' | 'position' | 'rate' | 'at'>, roomNowMs: number): number {
  const start = unwrapPdt(state.position, roomNowMs);
  if (!state.playing) return start;
  return start + Math.max(0, roomNowMs - state.at) * state.rate;
}

export interface LocalPlayer {
  /** The PDT (ms) of the player's current position, null while unknown (no playlist yet). */
  pdtMs: number | null;
  /** The newest PDT (ms) the player's playlist lists (the live edge it can load), null if unknown. */
  availablePdtMs?: number | null;
  paused: boolean;
  playbackRate: number;
}

export type SyncDecision =
  | { kind: 'unknown' }
  /** Keep (or set) this playback rate; `errorMs` is local − party. */
  | { kind: 'rate'; rate: number; errorMs: number; apply: boolean }
  /** Be paused at `pdtMs` (seek only when `seek`). */
  | { kind: 'paused'; pdtMs: number; seek: boolean; errorMs: number | null }
  /** Pause, seek to `pdtMs`, start playing at room time `startAtRoomMs`. */
  | { kind: 'rendezvous'; pdtMs: number; startAtRoomMs: number; errorMs: number | null };

/** What one player should do now. `leadMs` is the rendezvous lead this player has learned. */
export function decideSync(
  state: PlaybackState,
  roomNowMs: number,
  local: LocalPlayer,
  leadMs: number = SYNC_THRESHOLDS.defaultLeadMs,
): SyncDecision {
  const t = SYNC_THRESHOLDS;
  const target = partyPdtAt(state, roomNowMs);
  const errorMs = local.pdtMs === null ? null : local.pdtMs - target;
  if (!state.playing) {
    return { kind: 'paused', pdtMs: target, seek: errorMs === null || Math.abs(errorMs) > t.pausedToleranceMs, errorMs };
  }
  if (roomNowMs < state.at) {
    // A scheduled start: everyone waits at the start position and starts at `at`. A player that
    // already started (early by its own start-up latency, on purpose) is left alone until then.
    const lineErrorMs = local.pdtMs === null ? null : local.pdtMs - (target + (roomNowMs - state.at) * state.rate);
    if (!local.paused && lineErrorMs !== null && Math.abs(lineErrorMs) < t.seekMs)
      return { kind: 'rate', rate: local.playbackRate, errorMs: lineErrorMs, apply: false };
    return { kind: 'rendezvous', pdtMs: target, startAtRoomMs: state.at, errorMs };
  }
  if (errorMs === null) return { kind: 'unknown' };
  if (local.paused || Math.abs(errorMs) >= t.seekMs) {
    let startAt = roomNowMs + leadMs;
    // Near the live edge the party's position `lead` ms from now may not be published yet: aim at
    // the newest media this player can load, and start when the party gets there.
    const edge = local.availablePdtMs;
    if (edge != null && partyPdtAt(state, startAt) > edge - t.edgeSafetyMs) {
      startAt = roomNowMs + Math.max(t.minLeadMs, (edge - t.edgeSafetyMs - target) / state.rate);
    }
    return { kind: 'rendezvous', pdtMs: partyPdtAt(state, startAt), startAtRoomMs: startAt, errorMs };
  }
  const atBase = local.playbackRate === state.rate;
  if (Math.abs(errorMs) <= t.deadbandMs && !atBase) return { kind: 'rate', rate: local.playbackRate, errorMs, apply: false };
  const rate = followRate(state.rate, errorMs);
  return { kind: 'rate', rate, errorMs, apply: atBase || Math.abs(rate - local.playbackRate) >= t.minRateStep };
}

/** The rate that removes `errorMs` (local − party) with the controller's time constant; never exactly `base`. */
export function followRate(base: number, errorMs: number): number {
  const t = SYNC_THRESHOLDS;
  const offset = clamp(-errorMs / 1000 / t.tauSec, -t.maxRateOffset, t.maxRateOffset);
  return base * (1 + (Math.abs(offset) < t.minRateOffset ? (errorMs > 0 ? -t.minRateOffset : t.minRateOffset) : offset));
}

/** After a rendezvous that started `lateMs` after its time (negative: early), the next lead. */
export function nextLead(leadMs: number, readyLateMs: number): number {
  if (readyLateMs > 0) return Math.min(SYNC_THRESHOLDS.maxLeadMs, Math.max(leadMs * 2, readyLateMs + leadMs));
  return leadMs;
}

function clamp(x: number, lo: number, hi: number): number {
  return Math.min(hi, Math.max(lo, x));
}
