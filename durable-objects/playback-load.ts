// What viewers cost a StreamState: its playback calls per rendition (playlists, held media
// requests) beside the parts it announced, counted in memory since the object started. With the
// edge coalescing identical requests, calls per part stay flat however many viewers there are.
import type { PlaybackLoad, PlaybackLoadRendition } from '../core/contracts/live-model.ts';

/**
 * Rendition names are the viewers' to choose (a request for an unknown one still reaches the
 * object): past this many, the rest are counted together under `*`, so the counters stay bounded.
 */
const MAX_NAMED_RENDITIONS = 16;
const OTHERS = '*';

export class PlaybackLoadCounters {
  private readonly since = Date.now();
  private presentationCalls = 0;
  private readonly byRendition = new Map<string, PlaybackLoadRendition>();

  private of(name: string): PlaybackLoadRendition {
    const rendition = this.byRendition.has(name) || this.byRendition.size < MAX_NAMED_RENDITIONS ? name : OTHERS;
    let r = this.byRendition.get(rendition);
    if (!r) {
      r = { rendition, playlistCalls: 0, mediaWaits: 0, partsAnnounced: 0 };
      this.byRendition.set(rendition, r);
    }
    return r;
  }

  presentation(): void {
    this.presentationCalls++;
  }

  playlist(rendition: string): void {
    this.of(rendition).playlistCalls++;
  }

  mediaWait(rendition: string): void {
    this.of(rendition).mediaWaits++;
  }

  partAnnounced(rendition: string): void {
    this.of(rendition).partsAnnounced++;
  }

  snapshot(): PlaybackLoad {
    return {
      since: new Date(this.since).toISOString(),
      presentationCalls: this.presentationCalls,
      renditions: [...this.byRendition.values()].map((r) => ({ ...r })),
    };
  }
}
