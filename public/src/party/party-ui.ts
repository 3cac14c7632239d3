// What a watch party adds to the page: the sync indicator on the video (this viewer's error
// against the party, in ms), and a party card above the chat — who is here, who hosts, what the
// host's controls do, the invite link, and "Join voice", which loads the voice chunk on click.
import { partyInviteUrl } from '../../../core/player/page-params.ts';
import type { Member, RoomClient } from '../rooms-client.ts';
import { h, hueFor, setText } from '../watch/dom.ts';
import { icon } from '../watch/icons.ts';
import type { WatchPage } from '../watch/page.ts';
import type { PartyStatus, PartySync } from './party-sync-driver.ts';

const LABELS: Record<PartyStatus['state'], string> = {
  'waiting-host': 'Waiting for the host',
  seeking: 'Catching up…',
  'waiting-start': 'Starting together',
  syncing: 'Syncing',
  'in-sync': 'In sync',
  paused: 'Paused by host',
};

export function mountPartyUi(page: WatchPage, sync: PartySync): void {
  const room = sync.room;
  const dot = h('span', { class: 'sync-dot' });
  const label = h('span', { class: 'sync-label-text' });
  const err = h('span', { class: 'sync-err', 'data-testid': 'sync-error' });
  const chip = h(
    'div',
    {
      class: 'sync-chip',
      'data-testid': 'sync-chip',
      title: 'How far your video is from the party (program-date-time against the room clock)',
    },
    icon('sync', 14),
    dot,
    label,
    err,
  );
  page.slots.stageTopRight.append(chip);

  const render = (s: PartyStatus) => {
    chip.dataset.state = s.state;
    setText(label, LABELS[s.state]);
    const e = s.errorMs;
    setText(
      err,
      e === null || s.state === 'waiting-host'
        ? ''
        : `${e >= 0 ? '+' : '−'}${Math.abs(e) < 10 ? Math.abs(e).toFixed(1) : Math.round(Math.abs(e))} ms`,
    );
  };
  sync.onStatus(render);
  render(sync.status());

  // --- the party card ------------------------------------------------------------------------------
  const members = h('ul', { class: 'members', 'data-testid': 'members' });
  const roleNote = h('p', { class: 'party-note' });
  const count = h('span', { class: 'party-count' });
  const copy = h('button', { class: 'btn btn-small', type: 'button', 'data-testid': 'invite' }, icon('link', 14), 'Copy invite link');
  copy.addEventListener('click', () => {
    void navigator.clipboard?.writeText(partyInviteUrl(location.href)).then(() => {
      copy.lastChild!.textContent = 'Link copied';
      setTimeout(() => (copy.lastChild!.textContent = 'Copy invite link'), 2000);
    });
  });
  const voiceSlot = h('div', { class: 'party-voice' });
  const joinVoice = h('button', { class: 'btn btn-small', type: 'button', 'data-testid': 'join-voice' }, 'Join voice');
  joinVoice.addEventListener('click', () => void startVoice(page, voiceSlot, joinVoice));
  const card = h(
    'section',
    { class: 'panel party-card', 'aria-label': 'Watch party' },
    h('header', { class: 'panel-head' }, h('div', { class: 'panel-title' }, icon('users', 16), 'Watch party'), count),
    roleNote,
    members,
    h('div', { class: 'party-actions' }, copy, joinVoice),
  );
  page.slots.side.prepend(card);
  card.after(voiceSlot);

  const renderMembers = () => {
    const p = room.state?.presence;
    setText(count, p ? `${p.count} here` : '');
    members.replaceChildren(
      ...(p?.members ?? [])
        .slice()
        .sort(byRole)
        .map((m) => memberEl(m, room)),
    );
  };
  room.on('state', renderMembers);
  room.on('presence', renderMembers);
  room.on('open', ({ you }) => {
    setText(
      roleNote,
      you.role === 'host'
        ? 'You are the host: play, pause and seek move everyone.'
        : 'The host controls playback. Your video follows theirs, frame for frame.',
    );
    card.dataset.role = you.role;
  });
}

/** The voice chunk's hashed URL, a build-time constant (scripts/build-assets.mjs builds it from ../voice/voice.ts). */
declare const __VOICE_URL__: string;
const VOICE_URL = __VOICE_URL__;
let voice: Promise<import('../voice/voice.ts').VoiceController> | null = null;

/**
 * Loads voice on the member's click — the WebRTC code is not part of the page until then — and
 * joins: the microphone permission is asked now, not before. A second click after leaving joins again.
 */
async function startVoice(page: WatchPage, slot: HTMLElement, button: HTMLButtonElement): Promise<void> {
  button.disabled = true;
  try {
    voice ??= (import(VOICE_URL) as Promise<typeof import('../voice/voice.ts')>).then((m) => {
      const v = m.mountVoice(page, slot);
      // The voice card has its own controls while in voice; this button comes back after leaving.
      v.mesh.onChange(() => (button.hidden = v.mesh.status === 'connected' || v.mesh.status === 'sfu' || v.mesh.status === 'joining'));
      return v;
    });
    await (await voice).mesh.join();
  } catch (err) {
    console.error('could not start voice', err);
  } finally {
    button.disabled = false;
  }
}

const RANK = { host: 0, moderator: 1, viewer: 2 } as const;
function byRole(a: Member, b: Member): number {
  return RANK[a.role] - RANK[b.role] || a.name.localeCompare(b.name);
}

function memberEl(m: Member, room: RoomClient): HTMLElement {
  const avatar = h('span', { class: 'avatar' });
  avatar.style.setProperty('--hue', String(hueFor(m.name)));
  setText(avatar, (m.name.trim()[0] ?? '?').toUpperCase());
  const name = h('span', { class: 'member-name' });
  setText(name, m.name);
  return h(
    'li',
    { class: `member role-${m.role}` },
    avatar,
    name,
    m.uid === room.you?.uid ? h('span', { class: 'you-tag' }, 'you') : null,
    m.role === 'host'
      ? h('span', { class: 'role-tag host' }, icon('crown', 12), 'Host')
      : m.role === 'moderator'
        ? h('span', { class: 'role-tag mod' }, icon('shield', 12), 'Mod')
        : null,
  );
}
