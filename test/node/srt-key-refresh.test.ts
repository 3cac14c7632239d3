// Long encrypted SRT streams: libsrt (ffmpeg) refreshes the stream key every `kmrefreshrate`
// packets (2^24 by default, hours into a real stream). With a short interval the publish must go
// on for its whole length and the listener must hand on MPEG-TS without a single gap.
import { spawn, spawnSync } from 'node:child_process';
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { createLogger } from '../../transcoder-node/log.ts';
import { SrtIngestServer, type SrtPublishSession } from '../../transcoder-node/srt/server.ts';

const PASSPHRASE = 'correct-horse-battery';
const dir = mkdtempSync(join(tmpdir(), 'edgelive-srt-km-'));
let server: SrtIngestServer<string> | null = null;

afterEach(async () => {
  await server?.close();
  server = null;
});

/** Continuity-counter errors in an MPEG-TS byte stream: a lost or reordered packet on any PID shows as one. */
function continuityErrors(ts: Buffer): { packets: number; errors: number } {
  const last = new Map<number, number>();
  let errors = 0;
  for (let off = 0; off + 188 <= ts.length; off += 188) {
    if (ts[off] !== 0x47) {
      errors++;
      continue;
    }
    const pid = ((ts[off + 1]! & 0x1f) << 8) | ts[off + 2]!;
    if (pid === 0x1fff) continue; // null packets (CBR padding) carry no counter
    const hasPayload = (ts[off + 3]! & 0x10) !== 0;
    const discontinuity = (ts[off + 3]! & 0x20) !== 0 && ts[off + 4]! > 0 && (ts[off + 5]! & 0x80) !== 0;
    const cc = ts[off + 3]! & 0x0f;
    const prev = last.get(pid);
    if (prev !== undefined && hasPayload && !discontinuity && cc !== ((prev + 1) & 0x0f) && cc !== prev) errors++;
    if (hasPayload || prev === undefined) last.set(pid, cc);
  }
  return { packets: Math.floor(ts.length / 188), errors };
}

describe('SRT key refresh (issue 11 item 6)', () => {
  it('an encrypted publish refreshing its key every 2000 packets runs 15 s without a gap', async () => {
    const sessions: Array<{ session: SrtPublishSession<string>; chunks: Buffer[]; ended: Promise<string> }> = [];
    server = new SrtIngestServer<string>({
      host: '127.0.0.1',
      port: 0,
      passphrase: PASSPHRASE,
      logger: createLogger({ service: 'test-srt-km' }),
      authorize: async ({ streamKey }) => ({ ok: true, context: streamKey }),
      onPublish: (session) => {
        const s = { session, chunks: [] as Buffer[], ended: new Promise<string>((resolve) => session.onEnd((code) => resolve(code))) };
        session.media.on('data', (c: Buffer) => s.chunks.push(c));
        sessions.push(s);
      },
    });
    await server.listen();
    const url = `srt://127.0.0.1:${server.address().port}?streamid=sk_long&passphrase=${PASSPHRASE}&kmrefreshrate=2000&kmpreannounce=500`;
    // A constant 4 Mbit/s (the muxer pads with null packets): about 380 SRT packets a second, so
    // the key changes every ~5 s, and cheap to encode.
    const ffmpeg = spawn('ffmpeg', [
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
      '15',
      '-c:v',
      'libx264',
      '-preset',
      'ultrafast',
      '-g',
      '25',
      '-c:a',
      'aac',
      '-muxrate',
      '4000000',
      '-f',
      'mpegts',
      url,
    ]);
    let stderr = '';
    ffmpeg.stderr.on('data', (d) => (stderr += d));
    const code = await new Promise<number | null>((resolve) => ffmpeg.on('exit', resolve));
    expect(code, stderr).toBe(0);
    expect(sessions).toHaveLength(1);
    const { session, chunks, ended } = sessions[0]!;
    expect(await ended).toBe('shutdown');

    const ts = Buffer.concat(chunks);
    const file = join(dir, 'long.ts');
    writeFileSync(file, ts);
    expect(ts.length % 188).toBe(0);
    const cc = continuityErrors(ts);
    expect(cc.packets).toBeGreaterThan(5000 * 7); // 7 TS packets per SRT packet
    expect(cc.errors).toBe(0);
    // At least two refreshes were announced (and confirmed), nothing failed to decrypt.
    expect(session.stats.keyRefreshes).toBeGreaterThanOrEqual(2);
    expect(session.stats.undecryptable).toBe(0);
    // ffmpeg reads what the ladder would read: 15 s of media, decoded without an error.
    const probe = spawnSync('ffprobe', ['-v', 'error', '-show_entries', 'format=duration', '-of', 'csv=p=0', file], { encoding: 'utf8' });
    expect(Number(probe.stdout.trim())).toBeGreaterThan(14.5);
    const decode = spawnSync('ffmpeg', ['-v', 'error', '-i', file, '-f', 'null', '-'], { encoding: 'utf8' });
    expect(decode.stderr).toBe('');
  });
});
