// Viewers at scale at one edge (issue 12 §1): identical blocking requests cost StreamState one
// call and the isolate one render and one gzip; later viewers of the same version are answered
// from the isolate; a part that many viewers ask for at once is read from R2 once. The stats
// route's `origin` counts what reached the object.
import { env } from 'cloudflare:workers';
import { describe, expect, it } from 'vitest';
import type { PlaybackLoad } from '../../core/contracts/live-model.ts';
import { ADMIN, AUDIO_INIT, FakeRendition, authorize, createStream, expectOk, worker } from './helpers.ts';

async function liveStream() {
  const stream = await createStream({
    ladder: [
      { name: 'v', kind: 'video', width: 640, height: 360, videoBitrate: 800_000 },
      { name: 'a', kind: 'audio', audioBitrate: 128_000 },
    ],
  });
  const lease = (await (await authorize(stream.streamKey)).json()) as { epoch: number; startMsn: number };
  const v = new FakeRendition(stream.id, lease.epoch, 'v', lease.startMsn);
  const a = new FakeRendition(stream.id, lease.epoch, 'a', lease.startMsn);
  expectOk(await v.init());
  expectOk(await a.init(AUDIO_INIT));
  return { stream, lease, v };
}

async function originLoad(streamId: string, rendition: string) {
  const res = await worker(`/api/streams/${streamId}/stats`, { headers: ADMIN });
  expect(res.status).toBe(200);
  const origin = ((await res.json()) as { origin: PlaybackLoad }).origin;
  return origin.renditions.find((r) => r.rendition === rendition) ?? { rendition, playlistCalls: 0, mediaWaits: 0, partsAnnounced: 0 };
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

describe('edge load per viewer', () => {
  it('a hundred viewers blocked on the next part cost StreamState one playlist call; later ones none', async () => {
    const { stream, v } = await liveStream();
    await v.segment();
    const before = await originLoad(stream.id, 'v');
    const url = `/live/${stream.id}/v/index.m3u8?_HLS_msn=2&_HLS_part=0`;
    const held = Array.from({ length: 100 }, (_, i) => worker(url, i % 2 ? { headers: { 'accept-encoding': 'gzip' } } : undefined));
    await sleep(50);
    expectOk(await v.nextPart());
    const answers = await Promise.all(held);
    for (const res of answers) expect(res.status).toBe(200);
    const plain = await Promise.all(answers.filter((_, i) => i % 2 === 0).map((r) => r.text()));
    expect(new Set(plain).size).toBe(1);
    expect(plain[0]).toContain('URI="1/2.0.m4s"');
    // The gzip viewers get it gzipped (compressed once for all of them: the e2e test reads the
    // bytes on the wire; here the runtime hands the test the decoded text).
    for (const res of answers.filter((_, i) => i % 2 === 1)) {
      expect(res.headers.get('content-encoding')).toBe('gzip');
      expect(await res.text()).toBe(plain[0]);
    }
    // Viewers arriving after the answer get the same version without reaching the object.
    for (let i = 0; i < 20; i++) expect(await (await worker(url)).text()).toBe(plain[0]);
    const after = await originLoad(stream.id, 'v');
    expect(after.playlistCalls - before.playlistCalls).toBe(1);
    expect(after.partsAnnounced - before.partsAnnounced).toBe(1);
  });

  it('a part fifty viewers ask for at once is read from R2 once; the others share that read', async () => {
    const { stream, lease, v } = await liveStream();
    await v.segment();
    const url = `/live/${stream.id}/v/${lease.epoch}/1.2.m4s`;
    const answers = await Promise.all(Array.from({ length: 50 }, () => worker(url)));
    const sources = answers.map((r) => r.headers.get('x-edgelive-source'));
    expect(sources.filter((s) => s === 'r2')).toHaveLength(1);
    expect(sources.filter((s) => s === 'isolate')).toHaveLength(49);
    const bodies = await Promise.all(answers.map(async (r) => Buffer.from(await r.arrayBuffer()).toString('base64')));
    expect(new Set(bodies).size).toBe(1);
    const stored = await (await env.MEDIA.get(`live/${stream.id}/${lease.epoch}/v/1.2.m4s`))!.arrayBuffer();
    expect(bodies[0]).toBe(Buffer.from(stored).toString('base64'));
    const later = await worker(url);
    expect(later.headers.get('x-edgelive-source')).toBe('isolate');
    expect(later.headers.get('cache-control')).toBe('public, max-age=31536000, immutable');
    expect(Buffer.from(await later.arrayBuffer()).toString('base64')).toBe(bodies[0]);
  });

  it('twenty viewers asking for a part before it exists are held on one StreamState call', async () => {
    const { stream, lease, v } = await liveStream();
    await v.segment();
    const before = await originLoad(stream.id, 'v');
    const url = `/live/${stream.id}/v/${lease.epoch}/2.0.m4s`;
    const held = Array.from({ length: 20 }, () => worker(url));
    await sleep(50);
    expectOk(await v.nextPart());
    for (const res of await Promise.all(held)) {
      expect(res.status).toBe(200);
      await res.arrayBuffer();
    }
    const after = await originLoad(stream.id, 'v');
    expect(after.mediaWaits - before.mediaWaits).toBe(1);
  });
});
