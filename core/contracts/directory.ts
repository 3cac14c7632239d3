// The front door's listing (`GET /api/directory`, and inlined into `/`): the live streams and the
// past broadcasts a stranger may see, defined once for the Worker that builds it and the page
// that shows it. Only public facts: no key, no ladder, no ingest node, no token.

export interface DirectoryLive {
  id: string;
  title: string;
  /** Players watching now (QoE beacons) or viewers in the stream's room, whichever is larger. */
  viewers: number;
  /** When this broadcast began (ISO 8601), if known. */
  startedAt: string | null;
  /** `signed`: the watch page will ask for an access link (listed only by the operator's choice). */
  access: 'public' | 'signed';
  /** Site-relative paths: the document is the same whatever host it is served under. */
  watch: string;
  thumbnail: string | null;
}

export interface DirectoryRecording {
  id: string;
  streamId: string;
  title: string;
  startedAt: string;
  /** Seconds. */
  duration: number | null;
  access: 'public' | 'signed';
  watch: string;
  thumbnail: string | null;
}

export interface Directory {
  generatedAt: string;
  live: DirectoryLive[];
  recordings: DirectoryRecording[];
}

export const DIRECTORY_LIMITS = {
  /** Live streams listed, most watched first. */
  live: 48,
  /** Past broadcasts listed, newest first. */
  recordings: 24,
  /** A rebuild is started after this many seconds; until then every request gets the same copy. */
  freshSeconds: 5,
  /** A copy this old is still served (once, while a rebuild runs); older ones wait for the rebuild. */
  staleSeconds: 60,
} as const;

/** The page of a recording or a clip (`/replay/{id}`), which plays `/vod/{id}/index.m3u8`. */
export function replayPath(id: string): string {
  return `/replay/${encodeURIComponent(id)}`;
}

/** The watch page of a live stream. */
export function watchPath(streamId: string): string {
  return `/watch/${encodeURIComponent(streamId)}`;
}

/** `GET /vod/{id}/info.json`: what the replay page shows beside a recording or a clip. */
export interface VodInfo {
  id: string;
  kind: 'recording' | 'clip';
  streamId: string;
  /** A clip's own title, else its stream's. */
  title: string;
  streamTitle: string;
  startedAt: string;
  /** Seconds (null for a recording still being finalized). */
  duration: number | null;
}
