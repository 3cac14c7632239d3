// A room's tuning: the operator's defaults from wrangler.toml `[vars]` (docs/operations.md) and
// the room's own settings that override them — socket capacities and anonymous budgets (voice's
// variables and its mesh size: room-voice.ts).
import type { Env } from '../workers/env.ts';
import { ANONYMOUS_DEFAULTS, type AnonymousLimits } from '../core/rooms/room-admission.ts';
import type { RoomSettings } from './room-store.ts';
import type { VoiceVars } from './room-voice.ts';

/** Optional tuning from wrangler.toml `[vars]`; per-room settings override them. */
export interface RoomVars extends VoiceVars {
  ROOM_DIRECT_CAPACITY?: string;
  ROOM_SHARD_CAPACITY?: string;
  ROOM_MAX_SHARDS?: string;
  ROOM_ANON_JOINS_PER_MINUTE?: string;
  ROOM_ANON_IDS_PER_HOUR?: string;
}

export const ROOM_DEFAULTS = { directCapacity: 1000, shardCapacity: 2000, maxShards: 16 } as const;

export interface Capacities {
  directCapacity: number;
  shardCapacity: number;
  maxShards: number;
}

export function roomCapacities(settings: RoomSettings, env: Env): Capacities {
  const vars = env as Env & RoomVars;
  const num = positiveInt;
  return {
    directCapacity: settings.directCapacity ?? num(vars.ROOM_DIRECT_CAPACITY, ROOM_DEFAULTS.directCapacity),
    shardCapacity: settings.shardCapacity ?? num(vars.ROOM_SHARD_CAPACITY, ROOM_DEFAULTS.shardCapacity),
    maxShards: settings.maxShards ?? num(vars.ROOM_MAX_SHARDS, ROOM_DEFAULTS.maxShards),
  };
}

export function anonymousLimits(settings: RoomSettings, env: Env): AnonymousLimits {
  const vars = env as Env & RoomVars;
  return {
    joinsPerMinute: settings.anonymousJoinsPerMinute ?? positiveInt(vars.ROOM_ANON_JOINS_PER_MINUTE, ANONYMOUS_DEFAULTS.joinsPerMinute),
    idsPerHour: settings.anonymousIdsPerHour ?? positiveInt(vars.ROOM_ANON_IDS_PER_HOUR, ANONYMOUS_DEFAULTS.idsPerHour),
  };
}

function positiveInt(v: string | undefined, fallback: number): number {
  const n = Number(v);
  return Number.isInteger(n) && n > 0 ? n : fallback;
}
