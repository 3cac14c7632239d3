// Entry of `/replay/{id}`: a recording or a clip (ids `rc…`, `cl…`) played from
// `/vod/{id}/index.m3u8` with hls.js (natively where there is no MSE), the browser's own controls,
// its title and date from `/vod/{id}/info.json`, and its link to share. A `?token=` (signed
// streams) goes on both requests, as on the watch page.
import Hls from 'hls.js';
import type { VodInfo } from '../../core/contracts/directory.ts';
import { h, setText } from './watch/dom.ts';
import { icon } from './watch/icons.ts';

const url = new URL(location.href);
const id = decodeURIComponent(url.pathname.split('/').filter(Boolean)[1] ?? '');
const token = url.searchParams.get('token');
const vod = (file: string) => `/vod/${encodeURIComponent(id)}/${file}${token ? `?token=${encodeURIComponent(token)}` : ''}`;

const video = h('video', { class: 'video', controls: true, playsinline: true, preload: 'auto', 'data-testid': 'video' });
video.muted = true;
const title = h('h1', { class: 'stream-title', 'data-testid': 'title' });
const meta = h('div', { class: 'title-meta' });
const share = h('input', {
  class: 'field',
  readonly: true,
  style: 'width: 340px',
  value: location.origin + url.pathname + url.search,
  'aria-label': 'Link to this page',
  'data-testid': 'share-url',
});
const copy = h('button', { class: 'btn btn-small', type: 'button' }, icon('link', 14), 'Copy link');
copy.addEventListener('click', () => {
  share.select();
  void navigator.clipboard?.writeText(share.value).then(
    () => setText(copy, 'Copied'),
    () => undefined,
  );
});
const notice = h('div', { class: 'notice', hidden: true, 'data-testid': 'notice' });
const stage = h('div', { class: 'stage' }, video, h('div', { class: 'overlay' }, notice));
document
  .getElementById('app')!
  .replaceChildren(
    h(
      'header',
      { class: 'topbar' },
      h(
        'a',
        { class: 'brand', href: '/' },
        h('span', { class: 'brand-mark' }, h('span', {})),
        h('span', { class: 'brand-name' }, 'edgelive'),
      ),
    ),
    h(
      'main',
      { class: 'layout' },
      h(
        'section',
        { class: 'main-col' },
        stage,
        h(
          'div',
          { class: 'below' },
          h(
            'div',
            { class: 'below-head' },
            h('div', { class: 'title-block' }, title, meta),
            h('div', { class: 'below-head-extra share-row' }, share, copy),
          ),
        ),
      ),
    ),
  );

function fail(text: string): void {
  notice.hidden = false;
  notice.replaceChildren(h('p', { class: 'notice-title' }, text));
}

async function showInfo(): Promise<void> {
  const res = await fetch(vod('info.json')).catch(() => null);
  if (!res?.ok) {
    const code = res ? ((await res.json().catch(() => ({}))) as { error?: { code?: string } }).error?.code : undefined;
    fail(
      code === 'expired'
        ? 'This recording has expired'
        : code === 'token_required'
          ? 'This recording needs an access link'
          : res?.status === 404
            ? 'No such recording or clip'
            : 'This recording cannot be played',
    );
    return;
  }
  const info = (await res.json()) as VodInfo;
  const name = info.title || 'Untitled stream';
  setText(title, name);
  document.title = `${name} · edgelive`;
  const when = new Date(info.startedAt).toLocaleString([], { dateStyle: 'medium', timeStyle: 'short' });
  const kind = info.kind === 'clip' ? `Clip of ${info.streamTitle || 'a stream'}` : 'Past broadcast';
  setText(meta, [kind, when, info.duration !== null ? `${Math.round(info.duration)} s` : ''].filter(Boolean).join(' · '));
}

void showInfo();
if (Hls.isSupported()) {
  const hls = new Hls({ enableWorker: false });
  hls.on(Hls.Events.ERROR, (_e, d) => {
    if (d.fatal) fail(d.response?.code === 410 ? 'This recording has expired' : 'This recording cannot be played');
  });
  hls.loadSource(vod('index.m3u8'));
  hls.attachMedia(video);
  hls.once(Hls.Events.MANIFEST_PARSED, () => void video.play().catch(() => undefined));
  (window as unknown as { __edgelive: unknown }).__edgelive = { hls, video };
} else {
  video.src = vod('index.m3u8');
}
