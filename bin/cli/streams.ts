// `edgelive streams …` and `nodes list`: streams (create, list, show, update, rotate the key,
// delete, mint playback and publish tokens, viewer stats) and the transcoder nodes the origin knows.
import { fields, integer, pageQuery, table, UsageError, type Command, type Values } from './context.ts';

interface IngestUrls {
  rtmp: string;
  rtmps?: string | null;
  srt?: string | null;
  nodeId?: string | null;
  backup?: IngestUrls | null;
}

interface CreatedStream {
  id: string;
  streamKey: string;
  ingest: IngestUrls;
  playback: { hls: string; watch: string };
}

/** The publish URLs of a new key: primary, then the backup node's when there is one. */
function ingestRows(ingest: IngestUrls): Array<[string, string | null | undefined]> {
  const rows: Array<[string, string | null | undefined]> = [
    ['publish', ingest.rtmp],
    ['rtmps', ingest.rtmps],
    ['srt', ingest.srt],
  ];
  if (ingest.backup) rows.push(['backup', ingest.backup.rtmp], ['backup rtmps', ingest.backup.rtmps], ['backup srt', ingest.backup.srt]);
  return rows;
}

const SHOWN_ONCE = '   (shown once: keep it)';

export const streamCommands: Command[] = [
  {
    name: 'streams create',
    group: 'Streams',
    synopsis:
      '[--title T] [--ladder PRESET] [--policy public|signed] [--allow-countries DE,AT] [--block-countries FR] [--takeover refuse-while-live|allow] [--settings FILE]',
    summary: "create a stream; prints its stream key once, and the publish URLs (a backup node's too)",
    flags: ['title', 'ladder', 'policy', 'allow-countries', 'block-countries', 'takeover', 'settings'],
    async run(c) {
      const base = c.v.settings ? (JSON.parse(await c.io.readFile(c.v.settings)) as Record<string, unknown>) : {};
      const playback = playbackFlags(c.v, (base.playback as Record<string, unknown> | undefined) ?? undefined);
      // --ladder names a preset (the settings file may give a ladder of its own instead).
      const preset = c.v.ladder !== undefined ? { ladderPreset: c.v.ladder } : {};
      const body = {
        ...base,
        ...(c.v.title !== undefined ? { title: c.v.title } : {}),
        ...preset,
        ...(playback ? { playback } : {}),
        ...takeoverFlag(c.v),
      };
      const s = await c.call<CreatedStream>('POST', '/api/streams', body);
      c.print(
        s,
        () =>
          `stream ${s.id}\n${fields([['stream key', s.streamKey + SHOWN_ONCE], ...ingestRows(s.ingest), ['play', s.playback.hls], ['watch', s.playback.watch]])}`,
      );
    },
  },
  {
    name: 'streams list',
    group: 'Streams',
    synopsis: '[--limit N]',
    summary: 'list streams, newest first',
    flags: ['limit'],
    async run(c) {
      const r = await c.call<{
        streams: Array<{ id: string; title: string; status: string; settings: { playback?: { policy?: string } }; createdAt: string }>;
      }>('GET', `/api/streams${pageQuery(c.v)}`);
      c.print(r, () =>
        table(
          ['ID', 'STATUS', 'PLAYBACK', 'CREATED', 'TITLE'],
          r.streams.map((s) => [s.id, s.status, s.settings.playback?.policy ?? 'public', s.createdAt, s.title]),
        ),
      );
    },
  },
  {
    name: 'streams show',
    group: 'Streams',
    synopsis: '<stream>',
    summary: 'a stream with its live state (JSON)',
    args: ['a stream id'],
    run: async (c) => c.print(await c.call('GET', `/api/streams/${c.arg(0)}`)),
  },
  {
    name: 'streams update',
    group: 'Streams',
    synopsis:
      '<stream> [--title T] [--policy public|signed] [--allow-countries LIST] [--block-countries LIST] [--takeover refuse-while-live|allow]',
    summary: "change the title, playback rules ('' clears a list) or takeover policy; other rules are kept",
    args: ['a stream id'],
    flags: ['title', 'policy', 'allow-countries', 'block-countries', 'takeover'],
    async run(c) {
      const id = c.arg(0);
      const takeover = takeoverFlag(c.v);
      let playback: Record<string, unknown> | undefined;
      if (c.v.policy !== undefined || c.v['allow-countries'] !== undefined || c.v['block-countries'] !== undefined) {
        // The API replaces `playback` whole; start from what the stream has so one flag changes one thing.
        const current = await c.call<{ settings: { playback?: Record<string, unknown> } }>('GET', `/api/streams/${id}`);
        playback = playbackFlags(c.v, current.settings.playback);
      }
      const body = { ...(c.v.title !== undefined ? { title: c.v.title } : {}), ...(playback ? { playback } : {}), ...takeover };
      if (Object.keys(body).length === 0)
        throw new UsageError('streams update needs --title, --policy, --allow-countries, --block-countries or --takeover');
      const r = await c.call<{ id: string; title: string; settings: { playback: unknown; takeover?: string } }>(
        'PATCH',
        `/api/streams/${id}`,
        body,
      );
      c.print(
        r,
        () =>
          `updated ${r.id}\n${fields([
            ['title', r.title],
            ['playback', JSON.stringify(r.settings.playback)],
            ['takeover', r.settings.takeover],
          ])}  (every edge applies it within 30 s)\n`,
      );
    },
  },
  {
    name: 'streams rotate-key',
    group: 'Streams',
    synopsis: '<stream>',
    summary: 'new stream key; the old one is refused from now on and the session it authorized ends',
    args: ['a stream id'],
    async run(c) {
      const r = await c.call<{ id: string; streamKey: string; ingest: IngestUrls; endedSession: { epoch: number } | null }>(
        'POST',
        `/api/streams/${c.arg(0)}/rotate-key`,
      );
      const ended = r.endedSession ? `epoch ${r.endedSession.epoch} (its publisher is disconnected)` : 'none on air';
      c.print(
        r,
        () => `stream ${r.id}\n${fields([['stream key', r.streamKey + SHOWN_ONCE], ['ended session', ended], ...ingestRows(r.ingest)])}`,
      );
    },
  },
  {
    name: 'streams delete',
    group: 'Streams',
    synopsis: '<stream>',
    summary: 'delete a stream (its recordings and clips stay until they expire)',
    args: ['a stream id'],
    async run(c) {
      await c.call('DELETE', `/api/streams/${c.arg(0)}`);
      c.print({ deleted: c.args[0] }, () => `deleted ${c.args[0]}\n`);
    },
  },
  {
    name: 'streams token',
    group: 'Streams',
    synopsis: '<stream> [--ttl SECONDS] [--nbf UNIX] [--allow-countries LIST] [--block-countries LIST]',
    summary: "mint a playback token with the deployment's managed key",
    args: ['a stream id'],
    flags: ['ttl', 'nbf', 'allow-countries', 'block-countries'],
    async run(c) {
      const body = { ...grantFlags(c.v), ...(c.v.ttl ? { expiresIn: integer(c.v.ttl, '--ttl') } : {}) };
      const r = await c.call<{ token: string; expiresAt: string; playback: { hls: string } }>(
        'POST',
        `/api/streams/${c.arg(0)}/playback-tokens`,
        body,
      );
      c.print(
        r,
        () =>
          `${r.token}\n${fields([
            ['expires', r.expiresAt],
            ['play', r.playback.hls],
          ])}`,
      );
    },
  },
  {
    name: 'streams publish-token',
    group: 'Streams',
    synopsis: '<stream> [--ttl SECONDS] [--use reusable|single|session]',
    summary: 'mint a publish token: goes live (Go-live page, WHIP, RTMP, SRT) without the stream key',
    args: ['a stream id'],
    flags: ['ttl', 'use'],
    async run(c) {
      const use = c.v.use;
      if (use !== undefined && use !== 'reusable' && use !== 'single' && use !== 'session')
        throw new UsageError('--use is reusable, single or session');
      const body = { ...(c.v.ttl ? { expiresIn: integer(c.v.ttl, '--ttl') } : {}), ...(use ? { use } : {}) };
      const r = await c.call<{ token: string; use: string; expiresAt: string; golive: string; whip: string }>(
        'POST',
        `/api/streams/${c.arg(0)}/publish-tokens`,
        body,
      );
      c.print(
        r,
        () =>
          `${r.token}\n${fields([
            ['expires', r.expiresAt],
            ['use', r.use],
            ['go live', r.golive],
            ['whip', `${r.whip}  (Bearer: the token)`],
          ])}`,
      );
    },
  },
  {
    name: 'streams stats',
    group: 'Streams',
    synopsis: '<stream> [--minutes N]',
    summary: 'viewers (players and chat) and playback quality over the last minutes',
    args: ['a stream id'],
    flags: ['minutes'],
    async run(c) {
      const q = c.v.minutes ? `?minutes=${integer(c.v.minutes, '--minutes')}` : '';
      const r = await c.call<StreamStats>('GET', `/api/streams/${c.arg(0)}/stats${q}`);
      const ms = (v: number | null) => (v === null ? '-' : `${Math.round(v)} ms`);
      const sec = (v: number | null) => (v === null ? '-' : `${v.toFixed(1)} s`);
      const { qoe } = r;
      c.print(
        r,
        () =>
          `stream ${c.args[0]} (last ${r.windowMinutes} min)\n${fields([
            ['status', r.status],
            ['players', r.viewers.players],
            ['in chat', r.viewers.room],
            ['first frame', `p50 ${ms(qoe.timeToFirstFrameMs.p50)}, p95 ${ms(qoe.timeToFirstFrameMs.p95)}`],
            ['latency', `p50 ${sec(qoe.latencySec.p50)}, p95 ${sec(qoe.latencySec.p95)}`],
            [
              'rebuffering',
              qoe.rebuffering.ratio === null ? '-' : `${(qoe.rebuffering.ratio * 100).toFixed(2)}% (${qoe.rebuffering.count} stalls)`,
            ],
            ['errors', `${qoe.errors.count} (${qoe.errors.fatal} fatal)`],
          ])}`,
      );
    },
  },
  {
    name: 'nodes list',
    group: 'Transcoders',
    synopsis: '',
    summary: 'the transcoder (media) nodes registered with the origin (JSON)',
    run: async (c) => c.print(await c.call('GET', '/api/ingest/nodes')),
  },
];

interface StreamStats {
  status: string;
  viewers: { players: number; room: number };
  windowMinutes: number;
  qoe: {
    timeToFirstFrameMs: { p50: number | null; p95: number | null };
    latencySec: { p50: number | null; p95: number | null };
    rebuffering: { count: number; ratio: number | null };
    errors: { count: number; fatal: number };
  };
}

export function grantFlags(v: Values): { notBefore?: number; allowCountries?: string[]; blockCountries?: string[] } {
  const allow = countries(v['allow-countries']);
  const block = countries(v['block-countries']);
  return {
    ...(v.nbf !== undefined ? { notBefore: integer(v.nbf, '--nbf') } : {}),
    ...(allow ? { allowCountries: allow } : {}),
    ...(block ? { blockCountries: block } : {}),
  };
}

/** `--takeover`: what a second publisher gets while one is live (docs/api.md, "Who may publish"). */
function takeoverFlag(v: Values): { takeover?: string } {
  if (v.takeover === undefined) return {};
  if (v.takeover !== 'refuse-while-live' && v.takeover !== 'allow') throw new UsageError('--takeover is refuse-while-live or allow');
  return { takeover: v.takeover };
}

/** The playback settings the flags ask for, on top of `current`; `current` when no flag is given. */
function playbackFlags(v: Values, current: Record<string, unknown> | undefined): Record<string, unknown> | undefined {
  if (v.policy === undefined && v['allow-countries'] === undefined && v['block-countries'] === undefined) return current;
  if (v.policy !== undefined && v.policy !== 'public' && v.policy !== 'signed') throw new UsageError('--policy is public or signed');
  const next: Record<string, unknown> = { ...current };
  if (v.policy !== undefined) next.policy = v.policy;
  for (const [flag, field] of [
    ['allow-countries', 'allowCountries'],
    ['block-countries', 'blockCountries'],
  ] as const) {
    const value = v[flag];
    if (value === undefined) continue;
    const codes = countries(value);
    if (codes) next[field] = codes;
    else delete next[field];
  }
  return next;
}

/** `DE,at, FR` → ['DE', 'AT', 'FR']; '' → undefined (clears). The server validates the codes. */
function countries(value: string | undefined): string[] | undefined {
  if (value === undefined) return undefined;
  const codes = value
    .split(',')
    .map((s) => s.trim().toUpperCase())
    .filter(Boolean);
  return codes.length ? codes : undefined;
}
