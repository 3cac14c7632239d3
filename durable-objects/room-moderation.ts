// The Room's sanctions (chat mutes, bans, mutes in voice) and staff ranks, held in memory and
// written through to the store, so the rules and admission read them without a query. Who may set
// or lift what is decided by the rules (core/rooms/room-effects.ts); this only keeps the record.
import type { Role } from '../core/rooms/room-protocol.ts';
import type { RoomEffect, SanctionState } from '../core/rooms/room-decisions.ts';
import { higherRole, sanctionBinds } from '../core/rooms/room-rules.ts';
import type { RoomStore, Sanction } from './room-store.ts';

type SanctionSet = Extract<RoomEffect, { kind: 'sanction.set' }>;
type SanctionLift = Extract<RoomEffect, { kind: 'sanction.lift' }>;

export class Moderation {
  private readonly store: RoomStore;
  private readonly sanctions = new Map<string, SanctionState>();
  /** Staff ranks by identity (from the tokens they joined with), online or not. */
  private readonly ranks = new Map<string, Role>();

  constructor(store: RoomStore) {
    this.store = store;
    for (const s of store.sanctions()) this.hold(s);
    for (const r of store.ranks()) this.ranks.set(r.uid, r.role);
  }

  sanction(uid: string): SanctionState | undefined {
    return this.sanctions.get(uid);
  }

  /** A ban holds a member only when who set it outranks the rank they join with. */
  isBanned(uid: string, role: Role): boolean {
    const s = this.sanctions.get(uid);
    return s?.banned === true && sanctionBinds(s.banBy, role);
  }

  /** The identity's rank, online or not; an older room may know a staff member only online. */
  rankOf(uid: string, onlineRole: Role | undefined): Role {
    return higherRole(this.ranks.get(uid) ?? 'viewer', onlineRole ?? 'viewer');
  }

  /** Remembers the rank a token gives an identity, so moderation checks it while they are away. */
  recordRank(uid: string, role: Role): void {
    if ((this.ranks.get(uid) ?? 'viewer') === role) return;
    if (role === 'viewer') this.ranks.delete(uid);
    else this.ranks.set(uid, role);
    this.store.setRank(uid, role);
  }

  set(e: SanctionSet): void {
    this.store.setSanction({ uid: e.uid, kind: e.sanction, until: e.until, byRole: e.by.role }, e.by.uid);
    this.hold({ uid: e.uid, kind: e.sanction, until: e.until, byRole: e.by.role });
  }

  lift(e: SanctionLift): void {
    this.store.removeSanction(e.uid, e.sanction);
    const cur = this.sanctions.get(e.uid);
    if (!cur) return;
    if (e.sanction === 'mute') {
      delete cur.muteUntil;
      delete cur.muteBy;
    } else if (e.sanction === 'voice') {
      delete cur.voiceMuted;
      delete cur.voiceBy;
    } else {
      delete cur.banned;
      delete cur.banBy;
    }
    if (cur.muteUntil === undefined && !cur.banned && !cur.voiceMuted) this.sanctions.delete(e.uid);
  }

  private hold(s: Sanction): void {
    const cur = this.sanctions.get(s.uid) ?? {};
    if (s.kind === 'ban') {
      cur.banned = true;
      cur.banBy = s.byRole;
    } else if (s.kind === 'voice') {
      cur.voiceMuted = true;
      cur.voiceBy = s.byRole;
    } else {
      cur.muteUntil = s.until;
      cur.muteBy = s.byRole;
    }
    this.sanctions.set(s.uid, cur);
  }
}
