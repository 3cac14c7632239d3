// The live edge where segmentation and publishers change, inside workerd: the preload hint at a
// segment boundary and across a reconnection names a part that will exist (PH-01, PH-05), a
// rendition that lagged at a reconnection keeps its MSNs with EXT-X-GAP segments (SEG-04, MUT-04),
// and a rung the publisher's input cannot feed is left out of the presentation.
import { env } from 'cloudflare:workers';
import { evictDurableObject, runDurableObjectAlarm } from 'cloudflare:test';
import { Parser } from 'm3u8-parser';
import { describe, expect, it } from 'vitest';
import { INGEST_PREFIX } from '../../core/contracts/ingest-protocol.ts';
import { AUDIO_INIT, FakeRendition, VIDEO_INIT, authorize, createStream, expectOk, push, signed, worker } from './helpers.ts';

// eslint-disable-next-line @typescript-eslint/no-explicit-any
type Any = any;

const LADDER = [
  { name: 'v', kind: 'video', width: 640, height: 360, videoBitrate: 800_000 },
  { name: 'a', kind: 'audio', audioBitrate: 128_000 },
];

function parse(text: string): Any {
  const p = new Parser();
  p.push(text);
  p.end();
  return p.manifest;
}

async function text(path: string): Promise<string> {
  const res = await worker(path);
  const body = await res.text();
  expect(res.status, `${path}: ${body}`).toBe(200);
  return body;
}

async function lease(streamKey: string, nodeId = 'node-a') {
  const res = await authorize(streamKey, nodeId);
  expect(res.status).toBe(200);
  return (await res.json()) as { streamId: string; epoch: number; startMsn: number };
}

/** A publisher's renditions of one epoch, inits pushed (declaring `renditions` when given). */
async function publisher(streamId: string, l: { epoch: number; startMsn: number }, names: string[] = ['v', 'a'], declare = false) {
  const out: Record<string, FakeRendition> = {};
  for (const name of names) {
    const r = new FakeRendition(streamId, l.epoch, name, l.startMsn);
    const init = name === 'a' ? AUDIO_INIT : VIDEO_INIT;
    expectOk(await r.init(declare ? { ...init, renditions: names } : init));
    out[name] = r;
  }
  return out;
}

/** The final part of the open segment, marked as such (what the transcoder's chunker knows). */
async function finalPart(r: FakeRendition): Promise<void> {
  const res = await push(r.streamId, r.epoch, r.name, `${r.msn}.${r.part}.m4s`, {
    duration: r.partDuration,
    independent: r.part === 0,
    programDateTime: r.pdt + r.part * r.partDuration * 1000,
    final: true,
  });
  expectOk(res);
  r.part++;
}

const hints = (t: string) => t.split('\n').filter((l) => l.startsWith('#EXT-X-PRELOAD-HINT'));
const settle = () => new Promise((r) => setTimeout(r, 50));

describe('PH-01/PH-05: the preload hint at a segment boundary', { timeout: 30_000 }, () => {
  it('once the final part of a segment is out, the hint names part 0 of the next MSN, before the segment push', async () => {
    const stream = await createStream({ ladder: LADDER });
    const l = await lease(stream.streamKey);
    const { v } = await publisher(stream.id, l, ['v']);
    await v!.segment();
    for (let i = 0; i < 4; i++) expectOk(await v!.nextPart());
    expect(hints(await text(`/live/${stream.id}/v/index.m3u8`))).toEqual([`#EXT-X-PRELOAD-HINT:TYPE=PART,URI="${l.epoch}/2.4.m4s"`]);
    await finalPart(v!);
    const t = await text(`/live/${stream.id}/v/index.m3u8`);
    expect(hints(t)).toEqual([`#EXT-X-PRELOAD-HINT:TYPE=PART,URI="${l.epoch}/3.0.m4s"`]);
    // Segment 2 is still open (its push comes next): its five parts, no EXTINF yet.
    const m = parse(t);
    expect(m.segments).toHaveLength(1);
    expect(m.preloadSegment.parts).toHaveLength(5);
    // A part after the final one will never exist: 404 at once, not a 3 × TD hold.
    const t0 = Date.now();
    expect((await worker(`/live/${stream.id}/v/${l.epoch}/2.5.m4s`)).status).toBe(404);
    expect(Date.now() - t0).toBeLessThan(1000);
  });

  it('the hinted part and a blocking reload for _HLS_msn=L+1&_HLS_part=0 are held across the segment push, answered with that part', async () => {
    const stream = await createStream({ ladder: LADDER });
    const l = await lease(stream.streamKey);
    const { v } = await publisher(stream.id, l, ['v']);
    await v!.segment();
    for (let i = 0; i < 4; i++) expectOk(await v!.nextPart());
    await finalPart(v!);
    const hinted = worker(`/live/${stream.id}/v/${l.epoch}/3.0.m4s`);
    const blocked = worker(`/live/${stream.id}/v/index.m3u8?_HLS_msn=3&_HLS_part=0`);
    // hls.js asks for the next index of the last listed part: BR-06 makes it part 0 of MSN 3.
    const hlsjs = worker(`/live/${stream.id}/v/index.m3u8?_HLS_msn=2&_HLS_part=5`);
    await settle();
    expectOk(await v!.closeSegment());
    await settle();
    expectOk(await v!.nextPart());
    const [part, reload, rollover] = await Promise.all([hinted, blocked, hlsjs]);
    expect(part.status).toBe(200);
    await part.arrayBuffer();
    for (const res of [reload, rollover]) {
      expect(res.status).toBe(200);
      const t = await res.text();
      expect(t).toContain(`#EXT-X-PART:DURATION=0.2,URI="${l.epoch}/3.0.m4s",INDEPENDENT=YES`);
      expect(parse(t).segments.map((s: Any) => s.uri)).toEqual([`${l.epoch}/1.m4s`, `${l.epoch}/2.m4s`]);
    }
  });

  it("after a reconnection the hint names the new epoch's first part and its init, and that part is held until it exists", async () => {
    const stream = await createStream({ ladder: LADDER });
    const l1 = await lease(stream.streamKey);
    const { v } = await publisher(stream.id, l1, ['v']);
    await v!.segment();
    const l2 = await lease(stream.streamKey, 'node-b');
    expect(l2.startMsn).toBe(2);
    const t = await text(`/live/${stream.id}/v/index.m3u8`);
    expect(hints(t)).toEqual([
      `#EXT-X-PRELOAD-HINT:TYPE=MAP,URI="${l2.epoch}/init.mp4"`,
      `#EXT-X-PRELOAD-HINT:TYPE=PART,URI="${l2.epoch}/2.0.m4s"`,
    ]);
    const hinted = worker(`/live/${stream.id}/v/${l2.epoch}/2.0.m4s`);
    await settle();
    const { v: v2 } = await publisher(stream.id, l2, ['v']);
    expectOk(await v2!.nextPart());
    const res = await hinted;
    expect(res.status).toBe(200);
    await res.arrayBuffer();
    const after = parse(await text(`/live/${stream.id}/v/index.m3u8`));
    expect(after.preloadSegment.map.uri).toBe(`${l2.epoch}/init.mp4`);
    expect(after.preloadSegment.parts[0].uri).toBe(`${l2.epoch}/2.0.m4s`);
  });
});

describe('SEG-04: a rendition that lagged at a reconnection keeps every MSN, as EXT-X-GAP', { timeout: 30_000 }, () => {
  /** Video has segments 1 and 2 (2 open with two parts), audio only segment 1, when node-b takes over. */
  async function laggingAudio() {
    const stream = await createStream({ ladder: LADDER });
    const l1 = await lease(stream.streamKey);
    const { v, a } = await publisher(stream.id, l1);
    await v!.segment();
    await a!.segment();
    expectOk(await v!.nextPart());
    expectOk(await v!.nextPart());
    const l2 = await lease(stream.streamKey, 'node-b');
    const p2 = await publisher(stream.id, l2);
    await p2.v!.segment();
    await p2.a!.segment();
    return { stream, l1, l2, p2 };
  }

  it("the audio playlist lists MSN 2 as a gap with the video's EXTINF, and both renditions number every segment alike", async () => {
    const { stream, l1, l2 } = await laggingAudio();
    expect(l2.startMsn).toBe(3);
    const vt = await text(`/live/${stream.id}/v/index.m3u8`);
    const at = await text(`/live/${stream.id}/a/index.m3u8`);
    expect(at).toContain(`#EXT-X-GAP\n#EXTINF:0.4,\n${l1.epoch}/2.m4s\n`);
    expect(vt).not.toContain('#EXT-X-GAP');
    const [vm, am] = [parse(vt), parse(at)];
    for (const m of [vm, am]) {
      expect(m.mediaSequence).toBe(1);
      expect(m.discontinuitySequence).toBe(0);
      expect(m.segments.map((s: Any) => s.uri)).toEqual([`${l1.epoch}/1.m4s`, `${l1.epoch}/2.m4s`, `${l2.epoch}/3.m4s`]);
      expect(m.segments.map((s: Any) => s.duration)).toEqual([1, 0.4, 1]);
      expect(m.segments.map((s: Any) => Boolean(s.discontinuity))).toEqual([false, false, true]);
      expect(m.segments.map((s: Any) => s.dateTimeString)).toEqual(vm.segments.map((s: Any) => s.dateTimeString));
    }
    // Rendition reports agree: the same MSN is the same media in each.
    expect(vm.renditionReports).toEqual([expect.objectContaining({ uri: '../a/index.m3u8', lastMsn: 3, lastPart: 4 })]);
    expect(am.renditionReports).toEqual([expect.objectContaining({ uri: '../v/index.m3u8', lastMsn: 3, lastPart: 4 })]);
    // The gap's URI is never published: a 404 at once (SEG-04 allows it), never held.
    expect((await worker(`/live/${stream.id}/a/${l1.epoch}/2.m4s`)).status).toBe(404);
  });

  it('a lag inside a segment: the open audio segment closes short and the MSNs it never reached become gaps', async () => {
    const stream = await createStream({ ladder: LADDER });
    const l1 = await lease(stream.streamKey);
    const { v, a } = await publisher(stream.id, l1);
    await v!.segment();
    await v!.segment();
    expectOk(await v!.nextPart());
    await a!.segment();
    expectOk(await a!.nextPart());
    const l2 = await lease(stream.streamKey, 'node-b');
    expect(l2.startMsn).toBe(4);
    const am = parse(await text(`/live/${stream.id}/a/index.m3u8`));
    expect(am.segments.map((s: Any) => [s.uri, s.duration])).toEqual([
      [`${l1.epoch}/1.m4s`, 1],
      [`${l1.epoch}/2.m4s`, 0.2],
      [`${l1.epoch}/3.m4s`, 0.2],
    ]);
    expect(await text(`/live/${stream.id}/a/index.m3u8`)).toContain(`#EXT-X-GAP\n#EXTINF:0.2,\n${l1.epoch}/3.m4s\n`);
    // The hint names the new epoch's first part in both renditions.
    for (const r of ['v', 'a'])
      expect(hints(await text(`/live/${stream.id}/${r}/index.m3u8`)).at(-1)).toContain(`URI="${l2.epoch}/4.0.m4s"`);
  });

  it('gaps survive eviction of the Durable Object and are listed by the recording (EXT-X-GAP in the VOD)', async () => {
    const { stream, l2 } = await laggingAudio();
    const before = await text(`/live/${stream.id}/a/index.m3u8`);
    await evictDurableObject(env.STREAM_STATE.getByName(stream.id));
    expect(await text(`/live/${stream.id}/a/index.m3u8`)).toBe(before);
    expectOk(await signed('POST', `${INGEST_PREFIX}/${stream.id}/${l2.epoch}/end`, null));
    await new Promise((r) => setTimeout(r, 1100));
    await runDurableObjectAlarm(env.STREAM_STATE.getByName(stream.id));
    const listed = (await (
      await worker(`/api/streams/${stream.id}/recordings`, { headers: { authorization: 'Bearer test-admin-token' } })
    ).json()) as { recordings: Array<{ id: string }> };
    const rec = listed.recordings[0]!;
    const vod = await text(`/vod/${rec.id}/a/index.m3u8`);
    expect(vod).toContain('#EXT-X-GAP\n#EXTINF:0.4,\n');
    expect(parse(vod).segments).toHaveLength(3);
  });
});

describe('a rung the input cannot feed is left out of the presentation', { timeout: 30_000 }, () => {
  it('a video-only epoch (declared by its inits) lists no audio, though the audio rendition has older media', async () => {
    const stream = await createStream({ ladder: LADDER });
    const l1 = await lease(stream.streamKey);
    const p1 = await publisher(stream.id, l1, ['v', 'a'], true);
    await p1.v!.segment();
    await p1.a!.segment();
    expect(await text(`/live/${stream.id}/index.m3u8`)).toContain('URI="a/index.m3u8"');
    // The publisher comes back without audio: its transcoder publishes (and declares) only v.
    const l2 = await lease(stream.streamKey, 'node-b');
    const p2 = await publisher(stream.id, l2, ['v'], true);
    await p2.v!.segment();
    const mv = await text(`/live/${stream.id}/index.m3u8`);
    expect(mv).not.toContain('#EXT-X-MEDIA');
    expect(mv).not.toContain('AUDIO=');
    expect(mv).toContain('CODECS="avc1.64001f"');
    const vm = parse(await text(`/live/${stream.id}/v/index.m3u8`));
    expect(vm.renditionReports ?? []).toEqual([]);
  });

  it("audio that comes back after a video-only epoch: the MSNs it missed are gaps, discontinuities line up with video's", async () => {
    const stream = await createStream({ ladder: LADDER });
    const l1 = await lease(stream.streamKey);
    const p1 = await publisher(stream.id, l1, ['v', 'a'], true);
    await p1.v!.segment();
    await p1.a!.segment();
    const l2 = await lease(stream.streamKey, 'node-b');
    const p2 = await publisher(stream.id, l2, ['v'], true);
    await p2.v!.segment();
    await p2.v!.segment();
    const l3 = await lease(stream.streamKey, 'node-a');
    expect(l3.startMsn).toBe(4);
    const p3 = await publisher(stream.id, l3, ['v', 'a'], true);
    await p3.v!.segment();
    await p3.a!.segment();
    expect(await text(`/live/${stream.id}/index.m3u8`)).toContain('URI="a/index.m3u8"');
    const at = await text(`/live/${stream.id}/a/index.m3u8`);
    const [vm, am] = [parse(await text(`/live/${stream.id}/v/index.m3u8`)), parse(at)];
    expect(am.segments.map((s: Any) => s.uri)).toEqual([
      `${l1.epoch}/1.m4s`,
      `${l1.epoch}/2.m4s`,
      `${l1.epoch}/3.m4s`,
      `${l3.epoch}/4.m4s`,
    ]);
    expect(at.match(/#EXT-X-GAP/g)).toHaveLength(2);
    // The same discontinuities as video (epoch 2 began at MSN 2, epoch 3 at 4), and no MAP for an
    // audio init that epoch 2 never had.
    for (const m of [vm, am]) expect(m.segments.map((s: Any) => Boolean(s.discontinuity))).toEqual([false, true, false, true]);
    expect(at).not.toContain(`${l2.epoch}/init.mp4`);
    expect(am.segments.map((s: Any) => s.duration)).toEqual(vm.segments.map((s: Any) => s.duration));
  });

  it('an audio-only publisher on a fresh broadcast gets an audio-only presentation', async () => {
    const stream = await createStream({ ladder: LADDER });
    const l = await lease(stream.streamKey);
    const { a } = await publisher(stream.id, l, ['a'], true);
    await a!.segment();
    const mv = await text(`/live/${stream.id}/index.m3u8`);
    expect(mv).toBe(
      `#EXTM3U\n#EXT-X-VERSION:6\n#EXT-X-INDEPENDENT-SEGMENTS\n#EXT-X-STREAM-INF:BANDWIDTH=140800,AVERAGE-BANDWIDTH=128000,CODECS="mp4a.40.2"\na/index.m3u8\n`,
    );
    expect(parse(await text(`/live/${stream.id}/a/index.m3u8`)).segments).toHaveLength(1);
  });
});

describe("gaps older than the other renditions' live windows", () => {
  it('a rung missing for longer than the window is filled from the DVR index, never skipping an MSN', async () => {
    const s = await createStream({ ladder: LADDER, dvrWindowSeconds: 0 });
    const l1 = await lease(s.streamKey);
    const v1 = new FakeRendition(s.id, l1.epoch, 'v', l1.startMsn);
    const a1 = new FakeRendition(s.id, l1.epoch, 'a', l1.startMsn);
    expectOk(await v1.init({ ...VIDEO_INIT, renditions: ['v', 'a'] }));
    expectOk(await a1.init({ ...AUDIO_INIT, renditions: ['v', 'a'] }));
    for (let i = 0; i < 3; i++) {
      await v1.segment();
      await a1.segment();
    }
    // A video-only publisher, long enough to slide past any live window, then audio comes back.
    const l2 = await lease(s.streamKey, 'node-b');
    const v2 = new FakeRendition(s.id, l2.epoch, 'v', l2.startMsn);
    expectOk(await v2.init({ ...VIDEO_INIT, renditions: ['v'] }));
    for (let i = 0; i < 20; i++) await v2.segment();
    const l3 = await lease(s.streamKey, 'node-c');
    const a3 = new FakeRendition(s.id, l3.epoch, 'a', l3.startMsn);
    expectOk(await a3.init({ ...AUDIO_INIT, renditions: ['v', 'a'] }));
    await a3.segment();
    const m = parse(await text(`/live/${s.id}/a/index.m3u8`));
    // Segments are numbered by position from MEDIA-SEQUENCE: the last one must be the new epoch's first.
    const uris: string[] = m.segments.map((x: { uri: string }) => x.uri);
    expect(m.mediaSequence + uris.length - 1, uris.join(' ')).toBe(l3.startMsn);
    expect(uris.at(-1)).toBe(`${l3.epoch}/${l3.startMsn}.m4s`);
  });
});
