// Entry of the voice chunk (/dist/voice.js), which the party page imports only when a member
// clicks "Join voice": the WebRTC mesh and its card stay out of the watch page's first bundles.
import type { WatchPage } from '../watch/page.ts';
import { VoiceMesh } from './voice-mesh.ts';
import { mountVoiceUi } from './voice-ui.ts';

export interface VoiceController {
  mesh: VoiceMesh;
  card: HTMLElement;
}

/** Builds the mesh and its card under `container`; the caller joins (from the member's click). */
export function mountVoice(page: WatchPage, container: HTMLElement): VoiceController {
  if (!page.room) throw new Error('voice needs the room');
  const mesh = new VoiceMesh({ room: page.room, roomToken: page.params.roomToken });
  const card = mountVoiceUi(mesh, page.room, container);
  // Read by the browser tests beside the page's own snapshot (public/src/watch/test-hooks.ts).
  const hooks = (window as unknown as { __edgelive?: Record<string, unknown> }).__edgelive;
  if (hooks) hooks.voice = mesh;
  return { mesh, card };
}
