// The clip MP4 export contract, defined once: which renditions an export makes (one file each, a
// video rendition with the audio muxed in, or the audio alone), the queue message the clips API
// sends the export job, and how a download is named. Pure: used by the clips API, the job
// (workers/exports/clip-export.ts) and the download route.
import type { LadderRung } from './stream-config.ts';

/** The export queue's message: make (or finish making) every file a clip's export lists. */
export interface ClipExportMessage {
  kind: 'clip-export';
  clipId: string;
}

/** Attempts of one export job before the export is `failed` (transient errors: R2, the DO). */
export const MAX_EXPORT_ATTEMPTS = 5;

/** Seconds before a failed attempt is retried, doubling: 10, 20, 40, 80. */
export function exportRetryDelaySeconds(attempt: number): number {
  return Math.min(600, 10 * 2 ** Math.max(0, attempt - 1));
}

/** The rendition `export: true` makes: the tallest video rendition (the first of equals), else the audio. */
export function defaultExportRendition(ladder: readonly LadderRung[]): string {
  let top: LadderRung | null = null;
  for (const r of ladder) if (r.kind === 'video' && (!top || (top.kind === 'video' && r.height > top.height))) top = r;
  return (top ?? ladder[0]!).name;
}

/**
 * The renditions an export request names, checked against the ladder and deduplicated in
 * order; the first one is what `/vod/{clip}/clip.mp4` serves. An error message when one is unknown.
 */
export function exportRenditions(ladder: readonly LadderRung[], requested: readonly string[] | undefined): string[] | { error: string } {
  if (!requested) return [defaultExportRendition(ladder)];
  const names = new Set(ladder.map((r) => r.name));
  const out: string[] = [];
  for (const name of requested) {
    if (!names.has(name)) return { error: `the stream has no rendition ${name}` };
    if (!out.includes(name)) out.push(name);
  }
  return out;
}

/** The tracks of one export file, in file order: the rendition, then the audio for a video rendition. */
export function exportTracks(ladder: readonly LadderRung[], rendition: string): string[] {
  const rung = ladder.find((r) => r.name === rendition);
  const audio = ladder.find((r) => r.kind === 'audio');
  return rung?.kind === 'video' && audio ? [rendition, audio.name] : [rendition];
}

/**
 * `Content-Disposition` of a download: `attachment`, an ASCII file name from the clip's title
 * (or id) and the rendition, and the exact title in `filename*` (RFC 6266 / RFC 8187).
 */
export function exportContentDisposition(title: string, clipId: string, rendition: string, audioOnly: boolean): string {
  const ext = audioOnly ? 'm4a' : 'mp4';
  const stem = title.trim() === '' ? clipId : title.trim();
  const ascii = stem
    .normalize('NFKD')
    .replace(/[^\x20-\x7e]/g, '')
    .replace(/[^A-Za-z0-9._ -]+/g, '_')
    .replace(/\s+/g, ' ')
    .trim()
    .slice(0, 120);
  const fallback = `${ascii === '' || /^[_. ]+$/.test(ascii) ? clipId : ascii}-${rendition}.${ext}`;
  const exact = `${stem.slice(0, 120)}-${rendition}.${ext}`;
  const header = `attachment; filename="${fallback}"`;
  return exact === fallback ? header : `${header}; filename*=UTF-8''${encodeRfc8187(exact)}`;
}

function encodeRfc8187(s: string): string {
  return encodeURIComponent(s).replace(/['()*]/g, (c) => '%' + c.charCodeAt(0).toString(16).toUpperCase());
}
