// Builds the front door's listing from the catalog: live streams that may be listed (with their
// viewer counts from their QoeStats and Room objects) and the latest ready recordings. Which
// streams may be listed is decided here, once, in SQL over the stored settings (see `listed` in
// core/contracts/stream-config.ts): a LIMIT must count listed rows only.
import type { Env } from '../env.ts';
import {
  DIRECTORY_LIMITS,
  replayPath,
  watchPath,
  type Directory,
  type DirectoryLive,
  type DirectoryRecording,
} from '../../core/contracts/directory.ts';

/**
 * `listed: true` or `false` decides; unset, a stream is listed when anyone anywhere may play it.
 * (json_extract answers 1/0 for JSON true/false, NULL for a missing key; streams stored before
 * `playback` existed are public.)
 */
const LISTED = `CASE json_extract(s.settings, '$.playback.listed')
  WHEN 1 THEN 1 WHEN 0 THEN 0
  ELSE COALESCE(json_extract(s.settings, '$.playback.policy'), 'public') = 'public'
    AND json_extract(s.settings, '$.playback.allowCountries') IS NULL
    AND json_extract(s.settings, '$.playback.blockCountries') IS NULL
  END = 1`;

interface LiveRow {
  id: string;
  title: string;
  policy: string | null;
  started_at: number | null;
}

interface RecordingRow {
  id: string;
  stream_id: string;
  title: string;
  policy: string | null;
  started_at: number;
  duration: number | null;
}

const access = (policy: string | null): 'public' | 'signed' => (policy === 'signed' ? 'signed' : 'public');

/** A broadcast's picture a few seconds in (past moments are kept with the DVR window; a miss shows no image). */
function recordingThumbnail(r: RecordingRow): string | null {
  if (access(r.policy) === 'signed') return null;
  const into = Math.min(10, (r.duration ?? 0) / 2);
  return `/live/${encodeURIComponent(r.stream_id)}/thumbnail.jpg?t=${Math.round(r.started_at + into * 1000)}`;
}

/** How many are watching: beacons of players (embeds too) or sockets in the stream's room, whichever says more. */
async function viewersOf(env: Env, streamId: string): Promise<number> {
  const [players, room] = await Promise.all([
    env.QOE_STATS.getByName(streamId)
      .stats(1)
      .then((s) => s.viewers)
      .catch(() => 0),
    // The watch page's chat room is named after the stream (docs/player.md).
    env.ROOM.getByName(streamId)
      .info()
      .then((i) => i.viewers)
      .catch(() => 0),
  ]);
  return Math.max(players, room);
}

export async function buildDirectory(env: Env, now = Date.now()): Promise<Directory> {
  const [liveRows, recordingRows] = await Promise.all([
    env.DB.prepare(
      `SELECT s.id, s.title, json_extract(s.settings, '$.playback.policy') AS policy,
         (SELECT MAX(r.started_at) FROM recordings r WHERE r.stream_id = s.id AND r.status = 'recording') AS started_at
       FROM streams s WHERE s.status = 'live' AND ${LISTED} ORDER BY s.updated_at DESC LIMIT ?`,
    )
      .bind(DIRECTORY_LIMITS.live)
      .all<LiveRow>(),
    env.DB.prepare(
      `SELECT r.id, r.stream_id, r.started_at, r.duration, s.title, json_extract(s.settings, '$.playback.policy') AS policy
       FROM recordings r JOIN streams s ON s.id = r.stream_id
       WHERE r.status = 'ready' AND ${LISTED} ORDER BY r.started_at DESC LIMIT ?`,
    )
      .bind(DIRECTORY_LIMITS.recordings)
      .all<RecordingRow>(),
  ]);
  const live: DirectoryLive[] = await Promise.all(
    liveRows.results.map(async (s) => ({
      id: s.id,
      title: s.title,
      viewers: await viewersOf(env, s.id),
      startedAt: s.started_at === null ? null : new Date(s.started_at).toISOString(),
      access: access(s.policy),
      watch: watchPath(s.id),
      thumbnail: access(s.policy) === 'signed' ? null : `/live/${encodeURIComponent(s.id)}/thumbnail.jpg`,
    })),
  );
  // Most watched first; among equals the most recent start.
  live.sort((a, b) => b.viewers - a.viewers || (b.startedAt ?? '').localeCompare(a.startedAt ?? ''));
  const recordings: DirectoryRecording[] = recordingRows.results.map((r) => ({
    id: r.id,
    streamId: r.stream_id,
    title: r.title,
    startedAt: new Date(r.started_at).toISOString(),
    duration: r.duration,
    access: access(r.policy),
    watch: replayPath(r.id),
    thumbnail: recordingThumbnail(r),
  }));
  return { generatedAt: new Date(now).toISOString(), live, recordings };
}
