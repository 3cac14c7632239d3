// Recordings and clips as every side names them: their ids (`rc…`, `cl…`) and the paths they
// play and download at. The StreamState object makes recording ids; the Worker makes clip ids
// and keeps both in the D1 catalog (workers/vod-catalog.ts).
import { randomId } from './webhooks.ts';

export const RECORDING_ID_RE = /^rc[a-z0-9]{16}$/;
export const CLIP_ID_RE = /^cl[a-z0-9]{16}$/;

export function newRecordingId(): string {
  return 'rc' + randomId(16);
}

export function newClipId(): string {
  return 'cl' + randomId(16);
}

/** `/vod/{id}/index.m3u8`: the multivariant playlist of a recording or clip. */
export function vodPlaybackPath(id: string): string {
  return `/vod/${id}/index.m3u8`;
}

/** Download path of one file of a clip's export (the default one without a rendition). */
export function clipDownloadPath(clipId: string, rendition?: string): string {
  return rendition === undefined ? `/vod/${clipId}/clip.mp4` : `/vod/${clipId}/${rendition}/clip.mp4`;
}
