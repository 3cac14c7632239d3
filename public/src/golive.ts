// Entry of /golive/{streamId}#token={publish token}: a streamer's browser goes live over WHIP with
// its camera or screen, authorised by a publish token (never the stream key). Its own bundle:
// nothing of the watch page's player loads here, and nothing of this loads there.
import { newPublishSession, withPublishSession } from '../../core/auth/publish-token.ts';
import { parseGoLiveUrl } from '../../core/player/golive.ts';
import { LocalMedia, QUALITIES } from './golive/local-media.ts';
import { mountGoLivePage, mountProblem } from './golive/page.ts';
import { WhipClient } from './golive/whip-client.ts';

const root = document.getElementById('app')!;
const params = parseGoLiveUrl(location.href);
if (params.replaceUrl) history.replaceState(null, '', params.replaceUrl);

if (params.problem || !params.streamId || !params.token) {
  mountProblem(root, params.problem ?? 'no-token');
} else {
  const streamId = params.streamId;
  let credential = params.token;
  if (params.sessionBound) {
    // This tab's session, kept across reloads of the tab (sessionStorage): the token was bound to
    // it when first used, and a copy of the link opened anywhere else cannot take the stream over.
    const key = `edgelive.golive.session.${params.token.split('.')[3]}`;
    const session = sessionStorage.getItem(key) ?? newPublishSession();
    sessionStorage.setItem(key, session);
    credential = withPublishSession(params.token, session);
  }
  const media = new LocalMedia();
  const client = new WhipClient({
    origin: location.origin,
    streamId,
    credential,
    tracks: () => ({ video: media.video, audio: media.audio }),
    maxVideoBitrate: () => QUALITIES[media.quality].bitrate,
  });
  const page = mountGoLivePage(root, streamId, media, client);
  // A closing tab ends its session on the node at once rather than after ICE times out.
  addEventListener('pagehide', () => client.leave());

  // A read-only window for the browser tests (`window.__golive`); the page does not depend on it.
  (window as unknown as { __golive: unknown }).__golive = {
    snapshot: () => ({
      ...client.snapshot,
      source: media.source,
      hasVideo: !!media.video,
      hasAudio: !!media.audio,
      videoSettings: media.video?.getSettings() ?? null,
    }),
    /** What the peer connection sends: the negotiated video codec and frames encoded. */
    async outbound() {
      const pc = client.peer;
      if (!pc) return null;
      const stats = await pc.getStats();
      let out: { codec: string | null; framesEncoded: number; encodings: number } = { codec: null, framesEncoded: 0, encodings: 0 };
      stats.forEach((s: { type: string; kind?: string; codecId?: string; framesEncoded?: number }) => {
        if (s.type === 'outbound-rtp' && s.kind === 'video') {
          const codec = s.codecId ? ((stats.get(s.codecId) as { mimeType?: string } | undefined)?.mimeType ?? null) : null;
          out = { codec, framesEncoded: out.framesEncoded + (s.framesEncoded ?? 0), encodings: out.encodings + 1 };
        }
      });
      return out;
    },
    page,
  };
}
