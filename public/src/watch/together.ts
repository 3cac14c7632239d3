// The second chunk of the watch page: everything a live event needs beside the video — chat,
// reactions, polls and the viewer count through one rooms client, QoE beacons, and in party mode
// the watch-party controller and its indicator. Loaded by watch.ts once the first frame is shown
// (or the stream cannot play yet), never for a viewer the stream refuses.
import { RoomClient } from '../rooms-client.ts';
import { PartySync } from '../party/party-sync-driver.ts';
import { mountPartyUi } from '../party/party-ui.ts';
import { ChatPanel } from './chat.ts';
import { setText } from './dom.ts';
import type { WatchPage } from './page.ts';
import { Polls } from './polls.ts';
import { startQoe } from './qoe.ts';
import { Reactions } from './reactions.ts';
import { InStep } from './in-step.ts';
import { mountDvrTools } from './dvr-tools.ts';
import { mountRealtime } from './realtime.ts';

const ADJECTIVES = ['Swift', 'Quiet', 'Bright', 'Lucky', 'Brave', 'Calm', 'Clever', 'Jolly', 'Mellow', 'Sunny', 'Witty', 'Cosmic'];
const ANIMALS = ['Otter', 'Falcon', 'Panda', 'Lynx', 'Koala', 'Heron', 'Badger', 'Dolphin', 'Fox', 'Owl', 'Puffin', 'Tiger'];

/** An anonymous viewer's display name, kept across visits on this device. */
function guestName(): string {
  const stored = localStorage.getItem('edgelive.name');
  if (stored) return stored;
  const pick = <T>(xs: readonly T[]) => xs[Math.floor(Math.random() * xs.length)]!;
  const name = `${pick(ADJECTIVES)} ${pick(ANIMALS)} ${Math.floor(Math.random() * 90 + 10)}`;
  localStorage.setItem('edgelive.name', name);
  return name;
}

/** `withRoom: false` for a viewer the stream refused: QoE beacons only (the refusal is one). */
export function mountTogether(page: WatchPage, withRoom = true): void {
  const { params, player, slots } = page;
  startQoe(player, { origin: location.origin, streamId: params.streamId!, page: params.mode, clock: () => page.clock() });
  mountRealtime(page);
  if (!params.roomId || !withRoom) return;

  const room = new RoomClient({
    origin: location.origin,
    room: params.roomId,
    ...(params.roomToken ? { token: params.roomToken } : { name: params.name ?? guestName() }),
  });
  page.room = room;
  // Chat, polls and the host's reactions wait for the viewer's picture (core/player/in-step.ts).
  const chat = new ChatPanel({ room, pdtNow: () => player.pdtNow(), sync: params.inStep });
  const inStep = new InStep({ pdtNow: () => player.pdtNow(), enabled: () => chat.syncEnabled });
  const reactions = new Reactions(room, inStep);
  page.reactions = reactions;
  const polls = new Polls(room, inStep);
  slots.stage.insertBefore(reactions.layer, slots.overlay);
  slots.belowHead.append(reactions.bar);
  slots.side.append(polls.el, chat.el);

  const count = slots.viewers.querySelector('.viewers-n')!;
  const showCount = () => {
    const n = room.state?.presence.count;
    slots.viewers.hidden = n === undefined;
    setText(count, n === undefined ? '' : `${n.toLocaleString()} watching`);
  };
  room.on('state', showCount);
  room.on('presence', showCount);

  if (params.mode === 'party') {
    page.party = new PartySync(page);
    mountPartyUi(page, page.party);
  }
  mountDvrTools(page);
  room.connect().catch((err: unknown) => console.warn('the room refused this viewer', err));
}
