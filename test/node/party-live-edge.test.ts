// The watch party near the live edge (core/player/party-sync.ts): a member's rendezvous never aims
// at media its playlist does not list yet, and the host holds the party back when a ladder that
// encodes below real time lets it run into the edge, so every member can still meet it.
import { describe, expect, it } from 'vitest';
import { SYNC_THRESHOLDS, decideEdgeHold, decideSync, edgeSpeed, partyPdtAt, wrapPdt } from '../../core/player/party-sync.ts';
import type { PlaybackState } from '../../core/rooms/room-protocol.ts';

const NOW = Date.UTC(2026, 11, 3, 16, 0, 0);
const T = SYNC_THRESHOLDS;
const playing = (s: Partial<PlaybackState> = {}): PlaybackState => ({
  playing: true,
  position: wrapPdt(NOW - 10_000),
  rate: 1,
  at: NOW - 5000,
  by: 't:host',
  version: 3,
  ...s,
});

describe("a member's rendezvous near the live edge", () => {
  const party = partyPdtAt(playing(), NOW);
  /** A member stalled 1 s behind the party, whose playlist lists media up to `edgeAhead` ms past the party. */
  const stalled = (edgeAhead: number) => ({ pdtMs: party - 1000, availablePdtMs: party + edgeAhead, paused: false, playbackRate: 1.0002 });

  it('never aims past the newest media the player can load, nor sooner than a start takes', () => {
    for (const lead of [600, 1200, 2400, 8000]) {
      for (let edgeAhead = -3000; edgeAhead <= 10_000; edgeAhead += 50) {
        const d = decideSync(playing(), NOW, stalled(edgeAhead), lead);
        const reach = party + edgeAhead - T.edgeSafetyMs;
        if (d.kind === 'rendezvous') {
          expect(d.pdtMs, `lead ${lead}, edge ${edgeAhead} ms ahead`).toBeLessThanOrEqual(reach + 1e-6);
          expect(d.startAtRoomMs - NOW).toBeGreaterThanOrEqual(T.minLeadMs - 1e-6);
          // It meets the party: where the party is at the start.
          expect(d.pdtMs).toBeCloseTo(partyPdtAt(playing(), d.startAtRoomMs), 6);
        } else {
          // Closer than that, nothing it can seek to meets the party.
          expect(d, `lead ${lead}, edge ${edgeAhead} ms ahead`).toMatchObject({ kind: 'edge', reachPdtMs: reach });
          expect(reach - party).toBeLessThan(T.minLeadMs);
        }
      }
    }
  });

  it('leaves the learned lead wherever the listed media allows it, and says when it leaves less', () => {
    expect(decideSync(playing(), NOW, stalled(5000), 2400)).toMatchObject({ kind: 'rendezvous', startAtRoomMs: NOW + 2400, short: false });
    const near = decideSync(playing(), NOW, stalled(1250), 2400);
    expect(near).toMatchObject({ kind: 'rendezvous', startAtRoomMs: NOW + 1000, pdtMs: party + 1000, short: true });
  });

  it('does not seek a member into a party that has run past its live edge', () => {
    expect(decideSync(playing(), NOW, { ...stalled(-2000), paused: true }, 600)).toMatchObject({ kind: 'edge', errorMs: -1000 });
  });
});

describe("the host's hold at the live edge", () => {
  const party = partyPdtAt(playing(), NOW);
  const edge = (ahead: number, speed = 1) => ({ pdtMs: party + ahead, speed, holdBackMs: 600 });
  /** The threshold: PART-HOLD-BACK + the rendezvous safety + the default lead. */
  const LOW = 600 + T.edgeSafetyMs + T.defaultLeadMs;

  it('leaves a party far enough from the edge alone', () => {
    expect(decideEdgeHold(playing(), NOW, edge(LOW + 1))).toBeNull();
    expect(decideEdgeHold(playing(), NOW, edge(8000, 0.3))).toBeNull();
    expect(decideEdgeHold(playing({ playing: false }), NOW, edge(-5000))).toBeNull();
  });

  it('holds the frame the party is on until the edge is a hold-back, a lead and a second ahead', () => {
    expect(decideEdgeHold(playing(), NOW, edge(1000))).toEqual({ pdtMs: party, startAtRoomMs: NOW + LOW + T.holdHysteresisMs - 1000 });
    // The learned lead counts, up to 1.2 s: a host that needs longer to meet the party keeps it
    // further back, but not seconds further for one slow moment.
    expect(decideEdgeHold(playing(), NOW, edge(1800), 1000)).toEqual({
      pdtMs: party,
      startAtRoomMs: NOW + 600 + T.edgeSafetyMs + 1000 + T.holdHysteresisMs - 1800,
    });
    expect(decideEdgeHold(playing(), NOW, edge(1800), 8000)).toEqual({
      pdtMs: party,
      startAtRoomMs: NOW + 600 + T.edgeSafetyMs + T.maxHoldLeadMs + T.holdHysteresisMs - 1800,
    });
    expect(decideEdgeHold(playing(), NOW, edge(600 + T.edgeSafetyMs + T.maxHoldLeadMs), 8000)).toBeNull();
    // A ladder at a third of real time: the edge takes three times as long (the room takes 5 s at most).
    expect(decideEdgeHold(playing(), NOW, edge(1000, 1 / 3))).toEqual({ pdtMs: party, startAtRoomMs: NOW + T.maxHoldMs });
  });

  it('moves a party that already ran past what members can load back behind the edge', () => {
    expect(decideEdgeHold(playing(), NOW, edge(-5000))).toEqual({ pdtMs: party - 5000 - LOW, startAtRoomMs: NOW + T.holdHysteresisMs });
    expect(decideEdgeHold(playing(), NOW, edge(T.edgeSafetyMs + T.minLeadMs - 1))).toMatchObject({
      pdtMs: party + T.edgeSafetyMs + T.minLeadMs - 1 - LOW,
    });
    // Still meetable: the frame is held, not moved.
    expect(decideEdgeHold(playing(), NOW, edge(T.edgeSafetyMs + T.minLeadMs))).toMatchObject({ pdtMs: party });
  });

  it('judges a scheduled start (a hold, a command) in its last 2.5 s, against the edge it will have then', () => {
    const held = playing({ position: wrapPdt(party), at: NOW + T.holdRejudgeMs + 1 });
    expect(decideEdgeHold(held, NOW, edge(0, 0.1))).toBeNull();
    const soon = playing({ position: wrapPdt(party), at: NOW + 900 });
    // The edge at the start will be 900 × 0.5 further: 1450 ahead, enough.
    expect(decideEdgeHold(soon, NOW, edge(1000, 0.5))).toBeNull();
    expect(decideEdgeHold(soon, NOW, edge(500))).toEqual({ pdtMs: party, startAtRoomMs: NOW + LOW + T.holdHysteresisMs - 500 });
    // An edge that stopped (the publisher went away) is still taken to move a little: the hold
    // goes on in steps of the longest start the room accepts, not a command a step.
    // (Its frame, at the edge itself, is one no member can meet: it moves back too.)
    expect(decideEdgeHold(soon, NOW, edge(0, 0))).toEqual({ pdtMs: party - LOW, startAtRoomMs: NOW + T.maxHoldMs });
    expect(decideEdgeHold(soon, NOW, edge(800, 0))).toEqual({ pdtMs: party, startAtRoomMs: NOW + T.maxHoldMs });
  });

  it('measures the edge speed over the last seconds, real time until it knows', () => {
    const at = (speed: number, n: number) => Array.from({ length: n }, (_, i) => ({ roomMs: NOW + i * 50, pdtMs: NOW + i * 50 * speed }));
    expect(edgeSpeed([])).toBe(1);
    expect(edgeSpeed(at(0.34, 20))).toBe(1);
    expect(edgeSpeed(at(0.34, 160))).toBeCloseTo(0.34, 6);
    expect(edgeSpeed(at(1, 160))).toBeCloseTo(1, 6);
  });

  /**
   * A minute of a party on a ladder at `speed` × real time that lists 200 ms parts, the host
   * judging every 50 ms step as the page does; at every step a member that has to meet the party
   * (paused, its playlist at the same edge) gets a rendezvous it can make.
   */
  function simulate(speed: number, startBehindMs: number) {
    const PART = 200;
    const edgeAt = (t: number) => NOW + Math.floor((speed * t) / PART) * PART;
    let s = playing({ position: wrapPdt(edgeAt(0) - startBehindMs), at: NOW - 1 });
    const samples: Array<{ roomMs: number; pdtMs: number }> = [];
    let holds = 0;
    let stranded = 0;
    let nearest = Number.POSITIVE_INFINITY;
    for (let t = 0; t < 60_000; t += 50) {
      const now = NOW + t;
      const listed = edgeAt(t);
      samples.push({ roomMs: now, pdtMs: listed });
      const hold = decideEdgeHold(s, now, { pdtMs: listed, speed: edgeSpeed(samples.slice(-160)), holdBackMs: 600 });
      if (hold) {
        expect(hold.startAtRoomMs - now).toBeLessThanOrEqual(5000);
        s = { ...s, position: wrapPdt(hold.pdtMs), at: hold.startAtRoomMs, version: s.version + 1 };
        holds++;
      }
      nearest = Math.min(nearest, listed - partyPdtAt(s, now));
      const member = decideSync(s, now, { pdtMs: listed - 20_000, availablePdtMs: listed, paused: true, playbackRate: 1 });
      if (member.kind === 'edge') stranded++;
    }
    return { holds, stranded, nearest, advanced: partyPdtAt(s, NOW + 60_000) - (edgeAt(0) - startBehindMs) };
  }

  it('keeps a party on a ladder at a third of real time where every member can meet it', () => {
    const r = simulate(0.34, 8000);
    expect(r.stranded).toBe(0);
    expect(r.nearest).toBeGreaterThanOrEqual(600 + T.edgeSafetyMs + T.minLeadMs);
    // It plays on at the ladder's pace, in holds of a few seconds, not a command a step.
    expect(r.advanced).toBeGreaterThan(0.8 * 0.34 * 60_000);
    expect(r.holds).toBeLessThan(30);
  });

  it('never holds a party that keeps its distance on a ladder at real time', () => {
    expect(simulate(1, 2100)).toMatchObject({ holds: 0, stranded: 0 });
  });
});
