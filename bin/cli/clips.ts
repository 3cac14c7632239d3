// `edgelive clips …`: cut clips of a stream (live or recorded), list and show them, ask for their
// MP4 exports and wait for them with the job's progress, and download the files.
import { CliError, fields, integer, list, pageQuery, table, UsageError, type Command, type Ctx } from './context.ts';

interface ClipExport {
  status: 'pending' | 'processing' | 'ready' | 'failed';
  progress?: number;
  url: string | null;
  error: string | null;
  renditions: Array<{ rendition: string; url: string | null }>;
}

interface Clip {
  id: string;
  streamId: string;
  status: string;
  title: string;
  start: string;
  end: string;
  duration: number;
  expiresAt: string;
  playback: { hls: string } | null;
  export: ClipExport | null;
}

/** `30`, `30s`, `2m`, `1h` back from the live edge, or a program date time with its zone. */
export function clipPoint(value: string, flag: string): number | string {
  const m = /^(\d+(?:\.\d+)?)(s|m|h)?$/.exec(value.trim());
  if (m) return Number(m[1]) * (m[2] === 'h' ? 3600 : m[2] === 'm' ? 60 : 1);
  if (/^\d{4}-\d\d-\d\dT.*(Z|[+-]\d\d:\d\d)$/.test(value) && !Number.isNaN(Date.parse(value))) return value;
  throw new UsageError(`${flag} is seconds back from the live edge (30, 2m) or a time with its zone (2026-11-21T12:00:00Z)`);
}

function showClip(clip: Clip): string {
  const e = clip.export;
  const rows: Array<[string, string | number | null]> = [
    ['title', clip.title],
    ['stream', clip.streamId],
    ['status', clip.status],
    ['from', `${clip.start}  to ${clip.end}  (${clip.duration} s)`],
    ['play', clip.playback?.hls ?? null],
    ['expires', clip.expiresAt],
    ['export', e ? `${e.status}${e.status === 'processing' ? ` ${percent(e.progress)}` : ''}${e.error ? `: ${e.error}` : ''}` : null],
  ];
  for (const r of e?.renditions ?? []) rows.push([`  ${r.rendition}`, r.url ?? '(not ready)']);
  return `clip ${clip.id}\n${fields(rows)}`;
}

function percent(p: number | undefined): string {
  return `${Math.floor((p ?? 0) * 100)}%`;
}

/**
 * Polls the clip until its export is ready (resolves with it) or failed (throws), noting each
 * change of status or whole percent on stderr.
 */
async function waitForExport(c: Ctx, asked: Clip): Promise<Clip> {
  const clipId = asked.id;
  const deadline = c.waitDeadline();
  let shown = '';
  // The answer to the request is the first state shown (a short export is often done by the first poll).
  let clip: Clip | null = asked;
  for (;;) {
    clip ??= await c.call<Clip>('GET', `/api/clips/${encodeURIComponent(clipId)}`);
    const e = clip.export;
    if (!e) throw new CliError('export_not_requested', `clip ${clipId} has no export; ask for one with: edgelive clips export ${clipId}`);
    const note = `${e.status} ${percent(e.progress)}`;
    const done = e.status === 'ready' || e.status === 'failed';
    if (note !== shown) {
      shown = note;
      c.progress({ clip: clipId, status: e.status, progress: e.progress ?? 0 }, `export of ${clipId}: ${note}`, done);
    }
    if (e.status === 'ready') return clip;
    if (e.status === 'failed') throw new CliError('export_failed', `the export of ${clipId} failed: ${e.error ?? 'no reason given'}`);
    if (c.io.now() >= deadline)
      throw new CliError(
        'timeout',
        `the export of ${clipId} is still ${e.status} (${percent(e.progress)}); see it with: edgelive clips show ${clipId}`,
      );
    if (clip !== asked) await c.io.sleep(1000);
    clip = null;
  }
}

export const clipCommands: Command[] = [
  {
    name: 'clips create',
    group: 'Clips',
    synopsis: '<stream> --start WHEN [--end WHEN] [--title T] [--export] [--renditions LIST] [--retention-days N] [--wait]',
    summary:
      'cut a clip (at most 5 minutes, to the part); WHEN is seconds back from the live edge (30, 2m) or an ISO time; --end defaults to the edge; --export or --renditions also make MP4 files; --wait waits for them',
    args: ['a stream id'],
    flags: ['start', 'end', 'title', 'export', 'renditions', 'retention-days', 'wait', 'timeout'],
    async run(c) {
      if (c.v.start === undefined) throw new UsageError('clips create needs --start');
      const renditions = list(c.v.renditions);
      const wantsExport = c.v.export === true || renditions !== undefined;
      if (c.v.wait && !wantsExport) throw new UsageError('--wait waits for an export: add --export or --renditions');
      const body = {
        start: clipPoint(c.v.start, '--start'),
        ...(c.v.end !== undefined ? { end: clipPoint(c.v.end, '--end') } : {}),
        ...(c.v.title !== undefined ? { title: c.v.title } : {}),
        ...(wantsExport ? { export: renditions ? { renditions } : true } : {}),
        ...(c.v['retention-days'] !== undefined ? { retentionDays: integer(c.v['retention-days'], '--retention-days') } : {}),
      };
      const clip = await c.call<Clip>('POST', `/api/streams/${c.arg(0)}/clips`, body);
      const shown = c.v.wait ? await waitForExport(c, clip) : clip;
      c.print(shown, () => showClip(shown));
    },
  },
  {
    name: 'clips list',
    group: 'Clips',
    synopsis: '<stream> [--limit N]',
    summary: "a stream's clips, newest first",
    args: ['a stream id'],
    flags: ['limit'],
    async run(c) {
      const r = await c.call<{ clips: Clip[] }>('GET', `/api/streams/${c.arg(0)}/clips${pageQuery(c.v)}`);
      c.print(r, () =>
        table(
          ['ID', 'STATUS', 'DURATION', 'START', 'EXPORT', 'TITLE'],
          r.clips.map((x) => [x.id, x.status, `${x.duration} s`, x.start, x.export?.status ?? '-', x.title]),
        ),
      );
    },
  },
  {
    name: 'clips show',
    group: 'Clips',
    synopsis: '<clip>',
    summary: 'a clip, its playlist and its export (status, progress, download URLs)',
    args: ['a clip id'],
    async run(c) {
      const clip = await c.call<Clip>('GET', `/api/clips/${c.arg(0)}`);
      c.print(clip, () => showClip(clip));
    },
  },
  {
    name: 'clips export',
    group: 'Clips',
    synopsis: '<clip> [--renditions LIST] [--wait [--timeout SECONDS]]',
    summary:
      'make MP4 files of a clip (the tallest video rendition with the audio, or the renditions listed); --wait shows the progress until they are ready',
    args: ['a clip id'],
    flags: ['renditions', 'wait', 'timeout'],
    async run(c) {
      const renditions = list(c.v.renditions);
      const clip = await c.call<Clip>('POST', `/api/clips/${c.arg(0)}/export`, renditions ? { renditions } : {});
      const shown = c.v.wait ? await waitForExport(c, clip) : clip;
      c.print(shown, () => showClip(shown));
    },
  },
  {
    name: 'clips download',
    group: 'Clips',
    synopsis: '<clip> [--rendition R] [--out FILE]',
    summary:
      "save an exported clip's MP4 (the default rendition unless --rendition); FILE defaults to the server's file name; a signed stream's clip is fetched with a 5-minute playback token",
    args: ['a clip id'],
    flags: ['rendition', 'out'],
    async run(c) {
      const path = c.v.rendition ? `/vod/${c.arg(0)}/${encodeURIComponent(c.v.rendition)}/clip.mp4` : `/vod/${c.arg(0)}/clip.mp4`;
      let res = await c.request('GET', path);
      if (
        res.status === 401 &&
        (
          (await res
            .clone()
            .json()
            .catch(() => null)) as { error?: { code?: string } } | null
        )?.error?.code === 'token_required'
      ) {
        // A signed stream's downloads need a playback token, like its playlists: mint a short one.
        await res.body?.cancel();
        const clip = await c.call<Clip>('GET', `/api/clips/${c.arg(0)}`);
        const { token } = await c.call<{ token: string }>('POST', `/api/streams/${encodeURIComponent(clip.streamId)}/playback-tokens`, {
          expiresIn: 300,
        });
        res = await c.request('GET', `${path}?token=${encodeURIComponent(token)}`);
      }
      if (!res.ok) {
        const e = ((await res.json().catch(() => null)) as { error?: { code: string; message: string } } | null)?.error;
        throw new CliError(e?.code ?? `http_${res.status}`, e?.message ?? `GET ${path} answered ${res.status}`, res.status);
      }
      const named = /filename="([^"]+)"/.exec(res.headers.get('content-disposition') ?? '')?.[1];
      const out = c.v.out ?? (named && !named.includes('/') ? named : `${c.args[0]}.mp4`);
      const bytes = new Uint8Array(await res.arrayBuffer());
      try {
        await c.io.writeFile(out, bytes);
      } catch (err) {
        throw new CliError('file_error', `cannot write ${out}: ${(err as Error).message}`);
      }
      c.print({ clip: c.args[0], file: out, bytes: bytes.byteLength }, () => `saved ${out} (${bytes.byteLength} bytes)\n`);
    },
  },
];
