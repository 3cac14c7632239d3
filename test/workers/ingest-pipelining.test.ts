// Pipelined ingest inside workerd: the transcoder keeps a few pushes per rendition in flight, so
// they can reach StreamState out of order. A push that comes ahead of its predecessor is stored
// and held; announcements (and acknowledgements) keep the rendition's order, epochs still fence.
import { abortAllDurableObjects, runDurableObjectAlarm } from 'cloudflare:test';
import { env } from 'cloudflare:workers';
import { Parser } from 'm3u8-parser';
import { describe, expect, it } from 'vitest';
import { INGEST_PREFIX } from '../../core/contracts/ingest-protocol.ts';
import { AUDIO_INIT, FakeRendition, authorize, createStream, expectOk, push, signed, worker } from './helpers.ts';

async function liveStream() {
  const stream = await createStream({
    ladder: [
      { name: 'v', kind: 'video', width: 640, height: 360, videoBitrate: 800_000 },
      { name: 'a', kind: 'audio', audioBitrate: 128_000 },
    ],
  });
  const lease = (await (await authorize(stream.streamKey)).json()) as { epoch: number; startMsn: number };
  const v = new FakeRendition(stream.id, lease.epoch, 'v', lease.startMsn);
  expectOk(await v.init());
  expectOk(await new FakeRendition(stream.id, lease.epoch, 'a', lease.startMsn).init(AUDIO_INIT));
  return { stream, lease, v };
}

const partMeta = (part: number) => ({
  duration: 0.2,
  independent: part === 0,
  programDateTime: Date.UTC(2026, 10, 21, 12, 0, 0) + part * 200,
});
const segmentMeta = (parts: number) => ({
  duration: Math.round(parts * 0.2 * 1e6) / 1e6,
  partCount: parts,
  programDateTime: Date.UTC(2026, 10, 21, 12, 0, 0),
});

async function playlist(streamId: string) {
  const p = new Parser();
  p.push(await (await worker(`/live/${streamId}/v/index.m3u8`)).text());
  p.end();
  return p.manifest as {
    segments: Array<{ uri: string; duration: number; parts?: Array<{ uri: string }> }>;
    preloadSegment?: { parts?: Array<{ uri: string }> };
  };
}

/** URIs of every part listed, complete segments first, then the open one. */
async function listedParts(streamId: string): Promise<string[]> {
  const m = await playlist(streamId);
  return [...m.segments.flatMap((s) => s.parts ?? []), ...(m.preloadSegment?.parts ?? [])].map((p) => p.uri);
}

/** Settles within `ms`? (A held push must not be answered before its predecessor.) */
async function settlesWithin<T>(p: Promise<T>, ms: number): Promise<boolean> {
  return Promise.race([p.then(() => true), new Promise<boolean>((r) => setTimeout(() => r(false), ms))]);
}

describe('pipelined pushes', () => {
  it('a part that arrives before its predecessor is stored, held, and announced right after it', async () => {
    const { stream, lease } = await liveStream();
    const early = push(stream.id, lease.epoch, 'v', '1.1.m4s', partMeta(1));
    expect(await settlesWithin(early, 150)).toBe(false);
    // Stored (durable) but not announced: the playlist does not list it.
    expect(await env.MEDIA.head(`live/${stream.id}/${lease.epoch}/v/1.1.m4s`)).not.toBeNull();
    expect((await worker(`/live/${stream.id}/v/index.m3u8`)).status).toBe(404);
    const first = await push(stream.id, lease.epoch, 'v', '1.0.m4s', partMeta(0));
    expect(first.status).toBe(201);
    const held = await early;
    expect(held.status).toBe(201);
    expect(await held.json()).toEqual({ ok: true, duplicate: false });
    expect(await listedParts(stream.id)).toEqual(['1/1.0.m4s', '1/1.1.m4s']);
  });

  it('three pushes in flight in reverse order are all acknowledged and announced in order', async () => {
    const { stream, lease } = await liveStream();
    const answers = [2, 1, 0].map((part) => push(stream.id, lease.epoch, 'v', `1.${part}.m4s`, partMeta(part)));
    expect((await Promise.all(answers)).map((r) => r.status)).toEqual([201, 201, 201]);
    expect(await listedParts(stream.id)).toEqual(['1/1.0.m4s', '1/1.1.m4s', '1/1.2.m4s']);
  });

  it('a segment push that overtakes its last part closes the segment once that part is announced', async () => {
    const { stream, lease, v } = await liveStream();
    for (let i = 0; i < 4; i++) expectOk(await v.nextPart());
    const segment = push(stream.id, lease.epoch, 'v', '1.m4s', segmentMeta(5));
    expect(await settlesWithin(segment, 100)).toBe(false);
    expect((await push(stream.id, lease.epoch, 'v', '1.4.m4s', partMeta(4))).status).toBe(201);
    expect((await segment).status).toBe(201);
    const m = await playlist(stream.id);
    expect(m.segments.map((s) => s.uri)).toEqual(['1/1.m4s']);
    expect(m.segments[0]!.duration).toBeCloseTo(1, 6);
    expect(m.segments[0]!.parts).toHaveLength(5);
  });

  it('part 0 of the next MSN waits for the segment push of the one before', async () => {
    const { stream, lease, v } = await liveStream();
    for (let i = 0; i < 5; i++) expectOk(await v.nextPart());
    const next = push(stream.id, lease.epoch, 'v', '2.0.m4s', partMeta(0));
    expect(await settlesWithin(next, 100)).toBe(false);
    // A blocking request for the held part is not answered either (PART-11: announced means listed).
    const blocked = worker(`/live/${stream.id}/v/index.m3u8?_HLS_msn=2&_HLS_part=0`);
    expect(await settlesWithin(blocked, 50)).toBe(false);
    expectOk(await v.closeSegment());
    expect((await next).status).toBe(201);
    const res = await blocked;
    expect(res.status).toBe(200);
    expect(await res.text()).toContain('2.0.m4s');
    expect(await listedParts(stream.id)).toEqual(['1/1.0.m4s', '1/1.1.m4s', '1/1.2.m4s', '1/1.3.m4s', '1/1.4.m4s', '1/2.0.m4s']);
  });

  it('a retried push that is held answers once, the retry as a duplicate', async () => {
    const { stream, lease } = await liveStream();
    const original = push(stream.id, lease.epoch, 'v', '1.1.m4s', partMeta(1));
    const retry = push(stream.id, lease.epoch, 'v', '1.1.m4s', partMeta(1));
    expect(await settlesWithin(Promise.race([original, retry]), 100)).toBe(false);
    expectOk(await push(stream.id, lease.epoch, 'v', '1.0.m4s', partMeta(0)));
    const statuses = (await Promise.all([original, retry])).map((r) => r.status).sort();
    expect(statuses).toEqual([200, 201]);
    expect(await listedParts(stream.id)).toEqual(['1/1.0.m4s', '1/1.1.m4s']);
  });

  it('a held push whose predecessor never comes gets a retryable 503 and nothing is announced', async () => {
    const { stream, lease } = await liveStream();
    const t0 = Date.now();
    const res = await push(stream.id, lease.epoch, 'v', '1.1.m4s', partMeta(1));
    expect(res.status).toBe(503);
    expect(Date.now() - t0).toBeGreaterThanOrEqual(2900);
    expect(((await res.json()) as { error: { code: string } }).error.code).toBe('predecessor_missing');
    expect((await worker(`/live/${stream.id}/v/index.m3u8`)).status).toBe(404);
    // The transcoder retries it after its predecessor: both are then accepted.
    expectOk(await push(stream.id, lease.epoch, 'v', '1.0.m4s', partMeta(0)));
    expect((await push(stream.id, lease.epoch, 'v', '1.1.m4s', partMeta(1))).status).toBe(201);
    expect(await listedParts(stream.id)).toEqual(['1/1.0.m4s', '1/1.1.m4s']);
  });

  it('a held push cut off by a restart of the object is not acknowledged; its retry is announced once, in order', async () => {
    const { stream, lease, v } = await liveStream();
    await v.segment();
    const held = push(stream.id, lease.epoch, 'v', '2.1.m4s', partMeta(1));
    expect(await settlesWithin(held, 100)).toBe(false);
    // The object is reset mid-request (a crash or a deploy): in-memory state and held pushes are gone.
    await abortAllDurableObjects();
    const cut = await held;
    // Not acknowledged, and worth retrying: the uploader retries any 5xx.
    expect(cut.status).toBeGreaterThanOrEqual(500);
    expect((await push(stream.id, lease.epoch, 'v', '2.0.m4s', partMeta(0))).status).toBe(201);
    expect((await push(stream.id, lease.epoch, 'v', '2.1.m4s', partMeta(1))).status).toBe(201);
    expect((await push(stream.id, lease.epoch, 'v', '2.1.m4s', partMeta(1))).status).toBe(200);
    expect((await listedParts(stream.id)).slice(-2)).toEqual(['1/2.0.m4s', '1/2.1.m4s']);
  });

  it('a push further ahead than the pipelining window is refused at once with 409', async () => {
    const { stream, lease } = await liveStream();
    const res = await push(stream.id, lease.epoch, 'v', '3.0.m4s', partMeta(0));
    expect(res.status).toBe(409);
    expect(((await res.json()) as { error: { code: string } }).error.code).toBe('out_of_order');
    expect(await env.MEDIA.head(`live/${stream.id}/${lease.epoch}/v/3.0.m4s`)).toBeNull();
  });

  it('fencing: a held push of an epoch that loses the lease is refused with 409 at once, never announced', async () => {
    const { stream, lease, v } = await liveStream();
    await v.segment();
    const held = push(stream.id, lease.epoch, 'v', '2.1.m4s', partMeta(1));
    expect(await settlesWithin(held, 100)).toBe(false);
    const t0 = Date.now();
    const again = (await (await authorize(stream.streamKey, 'node-b')).json()) as { epoch: number; startMsn: number };
    expect(again.epoch).toBe(lease.epoch + 1);
    const res = await held;
    expect(res.status).toBe(409);
    expect(((await res.json()) as { error: { code: string } }).error.code).toBe('stale_epoch');
    expect(Date.now() - t0).toBeLessThan(2000);
    // The predecessor, too late, is fenced as before; the new epoch starts right after segment 1.
    expect((await push(stream.id, lease.epoch, 'v', '2.0.m4s', partMeta(0))).status).toBe(409);
    expect(again.startMsn).toBe(2);
    expect((await playlist(stream.id)).segments.map((s) => s.uri)).toEqual(['1/1.m4s']);
  });
  it('one-part segments: a segment push that overtakes the previous segment push is held, not refused', async () => {
    const { stream, lease, v } = await liveStream();
    expectOk(await v.nextPart());
    // In flight at once: 2.0 and segment 2 overtake segment 1.
    const part = push(stream.id, lease.epoch, 'v', '2.0.m4s', partMeta(0));
    const seg2 = push(stream.id, lease.epoch, 'v', '2.m4s', segmentMeta(1));
    expect(await settlesWithin(seg2, 100)).toBe(false);
    expect((await push(stream.id, lease.epoch, 'v', '1.m4s', segmentMeta(1))).status).toBe(201);
    expect((await part).status).toBe(201);
    expect((await seg2).status).toBe(201);
    expect((await playlist(stream.id)).segments.map((s) => s.uri)).toEqual(['1/1.m4s', '1/2.m4s']);
  });

  it('after a reconnection the hinted MAP of the new epoch is held until its init is pushed (PH-04)', async () => {
    const { stream, v } = await liveStream();
    await v.segment();
    const again = (await (await authorize(stream.streamKey, 'node-b')).json()) as { epoch: number; startMsn: number };
    const hinted = await (await worker(`/live/${stream.id}/v/index.m3u8`)).text();
    expect(hinted).toContain(`#EXT-X-PRELOAD-HINT:TYPE=MAP,URI="${again.epoch}/init.mp4"`);
    const init = worker(`/live/${stream.id}/v/${again.epoch}/init.mp4`);
    expect(await settlesWithin(init, 150)).toBe(false);
    expectOk(await new FakeRendition(stream.id, again.epoch, 'v', again.startMsn).init());
    expect((await init).status).toBe(200);
  });

  // Ten streams at once, each waiting out a second of grace: 6 s on a loaded 2-core machine.
  it('a part pushed while the stream ends is either refused or in the closed segment: an acknowledged part is never dropped', {
    timeout: 20_000,
  }, async () => {
    // The alarm closes the open segment from its parts (R2 reads) while the publisher's next part
    // arrives; ten streams, each with the part a little later, to meet every interleaving.
    const outcomes = await Promise.all(
      Array.from({ length: 10 }, async (_, i) => {
        const { stream, lease, v } = await liveStream();
        await v.segment();
        expectOk(await v.nextPart());
        expectOk(await v.nextPart());
        expectOk(await signed('POST', `${INGEST_PREFIX}/${stream.id}/${lease.epoch}/end`, null));
        await new Promise((r) => setTimeout(r, 1100));
        const [, late] = await Promise.all([
          runDurableObjectAlarm(env.STREAM_STATE.getByName(stream.id)),
          new Promise((r) => setTimeout(r, i)).then(() => v.nextPart()),
        ]);
        const m = await playlist(stream.id);
        return { status: late.status, last: m.segments.at(-1)!.uri, duration: m.segments.at(-1)!.duration };
      }),
    );
    for (const o of outcomes) {
      expect([201, 409]).toContain(o.status);
      expect(o.last).toBe('1/2.m4s');
      expect(o.duration, JSON.stringify(outcomes)).toBeCloseTo((o.status === 201 ? 3 : 2) * 0.2, 6);
    }
  });
});
