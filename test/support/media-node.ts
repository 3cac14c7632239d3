// What the end-to-end tests read from a running media node: its JSON log lines, its /health,
// its /metrics parsed strictly as Prometheus text, and a publish that is expected to be refused.
import { spawn } from 'node:child_process';
import { existsSync, readFileSync } from 'node:fs';
import { parsePrometheusText, type Family } from './prom-text.ts';

export async function until<T>(
  what: string,
  fn: () => Promise<T | null | undefined | false> | T | null | undefined | false,
  timeoutMs = 30_000,
): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const v = await Promise.resolve()
      .then(fn)
      .catch(() => null);
    if (v) return v;
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 250));
  }
}

export type LogLine = Record<string, unknown> & { msg: string; level: string };

/** The JSON lines of a node's log file (other lines, e.g. a runtime warning, are skipped). */
export function logLines(file: string): LogLine[] {
  if (!existsSync(file)) return [];
  const out: LogLine[] = [];
  for (const line of readFileSync(file, 'utf8').split('\n')) {
    if (!line.startsWith('{')) continue;
    try {
      out.push(JSON.parse(line) as LogLine);
    } catch {
      // a line being written
    }
  }
  return out;
}

/** GET /metrics: checks the content type and parses the body strictly. */
export async function scrape(healthUrl: string): Promise<Map<string, Family>> {
  const res = await fetch(healthUrl.replace(/\/health$/, '/metrics'));
  if (res.status !== 200) throw new Error(`/metrics answered ${res.status}`);
  const type = res.headers.get('content-type') ?? '';
  if (!/^text\/plain; version=0\.0\.4/.test(type)) throw new Error(`/metrics content type ${type}`);
  return parsePrometheusText(await res.text());
}

export interface NodeHealth {
  capacity: number;
  overloaded: string | null;
  sessions: Array<{ streamId: string; protocol: string; epoch: number; ffmpegPid?: number }>;
  /** WHIP publishers on the node and the WebRTC peer connections it made (refusals must make none). */
  whip: Array<{ id: string; streamId: string; epoch: number; state: string; videoFrames: number; audioFrames: number }>;
  webrtc: { peersCreated: number; peersOpen: number };
}

export async function health(healthUrl: string): Promise<NodeHealth> {
  return (await (await fetch(healthUrl)).json()) as NodeHealth;
}

/** Publishes a few seconds of test pattern with ffmpeg; resolves with its exit code and stderr (a refused publish fails at once). */
export function publishOnce(url: string, seconds = 4): Promise<{ code: number | null; stderr: string }> {
  const child = spawn(
    'ffmpeg',
    [
      '-hide_banner',
      '-loglevel',
      'error',
      '-nostdin',
      '-re',
      '-f',
      'lavfi',
      '-i',
      'testsrc2=size=320x180:rate=30',
      '-t',
      String(seconds),
      '-c:v',
      'libx264',
      '-preset',
      'ultrafast',
      '-g',
      '30',
      '-f',
      url.startsWith('srt://') ? 'mpegts' : 'flv',
      url,
    ],
    { stdio: ['ignore', 'ignore', 'pipe'] },
  );
  let stderr = '';
  child.stderr.on('data', (d: Buffer) => (stderr += d.toString()));
  return new Promise((resolve) => child.on('exit', (code) => resolve({ code, stderr })));
}
