// RoomShard: holds a bounded share of a big room's sockets. Placeholder until the rooms work lands.
import { DurableObject } from 'cloudflare:workers';
import type { Env } from '../workers/env.ts';

export class RoomShard extends DurableObject<Env> {
  async ping(): Promise<string> {
    return 'pong';
  }
}
