// What the watch page's build puts on the path to the first frame (scripts/build-assets.mjs): the
// first bundle carries the player and hls.js and nothing social or real-time; the WHEP client is a
// bundle of its own that only real-time mode loads; no bundle carries zod (the
// browser checks room frames by hand, core/rooms/room-wire.ts); names carry content hashes so
// the Worker can serve them as immutable, and the HTML names exactly what the build wrote.
import { mkdtempSync, readFileSync, rmSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
// @ts-expect-error: a plain .mjs build script without type declarations
import { buildPages } from '../../scripts/build-assets.mjs';
import { readServerFrame } from '../../core/rooms/room-wire.ts';

interface Bundle {
  file: string;
  url: string;
  inputs: string[];
}
let out: string;
let built: {
  watch: Bundle;
  together: Bundle;
  realtime: Bundle;
  voice: Bundle;
  css: Bundle;
  html: string;
  golive: { golive: Bundle; css: Bundle; html: string };
  site: { front: Bundle; replay: Bundle; html: { index: string; replay: string } };
};
let golive: { golive: Bundle; css: Bundle; html: string };

beforeAll(async () => {
  out = mkdtempSync(join(tmpdir(), 'edgelive-bundle-'));
  built = await buildPages({ outdir: out });
  golive = built.golive;
}, 60_000);
afterAll(() => rmSync(out, { recursive: true, force: true }));

const from = (b: Bundle, re: RegExp) => b.inputs.filter((f) => re.test(f));

describe('the watch page build', () => {
  it('puts the player and hls.js on the critical path, and nothing social', () => {
    expect(from(built.watch, /node_modules\/hls\.js\//).length).toBeGreaterThan(0);
    expect(from(built.watch, /public\/src\/watch\/player\.ts$/)).toHaveLength(1);
    expect(
      from(
        built.watch,
        /rooms-client|watch\/(chat|polls|reactions|together|qoe|in-step|dvr-tools)\.ts|core\/player\/in-step\.ts|public\/src\/party\/|core\/rooms\//,
      ),
    ).toEqual([]);
    expect(from(built.watch, /watch\/(realtime|whep-client)\.ts|realtime-fallback/)).toEqual([]);
  });

  it('loads the WHEP client only for real time: its own bundle, imported by the toggle by its hashed name', () => {
    expect(from(built.realtime, /public\/src\/watch\/whep-client\.ts$/)).toHaveLength(1);
    expect(from(built.together, /public\/src\/watch\/realtime\.ts$/)).toHaveLength(1);
    expect(from(built.together, /whep-client/)).toEqual([]);
    expect(from(built.realtime, /node_modules\//)).toEqual([]);
    expect(built.realtime.url).toMatch(/^\/dist\/realtime-[A-Z0-9]{8}\.js$/);
    expect(readFileSync(built.together.file, 'utf8')).toContain(JSON.stringify(built.realtime.url));
    expect(readFileSync(built.watch.file, 'utf8')).not.toContain(built.realtime.url);
  });

  it('keeps zod out of every browser bundle', () => {
    for (const b of [built.watch, built.together, built.realtime, built.voice]) expect(from(b, /node_modules\/zod\//), b.url).toEqual([]);
    // The second bundle is what the room needs, without a second copy of hls.js.
    expect(from(built.together, /public\/src\/rooms-client\.ts$/)).toHaveLength(1);
    expect(from(built.together, /node_modules\/hls\.js\//)).toEqual([]);
  });

  it('keeps party voice in its own bundle, which the party card loads by its hashed name', () => {
    expect(from(built.voice, /public\/src\/voice\/voice-mesh\.ts$/)).toHaveLength(1);
    for (const b of [built.watch, built.together])
      expect(from(b, /public\/src\/voice\/|core\/rooms\/voice-(mesh-plan|activity)/), b.url).toEqual([]);
    expect(built.voice.url).toMatch(/^\/dist\/voice-[A-Z0-9]{8}\.js$/);
    expect(readFileSync(built.together.file, 'utf8')).toContain(JSON.stringify(built.voice.url));
  });

  it('names every file by its content, and the page loads the second bundle by that name', () => {
    expect(built.watch.url).toMatch(/^\/dist\/watch-[A-Z0-9]{8}\.js$/);
    expect(built.together.url).toMatch(/^\/dist\/together-[A-Z0-9]{8}\.js$/);
    expect(built.css.url).toMatch(/^\/dist\/app-[A-Z0-9]{8}\.css$/);
    const html = readFileSync(built.html, 'utf8');
    expect(html).toContain(`<link rel="stylesheet" href="${built.css.url}">`);
    expect(html).toContain(`<script type="module" src="${built.watch.url}"></script>`);
    expect(readFileSync(built.watch.file, 'utf8')).toContain(JSON.stringify(built.together.url));
  });
});

describe('the front door build', () => {
  it('is a small script of its own: no hls.js, no zod, nothing of the room', () => {
    const { front } = built.site;
    expect(front.url).toMatch(/^\/dist\/front-[A-Z0-9]{8}\.js$/);
    expect(from(front, /node_modules\//)).toEqual([]);
    expect(from(front, /rooms-client|core\/rooms\/|watch\/player\.ts/)).toEqual([]);
    // A bound the build guarantees by what it holds: the page's code, the DOM helpers, the icons.
    expect(statSync(front.file).size).toBeLessThan(16 * 1024);
  });

  it('shares the watch page’s stylesheet, inlines its own rules, and leaves the listing’s slot for the Worker', () => {
    const html = readFileSync(built.site.html.index, 'utf8');
    expect(html).toContain(`<link rel="stylesheet" href="${built.css.url}">`);
    expect(html).toContain(`<script type="module" src="${built.site.front.url}"></script>`);
    expect(html).toMatch(/<style>\.fd\{/);
    expect(html).toContain('<!--directory-->');
    const replay = readFileSync(built.site.html.replay, 'utf8');
    expect(replay).toContain(`<script type="module" src="${built.site.replay.url}"></script>`);
    expect(from(built.site.replay, /node_modules\/zod\//)).toEqual([]);
  });
});

describe('the Go-live page build', () => {
  it('is its own bundle: the WHIP client without the player, hls.js or zod, and nothing of it in the watch page', () => {
    expect(from(golive.golive, /public\/src\/golive\/whip-client\.ts$/)).toHaveLength(1);
    expect(from(golive.golive, /node_modules\/(hls\.js|zod)\/|public\/src\/watch\/(player|page|together)\.ts$/)).toEqual([]);
    for (const b of [built.watch, built.together]) expect(from(b, /public\/src\/golive/), b.url).toEqual([]);
  });

  it("names its files by their content beside the watch page's (the same app.css), in the HTML the Worker serves", () => {
    expect(golive.golive.url).toMatch(/^\/dist\/golive-[A-Z0-9]{8}\.js$/);
    expect(golive.css.url).toMatch(/^\/dist\/golive-[A-Z0-9]{8}\.css$/);
    const html = readFileSync(golive.html, 'utf8');
    expect(html).toContain(`<link rel="stylesheet" href="${built.css.url}">`);
    expect(html).toContain(`<link rel="stylesheet" href="${golive.css.url}">`);
    expect(html).toContain(`<script type="module" src="${golive.golive.url}"></script>`);
    // Built after the watch page into the same folder, it leaves the watch page's files there.
    expect(readFileSync(built.watch.file, 'utf8').length).toBeGreaterThan(0);
  });
});

describe('readServerFrame: the browser’s hand check of room frames', () => {
  it('accepts the frames a room sends', () => {
    const batch = { type: 'batch', epoch: 'e1', seq: 4, t: 1, events: [{ kind: 'slow', seconds: 5 }] };
    expect(readServerFrame(JSON.stringify(batch))).toEqual(batch);
    expect(readServerFrame('{"type":"pong","t0":1,"t1":2,"t2":3}')).toEqual({ type: 'pong', t0: 1, t1: 2, t2: 3 });
    expect(readServerFrame('{"type":"ack","rid":"r1","id":7}')).toEqual({ type: 'ack', rid: 'r1', id: 7 });
    const signal = { type: 'voice.signal', from: 'c1', uid: 'a:x', signal: { type: 'offer', sdp: 'v=0' } };
    expect(readServerFrame(JSON.stringify(signal))).toEqual(signal);
    const sfu = { type: 'voice.sfu', endpoint: 'https://node/sfu', token: 't', expiresAt: 1 };
    expect(readServerFrame(JSON.stringify(sfu))).toEqual(sfu);
  });

  it('drops garbled or foreign frames instead of applying them', () => {
    for (const text of [
      'not json',
      '[]',
      'null',
      '{"type":"hello"}',
      '{"type":"batch","epoch":"e1","seq":"4","events":[]}',
      '{"type":"batch","epoch":"e1","seq":4}',
      '{"type":"state","epoch":"e1","seq":1}',
      '{"type":"pong","t0":1}',
      '{"type":"voice.signal","from":"c1","uid":"a:x"}',
      '{"type":"voice.sfu","endpoint":"x"}',
    ]) {
      expect(readServerFrame(text), text).toBeNull();
    }
  });
});
