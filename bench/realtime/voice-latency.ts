// Mouth-to-ear latency of party voice on loopback (issue 10, "How it is checked"): two party pages
// on the real local stack join voice; the speaking page's microphone is a Web Audio source that
// emits a 30 ms click when told, stamped with the wall clock, and the listening page detects the
// click's first sample in the received track with an AudioWorklet, stamped the same way (both
// pages share the machine's clock). What it counts: capture → Opus encode → RTP over loopback →
// jitter buffer → decode → the listener's audio graph; not the output device's buffer (headless
// Chromium plays into no device), which adds ~10-40 ms on real hardware.
//   node bench/realtime/voice-latency.ts       (BENCH_VOICE_CLICKS=40, BENCH_VOICE_GAP_MS=400)
// `measureVoiceLatency(stack, streamId)` is exported for bench/realtime/run.ts to call in its run.
import { mkdtempSync, rmSync } from 'node:fs';
import { loadavg, tmpdir } from 'node:os';
import { join } from 'node:path';
import { startStack, startTestPublisher, stopChild, type Stack } from '../../scripts/local-stack.ts';
import { createLogger } from '../../transcoder-node/log.ts';
import { WEBRTC_PUBLISHER_FLAGS, launchBrowser, waitInPage } from '../../test/support/browser.ts';

const CLICKS = Number(process.env.BENCH_VOICE_CLICKS ?? 40);
const GAP_MS = Number(process.env.BENCH_VOICE_GAP_MS ?? 400);
/** A received sample this loud is the click (the click is sent at 0.8; silence decodes to ~0). */
const THRESHOLD = 0.1;
/** A click not heard within this long counts as lost. */
const TIMEOUT_MS = 2000;

export interface VoiceLatency {
  clicks: number;
  heard: number;
  p50Ms: number;
  p90Ms: number;
  maxMs: number;
  samplesMs: number[];
}

type Hooks = {
  __edgelive: { voice?: { status: string; levels(): Record<string, { state: string }> }; page: { room: { you: { conn: string } } } };
};

// The in-page code is plain JavaScript text: the repository's Node typecheck has no DOM types.

/** Replaces the page's microphone with a Web Audio source whose clicks are stamped (`__click()`). */
const CLICK_MICROPHONE = `(() => {
  const md = navigator.mediaDevices;
  const orig = md.getUserMedia.bind(md);
  md.getUserMedia = async (c) => {
    if (!c || !c.audio || c.video) return orig(c);
    const ctx = new AudioContext({ latencyHint: 'interactive' });
    await ctx.resume();
    const osc = ctx.createOscillator();
    osc.frequency.value = 1000;
    const gain = ctx.createGain();
    gain.gain.value = 0;
    const dest = ctx.createMediaStreamDestination();
    osc.connect(gain).connect(dest);
    osc.start();
    globalThis.__click = () => {
      const at = ctx.currentTime;
      gain.gain.setValueAtTime(0.8, at);
      gain.gain.setValueAtTime(0, at + 0.03);
      return performance.timeOrigin + performance.now();
    };
    return dest.stream;
  };
})();`;

/** In the listening page: an AudioWorklet on the received track that stamps the first loud block of each click. */
const armDetector = (conn: string) => `(async () => {
  const stream = globalThis.__edgelive.voice.remoteAudio(${JSON.stringify(conn)});
  if (!stream) throw new Error('no received audio from the speaker');
  const ctx = new AudioContext({ latencyHint: 'interactive' });
  await ctx.resume();
  const code = \`registerProcessor('click-detector', class extends AudioWorkletProcessor {
    constructor() { super(); this.quietUntil = 0; }
    process(inputs) {
      const ch = inputs[0] && inputs[0][0];
      if (ch && currentTime >= this.quietUntil) {
        for (let i = 0; i < ch.length; i++) if (Math.abs(ch[i]) > ${THRESHOLD}) { this.port.postMessage(0); this.quietUntil = currentTime + 0.2; break; }
      }
      return true;
    }
  });\`;
  await ctx.audioWorklet.addModule(URL.createObjectURL(new Blob([code], { type: 'text/javascript' })));
  const node = new AudioWorkletNode(ctx, 'click-detector');
  globalThis.__heard = [];
  node.port.onmessage = () => globalThis.__heard.push(performance.timeOrigin + performance.now());
  ctx.createMediaStreamSource(stream).connect(node);
  // A processor runs while the graph pulls it: into the destination, silent.
  const mute = ctx.createGain();
  mute.gain.value = 0;
  node.connect(mute).connect(ctx.destination);
})()`;

function percentile(sorted: number[], p: number): number {
  return sorted.length ? sorted[Math.min(sorted.length - 1, Math.floor((p / 100) * sorted.length))]! : NaN;
}

/** Two party pages in voice on `stack` watching `streamId`; `CLICKS` clicks from one to the other. */
export async function measureVoiceLatency(stack: Stack, streamId: string): Promise<VoiceLatency> {
  const browser = await launchBrowser({ width: 1000, height: 700, args: WEBRTC_PUBLISHER_FLAGS });
  try {
    const room = `voice-bench-${Date.now()}`;
    const speaker = await browser.newPage();
    await speaker.addInitScript({ content: CLICK_MICROPHONE });
    const listener = await browser.newPage();
    // One browser profile is one anonymous member (its cookie): the speaker joins with a room
    // token, so the two pages are two members with a seat each.
    const minted = await fetch(`${stack.workerUrl}/rooms/${room}/tokens`, {
      method: 'POST',
      headers: { authorization: `Bearer ${stack.adminToken}`, 'content-type': 'application/json' },
      body: JSON.stringify({ name: 'Speaker', role: 'viewer' }),
    });
    if (minted.status !== 201) throw new Error(`room token: HTTP ${minted.status}`);
    const speakerToken = ((await minted.json()) as { token: string }).token;
    for (const [p, auth] of [
      [speaker, `roomToken=${speakerToken}`],
      [listener, 'name=Listener'],
    ] as const) {
      await p.goto(`${stack.workerUrl}/party/${room}?stream=${streamId}&${auth}`);
      await p.getByTestId('join-voice').click();
    }
    for (const p of [speaker, listener]) {
      await waitInPage(p, () => (globalThis as unknown as Hooks).__edgelive.voice?.status === 'connected', 'in voice', 30_000).catch(
        async (err: unknown) => {
          const why = await p.evaluate(() => {
            const v = (globalThis as unknown as { __edgelive: { voice?: { status: string; error: string | null } } }).__edgelive.voice;
            return v ? { status: v.status, error: v.error } : null;
          });
          throw new Error(
            `${p === speaker ? 'speaker' : 'listener'}: ${String(err)}: ${JSON.stringify(why)} ${JSON.stringify((p as { errors?: string[] }).errors?.slice(-3))}`,
          );
        },
      );
    }
    const speakerConn = await speaker.evaluate(() => (globalThis as unknown as Hooks).__edgelive.page.room.you.conn);
    await waitInPage(
      listener,
      (c: string) => (globalThis as unknown as Hooks).__edgelive.voice!.levels()[c]?.state === 'connected',
      'connected to the speaker',
      30_000,
      speakerConn,
    );
    await listener.evaluate(armDetector(speakerConn));
    // The first clicks after a connection opens meet a jitter buffer still settling: warm up.
    for (let i = 0; i < 5; i++) {
      await speaker.evaluate(() => (globalThis as unknown as { __click(): number }).__click());
      await speaker.waitForTimeout(GAP_MS);
    }
    const samples: number[] = [];
    for (let i = 0; i < CLICKS; i++) {
      await listener.evaluate(() => ((globalThis as unknown as { __heard: number[] }).__heard.length = 0));
      const sent = await speaker.evaluate(() => (globalThis as unknown as { __click(): number }).__click());
      const heard = await listener
        .waitForFunction(() => (globalThis as unknown as { __heard: number[] }).__heard[0] ?? 0, undefined, {
          timeout: TIMEOUT_MS,
          polling: 5,
        })
        .then((h) => h.jsonValue() as Promise<number>)
        .catch(() => null);
      if (heard !== null) samples.push(heard - sent);
      await speaker.waitForTimeout(GAP_MS);
    }
    const sorted = [...samples].sort((a, b) => a - b);
    return {
      clicks: CLICKS,
      heard: samples.length,
      p50Ms: percentile(sorted, 50),
      p90Ms: percentile(sorted, 90),
      maxMs: sorted.at(-1) ?? NaN,
      samplesMs: samples.map((x) => Math.round(x * 10) / 10),
    };
  } finally {
    await browser.close();
  }
}

if (import.meta.url === `file://${process.argv[1]}`) {
  const log = createLogger({ service: 'bench-voice' });
  const dir = mkdtempSync(join(tmpdir(), 'edgelive-bench-voice-'));
  const stack = await startStack({
    persistDir: join(dir, 'state'),
    logDir: join(dir, 'logs'),
    adminToken: 'bench-admin',
    ingestSecret: 'bench-ingest-secret',
    logger: log,
  });
  let publisher: ReturnType<typeof startTestPublisher> | undefined;
  try {
    const stream = await stack.createStream({
      title: 'Voice latency',
      ladder: [
        { name: '240p', kind: 'video', width: 426, height: 240, videoBitrate: 300_000 },
        { name: 'audio', kind: 'audio', audioBitrate: 64_000 },
      ],
    });
    publisher = startTestPublisher({ rtmpUrl: stream.ingest.rtmp, width: 426, height: 240, fps: 15, logDir: join(dir, 'logs') });
    const before = loadavg()[0]!;
    const r = await measureVoiceLatency(stack, stream.id);
    console.log(
      JSON.stringify({
        bench: 'voice mouth-to-ear (loopback, 2 party pages, mesh)',
        clicks: r.clicks,
        heard: r.heard,
        p50Ms: Math.round(r.p50Ms),
        p90Ms: Math.round(r.p90Ms),
        maxMs: Math.round(r.maxMs),
        loadavg1m: [before, loadavg()[0]],
        samplesMs: r.samplesMs,
      }),
    );
  } finally {
    await stopChild(publisher);
    await stack.stop();
    rmSync(dir, { recursive: true, force: true });
  }
}
