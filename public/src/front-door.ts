// Entry of the front door (`/`): the live streams a stranger may watch (thumbnail, title,
// viewers, Watch and Start a party), the past broadcasts, and the docs. The Worker inlines the
// listing into the HTML (`#directory`), so the page shows at once; it then refreshes it from
// `GET /api/directory` while the tab is visible (viewer counts, streams starting and ending).
import type { Directory, DirectoryLive, DirectoryRecording } from '../../core/contracts/directory.ts';
import { h, setText } from './watch/dom.ts';
import { icon } from './watch/icons.ts';

/** The listing is rebuilt at most every 5 s per colo; viewers counts do not need more than this. */
const REFRESH_MS = 20_000;

const DOCS: Array<[file: string, label: string, what: string]> = [
  ['player.md', 'Watch page and parties', 'The player, chat in step with the video, watch parties, embedding a stream'],
  ['api.md', 'HTTP API', 'Streams, playback tokens, recordings, clips, webhooks'],
  ['operations.md', 'Operations', 'Running the Worker and the media nodes, limits, metrics'],
  ['cli.md', 'CLI', 'edgelive streams, clips, recordings, rooms from a terminal'],
  ['architecture.md', 'Architecture', 'How a frame travels from the camera to the viewer'],
];

function readInline(): Directory | null {
  const el = document.getElementById('directory');
  if (!el?.textContent) return null;
  try {
    return JSON.parse(el.textContent) as Directory;
  } catch {
    return null;
  }
}

function since(iso: string | null): string {
  if (!iso) return '';
  const min = Math.max(0, Math.round((Date.now() - Date.parse(iso)) / 60_000));
  return min < 1 ? 'just started' : min < 60 ? `started ${min} min ago` : `started ${Math.floor(min / 60)} h ${min % 60} min ago`;
}

function duration(sec: number | null): string {
  if (sec === null) return '';
  const s = Math.round(sec);
  const hh = Math.floor(s / 3600);
  const mm = Math.floor((s % 3600) / 60);
  const ss = String(s % 60).padStart(2, '0');
  return hh ? `${hh}:${String(mm).padStart(2, '0')}:${ss}` : `${mm}:${ss}`;
}

/** A thumbnail that disappears (leaving the card's gradient) when there is none to show. */
function thumb(src: string | null, alt: string): HTMLElement {
  const box = h('div', { class: 'fd-thumb' });
  if (src) {
    const img = h('img', { src, alt, loading: 'lazy', decoding: 'async' });
    img.addEventListener('error', () => img.remove());
    box.append(img);
  }
  return box;
}

async function startParty(stream: string, button: HTMLButtonElement): Promise<void> {
  button.disabled = true;
  try {
    const res = await fetch('/parties', {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({ stream }),
    });
    if (!res.ok)
      throw new Error(((await res.json().catch(() => ({}))) as { error?: { message?: string } }).error?.message ?? `HTTP ${res.status}`);
    location.assign(((await res.json()) as { url: string }).url);
  } catch (err) {
    button.disabled = false;
    button.title = `Could not start a party: ${err instanceof Error ? err.message : String(err)}`;
    setText(button.querySelector('.fd-party-label')!, 'Try again');
  }
}

function liveCard(s: DirectoryLive): HTMLElement {
  const title = s.title || 'Untitled stream';
  const party = h(
    'button',
    {
      class: 'btn btn-small',
      type: 'button',
      'data-testid': 'start-party',
      title: 'A room where your play, pause and seek move everyone you invite',
    },
    icon('users', 15),
    h('span', { class: 'fd-party-label' }, 'Start a party'),
  );
  party.addEventListener('click', () => void startParty(s.id, party));
  return h(
    'article',
    { class: 'fd-card card', 'data-stream': s.id, 'data-testid': 'live-card' },
    h(
      'a',
      { class: 'fd-cover', href: s.watch, 'aria-label': `Watch ${title}` },
      thumb(s.thumbnail, ''),
      h('span', { class: 'fd-badge fd-live' }, h('span', { class: 'live-dot' }), 'LIVE'),
      h('span', { class: 'fd-badge fd-viewers', 'data-testid': 'live-viewers' }, icon('eye', 13), `${s.viewers.toLocaleString()} watching`),
      s.access === 'signed' ? h('span', { class: 'fd-badge fd-lock' }, icon('lock', 13), 'Access link') : null,
    ),
    h(
      'div',
      { class: 'fd-body' },
      h('a', { class: 'fd-title', href: s.watch, 'data-testid': 'watch-link' }, title),
      h('div', { class: 'fd-meta' }, since(s.startedAt)),
      h('div', { class: 'fd-actions' }, h('a', { class: 'btn btn-primary btn-small', href: s.watch }, icon('play', 14), 'Watch'), party),
    ),
  );
}

function recordingCard(r: DirectoryRecording): HTMLElement {
  const title = r.title || 'Untitled stream';
  const when = new Date(r.startedAt).toLocaleString([], { dateStyle: 'medium', timeStyle: 'short' });
  return h(
    'a',
    { class: 'fd-card card fd-past', href: r.watch, 'data-recording': r.id, 'data-testid': 'recording-card' },
    h(
      'div',
      { class: 'fd-cover' },
      thumb(r.thumbnail, ''),
      r.duration !== null ? h('span', { class: 'fd-badge fd-duration' }, duration(r.duration)) : null,
    ),
    h('div', { class: 'fd-body' }, h('span', { class: 'fd-title' }, title), h('div', { class: 'fd-meta' }, when)),
  );
}

function render(root: HTMLElement, d: Directory | null): void {
  const live = d?.live ?? [];
  const recordings = d?.recordings ?? [];
  const liveGrid = h('div', { class: 'fd-grid', 'data-testid': 'live-list' }, ...live.map(liveCard));
  const empty = h(
    'div',
    { class: 'fd-empty card' },
    h('h3', {}, d ? 'Nobody is live right now' : 'The listing could not be loaded'),
    h(
      'p',
      {},
      'Streams appear here as soon as they go live. To go live yourself, create a stream and point OBS or ffmpeg at its ingest URL: ',
      h('a', { href: '/docs/api.md' }, 'POST /api/streams'),
      '.',
    ),
  );
  root.replaceChildren(
    h(
      'header',
      { class: 'topbar' },
      h(
        'a',
        { class: 'brand', href: '/' },
        h('span', { class: 'brand-mark' }, h('span', {})),
        h('span', { class: 'brand-name' }, 'edgelive'),
      ),
      h('div', { class: 'topbar-title' }, 'Live now and recent broadcasts'),
      h('nav', { class: 'topbar-right' }, h('a', { class: 'fd-nav', href: '#docs' }, 'Docs')),
    ),
    h(
      'main',
      { class: 'fd' },
      h(
        'section',
        { class: 'fd-section', 'aria-labelledby': 'fd-live-h' },
        h(
          'h2',
          { id: 'fd-live-h' },
          h('span', { class: 'live-dot' }),
          'Live now',
          live.length ? h('span', { class: 'fd-count' }, String(live.length)) : null,
        ),
        live.length ? liveGrid : empty,
      ),
      recordings.length
        ? h(
            'section',
            { class: 'fd-section', 'aria-labelledby': 'fd-past-h' },
            h('h2', { id: 'fd-past-h' }, 'Past broadcasts'),
            h('div', { class: 'fd-grid fd-grid-past', 'data-testid': 'recording-list' }, ...recordings.map(recordingCard)),
          )
        : null,
      h(
        'section',
        { class: 'fd-section', id: 'docs', 'aria-labelledby': 'fd-docs-h' },
        h('h2', { id: 'fd-docs-h' }, 'Docs'),
        h(
          'div',
          { class: 'fd-docs' },
          ...DOCS.map(([file, label, what]) =>
            h('a', { class: 'fd-doc card', href: `/docs/${file}` }, h('strong', {}, label), h('span', {}, what)),
          ),
        ),
      ),
    ),
  );
}

const root = document.getElementById('app')!;
let current = readInline();
render(root, current);

async function refresh(): Promise<void> {
  if (document.visibilityState !== 'visible') return;
  try {
    const res = await fetch('/api/directory');
    if (!res.ok) return;
    const next = (await res.json()) as Directory;
    if (current && next.generatedAt === current.generatedAt) return;
    current = next;
    render(root, current);
  } catch {
    // Keep what is shown; the next refresh tries again.
  }
}
setInterval(() => void refresh(), REFRESH_MS);
document.addEventListener('visibilitychange', () => void refresh());
