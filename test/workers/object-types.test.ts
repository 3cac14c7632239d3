// What a media object is stored (and served) as, whoever wrote it: the transcoder's push or the
// origin's own assembly of an open segment when an epoch ends abruptly. One function decides
// (core/contracts/object-keys.ts, mediaContentType), so a segment is the same object either way.
import { env } from 'cloudflare:workers';
import { describe, expect, it } from 'vitest';
import { AUDIO_INIT, FakeRendition, authorize, createStream, expectOk, worker } from './helpers.ts';

async function storedType(key: string): Promise<string | undefined> {
  const head = await env.MEDIA.head(key);
  expect(head, key).not.toBeNull();
  return head!.httpMetadata?.contentType;
}

describe('content types of media objects', () => {
  it('a segment closed from its parts at a reconnection is served with the type of a pushed one, audio and video alike', async () => {
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
    await v.segment(3);
    await a.segment(3);
    // The second segment's parts only: the publisher drops before it pushes the segment.
    for (let i = 0; i < 2; i++) {
      expectOk(await v.nextPart());
      expectOk(await a.nextPart());
    }
    const back = await authorize(stream.streamKey, 'node-b');
    expect(back.status).toBe(200);
    await back.body?.cancel();
    const key = (rendition: string, file: string) => `live/${stream.id}/${lease.epoch}/${rendition}/${file}`;
    const pushed = lease.startMsn;
    const assembled = lease.startMsn + 1;
    expect(await storedType(key('v', 'init.mp4'))).toBe('video/mp4');
    expect(await storedType(key('a', 'init.mp4'))).toBe('audio/mp4');
    for (const r of ['v', 'a']) {
      expect(await storedType(key(r, `${pushed}.0.m4s`))).toBe('video/iso.segment');
      // A segment is never stored: it is served as its parts joined, with a part's type.
      expect(await env.MEDIA.head(key(r, `${pushed}.m4s`))).toBeNull();
      for (const msn of [pushed, assembled]) {
        const res = await worker(`/live/${stream.id}/${r}/${lease.epoch}/${msn}.m4s`);
        expect(res.status, `${r}: segment ${msn}`).toBe(200);
        expect(res.headers.get('content-type')).toBe('video/iso.segment');
        await res.body?.cancel();
      }
    }
  });
});
