// A WHEP client (the viewer side of the WHEP draft, as RFC 9725 does for WHIP): a receive-only
// peer connection for one video and one audio track, its offer POSTed to the edge's
// `/live/{id}/whep` (the edge answers 307 to the media node; fetch follows it with the same body),
// the answer applied, and the session resource DELETEd on close. Loaded on demand by realtime.ts.

export class WhepError extends Error {
  readonly status: number;
  readonly code: string;
  /** From Retry-After (a full node), else null. */
  readonly retryAfterMs: number | null;
  constructor(status: number, code: string, message: string, retryAfterMs: number | null) {
    super(message);
    this.status = status;
    this.code = code;
    this.retryAfterMs = retryAfterMs;
  }
}

export interface WhepSession {
  readonly pc: RTCPeerConnection;
  /** The received tracks, for a <video>'s srcObject. */
  readonly stream: MediaStream;
  /** The session resource on the node (null if the server named none). */
  readonly resource: string | null;
  /** Frames decoded and audio samples received so far (getStats). */
  counts(): Promise<{ framesDecoded: number; audioSamples: number }>;
  close(): void;
}

/** How long candidates may take before the offer goes with those gathered (host ones are immediate). */
const GATHER_MS = 1000;

function waitForGathering(pc: RTCPeerConnection): Promise<void> {
  return new Promise((resolve) => {
    if (pc.iceGatheringState === 'complete') return resolve();
    const timer = setTimeout(resolve, GATHER_MS);
    pc.addEventListener('icegatheringstatechange', () => {
      if (pc.iceGatheringState === 'complete') {
        clearTimeout(timer);
        resolve();
      }
    });
  });
}

export async function startWhep(url: string, signal?: AbortSignal): Promise<WhepSession> {
  const pc = new RTCPeerConnection({ bundlePolicy: 'max-bundle' });
  const stream = new MediaStream();
  pc.addTransceiver('video', { direction: 'recvonly' });
  pc.addTransceiver('audio', { direction: 'recvonly' });
  pc.addEventListener('track', (e) => stream.addTrack(e.track));
  try {
    await pc.setLocalDescription(await pc.createOffer());
    // Candidates go in the offer: one request, no trickle PATCHes for the common case.
    await waitForGathering(pc);
    const res = await fetch(url, {
      method: 'POST',
      headers: { 'content-type': 'application/sdp' },
      body: pc.localDescription!.sdp,
      signal,
    });
    if (res.status !== 201) {
      const body = (await res.json().catch(() => ({}))) as { error?: { code?: string; message?: string } };
      const retryAfter = Number(res.headers.get('retry-after'));
      throw new WhepError(
        res.status,
        body.error?.code ?? 'whep_failed',
        body.error?.message ?? `WHEP answered ${res.status}`,
        retryAfter > 0 ? retryAfter * 1000 : null,
      );
    }
    const answer = await res.text();
    // After a redirect the session resource is relative to the node that answered.
    const location = res.headers.get('location');
    const resource = location ? new URL(location, res.url).toString() : null;
    await pc.setRemoteDescription({ type: 'answer', sdp: answer });
    return {
      pc,
      stream,
      resource,
      async counts() {
        let framesDecoded = 0;
        let audioSamples = 0;
        (await pc.getStats()).forEach((s: { type: string; kind?: string; framesDecoded?: number; totalSamplesReceived?: number }) => {
          if (s.type !== 'inbound-rtp') return;
          if (s.kind === 'video') framesDecoded += s.framesDecoded ?? 0;
          else if (s.kind === 'audio') audioSamples += s.totalSamplesReceived ?? 0;
        });
        return { framesDecoded, audioSamples };
      },
      close() {
        pc.close();
        // The node frees the viewer at once rather than at its disconnect timeout. (Not keepalive:
        // a cross-origin DELETE needs a preflight, which keepalive requests may not make.)
        if (resource) void fetch(resource, { method: 'DELETE' }).catch(() => undefined);
      },
    };
  } catch (err) {
    pc.close();
    throw err;
  }
}
