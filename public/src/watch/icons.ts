// Inline SVG icons (24-unit grid; line icons after Feather, MIT) and the eight reaction glyphs,
// drawn here rather than taken from an emoji font so they look the same on every machine.
import type { Reaction } from '../rooms-client.ts';

const NS = 'http://www.w3.org/2000/svg';

interface Shape {
  d?: string;
  circle?: [number, number, number];
  ellipse?: [number, number, number, number];
  fill?: string;
  stroke?: string;
  width?: number;
}

function svg(shapes: Shape[], opts: { line?: boolean; size?: number; cls?: string } = {}): SVGSVGElement {
  const el = document.createElementNS(NS, 'svg');
  el.setAttribute('viewBox', '0 0 24 24');
  el.setAttribute('aria-hidden', 'true');
  el.setAttribute('class', opts.cls ?? 'icon');
  if (opts.size) {
    el.setAttribute('width', String(opts.size));
    el.setAttribute('height', String(opts.size));
    el.style.width = el.style.height = `${opts.size}px`;
  }
  for (const s of shapes) {
    let node: SVGElement;
    if (s.circle) {
      node = document.createElementNS(NS, 'circle');
      node.setAttribute('cx', String(s.circle[0]));
      node.setAttribute('cy', String(s.circle[1]));
      node.setAttribute('r', String(s.circle[2]));
    } else if (s.ellipse) {
      node = document.createElementNS(NS, 'ellipse');
      node.setAttribute('cx', String(s.ellipse[0]));
      node.setAttribute('cy', String(s.ellipse[1]));
      node.setAttribute('rx', String(s.ellipse[2]));
      node.setAttribute('ry', String(s.ellipse[3]));
    } else {
      node = document.createElementNS(NS, 'path');
      node.setAttribute('d', s.d ?? '');
    }
    const line = opts.line !== false && s.fill === undefined;
    node.setAttribute('fill', s.fill ?? (line ? 'none' : 'currentColor'));
    if (line || s.stroke) {
      node.setAttribute('stroke', s.stroke ?? 'currentColor');
      node.setAttribute('stroke-width', String(s.width ?? 2));
      node.setAttribute('stroke-linecap', 'round');
      node.setAttribute('stroke-linejoin', 'round');
    }
    el.appendChild(node);
  }
  return el;
}

const LINE: Record<string, Shape[]> = {
  play: [{ d: 'M7 4.5v15a1 1 0 0 0 1.5.86l12.5-7.5a1 1 0 0 0 0-1.72L8.5 3.64A1 1 0 0 0 7 4.5z', fill: 'currentColor' }],
  pause: [{ d: 'M6 4h4v16H6zM14 4h4v16h-4z', fill: 'currentColor' }],
  volume: [{ d: 'M11 5L6 9H2v6h4l5 4V5z', fill: 'currentColor' }, { d: 'M15.54 8.46a5 5 0 0 1 0 7.07M19.07 4.93a10 10 0 0 1 0 14.14' }],
  muted: [{ d: 'M11 5L6 9H2v6h4l5 4V5z', fill: 'currentColor' }, { d: 'M23 9l-6 6M17 9l6 6' }],
  fullscreen: [{ d: 'M8 3H5a2 2 0 0 0-2 2v3m18 0V5a2 2 0 0 0-2-2h-3m0 18h3a2 2 0 0 0 2-2v-3M3 16v3a2 2 0 0 0 2 2h3' }],
  chevron: [{ d: 'M6 9l6 6 6-6' }],
  check: [{ d: 'M20 6L9 17l-5-5' }],
  eye: [{ d: 'M1 12s4-8 11-8 11 8 11 8-4 8-11 8-11-8-11-8z' }, { circle: [12, 12, 3] }],
  users: [{ d: 'M17 21v-2a4 4 0 0 0-4-4H5a4 4 0 0 0-4 4v2M23 21v-2a4 4 0 0 0-3-3.87M16 3.13a4 4 0 0 1 0 7.75' }, { circle: [9, 7, 4] }],
  send: [{ d: 'M22 2L11 13M22 2l-7 20-4-9-9-4 20-7z' }],
  retry: [{ d: 'M23 4v6h-6M20.49 15a9 9 0 1 1-2.12-9.36L23 10' }],
  lock: [{ d: 'M5 11h14v10H5z' }, { d: 'M7 11V7a5 5 0 0 1 10 0v4' }],
  clock: [{ circle: [12, 12, 10] }, { d: 'M12 6v6l4 2' }],
  alert: [{ d: 'M10.29 3.86L1.82 18a2 2 0 0 0 1.71 3h16.94a2 2 0 0 0 1.71-3L13.71 3.86a2 2 0 0 0-3.42 0zM12 9v4M12 17h.01' }],
  globe: [
    { circle: [12, 12, 10] },
    { d: 'M2 12h20M12 2a15.3 15.3 0 0 1 4 10 15.3 15.3 0 0 1-4 10 15.3 15.3 0 0 1-4-10 15.3 15.3 0 0 1 4-10z' },
  ],
  flag: [{ d: 'M4 15s1-1 4-1 5 2 8 2 4-1 4-1V3s-1 1-4 1-5-2-8-2-4 1-4 1zM4 22v-7' }],
  chart: [{ d: 'M12 20V10M18 20V4M6 20v-4' }],
  chat: [{ d: 'M21 15a2 2 0 0 1-2 2H7l-4 4V5a2 2 0 0 1 2-2h14a2 2 0 0 1 2 2z' }],
  link: [{ d: 'M10 13a5 5 0 0 0 7.54.54l3-3a5 5 0 0 0-7.07-7.07l-1.72 1.71M14 11a5 5 0 0 0-7.54-.54l-3 3a5 5 0 0 0 7.07 7.07l1.71-1.71' }],
  crown: [{ d: 'M3 18h18l-1.5-10-4.5 4-3-6-3 6-4.5-4z', fill: 'currentColor' }],
  shield: [{ d: 'M12 22s8-4 8-10V5l-8-3-8 3v7c0 6 8 10 8 10z', fill: 'currentColor' }],
  live: [{ d: 'M5 4l10 8-10 8V4zM19 5v14' }],
  trash: [{ d: 'M3 6h18M19 6l-1 14a2 2 0 0 1-2 2H8a2 2 0 0 1-2-2L5 6M10 11v6M14 11v6M9 6V4a1 1 0 0 1 1-1h4a1 1 0 0 1 1 1v2' }],
  timer: [{ circle: [12, 13, 8] }, { d: 'M12 9v4l2 2M9 2h6' }],
  ban: [{ circle: [12, 12, 10] }, { d: 'M4.93 4.93l14.14 14.14' }],
  plus: [{ d: 'M12 5v14M5 12h14' }],
  x: [{ d: 'M18 6L6 18M6 6l12 12' }],
  sync: [{ d: 'M21 2v6h-6M3 22v-6h6M21 13a9 9 0 0 1-15.36 6.36L3 16M3 11a9 9 0 0 1 15.36-6.36L21 8' }],
  signal: [{ d: 'M2 20h.01M7 20v-4M12 20v-8M17 20V8M22 4v16' }],
  scissors: [{ circle: [6, 6, 3] }, { circle: [6, 18, 3] }, { d: 'M20 4L8.12 15.88M14.47 14.48L20 20M8.12 8.12L12 12' }],
  restart: [{ d: 'M4 4v6h6' }, { d: 'M4.5 15a8 8 0 1 0 1.9-8.3L4 10' }],
};

export type IconName = keyof typeof LINE;

export function icon(name: IconName, size?: number): SVGSVGElement {
  return svg(LINE[name]!, { size, cls: `icon icon-${name}` });
}

const FACE = '#FFC94D';
const INK = '#4A3310';

const REACTION_SHAPES: Record<Reaction, Shape[]> = {
  like: [
    { circle: [12, 12, 11.5], fill: '#3B82F6' },
    {
      d: 'M13.2 8.6V6.4a1.9 1.9 0 0 0-1.9-1.9l-2.5 5.7v7.3h7.1a1.3 1.3 0 0 0 1.27-1.07l.87-5.7a1.27 1.27 0 0 0-1.27-1.46zM8.8 17.5H6.9a1.27 1.27 0 0 1-1.27-1.27v-4.4a1.27 1.27 0 0 1 1.27-1.27h1.9',
      fill: '#fff',
    },
  ],
  love: [
    { circle: [12, 12, 11.5], fill: '#F43F5E' },
    { d: 'M17.6 7.9a3.3 3.3 0 0 0-4.7 0L12 8.8l-.9-.9a3.3 3.3 0 0 0-4.7 4.7l.9.9L12 18.2l4.7-4.7.9-.9a3.3 3.3 0 0 0 0-4.7z', fill: '#fff' },
  ],
  laugh: [
    { circle: [12, 12, 11.5], fill: FACE },
    { d: 'M6.8 9.6q1.4-2 2.8 0M14.4 9.6q1.4-2 2.8 0', stroke: INK, width: 1.6, fill: 'none' },
    { d: 'M6.5 12.8h11a5.5 5.5 0 0 1-11 0z', fill: INK },
    { d: 'M9 16.4a4.6 4.6 0 0 0 6 0 3.4 3.4 0 0 0-6 0z', fill: '#F2727A' },
  ],
  wow: [
    { circle: [12, 12, 11.5], fill: FACE },
    { ellipse: [8.5, 9.5, 1.3, 1.7], fill: INK },
    { ellipse: [15.5, 9.5, 1.3, 1.7], fill: INK },
    { ellipse: [12, 16, 2.6, 3.2], fill: INK },
    { d: 'M6.5 5.8q2-1.2 3.6-.6M17.5 5.8q-2-1.2-3.6-.6', stroke: INK, width: 1.3, fill: 'none' },
  ],
  sad: [
    { circle: [12, 12, 11.5], fill: FACE },
    { circle: [8.5, 10, 1.3], fill: INK },
    { circle: [15.5, 10, 1.3], fill: INK },
    { d: 'M8.3 17.2q3.7-3.4 7.4 0', stroke: INK, width: 1.6, fill: 'none' },
    { d: 'M16.9 12.3q1.4 2.2 0 3.2-1.4-1 0-3.2z', fill: '#60A5FA' },
  ],
  clap: [
    { circle: [12, 12, 11.5], fill: '#F59E0B' },
    {
      d: 'M9.2 18.6l-3.1-4.9a1 1 0 0 1 1.7-1.1l1.3 2-3-4.8a1 1 0 1 1 1.7-1.1l2.4 3.8-3-4.7a1 1 0 1 1 1.7-1.1l3 4.7-2.2-3.5a1 1 0 1 1 1.7-1.1l3.3 5.3c1.5 2.4 1 5.2-1.2 6.5s-3.7 1-4.3 0z',
      fill: '#FFF7E6',
    },
    { d: 'M15.6 5.2l.7-1.6M17.8 6.6l1.5-.9M18.6 9l1.7-.1', stroke: '#FFF7E6', width: 1.3, fill: 'none' },
  ],
  fire: [
    { circle: [12, 12, 11.5], fill: '#FB923C' },
    { d: 'M12 4.5c.6 2.4 3.8 4 3.8 7.9a3.8 3.8 0 0 1-7.6 0c0-1.6.8-2.6.8-2.6.1 1.5.8 2.3 1.6 2.5-.2-2.7.2-5.2 1.4-7.8z', fill: '#FFF1E0' },
    { d: 'M12 11.2c.3 1.2 1.8 1.9 1.8 3.6a1.8 1.8 0 0 1-3.6 0c0-1.4 1.2-2.2 1.8-3.6z', fill: '#F97316' },
  ],
  party: [
    { circle: [12, 12, 11.5], fill: '#8B5CF6' },
    { d: 'M5.5 18.5l3-8.2 5.2 5.2z', fill: '#FDE68A' },
    { d: 'M12.5 7.5q1-2.5 3.5-2M15 11q2.5-1 4 .5', stroke: '#fff', width: 1.3, fill: 'none' },
    { circle: [17.5, 7, 1], fill: '#F472B6' },
    { circle: [10.5, 5.5, 0.9], fill: '#34D399' },
    { circle: [18, 14, 0.9], fill: '#FDE68A' },
  ],
};

export const REACTION_LABELS: Record<Reaction, string> = {
  like: 'Like',
  love: 'Love',
  laugh: 'Haha',
  wow: 'Wow',
  sad: 'Sad',
  clap: 'Applause',
  fire: 'Fire',
  party: 'Party',
};

export function reactionIcon(r: Reaction, size = 28): SVGSVGElement {
  return svg(REACTION_SHAPES[r], { line: false, size, cls: `reaction-glyph reaction-${r}` });
}
