// QoE beacons and stream stats: `POST /api/qoe` is public and schema-checked, every event becomes
// an Analytics Engine point, and `GET /api/streams/:id/stats` (admin) answers the live player
// count and the recent aggregates from the stream's QoeStats object.
import { env } from 'cloudflare:workers';
import { afterEach, describe, expect, it, vi } from 'vitest';
import { aggregateBatch, histogramAdd, histogramQuantile, qoeDataPoints, QoeBatch, type QoeBatchInput } from '../../core/contracts/qoe.ts';
import { ADMIN, createStream, worker } from './helpers.ts';

function beacon(body: unknown, contentType = 'text/plain;charset=UTF-8') {
  return worker('/api/qoe', { method: 'POST', headers: { 'content-type': contentType }, body: JSON.stringify(body) });
}

function batch(streamId: string, session: string, events: QoeBatchInput['events']): QoeBatchInput {
  return { v: 1, streamId, session, events };
}

describe('POST /api/qoe', () => {
  it('accepts a batch without the admin token (204) and counts its player as watching', async () => {
    const s = await createStream({ title: 'qoe' });
    const res = await beacon(
      batch(s.id, 'session-aaaa', [
        { type: 'ttff', ms: 640 },
        { type: 'latency', sec: 1.1 },
        { type: 'latency', sec: 1.3 },
        { type: 'switch', from: null, to: '360p', bitrate: 700_000, auto: true },
        { type: 'heartbeat', playingMs: 9000, stalledMs: 1000 },
        { type: 'rebuffer', ms: 1000 },
      ]),
    );
    expect(res.status).toBe(204);
    await beacon(
      batch(s.id, 'session-bbbb', [
        { type: 'ttff', ms: 900 },
        { type: 'error', kind: 'networkError', detail: 'fragLoadError', fatal: false },
      ]),
      'application/json',
    );

    const stats = await worker(`/api/streams/${s.id}/stats`, { headers: ADMIN });
    expect(stats.status).toBe(200);
    const body = (await stats.json()) as Record<string, any>;
    expect(body).toMatchObject({ streamId: s.id, status: 'idle', viewers: { players: 2, room: 0 }, windowMinutes: 5 });
    expect(body.qoe.beacons).toBe(2);
    expect(body.qoe.timeToFirstFrameMs.count).toBe(2);
    // Log buckets of 10 %: the median of {640, 900} is reported within 5 % of 640.
    expect(body.qoe.timeToFirstFrameMs.p50).toBeGreaterThan(600);
    expect(body.qoe.timeToFirstFrameMs.p50).toBeLessThan(680);
    expect(body.qoe.latencySec.count).toBe(2);
    expect(body.qoe.rebuffering).toEqual({ count: 1, seconds: 1, ratio: 0.1 });
    expect(body.qoe.renditionSwitches).toBe(1);
    expect(body.qoe.errors).toEqual({ count: 1, fatal: 0, byDetail: { 'networkError/fragLoadError': 1 } });
  });

  it('refuses malformed batches with 400 and unknown streams with 404, in the one error shape', async () => {
    const s = await createStream();
    const bad = await beacon({ v: 1, streamId: s.id, session: 'session-cccc', events: [{ type: 'ttff', ms: -1 }] });
    expect(bad.status).toBe(400);
    expect(((await bad.json()) as { error: { code: string } }).error.code).toBe('invalid_request');
    const tooMany = await beacon(
      batch(
        s.id,
        'session-cccc',
        Array.from({ length: 21 }, () => ({ type: 'ttff' as const, ms: 1 })),
      ),
    );
    expect(tooMany.status).toBe(400);
    const notJson = await worker('/api/qoe', { method: 'POST', body: '{nope' });
    expect(notJson.status).toBe(400);
    const unknown = await beacon(batch('st-nope', 'session-cccc', [{ type: 'ttff', ms: 1 }]));
    expect(unknown.status).toBe(404);
    expect(((await unknown.json()) as { error: { code: string } }).error.code).toBe('stream_not_found');
  });

  it('keeps the stats behind the admin token', async () => {
    const s = await createStream();
    expect((await worker(`/api/streams/${s.id}/stats`)).status).toBe(401);
    expect((await worker('/api/streams/st-missing/stats', { headers: ADMIN })).status).toBe(404);
  });
});

describe('QoE beacons reach Analytics Engine', () => {
  afterEach(() => vi.restoreAllMocks());

  it('writes one data point per event to the QOE_ANALYTICS binding, within the dataset limits', async () => {
    // The local Analytics Engine simulator accepts points and keeps none (there is no local SQL API):
    // the test watches the Worker's calls to the real binding, which still runs.
    const dataset = (env as unknown as { QOE_ANALYTICS: AnalyticsEngineDataset }).QOE_ANALYTICS;
    const write = vi.spyOn(dataset, 'writeDataPoint');
    const s = await createStream({ title: 'analytics' });
    const res = await beacon(
      batch(s.id, 'session-eeee', [
        { type: 'ttff', ms: 720 },
        { type: 'latency', sec: 2.5 },
        { type: 'rebuffer', ms: 400 },
      ]),
    );
    expect(res.status).toBe(204);
    expect(write).toHaveBeenCalledTimes(3);
    const points = write.mock.calls.map(([p]) => p!);
    // Workers run without request.cf here: the country is XX.
    expect(points.map((p) => p.blobs?.slice(0, 4))).toEqual([
      ['ttff', 'session-eeee', 'watch', 'XX'],
      ['latency', 'session-eeee', 'watch', 'XX'],
      ['rebuffer', 'session-eeee', 'watch', 'XX'],
    ]);
    for (const p of points) {
      // Analytics Engine: one index (the stream, so queries by stream are sampled per stream),
      // at most 20 blobs and 20 doubles, blobs of at most 16 KB in all.
      expect(p.indexes).toEqual([s.id]);
      expect(p.blobs!.length).toBeLessThanOrEqual(20);
      expect(p.doubles!.length).toBeLessThanOrEqual(20);
      expect(p.blobs!.reduce((n, b) => n + new TextEncoder().encode(String(b)).byteLength, 0)).toBeLessThanOrEqual(16 * 1024);
    }
    expect(points[0]!.doubles![0]).toBe(720);
  });

  it('writes nothing for a refused batch', async () => {
    const write = vi.spyOn((env as unknown as { QOE_ANALYTICS: AnalyticsEngineDataset }).QOE_ANALYTICS, 'writeDataPoint');
    const res = await beacon(batch('st-nope', 'session-ffff', [{ type: 'ttff', ms: 1 }]));
    expect(res.status).toBe(404);
    expect(write).not.toHaveBeenCalled();
  });
});

describe('QoE data points and aggregates (pure)', () => {
  it('maps every event to one Analytics Engine point indexed by stream', () => {
    const b = QoeBatch.parse(
      batch('st1', 'session-dddd', [
        { type: 'switch', from: '240p', to: '360p', bitrate: 700_000, auto: false },
        { type: 'error', kind: 'forbidden', detail: 'token_expired', fatal: true },
      ]),
    );
    expect(qoeDataPoints(b, 'DE')).toEqual([
      { indexes: ['st1'], blobs: ['switch', 'session-dddd', 'watch', 'DE', '240p', '360p'], doubles: [700_000, 0] },
      { indexes: ['st1'], blobs: ['error', 'session-dddd', 'watch', 'DE', 'forbidden', 'token_expired'], doubles: [1, 1] },
    ]);
    expect(aggregateBatch(b)).toMatchObject({ switches: 1, errors: 1, fatalErrors: 1 });
  });

  it('answers quantiles within 5 % from log buckets', () => {
    const h = {};
    for (let v = 1; v <= 1000; v++) histogramAdd(h, v);
    for (const q of [0.5, 0.9, 0.99]) expect(Math.abs(histogramQuantile(h, q)! / (q * 1000) - 1)).toBeLessThan(0.06);
    expect(histogramQuantile({}, 0.5)).toBeNull();
  });
});
