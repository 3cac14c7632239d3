// The SRT ingest server against a real libsrt caller (ffmpeg): several publishers at once on one
// port, the stream id checked before any media is accepted, passphrases, and recovery of lost
// packets through NAKs (a proxy in between drops some on their first transmission).
import { spawn } from 'node:child_process';
import { spawnSync } from 'node:child_process';
import { createSocket, type RemoteInfo } from 'node:dgram';
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { createLogger } from '../../transcoder-node/log.ts';
import { SrtIngestServer, type SrtPublishSession } from '../../transcoder-node/srt/server.ts';

const log = createLogger({ service: 'test-srt' });
const dir = mkdtempSync(join(tmpdir(), 'edgelive-srt-'));
let servers: SrtIngestServer<string>[] = [];

afterEach(async () => {
  await Promise.all(servers.map((s) => s.close()));
  servers = [];
});

interface Received {
  session: SrtPublishSession<string>;
  bytes: Buffer;
  ended: Promise<string>;
}

async function server(opts: { passphrase?: string; keys?: string[] } = {}) {
  const asked: string[] = [];
  const received: Received[] = [];
  const srv = new SrtIngestServer<string>({
    host: '127.0.0.1',
    port: 0,
    passphrase: opts.passphrase,
    logger: log,
    authorize: async ({ streamKey }) => {
      asked.push(streamKey);
      await new Promise((r) => setTimeout(r, 50)); // the origin takes a moment
      return (opts.keys ?? ['sk_good']).includes(streamKey)
        ? { ok: true, context: `stream-of-${streamKey}` }
        : { ok: false, reason: 'unknown_stream_key' };
    },
    onPublish: (session) => {
      const r: Received = { session, bytes: Buffer.alloc(0), ended: new Promise((resolve) => session.onEnd((code) => resolve(code))) };
      const chunks: Buffer[] = [];
      session.media.on('data', (c: Buffer) => chunks.push(c));
      session.media.on('end', () => (r.bytes = Buffer.concat(chunks)));
      received.push(r);
    },
  });
  await srv.listen();
  servers.push(srv);
  return { srv, port: srv.address().port, asked, received };
}

function publish(url: string, seconds = 2): Promise<{ code: number | null; stderr: string }> {
  const p = spawn('ffmpeg', [
    '-hide_banner',
    '-loglevel',
    'error',
    '-re',
    '-f',
    'lavfi',
    '-i',
    'testsrc2=size=320x180:rate=25',
    '-f',
    'lavfi',
    '-i',
    'sine=frequency=440',
    '-t',
    String(seconds),
    '-c:v',
    'libx264',
    '-preset',
    'ultrafast',
    '-g',
    '25',
    '-c:a',
    'aac',
    '-f',
    'mpegts',
    url,
  ]);
  let stderr = '';
  p.stderr.on('data', (d) => (stderr += d));
  return new Promise((resolve) => p.on('exit', (code) => resolve({ code, stderr })));
}

/** Seconds of media ffprobe finds in the received MPEG-TS. */
function probeSeconds(bytes: Buffer, name: string): number {
  const file = join(dir, name);
  writeFileSync(file, bytes);
  const r = spawnSync('ffprobe', ['-v', 'error', '-show_entries', 'format=duration', '-of', 'csv=p=0', file], { encoding: 'utf8' });
  return Number(r.stdout.trim());
}

describe('SRT ingest', () => {
  it('takes several publishers at once on one port, each stream id checked with the origin', async () => {
    const { port, asked, received } = await server({ keys: ['sk_a', 'sk_b', 'sk_c'] });
    const results = await Promise.all(['sk_a', 'sk_b', 'sk_c'].map((k) => publish(`srt://127.0.0.1:${port}?streamid=${k}`)));
    expect(results.map((r) => r.code)).toEqual([0, 0, 0]);
    expect(asked.sort()).toEqual(['sk_a', 'sk_b', 'sk_c']);
    expect(received.map((r) => r.session.context).sort()).toEqual(['stream-of-sk_a', 'stream-of-sk_b', 'stream-of-sk_c']);
    expect(await Promise.all(received.map((r) => r.ended))).toEqual(['shutdown', 'shutdown', 'shutdown']);
    for (const r of received) expect(probeSeconds(r.bytes, `${r.session.streamKey}.ts`)).toBeGreaterThan(1.8);
  });

  it('refuses an unknown stream key before any media is accepted (the caller gets a rejection)', async () => {
    const { port, asked, received } = await server();
    const r = await publish(`srt://127.0.0.1:${port}?streamid=sk_wrong`, 1);
    expect(r.code).not.toBe(0);
    expect(r.stderr).toMatch(/Connection to srt:\/\/.*failed/);
    expect(asked).toEqual(['sk_wrong']);
    expect(received).toEqual([]);
  });

  it('accepts the access-control stream id syntax (#!::r=KEY,m=publish)', async () => {
    const { port, received } = await server();
    // ffmpeg 5 does not URL-decode query values: the stream id goes in literally.
    const r = await publish(`srt://127.0.0.1:${port}?streamid=#!::r=sk_good,m=publish`, 1);
    expect(r.code).toBe(0);
    expect(received.map((x) => x.session.streamKey)).toEqual(['sk_good']);
  });

  it('with a passphrase: decrypts an encrypted publisher; refuses a wrong passphrase or none, without asking the origin', async () => {
    const { port, asked, received } = await server({ passphrase: 'correct-horse-battery' });
    const good = await publish(`srt://127.0.0.1:${port}?streamid=sk_good&passphrase=correct-horse-battery`, 2);
    expect(good.code).toBe(0);
    const wrong = await publish(`srt://127.0.0.1:${port}?streamid=sk_good&passphrase=wrong-passphrase`, 1);
    expect(wrong.code).not.toBe(0);
    const none = await publish(`srt://127.0.0.1:${port}?streamid=sk_good`, 1);
    expect(none.code).not.toBe(0);
    expect(asked).toEqual(['sk_good']);
    expect(received).toHaveLength(1);
    expect(received[0]!.session.encrypted).toBe(true);
    await received[0]!.ended;
    expect(probeSeconds(received[0]!.bytes, 'encrypted.ts')).toBeGreaterThan(1.8);
  });

  it('recovers lost packets: a lossy link between publisher and node still delivers the whole stream', async () => {
    const { port, received } = await server();
    // A UDP proxy that drops every 20th data packet the first time it passes.
    const proxy = createSocket('udp4');
    const upstream = createSocket('udp4');
    let client: RemoteInfo | null = null;
    let n = 0;
    let dropped = 0;
    proxy.on('message', (msg, rinfo) => {
      client = rinfo;
      const isData = (msg[0]! & 0x80) === 0;
      const retransmitted = isData && ((msg[4]! >> 2) & 1) === 1;
      if (isData && !retransmitted && ++n % 20 === 0) {
        dropped++;
        return;
      }
      upstream.send(msg, port, '127.0.0.1');
    });
    upstream.on('message', (msg) => client && proxy.send(msg, client.port, client.address));
    await new Promise<void>((r) => proxy.bind(0, '127.0.0.1', () => r()));
    try {
      const r = await publish(`srt://127.0.0.1:${proxy.address().port}?streamid=sk_good`, 2);
      expect(r.code).toBe(0);
      await received[0]!.ended;
      expect(dropped).toBeGreaterThan(5);
      const conn = received[0]!;
      expect(probeSeconds(conn.bytes, 'lossy.ts')).toBeGreaterThan(1.8);
      // Every byte arrived: a 188-byte-aligned TS with no packet lost for good.
      expect(conn.bytes.length % 188).toBe(0);
    } finally {
      proxy.close();
      upstream.close();
    }
  });

  it('close() ends every publisher and frees the port', async () => {
    const { srv, port, received } = await server();
    const pub = publish(`srt://127.0.0.1:${port}?streamid=sk_good`, 10);
    while (received.length === 0) await new Promise((r) => setTimeout(r, 50));
    await srv.close();
    expect(await received[0]!.ended).toBe('server-closing');
    const r = await pub;
    expect(r.code).not.toBeNull();
  });
});
