// Party voice through the media node's SFU, in real browsers on the real local stack: the mesh's
// switch size is lowered to 2 (VOICE_MESH_MAX), so the third member moves the group to the SFU;
// each page then sends its microphone once and receives the other two through the node, measured
// as the energy of every received track. A host's mute stops that member's audio at the node (its
// packets are dropped there, not only unplayed), and a member leaving reaches the others.
import { mkdirSync } from 'node:fs';
import { join } from 'node:path';
import type { Page } from 'playwright-core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ROOT, type CreatedStream, type Stack } from '../../scripts/local-stack.ts';
import { createLogger } from '../../transcoder-node/log.ts';
import { waitInPage, type TestBrowser } from '../support/browser.ts';
import { HEARD, MEMBERS, SILENT, VoiceParty, levels, receivedLevel, you, type Id, type Levels } from '../support/voice-party.ts';

const log = createLogger({ service: 'e2e-voice-sfu' });
const SHOTS = join(ROOT, 'test-results', 'screenshots');

type SfuHealth = { seats: Array<{ conn: string; state: string; forced: boolean }>; counters: { forwarded: number; dropped: number } };

// Two members make a mesh; the third moves the group to the SFU.
const party = new VoiceParty({ name: 'voice-sfu', title: 'Voice night, bigger', logger: log, workerVars: { VOICE_MESH_MAX: '2' } });
let stack: Stack;
let stream: CreatedStream;
let browsers: TestBrowser[];
const pages: Array<Page & { errors: string[] }> = [];

const sfuHealth = async (): Promise<SfuHealth> => ((await (await fetch(stack.transcoderHealthUrl)).json()) as { sfu: SfuHealth }).sfu;
const roomToken = (room: string, name: string, role: 'viewer' | 'moderator' | 'host') => stack.roomToken(room, name, role);

beforeAll(async () => {
  mkdirSync(SHOTS, { recursive: true });
  ({ stack, stream } = await party.start());
  browsers = party.browsers;
});

afterAll(() => party.stop());

const modButton = (p: Page, conn: string) =>
  p.locator(`[data-testid="voice-members"] [data-conn="${conn}"] [data-testid="voice-mod-mute"]`);

describe('voice through the SFU', () => {
  it('past the switch size every member sends once and hears the others through the node; a mute stops at the node; a leave reaches everyone', async () => {
    const room = `voice-sfu-${Date.now()}`;
    for (const [i, m] of MEMBERS.entries()) {
      const page = await browsers[i]!.newPage();
      const auth = m.role === 'host' ? `&roomToken=${await roomToken(room, m.name, 'host')}` : `&name=${m.name}`;
      await page.goto(`${stack.workerUrl}/party/${room}?stream=${stream.id}${auth}`);
      pages.push(page);
    }
    const [host, ada, bob] = pages as [Page & { errors: string[] }, Page & { errors: string[] }, Page & { errors: string[] }];
    for (const p of pages) await p.getByTestId('join-voice').waitFor();
    // One after the other: two make a mesh, the third moves all three to the SFU.
    for (const p of pages) {
      await p.getByTestId('join-voice').click();
      await expect.poll(() => p.getByTestId('voice-status').textContent(), { timeout: 20_000 }).toMatch(/^In voice/);
    }
    for (const p of pages)
      await expect.poll(() => p.getByTestId('voice-status').textContent(), { timeout: 20_000 }).toBe('In voice (media server)');
    const ids = (await Promise.all(pages.map(you))) as [Id, Id, Id];
    const [hostId, adaId, bobId] = ids;

    // Each page has one connection (to the node) and hears both others over it.
    for (const [i, p] of pages.entries()) {
      const others = ids.filter((_, j) => j !== i).map((x) => x.conn);
      await waitInPage(
        p,
        (o: string[]) => {
          const l = (globalThis as unknown as { __edgelive: { voice: { levels(): Levels } } }).__edgelive.voice.levels();
          return o.every((c) => l[c]?.state === 'connected');
        },
        `${MEMBERS[i]!.name} hearing both others through the SFU`,
        60_000,
        others,
      ).catch(async (err: unknown) => {
        log.info('voice when the wait gave up', {
          member: MEMBERS[i]!.name,
          levels: await levels(p),
          sfu: await sfuHealth(),
          errors: p.errors,
        });
        throw err;
      });
      // Connected is not yet carrying: the first packets through the node may take a moment on a loaded machine.
      let heard: Record<string, number> = {};
      await expect
        .poll(async () => ((heard = await receivedLevel(p)), Math.min(...others.map((c) => heard[c] ?? 0))), {
          timeout: 20_000,
          interval: 0,
        })
        .toBeGreaterThan(HEARD)
        .catch(async (err: unknown) => {
          log.info('received levels through the SFU when the wait gave up', { member: MEMBERS[i]!.name, heard, sfu: await sfuHealth() });
          throw err;
        });
      log.info('received levels through the SFU', { member: MEMBERS[i]!.name, heard });
      for (const c of others) expect(heard[c], `${MEMBERS[i]!.name} ← ${c}`).toBeGreaterThan(HEARD);
    }
    const health = await sfuHealth();
    expect(health.seats.map((s) => s.conn).sort()).toEqual(ids.map((x) => x.conn).sort());
    expect(health.seats.every((s) => s.state === 'connected')).toBe(true);
    expect(health.counters.forwarded).toBeGreaterThan(0);
    // The speaking indicator still goes round: the host sees both guests speaking.
    for (const id of [adaId, bobId]) {
      await expect
        .poll(() => host.locator(`[data-testid="voice-members"] [data-conn="${id.conn}"]`).getAttribute('data-speaking'), {
          timeout: 10_000,
        })
        .toBe('true');
    }

    // The host mutes Bob: the node drops his packets (the Room told it), and nobody receives him.
    await modButton(host, bobId.conn).click();
    await expect.poll(() => bob.getByTestId('voice-mute').textContent(), { timeout: 10_000 }).toBe('Muted by a moderator');
    await expect.poll(async () => (await sfuHealth()).seats.find((s) => s.conn === bobId.conn)?.forced, { timeout: 10_000 }).toBe(true);
    const droppedAt = (await sfuHealth()).counters.dropped;
    for (const [p, hears] of [
      [ada, hostId],
      [host, adaId],
    ] as const) {
      await expect.poll(async () => (await receivedLevel(p, 1000))[bobId.conn] ?? 1, { timeout: 15_000, interval: 0 }).toBeLessThan(SILENT);
      const after = await receivedLevel(p);
      expect(after[bobId.conn], 'Bob, muted').toBeLessThan(SILENT);
      expect(after[hears.conn], 'the others, still talking').toBeGreaterThan(HEARD);
      expect((await levels(p))[bobId.conn]!.gated).toBe(true);
    }
    // Bob's client still sends (muted: silence), and the node drops it rather than forwarding it.
    await expect.poll(async () => (await sfuHealth()).counters.dropped, { timeout: 10_000 }).toBeGreaterThan(droppedAt);

    // The host lets Bob speak again and he unmutes: he is heard again, through the node.
    await modButton(host, bobId.conn).click();
    await expect.poll(() => bob.getByTestId('voice-mute').textContent(), { timeout: 10_000 }).toBe('Unmute');
    await bob.getByTestId('voice-mute').click();
    await expect
      .poll(async () => (await receivedLevel(ada, 1000))[bobId.conn] ?? 0, { timeout: 15_000, interval: 0 })
      .toBeGreaterThan(HEARD)
      .catch(async (err: unknown) => {
        const live = await bob.evaluate(
          () => (globalThis as unknown as { __edgelive: { voice: { live: boolean } } }).__edgelive.voice.live,
        );
        log.info('Bob unmuted, not heard', { bobLive: live, adaLevels: await levels(ada), sfu: await sfuHealth() });
        throw err;
      });

    // Bob leaves: his slot is freed on the other pages, and the node holds two seats.
    await bob.getByTestId('voice-leave').click();
    for (const p of [host, ada])
      await waitInPage(
        p,
        (c: string) => !(c in (globalThis as unknown as { __edgelive: { voice: { levels(): Levels } } }).__edgelive.voice.levels()),
        'Bob gone',
        15_000,
        bobId.conn,
      );
    await expect.poll(async () => (await sfuHealth()).seats.length, { timeout: 10_000 }).toBe(2);
    const stillHeard = await receivedLevel(host);
    expect(stillHeard[adaId.conn], 'the host still hears Ada').toBeGreaterThan(HEARD);

    await host.screenshot({ path: join(SHOTS, 'party-voice-sfu-host.png') });
    for (const p of pages) expect(p.errors.filter((e) => !/Failed to load resource/.test(e))).toEqual([]);
  });
});
