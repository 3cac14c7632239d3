// The media node's /metrics on the real stack (issue 14, item 1): Prometheus text (read by a strict
// parser) whose series move with an RTMP and an SRT publish — sessions by protocol, ingest bytes,
// encoder speed and dropped frames per stream, push latency histogram, SRT packet counters,
// registry calls, process and event-loop metrics — and CAPACITY enforced (issue 11, item 15):
// the publisher past it is refused over RTMP with the reason and over SRT with SRT_REJX_OVERLOAD,
// while a publisher of a stream already on the node may still reconnect. The health endpoint
// listens where HEALTH_HOST says.
import type { ChildProcess } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ROOT, startStack, startTestPublisher, stopChild, type CreatedStream, type Stack } from '../../scripts/local-stack.ts';
import { createLogger } from '../../transcoder-node/log.ts';
import { Reject, rejectionType } from '../../transcoder-node/srt/packet.ts';
import { health, publishOnce, scrape, until } from '../support/media-node.ts';
import { sampleValue, type Family } from '../support/prom-text.ts';
import { RawSrtCaller } from '../support/srt-raw-client.ts';

const log = createLogger({ service: 'e2e-metrics' });
const LADDER = [
  { name: '180p', kind: 'video', width: 320, height: 180, videoBitrate: 250_000 },
  { name: 'audio', kind: 'audio', audioBitrate: 64_000 },
];
// Any 127.x address is loopback on Linux: the node must answer on this one and not on 127.0.0.1.
const HEALTH_HOST = '127.0.0.2';

let dir: string;
let stack: Stack;
let rtmpStream: CreatedStream;
let srtStream: CreatedStream;
const publishers: ChildProcess[] = [];
const healthUrl = () => stack.transcoderHealthUrl;

beforeAll(async () => {
  dir = mkdtempSync(join(tmpdir(), 'edgelive-metrics-'));
  stack = await startStack({
    persistDir: join(dir, 'state'),
    logDir: join(dir, 'logs'),
    adminToken: 'e2e-admin',
    ingestSecret: 'e2e-ingest-secret',
    transcoders: [{ nodeId: 'metrics-1', capacity: 2, env: { HEALTH_HOST, HEARTBEAT_MS: '1000' } }],
    logger: log,
  });
  // Its encoder reconnects below while the first connection still publishes: the `allow` takeover policy.
  rtmpStream = await stack.createStream({ title: 'rtmp', ladder: LADDER, takeover: 'allow' });
  srtStream = await stack.createStream({ title: 'srt', ladder: LADDER });
});

afterAll(async () => {
  await Promise.all(publishers.map((p) => stopChild(p)));
  await stack?.stop();
  if (dir && !process.env.KEEP_E2E) rmSync(dir, { recursive: true, force: true });
});

const value = (m: Map<string, Family>, name: string, labels: Record<string, string> = {}) => sampleValue(m, name, labels) ?? 0;

describe('media node /metrics', () => {
  it('listens where HEALTH_HOST says, and answers the Prometheus text format with process, event-loop and node series before any publish', async () => {
    expect(new URL(healthUrl()).hostname).toBe(HEALTH_HOST);
    await expect(fetch(healthUrl().replace(HEALTH_HOST, '127.0.0.1'))).rejects.toThrow();
    const m = await until('a registry heartbeat', async () => {
      const s = await scrape(healthUrl());
      return value(s, 'edgelive_registry_calls_total', { call: 'heartbeat', outcome: 'ok' }) >= 1 ? s : null;
    });
    for (const name of [
      'process_cpu_seconds_total',
      'process_resident_memory_bytes',
      'nodejs_eventloop_lag_p99_seconds',
      'nodejs_heap_size_used_bytes',
    ]) {
      expect(m.get(name)?.samples.length, name).toBeGreaterThan(0);
    }
    expect(m.get('edgelive_push_duration_seconds')?.type).toBe('histogram');
    expect(m.get('edgelive_push_retries_total')?.type).toBe('counter');
    expect(m.get('edgelive_push_refusals_total')?.type).toBe('counter');
    expect(value(m, 'edgelive_registry_calls_total', { call: 'register', outcome: 'ok' })).toBe(1);
    expect(value(m, 'edgelive_registry_last_success_timestamp_seconds')).toBeGreaterThan(Date.now() / 1000 - 60);
    expect(value(m, 'edgelive_node_info', { node_id: 'metrics-1', region: 'local' })).toBe(1);
    expect(value(m, 'edgelive_capacity')).toBe(2);
    expect(value(m, 'edgelive_overloaded')).toBe(0);
    for (const protocol of ['rtmp', 'srt', 'whip']) expect(sampleValue(m, 'edgelive_sessions', { protocol })).toBe(0);
    expect(sampleValue(m, 'edgelive_ingest_bytes_total', { protocol: 'rtmp' })).toBeUndefined();
    // WHEP playback: every series there from the start (rate() sees them start at 0); they move
    // with real viewers in whep-playback.test.ts.
    expect(sampleValue(m, 'edgelive_whep_viewers')).toBe(0);
    expect(sampleValue(m, 'edgelive_whep_capacity')).toBe(200);
    expect(sampleValue(m, 'edgelive_whep_sessions_started_total')).toBe(0);
    for (const reason of ['capacity', 'ticket', 'other']) expect(sampleValue(m, 'edgelive_whep_refused_total', { reason }), reason).toBe(0);
    for (const kind of ['video', 'audio']) {
      expect(sampleValue(m, 'edgelive_whep_forwarded_packets_total', { kind }), kind).toBe(0);
      expect(sampleValue(m, 'edgelive_whep_forwarded_bytes_total', { kind }), kind).toBe(0);
    }
    expect(m.get('edgelive_whep_forwarded_bytes_total')?.type).toBe('counter');
  });

  it('moves with an RTMP and an SRT publish: sessions, bytes, encoder, pushes, SRT packets', async () => {
    publishers.push(
      startTestPublisher({ rtmpUrl: rtmpStream.ingest.rtmp, width: 320, height: 180, clock: false, logDir: join(dir, 'logs') }),
    );
    publishers.push(startTestPublisher({ rtmpUrl: srtStream.ingest.srt!, width: 320, height: 180, clock: false }));
    await until('both sessions', async () => (await health(healthUrl())).sessions.length === 2);
    const first = await until(
      'encoder readings and acknowledged parts of both streams',
      async () => {
        const m = await scrape(healthUrl());
        const ready = [rtmpStream, srtStream].every((s) => sampleValue(m, 'edgelive_encoder_speed', { stream: s.id }) !== undefined);
        return ready && value(m, 'edgelive_push_duration_seconds_count', { kind: 'part' }) > 0 ? m : null;
      },
      60_000,
    );
    expect(value(first, 'edgelive_sessions', { protocol: 'rtmp' })).toBe(1);
    expect(value(first, 'edgelive_sessions', { protocol: 'srt' })).toBe(1);
    expect(value(first, 'edgelive_sessions_started_total', { protocol: 'rtmp' })).toBe(1);
    expect(value(first, 'edgelive_sessions_started_total', { protocol: 'srt' })).toBe(1);
    // Two streams, a video and an audio rendition each: four init segments.
    expect(value(first, 'edgelive_push_duration_seconds_count', { kind: 'init' })).toBe(4);
    for (const s of [rtmpStream, srtStream]) {
      expect(value(first, 'edgelive_encoder_speed', { stream: s.id })).toBeGreaterThan(0);
      expect(value(first, 'edgelive_encoder_fps', { stream: s.id })).toBeGreaterThan(0);
      expect(sampleValue(first, 'edgelive_encoder_dropped_frames_total', { stream: s.id })).toBeGreaterThanOrEqual(0);
      expect(sampleValue(first, 'edgelive_encoder_behind_realtime', { stream: s.id })).toBe(0);
    }

    // A few seconds later every flow counter has grown.
    await new Promise((r) => setTimeout(r, 3000));
    const later = await scrape(healthUrl());
    for (const [name, labels] of [
      ['edgelive_ingest_bytes_total', { protocol: 'rtmp' }],
      ['edgelive_ingest_bytes_total', { protocol: 'srt' }],
      ['edgelive_srt_packets_received_total', {}],
      ['edgelive_pushed_bytes_total', {}],
      ['edgelive_push_duration_seconds_count', { kind: 'part' }],
      ['edgelive_push_duration_seconds_count', { kind: 'segment' }],
      ['process_cpu_seconds_total', {}],
    ] as const) {
      expect(value(later, name, labels), name).toBeGreaterThan(value(first, name, labels));
    }
    // The SRT loss counters are there (a loopback link loses nothing, so they may be 0).
    for (const name of [
      'edgelive_srt_packets_lost_total',
      'edgelive_srt_packets_retransmitted_total',
      'edgelive_srt_packets_dropped_total',
    ]) {
      expect(sampleValue(later, name), name).toBeGreaterThanOrEqual(0);
    }
    // Every part is in the histogram's buckets (the reader checked they are cumulative up to +Inf = count).
    const parts = value(later, 'edgelive_push_duration_seconds_count', { kind: 'part' });
    expect(value(later, 'edgelive_push_duration_seconds_bucket', { kind: 'part', le: '+Inf' })).toBe(parts);
    expect(value(later, 'edgelive_push_duration_seconds_sum', { kind: 'part' })).toBeGreaterThan(0);
    // The JSON summary is still served for scripts.
    const json = (await (await fetch(healthUrl().replace('/health', '/metrics.json'))).json()) as {
      sessions: number;
      partPushMs: { samples: number };
    };
    expect(json.sessions).toBe(2);
    expect(json.partPushMs.samples).toBeGreaterThan(0);
  });

  it('exports every series the example alert rules (docs/prometheus/edgelive-alerts.yml) use', async () => {
    const rules = readFileSync(join(ROOT, 'docs', 'prometheus', 'edgelive-alerts.yml'), 'utf8');
    const exprs = rules.split('\n').filter((l) => /^\s+expr: /.test(l));
    expect(exprs.length).toBeGreaterThanOrEqual(8);
    const used = new Set(exprs.flatMap((l) => l.match(/\b(edgelive|nodejs)_[a-z0-9_]+/g) ?? []));
    const m = await scrape(healthUrl());
    const families = [...m.keys()];
    for (const name of used) {
      const family = families.find(
        (f) =>
          name === f ||
          (m.get(f)!.type === 'histogram' && /_(bucket|sum|count)$/.test(name) && name.replace(/_(bucket|sum|count)$/, '') === f),
      );
      expect(family, `${name} (used by an alert) is not exported`).toBeDefined();
    }
  });

  it('enforces CAPACITY: the next publisher is refused with the reason (RTMP) or SRT_REJX_OVERLOAD (SRT); a stream already here may reconnect', async () => {
    const third = await stack.createStream({ title: 'one too many', ladder: LADDER });
    const refused = await publishOnce(third.ingest.rtmp);
    expect(refused.code).not.toBe(0);
    expect(refused.stderr).toContain('this node is at capacity (2 publishers): publish to another ingest node');
    const caller = await RawSrtCaller.open({ port: Number(new URL(third.ingest.srt!).port), streamId: third.streamKey });
    try {
      expect((await caller.connect()).type).toBe(rejectionType(Reject.X_OVERLOAD));
    } finally {
      caller.close();
    }
    // Nothing reached the origin for them: the third stream never went live.
    const status = (await (
      await fetch(`${stack.workerUrl}/api/streams/${third.id}`, { headers: { authorization: `Bearer ${stack.adminToken}` } })
    ).json()) as { status: string };
    expect(status.status).not.toBe('live');

    // The RTMP encoder of the first stream reconnects while the node is full: it takes its stream over.
    const before = (await health(healthUrl())).sessions.find((s) => s.streamId === rtmpStream.id)!.epoch;
    const reconnect = publishOnce(rtmpStream.ingest.rtmp, 4);
    await until(
      'the reconnected session',
      async () => ((await health(healthUrl())).sessions.find((s) => s.streamId === rtmpStream.id)?.epoch ?? 0) > before,
    );
    expect((await reconnect).code).toBe(0);

    const m = await scrape(healthUrl());
    expect(value(m, 'edgelive_publishers_refused_total', { protocol: 'rtmp', reason: 'over_capacity' })).toBe(1);
    expect(value(m, 'edgelive_publishers_refused_total', { protocol: 'srt', reason: 'over_capacity' })).toBe(1);
    expect(value(m, 'edgelive_sessions_started_total', { protocol: 'rtmp' })).toBe(2);
  });
});
