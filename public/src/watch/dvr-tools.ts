// Start-over and clips on the watch page (part of the second bundle, so none of it is on the way
// to the first frame): "From the start" jumps to the beginning of the live stream's DVR window
// (the live button takes the viewer back), and the host of the stream's room — the holder of a
// host room token for it, the credential the room and clip APIs already take — cuts a clip of
// the last N seconds of what they watch and gets its link to share (`/replay/{clip}`).
import { h, setText } from './dom.ts';
import { icon } from './icons.ts';
import type { WatchPage } from './page.ts';

/** A window shorter than this is only the live edge: nothing to start over from (as the scrubber). */
const MIN_DVR_SEC = 20;
/** Lengths a host may cut, in seconds (the clips API takes up to 5 minutes). */
const CLIP_LENGTHS = [15, 30, 60, 120] as const;

export interface ClipAnswer {
  id: string;
  duration: number;
}

/** The link to share for a clip, and the request that cut it, for the tests. */
export interface DvrTools {
  lastClip: { id: string; url: string; duration: number } | null;
}

export function mountDvrTools(page: WatchPage): DvrTools {
  const tools: DvrTools = { lastClip: null };
  const { player, params } = page;
  const barLeft = page.controls.el.querySelector('.bar-left');
  const barRight = page.controls.el.querySelector('.bar-right');

  // --- start over ---------------------------------------------------------------------------------
  // In a party the host's seeks go through the room (the scrubber does that); this is the watch page's.
  if (params.mode === 'watch' && barLeft) {
    const startOver = h(
      'button',
      { class: 'ctl start-over', type: 'button', 'data-testid': 'start-over', title: 'Watch this broadcast from its start', hidden: true },
      icon('restart', 18),
      h('span', {}, 'From the start'),
    );
    startOver.addEventListener('click', () => {
      const r = player.seekRange();
      if (!r) return;
      player.seek(r.start);
      void player.video.play().catch(() => undefined);
    });
    barLeft.insertBefore(startOver, barLeft.querySelector('.latency'));
    const show = () => {
      const r = player.seekRange();
      startOver.hidden = !(player.live && r && r.end - r.start >= MIN_DVR_SEC && player.video.currentTime - r.start > 5);
    };
    player.on('tick', show);
    show();
  }

  // --- clips, for the host ------------------------------------------------------------------------
  const room = page.room;
  const token = params.roomToken;
  // The clip API takes a host token of the stream's own room, which is the watch page's room.
  if (!room || !token || !barRight || params.roomId !== params.streamId) return tools;
  const clipBtn = h(
    'button',
    { class: 'ctl clip-btn', type: 'button', 'data-testid': 'clip', hidden: true, 'aria-haspopup': 'dialog' },
    icon('scissors', 17),
    h('span', {}, 'Clip'),
  );
  const length = h(
    'select',
    { class: 'field field-select', 'aria-label': 'Length', 'data-testid': 'clip-length' },
    ...CLIP_LENGTHS.map((s) => h('option', { value: s, selected: s === 30 }, s < 60 ? `Last ${s} s` : `Last ${s / 60} min`)),
  );
  const title = h('input', {
    class: 'field',
    placeholder: 'Title (optional)',
    maxlength: 200,
    'aria-label': 'Clip title',
    'data-testid': 'clip-title',
  });
  const cut = h(
    'button',
    { class: 'btn btn-primary btn-small', type: 'submit', 'data-testid': 'clip-cut' },
    icon('scissors', 14),
    'Cut clip',
  );
  const status = h('div', { class: 'clip-status', 'data-testid': 'clip-status' });
  const link = h('input', { class: 'field', readonly: true, 'aria-label': 'Link to the clip', 'data-testid': 'clip-url', hidden: true });
  const copy = h('button', { class: 'btn btn-small', type: 'button', hidden: true }, icon('link', 14), 'Copy');
  const open = h('a', { class: 'btn btn-small', target: '_blank', rel: 'noopener', hidden: true, 'data-testid': 'clip-open' }, 'Open');
  const form = h(
    'form',
    { class: 'clip-form' },
    h('div', { class: 'menu-title' }, 'Clip what you just watched'),
    length,
    title,
    cut,
    status,
    h('div', { class: 'clip-share' }, link, copy, open),
  );
  const panel = h('div', { class: 'menu clip-menu', role: 'dialog', hidden: true, 'data-testid': 'clip-menu' }, form);
  panel.addEventListener('click', (e) => e.stopPropagation());
  document.addEventListener('click', () => (panel.hidden = true));
  clipBtn.addEventListener('click', (e) => {
    e.stopPropagation();
    panel.hidden = !panel.hidden;
  });
  copy.addEventListener('click', () => {
    link.select();
    void navigator.clipboard?.writeText(link.value).then(
      () => setText(copy, 'Copied'),
      () => undefined,
    );
  });
  form.addEventListener('submit', (e) => {
    e.preventDefault();
    void cutClip();
  });
  barRight.insertBefore(h('div', { class: 'menu-anchor' }, clipBtn, panel), barRight.firstChild);
  room.on('open', ({ you }) => (clipBtn.hidden = you.role !== 'host'));

  async function cutClip(): Promise<void> {
    const seconds = Number(length.value);
    // The last N seconds of what the host watched: ending at the frame on screen, by its
    // program-date-time, so a host watching behind live clips what they saw; else from the edge.
    const pdt = player.pdtNow();
    const body =
      pdt !== null ? { start: new Date(pdt - seconds * 1000).toISOString(), end: new Date(pdt).toISOString() } : { start: seconds };
    cut.disabled = true;
    setText(status, 'Cutting…');
    try {
      const res = await fetch(`/api/streams/${encodeURIComponent(params.streamId!)}/clips`, {
        method: 'POST',
        headers: { authorization: `Bearer ${token}`, 'content-type': 'application/json' },
        body: JSON.stringify({ ...body, title: title.value.trim() }),
      });
      const answer = (await res.json()) as ClipAnswer & { error?: { message: string } };
      if (!res.ok) throw new Error(answer.error?.message ?? `HTTP ${res.status}`);
      const url = `${location.origin}/replay/${answer.id}`;
      tools.lastClip = { id: answer.id, url, duration: answer.duration };
      setText(status, `Clip of ${answer.duration.toFixed(1)} s ready: share this link`);
      link.value = url;
      open.setAttribute('href', url);
      for (const el of [link, copy, open]) el.hidden = false;
      setText(copy, 'Copy');
    } catch (err) {
      setText(status, `Could not cut the clip: ${err instanceof Error ? err.message : String(err)}`);
    } finally {
      cut.disabled = false;
    }
  }
  return tools;
}
