// The voice card of a watch party: who is in voice (speaking ring, muted, muted by a moderator),
// the member's own controls — mute, push-to-talk (hold the button or the space bar), camera,
// leave — camera tiles (off until a member turns theirs on), and for staff a mute and a remove
// per member. Rendered from the room's voice state and the VoiceMesh's levels.
import type { RoomClient, VoiceMember } from '../rooms-client.ts';
import { h, hueFor, setText } from '../watch/dom.ts';
import type { VoiceMesh } from './voice-mesh.ts';

const RANK = { viewer: 0, moderator: 1, host: 2 } as const;

const STYLE = `
.voice-card { padding: 14px 16px; display: grid; gap: 10px; }
.voice-head { display: flex; align-items: center; justify-content: space-between; gap: 8px; font-weight: 700; }
.voice-status { color: var(--muted); font-size: 12.5px; font-weight: 600; }
.voice-controls { display: flex; flex-wrap: wrap; gap: 6px; align-items: center; }
.voice-controls .btn { height: 32px; padding: 0 10px; font-size: 13px; }
.voice-controls .btn[aria-pressed='true'] { border-color: var(--accent); color: var(--accent-2); }
.voice-ptt { display: inline-flex; align-items: center; gap: 6px; font-size: 13px; color: var(--muted); }
.voice-members { list-style: none; margin: 0; padding: 0; display: grid; gap: 6px; }
.voice-member { display: flex; align-items: center; gap: 8px; font-size: 13.5px; }
.voice-avatar { width: 26px; height: 26px; border-radius: 50%; display: grid; place-items: center; font-size: 12px; font-weight: 700;
  background: hsl(var(--hue) 55% 42%); color: #fff; box-shadow: 0 0 0 2px transparent; transition: box-shadow .12s; }
.voice-member[data-speaking='true'] .voice-avatar { box-shadow: 0 0 0 2px #3ddc84, 0 0 10px #3ddc8488; }
.voice-name { flex: 1; min-width: 0; overflow: hidden; text-overflow: ellipsis; white-space: nowrap; }
.voice-tag { font-size: 11px; color: var(--muted); }
.voice-member[data-forced='true'] .voice-tag { color: #ff6b6b; }
.voice-mod { height: 24px; padding: 0 8px; font-size: 11.5px; border-radius: 7px; border: 1px solid var(--border-2); background: var(--raised); color: inherit; }
.voice-tiles { display: grid; grid-template-columns: repeat(auto-fill, minmax(110px, 1fr)); gap: 6px; }
.voice-tiles:empty { display: none; }
.voice-tile { position: relative; aspect-ratio: 4 / 3; border-radius: 8px; overflow: hidden; background: #000; }
.voice-tile video { width: 100%; height: 100%; object-fit: cover; }
.voice-tile span { position: absolute; left: 6px; bottom: 4px; font-size: 11px; color: #fff; text-shadow: 0 1px 2px #000; }
.voice-error { color: #ff6b6b; font-size: 12.5px; }
`;

function injectStyle(): void {
  if (document.getElementById('voice-style')) return;
  const el = document.createElement('style');
  el.id = 'voice-style';
  el.textContent = STYLE;
  document.head.append(el);
}

const STATUS: Record<VoiceMesh['status'], string> = {
  idle: 'Not in voice',
  joining: 'Joining…',
  connected: 'In voice',
  sfu: 'In voice (media server)',
  error: 'Could not join',
};

export function mountVoiceUi(mesh: VoiceMesh, room: RoomClient, container: HTMLElement): HTMLElement {
  injectStyle();
  const status = h('span', { class: 'voice-status', 'data-testid': 'voice-status' });
  const error = h('p', { class: 'voice-error', 'data-testid': 'voice-error', hidden: true });
  const muteBtn = h('button', { class: 'btn', type: 'button', 'data-testid': 'voice-mute' });
  const pttBox = h('input', { type: 'checkbox', 'data-testid': 'voice-ptt' });
  const talkBtn = h('button', { class: 'btn', type: 'button', 'data-testid': 'voice-talk', hidden: true }, 'Hold to talk');
  const camBtn = h('button', { class: 'btn', type: 'button', 'data-testid': 'voice-camera' });
  const leaveBtn = h('button', { class: 'btn', type: 'button', 'data-testid': 'voice-leave' }, 'Leave');
  const members = h('ul', { class: 'voice-members', 'data-testid': 'voice-members' });
  const tiles = h('div', { class: 'voice-tiles', 'data-testid': 'voice-tiles' });
  const card = h(
    'section',
    { class: 'panel voice-card', 'aria-label': 'Voice' },
    h('div', { class: 'voice-head' }, h('span', {}, 'Voice'), status),
    h('div', { class: 'voice-controls' }, muteBtn, h('label', { class: 'voice-ptt' }, pttBox, 'Push to talk'), talkBtn, camBtn, leaveBtn),
    error,
    members,
    tiles,
  );
  container.append(card);

  muteBtn.addEventListener('click', () => void mesh.setMuted(!mesh.selfMuted));
  pttBox.addEventListener('change', () => mesh.setPushToTalk(pttBox.checked));
  talkBtn.addEventListener('pointerdown', () => mesh.talk(true));
  for (const ev of ['pointerup', 'pointerleave', 'pointercancel']) talkBtn.addEventListener(ev, () => mesh.talk(false));
  const typing = (t: EventTarget | null) =>
    t instanceof HTMLElement && (t.isContentEditable || /^(INPUT|TEXTAREA|SELECT)$/.test(t.tagName));
  window.addEventListener('keydown', (e) => {
    if (e.code === 'Space' && mesh.pushToTalk && !typing(e.target)) {
      e.preventDefault();
      mesh.talk(true);
    }
  });
  window.addEventListener('keyup', (e) => {
    if (e.code === 'Space' && mesh.pushToTalk) mesh.talk(false);
  });
  camBtn.addEventListener('click', () => void mesh.setCamera(!mesh.camera).catch((err: unknown) => showError(`camera: ${String(err)}`)));
  leaveBtn.addEventListener('click', () => void mesh.leave());

  const showError = (text: string | null) => {
    error.hidden = text === null;
    setText(error, text ?? '');
  };

  const rows = new Map<string, HTMLElement>();
  const tileEls = new Map<string, HTMLElement>();

  const render = () => {
    const seat = mesh.seat;
    card.dataset.status = mesh.status;
    setText(status, STATUS[mesh.status]);
    showError(mesh.status === 'error' ? mesh.error : null);
    const forced = seat?.forced === true;
    muteBtn.setAttribute('aria-pressed', String(mesh.selfMuted || forced));
    muteBtn.disabled = forced || (mesh.status !== 'connected' && mesh.status !== 'sfu');
    setText(muteBtn, forced ? 'Muted by a moderator' : mesh.selfMuted ? 'Unmute' : 'Mute');
    talkBtn.hidden = !mesh.pushToTalk;
    talkBtn.setAttribute('aria-pressed', String(mesh.live && mesh.pushToTalk));
    camBtn.setAttribute('aria-pressed', String(mesh.camera));
    // Through the SFU voice is audio only (docs/rooms.md): a camera can be turned off, not on.
    camBtn.disabled = mesh.status === 'sfu' && !mesh.camera;
    camBtn.title = camBtn.disabled ? 'Cameras work in smaller groups (peer to peer) only' : '';
    setText(camBtn, mesh.camera ? 'Camera off' : 'Camera');

    const voice = mesh.status === 'idle' ? [] : (room.state?.voice.members ?? []);
    const me = room.you;
    const seen = new Set<string>();
    for (const m of voice) {
      seen.add(m.conn);
      let li = rows.get(m.conn);
      if (!li) rows.set(m.conn, (li = memberRow(m, me?.conn === m.conn, me ? RANK[me.role] > RANK[m.role] : false, room)));
      const speaking = m.conn === me?.conn ? mesh.speaking && mesh.live : m.speaking;
      li.dataset.speaking = String(speaking);
      li.dataset.muted = String(m.muted);
      li.dataset.forced = String(m.forced);
      setText(li.querySelector('.voice-tag')!, m.forced ? 'muted by a moderator' : m.muted ? 'muted' : '');
      const modMute = li.querySelector<HTMLButtonElement>('[data-testid="voice-mod-mute"]');
      if (modMute) setText(modMute, m.forced ? 'Allow' : 'Mute');
      if (li.parentElement !== members || members.children[voice.indexOf(m)] !== li) members.append(li);
    }
    for (const [conn, li] of rows) if (!seen.has(conn)) li.remove(), rows.delete(conn);

    // Camera tiles: the member's own, and each seat that has its camera on.
    const want = new Map<string, { name: string; stream: MediaStream }>();
    const local = mesh.localVideo();
    if (local && me) want.set(me.conn, { name: 'You', stream: local });
    for (const m of voice) {
      const stream = m.camera && m.conn !== me?.conn ? mesh.remoteVideo(m.conn) : null;
      if (stream) want.set(m.conn, { name: m.name, stream });
    }
    for (const [conn, t] of want) {
      let tile = tileEls.get(conn);
      if (!tile) {
        const video = h('video', { autoplay: true, playsinline: true });
        video.muted = true;
        tile = h('div', { class: 'voice-tile', 'data-conn': conn }, video, h('span', {}, t.name));
        tileEls.set(conn, tile);
        tiles.append(tile);
      }
      const video = tile.querySelector('video')!;
      if (video.srcObject !== t.stream) video.srcObject = t.stream;
    }
    for (const [conn, tile] of tileEls) if (!want.has(conn)) tile.remove(), tileEls.delete(conn);
  };
  mesh.onChange(render);
  room.on('voice', render);
  render();
  return card;
}

function memberRow(m: VoiceMember, isMe: boolean, canModerate: boolean, room: RoomClient): HTMLElement {
  const avatar = h('span', { class: 'voice-avatar' });
  avatar.style.setProperty('--hue', String(hueFor(m.name)));
  setText(avatar, (m.name.trim()[0] ?? '?').toUpperCase());
  const name = h('span', { class: 'voice-name' });
  setText(name, isMe ? `${m.name} (you)` : m.name);
  const li = h('li', { class: 'voice-member', 'data-conn': m.conn, 'data-uid': m.uid }, avatar, name, h('span', { class: 'voice-tag' }));
  if (canModerate && !isMe) {
    const mute = h('button', { class: 'voice-mod', type: 'button', 'data-testid': 'voice-mod-mute' }, 'Mute');
    mute.addEventListener('click', () => {
      const seat = room.state?.voice.members.find((s) => s.uid === m.uid);
      void (seat?.forced ? room.voiceUnmute(m.uid) : room.voiceMute(m.uid)).catch((err: unknown) =>
        console.warn('voice: moderation refused', err),
      );
    });
    const remove = h('button', { class: 'voice-mod', type: 'button', 'data-testid': 'voice-mod-remove' }, 'Remove');
    remove.addEventListener(
      'click',
      () => void room.voiceRemove(m.uid).catch((err: unknown) => console.warn('voice: removal refused', err)),
    );
    li.append(mute, remove);
  }
  return li;
}
