// StreamState: one per live stream. Placeholder until the live path lands.
import { DurableObject } from 'cloudflare:workers';
import type { Env } from '../workers/env.ts';

export class StreamState extends DurableObject<Env> {
  async ping(): Promise<string> {
    return 'pong';
  }
}
