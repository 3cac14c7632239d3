// Who may publish a stream (issue 11, item 12): by default a second publisher is refused while
// the first is live, unless the first has gone quiet or said it stopped (`refuse-while-live`);
// `allow` lets the newest take over (an encoder failing over). Rotating the key cuts off the
// session that used the old one: its next push is refused and its node drops the publisher.
import { describe, expect, it } from 'vitest';
import { ADMIN, FakeRendition, authorize, expectOk, signed, worker } from './helpers.ts';
import { INGEST_PREFIX } from '../../core/contracts/ingest-protocol.ts';

const LADDER = [{ name: 'v', kind: 'video', width: 640, height: 360, videoBitrate: 800_000 }];

/** A stream created through the admin API with exactly these settings (no test default). */
async function stream(settings: Record<string, unknown> = {}) {
  const res = await worker('/api/streams', {
    method: 'POST',
    headers: { ...ADMIN, 'content-type': 'application/json' },
    body: JSON.stringify({ ladder: LADDER, ...settings }),
  });
  expect(res.status).toBe(201);
  return (await res.json()) as { id: string; streamKey: string; settings: { takeover: string } };
}

async function publish(s: { id: string; streamKey: string }, nodeId = 'node-a') {
  const res = await authorize(s.streamKey, nodeId);
  expect(res.status).toBe(200);
  const lease = (await res.json()) as { epoch: number; startMsn: number };
  const v = new FakeRendition(s.id, lease.epoch, 'v', lease.startMsn);
  expectOk(await v.init());
  await v.segment();
  return { lease, v };
}

async function refusal(res: Response) {
  return [res.status, ((await res.json()) as { error: { code: string } }).error.code];
}

describe('takeover policy', () => {
  it('by default refuses a second publisher while the first is live; the first goes on', async () => {
    const s = await stream();
    expect(s.settings.takeover).toBe('refuse-while-live');
    const first = await publish(s);
    expect(await refusal(await authorize(s.streamKey, 'node-b'))).toEqual([409, 'stream_busy']);
    await first.v.segment();
    const info = (await (await worker(`/api/streams/${s.id}`, { headers: ADMIN })).json()) as {
      ingestSession: { nodeId: string; epoch: number };
    };
    expect(info.ingestSession).toMatchObject({ nodeId: 'node-a', epoch: first.lease.epoch });
  });

  it('lets a second publisher in once the first said it stopped', async () => {
    const s = await stream();
    const first = await publish(s);
    expectOk(await signed('POST', `${INGEST_PREFIX}/${s.id}/${first.lease.epoch}/end`, null));
    const second = await authorize(s.streamKey, 'node-b');
    expect(second.status).toBe(200);
    expect(((await second.json()) as { epoch: number }).epoch).toBe(first.lease.epoch + 1);
  });

  it('lets a second publisher in once the first has gone quiet (no push for 5 s: a crashed node)', { timeout: 20_000 }, async () => {
    const s = await stream();
    await publish(s);
    expect((await authorize(s.streamKey, 'node-b')).status).toBe(409);
    await new Promise((r) => setTimeout(r, 5_100));
    expect((await authorize(s.streamKey, 'node-b')).status).toBe(200);
  });

  it('the lease holder continuing its own epoch (a ladder restart on its node) is let in; nobody else can claim to', async () => {
    const s = await stream();
    const first = await publish(s);
    const epoch = first.lease.epoch;
    expect(await refusal(await authorize(s.streamKey, 'node-b', epoch))).toEqual([409, 'stream_busy']);
    expect(await refusal(await authorize(s.streamKey, 'node-a', epoch + 1))).toEqual([409, 'stream_busy']);
    const restarted = await authorize(s.streamKey, 'node-a', epoch);
    expect(restarted.status).toBe(200);
    expect(((await restarted.json()) as { epoch: number }).epoch).toBe(epoch + 1);
    // The previous epoch is over: it cannot be continued a second time.
    expect(await refusal(await authorize(s.streamKey, 'node-a', epoch))).toEqual([409, 'stream_busy']);
    const bad = await authorize(s.streamKey, 'node-a', -1);
    expect(bad.status).toBe(400);
  });

  it('with `allow` the newest publisher takes the stream, and the first is fenced off (PATCH changes the policy)', async () => {
    const s = await stream();
    const first = await publish(s);
    const patched = await worker(`/api/streams/${s.id}`, {
      method: 'PATCH',
      headers: { ...ADMIN, 'content-type': 'application/json' },
      body: JSON.stringify({ takeover: 'allow' }),
    });
    expect(((await patched.json()) as { settings: { takeover: string } }).settings.takeover).toBe('allow');
    const second = await authorize(s.streamKey, 'node-b');
    expect(second.status).toBe(200);
    expect(await refusal(await first.v.nextPart())).toEqual([409, 'stale_epoch']);
    const bad = await worker(`/api/streams/${s.id}`, {
      method: 'PATCH',
      headers: { ...ADMIN, 'content-type': 'application/json' },
      body: JSON.stringify({ takeover: 'sometimes' }),
    });
    expect(bad.status).toBe(400);
  });
});

describe('key rotation', () => {
  it('ends the session that used the old key: its next push is refused, the old key is refused, the new one is let in at once', async () => {
    const s = await stream();
    const first = await publish(s);
    const rotated = await worker(`/api/streams/${s.id}/rotate-key`, { method: 'POST', headers: ADMIN });
    expect(rotated.status).toBe(200);
    const body = (await rotated.json()) as { streamKey: string; endedSession: { epoch: number } | null };
    expect(body.endedSession).toEqual({ epoch: first.lease.epoch });
    expect(await refusal(await first.v.nextPart())).toEqual([409, 'lease_revoked']);
    // A second rotation has no session left to end.
    const again = (await (await worker(`/api/streams/${s.id}/rotate-key`, { method: 'POST', headers: ADMIN })).json()) as {
      streamKey: string;
      endedSession: unknown;
    };
    expect(again.endedSession).toBeNull();
    body.streamKey = again.streamKey;
    expect(await refusal(await authorize(s.streamKey, 'node-a'))).toEqual([403, 'unknown_stream_key']);
    const info = (await (await worker(`/api/streams/${s.id}`, { headers: ADMIN })).json()) as { status: string };
    expect(info.status).toBe('live');
    // Not refused as busy: the session it would take over from was cut off.
    const next = await publish({ id: s.id, streamKey: body.streamKey }, 'node-b');
    expect(next.lease.epoch).toBe(first.lease.epoch + 1);
    expectOk(await next.v.nextPart());
    // A stream with no session on air: a rotation ends none.
    const idle = await stream();
    const none = (await (await worker(`/api/streams/${idle.id}/rotate-key`, { method: 'POST', headers: ADMIN })).json()) as {
      endedSession: unknown;
    };
    expect(none.endedSession).toBeNull();
  });
});
