// When the watch page leaves real-time (WebRTC) playback for LL-HLS: what it tells the viewer and
// when it offers real time again. Pure: what went wrong in, a decision out (realtime.ts acts on it).

export type RealtimeProblem =
  /** The edge or the node answered the offer with an error. */
  | { kind: 'refused'; status: number; code: string; retryAfterMs: number | null }
  /** The offer could not be sent (network), or ICE/DTLS never connected. */
  | { kind: 'unreachable' }
  /** Connected, but no frame was decoded in time. */
  | { kind: 'no-media' }
  /** Was playing; the connection failed or frames stopped coming. */
  | { kind: 'lost' };

export interface RealtimeFallback {
  /** One line for the viewer; LL-HLS plays meanwhile. */
  message: string;
  /** When real time may be tried again (ms); null: not for this page. */
  retryAfterMs: number | null;
}

/** A connected session must show its first frame within this long (the GOP is 0.5 s). */
export const REALTIME_FIRST_FRAME_MS = 5000;
/** A playing session whose decoded-frame count stands still this long has stalled. */
export const REALTIME_STALL_MS = 3000;

export function realtimeFallback(p: RealtimeProblem): RealtimeFallback {
  switch (p.kind) {
    case 'refused':
      if (p.status === 503)
        return { message: 'Real time is full right now — playing low-latency HLS', retryAfterMs: p.retryAfterMs ?? 10_000 };
      if (p.code === 'realtime_not_enabled') return { message: 'This stream has no real-time playback', retryAfterMs: null };
      if (p.status === 404 || p.status === 429)
        return { message: 'Real time is not available yet — playing low-latency HLS', retryAfterMs: p.retryAfterMs ?? 5000 };
      if (p.status === 401 || p.status === 403) return { message: 'Real-time playback was refused', retryAfterMs: null };
      return { message: 'Real time failed — playing low-latency HLS', retryAfterMs: 15_000 };
    case 'unreachable':
      return { message: 'Real time could not connect (WebRTC blocked?) — playing low-latency HLS', retryAfterMs: 30_000 };
    case 'no-media':
    case 'lost':
      return { message: 'Real time was interrupted — playing low-latency HLS', retryAfterMs: 10_000 };
  }
}
