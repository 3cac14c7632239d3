// The Go-live page's DOM: the preview, the source (camera or screen), device and quality pickers,
// the microphone's mute, Go live / Stop, the live state with the elapsed time, and the link
// viewers watch at. Styled like the watch page (app.css) plus golive.css.
import { formatElapsed, goLiveRefusal } from '../../../core/player/golive.ts';
import { h, setText } from '../watch/dom.ts';
import { type LocalMedia, QUALITIES, type Quality } from './local-media.ts';
import type { PublishSnapshot, PublishState, WhipClient } from './whip-client.ts';

const PILL: Record<PublishState, { state: string; label: string }> = {
  idle: { state: 'upcoming', label: 'Ready' },
  connecting: { state: 'loading', label: 'Connecting…' },
  live: { state: 'live', label: 'Live' },
  reconnecting: { state: 'loading', label: 'Reconnecting…' },
  ended: { state: 'ended', label: 'Ended' },
  'taken-over': { state: 'unavailable', label: 'Taken over' },
  refused: { state: 'unavailable', label: 'Refused' },
  failed: { state: 'unavailable', label: 'Offline' },
};

function topbar(...right: Node[]): HTMLElement {
  return h(
    'header',
    { class: 'topbar' },
    h(
      'a',
      { class: 'brand', href: '/' },
      h('span', { class: 'brand-mark' }, h('span', {})),
      h('span', { class: 'brand-name' }, 'edgelive'),
    ),
    h('div', { class: 'topbar-title' }, 'Go live'),
    h('div', { class: 'topbar-right' }, ...right),
  );
}

/** A page that cannot publish (no stream, no or a bad link): says why, asks for nothing. */
export function mountProblem(root: HTMLElement, code: string): void {
  const words = goLiveRefusal(code);
  root.replaceChildren(
    topbar(),
    h(
      'div',
      { class: 'fatal card', 'data-testid': 'golive-problem', 'data-code': code },
      h('div', { class: 'notice-icon notice-not-found' }, '!'),
      h('h1', {}, words.title),
      h('p', {}, words.detail),
    ),
  );
}

export interface GoLivePage {
  media: LocalMedia;
  client: WhipClient;
}

export function mountGoLivePage(root: HTMLElement, streamId: string, media: LocalMedia, client: WhipClient): GoLivePage {
  const viewerUrl = `${location.origin}/watch/${encodeURIComponent(streamId)}`;
  const pill = h('span', { class: 'state-pill', 'data-testid': 'golive-state' });
  const elapsed = h('span', { class: 'golive-elapsed', 'data-testid': 'golive-elapsed' });
  const preview = h('video', {
    class: 'video golive-preview',
    muted: true,
    playsinline: true,
    autoplay: true,
    'data-testid': 'golive-preview',
  });
  preview.muted = true;
  const stageNotice = h(
    'div',
    { class: 'overlay dim golive-stage-notice' },
    h('div', { class: 'notice' }, h('p', { class: 'notice-title' }, 'Choose a camera or share your screen')),
  );
  const stage = h('div', { class: 'stage' }, preview, stageNotice, h('div', { class: 'stage-top-left' }, elapsed));

  const title = h('h1', { class: 'stream-title', 'data-testid': 'golive-title' }, streamId);
  const meta = h('span', { class: 'meta-text', 'data-testid': 'golive-meta' });
  const message = h('div', { class: 'golive-message', 'data-testid': 'golive-message', hidden: true });
  const below = h(
    'div',
    { class: 'below' },
    h('div', { class: 'below-head' }, h('div', { class: 'title-block' }, title, h('div', { class: 'title-meta' }, meta))),
    message,
  );

  // --- the panel -------------------------------------------------------------------------------
  const cameraBtn = h('button', { class: 'seg', type: 'button', 'data-testid': 'source-camera' }, 'Camera');
  const screenBtn = h('button', { class: 'seg', type: 'button', 'data-testid': 'source-screen' }, 'Screen');
  const cameraSelect = h('select', { class: 'field field-select', 'data-testid': 'camera', 'aria-label': 'Camera' });
  const micSelect = h('select', { class: 'field field-select', 'data-testid': 'microphone', 'aria-label': 'Microphone' });
  const qualitySelect = h(
    'select',
    { class: 'field field-select', 'data-testid': 'quality', 'aria-label': 'Quality' },
    ...Object.entries(QUALITIES).map(([q, v]) => h('option', { value: q }, `${q} · ${(v.bitrate / 1e6).toFixed(1)} Mbit/s`)),
  );
  qualitySelect.value = media.quality;
  const muteBtn = h('button', { class: 'btn', type: 'button', 'data-testid': 'mute' }, 'Mute');
  const goBtn = h('button', { class: 'btn btn-primary golive-go', type: 'button', 'data-testid': 'golive-button' }, 'Go live');
  const link = h('input', { class: 'field', readonly: true, value: viewerUrl, 'data-testid': 'viewer-link', 'aria-label': 'Viewer link' });
  const copyBtn = h('button', { class: 'btn', type: 'button' }, 'Copy');
  const details = h('p', { class: 'golive-details', 'data-testid': 'golive-details' });
  const row = (label: string, ...els: Node[]) => h('label', { class: 'golive-row' }, h('span', { class: 'golive-label' }, label), ...els);
  const panel = h(
    'aside',
    { class: 'side' },
    h(
      'div',
      { class: 'card golive-panel' },
      h('div', { class: 'golive-seg', role: 'group', 'aria-label': 'Source' }, cameraBtn, screenBtn),
      row('Camera', cameraSelect),
      row('Microphone', micSelect, muteBtn),
      row('Quality', qualitySelect),
      goBtn,
      h(
        'div',
        { class: 'golive-row' },
        h('span', { class: 'golive-label' }, 'Viewers watch at'),
        h('div', { class: 'golive-link' }, link, copyBtn),
      ),
      details,
    ),
  );
  root.replaceChildren(
    topbar(pill),
    h('main', { class: 'layout golive-layout' }, h('section', { class: 'main-col' }, stage, below), panel),
  );

  // --- wiring ----------------------------------------------------------------------------------
  let muted = false;
  const showError = (text: string | null) => {
    message.hidden = !text;
    setText(message, text ?? '');
  };
  const attempt = (what: string, fn: () => Promise<void>) =>
    fn().then(
      () => showError(null),
      (err: unknown) => showError(`${what}: ${(err as Error).message || String(err)}`),
    );
  const showPreview = () => {
    const tracks = media.video ? [media.video] : [];
    preview.srcObject = tracks.length ? new MediaStream(tracks) : null;
    // A camera is shown mirrored, as the streamer expects to see themselves; viewers get it unmirrored.
    preview.classList.toggle('mirrored', media.source === 'camera');
    stageNotice.hidden = tracks.length > 0;
    cameraBtn.setAttribute('aria-pressed', String(media.source === 'camera'));
    screenBtn.setAttribute('aria-pressed', String(media.source === 'screen'));
  };
  const fillDevices = async () => {
    const { cameras, microphones } = await media.devices();
    cameraSelect.replaceChildren(...cameras.map((d) => h('option', { value: d.id }, d.label)));
    if (media.cameraId) cameraSelect.value = media.cameraId;
    micSelect.replaceChildren(
      h('option', { value: '' }, 'Default microphone'),
      ...microphones.map((d) => h('option', { value: d.id }, d.label)),
      h('option', { value: 'none' }, 'No microphone'),
    );
    micSelect.value = media.micId ?? '';
  };
  media.onTrack = (kind, track) => {
    if (kind === 'audio' && track) track.enabled = !muted;
    if (kind === 'video') showPreview();
    void client.replaceTrack(kind, track);
  };

  cameraBtn.addEventListener('click', () => void attempt('Camera', () => media.useCamera()));
  screenBtn.addEventListener('click', () => void attempt('Screen sharing', () => media.useScreen()));
  cameraSelect.addEventListener('change', () => void attempt('Camera', () => media.useCamera(cameraSelect.value)));
  micSelect.addEventListener(
    'change',
    () => void attempt('Microphone', () => media.useMicrophone(micSelect.value === '' ? null : micSelect.value)),
  );
  qualitySelect.addEventListener('change', () => {
    media.quality = qualitySelect.value as Quality;
    if (media.source === 'camera') void attempt('Camera', () => media.useCamera());
  });
  muteBtn.addEventListener('click', () => {
    muted = !muted;
    media.setMuted(muted);
    setText(muteBtn, muted ? 'Unmute' : 'Mute');
    muteBtn.setAttribute('aria-pressed', String(muted));
  });
  copyBtn.addEventListener('click', () => void navigator.clipboard?.writeText(viewerUrl).then(() => setText(copyBtn, 'Copied')));
  goBtn.addEventListener('click', () => {
    const s = client.snapshot.state;
    if (s === 'live' || s === 'connecting' || s === 'reconnecting') void client.stop();
    else if (!media.video && !media.audio) showError('Choose a camera, a screen or a microphone first');
    else client.start();
  });

  const render = (s: PublishSnapshot) => {
    const p = PILL[s.state];
    pill.dataset.state = p.state;
    pill.dataset.publish = s.state;
    setText(pill, p.label);
    const active = s.state === 'live' || s.state === 'connecting' || s.state === 'reconnecting';
    setText(goBtn, active ? 'Stop' : s.state === 'idle' ? 'Go live' : 'Go live again');
    goBtn.classList.toggle('btn-danger', active);
    goBtn.classList.toggle('btn-primary', !active);
    // A choice that needs a new offer cannot change mid-broadcast (no renegotiation in WHIP): the
    // microphone's presence and the quality's bitrate are fixed once live; devices can change.
    micSelect.querySelector<HTMLOptionElement>('option[value="none"]')?.toggleAttribute('disabled', active);
    qualitySelect.disabled = active;
    setText(
      meta,
      s.state === 'live' && s.nodeId
        ? `Publishing over WebRTC to ${s.nodeId} (${s.region})`
        : s.state === 'reconnecting'
          ? 'The connection was lost: publishing again…'
          : '',
    );
    setText(
      details,
      [s.epoch !== null ? `lease epoch ${s.epoch}` : '', s.reconnects ? `${s.reconnects} reconnection${s.reconnects > 1 ? 's' : ''}` : '']
        .filter(Boolean)
        .join(' · '),
    );
    if (s.state === 'refused' || s.state === 'taken-over' || s.state === 'failed') {
      const words =
        s.state === 'refused'
          ? goLiveRefusal(s.error?.code ?? 'unauthorized')
          : s.state === 'taken-over'
            ? {
                title: 'Another publisher took the stream over',
                detail: 'This page stopped so as not to take it back. Go live again to take it over yourself.',
              }
            : { title: 'Could not reach a media node', detail: s.error?.message ?? '' };
      showError(`${words.title}. ${words.detail}`);
      message.dataset.code = s.error?.code ?? '';
    } else if (s.state === 'live') showError(null);
    tick();
  };
  const tick = () => {
    const s = client.snapshot;
    const shown = s.startedAt !== null && s.state !== 'idle';
    elapsed.hidden = !shown;
    if (shown)
      setText(
        elapsed,
        `${s.state === 'live' || s.state === 'reconnecting' ? '● ' : ''}${formatElapsed((s.endedAt ?? Date.now()) - s.startedAt!)}`,
      );
    elapsed.classList.toggle('on-air', s.state === 'live');
  };
  client.onChange(render);
  setInterval(tick, 500);
  render(client.snapshot);

  // The camera and the default microphone at once: the streamer opened this page to go live.
  void attempt('Camera', () => media.useCamera())
    .then(() => attempt('Microphone', () => media.useMicrophone(null)))
    .then(fillDevices);
  void fetch(`/live/${encodeURIComponent(streamId)}/info.json`).then(
    async (res) => {
      if (res.ok) {
        const info = (await res.json()) as { title: string };
        if (info.title) setText(title, info.title);
        document.title = `Go live · ${info.title || streamId} · edgelive`;
      } else if (res.status === 401 || res.status === 403) {
        setText(link, viewerUrl);
        link.title = 'A signed stream: viewers need a playback token in this link (edgelive streams token)';
      }
    },
    () => undefined,
  );
  return { media, client };
}
