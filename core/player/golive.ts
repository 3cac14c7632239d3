// The Go-live page's pure decisions (docs/player.md § Go live): what its address says, the codec
// order it offers, how long it waits before publishing again, whether a lost connection is one to
// re-establish or a takeover to respect, and the words for each refusal. No DOM, no network.
import { parsePublishToken } from '../auth/publish-token.ts';

const ID = /^[A-Za-z0-9_-]{1,64}$/;

export type GoLiveProblem = 'no-stream' | 'no-token' | 'malformed-token' | 'wrong-stream';

export interface GoLiveParams {
  streamId: string | null;
  /** The publish token as minted (without a session). */
  token: string | null;
  /** Whether the token is bound to the session of its first use (the page then appends one). */
  sessionBound: boolean;
  /** Why the page cannot publish with this address, or null. */
  problem: GoLiveProblem | null;
  /**
   * The address to show instead, when the token came in the query: moved into the fragment, so a
   * reload keeps it while the address bar, history and any later request carry it no further.
   */
  replaceUrl: string | null;
}

/** `/golive/{streamId}#token={publish token}` (or `?token=`, which the page moves into the fragment). */
export function parseGoLiveUrl(href: string): GoLiveParams {
  const url = new URL(href);
  const parts = url.pathname.split('/').filter(Boolean).map(decodeURIComponent);
  const streamId = parts[0] === 'golive' && parts[1] && ID.test(parts[1]) ? parts[1] : null;
  const fromFragment = new URLSearchParams(url.hash.replace(/^#/, '')).get('token');
  const fromQuery = url.searchParams.get('token');
  const token = fromFragment || fromQuery || null;
  let replaceUrl: string | null = null;
  if (fromQuery) {
    const clean = new URL(url);
    clean.searchParams.delete('token');
    clean.hash = `token=${token}`;
    replaceUrl = clean.toString();
  }
  const parsed = token ? parsePublishToken(token) : null;
  const problem: GoLiveProblem | null = !streamId
    ? 'no-stream'
    : !token
      ? 'no-token'
      : !parsed || parsed.session !== null
        ? 'malformed-token'
        : parsed.streamId !== streamId
          ? 'wrong-stream'
          : null;
  return { streamId, token: problem ? null : token, sessionBound: parsed?.use === 'session', problem, replaceUrl };
}

/** What a sender's codec capabilities look like (RTCRtpCodec). */
export interface CodecCapability {
  mimeType: string;
  clockRate: number;
  sdpFmtpLine?: string;
}

/**
 * The offer's video codec order: H.264 with packetization-mode 1 first (what the media node takes;
 * it answers the first such one), constrained baseline before other profiles (the cheapest to
 * encode, and every browser has it), then everything else in the browser's order.
 */
export function preferH264<T extends CodecCapability>(codecs: readonly T[]): T[] {
  const fmtp = (c: T) => c.sdpFmtpLine ?? '';
  const h264 = codecs.filter((c) => c.mimeType.toLowerCase() === 'video/h264' && /packetization-mode=1/.test(fmtp(c)));
  const rank = (c: T) => (/profile-level-id=42e0/i.test(fmtp(c)) ? 0 : /profile-level-id=42/i.test(fmtp(c)) ? 1 : 2);
  const ordered = h264
    .map((c, i) => ({ c, i }))
    .sort((a, b) => rank(a.c) - rank(b.c) || a.i - b.i)
    .map((x) => x.c);
  return [...ordered, ...codecs.filter((c) => !ordered.includes(c))];
}

/** Milliseconds before publishing again after the `attempt`-th failure in a row (1, 2, 4, 8, then 10 s). */
export function reconnectDelayMs(attempt: number): number {
  return Math.min(10_000, 1000 * 2 ** Math.max(0, attempt - 1));
}

/** How long the page keeps trying to publish again before it gives up and says so. */
export const RECONNECT_GIVE_UP_MS = 120_000;

/** What `GET /whip/{id}/status` answers (docs/api.md § WHIP entry). */
export interface PublisherStatus {
  status: 'idle' | 'live' | 'ended';
  epoch: number | null;
}

/**
 * After the connection was lost: publish again, unless another publisher now holds the stream (a
 * newer lease epoch than the one this page took): then taking it back would start a tug of war
 * in which each publisher's reconnection fences the other's.
 */
export function afterConnectionLost(ourEpoch: number | null, status: PublisherStatus | null): 'reconnect' | 'taken-over' {
  if (ourEpoch !== null && status?.status === 'live' && status.epoch !== null && status.epoch > ourEpoch) return 'taken-over';
  return 'reconnect';
}

/** `1:05`, `12:34`, `1:02:03`. */
export function formatElapsed(ms: number): string {
  const total = Math.max(0, Math.floor(ms / 1000));
  const h = Math.floor(total / 3600);
  const m = Math.floor((total % 3600) / 60);
  const s = total % 60;
  const two = (n: number) => String(n).padStart(2, '0');
  return h > 0 ? `${h}:${two(m)}:${two(s)}` : `${m}:${two(s)}`;
}

/** The words for an address the page cannot use, or a credential the origin refused. */
export function goLiveRefusal(code: GoLiveProblem | string): { title: string; detail: string } {
  switch (code) {
    case 'no-stream':
      return { title: 'No stream here', detail: 'This address names no stream. Use the Go-live link you were given.' };
    case 'no-token':
      return {
        title: 'This page needs a Go-live link',
        detail: 'Ask the stream’s owner for a publish link (edgelive streams publish-token).',
      };
    case 'malformed-token':
    case 'invalid_publish_token':
    case 'unknown_stream_key':
      return {
        title: 'This Go-live link is not valid',
        detail: 'It may be incomplete, or the stream key was rotated since. Ask for a new link.',
      };
    case 'wrong-stream':
    case 'token_wrong_stream':
      return { title: 'This link is for another stream', detail: 'The publish token in it names a different stream than this page.' };
    case 'publish_token_expired':
      return { title: 'This Go-live link has expired', detail: 'Ask the stream’s owner for a new link.' };
    case 'publish_token_used':
      return { title: 'This Go-live link was already used', detail: 'It was good for one broadcast. Ask for a new link.' };
    case 'publish_token_session':
      return { title: 'This link is in use elsewhere', detail: 'It is bound to the browser tab that first went live with it.' };
    default:
      return { title: 'Going live was refused', detail: `The media node said: ${code}.` };
  }
}
