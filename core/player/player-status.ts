// What the watch page tells a viewer when it cannot (or cannot yet) play, from the edge's answer:
// its HTTP status and the `{ error: { code } }` body of docs/api.md. Pure, so every code's
// wording is tested without a browser.

export type BlockedKind = 'forbidden' | 'not-live' | 'ended' | 'not-found' | 'network';

export interface PlayerNotice {
  kind: BlockedKind;
  title: string;
  detail: string;
  /** The page tries again by itself after this many ms (null: only the viewer's retry button). */
  retryAfterMs: number | null;
  /** Show a retry button. */
  retry: boolean;
}

const FORBIDDEN: Record<string, [string, string]> = {
  token_required: ['This stream needs an access link', 'Open it from the link the organiser gave you.'],
  invalid_token: ['This access link is not valid', 'The link may be incomplete. Open it again from where you got it.'],
  token_expired: ['This access link has expired', 'Ask the organiser for a new link.'],
  token_not_yet_valid: ['This access link is not valid yet', 'Come back when the event starts.'],
  unknown_key: ['This access link is not valid', 'The link was signed with a key this service does not know.'],
  key_revoked: ['This access link was withdrawn', 'Ask the organiser for a new link.'],
  token_wrong_stream: ['This access link is for another stream', 'Open the link that goes with this stream.'],
  geo_blocked: ['Not available in your region', 'The organiser has limited this stream to some countries.'],
};

/** The notice for an HTTP refusal of the stream's info or playlist, or null if it is no refusal. */
export function noticeForResponse(status: number, code: string | undefined): PlayerNotice | null {
  if (status === 401 || status === 403) {
    const [title, detail] = FORBIDDEN[code ?? ''] ?? [
      'You do not have access to this stream',
      status === 403 ? 'Access from here is not allowed.' : 'A valid access link is required.',
    ];
    return { kind: 'forbidden', title, detail, retryAfterMs: null, retry: false };
  }
  if (status === 404 && code === 'stream_not_live') return notLive();
  if (status === 404) {
    return {
      kind: 'not-found',
      title: 'No such stream',
      detail: 'Check the address: this stream does not exist or was deleted.',
      retryAfterMs: null,
      retry: false,
    };
  }
  if (status >= 500 || status === 0 || status === 429) return network();
  return null;
}

export function notLive(): PlayerNotice {
  return {
    kind: 'not-live',
    title: 'Not live yet',
    detail: 'The stream has not started. It will play here as soon as it does.',
    retryAfterMs: 3000,
    retry: false,
  };
}

export function ended(replayable: boolean): PlayerNotice {
  return {
    kind: 'ended',
    title: 'The stream has ended',
    detail: replayable ? 'Thanks for watching. You can watch it again from the start.' : 'Thanks for watching.',
    retryAfterMs: null,
    retry: replayable,
  };
}

export function network(): PlayerNotice {
  return {
    kind: 'network',
    title: 'Connection problem',
    detail: 'We could not reach the stream. Retrying…',
    retryAfterMs: 4000,
    retry: true,
  };
}

/** A viewer-facing duration behind live: "12 s", "3:05", "1:02:09". */
export function formatBehind(seconds: number): string {
  const s = Math.max(0, Math.round(seconds));
  if (s < 60) return `${s} s`;
  const h = Math.floor(s / 3600);
  const m = Math.floor((s % 3600) / 60);
  const sec = String(s % 60).padStart(2, '0');
  return h > 0 ? `${h}:${String(m).padStart(2, '0')}:${sec}` : `${m}:${sec}`;
}

/** Bitrate as a menu shows it: "700 kbps", "2.5 Mbps". */
export function formatBitrate(bps: number): string {
  return bps >= 1_000_000 ? `${(bps / 1_000_000).toFixed(1)} Mbps` : `${Math.round(bps / 1000)} kbps`;
}
