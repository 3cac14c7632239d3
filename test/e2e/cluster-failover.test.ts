// A two-node ingest cluster on the real stack: wrangler dev, transcoders "eu-1" (Frankfurt) and
// "us-1" (Ashburn), ffmpeg publishers over RTMP and SRT. Geo-routed stream creation; a publisher
// moving from one node to the other (new epoch, the old node's ffmpeg stops, DISCONTINUITY,
// growing MSNs); then kill -9 of the node in the middle of the stream and the publisher coming
// back over SRT to the other node: every part acknowledged before the kill is still served with
// the same URI and bytes (or inside its segment), and playback goes on.
import type { ChildProcess } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startStack, startTestPublisher, stopChild, type CreatedStream, type Stack } from '../../scripts/local-stack.ts';
import { createLogger } from '../../transcoder-node/log.ts';
import { followPlaylist, parsePlaylist, type ParsedPlaylist } from '../support/llhls-client.ts';

const log = createLogger({ service: 'e2e-cluster' });
const LADDER = [
  { name: '180p', kind: 'video', width: 320, height: 180, videoBitrate: 250_000 },
  { name: 'audio', kind: 'audio', audioBitrate: 64_000 },
];
const EU = { nodeId: 'eu-1', region: 'eu-central', latitude: 50.11, longitude: 8.68 };
const US = { nodeId: 'us-1', region: 'us-east', latitude: 39.04, longitude: -77.49 };
const LONDON = '51.5074,-0.1278';
const NEW_YORK = '40.7128,-74.0060';

let dir: string;
let stack: Stack;
let stream: CreatedStream;
const publishers: ChildProcess[] = [];

const admin = () => ({ authorization: `Bearer ${stack.adminToken}` });
const playlistUrl = () => `${stack.workerUrl}/live/${stream.id}/180p/index.m3u8`;
const node = (id: string) => stack.nodes.filter((n) => n.nodeId === id).at(-1)!;

async function playlist(): Promise<ParsedPlaylist> {
  const res = await fetch(playlistUrl());
  if (!res.ok) throw new Error(`playlist: ${res.status} ${await res.text()}`);
  return parsePlaylist(await res.text());
}

async function bytes(uri: string): Promise<Buffer> {
  const res = await fetch(new URL(uri, playlistUrl()));
  if (!res.ok) throw new Error(`${uri}: ${res.status}`);
  return Buffer.from(await res.arrayBuffer());
}

async function until<T>(what: string, fn: () => Promise<T | null | undefined | false>, timeoutMs = 30_000): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const v = await fn().catch(() => null);
    if (v) return v;
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 250));
  }
}

async function ingestSession(): Promise<{ nodeId: string; epoch: number } | null> {
  const res = await fetch(`${stack.workerUrl}/api/streams/${stream.id}`, { headers: admin() });
  return ((await res.json()) as { ingestSession: { nodeId: string; epoch: number } | null }).ingestSession;
}

async function nodeSessions(id: string): Promise<Array<{ streamId: string; epoch: number; ffmpegPid?: number }>> {
  const res = await fetch(node(id).healthUrl);
  return ((await res.json()) as { sessions: Array<{ streamId: string; epoch: number; ffmpegPid?: number }> }).sessions;
}

const msnOf = (pl: ParsedPlaylist, i: number) => pl.mediaSequence + (pl.skip?.skippedSegments ?? 0) + i;
const lastMsn = (pl: ParsedPlaylist) => msnOf(pl, pl.segments.length - 1);

/** MSN → URI of every segment listed; fails the test if a later poll renumbers or renames one. */
class UriLedger {
  readonly seen = new Map<number, string>();
  record(pl: ParsedPlaylist): void {
    pl.segments.forEach((s, i) => {
      const msn = msnOf(pl, i);
      const before = this.seen.get(msn);
      if (before !== undefined) expect(s.uri, `MSN ${msn} changed its URI`).toBe(before);
      this.seen.set(msn, s.uri);
    });
  }
}

function alive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch {
    return false;
  }
}

beforeAll(async () => {
  dir = mkdtempSync(join(tmpdir(), 'edgelive-cluster-'));
  stack = await startStack({
    persistDir: join(dir, 'state'),
    logDir: join(dir, 'logs'),
    adminToken: 'e2e-admin',
    ingestSecret: 'e2e-ingest-secret',
    // Long enough that the stream does not end while the publisher moves or comes back.
    endGraceSeconds: 15,
    // The dev-only location claim (x-edgelive-dev-location) stands in for request.cf.
    workerVars: { DEV_GEO_OVERRIDE: '1' },
    transcoderEnv: { HEARTBEAT_MS: '1000', THUMBNAIL_INTERVAL_SECONDS: '0' },
    transcoders: [EU, US],
    logger: log,
  });
  await stack.waitForRegistry([EU.nodeId, US.nodeId]);
});

afterAll(async () => {
  await Promise.all(publishers.map((p) => stopChild(p)));
  await stack?.stop();
  if (dir && !process.env.KEEP_E2E) rmSync(dir, { recursive: true, force: true });
});

describe('ingest cluster', () => {
  it('creates streams on the node nearest the caller, with RTMP and SRT URLs; the nearest list is public', async () => {
    const res = await fetch(`${stack.workerUrl}/api/streams`, {
      method: 'POST',
      headers: { ...admin(), 'content-type': 'application/json', 'x-edgelive-dev-location': LONDON },
      // An encoder failing over to the other node while the first still sends: `allow` takeovers.
      body: JSON.stringify({ title: 'cluster', ladder: LADDER, takeover: 'allow' }),
    });
    expect(res.status).toBe(201);
    stream = (await res.json()) as CreatedStream;
    expect(stream.ingest).toEqual({
      rtmp: `${node('eu-1').rtmpUrl}/${stream.streamKey}`,
      rtmps: null,
      srt: `${node('eu-1').srtUrl}?streamid=${stream.streamKey}`,
      whip: node('eu-1').whipUrl,
      nodeId: 'eu-1',
      region: 'eu-central',
      // The other node, for an encoder's backup server (test/e2e/backup-ingest.test.ts).
      backup: {
        rtmp: `${node('us-1').rtmpUrl}/${stream.streamKey}`,
        rtmps: null,
        srt: `${node('us-1').srtUrl}?streamid=${stream.streamKey}`,
        whip: node('us-1').whipUrl,
        nodeId: 'us-1',
        region: 'us-east',
      },
    });
    const nearest = await fetch(`${stack.workerUrl}/api/ingest/nearest`, { headers: { 'x-edgelive-dev-location': NEW_YORK } });
    expect(nearest.status).toBe(200);
    const body = (await nearest.json()) as { nodes: Array<{ nodeId: string; ingest: { rtmp: string; srt: string; whip: string } }> };
    expect(body.nodes.map((n) => n.nodeId)).toEqual(['us-1', 'eu-1']);
    expect(body.nodes[0]!.ingest).toEqual({
      rtmp: node('us-1').rtmpUrl,
      rtmps: null,
      srt: node('us-1').srtUrl,
      whip: node('us-1').whipUrl,
    });
  });

  it('a publisher that moves to the other node takes the stream over: new epoch, the old node stops its ffmpeg, DISCONTINUITY, MSNs grow', async () => {
    const onEu = startTestPublisher({ rtmpUrl: stream.ingest.rtmp, width: 320, height: 180, logDir: join(dir, 'logs') });
    publishers.push(onEu);
    const ledger = new UriLedger();
    const before = await until('three segments from eu-1', async () => {
      const pl = await playlist();
      ledger.record(pl);
      return pl.segments.length >= 3 ? pl : null;
    });
    expect(await ingestSession()).toMatchObject({ nodeId: 'eu-1', epoch: 1 });
    const [euSession] = await nodeSessions('eu-1');
    expect(euSession).toMatchObject({ streamId: stream.id, epoch: 1 });
    const euFfmpeg = euSession!.ffmpegPid!;
    expect(alive(euFfmpeg)).toBe(true);

    // The same broadcast now also reaches us-1 (an encoder failing over): us-1 takes the lease
    // while eu-1's publisher is still sending.
    const onUs = startTestPublisher({ rtmpUrl: `${node('us-1').rtmpUrl}/${stream.streamKey}`, width: 320, height: 180 });
    publishers.push(onUs);
    await until('the lease on us-1', async () => (await ingestSession())?.nodeId === 'us-1');
    expect(await ingestSession()).toMatchObject({ nodeId: 'us-1', epoch: 2 });

    // eu-1's next push got 409 stale_epoch: it stopped its ffmpeg and dropped its publisher.
    await until('eu-1 to let go', async () => (await nodeSessions('eu-1')).length === 0, 15_000);
    await until('eu-1’s ffmpeg to exit', async () => !alive(euFfmpeg), 10_000);
    const euPublisherExit = await new Promise<number | null>((resolve) =>
      onEu.exitCode !== null ? resolve(onEu.exitCode) : onEu.once('exit', (code) => resolve(code)),
    );
    expect(euPublisherExit).not.toBe(0);
    expect(readFileSync(join(dir, 'logs', 'transcoder-eu-1.log'), 'utf8')).toContain('another ingest took the stream over');

    const after = await until('two segments of epoch 2 after a discontinuity', async () => {
      const pl = await playlist();
      ledger.record(pl);
      const disc = pl.segments.findIndex((s) => s.discontinuity);
      return disc >= 0 && pl.segments.length - disc >= 2 ? pl : null;
    });
    const disc = after.segments.findIndex((s) => s.discontinuity);
    expect(msnOf(after, disc)).toBeGreaterThan(lastMsn(before) - 1);
    expect(after.segments[disc]!.map!.uri).not.toBe(after.segments[disc - 1]!.map!.uri);
    expect(after.segments[disc]!.uri.startsWith('2/')).toBe(true);
    expect(after.endList).toBeFalsy();
  });

  it('kill -9 of the node mid-stream: the publisher comes back over SRT to the other node, nothing acknowledged is lost or renumbered, playback goes on', async () => {
    const ledger = new UriLedger();
    const us = node('us-1');
    // Everything the origin has acknowledged so far is listed: take it all, bytes included.
    const before = await playlist();
    ledger.record(before);
    const acked = new Map<number, { uri: string; bytes: Buffer | null; parts: Buffer[] }>();
    for (const [i, s] of before.segments.entries()) {
      const msn = msnOf(before, i);
      acked.set(msn, { uri: s.uri, bytes: await bytes(s.uri), parts: s.parts ? await Promise.all(s.parts.map((p) => bytes(p.uri))) : [] });
    }
    const open = before.preloadSegment?.parts ?? [];
    const openMsn = msnOf(before, before.segments.length);
    const openParts = await Promise.all(open.map((p) => bytes(p.uri)));
    expect(openParts.length + acked.size).toBeGreaterThan(3);

    us.process.kill('SIGKILL');
    await new Promise((r) => us.process.once('exit', r));
    // Its publisher loses the connection and comes back to the other node, this time over SRT.
    const usPublisher = publishers.at(-1)!;
    await until('the us-1 publisher to notice', async () => usPublisher.exitCode !== null || usPublisher.signalCode !== null, 20_000).catch(
      () => stopChild(usPublisher),
    );
    const back = startTestPublisher({ rtmpUrl: stream.ingest.srt!, width: 320, height: 180 });
    publishers.push(back);
    await until('the lease on eu-1 over SRT', async () => (await ingestSession())?.nodeId === 'eu-1');
    expect((await ingestSession())!.epoch).toBe(3);

    const after = await until('two segments of epoch 3', async () => {
      const pl = await playlist();
      ledger.record(pl);
      const discs = pl.segments.map((s, i) => (s.discontinuity ? i : -1)).filter((i) => i >= 0);
      const last = discs.at(-1);
      return last !== undefined &&
        msnOf(pl, last) > openMsn - 1 &&
        pl.segments.length - last >= 2 &&
        pl.segments[last]!.uri.startsWith('3/')
        ? pl
        : null;
    });
    // Every acknowledged segment keeps its MSN, URI and bytes.
    const listed = new Map(after.segments.map((s, i) => [msnOf(after, i), s]));
    for (const [msn, a] of acked) {
      const now = listed.get(msn);
      expect(now?.uri, `MSN ${msn}`).toBe(a.uri);
      expect((await bytes(a.uri)).equals(a.bytes!), `bytes of MSN ${msn}`).toBe(true);
      if (now?.parts) for (const [j, p] of now.parts.entries()) if (a.parts[j]) expect((await bytes(p.uri)).equals(a.parts[j]!)).toBe(true);
    }
    // The segment that was open at the kill was closed from its acknowledged parts: same MSN,
    // and its bytes begin with every part acknowledged before the kill, in order.
    if (openParts.length > 0) {
      const closed = listed.get(openMsn);
      expect(closed, `the open segment ${openMsn} is listed`).toBeDefined();
      const segBytes = await bytes(closed!.uri);
      const prefix = Buffer.concat(openParts);
      expect(segBytes.subarray(0, prefix.length).equals(prefix)).toBe(true);
      for (const [j, p] of open.entries()) expect((await bytes(p.uri)).equals(openParts[j]!)).toBe(true);
    }
    // MSNs only grow: epoch 3 starts after everything before it.
    const lastDisc = after.segments
      .map((s, i) => (s.discontinuity ? i : -1))
      .filter((i) => i >= 0)
      .at(-1)!;
    expect(msnOf(after, lastDisc)).toBeGreaterThan(Math.max(...acked.keys(), open.length > 0 ? openMsn : 0));

    // Playback goes on: a player following with blocking reloads sees valid LL-HLS.
    const { samples, violations } = await followPlaylist({ url: playlistUrl(), updates: 8, otherRenditions: 1 });
    expect(violations).toEqual([]);
    expect(samples).toHaveLength(8);

    // The killed node missed its heartbeats and dropped out of the registry.
    await stack.waitForRegistry(['eu-1'], 15_000);
  });
});
