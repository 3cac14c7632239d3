// The room's rules in one place, in Node: decideRoomMessage over a plain-data view — roles,
// bans, mutes, slow mode, the per-member chat rate, polls, moderation ranks and playback — with
// the exact reply and effects each message gets, and nothing changed in the view it read.
import { describe, expect, it } from 'vitest';
import { CLOSE, type PlaybackState, type Poll, type Role, type RoomBoundMessage } from '../../core/rooms/room-protocol.ts';
import { PLAYBACK_SKEW_MS, decideRoomMessage, replyFrame, type Sender } from '../../core/rooms/room-decisions.ts';
import { view, type Facts } from '../support/room-view.ts';
import { ROOM_RATE_LIMITS, type BucketState } from '../../core/rooms/room-token-bucket.ts';
import { decideAnonymousJoin, refillMs, joinsSpec } from '../../core/rooms/room-admission.ts';

const NOW = Date.UTC(2026, 0, 1, 12);

const ada: Sender = { conn: 'c-ada', uid: 'a:ada', name: 'Ada', role: 'viewer' };
const mo: Sender = { conn: 'c-mo', uid: 't:Mo', name: 'Mo', role: 'moderator' };
const hana: Sender = { conn: 'c-hana', uid: 't:Hana', name: 'Hana', role: 'host' };
const chat = (rid = 'r'): RoomBoundMessage => ({ type: 'chat', rid, text: 'hi' });

function poll(id: number, open = true, counts = [0, 0]): Poll {
  return {
    id,
    question: 'q',
    options: counts.map((_, i) => `o${i}`),
    counts,
    open,
    openedBy: 'Mo',
    openedAt: NOW - 1000,
    closesAt: null,
    closedAt: open ? null : NOW - 10,
  };
}

describe('decideRoomMessage: who may send what', () => {
  it('refuses a message the sender’s role does not allow, before anything else', () => {
    const d = decideRoomMessage(
      view({ sanctions: { 'a:ada': { banned: true } } }),
      ada,
      { type: 'poll.open', rid: 'p', question: 'q', options: ['a', 'b'] },
      NOW,
    );
    expect(d).toEqual({ reply: { type: 'error', rid: 'p', code: 'forbidden', reason: 'viewer may not poll.open' }, effects: [] });
    expect(decideRoomMessage(view(), mo, { type: 'playback.set', playing: true, position: 0, rate: 1 }, NOW).reply).toMatchObject({
      code: 'forbidden',
    });
  });

  it('refuses everything from a banned member', () => {
    const d = decideRoomMessage(view({ sanctions: { 'a:ada': { banned: true } } }), ada, chat(), NOW);
    expect(d).toEqual({ reply: { type: 'error', rid: 'r', code: 'banned', reason: 'you are banned from this room' }, effects: [] });
  });
});

describe('decideRoomMessage: chat', () => {
  it('stores an accepted message with the sender, the server time and the frame’s pdt, and acks its new id', () => {
    const d = decideRoomMessage(view(), ada, { type: 'chat', rid: 'c', text: 'hello', pdt: NOW - 5000 }, NOW);
    expect(d.reply).toEqual({ type: 'ack', rid: 'c', id: 'inserted' });
    expect(d.effects).toEqual([
      { kind: 'chat.pace', uid: 'a:ada', lastAt: NOW, bucket: { tokens: ROOM_RATE_LIMITS.viewerChat.capacity - 1, at: NOW } },
      { kind: 'chat.insert', message: { uid: 'a:ada', name: 'Ada', role: 'viewer', text: 'hello', ts: NOW, pdt: NOW - 5000 } },
    ]);
    expect(replyFrame(d.reply!, 42)).toBe('{"type":"ack","rid":"c","id":42}');
  });

  it('refuses a muted member until the mute ends, and one muted until further notice', () => {
    const timed = decideRoomMessage(view({ sanctions: { 'a:ada': { muteUntil: NOW + 60_000 } } }), ada, chat(), NOW);
    expect(timed).toEqual({
      reply: { type: 'error', rid: 'r', code: 'muted', reason: `you are muted until ${new Date(NOW + 60_000).toISOString()}` },
      effects: [],
    });
    expect(decideRoomMessage(view({ sanctions: { 'a:ada': { muteUntil: null } } }), ada, chat(), NOW).reply).toMatchObject({
      code: 'muted',
      reason: 'you are muted until further notice',
    });
    expect(decideRoomMessage(view({ sanctions: { 'a:ada': { muteUntil: NOW } } }), ada, chat(), NOW).reply).toMatchObject({ type: 'ack' });
    // Staff are muted like anyone else (a host may mute a moderator).
    expect(decideRoomMessage(view({ sanctions: { 't:Mo': { muteUntil: null } } }), mo, chat(), NOW).reply).toMatchObject({ code: 'muted' });
  });

  it('spaces a viewer’s messages in slow mode, saying how long to wait; staff are exempt', () => {
    const f: Facts = { slow: 30, pace: { 'a:ada': { lastAt: NOW - 12_500 } } };
    expect(decideRoomMessage(view(f), ada, chat(), NOW)).toEqual({
      reply: { type: 'error', rid: 'r', code: 'slow_mode', reason: 'slow mode: wait 18 s' },
      effects: [],
    });
    expect(decideRoomMessage(view({ ...f, pace: { 'a:ada': { lastAt: NOW - 30_000 } } }), ada, chat(), NOW).reply!.type).toBe('ack');
    const staff = decideRoomMessage(view({ slow: 30, pace: { 't:Mo': { lastAt: NOW - 1 } } }), mo, chat(), NOW);
    expect(staff.reply!.type).toBe('ack');
    expect(staff.effects.map((e) => e.kind)).toEqual(['chat.insert']);
  });

  it('limits a viewer to five in a burst, then about one a second, and says how long to wait', () => {
    const pace: Record<string, { lastAt?: number; bucket?: BucketState }> = {};
    const v = view({ pace });
    const results: string[] = [];
    for (let i = 0; i < 7; i++) {
      const d = decideRoomMessage(v, ada, chat(), NOW + i);
      results.push(d.reply?.type === 'error' ? d.reply.code : 'ok');
      for (const e of d.effects) if (e.kind === 'chat.pace') pace[e.uid] = { lastAt: e.lastAt, bucket: e.bucket };
    }
    expect(results).toEqual(['ok', 'ok', 'ok', 'ok', 'ok', 'rate_limited', 'rate_limited']);
    expect(decideRoomMessage(v, ada, chat(), NOW + 6).reply).toMatchObject({ reason: 'too many chat messages; wait 994 ms' });
    expect(decideRoomMessage(v, ada, chat(), NOW + 1004).reply!.type).toBe('ack');
  });

  it('does not change the view it reads (the bucket is copied)', () => {
    const bucket = { tokens: 3, at: NOW - 100 };
    const d = decideRoomMessage(view({ pace: { 'a:ada': { bucket } } }), ada, chat(), NOW);
    expect(bucket).toEqual({ tokens: 3, at: NOW - 100 });
    expect(d.effects[0]).toMatchObject({ kind: 'chat.pace', bucket: { tokens: 2.1, at: NOW } });
  });
});

describe('decideRoomMessage: polls', () => {
  it('opens a poll with its deadline and acks the new poll’s id', () => {
    const d = decideRoomMessage(view(), mo, { type: 'poll.open', rid: 'p', question: 'Best?', options: ['a', 'b'], durationSec: 30 }, NOW);
    expect(d).toEqual({
      reply: { type: 'ack', rid: 'p', id: 'inserted' },
      effects: [
        { kind: 'poll.insert', poll: { question: 'Best?', options: ['a', 'b'], openedBy: 'Mo', openedAt: NOW, closesAt: NOW + 30_000 } },
      ],
    });
    expect(decideRoomMessage(view(), mo, { type: 'poll.open', question: 'Best?', options: ['a', 'b'] }, NOW).effects[0]).toMatchObject({
      poll: { closesAt: null },
    });
  });

  it('counts a first vote, moves a changed one, and changes nothing for a repeat', () => {
    const f: Facts = { polls: [poll(3, true, [2, 1])] };
    expect(decideRoomMessage(view(f), ada, { type: 'poll.vote', rid: 'v', pollId: 3, option: 1 }, NOW)).toEqual({
      reply: { type: 'ack', rid: 'v', id: 3 },
      effects: [{ kind: 'poll.vote', pollId: 3, uid: 'a:ada', option: 1, counts: [2, 2] }],
    });
    expect(
      decideRoomMessage(view({ ...f, votes: { '3:a:ada': 0 } }), ada, { type: 'poll.vote', pollId: 3, option: 1 }, NOW).effects,
    ).toEqual([{ kind: 'poll.vote', pollId: 3, uid: 'a:ada', option: 1, counts: [1, 2] }]);
    expect(
      decideRoomMessage(view({ ...f, votes: { '3:a:ada': 1 } }), ada, { type: 'poll.vote', rid: 'x', pollId: 3, option: 1 }, NOW),
    ).toEqual({ reply: { type: 'ack', rid: 'x', id: 3 }, effects: [] });
  });

  it('refuses votes on closed, unknown polls and options a poll does not have', () => {
    const f: Facts = { polls: [poll(3), poll(4, false)] };
    expect(decideRoomMessage(view(f), ada, { type: 'poll.vote', pollId: 4, option: 0 }, NOW).reply).toMatchObject({
      code: 'poll_closed',
      reason: 'this poll is closed',
    });
    expect(decideRoomMessage(view(f), ada, { type: 'poll.vote', pollId: 9, option: 0 }, NOW).reply).toMatchObject({ code: 'not_found' });
    expect(decideRoomMessage(view(f), ada, { type: 'poll.vote', pollId: 3, option: 2 }, NOW).reply).toMatchObject({
      code: 'invalid_message',
      reason: 'option: no such option',
    });
  });

  it('closes an open poll once', () => {
    const f: Facts = { polls: [poll(3), poll(4, false)] };
    expect(decideRoomMessage(view(f), mo, { type: 'poll.close', rid: 'c', pollId: 3 }, NOW)).toEqual({
      reply: { type: 'ack', rid: 'c', id: 3 },
      effects: [{ kind: 'poll.close', pollId: 3 }],
    });
    expect(decideRoomMessage(view(f), mo, { type: 'poll.close', pollId: 4 }, NOW).reply).toMatchObject({
      code: 'poll_closed',
      reason: 'this poll is already closed',
    });
    expect(decideRoomMessage(view(f), mo, { type: 'poll.close', pollId: 5 }, NOW).reply).toMatchObject({ code: 'not_found' });
  });
});

describe('decideRoomMessage: moderation', () => {
  it('deletes a live message only', () => {
    expect(decideRoomMessage(view({ messages: [7] }), mo, { type: 'mod.delete', rid: 'd', messageId: 7 }, NOW)).toEqual({
      reply: { type: 'ack', rid: 'd', id: 7 },
      effects: [{ kind: 'chat.delete', id: 7 }],
    });
    expect(decideRoomMessage(view({ messages: [7] }), mo, { type: 'mod.delete', messageId: 8 }, NOW).reply).toMatchObject({
      code: 'not_found',
    });
  });

  it('mutes for the given time and bans with a kick, only a member the actor outranks', () => {
    expect(decideRoomMessage(view(), mo, { type: 'mod.mute', rid: 'm', uid: 'a:ada', seconds: 60 }, NOW)).toEqual({
      reply: { type: 'ack', rid: 'm' },
      effects: [{ kind: 'sanction.set', uid: 'a:ada', sanction: 'mute', until: NOW + 60_000, by: mo }],
    });
    expect(decideRoomMessage(view(), mo, { type: 'mod.ban', uid: 'a:ada' }, NOW).effects).toEqual([
      { kind: 'sanction.set', uid: 'a:ada', sanction: 'ban', until: null, by: mo },
      { kind: 'kick', uid: 'a:ada', code: 'banned', reason: 'you were banned from this room', close: CLOSE.forbidden },
    ]);
    const ranks: Record<string, Role> = { 't:Hana': 'host', 't:Mo2': 'moderator' };
    expect(decideRoomMessage(view({ ranks }), mo, { type: 'mod.ban', uid: 't:Hana' }, NOW)).toEqual({
      reply: { type: 'error', code: 'forbidden', reason: 'a moderator may not sanction a host' },
      effects: [],
    });
    expect(decideRoomMessage(view({ ranks }), mo, { type: 'mod.mute', uid: 't:Mo2', seconds: 5 }, NOW).reply).toMatchObject({
      code: 'forbidden',
    });
    expect(decideRoomMessage(view({ ranks }), hana, { type: 'mod.mute', uid: 't:Mo2', seconds: 5 }, NOW).reply!.type).toBe('ack');
  });

  it('holds a member to a sanction only when who set it outranks their rank', () => {
    const hostBan: Facts = { sanctions: { 't:Hana': { banned: true, banBy: 'moderator' }, 't:Mo': { banned: true, banBy: 'host' } } };
    expect(decideRoomMessage(view(hostBan), hana, chat(), NOW).reply!.type).toBe('ack');
    expect(decideRoomMessage(view(hostBan), mo, chat(), NOW).reply).toMatchObject({ code: 'banned' });
    const mutes: Facts = {
      sanctions: { 't:Mo': { muteUntil: null, muteBy: 'moderator' }, 'a:ada': { muteUntil: null, muteBy: 'moderator' } },
    };
    expect(decideRoomMessage(view(mutes), mo, chat(), NOW).reply!.type).toBe('ack');
    expect(decideRoomMessage(view(mutes), ada, chat(), NOW).reply).toMatchObject({ code: 'muted' });
    // Recorded before ranks were: counts as a host's.
    expect(decideRoomMessage(view({ sanctions: { 't:Mo': { banned: true } } }), mo, chat(), NOW).reply).toMatchObject({ code: 'banned' });
  });

  it('checks unmute and unban like mute and ban, and lets nobody undo or shorten a higher rank’s sanction', () => {
    const f: Facts = {
      ranks: { 't:Mo2': 'moderator' },
      sanctions: { 'a:ada': { muteUntil: NOW + 60_000, muteBy: 'host', banned: true, banBy: 'moderator' } },
    };
    expect(decideRoomMessage(view(f), mo, { type: 'mod.unmute', rid: 'u', uid: 'a:ada' }, NOW)).toEqual({
      reply: { type: 'error', rid: 'u', code: 'forbidden', reason: 'a host imposed this mute; a moderator may not change it' },
      effects: [],
    });
    expect(decideRoomMessage(view(f), mo, { type: 'mod.mute', uid: 'a:ada', seconds: 1 }, NOW).reply).toMatchObject({ code: 'forbidden' });
    expect(decideRoomMessage(view(f), mo, { type: 'mod.unban', rid: 'b', uid: 'a:ada' }, NOW)).toEqual({
      reply: { type: 'ack', rid: 'b' },
      effects: [{ kind: 'sanction.lift', uid: 'a:ada', sanction: 'ban' }],
    });
    expect(decideRoomMessage(view(f), hana, { type: 'mod.unmute', uid: 'a:ada' }, NOW).effects).toEqual([
      { kind: 'sanction.lift', uid: 'a:ada', sanction: 'mute' },
    ]);
    expect(decideRoomMessage(view(f), mo, { type: 'mod.unmute', uid: 't:Mo2' }, NOW).reply).toMatchObject({
      code: 'forbidden',
      reason: 'a moderator may not sanction a moderator',
    });
    // An expired mute binds nobody and blocks no one.
    const expired: Facts = { sanctions: { 'a:ada': { muteUntil: NOW - 1, muteBy: 'host' } } };
    expect(decideRoomMessage(view(expired), mo, { type: 'mod.mute', uid: 'a:ada', seconds: 5 }, NOW).reply!.type).toBe('ack');
  });

  it('turns slow mode on and off', () => {
    expect(decideRoomMessage(view(), mo, { type: 'mod.slow', rid: 's', seconds: 10 }, NOW)).toEqual({
      reply: { type: 'ack', rid: 's' },
      effects: [{ kind: 'slow.set', seconds: 10 }],
    });
  });
});

describe('decideRoomMessage: playback', () => {
  it('takes the host’s `at` within the skew allowed, else the room’s clock, and counts versions', () => {
    const prev: PlaybackState = { playing: false, position: 3, rate: 1, at: NOW - 9000, by: 'Hana', version: 4 };
    const near = decideRoomMessage(
      view({ playback: prev }),
      hana,
      { type: 'playback.set', rid: 'p', playing: true, position: 10, rate: 1, at: NOW + PLAYBACK_SKEW_MS },
      NOW,
    );
    expect(near).toEqual({
      reply: { type: 'ack', rid: 'p', id: 5 },
      effects: [
        { kind: 'playback.set', playback: { playing: true, position: 10, rate: 1, at: NOW + PLAYBACK_SKEW_MS, by: 'Hana', version: 5 } },
      ],
    });
    const far = decideRoomMessage(
      view(),
      hana,
      { type: 'playback.set', playing: true, position: 10, rate: 1.5, at: NOW - PLAYBACK_SKEW_MS - 1 },
      NOW,
    );
    expect(far.effects[0]).toEqual({
      kind: 'playback.set',
      playback: { playing: true, position: 10, rate: 1.5, at: NOW, by: 'Hana', version: 1 },
    });
  });

  it('writes replies as the frames the protocol defines', () => {
    expect(replyFrame({ type: 'ack' })).toBe('{"type":"ack"}');
    expect(replyFrame({ type: 'error', code: 'muted', reason: 'x' })).toBe('{"type":"error","code":"muted","reason":"x"}');
    expect(replyFrame({ type: 'error', rid: '1', code: 'muted', reason: 'x' })).toBe(
      '{"type":"error","rid":"1","code":"muted","reason":"x"}',
    );
  });
});

describe('decideAnonymousJoin: per-address limits', () => {
  const limits = { joinsPerMinute: 3, idsPerHour: 2 };

  it('spends a join for every anonymous join and an identity only for a new one', () => {
    let joins: BucketState | undefined;
    let ids: BucketState | undefined;
    const out: string[] = [];
    for (const fresh of [true, false, true, true]) {
      const d = decideAnonymousJoin(limits, { joins, ids }, fresh, NOW);
      joins = d.joins;
      if (d.ok && d.ids) ids = d.ids;
      out.push(d.ok ? 'ok' : d.reason);
    }
    expect(out).toEqual(['ok', 'ok', 'ok', 'too many joins from your address; wait a moment']);
    const d = decideAnonymousJoin(limits, { joins: { tokens: 3, at: NOW }, ids }, true, NOW);
    expect(d).toMatchObject({ ok: false, retryAfterMs: 1_800_000, reason: expect.stringContaining('too many new anonymous viewers') });
    expect(decideAnonymousJoin(limits, { joins: { tokens: 3, at: NOW }, ids }, false, NOW).ok).toBe(true);
  });

  it('refills with time and never changes the buckets it is given', () => {
    const joins = { tokens: 0, at: NOW };
    expect(decideAnonymousJoin(limits, { joins }, false, NOW + 19_000).ok).toBe(false);
    expect(decideAnonymousJoin(limits, { joins }, false, NOW + 20_000).ok).toBe(true);
    expect(joins).toEqual({ tokens: 0, at: NOW });
    expect(refillMs(joinsSpec(limits))).toBe(60_000);
  });
});
