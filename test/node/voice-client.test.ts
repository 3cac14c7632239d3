// The browser voice client's pure parts, in Node: which side of each pair offers (so exactly one
// does, whatever order seats appear in), what to open and close as seats come and go, and the
// speaking detector that turns audio levels into the indicator without flicker.
import { describe, expect, it } from 'vitest';
import { planMesh, isOfferer } from '../../core/rooms/voice-mesh-plan.ts';
import { SPEAKING, SpeakingDetector, dbfs, rms } from '../../core/rooms/voice-activity.ts';
import type { VoiceMember, VoiceState } from '../../core/rooms/voice-protocol.ts';

const seat = (conn: string): VoiceMember => ({
  conn,
  uid: `a:${conn}`,
  name: conn,
  role: 'viewer',
  muted: false,
  forced: false,
  speaking: false,
  camera: false,
});
const mesh = (...conns: string[]): VoiceState => ({ mode: 'mesh', members: conns.map(seat) });

describe('the mesh plan', () => {
  it('has exactly one offerer per pair, seen from either side', () => {
    const conns = ['k2', 'A9', 'b1', 'Zz', '0x'];
    for (const a of conns) for (const b of conns) if (a !== b) expect(isOfferer(a, b)).not.toBe(isOfferer(b, a));
    const v = mesh(...conns);
    const offers = conns.flatMap((me) => planMesh(me, v, []).offer.map((to) => `${me}>${to}`));
    const awaits = conns.flatMap((me) => planMesh(me, v, []).await.map((from) => `${from}>${me}`));
    expect(offers.sort()).toEqual(awaits.sort());
    expect(offers).toHaveLength((conns.length * (conns.length - 1)) / 2);
  });

  it('opens what is missing and closes what left, the mode changed, or this member’s seat went', () => {
    expect(planMesh('b', mesh('a', 'b', 'c', 'd'), ['a', 'x'])).toEqual({ offer: ['c', 'd'], await: [], close: ['x'] });
    expect(planMesh('b', { mode: 'sfu', members: mesh('a', 'b').members }, ['a'])).toEqual({ offer: [], await: [], close: ['a'] });
    expect(planMesh('b', mesh('a', 'c'), ['a', 'c'])).toEqual({ offer: [], await: [], close: ['a', 'c'] });
    expect(planMesh(null, mesh('a'), [])).toEqual({ offer: [], await: [], close: [] });
  });
});

describe('the speaking detector', () => {
  it('starts after the attack time above the on level, and holds through pauses shorter than the release', () => {
    const d = new SpeakingDetector();
    const loud = SPEAKING.onDb + 10;
    const quiet = SPEAKING.offDb - 10;
    const between = (SPEAKING.onDb + SPEAKING.offDb) / 2;
    expect(d.update(loud, 0)).toBe(false);
    expect(d.update(loud, SPEAKING.attackMs - 1)).toBe(false);
    expect(d.update(loud, SPEAKING.attackMs)).toBe(true);
    expect(d.speaking).toBe(true);
    // A level between the thresholds keeps speaking; a short pause does not end it.
    expect(d.update(between, 100)).toBe(false);
    expect(d.update(quiet, 200)).toBe(false);
    expect(d.update(loud, 300)).toBe(false);
    expect(d.update(quiet, 400)).toBe(false);
    expect(d.update(quiet, 400 + SPEAKING.releaseMs)).toBe(true);
    expect(d.speaking).toBe(false);
    // A click (one loud reading) is not speech.
    expect(d.update(loud, 2000)).toBe(false);
    expect(d.update(quiet, 2020)).toBe(false);
    expect(d.update(loud, 2040 + SPEAKING.attackMs - 1)).toBe(false);
    expect(d.speaking).toBe(false);
  });

  it('measures RMS and dBFS', () => {
    const tone = Array.from({ length: 4800 }, (_, i) => 0.5 * Math.sin((2 * Math.PI * 440 * i) / 48_000));
    expect(rms(tone)).toBeCloseTo(0.5 / Math.SQRT2, 3);
    expect(dbfs(rms(tone))).toBeCloseTo(-9.03, 1);
    expect(dbfs(0)).toBe(-Infinity);
  });
});
