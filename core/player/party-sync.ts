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
// Near the live edge (the newest listed part, where the player's seekable range ends):
// - a rendezvous never aims past the newest media the player can load (less `edgeSafetyMs`); when
//   the party's position `lead` ms from now is not listed yet it aims there and starts when the
//   party gets there, if that leaves at least `minLeadMs`; closer still, no rendezvous can meet
//   the party (the media it would start on does not exist yet) → `edge`: wait for the host.
// - The host holds the party (a start scheduled a little later at the party's current frame) when
//   it runs closer to the edge than the playlist's hold-back plus a rendezvous lead: a ladder that
//   encodes below real time (a loaded machine) lets a party playing at rate 1 run into the edge.
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
  /** The playlist's PART-HOLD-BACK when the player has not read it yet (3 × the 200 ms part target). */
  defaultHoldBackMs: 600,
  /**
   * The host holds the party until it is this much further from the edge than the hold's
   * threshold: with a ladder at speed s < 1 the party then plays this / (1 − s) between holds.
   */
  holdHysteresisMs: 3000,
  /**
   * The host's learned lead counts in the hold's threshold up to this: a lead learned on a starved
   * page (up to 8 s) would keep the whole party that much further from live.
   */
  maxHoldLeadMs: 1200,
  /** A scheduled start is judged again (a hold extended) once it is this near: more than a command's round trip. */
  holdRejudgeMs: 2500,
  /** Longest hold in one command: the room takes a start at most 5 s ahead (PLAYBACK_SKEW_MS). */
  maxHoldMs: 4000,
  /** The edge's speed (PDT ms per room ms) is taken as at least this: a stopped edge still ends a hold. */
  minEdgeSpeed: 0.1,
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
  /** The newest PDT (ms) the player's playlist lists, parts included (the live edge it can load), null if unknown. */
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
  /**
   * Pause, seek to `pdtMs`, start playing at room time `startAtRoomMs`. `short`: near the live
   * edge, it leaves less than the learned lead (so a late start teaches no longer lead).
   */
  | { kind: 'rendezvous'; pdtMs: number; startAtRoomMs: number; errorMs: number | null; short: boolean }
  /**
   * The party is at (or past) the newest media this player can load: no rendezvous can meet it.
   * Play on as near as it can (`reachPdtMs`) until the host holds the party back (decideEdgeHold).
   */
  | { kind: 'edge'; reachPdtMs: number; errorMs: number };

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
    return { kind: 'rendezvous', pdtMs: target, startAtRoomMs: state.at, errorMs, short: false };
  }
  if (errorMs === null) return { kind: 'unknown' };
  if (local.paused || Math.abs(errorMs) >= t.seekMs) return meetParty(state, roomNowMs, local.availablePdtMs ?? null, leadMs, errorMs);
  const atBase = local.playbackRate === state.rate;
  if (Math.abs(errorMs) <= t.deadbandMs && !atBase) return { kind: 'rate', rate: local.playbackRate, errorMs, apply: false };
  const rate = followRate(state.rate, errorMs);
  return { kind: 'rate', rate, errorMs, apply: atBase || Math.abs(rate - local.playbackRate) >= t.minRateStep };
}

/**
 * The rendezvous of a player `errorMs` off a playing party: `lead` ms from now where the party will
 * be then, if this player can load that media now; nearer the live edge, at the newest media it
 * can load, when the party gets there — never past it, where a seek lands short or waits for
 * media that is not listed yet (the start is late, the next rendezvous aims past the edge again).
 */
function meetParty(state: PlaybackState, roomNowMs: number, availablePdtMs: number | null, leadMs: number, errorMs: number): SyncDecision {
  const t = SYNC_THRESHOLDS;
  const lead = Math.max(t.minLeadMs, leadMs);
  const reach = availablePdtMs === null ? null : availablePdtMs - t.edgeSafetyMs;
  const aim = partyPdtAt(state, roomNowMs + lead);
  if (reach === null || aim <= reach) return { kind: 'rendezvous', pdtMs: aim, startAtRoomMs: roomNowMs + lead, errorMs, short: false };
  const untilReach = (reach - partyPdtAt(state, roomNowMs)) / state.rate;
  if (untilReach >= t.minLeadMs) return { kind: 'rendezvous', pdtMs: reach, startAtRoomMs: roomNowMs + untilReach, errorMs, short: true };
  return { kind: 'edge', reachPdtMs: reach, errorMs };
}

export interface LiveEdge {
  /** The newest PDT (ms) the host's playlist lists, parts included. */
  pdtMs: number;
  /** How fast that edge has advanced lately (PDT ms per room ms; 1 while the ladder keeps real time). */
  speed: number;
  /** The playlist's PART-HOLD-BACK (ms): how far behind the edge a low-latency player plays. */
  holdBackMs: number;
}

/**
 * Host only: whether the party runs too close to the live edge for its members to meet it, and
 * the hold that moves it back — the party's frame now (or where a scheduled start holds it; a
 * frame past what members can load moves back to the threshold), with the start moved to when
 * the edge will be far enough ahead again, at the edge's measured speed.
 * Far enough is the playlist's hold-back, the rendezvous safety and the lead a member needs (the
 * host's learned lead, at least the default), plus a hysteresis so the party then plays a while.
 * A hold longer than the room accepts is given in steps: each extends the start before it comes.
 */
export function decideEdgeHold(
  state: PlaybackState,
  roomNowMs: number,
  edge: LiveEdge,
  leadMs: number = SYNC_THRESHOLDS.defaultLeadMs,
): { pdtMs: number; startAtRoomMs: number } | null {
  const t = SYNC_THRESHOLDS;
  // A start further away is judged again nearer the time, when the edge has moved on: a hold is
  // extended every second or two, not on every step, and before its start has come.
  if (!state.playing || state.rate <= 0 || state.at - roomNowMs > t.holdRejudgeMs) return null;
  const from = Math.max(roomNowMs, state.at);
  const party = partyPdtAt(state, from);
  const speed = Math.max(t.minEdgeSpeed, edge.speed);
  const lowMs = edge.holdBackMs + t.edgeSafetyMs + clamp(leadMs, t.defaultLeadMs, t.maxHoldLeadMs);
  const marginAtStart = edge.pdtMs + (from - roomNowMs) * speed - party;
  if (marginAtStart >= lowMs * state.rate) return null;
  // A party already past what a member can meet (a hold decided late: a busy page, a slow round
  // trip) is moved back to the threshold: held where it is, it would wait for an edge that, slow
  // as it is, may take minutes to get there, and nobody can show those frames meanwhile anyway.
  const pos = party <= edge.pdtMs - t.edgeSafetyMs - t.minLeadMs ? party : edge.pdtMs - lowMs * state.rate;
  const holdMs = Math.min(t.maxHoldMs, ((lowMs + t.holdHysteresisMs) * state.rate - (edge.pdtMs - pos)) / speed);
  return { pdtMs: pos, startAtRoomMs: Math.round(roomNowMs + holdMs) };
}

/**
 * The live edge's speed from samples of (room time, edge PDT), ms per ms, over the newest
 * `windowMs`; 1 (real time) until the samples span half that window.
 */
export function edgeSpeed(samples: ReadonlyArray<{ roomMs: number; pdtMs: number }>, windowMs = 6000): number {
  const last = samples[samples.length - 1];
  if (!last) return 1;
  const first = samples.find((x) => x.roomMs >= last.roomMs - windowMs)!;
  const span = last.roomMs - first.roomMs;
  return span < windowMs / 2 ? 1 : Math.max(0, (last.pdtMs - first.pdtMs) / span);
}

/** The rate that removes `errorMs` (local − party) with the controller's time constant; never exactly `base`. */
export function followRate(base: number, errorMs: number): number {
  const t = SYNC_THRESHOLDS;
  const offset = clamp(-errorMs / 1000 / t.tauSec, -t.maxRateOffset, t.maxRateOffset);
  return base * (1 + (Math.abs(offset) < t.minRateOffset ? (errorMs > 0 ? -t.minRateOffset : t.minRateOffset) : offset));
}

/**
 * After a rendezvous that was ready `readyLateMs` after its time (negative: early), having taken
 * `tookMs` to seek and buffer, the next lead: twice as long after a late one; a fifth shorter
 * (never under the default) after one ready in less than half the lead, so a lead learned in a
 * slow moment (a loaded machine) comes back down, and the party's hold-back with it.
 */
export function nextLead(leadMs: number, readyLateMs: number, tookMs: number = leadMs): number {
  const t = SYNC_THRESHOLDS;
  if (readyLateMs > 0) return Math.min(t.maxLeadMs, Math.max(leadMs * 2, readyLateMs + leadMs));
  if (tookMs < leadMs / 2) return Math.max(t.defaultLeadMs, Math.round(leadMs * 0.8));
  return leadMs;
}

function clamp(x: number, lo: number, hi: number): number {
  return Math.min(hi, Math.max(lo, x));
}
