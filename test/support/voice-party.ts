// What the party-voice tests share (the mesh's and the SFU's): three members, each a Chromium
// with a fake microphone playing its own tone (a WAV made by ffmpeg), the local stack with a small
// ladder and a live stream, and the probes that read a page's voice levels and the energy of the
// tracks it receives. The assertions stay in the tests.
import { spawnSync, type ChildProcess } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { Page } from 'playwright-core';
import { startStack, startTestPublisher, stopChild, type CreatedStream, type Stack } from '../../scripts/local-stack.ts';
import type { Logger } from '../../transcoder-node/log.ts';
import { WEBRTC_PUBLISHER_FLAGS, launchBrowser, type TestBrowser } from './browser.ts';

// Small on purpose: three players, three browsers and the stack share two cores.
const LADDER = [
  { name: '240p', kind: 'video', width: 426, height: 240, videoBitrate: 300_000 },
  { name: 'audio', kind: 'audio', audioBitrate: 64_000 },
];

/**
 * Each member's microphone: a tone at its own pitch in syllable-like bursts (200 ms on, 200 ms
 * off), which noise suppression keeps as it would keep speech, where it would learn and remove a
 * steady hum.
 */
export const MEMBERS = [
  { name: 'Hana', role: 'host' as const, hz: 440 },
  { name: 'Ada', role: 'viewer' as const, hz: 660 },
  { name: 'Bob', role: 'viewer' as const, hz: 880 },
];
/** Received level (root of the mean power over a window) that counts as hearing someone, and as silence. */
export const HEARD = 0.02;
export const SILENT = 0.004;

export type Levels = Record<string, { rms: number; state: string; gated: boolean }>;
export type Energy = Record<string, { energy: number; seconds: number }>;
export type Id = { conn: string; uid: string };

/** The voice card's levels: every member in voice by connection, as the page shows them. */
export const levels = (p: Page): Promise<Levels> =>
  p.evaluate(() => (globalThis as unknown as { __edgelive: { voice?: { levels(): Levels } } }).__edgelive.voice?.levels() ?? {});
/** The page's own seat in the room. */
export const you = (p: Page): Promise<Id> =>
  p.evaluate(() => (globalThis as unknown as { __edgelive: { page: { room: { you: Id } } } }).__edgelive.page.room.you);
const energy = (p: Page): Promise<Energy> =>
  p.evaluate(() =>
    (globalThis as unknown as { __edgelive: { voice: { receivedEnergy(): Promise<Energy> } } }).__edgelive.voice.receivedEnergy(),
  );

/**
 * Each received track's level over a window, from the energy its connection's statistics count
 * (inbound-rtp totalAudioEnergy over totalSamplesDuration): the root of the mean power, so a
 * track that carried the voice for the whole window reads near its level and a silent one near 0.
 */
export async function receivedLevel(p: Page, windowMs = 1500): Promise<Record<string, number>> {
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

export interface VoicePartyOptions {
  /** Names the temporary directory (`edgelive-e2e-{name}-`). */
  name: string;
  title: string;
  logger: Logger;
  workerVars?: Record<string, string>;
}

/**
 * One browser per member (in MEMBERS order), the stack, and a live stream from the test pattern
 * whose 240p playlist lists three segments. Made before `start()` so that `stop()` in an afterAll
 * closes whatever came up.
 */
export class VoiceParty {
  readonly browsers: TestBrowser[] = [];
  dir = '';
  stack: Stack | undefined;
  stream: CreatedStream | undefined;
  private publisher: ChildProcess | undefined;
  private readonly o: VoicePartyOptions;

  constructor(o: VoicePartyOptions) {
    this.o = o;
  }

  async start(): Promise<{ stack: Stack; stream: CreatedStream }> {
    this.dir = mkdtempSync(join(tmpdir(), `edgelive-e2e-${this.o.name}-`));
    for (const m of MEMBERS) {
      const wav = join(this.dir, `${m.name}.wav`);
      const tone = `aevalsrc=exprs='0.5*sin(2*PI*${m.hz}*t)*gt(sin(2*PI*2.5*t),0)':s=48000:d=30`;
      const made = spawnSync('ffmpeg', [
        '-hide_banner',
        '-loglevel',
        'error',
        '-y',
        '-f',
        'lavfi',
        '-i',
        tone,
        '-ac',
        '1',
        '-c:a',
        'pcm_s16le',
        wav,
      ]);
      if (made.status !== 0) throw new Error(`ffmpeg: ${made.stderr}`);
      this.browsers.push(
        await launchBrowser({ width: 1280, height: 800, args: [...WEBRTC_PUBLISHER_FLAGS, `--use-file-for-fake-audio-capture=${wav}`] }),
      );
    }
    const stack = (this.stack = await startStack({
      persistDir: join(this.dir, 'state'),
      logDir: join(this.dir, 'logs'),
      adminToken: 'e2e-admin',
      ingestSecret: 'e2e-ingest-secret',
      logger: this.o.logger,
      ...(this.o.workerVars ? { workerVars: this.o.workerVars } : {}),
    }));
    const stream = (this.stream = await stack.createStream({ title: this.o.title, ladder: LADDER }));
    this.publisher = startTestPublisher({ rtmpUrl: stream.ingest.rtmp, width: 426, height: 240, fps: 15, logDir: join(this.dir, 'logs') });
    const deadline = Date.now() + 40_000;
    for (;;) {
      const res = await fetch(`${stack.workerUrl}/live/${stream.id}/240p/index.m3u8`);
      const text = res.ok ? await res.text() : (await res.body?.cancel(), '');
      if ((text.match(/#EXTINF/g) ?? []).length >= 3) break;
      if (Date.now() > deadline) throw new Error('the stream did not start');
      await new Promise((r) => setTimeout(r, 300));
    }
    return { stack, stream };
  }

  /** Closes the browsers, the publisher and the stack; removes the directory (kept with KEEP_E2E=1). */
  async stop(): Promise<void> {
    for (const b of this.browsers) await b.close();
    await stopChild(this.publisher);
    await this.stack?.stop();
    if (this.dir && !process.env.KEEP_E2E) rmSync(this.dir, { recursive: true, force: true });
  }
}
