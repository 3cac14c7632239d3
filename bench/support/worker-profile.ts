// A CPU profile of the Worker's isolate under wrangler dev, taken over the DevTools protocol of
// wrangler's inspector (the same one Chrome DevTools attaches to), summarised by self time per
// source file and per function, so a bench can say which share of the isolate's time is our code.
import WebSocket from 'ws';

interface ProfileNode {
  id: number;
  callFrame: { functionName: string; url: string; lineNumber: number };
  children?: number[];
}
interface Profile {
  nodes: ProfileNode[];
  samples: number[];
  timeDeltas: number[];
  startTime: number;
  endTime: number;
}

export interface ProfileSummary {
  /** Wall-clock µs covered and µs the isolate was busy (not idle). */
  wallUs: number;
  busyUs: number;
  byFile: Array<{ file: string; selfUs: number }>;
  byFunction: Array<{ fn: string; selfUs: number }>;
  /** The raw profile, for `.cpuprofile` files (Chrome DevTools opens them). */
  profile: Profile;
}

/** Profiles the first inspector target for `seconds`. */
export async function profileWorker(inspectorUrl: string, seconds: number): Promise<ProfileSummary> {
  const targets = (await (await fetch(`${inspectorUrl}/json`)).json()) as Array<{ webSocketDebuggerUrl: string; title?: string }>;
  if (targets.length === 0) throw new Error('the inspector lists no target');
  const ws = new WebSocket(targets[0]!.webSocketDebuggerUrl);
  await new Promise((resolve, reject) => {
    ws.once('open', resolve);
    ws.once('error', reject);
  });
  let nextId = 1;
  const pending = new Map<number, (r: unknown) => void>();
  ws.on('message', (data) => {
    const msg = JSON.parse(String(data)) as { id?: number; result?: unknown };
    if (msg.id !== undefined) pending.get(msg.id)?.(msg.result);
  });
  const send = (method: string, params: Record<string, unknown> = {}) =>
    new Promise<unknown>((resolve) => {
      const id = nextId++;
      pending.set(id, resolve);
      ws.send(JSON.stringify({ id, method, params }));
    });
  await send('Profiler.enable');
  await send('Profiler.setSamplingInterval', { interval: 500 });
  await send('Profiler.start');
  await new Promise((r) => setTimeout(r, seconds * 1000));
  const { profile } = (await send('Profiler.stop')) as { profile: Profile };
  ws.close();
  return summarise(profile);
}

function shortFile(url: string): string {
  if (!url) return '(native / runtime)';
  const m = /node_modules\/((?:@[^/]+\/)?[^/]+)/.exec(url);
  if (m) return `node_modules/${m[1]}`;
  return url.replace(/^.*?\/(workers|durable-objects|core)\//, '$1/').replace(/^file:\/\//, '');
}

export function summarise(profile: Profile): ProfileSummary {
  const byId = new Map(profile.nodes.map((n) => [n.id, n]));
  const self = new Map<number, number>();
  profile.samples.forEach((id, i) => self.set(id, (self.get(id) ?? 0) + (profile.timeDeltas[i] ?? 0)));
  const files = new Map<string, number>();
  const fns = new Map<string, number>();
  let busy = 0;
  for (const [id, us] of self) {
    const n = byId.get(id)!;
    const name = n.callFrame.functionName || '(anonymous)';
    if (name === '(idle)') continue;
    busy += us;
    const file = ['(program)', '(garbage collector)'].includes(name) ? name : shortFile(n.callFrame.url);
    files.set(file, (files.get(file) ?? 0) + us);
    const fn = `${name} ${shortFile(n.callFrame.url)}:${n.callFrame.lineNumber + 1}`;
    fns.set(fn, (fns.get(fn) ?? 0) + us);
  }
  const sorted = <K extends string>(m: Map<string, number>, key: K) =>
    [...m].sort((a, b) => b[1] - a[1]).map(([k, v]) => ({ [key]: k, selfUs: v }) as { [P in K]: string } & { selfUs: number });
  return {
    wallUs: profile.endTime - profile.startTime,
    busyUs: busy,
    byFile: sorted(files, 'file'),
    byFunction: sorted(fns, 'fn'),
    profile,
  };
}
