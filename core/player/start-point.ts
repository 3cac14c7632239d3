// Where the watch page starts a live stream: on the independent part (the segment's keyframe) at
// or before the playlist's EXT-X-START, so its first frame needs one video part instead of every
// part from that keyframe to the start point, each one request in turn. Pure: playlist text in,
// playlist text out (the player applies it to the first media playlists it loads).

const START_RE = /^#EXT-X-START:TIME-OFFSET=(-?[\d.]+)(.*)$/m;

/**
 * `playlist` with its negative EXT-X-START moved back to the start of the last independent part
 * that begins at or before the point it names (the end of the last listed part minus the offset).
 * Unchanged when it has no negative start, no independent part there, or ends (ENDLIST).
 */
export function startOnIndependentPart(playlist: string): string {
  const start = START_RE.exec(playlist);
  if (!start || playlist.includes('#EXT-X-ENDLIST')) return playlist;
  const offset = Number(start[1]);
  if (!(offset < 0)) return playlist;
  // Part starts (s from the first listed part) and where the independent ones begin.
  let end = 0;
  const independentStarts: number[] = [];
  for (const line of playlist.split('\n')) {
    if (!line.startsWith('#EXT-X-PART:')) continue;
    const duration = Number(/DURATION=([\d.]+)/.exec(line)?.[1]);
    if (!Number.isFinite(duration)) return playlist;
    if (/INDEPENDENT=YES/.test(line)) independentStarts.push(end);
    end += duration;
  }
  const target = end + offset;
  let keyframe: number | undefined;
  for (const s of independentStarts) if (s <= target + 1e-6) keyframe = s;
  if (keyframe === undefined) return playlist;
  const moved = -Math.round((end - keyframe) * 1000) / 1000;
  return playlist.replace(START_RE, `#EXT-X-START:TIME-OFFSET=${moved}$2`);
}
