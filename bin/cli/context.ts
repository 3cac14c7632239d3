// What every `edgelive` command is given: the process's I/O as an interface (so a test can run a
// command in-process), the parsed flags, one admin API call with the API's errors kept whole, and
// printing that is the API's JSON with --json and a short human form without.
import { parseArgs } from 'node:util';

export interface CliIo {
  argv: string[];
  env: Record<string, string | undefined>;
  fetch: typeof fetch;
  /** The WebSocket class (Node 22's global): room moderation speaks the room protocol. */
  WebSocket: typeof WebSocket;
  stdout: (text: string) => void;
  stderr: (text: string) => void;
  /** Whether stderr is a terminal: progress redraws one line there, prints one line per change elsewhere. */
  stderrIsTTY: boolean;
  readFile: (path: string) => Promise<string>;
  /** Writes a file only its owner can read (key files); never overwrites. */
  writeSecretFile: (path: string, text: string) => Promise<void>;
  /** Writes a downloaded file; never overwrites. */
  writeFile: (path: string, bytes: Uint8Array) => Promise<void>;
  now: () => number;
  sleep: (ms: number) => Promise<void>;
}

export const DEFAULT_URL = 'http://127.0.0.1:8787';

/** Every flag any command takes; each command lists the ones it accepts (`Command.flags`). */
export const OPTIONS = {
  url: { type: 'string' },
  token: { type: 'string' },
  json: { type: 'boolean' },
  help: { type: 'boolean', short: 'h' },
  version: { type: 'boolean', short: 'v' },
  title: { type: 'string' },
  policy: { type: 'string' },
  takeover: { type: 'string' },
  'allow-countries': { type: 'string' },
  'block-countries': { type: 'string' },
  settings: { type: 'string' },
  limit: { type: 'string' },
  ttl: { type: 'string' },
  nbf: { type: 'string' },
  name: { type: 'string' },
  out: { type: 'string' },
  key: { type: 'string' },
  'key-file': { type: 'string' },
  ladder: { type: 'string' },
  server: { type: 'string' },
  disabled: { type: 'boolean' },
  kid: { type: 'string' },
  stream: { type: 'string' },
  minutes: { type: 'string' },
  start: { type: 'string' },
  end: { type: 'string' },
  export: { type: 'boolean' },
  renditions: { type: 'string' },
  rendition: { type: 'string' },
  'retention-days': { type: 'string' },
  wait: { type: 'boolean' },
  timeout: { type: 'string' },
  events: { type: 'string' },
  description: { type: 'string' },
  role: { type: 'string' },
  anonymous: { type: 'string' },
  'direct-capacity': { type: 'string' },
  'shard-capacity': { type: 'string' },
  'max-shards': { type: 'string' },
  seconds: { type: 'string' },
  as: { type: 'string' },
  use: { type: 'string' },
} as const;

export type Flag = keyof typeof OPTIONS;
/** Flags every command takes. */
export const GLOBAL_FLAGS: readonly Flag[] = ['url', 'token', 'json', 'help'];

export function parseCommandLine(argv: string[]) {
  return parseArgs({ args: argv, options: OPTIONS, allowPositionals: true, strict: true });
}
export type Values = ReturnType<typeof parseCommandLine>['values'];

/** A command used wrongly (exit 2). */
export class UsageError extends Error {}

/** A failure with a stable code: the API's own (with its HTTP status), or the CLI's (exit 1). */
export class CliError extends Error {
  readonly code: string;
  readonly status?: number;
  constructor(code: string, message: string, status?: number) {
    super(message);
    this.code = code;
    this.status = status;
  }
}

export interface Command {
  /** The words that name it: `clips export`. */
  name: string;
  /** Help heading it is listed under. */
  group: string;
  /** Arguments and flags as the help shows them: `<clip> [--renditions LIST] [--wait]`. */
  synopsis: string;
  /** One or two lines: what it does. */
  summary: string;
  /** Positional arguments it needs, by what they are (`a clip id`). */
  args?: readonly string[];
  /** Flags it accepts besides the global ones. */
  flags?: readonly Flag[];
  run(ctx: Ctx): Promise<void>;
}

/** One command's run: its arguments, flags and the ways to talk to the Worker and the user. */
export class Ctx {
  readonly io: CliIo;
  readonly v: Values;
  /** Positional arguments after the command's name, URL-safe where they name a resource. */
  readonly args: string[];

  constructor(io: CliIo, v: Values, args: string[]) {
    this.io = io;
    this.v = v;
    this.args = args;
  }

  /** The n-th argument, encoded for a URL path. */
  arg(n: number): string {
    return encodeURIComponent(this.args[n]!);
  }

  get baseUrl(): string {
    return (this.v.url ?? this.io.env.EDGELIVE_URL ?? DEFAULT_URL).replace(/\/+$/, '');
  }

  adminToken(): string {
    const token = this.v.token ?? this.io.env.EDGELIVE_ADMIN_TOKEN;
    if (!token) throw new UsageError('no admin token: set EDGELIVE_ADMIN_TOKEN or pass --token');
    return token;
  }

  /** One admin API call; a non-2xx answer becomes a CliError with the API's code and message. */
  async call<T = unknown>(method: string, path: string, body?: unknown): Promise<T> {
    const res = await this.request(method, path, body);
    const text = await res.text();
    let json: unknown = null;
    try {
      json = text ? JSON.parse(text) : null;
    } catch {
      // Not JSON (a proxy's error page): reported below with the status.
    }
    if (!res.ok) {
      const e = (json as { error?: { code?: string; message?: string } } | null)?.error;
      if (e?.code) throw new CliError(e.code, e.message ?? '', res.status);
      throw new CliError(`http_${res.status}`, `${method} ${path} answered ${res.status}`, res.status);
    }
    return json as T;
  }

  /** The raw answer (downloads), with the admin token. */
  async request(method: string, path: string, body?: unknown): Promise<Response> {
    const token = this.adminToken();
    try {
      return await this.io.fetch(this.baseUrl + path, {
        method,
        headers: { authorization: `Bearer ${token}`, ...(body !== undefined ? { 'content-type': 'application/json' } : {}) },
        body: body !== undefined ? JSON.stringify(body) : undefined,
      });
    } catch (err) {
      const cause = (err as { cause?: { code?: string } }).cause?.code;
      throw new CliError('unreachable', `cannot reach ${this.baseUrl}: ${(err as Error).message}${cause ? ` (${cause})` : ''}`);
    }
  }

  /** The API's JSON with --json (or when there is no human form), else the human form. */
  print(value: unknown, human?: () => string): void {
    this.io.stdout(this.v.json || !human ? JSON.stringify(value, null, 2) + '\n' : human());
  }

  /** A progress note on stderr: a JSON line with --json, else text (one redrawn line on a terminal). */
  progress(value: Record<string, unknown>, text: string, final = false): void {
    if (this.v.json) this.io.stderr(JSON.stringify({ progress: value }) + '\n');
    else if (this.io.stderrIsTTY) this.io.stderr(`\r\x1b[2K${text}${final ? '\n' : ''}`);
    else this.io.stderr(text + '\n');
  }

  /** Seconds --wait may take (--timeout, default 10 minutes). */
  waitDeadline(): number {
    return this.io.now() + (this.v.timeout ? integer(this.v.timeout, '--timeout') : 600) * 1000;
  }
}

export function table(head: string[], rows: string[][]): string {
  if (rows.length === 0) return '(none)\n';
  const widths = head.map((h, i) => Math.max(h.length, ...rows.map((r) => (r[i] ?? '').length)));
  const line = (cells: string[]) => cells.map((c, i) => (i === cells.length - 1 ? c : c.padEnd(widths[i]!))).join('  ') + '\n';
  return line(head) + rows.map(line).join('');
}

/** `name value` lines, the names padded to one width; rows without a value are left out. */
export function fields(rows: Array<[string, string | number | null | undefined]>): string {
  const shown = rows.filter((r): r is [string, string | number] => r[1] !== null && r[1] !== undefined && r[1] !== '');
  const width = Math.max(...shown.map(([k]) => k.length));
  return shown.map(([k, v]) => `  ${k.padEnd(width)}  ${v}\n`).join('');
}

export function integer(value: string, flag: string): number {
  if (!/^\d+$/.test(value)) throw new UsageError(`${flag} takes a whole number`);
  return Number(value);
}

/** `a, b,c` → ['a', 'b', 'c']; '' → undefined. */
export function list(value: string | undefined): string[] | undefined {
  if (value === undefined) return undefined;
  const items = value
    .split(',')
    .map((s) => s.trim())
    .filter(Boolean);
  return items.length ? items : undefined;
}

/** A page query (`?limit=N`) from --limit. */
export function pageQuery(v: Values): string {
  return v.limit ? `?limit=${integer(v.limit, '--limit')}` : '';
}
