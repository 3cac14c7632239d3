// The R2 object-key layout and the playback URL layout, defined once for every side.
// Objects are immutable: a key names exactly one set of bytes for its whole life.

export type MediaObject = { kind: 'init' } | { kind: 'segment'; msn: number } | { kind: 'part'; msn: number; part: number };

/** File name of a media object inside its rendition folder: `init.mp4`, `{msn}.m4s`, `{msn}.{part}.m4s`. */
export function mediaFileName(obj: MediaObject): string {
  switch (obj.kind) {
    case 'init':
      return 'init.mp4';
    case 'segment':
      return `${obj.msn}.m4s`;
    case 'part':
      return `${obj.msn}.${obj.part}.m4s`;
  }
}

const FILE_RE = /^(?:(init)\.mp4|(\d{1,15})\.m4s|(\d{1,15})\.(\d{1,6})\.m4s)$/;

/** Parses a media file name back; null when it is not one of ours. */
export function parseMediaFileName(name: string): MediaObject | null {
  const m = FILE_RE.exec(name);
  if (!m) return null;
  if (m[1]) return { kind: 'init' };
  if (m[2]) return { kind: 'segment', msn: Number(m[2]) };
  return { kind: 'part', msn: Number(m[3]), part: Number(m[4]) };
}

/** `live/{stream}/{epoch}/{rendition}/{file}` */
export function mediaObjectKey(streamId: string, epoch: number, rendition: string, obj: MediaObject): string {
  return `live/${streamId}/${epoch}/${rendition}/${mediaFileName(obj)}`;
}

/** Names of streams, renditions and rooms: short, URL-safe, no dots or slashes. */
export const NAME_RE = /^[A-Za-z0-9_-]{1,64}$/;

/**
 * `thumbs/{stream}/{epoch}/{seq}.jpg`: the JPEG the transcoder grabs from the top rendition
 * every few seconds; `seq` counts from 0 within an epoch. Outside `live/` so no rendition name
 * can collide with it.
 */
export function thumbnailKey(streamId: string, epoch: number, seq: number): string {
  return `thumbs/${streamId}/${epoch}/${seq}.jpg`;
}

/**
 * `exports/{clip}/{rendition}.mp4`: one file of a clip's MP4 export (the rendition, with the
 * audio when it is a video rendition), made by the export job (workers/exports/clip-export.ts).
 */
export function clipExportKey(clipId: string, rendition: string): string {
  return `${clipExportPrefix(clipId)}${rendition}.mp4`;
}

/** Every file of a clip's export is under this prefix (retention deletes them together). */
export function clipExportPrefix(clipId: string): string {
  return `exports/${clipId}/`;
}

/**
 * The Content-Type a media object is stored (and served) with, whoever writes it: the init
 * segment is an MP4 file (`audio/mp4` for an audio rendition), parts and segments are CMAF
 * fragments (`.m4s`: `video/iso.segment`, the type Apple's authoring spec gives the extension,
 * for audio and video alike). A segment the origin assembles from its parts is the same object
 * as a pushed one, so it gets the same type.
 */
export function mediaContentType(obj: MediaObject, trackKind: 'video' | 'audio' | undefined): string {
  if (obj.kind === 'init') return trackKind === 'audio' ? 'audio/mp4' : 'video/mp4';
  return 'video/iso.segment';
}

/**
 * R2 custom metadata of a segment's last part. A segment is never an object of its own (each
 * media byte is written once): it is the concatenation of its parts, and this marker lets the
 * edge stop joining at the last one without asking the stream's object how many there are.
 */
export const FINAL_PART_METADATA: Readonly<Record<string, string>> = Object.freeze({ 'edgelive-final': '1' });

/** The part object is the last of its segment (FINAL_PART_METADATA). */
export function isFinalPart(customMetadata: Record<string, string> | undefined): boolean {
  return customMetadata?.['edgelive-final'] === '1';
}
