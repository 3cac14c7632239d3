// Linux process probes shared by the benches: CPU seconds of a process tree (/proc), the
// processes under wrangler dev, and the URL of workerd's own socket behind wrangler's dev proxy.
import { execSync } from 'node:child_process';
import { readFileSync, readdirSync } from 'node:fs';

const CLK_TCK = 100;

/** CPU seconds (user + system) a process has used so far (its threads included, not its children). */
export function processCpuSeconds(pid: number): number {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
    return (Number(fields[11]) + Number(fields[12])) / CLK_TCK;
  } catch {
    return 0; // The process ended while we looked.
  }
}

/** The children of a process (every thread's). */
export function childPids(pid: number): number[] {
  const out: number[] = [];
  try {
    for (const t of readdirSync(`/proc/${pid}/task`)) {
      const children = readFileSync(`/proc/${pid}/task/${t}/children`, 'utf8').trim();
      for (const c of children ? children.split(' ') : []) out.push(Number(c));
    }
  } catch {
    // The process ended while we looked.
  }
  return out;
}

/** A process and all its descendants. */
export function processTree(pid: number): number[] {
  const all = [pid];
  for (let i = 0; i < all.length; i++) all.push(...childPids(all[i]!));
  return all;
}

/** CPU seconds used so far by a process and all its descendants. */
export function treeCpuSeconds(pid: number): number {
  return processTree(pid).reduce((n, p) => n + processCpuSeconds(p), 0);
}

export function processName(pid: number): string {
  try {
    return readFileSync(`/proc/${pid}/comm`, 'utf8').trim();
  } catch {
    return '';
  }
}

/**
 * The URL of workerd's own socket behind `wrangler dev` (which serves through a proxy, a second
 * workerd that exists for hot reload), and that workerd's pid: the listener of one of wrangler's
 * workerd children, other than the proxy's, that answers our /health. Linux only (ss, /proc).
 */
export async function workerdBehindProxy(wranglerPid: number, proxyUrl: string): Promise<{ url: string; pid: number }> {
  const ours = new Set(processTree(wranglerPid));
  const listening = execSync('ss -ltnpH', { encoding: 'utf8' });
  for (const m of listening.matchAll(/127\.0\.0\.1:(\d+)\s.*"workerd",pid=(\d+)/g)) {
    const url = `http://127.0.0.1:${m[1]}`;
    if (url === proxyUrl || !ours.has(Number(m[2]))) continue;
    try {
      const res = await fetch(`${url}/health`, { signal: AbortSignal.timeout(2000) });
      if ((await res.text()).includes('edgelive-worker')) return { url, pid: Number(m[2]) };
    } catch {
      // Not an HTTP listener of ours (workerd's internal loopback sockets).
    }
  }
  throw new Error('no workerd socket behind wrangler dev answers /health');
}

/** The pid of the process listening on a loopback TCP port. */
export function listenerPid(port: number): number | null {
  const listening = execSync('ss -ltnpH', { encoding: 'utf8' });
  for (const m of listening.matchAll(/127\.0\.0\.1:(\d+)\s.*pid=(\d+)/g)) if (Number(m[1]) === port) return Number(m[2]);
  return null;
}
