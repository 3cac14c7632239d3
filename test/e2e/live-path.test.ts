// The live path on the real stack: wrangler dev (workerd, R2, DO, D1), the transcoder, ffmpeg
// publishing RTMP. A client follows the live playlists with blocking reloads the way hls.js does,
// every response is parsed with m3u8-parser and checked against the LL-HLS rules, the media is
// checked with mux.js, and ffmpeg plays the multivariant URL as an independent player.
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { connect } from 'node:net';
import { tmpdir } from 'node:os';
import { gunzipSync } from 'node:zlib';
import { join } from 'node:path';
import muxjs from 'mux.js';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startStack, startTestPublisher, stopChild, type CreatedStream, type Stack } from '../../scripts/local-stack.ts';
import { createLogger } from '../../transcoder-node/log.ts';
import { followPlaylist, parsePlaylist, type ParsedPlaylist } from '../support/llhls-client.ts';

/** The body of a chunked HTTP/1.1 answer (raw socket reads keep the chunk framing). */
function dechunk(raw: Buffer): Buffer {
  const out: Buffer[] = [];
  let at = 0;
  for (;;) {
    const eol = raw.indexOf('\r\n', at);
    const size = parseInt(raw.subarray(at, eol).toString('latin1'), 16);
    if (!size) return Buffer.concat(out);
    out.push(raw.subarray(eol + 2, eol + 2 + size));
    at = eol + 2 + size + 2;
  }
}

const log = createLogger({ service: 'e2e-live' });
let dir: string;
let stack: Stack;
let stream: CreatedStream;
let publisher: ChildProcess;
const LADDER = [
  { name: '360p', kind: 'video', width: 640, height: 360, videoBitrate: 700_000 },
  { name: '240p', kind: 'video', width: 426, height: 240, videoBitrate: 300_000 },
  { name: 'audio', kind: 'audio', audioBitrate: 96_000 },
];

async function text(url: string): Promise<string> {
  const res = await fetch(url);
  if (!res.ok) throw new Error(`${url}: ${res.status} ${await res.text()}`);
  return res.text();
}

async function bytes(url: string): Promise<Uint8Array> {
  const res = await fetch(url);
  if (!res.ok) throw new Error(`${url}: ${res.status}`);
  return new Uint8Array(await res.arrayBuffer());
}

async function waitForPlaylist(url: string, minSegments: number, timeoutMs = 30_000): Promise<ParsedPlaylist> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const res = await fetch(url);
    if (res.ok) {
      const pl = parsePlaylist(await res.text());
      if (pl.segments.length >= minSegments) return pl;
    } else await res.body?.cancel();
    if (Date.now() > deadline) throw new Error(`${url} did not reach ${minSegments} segments`);
    await new Promise((r) => setTimeout(r, 250));
  }
}

beforeAll(async () => {
  dir = mkdtempSync(join(tmpdir(), 'edgelive-e2e-'));
  stack = await startStack({
    persistDir: join(dir, 'state'),
    logDir: join(dir, 'logs'),
    adminToken: 'e2e-admin',
    ingestSecret: 'e2e-ingest-secret',
    endGraceSeconds: 3,
    logger: log,
  });
  stream = await stack.createStream({ title: 'e2e', ladder: LADDER });
  publisher = startTestPublisher({ rtmpUrl: stream.ingest.rtmp, width: 640, height: 360, logDir: join(dir, 'logs') });
  await waitForPlaylist(`${stack.workerUrl}/live/${stream.id}/360p/index.m3u8`, 3);
});

afterAll(async () => {
  await stopChild(publisher);
  await stack?.stop();
  if (dir && !process.env.KEEP_E2E) rmSync(dir, { recursive: true, force: true });
});

describe('live path end to end', () => {
  it('serves a multivariant playlist for the ladder with codecs from the real init segments', async () => {
    const mv = await text(stream.playback.hls);
    expect(mv.startsWith('#EXTM3U\n')).toBe(true);
    expect(mv).toMatch(/#EXT-X-STREAM-INF:.*BANDWIDTH=\d+.*CODECS="avc1\.[0-9a-f]{6},mp4a\.40\.2".*RESOLUTION=640x360/);
    expect(mv).toMatch(/RESOLUTION=426x240/);
    expect(mv).toMatch(/#EXT-X-MEDIA:TYPE=AUDIO,GROUP-ID="audio".*URI="audio\/index.m3u8"/);
  });

  it('follows the live playlist with blocking reloads like hls.js, every update valid LL-HLS, every hinted part served', async () => {
    const { samples, violations, hints } = await followPlaylist({
      url: `${stack.workerUrl}/live/${stream.id}/360p/index.m3u8`,
      updates: 25,
      otherRenditions: 2,
      fetchHints: true,
    });
    expect(violations).toEqual([]);
    expect(samples).toHaveLength(25);
    // PH-01/PH-05: like Safari, the follower fetched every hinted part; none was a 404, also at
    // the segment boundaries of these 5 s (the hint after a segment's final part is {L+1}.0).
    expect(hints.length).toBeGreaterThanOrEqual(20);
    expect(hints.filter((h) => h.status !== 200)).toEqual([]);
    expect(hints.filter((h) => /\/\d+\.0\.m4s$/.test(h.uri)).length).toBeGreaterThanOrEqual(3);
    // After the first (non-blocking) request, each answer arrives when the next part is out:
    // a part every ~200 ms, so the median wait is well under the part target plus slack.
    const waits = samples
      .slice(1)
      .map((s) => s.waitMs)
      .sort((a, b) => a - b);
    expect(waits[Math.floor(waits.length / 2)]).toBeLessThan(400);
    const last = samples.at(-1)!.playlist;
    expect(last.partInf?.partTarget).toBe(0.2);
    expect(last.serverControl?.partHoldBack).toBeCloseTo(0.6, 6);
    expect(last.mediaSequence).toBeGreaterThanOrEqual(1);
  });

  it('PART-07: the parts of a segment concatenate to the segment bytes, and mux.js reads continuous timestamps', async () => {
    const base = `${stack.workerUrl}/live/${stream.id}/360p/`;
    const pl = parsePlaylist(await text(base + 'index.m3u8'));
    const withParts = pl.segments.filter((s) => s.parts?.length);
    expect(withParts.length).toBeGreaterThanOrEqual(2);
    const init = await bytes(base + withParts[0]!.map!.uri);
    const timescales = muxjs.mp4.probe.timescale(init);
    let previousEnd: number | null = null;
    for (const seg of withParts) {
      const segBytes = await bytes(base + seg.uri);
      const parts = await Promise.all(seg.parts!.map((p) => bytes(base + p.uri)));
      const joined = new Uint8Array(parts.reduce((n, p) => n + p.byteLength, 0));
      let off = 0;
      for (const p of parts) {
        joined.set(p, off);
        off += p.byteLength;
      }
      expect(Buffer.from(joined).equals(Buffer.from(segBytes))).toBe(true);
      expect(seg.parts![0]!.independent).toBe(true);
      const start = muxjs.mp4.probe.startTime(timescales, segBytes);
      if (previousEnd !== null && !seg.discontinuity) expect(Math.abs(start - previousEnd)).toBeLessThan(0.002);
      previousEnd = start + seg.duration;
    }
  });

  it('serves media with immutable caching, and playlists gzipped only to a client that accepts gzip (Vary: Accept-Encoding)', async () => {
    const base = `${stack.workerUrl}/live/${stream.id}/360p/`;
    const pl = parsePlaylist(await text(base + 'index.m3u8'));
    const res = await fetch(base + pl.segments[0]!.uri);
    expect(res.headers.get('cache-control')).toBe('public, max-age=31536000, immutable');
    await res.body?.cancel();
    // Raw socket requests, so nothing decompresses or adds an Accept-Encoding behind our back.
    const port = Number(new URL(stack.workerUrl).port);
    const rawGet = (path: string, acceptEncoding: string | null) =>
      new Promise<{ head: string; body: Buffer }>((resolve, reject) => {
        const sock = connect(port, '127.0.0.1', () => {
          const ae = acceptEncoding === null ? '' : `Accept-Encoding: ${acceptEncoding}\r\n`;
          sock.write(`GET ${path} HTTP/1.1\r\nHost: 127.0.0.1\r\n${ae}Connection: close\r\n\r\n`);
        });
        const chunks: Buffer[] = [];
        sock.on('data', (d) => chunks.push(d));
        sock.on('end', () => {
          const all = Buffer.concat(chunks);
          const split = all.indexOf('\r\n\r\n');
          resolve({ head: all.subarray(0, split).toString('latin1').toLowerCase(), body: all.subarray(split + 4) });
        });
        sock.on('error', reject);
      });
    const lastMsn = pl.mediaSequence + pl.segments.length - 1;
    // A blocking request (cached per colo) and a plain one, each asked first with gzip so that any
    // cached or coalesced answer exists before the clients that do not accept it ask.
    for (const path of [`/live/${stream.id}/360p/index.m3u8`, `/live/${stream.id}/360p/index.m3u8?_HLS_msn=${lastMsn}`]) {
      const gz = await rawGet(path, 'gzip, deflate, br');
      expect(gz.head).toContain('content-encoding: gzip');
      // Gzipped once (a blocking answer is compressed once for all its viewers, never twice).
      const wire = gz.head.includes('transfer-encoding: chunked') ? dechunk(gz.body) : gz.body;
      expect(gunzipSync(wire).toString('latin1')).toContain('#EXTM3U');
      expect(gz.head).toMatch(/vary: .*accept-encoding/);
      for (const ae of [null, 'identity', 'gzip;q=0, identity']) {
        const plain = await rawGet(path, ae);
        expect(plain.head, `Accept-Encoding: ${ae}`).not.toContain('content-encoding');
        expect(plain.head).toMatch(/vary: .*accept-encoding/);
        expect(plain.head).toContain('access-control-allow-origin: *');
        // Chunked or not, the body is the playlist text itself.
        expect(plain.body.toString('latin1')).toContain('#EXTM3U');
      }
    }
  });

  it('ffmpeg, as an independent player, decodes 5 s of the multivariant URL without errors', () => {
    const r = spawnSync(
      'ffmpeg',
      ['-hide_banner', '-loglevel', 'error', '-i', stream.playback.hls, '-t', '5', '-map', '0:v:0', '-map', '0:a:0', '-f', 'null', '-'],
      {
        encoding: 'utf8',
        timeout: 60_000,
      },
    );
    expect(r.stderr.trim()).toBe('');
    expect(r.status).toBe(0);
  });

  it('refuses a wrong stream key before any media is accepted, and the transcoder keeps running', async () => {
    const bad = spawn('ffmpeg', [
      '-hide_banner',
      '-loglevel',
      'error',
      '-re',
      '-f',
      'lavfi',
      '-i',
      'testsrc2=size=160x120:rate=15',
      '-t',
      '3',
      '-c:v',
      'libx264',
      '-preset',
      'ultrafast',
      '-f',
      'flv',
      `${stack.rtmpUrl}/sk_wrong_key`,
    ]);
    const code = await new Promise<number | null>((resolve) => bad.on('exit', resolve));
    expect(code).not.toBe(0);
    const health = (await (await fetch(stack.transcoderHealthUrl)).json()) as { ok: boolean; sessions: unknown[] };
    expect(health.ok).toBe(true);
    expect(health.sessions).toHaveLength(1);
  });

  it('survives garbage on the RTMP port; a crashed publisher ends only its own stream (ENDLIST after the grace period)', async () => {
    const port = Number(new URL(stack.rtmpUrl).port);
    await new Promise<void>((resolve) => {
      const sock = connect(port, '127.0.0.1', () => sock.end(Buffer.from('GET / HTTP/1.1\r\nHost: x\r\n\r\n' + 'garbage'.repeat(500))));
      sock.on('close', () => resolve());
      sock.on('error', () => resolve());
    });
    const other = await stack.createStream({ title: 'second', ladder: [LADDER[1], LADDER[2]] });
    const second = startTestPublisher({ rtmpUrl: other.ingest.rtmp, width: 426, height: 240 });
    await waitForPlaylist(`${stack.workerUrl}/live/${other.id}/240p/index.m3u8`, 2);
    second.kill('SIGKILL');
    // The first stream keeps publishing while the second ends.
    const ended = await (async () => {
      const deadline = Date.now() + 30_000;
      while (Date.now() < deadline) {
        const pl = parsePlaylist(await text(`${stack.workerUrl}/live/${other.id}/240p/index.m3u8`));
        if (pl.endList) return pl;
        await new Promise((r) => setTimeout(r, 500));
      }
      return null;
    })();
    expect(ended?.endList).toBe(true);
    const first = parsePlaylist(await text(`${stack.workerUrl}/live/${stream.id}/360p/index.m3u8`));
    expect(first.endList).toBeFalsy();
    const status = (await (
      await fetch(`${stack.workerUrl}/api/streams/${other.id}`, { headers: { authorization: `Bearer ${stack.adminToken}` } })
    ).json()) as { status: string };
    expect(status.status).toBe('ended');
  });

  it('a publisher that reconnects continues the media sequence with a discontinuity and a new map', async () => {
    const url = `${stack.workerUrl}/live/${stream.id}/360p/index.m3u8`;
    const before = parsePlaylist(await text(url));
    const lastMsnBefore = before.mediaSequence + before.segments.length - 1;
    await stopChild(publisher);
    publisher = startTestPublisher({ rtmpUrl: stream.ingest.rtmp, width: 640, height: 360 });
    const deadline = Date.now() + 30_000;
    let after: ParsedPlaylist | null = null;
    while (Date.now() < deadline) {
      const pl = parsePlaylist(await text(url));
      const disc = pl.segments.findIndex((s) => s.discontinuity);
      if (disc >= 0 && pl.segments.length - disc >= 2) {
        after = pl;
        break;
      }
      await new Promise((r) => setTimeout(r, 300));
    }
    expect(after).not.toBeNull();
    const disc = after!.segments.findIndex((s) => s.discontinuity);
    expect(after!.mediaSequence + disc).toBeGreaterThan(lastMsnBefore);
    expect(after!.segments[disc]!.map!.uri).not.toBe(after!.segments[disc - 1]?.map?.uri);
    expect(after!.endList).toBeFalsy();
    // Every rendition numbers the new epoch alike: its first segment has the same MSN everywhere
    // (a rendition that lagged gets EXT-X-GAP segments, never a skipped MSN).
    const firstOfEpoch = async (rendition: string) => {
      for (let tries = 0; ; tries++) {
        const pl = parsePlaylist(await text(`${stack.workerUrl}/live/${stream.id}/${rendition}/index.m3u8`));
        const d = pl.segments.findIndex((s) => s.discontinuity);
        if (d >= 0 || tries > 30) return { msn: pl.mediaSequence + d, uri: pl.segments[d]?.uri };
        await new Promise((r) => setTimeout(r, 300));
      }
    };
    const firsts = await Promise.all(['360p', '240p', 'audio'].map(firstOfEpoch));
    expect(new Set(firsts.map((f) => f.msn)).size).toBe(1);
    for (const f of firsts) expect(f.uri).toMatch(new RegExp(`/${f.msn}\\.m4s$`));
  });

  // Issue 11, item 12: a leaked key cannot cut into a live show (the default takeover policy), and
  // rotating the key ends the session that used the old one, on the media node too.
  const ingestSession = async () =>
    (
      (await (
        await fetch(`${stack.workerUrl}/api/streams/${stream.id}`, { headers: { authorization: `Bearer ${stack.adminToken}` } })
      ).json()) as { ingestSession: { epoch: number } | null }
    ).ingestSession;
  const exited = (child: ChildProcess) =>
    new Promise<number | null>((resolve) => (child.exitCode !== null ? resolve(child.exitCode) : child.once('exit', resolve)));

  it('a second publisher with the same key is refused while the first is live; the first goes on', async () => {
    const epoch = (await ingestSession())!.epoch;
    const intruder = startTestPublisher({ rtmpUrl: stream.ingest.rtmp, width: 426, height: 240, durationSeconds: 20 });
    expect(await exited(intruder)).not.toBe(0);
    expect((await ingestSession())!.epoch).toBe(epoch);
    expect(publisher.exitCode).toBeNull();
    // The first publisher's segments keep coming.
    const url = `${stack.workerUrl}/live/${stream.id}/360p/index.m3u8`;
    const lastMsn = (pl: ParsedPlaylist) => pl.mediaSequence + pl.segments.length - 1;
    const before = lastMsn(parsePlaylist(await text(url)));
    const deadline = Date.now() + 20_000;
    let after = before;
    while (after <= before + 1 && Date.now() < deadline) {
      await new Promise((r) => setTimeout(r, 300));
      after = lastMsn(parsePlaylist(await text(url)));
    }
    expect(after).toBeGreaterThan(before + 1);
  });

  it('rotate-key disconnects the publisher of the old key; the new key publishes at once', async () => {
    const epoch = (await ingestSession())!.epoch;
    const res = await fetch(`${stack.workerUrl}/api/streams/${stream.id}/rotate-key`, {
      method: 'POST',
      headers: { authorization: `Bearer ${stack.adminToken}` },
    });
    const rotated = (await res.json()) as { streamKey: string; endedSession: { epoch: number } | null };
    expect(rotated.endedSession).toEqual({ epoch });
    // The node hears 409 lease_revoked on its next push and drops the publisher.
    const code = await Promise.race([
      exited(publisher),
      new Promise<'still publishing'>((r) => setTimeout(() => r('still publishing'), 20_000)),
    ]);
    expect(code).not.toBe('still publishing');
    publisher = startTestPublisher({ rtmpUrl: `${stack.rtmpUrl}/${rotated.streamKey}`, width: 640, height: 360 });
    const deadline = Date.now() + 30_000;
    while (((await ingestSession())?.epoch ?? 0) <= epoch && Date.now() < deadline) await new Promise((r) => setTimeout(r, 300));
    expect((await ingestSession())!.epoch).toBe(epoch + 1);
    const pl = parsePlaylist(await text(`${stack.workerUrl}/live/${stream.id}/360p/index.m3u8`));
    expect(pl.endList).toBeFalsy();
  });
});
