// Party voice's rules in Node (decideRoomMessage hands voice messages to decideVoiceMessage):
// seats, the mesh limit and the switch to the SFU with its hysteresis, signalling relayed only
// between two seats of the mesh at a bounded rate, and moderation in voice by rank.
import { describe, expect, it } from 'vitest';
import { decideRoomMessage, type Sender } from '../../core/rooms/room-decisions.ts';
import { parseClientFrame, ROOM_LIMITS, type RoomBoundMessage } from '../../core/rooms/room-protocol.ts';
import { ROOM_RATE_LIMITS, type BucketState } from '../../core/rooms/room-token-bucket.ts';
import { nextVoiceMode } from '../../core/rooms/voice-decisions.ts';
import { VOICE_LIMITS, voiceSignalFrame, type VoiceMember } from '../../core/rooms/voice-protocol.ts';
import { view, type Facts } from '../support/room-view.ts';

const NOW = Date.UTC(2026, 0, 1, 12);
const ada: Sender = { conn: 'c-ada', uid: 'a:ada', name: 'Ada', role: 'viewer' };
const bob: Sender = { conn: 'c-bob', uid: 'a:bob', name: 'Bob', role: 'viewer' };
const mo: Sender = { conn: 'c-mo', uid: 't:Mo', name: 'Mo', role: 'moderator' };
const hana: Sender = { conn: 'c-hana', uid: 't:Hana', name: 'Hana', role: 'host' };

function seat(s: Sender, over: Partial<VoiceMember> = {}): VoiceMember {
  return { conn: s.conn, uid: s.uid, name: s.name, role: s.role, muted: false, forced: false, speaking: false, camera: false, ...over };
}
function seats(n: number): VoiceMember[] {
  return Array.from({ length: n }, (_, i) => seat({ conn: `c${i}`, uid: `a:m${i}`, name: `M${i}`, role: 'viewer' }));
}
const decide = (f: Facts, from: Sender, msg: RoomBoundMessage) => decideRoomMessage(view(f), from, msg, NOW);
const offer = (to: string, sdp = 'v=0\r\n'): RoomBoundMessage => ({ type: 'voice.signal', to, signal: { type: 'offer', sdp } });

describe('voice seats', () => {
  it('seats a member with the state they ask for, and acks', () => {
    expect(decide({}, ada, { type: 'voice.join', rid: 'j', muted: false, camera: true })).toEqual({
      reply: { type: 'ack', rid: 'j' },
      effects: [{ kind: 'voice.seat', member: seat(ada, { camera: true }), persist: true }],
    });
  });

  it('moves a member’s seat when they join from another connection (one seat each)', () => {
    const d = decide({ voice: [seat({ ...ada, conn: 'c-old' })] }, ada, { type: 'voice.join', muted: true, camera: false });
    expect(d.effects).toEqual([
      { kind: 'voice.unseat', conn: 'c-old' },
      { kind: 'voice.seat', member: seat(ada, { muted: true }), persist: true },
    ]);
  });

  it('seats someone a moderator muted in voice as muted and forced', () => {
    const d = decide({ sanctions: { 'a:ada': { voiceMuted: true, voiceBy: 'moderator' } } }, ada, {
      type: 'voice.join',
      muted: false,
      camera: false,
    });
    expect(d.effects).toEqual([{ kind: 'voice.seat', member: seat(ada, { muted: true, forced: true }), persist: true }]);
    // The same mute does not hold a host (a moderator does not outrank one).
    const h = decide({ sanctions: { 't:Hana': { voiceMuted: true, voiceBy: 'moderator' } } }, hana, {
      type: 'voice.join',
      muted: false,
      camera: false,
    });
    expect(h.effects[0]).toMatchObject({ member: { muted: false, forced: false } });
  });

  it('refuses a ninth member without an SFU, and moves the group to the SFU with one', () => {
    expect(decide({ voice: seats(8) }, ada, { type: 'voice.join', rid: 'j', muted: false, camera: false })).toEqual({
      reply: { type: 'error', rid: 'j', code: 'voice_full', reason: 'voice is full (8 members)' },
      effects: [],
    });
    expect(decide({ voice: seats(8), sfu: true }, ada, { type: 'voice.join', muted: false, camera: false }).effects).toEqual([
      { kind: 'voice.seat', member: seat(ada), persist: true },
      { kind: 'voice.mode', mode: 'sfu' },
    ]);
    expect(
      decide({ voice: seats(VOICE_LIMITS.maxMembers), sfu: true, mode: 'sfu' }, ada, { type: 'voice.join', muted: false, camera: false })
        .reply,
    ).toMatchObject({ code: 'voice_full' });
    // A room's own, smaller mesh (an operator setting).
    expect(decide({ voice: seats(3), meshMax: 3 }, ada, { type: 'voice.join', muted: false, camera: false }).reply).toMatchObject({
      code: 'voice_full',
      reason: 'voice is full (3 members)',
    });
  });

  it('goes back to the mesh only well below the limit (hysteresis)', () => {
    const cfg = { meshMax: 8, sfu: true };
    expect([8, 9].map((n) => nextVoiceMode(n, 'mesh', cfg))).toEqual(['mesh', 'sfu']);
    expect([8, 7, 6].map((n) => nextVoiceMode(n, 'sfu', cfg))).toEqual(['sfu', 'sfu', 'mesh']);
    expect(nextVoiceMode(20, 'sfu', { meshMax: 8, sfu: false })).toBe('mesh');
    const seven = [...seats(6), seat(ada)];
    expect(decide({ voice: seven, sfu: true, mode: 'sfu' }, ada, { type: 'voice.leave', rid: 'l' })).toEqual({
      reply: { type: 'ack', rid: 'l' },
      effects: [
        { kind: 'voice.unseat', conn: 'c-ada' },
        { kind: 'voice.mode', mode: 'mesh' },
      ],
    });
    expect(decide({}, ada, { type: 'voice.leave' }).effects).toEqual([]);
  });

  it('updates mute, camera and speaking; speaking alone is not stored, and a forced mute holds', () => {
    const f: Facts = { voice: [seat(ada), seat(bob, { muted: true, forced: true })] };
    const speaking = decide(f, ada, { type: 'voice.update', speaking: true });
    expect(speaking.reply).toBeNull();
    expect(speaking.effects).toEqual([
      { kind: 'voice.pace', conn: 'c-ada', updates: { tokens: ROOM_RATE_LIMITS.voiceUpdates.capacity - 1, at: NOW } },
      { kind: 'voice.seat', member: seat(ada, { speaking: true }), persist: false },
    ]);
    expect(decide(f, ada, { type: 'voice.update', rid: 'm', muted: true, speaking: true }).effects[1]).toEqual({
      kind: 'voice.seat',
      member: seat(ada, { muted: true }),
      persist: true,
    });
    expect(decide(f, bob, { type: 'voice.update', rid: 'u', muted: false })).toEqual({
      reply: { type: 'error', rid: 'u', code: 'muted', reason: 'a moderator muted you in voice' },
      effects: [],
    });
    expect(decide(f, mo, { type: 'voice.update', rid: 'x', speaking: true }).reply).toMatchObject({ code: 'not_in_voice' });
    const spent: Facts = { ...f, voicePace: { 'c-ada': { updates: { tokens: 0, at: NOW } } } };
    expect(decide(spent, ada, { type: 'voice.update', speaking: false }).reply).toMatchObject({ code: 'rate_limited' });
  });
});

describe('voice signalling', () => {
  const mesh: Facts = { voice: [seat(ada), seat(bob)] };

  it('relays a signal from one seat to another, as the frame the other receives', () => {
    const d = decide(mesh, ada, offer('c-bob'));
    expect(d.reply).toBeNull();
    expect(d.effects).toEqual([
      { kind: 'voice.pace', conn: 'c-ada', signals: { tokens: ROOM_RATE_LIMITS.voiceSignals.capacity - 1, at: NOW } },
      { kind: 'voice.relay', to: 'c-bob', frame: voiceSignalFrame('c-ada', 'a:ada', { type: 'offer', sdp: 'v=0\r\n' }) },
    ]);
    expect(JSON.parse(voiceSignalFrame('c-ada', 'a:ada', { type: 'offer', sdp: 'x' }))).toEqual({
      type: 'voice.signal',
      from: 'c-ada',
      uid: 'a:ada',
      signal: { type: 'offer', sdp: 'x' },
    });
    expect(decide(mesh, ada, { ...offer('c-bob'), rid: 's' }).reply).toEqual({ type: 'ack', rid: 's' });
  });

  it('reaches nobody from outside voice, nobody outside voice, not oneself, and nobody once the group uses the SFU', () => {
    expect(decide(mesh, mo, { ...offer('c-bob'), rid: '1' }).reply).toMatchObject({ code: 'not_in_voice', reason: 'join voice first' });
    expect(decide(mesh, ada, { ...offer('c-mo'), rid: '2' }).reply).toMatchObject({
      code: 'not_in_voice',
      reason: 'no such member in voice',
    });
    expect(decide(mesh, ada, { ...offer('c-ada'), rid: '3' }).reply).toMatchObject({ code: 'invalid_message' });
    expect(decide({ ...mesh, mode: 'sfu' }, ada, { ...offer('c-bob'), rid: '4' }).reply).toMatchObject({ code: 'forbidden' });
    for (const r of ['1', '2', '3', '4']) expect(decide(mesh, mo, { ...offer('c-bob'), rid: r }).effects).toEqual([]);
  });

  it('bounds each seat’s signalling: a burst, then a few a second', () => {
    let signals: BucketState | undefined;
    let relayed = 0;
    for (let i = 0; i < 80; i++) {
      const d = decide({ ...mesh, voicePace: { 'c-ada': signals ? { signals } : {} } }, ada, offer('c-bob'));
      for (const e of d.effects) if (e.kind === 'voice.pace') signals = e.signals;
      if (d.effects.some((e) => e.kind === 'voice.relay')) relayed++;
    }
    expect(relayed).toBe(ROOM_RATE_LIMITS.voiceSignals.capacity);
  });

  it('bounds the size of what is signalled, and lets a long offer through the frame-size check', () => {
    const frame = (sdp: string) => JSON.stringify({ type: 'voice.signal', to: 'c-bob', signal: { type: 'offer', sdp } });
    const long = 'a=x\r\n'.repeat(1500); // 7,500 characters: a camera offer's size
    expect(frame(long).length).toBeGreaterThan(ROOM_LIMITS.maxFrameChars);
    expect(parseClientFrame(frame(long))).toMatchObject({ ok: true });
    expect(parseClientFrame(frame('x'.repeat(VOICE_LIMITS.sdpMaxChars + 1)))).toMatchObject({ ok: false, code: 'invalid_message' });
    expect(parseClientFrame(frame('x'.repeat(VOICE_LIMITS.signalFrameMaxChars)))).toMatchObject({ ok: false, code: 'frame_too_large' });
    // Only signalling may be long: a long chat is refused by length before it is parsed.
    expect(parseClientFrame(JSON.stringify({ type: 'chat', text: 'x'.repeat(5000) }))).toMatchObject({
      ok: false,
      code: 'frame_too_large',
    });
    expect(parseClientFrame(JSON.stringify({ to: 'c-bob', type: 'voice.signal', signal: { type: 'offer', sdp: long } }))).toMatchObject({
      ok: false,
      code: 'frame_too_large',
    });
    const many = Array.from({ length: VOICE_LIMITS.candidatesPerMessage + 1 }, () => ({
      candidate: 'candidate:1 1 udp 1 127.0.0.1 9 typ host',
      sdpMid: '0',
      sdpMLineIndex: 0,
    }));
    expect(
      parseClientFrame(JSON.stringify({ type: 'voice.signal', to: 'c-bob', signal: { type: 'candidates', candidates: many } })),
    ).toMatchObject({ ok: false, code: 'invalid_message' });
    expect(parseClientFrame(JSON.stringify({ type: 'voice.signal', to: 'bob!', signal: { type: 'answer', sdp: 'x' } }))).toMatchObject({
      ok: false,
      code: 'invalid_message',
    });
  });
});

describe('moderation in voice', () => {
  const f: Facts = { voice: [seat(ada), seat(hana)], ranks: { 't:Hana': 'host' } };

  it('a moderator mutes a member in voice: a sanction, and their seat muted and forced', () => {
    expect(decide(f, mo, { type: 'voice.mute', rid: 'm', uid: 'a:ada' })).toEqual({
      reply: { type: 'ack', rid: 'm' },
      effects: [
        { kind: 'sanction.set', uid: 'a:ada', sanction: 'voice', until: null, by: mo },
        { kind: 'voice.seat', member: seat(ada, { muted: true, forced: true }), persist: true },
      ],
    });
    // Someone not in voice can be muted ahead of joining.
    expect(decide(f, mo, { type: 'voice.mute', uid: 'a:bob' }).effects).toEqual([
      { kind: 'sanction.set', uid: 'a:bob', sanction: 'voice', until: null, by: mo },
    ]);
  });

  it('lifting the mute leaves the member muted until they unmute themselves', () => {
    const muted: Facts = {
      ...f,
      voice: [seat(ada, { muted: true, forced: true })],
      sanctions: { 'a:ada': { voiceMuted: true, voiceBy: 'moderator' } },
    };
    expect(decide(muted, mo, { type: 'voice.unmute', uid: 'a:ada' }).effects).toEqual([
      { kind: 'sanction.lift', uid: 'a:ada', sanction: 'voice' },
      { kind: 'voice.seat', member: seat(ada, { muted: true, forced: false }), persist: true },
    ]);
    const byHost: Facts = { ...muted, sanctions: { 'a:ada': { voiceMuted: true, voiceBy: 'host' } } };
    expect(decide(byHost, mo, { type: 'voice.unmute', uid: 'a:ada' }).reply).toMatchObject({ code: 'forbidden' });
  });

  it('removes a member from voice, only one the actor outranks, and viewers moderate nothing', () => {
    expect(decide(f, mo, { type: 'voice.remove', rid: 'r', uid: 'a:ada' })).toEqual({
      reply: { type: 'ack', rid: 'r' },
      effects: [{ kind: 'voice.unseat', conn: 'c-ada' }],
    });
    expect(decide(f, mo, { type: 'voice.remove', uid: 't:Hana' }).reply).toMatchObject({
      code: 'forbidden',
      reason: 'a moderator may not remove a host from voice',
    });
    expect(decide(f, mo, { type: 'voice.mute', uid: 't:Hana' }).reply).toMatchObject({ code: 'forbidden' });
    expect(decide(f, mo, { type: 'voice.remove', uid: 'a:bob' }).reply).toMatchObject({ code: 'not_in_voice' });
    expect(decide(f, bob, { type: 'voice.mute', uid: 'a:ada' }).reply).toMatchObject({
      code: 'forbidden',
      reason: 'viewer may not voice.mute',
    });
  });

  it('hands out SFU tokens only to seats, only while the group uses the SFU', () => {
    expect(decide({ voice: [seat(ada)], mode: 'sfu' }, ada, { type: 'voice.sfu', rid: 's' })).toEqual({
      reply: null,
      effects: [{ kind: 'voice.sfu', conn: 'c-ada', rid: 's' }],
    });
    expect(decide({ voice: [seat(ada)] }, ada, { type: 'voice.sfu' }).reply).toMatchObject({ code: 'forbidden' });
    expect(decide({ mode: 'sfu' }, ada, { type: 'voice.sfu' }).reply).toMatchObject({ code: 'not_in_voice' });
  });

  it('a banned member does nothing in voice', () => {
    expect(decide({ ...f, sanctions: { 'a:ada': { banned: true, banBy: 'moderator' } } }, ada, offer('c-hana')).reply).toMatchObject({
      code: 'banned',
    });
  });
});
