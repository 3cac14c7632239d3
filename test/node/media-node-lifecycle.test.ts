// The media node is a value a test can start and stop: every listener on a free port, /health and
// /metrics answering, and after stop() every port closed and no timer or socket of it left behind.
import { createConnection } from 'node:net';
import { createSocket } from 'node:dgram';
import { describe, expect, it } from 'vitest';
import { configProblem, mediaNodeConfigFromEnv } from '../../transcoder-node/config.ts';
import { startMediaNode } from '../../transcoder-node/media-node.ts';
import { parsePrometheusText } from '../support/prom-text.ts';
import { recordingLogger } from '../support/recording-logger.ts';

/** Free ports everywhere; the origin is a closed port, so heartbeats fail (and are logged) harmlessly. */
const env = {
  INGEST_SECRET: 'lifecycle-test-secret',
  ORIGIN_URL: 'http://127.0.0.1:9',
  NODE_ID: 'lifecycle-node',
  RTMP_HOST: '127.0.0.1',
  RTMP_PORT: '0',
  SRT_PORT: '0',
  WEBRTC_HTTP_PORT: '0',
  HEALTH_PORT: '0',
  HEARTBEAT_MS: '200',
};

const tcpRefused = (port: number) =>
  new Promise<boolean>((resolve) => {
    const socket = createConnection({ host: '127.0.0.1', port });
    socket.once('connect', () => (socket.destroy(), resolve(false)));
    socket.once('error', () => resolve(true));
  });
/** A UDP port is free again when another socket can bind it. */
const udpFree = (port: number) =>
  new Promise<boolean>((resolve) => {
    const socket = createSocket('udp4');
    socket.once('error', () => resolve(false));
    socket.bind(port, '0.0.0.0', () => socket.close(() => resolve(true)));
  });
const portOf = (url: string) => Number(new URL(url.replace(/^(rtmp|srt)/, 'http')).port);

describe('media node lifecycle', () => {
  it('refuses a configuration it cannot run with, saying which variable to set', () => {
    expect(configProblem(mediaNodeConfigFromEnv({ ...env, INGEST_SECRET: '' }))).toMatch(/INGEST_SECRET/);
    expect(configProblem(mediaNodeConfigFromEnv({ ...env, RTMPS_PORT: '0' }))).toMatch(/RTMPS_CERT_FILE/);
    expect(() => mediaNodeConfigFromEnv({ ...env, RTMP_MAX_CONNECTIONS: 'many' })).toThrow(/RTMP_MAX_CONNECTIONS/);
    expect(configProblem(mediaNodeConfigFromEnv(env))).toBeNull();
  });

  it('starts on free ports, answers /health and /metrics, and stop() leaves nothing running', async () => {
    const countOf = (kind: string, list: string[]) => list.filter((r) => r === kind).length;
    const baseline = process.getActiveResourcesInfo();
    const log = recordingLogger();
    const node = await startMediaNode(mediaNodeConfigFromEnv(env), log);

    const health = await fetch(node.urls.health).then((r) => r.json() as Promise<{ ok: boolean; nodeId: string; sessions: unknown[] }>);
    expect(health).toMatchObject({ ok: true, nodeId: 'lifecycle-node', sessions: [] });
    const metrics = parsePrometheusText(await fetch(node.urls.health.replace('/health', '/metrics')).then((r) => r.text()));
    expect(metrics.has('edgelive_capacity')).toBe(true);
    expect(node.urls.srt).toBeDefined();
    expect(node.urls.whip).toBeDefined();
    const rtmpPort = portOf(node.urls.rtmp);
    const srtPort = portOf(node.urls.srt!);
    const whipPort = portOf(node.urls.whip!);
    const healthPort = portOf(node.urls.health);
    expect(await tcpRefused(rtmpPort)).toBe(false);

    // Heartbeats to the closed origin fail and are logged, without stopping the node.
    await new Promise((r) => setTimeout(r, 500));
    await node.stop('test');
    // A second stop is the same stop.
    await node.stop('test again');

    expect(await tcpRefused(rtmpPort)).toBe(true);
    expect(await tcpRefused(whipPort)).toBe(true);
    expect(await tcpRefused(healthPort)).toBe(true);
    expect(await udpFree(srtPort)).toBe(true);
    expect(log.lines.filter((l) => l.msg === 'stopped')).toHaveLength(1);
    // Nothing of the node keeps the process alive: no more servers, sockets, UDP handles or timers than before it started.
    await new Promise((r) => setTimeout(r, 50));
    const after = process.getActiveResourcesInfo();
    for (const kind of new Set(after)) {
      expect({ kind, count: countOf(kind, after) }).toEqual({ kind, count: expect.toSatisfy((n: number) => n <= countOf(kind, baseline)) });
    }
  });
});
