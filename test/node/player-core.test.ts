// The player's pure core (core/player): watch-party decisions and coordinates, the media-time
// ↔ program-date-time map, what a viewer is told for each refusal, page URLs, and how QoE events
// become beacon batches. Plus the type check of the DOM code, which the repository's tsconfig
// leaves out (public/tsconfig.json).
import { spawnSync } from 'node:child_process';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { ROOT } from '../../scripts/local-stack.ts';
import {
  PDT_WRAP_SEC,
  SYNC_THRESHOLDS,
  decideSync,
  followRate,
  nextLead,
  partyPdtAt,
  unwrapPdt,
  wrapPdt,
} from '../../core/player/party-sync.ts';
import { mediaTimeAtPdt, pdtAtMediaTime, pdtRange } from '../../core/player/pdt-map.ts';
import { formatBehind, noticeForResponse } from '../../core/player/player-status.ts';
import { parsePageUrl, partyInviteUrl, playbackUrl } from '../../core/player/page-params.ts';
import { aheadOfPicture, stampOf } from '../../core/player/in-step.ts';
import { QoeRecorder, QOE_PERIOD_MS } from '../../core/player/qoe-recorder.ts';
import { QoeBatch } from '../../core/contracts/qoe.ts';
import type { PlaybackState } from '../../core/rooms/room-protocol.ts';

const NOW = Date.UTC(2026, 10, 21, 19, 0, 0);
const state = (s: Partial<PlaybackState>): PlaybackState => ({
  playing: true,
  position: wrapPdt(NOW - 5000),
  rate: 1,
  at: NOW - 1000,
  by: 't:host',
  version: 1,
  ...s,
});

describe('party coordinates', () => {
  it('wraps a program-date-time into a protocol position (< 10⁷ s) and unwraps it near the room clock', () => {
    for (const pdt of [NOW, NOW - 7_200_000, NOW + 123.456]) {
      const pos = wrapPdt(pdt);
      expect(pos).toBeGreaterThanOrEqual(0);
      expect(pos).toBeLessThan(PDT_WRAP_SEC);
      expect(unwrapPdt(pos, NOW)).toBeCloseTo(pdt, 3);
    }
    // Across a wrap boundary the nearest candidate wins.
    const boundary = PDT_WRAP_SEC * 1000 * 1_795_000;
    expect(unwrapPdt(wrapPdt(boundary - 2000), boundary + 1000)).toBeCloseTo(boundary - 2000, 3);
  });

  it('holds the start position until `at`, then advances at the party rate', () => {
    const s = state({ position: wrapPdt(NOW), at: NOW + 500 });
    expect(partyPdtAt(s, NOW)).toBeCloseTo(NOW, 3);
    expect(partyPdtAt(s, NOW + 500)).toBeCloseTo(NOW, 3);
    expect(partyPdtAt(s, NOW + 1500)).toBeCloseTo(NOW + 1000, 3);
    expect(partyPdtAt({ ...s, rate: 2 }, NOW + 1500)).toBeCloseTo(NOW + 2000, 3);
    expect(partyPdtAt({ ...s, playing: false }, NOW + 9000)).toBeCloseTo(NOW, 3);
  });
});

describe('decideSync thresholds', () => {
  const target = partyPdtAt(state({}), NOW);
  const local = (errorMs: number, over: object = {}) => ({ pdtMs: target + errorMs, paused: false, playbackRate: 1.0002, ...over });

  it('leaves the rate alone within the 1 ms dead band', () => {
    expect(decideSync(state({}), NOW, local(0.8))).toMatchObject({ kind: 'rate', apply: false });
  });

  it('nudges the rate in proportion to the error (τ = 0.8 s), within ±10 %', () => {
    const d = decideSync(state({}), NOW, local(40));
    expect(d.kind).toBe('rate');
    if (d.kind === 'rate') expect(d.rate).toBeCloseTo(1 - 0.04 / 0.8, 6);
    const far = decideSync(state({}), NOW, local(-390));
    if (far.kind === 'rate') expect(far.rate).toBeCloseTo(1.1, 6);
  });

  it('never settles on exactly the party rate (Chromium’s audio path switch costs ~50 ms)', () => {
    for (const e of [-0.5, 0, 0.1, 0.5, 2, -2]) expect(followRate(1, e)).not.toBe(1);
    expect(decideSync(state({}), NOW, local(0.1, { playbackRate: 1 }))).toMatchObject({ kind: 'rate', apply: true });
  });

  it('seeks (rendezvous) from 400 ms, or when paused while the party plays, `lead` ms ahead', () => {
    const d = decideSync(state({}), NOW, local(400), 600);
    expect(d).toMatchObject({ kind: 'rendezvous', startAtRoomMs: NOW + 600 });
    if (d.kind === 'rendezvous') expect(d.pdtMs).toBeCloseTo(target + 600, 3);
    expect(decideSync(state({}), NOW, local(0, { paused: true }))).toMatchObject({ kind: 'rendezvous' });
    expect(decideSync(state({}), NOW, local(399))).toMatchObject({ kind: 'rate' });
  });

  it('near the live edge, aims at the newest loadable media and starts when the party gets there', () => {
    const d = decideSync(state({}), NOW, local(-1000, { availablePdtMs: target + 700 }), 600);
    expect(d.kind).toBe('rendezvous');
    if (d.kind === 'rendezvous') {
      expect(d.pdtMs).toBeCloseTo(target + 700 - SYNC_THRESHOLDS.edgeSafetyMs, 3);
      expect(d.startAtRoomMs).toBeCloseTo(NOW + 450, 3);
    }
    // Never sooner than the time a start takes, and never past the loadable media: closer than
    // that, no rendezvous meets the party (test/node/party-live-edge.test.ts).
    const tight = decideSync(state({}), NOW, local(-1000, { availablePdtMs: target + 300 }), 600);
    expect(tight).toMatchObject({ kind: 'edge', reachPdtMs: target + 300 - SYNC_THRESHOLDS.edgeSafetyMs });
  });

  it('waits at the start position for a scheduled start, and leaves a player that started early alone', () => {
    const s = state({ position: wrapPdt(NOW), at: NOW + 300 });
    expect(decideSync(s, NOW, { pdtMs: NOW, paused: true, playbackRate: 1 })).toMatchObject({
      kind: 'rendezvous',
      startAtRoomMs: NOW + 300,
    });
    expect(decideSync(s, NOW + 280, { pdtMs: NOW + 25, paused: false, playbackRate: 1.0002 })).toMatchObject({
      kind: 'rate',
      apply: false,
    });
  });

  it('pauses with the party, seeking only beyond half a frame', () => {
    const s = state({ playing: false, position: wrapPdt(NOW) });
    expect(decideSync(s, NOW + 5000, { pdtMs: NOW + 10, paused: true, playbackRate: 1 })).toMatchObject({ kind: 'paused', seek: false });
    expect(decideSync(s, NOW + 5000, { pdtMs: NOW + 80, paused: false, playbackRate: 1 })).toMatchObject({
      kind: 'paused',
      seek: true,
      pdtMs: NOW,
    });
  });

  it('learns a longer lead after a late start, up to 8 s, and a shorter one after quick ones', () => {
    expect(nextLead(600, -5)).toBe(600);
    expect(nextLead(8000, -6000, 2000)).toBe(6400);
    expect(nextLead(700, -600, 100)).toBe(SYNC_THRESHOLDS.defaultLeadMs);
    expect(nextLead(2400, -900, 1500)).toBe(2400);
    expect(nextLead(600, 100)).toBe(1200);
    expect(nextLead(600, 2000)).toBe(2600);
    expect(nextLead(6000, 100)).toBe(SYNC_THRESHOLDS.maxLeadMs);
  });
});

describe('program-date-time map', () => {
  const frags = [
    { start: 10, duration: 1, programDateTime: NOW },
    { start: 11, duration: 1, programDateTime: NOW + 1000 },
    { start: 12.002, duration: 1, programDateTime: NOW + 2000 },
  ];
  it('maps media time to PDT from the fragment that holds it, and back', () => {
    expect(pdtAtMediaTime(frags, 10.5)).toBeCloseTo(NOW + 500, 6);
    expect(pdtAtMediaTime(frags, 12.502)).toBeCloseTo(NOW + 2500, 6);
    expect(mediaTimeAtPdt(frags, NOW + 2500)).toBeCloseTo(12.502, 9);
    expect(mediaTimeAtPdt(frags, NOW + 1999)).toBeCloseTo(11.999, 9);
    expect(pdtRange(frags)).toEqual({ first: NOW, last: NOW + 3000 });
    expect(pdtAtMediaTime([{ start: 0, duration: 1, programDateTime: null }], 0.5)).toBeNull();
  });
});

describe('what the viewer is told', () => {
  it('names each refusal of docs/api.md in words, with retry only where it helps', () => {
    expect(noticeForResponse(401, 'token_required')).toMatchObject({
      kind: 'forbidden',
      title: 'This stream needs an access link',
      retry: false,
    });
    expect(noticeForResponse(401, 'token_expired')).toMatchObject({ kind: 'forbidden', title: 'This access link has expired' });
    expect(noticeForResponse(403, 'geo_blocked')).toMatchObject({ kind: 'forbidden', title: 'Not available in your region' });
    expect(noticeForResponse(403, 'something_new')).toMatchObject({ kind: 'forbidden' });
    expect(noticeForResponse(404, 'stream_not_live')).toMatchObject({ kind: 'not-live', retryAfterMs: 3000 });
    expect(noticeForResponse(404, 'stream_not_found')).toMatchObject({ kind: 'not-found', retry: false });
    expect(noticeForResponse(503, 'key_lookup_failed')).toMatchObject({ kind: 'network', retry: true });
    expect(noticeForResponse(200, undefined)).toBeNull();
    expect(formatBehind(12.4)).toBe('12 s');
    expect(formatBehind(185)).toBe('3:05');
    expect(formatBehind(3729)).toBe('1:02:09');
  });
});

describe('page URLs', () => {
  it('reads the watch and party addresses and carries the playback token on', () => {
    expect(parsePageUrl('https://e.test/watch/st1?token=T')).toMatchObject({
      mode: 'watch',
      streamId: 'st1',
      token: 'T',
      roomId: 'st1',
      inStep: true,
    });
    expect(parsePageUrl('https://e.test/party/fri-night?stream=st1&roomToken=R&name=Ada')).toMatchObject({
      mode: 'party',
      streamId: 'st1',
      roomId: 'fri-night',
      roomToken: 'R',
      name: 'Ada',
      token: null,
    });
    expect(parsePageUrl('https://e.test/watch/bad%20id').streamId).toBeNull();
    expect(playbackUrl('https://e.test', 'st1', 'index.m3u8', 'a.b.c')).toBe('https://e.test/live/st1/index.m3u8?token=a.b.c');
    expect(partyInviteUrl('https://e.test/party/p?stream=st1&roomToken=R&name=Hana')).toBe('https://e.test/party/p?stream=st1');
  });

  it('holds interactions in step with the video by default; ?sync=0 (or the old chatSync=0) turns it off', () => {
    expect(parsePageUrl('https://e.test/watch/st1').inStep).toBe(true);
    expect(parsePageUrl('https://e.test/party/p?stream=st1').inStep).toBe(true);
    expect(parsePageUrl('https://e.test/watch/st1?chatSync=1').inStep).toBe(true);
    expect(parsePageUrl('https://e.test/watch/st1?sync=0').inStep).toBe(false);
    expect(parsePageUrl('https://e.test/party/p?stream=st1&sync=0').inStep).toBe(false);
    expect(parsePageUrl('https://e.test/watch/st1?chatSync=0').inStep).toBe(false);
  });
});

describe('interactions in step with the stream (core/player/in-step.ts)', () => {
  const T = Date.UTC(2026, 11, 3, 12, 0, 0);
  const on = { enabled: true, own: false };
  it('holds what was sent at a moment the picture has not reached, and nothing else', () => {
    expect(aheadOfPicture(T + 1, T, on)).toBe(true);
    expect(aheadOfPicture(T, T, on)).toBe(false);
    expect(aheadOfPicture(T - 8000, T, on)).toBe(false);
    // Unstamped items, and pages that do not know their picture's time yet, hold nothing.
    expect(aheadOfPicture(undefined, T, on)).toBe(false);
    expect(aheadOfPicture(null, T, on)).toBe(false);
    expect(aheadOfPicture(T + 1, null, on)).toBe(false);
    // Never the viewer's own, and nothing when the viewer turned it off.
    expect(aheadOfPicture(T + 5000, T, { enabled: true, own: true })).toBe(false);
    expect(aheadOfPicture(T + 5000, T, { enabled: false, own: false })).toBe(false);
  });

  it('stamps what a page sends with its picture’s program-date-time, whole milliseconds, only a real one', () => {
    expect(stampOf(T + 0.6)).toBe(T + 1);
    expect(stampOf(null)).toBeUndefined();
    // A stream without EXT-X-PROGRAM-DATE-TIME maps media time near zero: not a moment of the stream.
    expect(stampOf(12_345)).toBeUndefined();
  });
});

describe('QoE recorder', () => {
  it('batches first frame, stalls, switches, latency and errors, with a heartbeat every period', () => {
    const r = new QoeRecorder({ streamId: 'st1', session: 'session-1234', page: 'watch', now: 0 });
    r.firstFrame(640, 100);
    // The first frame is sent at once (it registers the viewer), with a heartbeat.
    expect(r.tick(100)[0]!.events).toEqual([
      { type: 'ttff', ms: 640 },
      { type: 'heartbeat', playingMs: 0, stalledMs: 0 },
    ]);
    r.renditionSwitch(null, '360p', 700_000, true);
    r.latency(1.234, 200);
    r.latency(9, 300); // sampled at most every 5 s: dropped
    r.stalled(1000);
    r.playing(1500);
    r.error('networkError', 'fragLoadError', false);
    expect(r.tick(5000)).toEqual([]);
    const [batch, ...rest] = r.tick(QOE_PERIOD_MS + 200);
    expect(rest).toEqual([]);
    expect(QoeBatch.safeParse(batch).success).toBe(true);
    expect(batch!.events).toEqual([
      { type: 'switch', from: null, to: '360p', bitrate: 700_000, auto: true },
      { type: 'latency', sec: 1.234 },
      { type: 'rebuffer', ms: 500 },
      { type: 'error', kind: 'networkError', detail: 'fragLoadError', fatal: false },
      { type: 'heartbeat', playingMs: 1000 - 100 + (QOE_PERIOD_MS + 200 - 1500), stalledMs: 500 },
    ]);
  });

  it('never exceeds 20 events a batch (Analytics Engine takes 25 points an invocation)', () => {
    const r = new QoeRecorder({ streamId: 'st1', session: 'session-1234', page: 'party', now: 0 });
    for (let i = 0; i < 45; i++) r.error('e', String(i), false);
    const batches = r.tick(0, true);
    expect(batches.map((b) => b.events.length)).toEqual([20, 20, 6]);
  });
});

describe('the browser code', () => {
  it('type-checks against the DOM (public/tsconfig.json)', () => {
    const tsc = spawnSync(join(ROOT, 'node_modules', '.bin', 'tsc'), ['-p', join(ROOT, 'public', 'tsconfig.json'), '--noEmit'], {
      encoding: 'utf8',
    });
    expect(tsc.stdout + tsc.stderr).toBe('');
    expect(tsc.status).toBe(0);
  });
});
