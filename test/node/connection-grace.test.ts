// How the node's WebRTC sessions read their peer connection's state (transcoder-node/webrtc/
// connection-grace.ts): a drop ends the session only if ICE does not recover within the grace.
import { describe, expect, it } from 'vitest';
import { ConnectionGrace } from '../../transcoder-node/webrtc/connection-grace.ts';

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

describe('connection grace', () => {
  it('ends a session whose connection stays disconnected past the grace, once', async () => {
    let dropped = 0;
    const grace = new ConnectionGrace(30, () => dropped++);
    expect(grace.step('connected')).toBe('connected');
    expect(grace.step('disconnected')).toBe('disconnected');
    expect(grace.step('disconnected')).toBe('disconnected'); // a repeat does not arm a second timer
    await sleep(80);
    expect(dropped).toBe(1);
  });

  it('keeps a session whose connection recovers within the grace', async () => {
    let dropped = 0;
    const grace = new ConnectionGrace(40, () => dropped++);
    grace.step('disconnected');
    await sleep(10);
    expect(grace.step('connected')).toBe('connected');
    await sleep(80);
    expect(dropped).toBe(0);
  });

  it('ends at once on failed or closed, ignores the states on the way, and clear() cancels a pending drop', async () => {
    let dropped = 0;
    const grace = new ConnectionGrace(20, () => dropped++);
    expect(grace.step('failed')).toBe('ended');
    expect(grace.step('closed')).toBe('ended');
    expect(grace.step('connecting')).toBeNull();
    expect(grace.step('new')).toBeNull();
    grace.step('disconnected');
    grace.clear();
    await sleep(60);
    expect(dropped).toBe(0);
  });
});
