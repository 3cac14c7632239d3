// The SRT listener against publishers that break the rules on purpose (crafted UDP, no libsrt):
// sequence jumps, handshake floods, cleartext on an encrypted connection, keys it never announced.
// Every bound asserted here holds by construction (window size, bucket sizes), not by timing.
import { spawn } from 'node:child_process';
import { afterEach, describe, expect, it } from 'vitest';
import { createLogger } from '../../transcoder-node/log.ts';
import { SrtIngestServer, type SrtIngestOptions, type SrtPublishSession } from '../../transcoder-node/srt/server.ts';
import { Ctrl, Ext, HsType, KmState, decodeLossList, seqDiff } from '../../transcoder-node/srt/packet.ts';
import { RawSrtCaller, TestKeys } from '../support/srt-raw-client.ts';

const log = createLogger({ service: 'test-srt-hostile' });
const PASSPHRASE = 'correct-horse-battery';
let servers: SrtIngestServer<string>[] = [];
let callers: RawSrtCaller[] = [];

afterEach(async () => {
  for (const c of callers) c.close();
  callers = [];
  await Promise.all(servers.map((s) => s.close()));
  servers = [];
});

interface Publisher {
  session: SrtPublishSession<string>;
  chunks: Buffer[];
  ended: Promise<string>;
}

async function listener(opts: Partial<SrtIngestOptions<string>> = {}) {
  const publishers: Publisher[] = [];
  const srv = new SrtIngestServer<string>({
    host: '127.0.0.1',
    port: 0,
    logger: log,
    authorize: async ({ streamKey }) =>
      streamKey === 'sk_good' ? { ok: true, context: streamKey } : { ok: false, reason: 'unknown_stream_key' },
    onPublish: (session) => {
      const p: Publisher = { session, chunks: [], ended: new Promise((resolve) => session.onEnd((code) => resolve(code))) };
      session.media.on('data', (c: Buffer) => p.chunks.push(c));
      publishers.push(p);
    },
    ...opts,
  });
  await srv.listen();
  servers.push(srv);
  return { srv, port: srv.address().port, publishers };
}

async function caller(opts: Parameters<typeof RawSrtCaller.open>[0]): Promise<RawSrtCaller> {
  const c = await RawSrtCaller.open(opts);
  callers.push(c);
  return c;
}

/** A connected crafted caller and the session the listener made of it. */
async function connected(port: number, publishers: Publisher[], extra: Partial<Parameters<typeof RawSrtCaller.open>[0]> = {}) {
  const c = await caller({ port, streamId: 'sk_good', ...extra });
  const answer = await c.connect();
  expect(answer.type).toBe(HsType.CONCLUSION);
  while (publishers.length === 0) await new Promise((r) => setTimeout(r, 5));
  return { c, pub: publishers.at(-1)! };
}

const payload = (i: number) => Buffer.alloc(188, i & 0xff);
const settle = () => new Promise((r) => setTimeout(r, 100));

/** Waits until `ok()` holds (the listener runs in this process: it needs the event loop to read its socket). */
async function until(ok: () => boolean, what: string, timeoutMs = 5000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!ok()) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 10));
  }
}

describe('SRT sequence jumps (issue 11 item 4)', () => {
  it('ends a connection whose packet jumps beyond the negotiated flow window, as a protocol error', async () => {
    const { port, publishers } = await listener({ receiveWindow: 1024 });
    const { c, pub } = await connected(port, publishers);
    for (let i = 0; i < 5; i++) c.sendData(c.seq(i), payload(i));
    c.sendData(c.seq(150_000), payload(9)); // a jump of 150k packets
    expect(await pub.ended).toBe('protocol-error');
    // The caller is told (SHUTDOWN), and what came before the jump was delivered.
    await c.waitFor((p) => p.type === Ctrl.SHUTDOWN);
    expect(Buffer.concat(pub.chunks)).toEqual(Buffer.concat([0, 1, 2, 3, 4].map(payload)));
  });

  it('holds at most the flow window after a jump inside it, and NAKs it as ranges, not packet by packet', async () => {
    const window = 1024;
    // A long latency: the holes must not be given up on (too-late drop) while the test fills them.
    const { port, publishers } = await listener({ receiveWindow: window, latencyMs: 10_000 });
    const { c, pub } = await connected(port, publishers, { flowWindow: 100_000 }); // asks for more than the node gives
    c.sendData(c.seq(0), payload(0));
    // The far edge of the window, then every other packet walking back towards the start.
    c.sendData(c.seq(window - 1), payload(window - 1));
    for (let i = window - 3; i > 1; i -= 2) c.sendData(c.seq(i), payload(i));
    await until(() => pub.session.stats.packets === 2 + (window - 4) / 2, 'every packet sent');
    const state = pub.session.receiveState();
    expect(state.window).toBe(window);
    expect(state.held).toBe(1 + (window - 4) / 2);
    expect(state.held + state.missing).toBe(window - 1); // everything between next and the far edge, nothing more
    expect(state.lossRuns).toBe(1); // one jump revealed one loss run, however it was filled since
    // Every NAK fits one datagram: at most 64 ranges (the periodic one lists the holes as ranges).
    const naks = c.controls.filter((p) => p.type === Ctrl.NAK);
    expect(naks.length).toBeGreaterThan(0);
    for (const n of naks) expect(decodeLossList(n.cif).length).toBeLessThanOrEqual(64);
    // The first NAK named the whole run the jump revealed, as one range.
    expect(decodeLossList(naks[0]!.cif)).toEqual([[c.seq(1), c.seq(window - 2)]]);

    // Sending them all again fills the holes (the others are duplicates): everything is
    // delivered in order, once, and nothing is left held.
    for (let i = 1; i < window - 1; i++) c.sendData(c.seq(i), payload(i));
    await until(() => pub.session.stats.packets === 2 + (window - 4) / 2 + (window - 2), 'every packet sent again');
    expect(pub.session.receiveState()).toMatchObject({ held: 0, missing: 0, lossRuns: 0 });
    expect(Buffer.concat(pub.chunks)).toEqual(Buffer.concat(Array.from({ length: window }, (_, i) => payload(i))));
    expect(pub.session.stats.lost).toBe(window - 2);
  });

  it('ignores a drop request for a range beyond the window, and honours one inside it', async () => {
    const { port, publishers } = await listener({ receiveWindow: 1024, latencyMs: 10_000 });
    const { c, pub } = await connected(port, publishers);
    c.sendData(c.seq(0), payload(0));
    c.sendData(c.seq(500), payload(1));
    await until(() => pub.session.stats.packets === 2, 'both packets');
    expect(pub.session.receiveState()).toMatchObject({ held: 1, missing: 499 });
    const drop = (first: number, last: number) => {
      const cif = Buffer.alloc(8);
      cif.writeUInt32BE(first, 0);
      cif.writeUInt32BE(last, 4);
      c.sendControl(Ctrl.DROPREQ, 0, cif);
    };
    // Had the first been honoured, the second would find nothing to drop (and 500 would be gone).
    drop(c.seq(1), c.seq(200_000));
    drop(c.seq(1), c.seq(499));
    await until(() => pub.session.receiveState().held === 0, 'the drop request');
    expect(pub.session.receiveState()).toMatchObject({ held: 0, missing: 0 });
    expect(pub.session.stats.dropped).toBe(499);
    expect(Buffer.concat(pub.chunks)).toEqual(Buffer.concat([payload(0), payload(1)]));
    // The next ACK acknowledges everything up to the packet after the last one received.
    const ack = await c.waitFor((p) => p.type === Ctrl.ACK && p.cif.readUInt32BE(0) === c.seq(501));
    expect(ack).toBeDefined();
  });
});

describe('SRT handshake floods (issue 11 item 5)', () => {
  it('rate-limits conclusions per address, bounds the pending table and the PBKDF2 runs; a real publisher still gets in', async () => {
    const limits = { handshakesPerSecond: 1, handshakeBurst: 5, maxPendingHandshakes: 64, keyDerivationsPerSecond: 20 };
    const { srv, port, publishers } = await listener({ passphrase: PASSPHRASE, ...limits });
    const started = Date.now();
    // 40 addresses, 75 conclusions each (3,000 in all), each with key material under a new salt
    // (so a per-salt cache alone would not help) that no passphrase unwraps.
    const answers: number[] = [];
    await Promise.all(
      Array.from({ length: 40 }, async (_, a) => {
        const c = await caller({ port, streamId: 'sk_good', bindAddress: `127.0.0.${a + 2}` });
        const cookie = (await c.handshake(c.induction())).cookie;
        const before = c.controls.length;
        // Paced (1,600 a second in all) so that the kernel's socket buffer, not the listener, is never what drops them.
        for (let i = 0; i < 75; i++) {
          c.send(c.conclusion(cookie, 0x2000 + i, TestKeys.bogusKeyMaterial()));
          await new Promise((r) => setTimeout(r, 25));
        }
        await settle();
        answers.push(c.controls.length - before);
      }),
    );
    const seconds = (Date.now() - started) / 1000;
    const perAddress = limits.handshakeBurst + Math.ceil(seconds * limits.handshakesPerSecond);
    // Each address got at most its bucket's worth of answers (refusals: wrong passphrase) …
    for (const n of answers) expect(n).toBeLessThanOrEqual(perAddress);
    const state = srv.handshakeState();
    // … the remembered answers stay under the table's bound, PBKDF2 ran at most the node's budget …
    expect(state.pending).toBeLessThanOrEqual(limits.maxPendingHandshakes);
    expect(state.keyDerivations).toBeLessThanOrEqual(limits.keyDerivationsPerSecond * (1 + Math.ceil(seconds)));
    expect(state.throttled).toBeGreaterThan(2000); // all but the answered ones (a few may be lost in the kernel)
    expect(state.addresses).toBeLessThanOrEqual(40);

    // … and a publisher with the right passphrase (libsrt, from its own address) connects.
    const r = await publishWithFfmpeg(`srt://127.0.0.1:${port}?streamid=sk_good&passphrase=${PASSPHRASE}`, 1);
    expect(r.code).toBe(0);
    expect(publishers).toHaveLength(1);
  });

  it('answers a retransmitted conclusion from the table, without spending a token', async () => {
    const { srv, port } = await listener({ handshakesPerSecond: 0.001, handshakeBurst: 1 });
    const c = await caller({ port, streamId: 'sk_unknown' });
    const cookie = (await c.handshake(c.induction())).cookie;
    const conclusion = c.conclusion(cookie, 0x4242);
    const first = await c.handshake(conclusion);
    const again = await c.handshake(conclusion);
    expect(first.type).toBe(2403); // SRT_REJX_FORBIDDEN: the origin refused the key
    expect(again.type).toBe(2403);
    // A new conclusion (another socket id) from the same address is over the limit: no answer.
    await expect(c.handshake(c.conclusion(cookie, 0x4343), 300)).rejects.toThrow();
    expect(srv.handshakeState().throttled).toBe(1);
  });
});

describe('SRT encryption against a crafted caller (issue 11 items 6 and 7)', () => {
  async function encrypted() {
    const keys = new TestKeys();
    const { port, publishers } = await listener({ passphrase: PASSPHRASE });
    const { c, pub } = await connected(port, publishers, { keyMaterial: keys.keyMaterial(PASSPHRASE, 1) });
    return { keys, c, pub };
  }

  it('refuses cleartext packets on an encrypted connection (the encrypted one with that number still gets through)', async () => {
    const { keys, c, pub } = await encrypted();
    for (let i = 0; i < 5; i++) c.sendData(c.seq(i), keys.encrypt(1, c.seq(i), payload(i)), 1);
    c.sendData(c.seq(5), Buffer.from('EVIL'.repeat(47)), 0);
    for (let i = 5; i < 10; i++) c.sendData(c.seq(i), keys.encrypt(1, c.seq(i), payload(i)), 1);
    await until(() => Buffer.concat(pub.chunks).length >= 10 * 188, 'ten packets delivered');
    await settle();
    expect(Buffer.concat(pub.chunks)).toEqual(Buffer.concat(Array.from({ length: 10 }, (_, i) => payload(i))));
    expect(pub.session.stats.cleartextRefused).toBe(1);
  });

  it('follows a key refresh: KMREQ answered with KMRSP, odd-key packets decrypted, the even key kept for late ones', async () => {
    const { keys, c, pub } = await encrypted();
    c.sendData(c.seq(0), keys.encrypt(1, c.seq(0), payload(0)), 1);
    // Pre-announce: both keys, as libsrt sends them before switching.
    const km = keys.keyMaterial(PASSPHRASE, 3);
    c.sendControl(Ctrl.EXT, Ext.KMREQ, km);
    const rsp = await c.waitFor((p) => p.type === Ctrl.EXT && p.subtype === Ext.KMRSP);
    expect(rsp.cif).toEqual(km);
    c.sendData(c.seq(2), keys.encrypt(2, c.seq(2), payload(2)), 2); // after the switch
    c.sendData(c.seq(1), keys.encrypt(1, c.seq(1), payload(1)), 1); // a late one, still with the old key
    await until(() => pub.session.stats.packets === 3, 'every packet');
    expect(Buffer.concat(pub.chunks)).toEqual(Buffer.concat([0, 1, 2].map(payload)));
    expect(pub.session.stats).toMatchObject({ keyRefreshes: 1, undecryptable: 0 });
  });

  it('refuses key material wrapped with another passphrase (a one-word KMRSP: BADSECRET) and keeps its keys', async () => {
    const { keys, c, pub } = await encrypted();
    c.sendControl(Ctrl.EXT, Ext.KMREQ, keys.keyMaterial('another-passphrase', 3));
    const rsp = await c.waitFor((p) => p.type === Ctrl.EXT && p.subtype === Ext.KMRSP);
    expect(rsp.cif.length).toBe(4);
    expect(rsp.cif.readUInt32BE(0)).toBe(KmState.BADSECRET);
    c.sendData(c.seq(0), keys.encrypt(1, c.seq(0), payload(0)), 1);
    await until(() => pub.session.stats.packets === 1, 'the packet');
    expect(Buffer.concat(pub.chunks)).toEqual(payload(0));
  });

  it('drops a packet it cannot decrypt and acknowledges it, instead of asking for it again and again', async () => {
    const { keys, c, pub } = await encrypted();
    c.sendData(c.seq(0), keys.encrypt(1, c.seq(0), payload(0)), 1);
    c.sendData(c.seq(1), keys.encrypt(2, c.seq(1), payload(1)), 2); // the odd key was never announced
    c.sendData(c.seq(2), keys.encrypt(1, c.seq(2), payload(2)), 1);
    await c.waitFor((p) => p.type === Ctrl.ACK && seqDiff(p.cif.readUInt32BE(0), c.seq(3)) >= 0);
    await settle();
    expect(Buffer.concat(pub.chunks)).toEqual(Buffer.concat([payload(0), payload(2)]));
    const naked = c.controls.filter((p) => p.type === Ctrl.NAK).flatMap((p) => decodeLossList(p.cif));
    expect(naked.some(([first, last]) => seqDiff(c.seq(1), first) >= 0 && seqDiff(last, c.seq(1)) >= 0)).toBe(false);
    expect(pub.session.stats.undecryptable).toBe(1);
    expect(pub.session.receiveState()).toMatchObject({ held: 0, missing: 0 });
  });
});

function publishWithFfmpeg(url: string, seconds: number): Promise<{ code: number | null; stderr: string }> {
  const p = spawn('ffmpeg', [
    '-hide_banner',
    '-loglevel',
    'error',
    '-re',
    '-f',
    'lavfi',
    '-i',
    'testsrc2=size=160x90:rate=25',
    '-t',
    String(seconds),
    '-c:v',
    'libx264',
    '-preset',
    'ultrafast',
    '-f',
    'mpegts',
    url,
  ]);
  let stderr = '';
  p.stderr.on('data', (d) => (stderr += d));
  return new Promise((resolve) => p.on('exit', (code) => resolve({ code, stderr })));
}
