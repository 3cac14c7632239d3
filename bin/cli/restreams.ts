// `edgelive restreams …`: a stream's restream (simulcast) destinations — add one (server URL and
// key; the key is never shown again), list them with their status on the media node, change,
// enable or disable, remove.
import { CliError, fields, table, type Command, type Ctx } from './context.ts';

interface Restream {
  id: string;
  name: string;
  url: string;
  streamKey: string;
  enabled: boolean;
  status: {
    state: 'connecting' | 'live' | 'retrying' | 'failed' | 'stopped';
    error: string | null;
    since: string | null;
    failures: number;
    nextAttemptAt: string | null;
    droppedBytes: number;
    nodeId: string | null;
  };
}

/** `live`, `retrying (3 failures, next 12:00:05Z): Connection refused`, … */
function statusText(r: Restream): string {
  const s = r.status;
  if (!r.enabled && s.state === 'stopped') return 'disabled';
  let text = s.state;
  if (s.state === 'retrying')
    text += ` (${s.failures} failure${s.failures === 1 ? '' : 's'}${s.nextAttemptAt ? `, next ${s.nextAttemptAt}` : ''})`;
  if (s.state === 'failed' && s.failures > 0)
    text += ` (after ${s.failures} failure${s.failures === 1 ? '' : 's'} in a row; enable it to try again)`;
  if (s.error) text += `: ${s.error}`;
  return text;
}

function restreamFields(r: Restream): string {
  return `restream ${r.id}\n${fields([
    ['name', r.name],
    ['url', r.url],
    ['key', r.streamKey],
    ['enabled', r.enabled ? 'yes' : 'no'],
    ['status', statusText(r)],
    ['since', r.status.since],
    ['node', r.status.nodeId],
    ['dropped', r.status.droppedBytes ? `${r.status.droppedBytes} bytes (the destination could not keep up)` : null],
  ])}`;
}

function path(c: Ctx, id?: string): string {
  return `/api/streams/${c.arg(0)}/restreams${id !== undefined ? `/${encodeURIComponent(id)}` : ''}`;
}

/** A key given with --key, or read from the file named by --key-file (keeps it out of shell history). */
async function keyOf(c: Ctx): Promise<string | undefined> {
  if (c.v.key !== undefined && c.v['key-file'] !== undefined) throw new CliError('usage', 'give --key or --key-file, not both');
  if (c.v['key-file'] !== undefined) return (await c.io.readFile(c.v['key-file'])).trim();
  return c.v.key;
}

async function setEnabled(c: Ctx, enabled: boolean): Promise<void> {
  const r = await c.call<Restream>('PATCH', path(c, c.args[1]), { enabled });
  c.print(r, () => restreamFields(r));
}

export const restreamCommands: Command[] = [
  {
    name: 'restreams add',
    group: 'Restreams',
    synopsis: '<stream> <rtmp(s)-url> (--key KEY | --key-file FILE) [--name N] [--disabled]',
    summary:
      "forward the stream's source to an RTMP(S) destination (YouTube, Twitch, another edgelive) while it is live; the key is stored encrypted and never shown again",
    args: ['a stream id', 'the destination server URL'],
    flags: ['key', 'key-file', 'name', 'disabled'],
    async run(c) {
      const streamKey = await keyOf(c);
      if (!streamKey) throw new CliError('usage', 'the destination needs its stream key: --key KEY or --key-file FILE');
      const r = await c.call<Restream>('POST', path(c), {
        url: c.args[1],
        streamKey,
        ...(c.v.name !== undefined ? { name: c.v.name } : {}),
        ...(c.v.disabled ? { enabled: false } : {}),
      });
      c.print(r, () => restreamFields(r));
    },
  },
  {
    name: 'restreams list',
    group: 'Restreams',
    synopsis: '<stream>',
    summary: "the stream's destinations and the status of each on the media node",
    args: ['a stream id'],
    async run(c) {
      const r = await c.call<{ restreams: Restream[] }>('GET', path(c));
      c.print(r, () =>
        table(
          ['ID', 'NAME', 'URL', 'KEY', 'STATUS'],
          r.restreams.map((x) => [x.id, x.name, x.url, x.streamKey, statusText(x)]),
        ),
      );
    },
  },
  {
    name: 'restreams show',
    group: 'Restreams',
    synopsis: '<stream> <restream>',
    summary: 'one destination with its status',
    args: ['a stream id', 'a restream id'],
    async run(c) {
      const r = await c.call<Restream>('GET', path(c, c.args[1]));
      c.print(r, () => restreamFields(r));
    },
  },
  {
    name: 'restreams update',
    group: 'Restreams',
    synopsis: '<stream> <restream> [--server RTMP-URL] [--key KEY | --key-file FILE] [--name N]',
    summary: 'change the server URL, the key or the name (a live stream switches over within one sync)',
    args: ['a stream id', 'a restream id'],
    flags: ['server', 'key', 'key-file', 'name'],
    async run(c) {
      const streamKey = await keyOf(c);
      // --server, not --url: --url is the Worker's address for every command.
      const body = {
        ...(c.v.server !== undefined ? { url: c.v.server } : {}),
        ...(streamKey !== undefined ? { streamKey } : {}),
        ...(c.v.name !== undefined ? { name: c.v.name } : {}),
      };
      if (Object.keys(body).length === 0) throw new CliError('usage', 'nothing to change: give --server, --key, --key-file or --name');
      const r = await c.call<Restream>('PATCH', path(c, c.args[1]), body);
      c.print(r, () => restreamFields(r));
    },
  },
  {
    name: 'restreams enable',
    group: 'Restreams',
    synopsis: '<stream> <restream>',
    summary: 'start forwarding to this destination (at once if the stream is live)',
    args: ['a stream id', 'a restream id'],
    run: (c) => setEnabled(c, true),
  },
  {
    name: 'restreams disable',
    group: 'Restreams',
    synopsis: '<stream> <restream>',
    summary: 'stop forwarding to this destination, keeping it configured',
    args: ['a stream id', 'a restream id'],
    run: (c) => setEnabled(c, false),
  },
  {
    name: 'restreams remove',
    group: 'Restreams',
    synopsis: '<stream> <restream>',
    summary: 'delete the destination and its stored key',
    args: ['a stream id', 'a restream id'],
    async run(c) {
      await c.call('DELETE', path(c, c.args[1]));
      c.print({ deleted: c.args[1] }, () => `deleted ${c.args[1]}\n`);
    },
  },
];
