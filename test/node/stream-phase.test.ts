// The lifecycle of a stream (core/live/stream-phase.ts): every phase × event pair against the
// table written out here, what a lease means from each phase, the questions the object asks of
// a phase, the alarm time, and how an object stored before phases existed is read.
import { describe, expect, it } from 'vitest';
import {
  PHASE_TRANSITIONS,
  acceptsPushes,
  alarmTime,
  exists,
  hasEnded,
  isOnAir,
  leaseOutcome,
  nextPhase,
  phaseFromFlags,
  publicState,
  pushRefusal,
  takeoverAllowed,
  leaseRefusal,
  TAKEOVER_QUIET_MS,
  type PhaseEvent,
  type StreamPhase,
} from '../../core/live/stream-phase.ts';

const PHASES: StreamPhase[] = ['idle', 'live', 'stopping', 'revoked', 'ending', 'ended', 'deleting', 'deleted'];
const EVENTS: PhaseEvent[] = ['lease', 'stop', 'revoke', 'end', 'ended', 'delete', 'configure'];

// Rows: phases; columns: lease, stop, revoke, end, ended, delete, configure. '-' = the event does not apply.
const EXPECTED: Record<StreamPhase, string> = {
  idle: '     live  -        -        -        -        deleted  idle',
  live: '     live  stopping revoked  ending   -        deleting live',
  stopping: ' live  stopping revoked  ending   -        deleting stopping',
  revoked: '  live  revoked  revoked  ending   -        deleting revoked',
  ending: '   live  ending   -        -        ended    deleting ending',
  ended: '    live  ended    -        -        -        deleted  ended',
  deleting: ' -     deleting -        deleting deleted  deleting deleting',
  deleted: '  -     -        -        -        -        deleted  ended',
};

describe('stream phases', () => {
  it('every phase × event pair leads where the table says (and nowhere else)', () => {
    for (const phase of PHASES) {
      const row = EXPECTED[phase].trim().split(/\s+/);
      expect(row, phase).toHaveLength(EVENTS.length);
      EVENTS.forEach((event, i) => expect(nextPhase(phase, event), `${phase} --${event}-->`).toBe(row[i] === '-' ? null : row[i]));
    }
    expect(Object.keys(PHASE_TRANSITIONS).sort()).toEqual([...PHASES].sort());
  });

  it('a lease starts a new broadcast from idle or ended, continues one otherwise, and is refused once deleted', () => {
    expect(leaseOutcome('idle')).toEqual({ newBroadcast: true, announceLive: true });
    expect(leaseOutcome('ended')).toEqual({ newBroadcast: true, announceLive: true });
    expect(leaseOutcome('live')).toEqual({ newBroadcast: false, announceLive: false });
    // After stream.idle, consumers hear that the stream is live again.
    expect(leaseOutcome('stopping')).toEqual({ newBroadcast: false, announceLive: true });
    // A publisher with the new key after a rotation continues the broadcast.
    expect(leaseOutcome('revoked')).toEqual({ newBroadcast: false, announceLive: true });
    // A lease during the closing calls the end off: the broadcast goes on.
    expect(leaseOutcome('ending')).toEqual({ newBroadcast: false, announceLive: true });
    expect(leaseOutcome('deleting')).toBeNull();
    expect(leaseOutcome('deleted')).toBeNull();
  });

  it('answers the questions the object asks', () => {
    const table = PHASES.map((p) => [
      p,
      exists(p),
      acceptsPushes(p),
      pushRefusal(p)?.code ?? null,
      isOnAir(p),
      hasEnded(p),
      publicState(p),
    ]);
    expect(table).toEqual([
      ['idle', true, false, 'stream_ended', false, false, 'idle'],
      ['live', true, true, null, true, false, 'live'],
      ['stopping', true, true, null, true, false, 'live'],
      ['revoked', true, false, 'lease_revoked', true, false, 'live'],
      ['ending', true, false, 'stream_ended', true, false, 'live'],
      ['ended', true, false, 'stream_ended', false, true, 'ended'],
      ['deleting', false, false, 'stream_ended', true, false, 'live'],
      ['deleted', false, false, 'stream_ended', false, true, 'ended'],
    ]);
  });

  it('refuses a second publisher while the first is live and pushing, unless the stream allows takeovers', () => {
    const now = 1_000_000;
    expect(takeoverAllowed('refuse-while-live', 'live', now - 1000, now)).toBe(false);
    expect(takeoverAllowed('refuse-while-live', 'live', now - TAKEOVER_QUIET_MS, now)).toBe(true);
    expect(takeoverAllowed('refuse-while-live', 'live', now - 1000, now, 500)).toBe(true);
    for (const phase of ['idle', 'stopping', 'revoked', 'ending', 'ended'] as const)
      expect(takeoverAllowed('refuse-while-live', phase, now, now), phase).toBe(true);
    expect(takeoverAllowed('allow', 'live', now, now)).toBe(true);
    const a = {
      policy: 'refuse-while-live' as const,
      phase: 'live' as const,
      lastPushAt: now - 1000,
      holder: { epoch: 3, nodeId: 'n1' },
      nodeId: 'n1',
      now,
    };
    expect(leaseRefusal(a)).toMatchObject({ status: 409, code: 'stream_busy' });
    expect(leaseRefusal({ ...a, continues: 3 })).toBeNull();
    expect(leaseRefusal({ ...a, continues: 3, nodeId: 'n2' })).toMatchObject({ code: 'stream_busy' });
    expect(leaseRefusal({ ...a, continues: 2 })).toMatchObject({ code: 'stream_busy' });
    expect(leaseRefusal({ ...a, quietSeconds: '0.5' })).toBeNull();
  });

  it('the alarm fires at the earliest of the grace period (on air only), the sweep and an earlier wake-up, never in the past', () => {
    const now = 1_000_000;
    expect(alarmTime({ phase: 'live', lastPushAt: now - 2000, graceMs: 10_000, sweepAt: null, now })).toBe(now + 8000);
    expect(alarmTime({ phase: 'live', lastPushAt: now - 20_000, graceMs: 10_000, sweepAt: null, now })).toBe(now);
    expect(alarmTime({ phase: 'ended', lastPushAt: now, graceMs: 10_000, sweepAt: null, now })).toBeNull();
    expect(alarmTime({ phase: 'ended', lastPushAt: now, graceMs: 10_000, sweepAt: now + 500, now })).toBe(now + 500);
    expect(alarmTime({ phase: 'stopping', lastPushAt: now, graceMs: 10_000, sweepAt: now + 60_000, soon: now + 1000, now })).toBe(
      now + 1000,
    );
    expect(alarmTime({ phase: 'live', lastPushAt: null, graceMs: 10_000, sweepAt: null, now })).toBe(now + 10_000);
  });

  it('reads the flags of an object stored before phases (schema 3)', () => {
    const f = (leased: boolean, ended: boolean, idle: boolean, deleted: boolean) => phaseFromFlags({ leased, ended, idle, deleted });
    expect(f(false, false, false, false)).toBe('idle');
    expect(f(true, false, false, false)).toBe('live');
    expect(f(true, false, true, false)).toBe('stopping');
    expect(f(true, true, false, false)).toBe('ended');
    expect(f(false, false, false, true)).toBe('deleted');
    expect(f(true, true, false, true)).toBe('deleted');
    // Deleted while live, and evicted before the end was done: the alarm finishes it.
    expect(f(true, false, false, true)).toBe('deleting');
  });
});
