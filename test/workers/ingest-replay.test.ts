// The ingest contract covers everything the origin trusts (issue 11, item 8): the metadata
// header is signed with the request, `codecs` is an RFC 6381 list and nothing else, and a
// request is accepted once: its nonce is remembered by the object it goes to. Each attack
// below is replayed as an attacker on the path would: the captured request, byte for byte.
import { describe, expect, it } from 'vitest';
import { HEADER_META, HEADER_NONCE, INGEST_PREFIX, NODES_PREFIX, pushPath } from '../../core/contracts/ingest-protocol.ts';
import { ADMIN, FakeRendition, VIDEO_INIT, bytes, createStream, expectOk, signedRequest, worker } from './helpers.ts';

const LADDER = [{ name: 'v', kind: 'video', width: 640, height: 360, videoBitrate: 800_000 }];

async function authorizeRequest(streamKey: string, nodeId = 'node-a'): Promise<Request> {
  const body = new TextEncoder().encode(JSON.stringify({ streamKey, nodeId })) as Uint8Array<ArrayBuffer>;
  return signedRequest('POST', `${INGEST_PREFIX}/authorize`, body, { 'content-type': 'application/json' });
}

async function errorCode(res: Response): Promise<string> {
  return ((await res.json()) as { error: { code: string } }).error.code;
}

/** The captured request with one header changed (the body and every other header as sent). */
function edited(captured: Request, name: string, value: string): Request {
  const headers = new Headers(captured.headers);
  headers.set(name, value);
  return new Request(captured, { headers });
}

describe('replays and edited metadata', () => {
  it('a captured init push replayed with edited metadata is refused; the multivariant playlist keeps what was pushed', async () => {
    const stream = await createStream({ ladder: LADDER });
    const lease = (await (await worker(await authorizeRequest(stream.streamKey))).json()) as { epoch: number; startMsn: number };
    const captured = await signedRequest('PUT', pushPath(stream.id, lease.epoch, 'v', 'init.mp4'), bytes('init'), {
      [HEADER_META]: JSON.stringify(VIDEO_INIT),
    });
    expect((await worker(captured.clone())).status).toBe(201);
    // What the attacker writes: a variant stream line pointing anywhere, through `codecs`.
    const evil = {
      ...VIDEO_INIT,
      codecs: 'avc1.64001f"\n#EXT-X-STREAM-INF:BANDWIDTH=1,CODECS="avc1.64001f"\nhttps://evil.example/x.m3u8\n#X="',
    };
    const forged = await worker(edited(captured.clone(), HEADER_META, JSON.stringify(evil)));
    expect(forged.status).toBe(401);
    expect(await errorCode(forged)).toBe('bad_signature');
    const text = await (await worker(`/live/${stream.id}/index.m3u8`)).text();
    expect(text).not.toContain('evil.example');
    expect(text).toContain('CODECS="avc1.64001f"');
    // The same capture, unedited, is a replay.
    const replay = await worker(captured.clone());
    expect(replay.status).toBe(401);
    expect(await errorCode(replay)).toBe('replayed_request');
  });

  it('a replayed authorize is refused, and the live publisher keeps its lease', async () => {
    const stream = await createStream({ ladder: LADDER });
    const captured = await authorizeRequest(stream.streamKey);
    const lease = (await (await worker(captured.clone())).json()) as { epoch: number; startMsn: number };
    const v = new FakeRendition(stream.id, lease.epoch, 'v', lease.startMsn);
    expectOk(await v.init());
    await v.segment();
    const replay = await worker(captured.clone());
    expect(replay.status).toBe(401);
    expect(await errorCode(replay)).toBe('replayed_request');
    // The publisher goes on under its epoch.
    await v.segment();
    const info = (await (await worker(`/api/streams/${stream.id}`, { headers: ADMIN })).json()) as { ingestSession: { epoch: number } };
    expect(info.ingestSession.epoch).toBe(lease.epoch);
    // A fresh authorize (a real reconnection) still takes the lease.
    const fresh = await worker(await authorizeRequest(stream.streamKey, 'node-b'));
    expect(((await fresh.json()) as { epoch: number }).epoch).toBe(lease.epoch + 1);
  });

  it('replays of parts, segments, thumbnails and the end are refused; a retry (signed anew) is a duplicate', async () => {
    const stream = await createStream({ ladder: LADDER });
    const lease = (await (await worker(await authorizeRequest(stream.streamKey))).json()) as { epoch: number; startMsn: number };
    expectOk(await new FakeRendition(stream.id, lease.epoch, 'v', lease.startMsn).init());
    const meta = { duration: 0.2, independent: true, programDateTime: Date.now() };
    const path = pushPath(stream.id, lease.epoch, 'v', `${lease.startMsn}.0.m4s`);
    const part = await signedRequest('PUT', path, bytes('part'), { [HEADER_META]: JSON.stringify(meta) });
    expect((await worker(part.clone())).status).toBe(201);
    expect(await errorCode(await worker(part.clone()))).toBe('replayed_request');
    const retry = await worker(await signedRequest('PUT', path, bytes('part'), { [HEADER_META]: JSON.stringify(meta) }));
    expect([retry.status, await retry.json()]).toEqual([200, { ok: true, duplicate: true }]);
    const thumb = await signedRequest('PUT', `${INGEST_PREFIX}/${stream.id}/${lease.epoch}/thumbnails/0.jpg`, bytes('jpeg'), {
      [HEADER_META]: JSON.stringify({ programDateTime: Date.now() }),
    });
    expect((await worker(thumb.clone())).status).toBe(201);
    expect(await errorCode(await worker(thumb.clone()))).toBe('replayed_request');
    const end = await signedRequest('POST', `${INGEST_PREFIX}/${stream.id}/${lease.epoch}/end`, null);
    expect((await worker(end.clone())).status).toBe(200);
    expect(await errorCode(await worker(end.clone()))).toBe('replayed_request');
  });

  it('a header the signature does not cover, or a request without a nonce, is refused', async () => {
    const stream = await createStream({ ladder: LADDER });
    const lease = (await (await worker(await authorizeRequest(stream.streamKey))).json()) as { epoch: number };
    const init = await signedRequest('PUT', pushPath(stream.id, lease.epoch, 'v', 'init.mp4'), bytes('init'), {
      [HEADER_META]: JSON.stringify(VIDEO_INIT),
    });
    expect(await errorCode(await worker(edited(init.clone(), 'x-edgelive-extra', '1')))).toBe('bad_signature');
    const headers = new Headers(init.headers);
    headers.delete(HEADER_NONCE);
    const noNonce = await worker(new Request(init.clone(), { headers }));
    expect([noNonce.status, await errorCode(noNonce)]).toEqual([401, 'bad_signature']);
    expect((await worker(init)).status).toBe(201);
  });

  it('codecs must be an RFC 6381 list: anything else is a 400, even signed', async () => {
    const stream = await createStream({ ladder: LADDER });
    const lease = (await (await worker(await authorizeRequest(stream.streamKey))).json()) as { epoch: number };
    const path = pushPath(stream.id, lease.epoch, 'v', 'init.mp4');
    for (const codecs of [
      'avc1.64001f"\n#EXT-X-STREAM-INF:BANDWIDTH=1',
      'avc1.64001f,"x"',
      'avc1 64001f',
      '',
      'a',
      'avc1.64001f,,mp4a.40.2',
    ]) {
      const res = await worker(
        await signedRequest('PUT', path, bytes('init'), { [HEADER_META]: JSON.stringify({ ...VIDEO_INIT, codecs }) }),
      );
      expect(res.status, codecs).toBe(400);
      expect(await errorCode(res)).toBe('invalid_request');
    }
    expect(
      (
        await worker(
          await signedRequest('PUT', path, bytes('init'), { [HEADER_META]: JSON.stringify({ ...VIDEO_INIT, codecs: 'hvc1.1.6.L93.B0' }) }),
        )
      ).status,
    ).toBe(201);
  });

  it('a replayed registry call (a deregister that would drop a live node) is refused', async () => {
    const body = (v: unknown) => new TextEncoder().encode(JSON.stringify(v)) as Uint8Array<ArrayBuffer>;
    const reg = {
      nodeId: 'replay-node',
      region: 'local',
      latitude: 0,
      longitude: 0,
      rtmpUrl: 'rtmp://127.0.0.1:1935/live',
      capacity: 4,
      sessions: 0,
    };
    expect((await worker(await signedRequest('POST', `${NODES_PREFIX}/register`, body(reg)))).status).toBe(200);
    const deregister = await signedRequest('POST', `${NODES_PREFIX}/deregister`, body({ nodeId: 'replay-node' }));
    expect((await worker(deregister.clone())).status).toBe(200);
    expect((await worker(await signedRequest('POST', `${NODES_PREFIX}/register`, body(reg)))).status).toBe(200);
    const replay = await worker(deregister.clone());
    expect([replay.status, await errorCode(replay)]).toEqual([401, 'replayed_request']);
    expect((await worker(await signedRequest('POST', `${NODES_PREFIX}/deregister`, body({ nodeId: 'replay-node' })))).status).toBe(200);
  });
});
