// What the watch and party pages read from their address (docs/player.md § Page URLs):
//   /watch/{streamId}?token=&room=&roomToken=&name=&sync=0&realtime=1
//   /party/{roomId}?stream={streamId}&token=&roomToken=&name=&sync=0
// `token` is the playback token (signed streams) and goes on every request for the stream;
// `roomToken` is a room token (moderator or host); anonymous viewers chat under `name`.

export interface PageParams {
  mode: 'watch' | 'party';
  streamId: string | null;
  /** Playback token from the page URL, passed on to the multivariant playlist. */
  token: string | null;
  roomId: string | null;
  roomToken: string | null;
  name: string | null;
  /**
   * Chat messages, polls and the host's reactions wait until the video reaches the moment they
   * were sent (core/player/in-step.ts). On by default; `?sync=0` turns it off (`chatSync=0`, the
   * parameter's old name, too).
   */
  inStep: boolean;
  /** Play in real time (WebRTC) where the stream allows it; watch page only. */
  realtime: boolean;
}

const ID = /^[A-Za-z0-9_-]{1,64}$/;

export function parsePageUrl(href: string): PageParams {
  const url = new URL(href);
  const parts = url.pathname.split('/').filter(Boolean).map(decodeURIComponent);
  const q = url.searchParams;
  const id = (v: string | null | undefined) => (v && ID.test(v) ? v : null);
  const nonEmpty = (v: string | null) => (v && v.length > 0 ? v : null);
  const mode = parts[0] === 'party' ? 'party' : 'watch';
  const pathId = id(parts[1]);
  const streamId = mode === 'watch' ? pathId : id(q.get('stream'));
  return {
    mode,
    streamId,
    token: nonEmpty(q.get('token')),
    // The watch page's chat room is the stream's own (same id); a party names its room.
    roomId: mode === 'party' ? pathId : (id(q.get('room')) ?? streamId),
    roomToken: nonEmpty(q.get('roomToken')),
    name: nonEmpty(q.get('name')),
    inStep: q.get('sync') !== '0' && q.get('chatSync') !== '0',
    realtime: mode === 'watch' && q.get('realtime') === '1',
  };
}

/** The playback URL of a stream's resource with the page's token carried along. */
export function playbackUrl(
  origin: string,
  streamId: string,
  file: string,
  token: string | null,
  extra: Record<string, string> = {},
): string {
  const u = new URL(`/live/${encodeURIComponent(streamId)}/${file}`, origin);
  for (const [k, v] of Object.entries(extra)) u.searchParams.set(k, v);
  if (token) u.searchParams.set('token', token);
  return u.toString();
}

/** The link a party host shares: the same party without the host's own room token. */
export function partyInviteUrl(href: string): string {
  const url = new URL(href);
  url.searchParams.delete('roomToken');
  url.searchParams.delete('name');
  return url.toString();
}
