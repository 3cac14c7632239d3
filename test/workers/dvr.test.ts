// The DVR window inside workerd: a sliding live playlist without PLAYLIST-TYPE (MP-09), parts
// only near the edge (PART-12), delta updates that merge back to the full playlist exactly
// (LLHLS.md §1.7), start-over, objects that stay downloadable (§1.9), and a flat cost: a
// 2-hour window's delta update is the size of a 1-minute window's.
import { env } from 'cloudflare:workers';
import { runDurableObjectAlarm } from 'cloudflare:test';
import { Parser } from 'm3u8-parser';
import { describe, expect, it } from 'vitest';
import { INGEST_PREFIX } from '../../core/contracts/ingest-protocol.ts';
import { AUDIO_INIT, FakeRendition, authorize, expectOk, signed, worker } from './helpers.ts';
import { api, leasedStream, operator, TWO_RUNG_LADDER } from './playback-fixtures.ts';

const op = operator('192.0.2.61');

// eslint-disable-next-line @typescript-eslint/no-explicit-any
type Any = any;

const live = (settings: Record<string, unknown> = {}) => leasedStream(op, settings);

async function segments(rs: FakeRendition[], n: number) {
  for (let i = 0; i < n; i++) for (const r of rs) await r.segment();
}

async function text(path: string): Promise<string> {
  const res = await worker(path);
  expect(res.status, path).toBe(200);
  return res.text();
}

function parse(t: string): Any {
  const p = new Parser();
  p.push(t);
  p.end();
  return p.manifest;
}

interface Seg {
  msn: number;
  uri: string;
  duration: number;
  map: string;
  pdt: string;
  discontinuity: boolean;
  parts: string[];
}

function segmentList(t: string): { mediaSequence: number; discontinuitySequence: number; skipped: number; segments: Seg[] } {
  const m = parse(t);
  const skipped = m.skip?.skippedSegments ?? 0;
  return {
    mediaSequence: m.mediaSequence,
    discontinuitySequence: m.discontinuitySequence,
    skipped,
    segments: m.segments.map((s: Any, i: number) => ({
      msn: m.mediaSequence + skipped + i,
      uri: s.uri,
      duration: s.duration,
      map: s.map?.uri,
      pdt: s.dateTimeString,
      discontinuity: Boolean(s.discontinuity),
      parts: (s.parts ?? []).map((p: Any) => p.uri),
    })),
  };
}

/** A client's merge of a delta update into its previous full playlist (§6.3.7). */
function merge(previousFull: string, delta: string): Seg[] {
  const prev = segmentList(previousFull);
  const d = segmentList(delta);
  const kept: Seg[] = [];
  for (let msn = d.mediaSequence; msn < d.mediaSequence + d.skipped; msn++) {
    const old = prev.segments.find((s) => s.msn === msn);
    if (!old) throw new Error(`the previous playlist lacks skipped segment ${msn}`);
    // Parts of skipped segments have left the playlist (they are > 3 TD from the end).
    kept.push({ ...old, parts: [] });
  }
  return [...kept, ...d.segments];
}

const lines = (t: string) => t.split('\n').filter(Boolean);
/** Everything after the last segment URI: the open segment's parts, the hint, the reports. */
const tail = (t: string) => lines(t).slice(lines(t).findLastIndex((l) => !l.startsWith('#')) + 1);
const header = (t: string) =>
  lines(t).filter((l) => /^#EXT-X-(TARGETDURATION|SERVER-CONTROL|PART-INF|MEDIA-SEQUENCE|DISCONTINUITY-SEQUENCE|START)/.test(l));

describe('DVR window', () => {
  it('streams default to a 2-hour DVR window and 7 days of retention', async () => {
    const created = await api<{ settings: { dvrWindowSeconds: number; retentionDays: number } }>(op, 'POST', '/streams', {});
    expect(created.body.settings.dvrWindowSeconds).toBe(7200);
    expect(created.body.settings.retentionDays).toBe(7);
  });

  it('MP-09 / PART-12: a sliding window with no PLAYLIST-TYPE; parts only near the live edge', async () => {
    const { stream, v, a } = await live();
    await segments([v, a], 12);
    expectOk(await v.nextPart());
    const t = await text(`/live/${stream.id}/v/index.m3u8`);
    expect(t).not.toContain('#EXT-X-PLAYLIST-TYPE');
    expect(t).not.toContain('#EXT-X-ENDLIST');
    const m = segmentList(t);
    expect(m.segments).toHaveLength(12);
    expect(m.mediaSequence).toBe(1);
    // Segments ending within 3 × TD (TD = 1) of the end, counting the open segment's 0.2 s.
    expect(m.segments.filter((s) => s.parts.length > 0).map((s) => s.msn)).toEqual([10, 11, 12]);
    expect(m.segments.slice(0, 9).every((s) => s.parts.length === 0)).toBe(true);
  }, 60_000);

  it('DU-02/DU-03: every delta update merges back into exactly the full playlist, across a reconnection', async () => {
    const { stream, v, a } = await live();
    await segments([v, a], 10);
    const url = `/live/${stream.id}/v/index.m3u8`;
    let rs = [v, a];
    for (let step = 0; step < 16; step++) {
      const previous = await text(url);
      // The client asks for a delta within CAN-SKIP-UNTIL / 2 of its copy: a few parts later.
      for (let k = 0; k < 1 + (step % 3); k++) {
        for (const r of rs) expectOk(await r.nextPart());
        if (rs[0]!.part === 5) for (const r of rs) expectOk(await r.closeSegment());
      }
      if (step === 8) {
        // The publisher reconnects: a new epoch, a discontinuity inside the window.
        const again = (await (await authorize(stream.streamKey, 'node-b')).json()) as { epoch: number; startMsn: number };
        rs = [
          new FakeRendition(stream.id, again.epoch, 'v', again.startMsn),
          new FakeRendition(stream.id, again.epoch, 'a', again.startMsn),
        ];
        expectOk(await rs[0]!.init());
        expectOk(await rs[1]!.init(AUDIO_INIT));
        await segments(rs, 1);
      }
      const full = await text(url);
      const delta = await text(`${url}?_HLS_skip=YES`);
      const d = segmentList(delta);
      expect(d.skipped).toBeGreaterThan(0);
      expect(lines(delta)[1]).toBe('#EXT-X-VERSION:9');
      expect(merge(previous, delta)).toEqual(segmentList(full).segments);
      expect(tail(delta)).toEqual(tail(full));
      expect(header(delta)).toEqual(header(full));
      expect(delta).not.toContain('#EXT-X-PLAYLIST-TYPE');
      // DU-03: every skipped segment ends at or before E − CAN-SKIP-UNTIL (6 s).
      const all = segmentList(full).segments;
      let t = 0;
      const ends = all.map((s) => (t = Math.round((t + s.duration) * 1e5) / 1e5));
      const boundary = ends.at(-1)! - 6;
      ends.forEach((e, i) => (i < d.skipped ? expect(e).toBeLessThanOrEqual(boundary + 1e-9) : expect(e).toBeGreaterThan(boundary)));
    }
  }, 120_000);

  it('flat cost: a 2-hour window answers a delta update with what a 1-minute window does', async () => {
    // One rendition, one-part segments: the window fills with a third of the pushes.
    const ladder = [TWO_RUNG_LADDER[0]];
    const long = await live({ dvrWindowSeconds: 7200, ladder });
    const short = await live({ dvrWindowSeconds: 20, ladder });
    const fast = [long, short].map((s) => new FakeRendition(s.stream.id, s.lease.epoch, 'v', s.lease.startMsn, 1));
    for (let i = 0; i < 80; i++) for (const r of fast) await r.segment(1);
    for (const r of fast) await r.segment(5);
    const longFull = await text(`/live/${long.stream.id}/v/index.m3u8`);
    const shortFull = await text(`/live/${short.stream.id}/v/index.m3u8`);
    expect(segmentList(longFull).segments).toHaveLength(81);
    expect(segmentList(shortFull).segments.length).toBeLessThanOrEqual(22);
    const longDelta = await text(`/live/${long.stream.id}/v/index.m3u8?_HLS_msn=81&_HLS_skip=YES`);
    const shortDelta = await text(`/live/${short.stream.id}/v/index.m3u8?_HLS_msn=81&_HLS_skip=YES`);
    // The same segments listed; the texts differ only in MEDIA-SEQUENCE and SKIPPED-SEGMENTS.
    expect(segmentList(longDelta).segments).toEqual(segmentList(shortDelta).segments);
    expect(Math.abs(longDelta.length - shortDelta.length)).toBeLessThanOrEqual(4);
    expect(longDelta.length).toBeLessThan(4096);
    expect(longFull.length).toBeGreaterThan(3 * longDelta.length);
  }, 120_000);

  it('start-over: ?start=beginning opens at the oldest segment of the window, with EXT-X-START', async () => {
    const { stream, v, a } = await live({ dvrWindowSeconds: 10 });
    await segments([v, a], 20);
    const normal = segmentList(await text(`/live/${stream.id}/v/index.m3u8`));
    const t = await text(`/live/${stream.id}/v/index.m3u8?start=beginning`);
    expect(t).toContain('#EXT-X-START:TIME-OFFSET=0,PRECISE=YES\n');
    const m = segmentList(t);
    expect(m.segments.map((s) => s.msn)).toEqual(normal.segments.map((s) => s.msn));
    expect(parse(t).start).toEqual({ timeOffset: 0, precise: true });
    // The multivariant playlist carries the start point to every rendition.
    const mv = await text(`/live/${stream.id}/index.m3u8?start=beginning`);
    expect(mv).toContain('v/index.m3u8?start=beginning\n');
    expect(mv).toContain('URI="a/index.m3u8?start=beginning"');
  }, 60_000);

  it('start-over: ?start=<program date time> begins at the segment holding it, numbering unchanged', async () => {
    const { stream, v, a } = await live();
    await segments([v, a], 6);
    // A reconnection, so the start-over playlist begins after a discontinuity.
    const again = (await (await authorize(stream.streamKey, 'node-b')).json()) as { epoch: number; startMsn: number };
    const v2 = new FakeRendition(stream.id, again.epoch, 'v', again.startMsn);
    const a2 = new FakeRendition(stream.id, again.epoch, 'a', again.startMsn);
    v2.pdt = a2.pdt = v.pdt + 5000;
    expectOk(await v2.init());
    expectOk(await a2.init(AUDIO_INIT));
    await segments([v2, a2], 6);
    const full = segmentList(await text(`/live/${stream.id}/v/index.m3u8`));
    const target = full.segments[8]!; // MSN 9, second segment of the new epoch
    const at = new Date(Date.parse(target.pdt) + 500).toISOString();
    const t = await text(`/live/${stream.id}/v/index.m3u8?start=${at}`);
    const m = segmentList(t);
    expect(m.mediaSequence).toBe(9);
    expect(m.segments[0]).toEqual({ ...target, parts: target.parts });
    expect(m.discontinuitySequence).toBe(1);
    // The start of the new epoch: its DISCONTINUITY is listed, and the sequence says it is the first.
    const atDisc = segmentList(await text(`/live/${stream.id}/v/index.m3u8?start=${full.segments[6]!.pdt}`));
    expect(atDisc.mediaSequence).toBe(7);
    expect(atDisc.discontinuitySequence).toBe(0);
    expect(atDisc.segments[0]!.discontinuity).toBe(true);
    // Blocking and delta directives work on a start-over playlist too.
    const blocked = await worker(`/live/${stream.id}/v/index.m3u8?start=beginning&_HLS_msn=12&_HLS_skip=YES`);
    expect(blocked.status).toBe(200);
    expect(await blocked.text()).toContain('#EXT-X-START:TIME-OFFSET=0,PRECISE=YES');
    for (const bad of ['yesterday', '2026-11-21', 'beginning&start=beginning']) {
      const res = await worker(`/live/${stream.id}/v/index.m3u8?start=${bad}`);
      expect(res.status, bad).toBe(400);
      expect(((await res.json()) as { error: { code: string } }).error.code).toBe('invalid_start');
    }
  }, 60_000);

  it('§1.9 / PART-13: a segment and its parts stay downloadable after sliding out of the window', async () => {
    const { stream, lease, v, a } = await live({ dvrWindowSeconds: 0 });
    await segments([v, a], 15);
    const m = segmentList(await text(`/live/${stream.id}/v/index.m3u8`));
    // "Live edge only": 3 × TD, but never fewer than 7 segments (MUT-03).
    expect(m.mediaSequence).toBe(9);
    expect(m.segments).toHaveLength(7);
    for (const file of ['1.m4s', '1.0.m4s', 'init.mp4']) {
      const res = await worker(`/live/${stream.id}/v/${lease.epoch}/${file}`);
      expect(res.status, file).toBe(200);
      await res.arrayBuffer();
    }
  }, 60_000);

  it('a publisher coming back after the stream ended starts a new window (start-over = this broadcast)', async () => {
    const { stream, lease, v, a } = await live();
    await segments([v, a], 3);
    expectOk(await signed('POST', `${INGEST_PREFIX}/${stream.id}/${lease.epoch}/end`, null));
    await new Promise((r) => setTimeout(r, 1100));
    await runDurableObjectAlarm(env.STREAM_STATE.getByName(stream.id));
    expect(parse(await text(`/live/${stream.id}/v/index.m3u8`)).endList).toBe(true);
    const again = (await (await authorize(stream.streamKey)).json()) as { epoch: number; startMsn: number };
    expect(again.startMsn).toBe(4);
    const v2 = new FakeRendition(stream.id, again.epoch, 'v', again.startMsn);
    const a2 = new FakeRendition(stream.id, again.epoch, 'a', again.startMsn);
    expectOk(await v2.init());
    expectOk(await a2.init(AUDIO_INIT));
    await segments([v2, a2], 2);
    const t = await text(`/live/${stream.id}/v/index.m3u8?start=beginning`);
    const m = segmentList(t);
    expect(m.mediaSequence).toBe(4);
    expect(m.segments.map((s) => s.uri)).toEqual([`${again.epoch}/4.m4s`, `${again.epoch}/5.m4s`]);
    expect(parse(t).endList).toBeFalsy();
  }, 60_000);
});
