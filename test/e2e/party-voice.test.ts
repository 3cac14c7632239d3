// Party voice in real browsers on the real local stack (wrangler dev, the transcoder, ffmpeg
// publishing): three party pages — three Chromium instances, each with a fake microphone playing
// its own tone (a WAV made by ffmpeg) — join voice with one click each and receive each other's
// audio, measured as the energy of every received track through Web Audio; a host mutes one
// member and the others stop receiving them; the party stays in sync while everyone talks; the
// voice code is not loaded, and the microphone not asked for, until the click.
import { spawnSync, type ChildProcess } from 'node:child_process';
import { mkdirSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { Page } from 'playwright-core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ROOT, startStack, startTestPublisher, stopChild, type CreatedStream, type Stack } from '../../scripts/local-stack.ts';
import { createLogger } from '../../transcoder-node/log.ts';
import type { PageSnapshot } from '../../core/player/page-snapshot.ts';
import { launchBrowser, waitInPage, type TestBrowser } from '../support/browser.ts';

const log = createLogger({ service: 'e2e-voice' });
const SHOTS = join(ROOT, 'test-results', 'screenshots');
// Small on purpose: three players, three browsers and the stack share two cores.
const LADDER = [
  { name: '240p', kind: 'video', width: 426, height: 240, videoBitrate: 300_000 },
  { name: 'audio', kind: 'audio', audioBitrate: 64_000 },
];
/** Each member's microphone: a tone at its own pitch, with a syllable-rate swell (not a steady hum noise suppression would learn). */
const MEMBERS = [
  { name: 'Hana', role: 'host' as const, hz: 440 },
  { name: 'Ada', role: 'viewer' as const, hz: 660 },
  { name: 'Bob', role: 'viewer' as const, hz: 880 },
];
/** Received-track RMS that counts as hearing someone, and as silence (the tone arrives near 0.1). */
const HEARD = 0.02;
const SILENT = 0.004;

type VoicePage = Page & { errors: string[]; voiceRequests: string[] };
type Levels = Record<string, { rms: number; state: string; gated: boolean }>;

let dir: string;
let stack: Stack;
let stream: CreatedStream;
let publisher: ChildProcess;
const browsers: TestBrowser[] = [];
const pages: VoicePage[] = [];

const snapshot = (p: Page): Promise<PageSnapshot> => p.evaluate(() => (globalThis as unknown as { __edgelive: { snapshot(): PageSnapshot } }).__edgelive.snapshot());
const levels = (p: Page): Promise<Levels> => p.evaluate(() => (globalThis as unknown as { __edgelive: { voice?: { levels(): Levels } } }).__edgelive.voice?.levels() ?? {});
const you = (p: Page): Promise<{ conn: string; uid: string }> => p.evaluate(() => (globalThis as unknown as { __edgelive: { page: { room: { you: { conn: string; uid: string } } } } }).__edgelive.page.room.you);

/** The median of a few samples of each received track's level (one sample can catch a gap). */
async function steadyLevels(p: Page, samples = 5): Promise<Record<string, number>> {
  const seen: Record<string, number[]> = {};
  for (let i = 0; i < samples; i++) {
    for (const [conn, l] of Object.entries(await levels(p))) (seen[conn] ??= []).push(l.rms);
    await p.waitForTimeout(200);
  }
  return Object.fromEntries(Object.entries(seen).map(([c, xs]) => [c, xs.sort((a, b) => a - b)[Math.floor(xs.length / 2)]!]));
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
  dir = mkdtempSync(join(tmpdir(), 'edgelive-e2e-voice-'));
  mkdirSync(SHOTS, { recursive: true });
  for (const m of MEMBERS) {
    const wav = join(dir, `${m.name}.wav`);
    const made = spawnSync('ffmpeg', ['-hide_banner', '-loglevel', 'error', '-y', '-f', 'lavfi', '-i', `aevalsrc=exprs='0.35*sin(2*PI*${m.hz}*t)*(0.6+0.4*sin(2*PI*3*t))':s=48000:d=20`, '-ac', '1', '-c:a', 'pcm_s16le', wav]);
    if (made.status !== 0) throw new Error(`ffmpeg: ${made.stderr}`);
    browsers.push(await launchBrowser({ width: 1280, height: 800, args: ['--use-fake-ui-for-media-stream', '--use-fake-device-for-media-stream', `--use-file-for-fake-audio-capture=${wav}`] }));
  }
  stack = await startStack({ persistDir: join(dir, 'state'), logDir: join(dir, 'logs'), adminToken: 'e2e-admin', ingestSecret: 'e2e-ingest-secret', logger: log });
  stream = await stack.createStream({ title: 'Voice night', ladder: LADDER });
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

describe('voice in a watch party', () => {
  it('three members hear each other, a host mutes one, and the party stays in sync', async () => {
    const room = `voice-${Date.now()}`;
    for (const [i, m] of MEMBERS.entries()) {
      const page = (await browsers[i]!.newPage()) as VoicePage;
      page.voiceRequests = [];
      page.on('request', (r) => {
        if (r.url().includes('/dist/voice.js')) page.voiceRequests.push(r.url());
      });
      // Counts microphone requests: the permission must be asked on the click, not before.
      await page.addInitScript(() => {
        type Md = { getUserMedia(c?: unknown): Promise<unknown> };
        const g = globalThis as unknown as { __gum: number; navigator: { mediaDevices: Md } };
        const md = g.navigator.mediaDevices;
        const orig = md.getUserMedia.bind(md);
        g.__gum = 0;
        md.getUserMedia = (c?: unknown) => (g.__gum++, orig(c));
      });
      const auth = m.role === 'host' ? `&roomToken=${await roomToken(room, m.name, 'host')}` : `&name=${m.name}`;
      await page.goto(`${stack.workerUrl}/party/${room}?stream=${stream.id}${auth}`);
      pages.push(page);
    }
    const [host, ada, bob] = pages as [VoicePage, VoicePage, VoicePage];
    const inSync = (p: Page) => waitInPage(p, () => (globalThis as unknown as { __edgelive?: { snapshot(): { party: { state: string } | null } } }).__edgelive?.snapshot().party?.state === 'in-sync', 'in sync', 60_000);

    // Nothing of voice before the click: no chunk, no microphone.
    for (const p of pages) {
      await p.getByTestId('join-voice').waitFor();
      expect(p.voiceRequests).toEqual([]);
      expect(await p.evaluate(() => (globalThis as unknown as { __gum: number }).__gum)).toBe(0);
    }
    for (const p of pages) await p.getByTestId('join-voice').click();
    for (const p of pages) {
      await expect.poll(() => p.getByTestId('voice-status').textContent(), { timeout: 20_000 }).toBe('In voice');
      expect(p.voiceRequests).toHaveLength(1);
      expect(await p.evaluate(() => (globalThis as unknown as { __gum: number }).__gum)).toBe(1);
    }
    const ids = await Promise.all(pages.map(you));
    const [hostId, adaId, bobId] = ids as [{ conn: string; uid: string }, { conn: string; uid: string }, { conn: string; uid: string }];

    // Everyone hears the other two: both received tracks carry the tone.
    for (const [i, p] of pages.entries()) {
      const others = ids.filter((_, j) => j !== i).map((x) => x.conn);
      await waitInPage(
        p,
        (o: string[]) => {
          const l = (globalThis as unknown as { __edgelive: { voice: { levels(): Levels } } }).__edgelive.voice.levels();
          return o.every((c) => l[c]?.state === 'connected' && l[c]!.rms > 0.02);
        },
        `${MEMBERS[i]!.name} hearing both others`,
        30_000,
        others,
      );
      const heard = await steadyLevels(p);
      for (const c of others) expect(heard[c], `${MEMBERS[i]!.name} ← ${c}`).toBeGreaterThan(HEARD);
    }
    // The speaking indicator goes round the room: the host's page shows both guests speaking.
    for (const id of [adaId, bobId]) {
      await expect.poll(() => host.locator(`[data-testid="voice-members"] [data-conn="${id.conn}"]`).getAttribute('data-speaking'), { timeout: 10_000 }).toBe('true');
    }

    // The party's playback keeps its alignment while everyone talks (the browser-player bound).
    await Promise.all(pages.map(inSync)).catch(async (err: unknown) => {
      for (const p of pages) log.info('party page when the wait gave up', { party: (await snapshot(p).catch(() => null))?.party, errors: p.errors.slice(-5) });
      throw err;
    });
    const apart = async (a: Page, b: Page) => {
      const [x, y] = await Promise.all([snapshot(a), snapshot(b)]);
      const advance = x.paused ? 0 : (y.wallMs - x.wallMs) * x.playbackRate;
      return Math.abs(y.pdt! - (x.pdt! + advance));
    };
    const gaps: number[] = [];
    for (let i = 0; i < 5; i++) {
      gaps.push(await apart(host, ada), await apart(host, bob));
      await host.waitForTimeout(200);
    }
    gaps.sort((x, y) => x - y);
    log.info('party alignment while talking', { gapsMs: gaps.map((g) => Math.round(g)) });
    expect(gaps[Math.floor(gaps.length / 2)]).toBeLessThan(70);
    for (const p of pages) expect((await snapshot(p)).party?.state).toBe('in-sync');

    // The host mutes Bob: Ada and the host stop receiving Bob's audio, and still hear each other.
    await host.locator(`[data-testid="voice-members"] [data-conn="${bobId.conn}"] [data-testid="voice-mod-mute"]`).click();
    await expect.poll(() => bob.getByTestId('voice-mute').textContent(), { timeout: 10_000 }).toBe('Muted by a moderator');
    expect(await bob.getByTestId('voice-mute').isDisabled()).toBe(true);
    for (const [p, hears] of [[ada, hostId], [host, adaId]] as const) {
      await waitInPage(p, (c: string) => ((globalThis as unknown as { __edgelive: { voice: { levels(): Levels } } }).__edgelive.voice.levels()[c]?.rms ?? 1) < 0.004, 'Bob silent', 10_000, bobId.conn);
      const after = await steadyLevels(p);
      expect(after[bobId.conn], 'Bob, muted').toBeLessThan(SILENT);
      expect(after[hears.conn], 'the others, still talking').toBeGreaterThan(HEARD);
      // And Bob's audio would not be played even if his client kept sending.
      expect((await levels(p))[bobId.conn]!.gated).toBe(true);
    }
    // Bob cannot unmute himself; the host lets him speak again and he unmutes: he is heard again.
    await host.locator(`[data-testid="voice-members"] [data-conn="${bobId.conn}"] [data-testid="voice-mod-mute"]`).click();
    await expect.poll(() => bob.getByTestId('voice-mute').textContent(), { timeout: 10_000 }).toBe('Unmute');
    await bob.getByTestId('voice-mute').click();
    await waitInPage(ada, (c: string) => ((globalThis as unknown as { __edgelive: { voice: { levels(): Levels } } }).__edgelive.voice.levels()[c]?.rms ?? 0) > 0.02, 'Bob heard again', 10_000, bobId.conn);

    // A camera joins the same connections: Ada's tile appears on the host's page.
    await ada.getByTestId('voice-camera').click();
    const tile = host.locator(`[data-testid="voice-tiles"] [data-conn="${adaId.conn}"] video`);
    await expect
      .poll(() => tile.evaluate((v) => (v as unknown as { videoWidth: number; currentTime: number }).videoWidth > 0 && (v as unknown as { currentTime: number }).currentTime > 0).catch(() => false), { timeout: 20_000 })
      .toBe(true);

    // The host removes Bob from voice: his connections close on both other pages.
    await host.locator(`[data-testid="voice-members"] [data-conn="${bobId.conn}"] [data-testid="voice-mod-remove"]`).click();
    for (const p of [host, ada]) await waitInPage(p, (c: string) => !(c in (globalThis as unknown as { __edgelive: { voice: { levels(): Levels } } }).__edgelive.voice.levels()), 'Bob gone', 10_000, bobId.conn);

    await host.screenshot({ path: join(SHOTS, 'party-voice-host.png') });
    for (const p of pages) expect(p.errors.filter((e) => !/Failed to load resource/.test(e))).toEqual([]);
  });
});
