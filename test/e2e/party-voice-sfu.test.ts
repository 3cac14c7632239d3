// Party voice through the media node's SFU, in real browsers on the real local stack: the mesh's
// switch size is lowered to 2 (VOICE_MESH_MAX), so the third member moves the group to the SFU;
// each page then sends its microphone once and receives the other two through the node, measured
// as the energy of every received track. A host's mute stops that member's audio at the node (its
// packets are dropped there, not only unplayed), and a member leaving reaches the others.
import { spawnSync, type ChildProcess } from 'node:child_process';
import { mkdirSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { Page } from 'playwright-core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ROOT, startStack, startTestPublisher, stopChild, type CreatedStream, type Stack } from '../../scripts/local-stack.ts';
import { createLogger } from '../../transcoder-node/log.ts';
import { WEBRTC_PUBLISHER_FLAGS, launchBrowser, waitInPage, type TestBrowser } from '../support/browser.ts';

const log = createLogger({ service: 'e2e-voice-sfu' });
const SHOTS = join(ROOT, 'test-results', 'screenshots');
const LADDER = [
  { name: '240p', kind: 'video', width: 426, height: 240, videoBitrate: 300_000 },
  { name: 'audio', kind: 'audio', audioBitrate: 64_000 },
];
/** Each member's microphone: a tone of its own in syllable-like bursts (as party-voice.test.ts). */
const MEMBERS = [
  { name: 'Hana', role: 'host' as const, hz: 440 },
  { name: 'Ada', role: 'viewer' as const, hz: 660 },
  { name: 'Bob', role: 'viewer' as const, hz: 880 },
];
const HEARD = 0.02;
const SILENT = 0.004;

type Levels = Record<string, { rms: number; state: string; gated: boolean }>;
type Energy = Record<string, { energy: number; seconds: number }>;
type Id = { conn: string; uid: string };
type SfuHealth = { seats: Array<{ conn: string; state: string; forced: boolean }>; counters: { forwarded: number; dropped: number } };

let dir: string;
let stack: Stack;
let stream: CreatedStream;
let publisher: ChildProcess;
const browsers: TestBrowser[] = [];
const pages: Array<Page & { errors: string[] }> = [];

const levels = (p: Page): Promise<Levels> =>
  p.evaluate(() => (globalThis as unknown as { __edgelive: { voice?: { levels(): Levels } } }).__edgelive.voice?.levels() ?? {});
const you = (p: Page): Promise<Id> =>
  p.evaluate(() => (globalThis as unknown as { __edgelive: { page: { room: { you: Id } } } }).__edgelive.page.room.you);
const energy = (p: Page): Promise<Energy> =>
  p.evaluate(() =>
    (globalThis as unknown as { __edgelive: { voice: { receivedEnergy(): Promise<Energy> } } }).__edgelive.voice.receivedEnergy(),
  );
const sfuHealth = async (): Promise<SfuHealth> => ((await (await fetch(stack.transcoderHealthUrl)).json()) as { sfu: SfuHealth }).sfu;

/** Each received track's level over a window: the root of the mean power its statistics count. */
async function receivedLevel(p: Page, windowMs = 1500): Promise<Record<string, number>> {
  const a = await energy(p);
  await p.waitForTimeout(windowMs);
  const b = await energy(p);
  const out: Record<string, number> = {};
  for (const [conn, x] of Object.entries(b)) {
    const before = a[conn];
    const seconds = x.seconds - (before?.seconds ?? 0);
    out[conn] = before && seconds > 0 ? Math.sqrt(Math.max(0, x.energy - before.energy) / seconds) : 0;
  }
  return out;
}

async function roomToken(room: string, name: string, role: 'viewer' | 'moderator' | 'host'): Promise<string> {
  const res = await fetch(`${stack.workerUrl}/rooms/${room}/tokens`, {
    method: 'POST',
    headers: { authorization: `Bearer ${stack.adminToken}`, 'content-type': 'application/json' },
    body: JSON.stringify({ name, role }),
  });
  expect(res.status).toBe(201);
  return ((await res.json()) as { token: string }).token;
}

beforeAll(async () => {
  dir = mkdtempSync(join(tmpdir(), 'edgelive-e2e-voice-sfu-'));
  mkdirSync(SHOTS, { recursive: true });
  for (const m of MEMBERS) {
    const wav = join(dir, `${m.name}.wav`);
    const made = spawnSync('ffmpeg', [
      '-hide_banner',
      '-loglevel',
      'error',
      '-y',
      '-f',
      'lavfi',
      '-i',
      `aevalsrc=exprs='0.5*sin(2*PI*${m.hz}*t)*gt(sin(2*PI*2.5*t),0)':s=48000:d=30`,
      '-ac',
      '1',
      '-c:a',
      'pcm_s16le',
      wav,
    ]);
    if (made.status !== 0) throw new Error(`ffmpeg: ${made.stderr}`);
    browsers.push(
      await launchBrowser({ width: 1280, height: 800, args: [...WEBRTC_PUBLISHER_FLAGS, `--use-file-for-fake-audio-capture=${wav}`] }),
    );
  }
  stack = await startStack({
    persistDir: join(dir, 'state'),
    logDir: join(dir, 'logs'),
    adminToken: 'e2e-admin',
    ingestSecret: 'e2e-ingest-secret',
    // Two members make a mesh; the third moves the group to the SFU.
    workerVars: { VOICE_MESH_MAX: '2' },
    logger: log,
  });
  stream = await stack.createStream({ title: 'Voice night, bigger', ladder: LADDER });
  publisher = startTestPublisher({ rtmpUrl: stream.ingest.rtmp, width: 426, height: 240, fps: 15, logDir: join(dir, 'logs') });
  const deadline = Date.now() + 40_000;
  for (;;) {
    const res = await fetch(`${stack.workerUrl}/live/${stream.id}/240p/index.m3u8`);
    const text = res.ok ? await res.text() : (await res.body?.cancel(), '');
    if ((text.match(/#EXTINF/g) ?? []).length >= 3) break;
    if (Date.now() > deadline) throw new Error('the stream did not start');
    await new Promise((r) => setTimeout(r, 300));
  }
});

afterAll(async () => {
  for (const b of browsers) await b.close();
  await stopChild(publisher);
  await stack?.stop();
  if (dir && !process.env.KEEP_E2E) rmSync(dir, { recursive: true, force: true });
});

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
