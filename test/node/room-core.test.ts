// The rooms' pure core, in Node: protocol parsing and text rules, tokens and sessions, the token
// bucket, clock-offset math and the shared state reducer.
import { describe, expect, it } from 'vitest';
import {
  ClientMessage,
  ROOM_LIMITS,
  ServerMessage,
  charCount,
  cleanText,
  formatResume,
  parseClientFrame,
  parseResume,
  type RoomEvent,
} from '../../core/rooms/room-protocol.ts';
import {
  addressKey,
  signAnonymousIdentity,
  signRoomToken,
  signSession,
  verifyAnonymousIdentity,
  verifyRoomToken,
  verifySession,
  base64url,
} from '../../core/auth/room-token.ts';
import { fullBucket, msUntil, takeToken } from '../../core/rooms/room-token-bucket.ts';
import { ClockEstimator, clockSample, playbackCorrection, playbackPositionAt } from '../../core/rooms/room-clock.ts';
import { applyEvents, emptySnapshot } from '../../core/rooms/room-state.ts';
import { mayDo, outranks } from '../../core/rooms/room-rules.ts';

describe('protocol: inbound frames', () => {
  it('accepts a valid chat and normalises its text', () => {
    const r = parseClientFrame(JSON.stringify({ type: 'chat', rid: 'a', text: '  hi\u0000\u202E there\n\n\n\nok  ' }));
    expect(r).toEqual({ ok: true, message: { type: 'chat', rid: 'a', text: 'hi there\n\nok' } });
  });

  it('checks size before parsing, then JSON, then the schema', () => {
    expect(parseClientFrame('x'.repeat(ROOM_LIMITS.maxFrameChars + 1))).toMatchObject({ ok: false, code: 'frame_too_large' });
    expect(parseClientFrame('{')).toMatchObject({ ok: false, code: 'bad_frame' });
    expect(parseClientFrame(new ArrayBuffer(2))).toMatchObject({ ok: false, code: 'bad_frame' });
    expect(parseClientFrame('null')).toMatchObject({ ok: false, code: 'bad_frame' });
    expect(parseClientFrame('{"type":"chat","rid":"r9"}')).toMatchObject({ ok: false, code: 'invalid_message', rid: 'r9' });
  });

  it('counts characters as code points and repairs lone surrogates', () => {
    expect(charCount('👍👍')).toBe(2);
    expect(cleanText('a\uD800b', true)).toBe('a\uFFFDb');
    expect(ClientMessage.safeParse({ type: 'chat', text: '😀'.repeat(ROOM_LIMITS.chatMaxChars) }).success).toBe(true);
    expect(ClientMessage.safeParse({ type: 'chat', text: '😀'.repeat(ROOM_LIMITS.chatMaxChars + 1) }).success).toBe(false);
  });

  it('keeps markup as inert text (clients render with textContent)', () => {
    const r = parseClientFrame(JSON.stringify({ type: 'chat', text: '<img src=x onerror=alert(1)>' }));
    expect(r).toMatchObject({ ok: true, message: { text: '<img src=x onerror=alert(1)>' } });
  });

  it('rejects unknown fields, types and reactions', () => {
    for (const m of [
      { type: 'react', reaction: 'lol' },
      { type: 'ping' },
      { type: 'chat', text: 'x', admin: true },
      { type: 'poll.vote', pollId: 0, option: 0 },
    ]) {
      expect(ClientMessage.safeParse(m).success).toBe(false);
    }
  });

  it('round-trips resume markers', () => {
    expect(parseResume(formatResume('abc123', 42))).toEqual({ epoch: 'abc123', seq: 42 });
    expect(parseResume('abc')).toBeNull();
    expect(parseResume('a b.1')).toBeNull();
  });

  it('describes server frames with schemas too', () => {
    expect(ServerMessage.safeParse({ type: 'pong', t0: 1, t1: 2, t2: 3 }).success).toBe(true);
    expect(ServerMessage.safeParse({ type: 'error', code: 'nope', reason: '' }).success).toBe(false);
  });
});

describe('room tokens (HS256)', () => {
  const secret = 's3cret';
  const now = 1_800_000_000;

  it('verifies a token it signed, for its room, before expiry', async () => {
    const t = await signRoomToken({ room: 'r1', name: 'Mo', role: 'moderator', exp: now + 60 }, secret);
    expect(await verifyRoomToken(t, secret, 'r1', now)).toEqual({
      ok: true,
      claims: { room: 'r1', name: 'Mo', role: 'moderator', exp: now + 60 },
    });
    expect(await verifyRoomToken(t, secret, 'r2', now)).toMatchObject({ ok: false, code: 'token_invalid' });
    expect(await verifyRoomToken(t, secret, 'r1', now + 60)).toMatchObject({ ok: false, code: 'token_expired' });
    expect(await verifyRoomToken(t, 'other', 'r1', now)).toMatchObject({ ok: false, code: 'token_invalid' });
  });

  it('refuses any algorithm but HS256, including alg "none"', async () => {
    const t = await signRoomToken({ room: 'r1', name: 'Mo', role: 'host', exp: now + 60 }, secret);
    const [, p, s] = t.split('.');
    const enc = (o: unknown) => base64url(new TextEncoder().encode(JSON.stringify(o)));
    expect(await verifyRoomToken(`${enc({ alg: 'none' })}.${p}.`, secret, 'r1', now)).toMatchObject({ ok: false });
    expect(await verifyRoomToken(`${enc({ alg: 'HS512' })}.${p}.${s}`, secret, 'r1', now)).toMatchObject({
      ok: false,
      reason: 'alg must be HS256',
    });
  });

  it('refuses a tampered payload and bad claims', async () => {
    const t = await signRoomToken({ room: 'r1', name: 'Mo', role: 'viewer', exp: now + 60 }, secret);
    const [h, , s] = t.split('.');
    const forged = base64url(new TextEncoder().encode(JSON.stringify({ room: 'r1', name: 'Mo', role: 'host', exp: now + 60 })));
    expect(await verifyRoomToken(`${h}.${forged}.${s}`, secret, 'r1', now)).toMatchObject({ ok: false, reason: 'bad signature' });
    const badRole = await signRoomToken({ room: 'r1', name: 'Mo', role: 'admin' as 'host', exp: now + 60 }, secret);
    expect(await verifyRoomToken(badRole, secret, 'r1', now)).toMatchObject({ ok: false, reason: 'bad claims' });
  });

  it('signs anonymous identities for the cookie and keys addresses without revealing them', async () => {
    const cookie = await signAnonymousIdentity('abcdefghijklmnop', 'k');
    expect(await verifyAnonymousIdentity(cookie, 'k')).toBe('abcdefghijklmnop');
    expect(await verifyAnonymousIdentity(cookie, 'other')).toBeNull();
    // A room session is not a cookie identity (different signing context), nor the reverse.
    expect(await verifyAnonymousIdentity(await signSession('r', 'abcdefghijklmnop', 'k'), 'k')).toBeNull();
    expect(await verifySession(cookie, 'r', 'k')).toBeNull();
    const key = await addressKey('203.0.113.7', 'k');
    expect(key).toMatch(/^[A-Za-z0-9_-]{16}$/);
    expect(key).not.toContain('203');
    expect(await addressKey('203.0.113.7', 'k')).toBe(key);
    expect(await addressKey('203.0.113.8', 'k')).not.toBe(key);
  });

  it('signs anonymous sessions bound to a room', async () => {
    const s = await signSession('r1', 'abcdefghijklmnop', secret);
    expect(await verifySession(s, 'r1', secret)).toBe('abcdefghijklmnop');
    expect(await verifySession(s, 'r2', secret)).toBeNull();
    expect(
      await verifySession(
        s.replace(/.$/, (c) => (c === 'A' ? 'B' : 'A')),
        'r1',
        secret,
      ),
    ).toBeNull();
  });
});

describe('token bucket', () => {
  const spec = { capacity: 3, refillPerSec: 2 };
  it('allows a burst of `capacity`, then refills at the given rate', () => {
    const b = fullBucket(spec, 0);
    expect([1, 2, 3, 4].map(() => takeToken(spec, b, 0))).toEqual([true, true, true, false]);
    expect(msUntil(spec, b, 0)).toBe(500);
    expect(takeToken(spec, b, 499)).toBe(false);
    expect(takeToken(spec, b, 1000)).toBe(true);
    expect(takeToken(spec, b, 10_000)).toBe(true);
    expect(b.tokens).toBe(2); // never above capacity
  });
});

describe('clock offset', () => {
  it('computes the NTP offset, delay and causal bounds of one exchange', () => {
    // Server is 1,000 ms ahead; 40 ms up, 60 ms down, 2 ms at the server.
    const s = clockSample(0, 1040, 1042, 102, 0);
    expect(s).toEqual({ offset: 990, delay: 100, lo: 940, hi: 1040, at: 102 });
  });

  it('narrows to the true offset as samples accumulate, within the bound it reports', () => {
    const est = new ClockEstimator(32);
    let seed = 7;
    const rnd = () => (seed = (seed * 16807) % 2147483647) / 2147483647;
    const theta = -12_345.6;
    let t = 0;
    for (let i = 0; i < 32; i++) {
      const up = 30 + 20 * rnd();
      const down = 30 + 20 * rnd();
      const t0 = t;
      const t1 = Math.floor(t0 + up + theta);
      const t2 = t1;
      const t3 = t0 + up + down;
      est.add(clockSample(t0, t1, t2, t3));
      t += 250;
    }
    const e = est.estimate()!;
    expect(Math.abs(e.offset - theta)).toBeLessThanOrEqual(e.uncertainty);
    expect(Math.abs(e.offset - theta)).toBeLessThan(3);
    expect(est.best()!.delay).toBeLessThan(80);
  });

  it('falls back to the lowest-delay sample when the window is inconsistent (clock stepped)', () => {
    const est = new ClockEstimator(8);
    est.add(clockSample(0, 1000, 1000, 10));
    est.add(clockSample(100, 600, 600, 106)); // local clock jumped forward by 500 ms
    const e = est.estimate()!;
    expect(e.offset).toBeCloseTo(497, 0);
    expect(e.samples).toBe(1);
  });

  it('ignores impossible samples', () => {
    const est = new ClockEstimator();
    est.add(clockSample(0, 50, 60, 5)); // negative delay
    expect(est.estimate()).toBeNull();
  });
});

describe('watch-party position', () => {
  const state = { playing: true, position: 100, rate: 2, at: 10_000, by: 'h', version: 1 };
  it('advances with room time at the playback rate, and stands still when paused', () => {
    expect(playbackPositionAt(state, 12_500)).toBe(105);
    expect(playbackPositionAt({ ...state, playing: false }, 99_999)).toBe(100);
  });
  it('nudges small drift and seeks large drift', () => {
    expect(playbackCorrection(state, 12_500, 105.01).action).toBe('none');
    expect(playbackCorrection(state, 12_500, 105.2)).toMatchObject({ action: 'nudge' });
    expect(playbackCorrection(state, 12_500, 105.2).rate).toBeLessThan(2);
    expect(playbackCorrection(state, 12_500, 110)).toMatchObject({ action: 'seek', target: 105 });
  });
});

describe('state reducer', () => {
  const msg = (id: number) => ({ id, uid: 'a:x', name: 'A', role: 'viewer' as const, text: `m${id}`, ts: id });
  it('appends chat once per id, keeps the last N and drops deleted messages', () => {
    const events: RoomEvent[] = [];
    for (let i = 1; i <= ROOM_LIMITS.historySize + 2; i++) events.push({ kind: 'chat', message: msg(i) });
    events.push({ kind: 'chat', message: msg(ROOM_LIMITS.historySize + 2) });
    events.push({ kind: 'chat.delete', id: 10 });
    const s = applyEvents(emptySnapshot(), events);
    expect(s.history).toHaveLength(ROOM_LIMITS.historySize - 1);
    expect(s.history[0]!.id).toBe(3);
    expect(s.history.some((m) => m.id === 10)).toBe(false);
  });

  it('keeps open polls and the most recent closed ones', () => {
    const poll = (id: number, open: boolean) => ({
      id,
      question: 'q',
      options: ['a', 'b'],
      counts: [0, 0],
      open,
      openedBy: 'h',
      openedAt: 0,
      closesAt: null,
      closedAt: open ? null : 1,
    });
    const events: RoomEvent[] = [{ kind: 'poll', poll: poll(1, true) }];
    for (let i = 2; i <= 9; i++) events.push({ kind: 'poll', poll: poll(i, false) });
    const s = applyEvents(emptySnapshot(), events);
    expect(s.polls.map((p) => p.id)).toEqual([1, 6, 7, 8, 9]);
  });

  it('does not modify the state it is given', () => {
    const s0 = emptySnapshot();
    applyEvents(s0, [
      { kind: 'slow', seconds: 5 },
      { kind: 'chat', message: msg(1) },
    ]);
    expect(s0).toEqual(emptySnapshot());
  });
});

describe('roles', () => {
  it('lets staff moderate, the host drive playback, and nobody outrank an equal', () => {
    expect(mayDo('viewer', 'chat')).toBe(true);
    expect(mayDo('viewer', 'poll.open')).toBe(false);
    expect(mayDo('moderator', 'mod.ban')).toBe(true);
    expect(mayDo('moderator', 'playback.set')).toBe(false);
    expect(mayDo('host', 'playback.set')).toBe(true);
    expect(outranks('moderator', 'viewer')).toBe(true);
    expect(outranks('moderator', 'moderator')).toBe(false);
    expect(outranks('host', 'moderator')).toBe(true);
  });
});
