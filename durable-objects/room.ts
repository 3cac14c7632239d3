// Room: one per room. Placeholder until the rooms work lands.
import { DurableObject } from 'cloudflare:workers';
import type { Env } from '../workers/env.ts';

export class Room extends DurableObject<Env> {
  async ping(): Promise<string> {
    return 'pong';
  }
}
